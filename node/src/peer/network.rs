//! Outgoing Raft RPCs over tonic. One lazily connected channel per peer
//! (kept across openraft's clients: it asks for a new client for every
//! read-index round, and a new channel would mean a new TLS handshake to
//! each follower per linearizable read), over mutual TLS with the node's own certificate (plain text only with
//! `--insecure-plaintext`); payloads are openraft's types encoded with
//! postcard inside a `kauri.v1.RaftMessage`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kauri_client::tls::ClientTls;
use kauri_proto::v1::raft_client::RaftClient;
use kauri_proto::v1::RaftMessage;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use tonic::transport::Channel;

use crate::raft::{bounds, decode, encode, typ, NodeId, NodeInfo, TypeConfig};

/// Connect timeout for peer channels.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// When each peer last answered a Raft message this node sent it (what
/// `kauri_raft_last_contact_seconds` reports on the leader).
#[derive(Clone, Default)]
pub struct Contacts(Arc<Mutex<BTreeMap<NodeId, Instant>>>);

impl Contacts {
    fn touch(&self, peer: NodeId) {
        if let Ok(mut seen) = self.0.lock() {
            seen.insert(peer, Instant::now());
        }
    }

    /// How long ago `peer` last answered; `None` if it never did.
    pub fn since(&self, peer: NodeId) -> Option<Duration> {
        let seen = self.0.lock().ok()?;
        seen.get(&peer).map(Instant::elapsed)
    }
}

/// The open channel to each peer, by node and address: a node that moves
/// to a new address (a membership change) gets a new channel, and the TLS
/// identity it must present is part of what the channel was built with.
#[derive(Clone, Default)]
pub struct Channels(Arc<Mutex<BTreeMap<(NodeId, String), Channel>>>);

impl Channels {
    /// The channel to `target` at `addr`, made (lazily connected) on first
    /// use. A tonic channel reconnects by itself after its connection
    /// breaks, so one channel serves the peer for the node's lifetime.
    fn get(&self, target: NodeId, addr: &str, tls: Option<&ClientTls>) -> Result<Channel, String> {
        let key = (target, addr.to_string());
        if let Some(channel) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(channel);
        }
        let tls = tls.map(|t| t.expecting_node(target));
        let channel = kauri_client::tls::channel(addr, tls.as_ref(), CONNECT_TIMEOUT)?;
        if let Ok(mut open) = self.0.lock() {
            // Channels to an old address of the same node are dropped.
            open.retain(|(id, _), _| *id != target);
            open.insert(key, channel.clone());
        }
        Ok(channel)
    }
}

/// Creates a [`PeerClient`] per target node.
#[derive(Clone, Default)]
pub struct Network {
    /// The node's identity towards its peers; `None` for plain text.
    pub tls: Option<ClientTls>,
    /// Records when each peer answered.
    pub contacts: Contacts,
    /// The node's storage, for the identity of its cluster that every
    /// message carries.
    pub store: Option<crate::storage::Store>,
    /// The channel to each peer, shared by every client made for it.
    pub channels: Channels,
}

/// The gRPC metadata key of the sender's cluster identity on Raft messages.
pub const CLUSTER_ID_HEADER: &str = "kauri-cluster-id";

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        // The peer's certificate must name the node the membership says
        // is at that address.
        let channel = self.channels.get(target, &node.addr, self.tls.as_ref());
        PeerClient {
            target,
            client: channel.map(RaftClient::new),
            contacts: self.contacts.clone(),
            store: self.store.clone(),
        }
    }
}

/// Puts this node's cluster identity (if it has one) on an outgoing Raft
/// request.
fn carry_cluster_id<T>(store: Option<&crate::storage::Store>, request: &mut tonic::Request<T>) {
    if let Some(value) = store
        .and_then(|s| s.cluster_id())
        .and_then(|id| id.parse().ok())
    {
        request.metadata_mut().insert(CLUSTER_ID_HEADER, value);
    }
}

impl Network {
    /// Sends `Raft.TransferLeadership` to node `peer` at `addr` (see
    /// `api::handover`).
    pub async fn transfer_leadership(
        &self,
        peer: NodeId,
        addr: &str,
        req: kauri_proto::v1::TransferLeadershipRequest,
    ) -> Result<(), String> {
        let channel = self.channels.get(peer, addr, self.tls.as_ref())?;
        let mut request = tonic::Request::new(req);
        request.set_timeout(Duration::from_secs(2));
        carry_cluster_id(self.store.as_ref(), &mut request);
        RaftClient::new(channel)
            .transfer_leadership(request)
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }
}

