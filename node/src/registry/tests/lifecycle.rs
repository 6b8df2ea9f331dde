//! Scenarios of the registry's time-driven life, with a driven clock:
//! grace periods and refunds, auto-renewal, redemption, restore and purge,
//! transfers, server statuses and suspensions, premium and reserved names,
//! credit limits, the poll queue and the audit trail.

use super::*;

impl Registry {
    /// Moves the proposer clock forward.
    pub(super) fn advance(&mut self, ms: i64) {
        self.time_ms += ms;
    }

    /// Applies a tick at the current proposer time.
    pub(super) fn tick(&mut self) -> v1::TickResult {
        let p = tick_proposal(self.time_ms);
        match self.apply(&p).outcome {
            Some(Outcome::Tick(t)) => t,
            other => panic!("a tick answered {other:?}"),
        }
    }

    /// Moves the clock to `ms` (registry time) and ticks.
    pub(super) fn tick_at(&mut self, ms: i64) -> v1::TickResult {
        self.time_ms = self.time_ms.max(ms);
        self.tick()
    }

    pub(super) fn try_domain(&self, name: &str) -> Option<v1::Domain> {
        info_domain(&self.state, "", name).ok()
    }

    /// Every poll message of `id`, oldest first.
    pub(super) fn polls(&self, id: &str) -> Vec<v1::PollMessage> {
        records::<super::super::model::PollRecord>(&self.state, Cf::Poll)
            .into_iter()
            .filter(|m| m.registrar == id)
            .map(|m| m.to_proto())
            .collect()
    }

    pub(super) fn poll_kinds(&self, id: &str) -> Vec<String> {
        self.polls(id).into_iter().map(|m| m.kind).collect()
    }

    pub(super) fn ledger_kinds(&self, id: &str) -> Vec<String> {
        self.registrar(id)
            .ledger
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub(super) fn staff(&mut self, kind: Kind) -> Outcome {
        self.ok("staff", kind)
    }
}

pub(super) fn deleted(outcome: Outcome) -> v1::DeleteResponse {
    match outcome {
        Outcome::Deleted(d) => d,
        other => panic!("not a delete response: {other:?}"),
    }
}

fn transferred(outcome: Outcome) -> v1::TransferResponse {
    match outcome {
        Outcome::Transfer(t) => t,
        other => panic!("not a transfer response: {other:?}"),
    }
}

fn case_of(outcome: Outcome) -> v1::AupCase {
    match outcome {
        Outcome::AupCase(c) => c.aup_case.expect("case"),
        other => panic!("not a case response: {other:?}"),
    }
}

pub(super) fn charged(outcome: &Outcome) -> i64 {
    match outcome {
        Outcome::Domain(d) => d.charged.as_ref().map_or(0, |m| m.minor_units),
        Outcome::Transfer(t) => t.charged.as_ref().map_or(0, |m| m.minor_units),
        other => panic!("no charge in {other:?}"),
    }
}

/// Just after the expiry of `example.nz` and the other world domains
/// (created in the first minute of 2025).
pub(super) const WORLD_EXPIRY: i64 = T0 + 365 * DAY_MS + 60_000;

#[test]
fn delete_inside_add_grace_purges_at_once_and_refunds_the_create() {
    let mut r = world();
    let before = r.balance("rar-a");
    let created = r.ok("rar-a", create_domain("grace.nz", 2, "c-a1", &[]));
    assert_eq!(charged(&created), 2000);
    assert_eq!(r.domain("rar-a", "grace.nz").rgp_statuses, ["addPeriod"]);
    r.advance(4 * DAY_MS);

    let d = deleted(r.ok("rar-a", Kind::DeleteDomain(delete("grace.nz"))));
    assert!(!d.pending_delete);
    assert_eq!(d.refunded.expect("refund").minor_units, 2000);
    assert_eq!(r.balance("rar-a"), before);
    assert!(r.try_domain("grace.nz").is_none(), "purged at once");
    let ledger = r.registrar("rar-a").ledger;
    let refund = ledger.last().expect("entry");
    assert_eq!(
        (refund.kind.as_str(), refund.amount_minor_units),
        ("refund", 2000)
    );
    let create = ledger
        .iter()
        .find(|e| e.kind == "create" && e.object == "grace.nz");
    assert_eq!(refund.linked_sv_trid, create.expect("create entry").sv_trid);
    assert!(check_domains(&r.state, &strings(&["grace.nz"])).unwrap()[0].available);
    assert_money_conserved(&r.state);
    assert_registry_consistent(&r.state);
}

#[test]
fn delete_after_add_grace_goes_through_redemption_and_pending_delete_to_purge() {
    let mut r = world();
    r.ok(
        "rar-a",
        create_domain("late.nz", 1, "c-a1", &["ns1.outside.net"]),
    );
    r.advance(6 * DAY_MS);
    let before = r.balance("rar-a");
    let d = deleted(r.ok("rar-a", Kind::DeleteDomain(delete("late.nz"))));
    assert!(d.pending_delete);
    assert!(d.refunded.is_none(), "the add grace period is over");
    assert_eq!(r.balance("rar-a"), before);

    let info = r.domain("rar-a", "late.nz");
    assert!(
        info.statuses.contains(&"pendingDelete".to_string()),
        "{:?}",
        info.statuses
    );
    assert_eq!(info.rgp_statuses, ["redemptionPeriod"]);
    assert!(!info.in_zone);
    let e = r.err("rar-b", create_domain("late.nz", 1, "c-b1", &[]));
    assert_eq!(
        e.reason(),
        Reason::ObjectExists,
        "the name is not free in redemption"
    );
    let e = r.err(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            add_statuses: strings(&["clientHold"]),
            ..update_domain("late.nz")
        }),
    );
    assert_eq!(e.reason(), Reason::StatusProhibits);

    // Redemption (30 d) ends: pendingDelete until the purge (5 d later).
    let deleted_ms = info.deleted_ms;
    r.tick_at(deleted_ms + 30 * DAY_MS - 1000);
    assert_eq!(
        r.domain("rar-a", "late.nz").rgp_statuses,
        ["redemptionPeriod"]
    );
    r.tick_at(deleted_ms + 30 * DAY_MS);
    let info = r.domain("rar-a", "late.nz");
    assert_eq!(info.rgp_statuses, ["pendingDelete"]);
    assert_eq!(info.purge_ms, deleted_ms + 35 * DAY_MS);
    let e = r.err("rar-a", restore("late.nz", false));
    assert_eq!(
        e.reason(),
        Reason::StatusProhibits,
        "no restore after redemption"
    );

    r.tick_at(deleted_ms + 35 * DAY_MS);
    assert!(r.try_domain("late.nz").is_none());
    assert_eq!(
        info_host(&r.state, "ns1.outside.net").unwrap().statuses,
        ["linked", "ok"],
        "example.nz still uses it; late.nz let go"
    );
    let kinds = r.poll_kinds("rar-a");
    assert!(
        kinds.ends_with(&["redemption_ended".into(), "purged".into()]),
        "{kinds:?}"
    );
    r.ok("rar-b", create_domain("late.nz", 1, "c-b1", &[]));
    assert_refs_consistent(&r.state);
    assert_registry_consistent(&r.state);
    // The events that ran are counted (what kauri_lifecycle_events_total
    // exports), once each.
    let events = crate::registry::stats(&r.state).unwrap().events;
    assert_eq!(
        events,
        [("Purge".to_string(), 1), ("RedemptionEnd".to_string(), 1)],
        "{events:?}"
    );
}

