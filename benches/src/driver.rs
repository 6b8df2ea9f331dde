//! The closed-loop driver every load mode shares: `concurrency` workers, each
//! sending its next operation as soon as the previous one completes, bounded
//! by a count and a duration; per-kind latency percentiles over the
//! successful operations. Kauri creates and etcd puts go through the same
//! code, so their numbers are measured the same way.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::report::{KindResult, LoadResult};

/// Operations per level when neither `--count` nor `--duration-secs` is given.
const DEFAULT_COUNT: u64 = 2000;
/// The longest a level runs when only `--count` bounds it.
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(120);
/// Errors printed in full per level; the rest are only counted.
const ERRORS_SHOWN: usize = 5;

/// How much load to offer, shared by `create` and `etcd put`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Requests in flight. A list (1,16,64) runs one level after another
    /// against the same cluster.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub concurrency: Vec<u64>,
    /// Operations per level [default: 2000, or unbounded with --duration-secs].
    #[arg(long)]
    pub count: Option<u64>,
    /// Run each level for this many seconds (or until --count, whichever
    /// comes first) [default: at most 120 s].
    #[arg(long, alias = "max-seconds")]
    pub duration_secs: Option<u64>,
    /// Unmeasured load before the first level, in seconds (at the highest
    /// concurrency), so connections, caches and the leader are warm.
    #[arg(long, default_value_t = 0)]
    pub warmup_secs: u64,
    /// Also add the results to the JSON array in this file (one entry per
    /// level; the file is created if missing), so separate runs can be
    /// interleaved and still reported together.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl LoadArgs {
    /// The bounds of one level at `concurrency`.
    pub fn bounds(&self, concurrency: u64) -> Bounds {
        let count = match (self.count, self.duration_secs) {
            (Some(c), _) => c,
            (None, Some(_)) => u64::MAX,
            (None, None) => DEFAULT_COUNT,
        };
        let duration = self
            .duration_secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_MAX_DURATION);
        Bounds {
            concurrency: concurrency.max(1),
            count,
            duration,
        }
    }

    /// An upper bound on the operations of the whole run, for sizing
    /// fixtures (a registrar's deposit): the count of every level, or a
    /// generous rate times the duration when only time bounds it.
    pub fn expected_operations(&self) -> u64 {
        const GENEROUS_RATE_PER_SEC: u64 = 50_000;
        let per_level = match (self.count, self.duration_secs) {
            (Some(c), _) => c,
            (None, Some(s)) => s.saturating_mul(GENEROUS_RATE_PER_SEC),
            (None, None) => DEFAULT_COUNT,
        };
        let warmup = self.warmup_secs.saturating_mul(GENEROUS_RATE_PER_SEC);
        per_level
            .saturating_mul(self.concurrency.len() as u64)
            .saturating_add(warmup)
    }

    /// Runs the warm-up and every level with `op`, prints each level's
    /// result and writes the JSON file if asked. Operation ids are unique
    /// across levels (a create never reuses a name).
    pub async fn run<F, Fut>(
        &self,
        system: &str,
        operation: &str,
        op: F,
    ) -> anyhow::Result<Vec<LoadResult>>
    where
        F: Fn(u64) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = OpOutcome> + Send + 'static,
    {
        self.run_probed(system, operation, op, None).await
    }

    /// [`LoadArgs::run`], with `probe` told when each measured level
    /// starts and ends (not the warm-up).
    pub async fn run_probed<F, Fut>(
        &self,
        system: &str,
        operation: &str,
        op: F,
        mut probe: Option<&mut crate::stages::Probe>,
    ) -> anyhow::Result<Vec<LoadResult>>
    where
        F: Fn(u64) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = OpOutcome> + Send + 'static,
    {
        let ids = Arc::new(AtomicU64::new(0));
        if self.warmup_secs > 0 {
            let top = self.concurrency.iter().copied().max().unwrap_or(1);
            let warmup = Bounds {
                concurrency: top.max(1),
                count: u64::MAX,
                duration: Duration::from_secs(self.warmup_secs),
            };
            let r = closed_loop(&warmup, &ids, op.clone()).await;
            println!(
                "warm-up: {} {system} {operation} ops in {:.1} s",
                r.ok(),
                r.elapsed.as_secs_f64()
            );
        }
        let mut results = Vec::new();
        for &concurrency in &self.concurrency {
            if let Some(p) = probe.as_deref_mut() {
                p.level_started(concurrency);
            }
            let report = closed_loop(&self.bounds(concurrency), &ids, op.clone()).await;
            let result = report.summary(system, operation);
            print_load(&result, &report.first_errors);
            if let Some(p) = probe.as_deref_mut() {
                p.level_finished(concurrency);
            }
            results.push(result);
        }
        if let Some(path) = &self.json {
            crate::report::append_json(path, &results)?;
        }
        Ok(results)
    }
}

