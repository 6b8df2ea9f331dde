//! Short chaos profile, network faults: five real nodes, each in a network
//! namespace of its own, have their leader isolated, split into a minority
//! holding the leader and a majority, and lose the leader's packets one
//! way, then lose the leader to SIGKILL. Network faults need root and
//! iproute2; without them the test says so and runs process faults on five
//! loopback nodes instead.

use kauri_chaos_tests::faults::{Fault, FaultTiming};
use kauri_chaos_tests::scenario::{assert_clean, run_round, start_cluster};
use kauri_chaos_tests::workload::{seed_from_env, WorkloadConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_survive_partitions_and_one_way_loss() {
    let seed = seed_from_env();
    eprintln!("chaos partitions: seed {seed} (KAURI_CHAOS_SEED={seed} repeats the choices)");
    let (mut cluster, no_network) = start_cluster(5, true);
    let faults: &[Fault] = match &no_network {
        None => &[
            Fault::IsolateLeader,
            Fault::SplitLeaderMinority,
            Fault::MuteLeaderOneWay,
            Fault::KillLeader,
        ],
        Some(why) => {
            eprintln!(
                "chaos partitions: SKIPPED network faults ({why}); running process faults \
                 on 5 loopback nodes instead"
            );
            &[Fault::KillLeader, Fault::PauseLeader, Fault::KillFollower]
        }
    };
    let summary = run_round(
        &mut cluster,
        WorkloadConfig::short(seed),
        faults,
        FaultTiming::default(),
    )
    .await;
    eprintln!("chaos partitions (5 nodes):\n{summary}");
    assert_clean("partitions", seed, &summary);
}
