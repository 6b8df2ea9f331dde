//! Upgrades keep the data: a data directory records its on-disk format.
//! One written by this format (committed under tests/fixtures/, made by
//! `cargo test -p kauri-node --test upgrade record_the_format1_fixture --
//! --ignored`) opens under this code with its registry intact, also when it
//! predates formats being recorded; one of a newer, unknown format makes
//! the node refuse to start, say why, and leave the directory as it was.
//! A backup of this format (also committed, made by
//! `record_the_format1_backup_fixture`) verifies and restores into a new
//! node under this code.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kauri_client::proto::*;
use kauri_client::{linearizable, meta, ClientConfig, KauriClient};
use kauri_node::storage::{StorageError, Store, CF_SM_META, FORMAT_VERSION, KEY_FORMAT_VERSION};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1-data-dir.tar.gz")
}

fn backup_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1-backup.tar.gz")
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("an address").to_string()
}

/// Starts a single plain-text node on `data_dir`.
fn start_node(data_dir: &Path, addr: &str) -> Child {
    Command::new(NODE_BIN)
        .args(["--id", "1", "--grpc-addr", addr, "--site", "test"])
        .arg("--peers")
        .arg(format!("1={addr}"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--insecure-plaintext")
        .env("KAURI_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kauri-node")
}

/// Stops `child` (ours, by PID) with SIGTERM and waits for it.
fn stop(mut child: Child) {
    // SAFETY: signalling a child this test started and has not reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn client(addr: &str) -> KauriClient {
    KauriClient::new(
        &[addr],
        ClientConfig {
            tls: None,
            deadline: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(100),
        },
    )
    .expect("a client")
}

fn stored_format(data_dir: &Path) -> Option<u32> {
    let store = Store::open(data_dir).expect("open the data dir");
    let bytes = store
        .db()
        .get_cf(store.cf(CF_SM_META), KEY_FORMAT_VERSION)
        .expect("read the format")?;
    Some(u32::from_be_bytes(bytes.as_slice().try_into().ok()?))
}

/// Removes the format record, as data directories written before formats
/// were recorded lack it.
fn forget_format(data_dir: &Path) {
    let db_dir = data_dir.join("db");
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &db_dir).expect("list cfs");
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &db_dir, names).expect("open db");
    let cf = db.cf_handle(CF_SM_META).expect("sm_meta");
    db.delete_cf(cf, KEY_FORMAT_VERSION)
        .expect("delete the format");
}

fn unpack_fixture(into: &Path) {
    unpack(&fixture(), into);
}

fn unpack(archive: &Path, into: &Path) {
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("run tar");
    assert!(
        status.success(),
        "tar could not unpack {}",
        archive.display()
    );
}

/// Packs directory `dir` into `archive` reproducibly.
fn pack(dir: &Path, archive: &Path) {
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-czf",
        ])
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .args(["--exclude=LOG*", "."])
        .status()
        .expect("run tar");
    assert!(
        status.success(),
        "tar could not write {}",
        archive.display()
    );
}

async fn reads_the_fixture_and_writes(addr: &str) {
    let c = client(addr);
    let kept = c
        .info_domain(InfoRequest {
            registrar: "reg1".into(),
            name: "kept.fixture".into(),
            read: linearizable(),
        })
        .await
        .expect("the fixture's domain is there after the upgrade");
    assert_eq!(kept.domain.map(|d| d.name), Some("kept.fixture".into()));
    c.create_domain(CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: "after-upgrade.fixture".into(),
        period_years: 1,
        registrant: "owner".into(),
        ..Default::default()
    })
    .await
    .expect("a write after the upgrade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_this_format_opens_with_its_registry() {
    for predates_formats in [false, true] {
        let dir = tempfile::tempdir().expect("a temp dir");
        unpack_fixture(dir.path());
        if predates_formats {
            forget_format(dir.path());
        }
        let addr = free_addr();
        let node = start_node(dir.path(), &addr);
        reads_the_fixture_and_writes(&addr).await;
        stop(node);
        assert_eq!(stored_format(dir.path()), Some(FORMAT_VERSION));
    }
}

#[test]
fn a_data_dir_of_a_newer_format_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("a temp dir");
    unpack_fixture(dir.path());
    {
        let store = Store::open(dir.path()).expect("open the data dir");
        store
            .db()
            .put_cf(
                store.cf(CF_SM_META),
                KEY_FORMAT_VERSION,
                99u32.to_be_bytes(),
            )
            .expect("pretend a newer kauri-node wrote it");
    }
    let addr = free_addr();
    let mut node = start_node(dir.path(), &addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = node.try_wait().expect("poll the node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            panic!("kauri-node started on a data dir of format 99");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    node.stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{status:?}");
    assert!(
        stderr.contains("on-disk format 99") && stderr.contains("reads formats 1 to 1"),
        "{stderr}"
    );
    match Store::open(dir.path()) {
        Err(StorageError::UnknownFormat { found: 99, .. }) => {}
        Err(e) => panic!("the data dir changed: {e}"),
        Ok(_) => panic!("the data dir changed: it opens"),
    }
}

