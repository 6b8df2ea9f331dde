//! The failover procedure, the same for Kauri and etcd: a steady write load,
//! the leader SIGKILLed `--kills` times (restarted with its data after each
//! measurement), and for each kill the write unavailability window: from the
//! last acknowledgement before the kill to the first acknowledgement of a
//! request *sent* after it. Then proof that nothing acknowledged was lost
//! or applied twice (`kauri-bench failover` for Kauri, `kauri-bench etcd
//! failover` for etcd).

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kauri_chaos_tests::TestCluster;
use kauri_client::proto::*;
use kauri_client::{linearizable, meta, KauriClient};

use crate::driver::{ms, percentile};
use crate::report::FailoverResult;

/// The most writes one failover run sends (the loop is bounded even if
/// asked to run for a very long time).
const MAX_WRITES: u64 = 1_000_000;
/// How long to wait for a write to succeed after a kill before giving up.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(30);
/// Price of a create in the bench TLD (see [`crate::create::fixture`]).
const CREATE_PRICE: i64 = 100;

/// Options of the failover procedure, the same for both systems.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcedureArgs {
    /// Leader kills.
    #[arg(long, default_value_t = 5)]
    pub kills: u32,
    /// Writes in flight during the run.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u64,
    /// Steady load before each kill (and after each restart), in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of `kauri-bench failover`.
#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub procedure: ProcedureArgs,
    /// The kauri-node binary (default: next to kauri-bench).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// An extra kauri-node flag for every node (repeat for more), e.g.
    /// --node-arg=--election-timeout-ms --node-arg=250.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Run the cluster over mutual TLS (between nodes and to clients; the
    /// writers as registrar "bench" with a certificate of its own), as
    /// `kauri-bench create --tls` does.
    #[arg(long)]
    pub tls: bool,
}

/// A cluster whose leader the procedure can find, kill and restart.
pub(crate) trait LeaderKill {
    /// The current leader's node id, waiting (with a deadline) for one.
    async fn leader(&mut self) -> anyhow::Result<u64>;
    /// SIGKILLs node `id`.
    fn kill(&mut self, id: u64) -> anyhow::Result<()>;
    /// Starts node `id` again with its data.
    fn restart(&mut self, id: u64) -> anyhow::Result<()>;
}

/// What the procedure saw: the windows and every acknowledged write.
pub(crate) struct Observed {
    /// One window per kill, in kill order.
    pub windows: Vec<Duration>,
    /// Per kill, how long until the surviving nodes agreed on a new leader
    /// (as seen by polling their status): the election's share of the window.
    pub elections: Vec<Duration>,
    /// Keys (Kauri: domain names) of every acknowledged write.
    pub acknowledged: Vec<String>,
    /// Writes that failed after the client's retries.
    pub failed_calls: u64,
    /// Write ids handed out (ids 0..attempted were tried).
    pub attempted: u64,
}

impl Observed {
    /// The serialisable result, given what the system-specific check found.
    pub fn result(
        &self,
        system: &str,
        concurrency: u64,
        lost: u64,
        duplicates: u64,
    ) -> FailoverResult {
        let mut sorted = self.windows.clone();
        sorted.sort_unstable();
        FailoverResult {
            system: system.into(),
            concurrency,
            windows_ms: self.windows.iter().copied().map(ms).collect(),
            elections_ms: self.elections.iter().copied().map(ms).collect(),
            min_ms: sorted.first().copied().map(ms).unwrap_or_default(),
            median_ms: ms(percentile(&sorted, 0.5)),
            max_ms: sorted.last().copied().map(ms).unwrap_or_default(),
            acknowledged: self.acknowledged.len() as u64,
            failed_calls: self.failed_calls,
            lost,
            duplicates,
        }
    }
}

/// One acknowledged write: when it was sent, when it completed, its key.
struct Ack {
    sent: Instant,
    done: Instant,
    key: String,
}

/// Runs the procedure: `args.concurrency` writers call `write(id)` (which
/// retries as its client does and returns the key it wrote) while the
/// leader of `cluster` is killed `args.kills` times.
pub(crate) async fn run_procedure<C, W, Fut>(
    cluster: &mut C,
    args: &ProcedureArgs,
    write: W,
) -> anyhow::Result<Observed>
where
    C: LeaderKill,
    W: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (write, acks, stop, next, failures) = (
            write.clone(),
            acks.clone(),
            stop.clone(),
            next.clone(),
            failures.clone(),
        );
        workers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= MAX_WRITES {
                    break;
                }
                let sent = Instant::now();
                match write(id).await {
                    Ok(key) => acks.lock().unwrap_or_else(|p| p.into_inner()).push(Ack {
                        sent,
                        done: Instant::now(),
                        key,
                    }),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }

    let mut windows = Vec::new();
    let mut elections = Vec::new();
    let outcome = measure_kills(cluster, args, &acks, &mut windows, &mut elections).await;
    stop.store(true, Ordering::Relaxed);
    workers.join_all().await;
    outcome?;

    let acknowledged = acks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|a| a.key.clone())
        .collect();
    Ok(Observed {
        windows,
        elections,
        acknowledged,
        failed_calls: failures.load(Ordering::Relaxed),
        attempted: next.load(Ordering::Relaxed).min(MAX_WRITES),
    })
}