/// Bounds of one closed-loop level.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Workers, each with one request in flight.
    pub concurrency: u64,
    /// Stop issuing after this many operations.
    pub count: u64,
    /// Stop issuing after this long.
    pub duration: Duration,
}

/// What one operation reports back to the driver.
pub struct OpOutcome {
    /// The kind of operation (per-kind statistics in a mix).
    pub kind: &'static str,
    /// Success, or the error as text.
    pub result: Result<(), String>,
}

impl OpOutcome {
    /// An operation of `kind` that ended with `result`.
    pub fn new<E: std::fmt::Display>(kind: &'static str, result: Result<(), E>) -> Self {
        OpOutcome {
            kind,
            result: result.map_err(|e| e.to_string()),
        }
    }
}

/// Latencies (sorted) and errors of one kind of operation.
#[derive(Debug, Default, Clone)]
pub struct KindStats {
    /// Latencies of the successful operations, sorted ascending.
    pub latencies: Vec<Duration>,
    /// Failed operations.
    pub errors: u64,
}

/// One level's measurements.
pub struct LoadReport {
    /// Workers.
    pub concurrency: u64,
    /// From the first request sent to the last completion.
    pub elapsed: Duration,
    /// Statistics per operation kind.
    pub kinds: BTreeMap<&'static str, KindStats>,
    /// The first few error messages, for the operator.
    pub first_errors: Vec<String>,
}

impl LoadReport {
    /// Successful operations of all kinds.
    pub fn ok(&self) -> u64 {
        self.kinds.values().map(|k| k.latencies.len() as u64).sum()
    }

    /// All kinds merged.
    pub fn all(&self) -> KindStats {
        let mut all = KindStats::default();
        for k in self.kinds.values() {
            all.latencies.extend_from_slice(&k.latencies);
            all.errors += k.errors;
        }
        all.latencies.sort_unstable();
        all
    }

    /// The serialisable summary: throughput and percentiles, overall and
    /// (when more than one kind ran) per kind.
    pub fn summary(&self, system: &str, operation: &str) -> LoadResult {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let kind_result = |kind: &str, s: &KindStats| KindResult {
            kind: kind.to_string(),
            ok: s.latencies.len() as u64,
            errors: s.errors,
            ops_per_sec: s.latencies.len() as f64 / secs,
            p50_ms: ms(percentile(&s.latencies, 0.50)),
            p99_ms: ms(percentile(&s.latencies, 0.99)),
            p999_ms: ms(percentile(&s.latencies, 0.999)),
            max_ms: ms(s.latencies.last().copied().unwrap_or_default()),
        };
        let overall = kind_result(operation, &self.all());
        let by_kind = if self.kinds.len() > 1 {
            self.kinds.iter().map(|(k, s)| kind_result(k, s)).collect()
        } else {
            Vec::new()
        };
        LoadResult {
            system: system.to_string(),
            operation: operation.to_string(),
            concurrency: self.concurrency,
            elapsed_secs: secs,
            overall,
            by_kind,
        }
    }
}

