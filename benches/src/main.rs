//! `kauri-bench`: a closed-loop load generator over kauri-client.
//!
//! - `create` sets up a TLD, a funded registrar and a contact (once; reruns
//!   reuse them), then keeps `--concurrency` domain creates in flight for
//!   `--count` domains and prints throughput and latency percentiles.
//! - `failover` starts its own 3-node cluster, runs a steady create load,
//!   SIGKILLs the leader `--kills` times and reports the write
//!   unavailability window of each failover, lost acknowledged writes and
//!   duplicate charges (both must be 0).

mod failover;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use kauri_client::proto::*;
use kauri_client::{meta, ClientConfig, ClientError, KauriClient};

/// Load generator for a Kauri cluster.
#[derive(Debug, Parser)]
#[command(name = "kauri-bench", version)]
struct Args {
    /// Cluster endpoints, HOST:PORT,...
    #[arg(
        long,
        env = "KAURI_ENDPOINTS",
        default_value = "127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50053",
        value_delimiter = ','
    )]
    endpoints: Vec<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Domain creates: throughput and latency.
    Create {
        /// Domains to create (bounded: the run stops after this many).
        #[arg(long, default_value_t = 2000)]
        count: u64,
        /// Requests in flight.
        #[arg(long, default_value_t = 16)]
        concurrency: u64,
        /// Stop early after this many seconds.
        #[arg(long, default_value_t = 120)]
        max_seconds: u64,
        /// TLD to create the domains under (created if missing).
        #[arg(long, default_value = "bench")]
        tld: String,
    },
    /// Leader SIGKILLs under a steady write load (starts its own cluster).
    Failover(failover::FailoverArgs),
}

pub(crate) fn exists(e: &ClientError) -> bool {
    e.reason == Reason::ObjectExists
}

pub(crate) async fn fixture(client: &KauriClient, tld: &str, count: u64) -> anyhow::Result<()> {
    let policy = TldPolicy {
        min_period_years: 1,
        max_period_years: 10,
        create_price_minor_units: 100,
        renew_price_minor_units: 100,
        currency: "USD".into(),
        min_label_length: 1,
        max_label_length: 63,
        allow_idn: true,
    };
    match client
        .create_tld(CreateTldRequest {
            meta: Some(meta("bench")),
            name: tld.into(),
            policy: Some(policy),
        })
        .await
    {
        Ok(_) => {}
        Err(e) if exists(&e) => {}
        Err(e) => return Err(e).context("creating the TLD"),
    }
    let registrar = CreateRegistrarRequest {
        meta: Some(meta("bench")),
        id: "bench".into(),
        name: "Benchmark Registrar".into(),
        password: "bench-password".into(),
        currency: "USD".into(),
    };
    match client.create_registrar(registrar).await {
        Ok(_) => {}
        Err(e) if exists(&e) => {}
        Err(e) => return Err(e).context("creating the registrar"),
    }
    client
        .deposit_funds(DepositFundsRequest {
            meta: Some(meta("bench")),
            registrar: "bench".into(),
            amount_minor_units: (count as i64 + 1) * 100,
            reference: "benchmark".into(),
        })
        .await
        .context("depositing funds")?;
    let contact = CreateContactRequest {
        meta: Some(meta("bench")),
        id: "bench-owner".into(),
        fields: Some(ContactFields {
            postal_info: vec![PostalInfo {
                r#type: "int".into(),
                name: "Bench Owner".into(),
                address: Some(PostalAddress {
                    country_code: "NZ".into(),
                    city: "Wellington".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            email: "owner@example.nz".into(),
            ..Default::default()
        }),
        auth_info: String::new(),
    };
    match client.create_contact(contact).await {
        Ok(_) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) => Err(e).context("creating the contact"),
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (count, concurrency, max_seconds, tld) = match args.command {
        Cmd::Create {
            count,
            concurrency,
            max_seconds,
            tld,
        } => (count, concurrency, max_seconds, tld),
        Cmd::Failover(f) => return failover::run(f).await,
    };
    let client = KauriClient::new(&args.endpoints, ClientConfig::default())?;
    fixture(&client, &tld, count).await?;
    let run = format!(
        "{:x}",
        (rand_seed() ^ std::process::id() as u128) & 0xffff_ffff_ffff
    );
    let next = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(max_seconds);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let next = next.clone();
        let tld = tld.clone();
        let run = run.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || Instant::now() > stop_at {
                    break;
                }
                let request = CreateDomainRequest {
                    meta: Some(meta("bench")),
                    name: format!("b{run}-{i}.{tld}"),
                    period_years: 1,
                    registrant: "bench-owner".into(),
                    ..Default::default()
                };
                let t = Instant::now();
                match client.create_domain(request).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        eprintln!("create failed: {e}");
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (l, e) in workers.join_all().await {
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "creates: {} ok, {errors} errors in {:.2} s, concurrency {concurrency}",
        latencies.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "throughput: {:.0} creates/s",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 0.999).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Ok(())
}

/// A per-run value so repeated runs create fresh names.
fn rand_seed() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
