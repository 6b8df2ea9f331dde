//! Membership changes through the real binaries: a 3-node cluster grows to
//! five across two sites (each new node a learner first, promoted once it
//! has caught up) and shrinks back to three, while a registrar keeps
//! writing; nothing is lost and no write fails beyond the client's retries.
//! The refusals (promoting a learner not reached yet, taking the main
//! site's majority away, a registrar asking) name their reason.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kauri_chaos_tests::{wait_until, TestCluster};
use kauri_client::proto::*;
use kauri_client::{linearizable, KauriClient};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");
/// Most domains the background writer creates (the load is bounded in
/// count as well as in time).
const MAX_WRITES: usize = 5_000;

fn step(op: MembershipOp, id: u64) -> ChangeMembershipRequest {
    ChangeMembershipRequest {
        op: op as i32,
        node_id: id,
        ..Default::default()
    }
}

fn add_learner(id: u64, addr: &str, site: &str) -> ChangeMembershipRequest {
    ChangeMembershipRequest {
        addr: addr.into(),
        site: site.into(),
        ..step(MembershipOp::AddLearner, id)
    }
}

fn voters(members: &[Member]) -> Vec<u64> {
    members.iter().filter(|m| m.voter).map(|m| m.id).collect()
}

fn learners(members: &[Member]) -> Vec<u64> {
    members.iter().filter(|m| !m.voter).map(|m| m.id).collect()
}

/// Waits until the leader sees learner `id` caught up (its lag within what
/// promotion allows).
async fn caught_up(cluster: &TestCluster, id: u64) {
    wait_until(
        Duration::from_secs(60),
        "the learner to catch up",
        || async {
            let leader = cluster.current_leader().await?;
            let status = cluster.status(leader).await?;
            let m = status.members.iter().find(|m| m.id == id)?;
            (m.matched_index > 0 && m.lag_entries <= 16).then_some(())
        },
    )
    .await;
}

/// The first domain the background writer created (it starts at once).
async fn created_so_far(reg1: &KauriClient) -> String {
    created_so_far_named(reg1, "load-0.test").await
}