#[test]
fn auto_renew_at_expiry_then_delete_inside_auto_renew_grace_refunds_it() {
    let mut r = world();
    let before = r.balance("rar-a");
    let t = r.tick_at(WORLD_EXPIRY - 60_000);
    assert_eq!(t.events, 0, "nothing is due before expiry");
    r.tick_at(WORLD_EXPIRY + 1000);

    let info = r.domain("rar-a", "café.nz");
    assert_eq!(expiry_date(&r, "café.nz"), "2027-01-01");
    assert_eq!(info.rgp_statuses, ["autoRenewPeriod"]);
    // example.nz and café.nz renewed at the renew price; locked.nz is
    // renew-prohibited, so the registry deleted it instead.
    assert_eq!(r.balance("rar-a"), before - 2 * 900);
    let locked = r.domain("rar-a", "locked.nz");
    assert_eq!(locked.rgp_statuses, ["redemptionPeriod"]);
    assert_eq!(
        locked.statuses,
        ["inactive", "pendingDelete"],
        "client statuses cleared"
    );
    let kinds = r.poll_kinds("rar-a");
    assert_eq!(
        kinds.iter().filter(|k| *k == "auto_renewed").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"auto_renew_failed".to_string()));

    r.advance(44 * DAY_MS);
    let d = deleted(r.ok("rar-a", Kind::DeleteDomain(delete("café.nz"))));
    assert!(
        d.pending_delete,
        "auto-renew grace refunds but does not purge"
    );
    assert_eq!(d.refunded.expect("refund").minor_units, 900);
    assert_eq!(r.balance("rar-a"), before - 900);
    assert_money_conserved(&r.state);
    assert_registry_consistent(&r.state);
}

#[test]
fn an_auto_renew_the_sponsor_cannot_pay_deletes_the_domain() {
    let mut r = world();
    // rar-b has 4000 left; a four-year registration takes it all.
    r.ok("rar-b", create_domain("drain.nz", 4, "c-b1", &[]));
    assert_eq!(r.balance("rar-b"), 0);
    r.tick_at(WORLD_EXPIRY + 1000);
    let b = r.domain("rar-b", "b.nz");
    assert_eq!(b.rgp_statuses, ["redemptionPeriod"]);
    assert_eq!(r.poll_kinds("rar-b"), ["auto_renew_failed"]);
    assert_eq!(r.balance("rar-b"), 0, "nothing charged");
    assert_money_conserved(&r.state);
}

#[test]
fn a_locked_domain_that_cannot_be_renewed_is_retried_not_deleted() {
    let mut r = world();
    r.ok("rar-b", create_domain("drain.nz", 4, "c-b1", &[]));
    r.staff(lock("b.nz", true));
    r.tick_at(WORLD_EXPIRY + 1000);
    let b = r.domain("rar-b", "b.nz");
    assert!(
        b.rgp_statuses.is_empty(),
        "still registered: {:?}",
        b.rgp_statuses
    );
    r.ok("staff", deposit("rar-b", 900));
    r.tick_at(WORLD_EXPIRY + DAY_MS + 2000);
    assert_eq!(expiry_date(&r, "b.nz"), "2027-01-01");
    assert_registry_consistent(&r.state);
}

