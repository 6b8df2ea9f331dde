//! The time-driven life of a domain (RFC 3915 and common gTLD/ccTLD
//! practice), run by `Tick` entries.
//!
//! ```text
//!  create ──► Active ──(expiry)──► auto-renew ──► Active (+1 y, autoRenewPeriod)
//!               │                     └─(cannot charge / renew prohibited)─┐
//!               │ delete (inside addPeriod: purged at once, refunded)      │
//!               ▼                                                          ▼
//!          Redemption ──restore request──► PendingRestore ──report──► Active (+1 y)
//!               │   ▲                          │ (report overdue: back, renewal refunded)
//!               │   └──────────────────────────┘
//!               ▼ (redemption period over)
//!          PendingPurge ──(pending-delete period over)──► purged
//! ```
//!
//! Every future step is an entry in [`Cf::DueEvents`] keyed by due time, and
//! the domain keeps a handle on each of its entries so that a change (renew,
//! restore, transfer) moves or removes exactly its own events. A tick reads
//! the due prefix of that index and nothing else.

use kauri_proto::v1::{self, command_result::Outcome};

use super::calendar::{self, add_years, date};
use super::engine::StorageFault;
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::fields::{self, MAX_TEXT_CHARS};
use super::lookup::{self, tld_of};
use super::model::{
    DomainRecord, DomainState, EventKind, EventRecord, LedgerKind, PollKind, RegistrarRecord,
    TldRecord,
};
use super::schedule::{schedule, unschedule};
use super::status::ServerStatus;
use super::{audit, billing, contact_transfer, poll, tld_rules, transitions};

/// How long the registry waits before trying again to auto-renew a domain
/// it may not delete (serverDeleteProhibited) but cannot renew either.
pub const AUTO_RENEW_RETRY_MS: i64 = 86_400_000;
/// Fewest statements a restore report must make (RFC 3915).
pub const MIN_RESTORE_STATEMENTS: usize = 2;
/// Most statements a restore report may make.
pub const MAX_RESTORE_STATEMENTS: usize = 8;
/// Longest pre- and post-deletion data of a restore report, in characters.
pub const MAX_RESTORE_DATA_CHARS: usize = 4000;
const _: () = assert!(MIN_RESTORE_STATEMENTS <= MAX_RESTORE_STATEMENTS);

/// Runs one due event.
pub(crate) fn run_event(cx: &mut Exec<'_, '_>, event: &EventRecord) -> Result<(), RegistryError> {
    if event.kind == EventKind::ContactTransferAutoApprove {
        return contact_transfer::run_auto_approve(cx, event);
    }
    let Some(mut d) = cx.load::<DomainRecord>(event.domain.as_bytes())? else {
        return Ok(()); // purged meanwhile; its handles went with it
    };
    if !d.events.iter().any(|e| e.id == event.id) {
        return Ok(()); // superseded
    }
    d.events.retain(|e| e.id != event.id);
    let before = d.clone();
    match event.kind {
        EventKind::AutoRenew => auto_renew(cx, &mut d)?,
        EventKind::TransferAutoApprove => {
            let fresh = cx.made_auth_info(&d.name);
            transitions::complete(
                cx,
                &mut d,
                super::model::TransferStatus::ServerApproved,
                fresh,
            )?
        }
        EventKind::RedemptionEnd => end_redemption(cx, &mut d)?,
        EventKind::RestoreReportDue => restore_report_overdue(cx, &mut d)?,
        EventKind::Purge => {
            let sponsor = d.sponsor.clone();
            transitions::purge(cx, d)?;
            poll::push(
                cx,
                &sponsor,
                PollKind::Purged,
                &event.domain,
                format!("{} was purged", event.domain),
                None,
            )?;
            return Ok(());
        }
        EventKind::ContactTransferAutoApprove => unreachable!("run above, not on a domain"),
    }
    let changes = audit::domain_changes(&before, &d);
    cx.audit("domain", &d.name, changes);
    cx.save(&d);
    Ok(())
}

