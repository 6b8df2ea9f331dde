//! Checkers over a recorded [`History`] and the state the cluster holds
//! after healing. Each returns the violations it found; none of them
//! tolerates a violation. The pieces are reusable on their own:
//!
//! - [`linearizability`]: a generic per-key search with counterexample
//!   shrinking, run with the [`domain::DomainModel`] by
//!   [`check_linearizability`];
//! - [`registry`]: acknowledged writes, drop-catch races, money, and the
//!   client library's `outcome_unknown` flag;
//! - [`check_convergence`]: every replica holds the same state.
//!
//! [`check_all`] runs everything and returns a [`Report`].

pub mod domain;
pub mod linearizability;
pub mod registry;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use kauri_client::proto::StateDigestResponse;

use crate::history::{History, Op, Outcome};
use linearizability::Verdict;
pub use registry::{Account, FinalState, LedgerLine, Prices};

/// A property the history or the final state broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which checker found it.
    pub checker: &'static str,
    /// One line saying what is wrong.
    pub summary: String,
    /// The operations that show it (a counterexample), one per line.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {}", self.checker, self.summary)?;
        if !self.detail.is_empty() {
            write!(f, "{}", self.detail)?;
        }
        Ok(())
    }
}

/// Everything the checkers found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Violations; empty when all properties hold.
    pub violations: Vec<Violation>,
    /// Things that are not violations but limit what was checked (e.g. a
    /// linearizability search that ran out of budget).
    pub notes: Vec<String>,
}

