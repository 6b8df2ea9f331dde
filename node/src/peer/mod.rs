//! The transport between nodes: the tonic client openraft sends Raft RPCs
//! with ([`network`]) and the gRPC service that receives them ([`service`]).
//! Above storage: a received snapshot goes through the storage's inbox.

pub mod network;
pub mod service;
