//! Short chaos profile, process faults: three real nodes under a registrar
//! workload lose their leader and a follower to SIGKILL, are paused past
//! the election timeout, and crash all at once; every checker must pass
//! afterwards. (A wiped follower has a test of its own: wipe_rejoin.rs.)

use kauri_chaos_tests::faults::{Fault, FaultTiming};
use kauri_chaos_tests::scenario::{assert_clean, run_round, start_cluster};
use kauri_chaos_tests::workload::{seed_from_env, WorkloadConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_kills_pauses_and_a_crash() {
    let seed = seed_from_env();
    eprintln!("chaos process-faults: seed {seed} (KAURI_CHAOS_SEED={seed} repeats the choices)");
    let (mut cluster, _) = start_cluster(3, false);
    let faults = [
        Fault::KillLeader,
        Fault::PauseFollower,
        Fault::PauseLeader,
        Fault::KillFollower,
        Fault::CrashAll,
    ];
    let summary = run_round(
        &mut cluster,
        WorkloadConfig::short(seed),
        &faults,
        FaultTiming::default(),
    )
    .await;
    eprintln!("chaos process-faults (3 nodes):\n{summary}");
    assert_clean("process-faults", seed, &summary);
}
