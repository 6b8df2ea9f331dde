//! Domain transfers (RFC 5731 `<transfer>`): request, approve, reject,
//! cancel and query, plus the registry's own approval after the TLD's
//! auto-approve period and its cancellation when a suspension, a registry
//! lock or a deletion gets in the way.
//!
//! The gaining registrar is charged one year at the transfer price when it
//! requests (so it learns about missing funds at once) and refunded if the
//! transfer is rejected or cancelled. On approval the expiry moves one year
//! on, capped at the TLD's horizon; an auto-renewal still in its grace
//! period is refunded to the losing registrar and taken back first, so the
//! domain is not paid for twice. Both registrars get poll messages: the
//! losing one when a transfer is requested or cancelled, the gaining one
//! when it is approved or rejected, both when the registry acts.

use kauri_proto::v1::{self, command_result::Outcome};

use super::apply::Exec;
use super::calendar::{self, add_years, sub_years};
use super::engine::{StateRead, StorageFault};
use super::error::{ObjectKind, RegistryError};
use super::lifecycle::{schedule, tld_of, unschedule};
use super::model::{
    DomainRecord, EventKind, Get, Grace, GraceKind, HostRecord, LedgerKind, PollKind, ReadOnly,
    RegistrarRecord, TransferRecord, TransferStatus,
};
use super::names;
use super::status::{ClientStatus, ServerStatus};
use super::{audit, poll, registrar, tld};

pub(crate) fn transfer<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    caller: RegistrarRecord,
    req: &v1::TransferDomainRequest,
) -> Result<Outcome, RegistryError> {
    let name = names::normalize_name("name", &req.name)?;
    let mut d = cx
        .load::<DomainRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: name.ascii().into(),
        })?;
    let before = d.clone();
    let mut charged = None;
    let mut refunded = None;
    match v1::TransferOp::try_from(req.op) {
        Ok(v1::TransferOp::Request) => {
            charged = Some(request(cx, &caller, &mut d, req)?);
        }
        Ok(v1::TransferOp::Approve) => {
            pending_by(&d, &caller.id, Party::Losing)?;
            complete(cx, &mut d, TransferStatus::ClientApproved)?;
        }
        Ok(v1::TransferOp::Reject) => {
            pending_by(&d, &caller.id, Party::Losing)?;
            refunded = Some(end_unapproved(cx, &mut d, TransferStatus::ClientRejected)?);
        }
        Ok(v1::TransferOp::Cancel) => {
            pending_by(&d, &caller.id, Party::Gaining)?;
            refunded = Some(end_unapproved(cx, &mut d, TransferStatus::ClientCancelled)?);
        }
        _ => {
            return Err(RegistryError::invalid(
                "op",
                "must be TRANSFER_OP_REQUEST, _APPROVE, _REJECT or _CANCEL",
            ))
        }
    }
    let changes = audit::domain_changes(&before, &d);
    let mut changes = changes;
    if let Some(t) = &d.transfer {
        changes.push(format!(
            "transfer {} ({} → {})",
            t.status.as_str(),
            t.losing,
            t.gaining
        ));
    }
    cx.audit("domain", &d.name, changes);
    cx.save(&d);
    Ok(Outcome::Transfer(v1::TransferResponse {
        transfer: d
            .transfer
            .as_ref()
            .map(|t| t.to_proto(&d.name, d.expiry_ms)),
        tx: Some(cx.tx.clone()),
        read_info: None,
        charged,
        refunded,
    }))
}

