//! Scheduling and cancelling a domain's lifecycle events (and a contact's
//! transfer auto-approval, its only event).
//!
//! Every future step of a domain is an [`EventRecord`] in
//! [`Cf::DueEvents`](super::Cf::DueEvents) keyed by due time, and the domain
//! keeps a handle ([`ScheduledEvent`]) on each, so a change moves or
//! removes exactly its own events. [`check_events`] asserts the invariant
//! that ties the two: each handle has its entry, at most one per kind, and
//! every state that needs a future step has one.

use super::engine::{Cf, StateRead, Txn};
use super::error::RegistryError;
use super::exec::Exec;
use super::model::{
    due_event_key, meta, ContactRecord, DomainRecord, DomainState, EventKind, EventRecord,
    ScheduledEvent,
};

/// Schedules `kind` for `domain` at `due_ms`, replacing any earlier event
/// of that kind.
pub(crate) fn schedule(
    cx: &mut Exec<'_, '_>,
    domain: &mut DomainRecord,
    kind: EventKind,
    due_ms: i64,
) -> Result<(), RegistryError> {
    unschedule(cx, domain, kind);
    let id = cx.next_seq(meta::EVENT_SEQ)?;
    cx.save(&EventRecord {
        id,
        due_ms,
        kind,
        domain: domain.name.clone(),
    });
    domain.events.push(ScheduledEvent { kind, due_ms, id });
    debug_assert_eq!(
        domain.events.iter().filter(|e| e.kind == kind).count(),
        1,
        "{} holds more than one {kind:?} event",
        domain.name
    );
    Ok(())
}

/// Removes `domain`'s event of `kind`, if any.
pub(crate) fn unschedule(cx: &mut Exec<'_, '_>, domain: &mut DomainRecord, kind: EventKind) {
    domain.events.retain(|e| {
        if e.kind == kind {
            cx.delete::<EventRecord>(&due_event_key(e.due_ms, e.id));
            false
        } else {
            true
        }
    });
}

/// Schedules the auto-approval of `contact`'s pending transfer at
/// `due_ms`, replacing any earlier one.
pub(crate) fn schedule_contact(
    cx: &mut Exec<'_, '_>,
    contact: &mut ContactRecord,
    due_ms: i64,
) -> Result<(), RegistryError> {
    unschedule_contact(cx, contact);
    let id = cx.next_seq(meta::EVENT_SEQ)?;
    let kind = EventKind::ContactTransferAutoApprove;
    cx.save(&EventRecord {
        id,
        due_ms,
        kind,
        domain: contact.id.clone(),
    });
    contact.transfer_event = Some(ScheduledEvent { kind, due_ms, id });
    Ok(())
}

/// Removes `contact`'s transfer auto-approval, if any.
pub(crate) fn unschedule_contact(cx: &mut Exec<'_, '_>, contact: &mut ContactRecord) {
    if let Some(e) = contact.transfer_event.take() {
        cx.delete::<EventRecord>(&due_event_key(e.due_ms, e.id));
    }
}

/// Drops the object's handle on an event that was refused when it ran.
pub(crate) fn forget_event(
    cx: &mut Exec<'_, '_>,
    event: &EventRecord,
) -> Result<(), RegistryError> {
    if event.kind == EventKind::ContactTransferAutoApprove {
        if let Some(mut c) = cx.load::<ContactRecord>(event.domain.as_bytes())? {
            if c.transfer_event.is_some_and(|e| e.id == event.id) {
                c.transfer_event = None;
                cx.save(&c);
            }
        }
        return Ok(());
    }
    if let Some(mut d) = cx.load::<DomainRecord>(event.domain.as_bytes())? {
        d.events.retain(|e| e.id != event.id);
        cx.save(&d);
    }
    Ok(())
}

