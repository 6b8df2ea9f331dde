//! Outgoing Raft RPCs over tonic. One lazily connected channel per peer,
//! over mutual TLS with the node's own certificate (plain text only with
//! `--insecure-plaintext`); payloads are openraft's types encoded with
//! postcard inside a `kauri.v1.RaftMessage`.

use std::time::Duration;

use kauri_client::tls::ClientTls;
use kauri_proto::v1::raft_client::RaftClient;
use kauri_proto::v1::RaftMessage;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use tonic::transport::Channel;

use super::{decode, encode, typ, NodeId, NodeInfo, TypeConfig};

/// Connect timeout for peer channels.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Creates a [`PeerClient`] per target node.
#[derive(Clone, Default)]
pub struct Network {
    /// The node's identity towards its peers; `None` for plain text.
    pub tls: Option<ClientTls>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        let channel = kauri_client::tls::channel(&node.addr, self.tls.as_ref(), CONNECT_TIMEOUT);
        PeerClient {
            target,
            client: channel.map(RaftClient::new),
        }
    }
}

/// Raft RPC client for one peer.
pub struct PeerClient {
    target: NodeId,
    client: Result<RaftClient<Channel>, String>,
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
        result
            .map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new($self.target, e)))
    }};
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