#[test]
fn restore_inside_redemption_charges_the_fee_plus_a_renewal_and_the_report_restores() {
    let mut r = world();
    r.staff(set_lifecycle(
        "nz",
        v1::TldLifecyclePolicy {
            restore_price_minor_units: Some(5000),
            ..Default::default()
        },
    ));
    let e = r.err("rar-a", restore("café.nz", false));
    assert_eq!(e.reason(), Reason::StatusProhibits, "not in redemption");
    r.advance(10 * DAY_MS);
    r.ok("rar-a", Kind::DeleteDomain(delete("café.nz")));
    let expiry_before = r.domain("rar-a", "café.nz").expiry_ms;
    let e = r.err("rar-a", restore("café.nz", true));
    assert_eq!(
        e.reason(),
        Reason::StatusProhibits,
        "a report needs a request first"
    );
    let e = r.err("rar-b", restore("café.nz", false));
    assert_eq!(e.reason(), Reason::NotSponsor);

    let before = r.balance("rar-a");
    let requested = r.ok("rar-a", restore("café.nz", false));
    assert_eq!(charged(&requested), 5000 + 900);
    assert_eq!(r.balance("rar-a"), before - 5900);
    assert_eq!(
        r.domain("rar-a", "café.nz").rgp_statuses,
        ["pendingRestore"]
    );
    let kinds = r.ledger_kinds("rar-a");
    assert!(
        kinds.ends_with(&["restore".into(), "renew".into()]),
        "{kinds:?}"
    );

    r.advance(DAY_MS);
    let mut bad = restore("café.nz", true);
    if let Kind::RestoreDomain(req) = &mut bad {
        req.report.as_mut().expect("report").statements.truncate(1);
    }
    let e = r.err("rar-a", bad);
    assert_eq!(e.field, "report.statements");
    // Times out of range, or out of order, are refused by name.
    for (delete_ms, restore_ms, field) in [
        (i64::MIN, i64::MAX, "report.delete_ms"),
        (1, 0, "report.delete_ms"),
        (0, i64::MAX, "report.restore_ms"),
    ] {
        let mut bad = restore("café.nz", true);
        if let Kind::RestoreDomain(req) = &mut bad {
            let report = req.report.as_mut().expect("report");
            report.delete_ms = delete_ms;
            report.restore_ms = restore_ms;
        }
        let e = r.err("rar-a", bad);
        assert_eq!(e.field, field, "{delete_ms} {restore_ms}: {}", e.message);
    }
    r.ok("rar-a", restore("café.nz", true));
    let info = r.domain("rar-a", "café.nz");
    assert!(!info.statuses.contains(&"pendingDelete".to_string()));
    assert!(info.rgp_statuses.is_empty());
    assert_eq!(
        utc_date(info.expiry_ms),
        utc_date(add_years(expiry_before, 1)),
        "the renewal adds a year"
    );
    assert_registry_consistent(&r.state);
}

fn add_years(ms: i64, years: u32) -> i64 {
    super::super::calendar::add_years(ms, years).expect("in range")
}

#[test]
fn an_overdue_restore_report_returns_the_domain_to_redemption_and_refunds_the_renewal() {
    let mut r = world();
    r.advance(10 * DAY_MS);
    r.ok("rar-a", Kind::DeleteDomain(delete("café.nz")));
    let before = r.balance("rar-a");
    r.ok("rar-a", restore("café.nz", false));
    r.advance(7 * DAY_MS + 1000);
    r.tick();
    assert_eq!(
        r.domain("rar-a", "café.nz").rgp_statuses,
        ["redemptionPeriod"]
    );
    assert_eq!(r.balance("rar-a"), before, "fee 0, renewal refunded");
    assert!(r
        .poll_kinds("rar-a")
        .contains(&"restore_report_overdue".to_string()));
    // The redemption period keeps its original end.
    let deleted_ms = r.domain("rar-a", "café.nz").deleted_ms;
    r.tick_at(deleted_ms + 30 * DAY_MS);
    assert_eq!(r.domain("rar-a", "café.nz").rgp_statuses, ["pendingDelete"]);
    assert_money_conserved(&r.state);
}

#[test]
fn transfer_auto_approves_after_the_tld_period_and_charges_the_gaining_registrar_once() {
    let mut r = world();
    r.advance(61 * DAY_MS);
    let (a_before, b_before) = (r.balance("rar-a"), r.balance("rar-b"));
    let expiry = r.domain("rar-a", "example.nz").expiry_ms;

    let t = transferred(r.ok("rar-b", transfer("example.nz", 1, "domain-pw")));
    assert_eq!(t.charged.expect("charged").minor_units, 900);
    let data = t.transfer.expect("transfer");
    assert_eq!(data.status_name, "pending");
    assert_eq!(
        (
            data.gaining_registrar.as_str(),
            data.losing_registrar.as_str()
        ),
        ("rar-b", "rar-a")
    );
    assert_eq!(data.action_due_ms, data.requested_ms + 5 * DAY_MS);
    assert!(r
        .domain("rar-a", "example.nz")
        .statuses
        .contains(&"pendingTransfer".to_string()));
    assert_eq!(r.poll_kinds("rar-a"), ["transfer_requested"]);
    assert_eq!(r.balance("rar-b"), b_before - 900);
    // Parties see the transfer; others need the auth info.
    assert_eq!(
        query_transfer(&r.state, "rar-b", "example.nz", "")
            .unwrap()
            .status_name,
        "pending"
    );
    let e = query_transfer(&r.state, "rar-usd", "example.nz", "guess").unwrap_err();
    assert_eq!(e.reason(), Reason::InvalidAuthInfo);
    assert!(query_transfer(&r.state, "rar-usd", "example.nz", "domain-pw").is_ok());

    r.advance(5 * DAY_MS - 2000);
    assert_eq!(r.tick().events, 0);
    r.advance(2000);
    assert_eq!(r.tick().events, 1);
    let info = r.domain("rar-b", "example.nz");
    assert_eq!(info.sponsor, "rar-b");
    assert_eq!(info.expiry_ms, add_years(expiry, 1));
    assert_eq!(info.rgp_statuses, ["transferPeriod"]);
    assert_eq!(
        info.transfer.expect("transfer").status_name,
        "serverApproved"
    );
    assert_eq!(
        info_host(&r.state, "ns1.example.nz").unwrap().sponsor,
        "rar-b",
        "subordinate hosts move with the domain"
    );
    assert!(r
        .poll_kinds("rar-a")
        .ends_with(&["transfer_auto_approved".into()]));
    assert_eq!(r.poll_kinds("rar-b"), ["transfer_auto_approved"]);

    // Later ticks change nothing: the approval ran once, charged once.
    r.advance(DAY_MS);
    r.tick();
    assert_eq!(r.balance("rar-b"), b_before - 900);
    assert_eq!(r.balance("rar-a"), a_before);
    let transfers = r
        .ledger_kinds("rar-b")
        .iter()
        .filter(|k| *k == "transfer")
        .count();
    assert_eq!(transfers, 1);
    // The new sponsor holds it for 60 days.
    let e = r.err("rar-a", transfer("example.nz", 1, "domain-pw"));
    assert_eq!(e.reason(), Reason::NotEligibleForTransfer);
    assert_registry_consistent(&r.state);
}

