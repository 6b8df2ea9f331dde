//! Applying one replicated proposal: registry time, the request envelope,
//! exactly-once, and dispatch to the command families.
//!
//! The order for every entry is fixed, because replicas must agree on it:
//! 1. advance registry time, `now = max(previous now, proposal.time_ms)`,
//!    and keep it even if the command is rejected;
//! 2. check the envelope (command present, `meta.actor`, `meta.cl_trid`,
//!    `request_digest`); a malformed envelope is answered but not remembered,
//!    since it has no usable idempotency key;
//! 3. look up the idempotency key (actor, clTRID): the same digest replays the
//!    stored result with `replayed = true` and changes nothing else; another
//!    digest is `IDEMPOTENCY_CONFLICT` and the stored record stays;
//! 4. run the command in its own overlay; a rejection rolls its writes back;
//! 5. remember the outcome, success or rejection, under the key.

use kauri_proto::v1::{self, command, command_result::Outcome, CommandResult, Proposal, TxInfo};
use prost::Message;

use super::engine::{Cf, StateRead, StorageFault, Txn};
use super::error::RegistryError;
use super::model::{
    self, idempotency_key, meta, ActorKind, EventRecord, Get, IdempotencyRecord, ReadOnly, Record,
};
use super::{
    audit, case, contact, domain, fields, host, lifecycle, poll, registrar, session, tld, transfer,
};

/// Shortest client transaction id.
pub const MIN_CL_TRID_CHARS: usize = 3;
/// Longest client transaction id (EPP clTRID).
pub const MAX_CL_TRID_CHARS: usize = 64;
/// Longest actor (registrar id or staff name).
pub const MAX_ACTOR_CHARS: usize = 64;
/// Longest request digest the registry stores (SHA-256 is 32 octets).
pub const MAX_REQUEST_DIGEST_OCTETS: usize = 64;
/// Most lifecycle events one tick runs; the rest run on the next tick, so a
/// tick's cost is bounded whatever is due.
pub const MAX_EVENTS_PER_TICK: usize = 256;
/// How long the response to a request is remembered under its idempotency
/// key (actor, clTRID). A retry within this window gets the original
/// response; after it, the key may be used afresh. Registrars retry within
/// minutes; a week covers a gateway outage with margin.
pub const IDEMPOTENCY_RETENTION_MS: i64 = 7 * 86_400_000;
/// Most expired idempotency records one tick drops (the rest next tick).
pub const MAX_PRUNED_PER_TICK: usize = 1024;
const _: () = assert!(MIN_CL_TRID_CHARS >= 1 && MIN_CL_TRID_CHARS <= MAX_CL_TRID_CHARS);
const _: () = assert!(MAX_EVENTS_PER_TICK > 0 && MAX_PRUNED_PER_TICK > 0);
// A retried request must still find its record when a session that was
// open for it expired: records outlive the longest session.
const _: () = assert!(IDEMPOTENCY_RETENTION_MS >= super::session::MAX_SESSION_LIFETIME_MS);
/// The actor lifecycle events are recorded under.
pub const SYSTEM_ACTOR: &str = "registry";

/// Where in the Raft log the applied entry sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyContext {
    /// Log index of the entry; the server transaction id is derived from it.
    pub log_index: u64,
    /// Term of the entry.
    pub log_term: u64,
}

impl ApplyContext {
    /// The server transaction id of this entry, `kauri-{log_index}`.
    pub fn sv_trid(&self) -> String {
        format!("kauri-{}", self.log_index)
    }
}

