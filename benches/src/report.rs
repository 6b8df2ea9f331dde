//! Results as stable JSON (one file per system and mode), and `kauri-bench
//! report`, which reads a results directory and renders the Kauri vs etcd
//! table with ratios and the targets of the comparison.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Throughput and latency of one load level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// "kauri" or "etcd".
    pub system: String,
    /// "create", "put" or "mix".
    pub operation: String,
    /// Requests in flight.
    pub concurrency: u64,
    /// Wall-clock length of the level.
    pub elapsed_secs: f64,
    /// All operations of the level.
    pub overall: KindResult,
    /// Per operation kind, when a mix ran (empty otherwise).
    #[serde(default)]
    pub by_kind: Vec<KindResult>,
}

/// Throughput and latency percentiles of one kind of operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindResult {
    /// The operation kind.
    pub kind: String,
    /// Successful operations.
    pub ok: u64,
    /// Failed operations.
    pub errors: u64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Median latency of successful operations.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// What the failover procedure measured on one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailoverResult {
    /// "kauri" or "etcd".
    pub system: String,
    /// Writers in flight during the run.
    pub concurrency: u64,
    /// Write unavailability of each leader kill, in kill order.
    pub windows_ms: Vec<f64>,
    /// Per kill, time until the survivors agreed on a new leader (polled
    /// every 50 ms): the election's share of the window.
    #[serde(default)]
    pub elections_ms: Vec<f64>,
    /// Shortest window.
    pub min_ms: f64,
    /// Median window.
    pub median_ms: f64,
    /// Longest window.
    pub max_ms: f64,
    /// Acknowledged writes over the whole run.
    pub acknowledged: u64,
    /// Calls that failed (after the client's own retries).
    pub failed_calls: u64,
    /// Acknowledged writes missing afterwards (must be 0).
    pub lost: u64,
    /// Writes applied more than once: duplicate charges for Kauri, puts
    /// with a version above 1 for etcd (a retried put applied twice).
    pub duplicates: u64,
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Adds `results` to the JSON array in `path`, creating the file if missing.
pub fn append_json(path: &Path, results: &[LoadResult]) -> anyhow::Result<()> {
    let mut all: Vec<LoadResult> = if path.exists() {
        read_json(path)?
    } else {
        Vec::new()
    };
    all.extend_from_slice(results);
    write_json(path, &all)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// File names inside a results directory, as `benches/compare-etcd.sh`
/// writes them.
pub const KAURI_LOAD: &str = "kauri-load.json";
/// etcd put levels.
pub const ETCD_LOAD: &str = "etcd-load.json";
/// Kauri failover.
pub const KAURI_FAILOVER: &str = "kauri-failover.json";
/// etcd failover.
pub const ETCD_FAILOVER: &str = "etcd-failover.json";

/// Options of `kauri-bench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Directory holding kauri-load.json, etcd-load.json,
    /// kauri-failover.json and etcd-failover.json (missing ones are skipped).
    #[arg(long)]
    pub dir: PathBuf,
}

/// Prints the comparison table of the results in `args.dir`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let load = |name: &str| -> anyhow::Result<Vec<LoadResult>> {
        let path = args.dir.join(name);
        if path.exists() {
            read_json(&path)
        } else {
            Ok(Vec::new())
        }
    };
    let failover = |name: &str| -> anyhow::Result<Option<FailoverResult>> {
        let path = args.dir.join(name);
        path.exists().then(|| read_json(&path)).transpose()
    };
    print!(
        "{}",
        render(
            &load(KAURI_LOAD)?,
            &load(ETCD_LOAD)?,
            failover(KAURI_FAILOVER)?.as_ref(),
            failover(ETCD_FAILOVER)?.as_ref(),
        )
    );
    Ok(())
}

