//! A chaos run end to end: start a cluster, set up and start the workload,
//! inject faults one after another while it runs, heal, read the final
//! state, and run every checker. The tests in `tests/` are a few lines on
//! top of [`run_round`].
//!
//! A failed round keeps the node logs and the whole history under
//! `$TMPDIR/kauri-chaos/`; set `KAURI_CHAOS_KEEP=1` to keep them always.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::checkers::{self, Report, Violation};
use crate::faults::{self, Fault, FaultTiming, Nemesis, NetLab};
use crate::history::{History, OpKind, Recorder};
use crate::workload::{Identities, Workload, WorkloadConfig};
use crate::TestCluster;

/// Node flags for the short chaos runs: snapshots and log compaction happen
/// often, so a follower that was down or wiped catches up by snapshot.
pub const NODE_ARGS: [&str; 4] = ["--snapshot-every", "60", "--keep-logs", "20"];

/// Node flags for the long run. The log kept behind a snapshot must outlast
/// a snapshot install: once a follower has installed the leader's snapshot
/// it continues from the log after it, and if the leader has meanwhile taken
/// another snapshot and purged past that point, the follower needs yet
/// another snapshot, and so on for as long as writes keep coming. The long
/// run's state grows for as long as it runs (a debug build installs some
/// 13,000 records a second under this load; 110,000 records by the 20th
/// minute), so it keeps 3,000 entries, about a minute of this workload. The
/// short runs' state stays small enough for [`NODE_ARGS`].
pub const LONG_RUN_NODE_ARGS: [&str; 4] = ["--snapshot-every", "1000", "--keep-logs", "3000"];

/// Starts `nodes` nodes with [`NODE_ARGS`], in network namespaces when
/// `want_network` and the machine allows it. The second value says why
/// network faults are not available, if they are not.
pub fn start_cluster(nodes: usize, want_network: bool) -> (TestCluster, Option<String>) {
    start_cluster_with(nodes, want_network, &NODE_ARGS)
}

/// [`start_cluster`] with other node flags.
pub fn start_cluster_with(
    nodes: usize,
    want_network: bool,
    node_args: &[&str],
) -> (TestCluster, Option<String>) {
    let bin = crate::node_binary();
    if want_network {
        match NetLab::create(nodes) {
            Ok(lab) => return (TestCluster::start_in_namespaces(bin, lab, node_args), None),
            Err(why) => return (TestCluster::start(bin, nodes, node_args), Some(why)),
        }
    }
    (TestCluster::start(bin, nodes, node_args), None)
}

/// The cluster's staff identity and one registrar identity of its CA per
/// registrar of `config` (none at all in plain text).
pub fn identities(cluster: &TestCluster, config: &WorkloadConfig) -> Identities {
    Identities {
        staff: cluster.staff_tls(),
        registrars: config
            .registrar_ids()
            .into_iter()
            .filter_map(|id| cluster.registrar_tls(&id).map(|tls| (id, tls)))
            .collect(),
    }
}

/// What one round did and found.
#[derive(Debug, Default)]
pub struct RoundSummary {
    /// Operations by kind: (ok, rejected, unknown).
    pub ops: BTreeMap<OpKind, (usize, usize, usize)>,
    /// Keys (domain names) checked.
    pub keys: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<Fault, usize>,
    /// Faults after which another node led.
    pub failovers: usize,
    /// Slowest recovery after healing a fault.
    pub slowest_recovery: Duration,
    /// Everything the checkers found.
    pub report: Report,
    /// Wall time of the round.
    pub elapsed: Duration,
    /// What happened to the cluster, when.
    pub timeline: Vec<String>,
}

impl RoundSummary {
    /// Adds another round's numbers (not its timeline).
    pub fn absorb(&mut self, other: RoundSummary) {
        for (kind, (a, b, c)) in other.ops {
            let e = self.ops.entry(kind).or_default();
            e.0 += a;
            e.1 += b;
            e.2 += c;
        }
        self.keys += other.keys;
        for (f, n) in other.faults {
            *self.faults.entry(f).or_default() += n;
        }
        self.failovers += other.failovers;
        self.slowest_recovery = self.slowest_recovery.max(other.slowest_recovery);
        self.report.merge(other.report);
        self.elapsed += other.elapsed;
    }

    /// Total operations.
    pub fn total_ops(&self) -> usize {
        self.ops.values().map(|(a, b, c)| a + b + c).sum()
    }
}

impl fmt::Display for RoundSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  operations: {} on {} names in {:.1}s",
            self.total_ops(),
            self.keys,
            self.elapsed.as_secs_f64()
        )?;
        for (kind, (ok, rejected, unknown)) in &self.ops {
            writeln!(
                f,
                "    {:<8} ok {ok:>5}  rejected {rejected:>5}  unknown {unknown:>4}",
                kind.as_str()
            )?;
        }
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k}×{n}"))
            .collect();
        writeln!(
            f,
            "  faults: {} ({}); failovers: {}; slowest recovery {:.1}s",
            self.faults.values().sum::<usize>(),
            faults.join(", "),
            self.failovers,
            self.slowest_recovery.as_secs_f64()
        )?;
        if !self.timeline.is_empty() {
            writeln!(f, "  timeline:")?;
            for line in &self.timeline {
                writeln!(f, "    {line}")?;
            }
        }
        write!(f, "  violations: {}", self.report.violations.len())?;
        for n in &self.report.notes {
            write!(f, "\n  note: {n}")?;
        }
        Ok(())
    }
}

