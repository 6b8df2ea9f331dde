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

use super::commands::{actor_kind, command_name, dispatch, request_meta};
use super::engine::{Cf, StateRead, StorageFault, Txn};
use super::error::RegistryError;
use super::exec::Exec;
use super::model::{
    self, idempotency_key, meta, EventKind, EventRecord, IdempotencyRecord, Record,
};
use super::{audit, fields, lifecycle, schedule, session};

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
pub fn apply_proposal(
    txn: &mut Txn<'_>,
    ctx: &ApplyContext,
    proposal: &Proposal,
) -> Result<CommandResult, StorageFault> {
    // Whatever a previous caller left uncommitted is not part of this entry.
    txn.rollback_command();

    let now_ms = model::read_now_ms(&*txn)?.max(proposal.time_ms);
    txn.put(Cf::Meta, meta::NOW_MS, now_ms.to_be_bytes().to_vec());
    txn.commit_command();

    let kind = proposal.command.as_ref().and_then(|c| c.kind.as_ref());
    if let Some(command::Kind::Tick(t)) = kind {
        return tick(txn, ctx, now_ms, &t.auth_info_seed);
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
    let state: &dyn StateRead = &*txn;
    if let Some(seen) = state.load::<IdempotencyRecord>(&key)? {
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

    let outcome = run_command(txn, now_ms, kind, meta, &proposal.via, tx)?;
    let result = CommandResult {
        outcome: Some(outcome),
    };
    remember(txn, ctx, now_ms, meta, proposal, &result);
    Ok(result)
}

/// Runs a command whose envelope and key are checked, in its own overlay:
/// its writes stay when it succeeds and are rolled back (and asserted gone)
/// when it is rejected, which the outcome then says.
fn run_command(
    txn: &mut Txn<'_>,
    now_ms: i64,
    kind: &command::Kind,
    meta: &v1::RequestMeta,
    via: &str,
    tx: TxInfo,
) -> Result<Outcome, StorageFault> {
    let writes_before = txn.pending_writes();
    let mut cx = Exec::new(
        &mut *txn,
        now_ms,
        (&meta.actor, actor_kind(kind)),
        via,
        command_name(kind),
        tx.clone(),
    );
    match dispatch(&mut cx, kind).and_then(|o| {
        audit::flush(&mut cx)?;
        Ok(o)
    }) {
        Ok(outcome) => {
            schedule::debug_assert_written_domains(txn);
            txn.commit_command();
            Ok(outcome)
        }
        Err(RegistryError::Storage(fault)) => {
            txn.rollback_command();
            Err(fault)
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
            Ok(Outcome::Error(command_error(&rejection, tx)))
        }
    }
}

/// Remembers `result` under the request's idempotency key, with the time
/// its retention ends.
fn remember(
    txn: &mut Txn<'_>,
    ctx: &ApplyContext,
    now_ms: i64,
    meta: &v1::RequestMeta,
    proposal: &Proposal,
    result: &CommandResult,
) {
    debug_assert!(
        {
            let state: &dyn StateRead = &*txn;
            let key = idempotency_key(&meta.actor, &meta.cl_trid);
            matches!(state.exists::<IdempotencyRecord>(&key), Ok(false))
        },
        "a result is already remembered under {:?}/{:?}",
        meta.actor,
        meta.cl_trid
    );
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
}

/// Registry time (ms since the epoch) after the last applied entry; 0 on an
/// empty state.
pub fn registry_now_ms(state: &dyn StateRead) -> Result<i64, StorageFault> {
    model::read_now_ms(state)
}

/// A clock tick: registry time has already advanced; runs the lifecycle
/// events due by `now_ms`, oldest first (by due time, then event id), at
/// most [`MAX_EVENTS_PER_TICK`] of them. Each event runs as its own command:
/// one the registry refuses (e.g. a state it no longer applies to) is
/// dropped and recorded in the audit trail, and changes nothing else.
fn tick(
    txn: &mut Txn<'_>,
    ctx: &ApplyContext,
    now_ms: i64,
    seed: &[u8],
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
        run_due_event(txn, ctx, now_ms, key, &event, seed)?;
        schedule::debug_assert_written_domains(txn);
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

/// Runs one due event as its own command. An event the registry refuses
/// (the domain is no longer in a state it applies to) changes nothing but
/// dropping the event and the domain's handle on it, and leaves an audit
/// record saying why.
fn run_due_event(
    txn: &mut Txn<'_>,
    ctx: &ApplyContext,
    now_ms: i64,
    key: &[u8],
    event: &EventRecord,
    seed: &[u8],
) -> Result<(), StorageFault> {
    let name = event.kind.as_str();
    let mut cx = Exec::system(&mut *txn, now_ms, name, ctx.sv_trid(), ctx.log_index);
    cx.auth_info_seed = seed.to_vec();
    cx.delete::<EventRecord>(key);
    let ran = lifecycle::run_event(&mut cx, event)
        .and_then(|()| cx.adjust_counter(&meta::events_run(event.kind), 1))
        .and_then(|()| audit::flush(&mut cx));
    let refused = match ran {
        Ok(()) => return Ok(()),
        Err(RegistryError::Storage(fault)) => {
            txn.rollback_command();
            return Err(fault);
        }
        Err(refused) => refused,
    };
    txn.rollback_command();
    let mut cx = Exec::system(&mut *txn, now_ms, name, ctx.sv_trid(), ctx.log_index);
    cx.delete::<EventRecord>(key);
    let forgot = schedule::forget_event(&mut cx, event);
    let object_kind = if event.kind == EventKind::ContactTransferAutoApprove {
        "contact"
    } else {
        "domain"
    };
    cx.audit(
        object_kind,
        &event.domain,
        vec![format!("event {name} not run: {refused}")],
    );
    match forgot.and_then(|()| audit::flush(&mut cx)) {
        Ok(()) => Ok(()),
        Err(RegistryError::Storage(fault)) => Err(fault),
        Err(e) => Err(StorageFault(format!("audit write refused: {e}"))),
    }
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
fn prune_idempotency(txn: &mut Txn<'_>, now_ms: i64) -> Result<u64, StorageFault> {
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
