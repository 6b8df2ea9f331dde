//! Checks of the registry's state after the cluster healed, against the
//! history: acknowledged writes survived exactly once, each raced name has
//! one winner, and money is conserved and matches what was done.
//!
//! These read the final state through linearizable reads (domains) and the
//! registrars' accounts with their ledgers. Each ledger entry carries the
//! server transaction id of the command that moved the money, which ties
//! charges to operations in the history.

use std::collections::{BTreeMap, BTreeSet};

use kauri_client::proto::Reason;

use super::domain::add_years;
use super::Violation;
use crate::history::{Call, DomainView, History, Op, OpKind, Outcome, Reply, TransferAction};

/// TLD prices, per year, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prices {
    /// Price of one year of a create.
    pub create_per_year: i64,
    /// Price of one year of a renew (and of a transfer, which adds one
    /// year: the TLD's transfer price defaults to the renew price).
    pub renew_per_year: i64,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLine {
    /// Sequence number in the account (from 1).
    pub seq: u64,
    /// "deposit", "refund", or a charge: "create", "renew", "transfer" (and,
    /// for operations the workload does not do, "auto_renew", "restore").
    pub kind: String,
    /// Signed amount: deposits and refunds positive, charges negative.
    pub amount: i64,
    /// The domain a charge is for.
    pub object: String,
    /// Server transaction id of the command.
    pub sv_trid: String,
    /// Refunds: the server transaction id of the charge refunded.
    pub linked_sv_trid: String,
}

/// A registrar's account as read at the end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Account {
    /// Balance.
    pub balance: i64,
    /// Total ever deposited.
    pub total_deposits: i64,
    /// Total ever charged.
    pub total_charges: i64,
    /// Total ever refunded.
    pub total_refunds: i64,
    /// Ledger entries, oldest first.
    pub ledger: Vec<LedgerLine>,
    /// Whether `ledger` holds every entry (not just the newest ones).
    pub ledger_complete: bool,
}

/// What the cluster held after healing.
#[derive(Debug, Clone, Default)]
pub struct FinalState {
    /// A final linearizable read of every name the workload touched:
    /// `None` if it does not exist.
    pub domains: BTreeMap<String, Option<DomainView>>,
    /// Every registrar of the workload.
    pub accounts: BTreeMap<String, Account>,
    /// Deposits acknowledged to the workload, per registrar.
    pub deposits: BTreeMap<String, i64>,
    /// The TLD's prices.
    pub prices: Prices,
    /// Names several registrars raced to create.
    pub raced: BTreeSet<String>,
}

fn violation(checker: &'static str, summary: String, ops: &[&Op]) -> Violation {
    Violation {
        checker,
        summary,
        detail: ops.iter().map(|op| format!("  {op}\n")).collect(),
    }
}

/// An acknowledged mutation: its answer and server transaction id.
fn ok_mutation(op: &Op) -> Option<(&Reply, &str)> {
    match &op.outcome {
        Outcome::Ok(reply) if !op.call.is_read() => Some((reply, reply.sv_trid().unwrap_or(""))),
        _ => None,
    }
}

/// Years a charging call pays for.
fn period_of(call: &Call) -> u32 {
    match call {
        Call::Create { period_years, .. } | Call::Renew { period_years, .. } => *period_years,
        Call::Transfer(TransferAction::Request) => 1,
        _ => 0,
    }
}

/// The ledger kind of the charge a call makes, if it charges.
fn ledger_kind(call: &Call) -> Option<&'static str> {
    match call {
        Call::Create { .. } => Some("create"),
        Call::Renew { .. } => Some("renew"),
        Call::Transfer(TransferAction::Request) => Some("transfer"),
        _ => None,
    }
}

/// Whether a call may refund (a delete in grace, a transfer that ends
/// without approval).
fn refunds(call: &Call) -> bool {
    matches!(
        call,
        Call::Delete | Call::Transfer(TransferAction::Reject | TransferAction::Cancel)
    )
}

fn is_charge(line: &LedgerLine) -> bool {
    line.kind != "deposit" && line.kind != "refund"
}

/// Names on which a delete or a transfer approval may have taken effect:
/// their registration may be gone or have changed hands since a create.
fn changed_hands(history: &History) -> BTreeSet<&str> {
    history
        .ops
        .iter()
        .filter(|op| {
            matches!(
                op.call,
                Call::Delete | Call::Transfer(TransferAction::Approve)
            ) && !matches!(op.outcome, Outcome::Rejected { .. })
        })
        .map(|op| op.key.as_str())
        .collect()
}