/// Applies one replicated proposal.
///
/// Returns `Err` only for storage faults; every registry rejection is an
/// `Ok(CommandResult)` whose outcome is a `CommandError`. The writes of a
/// rejected command are rolled back, but the new registry time and (for a
/// well-formed envelope) the idempotency record are committed to `txn`'s
/// batch. After a fault the caller must not write the batch.
pub fn apply_proposal<S: StateRead + ?Sized>(
    txn: &mut Txn<'_, S>,
    ctx: &ApplyContext,
    proposal: &Proposal,
) -> Result<CommandResult, StorageFault> {
    // Whatever a previous caller left uncommitted is not part of this entry.
    txn.rollback_command();

    let now_ms = model::read_now_ms(&*txn)?.max(proposal.time_ms);
    txn.put(Cf::Meta, meta::NOW_MS, now_ms.to_be_bytes().to_vec());
    txn.commit_command();

    let kind = proposal.command.as_ref().and_then(|c| c.kind.as_ref());
    if let Some(command::Kind::Tick(_)) = kind {
        return tick(txn, ctx, now_ms);
    }
    let given_meta = kind.and_then(request_meta);
    let tx = TxInfo {
        sv_trid: ctx.sv_trid(),
        cl_trid: given_meta.map(|m| m.cl_trid.clone()).unwrap_or_default(),
        log_index: ctx.log_index,
        replayed: false,
    };

    let (kind, meta) = match check_envelope(proposal, kind, given_meta) {
        Ok(checked) => checked,
        Err(e) => return Ok(error_result(&e, tx)),
    };

    let key = idempotency_key(&meta.actor, &meta.cl_trid);
    if let Some(seen) = txn.load::<IdempotencyRecord>(&key)? {
        if seen.request_digest == proposal.request_digest {
            return replay(&seen);
        }
        let conflict = RegistryError::IdempotencyConflict {
            field: "meta.cl_trid".into(),
            actor: meta.actor.clone(),
            cl_trid: meta.cl_trid.clone(),
        };
        return Ok(error_result(&conflict, tx));
    }

    let writes_before = txn.pending_writes();
    let mut cx = Exec {
        txn: &mut *txn,
        now_ms,
        actor: meta.actor.clone(),
        actor_kind: actor_kind(kind),
        via: proposal.via.clone(),
        command: command_name(kind),
        tx: tx.clone(),
        audits: Vec::new(),
    };
    let outcome = match dispatch(&mut cx, kind).and_then(|o| {
        cx.flush_audits()?;
        Ok(o)
    }) {
        Ok(outcome) => {
            txn.commit_command();
            outcome
        }
        Err(RegistryError::Storage(fault)) => {
            txn.rollback_command();
            return Err(fault);
        }
        Err(rejection) => {
            txn.rollback_command();
            // A rejected command changes nothing: none of its writes stay.
            assert_eq!(txn.command_writes(), 0, "writes left after a rollback");
            assert_eq!(
                txn.pending_writes(),
                writes_before,
                "a rejected {} left writes in the batch",
                command_name(kind)
            );
            Outcome::Error(command_error(&rejection, tx))
        }
    };
    let result = CommandResult {
        outcome: Some(outcome),
    };
    let record = IdempotencyRecord {
        actor: meta.actor.clone(),
        cl_trid: meta.cl_trid.clone(),
        request_digest: proposal.request_digest.clone(),
        result: result.encode_to_vec(),
        log_index: ctx.log_index,
        time_ms: now_ms,
    };
    txn.put(
        Cf::IdempotencyExpiry,
        &idempotency_expiry_key(
            now_ms.saturating_add(IDEMPOTENCY_RETENTION_MS),
            ctx.log_index,
        ),
        record.key(),
    );
    model::save(txn, &record);
    txn.commit_command();
    Ok(result)
}

/// Registry time (ms since the epoch) after the last applied entry; 0 on an
/// empty state.
pub fn registry_now_ms<S: StateRead + ?Sized>(state: &S) -> Result<i64, StorageFault> {
    model::read_now_ms(&ReadOnly(state))
}

