//! Raft type declarations: the one place that names openraft's generics.
//! Everything else uses the aliases here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's id in the cluster.
pub type NodeId = u64;

/// What the cluster knows about a member: where to reach it and which site
/// it sits in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// gRPC address (HOST:PORT) serving both the public API and Raft RPCs.
    pub addr: String,
    /// Site label, e.g. "paris" or "auckland".
    pub site: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.addr, self.site)
    }
}

/// The body of a normal log entry: a protobuf-encoded `kauri.v1.Proposal`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPayload(#[serde(with = "serde_bytes_compat")] pub Vec<u8>);

impl fmt::Debug for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogPayload({} bytes)", self.0.len())
    }
}

impl fmt::Display for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What applying an entry returns to the proposer: a protobuf-encoded
/// `kauri.v1.CommandResult` (empty for blank and membership entries).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse(#[serde(with = "serde_bytes_compat")] pub Vec<u8>);

impl fmt::Debug for ApplyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApplyResponse({} bytes)", self.0.len())
    }
}

/// Serialises byte vectors as one byte string instead of a sequence of
/// integers, which keeps log entries compact in any serde format.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

openraft::declare_raft_types!(
    /// Kauri's Raft type configuration.
    pub TypeConfig:
        D = LogPayload,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::archive::SnapshotData,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

/// Aliases of openraft types specialised to [`TypeConfig`].
pub mod typ {
    use super::{NodeId, NodeInfo, TypeConfig};

    /// The running Raft instance.
    pub type Raft = openraft::Raft<TypeConfig>;
    /// A log entry.
    pub type Entry = openraft::Entry<TypeConfig>;
    /// A log id (term, leader, index).
    pub type LogId = openraft::LogId<NodeId>;
    /// A vote.
    pub type Vote = openraft::Vote<NodeId>;
    /// Membership as stored with the applied state.
    pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
    /// Snapshot metadata.
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
    /// A snapshot with its data.
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    /// Storage errors reported to openraft.
    pub type StorageError = openraft::StorageError<NodeId>;
    /// Raft metrics.
    pub type RaftMetrics = openraft::RaftMetrics<NodeId, NodeInfo>;
    /// Errors of a client write.
    pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, NodeInfo>;
    /// Errors of a linearizable read check.
    pub type CheckIsLeaderError = openraft::error::CheckIsLeaderError<NodeId, NodeInfo>;
    /// Errors of the Raft API wrapping `E`.
    pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
    /// Errors of an RPC to another node.
    pub type RpcError<E = openraft::error::Infallible> =
        openraft::error::RPCError<NodeId, NodeInfo, RaftError<E>>;
    /// Append-entries request.
    pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
    /// Append-entries response.
    pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<NodeId>;
    /// Vote request.
    pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
    /// Vote response.
    pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
    /// One chunk of a snapshot being installed.
    pub type InstallSnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
    /// Reply to a snapshot chunk.
    pub type InstallSnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;
    /// Errors of installing a snapshot.
    pub type InstallSnapshotError = openraft::error::InstallSnapshotError;
}
