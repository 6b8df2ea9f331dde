//! A linearizability checker for the operations on one key, in the style of
//! Wing & Gong with Lowe's memoisation (as in Porcupine and Knossos).
//!
//! The search looks for an order of the operations that respects real time
//! (an operation that returned before another was invoked comes first) and
//! that a sequential [`Model`] accepts, each operation's observed outcome
//! included. Operations with an unknown outcome never return: they may take
//! effect at any point after their invocation, or never. A configuration
//! (set of operations placed, model state) that failed once is not explored
//! again, and the whole search stops after a budget of configurations:
//! histories per key are small, and a search that runs out says so rather
//! than guessing.
//!
//! When a history is not linearizable, [`minimize`] shrinks it to a small
//! sub-history that is still not linearizable, using only reductions that
//! keep the failure meaningful (a failing reduction implies the original
//! fails): cutting the history at a point in time (operations in flight then
//! become unknown, later ones go), and dropping operations that cannot have
//! changed the state (reads and definite rejections).

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use crate::history::{Op, Outcome};

/// A sequential specification of one key.
///
/// Soundness of [`minimize`] needs one property: dropping an operation for
/// which [`Model::has_effect`] is false never turns an acceptable history
/// into an unacceptable one (a model that binds unknown values on reads must
/// treat an unbound value as matching anything).
pub trait Model {
    /// The state of the key.
    type State: Clone + Eq + Hash + fmt::Debug;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// The states `op` may lead to from `state` given what it observed;
    /// empty if the model cannot explain the outcome in `state`. For an
    /// operation with an unknown outcome, the states if it took effect (the
    /// search itself covers "it never did").
    fn step(&self, state: &Self::State, op: &Op) -> Vec<Self::State>;
    /// Whether `op` may have changed the state (false for reads and for
    /// definite rejections).
    fn has_effect(&self, op: &Op) -> bool;
}

/// The verdict on one key's operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid order exists.
    Linearizable,
    /// No valid order exists.
    NotLinearizable,
    /// The search budget ran out first.
    Inconclusive {
        /// Configurations explored.
        explored: usize,
    },
}

/// Default number of configurations one key's search may explore.
pub const DEFAULT_BUDGET: usize = 200_000;

struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [Op],
    /// Return time of each op; `None` for unknown outcomes (never returns).
    returned: Vec<Option<Duration>>,
    definite: usize,
    seen: HashSet<(Vec<u64>, M::State)>,
    budget: usize,
}

struct OutOfBudget;