/// The context a command runs in: the transaction, registry time, the
/// (envelope-checked) actor and the transaction info for the response.
pub(crate) struct Exec<'t, 'a, S: StateRead + ?Sized> {
    txn: &'t mut Txn<'a, S>,
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
    /// Audit records of this command: (object kind, object, changes),
    /// written when it succeeds.
    audits: Vec<(&'static str, String, Vec<String>)>,
}

/// Reads see this entry's own writes.
impl<S: StateRead + ?Sized> Get for Exec<'_, '_, S> {
    fn read_with<R>(
        &self,
        cf: Cf,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, StorageFault> {
        self.txn.read_with(cf, key, f)
    }
}

impl<S: StateRead + ?Sized> Exec<'_, '_, S> {
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
        let n = model::read_counter(&*self.txn, counter)?
            .checked_add(1)
            .ok_or_else(|| StorageFault(format!("meta counter {counter:?} overflowed")))?;
        self.txn.put(Cf::Meta, counter, n.to_be_bytes().to_vec());
        Ok(n)
    }

    /// The next repository object id from the counter under `counter`:
    /// `{prefix}{n}-KAURI`, n counting from 1.
    pub fn next_roid(&mut self, counter: &[u8], prefix: char) -> Result<String, RegistryError> {
        let n = model::read_counter(&*self.txn, counter)?
            .checked_add(1)
            .ok_or_else(|| StorageFault(format!("meta counter {counter:?} overflowed")))?;
        self.txn.put(Cf::Meta, counter, n.to_be_bytes().to_vec());
        Ok(format!("{prefix}{n}-KAURI"))
    }

    /// Records a change of one object for the audit trail; written only if
    /// the command succeeds.
    pub fn audit(&mut self, object_kind: &'static str, object: &str, changes: Vec<String>) {
        self.audits.push((object_kind, object.to_string(), changes));
    }

    /// Writes the audit records collected so far.
    pub fn flush_audits(&mut self) -> Result<(), RegistryError> {
        for (kind, object, changes) in std::mem::take(&mut self.audits) {
            audit::write(self, kind, &object, changes)?;
        }
        Ok(())
    }

