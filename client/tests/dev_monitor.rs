//! `kauri dev up --monitor` through the real binaries: three `kauri-node`
//! processes and a real Prometheus (Debian's package, installed by
//! scripts/monitoring-tools.sh when missing) that scrapes all three with the
//! shipped config and loads the shipped alert rules, and the EPP gateway,
//! whose printed Net::EPP example (Debian's libnet-epp-perl, installed by
//! scripts/epp-tools.sh) works as printed; SIGINT to `kauri` stops every
//! process it started, and it exits 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KAURI: &str = env!("CARGO_BIN_EXE_kauri");

/// Written by `kauri dev up` into its data dir: `NAME PID` a line.
const PID_FILE: &str = "dev-up.pids";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("client/ sits in the repository")
        .to_path_buf()
}

/// Installs prometheus (and promtool) when missing; fails the test with the
/// script's output when it cannot.
fn install_prometheus() {
    let script = repo_root().join("scripts/monitoring-tools.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--prometheus-only")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "Prometheus (Debian's prometheus package) is needed and {} could not install it ({}):\n{}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs Net::EPP (and xmllint, pyepp) when missing.
fn install_epp_tools() {
    let script = repo_root().join("scripts/epp-tools.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "Net::EPP (libnet-epp-perl) is needed and {} could not install it: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Private copies of `kauri` and the `kauri-node` built beside it (so a
/// rebuild of the shared target directory cannot swap them mid-test); `dev
/// up` finds the node binary next to itself.
fn private_binaries(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("create bin/");
    std::fs::copy(KAURI, bin.join("kauri")).expect("copy kauri");
    for name in ["kauri-node", "kauri-gateway"] {
        let built = PathBuf::from(KAURI).with_file_name(name);
        assert!(
            built.exists(),
            "{} is missing: run `cargo build -p {name}` first",
            built.display()
        );
        std::fs::copy(&built, bin.join(name)).unwrap_or_else(|e| panic!("copy {name}: {e}"));
    }
    bin.join("kauri")
}

/// The first of `n` consecutive loopback ports that are all free now.
fn free_ports(n: u16) -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral loopback port")
            .port();
        if first.checked_add(n).is_none() {
            continue;
        }
        let held: Vec<_> = (first..first + n)
            .map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == n as usize {
            return first;
        }
    }
    panic!("no {n} consecutive free loopback ports in 100 tries");
}

/// A process is gone (reaped, or never ours) when kill(pid, 0) fails with
/// ESRCH.
fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the PID exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// `kauri dev up`, killed by PID (with what it started) if the test fails.
struct DevUp {
    child: Option<Child>,
    /// The test's directory: dev-up.out and dev-up.err are its output.
    dir: PathBuf,
    /// Its --data-dir.
    data_dir: PathBuf,
    /// From its PID file, once read.
    pids: Vec<(String, i32)>,
}

impl DevUp {
    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("dev-up.out")).unwrap_or_default()
    }

    /// Everything it said, and the end of Prometheus's log, for failures.
    fn output(&self) -> String {
        let err = std::fs::read_to_string(self.dir.join("dev-up.err")).unwrap_or_default();
        let prom = std::fs::read_to_string(self.data_dir.join("prometheus/prometheus.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = prom.lines().rev().take(20).collect();
        format!(
            "stdout:\n{}\nstderr:\n{err}\nprometheus.log (last lines, newest first):\n{}",
            self.stdout(),
            tail.join("\n")
        )
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("kauri dev up is running")
    }
}

impl Drop for DevUp {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        // Its children get SIGTERM when it dies (PR_SET_PDEATHSIG); give
        // them a bounded while, then SIGKILL whichever of its PIDs still
        // runs (one that ignored SIGTERM, not a reused PID this soon).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !self.pids.iter().all(|(_, pid)| gone(*pid)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (_, pid) in &self.pids {
            if !gone(*pid) {
                // SAFETY: kill(2) only sends a signal.
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// GETs `path` from `addr` over HTTP/1.0 and parses a JSON body.
fn get_json(addr: &str, path: &str) -> Option<serde_json::Value> {
    let mut tcp = TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    if head.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    (json["status"] == "success").then(|| json["data"].clone())
}

/// Polls `check` every 200 ms until it returns `Some`, panicking with
/// `what` and `dev`'s output after `timeout`, or if `kauri` exits.
fn wait_for<T>(
    dev: &mut DevUp,
    timeout: Duration,
    what: &str,
    mut check: impl FnMut(&DevUp) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check(dev) {
            return v;
        }
        if let Ok(Some(status)) = dev.child().try_wait() {
            panic!(
                "kauri dev up exited ({status}) before {what}:\n{}",
                dev.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {} s:\n{}",
            timeout.as_secs(),
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The alert names of the shipped rules.
fn shipped_alerts() -> Vec<String> {
    let rules =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/rules/kauri-alerts.yml"))
            .expect("read the shipped rules");
    let mut names: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(|n| n.trim().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn dev_up_monitor_scrapes_every_node_with_the_shipped_rules_serves_epp_and_stops_it_all_on_sigint()
{
    install_prometheus();
    install_epp_tools();
    let dir = tempfile::tempdir().expect("create a temp dir");
    let kauri = private_binaries(dir.path());
    let data_dir = dir.path().join("dev");
    // One free run of ports, so the ranges cannot overlap: gRPC, metrics,
    // Prometheus, EPP and the gateway's metrics.
    let base_port = free_ports(9);
    let metrics_base_port = base_port + 3;
    let prometheus_addr = format!("127.0.0.1:{}", base_port + 6);
    let epp_addr = format!("127.0.0.1:{}", base_port + 7);
    let gateway_metrics_addr = format!("127.0.0.1:{}", base_port + 8);

    let child = Command::new(&kauri)
        .args(["dev", "up", "--monitor"])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--base-port", &base_port.to_string()])
        .args(["--metrics-base-port", &metrics_base_port.to_string()])
        .args(["--prometheus-addr", &prometheus_addr])
        .args(["--epp-addr", &epp_addr])
        .args(["--gateway-metrics-addr", &gateway_metrics_addr])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("dev-up.out")).expect("create stdout"))
        .stderr(std::fs::File::create(dir.path().join("dev-up.err")).expect("create stderr"))
        .spawn()
        .expect("start kauri dev up --monitor");
    let mut dev = DevUp {
        child: Some(child),
        dir: dir.path().to_path_buf(),
        data_dir: data_dir.clone(),
        pids: Vec::new(),
    };

    // Up: it says where Prometheus and the metrics are.
    wait_for(
        &mut dev,
        Duration::from_secs(120),
        "cluster with Prometheus up",
        |d| d.stdout().contains("Prometheus: http://").then_some(()),
    );
    let stdout = dev.stdout();
    assert!(
        stdout.contains(&format!("http://{prometheus_addr}/alerts")),
        "{stdout}"
    );
    let metrics_urls: Vec<String> = (0..3)
        .map(|i| format!("http://127.0.0.1:{}/metrics", metrics_base_port + i))
        .collect();
    for url in &metrics_urls {
        assert!(stdout.contains(url), "{url} not printed:\n{stdout}");
    }
    dev.pids = std::fs::read_to_string(data_dir.join(PID_FILE))
        .expect("dev up writes its PID file")
        .lines()
        .map(|l| {
            let (name, pid) = l.split_once(' ').expect("NAME PID");
            (name.to_string(), pid.parse().expect("a PID"))
        })
        .collect();
    let names: Vec<&str> = dev.pids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["node1", "node2", "node3", "prometheus", "gateway"]);

    // Prometheus scrapes the three nodes as the shipped job ...
    let expected: Vec<String> = metrics_urls
        .iter()
        .map(|u| {
            u.trim_start_matches("http://")
                .trim_end_matches("/metrics")
                .to_string()
        })
        .collect();
    wait_for(
        &mut dev,
        Duration::from_secs(60),
        "three kauri targets up in Prometheus",
        |_| {
            let data = get_json(&prometheus_addr, "/api/v1/targets?state=active")?;
            let mut up: Vec<String> = data["activeTargets"]
                .as_array()?
                .iter()
                .filter(|t| t["labels"]["job"] == "kauri" && t["health"] == "up")
                .filter_map(|t| t["labels"]["instance"].as_str().map(str::to_string))
                .collect();
            up.sort();
            (up == expected).then_some(())
        },
    );

    // ... with exactly the shipped alert rules loaded.
    let data = get_json(&prometheus_addr, "/api/v1/rules?type=alert").expect("/api/v1/rules");
    let mut loaded: Vec<String> = data["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect();
    loaded.sort();
    let shipped = shipped_alerts();
    assert!(shipped.len() >= 12, "{shipped:?}");
    assert_eq!(loaded, shipped, "Prometheus loaded the shipped alert rules");

    // The EPP gateway: the printed example of a third-party client works
    // as printed, once the registrar of the printed commands exists.
    assert!(
        stdout.contains(&format!("EPP:       {epp_addr} over TLS")),
        "{stdout}"
    );
    let certs = data_dir.join("certs");
    let endpoints = (0..3)
        .map(|i| format!("127.0.0.1:{}", base_port + i))
        .collect::<Vec<_>>()
        .join(",");
    for args in [
        "tld create nz --currency NZD --create-price 2500 --renew-price 2500",
        "registrar create acme --name Acme --password s3cret-pw --currency NZD",
    ] {
        let out = Command::new(&kauri)
            .arg("--endpoints")
            .arg(&endpoints)
            .arg("--identity")
            .arg(certs.join("staff"))
            .args(args.split(' '))
            .output()
            .expect("run kauri");
        assert!(
            out.status.success(),
            "kauri {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let example = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("perl -MNet::EPP::Simple"))
        .unwrap_or_else(|| panic!("no Net::EPP example printed:\n{stdout}"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(example)
        .output()
        .expect("run the example");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "free\n",
        "{example}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Ctrl-C: kauri exits 0 and nothing it started is left.
    let pid = dev.child().id() as i32;
    // SAFETY: kill(2) on the PID of our own unreaped child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = dev.child().try_wait().expect("wait for kauri") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kauri dev up still runs 30 s after SIGINT:\n{}",
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    dev.child = None;
    assert!(
        status.success(),
        "kauri dev up exited {status} after SIGINT:\n{}",
        dev.output()
    );
    for (name, pid) in &dev.pids {
        assert!(gone(*pid), "{name} (PID {pid}) outlived kauri dev up");
    }
    assert!(
        !data_dir.join(PID_FILE).exists(),
        "the PID file is removed with the processes"
    );
    let stderr = dev.output();
    assert!(stderr.contains("prometheus stopped"), "{stderr}");
    assert!(stderr.contains("gateway stopped"), "{stderr}");
}
