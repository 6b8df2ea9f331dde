//! Poll messages: what the registry tells a registrar about its objects.

use super::*;

/// One message in a registrar's poll queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PollRecord {
    pub registrar: String,
    pub id: u64,
    pub time_ms: i64,
    pub kind: PollKind,
    pub object: String,
    pub message: String,
    /// Transfer messages: the transfer as it stood, and the expiry.
    pub transfer: Option<(TransferRecord, i64)>,
    pub sv_trid: String,
}

/// What a poll message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PollKind {
    TransferRequested,
    TransferApproved,
    TransferRejected,
    TransferCancelled,
    TransferAutoApproved,
    TransferServerCancelled,
    AutoRenewed,
    AutoRenewFailed,
    RedemptionEnded,
    Purged,
    RestoreReportOverdue,
    ServerStatusChanged,
    LowBalance,
    ContactTransferRequested,
    ContactTransferApproved,
    ContactTransferRejected,
    ContactTransferCancelled,
    ContactTransferAutoApproved,
    ContactTransferServerCancelled,
    HostRenamed,
}

impl PollKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            PollKind::TransferRequested => "transfer_requested",
            PollKind::TransferApproved => "transfer_approved",
            PollKind::TransferRejected => "transfer_rejected",
            PollKind::TransferCancelled => "transfer_cancelled",
            PollKind::TransferAutoApproved => "transfer_auto_approved",
            PollKind::TransferServerCancelled => "transfer_server_cancelled",
            PollKind::AutoRenewed => "auto_renewed",
            PollKind::AutoRenewFailed => "auto_renew_failed",
            PollKind::RedemptionEnded => "redemption_ended",
            PollKind::Purged => "purged",
            PollKind::RestoreReportOverdue => "restore_report_overdue",
            PollKind::ServerStatusChanged => "server_status_changed",
            PollKind::LowBalance => "low_balance",
            PollKind::ContactTransferRequested => "contact_transfer_requested",
            PollKind::ContactTransferApproved => "contact_transfer_approved",
            PollKind::ContactTransferRejected => "contact_transfer_rejected",
            PollKind::ContactTransferCancelled => "contact_transfer_cancelled",
            PollKind::ContactTransferAutoApproved => "contact_transfer_auto_approved",
            PollKind::ContactTransferServerCancelled => "contact_transfer_server_cancelled",
            PollKind::HostRenamed => "host_renamed",
        }
    }
}

/// The key of a poll message: registrar id, 0x00, big-endian id.
pub(crate) fn poll_key(registrar: &str, id: u64) -> Vec<u8> {
    ledger_key(registrar, id)
}

impl Record for PollRecord {
    const CF: Cf = Cf::Poll;
    fn key(&self) -> Vec<u8> {
        poll_key(&self.registrar, self.id)
    }
}

impl PollRecord {
    pub fn to_proto(&self) -> v1::PollMessage {
        v1::PollMessage {
            id: self.id,
            time_ms: self.time_ms,
            kind: self.kind.as_str().into(),
            object: self.object.clone(),
            message: self.message.clone(),
            transfer: self
                .transfer
                .as_ref()
                .map(|(t, expiry_ms)| t.to_proto(&self.object, *expiry_ms)),
            sv_trid: self.sv_trid.clone(),
        }
    }
}
