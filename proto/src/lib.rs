//! Kauri's wire types: the registry, admin and cluster gRPC APIs, the
//! internal Raft transport, and the protobuf body of replicated log entries.
//!
//! Generated from `kauri/v1/*.proto` at build time.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

/// Version 1 of the Kauri API.
pub mod v1 {
    #![allow(missing_docs)]
    tonic::include_proto!("kauri.v1");
}
