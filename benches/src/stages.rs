//! Where a level's time goes, per node: `--stages` reads each node's
//! Prometheus metrics at the start and the end of every measured level and
//! prints the stages of a write (the leader's gRPC time per create, log
//! syncs and how many entries each covered, apply batches, the followers'
//! AppendEntries handling); `--profile DIR` also records a CPU profile of
//! each node and of kauri-bench itself with `perf record -g` during the
//! level, and writes the top of each (`perf report`) beside it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// Sampling frequency of `--profile`, per second and CPU.
const PROFILE_HZ: &str = "499";
/// Symbols kept in each profile's summary.
const SUMMARY_LINES: usize = 40;

/// A node to watch: its id, metrics address and (for profiles) its PID.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The node's Raft id.
    pub id: u64,
    /// HOST:PORT of its plain-HTTP `/metrics`.
    pub metrics_addr: String,
    /// Its process, when known.
    pub pid: Option<u32>,
}

/// Metric samples by name (with labels), as `/metrics` gives them.
type Samples = BTreeMap<String, f64>;

/// Reads `/metrics` at `addr` (plain HTTP).
fn scrape(addr: &str) -> anyhow::Result<Samples> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("metrics at {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{addr}: no HTTP answer");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{addr}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(parse(body))
}

/// The samples of a Prometheus text exposition (comments skipped).
fn parse(body: &str) -> Samples {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// What one node did during a level, from two scrapes.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStages {
    /// Domain creates it served over gRPC (the leader).
    pub creates: f64,
    /// Their mean time in the node, ms.
    pub create_ms: f64,
    /// Raft log syncs (each covers every append queued meanwhile).
    pub syncs: f64,
    /// Their mean, ms.
    pub sync_ms: f64,
    /// Apply batches.
    pub batches: f64,
    /// Log entries per apply batch.
    pub batch_entries: f64,
    /// Mean apply time of a batch, ms.
    pub apply_ms: f64,
    /// AppendEntries requests it handled (a follower).
    pub appends: f64,
    /// Their mean time in the node, ms.
    pub append_ms: f64,
}

fn delta(before: &Samples, after: &Samples, name: &str) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

/// The count of histogram `name` (with `labels`, "" for none) between two
/// scrapes, and its mean in ms.
fn mean_ms(before: &Samples, after: &Samples, name: &str, labels: &str) -> (f64, f64) {
    let count = delta(before, after, &format!("{name}_count{labels}"));
    let sum = delta(before, after, &format!("{name}_sum{labels}"));
    let mean = if count > 0.0 {
        sum * 1000.0 / count
    } else {
        0.0
    };
    (count, mean)
}

/// The count and mean server time (ms) of gRPC method `service/method`
/// between two scrapes.
fn grpc_mean(before: &Samples, after: &Samples, service: &str, method: &str) -> (f64, f64) {
    let labels = format!("{{service=\"kauri.v1.{service}\",method=\"{method}\"}}");
    mean_ms(
        before,
        after,
        "kauri_grpc_request_duration_seconds",
        &labels,
    )
}

impl NodeStages {
    /// The stages between scrapes `before` and `after` of one node.
    pub fn between(before: &Samples, after: &Samples) -> NodeStages {
        let (creates, create_ms) = grpc_mean(before, after, "Registry", "CreateDomain");
        let (appends, append_ms) = grpc_mean(before, after, "Raft", "AppendEntries");
        let (syncs, sync_ms) = mean_ms(before, after, "kauri_log_sync_duration_seconds", "");
        let (batches, apply_ms) = mean_ms(before, after, "kauri_apply_duration_seconds", "");
        let entries = delta(before, after, "kauri_apply_batch_entries_sum");
        NodeStages {
            creates,
            create_ms,
            syncs,
            sync_ms,
            batches,
            batch_entries: if batches > 0.0 {
                entries / batches
            } else {
                0.0
            },
            apply_ms,
            appends,
            append_ms,
        }
    }

    /// One line for the operator, rates per second of `secs`.
    pub fn line(&self, id: u64, secs: f64) -> String {
        let per_sec = |n: f64| n / secs.max(1e-9);
        let entries_per_sync = if self.syncs > 0.0 {
            self.batch_entries * self.batches / self.syncs
        } else {
            0.0
        };
        let mut out = format!("node {id}:");
        if self.creates > 0.0 {
            out += &format!(
                " creates {:.0}/s, {:.2} ms each in the node;",
                per_sec(self.creates),
                self.create_ms
            );
        }
        if self.appends > 0.0 {
            out += &format!(
                " AppendEntries {:.0}/s, {:.2} ms each;",
                per_sec(self.appends),
                self.append_ms
            );
        }
        out += &format!(
            " log syncs {:.0}/s, {:.2} ms each, {entries_per_sync:.1} entries a sync; \
             apply batches {:.0}/s of {:.1} entries, {:.2} ms each",
            per_sec(self.syncs),
            self.sync_ms,
            per_sec(self.batches),
            self.batch_entries,
            self.apply_ms
        );
        out
    }
}

/// What `--stages` and `--profile` watch during each level.
pub struct Probe {
    nodes: Vec<Watched>,
    profile: Option<PathBuf>,
    before: Vec<Option<Samples>>,
    perf: Vec<(String, Child, PathBuf)>,
    started: std::time::Instant,
}

