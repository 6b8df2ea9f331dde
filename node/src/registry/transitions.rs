//! State changes of a domain that several command families and lifecycle
//! events share: deleting into redemption, purging, and ending a pending
//! transfer (approved, rejected, cancelled by either side or by the
//! registry).
//!
//! This layer sits on the shared effects (billing, poll, schedule, refs,
//! audit) and under the command families (`domain`, `transfer`,
//! `lifecycle`, `case`), which call it and which it never calls.

use kauri_proto::v1;

use super::calendar::{add_years, sub_years};
use super::engine::StorageFault;
use super::error::RegistryError;
use super::exec::Exec;
use super::lookup::tld_of;
use super::model::{
    meta, CaseEvent, CaseRecord, DomainRecord, DomainState, EventKind, Grace, GraceKind,
    HostRecord, PollKind, TransferStatus,
};
use super::schedule::{schedule, unschedule};
use super::status::ServerStatus;
use super::{billing, lookup, poll, refs};

/// Deletes `d` into the redemption period: a pending transfer is cancelled
/// by the registry, grace periods end, auto-renewal stops.
pub(crate) fn enter_redemption(
    cx: &mut Exec<'_, '_>,
    d: &mut DomainRecord,
) -> Result<(), RegistryError> {
    if d.transfer_pending() {
        server_cancel(cx, d, "the domain was deleted")?;
    }
    let tld = tld_of(cx, d)?;
    let ends_ms = cx.now_ms + tld.lifecycle.redemption_ms;
    d.state = DomainState::Redemption {
        deleted_ms: cx.now_ms,
        ends_ms,
    };
    d.graces.clear();
    unschedule(cx, d, EventKind::AutoRenew);
    unschedule(cx, d, EventKind::TransferAutoApprove);
    schedule(cx, d, EventKind::RedemptionEnd, ends_ms)?;
    Ok(())
}

/// Removes `d` for good: its references to contacts and hosts, its
/// subordinate hosts (kept, without glue and detached, when other domains
/// still delegate to them or staff prohibited their deletion), its events
/// and its suspensions' hold on cases.
pub(crate) fn purge(cx: &mut Exec<'_, '_>, mut d: DomainRecord) -> Result<(), RegistryError> {
    refs::adjust_contact_refs(cx, &d.referenced_contacts(), -1)?;
    refs::adjust_host_refs(cx, &d.name, &d.nameservers, -1)?;
    for name in &d.subordinate_hosts {
        let mut host = cx
            .load::<HostRecord>(name.as_bytes())?
            .ok_or_else(|| StorageFault(format!("{:?} lists missing host {name:?}", d.name)))?;
        let delete_prohibited = host
            .server_statuses
            .contains(&ServerStatus::DeleteProhibited);
        if host.domain_refs == 0 && !delete_prohibited {
            cx.delete::<HostRecord>(name.as_bytes());
            cx.adjust_counter(meta::HOSTS, -1)?;
            cx.audit("host", name, vec![format!("purged with {}", d.name)]);
        } else {
            host.superordinate = None;
            host.addresses.clear();
            cx.save(&host);
            let why = if delete_prohibited {
                "; kept: serverDeleteProhibited"
            } else {
                ""
            };
            cx.audit(
                "host",
                name,
                vec![format!(
                    "detached from purged {}; glue removed{why}",
                    d.name
                )],
            );
        }
    }
    for case_id in d.suspensions.keys() {
        if let Some(mut case) = cx.load::<CaseRecord>(&case_id.to_be_bytes())? {
            case.suspended = false;
            case.history.push(CaseEvent {
                time_ms: cx.now_ms,
                actor: cx.actor.clone(),
                action: "domain_purged".into(),
                note: String::new(),
                sv_trid: cx.tx.sv_trid.clone(),
            });
            cx.save(&case);
        }
    }
    for kind in [
        EventKind::AutoRenew,
        EventKind::TransferAutoApprove,
        EventKind::RedemptionEnd,
        EventKind::RestoreReportDue,
        EventKind::Purge,
    ] {
        unschedule(cx, &mut d, kind);
    }
    assert!(
        d.events.is_empty(),
        "purging {} left event handles {:?}",
        d.name,
        d.events
    );
    cx.adjust_counter(meta::DOMAIN_COUNT, -1)?;
    cx.adjust_counter(&meta::domains_in(lookup::tld_label(&d.name)), -1)?;
    cx.delete::<DomainRecord>(d.name.as_bytes());
    cx.audit("domain", &d.name, vec!["purged".into()]);
    Ok(())
}

/// Approves the pending transfer of `d` (by the losing registrar, or by the
/// registry when `status` is `ServerApproved`), giving the domain
/// `new_auth_info` when the entry carries one.
pub(crate) fn complete(
    cx: &mut Exec<'_, '_>,
    d: &mut DomainRecord,
    status: TransferStatus,
    new_auth_info: Option<String>,
) -> Result<(), RegistryError> {
    let mut t = d.pending_transfer()?.clone();
    let tld = tld_of(cx, d)?;
    let out_of_range = || StorageFault(format!("expiry of {:?} out of range", d.name));
    // An auto-renewal still in grace goes back to the losing registrar.
    let now = cx.now_ms;
    for g in d.graces.clone() {
        if g.kind == GraceKind::AutoRenew && g.ends_ms > now && g.registrar == t.losing {
            billing::refund(cx, &t.losing, g.amount_minor_units, &d.name, &g.sv_trid)?;
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
    // The losing registrar (and whoever it told) knew the old auth info.
    if let Some(value) = new_auth_info {
        d.auth_info = value;
    }
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
pub(crate) fn end_unapproved(
    cx: &mut Exec<'_, '_>,
    d: &mut DomainRecord,
    status: TransferStatus,
) -> Result<v1::Money, RegistryError> {
    let mut t = d.pending_transfer()?.clone();
    billing::refund(
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
pub(crate) fn server_cancel(
    cx: &mut Exec<'_, '_>,
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

pub(crate) fn notify(
    cx: &mut Exec<'_, '_>,
    d: &DomainRecord,
    to: &str,
    kind: PollKind,
    text: String,
) -> Result<(), RegistryError> {
    let transfer = d.transfer.clone().map(|t| (t, d.expiry_ms));
    poll::push(cx, to, kind, &d.name, text, transfer)
}