    /// Up to `limit` entries under `prefix` in `cf`, seeing this entry's
    /// own writes.
    pub fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<super::engine::KeyValue>, StorageFault> {
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

    /// Adds `delta` to the counter under `counter`.
    pub fn adjust_counter(&mut self, counter: &[u8], delta: i64) -> Result<(), RegistryError> {
        let n = model::read_counter(&*self.txn, counter)?;
        let n = n
            .checked_add_signed(delta)
            .ok_or_else(|| StorageFault(format!("meta counter {counter:?} out of range")))?;
        self.txn.put(Cf::Meta, counter, n.to_be_bytes().to_vec());
        Ok(())
    }
}

fn dispatch<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    kind: &command::Kind,
) -> Result<Outcome, RegistryError> {
    use command::Kind;
    match kind {
        Kind::Tick(_) => Err(RegistryError::invalid(
            "command",
            "a tick is applied before dispatch",
        )),
        // Staff commands: the actor is a staff member or tool, authenticated
        // by the API layer; this slice has no staff registry to check.
        Kind::CreateTld(req) => tld::create(cx, req),
        Kind::UpdateTld(req) => tld::update(cx, req),
        Kind::CreateRegistrar(req) => registrar::create(cx, req),
        Kind::DepositFunds(req) => registrar::deposit(cx, req),
        Kind::UpdateRegistrar(req) => registrar::update(cx, req),
        Kind::SetServerStatus(req) => case::set_server_status(cx, req),
        Kind::SetHostServerStatus(req) => host::set_server_status(cx, req),
        Kind::SetContactServerStatus(req) => contact::set_server_status(cx, req),
        Kind::OpenCase(req) => case::open(cx, req),
        Kind::UpdateCase(req) => case::update(cx, req),
        // Registrar commands: the actor must be a registrar.
        Kind::CreateDomain(req) => domain::create(cx, registrar::authenticate(cx)?, req),
        Kind::UpdateDomain(req) => domain::update(cx, registrar::authenticate(cx)?, req),
        Kind::RenewDomain(req) => domain::renew(cx, registrar::authenticate(cx)?, req),
        Kind::DeleteDomain(req) => domain::delete(cx, registrar::authenticate(cx)?, req),
        Kind::CreateContact(req) => contact::create(cx, registrar::authenticate(cx)?, req),
        Kind::UpdateContact(req) => contact::update(cx, registrar::authenticate(cx)?, req),
        Kind::DeleteContact(req) => contact::delete(cx, registrar::authenticate(cx)?, req),
        Kind::CreateHost(req) => host::create(cx, registrar::authenticate(cx)?, req),
        Kind::UpdateHost(req) => host::update(cx, registrar::authenticate(cx)?, req),
        Kind::DeleteHost(req) => host::delete(cx, registrar::authenticate(cx)?, req),
        Kind::TransferDomain(req) => transfer::transfer(cx, registrar::authenticate(cx)?, req),
        Kind::RestoreDomain(req) => lifecycle::restore(cx, registrar::authenticate(cx)?, req),
        Kind::AckPoll(req) => poll::ack(cx, registrar::authenticate(cx)?, req),
        // Session commands: the registrar logging in through a gateway (the
        // proposer checked its password) and logging out.
        Kind::OpenSession(req) => session::open(cx, registrar::authenticate(cx)?, req),
        Kind::CloseSession(req) => session::close(cx, req),
    }
}

/// Who acts in a command: staff for administrative commands, otherwise
/// the registrar.
fn actor_kind(kind: &command::Kind) -> ActorKind {
    use command::Kind;
    match kind {
        Kind::CreateTld(_)
        | Kind::UpdateTld(_)
        | Kind::CreateRegistrar(_)
        | Kind::DepositFunds(_)
        | Kind::UpdateRegistrar(_)
        | Kind::SetServerStatus(_)
        | Kind::SetHostServerStatus(_)
        | Kind::SetContactServerStatus(_)
        | Kind::OpenCase(_)
        | Kind::UpdateCase(_) => ActorKind::Staff,
        Kind::Tick(_) => ActorKind::System,
        _ => ActorKind::Registrar,
    }
}

/// The gRPC method name of a command, as audit records show it.
pub fn command_name(kind: &command::Kind) -> &'static str {
    use command::Kind;
    match kind {
        Kind::CreateTld(_) => "CreateTld",
        Kind::UpdateTld(_) => "UpdateTld",
        Kind::CreateRegistrar(_) => "CreateRegistrar",
        Kind::DepositFunds(_) => "DepositFunds",
        Kind::CreateDomain(_) => "CreateDomain",
        Kind::UpdateDomain(_) => "UpdateDomain",
        Kind::RenewDomain(_) => "RenewDomain",
        Kind::DeleteDomain(_) => "DeleteDomain",
        Kind::CreateContact(_) => "CreateContact",
        Kind::UpdateContact(_) => "UpdateContact",
        Kind::DeleteContact(_) => "DeleteContact",
        Kind::CreateHost(_) => "CreateHost",
        Kind::UpdateHost(_) => "UpdateHost",
        Kind::DeleteHost(_) => "DeleteHost",
        Kind::Tick(_) => "Tick",
        Kind::TransferDomain(_) => "TransferDomain",
        Kind::RestoreDomain(_) => "RestoreDomain",
        Kind::AckPoll(_) => "AckPoll",
        Kind::UpdateRegistrar(_) => "UpdateRegistrar",
        Kind::SetServerStatus(_) => "SetServerStatus",
        Kind::SetHostServerStatus(_) => "SetHostServerStatus",
        Kind::SetContactServerStatus(_) => "SetContactServerStatus",
        Kind::OpenCase(_) => "OpenCase",
        Kind::UpdateCase(_) => "UpdateCase",
        Kind::OpenSession(_) => "OpenSession",
        Kind::CloseSession(_) => "CloseSession",
    }
}

