//! Registrar accounts and their ledger entries.

use super::*;

/// The key of a ledger entry: registrar id, 0x00, big-endian sequence, so a
/// registrar's entries are contiguous and in order.
pub(crate) fn ledger_key(registrar: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(registrar.len() + 9);
    key.extend_from_slice(registrar.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// A registrar's account. Invariant:
/// `total_deposits == balance + total_charges - total_refunds`, refunds never
/// exceed charges, and no charge takes the balance below `-credit_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RegistrarRecord {
    pub id: String,
    pub name: String,
    /// argon2id PHC string made by the proposer.
    pub password_hash: String,
    pub currency: String,
    pub balance_minor_units: i64,
    pub total_deposits_minor_units: i64,
    pub total_charges_minor_units: i64,
    pub total_refunds_minor_units: i64,
    /// The balance may go down to minus this.
    pub credit_limit_minor_units: i64,
    /// A low-balance poll message is queued when the balance drops below
    /// this (0: never); once per crossing.
    pub low_balance_threshold_minor_units: i64,
    pub low_balance_notified: bool,
    /// Number of ledger entries; the newest has this sequence number.
    pub ledger_len: u64,
    /// Last poll message id issued to this registrar.
    pub poll_seq: u64,
    /// Poll messages waiting.
    pub poll_count: u64,
    pub created_by: String,
    pub created_ms: i64,
}

impl Record for RegistrarRecord {
    const CF: Cf = Cf::Registrars;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

impl RegistrarRecord {
    /// Whether the account invariant holds.
    pub fn is_balanced(&self) -> bool {
        self.total_charges_minor_units >= 0
            && (0..=self.total_charges_minor_units).contains(&self.total_refunds_minor_units)
            && self
                .balance_minor_units
                .checked_add(self.total_charges_minor_units)
                .and_then(|v| v.checked_sub(self.total_refunds_minor_units))
                == Some(self.total_deposits_minor_units)
    }

    /// What the account can still spend: balance plus credit limit.
    pub fn available_minor_units(&self) -> i64 {
        self.balance_minor_units
            .saturating_add(self.credit_limit_minor_units)
    }

    pub fn to_proto(&self, ledger: Vec<v1::LedgerEntry>) -> v1::Registrar {
        v1::Registrar {
            id: self.id.clone(),
            name: self.name.clone(),
            balance: Some(v1::Money {
                minor_units: self.balance_minor_units,
                currency: self.currency.clone(),
            }),
            created_ms: self.created_ms,
            total_deposits_minor_units: self.total_deposits_minor_units,
            total_charges_minor_units: self.total_charges_minor_units,
            ledger,
            credit_limit_minor_units: self.credit_limit_minor_units,
            total_refunds_minor_units: self.total_refunds_minor_units,
            low_balance_threshold_minor_units: self.low_balance_threshold_minor_units,
            poll_count: self.poll_count,
        }
    }
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LedgerKind {
    Deposit,
    Create,
    Renew,
    AutoRenew,
    Transfer,
    Restore,
    Refund,
}

impl LedgerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Deposit => "deposit",
            LedgerKind::Create => "create",
            LedgerKind::Renew => "renew",
            LedgerKind::AutoRenew => "auto_renew",
            LedgerKind::Transfer => "transfer",
            LedgerKind::Restore => "restore",
            LedgerKind::Refund => "refund",
        }
    }

    /// Whether entries of this kind are charges (negative amounts).
    pub const fn is_charge(self) -> bool {
        !matches!(self, LedgerKind::Deposit | LedgerKind::Refund)
    }
}

/// One movement on a registrar's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LedgerRecord {
    pub registrar: String,
    pub seq: u64,
    pub time_ms: i64,
    pub kind: LedgerKind,
    /// Positive for deposits and refunds, negative (or zero) for charges.
    pub amount_minor_units: i64,
    pub balance_after_minor_units: i64,
    pub object: String,
    pub sv_trid: String,
    pub reference: String,
    /// Refunds: the transaction of the refunded charge.
    pub linked_sv_trid: String,
}

impl Record for LedgerRecord {
    const CF: Cf = Cf::Ledger;
    fn key(&self) -> Vec<u8> {
        ledger_key(&self.registrar, self.seq)
    }
}

impl LedgerRecord {
    pub fn to_proto(&self) -> v1::LedgerEntry {
        v1::LedgerEntry {
            seq: self.seq,
            time_ms: self.time_ms,
            kind: self.kind.as_str().into(),
            amount_minor_units: self.amount_minor_units,
            balance_after_minor_units: self.balance_after_minor_units,
            object: self.object.clone(),
            sv_trid: self.sv_trid.clone(),
            reference: self.reference.clone(),
            linked_sv_trid: self.linked_sv_trid.clone(),
        }
    }
}