/// Every acknowledged create, renew and transfer request is in the final
/// state, exactly once: the registration it answered is still there (same
/// ROID, unless a delete or transfer may have intervened), the expiry is not
/// earlier than the renew answered, and the actor's ledger has exactly one
/// entry with its server transaction id, for the amount it answered. Every
/// acknowledged refund (delete, transfer reject or cancel) is in the
/// refunded registrar's ledger under its transaction id, for the amount
/// answered. Distinct acknowledged mutations have distinct transaction ids.
pub fn check_acknowledged_writes(history: &History, fin: &FinalState) -> Vec<Violation> {
    const NAME: &str = "acknowledged-writes";
    let mut out = Vec::new();
    let mut by_sv_trid: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    let changed = changed_hands(history);
    let complete_account = |id: &str, op: &Op, out: &mut Vec<Violation>| match fin.accounts.get(id)
    {
        None => {
            out.push(violation(NAME, format!("no account read for {id}"), &[op]));
            None
        }
        Some(a) if a.ledger_complete => Some(a),
        Some(_) => None,
    };
    for op in &history.ops {
        let Some((reply, sv_trid)) = ok_mutation(op) else {
            continue;
        };
        by_sv_trid.entry(sv_trid).or_default().push(op);
        if let Some(refunded) = reply.refunded() {
            // The refund goes to the sponsor of a delete, to the gaining
            // registrar of a transfer.
            let to = match reply {
                Reply::Transfer { gaining, .. } => gaining.as_str(),
                _ => op.actor.as_str(),
            };
            if let Some(account) = complete_account(to, op, &mut out) {
                let ledger: i64 = account
                    .ledger
                    .iter()
                    .filter(|l| l.sv_trid == sv_trid && l.kind == "refund")
                    .map(|l| l.amount)
                    .sum();
                if ledger != refunded {
                    out.push(violation(
                        NAME,
                        format!(
                            "acknowledged {} of {} ({sv_trid}) refunded {refunded}, but {to}'s \
                             ledger has {ledger} of refunds under it",
                            op.call, op.key
                        ),
                        &[op],
                    ));
                }
            }
        }
        let Some(kind) = ledger_kind(&op.call) else {
            continue;
        };
        if let Some(answered) = reply
            .domain()
            .filter(|_| !changed.contains(op.key.as_str()))
        {
            match fin.domains.get(&op.key) {
                None => out.push(violation(
                    NAME,
                    format!("{} has no final read", op.key),
                    &[op],
                )),
                Some(None) => out.push(violation(
                    NAME,
                    format!(
                        "acknowledged {kind} of {} is lost: the name does not exist",
                        op.key
                    ),
                    &[op],
                )),
                Some(Some(now)) if now.roid != answered.roid => out.push(violation(
                    NAME,
                    format!(
                        "acknowledged {kind} of {} answered registration {}, but {} exists now",
                        op.key, answered.roid, now.roid
                    ),
                    &[op],
                )),
                Some(Some(now)) if now.expiry_ms < answered.expiry_ms => out.push(violation(
                    NAME,
                    format!(
                        "acknowledged {kind} of {} answered expiry {}, but it expires earlier \
                         now ({})",
                        op.key, answered.expiry_ms, now.expiry_ms
                    ),
                    &[op],
                )),
                Some(Some(_)) => {}
            }
        }
        let Some(account) = complete_account(&op.actor, op, &mut out) else {
            continue;
        };
        let charged = reply.charged();
        let entries: Vec<&LedgerLine> = account
            .ledger
            .iter()
            .filter(|l| l.sv_trid == sv_trid && is_charge(l))
            .collect();
        match entries.as_slice() {
            [line]
                if line.kind == kind && line.object == op.key && Some(-line.amount) == charged => {}
            [] => out.push(violation(
                NAME,
                format!(
                    "acknowledged {kind} of {} ({sv_trid}) has no ledger entry in {}'s account",
                    op.key, op.actor
                ),
                &[op],
            )),
            lines => out.push(violation(
                NAME,
                format!(
                    "acknowledged {kind} of {} ({sv_trid}) has ledger entries {lines:?}, \
                     expected one {kind} of {charged:?}",
                    op.key
                ),
                &[op],
            )),
        }
    }
    for (sv_trid, ops) in by_sv_trid {
        if ops.len() > 1 {
            out.push(violation(
                NAME,
                format!(
                    "{} different operations were answered with {sv_trid}",
                    ops.len()
                ),
                &ops,
            ));
        }
    }
    out
}

