//! `kauri-bench etcd`: the etcd side of the comparison, measured with the
//! same closed-loop driver and the same failover procedure as Kauri.
//!
//! - `put`: puts of unique keys with a fixed-size value (256 bytes by
//!   default, about the size of a Kauri create proposal), closed loop.
//! - `failover`: a local 3-member cluster, steady puts, the leader SIGKILLed
//!   `--kills` times; every acknowledged key must exist afterwards.
//! - `settings`: etcd's flags for the comparison and why, as markdown.

mod cluster;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use etcd_client::{Client, ConnectOptions, GetOptions};
use rand::Rng;

pub use cluster::{EtcdCluster, TUNING};

use crate::driver::{LoadArgs, OpOutcome};
use crate::failover::{print_result, run_procedure, LeaderKill, ProcedureArgs};

/// How long the local cluster may take to elect its first leader.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// Overall deadline of one put in the failover run, retries included (the
/// same as kauri-client's default).
const PUT_DEADLINE: Duration = Duration::from_secs(30);
/// Ids per range read when checking the acknowledged keys.
const CHECK_CHUNK: u64 = 10_000;

/// Options of `kauri-bench etcd`.
#[derive(Debug, clap::Args)]
pub struct EtcdArgs {
    #[command(subcommand)]
    command: EtcdCmd,
}

#[derive(Debug, clap::Subcommand)]
enum EtcdCmd {
    /// Puts of unique keys: throughput and latency (closed loop, like `create`).
    Put(PutArgs),
    /// Leader SIGKILLs under a steady put load (starts its own cluster).
    Failover(FailoverArgs),
    /// etcd's settings for the comparison and the reason for each (markdown).
    Settings,
}

/// Where etcd comes from.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The etcd binary for local clusters (Debian's etcd-server package).
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,
    /// Bytes of each value (keys are unique, about 30 bytes).
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// An extra etcd flag for every member of a local cluster, after the
    /// tuned ones (repeat for more), e.g. --etcd-arg=--election-timeout=250.
    #[arg(long = "etcd-arg", allow_hyphen_values = true)]
    etcd_args: Vec<String>,
    /// Run the local cluster over mutual TLS, between members and to
    /// clients, as `kauri-bench create --tls` runs Kauri's: https URLs,
    /// certificates of a development CA made for the run (--cert-file,
    /// --key-file, --trusted-ca-file and their --peer-* twins), each side
    /// verifying the other's (--client-cert-auth, --peer-client-cert-auth).
    #[arg(long)]
    tls: bool,
}

/// Which members the put load talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// Only the leader, as kauri-client does: no forwarding hop.
    Leader,
    /// All members, balanced by the client; followers forward to the leader.
    All,
}

#[derive(Debug, clap::Args)]
struct PutArgs {
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// Start a fresh 3-member cluster for this run (data under $TMPDIR)
    /// instead of using --etcd-endpoints.
    #[arg(long)]
    local_cluster: bool,
    /// Endpoints of a running etcd cluster.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379"
    )]
    etcd_endpoints: Vec<String>,
    /// Members to send the puts to.
    #[arg(long, value_enum, default_value_t = Target::Leader)]
    target: Target,
}

#[derive(Debug, clap::Args)]
struct FailoverArgs {
    #[command(flatten)]
    procedure: ProcedureArgs,
    #[command(flatten)]
    server: ServerArgs,
    /// Timeout of one put attempt before the writer retries it. A put that
    /// a follower forwarded to the killed leader is never answered; 500 ms
    /// gave etcd its shortest windows (of 2000, 1000 and 500 tried).
    #[arg(long, default_value_t = 500)]
    attempt_timeout_ms: u64,
    /// Pause before retrying a failed put (kauri-client's default is 100 ms).
    #[arg(long, default_value_t = 100)]
    retry_backoff_ms: u64,
}

/// Runs `kauri-bench etcd ...`.
pub async fn run(args: EtcdArgs) -> anyhow::Result<()> {
    match args.command {
        EtcdCmd::Put(a) => put(a).await,
        EtcdCmd::Failover(a) => failover(a).await,
        EtcdCmd::Settings => {
            println!("| flag | value | why |\n|---|---|---|");
            for (flag, value, why) in TUNING {
                println!("| `{flag}` | `{value}` | {why} |");
            }
            Ok(())
        }
    }
}

/// Starts a local cluster and prints how.
async fn start_local(server: &ServerArgs) -> anyhow::Result<EtcdCluster> {
    if !server.etcd_bin.exists() {
        bail!(
            "{} not found: apt-get install etcd-server, or pass --etcd-bin",
            server.etcd_bin.display()
        );
    }
    let mut cluster = EtcdCluster::start(&server.etcd_bin, 3, &server.etcd_args, server.tls)?;
    for id in 1..=3 {
        println!("etcd: {}", cluster.command_line(id).join(" "));
    }
    let leader = cluster.leader(STARTUP_DEADLINE).await?;
    println!("etcd: leader is member {leader}");
    Ok(cluster)
}

