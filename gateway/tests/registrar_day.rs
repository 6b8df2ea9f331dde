//! A registrar's whole day through EPP clients the project did not write,
//! unmodified: Perl's Net::EPP (gateway/tests/clients/net_epp_day.pl) and
//! InternetNZ's pyepp (gateway/tests/clients/pyepp_day_full.py), against a
//! real 3-node cluster (with `--test-clock`) and the real `kauri-gateway`.
//! Each script does the day as registrars reg1 and reg2 and stops at two
//! checkpoints: `PAUSE kill-leader` in the middle of reg1's session (where
//! one test SIGKILLs the cluster's leader while the client carries on in the
//! same EPP session) and `PAUSE advance-clock` (the test moves the cluster's
//! clock 61 days: past the add grace period and the transfer lock; the
//! sessions expire and the scripts log in again). Afterwards the registrars'
//! ledgers and the audit trail show every command applied exactly once.
//! A third test runs one registrar on two gateways at once.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kauri_chaos_tests::TestCluster;
use kauri_client::proto::{
    AuditQueryRequest, InfoRegistrarRequest, LedgerEntry, PremiumName, TldLifecyclePolicy,
    UpdateTldRequest,
};
use kauri_client::KauriClient;
use support::*;

const DAY_MS: i64 = 86_400_000;
/// The premium names' labels (25.00 to create, 20.00 to renew): one per
/// day's prefix, which the client checks the fee of and buys.
const PREMIUM: [&str; 2] = ["pl-gold", "py-gold"];
/// How long one line of a client's output may take (a failover included).
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The cluster the day runs against, with staff access and the clock.
struct Registry {
    cluster: TestCluster,
    staff: KauriClient,
    /// How far the test clock was moved, on every node that ran throughout.
    offset_ms: i64,
}

impl Registry {
    /// A 3-node cluster with `--test-clock`, TLD test, registrars reg1 and
    /// reg2 (password "correct horse", funded, creates and renewals cost 1)
    /// and the premium names of each day's prefix (`PREMIUM`).
    async fn start() -> Registry {
        let cluster = TestCluster::start(node_bin(), 3, &["--test-clock"]);
        let (staff, _reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
        let reg2 = cluster.registrar_client("reg2");
        kauri_chaos_tests::fixtures::add_registrar(&staff, &reg2, "reg2", "USD", 100_000_000).await;
        staff
            .update_tld(UpdateTldRequest {
                meta: Some(kauri_client::meta(kauri_client::devpki::DEV_STAFF)),
                name: "test".into(),
                policy: None,
                lifecycle: Some(TldLifecyclePolicy {
                    premium_names: PREMIUM
                        .iter()
                        .map(|label| PremiumName {
                            label: label.to_string(),
                            create_price_minor_units: 2500,
                            renew_price_minor_units: 2000,
                        })
                        .collect(),
                    ..Default::default()
                }),
            })
            .await
            .expect("the premium names");
        Registry {
            cluster,
            staff,
            offset_ms: 0,
        }
    }

    /// Moves the clock of every running node forward by `ms`.
    async fn advance(&mut self, ms: i64) {
        for id in self.cluster.running_ids() {
            let addr = self.cluster.node(id).addr.clone();
            self.staff
                .advance_test_clock_at(&addr, ms)
                .await
                .unwrap_or_else(|e| panic!("move node {id}'s clock: {e}"));
        }
        self.offset_ms += ms;
    }

    /// SIGKILLs the current leader; returns its id.
    async fn kill_leader(&mut self) -> u64 {
        let cluster = &self.cluster;
        let leader =
            kauri_chaos_tests::wait_until(Duration::from_secs(20), "a leader to kill", || async {
                cluster.current_leader().await
            })
            .await;
        self.cluster.kill(leader);
        leader
    }

    /// Restarts node `id` (killed earlier), brings its clock to the others'
    /// and waits until it has caught up.
    async fn restart(&mut self, id: u64) {
        self.cluster.spawn(id);
        let addr = self.cluster.node(id).addr.clone();
        let staff = &self.staff;
        let offset = self.offset_ms;
        kauri_chaos_tests::wait_until(
            Duration::from_secs(20),
            "the restarted node's clock",
            || {
                let addr = addr.clone();
                async move { staff.advance_test_clock_at(&addr, offset).await.ok() }
            },
        )
        .await;
        self.cluster.wait_caught_up(Duration::from_secs(30)).await;
    }
}

/// What the test does at a client's `PAUSE kill-leader`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AtCheckpoint {
    /// Nothing: "go".
    Go,
    /// "go", and once the client's next command (a domain create) has been
    /// answered, SIGKILL the leader while the client goes on sending.
    KillLeader,
}