/// The request meta of any command.
pub fn request_meta(kind: &command::Kind) -> Option<&v1::RequestMeta> {
    use command::Kind;
    match kind {
        Kind::CreateTld(r) => r.meta.as_ref(),
        Kind::UpdateTld(r) => r.meta.as_ref(),
        Kind::CreateRegistrar(r) => r.meta.as_ref(),
        Kind::DepositFunds(r) => r.meta.as_ref(),
        Kind::CreateDomain(r) => r.meta.as_ref(),
        Kind::UpdateDomain(r) => r.meta.as_ref(),
        Kind::RenewDomain(r) => r.meta.as_ref(),
        Kind::DeleteDomain(r) => r.meta.as_ref(),
        Kind::CreateContact(r) => r.meta.as_ref(),
        Kind::UpdateContact(r) => r.meta.as_ref(),
        Kind::DeleteContact(r) => r.meta.as_ref(),
        Kind::CreateHost(r) => r.meta.as_ref(),
        Kind::UpdateHost(r) => r.meta.as_ref(),
        Kind::DeleteHost(r) => r.meta.as_ref(),
        Kind::TransferDomain(r) => r.meta.as_ref(),
        Kind::RestoreDomain(r) => r.meta.as_ref(),
        Kind::AckPoll(r) => r.meta.as_ref(),
        Kind::UpdateRegistrar(r) => r.meta.as_ref(),
        Kind::SetServerStatus(r) => r.meta.as_ref(),
        Kind::SetHostServerStatus(r) => r.meta.as_ref(),
        Kind::SetContactServerStatus(r) => r.meta.as_ref(),
        Kind::OpenCase(r) => r.meta.as_ref(),
        Kind::UpdateCase(r) => r.meta.as_ref(),
        Kind::OpenSession(r) => r.meta.as_ref(),
        Kind::CloseSession(r) => r.meta.as_ref(),
        Kind::Tick(_) => None,
    }
}

/// A clock tick: registry time has already advanced; runs the lifecycle
/// events due by `now_ms`, oldest first (by due time, then event id), at
/// most [`MAX_EVENTS_PER_TICK`] of them. Each event runs as its own command:
/// one the registry refuses (e.g. a state it no longer applies to) is
/// dropped and recorded in the audit trail, and changes nothing else.
fn tick<S: StateRead + ?Sized>(
    txn: &mut Txn<'_, S>,
    ctx: &ApplyContext,
    now_ms: i64,
) -> Result<CommandResult, StorageFault> {
    txn.commit_command();
    let due = txn.scan_prefix(Cf::DueEvents, &[], None, MAX_EVENTS_PER_TICK + 1)?;
    let mut events = 0u64;
    let mut more_due = false;
    for (i, (key, value)) in due.iter().enumerate() {
        let event: EventRecord = model::decode(Cf::DueEvents, key, value)?;
        if event.due_ms > now_ms {
            break;
        }
        if i == MAX_EVENTS_PER_TICK {
            more_due = true;
            break;
        }
        let mut cx = Exec {
            txn: &mut *txn,
            now_ms,
            actor: SYSTEM_ACTOR.into(),
            actor_kind: ActorKind::System,
            via: String::new(),
            command: event.kind.as_str(),
            tx: TxInfo {
                sv_trid: ctx.sv_trid(),
                cl_trid: String::new(),
                log_index: ctx.log_index,
                replayed: false,
            },
            audits: Vec::new(),
        };
        cx.delete::<EventRecord>(key);
        let ran = lifecycle::run_event(&mut cx, &event)
            .and_then(|()| cx.adjust_counter(&meta::events_run(event.kind), 1))
            .and_then(|()| cx.flush_audits());
        match ran {
            Ok(()) => {}
            Err(RegistryError::Storage(fault)) => {
                txn.rollback_command();
                return Err(fault);
            }
            Err(refused) => {
                txn.rollback_command();
                let mut cx = Exec {
                    txn: &mut *txn,
                    now_ms,
                    actor: SYSTEM_ACTOR.into(),
                    actor_kind: ActorKind::System,
                    via: String::new(),
                    command: event.kind.as_str(),
                    tx: TxInfo {
                        sv_trid: ctx.sv_trid(),
                        cl_trid: String::new(),
                        log_index: ctx.log_index,
                        replayed: false,
                    },
                    audits: Vec::new(),
                };
                cx.delete::<EventRecord>(key);
                let forgot = lifecycle::forget_event(&mut cx, &event);
                cx.audit(
                    "domain",
                    &event.domain,
                    vec![format!("event {} not run: {refused}", event.kind.as_str())],
                );
                match forgot.and_then(|()| cx.flush_audits()) {
                    Ok(()) => {}
                    Err(RegistryError::Storage(fault)) => return Err(fault),
                    Err(e) => return Err(StorageFault(format!("audit write refused: {e}"))),
                }
            }
        }
        txn.commit_command();
        events += 1;
    }
    let idempotency_pruned = prune_idempotency(txn, now_ms)?;
    let sessions_pruned = session::prune_expired(txn, now_ms)?;
    Ok(CommandResult {
        outcome: Some(Outcome::Tick(v1::TickResult {
            now_ms,
            events,
            more_due,
            idempotency_pruned,
            sessions_pruned,
        })),
    })
}