impl<M: Model> Search<'_, M> {
    fn dfs(
        &mut self,
        done: &mut Bits,
        definite_done: usize,
        state: &M::State,
    ) -> Result<bool, OutOfBudget> {
        if definite_done == self.definite {
            return Ok(true);
        }
        if !self.seen.insert((done.0.clone(), state.clone())) {
            return Ok(false);
        }
        if self.seen.len() > self.budget {
            return Err(OutOfBudget);
        }
        // An op may go next only if no op still to place returned before it
        // was invoked.
        let horizon = (0..self.ops.len())
            .filter(|&i| !done.get(i))
            .filter_map(|i| self.returned[i])
            .min()
            .unwrap_or(Duration::MAX);
        for i in 0..self.ops.len() {
            if self.ops[i].invoked > horizon {
                break; // sorted by invocation: nothing later qualifies
            }
            if done.get(i) {
                continue;
            }
            for next in self.model.step(state, &self.ops[i]) {
                done.set(i);
                let d = definite_done + usize::from(self.returned[i].is_some());
                let found = self.dfs(done, d, &next)?;
                done.clear(i);
                if found {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// Puts `ops` in the form the search expects: sorted by invocation, without
/// reads whose outcome is unknown (they neither change nor observe state).
fn prepare(ops: &[Op]) -> Vec<Op> {
    let mut ops: Vec<Op> = ops
        .iter()
        .filter(|op| op.outcome.is_definite() || !op.call.is_read())
        .cloned()
        .collect();
    ops.sort_by_key(|op| (op.invoked, op.id));
    ops
}

/// Checks one key's operations against `model`, exploring at most `budget`
/// configurations.
pub fn check<M: Model>(model: &M, ops: &[Op], budget: usize) -> Verdict {
    let ops = prepare(ops);
    let returned: Vec<Option<Duration>> = ops.iter().map(Op::returned).collect();
    let definite = returned.iter().filter(|r| r.is_some()).count();
    let mut search = Search {
        model,
        ops: &ops,
        returned,
        definite,
        seen: HashSet::new(),
        budget,
    };
    let mut done = Bits::new(ops.len());
    match search.dfs(&mut done, 0, &model.init()) {
        Ok(true) => Verdict::Linearizable,
        Ok(false) => Verdict::NotLinearizable,
        Err(OutOfBudget) => Verdict::Inconclusive {
            explored: search.seen.len(),
        },
    }
}

/// The history as it stood at time `t`: operations invoked after `t` are
/// gone, and those in flight at `t` have an unknown outcome.
pub fn cut_at(ops: &[Op], t: Duration) -> Vec<Op> {
    ops.iter()
        .filter(|op| op.invoked <= t)
        .filter_map(|op| {
            let mut op = op.clone();
            if op.outcome.is_definite() && op.completed > t {
                if op.call.is_read() {
                    return None;
                }
                op.outcome = Outcome::Unknown {
                    error: format!("in flight at the cut ({:.3}s)", t.as_secs_f64()),
                    client_said_unknown: true,
                };
            }
            Some(op)
        })
        .collect()
}

/// Shrinks a non-linearizable history to a small one that still is not:
/// first the earliest cut in time that fails, then without each read or
/// rejection whose absence keeps it failing. Searches that run out of
/// budget count as passing, so the result always fails for certain.
pub fn minimize<M: Model>(model: &M, ops: &[Op], budget: usize) -> Vec<Op> {
    let fails = |ops: &[Op]| check(model, ops, budget) == Verdict::NotLinearizable;
    let mut current = prepare(ops);
    if !fails(&current) {
        return current;
    }

    // The earliest cut that fails (failing is monotone in the cut time).
    let mut times: Vec<Duration> = current.iter().filter_map(|op| op.returned()).collect();
    times.sort();
    times.dedup();
    let (mut lo, mut hi) = (0, times.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&cut_at(&current, times[mid])) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if lo < times.len() {
        current = prepare(&cut_at(&current, times[lo]));
    }

    // Drop what cannot have changed the state, latest first.
    let mut i = current.len();
    while i > 0 {
        i -= 1;
        if model.has_effect(&current[i]) {
            continue;
        }
        let mut without = current.clone();
        without.remove(i);
        if fails(&without) {
            current = without;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, Reply};

    /// A register of one boolean: create sets it (Ok if it was unset),
    /// check reads it.
    struct Flag;

    impl Model for Flag {
        type State = bool;
        fn init(&self) -> bool {
            false
        }
        fn step(&self, set: &bool, op: &Op) -> Vec<bool> {
            match (&op.call, &op.outcome) {
                (Call::Check, Outcome::Ok(Reply::Available(a))) if *a != *set => vec![*set],
                (Call::Create { .. }, Outcome::Ok(_)) if !*set => vec![true],
                (Call::Create { .. }, Outcome::Unknown { .. }) if !*set => vec![true],
                (Call::Create { .. }, Outcome::Rejected { .. }) if *set => vec![true],
                _ => vec![],
            }
        }
        fn has_effect(&self, op: &Op) -> bool {
            !op.call.is_read() && !matches!(op.outcome, Outcome::Rejected { .. })
        }
    }

    fn op(id: usize, call: Call, from_ms: u64, to_ms: u64, outcome: Outcome) -> Op {
        Op {
            id,
            process: id,
            actor: "r".into(),
            key: "k".into(),
            cl_trid: None,
            call,
            invoked: Duration::from_millis(from_ms),
            completed: Duration::from_millis(to_ms),
            outcome,
            attempts: 1,
        }
    }

    fn create(id: usize, from: u64, to: u64, outcome: Outcome) -> Op {
        let call = Call::Create {
            period_years: 1,
            nameservers: vec![],
        };
        op(id, call, from, to, outcome)
    }

    fn check_op(id: usize, from: u64, to: u64, available: bool) -> Op {
        op(
            id,
            Call::Check,
            from,
            to,
            Outcome::Ok(Reply::Available(available)),
        )
    }

    fn ok() -> Outcome {
        Outcome::Ok(Reply::Available(false))
    }

    fn unknown() -> Outcome {
        Outcome::Unknown {
            error: "timeout".into(),
            client_said_unknown: true,
        }
    }

    #[test]
    fn concurrent_read_may_see_either_side_of_a_write() {
        let h = [create(0, 0, 10, ok()), check_op(1, 5, 6, true)];
        assert_eq!(check(&Flag, &h, 1000), Verdict::Linearizable);
        let h = [create(0, 0, 10, ok()), check_op(1, 5, 6, false)];
        assert_eq!(check(&Flag, &h, 1000), Verdict::Linearizable);
    }

    #[test]
    fn a_read_after_an_acknowledged_write_must_see_it() {
        let h = [create(0, 0, 10, ok()), check_op(1, 11, 12, true)];
        assert_eq!(check(&Flag, &h, 1000), Verdict::NotLinearizable);
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        let late = [
            create(0, 0, 1, unknown()),
            check_op(1, 5, 6, true),
            check_op(2, 7, 8, false),
        ];
        assert_eq!(check(&Flag, &late, 1000), Verdict::Linearizable);
        let never = [create(0, 0, 1, unknown()), check_op(1, 5, 6, true)];
        assert_eq!(check(&Flag, &never, 1000), Verdict::Linearizable);
        // But it cannot take effect twice (or be undone).
        let flicker = [
            create(0, 0, 1, unknown()),
            check_op(1, 5, 6, false),
            check_op(2, 7, 8, true),
        ];
        assert_eq!(check(&Flag, &flicker, 1000), Verdict::NotLinearizable);
    }

    #[test]
    fn two_winners_are_not_linearizable() {
        let h = [create(0, 0, 10, ok()), create(1, 0, 10, ok())];
        assert_eq!(check(&Flag, &h, 1000), Verdict::NotLinearizable);
    }

    #[test]
    fn minimize_keeps_only_what_the_failure_needs() {
        let h = vec![
            check_op(0, 0, 1, true),
            create(1, 2, 10, ok()),
            check_op(2, 3, 4, true),
            check_op(3, 11, 12, true), // stale read: the violation
            check_op(4, 13, 14, false),
            create(
                5,
                15,
                16,
                Outcome::Rejected {
                    reason: kauri_client::proto::Reason::ObjectExists,
                    sv_trid: String::new(),
                    message: String::new(),
                },
            ),
        ];
        assert_eq!(check(&Flag, &h, 1000), Verdict::NotLinearizable);
        let min = minimize(&Flag, &h, 1000);
        let ids: Vec<usize> = min.iter().map(|op| op.id).collect();
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(check(&Flag, &min, 1000), Verdict::NotLinearizable);
    }

    #[test]
    fn cutting_makes_in_flight_writes_unknown_and_drops_in_flight_reads() {
        let h = vec![
            create(0, 0, 10, ok()),
            check_op(1, 2, 12, false),
            check_op(2, 11, 12, false),
        ];
        let cut = cut_at(&h, Duration::from_millis(5));
        assert_eq!(cut.len(), 1);
        assert!(!cut[0].outcome.is_definite());
    }

    #[test]
    fn a_tiny_budget_is_inconclusive_not_a_verdict() {
        let h: Vec<Op> = (0..8).map(|i| create(i, 0, 100, unknown())).collect();
        let mut h = h;
        h.push(check_op(8, 200, 201, true));
        h.push(check_op(9, 202, 203, false));
        assert!(matches!(check(&Flag, &h, 3), Verdict::Inconclusive { .. }));
    }
}