impl Probe {
    /// Watches `nodes`; with `profile`, records CPU profiles into that
    /// directory (`perf` must be installed).
    pub fn new(nodes: Vec<Watched>, profile: Option<PathBuf>) -> anyhow::Result<Probe> {
        if let Some(dir) = &profile {
            let found = Command::new("perf")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !found {
                bail!("--profile needs perf (Debian: apt-get install linux-perf)");
            }
            if nodes.iter().any(|n| n.pid.is_none()) {
                bail!("--profile needs the nodes' PIDs (--local-cluster or --node-pids)");
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Probe {
            nodes,
            profile,
            before: Vec::new(),
            perf: Vec::new(),
            started: std::time::Instant::now(),
        })
    }

    /// A measured level at `concurrency` starts.
    pub fn level_started(&mut self, concurrency: u64) {
        self.before = self
            .nodes
            .iter()
            .map(|n| match scrape(&n.metrics_addr) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("stages: node {}: {e:#}", n.id);
                    None
                }
            })
            .collect();
        if let Some(dir) = &self.profile {
            let mut targets: Vec<(String, u32)> = self
                .nodes
                .iter()
                .filter_map(|n| Some((format!("node{}", n.id), n.pid?)))
                .collect();
            targets.push(("kauri-bench".into(), std::process::id()));
            for (name, pid) in targets {
                let file = dir.join(format!("c{concurrency}-{name}.perf"));
                match Command::new("perf")
                    .args([
                        "record",
                        "-F",
                        PROFILE_HZ,
                        "-g",
                        "-p",
                        &pid.to_string(),
                        "-o",
                    ])
                    .arg(&file)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    Ok(child) => self.perf.push((name, child, file)),
                    Err(e) => eprintln!("profile: perf record of {name}: {e}"),
                }
            }
        }
        self.started = std::time::Instant::now();
    }

    /// The level ended: prints each node's stages and finishes the
    /// profiles.
    pub fn level_finished(&mut self, concurrency: u64) {
        let secs = self.started.elapsed().as_secs_f64();
        println!("stages at c={concurrency} (node metrics over {secs:.1} s):");
        for (n, before) in self.nodes.iter().zip(&self.before) {
            let Some(before) = before else { continue };
            match scrape(&n.metrics_addr) {
                Ok(after) => println!("  {}", NodeStages::between(before, &after).line(n.id, secs)),
                Err(e) => eprintln!("stages: node {}: {e:#}", n.id),
            }
        }
        for (name, mut child, file) in std::mem::take(&mut self.perf) {
            // perf writes its file on SIGINT.
            // SAFETY: kill(2) on a child this process started and still owns.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGINT);
            }
            let _ = child.wait();
            match summarize(&file) {
                Ok(summary) => println!("  profile of {name}: {}", summary.display()),
                Err(e) => eprintln!("profile: {name}: {e:#}"),
            }
        }
    }
}

/// Writes the top of the profile `file` (self time by DSO and symbol) to
/// `file` with `.txt`, and returns that path.
fn summarize(file: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-g", "none"])
        .args(["--sort", "dso,symbol", "-i"])
        .arg(file)
        .output()
        .context("running perf report")?;
    if !out.status.success() {
        bail!(
            "perf report: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let top: Vec<&str> = text
        .lines()
        .filter(|l| l.contains('%') && !l.starts_with('#'))
        .take(SUMMARY_LINES)
        .map(str::trim_end)
        .collect();
    let summary = file.with_extension("txt");
    std::fs::write(&summary, top.join("\n") + "\n")?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_come_from_the_difference_of_two_scrapes() {
        let before = parse(
            "# HELP x\n\
             kauri_log_sync_duration_seconds_sum 1\n\
             kauri_log_sync_duration_seconds_count 10\n\
             kauri_apply_duration_seconds_sum 0.5\n\
             kauri_apply_duration_seconds_count 5\n\
             kauri_apply_batch_entries_sum 50\n\
             kauri_grpc_request_duration_seconds_sum{service=\"kauri.v1.Registry\",method=\"CreateDomain\"} 2\n\
             kauri_grpc_request_duration_seconds_count{service=\"kauri.v1.Registry\",method=\"CreateDomain\"} 100\n",
        );
        let after = parse(
            "kauri_log_sync_duration_seconds_sum 1.5\n\
             kauri_log_sync_duration_seconds_count 20\n\
             kauri_apply_duration_seconds_sum 0.7\n\
             kauri_apply_duration_seconds_count 9\n\
             kauri_apply_batch_entries_sum 130\n\
             kauri_grpc_request_duration_seconds_sum{service=\"kauri.v1.Registry\",method=\"CreateDomain\"} 5\n\
             kauri_grpc_request_duration_seconds_count{service=\"kauri.v1.Registry\",method=\"CreateDomain\"} 200\n",
        );
        let s = NodeStages::between(&before, &after);
        assert_eq!((s.creates, s.create_ms), (100.0, 30.0));
        assert_eq!((s.syncs, s.sync_ms), (10.0, 50.0));
        assert_eq!((s.batches, s.batch_entries), (4.0, 20.0));
        assert!((s.apply_ms - 50.0).abs() < 1e-9, "{}", s.apply_ms);
        assert_eq!(s.appends, 0.0);
        let line = s.line(1, 2.0);
        assert!(
            line.starts_with("node 1: creates 50/s, 30.00 ms each in the node;"),
            "{line}"
        );
        assert!(
            line.contains("log syncs 5/s, 50.00 ms each, 8.0 entries a sync"),
            "{line}"
        );
        assert!(line.contains("apply batches 2/s of 20.0 entries"), "{line}");
    }
}
