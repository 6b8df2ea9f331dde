//! Short chaos profile, lost disk: under load, a follower of a three-node
//! cluster loses its data directory and is restarted empty at once, as
//! docs/operations.md describes ("Lost disk"). It must catch up by snapshot
//! (the leader has compacted its log) without hurting the rest of the
//! cluster, and every checker must pass afterwards.

use kauri_chaos_tests::faults::{Fault, FaultTiming};
use kauri_chaos_tests::scenario::{assert_clean, run_round, start_cluster};
use kauri_chaos_tests::workload::{seed_from_env, WorkloadConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_follower_rejoins_by_snapshot_under_load() {
    let seed = seed_from_env();
    eprintln!("chaos wipe-rejoin: seed {seed} (KAURI_CHAOS_SEED={seed} repeats the choices)");
    let (mut cluster, _) = start_cluster(3, false);
    let summary = run_round(
        &mut cluster,
        WorkloadConfig::short(seed),
        &[Fault::WipeFollower, Fault::KillLeader],
        FaultTiming::default(),
    )
    .await;
    eprintln!("chaos wipe-rejoin (3 nodes):\n{summary}");
    assert_clean("wipe-rejoin", seed, &summary);
}