impl Report {
    /// Whether no checker found a violation.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// Adds another report's findings.
    pub fn merge(&mut self, other: Report) {
        self.violations.extend(other.violations);
        self.notes.extend(other.notes);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.violations.is_empty() {
            writeln!(f, "no violations")?;
        }
        for v in &self.violations {
            write!(f, "{v}")?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

fn listing(ops: &[Op], history: &History) -> String {
    let mut text: String = ops.iter().map(|op| format!("  {op}\n")).collect();
    if let (Some(first), Some(last)) = (
        ops.iter().map(|op| op.invoked).min(),
        ops.iter().map(|op| op.completed).max(),
    ) {
        let window = history.events_between(first.saturating_sub(Duration::from_secs(5)), last);
        for e in window {
            text.push_str(&format!(
                "  (cluster at {:.3}s: {})\n",
                e.at.as_secs_f64(),
                e.text
            ));
        }
    }
    text
}

/// Checks every key's operations for linearizability against the domain
/// model, each with a search budget of `budget` configurations. A failing
/// key is reported with a shrunk counterexample.
pub fn check_linearizability(history: &History, budget: usize) -> Report {
    let model = domain::DomainModel;
    let mut report = Report::default();
    for (key, ops) in history.by_key() {
        let ops: Vec<Op> = ops.into_iter().cloned().collect();
        match linearizability::check(&model, &ops, budget) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive { explored } => report.notes.push(format!(
                "linearizability of {key} not decided: search stopped after {explored} \
                 configurations ({} ops)",
                ops.len()
            )),
            Verdict::NotLinearizable => {
                let minimal = linearizability::minimize(&model, &ops, budget);
                report.violations.push(Violation {
                    checker: "linearizability",
                    summary: format!(
                        "operations on {key} are not linearizable; smallest failing \
                         sub-history found ({} of {} ops):",
                        minimal.len(),
                        ops.len()
                    ),
                    detail: listing(&minimal, history),
                });
            }
        }
    }
    report
}

/// Whether the client library did not flag `op`'s final error as
/// `outcome_unknown` although `op` is a mutation without a definite answer.
fn client_said_definite(op: &Op) -> bool {
    !op.call.is_read()
        && matches!(
            op.outcome,
            Outcome::Unknown {
                client_said_unknown: false,
                ..
            }
        )
}

/// The client library's contract: an error *not* flagged `outcome_unknown`
/// means the mutation did not take effect. For each key with such
/// operations, the history without them (as if they never happened) must
/// still be linearizable; if only the history with them is, one of them
/// took effect although the client said it failed.
pub fn check_client_flags(history: &History, budget: usize) -> Report {
    let model = domain::DomainModel;
    let mut report = Report::default();
    for (key, ops) in history.by_key() {
        if !ops.iter().any(|op| client_said_definite(op)) {
            continue;
        }
        let all: Vec<Op> = ops.iter().map(|op| (*op).clone()).collect();
        let without: Vec<Op> = all
            .iter()
            .filter(|op| !client_said_definite(op))
            .cloned()
            .collect();
        if linearizability::check(&model, &all, budget) != Verdict::Linearizable
            || linearizability::check(&model, &without, budget) != Verdict::NotLinearizable
        {
            continue; // a plain linearizability violation, or nothing
        }
        let flagged: Vec<Op> = all
            .iter()
            .filter(|op| client_said_definite(op))
            .cloned()
            .collect();
        let minimal = linearizability::minimize(&model, &without, budget);
        report.violations.push(Violation {
            checker: "client-outcome",
            summary: format!(
                "on {key}, a mutation the client reported as failed (an error without \
                 outcome_unknown) took effect: the history is only explainable with it"
            ),
            detail: format!(
                "{}  without these, the smallest unexplainable sub-history is:\n{}",
                listing(&flagged, history),
                listing(&minimal, history)
            ),
        });
    }
    report
}

/// Checks that `digests` (one per running node, after healing) agree on
/// the applied index and the state digest, and that all `expected_nodes`
/// answered.
pub fn check_convergence(digests: &[StateDigestResponse], expected_nodes: usize) -> Vec<Violation> {
    let summary_of = |d: &StateDigestResponse| {
        format!(
            "  node {} applied {} digest {} ({} records)\n",
            d.node_id, d.applied_index, d.digest, d.records
        )
    };
    let detail: String = digests.iter().map(summary_of).collect();
    let mut out = Vec::new();
    if digests.len() < expected_nodes {
        out.push(Violation {
            checker: "convergence",
            summary: format!(
                "only {} of {expected_nodes} nodes returned a state digest",
                digests.len()
            ),
            detail: detail.clone(),
        });
    }
    let mut by_index: BTreeMap<u64, BTreeMap<&str, Vec<u64>>> = BTreeMap::new();
    for d in digests {
        by_index
            .entry(d.applied_index)
            .or_default()
            .entry(d.digest.as_str())
            .or_default()
            .push(d.node_id);
    }
    for (index, states) in &by_index {
        if states.len() > 1 {
            let holders: Vec<String> = states
                .iter()
                .map(|(digest, nodes)| format!("{digest} on nodes {nodes:?}"))
                .collect();
            out.push(Violation {
                checker: "convergence",
                summary: format!(
                    "replicas hold different states at applied index {index}: {}",
                    holders.join("; ")
                ),
                detail: detail.clone(),
            });
        }
    }
    if out.is_empty()
        && digests
            .windows(2)
            .any(|w| w[0].applied_index != w[1].applied_index)
    {
        out.push(Violation {
            checker: "convergence",
            summary: "replicas did not reach the same applied index after healing".into(),
            detail,
        });
    }
    out
}

/// Runs every checker.
pub fn check_all(
    history: &History,
    fin: &FinalState,
    digests: &[StateDigestResponse],
    expected_nodes: usize,
) -> Report {
    let mut report = check_linearizability(history, linearizability::DEFAULT_BUDGET);
    report
        .violations
        .extend(registry::check_acknowledged_writes(history, fin));
    report
        .violations
        .extend(registry::check_races(history, fin));
    report
        .violations
        .extend(registry::check_money(history, fin));
    report.merge(check_client_flags(history, linearizability::DEFAULT_BUDGET));
    report
        .violations
        .extend(check_convergence(digests, expected_nodes));
    for (id, account) in &fin.accounts {
        if !account.ledger_complete {
            report.notes.push(format!(
                "{id}'s ledger is longer than one read returns; its charges were checked \
                 by totals only"
            ));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, Reply};

    fn digest(node: u64, index: u64, digest: &str) -> StateDigestResponse {
        StateDigestResponse {
            node_id: node,
            applied_index: index,
            digest: digest.into(),
            records: 10,
        }
    }

    fn op(id: usize, call: Call, span: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            process: id,
            actor: "a".into(),
            key: "x.test".into(),
            cl_trid: Some(format!("cl{id}")),
            call,
            invoked: Duration::from_millis(span.0),
            completed: Duration::from_millis(span.1),
            outcome,
            attempts: 1,
        }
    }

    #[test]
    fn a_mutation_the_client_called_failed_must_not_take_effect() {
        let create = Call::Create {
            period_years: 1,
            nameservers: vec![],
        };
        let failed = |client_said_unknown| Outcome::Unknown {
            error: "NOT_LEADER".into(),
            client_said_unknown,
        };
        let taken = Outcome::Ok(Reply::Available(false));
        // The create the client called failed, yet the name is taken later.
        let h = History {
            ops: vec![
                op(0, create.clone(), (0, 5), failed(false)),
                op(1, Call::Check, (10, 11), taken.clone()),
            ],
            events: vec![],
        };
        let report = check_client_flags(&h, 1000);
        assert_eq!(report.violations.len(), 1, "{report}");
        assert!(check_linearizability(&h, 1000).is_clean());
        // Flagged unknown, the same history is fine.
        let h = History {
            ops: vec![
                op(0, create, (0, 5), failed(true)),
                op(1, Call::Check, (10, 11), taken),
            ],
            events: vec![],
        };
        assert!(check_client_flags(&h, 1000).is_clean());
    }

    #[test]
    fn identical_digests_converge() {
        let d = [
            digest(1, 50, "ab"),
            digest(2, 50, "ab"),
            digest(3, 50, "ab"),
        ];
        assert!(check_convergence(&d, 3).is_empty());
    }

    #[test]
    fn divergent_missing_or_lagging_replicas_fail() {
        let split = [
            digest(1, 50, "ab"),
            digest(2, 50, "cd"),
            digest(3, 50, "ab"),
        ];
        let v = check_convergence(&split, 3);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].summary.contains("cd on nodes [2]"), "{v:?}");

        let missing = [digest(1, 50, "ab"), digest(2, 50, "ab")];
        assert_eq!(check_convergence(&missing, 3).len(), 1);

        let lagging = [
            digest(1, 50, "ab"),
            digest(2, 49, "xx"),
            digest(3, 50, "ab"),
        ];
        let v = check_convergence(&lagging, 3);
        assert!(v[0].summary.contains("same applied index"), "{v:?}");
    }
}