/// The events a domain in its state must have scheduled: what moves it on
/// by itself (expiry, a pending transfer, the end of a grace phase).
fn needed_events(d: &DomainRecord) -> Vec<EventKind> {
    match d.state {
        DomainState::Active if d.transfer_pending() => {
            vec![EventKind::AutoRenew, EventKind::TransferAutoApprove]
        }
        DomainState::Active => vec![EventKind::AutoRenew],
        DomainState::Redemption { .. } => vec![EventKind::RedemptionEnd],
        DomainState::PendingRestore { .. } => vec![EventKind::RestoreReportDue],
        DomainState::PendingPurge { .. } => vec![EventKind::Purge],
    }
}

/// Checks the invariant between a domain and the due-event index: every
/// handle the domain holds has its entry (same kind, same domain), it
/// holds at most one handle per kind, and every event its state needs is
/// scheduled. Returns what is wrong.
pub(crate) fn check_events(state: &dyn StateRead, d: &DomainRecord) -> Result<(), String> {
    let mut kinds = Vec::new();
    for e in &d.events {
        if kinds.contains(&e.kind) {
            return Err(format!("{} holds two {:?} events", d.name, e.kind));
        }
        kinds.push(e.kind);
        let entry = state
            .load::<EventRecord>(&due_event_key(e.due_ms, e.id))
            .map_err(|fault| fault.to_string())?;
        match entry {
            Some(r) if r.kind == e.kind && r.domain == d.name && r.due_ms == e.due_ms => {}
            Some(r) => return Err(format!("{}'s {e:?} finds the entry {r:?}", d.name)),
            None => return Err(format!("{}'s {e:?} has no due-event entry", d.name)),
        }
    }
    for needed in needed_events(d) {
        if !kinds.contains(&needed) {
            return Err(format!(
                "{} is {:?} but has no {needed:?} event scheduled",
                d.name, d.state
            ));
        }
    }
    Ok(())
}

/// Checks the same invariant for a contact: it holds a handle exactly
/// while its transfer is pending, and the handle has its entry.
pub(crate) fn check_contact_event(state: &dyn StateRead, c: &ContactRecord) -> Result<(), String> {
    match (c.transfer_pending(), c.transfer_event) {
        (false, None) => Ok(()),
        (true, None) => Err(format!(
            "contact {} has a pending transfer but no event",
            c.id
        )),
        (false, Some(e)) => Err(format!(
            "contact {} holds {e:?} but no pending transfer",
            c.id
        )),
        (true, Some(e)) => {
            let entry = state
                .load::<EventRecord>(&due_event_key(e.due_ms, e.id))
                .map_err(|fault| fault.to_string())?;
            match entry {
                Some(r)
                    if r.kind == EventKind::ContactTransferAutoApprove
                        && e.kind == r.kind
                        && r.domain == c.id
                        && r.due_ms == e.due_ms =>
                {
                    Ok(())
                }
                other => Err(format!(
                    "contact {}'s {e:?} finds the entry {other:?}",
                    c.id
                )),
            }
        }
    }
}

/// Asserts [`check_events`] for every domain, and [`check_contact_event`]
/// for every contact, the current command of `txn` wrote (and did not
/// delete). It decodes each such record again, so it runs in debug builds
/// (every test, the golden log) and is skipped in release builds.
pub(crate) fn debug_assert_written_domains(txn: &Txn<'_>) {
    if !cfg!(debug_assertions) {
        return;
    }
    let written: std::collections::BTreeSet<&[u8]> = txn.command_keys(Cf::Domains).collect();
    let state: &dyn StateRead = txn;
    for key in written {
        let domain = state
            .load::<DomainRecord>(key)
            .expect("a domain this command wrote decodes");
        if let Some(d) = domain {
            if let Err(broken) = check_events(state, &d) {
                panic!("due-event invariant broken: {broken}");
            }
        }
    }
    let written: std::collections::BTreeSet<&[u8]> = txn.command_keys(Cf::Contacts).collect();
    for key in written {
        let contact = state
            .load::<ContactRecord>(key)
            .expect("a contact this command wrote decodes");
        if let Some(c) = contact {
            if let Err(broken) = check_contact_event(state, &c) {
                panic!("due-event invariant broken: {broken}");
            }
        }
    }
}