/// The redemption period is over: the domain waits for its purge.
fn end_redemption(cx: &mut Exec<'_, '_>, d: &mut DomainRecord) -> Result<(), RegistryError> {
    let DomainState::Redemption { deleted_ms, .. } = d.state else {
        return Err(RegistryError::policy("domain", "not in redemption"));
    };
    let purge_ms = cx.now_ms + tld_of(cx, d)?.lifecycle.pending_delete_ms;
    d.state = DomainState::PendingPurge {
        deleted_ms,
        purge_ms,
    };
    schedule(cx, d, EventKind::Purge, purge_ms)?;
    let sponsor = d.sponsor.clone();
    poll::push(
        cx,
        &sponsor,
        PollKind::RedemptionEnded,
        &d.name,
        format!(
            "the redemption period of {} is over; it will be purged on {}",
            d.name,
            date(purge_ms)
        ),
        None,
    )?;
    Ok(())
}

/// No restore report came in time: back to redemption, the renewal
/// refunded.
fn restore_report_overdue(
    cx: &mut Exec<'_, '_>,
    d: &mut DomainRecord,
) -> Result<(), RegistryError> {
    let DomainState::PendingRestore {
        deleted_ms,
        redemption_ends_ms,
        renewal_minor_units,
        ref renewal_sv_trid,
        ..
    } = d.state
    else {
        return Err(RegistryError::policy("domain", "no restore pending"));
    };
    let renewal_sv_trid = renewal_sv_trid.clone();
    let sponsor = d.sponsor.clone();
    billing::refund(cx, &sponsor, renewal_minor_units, &d.name, &renewal_sv_trid)?;
    let ends_ms = redemption_ends_ms.max(cx.now_ms);
    d.state = DomainState::Redemption {
        deleted_ms,
        ends_ms,
    };
    schedule(cx, d, EventKind::RedemptionEnd, ends_ms)?;
    poll::push(
        cx,
        &sponsor,
        PollKind::RestoreReportOverdue,
        &d.name,
        format!(
            "no restore report for {} arrived in time; it is back in redemption and \
             the renewal was refunded",
            d.name
        ),
        None,
    )?;
    Ok(())
}

/// At expiry: renew for a year at the auto-renew price, or, when the
/// sponsor cannot pay or renewals are prohibited, delete the domain into
/// redemption (unless deletion is server-prohibited: then try again later).
fn auto_renew(cx: &mut Exec<'_, '_>, d: &mut DomainRecord) -> Result<(), RegistryError> {
    if d.state.is_deleted() {
        return Ok(());
    }
    let tld = tld_of(cx, d)?;
    let label = d.name.split('.').next().unwrap_or_default().to_string();
    let prices = tld_rules::prices(&tld, &label);
    let sponsor = d.sponsor.clone();
    let prohibited = d
        .statuses
        .contains(&super::status::ClientStatus::RenewProhibited)
        || d.server_statuses_in_effect()
            .contains(&ServerStatus::RenewProhibited);
    let charged = if prohibited {
        Err("renewal is prohibited".to_string())
    } else {
        let price = v1::Money {
            minor_units: prices.auto_renew,
            currency: tld.policy.currency.clone(),
        };
        match billing::charge(cx, &sponsor, LedgerKind::AutoRenew, &price, &d.name) {
            Ok(entry) => Ok(entry),
            Err(e @ RegistryError::Storage(_)) => return Err(e),
            Err(e) => Err(e.to_string()),
        }
    };
    match charged {
        Ok(entry) => {
            let new_expiry = add_years(d.expiry_ms, 1)
                .ok_or_else(|| StorageFault(format!("expiry of {:?} out of range", d.name)))?;
            d.expiry_ms = new_expiry;
            d.graces.retain(|g| g.ends_ms > cx.now_ms);
            d.graces.push(super::model::Grace {
                kind: super::model::GraceKind::AutoRenew,
                ends_ms: cx.now_ms + tld.lifecycle.auto_renew_grace_ms,
                registrar: sponsor.clone(),
                amount_minor_units: -entry.amount_minor_units,
                currency: tld.policy.currency.clone(),
                sv_trid: entry.sv_trid.clone(),
            });
            schedule(cx, d, EventKind::AutoRenew, new_expiry)?;
            poll::push(
                cx,
                &sponsor,
                PollKind::AutoRenewed,
                &d.name,
                format!("{} was auto-renewed until {}", d.name, date(new_expiry)),
                None,
            )?;
        }
        Err(why) => {
            if d.server_statuses_in_effect()
                .contains(&ServerStatus::DeleteProhibited)
            {
                let retry = cx.now_ms + AUTO_RENEW_RETRY_MS;
                schedule(cx, d, EventKind::AutoRenew, retry)?;
                poll::push(
                    cx,
                    &sponsor,
                    PollKind::AutoRenewFailed,
                    &d.name,
                    format!(
                        "{} expired and could not be auto-renewed ({why}); deletion is \
                         server-prohibited, trying again on {}",
                        d.name,
                        date(retry)
                    ),
                    None,
                )?;
            } else {
                // The registry deletes it: client statuses go with the sponsor's say.
                d.statuses = std::collections::BTreeSet::new();
                transitions::enter_redemption(cx, d)?;
                poll::push(
                    cx,
                    &sponsor,
                    PollKind::AutoRenewFailed,
                    &d.name,
                    format!(
                        "{} expired and could not be auto-renewed ({why}); it is in the \
                         redemption period",
                        d.name
                    ),
                    None,
                )?;
            }
        }
    }
    Ok(())
}

