//! Replicas cross-check their states: every [`INTERVAL`] a node asks each
//! peer for its recent state-chain points (`Cluster.Status`) and compares
//! those at indexes it also has ([`crate::storage::chain`]). A difference
//! means the states have diverged (a forged entry from a trusted peer, a
//! bug, a bad disk): it is logged at ERROR once per peer and index, counted
//! in the status (`state_mismatches`), and left for an operator, since no
//! replica can tell on its own which state is right.

use std::time::Duration;

use kauri_client::tls::ClientTls;

use crate::api::Node;
use crate::peer::network::peer_status;
use crate::storage::chain::hex;

/// How often a node compares its points with its peers'.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Runs the cross-check until the process ends.
pub async fn run(node: Node, tls: Option<ClientTls>) {
    let mut timer = tokio::time::interval(INTERVAL);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        timer.tick().await;
        let peers: Vec<(u64, String)> = {
            let m = node.raft.metrics();
            let m = m.borrow();
            m.membership_config
                .membership()
                .nodes()
                .filter(|(id, _)| **id != node.id)
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect()
        };
        for (peer, addr) in peers {
            check_peer(&node, peer, &addr, tls.as_ref()).await;
        }
    }
}

async fn check_peer(node: &Node, peer: u64, addr: &str, tls: Option<&ClientTls>) {
    let tls = tls.map(|t| t.expecting_node(peer));
    let status = match peer_status(addr, tls.as_ref()).await {
        Ok(s) => s,
        // An unreachable peer is the failure detector's business.
        Err(e) => {
            tracing::debug!(peer, "state cross-check: no status: {e}");
            return;
        }
    };
    let theirs: Vec<(u64, Vec<u8>)> = status
        .state_chain
        .into_iter()
        .map(|p| (p.index, p.chain))
        .collect();
    for m in node.store.chain_points().compare(peer, &theirs) {
        tracing::error!(
            peer,
            index = m.index,
            here = %hex(&m.here),
            there = %hex(&m.there),
            "STATE DIVERGENCE: this node's registry state differs from node {peer}'s at log \
             index {}; replicas no longer hold the same registry. Compare \
             `kauri cluster digest` on every node and rebuild the odd one out \
             (docs/operations.md)",
            m.index
        );
    }
}
