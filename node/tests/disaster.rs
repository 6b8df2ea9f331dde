//! Paris burns, Auckland serves: the disaster-recovery drill, short form.
//!
//! Three voters in the main site and a learner in the far one; several
//! registrars write steadily; every main-site node is SIGKILLed at once.
//! The learner, stopped, is made the only voter of a new cluster from what
//! it had applied (`kauri-node ... force-new-cluster`) and started again.
//! Then: every write acknowledged up to the learner's applied index is
//! there and none after it, each registrar's money is conserved, a retry
//! of an acknowledged request is answered from its idempotency record,
//! writes resume; and
//! when the old main-site nodes come back with their data they cannot
//! reach the new cluster (another cluster identity).
//!
//! Then failback, under writes: the old main-site nodes, wiped, rejoin as
//! learners, become voters (the request naming the main site they return
//! to), the leadership moves back to the main site, and the far-site node
//! steps down to a learner.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kauri_chaos_tests::{wait_until, TestCluster};
use kauri_client::proto::*;
use kauri_client::{linearizable, meta, KauriClient};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

fn index_of(sv_trid: &str) -> u64 {
    sv_trid
        .strip_prefix("kauri-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{sv_trid:?} is not a server transaction id"))
}

/// The short drill (CI): three registrars, two seconds of load.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_far_site_takes_over_from_what_it_applied() {
    let report = drill(3, Duration::from_secs(2)).await;
    eprintln!("{report}");
}