/// RGP restore (RFC 3915): a request inside the redemption period charges
/// the restore fee and a one-year renewal and makes the domain
/// pendingRestore; the report restores it.
pub(crate) fn restore(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::RestoreDomainRequest,
) -> Result<Outcome, RegistryError> {
    let mut d = lookup::load_sponsored(&*cx, &caller, &req.name)?;
    let before = d.clone();
    let tld = tld_of(cx, &d)?;
    let charged = match v1::RestoreOp::try_from(req.op) {
        Ok(v1::RestoreOp::Request) => Some(request_restore(
            cx,
            &caller,
            &mut d,
            &tld,
            req.fee.as_ref(),
        )?),
        Ok(v1::RestoreOp::Report) => {
            report_restore(cx, &mut d, &tld, req.report.as_ref())?;
            None
        }
        _ => {
            return Err(RegistryError::invalid(
                "op",
                "must be RESTORE_OP_REQUEST or RESTORE_OP_REPORT",
            ))
        }
    };
    d.updated_by = caller.id.clone();
    d.updated_ms = cx.now_ms;
    let changes = audit::domain_changes(&before, &d);
    cx.audit("domain", &d.name, changes);
    cx.save(&d);
    Ok(Outcome::Domain(v1::DomainResponse {
        domain: Some(d.to_proto(&d.sponsor, cx.now_ms)),
        tx: Some(cx.tx.clone()),
        read_info: None,
        charged,
    }))
}

/// A restore request: charges the restore fee and a year's renewal, and
/// makes the domain pendingRestore until its report is due. Returns what
/// was charged.
fn request_restore(
    cx: &mut Exec<'_, '_>,
    caller: &RegistrarRecord,
    d: &mut DomainRecord,
    tld: &TldRecord,
    stated_fee: Option<&v1::Money>,
) -> Result<v1::Money, RegistryError> {
    let label = d.name.split('.').next().unwrap_or_default().to_string();
    let prices = tld_rules::prices(tld, &label);
    let currency = tld.policy.currency.clone();
    let DomainState::Redemption {
        deleted_ms,
        ends_ms,
    } = d.state
    else {
        return Err(not_in(d, "redemptionPeriod"));
    };
    let total = prices.restore.saturating_add(prices.renew);
    billing::agreed(stated_fee, total, &currency)?;
    billing::quote(caller, &d.name, total, &currency, "name")?;
    let money = |minor_units| v1::Money {
        minor_units,
        currency: currency.clone(),
    };
    billing::charge(
        cx,
        &caller.id,
        LedgerKind::Restore,
        &money(prices.restore),
        &d.name,
    )?;
    let renewal = billing::charge(
        cx,
        &caller.id,
        LedgerKind::Renew,
        &money(prices.renew),
        &d.name,
    )?;
    let report_due_ms = cx.now_ms + tld.lifecycle.restore_report_ms;
    d.state = DomainState::PendingRestore {
        deleted_ms,
        redemption_ends_ms: ends_ms,
        report_due_ms,
        renewal_minor_units: prices.renew,
        renewal_sv_trid: renewal.sv_trid,
    };
    unschedule(cx, d, EventKind::RedemptionEnd);
    schedule(cx, d, EventKind::RestoreReportDue, report_due_ms)?;
    Ok(money(total))
}

