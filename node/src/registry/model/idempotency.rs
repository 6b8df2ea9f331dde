//! Idempotency records: the stored result of a request under its key
//! (actor, clTRID).

use super::*;

/// The key of an idempotency record: actor, 0x00, client transaction id.
/// Neither part may contain 0x00 (both refuse control characters).
pub(crate) fn idempotency_key(actor: &str, cl_trid: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(actor.len() + cl_trid.len() + 1);
    key.extend_from_slice(actor.as_bytes());
    key.push(0);
    key.extend_from_slice(cl_trid.as_bytes());
    key
}

/// What the registry remembers of an applied request, keyed by
/// (actor, client transaction id).
///
/// Kept for [`super::apply::IDEMPOTENCY_RETENTION_MS`]: each record has an
/// entry in [`Cf::IdempotencyExpiry`], and ticks drop expired records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub actor: String,
    pub cl_trid: String,
    pub request_digest: Vec<u8>,
    /// The protobuf-encoded `CommandResult` returned the first time.
    pub result: Vec<u8>,
    pub log_index: u64,
    pub time_ms: i64,
}

impl Record for IdempotencyRecord {
    const CF: Cf = Cf::Idempotency;
    fn key(&self) -> Vec<u8> {
        idempotency_key(&self.actor, &self.cl_trid)
    }
}