#[test]
fn transfer_requests_need_the_auth_info_and_respect_prohibitions_and_locks() {
    let mut r = world();
    let request = |auth: &str| transfer("café.nz", 1, auth);
    let e = r.err("rar-b", request("domain-pw"));
    assert_eq!(
        e.reason(),
        Reason::NotEligibleForTransfer,
        "60-day lock after create"
    );
    r.advance(61 * DAY_MS);
    let b_before = r.balance("rar-b");
    let e = r.err("rar-b", request("wrong-pw"));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::InvalidAuthInfo, "auth_info")
    );
    let e = r.err("rar-a", request("domain-pw"));
    assert_eq!(
        e.reason(),
        Reason::NotEligibleForTransfer,
        "already the sponsor"
    );
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            add_statuses: strings(&["clientTransferProhibited"]),
            ..update_domain("café.nz")
        }),
    );
    let e = r.err("rar-b", request("domain-pw"));
    assert_eq!(e.reason(), Reason::StatusProhibits);
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_statuses: strings(&["clientTransferProhibited"]),
            ..update_domain("café.nz")
        }),
    );
    assert_eq!(
        r.balance("rar-b"),
        b_before,
        "refused requests cost nothing"
    );

    // Request, then reject: refunded.
    r.ok("rar-b", request("domain-pw"));
    let e = r.err("rar-usd", request("domain-pw"));
    assert_eq!(e.reason(), Reason::PendingTransfer);
    let e = r.err("rar-a", Kind::DeleteDomain(delete("café.nz")));
    assert_eq!(e.reason(), Reason::StatusProhibits, "pendingTransfer");
    let e = r.err("rar-b", transfer_op("café.nz", v1::TransferOp::Approve));
    assert_eq!(
        e.reason(),
        Reason::NotAuthorized,
        "the gaining side cannot approve"
    );
    let t = transferred(r.ok("rar-a", transfer_op("café.nz", v1::TransferOp::Reject)));
    assert_eq!(t.refunded.expect("refund").minor_units, 900);
    assert_eq!(t.transfer.expect("t").status_name, "clientRejected");
    assert_eq!(r.balance("rar-b"), b_before);
    assert_eq!(r.poll_kinds("rar-b"), ["transfer_rejected"]);

    // Request, then cancel: refunded, and the losing side hears of it.
    r.ok("rar-b", request("domain-pw"));
    let e = r.err("rar-a", transfer_op("café.nz", v1::TransferOp::Cancel));
    assert_eq!(e.reason(), Reason::NotAuthorized);
    r.ok("rar-b", transfer_op("café.nz", v1::TransferOp::Cancel));
    assert_eq!(r.balance("rar-b"), b_before);
    assert!(r
        .poll_kinds("rar-a")
        .ends_with(&["transfer_cancelled".into()]));
    let e = r.err("rar-a", transfer_op("café.nz", v1::TransferOp::Approve));
    assert_eq!(e.reason(), Reason::NotPendingTransfer);

    // Request, then approve: the domain moves at once.
    r.ok("rar-b", request("domain-pw"));
    r.ok("rar-a", transfer_op("café.nz", v1::TransferOp::Approve));
    assert_eq!(r.domain("rar-b", "café.nz").sponsor, "rar-b");
    assert!(r
        .poll_kinds("rar-b")
        .ends_with(&["transfer_approved".into()]));
    assert_eq!(
        r.state
            .iter(Cf::DueEvents)
            .filter(|(_, v)| {
                decode::<super::super::model::EventRecord>(Cf::DueEvents, b"", v)
                    .map(|e| e.kind == super::super::model::EventKind::TransferAutoApprove)
                    .unwrap_or(false)
            })
            .count(),
        0,
        "no auto-approval left behind"
    );
    assert_money_conserved(&r.state);
    assert_registry_consistent(&r.state);
}

#[test]
fn approving_a_transfer_inside_auto_renew_grace_refunds_the_losing_registrar() {
    let mut r = world();
    r.tick_at(WORLD_EXPIRY + 1000);
    assert_eq!(expiry_date(&r, "café.nz"), "2027-01-01");
    let a_before = r.balance("rar-a");
    r.ok("rar-b", transfer("café.nz", 1, "domain-pw"));
    r.ok("rar-a", transfer_op("café.nz", v1::TransferOp::Approve));
    assert_eq!(
        r.balance("rar-a"),
        a_before + 900,
        "the auto-renewal is refunded"
    );
    assert_eq!(
        expiry_date(&r, "café.nz"),
        "2027-01-01",
        "the transfer year replaces the auto-renewal year"
    );
    assert_money_conserved(&r.state);
}

