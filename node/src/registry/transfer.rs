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

use super::calendar::{self};
use super::engine::StateRead;
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::lookup::tld_of;
use super::model::{
    DomainRecord, EventKind, LedgerKind, PollKind, RegistrarRecord, TransferParty as Party,
    TransferRecord, TransferStatus,
};
use super::names;
use super::schedule::schedule;
use super::status::{ClientStatus, ServerStatus};
use super::transitions::{self, end_unapproved, notify};
use super::{audit, billing, fields, tld_rules};

pub(crate) fn transfer(
    cx: &mut Exec<'_, '_>,
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
            // The proposer made the new auth info; an entry from before it
            // did carries none, and the domain keeps its own.
            let fresh = (!req.new_auth_info.is_empty()).then(|| req.new_auth_info.clone());
            if let Some(value) = &fresh {
                fields::auth_info("new_auth_info", value)?;
            }
            transitions::complete(cx, &mut d, TransferStatus::ClientApproved, fresh)?;
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
        changes.push(t.audit_line());
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

fn request(
    cx: &mut Exec<'_, '_>,
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
    let price = tld_rules::prices(&tld, &label).transfer;
    billing::agreed(req.fee.as_ref(), price, &tld.policy.currency)?;
    let price = billing::quote(caller, &d.name, price, &tld.policy.currency, "name")?;
    let entry = billing::charge(cx, &caller.id, LedgerKind::Transfer, &price, &d.name)?;
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

/// The pending or most recent transfer of a domain, for a party to it or a
/// registrar that knows the auth info.
pub fn query_transfer(
    state: &dyn StateRead,
    registrar: &str,
    name: &str,
    auth_info: &str,
) -> Result<v1::TransferData, RegistryError> {
    let name = names::normalize_name("name", name)?;
    let d = state
        .load::<DomainRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: name.ascii().into(),
        })?;
    let party =
        d.sponsor == registrar || d.transfer.as_ref().is_some_and(|t| t.involves(registrar));
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

/// Refuses unless a transfer is pending and `caller` is its `party`.
fn pending_by(d: &DomainRecord, caller: &str, party: Party) -> Result<(), RegistryError> {
    d.pending_transfer()?.check_party(caller, party, &d.name)
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
