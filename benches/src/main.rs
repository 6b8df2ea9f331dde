//! `kauri-bench`: a closed-loop load generator over kauri-client, and the
//! etcd side of the side-by-side comparison (`benches/compare-etcd.sh`).
//!
//! - `create` keeps `--concurrency` domain creates (or a `--mix` of
//!   operations) in flight, level after level, and prints throughput and
//!   p50/p99/p999 latency.
//! - `failover` starts its own 3-node cluster, runs a steady create load,
//!   SIGKILLs the leader `--kills` times and reports the write
//!   unavailability window of each failover, lost acknowledged writes and
//!   duplicate charges (both must be 0).
//! - `load` is the scale run: it starts its own 3-node cluster, fills it
//!   with `--domains` domains (and contacts and hosts in a registry's usual
//!   proportions), and reports create throughput empty vs full, disk per
//!   domain, resident memory per node, snapshot build/install and recovery
//!   time of a wiped follower, and cold restart time, against the targets
//!   for 1 M domains.
//! - `etcd put` and `etcd failover` do the same to etcd, through the same
//!   driver and procedure (built with `--features etcd`).
//! - `report` renders the Kauri vs etcd table from the JSON results.
//! - `epp` drives the same closed loop through kauri-gateway in EPP
//!   (creates, checks, infos, idle sessions), beside `create` on the same
//!   cluster (`benches/compare-epp.sh`).

mod create;
mod driver;
mod epp;
#[cfg(feature = "etcd")]
mod etcd;
mod failover;
mod load;
mod report;
mod stages;

use clap::{Parser, Subcommand};

/// Load generator for a Kauri cluster, and its comparison with etcd.
#[derive(Debug, Parser)]
#[command(name = "kauri-bench", version)]
struct Args {
    /// Kauri cluster endpoints, HOST:PORT,...
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
    /// Domain creates (or a mix of operations): throughput and latency.
    Create(create::CreateArgs),
    /// Leader SIGKILLs under a steady write load (starts its own cluster).
    Failover(failover::FailoverArgs),
    /// The scale run: fill a fresh cluster with N domains and measure disk,
    /// memory, snapshot, restart and throughput at that size.
    Load(load::ScaleArgs),
    /// The same load and failover procedure against etcd.
    #[cfg(feature = "etcd")]
    Etcd(etcd::EtcdArgs),
    /// The Kauri vs etcd table of a results directory (markdown).
    Report(report::ReportArgs),
    /// Load through the EPP gateway (kauri-gateway), and its fixtures.
    Epp(epp::EppArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Cmd::Create(c) => create::run(&args.endpoints, c).await,
        Cmd::Failover(f) => failover::run(f).await,
        Cmd::Load(l) => load::run(l).await,
        #[cfg(feature = "etcd")]
        Cmd::Etcd(e) => etcd::run(e).await,
        Cmd::Report(r) => report::run(r),
        Cmd::Epp(e) => epp::run(&args.endpoints, e).await,
    }
}
