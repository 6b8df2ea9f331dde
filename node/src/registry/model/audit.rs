//! Audit records and the keys of their two indexes (by object, by actor).

use super::*;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ActorKind {
    Registrar,
    Staff,
    System,
}

impl ActorKind {
    pub fn to_proto(self) -> v1::ActorKind {
        match self {
            ActorKind::Registrar => v1::ActorKind::Registrar,
            ActorKind::Staff => v1::ActorKind::Staff,
            ActorKind::System => v1::ActorKind::System,
        }
    }
}

/// One audit record: a mutation of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditRecord {
    pub seq: u64,
    pub time_ms: i64,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub command: String,
    pub object_kind: String,
    pub object: String,
    pub sv_trid: String,
    pub cl_trid: String,
    pub changes: Vec<String>,
    /// The gateway that delivered the command for the registrar (its
    /// certificate name); empty for direct calls.
    pub via: String,
}

impl Record for AuditRecord {
    const CF: Cf = Cf::Audit;
    const FORMAT: u8 = RECORD_FORMAT_V2;
    fn key(&self) -> Vec<u8> {
        self.seq.to_be_bytes().to_vec()
    }
    fn decode_older(version: u8, body: &[u8]) -> Option<postcard::Result<(Self, &[u8])>> {
        (version == RECORD_FORMAT_V1).then(|| {
            postcard::take_from_bytes::<AuditRecordV1>(body)
                .map(|(old, rest)| (old.upgrade(), rest))
        })
    }
}

/// [`AuditRecord`] as format version 1 wrote it, before records named the
/// gateway. Decoded only, never written; frozen as it was.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) struct AuditRecordV1 {
    pub(super) seq: u64,
    pub(super) time_ms: i64,
    pub(super) actor_kind: ActorKind,
    pub(super) actor: String,
    pub(super) command: String,
    pub(super) object_kind: String,
    pub(super) object: String,
    pub(super) sv_trid: String,
    pub(super) cl_trid: String,
    pub(super) changes: Vec<String>,
}

impl AuditRecordV1 {
    /// The record of a direct call: no gateway recorded one then.
    fn upgrade(self) -> AuditRecord {
        AuditRecord {
            seq: self.seq,
            time_ms: self.time_ms,
            actor_kind: self.actor_kind,
            actor: self.actor,
            command: self.command,
            object_kind: self.object_kind,
            object: self.object,
            sv_trid: self.sv_trid,
            cl_trid: self.cl_trid,
            changes: self.changes,
            via: String::new(),
        }
    }
}

impl AuditRecord {
    pub fn to_proto(&self) -> v1::AuditRecord {
        v1::AuditRecord {
            seq: self.seq,
            time_ms: self.time_ms,
            actor_kind: self.actor_kind.to_proto() as i32,
            actor: self.actor.clone(),
            command: self.command.clone(),
            object_kind: self.object_kind.clone(),
            object: self.object.clone(),
            sv_trid: self.sv_trid.clone(),
            cl_trid: self.cl_trid.clone(),
            changes: self.changes.clone(),
            via: self.via.clone(),
        }
    }
}

/// The prefix of an audit index key: the indexed value and 0x00.
pub(crate) fn audit_index_prefix(value: &str) -> Vec<u8> {
    let mut key = value.as_bytes().to_vec();
    key.push(0);
    key
}

/// Inverted time, so that newer records sort first.
pub(crate) fn inverted_time(time_ms: i64) -> [u8; 8] {
    (u64::MAX - ((time_ms as u64) ^ (1 << 63))).to_be_bytes()
}

/// An audit index key: prefix, inverted time, inverted sequence.
pub(crate) fn audit_index_key(value: &str, time_ms: i64, seq: u64) -> Vec<u8> {
    let mut key = audit_index_prefix(value);
    key.extend_from_slice(&inverted_time(time_ms));
    key.extend_from_slice(&(u64::MAX - seq).to_be_bytes());
    key
}

/// The object index value of an object: `kind:name`.
pub(crate) fn audit_object(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}