async fn measure_kills<C: LeaderKill>(
    cluster: &mut C,
    args: &ProcedureArgs,
    acks: &Mutex<Vec<Ack>>,
    windows: &mut Vec<Duration>,
    elections: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    let lock = || acks.lock().unwrap_or_else(|p| p.into_inner());
    for k in 0..args.kills {
        tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
        let leader = cluster.leader().await?;
        let killed_at = Instant::now();
        cluster.kill(leader)?;
        let new_leader = cluster.leader().await?;
        let elected = killed_at.elapsed();
        // Replies the dead leader had already sent don't count: only a
        // request sent after the kill proves writes work again.
        let first_after = loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let first = lock()
                .iter()
                .filter(|a| a.sent > killed_at)
                .map(|a| a.done)
                .min();
            if let Some(done) = first {
                break done;
            }
            if killed_at.elapsed() > RECOVERY_DEADLINE {
                bail!(
                    "no write succeeded within {} s of killing node {leader}",
                    RECOVERY_DEADLINE.as_secs()
                );
            }
        };
        let last_before = lock()
            .iter()
            .filter(|a| a.done <= killed_at)
            .map(|a| a.done)
            .max()
            .unwrap_or(killed_at);
        let window = first_after - last_before;
        println!(
            "kill {}: node {leader}; node {new_leader} leads after {:.0} ms; \
             writes unavailable for {:.0} ms",
            k + 1,
            ms(elected),
            ms(window)
        );
        windows.push(window);
        elections.push(elected);
        cluster.restart(leader)?;
    }
    Ok(())
}

/// Prints the summary every failover run ends with.
pub(crate) fn print_result(r: &FailoverResult) {
    println!();
    println!(
        "{} failovers: {}, acknowledged writes: {}, failed calls: {}",
        r.system,
        r.windows_ms.len(),
        r.acknowledged,
        r.failed_calls
    );
    println!(
        "write unavailability: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        r.min_ms, r.median_ms, r.max_ms
    );
    println!("lost acknowledged writes: {}", r.lost);
    println!("duplicated writes: {}", r.duplicates);
}

/// The Kauri cluster of the harness, as the procedure sees it.
impl LeaderKill for TestCluster {
    async fn leader(&mut self) -> anyhow::Result<u64> {
        Ok(self.wait_for_leader(RECOVERY_DEADLINE).await)
    }

    fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        TestCluster::kill(self, id);
        Ok(())
    }

    fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.spawn(id);
        Ok(())
    }
}

/// `kauri-bench failover`: the procedure on a fresh 3-node Kauri cluster
/// with domain creates as the writes; then every acknowledged name must
/// exist and the registrar must have been charged once per existing domain.
pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let bin = crate::create::node_binary(args.node_bin)?;
    let node_args: Vec<&str> = args.node_args.iter().map(String::as_str).collect();
    let mut cluster = if args.tls {
        TestCluster::start(&bin, 3, &node_args)
    } else {
        TestCluster::start_plaintext(&bin, 3, &node_args)
    };
    cluster.wait_for_leader(RECOVERY_DEADLINE).await;
    let (client, registrar_client) = crate::create::bench_clients(&cluster)?;
    crate::create::fixture(&client, &registrar_client, "bench", MAX_WRITES)
        .await
        .context("fixture")?;

    let writer = registrar_client.clone();
    let write = move |id: u64| {
        let client = writer.clone();
        async move {
            let name = format!("f{id}.bench");
            let request = CreateDomainRequest {
                meta: Some(meta("bench")),
                name: name.clone(),
                period_years: 1,
                registrant: "bench-owner".into(),
                ..Default::default()
            };
            match client.create_domain(request).await {
                Ok(_) => Ok(name),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let observed = run_procedure(&mut cluster, &args.procedure, write).await?;

    let lost = count_lost(&registrar_client, &observed.acknowledged).await?;
    let registrar = client
        .info_registrar(InfoRegistrarRequest {
            id: "bench".into(),
            read: linearizable(),
            ledger_limit: 0,
        })
        .await?
        .registrar
        .context("registrar missing")?;
    let charges = registrar.total_charges_minor_units;
    let created = count_existing(&registrar_client, observed.attempted).await?;
    let duplicates = (charges / CREATE_PRICE - created as i64).max(0) as u64;
    let result = observed.result("kauri", args.procedure.concurrency, lost, duplicates);
    print_result(&result);
    println!("charged {charges} minor units for {created} domains that exist");
    if let Some(path) = &args.procedure.json {
        crate::report::write_json(path, &result)?;
    }
    if lost > 0 || charges != created as i64 * CREATE_PRICE {
        bail!("violation: lost or duplicated writes");
    }
    Ok(())
}

/// Acknowledged names that a linearizable read cannot find.
async fn count_lost(client: &KauriClient, acked: &[String]) -> anyhow::Result<u64> {
    let mut lost = 0;
    for chunk in acked.chunks(100) {
        let r = client
            .check_domains(CheckRequest {
                registrar: "bench".into(),
                names: chunk.to_vec(),
                read: linearizable(),
                fees: Vec::new(),
            })
            .await?;
        lost += r.results.iter().filter(|c| c.available).count() as u64;
    }
    Ok(lost)
}

/// How many of the names f0..fN exist (each charged exactly once if no
/// charge was duplicated).
async fn count_existing(client: &KauriClient, attempted: u64) -> anyhow::Result<u64> {
    let names: Vec<String> = (0..attempted).map(|i| format!("f{i}.bench")).collect();
    let mut existing = 0;
    for chunk in names.chunks(100) {
        let r = client
            .check_domains(CheckRequest {
                registrar: "bench".into(),
                names: chunk.to_vec(),
                read: linearizable(),
                fees: Vec::new(),
            })
            .await?;
        existing += r.results.iter().filter(|c| !c.available).count() as u64;
    }
    Ok(existing)
}