/// Key of an idempotency record's expiry: big-endian time (non-negative
/// registry times sort correctly) and log index.
fn idempotency_expiry_key(expires_ms: i64, log_index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&expires_ms.max(0).to_be_bytes());
    key.extend_from_slice(&log_index.to_be_bytes());
    key
}

/// Drops idempotency records whose retention window ended by `now_ms`, at
/// most [`MAX_PRUNED_PER_TICK`] of them, oldest first.
fn prune_idempotency<S: StateRead + ?Sized>(
    txn: &mut Txn<'_, S>,
    now_ms: i64,
) -> Result<u64, StorageFault> {
    let expired = txn.scan_prefix(Cf::IdempotencyExpiry, &[], None, MAX_PRUNED_PER_TICK)?;
    let mut pruned = 0;
    for (key, record_key) in expired {
        let expires_ms = key
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .ok_or_else(|| {
                StorageFault(format!("idempotency expiry key {key:?} is not 16 bytes"))
            })?;
        if expires_ms > now_ms {
            break;
        }
        txn.delete(Cf::Idempotency, &record_key);
        txn.delete(Cf::IdempotencyExpiry, &key);
        pruned += 1;
    }
    txn.commit_command();
    Ok(pruned)
}

/// Checks what every command needs before it can be remembered: a command,
/// its meta, a usable idempotency key and a request digest.
fn check_envelope<'p>(
    proposal: &'p Proposal,
    kind: Option<&'p command::Kind>,
    meta: Option<&'p v1::RequestMeta>,
) -> Result<(&'p command::Kind, &'p v1::RequestMeta), RegistryError> {
    let kind = kind.ok_or_else(|| RegistryError::invalid("command", "is missing"))?;
    let meta = check_request_meta(meta)?;
    let via = &proposal.via;
    if via.chars().count() > MAX_ACTOR_CHARS || via.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            "via",
            format!(
                "{via:?} is not a gateway name: at most {MAX_ACTOR_CHARS} printable characters"
            ),
        ));
    }

    let digest = &proposal.request_digest;
    if digest.is_empty() || digest.len() > MAX_REQUEST_DIGEST_OCTETS {
        return Err(RegistryError::invalid(
            "request_digest",
            format!(
                "must be 1 to {MAX_REQUEST_DIGEST_OCTETS} octets, got {}",
                digest.len()
            ),
        ));
    }
    Ok((kind, meta))
}

