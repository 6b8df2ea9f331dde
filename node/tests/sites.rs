//! Two sites far apart: voters in the main site, a learner in the far one
//! behind a link that delays every byte 140 ms each way (a delaying TCP
//! proxy: this kernel has no netem). With the timeouts chosen for such a
//! link (heartbeat 1 s, election timeout 5 s) there is no spurious
//! election, the learner keeps up under a steady write load, and the
//! leader's data-loss window stays small; promoted to a voter across the
//! link, it still causes no election and writes go on.

use std::time::{Duration, Instant};

use kauri_chaos_tests::delay::DelayProxy;
use kauri_chaos_tests::{wait_until, TestCluster};
use kauri_client::proto::*;
use kauri_client::{meta, KauriClient};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");
/// One way across the emulated link (Paris to Auckland is about 280 ms
/// round trip).
const ONE_WAY: Duration = Duration::from_millis(140);

fn step(op: MembershipOp, id: u64) -> ChangeMembershipRequest {
    ChangeMembershipRequest {
        op: op as i32,
        node_id: id,
        ..Default::default()
    }
}

/// Creates `count` domains named `{prefix}-N.test`, one after another;
/// returns each write's latency. Panics on a write that fails after the
/// client's retries.
async fn write(reg1: &KauriClient, prefix: &str, count: usize) -> Vec<Duration> {
    let mut took = Vec::new();
    for i in 0..count {
        let sent = Instant::now();
        reg1.create_domain(CreateDomainRequest {
            meta: Some(meta("reg1")),
            name: format!("{prefix}-{i}.test"),
            period_years: 1,
            registrant: "owner".into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("write {prefix}-{i} failed: {e}"));
        took.push(sent.elapsed());
    }
    took.sort();
    took
}

/// The voters' terms, by node.
async fn terms(cluster: &TestCluster) -> Vec<(u64, u64)> {
    let mut terms = Vec::new();
    for id in [1, 2, 3] {
        let s = cluster.status(id).await.expect("a voter answers");
        terms.push((id, s.term));
    }
    terms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_far_learner_keeps_up_over_a_slow_link_without_elections() {
    // openraft gives every AppendEntries the heartbeat interval to answer,
    // so it must exceed the round trip to the farthest node (280 ms here)
    // plus its disk sync, with margin on a loaded machine.
    let timeouts = ["--heartbeat-ms", "1000", "--election-timeout-ms", "5000"];
    let mut cluster = TestCluster::start_with_spares(NODE_BIN, 3, &["auckland"], &timeouts);
    let (staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;

    // The leader reaches node 4 only through the slow link.
    let link = DelayProxy::start(&cluster.node(4).addr, ONE_WAY).await;
    cluster.spawn_with(4, &["--join"]);
    staff
        .change_membership(ChangeMembershipRequest {
            addr: link.addr.clone(),
            site: "auckland".into(),
            ..step(MembershipOp::AddLearner, 4)
        })
        .await
        .expect("add the far learner");
    let before = terms(&cluster).await;

    // A steady load while the learner follows across the link; the
    // leader's view of what the far site lacks is sampled as it runs.
    let load = {
        let reg1 = reg1.clone();
        tokio::spawn(async move { write(&reg1, "far", 150).await })
    };
    let mut worst_window = 0.0f64;
    while !load.is_finished() {
        if let Some(leader) = cluster.current_leader().await {
            if let Some(s) = cluster.status(leader).await {
                if s.dr_far_site_nodes == 1 {
                    worst_window = worst_window.max(s.dr_loss_window_seconds);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let learner_latency = load.await.expect("the load task");
    wait_until(
        Duration::from_secs(30),
        "the far learner to catch up",
        || async {
            let leader = cluster.current_leader().await?;
            let s = cluster.status(leader).await?;
            let m = s.members.iter().find(|m| m.id == 4)?;
            (m.matched_index > 0 && m.lag_entries <= 16).then_some(())
        },
    )
    .await;
    assert!(
        worst_window < 60.0,
        "the far site fell {worst_window} s behind over a 140 ms link"
    );

    // Promoted, it votes across the link; the main site keeps its majority.
    let promoted = staff
        .change_membership(step(MembershipOp::Promote, 4))
        .await
        .expect("promote the far node");
    assert!(promoted.members.iter().any(|m| m.id == 4 && m.voter));
    let voter_latency = write(&reg1, "far-voter", 100).await;
    assert_eq!(
        terms(&cluster).await,
        before,
        "an election happened with a far learner and then a far voter"
    );
    let p = |l: &[Duration], q: f64| l[((l.len() - 1) as f64 * q) as usize];
    eprintln!(
        "140 ms each way: worst data-loss window {worst_window:.2} s; writes with a far \
         learner p50 {:?} p99 {:?}; with a far voter p50 {:?} p99 {:?}",
        p(&learner_latency, 0.5),
        p(&learner_latency, 0.99),
        p(&voter_latency, 0.5),
        p(&voter_latency, 0.99)
    );
    drop(link);
}
