//! `kauri-bench failover`: how long writes stall when the leader dies, and
//! proof that nothing acknowledged is lost or charged twice.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kauri_chaos_tests::TestCluster;
use kauri_client::proto::*;
use kauri_client::{linearizable, meta, KauriClient};

/// Options of the failover benchmark.
#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Leader kills.
    #[arg(long, default_value_t = 5)]
    kills: u32,
    /// Creates in flight during the run.
    #[arg(long, default_value_t = 8)]
    concurrency: u64,
    /// Steady load before each kill, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
    /// The kauri-node binary (default: next to kauri-bench).
    #[arg(long)]
    node_bin: Option<PathBuf>,
}

/// One acknowledged create: when it was sent, when it completed, and what
/// it was.
struct Ack {
    started: Instant,
    done: Instant,
    name: String,
}

pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let bin = match args.node_bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("kauri-node"),
    };
    if !bin.exists() {
        bail!(
            "{} not found; build it (cargo build -p kauri-node) or pass --node-bin",
            bin.display()
        );
    }
    let mut cluster = TestCluster::start(&bin, 3, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let client = cluster.client();
    crate::fixture(&client, "bench", 1_000_000)
        .await
        .context("fixture")?;
    let price = 100i64;

    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, acks, stop, next, failures) = (
            client.clone(),
            acks.clone(),
            stop.clone(),
            next.clone(),
            failures.clone(),
        );
        workers.spawn(async move {
            // Bounded: stops when told, and never past 1,000,000 creates.
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 1_000_000 {
                    break;
                }
                let name = format!("f{i}.bench");
                let request = CreateDomainRequest {
                    meta: Some(meta("bench")),
                    name: name.clone(),
                    period_years: 1,
                    registrant: "bench-owner".into(),
                    ..Default::default()
                };
                let started = Instant::now();
                match client.create_domain(request).await {
                    Ok(_) => acks.lock().unwrap_or_else(|p| p.into_inner()).push(Ack {
                        started,
                        done: Instant::now(),
                        name,
                    }),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }

    let mut windows = Vec::new();
    for k in 0..args.kills {
        tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        let killed_at = Instant::now();
        cluster.kill(leader);
        // The window: last acknowledgement before the kill to the first
        // acknowledgement of a request sent after it (replies the dead leader
        // had already written to its sockets don't count).
        let first_after = loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let acks = acks.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(a) = acks
                .iter()
                .filter(|a| a.started > killed_at)
                .map(|a| a.done)
                .min()
            {
                break a;
            }
            if killed_at.elapsed() > Duration::from_secs(30) {
                bail!("no write succeeded within 30 s of killing node {leader}");
            }
        };
        let last_before = acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|a| a.done <= killed_at)
            .map(|a| a.done)
            .unwrap_or(killed_at);
        let window = first_after - last_before;
        println!(
            "kill {}: node {leader}, writes unavailable for {:.0} ms",
            k + 1,
            window.as_secs_f64() * 1e3
        );
        windows.push(window);
        cluster.spawn(leader);
    }
    stop.store(true, Ordering::Relaxed);
    workers.join_all().await;

    let acked: Vec<String> = acks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|a| a.name.clone())
        .collect();
    let lost = count_lost(&client, &acked).await?;
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
    let created = count_existing(&client, next.load(Ordering::Relaxed)).await?;
    windows.sort();
    println!();
    println!(
        "failovers: {}, acknowledged creates: {}, failed calls: {}",
        windows.len(),
        acked.len(),
        failures.load(Ordering::Relaxed)
    );
    if let (Some(min), Some(max)) = (windows.first(), windows.last()) {
        println!(
            "write unavailability: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            min.as_secs_f64() * 1e3,
            crate::percentile(&windows, 0.5).as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    println!("lost acknowledged writes: {lost}");
    println!(
        "duplicate charges: {} (charged {} for {} domains that exist)",
        (charges / price) - created as i64,
        charges,
        created
    );
    if lost > 0 || charges != created as i64 * price {
        bail!("violation: lost or duplicated writes");
    }
    Ok(())
}

/// Acknowledged names that a linearizable read cannot find.
async fn count_lost(client: &KauriClient, acked: &[String]) -> anyhow::Result<usize> {
    let mut lost = 0;
    for chunk in acked.chunks(100) {
        let r = client
            .check_domains(CheckRequest {
                registrar: "bench".into(),
                names: chunk.to_vec(),
                read: linearizable(),
            })
            .await?;
        lost += r.results.iter().filter(|c| c.available).count();
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
            })
            .await?;
        existing += r.results.iter().filter(|c| !c.available).count() as u64;
    }
    Ok(existing)
}
