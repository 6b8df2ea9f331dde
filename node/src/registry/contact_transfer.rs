//! Contact transfers (RFC 5733 `<transfer>`): request, approve, reject,
//! cancel and query, the registry's own approval after
//! [`CONTACT_TRANSFER_AUTO_APPROVE_MS`], and its cancellation when staff
//! prohibit the transfer while it is pending.
//!
//! A contact moves without money or period: a registrar that knows the
//! contact's auth info asks for it, the sponsor approves or rejects (or
//! lets the registry approve it), and the asker may cancel. While the
//! transfer is pending the contact shows `pendingTransfer` and refuses
//! updates and deletion. On approval the contact gets a fresh auth info
//! (the proposer supplies it, as for domains), so the losing registrar's
//! copy no longer moves it. Both registrars get poll messages as for
//! domain transfers: the losing one when a transfer is requested or
//! cancelled, the gaining one when it is approved or rejected, both when
//! the registry acts.

use kauri_proto::v1::{self, command_result::Outcome};

use super::engine::StateRead;
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::fields;
use super::model::{
    ContactRecord, EventRecord, PollKind, RegistrarRecord, TransferParty as Party, TransferRecord,
    TransferStatus,
};
use super::poll;
use super::schedule::{schedule_contact, unschedule_contact};
use super::status::{ClientStatus, ServerStatus};

/// How long a contact transfer waits for the sponsor before the registry
/// approves it: five days, the usual period for domains too.
pub const CONTACT_TRANSFER_AUTO_APPROVE_MS: i64 = 5 * 86_400_000;

pub(crate) fn transfer(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::TransferContactRequest,
) -> Result<Outcome, RegistryError> {
    let mut c = load(cx.state(), &req.id)?;
    match v1::TransferOp::try_from(req.op) {
        Ok(v1::TransferOp::Request) => request(cx, &caller, &mut c, &req.auth_info)?,
        Ok(v1::TransferOp::Approve) => {
            pending_by(&c, &caller.id, Party::Losing)?;
            // The proposer made the new auth info.
            let fresh = (!req.new_auth_info.is_empty()).then(|| req.new_auth_info.clone());
            if let Some(value) = &fresh {
                fields::auth_info("new_auth_info", value)?;
            }
            complete(cx, &mut c, TransferStatus::ClientApproved, fresh)?;
        }
        Ok(v1::TransferOp::Reject) => {
            pending_by(&c, &caller.id, Party::Losing)?;
            end_unapproved(cx, &mut c, TransferStatus::ClientRejected)?;
        }
        Ok(v1::TransferOp::Cancel) => {
            pending_by(&c, &caller.id, Party::Gaining)?;
            end_unapproved(cx, &mut c, TransferStatus::ClientCancelled)?;
        }
        _ => {
            return Err(RegistryError::invalid(
                "op",
                "must be TRANSFER_OP_REQUEST, _APPROVE, _REJECT or _CANCEL",
            ))
        }
    }
    cx.save(&c);
    Ok(Outcome::Transfer(v1::TransferResponse {
        transfer: c.transfer.as_ref().map(|t| t.to_proto(&c.id, 0)),
        tx: Some(cx.tx.clone()),
        read_info: None,
        charged: None,
        refunded: None,
    }))
}

