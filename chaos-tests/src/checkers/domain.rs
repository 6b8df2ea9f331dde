//! The sequential model of one domain name that the linearizability
//! checker runs the history against: whether it exists, its sponsor,
//! registration (ROID), expiry and `client*` statuses and name servers, and
//! for each operation which outcome (result or rejection reason) the
//! registry must give in a state.
//!
//! Values an operation with an unknown outcome would have set (the ROID and
//! expiry of a create nobody saw answered) are unbound (`None`) and match
//! whatever a later read shows, which then binds them.
//!
//! Transfers (request, approve, reject, cancel) and deletes are modelled
//! with the registry's rules for a run that lasts less than the grace and
//! auto-approve periods: a delete purges a registration still in its add
//! grace period (never transferred) and otherwise puts it into redemption,
//! and a transfer is only ever approved by its losing registrar.
//!
//! Adding an operation: a [`Call`] variant, its arm in
//! [`DomainModel::step`], and, if it moves money or sponsorship, its rule in
//! [`super::registry`].

use std::collections::BTreeSet;

use chrono::{DateTime, Months, Utc};
use kauri_client::proto::Reason;

use super::linearizability::Model;
use crate::history::{Call, DomainView, Op, Outcome, Reply, TransferAction};

/// The status that blocks renewals.
pub const RENEW_PROHIBITED: &str = "clientRenewProhibited";
/// The status that blocks updates unless they remove it.
pub const UPDATE_PROHIBITED: &str = "clientUpdateProhibited";
/// The status that blocks deletes.
pub const DELETE_PROHIBITED: &str = "clientDeleteProhibited";
/// The status that blocks transfer requests.
pub const TRANSFER_PROHIBITED: &str = "clientTransferProhibited";
/// Most name servers a domain may have (the registry's limit).
pub const MAX_NAMESERVERS: usize = 13;

/// `ms` plus `years` calendar years (29 February plus one year is
/// 28 February), as the registry computes expiry dates.
pub fn add_years(ms: i64, years: u32) -> Option<i64> {
    let at = DateTime::<Utc>::from_timestamp_millis(ms)?;
    let later = at.checked_add_months(Months::new(years.checked_mul(12)?))?;
    Some(later.timestamp_millis())
}

/// The UTC date of `ms` as YYYY-MM-DD (what a renew names as the current
/// expiry date).
pub fn expiry_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The state of one domain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DomainState {
    /// Whether the name is registered.
    pub exists: bool,
    /// Sponsoring registrar (when it exists).
    pub sponsor: String,
    /// ROID of the registration; `None` until observed.
    pub roid: Option<String>,
    /// Expiry; `None` until observed.
    pub expiry_ms: Option<i64>,
    /// `client*` statuses.
    pub statuses: BTreeSet<String>,
    /// Name servers.
    pub nameservers: BTreeSet<String>,
    /// The gaining registrar of a pending transfer.
    pub pending_transfer: Option<String>,
    /// Whether the registration is still in its add grace period (created
    /// in this run and never transferred), so a delete purges it.
    pub add_grace: bool,
    /// Whether it was deleted and is in redemption (`pendingDelete`).
    pub redemption: bool,
    /// Whether its auth info is the one the registry made when a transfer
    /// completed, which no asker knows, until the sponsor's next update
    /// sets it back to the registrant's ([`crate::workload::auth_info_for`]).
    pub auth_reset: bool,
}

impl DomainState {
    /// This state after a read showed `d`, or `None` if `d` contradicts it.
    fn observe(&self, d: &DomainView) -> Option<DomainState> {
        let agrees = self.exists
            && self.sponsor == d.sponsor
            && self.statuses == d.statuses
            && self.nameservers == d.nameservers
            && self.pending_transfer.is_some() == d.pending_transfer
            && self.redemption == d.pending_delete
            && self.roid.as_ref().is_none_or(|r| *r == d.roid)
            && self.expiry_ms.is_none_or(|e| e == d.expiry_ms);
        agrees.then(|| DomainState {
            roid: Some(d.roid.clone()),
            expiry_ms: Some(d.expiry_ms),
            ..self.clone()
        })
    }
}