/// Raft RPC client for one peer.
pub struct PeerClient {
    target: NodeId,
    client: Result<RaftClient<Channel>, String>,
    contacts: Contacts,
    store: Option<crate::storage::Store>,
}

/// Errors before the peer answered: these make openraft back off.
fn unreachable<E: std::error::Error>(e: impl std::fmt::Display) -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e.to_string())))
}

fn network<E: std::error::Error>(e: impl std::fmt::Display) -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string())))
}

macro_rules! call {
    ($self:ident, $method:ident, $rpc:ident, $option:ident, $resp:ty, $err:ty) => {{
        let client = match &$self.client {
            Ok(c) => c.clone(),
            Err(e) => {
                return Err(unreachable(format!(
                    "bad address of node {}: {e}",
                    $self.target
                )))
            }
        };
        let payload = encode(&$rpc).map_err(network)?;
        let mut request = tonic::Request::new(RaftMessage { payload });
        request.set_timeout($option.hard_ttl());
        carry_cluster_id($self.store.as_ref(), &mut request);
        let mut client = client;
        let reply = match client.$method(request).await {
            Ok(r) => r.into_inner(),
            Err(status) => {
                return Err(match status.code() {
                    tonic::Code::Unavailable => unreachable(status.message()),
                    _ => network(format!("{}: {}", status.code(), status.message())),
                })
            }
        };
        let result: Result<$resp, $err> = decode(&reply.payload).map_err(network)?;
        $self.contacts.touch($self.target);
        if let Ok(reply) = &result {
            reply.check().map_err(|e| {
                tracing::warn!(peer = $self.target, "refused a raft reply: {e}");
                network(format!("reply from node {} refused: {e}", $self.target))
            })?;
        }
        result
            .map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new($self.target, e)))
    }};
}

/// A reply whose votes and log ids are checked against [`bounds`] before
/// openraft adopts them (a higher vote in a reply becomes this node's).
trait CheckedReply {
    fn check(&self) -> Result<(), bounds::OutOfBounds>;
}

impl CheckedReply for typ::AppendEntriesResponse {
    fn check(&self) -> Result<(), bounds::OutOfBounds> {
        match self {
            typ::AppendEntriesResponse::HigherVote(vote) => bounds::reply_vote(vote),
            typ::AppendEntriesResponse::PartialSuccess(log_id) => {
                bounds::reply_log_id("matching log id", log_id)
            }
            _ => Ok(()),
        }
    }
}

impl CheckedReply for typ::VoteResponse {
    fn check(&self) -> Result<(), bounds::OutOfBounds> {
        bounds::reply_vote(&self.vote)?;
        bounds::reply_log_id("last log id", &self.last_log_id)
    }
}

impl CheckedReply for typ::InstallSnapshotResponse {
    fn check(&self) -> Result<(), bounds::OutOfBounds> {
        bounds::reply_vote(&self.vote)
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: typ::AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<typ::AppendEntriesResponse, typ::RpcError> {
        call!(
            self,
            append_entries,
            rpc,
            option,
            typ::AppendEntriesResponse,
            RaftError<NodeId>
        )
    }

    async fn install_snapshot(
        &mut self,
        rpc: typ::InstallSnapshotRequest,
        option: RPCOption,
    ) -> Result<typ::InstallSnapshotResponse, typ::RpcError<InstallSnapshotError>> {
        call!(
            self,
            install_snapshot,
            rpc,
            option,
            typ::InstallSnapshotResponse,
            RaftError<NodeId, InstallSnapshotError>
        )
    }

    async fn vote(
        &mut self,
        rpc: typ::VoteRequest,
        option: RPCOption,
    ) -> Result<typ::VoteResponse, typ::RpcError> {
        call!(
            self,
            vote,
            rpc,
            option,
            typ::VoteResponse,
            RaftError<NodeId>
        )
    }
}

/// One peer's cluster status (`kauri.v1.Cluster/Status`), with short
/// timeouts: how far it has applied, its state-chain points.
pub async fn peer_status(
    addr: &str,
    tls: Option<&ClientTls>,
) -> Result<kauri_proto::v1::StatusResponse, String> {
    let channel = kauri_client::tls::channel(addr, tls, CONNECT_TIMEOUT)?;
    let mut request = tonic::Request::new(kauri_proto::v1::StatusRequest {});
    request.set_timeout(Duration::from_secs(2));
    kauri_proto::v1::cluster_client::ClusterClient::new(channel)
        .status(request)
        .await
        .map(|r| r.into_inner())
        .map_err(|e| e.to_string())
}