#[test]
fn registry_lock_refuses_changes_until_staff_lift_it() {
    let mut r = world();
    let e = r.err("staff", lock("café.nz", true).with_reason(""));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::InvalidField, "reason")
    );
    r.staff(lock("café.nz", true));
    let info = r.domain("rar-a", "café.nz");
    for s in LOCK_STATUSES {
        assert!(
            info.statuses.contains(&s.to_string()),
            "{:?}",
            info.statuses
        );
    }
    assert_eq!(r.poll_kinds("rar-a"), ["server_status_changed"]);
    let update = Kind::UpdateDomain(v1::UpdateDomainRequest {
        add_statuses: strings(&["clientHold"]),
        ..update_domain("café.nz")
    });
    let e = r.err("rar-a", update.clone());
    assert_eq!(e.reason(), Reason::StatusProhibits);
    assert!(
        e.message.contains("serverUpdateProhibited"),
        "{}",
        e.message
    );
    let e = r.err("rar-a", Kind::DeleteDomain(delete("café.nz")));
    assert_eq!(e.reason(), Reason::StatusProhibits);
    r.advance(61 * DAY_MS);
    let e = r.err("rar-b", transfer("café.nz", 1, "domain-pw"));
    assert_eq!(e.reason(), Reason::StatusProhibits);
    // Renewals stay possible under a lock.
    let date = expiry_date(&r, "café.nz");
    r.ok("rar-a", renew("café.nz", &date, 1));

    r.staff(lock("café.nz", false));
    r.ok("rar-a", update);
    // serverHold takes the domain out of the zone.
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_statuses: strings(&["clientHold"]),
            add_nameservers: strings(&["ns1.outside.net"]),
            ..update_domain("café.nz")
        }),
    );
    assert!(r.domain("rar-a", "café.nz").in_zone);
    r.staff(Kind::SetServerStatus(v1::SetServerStatusRequest {
        meta: None,
        name: "café.nz".into(),
        add_statuses: strings(&["serverHold"]),
        remove_statuses: vec![],
        reason: "court order".into(),
    }));
    assert!(!r.domain("rar-a", "café.nz").in_zone);
    let e = r.err(
        "staff",
        Kind::SetServerStatus(v1::SetServerStatusRequest {
            meta: None,
            name: "café.nz".into(),
            add_statuses: strings(&["clientHold"]),
            remove_statuses: vec![],
            reason: "typo".into(),
        }),
    );
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::InvalidField, "add_statuses")
    );
    assert_registry_consistent(&r.state);
}

trait WithReason {
    fn with_reason(self, reason: &str) -> Self;
}

impl WithReason for Kind {
    fn with_reason(mut self, reason: &str) -> Self {
        if let Kind::SetServerStatus(req) = &mut self {
            req.reason = reason.into();
        }
        self
    }
}

#[test]
fn a_suspension_takes_the_domain_out_of_the_zone_until_it_is_lifted() {
    let mut r = world();
    assert!(r.domain("rar-a", "example.nz").in_zone);
    r.advance(61 * DAY_MS);
    let b_before = r.balance("rar-b");
    r.ok("rar-b", transfer("example.nz", 1, "domain-pw"));

    let case = case_of(r.staff(open_case("EXAMPLE.nz")));
    assert_eq!((case.state.as_str(), case.suspended), ("open", false));
    let suspended = case_of(r.staff(case_action(case.id, v1::CaseAction::Suspend)));
    assert!(suspended.suspended);
    let info = r.domain("rar-a", "example.nz");
    assert!(!info.in_zone);
    for s in [
        "serverHold",
        "serverUpdateProhibited",
        "serverDeleteProhibited",
        "serverTransferProhibited",
    ] {
        assert!(
            info.statuses.contains(&s.to_string()),
            "{:?}",
            info.statuses
        );
    }
    assert!(!info.statuses.contains(&"pendingTransfer".to_string()));
    assert_eq!(info.suspensions.len(), 1);
    assert_eq!(info.suspensions[0].reason, "phishing");
    // The pending transfer was cancelled by the registry and refunded.
    assert_eq!(
        info.transfer.expect("transfer").status_name,
        "serverCancelled"
    );
    assert_eq!(r.balance("rar-b"), b_before);
    assert!(r
        .poll_kinds("rar-b")
        .contains(&"transfer_server_cancelled".to_string()));
    assert!(r
        .poll_kinds("rar-a")
        .contains(&"server_status_changed".to_string()));
    let e = r.err(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_nameservers: strings(&["ns1.outside.net"]),
            ..update_domain("example.nz")
        }),
    );
    assert_eq!(e.reason(), Reason::StatusProhibits);

    let e = r.err("staff", case_action(case.id, v1::CaseAction::Close));
    assert_eq!(e.reason(), Reason::PolicyViolation, "lift before closing");
    r.staff(case_action(case.id, v1::CaseAction::Escalate));
    r.staff(case_action(case.id, v1::CaseAction::Lift));
    let info = r.domain("rar-a", "example.nz");
    assert!(info.in_zone && info.suspensions.is_empty());
    let closed = case_of(r.staff(case_action(case.id, v1::CaseAction::Close)));
    assert_eq!(closed.state, "closed");
    let actions: Vec<&str> = closed.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["opened", "suspended", "escalated", "lifted", "closed"]
    );
    let e = r.err("staff", case_action(case.id, v1::CaseAction::Suspend));
    assert_eq!(
        e.reason(),
        Reason::PolicyViolation,
        "closed cases act no more"
    );
    assert_eq!(info_case(&r.state, case.id).unwrap().state, "closed");
    assert_registry_consistent(&r.state);
}

#[test]
fn premium_names_cost_more_and_reserved_or_blocked_names_are_not_available() {
    let mut r = world();
    r.staff(set_lifecycle(
        "nz",
        v1::TldLifecyclePolicy {
            premium_names: vec![v1::PremiumName {
                label: "GOLD".into(),
                create_price_minor_units: 20_000,
                renew_price_minor_units: 15_000,
            }],
            reserved_names: strings(&["registry"]),
            blocked_names: strings(&["straße"]),
            ..Default::default()
        },
    ));
    let checks = check_domains(
        &r.state,
        &strings(&["gold.nz", "registry.nz", "xn--strae-oqa.nz"]),
    )
    .unwrap();
    assert!(checks[0].available);
    assert!(
        !checks[1].available && checks[1].reason.contains("reserved"),
        "{:?}",
        checks[1]
    );
    assert!(
        !checks[2].available && checks[2].reason.contains("blocked"),
        "{:?}",
        checks[2]
    );
    let e = r.err("rar-a", create_domain("registry.nz", 1, "c-a1", &[]));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::PolicyViolation, "name")
    );

    let created = r.ok("rar-a", create_domain("gold.nz", 1, "c-a1", &[]));
    assert_eq!(charged(&created), 20_000);
    let renewed = r.ok("rar-a", renew("gold.nz", "2026-01-01", 2));
    assert_eq!(charged(&renewed), 30_000);
    let tld = info_tld(&r.state, "nz")
        .unwrap()
        .lifecycle
        .expect("lifecycle");
    assert_eq!(tld.premium_names[0].label, "gold");
    assert_eq!(
        tld.redemption_seconds,
        Some(30 * 86_400),
        "defaults are filled in"
    );
}