/// What a renew does in a state.
enum RenewRule {
    Rejected(Reason),
    /// The date matches; the new expiry if the old one is known.
    Applies(Option<i64>),
    /// The expiry is unbound: the date may or may not match.
    EitherWay,
}

/// The model of one domain name (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct DomainModel;

impl DomainModel {
    fn renew_rule(s: &DomainState, actor: &str, date: &str, years: u32) -> RenewRule {
        if !s.exists {
            return RenewRule::Rejected(Reason::ObjectNotFound);
        }
        if s.sponsor != actor {
            return RenewRule::Rejected(Reason::NotSponsor);
        }
        if s.redemption || s.pending_transfer.is_some() || s.statuses.contains(RENEW_PROHIBITED) {
            return RenewRule::Rejected(Reason::StatusProhibits);
        }
        match s.expiry_ms {
            None => RenewRule::EitherWay,
            Some(e) if expiry_date(e) != date => RenewRule::Rejected(Reason::ExpiryDateMismatch),
            Some(e) => RenewRule::Applies(add_years(e, years)),
        }
    }

    /// The state after an update, or the reason the registry refuses it
    /// (checks in the registry's order).
    fn update(
        s: &DomainState,
        actor: &str,
        add: &[String],
        remove: &[String],
        add_ns: &[String],
        remove_ns: &[String],
    ) -> Result<DomainState, Reason> {
        if !s.exists {
            return Err(Reason::ObjectNotFound);
        }
        if s.sponsor != actor {
            return Err(Reason::NotSponsor);
        }
        if s.redemption || s.pending_transfer.is_some() {
            return Err(Reason::StatusProhibits);
        }
        if s.statuses.contains(UPDATE_PROHIBITED) && !remove.iter().any(|r| r == UPDATE_PROHIBITED)
        {
            return Err(Reason::StatusProhibits);
        }
        let mut next = DomainState {
            auth_reset: false,
            ..s.clone()
        };
        for status in remove {
            if !next.statuses.remove(status) {
                return Err(Reason::PolicyViolation);
            }
        }
        for status in add {
            if !next.statuses.insert(status.clone()) {
                return Err(Reason::PolicyViolation);
            }
        }
        for ns in remove_ns {
            if !next.nameservers.remove(ns) {
                return Err(Reason::PolicyViolation);
            }
        }
        for ns in add_ns {
            if !next.nameservers.insert(ns.clone()) {
                return Err(Reason::PolicyViolation);
            }
        }
        if next.nameservers.len() > MAX_NAMESERVERS {
            return Err(Reason::PolicyViolation);
        }
        Ok(next)
    }

    /// The state after a delete and whether it went into redemption, or
    /// the reason the registry refuses it.
    fn delete(s: &DomainState, actor: &str) -> Result<(Option<DomainState>, bool), Reason> {
        if !s.exists {
            return Err(Reason::ObjectNotFound);
        }
        if s.sponsor != actor {
            return Err(Reason::NotSponsor);
        }
        if s.redemption || s.pending_transfer.is_some() || s.statuses.contains(DELETE_PROHIBITED) {
            return Err(Reason::StatusProhibits);
        }
        if s.add_grace {
            // Purged: the name is free again.
            Ok((Some(DomainState::default()), false))
        } else {
            let next = DomainState {
                redemption: true,
                ..s.clone()
            };
            Ok((Some(next), true))
        }
    }

