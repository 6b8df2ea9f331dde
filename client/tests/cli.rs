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

struct Cli {
    endpoints: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
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
        let out = self.run(args);
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
    let cli = Cli {
        endpoints: cluster.endpoints().join(","),
    };

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
    cli.fails(
        &["domain", "create", "x.nz", "--registrant", "alice"],
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