/// Each name has at most one winner, and for names registrars raced for:
/// the winner is the registrar that got an ok (or, if its answer was lost,
/// one that sent a create with an unknown outcome), every other create was
/// told `OBJECT_EXISTS` or has an unknown outcome that did not win (no
/// charge for it), and a name nobody holds was never reported taken.
pub fn check_races(history: &History, fin: &FinalState) -> Vec<Violation> {
    const NAME: &str = "drop-catch";
    let mut out = Vec::new();
    let changed = changed_hands(history);
    for (key, ops) in history.by_key() {
        if changed.contains(key) {
            // Deleted or transferred since: who holds it says nothing about
            // who won the create. (The workload never deletes or transfers
            // raced names.)
            if fin.raced.contains(key) {
                out.push(violation(
                    NAME,
                    format!(
                        "raced name {key} was deleted or transferred; the race is not checkable"
                    ),
                    &ops,
                ));
            }
            continue;
        }
        let creates: Vec<&Op> = ops
            .iter()
            .copied()
            .filter(|op| op.call.kind() == OpKind::Create)
            .collect();
        if creates.is_empty() {
            continue;
        }
        let raced = fin.raced.contains(key);
        let winners: Vec<&Op> = creates
            .iter()
            .copied()
            .filter(|op| ok_mutation(op).is_some())
            .collect();
        if winners.len() > 1 {
            out.push(violation(
                NAME,
                format!("{key} was created {} times", winners.len()),
                &winners,
            ));
            continue;
        }
        let holder = match fin.domains.get(key) {
            Some(d) => d.as_ref(),
            None => continue, // reported by check_acknowledged_writes
        };
        let Some(holder) = holder else {
            // Nobody holds it: nobody may have been told it was taken.
            let taken: Vec<&Op> = creates
                .iter()
                .copied()
                .filter(|op| op.outcome.rejection() == Some(Reason::ObjectExists))
                .collect();
            if !taken.is_empty() {
                out.push(violation(
                    NAME,
                    format!("{key} is not registered, yet creates were told OBJECT_EXISTS"),
                    &taken,
                ));
            }
            if raced && creates.iter().any(|op| op.outcome.is_definite()) && taken.is_empty() {
                let definite: Vec<&Op> = creates
                    .iter()
                    .copied()
                    .filter(|op| op.outcome.is_definite())
                    .collect();
                out.push(violation(
                    NAME,
                    format!("raced name {key} has no winner though creates were answered"),
                    &definite,
                ));
            }
            continue;
        };
        let winner = &holder.sponsor;
        if let Some(w) = winners.first() {
            if w.actor != *winner {
                out.push(violation(
                    NAME,
                    format!("{key} was answered to {} but is held by {winner}", w.actor),
                    &[w],
                ));
            }
        } else if !creates
            .iter()
            .any(|op| op.actor == *winner && !op.outcome.is_definite())
        {
            out.push(violation(
                NAME,
                format!(
                    "{key} is held by {winner}, which never got an ok and has no create \
                     with an unknown outcome"
                ),
                &creates,
            ));
        }
        // Everyone else lost with OBJECT_EXISTS (or does not know).
        let bad_losers: Vec<&Op> = creates
            .iter()
            .copied()
            .filter(|op| ok_mutation(op).is_none())
            .filter(|op| {
                !matches!(
                    op.outcome,
                    Outcome::Rejected {
                        reason: Reason::ObjectExists,
                        ..
                    } | Outcome::Unknown { .. }
                )
            })
            .collect();
        if !bad_losers.is_empty() {
            out.push(violation(
                NAME,
                format!("losers of {key} were not told OBJECT_EXISTS"),
                &bad_losers,
            ));
        }
        // Unknown creates resolve to losing unless their registrar holds it;
        // the ledgers must say the same: exactly one create charge, the
        // holder's.
        let charges: Vec<(&str, &LedgerLine)> = fin
            .accounts
            .iter()
            .filter(|(_, a)| a.ledger_complete)
            .flat_map(|(id, a)| a.ledger.iter().map(move |l| (id.as_str(), l)))
            .filter(|(_, l)| l.kind == "create" && l.object == key)
            .collect();
        let complete = fin.accounts.values().all(|a| a.ledger_complete);
        if complete && (charges.len() != 1 || charges[0].0 != winner) {
            out.push(violation(
                NAME,
                format!(
                    "{key} is held by {winner}, but create charges for it are {:?}",
                    charges
                        .iter()
                        .map(|(id, l)| format!("{id}:{}", l.sv_trid))
                        .collect::<Vec<_>>()
                ),
                &creates,
            ));
        }
    }
    out
}