#[test]
fn the_credit_limit_lets_the_balance_go_negative_and_low_balance_is_told_once() {
    let mut r = world();
    r.staff(update_registrar("rar-b", Some(3_000), Some(2_000)));
    // rar-b has 4000.
    r.ok("rar-b", create_domain("one.nz", 5, "c-b1", &[]));
    assert_eq!(r.balance("rar-b"), -1_000);
    assert_eq!(r.poll_kinds("rar-b"), ["low_balance"]);
    r.ok("rar-b", create_domain("two.nz", 2, "c-b1", &[]));
    assert_eq!(r.balance("rar-b"), -3_000);
    let e = r.err("rar-b", create_domain("three.nz", 1, "c-b1", &[]));
    assert_eq!(e.reason(), Reason::InsufficientFunds);
    assert_eq!(
        r.poll_kinds("rar-b"),
        ["low_balance"],
        "told once per crossing"
    );
    let account = r.registrar("rar-b");
    assert_eq!(account.credit_limit_minor_units, 3_000);

    r.ok("staff", deposit("rar-b", 10_000));
    r.ok("rar-b", create_domain("three.nz", 6, "c-b1", &[]));
    assert_eq!(r.balance("rar-b"), 1_000);
    assert_eq!(r.poll_kinds("rar-b"), ["low_balance", "low_balance"]);
    let e = r.err("staff", update_registrar("rar-b", Some(-1), None));
    assert_eq!(e.field, "credit_limit_minor_units");
    assert_money_conserved(&r.state);
}

#[test]
fn the_poll_queue_is_fifo_acked_by_id_and_counts_what_is_left() {
    let mut r = world();
    r.staff(lock("café.nz", true));
    r.staff(lock("café.nz", false));
    r.staff(lock("example.nz", true));
    let (head, count) = poll_head(&r.state, "rar-a").unwrap();
    let head = head.expect("a message");
    assert_eq!((head.id, count), (1, 3));
    assert_eq!(head.object, "xn--caf-dma.nz");

    let Outcome::Poll(p) = r.ok("rar-a", ack(1)) else {
        panic!("not a poll response")
    };
    assert_eq!(p.count, 2);
    assert_eq!(p.message.expect("next").id, 2);
    // Acking again is harmless; an id never issued is not found.
    let Outcome::Poll(p) = r.ok("rar-a", ack(1)) else {
        panic!("not a poll response")
    };
    assert_eq!(p.count, 2);
    let e = r.err("rar-a", ack(99));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::ObjectNotFound, "message_id")
    );
    // Out of order is allowed; the head stays the oldest.
    r.ok("rar-a", ack(3));
    let (head, count) = poll_head(&r.state, "rar-a").unwrap();
    assert_eq!((head.expect("head").id, count), (2, 1));
    r.ok("rar-a", ack(2));
    assert_eq!(poll_head(&r.state, "rar-a").unwrap(), (None, 0));
    assert_eq!(r.registrar("rar-a").poll_count, 0);
    assert!(poll_head(&r.state, "rar-zz").is_err());
    assert_registry_consistent(&r.state);
}