/// Runs one closed-loop level: `bounds.concurrency` workers call `op` with
/// ids taken from `ids` until `bounds.count` operations were issued or
/// `bounds.duration` has passed; operations in flight at the end complete
/// and count.
pub async fn closed_loop<F, Fut>(bounds: &Bounds, ids: &Arc<AtomicU64>, op: F) -> LoadReport
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = OpOutcome> + Send + 'static,
{
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop_at = started + bounds.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..bounds.concurrency {
        let (op, ids, issued) = (op.clone(), ids.clone(), issued.clone());
        let count = bounds.count;
        workers.spawn(async move {
            let mut kinds: BTreeMap<&'static str, KindStats> = BTreeMap::new();
            let mut errors = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < count && Instant::now() < stop_at {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let outcome = op(id).await;
                let stats = kinds.entry(outcome.kind).or_default();
                match outcome.result {
                    Ok(()) => stats.latencies.push(t.elapsed()),
                    Err(e) => {
                        stats.errors += 1;
                        if errors.len() < ERRORS_SHOWN {
                            errors.push(format!("{}: {e}", outcome.kind));
                        }
                    }
                }
            }
            (kinds, errors)
        });
    }
    let mut kinds: BTreeMap<&'static str, KindStats> = BTreeMap::new();
    let mut first_errors = Vec::new();
    for (worker_kinds, errors) in workers.join_all().await {
        for (kind, s) in worker_kinds {
            let k = kinds.entry(kind).or_default();
            k.latencies.extend(s.latencies);
            k.errors += s.errors;
        }
        first_errors.extend(errors);
    }
    let elapsed = started.elapsed();
    for k in kinds.values_mut() {
        k.latencies.sort_unstable();
    }
    first_errors.truncate(ERRORS_SHOWN);
    LoadReport {
        concurrency: bounds.concurrency,
        elapsed,
        kinds,
        first_errors,
    }
}

/// The `p` quantile (0..=1) of ascending `sorted` latencies, nearest rank;
/// zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Milliseconds as a float, for printing and JSON.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Prints one level's result for a human.
pub fn print_load(r: &LoadResult, first_errors: &[String]) {
    let o = &r.overall;
    println!(
        "{} {}: concurrency {}, {} ok, {} errors in {:.2} s: {:.0} ops/s, \
         p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
        r.system,
        r.operation,
        r.concurrency,
        o.ok,
        o.errors,
        r.elapsed_secs,
        o.ops_per_sec,
        o.p50_ms,
        o.p99_ms,
        o.p999_ms,
        o.max_ms
    );
    for k in &r.by_kind {
        println!(
            "  {:<8} {:>8} ok {:>6} errors {:>8.0} ops/s  p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms",
            k.kind, k.ok, k.errors, k.ops_per_sec, k.p50_ms, k.p99_ms, k.p999_ms
        );
    }
    for e in first_errors {
        eprintln!("  error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_takes_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_millis(501));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(990));
        assert_eq!(percentile(&sorted, 0.999), Duration::from_millis(999));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_level_stops_at_its_count_and_ids_stay_unique_across_levels() {
        let ids = Arc::new(AtomicU64::new(0));
        let bounds = Bounds {
            concurrency: 4,
            count: 10,
            duration: Duration::from_secs(10),
        };
        let op = |id: u64| async move {
            let result = if id % 5 == 4 { Err("odd") } else { Ok(()) };
            OpOutcome::new("op", result)
        };
        let first = closed_loop(&bounds, &ids, op).await;
        let second = closed_loop(&bounds, &ids, op).await;
        assert_eq!(first.ok(), 8);
        assert_eq!(first.all().errors, 2);
        assert_eq!(second.ok() + second.all().errors, 10);
        assert_eq!(ids.load(Ordering::Relaxed), 20);
    }
}