/// Gets every node running and every link back, whatever state a failed
/// fault left.
async fn heal_everything(cluster: &mut TestCluster) {
    if let Some(net) = cluster.net() {
        let _ = net.heal();
    }
    for id in cluster.ids() {
        if cluster.is_paused(id) {
            cluster.resume(id);
        }
        if !cluster.is_running(id) {
            cluster.spawn(id);
        }
    }
}

/// Waits until the workload has issued `more` operations past `from`: proof
/// that the cluster serves clients.
async fn wait_for_progress(
    workload: &Workload,
    from: usize,
    more: usize,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if workload.ops_issued() >= from + more {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One round: a fresh workload (`config`, whose `round` keeps its names
/// apart from earlier rounds') runs while `faults` are injected in order;
/// then the cluster is healed, the final state read and every checker run.
pub async fn run_round(
    cluster: &mut TestCluster,
    config: WorkloadConfig,
    faults: &[Fault],
    timing: FaultTiming,
) -> RoundSummary {
    let started = Instant::now();
    let seed = config.seed;
    let recorder = Recorder::new();
    let mut nemesis = Nemesis::new(seed, recorder.clone(), timing);
    let mut report = Report::default();
    let nodes = cluster.ids().len();

    faults::wait_leader(cluster, timing.recover_timeout)
        .await
        .expect("the cluster elects a leader");
    let identities = identities(cluster, &config);
    let mut workload = Workload::setup(&cluster.endpoints(), config, &identities, recorder.clone())
        .await
        .unwrap_or_else(|e| panic!("workload setup failed (seed {seed}): {e}"));
    workload.start();
    wait_for_progress(&workload, 0, 40, Duration::from_secs(20)).await;

    for &fault in faults {
        if let Err(e) = nemesis.inject(cluster, fault).await {
            report.violations.push(Violation {
                checker: "recovery",
                summary: format!("the cluster did not recover from {fault}"),
                detail: e,
            });
            break;
        }
        // Let the workload run on the healed cluster before the next fault.
        let at = workload.ops_issued();
        if !wait_for_progress(&workload, at, 20, timing.recover_timeout).await {
            report.violations.push(Violation {
                checker: "recovery",
                summary: format!(
                    "no client progress for {:?} after {fault}",
                    timing.recover_timeout
                ),
                detail: String::new(),
            });
            break;
        }
    }

    heal_everything(cluster).await;
    workload.stop().await;
    recorder.note("workload stopped; reading the final state");
    // Once recovery failed, the waits below only collect evidence.
    let patience = if report.is_clean() {
        timing.recover_timeout
    } else {
        timing.recover_timeout.min(Duration::from_secs(10))
    };
    if let Err(e) = faults::caught_up(cluster, patience).await {
        report.violations.push(Violation {
            checker: "recovery",
            summary: "the healed cluster did not catch up".into(),
            detail: e,
        });
    }
    match workload.final_state().await {
        Ok(fin) => {
            let digests = cluster.converged_digests(patience).await;
            let history = recorder.history();
            report.merge(checkers::check_all(&history, &fin, &digests, nodes));
            if !report.is_clean() || std::env::var_os("KAURI_CHAOS_KEEP").is_some() {
                save_evidence(cluster, &history, seed, &mut report);
            }
            RoundSummary {
                ops: history.counts(),
                keys: history.by_key().len(),
                faults: nemesis.counts(),
                failovers: nemesis.failovers(),
                slowest_recovery: nemesis.slowest_recovery(),
                report,
                elapsed: started.elapsed(),
                timeline: timeline(&history),
            }
        }
        Err(e) => {
            report.violations.push(Violation {
                checker: "recovery",
                summary: "the final state could not be read".into(),
                detail: e,
            });
            save_evidence(cluster, &recorder.history(), seed, &mut report);
            RoundSummary {
                ops: recorder.history().counts(),
                faults: nemesis.counts(),
                failovers: nemesis.failovers(),
                report,
                elapsed: started.elapsed(),
                timeline: timeline(&recorder.history()),
                ..RoundSummary::default()
            }
        }
    }
}

fn timeline(history: &History) -> Vec<String> {
    history
        .events
        .iter()
        .map(|e| format!("{:>7.3}s {}", e.at.as_secs_f64(), e.text))
        .collect()
}

/// Keeps the node logs and the full history of a failed round, and notes
/// where.
fn save_evidence(cluster: &TestCluster, history: &History, seed: u64, report: &mut Report) {
    let Some(dir) = cluster.save_logs(&format!("seed{seed}")) else {
        return;
    };
    let mut text = String::new();
    for op in &history.ops {
        text.push_str(&format!("{op}\n"));
    }
    text.push_str("\nevents:\n");
    for e in &history.events {
        text.push_str(&format!("{:.3}s {}\n", e.at.as_secs_f64(), e.text));
    }
    let _ = std::fs::write(dir.join("history.txt"), text);
    report.notes.push(format!(
        "node logs and the full history are in {}",
        dir.display()
    ));
}

/// Panics with the report and the seed if `summary` has violations.
pub fn assert_clean(name: &str, seed: u64, summary: &RoundSummary) {
    if !summary.report.is_clean() {
        panic!(
            "chaos {name}: {} violation(s) (seed {seed}; rerun with KAURI_CHAOS_SEED={seed})\n{}\n{summary}",
            summary.report.violations.len(),
            summary.report
        );
    }
}
