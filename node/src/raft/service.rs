//! The receiving side of Raft RPCs: decodes the payload, hands it to the
//! local Raft instance and encodes openraft's result (including its errors)
//! back.

use kauri_proto::v1::raft_server::Raft as RaftRpc;
use kauri_proto::v1::RaftMessage;
use tonic::{Request, Response, Status};

use super::{decode, encode, typ};

/// gRPC service for node-to-node Raft traffic.
pub struct RaftService {
    raft: typ::Raft,
    fence: VoteFence,
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
    /// Serves RPCs for `raft`, refusing votes while `fence` holds.
    pub fn new(raft: typ::Raft, fence: VoteFence) -> Self {
        RaftService { raft, fence }
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
        let rpc: typ::AppendEntriesRequest =
            decode(&request.into_inner().payload).map_err(bad_payload)?;
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        if let Some(until) = self.fenced() {
            return Err(Status::unavailable(format!(
                "recovering from lost storage: not voting until index {until} is applied"
            )));
        }
        let rpc: typ::VoteRequest = decode(&request.into_inner().payload).map_err(bad_payload)?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc: typ::InstallSnapshotRequest =
            decode(&request.into_inner().payload).map_err(bad_payload)?;
        reply(&self.raft.install_snapshot(rpc).await)
    }
}
