//! gRPC server reflection, both `grpc.reflection.v1` and the older
//! `grpc.reflection.v1alpha` (which some stock clients still speak only),
//! so grpcurl, grpcio-reflection and the like can list the node's services
//! and call them without the `.proto` files.
//!
//! Both versions describe the same services: `kauri.v1.*`
//! ([`kauri_proto::FILE_DESCRIPTOR_SET`], comments included),
//! `grpc.health.v1.Health` and both reflection services themselves.
//!
//! Resources: a reflection call is a bidirectional stream, and tonic-
//! reflection spawns one task per call that answers its requests in order
//! through a channel of one message. The task ends when the client ends
//! its side, the stream is reset or the connection closes, and it waits
//! (holding nothing but the stream) while the client does not read; so what
//! a caller can hold is bounded by the listener's connection limits times
//! [`crate::server::MAX_STREAMS_PER_CONNECTION`], as for any other call,
//! and each request is at most [`MAX_REQUEST_BYTES`]. A stream its client
//! keeps open holds up the server's graceful stop until the limit
//! [`crate::server::run`] gives it (5 s), as a slow unary call would.

use tonic_reflection::server::{v1, v1alpha, Builder, Error};

/// Largest reflection request accepted (it names a symbol or a file).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Every descriptor set the two reflection services describe.
fn builder() -> Builder<'static> {
    Builder::configure()
        // Registered below, for both versions alike.
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(kauri_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// The `grpc.reflection.v1` service.
pub fn v1() -> Result<v1::ServerReflectionServer<impl v1::ServerReflection>, Error> {
    Ok(builder()
        .build_v1()?
        .max_decoding_message_size(MAX_REQUEST_BYTES))
}

/// The `grpc.reflection.v1alpha` service.
pub fn v1alpha() -> Result<v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>, Error> {
    Ok(builder()
        .build_v1alpha()?
        .max_decoding_message_size(MAX_REQUEST_BYTES))
}
