//! Errors of the client: a registry rejection (with its machine-readable
//! reason) or a failure to get an answer.

use std::fmt;
use std::time::Duration;

use kauri_proto::v1::{ErrorDetail, Reason};
use prost::Message;

/// Why a call failed.
#[derive(Debug, Clone)]
pub struct ClientError {
    /// The registry's reason (`Unavailable` for transport failures).
    pub reason: Reason,
    /// The gRPC code.
    pub code: tonic::Code,
    /// The request field the error is about, if any.
    pub field: String,
    /// Human-readable message.
    pub message: String,
    /// Server transaction id of a rejected mutation.
    pub sv_trid: String,
    /// Leader address hint of a `NOT_LEADER` error.
    pub leader_addr: String,
    /// True when the request may or may not have taken effect (timeouts,
    /// lost connections); retry with the same client transaction id.
    pub outcome_unknown: bool,
}

impl ClientError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        ClientError {
            reason: Reason::InvalidField,
            code: tonic::Code::InvalidArgument,
            field: String::new(),
            message: message.into(),
            sv_trid: String::new(),
            leader_addr: String::new(),
            outcome_unknown: false,
        }
    }

    pub(crate) fn timeout(addr: &str) -> Self {
        ClientError {
            reason: Reason::Unavailable,
            code: tonic::Code::DeadlineExceeded,
            message: format!("{addr} did not answer in time"),
            outcome_unknown: true,
            ..ClientError::config("")
        }
    }

    pub(crate) fn deadline(d: Duration) -> Self {
        ClientError {
            reason: Reason::Unavailable,
            code: tonic::Code::DeadlineExceeded,
            message: format!("no answer from the cluster within {} ms", d.as_millis()),
            outcome_unknown: true,
            ..ClientError::config("")
        }
    }

    /// Decodes a gRPC status, reading the `ErrorDetail` when the server sent one.
    pub fn from_status(status: &tonic::Status, addr: &str) -> Self {
        match ErrorDetail::decode(status.details()) {
            Ok(d) if d.reason != 0 => ClientError {
                reason: Reason::try_from(d.reason).unwrap_or(Reason::Internal),
                code: status.code(),
                field: d.field,
                message: d.message,
                sv_trid: d.sv_trid,
                leader_addr: d.leader_addr,
                // NOT_LEADER may come after the entry was appended (the leader
                // lost leadership before answering): it may yet commit.
                outcome_unknown: d.reason == Reason::Unavailable as i32
                    || d.reason == Reason::NotLeader as i32,
            },
            // No detail: the status came from the transport or the gRPC
            // layer (connection refused, message too large), not from Kauri.
            _ => {
                use tonic::Code::*;
                let (reason, outcome_unknown) = match status.code() {
                    Unavailable | DeadlineExceeded | Cancelled | Aborted | Unknown => {
                        (Reason::Unavailable, true)
                    }
                    // A connection broken mid-request (the node stopped
                    // while answering): hyper reports the HTTP/2 error as
                    // INTERNAL. The request may or may not have arrived.
                    Internal if status.message().starts_with("h2 protocol error") => {
                        (Reason::Unavailable, true)
                    }
                    InvalidArgument => (Reason::InvalidField, false),
                    ResourceExhausted | OutOfRange => (Reason::LimitExceeded, false),
                    _ => (Reason::Internal, false),
                };
                ClientError {
                    reason,
                    code: status.code(),
                    message: format!("{addr}: {}", status.message()),
                    outcome_unknown,
                    ..ClientError::config("")
                }
            }
        }
    }

    /// Whether another attempt (same request, same key) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.reason,
            Reason::NotLeader | Reason::Unavailable | Reason::StaleRead
        ) && self.code != tonic::Code::Unimplemented
    }

    /// The leader address the server pointed to, if any.
    pub fn leader_hint(&self) -> Option<&str> {
        (self.reason == Reason::NotLeader && !self.leader_addr.is_empty())
            .then_some(self.leader_addr.as_str())
    }

    /// The reason in the proto's SCREAMING_CASE spelling, e.g. "OBJECT_EXISTS".
    pub fn reason_name(&self) -> &'static str {
        self.reason.as_str_name()
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason_name(), self.message)?;
        if !self.sv_trid.is_empty() {
            write!(f, " (svTRID {})", self.sv_trid)?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_broken_mid_request_is_retryable_with_its_outcome_unknown() {
        let broken = tonic::Status::internal("h2 protocol error: http2 error");
        let e = ClientError::from_status(&broken, "127.0.0.1:7001");
        assert_eq!(e.reason, Reason::Unavailable);
        assert!(e.outcome_unknown && e.is_retryable(), "{e}");
        // Any other INTERNAL without Kauri's detail is not retried.
        let other = tonic::Status::internal("failed to decode Protobuf message");
        let e = ClientError::from_status(&other, "127.0.0.1:7001");
        assert_eq!(e.reason, Reason::Internal);
        assert!(!e.is_retryable() && !e.outcome_unknown, "{e}");
    }
}
