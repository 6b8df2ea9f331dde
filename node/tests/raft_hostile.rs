//! Defence in depth inside the cluster, through the real binaries: what a
//! buggy or compromised peer holding a node certificate sends is bounded.
//! Terms near the integer limit, a node speaking for another, garbage and
//! far-flung snapshot chunks are refused while the cluster keeps serving
//! with every node up; and an entry forged into one replica's log (which
//! Raft cannot stop: it came from a trusted leader's certificate) is found
//! by the replicas' state cross-check.

use std::path::Path;
use std::time::Duration;

use kauri_chaos_tests::{wait_until, TestCluster};
use kauri_client::proto::raft_client::RaftClient;
use kauri_client::proto::*;
use kauri_client::tls::{self, ClientTls, TlsFiles};
use kauri_client::{meta, KauriClient};
use kauri_node::raft::{typ, LogPayload};
use openraft::{CommittedLeaderId, EntryPayload, LeaderId, LogId};
use prost::Message;
use tonic::Code;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

/// Adds the cluster identity Raft messages carry.
#[derive(Clone)]
struct ClusterHeader(String);

impl tonic::service::Interceptor for ClusterHeader {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Ok(value) = self.0.parse() {
            request
                .metadata_mut()
                .insert(kauri_node::peer::network::CLUSTER_ID_HEADER, value);
        }
        Ok(request)
    }
}

type Peer = RaftClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClusterHeader>,
>;

/// A Raft client speaking to `addr` with node identity `files`, as a
/// member of cluster `cluster_id` (empty: no identity).
fn raft_as(addr: &str, files: &TlsFiles, cluster_id: &str) -> Peer {
    let tls = ClientTls::load(files.clone()).unwrap();
    RaftClient::with_interceptor(
        tls::channel(addr, Some(&tls), Duration::from_secs(2)).unwrap(),
        ClusterHeader(cluster_id.to_string()),
    )
}

fn encode<T: serde::Serialize>(value: &T) -> RaftMessage {
    RaftMessage {
        payload: postcard::to_allocvec(value).unwrap(),
    }
}

fn vote(term: u64, node: u64) -> typ::Vote {
    typ::Vote {
        leader_id: LeaderId::new(term, node),
        committed: true,
    }
}

fn log_id(term: u64, leader: u64, index: u64) -> typ::LogId {
    LogId::new(CommittedLeaderId::new(term, leader), index)
}