/// A restore report: the domain is active again, renewed by a year (capped
/// at the TLD's horizon), with its auto-renewal scheduled.
fn report_restore(
    cx: &mut Exec<'_, '_>,
    d: &mut DomainRecord,
    tld: &TldRecord,
    report: Option<&v1::RestoreReport>,
) -> Result<(), RegistryError> {
    if !matches!(d.state, DomainState::PendingRestore { .. }) {
        return Err(not_in(d, "pendingRestore"));
    }
    let report =
        report.ok_or_else(|| RegistryError::invalid("report", "is required with REPORT"))?;
    check_report(d, cx.now_ms, report)?;
    let horizon = add_years(cx.now_ms, tld.lifecycle.max_expiry_horizon_years)
        .ok_or_else(|| StorageFault("registry time out of range".into()))?;
    let renewed = add_years(d.expiry_ms, 1)
        .ok_or_else(|| StorageFault(format!("expiry of {:?} out of range", d.name)))?;
    d.expiry_ms = renewed.min(horizon);
    d.state = DomainState::Active;
    unschedule(cx, d, EventKind::RestoreReportDue);
    let expiry = d.expiry_ms;
    schedule(cx, d, EventKind::AutoRenew, expiry)?;
    Ok(())
}

/// Checks what a restore report states (RFC 3915 section 4.2.5).
fn check_report(
    d: &DomainRecord,
    now_ms: i64,
    report: &v1::RestoreReport,
) -> Result<(), RegistryError> {
    let data_chars = MAX_RESTORE_DATA_CHARS;
    fields::text("report.pre_data", &report.pre_data, true, data_chars)?;
    fields::text("report.post_data", &report.post_data, true, data_chars)?;
    fields::text(
        "report.restore_reason",
        &report.restore_reason,
        true,
        MAX_TEXT_CHARS,
    )?;
    fields::text("report.other", &report.other, false, MAX_TEXT_CHARS)?;
    // The deletion and the restore request, both in the past and in that
    // order, and no earlier than the domain (0: not stated, as older
    // clients send).
    let stated = |ms: i64| ms != 0;
    if stated(report.delete_ms) && (report.delete_ms < d.created_ms || report.delete_ms > now_ms) {
        return Err(RegistryError::invalid(
            "report.delete_ms",
            format!(
                "the deletion time {} is not between the domain's creation ({}) and now ({})",
                calendar::time(report.delete_ms),
                calendar::time(d.created_ms),
                calendar::time(now_ms)
            ),
        ));
    }
    if stated(report.restore_ms)
        && (report.restore_ms < report.delete_ms || report.restore_ms > now_ms)
    {
        return Err(RegistryError::invalid(
            "report.restore_ms",
            format!(
                "the restore time {} is not between the deletion ({}) and now ({})",
                calendar::time(report.restore_ms),
                calendar::time(report.delete_ms),
                calendar::time(now_ms)
            ),
        ));
    }
    if !(MIN_RESTORE_STATEMENTS..=MAX_RESTORE_STATEMENTS).contains(&report.statements.len()) {
        return Err(RegistryError::invalid(
            "report.statements",
            format!(
                "{} statements given; RFC 3915 asks for {MIN_RESTORE_STATEMENTS} to \
                 {MAX_RESTORE_STATEMENTS}",
                report.statements.len()
            ),
        ));
    }
    for s in &report.statements {
        fields::text("report.statements", s, true, MAX_TEXT_CHARS)?;
    }
    Ok(())
}

fn not_in(d: &DomainRecord, rgp: &str) -> RegistryError {
    RegistryError::StatusProhibits {
        field: "name".into(),
        kind: ObjectKind::Domain,
        name: d.name.clone(),
        status: format!("{:?} (restore needs {rgp})", d.rgp_statuses(0)),
    }
}
