//! Registrar poll queues (RFC 5730 `<poll>`): messages the registry leaves
//! for a registrar about things that happened to its objects without it
//! asking (transfers, auto-renewals, deletions, server statuses, low
//! balance).
//!
//! A queue is FIFO: message ids count up per registrar and the oldest
//! message is the head. Reading the head ([`head`]) is a read; acknowledging
//! it ([`ack`]) is a replicated command. Acknowledging a message that was
//! already acknowledged succeeds without change, so an ack can be repeated
//! safely even with a new client transaction id.

use std::collections::BTreeSet;

use kauri_proto::v1::{self, command_result::Outcome};

use super::engine::{Cf, StateRead};
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::lookup;
use super::model::{self, poll_key, PollKind, PollRecord, Record, RegistrarRecord, TransferRecord};
use super::status::ServerStatus;

/// Queues a message for registrar `to`.
pub(crate) fn push(
    cx: &mut Exec<'_, '_>,
    to: &str,
    kind: PollKind,
    object: &str,
    message: String,
    transfer: Option<(TransferRecord, i64)>,
) -> Result<(), RegistryError> {
    let mut account = lookup::load_registrar(&*cx, to)?;
    account.poll_seq += 1;
    account.poll_count += 1;
    assert!(
        account.poll_count <= account.poll_seq,
        "{to:?} has {} messages waiting but only {} were ever queued",
        account.poll_count,
        account.poll_seq
    );
    let record = PollRecord {
        registrar: to.into(),
        id: account.poll_seq,
        time_ms: cx.now_ms,
        kind,
        object: object.into(),
        message,
        transfer,
        sv_trid: cx.tx.sv_trid.clone(),
    };
    debug_assert!(
        !cx.exists::<PollRecord>(&record.key())?,
        "poll message {} of {to:?} queued twice",
        record.id
    );
    cx.save(&record);
    cx.save(&account);
    Ok(())
}

/// Tells the sponsor of an object that staff changed its server statuses
/// (from `was` to `now`), and why. Nothing is queued when nothing changed.
pub(crate) fn server_statuses_changed(
    cx: &mut Exec<'_, '_>,
    sponsor: &str,
    kind: ObjectKind,
    object: &str,
    was: &BTreeSet<ServerStatus>,
    now: &BTreeSet<ServerStatus>,
    why: &str,
) -> Result<(), RegistryError> {
    if was == now {
        return Ok(());
    }
    let names = |set: Vec<&ServerStatus>| {
        if set.is_empty() {
            "-".to_string()
        } else {
            set.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    // Domains keep the wording they always had; hosts and contacts say
    // which kind of object the name or id is.
    let what = match kind {
        ObjectKind::Domain => object.to_string(),
        other => format!("{other} {object}"),
    };
    push(
        cx,
        sponsor,
        PollKind::ServerStatusChanged,
        object,
        format!(
            "server statuses of {what} changed (added: {}; removed: {}): {why}",
            names(now.difference(was).collect()),
            names(was.difference(now).collect()),
        ),
        None,
    )
}

/// Acknowledges message `message_id` of the calling registrar.
pub(crate) fn ack(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::AckPollRequest,
) -> Result<Outcome, RegistryError> {
    let id = req.message_id;
    if id == 0 || id > caller.poll_seq {
        return Err(RegistryError::ObjectNotFound {
            field: "message_id".into(),
            kind: ObjectKind::PollMessage,
            name: id.to_string(),
        });
    }
    let key = poll_key(&caller.id, id);
    if cx.load::<PollRecord>(&key)?.is_some() {
        let mut account = caller;
        account.poll_count = account.poll_count.saturating_sub(1);
        cx.delete::<PollRecord>(&key);
        cx.save(&account);
        cx.audit(
            "registrar",
            &account.id,
            vec![format!("poll message {id} acknowledged")],
        );
    }
    let (message, count) = head_of(&*cx, &cx.actor.clone())?;
    Ok(Outcome::Poll(v1::PollResponse {
        message: message.map(|m| m.to_proto()),
        count,
        read_info: None,
        tx: Some(cx.tx.clone()),
    }))
}

/// The oldest message of `registrar` and the number waiting.
pub fn head(
    state: &dyn StateRead,
    registrar: &str,
) -> Result<(Option<v1::PollMessage>, u64), RegistryError> {
    super::fields::registrar_id("registrar", registrar)?;
    let r = state;
    if r.load::<RegistrarRecord>(registrar.as_bytes())?.is_none() {
        return Err(RegistryError::ObjectNotFound {
            field: "registrar".into(),
            kind: ObjectKind::Registrar,
            name: registrar.into(),
        });
    }
    let mut prefix = registrar.as_bytes().to_vec();
    prefix.push(0);
    let first = state.scan_prefix(Cf::Poll, &prefix, None, 1)?;
    let message = match first.first() {
        Some((k, v)) => Some(model::decode::<PollRecord>(Cf::Poll, k, v)?.to_proto()),
        None => None,
    };
    let account = lookup::load_registrar(r, registrar)?;
    Ok((message, account.poll_count))
}

/// [`head`] inside a command, seeing its writes.
fn head_of(cx: &Exec<'_, '_>, registrar: &str) -> Result<(Option<PollRecord>, u64), RegistryError> {
    let mut prefix = registrar.as_bytes().to_vec();
    prefix.push(0);
    let first = cx.scan(Cf::Poll, &prefix, 1)?;
    let message = match first.first() {
        Some((k, v)) => Some(model::decode::<PollRecord>(Cf::Poll, k, v)?),
        None => None,
    };
    let account = lookup::load_registrar(cx, registrar)?;
    Ok((message, account.poll_count))
}