/// Waits until the background writer has created `name`, and returns it.
async fn created_so_far_named(reg1: &KauriClient, name: &str) -> String {
    let name = name.to_string();
    wait_until(Duration::from_secs(30), "the first write", || async {
        reg1.info_domain(InfoRequest {
            registrar: "reg1".into(),
            name: name.clone(),
            read: linearizable(),
        })
        .await
        .ok()
    })
    .await;
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_grows_to_two_sites_and_shrinks_back_under_writes() {
    let mut cluster = TestCluster::start_with_spares(NODE_BIN, 3, &["auckland", "auckland"], &[]);
    let (staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let (stop, writer) = kauri_chaos_tests::fixtures::write_in_background(
        &reg1,
        "test",
        "load",
        MAX_WRITES,
        Duration::from_secs(240),
    );
    // A second of writes on the three voters alone, to compare latencies.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let changes_began = Instant::now();

    // One site: losing it loses everything, and the leader says so.
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let solo = cluster.status(leader).await.expect("the leader answers");
    assert_eq!(solo.dr_far_site_nodes, 0);
    assert!(solo.dr_loss_window_entries >= 10, "{solo:?}");

    // Node 4 is added as a learner before its process runs: it cannot be
    // promoted until the leader has reached it and it has caught up.
    let (n4, n5) = (cluster.node(4).addr.clone(), cluster.node(5).addr.clone());
    let added = staff
        .change_membership(add_learner(4, &n4, "auckland"))
        .await
        .expect("add learner 4");
    assert!(added.changed, "{added:?}");
    assert_eq!(learners(&added.members), [4]);
    let early = staff
        .change_membership(step(MembershipOp::Promote, 4))
        .await
        .expect_err("a learner not reached yet is not promoted");
    assert!(early.message.contains("not been reached"), "{early}");
    // Adding it again (a retry) changes nothing; elsewhere is refused.
    let again = staff
        .change_membership(add_learner(4, &n4, "auckland"))
        .await
        .expect("the same learner again");
    assert!(!again.changed);
    let elsewhere = staff
        .change_membership(add_learner(4, &n5, "auckland"))
        .await
        .expect_err("node 4 at another address");
    assert!(
        elsewhere.message.contains("already a learner"),
        "{elsewhere}"
    );

    cluster.spawn_with(4, &["--join"]);
    caught_up(&cluster, 4).await;
    let learner = cluster.status(4).await.expect("node 4 answers");
    assert_eq!(learner.role, "learner");
    // Caught up, the far site would lose little with the main one.
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let near = cluster.status(leader).await.expect("the leader answers");
    assert_eq!(near.dr_far_site_nodes, 1);
    assert!(near.dr_loss_window_entries <= 64, "{near:?}");
    assert!(near.dr_loss_window_seconds < 60.0, "{near:?}");
    // The learner serves bounded-stale reads of what it has applied.
    let held = near
        .members
        .iter()
        .find(|m| m.id == 4)
        .map_or(0, |m| m.matched_index);
    cluster
        .wait_for_applied(4, held, Duration::from_secs(30))
        .await;
    let first = created_so_far(&reg1).await;
    let read = reg1
        .info_domain_at(
            &cluster.node(4).addr,
            InfoRequest {
                registrar: "reg1".into(),
                name: first,
                read: kauri_client::bounded_stale(0, 60_000),
            },
        )
        .await
        .expect("the learner answers a bounded-stale read");
    assert_eq!(read.read_info.map(|r| r.node_id), Some(4));
    let promoted = staff
        .change_membership(step(MembershipOp::Promote, 4))
        .await
        .expect("promote 4");
    assert_eq!(voters(&promoted.members), [1, 2, 3, 4]);
    wait_until(Duration::from_secs(30), "node 4 to vote", || async {
        let s = cluster.status(4).await?;
        (s.role == "follower" || s.role == "leader").then_some(())
    })
    .await;

    cluster.spawn_with(5, &["--join"]);
    staff
        .change_membership(add_learner(5, &n5, "auckland"))
        .await
        .expect("add learner 5");
    caught_up(&cluster, 5).await;
    let five = staff
        .change_membership(step(MembershipOp::Promote, 5))
        .await
        .expect("promote 5");
    assert_eq!(voters(&five.members), [1, 2, 3, 4, 5]);
    let main_site = five
        .members
        .iter()
        .filter(|m| m.site == "test" && m.voter)
        .count();
    assert_eq!(main_site, 3);

    // The leadership moves to another main-site voter: with five voters
    // the target needs a vote beyond the old leader's, so this waits out
    // the followers' leases.
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let other = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap_or(1);
    staff
        .change_membership(step(MembershipOp::TransferLeader, other))
        .await
        .expect("transfer the leadership among five voters");
    assert_eq!(
        cluster.wait_for_leader(Duration::from_secs(30)).await,
        other
    );
    let other = leader;

    // The main site (the leader's, "test") holds 3 of 5 voters; demoting
    // one of them would leave it 2 of 4.
    let thin = staff
        .change_membership(step(MembershipOp::Demote, other))
        .await
        .expect_err("the main site keeps its majority");
    assert!(thin.message.contains("no majority"), "{thin}");

    // Shrink back: demote 5, remove it, remove voter 4.
    let demoted = staff
        .change_membership(step(MembershipOp::Demote, 5))
        .await
        .expect("demote 5");
    assert_eq!(learners(&demoted.members), [5]);
    staff
        .change_membership(step(MembershipOp::Remove, 5))
        .await
        .expect("remove 5");
    let three = staff
        .change_membership(step(MembershipOp::Remove, 4))
        .await
        .expect("remove 4");
    assert_eq!(voters(&three.members), [1, 2, 3]);
    assert!(learners(&three.members).is_empty());
    let gone = staff
        .change_membership(step(MembershipOp::Remove, 4))
        .await
        .expect("removing it again");
    assert!(!gone.changed);
    let changes_ended = Instant::now();
    for id in [4, 5] {
        cluster.terminate(id, Duration::from_secs(10));
    }

    // Keep writing a moment on the three, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let kauri_chaos_tests::fixtures::Writes {
        created,
        failed,
        took,
        ..
    } = writer.await.expect("writer task");
    assert!(failed.is_empty(), "writes failed: {failed:?}");
    assert!(
        created.len() > 10,
        "only {} writes went through",
        created.len()
    );
    // Reported, not asserted: tests check behaviour, not timings.
    let latencies = |during: bool| {
        let mut l: Vec<Duration> = took
            .iter()
            .filter(|(sent, _)| (*sent >= changes_began && *sent < changes_ended) == during)
            .map(|(_, took)| *took)
            .collect();
        l.sort();
        let at = |q: f64| l.get(((l.len().max(1) - 1) as f64 * q) as usize).copied();
        format!(
            "{} writes, p50 {:?} p99 {:?} max {:?}",
            l.len(),
            at(0.5).unwrap_or_default(),
            at(0.99).unwrap_or_default(),
            at(1.0).unwrap_or_default()
        )
    };
    eprintln!(
        "membership changes took {:?}; during them {}; otherwise {}; none failed",
        changes_ended - changes_began,
        latencies(true),
        latencies(false)
    );
    kauri_chaos_tests::fixtures::assert_all_present(&reg1, &created).await;
    let digests = cluster.converged_digests(Duration::from_secs(30)).await;
    assert_eq!(digests.len(), 3);
    assert!(
        digests.windows(2).all(|w| w[0].digest == w[1].digest),
        "replicas differ after the changes: {digests:?}"
    );
}

/// Leadership transfer under writes: the leader holds writes for the
/// moment of the handover (a pause, no failed write), the target is the
/// next leader, a transfer to the leader changes nothing and one to a
/// learner or a stranger is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leadership_moves_where_it_is_sent_under_writes() {
    let mut cluster = TestCluster::start_with_spares(NODE_BIN, 3, &["auckland"], &[]);
    let (staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    cluster.spawn_with(4, &["--join"]);
    let n4 = cluster.node(4).addr.clone();
    staff
        .change_membership(add_learner(4, &n4, "auckland"))
        .await
        .expect("add learner 4");
    let (stop, writer) = kauri_chaos_tests::fixtures::write_in_background(
        &reg1,
        "test",
        "handover",
        MAX_WRITES,
        Duration::from_secs(120),
    );
    created_so_far_named(&reg1, "handover-0.test").await;
    let mut pauses = Vec::new();
    for _ in 0..3 {
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        let target = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap_or(1);
        let began = Instant::now();
        let moved = staff
            .change_membership(step(MembershipOp::TransferLeader, target))
            .await
            .expect("transfer the leadership");
        pauses.push(began.elapsed());
        assert_eq!(voters(&moved.members), [1, 2, 3]);
        assert_eq!(
            cluster.wait_for_leader(Duration::from_secs(30)).await,
            target
        );
        // Some writes at the new leader before the next handover.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let stay = staff
        .change_membership(step(MembershipOp::TransferLeader, leader))
        .await
        .expect("to the leader itself");
    assert!(!stay.changed);
    let learner = staff
        .change_membership(step(MembershipOp::TransferLeader, 4))
        .await
        .expect_err("a learner does not lead");
    assert!(
        learner.message.contains("only a voter can lead"),
        "{learner}"
    );
    let stranger = staff
        .change_membership(step(MembershipOp::TransferLeader, 9))
        .await
        .expect_err("not a member");
    assert!(stranger.message.contains("not a member"), "{stranger}");
    let refused = reg1
        .change_membership(step(MembershipOp::TransferLeader, 1))
        .await
        .expect_err("a registrar may not move the leadership");
    assert_eq!(refused.code, tonic::Code::PermissionDenied, "{refused}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let writes = kauri_chaos_tests::fixtures::stop_and_check(&stop, writer, &reg1).await;
    let slowest = writes
        .took
        .iter()
        .map(|(_, t)| *t)
        .max()
        .unwrap_or_default();
    eprintln!(
        "three handovers took {pauses:?}; {} writes, the slowest {slowest:?}, none failed",
        writes.created.len()
    );
    assert_eq!(
        cluster.status(4).await.expect("node 4 answers").role,
        "learner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staff_change_the_membership() {
    let cluster = TestCluster::start(NODE_BIN, 1, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let reg = cluster.registrar_client("reg1");
    let refused = reg
        .change_membership(step(MembershipOp::Remove, 1))
        .await
        .expect_err("a registrar may not change the membership");
    assert_eq!(refused.code, tonic::Code::PermissionDenied, "{refused}");
    let staff = cluster.client();
    let last = staff
        .change_membership(step(MembershipOp::Remove, 1))
        .await
        .expect_err("the last voter stays");
    assert!(last.message.contains("last voter"), "{last}");
    let status = cluster.status(1).await.expect("node 1 answers");
    assert_eq!(voters(&status.members), [1]);
}