fn request(
    cx: &mut Exec<'_, '_>,
    caller: &RegistrarRecord,
    c: &mut ContactRecord,
    auth_info: &str,
) -> Result<(), RegistryError> {
    if c.sponsor == caller.id {
        return Err(RegistryError::NotEligibleForTransfer {
            field: "id".into(),
            kind: ObjectKind::Contact,
            name: c.id.clone(),
            message: "the caller already sponsors it".into(),
        });
    }
    if c.auth_info != auth_info {
        return Err(RegistryError::InvalidAuthInfo {
            field: "auth_info".into(),
            kind: ObjectKind::Contact,
            name: c.id.clone(),
        });
    }
    if c.transfer_pending() {
        return Err(RegistryError::PendingTransfer {
            field: "id".into(),
            kind: ObjectKind::Contact,
            name: c.id.clone(),
        });
    }
    let prohibited = if c.statuses.contains(&ClientStatus::TransferProhibited) {
        Some(ClientStatus::TransferProhibited.as_str())
    } else if c
        .server_statuses
        .contains(&ServerStatus::TransferProhibited)
    {
        Some(ServerStatus::TransferProhibited.as_str())
    } else {
        None
    };
    if let Some(status) = prohibited {
        return Err(RegistryError::StatusProhibits {
            field: "id".into(),
            kind: ObjectKind::Contact,
            name: c.id.clone(),
            status: status.into(),
        });
    }
    let due = cx.now_ms + CONTACT_TRANSFER_AUTO_APPROVE_MS;
    c.transfer = Some(TransferRecord {
        status: TransferStatus::Pending,
        gaining: caller.id.clone(),
        losing: c.sponsor.clone(),
        requested_ms: cx.now_ms,
        action_due_ms: due,
        acted_ms: 0,
        charged_minor_units: 0,
        currency: String::new(),
        charge_sv_trid: String::new(),
    });
    schedule_contact(cx, c, due)?;
    cx.audit(
        "contact",
        &c.id,
        vec![format!(
            "transfer requested ({} → {})",
            c.sponsor, caller.id
        )],
    );
    let losing = c.sponsor.clone();
    let text = format!(
        "{} requested the transfer of contact {}; it is approved automatically on {} unless \
         you reject it",
        caller.id,
        c.id,
        super::calendar::utc_date(due).map_or_else(String::new, |x| x.to_string())
    );
    notify(cx, c, &losing, PollKind::ContactTransferRequested, text)
}

/// Approves the pending transfer of `c` (by the losing registrar, or by
/// the registry when `status` is `ServerApproved`), giving the contact
/// `new_auth_info` when the command carries one.
fn complete(
    cx: &mut Exec<'_, '_>,
    c: &mut ContactRecord,
    status: TransferStatus,
    new_auth_info: Option<String>,
) -> Result<(), RegistryError> {
    let mut t = pending(c)?.clone();
    t.status = status;
    t.acted_ms = cx.now_ms;
    c.sponsor = t.gaining.clone();
    let mut changes = vec![
        t.audit_line(),
        format!("sponsor {} → {}", t.losing, t.gaining),
    ];
    // An entry without a new value (a tick without a seed) keeps it.
    if let Some(value) = new_auth_info {
        c.auth_info = value;
        changes.push("auth info changed".into());
    }
    c.updated_by = cx.actor.clone();
    c.updated_ms = cx.now_ms;
    c.transfer = Some(t.clone());
    unschedule_contact(cx, c);
    cx.audit("contact", &c.id, changes);
    if status == TransferStatus::ServerApproved {
        let text = format!(
            "the registry approved the transfer of contact {} to {}",
            c.id, t.gaining
        );
        notify(
            cx,
            c,
            &t.gaining,
            PollKind::ContactTransferAutoApproved,
            text.clone(),
        )?;
        notify(
            cx,
            c,
            &t.losing,
            PollKind::ContactTransferAutoApproved,
            text,
        )
    } else {
        let text = format!(
            "{} approved the transfer of contact {} to {}",
            t.losing, c.id, t.gaining
        );
        notify(cx, c, &t.gaining, PollKind::ContactTransferApproved, text)
    }
}

/// Ends the pending transfer of `c` without moving it: rejected by the
/// sponsor, cancelled by the asker or by the registry.
fn end_unapproved(
    cx: &mut Exec<'_, '_>,
    c: &mut ContactRecord,
    status: TransferStatus,
) -> Result<(), RegistryError> {
    let mut t = pending(c)?.clone();
    t.status = status;
    t.acted_ms = cx.now_ms;
    c.transfer = Some(t.clone());
    unschedule_contact(cx, c);
    cx.audit("contact", &c.id, vec![t.audit_line()]);
    match status {
        TransferStatus::ClientRejected => notify(
            cx,
            c,
            &t.gaining,
            PollKind::ContactTransferRejected,
            format!("{} rejected the transfer of contact {}", t.losing, c.id),
        ),
        TransferStatus::ClientCancelled => notify(
            cx,
            c,
            &t.losing,
            PollKind::ContactTransferCancelled,
            format!(
                "{} cancelled its transfer request for contact {}",
                t.gaining, c.id
            ),
        ),
        _ => Ok(()),
    }
}

