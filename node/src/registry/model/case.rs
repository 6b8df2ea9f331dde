//! AUP complaint cases against domains.

use super::*;

/// The state of an AUP case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CaseState {
    Open,
    Escalated,
    Closed,
}

impl CaseState {
    pub const fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Escalated => "escalated",
            CaseState::Closed => "closed",
        }
    }
}

/// One step in a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CaseEvent {
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub note: String,
    pub sv_trid: String,
}

/// An AUP complaint case on a domain, keyed by big-endian id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CaseRecord {
    pub id: u64,
    pub domain: String,
    pub reason: String,
    pub reference: String,
    pub state: CaseState,
    pub suspended: bool,
    pub opened_by: String,
    pub opened_ms: i64,
    pub history: Vec<CaseEvent>,
}

impl Record for CaseRecord {
    const CF: Cf = Cf::Cases;
    fn key(&self) -> Vec<u8> {
        self.id.to_be_bytes().to_vec()
    }
}

impl CaseRecord {
    pub fn to_proto(&self) -> v1::AupCase {
        v1::AupCase {
            id: self.id,
            domain: self.domain.clone(),
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            state: self.state.as_str().into(),
            suspended: self.suspended,
            opened_by: self.opened_by.clone(),
            opened_ms: self.opened_ms,
            history: self
                .history
                .iter()
                .map(|e| v1::CaseEvent {
                    time_ms: e.time_ms,
                    actor: e.actor.clone(),
                    action: e.action.clone(),
                    note: e.note.clone(),
                    sv_trid: e.sv_trid.clone(),
                })
                .collect(),
        }
    }
}
