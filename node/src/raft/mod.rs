//! Raft wiring: type declarations, the tonic transport between nodes, and
//! the gRPC service that receives Raft RPCs.

pub mod bounds;
pub mod network;
pub mod service;
mod types;

pub use types::{typ, ApplyResponse, LogPayload, NodeId, NodeInfo, TypeConfig};

/// Encodes an openraft message for the wire (postcard).
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

/// Decodes an openraft message from the wire.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}