/// Checks a request's idempotency key: an actor and a client transaction id
/// of the allowed shape. Apply checks it; the API layer checks it too, so a
/// malformed key is refused before it costs a log entry.
pub fn check_request_meta(
    meta: Option<&v1::RequestMeta>,
) -> Result<&v1::RequestMeta, RegistryError> {
    let meta = meta.ok_or_else(|| RegistryError::invalid("meta", "is missing"))?;

    let actor_chars = meta.actor.chars().count();
    if meta.actor.trim().is_empty()
        || actor_chars > MAX_ACTOR_CHARS
        || meta.actor.chars().any(char::is_control)
    {
        return Err(RegistryError::invalid(
            "meta.actor",
            format!(
                "{:?} is not an actor: 1 to {MAX_ACTOR_CHARS} printable characters",
                fields::clip(&meta.actor)
            ),
        ));
    }

    let cl_trid = &meta.cl_trid;
    let chars = cl_trid.chars().count();
    if !(MIN_CL_TRID_CHARS..=MAX_CL_TRID_CHARS).contains(&chars)
        || cl_trid.chars().any(char::is_control)
        || cl_trid.trim() != cl_trid
    {
        return Err(RegistryError::invalid(
            "meta.cl_trid",
            format!(
                "{:?} is not a client transaction id: {MIN_CL_TRID_CHARS} to \
                 {MAX_CL_TRID_CHARS} printable characters without surrounding spaces",
                fields::clip(cl_trid)
            ),
        ));
    }
    Ok(meta)
}

/// Whether `result` answers a repeated request from the stored result of
/// the first (what `kauri_idempotency_replays_total` counts).
pub fn was_replayed(result: &CommandResult) -> bool {
    tx_info(result).is_some_and(|tx| tx.replayed)
}

/// The transaction ids of a command's result (none for a tick).
pub fn tx_info(result: &CommandResult) -> Option<&TxInfo> {
    let tx = match &result.outcome {
        Some(Outcome::Domain(r)) => &r.tx,
        Some(Outcome::Contact(r)) => &r.tx,
        Some(Outcome::Host(r)) => &r.tx,
        Some(Outcome::Deleted(r)) => &r.tx,
        Some(Outcome::Tld(r)) => &r.tx,
        Some(Outcome::Registrar(r)) => &r.tx,
        Some(Outcome::Error(r)) => &r.tx,
        Some(Outcome::Transfer(r)) => &r.tx,
        Some(Outcome::Poll(r)) => &r.tx,
        Some(Outcome::AupCase(r)) => &r.tx,
        Some(Outcome::Session(r)) => &r.tx,
        Some(Outcome::Tick(_)) | None => return None,
    };
    tx.as_ref()
}

/// The stored result of an earlier request with the same key and digest,
/// marked as a replay.
fn replay(seen: &IdempotencyRecord) -> Result<CommandResult, StorageFault> {
    let mut result = CommandResult::decode(seen.result.as_slice()).map_err(|e| {
        StorageFault(format!(
            "stored result of {:?}/{:?} does not decode: {e}",
            seen.actor, seen.cl_trid
        ))
    })?;
    let tx = result.outcome.as_mut().and_then(|outcome| match outcome {
        Outcome::Domain(r) => Some(&mut r.tx),
        Outcome::Contact(r) => Some(&mut r.tx),
        Outcome::Host(r) => Some(&mut r.tx),
        Outcome::Deleted(r) => Some(&mut r.tx),
        Outcome::Tld(r) => Some(&mut r.tx),
        Outcome::Registrar(r) => Some(&mut r.tx),
        Outcome::Error(r) => Some(&mut r.tx),
        Outcome::Transfer(r) => Some(&mut r.tx),
        Outcome::Poll(r) => Some(&mut r.tx),
        Outcome::AupCase(r) => Some(&mut r.tx),
        Outcome::Session(r) => Some(&mut r.tx),
        // Ticks carry no idempotency key, so they are never stored.
        Outcome::Tick(_) => None,
    });
    match tx {
        Some(Some(tx)) => tx.replayed = true,
        _ => {
            return Err(StorageFault(format!(
                "stored result of {:?}/{:?} has no transaction info",
                seen.actor, seen.cl_trid
            )))
        }
    }
    Ok(result)
}

/// A rejection as the wire type.
pub(crate) fn command_error(e: &RegistryError, tx: TxInfo) -> v1::CommandError {
    v1::CommandError {
        reason: e.reason() as i32,
        field: e.field().to_string(),
        message: e.to_string(),
        tx: Some(tx),
    }
}

fn error_result(e: &RegistryError, tx: TxInfo) -> CommandResult {
    CommandResult {
        outcome: Some(Outcome::Error(command_error(e, tx))),
    }
}
