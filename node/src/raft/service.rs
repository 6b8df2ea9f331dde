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
}

impl RaftService {
    /// Serves RPCs for `raft`.
    pub fn new(raft: typ::Raft) -> Self {
        RaftService { raft }
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
