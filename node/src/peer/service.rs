//! The receiving side of Raft RPCs: decodes the payload, checks it against
//! [`bounds`] (and that the sending node's certificate speaks for itself),
//! hands it to the local Raft instance and encodes openraft's result
//! (including its errors) back. Snapshots are received by the node's
//! [`SnapshotInbox`] and reach openraft only once verified.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kauri_proto::v1::raft_server::Raft as RaftRpc;
use kauri_proto::v1::{RaftMessage, TransferLeadershipRequest, TransferLeadershipResponse};
use openraft::error::{InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::SnapshotSegmentId;
use tonic::{Request, Response, Status};

use crate::raft::bounds::{self, Receiver};
use crate::raft::{decode, encode, typ, NodeId};
use crate::security::{actor, Caller};
use crate::storage::inbox::{Refusal, SnapshotInbox};

/// gRPC service for node-to-node Raft traffic.
pub struct RaftService {
    raft: typ::Raft,
    fence: VoteFence,
    inbox: SnapshotInbox,
    store: crate::storage::Store,
    /// Counts requests to stand aside, so that only the latest one's
    /// timer lets this node elect again.
    standing_aside: Arc<AtomicU64>,
}

/// Keeps a node that lost its disk out of elections until it holds every
/// entry the cluster had committed when it came back.
///
/// A voter restarted with empty storage has forgotten its log and its vote.
/// If it voted now, a candidate missing committed entries could win with
/// its help, and acknowledged registrations would be lost. So a node
/// started with `--recover` refuses vote requests until it has applied the
/// highest index its peers reported at start-up; after that its log holds
/// everything committed before the wipe.
#[derive(Clone, Debug, Default)]
pub struct VoteFence {
    until_applied: Option<u64>,
}

impl VoteFence {
    /// No fence: the node votes normally.
    pub fn none() -> Self {
        VoteFence::default()
    }

    /// Refuse votes until `index` is applied.
    pub fn until_applied(index: u64) -> Self {
        VoteFence {
            until_applied: Some(index),
        }
    }
}

impl RaftService {
    /// Serves RPCs for `raft`, refusing votes while `fence` holds and
    /// receiving snapshots into `inbox`.
    pub fn new(
        raft: typ::Raft,
        fence: VoteFence,
        inbox: SnapshotInbox,
        store: crate::storage::Store,
    ) -> Self {
        RaftService {
            raft,
            fence,
            inbox,
            store,
            standing_aside: Arc::default(),
        }
    }

    /// Lets this node start elections again after `hold` (at once when
    /// zero), unless a later request says otherwise.
    fn stand_aside(&self, hold: std::time::Duration) {
        let generation = self.standing_aside.fetch_add(1, Ordering::SeqCst) + 1;
        let runtime = self.raft.runtime_config();
        if hold.is_zero() {
            runtime.elect(true);
            return;
        }
        runtime.elect(false);
        let (raft, latest) = (self.raft.clone(), self.standing_aside.clone());
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            if latest.load(Ordering::SeqCst) == generation {
                raft.runtime_config().elect(true);
            }
        });
    }

    /// Refuses a message from another cluster: one whose identity differs
    /// from this node's, or that carries none when this node has one (a
    /// node of a cluster this one was restored or recovered from). A node
    /// that holds nothing yet (joining, or rejoining after losing its
    /// disk) takes on the sender's identity.
    fn check_cluster<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let theirs = request
            .metadata()
            .get(crate::peer::network::CLUSTER_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mine = self.store.cluster_id();
        match (mine, theirs) {
            (None, None) => Ok(()),
            (Some(mine), Some(theirs)) if mine == theirs => Ok(()),
            (None, Some(theirs))
                if crate::storage::is_cluster_id(&theirs) && self.holds_nothing() =>
            {
                tracing::info!(cluster_id = %theirs, "joined cluster");
                self.store
                    .set_cluster_id(&theirs)
                    .map_err(|e| Status::internal(format!("cannot record the cluster: {e}")))
            }
            (mine, theirs) => {
                tracing::warn!(mine = ?mine, theirs = ?theirs, "refused a raft message from another cluster");
                Err(Status::failed_precondition(format!(
                    "this node belongs to cluster {}, the sender to {}: refused (a node of the \
                     cluster this one was restored or recovered from?)",
                    mine.as_deref().unwrap_or("(no identity)"),
                    theirs.as_deref().unwrap_or("(no identity)")
                )))
            }
        }
    }

    /// Whether this node has no Raft state at all yet.
    fn holds_nothing(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        m.last_log_index.is_none()
            && m.last_applied.is_none()
            && m.membership_config.membership().nodes().next().is_none()
    }

    /// What the bounds are checked against: this node's term and the
    /// sender's node id from its certificate.
    fn receiver<T>(&self, request: &Request<T>) -> Receiver {
        let sender: Option<NodeId> = match actor::caller(request) {
            Caller::Principal(p) => p.node_id(),
            Caller::Unauthenticated => None,
        };
        Receiver {
            term: self.raft.metrics().borrow().current_term,
            sender,
        }
    }

    /// Whether the fence still keeps this node out of elections.
    fn fenced(&self) -> Option<u64> {
        let until = self.fence.until_applied?;
        let applied = self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map(|l| l.index)
            .unwrap_or(0);
        (applied < until).then_some(until)
    }
}

