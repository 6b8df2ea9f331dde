//! The `kauri` binary end to end against a real 3-node cluster: human and
//! JSON output, exit codes, and clear errors that change nothing.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use kauri_chaos_tests::TestCluster;

const KAURI: &str = env!("CARGO_BIN_EXE_kauri");

/// `kauri-node` is built into the same directory by `cargo test --workspace`.
fn node_bin() -> PathBuf {
    let bin = PathBuf::from(KAURI).with_file_name("kauri-node");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace tests (cargo test --workspace) or cargo build -p kauri-node first",
        bin.display()
    );
    bin
}

/// The `kauri` binary against one test cluster, over mutual TLS: a command
/// with `-r ID` runs with registrar ID's own certificate (a registrar
/// certificate acts only as its own registrar), every other command with
/// the staff certificate.
struct Cli<'a> {
    cluster: &'a TestCluster,
    endpoints: String,
}

impl<'a> Cli<'a> {
    fn new(cluster: &'a TestCluster) -> Self {
        Cli {
            cluster,
            endpoints: cluster.endpoints().join(","),
        }
    }

    /// The `--identity` prefix (certificate without `.pem`) a command runs
    /// with.
    fn identity(&self, args: &[&str]) -> PathBuf {
        let registrar = args
            .windows(2)
            .find(|w| w[0] == "-r" || w[0] == "--registrar")
            .map(|w| w[1]);
        let files = match registrar {
            Some(id) => self
                .cluster
                .registrar_identity(id)
                .expect("the test cluster runs TLS"),
            None => {
                let (certs, _) = self.cluster.pki().expect("the test cluster runs TLS");
                certs.staff.clone()
            }
        };
        files.cert.with_extension("")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(KAURI)
            .arg("--endpoints")
            .arg(&self.endpoints)
            .arg("--identity")
            .arg(self.identity(args))
            .args(args)
            .output()
            .expect("run kauri")
    }

    /// Runs a command with no identity at all (plain text).
    fn run_without_identity(&self, args: &[&str]) -> Output {
        Command::new(KAURI)
            .arg("--endpoints")
            .arg(&self.endpoints)
            .args(args)
            .output()
            .expect("run kauri")
    }