/// Writes the fixture: a data directory of this format holding TLD
/// "fixture", registrar reg1 and its contact owner, and domain
/// kept.fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/format1-data-dir.tar.gz; run by hand when the format changes"]
async fn record_the_format1_fixture() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let addr = free_addr();
    let node = start_node(dir.path(), &addr);
    let c = client(&addr);
    kauri_chaos_tests::fixtures::registry_with_reg1(
        &c,
        &c,
        "fixture",
        kauri_chaos_tests::fixtures::tld_policy("USD", 100),
        100_000,
    )
    .await;
    c.create_domain(CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: "kept.fixture".into(),
        period_years: 1,
        registrant: "owner".into(),
        ..Default::default()
    })
    .await
    .expect("create kept.fixture");
    stop(node);
    pack(dir.path(), &fixture());
}

/// Writes the backup fixture: a backup (`kauri backup create`) of the
/// data-directory fixture's node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/format1-backup.tar.gz; run by hand when the format changes"]
async fn record_the_format1_backup_fixture() {
    let dir = tempfile::tempdir().expect("a temp dir");
    unpack_fixture(dir.path());
    let addr = free_addr();
    let node = start_node(dir.path(), &addr);
    let c = client(&addr);
    wait_for_leader(&c).await;
    let backup = tempfile::tempdir().expect("a temp dir");
    kauri_client::backup::create(&c, &addr, backup.path())
        .await
        .expect("a backup");
    stop(node);
    pack(backup.path(), &backup_fixture());
}

/// Waits until the single node at `c` answers as leader.
async fn wait_for_leader(c: &KauriClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if c.info_tld(InfoTldRequest {
            name: "fixture".into(),
            read: linearizable(),
        })
        .await
        .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the node did not lead within 30 s");
}

/// A backup written by this format verifies, restores into a new node
/// and serves the registry it held, which then takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_this_format_verifies_and_restores() {
    let backup = tempfile::tempdir().expect("a temp dir");
    unpack(&backup_fixture(), backup.path());
    let manifest = kauri_client::backup::verify(backup.path()).expect("the fixture verifies");
    assert_eq!(manifest.on_disk_format, FORMAT_VERSION);
    let dir = tempfile::tempdir().expect("a temp dir");
    let addr = free_addr();
    let restored = Command::new(NODE_BIN)
        .args(["--id", "1", "--site", "test", "--grpc-addr", &addr])
        .arg("--peers")
        .arg(format!("1={addr}"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--insecure-plaintext")
        .args(["restore", "--from"])
        .arg(backup.path())
        .output()
        .expect("run kauri-node restore");
    assert!(
        restored.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let node = start_node(dir.path(), &addr);
    reads_the_fixture_and_writes(&addr).await;
    stop(node);
    assert_eq!(stored_format(dir.path()), Some(FORMAT_VERSION));
}

/// The procedure of a rolling upgrade, node by node under a steady write
/// load: stop one node (SIGTERM), start it again on its data dir (an
/// upgrade would start the new binary here), wait until it has caught up,
/// go on to the next. No write fails beyond the client's retries and every
/// acknowledged one is there afterwards, on replicas that agree. (One
/// build is all this machine has: the versions differ in the next format
/// change, not here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_fails_no_write() {
    use kauri_chaos_tests::TestCluster;

    let mut cluster = TestCluster::start(NODE_BIN, 3, &[]);
    let (_staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let (stop, writer) = kauri_chaos_tests::fixtures::write_in_background(
        &reg1,
        "test",
        "rolling",
        5_000,
        Duration::from_secs(240),
    );
    for id in 1..=3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let exit = cluster.terminate(id, Duration::from_secs(20));
        assert!(
            exit.is_some_and(|e| e.success()),
            "node {id} stopped: {exit:?}"
        );
        cluster.spawn(id);
        cluster.wait_caught_up(Duration::from_secs(60)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writes = kauri_chaos_tests::fixtures::stop_and_check(&stop, writer, &reg1).await;
    assert!(
        writes.created.len() > 10,
        "only {} writes",
        writes.created.len()
    );
    let digests = cluster.converged_digests(Duration::from_secs(30)).await;
    assert_eq!(digests.len(), 3);
    assert!(
        digests.windows(2).all(|w| w[0].digest == w[1].digest),
        "replicas differ after the rolling restart: {digests:?}"
    );
}