fn bad_payload(e: postcard::Error) -> Status {
    Status::invalid_argument(format!("undecodable raft payload: {e}"))
}

fn out_of_bounds(rpc: &str, e: bounds::OutOfBounds) -> Status {
    tracing::warn!(rpc, "refused a raft message: {e}");
    Status::invalid_argument(format!("{rpc} refused: {e}"))
}

fn reply<T: serde::Serialize>(value: &T) -> Result<Response<RaftMessage>, Status> {
    encode(value)
        .map(|payload| Response::new(RaftMessage { payload }))
        .map_err(|e| Status::internal(format!("cannot encode raft reply: {e}")))
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_cluster(&request)?;
        let receiver = self.receiver(&request);
        let rpc: typ::AppendEntriesRequest =
            decode(&request.into_inner().payload).map_err(bad_payload)?;
        bounds::append_entries(&rpc, &receiver).map_err(|e| out_of_bounds("AppendEntries", e))?;
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_cluster(&request)?;
        if let Some(until) = self.fenced() {
            return Err(Status::unavailable(format!(
                "recovering from lost storage: not voting until index {until} is applied"
            )));
        }
        let receiver = self.receiver(&request);
        let rpc: typ::VoteRequest = decode(&request.into_inner().payload).map_err(bad_payload)?;
        bounds::vote(&rpc, &receiver).map_err(|e| out_of_bounds("Vote", e))?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn transfer_leadership(
        &self,
        request: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipResponse>, Status> {
        self.check_cluster(&request)?;
        let sender = self.receiver(&request).sender;
        let req = request.into_inner();
        let hold = std::time::Duration::from_millis(u64::from(req.hold_elections_ms));
        if hold > crate::api::handover::MAX_HOLD {
            return Err(Status::invalid_argument(format!(
                "hold_elections_ms {} exceeds {}",
                req.hold_elections_ms,
                crate::api::handover::MAX_HOLD.as_millis()
            )));
        }
        let m = self.raft.metrics().borrow().clone();
        // Electing again is what a node does anyway: any peer may ask.
        if hold.is_zero() && req.target != m.id {
            self.stand_aside(hold);
            return Ok(Response::new(TransferLeadershipResponse {}));
        }
        // Standing aside or for election only at the word of the leader
        // this node follows now.
        let from_leader = m.current_leader.is_some()
            && m.current_leader != Some(m.id)
            && (sender.is_none() || sender == m.current_leader);
        if !from_leader || req.term != m.current_term {
            tracing::warn!(
                ?sender,
                term = req.term,
                "refused a leadership transfer request"
            );
            return Err(Status::failed_precondition(format!(
                "only the current leader ({:?}, term {}) hands over the leadership; the request                  came from {:?} in term {}",
                m.current_leader, m.current_term, sender, req.term
            )));
        }
        if req.target == m.id {
            tracing::info!(
                term = req.term,
                "standing for election: the leader hands over"
            );
            self.stand_aside(std::time::Duration::ZERO);
            self.raft
                .trigger()
                .elect()
                .await
                .map_err(|e| Status::unavailable(format!("cannot start an election: {e}")))?;
        } else {
            tracing::info!(
                target = req.target,
                ?hold,
                "standing aside for a leadership transfer"
            );
            self.stand_aside(hold);
        }
        Ok(Response::new(TransferLeadershipResponse {}))
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_cluster(&request)?;
        let receiver = self.receiver(&request);
        let rpc: typ::InstallSnapshotRequest =
            decode(&request.into_inner().payload).map_err(bad_payload)?;
        bounds::snapshot(&rpc.vote, &rpc.meta, &receiver)
            .map_err(|e| out_of_bounds("InstallSnapshot", e))?;
        type Reply = Result<typ::InstallSnapshotResponse, RaftError<NodeId, InstallSnapshotError>>;
        // As openraft does: a sender behind this node's vote is told so.
        let my_vote = self.raft.metrics().borrow().vote;
        if rpc.vote < my_vote {
            return reply::<Reply>(&Ok(typ::InstallSnapshotResponse { vote: my_vote }));
        }
        let (id, offset) = (rpc.meta.snapshot_id.clone(), rpc.offset);
        let received = match self.inbox.receive(rpc).await {
            Ok(None) => return reply::<Reply>(&Ok(typ::InstallSnapshotResponse { vote: my_vote })),
            Ok(Some(received)) => received,
            Err(Refusal::Mismatch { expect }) => {
                let mismatch = SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: id.clone(),
                        offset: expect,
                    },
                    got: SnapshotSegmentId { id, offset },
                };
                return reply::<Reply>(&Err(RaftError::APIError(
                    InstallSnapshotError::SnapshotMismatch(mismatch),
                )));
            }
            Err(Refusal::Refused(why)) => {
                return Err(Status::failed_precondition(format!(
                    "snapshot {id} refused: {why}"
                )))
            }
        };
        let snapshot = typ::Snapshot {
            meta: received.meta,
            snapshot: Box::new(received.data),
        };
        let installed = self
            .raft
            .install_full_snapshot(received.vote, snapshot)
            .await
            .map(|r| typ::InstallSnapshotResponse { vote: r.vote })
            .map_err(RaftError::Fatal);
        reply::<Reply>(&installed)
    }
}
