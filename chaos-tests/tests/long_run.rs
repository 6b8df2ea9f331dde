//! Long chaos profile: loops random faults against a five-node cluster for
//! `KAURI_CHAOS_LONG_SECS` seconds (default 600), in rounds of a fresh
//! workload each, checking every round, and prints a summary. Ignored by
//! default; run it with
//!
//! ```sh
//! KAURI_CHAOS_LONG_SECS=1800 cargo test -p kauri-chaos-tests --test long_run -- --ignored --nocapture
//! ```
//!
//! `KAURI_CHAOS_FAULTS=kill-leader,isolate-leader,...` limits the faults
//! drawn (default: all; network faults only where namespaces work), and
//! `KAURI_CHAOS_SEED` repeats a run's choices.

use std::time::{Duration, Instant};

use kauri_chaos_tests::faults::{Fault, FaultTiming};
use kauri_chaos_tests::scenario::{
    assert_clean, run_round, start_cluster_with, RoundSummary, LONG_RUN_NODE_ARGS,
};
use kauri_chaos_tests::workload::{seed_from_env, WorkloadConfig};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Faults per round; each round ends with a heal and a full check.
const FAULTS_PER_ROUND: usize = 8;

fn fault_menu() -> Vec<Fault> {
    match std::env::var("KAURI_CHAOS_FAULTS") {
        Ok(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|e| panic!("KAURI_CHAOS_FAULTS: {e}"))
            })
            .collect(),
        Err(_) => Fault::all(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long chaos profile: set KAURI_CHAOS_LONG_SECS and run with --ignored"]
async fn five_nodes_under_random_faults_for_a_long_time() {
    let secs: u64 = std::env::var("KAURI_CHAOS_LONG_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(600);
    let seed = seed_from_env();
    let mut menu = fault_menu();
    let wants_network = menu.iter().any(|f| f.needs_network());
    let (mut cluster, no_network) = start_cluster_with(5, wants_network, &LONG_RUN_NODE_ARGS);
    if let Some(why) = &no_network {
        eprintln!("chaos long run: SKIPPED network faults ({why})");
        menu.retain(|f| !f.needs_network());
    }
    assert!(!menu.is_empty(), "no faults left to inject");
    let names: Vec<String> = menu.iter().map(Fault::to_string).collect();
    eprintln!(
        "chaos long run: {secs}s, seed {seed}, faults {}",
        names.join(", ")
    );

    let mut rng = StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut total = RoundSummary::default();
    let mut round = 0;
    while Instant::now() < deadline {
        let faults: Vec<Fault> = (0..FAULTS_PER_ROUND)
            .map(|_| *menu.choose(&mut rng).expect("the menu is not empty"))
            .collect();
        let round_seed = seed.wrapping_add(u64::from(round));
        let config = WorkloadConfig {
            round,
            ..WorkloadConfig::short(round_seed)
        };
        // The state grows for the whole run: by the 30th minute a debug
        // build takes some 20 s to install a snapshot (building one is a
        // checkpoint, quick at any size), so a wiped follower may need more
        // than the short profile's 30 s.
        let timing = FaultTiming {
            recover_timeout: Duration::from_secs(120),
            ..FaultTiming::default()
        };
        let summary = run_round(&mut cluster, config, &faults, timing).await;
        eprintln!("chaos long run, round {round}:\n{summary}");
        assert_clean(&format!("long run round {round}"), round_seed, &summary);
        total.absorb(summary);
        round += 1;
    }
    eprintln!("chaos long run: {round} rounds, seed {seed}\n{total}");
}