    /// Runs a command that must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kauri {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must succeed with JSON output.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("valid JSON output")
    }

    /// Runs a command that must fail with `code`, naming `reason` on stderr.
    fn fails(&self, args: &[&str], code: i32, reason: &str) {
        Self::failed(args, self.run(args), code, reason);
    }

    fn failed(args: &[&str], out: Output, code: i32, reason: &str) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "kauri {args:?}: {stderr}");
        assert!(
            stderr.contains(reason),
            "kauri {args:?}: expected {reason} in {stderr}"
        );
    }

    fn balance(&self, registrar: &str) -> i64 {
        self.json(&["registrar", "info", registrar])["registrar"]["balance"]["minor_units"]
            .as_i64()
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_a_registry_and_reports_errors_with_reasons() {
    let cluster = TestCluster::start(node_bin(), 3, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let cli = Cli::new(&cluster);

    // Happy path, as README shows it.
    assert!(cli.ok(&["cluster", "status"]).contains("leader"));
    cli.ok(&[
        "tld",
        "create",
        "nz",
        "--currency",
        "NZD",
        "--create-price",
        "2500",
        "--renew-price",
        "2000",
    ]);
    cli.ok(&[
        "registrar",
        "create",
        "acme",
        "--name",
        "Acme Names",
        "--password",
        "s3cret-pw",
        "--currency",
        "NZD",
    ]);
    cli.ok(&[
        "registrar",
        "create",
        "poor",
        "--name",
        "Poor Names",
        "--password",
        "s3cret-pw",
        "--currency",
        "NZD",
    ]);
    cli.ok(&[
        "registrar",
        "deposit",
        "acme",
        "100000",
        "--reference",
        "inv-1",
    ]);
    cli.ok(&[
        "-r",
        "acme",
        "contact",
        "create",
        "alice",
        "--name",
        "Alice Smith",
        "--email",
        "alice@example.nz",
        "--city",
        "Auckland",
    ]);
    cli.ok(&[
        "-r",
        "poor",
        "contact",
        "create",
        "bob",
        "--name",
        "Bob Smith",
        "--email",
        "bob@example.nz",
        "--city",
        "Wellington",
    ]);
    let created = cli.json(&[
        "-r",
        "acme",
        "--cl-trid",
        "acme-0001",
        "domain",
        "create",
        "kauri-example.nz",
        "--registrant",
        "alice",
        "--period",
        "2",
    ]);
    assert_eq!(created["domain"]["name"], "kauri-example.nz");
    assert_eq!(created["charged"]["minor_units"], 5000);
    assert_eq!(cli.balance("acme"), 100000 - 5000);
    let info = cli.ok(&["-r", "acme", "domain", "info", "KAURI-EXAMPLE.nz"]);
    assert!(
        info.contains("kauri-example.nz") && info.contains("auth info"),
        "{info}"
    );
    let stale = cli.json(&[
        "-r",
        "acme",
        "domain",
        "info",
        "kauri-example.nz",
        "--stale",
    ]);
    assert_eq!(stale["read_info"]["consistency"], 1);

    // Retrying with the same clTRID replays the original response: same
    // svTRID, charged once.
    let again = cli.json(&[
        "-r",
        "acme",
        "--cl-trid",
        "acme-0001",
        "domain",
        "create",
        "kauri-example.nz",
        "--registrant",
        "alice",
        "--period",
        "2",
    ]);
    assert_eq!(again["tx"]["sv_trid"], created["tx"]["sv_trid"]);
    assert_eq!(again["tx"]["replayed"], true);
    assert_eq!(cli.balance("acme"), 100000 - 5000);
    // The same clTRID with a different request is refused.
    cli.fails(
        &[
            "-r",
            "acme",
            "--cl-trid",
            "acme-0001",
            "domain",
            "create",
            "other.nz",
            "--registrant",
            "alice",
        ],
        1,
        "IDEMPOTENCY_CONFLICT",
    );

    // Unhappy paths: each a clear reason, exit code 1, nothing charged.
    let create = |name: &'static str| {
        vec![
            "-r",
            "acme",
            "domain",
            "create",
            name,
            "--registrant",
            "alice",
        ]
    };
    cli.fails(&create("Kauri-Example.NZ"), 1, "OBJECT_EXISTS");
    cli.fails(&create("example.invalidtld"), 1, "UNKNOWN_TLD");
    cli.fails(&create("bad-.nz"), 1, "INVALID_NAME");
    cli.fails(&create("ab--cd.nz"), 1, "INVALID_NAME");
    cli.fails(&create("under_score.nz"), 1, "INVALID_NAME");
    cli.fails(
        &[
            "-r",
            "acme",
            "domain",
            "create",
            "long.nz",
            "--registrant",
            "alice",
            "--period",
            "11",
        ],
        1,
        "PERIOD_NOT_ALLOWED",
    );
    cli.fails(
        &[
            "-r",
            "poor",
            "domain",
            "create",
            "cheap.nz",
            "--registrant",
            "bob",
        ],
        1,
        "INSUFFICIENT_FUNDS",
    );
    cli.fails(
        &["-r", "poor", "domain", "delete", "kauri-example.nz"],
        1,
        "NOT_SPONSOR",
    );
    cli.fails(
        &["-r", "acme", "domain", "info", "missing.nz"],
        1,
        "OBJECT_NOT_FOUND",
    );
    cli.fails(&["registrar", "deposit", "acme", "0"], 1, "INVALID_FIELD");
    // A registrar command with no registrar: over TLS as staff, the node
    // refuses it (staff cannot act as a registrar); with no certificate at
    // all the CLI says what is missing before it sends anything.
    let no_registrar = ["domain", "create", "x.nz", "--registrant", "alice"];
    cli.fails(&no_registrar, 1, "NOT_AUTHORIZED");
    Cli::failed(
        &no_registrar,
        cli.run_without_identity(&no_registrar),
        2,
        "--registrar",
    );
    assert_eq!(
        cli.balance("acme"),
        100000 - 5000,
        "no failed command charged anything"
    );
    assert_eq!(cli.balance("poor"), 0);

    // A cluster that cannot be reached: exit code 3.
    let out = Command::new(KAURI)
        .args([
            "--endpoints",
            "127.0.0.1:1",
            "--timeout-ms",
            "1000",
            "tld",
            "info",
            "nz",
        ])
        .output()
        .expect("run kauri");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Per-period prices, transfers, poll, AUP cases, server statuses on hosts
/// and contacts, registry lock, audit, delete into redemption and restore,
/// through the real binary, with a test clock for the jump past the add
/// grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_transfers_polls_cases_locks_audit_and_restores() {
    let cluster = TestCluster::start(node_bin(), 3, &["--test-clock"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let cli = Cli::new(&cluster);

    let tld = cli.json(&[
        "tld",
        "create",
        "nz",
        "--currency",
        "NZD",
        "--create-price",
        "1000",
        "--renew-price",
        "800",
        "--transfer-lock-seconds",
        "0",
        "--restore-price",
        "500",
        "--create-price-for",
        "3=2000",
    ]);
    assert_eq!(tld["tld"]["lifecycle"]["transfer_lock_seconds"], 0);
    assert_eq!(tld["tld"]["lifecycle"]["redemption_seconds"], 30 * 86_400);
    assert_eq!(
        tld["tld"]["lifecycle"]["create_period_prices"][0]["price_minor_units"],
        2000
    );
    for id in ["acme", "globex"] {
        cli.ok(&[
            "registrar",
            "create",
            id,
            "--name",
            id,
            "--password",
            "s3cret-pw",
            "--currency",
            "NZD",
        ]);
        cli.ok(&["registrar", "deposit", id, "100000"]);
    }
    cli.ok(&[
        "-r",
        "acme",
        "contact",
        "create",
        "alice",
        "--name",
        "Alice Smith",
        "--email",
        "alice@example.nz",
        "--city",
        "Auckland",
    ]);
    cli.ok(&[
        "-r",
        "acme",
        "domain",
        "create",
        "shop.nz",
        "--registrant",
        "alice",
        "--auth-info",
        "shop-secret-1",
    ]);

    // Per-period prices: three years cost the listed 20.00, not 3 × 10.00;
    // update adds a renew price for two years and keeps the create table.
    let three = cli.json(&acme(&[
        "domain",
        "create",
        "three.nz",
        "--registrant",
        "alice",
        "--period",
        "3",
    ]));
    assert_eq!(three["charged"]["minor_units"], 2000);
    cli.ok(&["tld", "update", "nz", "--renew-price-for", "2=1500"]);
    let info = cli.ok(&["tld", "info", "nz"]);
    assert!(
        info.contains("create for period 3 y 20.00 NZD")
            && info.contains("renew for period  2 y 15.00 NZD"),
        "{info}"
    );
    cli.fails(
        &["tld", "update", "nz", "--create-price-for", "11=100"],
        1,
        "INVALID_FIELD",
    );
    cli.fails(
        &["tld", "update", "nz", "--create-price-for", "3:100"],
        2,
        "YEARS=PRICE",
    );

    // Transfer: wrong auth info, then a request the sponsor approves.
    fn globex<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["-r", "globex"];
        all.extend_from_slice(args);
        all
    }
    fn acme<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["-r", "acme"];
        all.extend_from_slice(args);
        all
    }
    cli.fails(
        &globex(&[
            "domain",
            "transfer",
            "request",
            "shop.nz",
            "--auth-info",
            "guess-123",
        ]),
        1,
        "INVALID_AUTH_INFO",
    );
    let requested = cli.json(&globex(&[
        "domain",
        "transfer",
        "request",
        "shop.nz",
        "--auth-info",
        "shop-secret-1",
    ]));
    assert_eq!(requested["transfer"]["status_name"], "pending");
    assert_eq!(requested["charged"]["minor_units"], 800);
    let poll = cli.json(&acme(&["poll", "req"]));
    assert_eq!(poll["count"], 1);
    assert_eq!(poll["message"]["kind"], "transfer_requested");
    cli.ok(&acme(&["domain", "transfer", "approve", "shop.nz"]));
    let query = cli.json(&globex(&["domain", "transfer", "query", "shop.nz"]));
    assert_eq!(query["transfer"]["status_name"], "clientApproved");
    let poll = cli.json(&globex(&["poll", "req"]));
    assert_eq!(poll["message"]["kind"], "transfer_approved");
    let id = poll["message"]["id"]
        .as_u64()
        .expect("message id")
        .to_string();
    let acked = cli.json(&globex(&["poll", "ack", &id]));
    assert_eq!(acked["count"], 0);
    let info = cli.json(&globex(&["domain", "info", "shop.nz"]));
    assert_eq!(info["domain"]["sponsor"], "globex");
    assert_eq!(cli.balance("globex"), 100000 - 800);
    assert!(cli
        .ok(&["registrar", "ledger", "globex"])
        .contains("transfer"));

    // An AUP case suspends the domain; lifting it puts it back.
    let case = cli.json(&["case", "open", "shop.nz", "--reason", "phishing"]);
    let case_id = case["aup_case"]["id"]
        .as_u64()
        .expect("case id")
        .to_string();
    cli.ok(&["case", "suspend", &case_id]);
    let info = cli.json(&globex(&["domain", "info", "shop.nz"]));
    assert_eq!(info["domain"]["in_zone"], false);
    let statuses = info["domain"]["statuses"].to_string();
    assert!(statuses.contains("serverHold"), "{statuses}");
    cli.fails(&["case", "close", &case_id], 1, "POLICY_VIOLATION");
    cli.ok(&["case", "lift", &case_id]);
    assert!(cli.ok(&["case", "close", &case_id]).contains("closed"));

    // Server statuses on a host and a contact: the sponsor is refused
    // until staff lift them; statuses hosts do not have are refused.
    cli.ok(&globex(&[
        "host",
        "create",
        "ns1.shop.nz",
        "--addr",
        "192.0.2.1",
    ]));
    let host = cli.json(&[
        "host",
        "server-status",
        "ns1.shop.nz",
        "--add",
        "serverDeleteProhibited",
        "--reason",
        "court order",
    ]);
    assert_eq!(host["host"]["statuses"][0], "serverDeleteProhibited");
    cli.fails(
        &globex(&["host", "delete", "ns1.shop.nz"]),
        1,
        "STATUS_PROHIBITS",
    );
    cli.fails(
        &[
            "host",
            "server-status",
            "ns1.shop.nz",
            "--add",
            "serverHold",
            "--reason",
            "typo",
        ],
        1,
        "POLICY_VIOLATION",
    );
    cli.ok(&[
        "host",
        "server-status",
        "ns1.shop.nz",
        "--remove",
        "serverDeleteProhibited",
        "--reason",
        "order lifted",
    ]);
    cli.ok(&globex(&["host", "delete", "ns1.shop.nz"]));
    let host_audit = cli.ok(&["audit", "--object", "ns1.shop.nz", "--kind", "host"]);
    assert!(
        host_audit.contains("SetHostServerStatus") && host_audit.contains("court order"),
        "{host_audit}"
    );

    let contact = cli.ok(&[
        "contact",
        "server-status",
        "alice",
        "--add",
        "serverUpdateProhibited",
        "--add",
        "serverTransferProhibited",
        "--reason",
        "identity dispute",
    ]);
    assert!(contact.contains("serverUpdateProhibited"), "{contact}");
    let update_alice = acme(&[
        "contact",
        "update",
        "alice",
        "--name",
        "Alice Jones",
        "--email",
        "alice@example.nz",
        "--city",
        "Auckland",
    ]);
    cli.fails(&update_alice, 1, "STATUS_PROHIBITS");
    cli.ok(&[
        "contact",
        "server-status",
        "alice",
        "--remove",
        "serverUpdateProhibited",
        "--reason",
        "resolved",
    ]);
    cli.ok(&update_alice);

    // Registry lock: the sponsor cannot update until staff unlock.
    cli.ok(&["domain", "lock", "shop.nz", "--reason", "registrant asked"]);
    cli.fails(
        &globex(&["domain", "update", "shop.nz", "--add-status", "clientHold"]),
        1,
        "STATUS_PROHIBITS",
    );
    cli.ok(&[
        "domain",
        "unlock",
        "shop.nz",
        "--reason",
        "registrant asked",
    ]);
    cli.ok(&globex(&[
        "domain",
        "update",
        "shop.nz",
        "--add-status",
        "clientHold",
    ]));

    // The audit trail, by object and by actor.
    let audit = cli.ok(&["audit", "--object", "shop.nz"]);
    for command in [
        "CreateDomain",
        "TransferDomain",
        "UpdateCase",
        "SetServerStatus",
    ] {
        assert!(audit.contains(command), "{command} missing from:\n{audit}");
    }
    let by_actor = cli.json(&["audit", "--actor", "globex", "--limit", "2"]);
    assert_eq!(
        by_actor["records"][0]["command"], "UpdateDomain",
        "newest first"
    );
    assert!(!by_actor["next_page_token"]
        .as_array()
        .expect("token")
        .is_empty());

    // Six days on (past the add and transfer grace periods): a delete
    // enters redemption, and a restore brings the domain back.
    cli.ok(&["cluster", "advance-clock", &(6 * 86_400_000i64).to_string()]);
    let deleted = cli.json(&globex(&["domain", "delete", "shop.nz"]));
    assert_eq!(deleted["pending_delete"], true);
    let info = cli.json(&globex(&["domain", "info", "shop.nz"]));
    assert_eq!(info["domain"]["rgp_statuses"][0], "redemptionPeriod");
    let restored = cli.json(&globex(&["domain", "restore", "shop.nz"]));
    assert_eq!(restored["charged"]["minor_units"], 500 + 800);
    cli.ok(&globex(&[
        "domain",
        "restore",
        "shop.nz",
        "--report",
        "--pre-data",
        "before",
        "--post-data",
        "after",
        "--reason",
        "deleted by mistake",
        "--statement",
        "true",
        "--statement",
        "not for gain",
    ]));
    let info = cli.json(&globex(&["domain", "info", "shop.nz"]));
    assert!(info["domain"]["rgp_statuses"]
        .as_array()
        .expect("rgp statuses")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_and_verifies_backups_and_changes_the_membership() {
    let cluster = TestCluster::start(node_bin(), 3, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let cli = Cli::new(&cluster);
    let dir = tempfile::tempdir().expect("a temp dir");
    let dest = dir.path().join("b1");
    let dest = dest.to_str().expect("a UTF-8 path");
    let made = cli.ok(&["backup", "create", "--dest", dest]);
    assert!(made.contains("verified against its manifest"), "{made}");
    let checked = cli.json(&["backup", "verify", dest]);
    assert_eq!(checked["kind"], "kauri-backup");
    assert_eq!(checked["files"][0]["name"], "state.kauri");
    // Into the same directory again: a usage error.
    cli.fails(&["backup", "create", "--dest", dest], 2, "not empty");
    // A flipped byte: refused, the file named.
    let archive = dir.path().join("b1/state.kauri");
    let mut bytes = std::fs::read(&archive).expect("read the archive");
    bytes[20] ^= 0xff;
    std::fs::write(&archive, bytes).expect("damage the archive");
    cli.fails(&["backup", "verify", dest], 1, "state.kauri");

    // Membership steps: an unknown node, a retry that changes nothing.
    cli.fails(&["cluster", "promote", "9"], 1, "not a member");
    let unchanged = cli.ok(&["cluster", "remove", "9"]);
    assert!(unchanged.contains("nothing changed"), "{unchanged}");
    let status = cli.ok(&["cluster", "status"]);
    assert!(status.contains("lost with this site"), "{status}");

    // The leadership goes where it is sent.
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let target = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let moved = cli.ok(&["cluster", "transfer-leader", &target.to_string()]);
    assert!(moved.contains("the leadership moved"), "{moved}");
    assert!(moved.contains(&format!("node {target}")), "{moved}");
    assert_eq!(
        cluster.wait_for_leader(Duration::from_secs(30)).await,
        target
    );
    let again = cli.ok(&["cluster", "transfer-leader", &target.to_string()]);
    assert!(again.contains("nothing changed"), "{again}");
    cli.fails(&["cluster", "transfer-leader", "9"], 1, "not a member");
    cli.fails(
        &["cluster", "promote", "1", "--main-site", "tokyo"],
        1,
        "no member is in site",
    );
}
