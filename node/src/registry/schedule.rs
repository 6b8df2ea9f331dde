//! Scheduling and cancelling a domain's lifecycle events.
//!
//! Every future step of a domain is an [`EventRecord`] in
//! [`Cf::DueEvents`](super::Cf::DueEvents) keyed by due time, and the domain
//! keeps a handle ([`ScheduledEvent`]) on each, so a change moves or
//! removes exactly its own events. [`check_events`] asserts the invariant
//! that ties the two: each handle has its entry, at most one per kind, and
//! every state that needs a future step has one.

use super::error::RegistryError;
use super::exec::Exec;
use super::model::{due_event_key, meta, DomainRecord, EventKind, EventRecord, ScheduledEvent};

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

/// Drops the domain's handle on an event that was refused when it ran.
pub(crate) fn forget_event(
    cx: &mut Exec<'_, '_>,
    event: &EventRecord,
) -> Result<(), RegistryError> {
    if let Some(mut d) = cx.load::<DomainRecord>(event.domain.as_bytes())? {
        d.events.retain(|e| e.id != event.id);
        cx.save(&d);
    }
    Ok(())
}
