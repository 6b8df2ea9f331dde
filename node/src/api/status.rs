//! The edge where errors become gRPC statuses: every rejection carries a
//! `kauri.v1.ErrorDetail` (machine-readable reason, field, message) in the
//! status details, and the gRPC code follows from the reason.

use kauri_proto::v1::{self, ErrorDetail, Reason};
use prost::Message;
use tonic::{Code, Status};

use crate::raft::{NodeId, NodeInfo};
use crate::registry::RegistryError;

/// The gRPC code a reason is reported with.
pub fn code_for(reason: Reason) -> Code {
    use Reason::*;
    match reason {
        InvalidField | InvalidName | TooLong | LimitExceeded => Code::InvalidArgument,
        ObjectExists => Code::AlreadyExists,
        ObjectNotFound => Code::NotFound,
        NotSponsor | NotAuthorized | InvalidAuthInfo => Code::PermissionDenied,
        AuthenticationFailed | SessionInvalid => Code::Unauthenticated,
        SessionLimit | Throttled => Code::ResourceExhausted,
        FeeMismatch => Code::FailedPrecondition,
        UnknownTld
        | InsufficientFunds
        | PeriodNotAllowed
        | ExpiryDateMismatch
        | ObjectInUse
        | PolicyViolation
        | IdempotencyConflict
        | CurrencyMismatch
        | StatusProhibits
        | NotEligibleForTransfer
        | PendingTransfer
        | NotPendingTransfer => Code::FailedPrecondition,
        NotLeader | StaleRead | Unavailable => Code::Unavailable,
        Internal | Unspecified => Code::Internal,
    }
}

/// A status for `detail`, with the detail attached.
pub fn status(detail: ErrorDetail) -> Status {
    let reason = Reason::try_from(detail.reason).unwrap_or(Reason::Internal);
    let message = detail.message.clone();
    Status::with_details(code_for(reason), message, detail.encode_to_vec().into())
}

/// A rejection with `reason` about `field`.
pub fn reject(reason: Reason, field: &str, message: impl Into<String>) -> Status {
    status(ErrorDetail {
        reason: reason as i32,
        field: field.to_string(),
        message: message.into(),
        ..Default::default()
    })
}

/// This node cannot take the request; the client should go to the leader.
pub fn not_leader(leader: Option<(NodeId, NodeInfo)>) -> Status {
    let (leader_id, leader_addr, message) = match leader {
        Some((id, node)) => (
            id,
            node.addr.clone(),
            format!("not the leader; the leader is node {id} at {}", node.addr),
        ),
        None => (
            0,
            String::new(),
            "not the leader, and no leader is known yet (election in progress)".to_string(),
        ),
    };
    status(ErrorDetail {
        reason: Reason::NotLeader as i32,
        field: String::new(),
        message,
        leader_addr,
        leader_id,
        sv_trid: String::new(),
    })
}

/// A server-side failure: nothing was changed.
pub fn internal(message: impl Into<String>) -> Status {
    reject(Reason::Internal, "", message)
}

/// A rejected replicated command.
pub fn command_error(e: v1::CommandError) -> Status {
    status(ErrorDetail {
        reason: e.reason,
        field: e.field,
        message: e.message,
        sv_trid: e.tx.map(|t| t.sv_trid).unwrap_or_default(),
        ..Default::default()
    })
}

impl From<RegistryError> for Status {
    fn from(e: RegistryError) -> Status {
        reject(e.reason(), e.field(), e.to_string())
    }
}