    /// The state after a transfer command, or the reason the registry
    /// refuses it (checks in the registry's order; the TLD has no transfer
    /// lock and requests carry the registrant's auth info, which is right
    /// unless a completed transfer replaced it).
    fn transfer(
        s: &DomainState,
        actor: &str,
        action: TransferAction,
    ) -> Result<DomainState, Reason> {
        if !s.exists {
            return Err(Reason::ObjectNotFound);
        }
        let mut next = s.clone();
        match action {
            TransferAction::Request => {
                if s.sponsor == actor {
                    return Err(Reason::NotEligibleForTransfer);
                }
                if s.auth_reset {
                    return Err(Reason::InvalidAuthInfo);
                }
                if s.pending_transfer.is_some() {
                    return Err(Reason::PendingTransfer);
                }
                if s.redemption || s.statuses.contains(TRANSFER_PROHIBITED) {
                    return Err(Reason::StatusProhibits);
                }
                next.pending_transfer = Some(actor.to_string());
            }
            TransferAction::Approve | TransferAction::Reject | TransferAction::Cancel => {
                let Some(gaining) = &s.pending_transfer else {
                    return Err(Reason::NotPendingTransfer);
                };
                let allowed = if action == TransferAction::Cancel {
                    gaining
                } else {
                    &s.sponsor
                };
                if allowed != actor {
                    return Err(Reason::NotAuthorized);
                }
                next.pending_transfer = None;
                if action == TransferAction::Approve {
                    next.sponsor = gaining.clone();
                    next.expiry_ms = s.expiry_ms.and_then(|e| add_years(e, 1));
                    next.add_grace = false;
                    next.auth_reset = true;
                }
            }
        }
        Ok(next)
    }
}

impl Model for DomainModel {
    type State = DomainState;

    fn init(&self) -> DomainState {
        DomainState::default()
    }

    fn step(&self, s: &DomainState, op: &Op) -> Vec<DomainState> {
        let reply = match &op.outcome {
            Outcome::Ok(reply) => Some(reply),
            _ => None,
        };
        let domain = reply.and_then(Reply::domain);
        let rejected = op.outcome.rejection();
        let unknown = !op.outcome.is_definite();
        let same = || vec![s.clone()];
        let none = Vec::new;

        match &op.call {
            Call::Check => match reply {
                // Available exactly when it does not exist.
                Some(Reply::Available(a)) if *a != s.exists => same(),
                _ => none(),
            },
            Call::Info => match (domain, rejected) {
                (Some(d), _) => s.observe(d).into_iter().collect(),
                (None, Some(Reason::ObjectNotFound)) if !s.exists => same(),
                _ => none(),
            },
            Call::Create {
                period_years,
                nameservers,
            } => {
                let requested: BTreeSet<String> = nameservers.iter().cloned().collect();
                match (domain, rejected) {
                    (Some(d), _) => {
                        let fresh = !s.exists
                            && d.sponsor == op.actor
                            && d.statuses.is_empty()
                            && d.nameservers == requested
                            && add_years(d.created_ms, *period_years) == Some(d.expiry_ms);
                        if fresh {
                            vec![DomainState {
                                exists: true,
                                sponsor: d.sponsor.clone(),
                                roid: Some(d.roid.clone()),
                                expiry_ms: Some(d.expiry_ms),
                                statuses: BTreeSet::new(),
                                nameservers: requested,
                                pending_transfer: None,
                                add_grace: true,
                                redemption: false,
                                auth_reset: false,
                            }]
                        } else {
                            none()
                        }
                    }
                    (None, Some(Reason::ObjectExists)) if s.exists => same(),
                    (None, None) if unknown && !s.exists => vec![DomainState {
                        exists: true,
                        sponsor: op.actor.clone(),
                        roid: None,
                        expiry_ms: None,
                        statuses: BTreeSet::new(),
                        nameservers: requested,
                        pending_transfer: None,
                        add_grace: true,
                        redemption: false,
                        auth_reset: false,
                    }],
                    _ => none(),
                }
            }
            Call::Renew {
                current_expiry_date,
                period_years,
            } => {
                let rule = Self::renew_rule(s, &op.actor, current_expiry_date, *period_years);
                match (rule, domain, rejected) {
                    (RenewRule::Applies(next), Some(d), _) if next == Some(d.expiry_ms) => {
                        let moved = DomainState {
                            expiry_ms: None,
                            ..s.clone()
                        };
                        moved.observe(d).into_iter().collect()
                    }
                    (RenewRule::EitherWay, Some(d), _) => s.observe(d).into_iter().collect(),
                    (RenewRule::Rejected(r), None, Some(got)) if r == got => same(),
                    (RenewRule::EitherWay, None, Some(Reason::ExpiryDateMismatch)) => same(),
                    (RenewRule::Applies(next), None, None) if unknown => vec![DomainState {
                        expiry_ms: next,
                        ..s.clone()
                    }],
                    (RenewRule::EitherWay, None, None) if unknown => same(),
                    _ => none(),
                }
            }
            Call::Update {
                add_statuses,
                remove_statuses,
                add_nameservers,
                remove_nameservers,
            } => {
                let result = Self::update(
                    s,
                    &op.actor,
                    add_statuses,
                    remove_statuses,
                    add_nameservers,
                    remove_nameservers,
                );
                match (result, domain, rejected) {
                    (Ok(next), Some(d), _) => next.observe(d).into_iter().collect(),
                    (Err(r), None, Some(got)) if r == got => same(),
                    (Ok(next), None, None) if unknown => vec![next],
                    _ => none(),
                }
            }
            Call::Delete => match (Self::delete(s, &op.actor), reply, rejected) {
                (Ok((next, redemption)), Some(Reply::Deleted { pending_delete, .. }), _)
                    if *pending_delete == redemption =>
                {
                    next.into_iter().collect()
                }
                (Err(r), None, Some(got)) if r == got => same(),
                (Ok((next, _)), None, None) if unknown => next.into_iter().collect(),
                _ => none(),
            },
            Call::Transfer(action) => {
                match (Self::transfer(s, &op.actor, *action), reply, rejected) {
                    (
                        Ok(next),
                        Some(Reply::Transfer {
                            gaining,
                            losing,
                            expiry_ms,
                            ..
                        }),
                        _,
                    ) => {
                        // The answer names the parties and shows the
                        // expiry after the command, which binds it.
                        let parties = match action {
                            TransferAction::Request => (&op.actor, &s.sponsor),
                            _ => (s.pending_transfer.as_ref().unwrap_or(gaining), &s.sponsor),
                        };
                        let agrees = parties == (gaining, losing)
                            && next.expiry_ms.is_none_or(|e| e == *expiry_ms);
                        if agrees {
                            vec![DomainState {
                                expiry_ms: Some(*expiry_ms),
                                ..next
                            }]
                        } else {
                            none()
                        }
                    }
                    (Err(r), None, Some(got)) if r == got => same(),
                    (Ok(next), None, None) if unknown => vec![next],
                    _ => none(),
                }
            }
        }
    }

