//! Who may talk to a node and what they may do: mutual TLS on the listener
//! ([`listener`]), which role may call which method ([`policy`]), the
//! binding of the actor a request names to the authenticated principal
//! ([`actor`]), the session tokens gateways act for registrars with
//! ([`session`]) and the throttling of failed password checks
//! ([`throttle`]). docs/security.md describes the threat model.
//!
//! Layers, top to bottom: `api` handlers call [`actor`]; the gRPC server
//! runs [`policy::AuthLayer`] before any handler; [`listener`] accepts the
//! connections both see. Nothing here imports `api`.

pub mod actor;
pub mod listener;
pub mod policy;
pub mod session;
pub mod throttle;

pub use kauri_client::tls::{Principal, Role};

/// Who is calling, as established for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The node serves plain text (`--insecure-plaintext`): there is no
    /// authentication, every caller is trusted as the actor it names.
    Unauthenticated,
    /// A client certificate of this cluster, checked against the CA.
    Principal(Principal),
}

impl Caller {
    /// A short description for messages and logs.
    pub fn describe(&self) -> String {
        match self {
            Caller::Unauthenticated => "an unauthenticated plain-text caller".to_string(),
            Caller::Principal(p) => format!("{} {} ({p})", p.role, p.name),
        }
    }
}

/// A refusal with `code`, carrying `reason` and `message` in a
/// `kauri.v1.ErrorDetail` like every other rejection of the API.
pub(crate) fn refuse(
    code: tonic::Code,
    reason: kauri_proto::v1::Reason,
    message: String,
) -> tonic::Status {
    use prost::Message;
    let detail = kauri_proto::v1::ErrorDetail {
        reason: reason as i32,
        message: message.clone(),
        ..Default::default()
    };
    tonic::Status::with_details(code, message, detail.encode_to_vec().into())
}