/// Every file in a node's snapshot directory with its apparent size.
fn snapshot_files(data_dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(data_dir.join("snapshots"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    (e.file_name().to_string_lossy().into_owned(), len)
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn deposit(staff: &KauriClient, registrar: &str, amount: i64) {
    staff
        .deposit_funds(DepositFundsRequest {
            meta: Some(meta("")),
            registrar: registrar.into(),
            amount_minor_units: amount,
            reference: "wire".into(),
        })
        .await
        .expect("staff deposits");
}

async fn set_up(cluster: &TestCluster) -> KauriClient {
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let staff = cluster.client();
    staff
        .create_registrar(CreateRegistrarRequest {
            meta: Some(meta("")),
            id: "acme".into(),
            name: "Acme".into(),
            password: "correct horse battery".into(),
            currency: "USD".into(),
        })
        .await
        .expect("staff creates a registrar");
    staff
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_messages_from_a_node_certificate_leave_every_node_serving() {
    let cluster = TestCluster::start(NODE_BIN, 3, &[]);
    let staff = set_up(&cluster).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = cluster.ids().into_iter().find(|&i| i != leader).unwrap();
    let (certs, _) = cluster.pki().unwrap();
    let addr = cluster.node(follower).addr.clone();
    let status = cluster.status(follower).await.unwrap();
    let term_before = status.term;
    // The leader's own certificate and the cluster's identity: the worst
    // a compromised peer can hold.
    let mut raft = raft_as(&addr, &certs.nodes[leader as usize - 1], &status.cluster_id);

    let refused = |r: Result<tonic::Response<RaftMessage>, tonic::Status>, what: &str| {
        let s = r.expect_err(what);
        assert_eq!(s.code(), Code::InvalidArgument, "{what}: {}", s.message());
        s.message().to_string()
    };

    // A vote of term 2^64-1, on each RPC.
    let append = typ::AppendEntriesRequest {
        vote: vote(u64::MAX, leader),
        prev_log_id: None,
        leader_commit: None,
        entries: vec![],
    };
    let m = refused(raft.append_entries(encode(&append)).await, "append");
    assert!(m.contains("above the highest term"), "{m}");
    // Without the cluster's identity, or with another's (a node of a
    // cluster this one was restored or recovered from): refused first.
    for other in ["", "0123456789abcdef0123456789abcdef"] {
        let mut stranger = raft_as(&addr, &certs.nodes[leader as usize - 1], other);
        let e = stranger
            .append_entries(encode(&append))
            .await
            .expect_err("a message of another cluster");
        assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
        assert!(e.message().contains("refused"), "{}", e.message());
    }
    let ballot = typ::VoteRequest {
        vote: vote(u64::MAX, leader),
        last_log_id: Some(log_id(u64::MAX, leader, u64::MAX)),
    };
    let m = refused(raft.vote(encode(&ballot)).await, "vote");
    assert!(m.contains("above the highest term"), "{m}");
    // A term far ahead of the cluster's.
    let jump = typ::AppendEntriesRequest {
        vote: vote(term_before + (1 << 33), leader),
        ..append.clone()
    };
    let m = refused(raft.append_entries(encode(&jump)).await, "jump");
    assert!(m.contains("jumps"), "{m}");
    // The leader's certificate speaking for another node: a fake heartbeat
    // that would cut the follower off from its leader.
    let other = cluster
        .ids()
        .into_iter()
        .find(|&i| i != leader && i != follower)
        .unwrap();
    let fake = typ::AppendEntriesRequest {
        vote: vote(term_before + 1, other),
        ..append.clone()
    };
    let m = refused(raft.append_entries(encode(&fake)).await, "impersonation");
    assert!(m.contains("speaks only for itself"), "{m}");

    // Snapshots: garbage marked done, a chunk at 2^40, a path in the id.
    let current = cluster.status(follower).await.unwrap();
    let snapshot_vote = vote(current.term, leader);
    let meta = typ::SnapshotMeta {
        last_log_id: Some(log_id(current.term, leader, current.applied_index + 10)),
        last_membership: Default::default(),
        snapshot_id: "forged-1".into(),
    };
    let garbage = typ::InstallSnapshotRequest {
        vote: snapshot_vote,
        meta: meta.clone(),
        offset: 0,
        data: b"garbage that is no snapshot at all".to_vec(),
        done: true,
    };
    let s = raft
        .install_snapshot(encode(&garbage))
        .await
        .expect_err("garbage refused");
    assert_eq!(s.code(), Code::FailedPrecondition, "{}", s.message());
    assert!(s.message().contains("bad magic"), "{}", s.message());
    let far = typ::InstallSnapshotRequest {
        offset: 1 << 40,
        done: false,
        data: vec![7; 1024],
        ..garbage.clone()
    };
    // Answered with openraft's mismatch (start again at 0), not written.
    raft.install_snapshot(encode(&far))
        .await
        .expect("a mismatch reply");
    let evil_id = typ::InstallSnapshotRequest {
        meta: typ::SnapshotMeta {
            snapshot_id: "../../escape".into(),
            ..meta.clone()
        },
        ..garbage.clone()
    };
    let m = refused(raft.install_snapshot(encode(&evil_id)).await, "id");
    assert!(m.contains("snapshot id"), "{m}");
    for (name, len) in snapshot_files(&cluster.node(follower).data_dir) {
        assert!(len < 1 << 30, "{name} is {len} bytes");
        assert!(!name.starts_with("receiving"), "{name} left behind");
    }

    // Leadership transfer is the leader's word alone: another node's
    // certificate, a stale term or an unbounded hold are refused, and the
    // follower neither stands for election nor stops electing.
    let current = cluster.status(follower).await.unwrap();
    let ask = |target, term, hold_elections_ms| TransferLeadershipRequest {
        target,
        term,
        hold_elections_ms,
    };
    let mut bystander = raft_as(&addr, &certs.nodes[other as usize - 1], &current.cluster_id);
    for (req, what) in [
        (
            ask(follower, current.term, 1000),
            "a non-leader asks it to stand",
        ),
        (
            ask(leader, current.term, 60_000),
            "a non-leader asks it to stand aside",
        ),
    ] {
        let e = bystander.transfer_leadership(req).await.expect_err(what);
        assert_eq!(
            e.code(),
            Code::FailedPrecondition,
            "{what}: {}",
            e.message()
        );
        assert!(
            e.message().contains("only the current leader"),
            "{}",
            e.message()
        );
    }
    let e = raft
        .transfer_leadership(ask(follower, current.term.saturating_sub(1), 1000))
        .await
        .expect_err("a stale term");
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    let e = raft
        .transfer_leadership(ask(other, current.term, u32::MAX))
        .await
        .expect_err("an unbounded hold");
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    let mut stranger = raft_as(&addr, &certs.nodes[leader as usize - 1], "");
    let e = stranger
        .transfer_leadership(ask(follower, current.term, 1000))
        .await
        .expect_err("no cluster identity");
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert_eq!(
        cluster.wait_for_leader(Duration::from_secs(30)).await,
        leader
    );

    // Every node is up, the term did not move, and writes go on.
    for id in cluster.ids() {
        assert!(cluster.is_running(id), "node {id} exited");
        let s = cluster.status(id).await.expect("node answers");
        assert!(s.term < term_before + 10, "term moved to {}", s.term);
    }
    deposit(&staff, "acme", 100).await;
    assert!(cluster.serves_linearizable_read(leader).await);

    // The peer link checks the server's node id too.
    let wrong = ClientTls::load(certs.nodes[0].clone())
        .unwrap()
        .expecting_node(99);
    let channel = tls::channel(&addr, Some(&wrong), Duration::from_secs(2)).unwrap();
    let e = RaftClient::new(channel)
        .append_entries(encode(&append))
        .await
        .expect_err("a node other than expected is refused");
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_forged_into_one_replica_is_reported_by_the_cross_check() {
    // No clock ticks: the log moves only when the test writes, so the
    // forged entry lands exactly where the leader's next one will.
    let cluster = TestCluster::start(
        NODE_BIN,
        3,
        &["--tick-interval-ms", "0", "--state-check-every", "5"],
    );
    let staff = set_up(&cluster).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let victim = cluster.ids().into_iter().find(|&i| i != leader).unwrap();
    cluster.wait_caught_up(Duration::from_secs(30)).await;
    let s = cluster.status(victim).await.unwrap();
    assert_eq!(s.leader_id, leader);
    let (term, last) = (s.term, s.last_log_index);

    // A deposit that no client asked for, sent to the victim alone under
    // the leader's own certificate and vote.
    let forged = Proposal {
        time_ms: s.applied_time_ms + 1,
        request_digest: vec![9; 32],
        command: Some(Command {
            kind: Some(command::Kind::DepositFunds(DepositFundsRequest {
                meta: Some(RequestMeta {
                    actor: "admin".into(),
                    cl_trid: "forged-1".into(),
                }),
                registrar: "acme".into(),
                amount_minor_units: 1_000_000,
                reference: "forged".into(),
            })),
        }),
        ..Default::default()
    };
    let append = typ::AppendEntriesRequest {
        vote: vote(term, leader),
        prev_log_id: Some(log_id(term, leader, last)),
        leader_commit: Some(log_id(term, leader, last + 1)),
        entries: vec![typ::Entry {
            log_id: log_id(term, leader, last + 1),
            payload: EntryPayload::Normal(LogPayload(forged.encode_to_vec())),
        }],
    };
    let (certs, _) = cluster.pki().unwrap();
    let mut raft = raft_as(
        &cluster.node(victim).addr,
        &certs.nodes[leader as usize - 1],
        &s.cluster_id,
    );
    raft.append_entries(encode(&append))
        .await
        .expect("a trusted peer's entry is taken");
    cluster
        .wait_for_applied(victim, last + 1, Duration::from_secs(10))
        .await;

    // The leader writes on; the victim believes it holds the same entry at
    // last + 1 (same log id) and applies the rest on top of the forgery.
    for _ in 0..12 {
        deposit(&staff, "acme", 1).await;
    }
    for id in cluster.ids() {
        let found = wait_until(
            Duration::from_secs(30),
            "a state mismatch is reported",
            || async { cluster.status(id).await.filter(|s| s.state_mismatches > 0) },
        )
        .await;
        assert!(
            found
                .last_state_mismatch
                .contains("state differs from node"),
            "{}",
            found.last_state_mismatch
        );
    }
    let log = std::fs::read_to_string(&cluster.node(victim).log).unwrap();
    assert!(log.contains("STATE DIVERGENCE"), "not logged loudly");
    // Both healthy replicas agree with each other: only the victim is odd.
    let healthy: Vec<u64> = cluster.ids().into_iter().filter(|&i| i != victim).collect();
    let a = cluster.status(healthy[0]).await.unwrap();
    assert!(
        a.last_state_mismatch.contains(&format!("node {victim}'s")),
        "{}",
        a.last_state_mismatch
    );
}
