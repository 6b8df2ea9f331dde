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

/// The encoded `google.protobuf.FileDescriptorSet` of every
/// `kauri/v1/*.proto` file, comments included: what a node's server
/// reflection describes, so stock tools (grpcurl, grpcio-reflection) can
/// list and call the API without the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kauri_v1_descriptor.bin"));
