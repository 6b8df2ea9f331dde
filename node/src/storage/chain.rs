//! The state chain: a running hash over what every applied entry wrote,
//! so replicas can tell cheaply whether their states are still the same.
//!
//! Raft makes replicas apply the same log, but cannot stop a peer it trusts
//! from sending one follower an entry the others never see; and a bug or a
//! bad disk can make one replica's state drift. A full state digest would
//! find it, but scans everything. Instead each entry extends a chain:
//!
//! ```text
//! chain(i) = SHA-256(chain(i-1) | term | leader node | index | SHA-256(writes of entry i))
//! ```
//!
//! (writes in the order the state machine made them; a membership entry's
//! "writes" are its membership). The chain is stored with the applied log
//! id in the same atomic batch, travels inside snapshots, and costs one
//! hash of the bytes written. Every [`ChainPoints::every`] indexes a node
//! keeps the value in memory; the cross-check (`crate::crosscheck`)
//! compares those points with its peers' and reports any that differ.
//!
//! An empty state starts at [`GENESIS`]; a state from before the chain
//! existed, or installed from a stream-format snapshot, has no chain until
//! it installs a snapshot that has one, and is not compared meanwhile.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::raft::{typ, NodeId};

/// One chain value.
pub type Chain = [u8; 32];

/// The chain of an empty state.
pub const GENESIS: Chain = [0; 32];

/// Default spacing of the points kept for comparison, in log indexes.
pub const DEFAULT_EVERY: u64 = 1000;

/// How many recent points a node keeps (and reports in its status).
pub const KEPT_POINTS: usize = 32;

/// Extends `prev` by the entry `log_id` whose writes hash to `writes`.
pub fn step(prev: &Chain, log_id: &typ::LogId, writes: &[u8; 32]) -> Chain {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(log_id.leader_id.term.to_be_bytes());
    h.update(log_id.leader_id.node_id.to_be_bytes());
    h.update(log_id.index.to_be_bytes());
    h.update(writes);
    h.finalize().into()
}

/// The stored form: the index the chain is at, then the chain.
pub fn encode(index: u64, chain: &Chain) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend(index.to_be_bytes());
    out.extend(chain);
    out
}

/// Reads the stored form; `None` if it is not 40 bytes.
pub fn decode(bytes: &[u8]) -> Option<(u64, Chain)> {
    let index = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let chain: Chain = bytes.get(8..)?.try_into().ok()?;
    Some((index, chain))
}

/// A point at which a peer's chain differs from this node's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The log index.
    pub index: u64,
    /// This node's chain there.
    pub here: Chain,
    /// The peer's.
    pub there: Vec<u8>,
}

/// Recent chain points of this node and what comparing them found.
#[derive(Debug)]
pub struct ChainPoints {
    every: AtomicU64,
    recent: Mutex<VecDeque<(u64, Chain)>>,
    mismatches: AtomicU64,
    last_mismatch: Mutex<String>,
    /// (peer, index) pairs already reported, so each is logged once.
    reported: Mutex<BTreeSet<(NodeId, u64)>>,
}

