//! The context one command (or one lifecycle event) runs in, and the
//! primitive writes every command family builds on.
//!
//! [`Exec`] wraps the entry's [`Txn`] with registry time, the checked actor
//! and the transaction ids of the response. Reads through it see the
//! command's own writes; records are written whole under their own key;
//! counters and id sequences live in [`Cf::Meta`]. Audit records are
//! collected here and written by [`super::audit::flush`] only when the
//! command succeeds.
//!
//! This module sits just above the foundation (records, names, errors,
//! the engine): the shared effects and the command families use it, and it
//! uses none of them.

use kauri_proto::v1::TxInfo;

use super::engine::{Cf, KeyValue, StateRead, StorageFault, Txn};
use super::error::RegistryError;
use super::model::{self, ActorKind, Record};

/// The actor lifecycle events are recorded under.
pub const SYSTEM_ACTOR: &str = "registry";

/// One audit entry waiting for the command to succeed: object kind, object,
/// changes.
pub(crate) type PendingAudit = (&'static str, String, Vec<String>);

/// The context a command runs in: the transaction, registry time, the
/// (envelope-checked) actor and the transaction info for the response.
pub(crate) struct Exec<'t, 'a> {
    txn: &'t mut Txn<'a>,
    /// Registry time of this entry.
    pub now_ms: i64,
    /// `meta.actor`: a registrar id for registrar commands, a staff member
    /// for staff commands, [`SYSTEM_ACTOR`] for lifecycle events.
    pub actor: String,
    /// Who the actor is.
    pub actor_kind: ActorKind,
    /// The gateway that delivered the command for the registrar within a
    /// session (the proposal's `via`); empty for direct calls and ticks.
    pub via: String,
    /// The command (or lifecycle event) name audit records carry.
    pub command: &'static str,
    /// What every response of this entry carries.
    pub tx: TxInfo,
    /// The tick's proposer-drawn seed for auth info the registry makes up
    /// (lifecycle events only; empty otherwise and in older entries).
    pub auth_info_seed: Vec<u8>,
    /// Audit records of this command, written when it succeeds.
    audits: Vec<PendingAudit>,
}

impl<'t, 'a> Exec<'t, 'a> {
    /// The context of a command from `actor` (already envelope-checked).
    pub fn new(
        txn: &'t mut Txn<'a>,
        now_ms: i64,
        actor: (&str, ActorKind),
        via: &str,
        command: &'static str,
        tx: TxInfo,
    ) -> Self {
        Exec {
            txn,
            now_ms,
            actor: actor.0.to_string(),
            actor_kind: actor.1,
            via: via.to_string(),
            command,
            tx,
            auth_info_seed: Vec::new(),
            audits: Vec::new(),
        }
    }

    /// The context of a lifecycle event the registry itself runs
    /// ([`SYSTEM_ACTOR`], no client transaction id).
    pub fn system(
        txn: &'t mut Txn<'a>,
        now_ms: i64,
        event: &'static str,
        sv_trid: String,
        log_index: u64,
    ) -> Self {
        let tx = TxInfo {
            sv_trid,
            cl_trid: String::new(),
            log_index,
            replayed: false,
        };
        Exec::new(
            txn,
            now_ms,
            (SYSTEM_ACTOR, ActorKind::System),
            "",
            event,
            tx,
        )
    }

    /// New auth info for `object` when a lifecycle event changes hands
    /// (derived from the tick's seed); `None` for entries without a seed,
    /// which keep the old value as they always did.
    pub fn made_auth_info(&self, object: &str) -> Option<String> {
        (!self.auth_info_seed.is_empty())
            .then(|| super::fields::auth_info_from_seed(&self.auth_info_seed, object))
    }
}

/// Reads see this command's own writes.
impl StateRead for Exec<'_, '_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault> {
        self.txn.get(cf, key)
    }

    fn read_with(
        &self,
        cf: Cf,
        key: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), StorageFault> {
        self.txn.read_with(cf, key, f)
    }

    fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageFault> {
        self.txn.scan_prefix(cf, prefix, after, limit)
    }
}

impl Exec<'_, '_> {
    /// This context as the registry's read trait.
    pub fn state(&self) -> &dyn StateRead {
        self
    }

    /// The record of type `T` under `key`, seeing this command's writes.
    pub fn load<T: Record>(&self, key: &[u8]) -> Result<Option<T>, StorageFault> {
        self.state().load(key)
    }

    /// Whether a record of type `T` is stored under `key`.
    pub fn exists<T: Record>(&self, key: &[u8]) -> Result<bool, StorageFault> {
        self.state().exists::<T>(key)
    }

    /// Writes `record` under its key.
    pub fn save<T: Record>(&mut self, record: &T) {
        model::save(self.txn, record);
    }

    /// Deletes the record of type `T` under `key`.
    pub fn delete<T: Record>(&mut self, key: &[u8]) {
        self.txn.delete(T::CF, key);
    }

    /// The next value of the counter under `counter`, counting from 1.
    pub fn next_seq(&mut self, counter: &[u8]) -> Result<u64, RegistryError> {
        let n = model::read_counter(self.state(), counter)?
            .checked_add(1)
            .ok_or_else(|| StorageFault(format!("meta counter {counter:?} overflowed")))?;
        self.txn.put(Cf::Meta, counter, n.to_be_bytes().to_vec());
        Ok(n)
    }

    /// The next repository object id from the counter under `counter`:
    /// `{prefix}{n}-KAURI`, n counting from 1.
    pub fn next_roid(&mut self, counter: &[u8], prefix: char) -> Result<String, RegistryError> {
        let n = self.next_seq(counter)?;
        Ok(format!("{prefix}{n}-KAURI"))
    }

    /// Records a change of one object for the audit trail; written only if
    /// the command succeeds.
    pub fn audit(&mut self, object_kind: &'static str, object: &str, changes: Vec<String>) {
        self.audits.push((object_kind, object.to_string(), changes));
    }

    /// The audit records collected so far, to be written.
    pub fn take_audits(&mut self) -> Vec<PendingAudit> {
        std::mem::take(&mut self.audits)
    }

    /// Up to `limit` entries under `prefix` in `cf`, seeing this entry's
    /// own writes.
    pub fn scan(&self, cf: Cf, prefix: &[u8], limit: usize) -> Result<Vec<KeyValue>, StorageFault> {
        self.txn.scan_prefix(cf, prefix, None, limit)
    }

    /// Writes a raw value (index entries without a record type).
    pub fn put_raw(&mut self, cf: Cf, key: &[u8], value: Vec<u8>) {
        self.txn.put(cf, key, value);
    }

    /// Deletes a raw value (index entries without a record type).
    pub fn delete_raw(&mut self, cf: Cf, key: &[u8]) {
        self.txn.delete(cf, key);
    }

    /// Adds `delta` to the counter under `counter`; a counter that would go
    /// below zero or overflow is a fault of the registry's own bookkeeping.
    pub fn adjust_counter(&mut self, counter: &[u8], delta: i64) -> Result<(), RegistryError> {
        let n = model::read_counter(self.state(), counter)?;
        let n = n
            .checked_add_signed(delta)
            .ok_or_else(|| StorageFault(format!("meta counter {counter:?} out of range")))?;
        self.txn.put(Cf::Meta, counter, n.to_be_bytes().to_vec());
        Ok(())
    }
}
