//! Upgrades keep the data: a data directory records its on-disk format.
//! One written by each format this code reads (committed under
//! tests/fixtures/, the newest made by `cargo test -p kauri-node --test
//! upgrade record_the_fixture -- --ignored`) opens under this code with
//! its registry intact, format 1 also when it predates formats being
//! recorded; one of a newer, unknown format makes the node refuse to start,
//! say why, and leave the directory as it was. A backup of each format
//! (also committed, made by `record_the_backup_fixture`) verifies and
//! restores into a new node under this code. A format-1 directory gets the
//! delegation index of format 2 when it opens, and a host rename then
//! moves its delegations.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kauri_client::proto::*;
use kauri_client::{linearizable, meta, ClientConfig, KauriClient};
use kauri_node::storage::{StorageError, Store, CF_SM_META, FORMAT_VERSION, KEY_FORMAT_VERSION};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

/// The formats whose fixtures are committed: every one this code reads.
const FIXTURE_FORMATS: [u32; 2] = [1, 2];

fn fixture(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/format{format}-data-dir.tar.gz"))
}

fn backup_fixture(format: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/format{format}-backup.tar.gz"))
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

fn unpack_fixture(format: u32, into: &Path) {
    unpack(&fixture(format), into);
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
async fn a_data_dir_of_each_format_opens_with_its_registry() {
    for format in FIXTURE_FORMATS {
        let unrecorded: &[bool] = if format == 1 {
            &[false, true]
        } else {
            &[false]
        };
        for &predates_formats in unrecorded {
            let dir = tempfile::tempdir().expect("a temp dir");
            unpack_fixture(format, dir.path());
            if predates_formats {
                forget_format(dir.path());
            }
            let addr = free_addr();
            let node = start_node(dir.path(), &addr);
            reads_the_fixture_and_writes(&addr).await;
            stop(node);
            assert_eq!(
                stored_format(dir.path()),
                Some(FORMAT_VERSION),
                "format {format}"
            );
        }
    }
}

/// Makes the format-2 directory `data_dir` what format 1 wrote: no
/// delegation index (its column family dropped), format 1 recorded.
fn downgrade_to_format1(data_dir: &Path) {
    let db_dir = data_dir.join("db");
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &db_dir).expect("list cfs");
    assert!(names.iter().any(|n| n == "host_delegations"), "{names:?}");
    let mut db =
        rocksdb::DB::open_cf(&rocksdb::Options::default(), &db_dir, names).expect("open db");
    db.drop_cf("host_delegations").expect("drop the index");
    let cf = db.cf_handle(CF_SM_META).expect("sm_meta");
    db.put_cf(cf, KEY_FORMAT_VERSION, 1u32.to_be_bytes())
        .expect("record format 1");
}

/// Renames the fixture's host ns1.kept.fixture to `new_name` and checks
/// that uses.fixture, which delegates to it, names the new name.
async fn renaming_the_host_moves_the_delegation(c: &KauriClient, new_name: &str) {
    c.update_host(UpdateHostRequest {
        meta: Some(meta("reg1")),
        name: "ns1.kept.fixture".into(),
        new_name: new_name.into(),
        ..Default::default()
    })
    .await
    .expect("rename the delegated host");
    assert_eq!(nameservers(c, "uses.fixture").await, [new_name]);
}

async fn nameservers(c: &KauriClient, domain: &str) -> Vec<String> {
    c.info_domain(InfoRequest {
        registrar: "reg1".into(),
        name: domain.into(),
        read: linearizable(),
    })
    .await
    .expect("info")
    .domain
    .expect("a domain")
    .nameservers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format1_data_dir_gets_the_delegation_index_and_renames_move_delegations() {
    let dir = tempfile::tempdir().expect("a temp dir");
    unpack_fixture(2, dir.path());
    downgrade_to_format1(dir.path());
    let addr = free_addr();
    let node = start_node(dir.path(), &addr);
    let c = client(&addr);
    // The fixture's delegations, written before the index existed, move
    // with their host.
    assert_eq!(nameservers(&c, "uses.fixture").await, ["ns1.kept.fixture"]);
    renaming_the_host_moves_the_delegation(&c, "ns2.kept.fixture").await;
    stop(node);
    assert_eq!(stored_format(dir.path()), Some(FORMAT_VERSION));
}

#[test]
fn a_data_dir_of_a_newer_format_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("a temp dir");
    unpack_fixture(FORMAT_VERSION, dir.path());
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
        stderr.contains("on-disk format 99")
            && stderr.contains(&format!("reads formats 1 to {FORMAT_VERSION}")),
        "{stderr}"
    );
    match Store::open(dir.path()) {
        Err(StorageError::UnknownFormat { found: 99, .. }) => {}
        Err(e) => panic!("the data dir changed: {e}"),
        Ok(_) => panic!("the data dir changed: it opens"),
    }
}

/// Writes the fixture of this format: a data directory holding TLD
/// "fixture", registrar reg1 and its contact owner, domain kept.fixture
/// with its host ns1.kept.fixture, and domain uses.fixture delegating to
/// that host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/format<N>-data-dir.tar.gz; run by hand when the format changes"]
async fn record_the_fixture() {
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
    let domain = |name: &str, nameservers: &[&str]| CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: name.into(),
        period_years: 1,
        registrant: "owner".into(),
        nameservers: nameservers.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    };
    c.create_domain(domain("kept.fixture", &[]))
        .await
        .expect("create kept.fixture");
    c.create_host(CreateHostRequest {
        meta: Some(meta("reg1")),
        name: "ns1.kept.fixture".into(),
        addresses: vec!["192.0.2.53".into()],
    })
    .await
    .expect("create ns1.kept.fixture");
    c.create_domain(domain("uses.fixture", &["ns1.kept.fixture"]))
        .await
        .expect("create uses.fixture");
    stop(node);
    pack(dir.path(), &fixture(FORMAT_VERSION));
}

/// Writes the backup fixture of this format: a backup (`kauri backup
/// create`) of the data-directory fixture's node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/format<N>-backup.tar.gz; run by hand when the format changes"]
async fn record_the_backup_fixture() {
    let dir = tempfile::tempdir().expect("a temp dir");
    unpack_fixture(FORMAT_VERSION, dir.path());
    let addr = free_addr();
    let node = start_node(dir.path(), &addr);
    let c = client(&addr);
    wait_for_leader(&c).await;
    let backup = tempfile::tempdir().expect("a temp dir");
    kauri_client::backup::create(&c, &addr, backup.path())
        .await
        .expect("a backup");
    stop(node);
    pack(backup.path(), &backup_fixture(FORMAT_VERSION));
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

/// A backup written by each format verifies, restores into a new node
/// and serves the registry it held, which then takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_each_format_verifies_and_restores() {
    for format in FIXTURE_FORMATS {
        let backup = tempfile::tempdir().expect("a temp dir");
        unpack(&backup_fixture(format), backup.path());
        let manifest = kauri_client::backup::verify(backup.path()).expect("the fixture verifies");
        assert_eq!(manifest.on_disk_format, format);
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
            "restore of format {format} failed: {}",
            String::from_utf8_lossy(&restored.stderr)
        );
        let node = start_node(dir.path(), &addr);
        reads_the_fixture_and_writes(&addr).await;
        if format >= 2 {
            // The restored delegation index: the rename moves the delegation.
            renaming_the_host_moves_the_delegation(&client(&addr), "ns3.kept.fixture").await;
        }
        stop(node);
        assert_eq!(stored_format(dir.path()), Some(FORMAT_VERSION));
    }
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
