//! Raft's vocabulary: the type declarations openraft is instantiated with,
//! the bounds every value from a peer is checked against, and the wire
//! encoding of its messages. Below storage (which implements openraft's
//! storage for these types); the transport between nodes is
//! [`crate::peer`].

pub mod bounds;
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