/// A client script's process, killed by PID if the test fails early.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a client's day printed and what the test did during it.
struct Day {
    /// Step lines and checkpoints, in order ("# " comment lines left out).
    lines: Vec<String>,
    /// The "# " lines (retries, other poll messages).
    comments: Vec<String>,
    /// The node killed at the checkpoint, if any.
    killed: Option<u64>,
    /// The lines printed after the kill with the time each took, until the
    /// clock checkpoint.
    after_kill: Vec<(String, Duration)>,
    /// How many of the server's frames the client kept (each validated
    /// against the EPP schemas).
    answers: usize,
}

/// Runs a client's day: `program args` with `env`, answering its
/// checkpoints. Panics with its output if it fails or stalls.
async fn run_day(
    registry: &mut Registry,
    program: &Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
    at_checkpoint: AtCheckpoint,
) -> Day {
    let err = tempfile::NamedTempFile::new().expect("a file for stderr");
    let frames = tempfile::tempdir().expect("a directory for the frames");
    let mut script = Script(
        Command::new(program)
            .args(&args)
            .envs(env)
            .env("KAURI_EPP_FRAMES", frames.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err.reopen().expect("stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display())),
    );
    let mut stdin = script.0.stdin.take().expect("stdin");
    let stdout = script.0.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut day = Day {
        lines: Vec::new(),
        comments: Vec::new(),
        killed: None,
        after_kill: Vec::new(),
        answers: 0,
    };
    let began = Instant::now();
    let fail = |day: &Day, why: &str| -> ! {
        panic!(
            "{} {why} after {:?}\nstdout:\n{}\n{}\nstderr:\n{}",
            program.display(),
            began.elapsed(),
            day.lines.join("\n"),
            day.comments.join("\n"),
            std::fs::read_to_string(err.path()).unwrap_or_default()
        )
    };
    let mut kill_after_next = false;
    let mut last = Instant::now();
    loop {
        let line = match tokio::time::timeout(LINE_TIMEOUT, rx.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(_) => fail(&day, &format!("printed nothing for {LINE_TIMEOUT:?}")),
        };
        let took = last.elapsed();
        last = Instant::now();
        if line.starts_with('#') {
            day.comments.push(line);
            continue;
        }
        day.lines.push(line.clone());
        if day.killed.is_some() && day.lines.iter().all(|l| l != "PAUSE advance-clock") {
            day.after_kill.push((line.clone(), took));
        }
        if kill_after_next {
            kill_after_next = false;
            day.killed = Some(registry.kill_leader().await);
        }
        let go = match line.as_str() {
            "PAUSE advance-clock" => {
                registry.advance(61 * DAY_MS).await;
                true
            }
            "PAUSE kill-leader" => {
                kill_after_next = at_checkpoint == AtCheckpoint::KillLeader;
                true
            }
            _ => false,
        };
        if go && writeln!(stdin, "go").and_then(|_| stdin.flush()).is_err() {
            fail(&day, "stopped reading its checkpoints");
        }
    }
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = script.0.try_wait().expect("wait for the client") {
            break status;
        }
        if Instant::now() > deadline {
            fail(&day, "did not exit");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if !status.success() {
        fail(&day, &format!("failed ({status})"));
    }
    day.answers = assert_frames_valid(frames.path(), "S");
    // The greetings and at least one answer per step (PAUSE lines aside).
    assert!(
        day.answers >= day.lines.len(),
        "{} answers kept",
        day.answers
    );
    day
}

/// Panics unless every frame `dir` holds from `side` ("S" the server, "C"
/// the client) validates against the EPP schemas (with support's
/// [`assert_valid`], fee elements aside); returns how many there were.
fn assert_frames_valid(dir: &Path, side: &str) -> usize {
    let suffix = format!("-{side}.xml");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the frames")
        .map(|e| e.expect("a frame").path())
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the client kept no frames in {}",
        dir.display()
    );
    let checked = tempfile::tempdir().expect("a temp dir");
    for (n, file) in files.iter().enumerate() {
        let xml = std::fs::read_to_string(file).expect("a frame");
        assert_valid(&xml, checked.path(), n);
    }
    files.len()
}

/// The lines of a day that went as planned; the clients differ only in how
/// they report a logout.
fn expected_day(logout: &str) -> Vec<String> {
    let mut lines: Vec<String> = [
        "login-reg1 1000",
        "contact-check 1000",
        "contact-create 1000",
        "contact-info 1000",
        "contact-update 1000",
        "contact-info-updated 1000",
        "domain-check 1000",
        "PAUSE kill-leader",
        "domain-create 1000",
        "host-create-in 1000",
        "host-create-out 1000",
        "host-info 1000",
        "domain-update-add 1000",
        "domain-info 1000",
        "domain-update-ds-add 1000",
        "domain-info-ds 1000",
        "domain-update-ds-sha1 2306",
        "domain-update-ds-rem 1000",
        "domain-info-ds-rem 1000",
        "domain-update-rem 1000",
        "domain-renew 1000",
        "domain-info-renewed 1000",
        "domain-create-gone 1000",
        "domain-delete-gone 1000",
        "domain-check-gone 1000",
        "domain-create-back 1000",
        "fee-check 1000",
        "fee-create-low 2004",
        "fee-check-after 1000",
        "fee-create 1000",
        "PAUSE advance-clock",
        "login-reg1 1000",
        "login-reg2 1000",
        "transfer-request 1001",
        "transfer-query 1000",
        "poll-req-reg1 1301",
        "poll-ack-reg1 1000",
        "transfer-approve 1000",
        "poll-req-reg2 1301",
        "poll-ack-reg2 1000",
        "domain-info-transferred 1000",
        "contact-create-moving 1000",
        "contact-transfer-request 1001",
        "contact-transfer-query 1000",
        "poll-req-reg1 1301",
        "poll-ack-reg1 1000",
        "contact-transfer-reject 1000",
        "poll-req-reg2 1301",
        "poll-ack-reg2 1000",
        "contact-transfer-request-again 1001",
        "contact-transfer-cancel 1000",
        "contact-transfer-request-last 1001",
        "contact-info-pending 1000",
        "contact-transfer-approve 1000",
        "poll-req-reg2 1301",
        "poll-ack-reg2 1000",
        "contact-info-moved 1000",
        "contact-transfer-old-auth 2202",
        "domain-delete-back 1001",
        "domain-info-deleted 1000",
        "restore-request 1000",
        "domain-info-restoring 1000",
        "restore-report 1000",
        "domain-info-restored 1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    lines.push(format!("logout-reg1 {logout}"));
    lines.push(format!("logout-reg2 {logout}"));
    lines
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Net::EPP's day as objects named with `prefix`.
async fn net_epp_day(registry: &mut Registry, gw: &Gateway, prefix: &str, at: AtCheckpoint) -> Day {
    let (host, port) = gw.addr.rsplit_once(':').expect("HOST:PORT");
    let ca = registry
        .cluster
        .pki()
        .expect("TLS")
        .0
        .ca
        .display()
        .to_string();
    let args = vec![
        clients_dir().join("net_epp_day.pl").display().to_string(),
        host.into(),
        port.into(),
        "reg1".into(),
        "reg2".into(),
        "correct horse".into(),
        prefix.into(),
        ca,
    ];
    let day = run_day(registry, Path::new("perl"), args, vec![], at).await;
    assert_eq!(day.lines, expected_day("ok"), "{:#?}", day.comments);
    day
}

/// pyepp's day as objects named with `prefix`.
async fn pyepp_day(registry: &mut Registry, gw: &Gateway, prefix: &str, at: AtCheckpoint) -> Day {
    let python = epp_tools();
    let (host, port) = gw.addr.rsplit_once(':').expect("HOST:PORT");
    let ca = registry
        .cluster
        .pki()
        .expect("TLS")
        .0
        .ca
        .display()
        .to_string();
    let args = vec![
        clients_dir()
            .join("pyepp_day_full.py")
            .display()
            .to_string(),
        host.into(),
        port.into(),
        "reg1".into(),
        "reg2".into(),
        "correct horse".into(),
        prefix.into(),
    ];
    let env = vec![("SSL_CERT_FILE".to_string(), ca)];
    let day = run_day(registry, &python, args, env, at).await;
    assert_eq!(day.lines, expected_day("1500"), "{:#?}", day.comments);
    day
}

/// The ledger of `registrar` (its last 1000 entries).
async fn ledger(staff: &KauriClient, registrar: &str) -> Vec<LedgerEntry> {
    staff
        .info_registrar(InfoRegistrarRequest {
            id: registrar.into(),
            read: kauri_client::linearizable(),
            ledger_limit: 1000,
        })
        .await
        .expect("the registrar")
        .registrar
        .expect("a registrar")
        .ledger
}

/// The commands in the audit trail of object `object` of kind `kind`,
/// sorted.
async fn audited(staff: &KauriClient, kind: &str, object: &str) -> Vec<String> {
    let records = staff
        .query_audit(AuditQueryRequest {
            object_kind: kind.into(),
            object: object.into(),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("the audit trail")
        .records;
    let mut commands: Vec<String> = records.into_iter().map(|r| r.command).collect();
    commands.sort();
    commands
}

/// Panics unless the day of `prefix` left exactly one charge per charged
/// command in the registrars' ledgers and exactly one audit record per
/// command that changed something.
async fn assert_applied_once(staff: &KauriClient, prefix: &str) {
    let day = format!("{prefix}-day.test");
    let gone = format!("{prefix}-gone.test");
    let back = format!("{prefix}-back.test");
    let kinds = |ledger: &[LedgerEntry], object: &str| {
        let mut kinds: Vec<String> = ledger
            .iter()
            .filter(|e| e.object == object)
            .map(|e| e.kind.clone())
            .collect();
        kinds.sort();
        kinds
    };
    let reg1 = ledger(staff, "reg1").await;
    let reg2 = ledger(staff, "reg2").await;
    assert_eq!(kinds(&reg1, &day), ["create", "renew"], "{reg1:#?}");
    assert_eq!(kinds(&reg1, &gone), ["create", "refund"], "{reg1:#?}");
    assert_eq!(
        kinds(&reg1, &back),
        ["create", "renew", "restore"],
        "{reg1:#?}"
    );
    assert_eq!(kinds(&reg2, &day), ["transfer"], "{reg2:#?}");
    // The premium create, charged its price once (the low offer nothing).
    let gold = format!("{prefix}-gold.test");
    let charges: Vec<(String, i64)> = reg1
        .iter()
        .filter(|e| e.object == gold)
        .map(|e| (e.kind.clone(), e.amount_minor_units))
        .collect();
    assert_eq!(charges, [("create".to_string(), -2500)], "{reg1:#?}");

    for (kind, object, want) in [
        (
            "domain",
            day.as_str(),
            // Its subordinate host's creation is on its record too.
            &[
                "CreateDomain",
                "CreateHost",
                "RenewDomain",
                "TransferDomain",
                "TransferDomain",
                "UpdateDomain",
                "UpdateDomain",
                "UpdateDomain",
                "UpdateDomain",
            ][..],
        ),
        (
            "domain",
            gone.as_str(),
            &["CreateDomain", "DeleteDomain"][..],
        ),
        (
            "domain",
            back.as_str(),
            &[
                "CreateDomain",
                "DeleteDomain",
                "RestoreDomain",
                "RestoreDomain",
            ][..],
        ),
        (
            "contact",
            &format!("{prefix}-c1"),
            &["CreateContact", "UpdateContact"][..],
        ),
        // Requested three times: rejected, cancelled, approved.
        (
            "contact",
            &format!("{prefix}-c2"),
            &[
                "CreateContact",
                "TransferContact",
                "TransferContact",
                "TransferContact",
                "TransferContact",
                "TransferContact",
                "TransferContact",
            ][..],
        ),
        // It went to reg2 with its domain.
        (
            "host",
            &format!("ns1.{day}"),
            &["CreateHost", "TransferDomain"][..],
        ),
        (
            "host",
            &format!("ns1.{prefix}.example.net"),
            &["CreateHost"][..],
        ),
    ] {
        assert_eq!(audited(staff, kind, object).await, want, "{kind} {object}");
    }
}

/// Net::EPP then pyepp, each through the whole day on one gateway in front
/// of a 3-node cluster; every command applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_epp_and_pyepp_do_the_registrar_day() {
    epp_tools();
    let mut registry = Registry::start().await;
    let gw = start_gateway(&registry.cluster, &[]);
    net_epp_day(&mut registry, &gw, "pl", AtCheckpoint::Go).await;
    pyepp_day(&mut registry, &gw, "py", AtCheckpoint::Go).await;
    assert_applied_once(&registry.staff, "pl").await;
    assert_applied_once(&registry.staff, "py").await;
}

/// The same day with the leader SIGKILLed in the middle of reg1's session,
/// once under each client (the killed node restarted in between): the EPP
/// sessions survive (the scripts never reconnect there), every command gets
/// an answer, and none is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_survives_a_leader_kill() {
    epp_tools();
    let mut registry = Registry::start().await;
    let gw = start_gateway(&registry.cluster, &[]);

    let perl = net_epp_day(&mut registry, &gw, "pl", AtCheckpoint::KillLeader).await;
    let killed = perl.killed.expect("a leader killed under Net::EPP");
    assert!(!registry.cluster.is_running(killed));
    registry.restart(killed).await;

    let py = pyepp_day(&mut registry, &gw, "py", AtCheckpoint::KillLeader).await;
    let killed = py.killed.expect("a leader killed under pyepp");
    assert!(!registry.cluster.is_running(killed));
    for retry in py.comments.iter().filter(|c| c.contains("2400")) {
        eprintln!("pyepp resent a command: {retry}");
    }
    for (client, day) in [("Net::EPP", &perl), ("pyepp", &py)] {
        let (slowest, took) = day
            .after_kill
            .iter()
            .max_by_key(|(_, took)| *took)
            .expect("steps after the kill");
        eprintln!("{client}: after the kill the slowest step was {slowest} ({took:?})");
    }

    assert_applied_once(&registry.staff, "pl").await;
    assert_applied_once(&registry.staff, "py").await;
}

/// Two gateways in front of one cluster, registrar reg1 logged in on both at
/// once: each creates and reads domains, and sees what the other created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_serve_one_registrar_at_once() {
    epp_tools();
    let cluster = TestCluster::start(node_bin(), 3, &[]);
    kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let gw1 = start_gateway(&cluster, &[]);
    let gw2 = start_gateway(&cluster, &[]);
    let out = tempfile::tempdir().expect("a temp dir");
    let n = std::cell::Cell::new(0);
    let mut one = logged_in(&gw1, "reg1", out.path(), &n).await;
    let mut two = logged_in(&gw2, "reg1", out.path(), &n).await;

    let create = |name: &str| {
        format!(
            "<create><domain:create {D}><domain:name>{name}</domain:name>\
             <domain:registrant>owner</domain:registrant></domain:create></create>"
        )
    };
    let info = |name: &str| {
        format!("<info><domain:info {D}><domain:name>{name}</domain:name></domain:info></info>")
    };
    // Each creates one, then both at once.
    one.expect(1000, &create("first.test"), "gw1-create-1")
        .await;
    two.expect(1000, &create("second.test"), "gw2-create-1")
        .await;
    let (x, y) = (
        command(&create("third.test"), "gw1-create-2"),
        command(&create("fourth.test"), "gw2-create-2"),
    );
    let (a, b) = tokio::join!(one.epp.send(&x), two.epp.send(&y));
    for answer in [&a, &b] {
        n.set(n.get() + 1);
        assert_valid(answer, out.path(), n.get());
    }
    assert_eq!((code(&a), code(&b)), (1000, 1000), "{a}\n{b}");
    // Each sees what the other made, at once (linearizable reads).
    for (session, names, tag) in [
        (&mut one, ["second.test", "fourth.test"], "gw1"),
        (&mut two, ["first.test", "third.test"], "gw2"),
    ] {
        for (i, name) in names.iter().enumerate() {
            let answer = session
                .expect(1000, &info(name), &format!("{tag}-info-{i}"))
                .await;
            assert!(
                answer.contains("<domain:clID>reg1</domain:clID>"),
                "{answer}"
            );
            assert!(
                answer.contains(&format!("<domain:name>{name}</domain:name>")),
                "{answer}"
            );
        }
    }
    // The same name from both at once: one creates it, the other is told
    // it exists.
    let (x, y) = (
        command(&create("contested.test"), "gw1-create-3"),
        command(&create("contested.test"), "gw2-create-3"),
    );
    let (a, b) = tokio::join!(one.epp.send(&x), two.epp.send(&y));
    for answer in [&a, &b] {
        n.set(n.get() + 1);
        assert_valid(answer, out.path(), n.get());
    }
    let mut codes = [code(&a), code(&b)];
    codes.sort();
    assert_eq!(codes, [1000, 2302], "{a}\n{b}");
    let checked = two
        .expect(
            1000,
            &check_body(&["first.test", "contested.test", "fifth.test"]),
            "gw2-check",
        )
        .await;
    assert!(
        checked.contains(r#"<domain:name avail="0">first.test</domain:name>"#),
        "{checked}"
    );
    assert!(
        checked.contains(r#"<domain:name avail="0">contested.test</domain:name>"#),
        "{checked}"
    );
    assert!(
        checked.contains(r#"<domain:name avail="1">fifth.test</domain:name>"#),
        "{checked}"
    );
    one.expect(1500, "<logout/>", "gw1-logout").await;
    two.expect(1500, "<logout/>", "gw2-logout").await;
}

fn check_body(names: &[&str]) -> String {
    let names: String = names
        .iter()
        .map(|n| format!("<domain:name>{n}</domain:name>"))
        .collect();
    format!("<check><domain:check {D}>{names}</domain:check></check>")
}