/// Money is conserved: for every registrar, deposits plus refunds equal
/// balance plus charges, deposits equal what was acknowledged, the ledger
/// adds up to the totals, every charge belongs to an operation that committed (an ok with
/// that transaction id, or one unknown outcome each, never a rejection),
/// charges the TLD's price for its period, no transaction is charged twice,
/// every refund pays back one earlier charge of the same account in full,
/// once, for a delete or transfer that may have committed, and each
/// domain's expiry is its creation plus the years of its charges not
/// refunded (a transfer's year counts once approved).
pub fn check_money(history: &History, fin: &FinalState) -> Vec<Violation> {
    const NAME: &str = "money";
    let mut out = Vec::new();
    let plain = |summary: String| Violation {
        checker: NAME,
        summary,
        detail: String::new(),
    };
    for (id, account) in &fin.accounts {
        let deposited = fin.deposits.get(id).copied().unwrap_or(0);
        if account.total_deposits != deposited {
            out.push(plain(format!(
                "{id}: total deposits {} but {deposited} were acknowledged",
                account.total_deposits
            )));
        }
        if account.total_deposits + account.total_refunds != account.balance + account.total_charges
        {
            out.push(plain(format!(
                "{id}: deposits {} + refunds {} != balance {} + charges {}",
                account.total_deposits,
                account.total_refunds,
                account.balance,
                account.total_charges
            )));
        }
        if !account.ledger_complete {
            continue;
        }
        let sum = |keep: &dyn Fn(&LedgerLine) -> bool| -> i64 {
            account
                .ledger
                .iter()
                .filter(|l| keep(l))
                .map(|l| l.amount)
                .sum()
        };
        let ledger_deposits = sum(&|l| l.kind == "deposit");
        let ledger_refunds = sum(&|l| l.kind == "refund");
        let ledger_charges = -sum(&is_charge);
        if (ledger_deposits, ledger_charges, ledger_refunds)
            != (
                account.total_deposits,
                account.total_charges,
                account.total_refunds,
            )
        {
            out.push(plain(format!(
                "{id}: ledger sums to deposits {ledger_deposits}, charges {ledger_charges}, \
                 refunds {ledger_refunds}; the account says {}, {}, {}",
                account.total_deposits, account.total_charges, account.total_refunds
            )));
        }
        // One transaction moves this account's money once, except that a
        // delete refunds each of several charges in grace.
        let mut seen = BTreeSet::new();
        for line in &account.ledger {
            if !seen.insert((line.sv_trid.as_str(), line.linked_sv_trid.as_str())) {
                out.push(plain(format!(
                    "{id}: transaction {} is in the ledger twice",
                    line.sv_trid
                )));
            }
        }

        // Tie each charge to an operation of this registrar.
        let mine: Vec<&Op> = history.ops.iter().filter(|op| op.actor == *id).collect();
        let mut unknown_used = BTreeSet::new();
        for line in account.ledger.iter().filter(|l| is_charge(l)) {
            let price = match line.kind.as_str() {
                "create" => fin.prices.create_per_year,
                "renew" | "transfer" => fin.prices.renew_per_year,
                other => {
                    out.push(plain(format!(
                        "{id}: ledger entry {line:?} of kind {other:?}, which no operation of \
                         the workload causes"
                    )));
                    continue;
                }
            };
            let fits = |op: &&Op| {
                op.key == line.object
                    && ledger_kind(&op.call) == Some(line.kind.as_str())
                    && -line.amount == price * i64::from(period_of(&op.call))
            };
            if let Some(op) = mine
                .iter()
                .find(|op| ok_mutation(op).map(|(_, sv)| sv) == Some(line.sv_trid.as_str()))
            {
                if !fits(op) {
                    out.push(violation(
                        NAME,
                        format!("{id}: charge {line:?} does not fit the operation it answered"),
                        &[op],
                    ));
                }
                continue;
            }
            if let Some(op) = mine.iter().find(|op| {
                matches!(&op.outcome, Outcome::Rejected { sv_trid, .. } if *sv_trid == line.sv_trid)
            }) {
                out.push(violation(
                    NAME,
                    format!("{id}: charged {line:?} for a rejected command"),
                    &[op],
                ));
                continue;
            }
            let candidate = mine
                .iter()
                .find(|op| !op.outcome.is_definite() && fits(op) && !unknown_used.contains(&op.id));
            match candidate {
                Some(op) => {
                    unknown_used.insert(op.id);
                }
                None => out.push(plain(format!(
                    "{id}: charge {line:?} matches no operation that may have committed"
                ))),
            }
        }

        // Tie each refund to a charge it pays back and to the delete or
        // transfer (of any registrar: a reject refunds the gaining one)
        // that made it.
        let mut refunded_charges = BTreeSet::new();
        for line in account.ledger.iter().filter(|l| l.kind == "refund") {
            let charge = account
                .ledger
                .iter()
                .find(|c| is_charge(c) && c.sv_trid == line.linked_sv_trid);
            match charge {
                Some(c) if c.object == line.object && c.amount == -line.amount => {
                    if !refunded_charges.insert(c.sv_trid.as_str()) {
                        out.push(plain(format!(
                            "{id}: charge {} is refunded more than once",
                            c.sv_trid
                        )));
                    }
                }
                _ => out.push(plain(format!(
                    "{id}: refund {line:?} pays back no charge of this account in full"
                ))),
            }
            let on_key = |op: &&Op| op.key == line.object && refunds(&op.call);
            let answered = history
                .ops
                .iter()
                .find(|op| ok_mutation(op).map(|(_, sv)| sv) == Some(line.sv_trid.as_str()));
            let explained = match answered {
                Some(op) => on_key(&op),
                None => history
                    .ops
                    .iter()
                    .any(|op| on_key(&op) && !op.outcome.is_definite()),
            };
            if !explained {
                out.push(plain(format!(
                    "{id}: refund {line:?} matches no delete or transfer that may have committed"
                )));
            }
        }
    }

    // Each domain's expiry follows from the years charged for it and not
    // refunded (charges of a purged registration were all refunded).
    if fin.accounts.values().all(|a| a.ledger_complete) {
        let lines: Vec<&LedgerLine> = fin.accounts.values().flat_map(|a| &a.ledger).collect();
        let refunded: BTreeSet<&str> = lines
            .iter()
            .filter(|l| l.kind == "refund")
            .map(|l| l.linked_sv_trid.as_str())
            .collect();
        for (name, domain) in &fin.domains {
            let Some(d) = domain.as_ref().filter(|d| !d.pending_delete) else {
                continue;
            };
            let kept: Vec<&&LedgerLine> = lines
                .iter()
                .filter(|l| {
                    is_charge(l) && l.object == *name && !refunded.contains(l.sv_trid.as_str())
                })
                .collect();
            let years = |kind: &str, per_year: i64| -> Option<u32> {
                kept.iter()
                    .filter(|l| l.kind == kind)
                    .map(|l| {
                        (per_year > 0 && -l.amount % per_year == 0)
                            .then(|| (-l.amount / per_year) as u32)
                    })
                    .sum()
            };
            let creates = kept.iter().filter(|l| l.kind == "create").count();
            if creates != 1 {
                out.push(plain(format!(
                    "{name} exists (sponsor {}) with {creates} create charges not refunded",
                    d.sponsor
                )));
                continue;
            }
            // A pending transfer is paid for but has not moved the expiry.
            let pending = u32::from(d.pending_transfer);
            let total = (|| {
                years("create", fin.prices.create_per_year)?
                    .checked_add(years("renew", fin.prices.renew_per_year)?)?
                    .checked_add(years("transfer", fin.prices.renew_per_year)?)?
                    .checked_sub(pending)
            })();
            let expiry = total.and_then(|y| add_years(d.created_ms, y));
            if expiry != Some(d.expiry_ms) {
                out.push(plain(format!(
                    "{name} (sponsor {}) expires at {} but its charges add up to {expiry:?}",
                    d.sponsor, d.expiry_ms
                )));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: i64 = 1_767_225_600_000;
    const PRICES: Prices = Prices {
        create_per_year: 1000,
        renew_per_year: 700,
    };

    fn view(sponsor: &str, roid: &str, expiry_ms: i64) -> DomainView {
        DomainView {
            roid: roid.into(),
            sponsor: sponsor.into(),
            expiry_ms,
            created_ms: T0,
            statuses: BTreeSet::new(),
            nameservers: BTreeSet::new(),
            pending_transfer: false,
            pending_delete: false,
        }
    }

    fn op(id: usize, actor: &str, call: Call, outcome: Outcome) -> Op {
        Op {
            id,
            process: id,
            actor: actor.into(),
            key: "hot.test".into(),
            cl_trid: Some(format!("cl{id}")),
            call,
            invoked: Duration::from_millis(id as u64 * 10),
            completed: Duration::from_millis(id as u64 * 10 + 5),
            outcome,
            attempts: 1,
        }
    }

    fn create() -> Call {
        Call::Create {
            period_years: 1,
            nameservers: vec![],
        }
    }

    fn created(sponsor: &str, sv: &str) -> Outcome {
        Outcome::Ok(Reply::Domain {
            domain: view(sponsor, "D1", add_years(T0, 1).unwrap()),
            sv_trid: sv.into(),
            replayed: false,
            charged_minor_units: Some(1000),
        })
    }

    fn exists() -> Outcome {
        Outcome::Rejected {
            reason: Reason::ObjectExists,
            sv_trid: "kauri-9".into(),
            message: String::new(),
        }
    }

    fn account(lines: &[(&str, i64, &str)]) -> Account {
        let linked: Vec<(&str, i64, &str, &str)> =
            lines.iter().map(|(k, a, sv)| (*k, *a, *sv, "")).collect();
        account_linked(&linked)
    }

    /// An account with a deposit of 10,000 and then `lines` (kind, amount,
    /// transaction, refunded transaction).
    fn account_linked(lines: &[(&str, i64, &str, &str)]) -> Account {
        let mut ledger = vec![LedgerLine {
            seq: 1,
            kind: "deposit".into(),
            amount: 10_000,
            object: String::new(),
            sv_trid: "kauri-1".into(),
            linked_sv_trid: String::new(),
        }];
        for (kind, amount, sv, linked) in lines {
            ledger.push(LedgerLine {
                seq: ledger.len() as u64 + 1,
                kind: kind.to_string(),
                amount: *amount,
                object: "hot.test".into(),
                sv_trid: sv.to_string(),
                linked_sv_trid: linked.to_string(),
            });
        }
        let charges: i64 = lines.iter().filter(|l| l.0 != "refund").map(|l| -l.1).sum();
        let refunds: i64 = lines.iter().filter(|l| l.0 == "refund").map(|l| l.1).sum();
        Account {
            balance: 10_000 - charges + refunds,
            total_deposits: 10_000,
            total_charges: charges,
            total_refunds: refunds,
            ledger,
            ledger_complete: true,
        }
    }

    fn fin(holder: Option<DomainView>, accounts: Vec<(&str, Account)>) -> FinalState {
        FinalState {
            domains: BTreeMap::from([("hot.test".to_string(), holder)]),
            deposits: accounts
                .iter()
                .map(|(id, _)| (id.to_string(), 10_000))
                .collect(),
            accounts: accounts
                .into_iter()
                .map(|(id, a)| (id.to_string(), a))
                .collect(),
            prices: PRICES,
            raced: BTreeSet::from(["hot.test".to_string()]),
        }
    }

    fn all(history: &History, fin: &FinalState) -> Vec<Violation> {
        let mut v = check_acknowledged_writes(history, fin);
        v.extend(check_races(history, fin));
        v.extend(check_money(history, fin));
        v
    }

    #[test]
    fn a_clean_race_passes_every_check() {
        let history = History {
            ops: vec![
                op(0, "a", create(), created("a", "kauri-5")),
                op(1, "b", create(), exists()),
                op(
                    2,
                    "c",
                    create(),
                    Outcome::Unknown {
                        error: "timeout".into(),
                        client_said_unknown: true,
                    },
                ),
            ],
            events: vec![],
        };
        let fin = fin(
            Some(view("a", "D1", add_years(T0, 1).unwrap())),
            vec![
                ("a", account(&[("create", -1000, "kauri-5")])),
                ("b", account(&[])),
                ("c", account(&[])),
            ],
        );
        let v = all(&history, &fin);
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn an_unknown_create_that_won_is_accepted_when_the_ledger_agrees() {
        let history = History {
            ops: vec![
                op(0, "a", create(), exists()),
                op(
                    1,
                    "c",
                    create(),
                    Outcome::Unknown {
                        error: "timeout".into(),
                        client_said_unknown: true,
                    },
                ),
            ],
            events: vec![],
        };
        let fin = fin(
            Some(view("c", "D1", add_years(T0, 1).unwrap())),
            vec![
                ("a", account(&[])),
                ("c", account(&[("create", -1000, "kauri-7")])),
            ],
        );
        let v = all(&history, &fin);
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn a_lost_acknowledged_create_fails() {
        let history = History {
            ops: vec![op(0, "a", create(), created("a", "kauri-5"))],
            events: vec![],
        };
        let fin = fin(None, vec![("a", account(&[("create", -1000, "kauri-5")]))]);
        let v = all(&history, &fin);
        assert!(
            v.iter()
                .any(|v| v.checker == "acknowledged-writes" && v.summary.contains("lost")),
            "{v:#?}"
        );
    }

    #[test]
    fn two_winners_and_a_loser_charged_fail() {
        let history = History {
            ops: vec![
                op(0, "a", create(), created("a", "kauri-5")),
                op(
                    1,
                    "b",
                    create(),
                    Outcome::Unknown {
                        error: "timeout".into(),
                        client_said_unknown: true,
                    },
                ),
            ],
            events: vec![],
        };
        // b's unknown create is charged although a holds the name.
        let fin = fin(
            Some(view("a", "D1", add_years(T0, 1).unwrap())),
            vec![
                ("a", account(&[("create", -1000, "kauri-5")])),
                ("b", account(&[("create", -1000, "kauri-6")])),
            ],
        );
        let v = check_races(&history, &fin);
        assert!(
            v.iter().any(|v| v.summary.contains("create charges")),
            "{v:#?}"
        );
    }

    #[test]
    fn a_loser_told_something_else_fails() {
        let history = History {
            ops: vec![
                op(0, "a", create(), created("a", "kauri-5")),
                op(
                    1,
                    "b",
                    create(),
                    Outcome::Rejected {
                        reason: Reason::InsufficientFunds,
                        sv_trid: "kauri-6".into(),
                        message: String::new(),
                    },
                ),
            ],
            events: vec![],
        };
        let fin = fin(
            Some(view("a", "D1", add_years(T0, 1).unwrap())),
            vec![
                ("a", account(&[("create", -1000, "kauri-5")])),
                ("b", account(&[])),
            ],
        );
        let v = check_races(&history, &fin);
        assert!(v.iter().any(|v| v.summary.contains("losers")), "{v:#?}");
    }

    #[test]
    fn a_charge_twice_or_for_a_rejection_or_out_of_thin_air_fails() {
        let history = History {
            ops: vec![
                op(0, "a", create(), created("a", "kauri-5")),
                op(1, "a", create(), exists()),
            ],
            events: vec![],
        };
        let holder = Some(view("a", "D1", add_years(T0, 1).unwrap()));
        let twice = fin(
            holder.clone(),
            vec![(
                "a",
                account(&[("create", -1000, "kauri-5"), ("create", -1000, "kauri-5")]),
            )],
        );
        let v = check_money(&history, &twice);
        assert!(v.iter().any(|v| v.summary.contains("twice")), "{v:#?}");

        let rejected = fin(
            holder.clone(),
            vec![(
                "a",
                account(&[("create", -1000, "kauri-5"), ("create", -1000, "kauri-9")]),
            )],
        );
        let v = check_money(&history, &rejected);
        assert!(v.iter().any(|v| v.summary.contains("rejected")), "{v:#?}");

        let thin_air = fin(
            holder,
            vec![(
                "a",
                account(&[("create", -1000, "kauri-5"), ("renew", -700, "kauri-12")]),
            )],
        );
        let v = check_money(&history, &thin_air);
        assert!(
            v.iter().any(|v| v.summary.contains("matches no operation")),
            "{v:#?}"
        );
    }

    #[test]
    fn unbalanced_totals_and_unexplained_expiry_fail() {
        let history = History {
            ops: vec![op(0, "a", create(), created("a", "kauri-5"))],
            events: vec![],
        };
        let mut acc = account(&[("create", -1000, "kauri-5")]);
        acc.balance += 1;
        let unbalanced = fin(
            Some(view("a", "D1", add_years(T0, 1).unwrap())),
            vec![("a", acc)],
        );
        let v = check_money(&history, &unbalanced);
        assert!(v.iter().any(|v| v.summary.contains("!= balance")), "{v:#?}");

        // Expiry moved by a year nobody paid for.
        let free_year = fin(
            Some(view("a", "D1", add_years(T0, 2).unwrap())),
            vec![("a", account(&[("create", -1000, "kauri-5")]))],
        );
        let v = check_money(&history, &free_year);
        assert!(v.iter().any(|v| v.summary.contains("expires")), "{v:#?}");
    }

    fn ok_transfer(
        status: &str,
        gaining: &str,
        sv: &str,
        charged: Option<i64>,
        refunded: Option<i64>,
    ) -> Outcome {
        Outcome::Ok(Reply::Transfer {
            status: status.into(),
            gaining: gaining.into(),
            losing: "a".into(),
            expiry_ms: 0,
            sv_trid: sv.into(),
            replayed: false,
            charged_minor_units: charged,
            refunded_minor_units: refunded,
        })
    }

    /// A name created by a, deleted in add grace: the create is refunded.
    fn deleted_history() -> History {
        History {
            ops: vec![
                op(0, "a", create(), created("a", "kauri-5")),
                op(
                    1,
                    "a",
                    Call::Delete,
                    Outcome::Ok(Reply::Deleted {
                        pending_delete: false,
                        sv_trid: "kauri-8".into(),
                        replayed: false,
                        refunded_minor_units: Some(1000),
                    }),
                ),
            ],
            events: vec![],
        }
    }

    #[test]
    fn a_delete_in_grace_refunds_its_create_once() {
        let history = deleted_history();
        let mut ok = fin(
            None,
            vec![(
                "a",
                account_linked(&[
                    ("create", -1000, "kauri-5", ""),
                    ("refund", 1000, "kauri-8", "kauri-5"),
                ]),
            )],
        );
        ok.raced.clear();
        let v = all(&history, &ok);
        assert!(v.is_empty(), "{v:#?}");

        // The refund missing from the ledger...
        let mut missing = ok.clone();
        missing
            .accounts
            .insert("a".into(), account(&[("create", -1000, "kauri-5")]));
        let v = check_acknowledged_writes(&history, &missing);
        assert!(
            v.iter().any(|v| v.summary.contains("refunded 1000")),
            "{v:#?}"
        );
        // ... paid twice ...
        let mut twice = ok.clone();
        twice.accounts.insert(
            "a".into(),
            account_linked(&[
                ("create", -1000, "kauri-5", ""),
                ("refund", 1000, "kauri-8", "kauri-5"),
                ("refund", 1000, "kauri-9", "kauri-5"),
            ]),
        );
        let v = check_money(&history, &twice);
        assert!(
            v.iter().any(|v| v.summary.contains("more than once")),
            "{v:#?}"
        );
        assert!(
            v.iter().any(|v| v.summary.contains("matches no delete")),
            "{v:#?}"
        );
        // ... or of a charge that was never made all fail.
        let mut thin_air = ok.clone();
        thin_air.accounts.insert(
            "a".into(),
            account_linked(&[
                ("create", -1000, "kauri-5", ""),
                ("refund", 1000, "kauri-8", "kauri-4"),
            ]),
        );
        let v = check_money(&history, &thin_air);
        assert!(
            v.iter().any(|v| v.summary.contains("pays back no charge")),
            "{v:#?}"
        );
    }

    #[test]
    fn an_approved_transfer_is_paid_once_and_adds_its_year() {
        let history = History {
            ops: vec![
                op(0, "a", create(), created("a", "kauri-5")),
                op(
                    1,
                    "b",
                    Call::Transfer(TransferAction::Request),
                    ok_transfer("pending", "b", "kauri-6", Some(700), None),
                ),
                op(
                    2,
                    "a",
                    Call::Transfer(TransferAction::Approve),
                    ok_transfer("clientApproved", "b", "kauri-7", None, None),
                ),
            ],
            events: vec![],
        };
        let mut ok = fin(
            Some(view("b", "D1", add_years(T0, 2).unwrap())),
            vec![
                ("a", account(&[("create", -1000, "kauri-5")])),
                ("b", account(&[("transfer", -700, "kauri-6")])),
            ],
        );
        ok.raced.clear();
        let v = all(&history, &ok);
        assert!(v.is_empty(), "{v:#?}");

        // Without the year...
        let mut short = ok.clone();
        short.domains.insert(
            "hot.test".into(),
            Some(view("b", "D1", add_years(T0, 1).unwrap())),
        );
        let v = check_money(&history, &short);
        assert!(v.iter().any(|v| v.summary.contains("add up to")), "{v:#?}");
        // ... or charged to the wrong registrar, it fails.
        let mut wrong = ok.clone();
        wrong.accounts.insert(
            "a".into(),
            account(&[("create", -1000, "kauri-5"), ("transfer", -700, "kauri-6")]),
        );
        wrong.accounts.insert("b".into(), account(&[]));
        let v = all(&history, &wrong);
        assert!(!v.is_empty());
        // A raced name that changed hands cannot be judged.
        let mut raced = ok.clone();
        raced.raced.insert("hot.test".into());
        let v = check_races(&history, &raced);
        assert!(
            v.iter().any(|v| v.summary.contains("not checkable")),
            "{v:#?}"
        );
    }
}
