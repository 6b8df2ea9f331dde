//! Helpers shared by the tests of deploy/: where the repository is, the
//! monitoring tools (installed by scripts/monitoring-tools.sh when missing),
//! plain HTTP GETs, and a Prometheus server owned by the test.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("node/ sits in the repository")
        .to_path_buf()
}

/// Makes sure promtool, prometheus, systemd-analyze and the Python
/// validators are installed (running scripts/monitoring-tools.sh once per
/// test process), and returns the virtualenv that holds the validators.
/// Fails the test with the script's output when they cannot be installed.
pub fn monitoring_tools() -> PathBuf {
    static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let script = repo_root().join("scripts/monitoring-tools.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("--venv")
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        } else {
            Err(format!(
                "{} failed ({}): {}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match result {
        Ok(venv) => venv.clone(),
        Err(why) => panic!(
            "the monitoring tools (Debian's prometheus package, systemd-analyze, \
             check-jsonschema, kubernetes-validate) are needed and could not be installed: {why}"
        ),
    }
}

/// Runs `program` with `args` (and `stdin`, if given) to completion.
pub fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input)
            .unwrap_or_else(|e| panic!("write to {program}: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {program}: {e}"))
}

/// Asserts that `out` is a success, showing what the tool said if not.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GETs `path` from `addr` over HTTP/1.0 (so the body is neither chunked
/// nor kept alive): the status code and the body, or `None` when the
/// server cannot be reached or answers nothing within five seconds.
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// A free loopback port (bound and released; the caller takes it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// A Prometheus server of the test's own: shipped configuration (with
/// shorter intervals) and shipped rules, a temporary data directory, a
/// random loopback port. Stopped by PID when dropped, on every path.
pub struct Prometheus {
    /// Where its HTTP API listens (HOST:PORT).
    pub addr: String,
    /// Its directory: the derived prometheus.yml, targets/, data/, the log.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

/// The scrape and evaluation interval of test Prometheus servers.
pub const TEST_INTERVAL: &str = "1s";

impl Prometheus {
    /// Starts Prometheus scraping `targets` (HOST:PORT of `--metrics-addr`)
    /// as the shipped config's job, with the shipped rules, and waits until
    /// it is ready.
    pub async fn start(targets: &[String]) -> Prometheus {
        monitoring_tools();
        let dir = tempfile::tempdir().expect("create a temp dir");
        let shipped = repo_root().join("deploy/prometheus");
        let config = derive_config(
            &std::fs::read_to_string(shipped.join("prometheus.yml"))
                .expect("read deploy/prometheus/prometheus.yml"),
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write the config");
        // The shipped rules themselves, where the shipped config looks.
        std::os::unix::fs::symlink(shipped.join("rules"), dir.path().join("rules"))
            .expect("link the shipped rules");
        std::fs::create_dir(dir.path().join("targets")).expect("create targets/");
        let list = targets
            .iter()
            .map(|t| format!("    - \"{t}\"\n"))
            .collect::<String>();
        std::fs::write(
            dir.path().join("targets/test.yml"),
            format!("- targets:\n{list}  labels:\n    cluster: test\n"),
        )
        .expect("write the targets");
        let check = run(
            "promtool",
            &[
                "check",
                "config",
                dir.path()
                    .join("prometheus.yml")
                    .to_str()
                    .expect("utf-8 path"),
            ],
            None,
        );
        assert_success("promtool check config (the derived test config)", &check);

        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("create log");
        let mut command = Command::new("prometheus");
        command
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("start prometheus");
        let prometheus = Prometheus {
            addr,
            dir,
            child: Some(child),
        };
        let addr = prometheus.addr.clone();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Some((200, _)) = http_get(&addr, "/-/ready").await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            ready.is_ok(),
            "prometheus not ready within 60 s:\n{}",
            prometheus.log()
        );
        prometheus
    }

    /// GETs an API path and parses the JSON answer's `data`, panicking on
    /// anything but a successful answer.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        let (code, body) = http_get(&self.addr, path)
            .await
            .unwrap_or_else(|| panic!("prometheus does not answer {path}"));
        assert_eq!(code, 200, "{path}: {body}");
        let mut json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert_eq!(json["status"], "success", "{path}: {body}");
        json["data"].take()
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The shipped prometheus.yml with the global scrape and evaluation
/// intervals (and the scrape timeout, which may not exceed the interval)
/// set to [`TEST_INTERVAL`]; everything else, the job, the discovery and
/// the rule files, stays as shipped.
pub fn derive_config(shipped: &str) -> String {
    let keys = [
        "scrape_interval:",
        "scrape_timeout:",
        "evaluation_interval:",
    ];
    let mut seen = [0; 3];
    let derived: Vec<String> = shipped
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match keys.iter().position(|k| trimmed.starts_with(k)) {
                Some(i) => {
                    seen[i] += 1;
                    let indent = &line[..line.len() - trimmed.len()];
                    format!("{indent}{} {TEST_INTERVAL}", keys[i])
                }
                None => line.to_string(),
            }
        })
        .collect();
    assert_eq!(
        seen,
        [1, 1, 1],
        "deploy/prometheus/prometheus.yml sets each of {keys:?} once, in `global:` only"
    );
    derived.join("\n") + "\n"
}