/// The registry cancels the pending transfer of `c` (staff prohibited it):
/// both registrars are told why.
pub(crate) fn server_cancel(
    cx: &mut Exec<'_, '_>,
    c: &mut ContactRecord,
    why: &str,
) -> Result<(), RegistryError> {
    let t = pending(c)?.clone();
    end_unapproved(cx, c, TransferStatus::ServerCancelled)?;
    let text = format!(
        "the registry cancelled the transfer of contact {} to {}: {why}",
        c.id, t.gaining
    );
    notify(
        cx,
        c,
        &t.gaining,
        PollKind::ContactTransferServerCancelled,
        text.clone(),
    )?;
    notify(
        cx,
        c,
        &t.losing,
        PollKind::ContactTransferServerCancelled,
        text,
    )
}

/// Runs a due [`super::model::EventKind::ContactTransferAutoApprove`]:
/// the registry approves the transfer, unless the event was superseded.
pub(crate) fn run_auto_approve(
    cx: &mut Exec<'_, '_>,
    event: &EventRecord,
) -> Result<(), RegistryError> {
    let Some(mut c) = cx.load::<ContactRecord>(event.domain.as_bytes())? else {
        return Ok(()); // a contact with a pending transfer is never deleted
    };
    if c.transfer_event.is_none_or(|e| e.id != event.id) {
        return Ok(()); // superseded
    }
    c.transfer_event = None;
    let fresh = cx.made_auth_info(&c.id);
    complete(cx, &mut c, TransferStatus::ServerApproved, fresh)?;
    cx.save(&c);
    Ok(())
}

/// The pending or most recent transfer of a contact, for a party to it or
/// a registrar that knows the auth info.
pub fn query_contact_transfer(
    state: &dyn StateRead,
    registrar: &str,
    id: &str,
    auth_info: &str,
) -> Result<v1::TransferData, RegistryError> {
    let c = load(state, id)?;
    let party =
        c.sponsor == registrar || c.transfer.as_ref().is_some_and(|t| t.involves(registrar));
    if !party && c.auth_info != auth_info {
        return Err(RegistryError::InvalidAuthInfo {
            field: "auth_info".into(),
            kind: ObjectKind::Contact,
            name: c.id.clone(),
        });
    }
    c.transfer
        .as_ref()
        .map(|t| t.to_proto(&c.id, 0))
        .ok_or(RegistryError::NotPendingTransfer {
            field: "id".into(),
            kind: ObjectKind::Contact,
            name: c.id.clone(),
        })
}

fn load(state: &dyn StateRead, id: &str) -> Result<ContactRecord, RegistryError> {
    fields::contact_id("id", id)?;
    state
        .load::<ContactRecord>(id.as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "id".into(),
            kind: ObjectKind::Contact,
            name: id.into(),
        })
}

fn pending(c: &ContactRecord) -> Result<&TransferRecord, RegistryError> {
    c.transfer
        .as_ref()
        .filter(|t| t.status == TransferStatus::Pending)
        .ok_or_else(|| RegistryError::NotPendingTransfer {
            field: "id".into(),
            kind: ObjectKind::Contact,
            name: c.id.clone(),
        })
}

/// Refuses unless a transfer is pending and `caller` is its `party`.
fn pending_by(c: &ContactRecord, caller: &str, party: Party) -> Result<(), RegistryError> {
    pending(c)?.check_party(caller, party, &format!("contact {}", c.id))
}

fn notify(
    cx: &mut Exec<'_, '_>,
    c: &ContactRecord,
    to: &str,
    kind: PollKind,
    text: String,
) -> Result<(), RegistryError> {
    let transfer = c.transfer.clone().map(|t| (t, 0));
    poll::push(cx, to, kind, &c.id, text, transfer)
}