/// The client URL of the member that leads, asking each endpoint.
async fn leader_endpoint(endpoints: &[String], options: &ConnectOptions) -> anyhow::Result<String> {
    let mut members = Vec::new();
    let mut leader = 0;
    for url in endpoints {
        let mut client = Client::connect([url], Some(options.clone())).await?;
        let status = client.status().await?;
        let own = status.header().map(|h| h.member_id()).unwrap_or_default();
        members.push((own, url.clone()));
        if status.leader() != 0 {
            leader = status.leader();
        }
    }
    members
        .into_iter()
        .find(|(own, _)| *own == leader)
        .map(|(_, url)| url)
        .context("no member of --etcd-endpoints is the leader")
}

/// A value of `n` printable bytes (etcd stores values as given; nothing
/// compresses them).
fn value_of(n: usize) -> Vec<u8> {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| rng.gen_range(b'a'..=b'z')).collect()
}

async fn put(args: PutArgs) -> anyhow::Result<()> {
    if args.server.tls && !args.local_cluster {
        bail!("--tls makes the certificates of a --local-cluster; it cannot be used with --etcd-endpoints");
    }
    let cluster = if args.local_cluster {
        Some(start_local(&args.server).await?)
    } else {
        None
    };
    let (endpoints, options) = match &cluster {
        Some(c) => (c.endpoints(), c.connect_options().clone()),
        None => (args.etcd_endpoints.clone(), ConnectOptions::new()),
    };
    let targets = match args.target {
        Target::Leader => vec![leader_endpoint(&endpoints, &options).await?],
        Target::All => endpoints,
    };
    println!("etcd: putting to {}", targets.join(","));
    let client = Client::connect(&targets, Some(options)).await?;
    let value = value_of(args.server.value_bytes);
    let run = format!("{:x}", rand::thread_rng().gen::<u32>());
    let op = move |id: u64| {
        let (mut client, value) = (client.clone(), value.clone());
        let key = format!("bench/{run}/{id:012}");
        async move { OpOutcome::new("put", client.put(key, value, None).await.map(drop)) }
    };
    args.load.run("etcd", "put", op).await?;
    drop(cluster);
    Ok(())
}

impl LeaderKill for EtcdCluster {
    async fn leader(&mut self) -> anyhow::Result<u64> {
        EtcdCluster::leader(self, PUT_DEADLINE).await
    }

    fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        EtcdCluster::kill(self, id);
        Ok(())
    }

    fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.spawn(id)
    }
}

fn failover_key(id: u64) -> String {
    format!("f/{id:012}")
}

async fn failover(args: FailoverArgs) -> anyhow::Result<()> {
    let mut cluster = start_local(&args.server).await?;
    // Balanced over all members, as etcd's own clients are; with
    // require-leader a member that has lost its leader fails the put at
    // once instead of holding it.
    let options = cluster
        .connect_options()
        .clone()
        .with_require_leader(true)
        .with_connect_timeout(Duration::from_millis(500));
    let client = Client::connect(cluster.endpoints(), Some(options)).await?;
    let value = value_of(args.server.value_bytes);
    let attempt_timeout = Duration::from_millis(args.attempt_timeout_ms);
    let backoff = Duration::from_millis(args.retry_backoff_ms);
    println!(
        "etcd writers: balanced over all members, require-leader, attempt timeout {} ms, \
         retry backoff {} ms, deadline {} s",
        args.attempt_timeout_ms,
        args.retry_backoff_ms,
        PUT_DEADLINE.as_secs()
    );
    let writer = client.clone();
    let write = move |id: u64| {
        let (mut client, value) = (writer.clone(), value.clone());
        async move {
            let key = failover_key(id);
            let deadline = Instant::now() + PUT_DEADLINE;
            loop {
                let attempt = tokio::time::timeout(
                    attempt_timeout,
                    client.put(key.clone(), value.clone(), None),
                )
                .await;
                let error = match attempt {
                    Ok(Ok(_)) => return Ok(key),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "attempt timed out".to_string(),
                };
                if Instant::now() + backoff > deadline {
                    return Err(error);
                }
                tokio::time::sleep(backoff).await;
            }
        }
    };
    let observed = run_procedure(&mut cluster, &args.procedure, write).await?;

    // Every key the writers tried, with its version: 1 = written once.
    let mut versions = std::collections::HashMap::new();
    let mut checker = client.clone();
    let mut start = 0;
    while start < observed.attempted {
        let end = (start + CHECK_CHUNK).min(observed.attempted);
        let options = GetOptions::new()
            .with_range(failover_key(end))
            .with_keys_only();
        let response = checker.get(failover_key(start), Some(options)).await?;
        for kv in response.kvs() {
            versions.insert(kv.key().to_vec(), kv.version());
        }
        start = end;
    }
    let lost = observed
        .acknowledged
        .iter()
        .filter(|k| !versions.contains_key(k.as_bytes()))
        .count() as u64;
    let duplicates = versions.values().map(|v| (v - 1).max(0) as u64).sum();
    let result = observed.result("etcd", args.procedure.concurrency, lost, duplicates);
    print_result(&result);
    if let Some(path) = &args.procedure.json {
        crate::report::write_json(path, &result)?;
    }
    drop(cluster);
    if lost > 0 {
        bail!("violation: {lost} acknowledged puts lost");
    }
    Ok(())
}
