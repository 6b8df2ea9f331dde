//! Handing the leadership to another voter (`kauri cluster
//! transfer-leader`, `Cluster.ChangeMembership` with `TRANSFER_LEADER`).
//!
//! openraft 0.9 has no leadership-transfer trigger, so the leader does it
//! the way the Raft dissertation describes (section 3.10), with what
//! openraft offers:
//! 1. it holds new writes ([`Gate`]: a proposal waits until the transfer is
//!    over, then finds this node a follower and is sent to the new leader)
//!    and lets those in flight finish;
//! 2. it stops its heartbeats, so that the followers' leader lease (the
//!    election timeout, during which they refuse to vote) runs out;
//! 3. it waits until the target holds its whole log;
//! 4. it tells the other voters to stand aside (no elections of their own
//!    for a bounded time) and the target to stand for election now
//!    (`Raft.TransferLeadership`); the old leader's own lease has long
//!    expired, so it votes for the target, and with a three-voter cluster
//!    that is a majority at once (larger ones wait for the other leases,
//!    at most one election timeout);
//! 5. once the target leads, it lets the voters elect again and releases
//!    the held writes.
//!
//! If the target does not win in time the leader takes its heartbeats up
//! again and says so; nothing is lost either way (it is an ordinary
//! election between nodes with the same log).

use std::time::Duration;

use kauri_proto::v1::{Reason, TransferLeadershipRequest};
use openraft::ServerState;
use tokio::sync::{RwLock, RwLockReadGuard};
use tonic::Status;

use super::{status, Node, WRITE_TIMEOUT};
use crate::raft::NodeId;

/// Longest time voters are asked to stand aside (the receiving side's
/// bound too).
pub const MAX_HOLD: Duration = Duration::from_secs(60);
/// How long the target has to receive the leader's whole log.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Holds proposals while the leadership moves: each proposal passes
/// through it; a transfer closes it for its duration.
#[derive(Debug, Default)]
pub struct Gate(RwLock<()>);

impl Gate {
    /// Waits while a transfer is under way; the guard keeps a transfer
    /// from starting until the proposal is done.
    pub async fn pass(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read().await
    }
}

/// Stops the leader's heartbeats; takes them up again when dropped.
struct Quiet<'a>(&'a crate::raft::typ::Raft);

impl<'a> Quiet<'a> {
    fn new(raft: &'a crate::raft::typ::Raft) -> Self {
        raft.runtime_config().heartbeat(false);
        Quiet(raft)
    }
}

impl Drop for Quiet<'_> {
    fn drop(&mut self) {
        self.0.runtime_config().heartbeat(true);
    }
}

fn unavailable(message: String) -> Status {
    status::reject(Reason::Unavailable, "node_id", message)
}

/// Moves the leadership from this node (the leader) to voter `target`.
pub async fn transfer(node: &Node, target: NodeId) -> Result<(), Status> {
    let raft = &node.raft;
    let election = Duration::from_millis(raft.config().election_timeout_max);
    // The target's first election wins at once with three voters; with
    // more it may have to wait out the others' leases and stand again.
    let wait = election * 2 + Duration::from_secs(1);
    let hold = (wait + election).min(MAX_HOLD);
    let _closed = tokio::time::timeout(WRITE_TIMEOUT, node.handover.0.write())
        .await
        .map_err(|_| unavailable("writes in flight did not finish; retry".into()))?;
    let m = raft.metrics().borrow().clone();
    if m.state != ServerState::Leader {
        return Err(status::not_leader(node.leader()));
    }
    let _quiet = Quiet::new(raft);
    let last = m.last_log_index.unwrap_or(0);
    let caught_up = raft
        .wait(Some(CATCH_UP))
        .metrics(
            |m| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&target).copied().flatten())
                    .is_some_and(|l| l.index >= last)
            },
            "target holds the whole log",
        )
        .await;
    if caught_up.is_err() {
        return Err(unavailable(format!(
            "node {target} did not receive the leader's log up to index {last} within {} s \
             (is it running and reachable?); the leadership stays here",
            CATCH_UP.as_secs()
        )));
    }
    let membership = m.membership_config.membership();
    let (targets, bystanders): (Vec<_>, Vec<_>) = membership
        .voter_ids()
        .filter(|id| *id != node.id)
        .filter_map(|id| Some((id, membership.get_node(&id)?.addr.clone())))
        .partition(|(id, _)| *id == target);
    let ask = |hold: Duration| TransferLeadershipRequest {
        target,
        term: m.current_term,
        hold_elections_ms: hold.as_millis() as u32,
    };
    // Bystanders stand aside for `hold` (zero: they may elect again).
    let tell_bystanders = |hold: Duration| {
        let bystanders = &bystanders;
        async move {
            for (id, addr) in bystanders {
                if let Err(e) = node.peers.transfer_leadership(*id, addr, ask(hold)).await {
                    tracing::warn!(
                        peer = id,
                        ?hold,
                        "could not ask a voter to stand aside: {e}"
                    );
                }
            }
        }
    };
    tracing::info!(target, term = m.current_term, "handing over the leadership");
    // Bystanders first, so none of them stands against the target.
    tell_bystanders(hold).await;
    let target_addr = targets.first().map(|(_, a)| a.as_str()).unwrap_or_default();
    let won = match node
        .peers
        .transfer_leadership(target, target_addr, ask(hold))
        .await
    {
        Err(e) => Err(format!("node {target} refused to stand for election: {e}")),
        Ok(()) => raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader == Some(target), "target leads")
            .await
            .map(|_| ())
            .map_err(|_| {
                format!(
                    "node {target} was not elected within {} ms; the leader is {:?}",
                    wait.as_millis(),
                    raft.metrics().borrow().current_leader
                )
            }),
    };
    // Let the voters elect again whatever happened.
    tell_bystanders(Duration::ZERO).await;
    match won {
        Ok(()) => {
            tracing::info!(target, "the leadership moved");
            Ok(())
        }
        Err(why) => {
            tracing::warn!(target, "leadership transfer failed: {why}");
            Err(unavailable(why))
        }
    }
}
