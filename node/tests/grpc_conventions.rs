//! The standard gRPC conventions, through the real binaries and a client
//! Kauri did not write: Python's grpcio, grpcio-health-checking and
//! grpcio-reflection (node/tests/python/stock_grpc.py, in the virtualenv
//! scripts/python-tools.sh makes). Health follows readiness over time and
//! per service; reflection v1 and v1alpha describe the API well enough to
//! call it; callers without this cluster's certificate are refused; the new
//! methods are counted under their own labels.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kauri_chaos_tests::{TestCluster, TEST_CLUSTER};
use kauri_client::devpki::DevCerts;
use kauri_client::tls::{Principal, Role, TlsFiles};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");
const STOCK_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/stock_grpc.py");
const PYTHON_TOOLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/python-tools.sh");

/// The services whose health follows readiness ("" is the whole node).
const CLIENT_SERVICES: [&str; 4] = [
    "",
    "kauri.v1.Registry",
    "kauri.v1.Admin",
    "kauri.v1.Cluster",
];
/// Longest run of one stock-client command beyond its own `--within`.
const COMMAND_SLACK: Duration = Duration::from_secs(20);

/// The virtualenv's python, made on first use. Fails the test (never skips
/// it) when python or pip cannot be made to work.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = std::process::Command::new("bash")
            .arg(PYTHON_TOOLS)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {PYTHON_TOOLS}: {e}"));
        assert!(
            out.status.success(),
            "{PYTHON_TOOLS} could not make the Python gRPC tools this test needs (python3 with \
             venv and PyPI access): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            PathBuf::from(&python).exists(),
            "{PYTHON_TOOLS} printed {python:?}, which is not a file"
        );
        python
    })
}

/// Who the stock client is to the node.
enum Caller<'a> {
    /// The holder of these files.
    Holder(&'a TlsFiles),
    /// No client certificate; trusts the node through `ca`.
    NoCertificate { ca: &'a PathBuf },
}

fn stock_command(addr: &str, caller: &Caller, args: &[&str]) -> Command {
    let mut command = Command::new(python());
    command.arg(STOCK_CLIENT).args(["--addr", addr]);
    match caller {
        Caller::Holder(files) => {
            command.arg("--ca").arg(&files.ca);
            command.arg("--cert").arg(&files.cert);
            command.arg("--key").arg(&files.key);
        }
        Caller::NoCertificate { ca } => {
            command.arg("--ca").arg(ca).arg("--no-cert");
        }
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A test that fails or times out leaves no client behind.
        .kill_on_drop(true);
    command
}

/// Runs one stock-client command to its end (bounded in time); its exit
/// code and the JSON of its last line.
async fn stock(addr: &str, caller: &Caller<'_>, args: &[&str]) -> (i32, Value) {
    let child = stock_command(addr, caller, args)
        .spawn()
        .expect("start the stock client");
    let out = tokio::time::timeout(COMMAND_SLACK * 3, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("stock client {args:?} did not finish in time"))
        .expect("wait for the stock client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "stock client {args:?} printed nothing ({}): {stderr}",
            out.status
        )
    });
    let json = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("stock client {args:?} printed {last:?}: {e}; {stderr}"));
    (out.status.code().unwrap_or(-1), json)
}

/// [`stock`], which must succeed.
async fn stock_ok(addr: &str, caller: &Caller<'_>, args: &[&str]) -> Value {
    let (code, json) = stock(addr, caller, args).await;
    assert_eq!(code, 0, "stock client {args:?} failed: {json}");
    json
}

/// Waits (up to `within`) until Health.Check says `status` for every one
/// of `services` on `addr`.
async fn wait_health(
    addr: &str,
    caller: &Caller<'_>,
    services: &[&str],
    status: &str,
    within_s: u64,
) {
    let mut args = vec!["check", "--until", status];
    let within = within_s.to_string();
    args.extend(["--within", &within]);
    args.extend(services);
    stock_ok(addr, caller, &args).await;
}