/// The long drill, on demand: `KAURI_DR_LOAD_SECS` (default 120) of load
/// from six registrars before the fire.
/// `KAURI_DR_LOAD_SECS=300 cargo test -p kauri-node --test disaster -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long; run on demand"]
async fn the_long_drill() {
    let secs = std::env::var("KAURI_DR_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let report = drill(6, Duration::from_secs(secs)).await;
    eprintln!("{report}");
}

/// Starting balance of every registrar; creates cost 1.
const DEPOSIT: i64 = 100_000_000;

/// One registrar's writes in the drill.
struct Writer {
    id: String,
    client: KauriClient,
    writes: tokio::task::JoinHandle<kauri_chaos_tests::fixtures::Writes>,
}

/// Runs the drill with `registrars` writing for `load` before the fire,
/// then fails back; returns what it measured.
async fn drill(registrars: usize, load: Duration) -> String {
    let mut cluster = TestCluster::start_with_spares(NODE_BIN, 3, &["auckland"], &[]);
    let (staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    for i in 2..=registrars {
        let id = format!("reg{i}");
        let client = cluster.registrar_client(&id);
        kauri_chaos_tests::fixtures::add_registrar(&staff, &client, &id, "USD", DEPOSIT).await;
    }
    let paris_id = {
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        cluster.status(leader).await.expect("the leader").cluster_id
    };
    assert_eq!(paris_id.len(), 32, "the cluster has an identity");
    let n4 = cluster.node(4).addr.clone();
    cluster.spawn_with(4, &["--join"]);
    staff
        .change_membership(ChangeMembershipRequest {
            op: MembershipOp::AddLearner as i32,
            node_id: 4,
            addr: n4.clone(),
            site: "auckland".into(),
            ..Default::default()
        })
        .await
        .expect("add the Auckland learner");

    // Writes go on; Paris burns in the middle of them.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<Writer> = (1..=registrars)
        .map(|i| {
            let id = format!("reg{i}");
            // A short client deadline: the writes in flight at the fire
            // give up soon instead of retrying against the dead site for
            // 30 s.
            let impatient = cluster.registrar_client_with(
                &id,
                kauri_client::ClientConfig {
                    deadline: Duration::from_secs(3),
                    ..Default::default()
                },
            );
            let writes = tokio::spawn({
                let (id, stop) = (id.clone(), stop.clone());
                async move {
                    kauri_chaos_tests::fixtures::write_steadily_as(
                        impatient,
                        &id,
                        "test",
                        &format!("dr-{id}"),
                        stop,
                        5_000 + 200 * load.as_secs() as usize,
                        load + Duration::from_secs(30),
                    )
                    .await
                }
            });
            Writer {
                client: cluster.registrar_client(&id),
                id,
                writes,
            }
        })
        .collect();
    tokio::time::sleep(load).await;
    let window = {
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        cluster.status(leader).await.expect("the leader")
    };
    for id in [1, 2, 3] {
        cluster.kill(id);
    }
    let burned = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut done = Vec::new();
    for w in writers {
        let writes = w.writes.await.expect("a writer");
        done.push((w.id, w.client, writes));
    }
    let writes_gave_up = burned.elapsed();
    let held = cluster.status(4).await.expect("the learner answers");
    assert_eq!(held.role, "learner");
    assert_eq!(held.cluster_id, paris_id);

    // Recover: stop the learner, make it a new cluster, start it.
    let promoting = Instant::now();
    cluster.terminate(4, Duration::from_secs(20));
    let forced = std::process::Command::new(NODE_BIN)
        .args(["--id", "4", "--site", "auckland", "--grpc-addr", &n4])
        .arg("--data-dir")
        .arg(&cluster.node(4).data_dir)
        .arg("force-new-cluster")
        .output()
        .expect("run force-new-cluster");
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    cluster.spawn_with(4, &["--join"]);
    let auckland = wait_until(Duration::from_secs(30), "node 4 to lead", || async {
        let s = cluster.status(4).await?;
        (s.role == "leader").then_some(s)
    })
    .await;
    assert_ne!(auckland.cluster_id, paris_id, "a new cluster identity");
    assert_eq!(auckland.members.len(), 1);
    reg1.create_domain(CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: "after-the-fire.test".into(),
        period_years: 1,
        registrant: "owner".into(),
        ..Default::default()
    })
    .await
    .expect("writes resume in Auckland");
    let recovery = promoting.elapsed();

    let (mut kept, mut lost) = (0u64, 0u64);
    for (id, client, writes) in &done {
        let (k, l) = check_registrar(&staff, id, client, writes, held.applied_index).await;
        kept += k;
        lost += l;
    }
    assert!(kept > 0, "nothing was acknowledged before the fire");

    // The old Paris nodes come back with their data: they cannot reach
    // the new cluster.
    for id in [1, 2, 3] {
        cluster.spawn(id);
    }
    cluster
        .wait_for_leader_among(&[1, 2, 3], Duration::from_secs(30))
        .await;
    wait_until(
        Duration::from_secs(30),
        "node 4 to refuse Paris",
        || async {
            cluster
                .log_tail(4)
                .contains("refused a raft message from another cluster")
                .then_some(())
        },
    )
    .await;
    let still = cluster.status(4).await.expect("node 4 answers");
    assert_eq!(still.role, "leader");
    assert_eq!(still.members.len(), 1);
    let fire = format!(
        "{registrars} registrars wrote for {load:?}; the leader reported a window of {} entries \
         / {:.2} s before the fire; Auckland held index {}: {kept} acknowledged writes kept, \
         {lost} lost; the writers gave up {writes_gave_up:?} after the kill (their client \
         deadline); from the start of the promotion to the first accepted write {recovery:?}",
        window.dr_loss_window_entries, window.dr_loss_window_seconds, held.applied_index,
    );
    let failback = fail_back(&mut cluster, &staff, &reg1).await;
    format!("{fire}\n{failback}")
}

/// Checks one registrar's writes after the promotion: every write
/// acknowledged up to the applied index `held` is there and none after
/// it, a retry is answered from its idempotency record, and the balance
/// is the deposit less one per domain present (reg1 also made
/// `after-the-fire.test`). Returns how many acknowledged writes were kept
/// and lost.
async fn check_registrar(
    staff: &KauriClient,
    id: &str,
    client: &KauriClient,
    writes: &kauri_chaos_tests::fixtures::Writes,
    held: u64,
) -> (u64, u64) {
    let info = |name: String| async move {
        client
            .info_domain(InfoRequest {
                registrar: id.into(),
                name,
                read: linearizable(),
            })
            .await
    };
    let (mut kept, mut lost) = (0u64, 0u64);
    for (request, sv_trid) in &writes.acknowledged {
        let found = info(request.name.clone()).await;
        if index_of(sv_trid) <= held {
            found.unwrap_or_else(|e| panic!("{} ({sv_trid}) lost: {e}", request.name));
            kept += 1;
        } else {
            let e = found.expect_err("an entry after the learner's applied index");
            assert_eq!(e.reason, Reason::ObjectNotFound, "{e}");
            lost += 1;
        }
    }
    // A retry of an acknowledged request is answered as the first time.
    if let Some((request, sv_trid)) = writes
        .acknowledged
        .iter()
        .find(|(_, t)| index_of(t) <= held)
    {
        let retried = client
            .create_domain(request.clone())
            .await
            .expect("the retry is answered");
        let tx = retried.tx.expect("transaction ids");
        assert!(tx.replayed, "{id}: the retry was applied again");
        assert_eq!(&tx.sv_trid, sv_trid);
    }
    // Money: every domain there (the kept writes, and any whose answer was
    // lost in the fire but which Auckland applied) was charged once, and
    // nothing else was.
    let mut present = kept + u64::from(id == "reg1");
    for failed in &writes.failed {
        let name = failed.split(':').next().unwrap_or_default().to_string();
        present += u64::from(info(name).await.is_ok());
    }
    let account = staff
        .info_registrar(InfoRegistrarRequest {
            id: id.into(),
            ledger_limit: 0,
            read: linearizable(),
        })
        .await
        .expect("the registrar's account");
    let balance = account
        .registrar
        .and_then(|r| r.balance)
        .map_or(0, |b| b.minor_units);
    assert_eq!(
        balance,
        DEPOSIT - present as i64,
        "{id}: money is conserved"
    );
    (kept, lost)
}

fn step(op: MembershipOp, id: u64, main_site: &str) -> ChangeMembershipRequest {
    ChangeMembershipRequest {
        op: op as i32,
        node_id: id,
        main_site: main_site.into(),
        ..Default::default()
    }
}

/// Moves the voters back to the main site ("test") while reg1 writes:
/// wiped, the old nodes rejoin as learners, are promoted naming the main
/// site, take the leadership, and node 4 becomes a learner again.
async fn fail_back(cluster: &mut TestCluster, staff: &KauriClient, reg1: &KauriClient) -> String {
    let (stop, writer) = kauri_chaos_tests::fixtures::write_in_background(
        reg1,
        "test",
        "back",
        5_000,
        Duration::from_secs(120),
    );
    let began = Instant::now();
    for id in [1, 2, 3] {
        cluster.terminate(id, Duration::from_secs(10));
        cluster.wipe(id);
        cluster.spawn_with(id, &["--join"]);
        let addr = cluster.node(id).addr.clone();
        staff
            .change_membership(ChangeMembershipRequest {
                addr,
                site: "test".into(),
                ..step(MembershipOp::AddLearner, id, "")
            })
            .await
            .unwrap_or_else(|e| panic!("add node {id} back as a learner: {e}"));
    }
    for id in [1, 2, 3] {
        wait_until(Duration::from_secs(60), "a learner to catch up", || async {
            let s = cluster.status(4).await?;
            let m = s.members.iter().find(|m| m.id == id)?;
            (m.matched_index > 0 && m.lag_entries <= 16).then_some(())
        })
        .await;
    }
    // The leader's site is Auckland now: growing the main site's voters
    // must say that the main site is where they are going.
    let thin = staff
        .change_membership(step(MembershipOp::Promote, 1, ""))
        .await
        .expect_err("Auckland would hold 1 of 2 voters");
    assert!(thin.message.contains("no majority"), "{thin}");
    for id in [1, 2] {
        staff
            .change_membership(step(MembershipOp::Promote, id, "test"))
            .await
            .unwrap_or_else(|e| panic!("promote node {id} back: {e}"));
    }
    staff
        .change_membership(step(MembershipOp::TransferLeader, 1, ""))
        .await
        .expect("the leadership moves back to the main site");
    assert_eq!(cluster.wait_for_leader(Duration::from_secs(30)).await, 1);
    staff
        .change_membership(step(MembershipOp::Demote, 4, ""))
        .await
        .expect("Auckland steps down to a learner");
    let home = staff
        .change_membership(step(MembershipOp::Promote, 3, ""))
        .await
        .expect("the third main-site voter");
    let voters: Vec<u64> = home
        .members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.id)
        .collect();
    assert_eq!(voters, [1, 2, 3]);
    let took = began.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = kauri_chaos_tests::fixtures::stop_and_check(&stop, writer, reg1).await;
    let leader = cluster.status(1).await.expect("node 1 answers");
    assert_eq!(leader.role, "leader");
    assert_eq!(
        leader.dr_far_site_nodes, 1,
        "Auckland is the far site again"
    );
    let digests = cluster.converged_digests(Duration::from_secs(30)).await;
    assert_eq!(digests.len(), 4);
    assert!(
        digests.windows(2).all(|w| w[0].digest == w[1].digest),
        "replicas differ after failback: {digests:?}"
    );
    let slowest = writes
        .took
        .iter()
        .map(|(_, t)| *t)
        .max()
        .unwrap_or_default();
    format!(
        "failback (wipe, rejoin, promote, transfer, demote) took {took:?}; {} writes during it, \
         the slowest {slowest:?}, none failed",
        writes.created.len()
    )
}