fn request<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    caller: &RegistrarRecord,
    d: &mut DomainRecord,
    req: &v1::TransferDomainRequest,
) -> Result<v1::Money, RegistryError> {
    if d.sponsor == caller.id {
        return Err(not_eligible(d, "the caller already sponsors it"));
    }
    if d.auth_info != req.auth_info {
        return Err(RegistryError::InvalidAuthInfo {
            field: "auth_info".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
        });
    }
    if d.transfer_pending() {
        return Err(RegistryError::PendingTransfer {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
        });
    }
    if d.state.is_deleted() {
        return Err(prohibits(d, "pendingDelete"));
    }
    if d.statuses.contains(&ClientStatus::TransferProhibited) {
        return Err(prohibits(d, ClientStatus::TransferProhibited.as_str()));
    }
    if d.server_statuses_in_effect()
        .contains(&ServerStatus::TransferProhibited)
    {
        return Err(prohibits(d, ServerStatus::TransferProhibited.as_str()));
    }
    if cx.now_ms < d.transfer_lock_until_ms {
        return Err(not_eligible(
            d,
            &format!(
                "transfers are locked until {} after its last create or transfer",
                calendar::utc_date(d.transfer_lock_until_ms)
                    .map_or_else(String::new, |x| x.to_string())
            ),
        ));
    }
    if req.period_years > 1 {
        return Err(RegistryError::PeriodNotAllowed {
            field: "period_years".into(),
            message: format!("a transfer adds one year; {} years asked", req.period_years),
        });
    }
    let tld = tld_of(cx, d)?;
    let label = d.name.split('.').next().unwrap_or_default().to_string();
    let price = registrar::quote(
        caller,
        &d.name,
        tld::prices(&tld, &label).transfer,
        &tld.policy.currency,
        "name",
    )?;
    let entry = registrar::charge(cx, &caller.id, LedgerKind::Transfer, &price, &d.name)?;
    let due = cx.now_ms + tld.lifecycle.transfer_auto_approve_ms;
    d.transfer = Some(TransferRecord {
        status: TransferStatus::Pending,
        gaining: caller.id.clone(),
        losing: d.sponsor.clone(),
        requested_ms: cx.now_ms,
        action_due_ms: due,
        acted_ms: 0,
        charged_minor_units: price.minor_units,
        currency: price.currency.clone(),
        charge_sv_trid: entry.sv_trid,
    });
    schedule(cx, d, EventKind::TransferAutoApprove, due)?;
    let losing = d.sponsor.clone();
    notify(
        cx,
        d,
        &losing,
        PollKind::TransferRequested,
        format!(
            "{} requested the transfer of {}; it is approved automatically on {} unless you \
             reject it",
            caller.id,
            d.name,
            calendar::utc_date(due).map_or_else(String::new, |x| x.to_string())
        ),
    )?;
    Ok(price)
}

/// Approves the pending transfer of `d` (by the losing registrar, or by the
/// registry when `status` is `ServerApproved`).
pub(crate) fn complete<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    d: &mut DomainRecord,
    status: TransferStatus,
) -> Result<(), RegistryError> {
    let mut t = d
        .transfer
        .clone()
        .filter(|t| t.status == TransferStatus::Pending)
        .ok_or_else(|| RegistryError::NotPendingTransfer {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
        })?;
    let tld = tld_of(cx, d)?;
    let out_of_range = || StorageFault(format!("expiry of {:?} out of range", d.name));
    // An auto-renewal still in grace goes back to the losing registrar.
    let now = cx.now_ms;
    for g in d.graces.clone() {
        if g.kind == GraceKind::AutoRenew && g.ends_ms > now && g.registrar == t.losing {
            registrar::refund(cx, &t.losing, g.amount_minor_units, &d.name, &g.sv_trid)?;
            d.expiry_ms = sub_years(d.expiry_ms, 1).ok_or_else(out_of_range)?;
        }
    }
    let horizon =
        add_years(now, tld.lifecycle.max_expiry_horizon_years).ok_or_else(out_of_range)?;
    d.expiry_ms = add_years(d.expiry_ms, 1)
        .ok_or_else(out_of_range)?
        .min(horizon);
    d.graces = vec![Grace {
        kind: GraceKind::Transfer,
        ends_ms: now + tld.lifecycle.transfer_grace_ms,
        registrar: t.gaining.clone(),
        amount_minor_units: t.charged_minor_units,
        currency: t.currency.clone(),
        sv_trid: t.charge_sv_trid.clone(),
    }];
    d.sponsor = t.gaining.clone();
    d.updated_by = cx.actor.clone();
    d.updated_ms = now;
    d.transfer_lock_until_ms = now + tld.lifecycle.transfer_lock_ms;
    t.status = status;
    t.acted_ms = now;
    d.transfer = Some(t.clone());
    unschedule(cx, d, EventKind::TransferAutoApprove);
    let expiry = d.expiry_ms;
    schedule(cx, d, EventKind::AutoRenew, expiry)?;
    // Subordinate hosts go with the domain (RFC 5732 section 3.2.4).
    for name in d.subordinate_hosts.clone() {
        let mut host = cx
            .load::<HostRecord>(name.as_bytes())?
            .ok_or_else(|| StorageFault(format!("{:?} lists missing host {name:?}", d.name)))?;
        if host.sponsor != t.gaining {
            cx.audit(
                "host",
                &name,
                vec![format!(
                    "sponsor {} → {} with {}",
                    host.sponsor, t.gaining, d.name
                )],
            );
            host.sponsor = t.gaining.clone();
            cx.save(&host);
        }
    }
    let (kind, text) = if status == TransferStatus::ServerApproved {
        (
            PollKind::TransferAutoApproved,
            format!(
                "the registry approved the transfer of {} to {}",
                d.name, t.gaining
            ),
        )
    } else {
        (
            PollKind::TransferApproved,
            format!(
                "{} approved the transfer of {} to {}",
                t.losing, d.name, t.gaining
            ),
        )
    };
    notify(cx, d, &t.gaining, kind, text.clone())?;
    if status == TransferStatus::ServerApproved {
        notify(cx, d, &t.losing, kind, text)?;
    }
    Ok(())
}