/// The value of the first sample of `name` whose labels contain all of
/// `labels`, from a Prometheus text scrape of `metrics_addr`.
async fn sample(metrics_addr: &str, name: &str, labels: &[&str]) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(metrics_addr)
        .await
        .expect("connect");
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: {metrics_addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    raw.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            series.split('{').next() == Some(name) && labels.iter().all(|x| series.contains(x))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_health_checks_follow_readiness_and_raft_keeps_serving() {
    python();
    let mut cluster = TestCluster::start(NODE_BIN, 3, &["--tick-interval-ms", "0"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.wait_caught_up(Duration::from_secs(30)).await;
    let monitor = cluster.pki().expect("a TLS cluster").0.monitor.clone();
    let probe = Caller::Holder(&monitor);

    // A ready cluster: every node serves every service.
    let mut all: Vec<&str> = CLIENT_SERVICES.to_vec();
    all.push("kauri.v1.Raft");
    for id in cluster.ids() {
        wait_health(&cluster.node(id).addr, &probe, &all, "SERVING", 10).await;
    }
    let unknown = stock_ok(
        &cluster.node(leader).addr,
        &probe,
        &["check", "kauri.v1.Nope"],
    )
    .await;
    assert_eq!(unknown["statuses"]["kauri.v1.Nope"], "error:NOT_FOUND");

    // A follower watches its own health while the other two nodes die (the
    // other follower first, so the leader keeps its quorum until it goes and
    // the survivor cannot become leader): it loses its leader, and says so.
    let followers: Vec<u64> = cluster.ids().into_iter().filter(|&i| i != leader).collect();
    let (survivor, other) = (followers[0], followers[1]);
    let survivor_addr = cluster.node(survivor).addr.clone();
    let mut watch = stock_command(
        &survivor_addr,
        &probe,
        &["watch", "", "--until", "NOT_SERVING", "--within", "30"],
    )
    .spawn()
    .expect("start the stock health watcher");
    let mut lines = BufReader::new(watch.stdout.take().expect("piped stdout")).lines();
    let first = tokio::time::timeout(COMMAND_SLACK, lines.next_line())
        .await
        .expect("the watcher's first status in time")
        .expect("read the watcher")
        .expect("a first status");
    assert_eq!(first, r#"{"status": "SERVING"}"#);

    cluster.kill(other);
    cluster.kill(leader);
    let killed = Instant::now();
    let mut seen = Vec::new();
    let watched = tokio::time::timeout(Duration::from_secs(30) + COMMAND_SLACK, async {
        while let Some(line) = lines.next_line().await.expect("read the watcher") {
            seen.push(line);
        }
        watch.wait().await.expect("wait for the watcher")
    })
    .await
    .expect("the watcher to finish in time");
    assert!(watched.success(), "watcher: {watched}; saw {seen:?}");
    assert_eq!(
        seen.first().map(String::as_str),
        Some(r#"{"status": "NOT_SERVING"}"#),
        "{seen:?}"
    );
    eprintln!(
        "node {survivor}: Watch said NOT_SERVING {:?} after the others were killed",
        killed.elapsed()
    );
    // Every client-facing service agrees; Raft still serves, since votes
    // are how the cluster gets a leader back.
    wait_health(&survivor_addr, &probe, &CLIENT_SERVICES, "NOT_SERVING", 10).await;
    wait_health(&survivor_addr, &probe, &["kauri.v1.Raft"], "SERVING", 1).await;

    // The others come back: the cluster has a leader and the survivor
    // serves again.
    cluster.spawn(leader);
    cluster.spawn(other);
    let restarted = Instant::now();
    wait_health(&survivor_addr, &probe, &all, "SERVING", 60).await;
    eprintln!(
        "node {survivor}: SERVING again {:?} after the restart",
        restarted.elapsed()
    );
    for id in cluster.ids() {
        wait_health(&cluster.node(id).addr, &probe, &all, "SERVING", 60).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_reflection_describes_the_api_and_strangers_are_refused() {
    python();
    let cluster = TestCluster::start(NODE_BIN, 1, &["--tick-interval-ms", "0"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let node = cluster.node(1);
    let registrar = cluster.registrar_identity("acme").expect("a TLS cluster");
    let caller = Caller::Holder(&registrar);
    wait_health(&node.addr, &caller, &[""], "SERVING", 30).await;

    // Both reflection versions list the same services, and find the file
    // that defines a symbol.
    let mut listed = Vec::new();
    for version in ["v1", "v1alpha"] {
        let answer = stock_ok(
            &node.addr,
            &caller,
            &[
                "reflect",
                "--version",
                version,
                "--symbol",
                "kauri.v1.StatusResponse",
            ],
        )
        .await;
        let services: Vec<&str> = answer["services"]
            .as_array()
            .expect("a service list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for expected in [
            "kauri.v1.Registry",
            "kauri.v1.Admin",
            "kauri.v1.Cluster",
            "kauri.v1.Raft",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                services.contains(&expected),
                "{version}: {expected} not in {services:?}"
            );
        }
        assert_eq!(
            answer["file"], "kauri/v1/cluster.proto",
            "{version}: {answer}"
        );
        assert_eq!(answer["symbol_defined"], true, "{version}: {answer}");
        assert_eq!(
            answer["services_in_file"]["Cluster"],
            serde_json::json!([
                "Backup",
                "ChangeMembership",
                "Snapshot",
                "StateDigest",
                "Status"
            ]),
            "{version}"
        );
        listed.push(answer["services"].clone());
    }
    assert_eq!(
        listed[0], listed[1],
        "v1 and v1alpha list the same services"
    );

    // A method known only by name, typed from the node's own descriptors.
    let status = stock_ok(&node.addr, &caller, &["call", "kauri.v1.Cluster.Status"]).await;
    assert_eq!(status["response_type"], "kauri.v1.StatusResponse");
    assert_eq!(status["response"]["node_id"], "1", "{status}");
    assert_eq!(status["response"]["role"], "leader", "{status}");

    // Strangers: no certificate, a certificate of another CA, and one of
    // this CA for another cluster.
    let (certs, ca) = cluster.pki().expect("a TLS cluster");
    let (code, refused) = stock(
        &node.addr,
        &Caller::NoCertificate { ca: &certs.ca },
        &["refused"],
    )
    .await;
    assert_eq!(
        (code, refused["code"].as_str()),
        (0, Some("UNAVAILABLE")),
        "{refused}"
    );

    let elsewhere = tempfile::tempdir().expect("a temp dir");
    let (foreign, _) =
        DevCerts::create(elsewhere.path(), TEST_CLUSTER, 1, &[]).expect("another CA");
    let foreign_monitor = TlsFiles {
        ca: certs.ca.clone(),
        ..foreign.monitor
    };
    let (code, refused) = stock(&node.addr, &Caller::Holder(&foreign_monitor), &["refused"]).await;
    assert_eq!(
        (code, refused["code"].as_str()),
        (0, Some("UNAVAILABLE")),
        "{refused}"
    );

    let principal = Principal::new("other", Role::Monitor, "prom").expect("a principal");
    let other_cluster = ca
        .write(
            &certs.dir,
            "other-cluster-monitor",
            &certs.ca,
            &principal,
            &[],
        )
        .expect("issue a certificate for another cluster");
    let (code, refused) = stock(&node.addr, &Caller::Holder(&other_cluster), &["refused"]).await;
    assert_eq!(
        (code, refused["code"].as_str()),
        (0, Some("UNAUTHENTICATED")),
        "{refused}"
    );
    assert!(
        refused["details"]
            .as_str()
            .unwrap_or("")
            .contains("cluster \"other\""),
        "{refused}"
    );

    // The calls above are counted under their own methods.
    for labels in [
        [
            "service=\"grpc.health.v1.Health\"",
            "method=\"Check\"",
            "code=\"Ok\"",
        ],
        [
            "service=\"grpc.health.v1.Health\"",
            "method=\"Check\"",
            "code=\"Unauthenticated\"",
        ],
        [
            "service=\"grpc.reflection.v1.ServerReflection\"",
            "method=\"ServerReflectionInfo\"",
            "code=\"Ok\"",
        ],
        [
            "service=\"grpc.reflection.v1alpha.ServerReflection\"",
            "method=\"ServerReflectionInfo\"",
            "code=\"Ok\"",
        ],
    ] {
        let n = sample(&node.metrics_addr, "kauri_grpc_requests_total", &labels).await;
        assert!(n.is_some_and(|n| n >= 1.0), "{labels:?}: {n:?}");
    }
}
