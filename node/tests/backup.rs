//! Online backups through the real binaries: `kauri backup create` takes a
//! node's state while a registrar keeps writing, `kauri backup verify`
//! accepts it; the backup holds exactly the state the node had at the
//! index it names (same digest); a flipped byte, a truncated or missing
//! file is refused with the file named; only staff may take one.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kauri_chaos_tests::TestCluster;
use kauri_client::backup::{self, BackupError, ARCHIVE_FILE, MANIFEST_FILE};
use kauri_node::registry::{state_digest, Cf};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

/// The registry digest of the state inside a backup, computed from its
/// archive as `Cluster.StateDigest` computes it from a live node.
fn digest_of_backup(dir: &Path) -> String {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let unpacked = scratch.path().join("checkpoint");
    let archive = fs::File::open(dir.join(ARCHIVE_FILE)).expect("open the archive");
    kauri_node::archive::extract_archive(archive, &unpacked).expect("unpack the archive");
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, &unpacked).expect("list column families");
    let db = rocksdb::DB::open_cf_for_read_only(&opts, &unpacked, &names, false)
        .expect("open the checkpoint");
    let mut entries = Vec::new();
    for cf in Cf::ALL {
        let handle = db.cf_handle(cf.name()).expect("a registry column family");
        for item in db.iterator_cf(handle, rocksdb::IteratorMode::Start) {
            let (k, v) = item.expect("read the checkpoint");
            entries.push((cf, k, v));
        }
    }
    let digest = state_digest(entries.iter().map(|(cf, k, v)| (*cf, &k[..], &v[..])));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn damaged_file(e: BackupError) -> String {
    match e {
        BackupError::Damaged { file, problem } => format!("{} {problem}", file.display()),
        other => panic!("not a damaged-file error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_online_backup_holds_the_state_at_its_index_and_damage_is_named() {
    let cluster = TestCluster::start(NODE_BIN, 3, &[]);
    let (staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let root = tempfile::tempdir().expect("a temp dir");

    // While writes go on.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(kauri_chaos_tests::fixtures::write_steadily(
        reg1.clone(),
        "test",
        "busy",
        stop.clone(),
        5_000,
        Duration::from_secs(120),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = root.path().join("during");
    let follower = if leader == 1 { 2 } else { 1 };
    let made = backup::create(&staff, &cluster.node(follower).addr, &during)
        .await
        .expect("a backup while writes go on");
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.expect("the writer");
    assert!(writes.failed.is_empty(), "{:?}", writes.failed);
    assert_eq!(made.node_id, follower);
    assert!(made.applied_index > 0);
    assert_eq!(backup::verify(&during).expect("it verifies"), made);

    // The state at the index it names: compare with the leader's digest
    // when no tick moved it between the backup and the digest.
    let mut compared = false;
    for attempt in 0..10 {
        let dir = root.path().join(format!("quiet-{attempt}"));
        let m = backup::create(&staff, &cluster.node(leader).addr, &dir)
            .await
            .expect("a backup of the leader");
        let live = staff
            .state_digest(&cluster.node(leader).addr)
            .await
            .expect("the leader's digest");
        if live.applied_index == m.applied_index {
            assert_eq!(
                digest_of_backup(&dir),
                live.digest,
                "the backup's state differs"
            );
            compared = true;
            break;
        }
    }
    assert!(
        compared,
        "no backup and digest at the same index in 10 tries"
    );

    // Refused into a directory that is not empty.
    let refused = backup::create(&staff, &cluster.node(leader).addr, &during)
        .await
        .expect_err("into a non-empty directory");
    assert!(refused.to_string().contains("not empty"), "{refused}");

    // Damage, each named.
    let copy = |name: &str| {
        let dir = root.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        for f in [ARCHIVE_FILE, MANIFEST_FILE] {
            fs::copy(during.join(f), dir.join(f)).unwrap();
        }
        dir
    };
    let flipped = copy("flipped");
    let mut bytes = fs::read(flipped.join(ARCHIVE_FILE)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(flipped.join(ARCHIVE_FILE), &bytes).unwrap();
    let e = damaged_file(backup::verify(&flipped).unwrap_err());
    assert!(e.contains(ARCHIVE_FILE) && e.contains("SHA-256"), "{e}");

    let truncated = copy("truncated");
    let bytes = fs::read(truncated.join(ARCHIVE_FILE)).unwrap();
    fs::write(truncated.join(ARCHIVE_FILE), &bytes[..bytes.len() - 100]).unwrap();
    let e = damaged_file(backup::verify(&truncated).unwrap_err());
    assert!(e.contains(ARCHIVE_FILE) && e.contains("bytes"), "{e}");

    let missing = copy("missing");
    fs::remove_file(missing.join(ARCHIVE_FILE)).unwrap();
    let e = damaged_file(backup::verify(&missing).unwrap_err());
    assert!(e.contains(ARCHIVE_FILE), "{e}");
    let no_manifest = copy("no-manifest");
    fs::remove_file(no_manifest.join(MANIFEST_FILE)).unwrap();
    let e = damaged_file(backup::verify(&no_manifest).unwrap_err());
    assert!(e.contains(MANIFEST_FILE), "{e}");

    // Only staff.
    let as_registrar = backup::create(&reg1, &cluster.node(leader).addr, &root.path().join("reg"))
        .await
        .expect_err("a registrar may not take a backup");
    match as_registrar {
        BackupError::Client(e) => assert_eq!(e.code, tonic::Code::PermissionDenied, "{e}"),
        other => panic!("{other}"),
    }
}

/// `kauri-node restore --from DIR` seeds a brand-new cluster (its own CA,
/// so the backed-up cluster's nodes cannot reach it) from a backup: the
/// new leader holds exactly the backed-up state (same digest), the other
/// voters, started with --join, receive it, and the cluster takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_restores_into_a_new_cluster_with_the_same_state() {
    use kauri_client::proto::{CreateDomainRequest, InfoRequest};
    use kauri_client::{linearizable, meta};

    let source = TestCluster::start(NODE_BIN, 3, &[]);
    let (staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&source).await;
    let leader = source.wait_for_leader(Duration::from_secs(30)).await;
    let stop = Arc::new(AtomicBool::new(false));
    stop.store(false, Ordering::Relaxed);
    let writes = kauri_chaos_tests::fixtures::write_steadily(
        reg1.clone(),
        "test",
        "kept",
        stop,
        40,
        Duration::from_secs(60),
    )
    .await;
    assert!(writes.failed.is_empty(), "{:?}", writes.failed);
    let root = tempfile::tempdir().expect("a temp dir");
    let dir = root.path().join("backup");
    let made = backup::create(&staff, &source.node(leader).addr, &dir)
        .await
        .expect("a backup");
    let backed_up = digest_of_backup(&dir);
    drop(source);

    let mut target = TestCluster::prepare(NODE_BIN, 3, &["--tick-interval-ms", "0"]);
    let restore = || {
        std::process::Command::new(NODE_BIN)
            .args(["--id", "1", "--site", "test", "--grpc-addr"])
            .arg(&target.node(1).addr)
            .arg("--peers")
            .arg(&target.peers)
            .arg("--data-dir")
            .arg(&target.node(1).data_dir)
            .args(["restore", "--from"])
            .arg(&dir)
            .output()
            .expect("run kauri-node restore")
    };
    let restored = restore();
    assert!(
        restored.status.success(),
        "restore failed ({}): {}",
        restored.status,
        String::from_utf8_lossy(&restored.stderr)
    );
    // Restoring again into the now seeded data dir is refused.
    let again = restore();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    target.spawn(1);
    target.spawn_with(2, &["--join"]);
    target.spawn_with(3, &["--join"]);
    let new_leader = target.wait_for_leader(Duration::from_secs(60)).await;
    let staff = target.client();
    let live = staff
        .state_digest(&target.node(new_leader).addr)
        .await
        .expect("the new leader's digest");
    assert!(live.applied_index >= made.applied_index, "{live:?}");
    assert_eq!(live.digest, backed_up, "the restored state differs");
    for id in [1, 2, 3] {
        target
            .wait_for_applied(id, made.applied_index, Duration::from_secs(60))
            .await;
    }
    let reg1 = target.registrar_client("reg1");
    for name in &writes.created {
        reg1.info_domain(InfoRequest {
            registrar: "reg1".into(),
            name: name.clone(),
            read: linearizable(),
        })
        .await
        .unwrap_or_else(|e| panic!("{name} is not in the restored cluster: {e}"));
    }
    reg1.create_domain(CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: "after-restore.test".into(),
        period_years: 1,
        registrant: "owner".into(),
        ..Default::default()
    })
    .await
    .expect("the restored cluster takes writes");
}