/// Kauri / etcd, or a dash when etcd's figure is zero.
fn ratio(kauri: f64, etcd: f64) -> String {
    if etcd > 0.0 {
        format!("{:.2}", kauri / etcd)
    } else {
        "-".into()
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// The markdown table: throughput and latency per concurrency level, then
/// failover, with ratios and the targets of issue #4.
pub fn render(
    kauri: &[LoadResult],
    etcd: &[LoadResult],
    kauri_failover: Option<&FailoverResult>,
    etcd_failover: Option<&FailoverResult>,
) -> String {
    let mut out = String::new();
    out.push_str("| measure | Kauri | etcd | Kauri / etcd | target |\n");
    out.push_str("|---|---:|---:|---:|---|\n");
    for k in kauri {
        let Some(e) = etcd.iter().find(|e| e.concurrency == k.concurrency) else {
            continue;
        };
        let (ko, eo) = (&k.overall, &e.overall);
        let c = k.concurrency;
        let throughput_target = if c == 16 || c == 64 {
            format!(
                "ratio >= 1.0: {}",
                verdict(ko.ops_per_sec >= eo.ops_per_sec)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| c={c}: writes/s (Kauri creates, etcd puts) | {:.0} | {:.0} | {} | {throughput_target} |",
            ko.ops_per_sec,
            eo.ops_per_sec,
            ratio(ko.ops_per_sec, eo.ops_per_sec)
        );
        for (name, kv, ev) in [
            ("p50", ko.p50_ms, eo.p50_ms),
            ("p99", ko.p99_ms, eo.p99_ms),
            ("p999", ko.p999_ms, eo.p999_ms),
        ] {
            let target = if c == 16 && name == "p99" {
                format!("ratio <= 1.0: {}", verdict(kv <= ev))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| c={c}: {name} latency, ms | {kv:.2} | {ev:.2} | {} | {target} |",
                ratio(kv, ev)
            );
        }
        if ko.errors + eo.errors > 0 {
            let _ = writeln!(
                out,
                "| c={c}: failed requests | {} | {} | | |",
                ko.errors, eo.errors
            );
        }
    }
    if let (Some(k), Some(e)) = (kauri_failover, etcd_failover) {
        let _ = writeln!(
            out,
            "| failover: leader kills | {} | {} | | |",
            k.windows_ms.len(),
            e.windows_ms.len()
        );
        for (name, kv, ev, limit) in [
            ("min", k.min_ms, e.min_ms, None),
            ("median", k.median_ms, e.median_ms, Some(1000.0)),
            ("max", k.max_ms, e.max_ms, Some(2000.0)),
        ] {
            let target = limit
                .map(|l| format!("Kauri <= {l:.0} ms: {}", verdict(kv <= l)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| failover: write unavailability {name}, ms | {kv:.0} | {ev:.0} | {} | {target} |",
                ratio(kv, ev)
            );
        }
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or_default()
        };
        let (ke, ee) = (median(&k.elections_ms), median(&e.elections_ms));
        let _ = writeln!(
            out,
            "| failover: new leader agreed on after, median ms | {ke:.0} | {ee:.0} | {} | |",
            ratio(ke, ee)
        );
        let _ = writeln!(
            out,
            "| failover: acknowledged writes | {} | {} | | |",
            k.acknowledged, e.acknowledged
        );
        let _ = writeln!(
            out,
            "| failover: lost acknowledged writes | {} | {} | | Kauri 0: {} |",
            k.lost,
            e.lost,
            verdict(k.lost == 0)
        );
        let _ = writeln!(
            out,
            "| failover: duplicated writes (Kauri: charges; etcd: puts applied twice) | {} | {} | | Kauri 0: {} |",
            k.duplicates,
            e.duplicates,
            verdict(k.duplicates == 0)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(system: &str, concurrency: u64, ops_per_sec: f64, p99_ms: f64) -> LoadResult {
        LoadResult {
            system: system.into(),
            operation: "op".into(),
            concurrency,
            elapsed_secs: 10.0,
            overall: KindResult {
                kind: "op".into(),
                ok: (ops_per_sec * 10.0) as u64,
                errors: 0,
                ops_per_sec,
                p50_ms: p99_ms / 2.0,
                p99_ms,
                p999_ms: p99_ms * 2.0,
                max_ms: p99_ms * 3.0,
            },
            by_kind: Vec::new(),
        }
    }

    #[test]
    fn the_table_marks_each_target_met_or_missed() {
        let kauri = [
            level("kauri", 16, 1200.0, 20.0),
            level("kauri", 64, 900.0, 80.0),
        ];
        let etcd = [
            level("etcd", 16, 1000.0, 25.0),
            level("etcd", 64, 1000.0, 70.0),
        ];
        let failover = |median_ms, max_ms| FailoverResult {
            system: "x".into(),
            concurrency: 8,
            windows_ms: vec![median_ms; 5],
            elections_ms: vec![median_ms / 2.0; 5],
            min_ms: median_ms,
            median_ms,
            max_ms,
            acknowledged: 100,
            failed_calls: 0,
            lost: 0,
            duplicates: 0,
        };
        let table = render(
            &kauri,
            &etcd,
            Some(&failover(800.0, 2500.0)),
            Some(&failover(1200.0, 1500.0)),
        );
        assert!(table.contains("| c=16: writes/s (Kauri creates, etcd puts) | 1200 | 1000 | 1.20 | ratio >= 1.0: met |"));
        assert!(table.contains("| c=64: writes/s (Kauri creates, etcd puts) | 900 | 1000 | 0.90 | ratio >= 1.0: MISSED |"));
        assert!(
            table.contains("| c=16: p99 latency, ms | 20.00 | 25.00 | 0.80 | ratio <= 1.0: met |")
        );
        assert!(table.contains("median, ms | 800 | 1200 | 0.67 | Kauri <= 1000 ms: met |"));
        assert!(table.contains("max, ms | 2500 | 1500 | 1.67 | Kauri <= 2000 ms: MISSED |"));
    }
}