#[test]
fn the_audit_trail_answers_by_object_and_by_actor_newest_first() {
    let mut r = world();
    r.tick_at(WORLD_EXPIRY + 1000);
    let by_object = |r: &Registry, name: &str, limit: u32, token: Vec<u8>| {
        query_audit(
            &r.state,
            &v1::AuditQueryRequest {
                object: name.into(),
                limit,
                page_token: token,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let (records, next) = by_object(&r, "EXAMPLE.nz", 100, Vec::new());
    assert!(next.is_empty());
    let commands: Vec<&str> = records.iter().map(|a| a.command.as_str()).collect();
    assert_eq!(
        commands,
        ["AutoRenew", "CreateHost", "CreateDomain"],
        "newest first"
    );
    assert_eq!(records[0].actor_kind(), v1::ActorKind::System);
    assert_eq!(records[2].actor, "rar-a");
    assert_eq!(records[2].actor_kind(), v1::ActorKind::Registrar);
    assert!(records[0]
        .changes
        .iter()
        .any(|c| c.starts_with("expiry 2026-01-01 → 2027-01-01")));
    assert!(records.windows(2).all(|w| w[0].seq > w[1].seq));

    // Paging gives the same records.
    let mut paged = Vec::new();
    let mut token = Vec::new();
    loop {
        let (page, next) = by_object(&r, "example.nz", 1, token);
        paged.extend(page);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    assert_eq!(paged, records);

    let (staff, _) = query_audit(
        &r.state,
        &v1::AuditQueryRequest {
            actor: "staff".into(),
            limit: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        staff.last().expect("first staff record").command,
        "CreateTld"
    );
    assert!(staff.iter().all(|a| a.actor_kind() == v1::ActorKind::Staff));

    // A time range: only the creation.
    let created_ms = r.domain("rar-a", "example.nz").created_ms;
    let (ranged, _) = query_audit(
        &r.state,
        &v1::AuditQueryRequest {
            object: "example.nz".into(),
            from_ms: created_ms,
            until_ms: created_ms,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ranged.len(), 1);
    assert_eq!(ranged[0].command, "CreateDomain");
    let e = query_audit(&r.state, &v1::AuditQueryRequest::default()).unwrap_err();
    assert_eq!(e.field(), "object");
}

#[test]
fn a_tick_runs_at_most_its_limit_and_leaves_the_rest_for_the_next() {
    let mut r = world();
    r.staff(create_tld("free", policy("NZD", 0, 0)));
    let n = MAX_EVENTS_PER_TICK + 20;
    for i in 0..n {
        r.ok(
            "rar-a",
            create_domain(&format!("d{i}.free"), 1, "c-a1", &[]),
        );
    }
    r.time_ms = r.time_ms.max(WORLD_EXPIRY + 30 * DAY_MS);
    let first = r.tick();
    assert_eq!(
        (first.events as usize, first.more_due),
        (MAX_EVENTS_PER_TICK, true)
    );
    let second = r.tick();
    assert_eq!(second.events as usize, n + 4 - MAX_EVENTS_PER_TICK);
    assert!(!second.more_due);
    assert_eq!(r.tick().events, 0);
    // Batched differently, the log gives the same state.
    let (again, _) = replay_in_batches(&r.log, &[7, 300]);
    assert_eq!(again.digest(), r.state.digest());
    assert_registry_consistent(&r.state);
}

#[test]
fn the_due_event_check_finds_a_missing_or_mismatched_event() {
    use crate::registry::model::{due_event_key, EventKind};
    use crate::registry::schedule::check_events;
    let mut r = world();
    // Past the add grace period a delete goes into redemption.
    r.advance(6 * DAY_MS);
    r.ok("rar-b", Kind::DeleteDomain(delete("b.nz")));
    check_events(&r.state, &load(&r, "b.nz")).unwrap();
    // As the registry keeps them, both hold: active with its renewal, and
    // deleted into redemption with the redemption's end.
    let active = load(&r, "example.nz");
    check_events(&r.state, &active).unwrap();

    // No renewal scheduled for an active domain.
    let mut lost = active.clone();
    lost.events.retain(|e| e.kind != EventKind::AutoRenew);
    let err = check_events(&r.state, &lost).unwrap_err();
    assert!(err.contains("no AutoRenew event"), "{err}");

    // A handle whose entry is gone from the index.
    let handle = active.events[0];
    let mut writes = WriteSet::new();
    writes.insert(
        (Cf::DueEvents, due_event_key(handle.due_ms, handle.id)),
        None,
    );
    let mut state = r.state.clone();
    state.write(writes);
    let err = check_events(&state, &active).unwrap_err();
    assert!(err.contains("has no due-event entry"), "{err}");

    // A handle that finds another domain's entry.
    let mut other = active.clone();
    other.name = "other.nz".into();
    let err = check_events(&r.state, &other).unwrap_err();
    assert!(err.contains("finds the entry"), "{err}");
}

fn load(r: &Registry, name: &str) -> DomainRecord {
    let state: &dyn StateRead = &r.state;
    state
        .load::<DomainRecord>(name.as_bytes())
        .unwrap()
        .unwrap()
}

#[test]
fn fee_quotes_show_premium_prices_and_a_stated_fee_below_the_price_charges_nothing() {
    let mut r = world();
    r.staff(set_lifecycle(
        "nz",
        v1::TldLifecyclePolicy {
            premium_names: vec![v1::PremiumName {
                label: "gold".into(),
                create_price_minor_units: 20_000,
                renew_price_minor_units: 15_000,
            }],
            ..Default::default()
        },
    ));
    let ask = |command: &str, period_years| v1::FeeCommand {
        command: command.into(),
        period_years,
    };
    let quotes = crate::registry::fee_quotes(
        &r.state,
        &strings(&["gold.nz", "plain.nz", "nowhere.zz"]),
        &[
            ask("create", 2),
            ask("renew", 1),
            ask("restore", 0),
            ask("x", 1),
        ],
    )
    .unwrap();
    let fee = |q: &v1::FeeQuote| q.fee.as_ref().map(|m| (m.minor_units, m.currency.clone()));
    assert_eq!(quotes[0][0].class, "premium");
    assert_eq!(fee(&quotes[0][0]), Some((40_000, "NZD".into())));
    assert_eq!(fee(&quotes[0][1]), Some((15_000, "NZD".into())));
    assert_eq!(quotes[1][0].class, "standard");
    assert!(quotes[0][3].fee.is_none() && quotes[0][3].reason.contains("create, renew"));
    assert!(quotes[2].is_empty(), "no TLD, no prices");

    let with_fee = |minor_units: i64, currency: &str| {
        let Kind::CreateDomain(mut c) = create_domain("gold.nz", 1, "c-a1", &[]) else {
            unreachable!("create_domain makes a CreateDomain")
        };
        c.fee = Some(v1::Money {
            minor_units,
            currency: currency.into(),
        });
        Kind::CreateDomain(c)
    };
    let balance = r.balance("rar-a");
    let e = r.err("rar-a", with_fee(19_999, "NZD"));
    assert_eq!((e.reason(), e.field.as_str()), (Reason::FeeMismatch, "fee"));
    let e = r.err("rar-a", with_fee(20_000, "USD"));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::FeeMismatch, "fee.currency")
    );
    assert_eq!(r.balance("rar-a"), balance, "nothing charged");
    assert!(check_domains(&r.state, &strings(&["gold.nz"])).unwrap()[0].available);
    let created = r.ok("rar-a", with_fee(20_000, "NZD"));
    assert_eq!(charged(&created), 20_000);
}

#[test]
fn ds_records_are_validated_limited_and_changed_by_update() {
    let mut r = world();
    let ds = |tag: u32, alg: u32, dt: u32, digest: &str| v1::DsData {
        key_tag: tag,
        algorithm: alg,
        digest_type: dt,
        digest: digest.into(),
    };
    let sha256 = "ab".repeat(32);
    let with_ds = |list: Vec<v1::DsData>| {
        let Kind::CreateDomain(mut c) = create_domain("signed.nz", 1, "c-a1", &[]) else {
            unreachable!("create_domain makes a CreateDomain")
        };
        c.ds_data = list;
        Kind::CreateDomain(c)
    };
    // Refused, nothing created: a SHA-1 digest, a deprecated algorithm, a
    // digest of the wrong length, a key tag out of range, too many.
    for (bad, field) in [
        (vec![ds(1, 13, 1, &"ab".repeat(20))], "ds_data"),
        (vec![ds(1, 5, 2, &sha256)], "ds_data"),
        (vec![ds(1, 13, 2, "abcd")], "ds_data"),
        (vec![ds(70_000, 13, 2, &sha256)], "ds_data"),
        ((0..9).map(|t| ds(t, 13, 2, &sha256)).collect(), "ds_data"),
        (
            vec![ds(1, 13, 2, &sha256), ds(1, 13, 2, &sha256)],
            "ds_data",
        ),
    ] {
        let e = r.err("rar-a", with_ds(bad));
        assert_eq!(e.field, field, "{}", e.message);
    }
    assert!(check_domains(&r.state, &strings(&["signed.nz"])).unwrap()[0].available);

    r.ok("rar-a", with_ds(vec![ds(12345, 13, 2, &sha256)]));
    let shown = r.domain("rar-a", "signed.nz").ds_data;
    assert_eq!(shown, [ds(12345, 13, 2, &sha256.to_uppercase())]);

    let mut add = update_domain("signed.nz");
    add.add_ds = vec![ds(2, 8, 4, &"cd".repeat(48))];
    r.ok("rar-a", Kind::UpdateDomain(add.clone()));
    assert_eq!(r.domain("rar-b", "signed.nz").ds_data.len(), 2, "public");
    let e = r.err("rar-a", Kind::UpdateDomain(add));
    assert_eq!(e.field, "add_ds", "{}", e.message);
    let mut rem = update_domain("signed.nz");
    rem.remove_ds = vec![ds(12345, 13, 2, &sha256)];
    r.ok("rar-a", Kind::UpdateDomain(rem.clone()));
    let e = r.err("rar-a", Kind::UpdateDomain(rem));
    assert_eq!(e.field, "remove_ds", "{}", e.message);
    let mut all = update_domain("signed.nz");
    all.remove_all_ds = true;
    r.ok("rar-a", Kind::UpdateDomain(all));
    assert!(r.domain("rar-a", "signed.nz").ds_data.is_empty());
    assert_registry_consistent(&r.state);
}

fn approve_with(name: &str, new_auth_info: &str) -> Kind {
    Kind::TransferDomain(v1::TransferDomainRequest {
        new_auth_info: new_auth_info.into(),
        ..match transfer_op(name, v1::TransferOp::Approve) {
            Kind::TransferDomain(t) => t,
            _ => unreachable!(),
        }
    })
}

#[test]
fn a_completed_transfer_gives_the_domain_the_auth_info_its_proposer_made() {
    let mut r = world();
    r.advance(61 * DAY_MS);
    r.ok("rar-b", transfer("café.nz", 1, "domain-pw"));
    // A malformed value (a broken proposer) is refused and changes nothing.
    let before = data_digest(&r.state);
    let e = r.err("rar-a", approve_with("café.nz", "x"));
    assert_eq!(e.reason(), Reason::InvalidField, "{}", e.message);
    assert_eq!(e.field, "new_auth_info");
    assert_eq!(data_digest(&r.state), before, "a refusal changed data");

    r.ok("rar-a", approve_with("café.nz", "Fresh-secret-42"));
    let d = r.domain("rar-b", "café.nz");
    assert_eq!(
        (d.sponsor.as_str(), d.auth_info.as_str()),
        ("rar-b", "Fresh-secret-42")
    );
    // The losing registrar's copy no longer moves or shows the domain.
    let e = query_transfer(&r.state, "rar-usd", "café.nz", "domain-pw").unwrap_err();
    assert_eq!(e.reason(), Reason::InvalidAuthInfo);
    // The audit trail says it changed, never what to.
    let trail = audit_of(&r, "domain", &d.name);
    assert!(trail
        .iter()
        .any(|a| a.changes.iter().any(|c| c == "auth info changed")));
    assert!(!format!("{trail:?}").contains("Fresh-secret-42"));
}

#[test]
fn an_auto_approved_transfer_gives_the_domain_auth_info_from_the_ticks_seed() {
    let mut r = world();
    r.advance(61 * DAY_MS);
    r.ok("rar-b", transfer("example.nz", 1, "domain-pw"));
    r.ok("rar-b", transfer("café.nz", 1, "domain-pw"));
    r.advance(5 * DAY_MS);
    let seed = [7u8; 32];
    let mut tick = tick_proposal(r.time_ms);
    tick.command = Some(v1::Command {
        kind: Some(Kind::Tick(v1::TickCommand {
            auth_info_seed: seed.to_vec(),
        })),
    });
    r.apply(&tick);
    let (a, cafe) = (
        r.domain("rar-b", "example.nz").auth_info,
        r.domain("rar-b", "café.nz"),
    );
    let b = cafe.auth_info;
    assert_eq!(
        a,
        super::super::fields::auth_info_from_seed(&seed, "example.nz")
    );
    assert_eq!(
        b,
        super::super::fields::auth_info_from_seed(&seed, &cafe.name)
    );
    assert_ne!(a, b, "one seed, unrelated values per domain");
    assert_ne!(a, "domain-pw");
    super::super::fields::auth_info("auth_info", &a).expect("made auth info is valid");
}

#[test]
fn a_transfer_approved_by_an_entry_without_a_new_value_keeps_the_auth_info() {
    // Log entries written before the proposer supplied one replay as they
    // always did.
    let mut r = world();
    r.advance(61 * DAY_MS);
    r.ok("rar-b", transfer("café.nz", 1, "domain-pw"));
    r.ok("rar-b", transfer("example.nz", 1, "domain-pw"));
    r.ok("rar-a", transfer_op("café.nz", v1::TransferOp::Approve));
    r.advance(5 * DAY_MS);
    r.tick();
    assert_eq!(r.domain("rar-b", "café.nz").auth_info, "domain-pw");
    assert_eq!(r.domain("rar-b", "example.nz").auth_info, "domain-pw");
}