/// Ends a pending transfer without approval, refunding the gaining
/// registrar; returns the refund.
fn end_unapproved<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    d: &mut DomainRecord,
    status: TransferStatus,
) -> Result<v1::Money, RegistryError> {
    let mut t = d
        .transfer
        .clone()
        .filter(|t| t.status == TransferStatus::Pending)
        .ok_or_else(|| RegistryError::NotPendingTransfer {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
        })?;
    registrar::refund(
        cx,
        &t.gaining,
        t.charged_minor_units,
        &d.name,
        &t.charge_sv_trid,
    )?;
    t.status = status;
    t.acted_ms = cx.now_ms;
    d.transfer = Some(t.clone());
    unschedule(cx, d, EventKind::TransferAutoApprove);
    match status {
        TransferStatus::ClientRejected => notify(
            cx,
            d,
            &t.gaining,
            PollKind::TransferRejected,
            format!("{} rejected the transfer of {}", t.losing, d.name),
        )?,
        TransferStatus::ClientCancelled => notify(
            cx,
            d,
            &t.losing,
            PollKind::TransferCancelled,
            format!(
                "{} cancelled its transfer request for {}",
                t.gaining, d.name
            ),
        )?,
        _ => {}
    }
    Ok(v1::Money {
        minor_units: t.charged_minor_units,
        currency: t.currency,
    })
}

/// The registry cancels a pending transfer (suspension, lock, deletion).
pub(crate) fn server_cancel<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    d: &mut DomainRecord,
    why: &str,
) -> Result<(), RegistryError> {
    end_unapproved(cx, d, TransferStatus::ServerCancelled)?;
    let Some(t) = d.transfer.clone() else {
        return Ok(());
    };
    let text = format!(
        "the registry cancelled the transfer of {} to {}: {why}",
        d.name, t.gaining
    );
    notify(
        cx,
        d,
        &t.gaining,
        PollKind::TransferServerCancelled,
        text.clone(),
    )?;
    notify(cx, d, &t.losing, PollKind::TransferServerCancelled, text)?;
    Ok(())
}

/// The pending or most recent transfer of a domain, for a party to it or a
/// registrar that knows the auth info.
pub fn query_transfer<S: StateRead + ?Sized>(
    state: &S,
    registrar: &str,
    name: &str,
    auth_info: &str,
) -> Result<v1::TransferData, RegistryError> {
    let name = names::normalize_name("name", name)?;
    let d = ReadOnly(state)
        .load::<DomainRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: name.ascii().into(),
        })?;
    let party = d.sponsor == registrar
        || d.transfer
            .as_ref()
            .is_some_and(|t| t.gaining == registrar || t.losing == registrar);
    if !party && d.auth_info != auth_info {
        return Err(RegistryError::InvalidAuthInfo {
            field: "auth_info".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
        });
    }
    d.transfer
        .as_ref()
        .map(|t| t.to_proto(&d.name, d.expiry_ms))
        .ok_or(RegistryError::NotPendingTransfer {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
        })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Party {
    Gaining,
    Losing,
}

/// Refuses unless a transfer is pending and `caller` is its `party`.
fn pending_by(d: &DomainRecord, caller: &str, party: Party) -> Result<(), RegistryError> {
    let t = d
        .transfer
        .as_ref()
        .filter(|t| t.status == TransferStatus::Pending)
        .ok_or_else(|| RegistryError::NotPendingTransfer {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
        })?;
    let (who, what) = match party {
        Party::Losing => (&t.losing, "the sponsoring registrar approves or rejects"),
        Party::Gaining => (&t.gaining, "the requesting registrar cancels"),
    };
    if who != caller {
        return Err(RegistryError::NotAuthorized {
            field: "meta.actor".into(),
            message: format!(
                "only {who} may do this to the transfer of {} ({what}); {caller} asked",
                d.name
            ),
        });
    }
    Ok(())
}

fn notify<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    d: &DomainRecord,
    to: &str,
    kind: PollKind,
    text: String,
) -> Result<(), RegistryError> {
    let transfer = d.transfer.clone().map(|t| (t, d.expiry_ms));
    poll::push(cx, to, kind, &d.name, text, transfer)
}

fn not_eligible(d: &DomainRecord, why: &str) -> RegistryError {
    RegistryError::NotEligibleForTransfer {
        field: "name".into(),
        kind: ObjectKind::Domain,
        name: d.name.clone(),
        message: why.into(),
    }
}

fn prohibits(d: &DomainRecord, status: &str) -> RegistryError {
    RegistryError::StatusProhibits {
        field: "name".into(),
        kind: ObjectKind::Domain,
        name: d.name.clone(),
        status: status.into(),
    }
}