impl Default for ChainPoints {
    fn default() -> Self {
        ChainPoints {
            every: AtomicU64::new(DEFAULT_EVERY),
            recent: Mutex::default(),
            mismatches: AtomicU64::new(0),
            last_mismatch: Mutex::default(),
            reported: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ChainPoints {
    /// Keeps a point every `every` indexes (> 0).
    pub fn set_every(&self, every: u64) {
        assert!(every > 0, "invariant: chain points need a spacing above 0");
        self.every.store(every, Ordering::Relaxed);
    }

    /// The spacing of points.
    pub fn every(&self) -> u64 {
        self.every.load(Ordering::Relaxed)
    }

    /// Notes the chain after applying `index`, if `index` is a point.
    pub fn applied(&self, index: u64, chain: &Chain) {
        if index == 0 || !index.is_multiple_of(self.every()) {
            return;
        }
        let mut recent = lock(&self.recent);
        if recent.back().is_some_and(|(i, _)| *i >= index) {
            // A snapshot install moved the state back or forth; start over.
            recent.clear();
        }
        recent.push_back((index, *chain));
        while recent.len() > KEPT_POINTS {
            recent.pop_front();
        }
    }

    /// The points kept, oldest first.
    pub fn recent(&self) -> Vec<(u64, Chain)> {
        lock(&self.recent).iter().copied().collect()
    }

    /// Compares `theirs` (a peer's points) with this node's; returns the
    /// points where they differ that were not reported before, counting
    /// and remembering each.
    pub fn compare(&self, peer: NodeId, theirs: &[(u64, Vec<u8>)]) -> Vec<Mismatch> {
        let ours = self.recent();
        let mut found = Vec::new();
        for (index, chain) in theirs {
            let Some((_, mine)) = ours.iter().find(|(i, _)| i == index) else {
                continue;
            };
            if mine[..] == chain[..] {
                continue;
            }
            if !lock(&self.reported).insert((peer, *index)) {
                continue;
            }
            self.mismatches.fetch_add(1, Ordering::Relaxed);
            *lock(&self.last_mismatch) = format!(
                "state differs from node {peer}'s at index {index}: chain {} here, {} there",
                hex(mine),
                hex(chain)
            );
            found.push(Mismatch {
                index: *index,
                here: *mine,
                there: chain.clone(),
            });
        }
        found
    }

    /// How many (peer, index) mismatches were found since start.
    pub fn mismatches(&self) -> u64 {
        self.mismatches.load(Ordering::Relaxed)
    }

    /// The latest mismatch, described; empty if none.
    pub fn last_mismatch(&self) -> String {
        lock(&self.last_mismatch).clone()
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    fn id(term: u64, index: u64) -> typ::LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    #[test]
    fn the_chain_depends_on_every_entry_and_its_place() {
        let w = [7u8; 32];
        let a = step(&GENESIS, &id(1, 1), &w);
        assert_eq!(a, step(&GENESIS, &id(1, 1), &w), "deterministic");
        assert_ne!(a, step(&GENESIS, &id(2, 1), &w), "term");
        assert_ne!(a, step(&GENESIS, &id(1, 2), &w), "index");
        assert_ne!(a, step(&GENESIS, &id(1, 1), &[8u8; 32]), "writes");
        assert_ne!(a, step(&[1u8; 32], &id(1, 1), &w), "history");
        assert_eq!(decode(&encode(9, &a)), Some((9, a)));
        assert_eq!(decode(&[1, 2, 3]), None);
    }

    #[test]
    fn points_are_kept_at_their_spacing_and_compared_once() {
        let points = ChainPoints::default();
        points.set_every(10);
        for i in 1..=1000u64 {
            points.applied(i, &[(i % 251) as u8; 32]);
        }
        let recent = points.recent();
        assert_eq!(recent.len(), KEPT_POINTS);
        assert!(recent.iter().all(|(i, _)| i % 10 == 0));
        assert_eq!(recent.last().unwrap().0, 1000);

        let same: Vec<(u64, Vec<u8>)> = recent.iter().map(|(i, c)| (*i, c.to_vec())).collect();
        assert!(points.compare(2, &same).is_empty());
        let mut other = same.clone();
        other[3].1[0] ^= 1;
        other.push((5000, vec![0; 32]));
        let indexes = |found: Vec<Mismatch>| found.iter().map(|m| m.index).collect::<Vec<_>>();
        assert_eq!(indexes(points.compare(2, &other)), vec![other[3].0]);
        assert_eq!(
            indexes(points.compare(2, &other)),
            Vec::<u64>::new(),
            "reported once"
        );
        assert_eq!(
            indexes(points.compare(3, &other)),
            vec![other[3].0],
            "per peer"
        );
        assert_eq!(points.mismatches(), 2);
        assert!(points.last_mismatch().contains("node 3"));
    }
}
