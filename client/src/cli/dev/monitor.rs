//! `kauri dev up --monitor`: a real Prometheus (Debian's `prometheus`) on
//! loopback scraping the dev nodes with the shipped deploy/prometheus config
//! and alert rules.
//!
//! The shipped files are compiled into the binary, so an installed `kauri`
//! needs no checkout. At start they are written into DATA_DIR/prometheus
//! in the layout the shipped config expects beside it (`rules/*.yml`,
//! `targets/*.yml`), with a target file listing the dev nodes; the config
//! and the rules are the shipped ones byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// deploy/prometheus/prometheus.yml as shipped.
const SHIPPED_CONFIG: &str = include_str!("../../../../deploy/prometheus/prometheus.yml");

/// deploy/prometheus/rules/*.yml as shipped: file name and contents. A unit
/// test checks that this lists every file of that directory.
const SHIPPED_RULES: &[(&str, &str)] = &[(
    "kauri-alerts.yml",
    include_str!("../../../../deploy/prometheus/rules/kauri-alerts.yml"),
)];

/// The file-discovery file of the dev nodes, under targets/.
const DEV_TARGETS: &str = "dev.yml";

/// How long Prometheus may take to answer `/-/ready` after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What fixes a missing `prometheus`.
const INSTALL_HINT: &str = "run scripts/monitoring-tools.sh --prometheus-only from a Kauri \
     checkout (or `sudo apt-get install prometheus`), or start with `make dev ARGS=--monitor`";

/// `prometheus` on PATH, or an error saying how to install it.
pub fn find_prometheus() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| is_executable(candidate))
        .with_context(|| {
            format!("--monitor needs Prometheus, and `prometheus` is not on PATH: {INSTALL_HINT}")
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Writes the shipped config and rules into `dir`, and a target file
/// listing `targets` (HOST:PORT of each node's `--metrics-addr`) with the
/// label `cluster="dev"`. Replaces rules/ and targets/ wholesale, so a rule
/// file no longer shipped does not linger from an older binary. Returns the
/// config's path.
pub fn write_config(dir: &Path, targets: &[String]) -> anyhow::Result<PathBuf> {
    for sub in ["rules", "targets"] {
        let path = dir.join(sub);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("clearing {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let config = dir.join("prometheus.yml");
    write(&config, SHIPPED_CONFIG)?;
    for (name, rules) in SHIPPED_RULES {
        write(&dir.join("rules").join(name), rules)?;
    }
    write(
        &dir.join("targets").join(DEV_TARGETS),
        &targets_file(targets),
    )?;
    Ok(config)
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// A file_sd file with one target group: `targets`, labelled cluster=dev.
fn targets_file(targets: &[String]) -> String {
    let list: String = targets.iter().map(|t| format!("    - \"{t}\"\n")).collect();
    format!(
        "# Written by `kauri dev up --monitor` at every start: the dev nodes' --metrics-addr.\n\
         - targets:\n{list}  labels:\n    cluster: dev\n"
    )
}

/// Starts `bin` with the config in `dir` (from [`write_config`]), its TSDB
/// in dir/data and its log in dir/prometheus.log, listening on `addr`.
pub fn spawn(bin: &Path, dir: &Path, config: &Path, addr: &str) -> anyhow::Result<Child> {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"));
    super::spawn_child(cmd, &dir.join("prometheus.log"))
}

/// Waits until Prometheus at `addr` answers `/-/ready` with 200, failing
/// early if `child` exits and after [`READY_TIMEOUT`] at the latest.
pub async fn wait_ready(child: &mut Child, addr: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "prometheus exited during start-up ({status}); see {}",
                log.display()
            );
        }
        if http_status(addr, "/-/ready").await == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "prometheus not ready at {addr} within {} s; see {}",
                READY_TIMEOUT.as_secs(),
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status code of a plain HTTP/1.0 GET, or `None` when nothing answers
/// within two seconds.
async fn http_status(addr: &str, path: &str) -> Option<u16> {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = [0u8; 64];
        let n = tcp.read(&mut head).await.ok()?;
        let line = std::str::from_utf8(&head[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
    }

    #[test]
    fn the_embedded_rules_are_every_shipped_rule_file() {
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(shipped_dir().join("rules"))
            .expect("read deploy/prometheus/rules")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .map(|p| {
                let name = p.file_name().expect("a file name").to_string_lossy();
                let text = std::fs::read_to_string(&p).expect("read a rule file");
                (name.into_owned(), text)
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<(String, String)> = SHIPPED_RULES
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "SHIPPED_RULES must embed exactly deploy/prometheus/rules/*.yml"
        );
    }

    #[test]
    fn the_shipped_config_reads_rules_and_targets_from_beside_it() {
        // write_config lays files out for exactly these two globs.
        assert!(SHIPPED_CONFIG.contains("\n  - rules/*.yml\n"));
        assert!(SHIPPED_CONFIG.contains("- targets/*.yml\n"));
        assert!(SHIPPED_CONFIG.contains("job_name: kauri\n"));
    }

    #[test]
    fn the_written_layout_holds_the_shipped_files_and_the_dev_targets() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir_all(dir.path().join("rules")).expect("mkdir");
        std::fs::write(dir.path().join("rules/stale.yml"), "groups: []\n").expect("write");
        let targets = ["127.0.0.1:9101".to_string(), "127.0.0.1:9102".to_string()];
        let config = write_config(dir.path(), &targets).expect("write the config");
        assert_eq!(
            std::fs::read_to_string(config).expect("read"),
            SHIPPED_CONFIG
        );
        assert!(!dir.path().join("rules/stale.yml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("rules/kauri-alerts.yml")).expect("read"),
            SHIPPED_RULES[0].1
        );
        let file_sd =
            std::fs::read_to_string(dir.path().join("targets/dev.yml")).expect("read targets");
        assert!(
            file_sd.contains("    - \"127.0.0.1:9101\"\n    - \"127.0.0.1:9102\"\n"),
            "{file_sd}"
        );
        assert!(file_sd.contains("cluster: dev"), "{file_sd}");
    }
}