    fn has_effect(&self, op: &Op) -> bool {
        !op.call.is_read() && !matches!(op.outcome, Outcome::Rejected { .. })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checkers::linearizability::{check, minimize, Verdict};

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    struct H {
        ops: Vec<Op>,
    }

    impl H {
        fn new() -> Self {
            H { ops: Vec::new() }
        }

        fn push(
            &mut self,
            actor: &str,
            call: Call,
            span: (u64, u64),
            outcome: Outcome,
        ) -> &mut Self {
            let id = self.ops.len();
            self.ops.push(Op {
                id,
                process: id,
                actor: actor.into(),
                key: "hot.test".into(),
                cl_trid: Some(format!("t{id}")),
                call,
                invoked: Duration::from_millis(span.0),
                completed: Duration::from_millis(span.1),
                outcome,
                attempts: 1,
            });
            self
        }

        fn verdict(&self) -> Verdict {
            check(&DomainModel, &self.ops, 10_000)
        }
    }

    fn view(sponsor: &str, roid: &str, expiry_ms: i64, statuses: &[&str]) -> DomainView {
        DomainView {
            roid: roid.into(),
            sponsor: sponsor.into(),
            expiry_ms,
            created_ms: add_years(expiry_ms, 0).unwrap() - 365 * 86_400_000,
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
            nameservers: BTreeSet::new(),
            pending_transfer: false,
            pending_delete: false,
        }
    }

    fn created(sponsor: &str, roid: &str) -> Outcome {
        let mut d = view(sponsor, roid, add_years(T0, 1).unwrap(), &[]);
        d.created_ms = T0;
        Outcome::Ok(Reply::Domain {
            domain: d,
            sv_trid: format!("sv-{roid}"),
            replayed: false,
            charged_minor_units: Some(1000),
        })
    }

    fn read(d: DomainView) -> Outcome {
        Outcome::Ok(Reply::Domain {
            domain: d,
            sv_trid: String::new(),
            replayed: false,
            charged_minor_units: None,
        })
    }

    fn rejected(reason: Reason) -> Outcome {
        Outcome::Rejected {
            reason,
            sv_trid: String::new(),
            message: String::new(),
        }
    }

    fn unknown() -> Outcome {
        Outcome::Unknown {
            error: "deadline".into(),
            client_said_unknown: true,
        }
    }

    fn create() -> Call {
        Call::Create {
            period_years: 1,
            nameservers: vec![],
        }
    }

    fn renew(date: &str) -> Call {
        Call::Renew {
            current_expiry_date: date.into(),
            period_years: 1,
        }
    }

    fn hold(add: bool) -> Call {
        let s = vec!["clientHold".to_string()];
        Call::Update {
            add_statuses: if add { s.clone() } else { vec![] },
            remove_statuses: if add { vec![] } else { s },
            add_nameservers: vec![],
            remove_nameservers: vec![],
        }
    }

    #[test]
    fn a_drop_catch_race_with_one_winner_and_losers_told_object_exists() {
        let mut h = H::new();
        h.push("a", create(), (0, 10), created("a", "D1"))
            .push("b", create(), (1, 12), rejected(Reason::ObjectExists))
            .push("c", create(), (2, 3), unknown())
            .push(
                "b",
                Call::Info,
                (20, 21),
                read(view("a", "D1", add_years(T0, 1).unwrap(), &[])),
            );
        assert_eq!(h.verdict(), Verdict::Linearizable);
    }

    #[test]
    fn two_acknowledged_creates_of_one_name_fail() {
        let mut h = H::new();
        h.push("a", create(), (0, 10), created("a", "D1")).push(
            "b",
            create(),
            (1, 12),
            created("b", "D2"),
        );
        assert_eq!(h.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn a_loser_told_object_exists_before_anyone_won_fails() {
        let mut h = H::new();
        h.push("b", create(), (0, 1), rejected(Reason::ObjectExists))
            .push("a", create(), (2, 3), created("a", "D1"));
        assert_eq!(h.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn an_unknown_create_is_resolved_by_a_later_read() {
        let mut h = H::new();
        h.push("c", create(), (0, 1), unknown())
            .push("a", create(), (5, 6), rejected(Reason::ObjectExists))
            .push("a", Call::Info, (7, 8), read(view("c", "D9", T0, &[])));
        assert_eq!(h.verdict(), Verdict::Linearizable);
        // ... and must stay resolved that way.
        h.push("a", Call::Info, (9, 10), read(view("c", "D8", T0, &[])));
        assert_eq!(h.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn a_renew_extends_once_and_a_replay_cannot_extend_twice() {
        let e1 = add_years(T0, 1).unwrap();
        let e2 = add_years(e1, 1).unwrap();
        let renewed = Outcome::Ok(Reply::Domain {
            domain: view("a", "D1", e2, &[]),
            sv_trid: "sv-r".into(),
            replayed: false,
            charged_minor_units: Some(700),
        });
        let mut h = H::new();
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push("a", renew(&expiry_date(e1)), (2, 3), renewed.clone())
            .push("a", Call::Info, (4, 5), read(view("a", "D1", e2, &[])));
        assert_eq!(h.verdict(), Verdict::Linearizable);

        // A second renew naming the old date must be a mismatch...
        let mut ok = H { ops: h.ops.clone() };
        ok.push(
            "a",
            renew(&expiry_date(e1)),
            (6, 7),
            rejected(Reason::ExpiryDateMismatch),
        );
        assert_eq!(ok.verdict(), Verdict::Linearizable);
        // ... not another extension.
        let e3 = add_years(e2, 1).unwrap();
        let mut twice = H { ops: h.ops.clone() };
        twice.push(
            "a",
            renew(&expiry_date(e1)),
            (6, 7),
            read(view("a", "D1", e3, &[])),
        );
        assert_eq!(twice.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn an_acknowledged_renew_lost_by_a_later_read_fails() {
        let e1 = add_years(T0, 1).unwrap();
        let e2 = add_years(e1, 1).unwrap();
        let mut h = H::new();
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push(
                "a",
                renew(&expiry_date(e1)),
                (2, 3),
                read(view("a", "D1", e2, &[])),
            )
            .push("b", Call::Info, (4, 5), read(view("a", "D1", e1, &[])));
        assert_eq!(h.verdict(), Verdict::NotLinearizable);
        let min = minimize(&DomainModel, &h.ops, 10_000);
        assert_eq!(min.len(), 3, "every op is needed: {min:#?}");
    }

    #[test]
    fn status_toggles_and_their_rejections_follow_the_state() {
        let e1 = add_years(T0, 1).unwrap();
        let mut h = H::new();
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push(
                "a",
                hold(true),
                (2, 3),
                read(view("a", "D1", e1, &["clientHold"])),
            )
            .push("a", hold(true), (4, 5), rejected(Reason::PolicyViolation))
            .push("b", hold(false), (6, 7), rejected(Reason::NotSponsor))
            .push("a", hold(false), (8, 9), unknown())
            .push("a", Call::Info, (10, 11), read(view("a", "D1", e1, &[])));
        assert_eq!(h.verdict(), Verdict::Linearizable);
        // A stale read after the unknown removal was seen applied fails.
        h.push(
            "b",
            Call::Info,
            (12, 13),
            read(view("a", "D1", e1, &["clientHold"])),
        );
        assert_eq!(h.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn renew_prohibited_blocks_renewals() {
        let e1 = add_years(T0, 1).unwrap();
        let mut h = H::new();
        let prohibit = Call::Update {
            add_statuses: vec![RENEW_PROHIBITED.into()],
            remove_statuses: vec![],
            add_nameservers: vec![],
            remove_nameservers: vec![],
        };
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push(
                "a",
                prohibit,
                (2, 3),
                read(view("a", "D1", e1, &[RENEW_PROHIBITED])),
            )
            .push(
                "a",
                renew(&expiry_date(e1)),
                (4, 5),
                rejected(Reason::StatusProhibits),
            );
        assert_eq!(h.verdict(), Verdict::Linearizable);
        let mut charged = H {
            ops: h.ops[..2].to_vec(),
        };
        let e2 = add_years(e1, 1).unwrap();
        charged.push(
            "a",
            renew(&expiry_date(e1)),
            (4, 5),
            read(view("a", "D1", e2, &[RENEW_PROHIBITED])),
        );
        assert_eq!(charged.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn checks_and_reasons_the_model_cannot_explain_fail() {
        let mut h = H::new();
        h.push(
            "a",
            Call::Check,
            (0, 1),
            Outcome::Ok(Reply::Available(true)),
        )
        .push("a", create(), (2, 3), created("a", "D1"))
        .push(
            "b",
            Call::Check,
            (4, 5),
            Outcome::Ok(Reply::Available(true)),
        );
        assert_eq!(h.verdict(), Verdict::NotLinearizable);
        let mut funds = H::new();
        funds.push("a", create(), (0, 1), rejected(Reason::InsufficientFunds));
        assert_eq!(funds.verdict(), Verdict::NotLinearizable);
    }

    fn transfer_reply(status: &str, gaining: &str, losing: &str, expiry_ms: i64) -> Outcome {
        Outcome::Ok(Reply::Transfer {
            status: status.into(),
            gaining: gaining.into(),
            losing: losing.into(),
            expiry_ms,
            sv_trid: format!("sv-{status}"),
            replayed: false,
            charged_minor_units: None,
            refunded_minor_units: None,
        })
    }

    fn deleted(redemption: bool) -> Outcome {
        Outcome::Ok(Reply::Deleted {
            pending_delete: redemption,
            sv_trid: "sv-del".into(),
            replayed: false,
            refunded_minor_units: Some(1000),
        })
    }

    fn pending(mut d: DomainView) -> DomainView {
        d.pending_transfer = true;
        d
    }

    #[test]
    fn an_approved_transfer_moves_the_name_and_adds_a_year() {
        let e1 = add_years(T0, 1).unwrap();
        let e2 = add_years(e1, 1).unwrap();
        let request = Call::Transfer(TransferAction::Request);
        let approve = Call::Transfer(TransferAction::Approve);
        let mut h = H::new();
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push(
                "b",
                request.clone(),
                (2, 3),
                transfer_reply("pending", "b", "a", e1),
            )
            .push(
                "c",
                Call::Info,
                (4, 5),
                read(pending(view("a", "D1", e1, &[]))),
            )
            // While it is pending the sponsor can neither renew nor update.
            .push(
                "a",
                renew(&expiry_date(e1)),
                (6, 7),
                rejected(Reason::StatusProhibits),
            )
            .push("a", hold(true), (8, 9), rejected(Reason::StatusProhibits))
            // A second request and an approval by the asker are refused.
            .push("c", request, (10, 11), rejected(Reason::PendingTransfer))
            .push(
                "b",
                approve.clone(),
                (12, 13),
                rejected(Reason::NotAuthorized),
            )
            .push(
                "a",
                approve.clone(),
                (14, 15),
                transfer_reply("clientApproved", "b", "a", e2),
            )
            .push("c", Call::Info, (16, 17), read(view("b", "D1", e2, &[])))
            .push("a", approve, (18, 19), rejected(Reason::NotPendingTransfer));
        assert_eq!(h.verdict(), Verdict::Linearizable);

        // A read after the approval returned that still shows the loser fails.
        let mut stale = H {
            ops: h.ops[..8].to_vec(),
        };
        stale.push("c", Call::Info, (16, 17), read(view("a", "D1", e1, &[])));
        assert_eq!(stale.verdict(), Verdict::NotLinearizable);
        // So does an approval that did not add the year.
        let mut no_year = H {
            ops: h.ops[..7].to_vec(),
        };
        no_year.push(
            "a",
            Call::Transfer(TransferAction::Approve),
            (14, 15),
            transfer_reply("clientApproved", "b", "a", e1),
        );
        assert_eq!(no_year.verdict(), Verdict::NotLinearizable);
        // And a renew that got through while the transfer was pending.
        let mut renewed = H {
            ops: h.ops[..3].to_vec(),
        };
        renewed.push(
            "a",
            renew(&expiry_date(e1)),
            (6, 7),
            read(pending(view("a", "D1", e2, &[]))),
        );
        assert_eq!(renewed.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn a_completed_transfer_replaces_the_auth_info_until_the_sponsor_sets_it() {
        let e1 = add_years(T0, 1).unwrap();
        let e2 = add_years(e1, 1).unwrap();
        let request = Call::Transfer(TransferAction::Request);
        let mut h = H::new();
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push(
                "b",
                request.clone(),
                (2, 3),
                transfer_reply("pending", "b", "a", e1),
            )
            .push(
                "a",
                Call::Transfer(TransferAction::Approve),
                (4, 5),
                transfer_reply("clientApproved", "b", "a", e2),
            )
            // The registrant's auth info no longer opens it...
            .push(
                "c",
                request.clone(),
                (6, 7),
                rejected(Reason::InvalidAuthInfo),
            )
            // ...until the new sponsor's update sets it back.
            .push(
                "b",
                hold(true),
                (8, 9),
                read(view("b", "D1", e2, &["clientHold"])),
            )
            .push(
                "c",
                request.clone(),
                (10, 11),
                transfer_reply("pending", "c", "b", e2),
            );
        assert_eq!(h.verdict(), Verdict::Linearizable);
        // A request the old auth info got through right after the approval
        // is not explained.
        let mut opened = H {
            ops: h.ops[..3].to_vec(),
        };
        opened.push(
            "c",
            request,
            (6, 7),
            transfer_reply("pending", "c", "b", e2),
        );
        assert_eq!(opened.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn a_rejected_or_cancelled_transfer_changes_nothing() {
        let e1 = add_years(T0, 1).unwrap();
        let request = Call::Transfer(TransferAction::Request);
        let mut h = H::new();
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push(
                "b",
                request.clone(),
                (2, 3),
                transfer_reply("pending", "b", "a", e1),
            )
            .push(
                "b",
                Call::Transfer(TransferAction::Reject),
                (4, 5),
                rejected(Reason::NotAuthorized),
            )
            .push(
                "a",
                Call::Transfer(TransferAction::Reject),
                (6, 7),
                transfer_reply("clientRejected", "b", "a", e1),
            )
            .push("c", request, (8, 9), unknown())
            .push(
                "c",
                Call::Transfer(TransferAction::Cancel),
                (10, 11),
                transfer_reply("clientCancelled", "c", "a", e1),
            )
            .push("b", Call::Info, (12, 13), read(view("a", "D1", e1, &[])));
        assert_eq!(h.verdict(), Verdict::Linearizable);
        // The cancel answered, so the unknown request must have happened.
        let mut h2 = H {
            ops: h.ops[..5].to_vec(),
        };
        h2.push("c", Call::Info, (10, 11), read(view("a", "D1", e1, &[])));
        assert_eq!(
            h2.verdict(),
            Verdict::Linearizable,
            "the unknown request may not have happened"
        );
        // A cancel by the losing registrar is refused.
        let mut wrong = H {
            ops: h.ops[..2].to_vec(),
        };
        wrong.push(
            "a",
            Call::Transfer(TransferAction::Cancel),
            (4, 5),
            transfer_reply("clientCancelled", "b", "a", e1),
        );
        assert_eq!(wrong.verdict(), Verdict::NotLinearizable);
    }

    #[test]
    fn deletes_purge_in_add_grace_and_redeem_after_a_transfer() {
        let e1 = add_years(T0, 1).unwrap();
        let e2 = add_years(e1, 1).unwrap();
        let mut h = H::new();
        h.push("a", create(), (0, 1), created("a", "D1"))
            .push("b", Call::Delete, (2, 3), rejected(Reason::NotSponsor))
            .push("a", Call::Delete, (4, 5), deleted(false))
            .push("b", Call::Info, (6, 7), rejected(Reason::ObjectNotFound))
            .push("b", create(), (8, 9), created("b", "D2"))
            .push(
                "c",
                Call::Transfer(TransferAction::Request),
                (10, 11),
                transfer_reply("pending", "c", "b", e1),
            )
            .push(
                "b",
                Call::Transfer(TransferAction::Approve),
                (12, 13),
                transfer_reply("clientApproved", "c", "b", e2),
            )
            .push("c", Call::Delete, (14, 15), deleted(true));
        let mut redeemed = view("c", "D2", e2, &[]);
        redeemed.pending_delete = true;
        h.push("a", Call::Info, (16, 17), read(redeemed))
            .push("a", create(), (18, 19), rejected(Reason::ObjectExists))
            .push("c", hold(true), (20, 21), rejected(Reason::StatusProhibits));
        assert_eq!(h.verdict(), Verdict::Linearizable);

        // A delete inside add grace that claims redemption fails...
        let mut wrong = H {
            ops: h.ops[..2].to_vec(),
        };
        wrong.push("a", Call::Delete, (4, 5), deleted(true));
        assert_eq!(wrong.verdict(), Verdict::NotLinearizable);
        // ... and so does a purged name that still reads.
        let mut ghost = H {
            ops: h.ops[..3].to_vec(),
        };
        ghost.push("b", Call::Info, (6, 7), read(view("a", "D1", e1, &[])));
        assert_eq!(ghost.verdict(), Verdict::NotLinearizable);
    }
}
