//! `kauri-bench load`: the scale run. It starts a fresh 3-node cluster of its
//! own, fills it through the API with `--domains` domains and the contacts and
//! hosts a registry holds beside them, and measures what grows with size:
//!
//! - create throughput on the empty cluster and again once it is full (it
//!   must not fall with size);
//! - disk per domain on every node, and on one node again after a full
//!   offline compaction of its database;
//! - resident memory of every node (`VmRSS`, and the peak `VmHWM`);
//! - cold restart: a follower SIGKILLed and started on its data, timed until
//!   it serves a bounded-stale read of a known name at the index it had;
//! - snapshot: a follower SIGKILLed, its data dir wiped and started with
//!   `--recover`, timed until it has applied what the leader had. How long
//!   the snapshot took to build and to install comes from the nodes' logs
//!   (`built snapshot` / `installed snapshot` lines).
//!
//! The summary prints each value next to its target with PASS or MISS; the
//! targets are for 1,000,000 domains and never fail the command.
//!
//! ## What a full registry holds
//!
//! For `--domains N` the fill creates, over `--registrars` registrars (8):
//!
//! - **N/2 contacts** (`--contacts-per-domain`). Each domain names a
//!   registrant, an admin and a tech contact from its registrar's own pool,
//!   so a contact is referenced by about six domains: registrars reuse their
//!   role accounts and repeat registrants across a customer's names, but most
//!   registrants hold one or two domains.
//! - **N/10 hosts** (`--hosts-per-domain`) in ns1/ns2 pairs, one pair per
//!   DNS provider, and every domain delegated to one provider's pair. One
//!   provider in four runs its name servers in-bailiwick: under a domain of
//!   its own in the TLD, with glue (an IPv4 address on both, IPv6 on ns1).
//!   Those provider domains count towards N. The rest are out-of-bailiwick
//!   names (`ns1.hosterK.net`) without glue. This follows the usual shape of
//!   a ccTLD zone: far fewer name servers than domains, mostly third-party
//!   DNS hosting, a minority of self-hosted names with glue.

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kauri_chaos_tests::TestCluster;
use kauri_client::proto::*;
use kauri_client::{bounded_stale, meta, ClientConfig, ClientError, KauriClient};
use serde::Serialize;

use crate::driver::{closed_loop, print_load, Bounds, LoadArgs, OpOutcome};
use crate::report::LoadResult;

/// The TLD everything is registered under (the one [`crate::create::fixture`]
/// makes).
const TLD: &str = "bench";
/// Price of a one-year create in the bench TLD (see [`crate::create::fixture`]).
const CREATE_PRICE: i64 = 100;
/// Fewest domains a run accepts: below this the proportions have no meaning.
const MIN_DOMAINS: u64 = 100;
/// How often the fill prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for a leader or a caught-up replica between phases.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(120);
/// Longest wait for a restarted node to serve reads.
const RESTART_DEADLINE: Duration = Duration::from_secs(300);
/// Longest wait for a wiped follower to catch up.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(1800);
/// Warm-up before each throughput window, unmeasured.
const PROBE_WARMUP_SECS: u64 = 2;
/// One in this many DNS providers runs in-bailiwick name servers with glue.
const IN_BAILIWICK_EVERY: u64 = 4;

/// Targets at 1,000,000 domains (issue text); printed, never enforced.
mod target {
    /// Disk per domain on one node after compaction, bytes.
    pub const DISK_PER_DOMAIN_BYTES: f64 = 1024.0;
    /// Resident memory per node, MiB.
    pub const RSS_MIB: f64 = 512.0;
    /// A wiped follower back in sync through a snapshot, seconds.
    pub const SNAPSHOT_RECOVERY_SECS: f64 = 60.0;
    /// A restarted node serving reads, seconds.
    pub const COLD_RESTART_SECS: f64 = 5.0;
    /// Create throughput when full over when empty, at least.
    pub const THROUGHPUT_RATIO: f64 = 0.90;
}

/// Options of `kauri-bench load`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Domains to register (contacts and hosts come on top, see
    /// --contacts-per-domain and --hosts-per-domain).
    #[arg(long, default_value_t = 1_000_000)]
    pub domains: u64,
    /// Creates in flight during the fill.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u64,
    /// Registrars the domains, contacts and hosts are spread over.
    #[arg(long, default_value_t = 8)]
    pub registrars: u64,
    /// Contacts created per domain.
    #[arg(long, default_value_t = 0.5)]
    pub contacts_per_domain: f64,
    /// Hosts (name servers) created per domain.
    #[arg(long, default_value_t = 0.1)]
    pub hosts_per_domain: f64,
    /// Stop filling after this many seconds, full or not (the measurements
    /// then run at the size reached).
    #[arg(long, default_value_t = 4 * 3600)]
    pub max_fill_secs: u64,
    /// Length of each create-throughput window, before and after the fill.
    #[arg(long, default_value_t = 20)]
    pub probe_secs: u64,
    /// Concurrency levels of the create-throughput windows.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub probe_concurrency: Vec<u64>,
    /// Quiet time after the fill (for flushes and compactions) before
    /// anything is measured, in seconds.
    #[arg(long, default_value_t = 15)]
    pub settle_secs: u64,
    /// Directory for the cluster's data dirs and logs [default: $TMPDIR].
    /// Removed at the end.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Skip the final state-digest comparison (a full scan on every node).
    #[arg(long)]
    pub skip_digests: bool,
    /// Write the results as JSON here [default:
    /// benches/results/load-DOMAINS-TIME.json].
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The kauri-node binary (default: next to kauri-bench).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// An extra kauri-node flag for every node (repeat for more).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
}

/// How many objects of each kind the fill creates, and their names: a pure
/// function of the counts, so every run of the same size holds the same
/// registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Domains in all, provider domains included.
    pub domains: u64,
    /// Contacts.
    pub contacts: u64,
    /// Hosts, two per DNS provider.
    pub hosts: u64,
    /// Hosts in-bailiwick, with glue addresses.
    pub glue_hosts: u64,
    /// Registrars.
    pub registrars: u64,
}

/// A host to create: its name, sponsor and glue.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// Host name.
    pub name: String,
    /// Sponsoring registrar.
    pub registrar: String,
    /// Glue addresses (in-bailiwick hosts only).
    pub addresses: Vec<String>,
}

/// A domain to create: name, sponsor, contacts and name servers.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSpec {
    /// Domain name.
    pub name: String,
    /// Sponsoring registrar.
    pub registrar: String,
    /// Registrant, admin and tech contact ids.
    pub contacts: [String; 3],
    /// Name servers (empty for provider domains).
    pub nameservers: Vec<String>,
}

impl Plan {
    /// The plan for `domains` domains over `registrars` registrars, with
    /// `contacts_per_domain` and `hosts_per_domain` (rounded; hosts to an
    /// even number, at least one pair; at least one contact per registrar).
    pub fn new(
        domains: u64,
        registrars: u64,
        contacts_per_domain: f64,
        hosts_per_domain: f64,
    ) -> Plan {
        let registrars = registrars.max(1);
        let contacts = ((domains as f64 * contacts_per_domain).round() as u64).max(registrars);
        let providers = ((domains as f64 * hosts_per_domain / 2.0).round() as u64).max(1);
        let in_bailiwick = providers.div_ceil(IN_BAILIWICK_EVERY);
        Plan {
            domains,
            contacts,
            hosts: providers * 2,
            glue_hosts: in_bailiwick * 2,
            registrars,
        }
    }

    /// DNS providers, each with an ns1/ns2 pair.
    fn providers(&self) -> u64 {
        self.hosts / 2
    }

    /// Providers with in-bailiwick name servers (and a domain of their own).
    pub fn provider_domains(&self) -> u64 {
        self.glue_hosts / 2
    }

    /// Domains delegated to a provider's name servers.
    pub fn customer_domains(&self) -> u64 {
        self.domains.saturating_sub(self.provider_domains())
    }

    /// Id of registrar `r`.
    pub fn registrar(r: u64) -> String {
        format!("scale{r}")
    }

    /// Domains, provider domains included, that registrar `r` sponsors (at
    /// most), for funding it.
    pub fn domains_of_registrar(&self) -> u64 {
        self.domains.div_ceil(self.registrars) + 1
    }

    /// Id of contact `i`, sponsored by registrar `i % registrars`.
    pub fn contact(&self, i: u64) -> (String, String) {
        (format!("sc{i}"), Self::registrar(i % self.registrars))
    }

    /// A contact of registrar `r`'s pool, chosen by `seed`.
    fn pick_contact(&self, r: u64, seed: u64) -> String {
        // Contacts r, r + R, r + 2R, ... below `contacts` (r < R <= contacts).
        let pool = (self.contacts - r).div_ceil(self.registrars);
        format!("sc{}", r + self.registrars * (mix(seed) % pool))
    }

    /// The three contacts (registrant, admin, tech) of a domain numbered
    /// `n` and sponsored by registrar `r`.
    fn contacts_for(&self, r: u64, n: u64) -> [String; 3] {
        [0, 1, 2].map(|role| self.pick_contact(r, n * 3 + role))
    }

    /// The in-bailiwick provider domain `k` (0-based among them): the
    /// domain its name servers live under.
    pub fn provider_domain(&self, k: u64) -> DomainSpec {
        let provider = k * IN_BAILIWICK_EVERY;
        let r = provider % self.registrars;
        DomainSpec {
            name: format!("dns{provider}.{TLD}"),
            registrar: Self::registrar(r),
            contacts: self.contacts_for(r, u64::MAX / 4 - provider),
            nameservers: Vec::new(),
        }
    }

    /// Host `j`: ns1 (even j) or ns2 (odd j) of provider `j / 2`.
    pub fn host(&self, j: u64) -> HostSpec {
        let provider = j / 2;
        let label = if j.is_multiple_of(2) { "ns1" } else { "ns2" };
        let registrar = Self::registrar(provider % self.registrars);
        if provider.is_multiple_of(IN_BAILIWICK_EVERY) {
            let mut addresses = vec![ipv4(j)];
            if j.is_multiple_of(2) {
                addresses.push(ipv6(j));
            }
            HostSpec {
                name: format!("{label}.dns{provider}.{TLD}"),
                registrar,
                addresses,
            }
        } else {
            HostSpec {
                name: format!("{label}.hoster{provider}.net"),
                registrar,
                addresses: Vec::new(),
            }
        }
    }

    /// Customer domain `d`: sponsored by registrar `d % registrars`, its
    /// contacts from that registrar's pool, delegated to one provider's pair.
    pub fn customer_domain(&self, d: u64) -> DomainSpec {
        let r = d % self.registrars;
        let provider = mix(d ^ 0x5eed) % self.providers();
        DomainSpec {
            name: Self::customer_name(d),
            registrar: Self::registrar(r),
            contacts: self.contacts_for(r, d),
            nameservers: vec![
                self.host(provider * 2).name,
                self.host(provider * 2 + 1).name,
            ],
        }
    }

    /// Name of customer domain `d`.
    pub fn customer_name(d: u64) -> String {
        format!("site{d:07}.{TLD}")
    }
}

/// splitmix64: spreads consecutive numbers over the whole range, so picks
/// from a pool look random but are the same on every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An IPv4 glue address for host `j`, in the benchmarking range 198.18.0.0/15.
fn ipv4(j: u64) -> String {
    let a = j % (1 << 17);
    format!("198.{}.{}.{}", 18 + (a >> 16), (a >> 8) & 0xff, a & 0xff)
}

/// An IPv6 glue address for host `j`, in the documentation range 2001:db8::/32.
fn ipv6(j: u64) -> String {
    format!("2001:db8::{:x}:{:x}", (j >> 16) & 0xffff, j & 0xffff)
}

/// Successes and failures of the fill so far, for the progress lines.
#[derive(Default)]
struct Progress {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// One phase of the fill.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// What the phase created.
    pub kind: String,
    /// Objects the plan asked for.
    pub planned: u64,
    /// Objects created (or found to exist already after a retry).
    pub ok: u64,
    /// Creates that failed.
    pub errors: u64,
    /// Wall-clock length.
    pub secs: f64,
}

/// Bytes a directory takes on disk (allocated blocks, as `du` counts), by
/// kind of file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskUsage {
    /// Everything.
    pub total_bytes: u64,
    /// RocksDB table files (`*.sst`): the state and the Raft log.
    pub sst_bytes: u64,
    /// RocksDB write-ahead log (`db/*.log`).
    pub wal_bytes: u64,
    /// What the current snapshot under `snapshots/` holds beyond the
    /// table files it shares with the database.
    pub snapshot_bytes: u64,
    /// Everything else: MANIFEST, OPTIONS, RocksDB's info LOG files.
    pub other_bytes: u64,
}

/// Disk use of one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeDisk {
    /// Node id.
    pub node: u64,
    /// Its data dir.
    pub usage: DiskUsage,
    /// `usage.total_bytes` / domains stored.
    pub bytes_per_domain: f64,
}

/// Memory of one node, from `/proc/PID/status`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeMemory {
    /// Node id.
    pub node: u64,
    /// Resident set now, MiB.
    pub rss_mib: f64,
    /// Peak resident set since the process started, MiB.
    pub hwm_mib: f64,
}

/// What a snapshot line in a node's log says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SnapshotLog {
    /// Last log index the snapshot covers.
    pub index: u64,
    /// Key/value records in it (installs).
    pub records: u64,
    /// Files of the checkpoint (builds).
    pub files: u64,
    /// File size (builds) or write-batch size (installs), bytes.
    pub bytes: u64,
    /// Time the build or install took.
    pub elapsed_ms: u64,
}

/// The cold restart of a follower on its own data.
#[derive(Debug, Clone, Serialize)]
pub struct ColdRestart {
    /// The node restarted.
    pub node: u64,
    /// Its applied index before it was killed.
    pub applied_before: u64,
    /// From spawn until it answered `Cluster.Status`.
    pub status_ms: f64,
    /// From spawn until it served a bounded-stale read of a known name at
    /// an applied index at least `applied_before`.
    pub serving_ms: f64,
}

/// The offline compaction of one node's database.
#[derive(Debug, Clone, Serialize)]
pub struct Compaction {
    /// The node compacted (stopped meanwhile).
    pub node: u64,
    /// Its data dir once stopped, before compacting.
    pub before: DiskUsage,
    /// After compacting every column family; the snapshot (a checkpoint)
    /// still holds the table files from before.
    pub after: DiskUsage,
    /// Restarted and asked for a snapshot, which replaces the old one and
    /// lets go of the pre-compaction files: the steady state.
    pub after_snapshot: DiskUsage,
    /// `after_snapshot.total_bytes` / domains stored.
    pub bytes_per_domain: f64,
    /// How long the compaction took.
    pub secs: f64,
}

/// A wiped follower brought back by a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRecovery {
    /// The wiped node.
    pub node: u64,
    /// The leader at the time.
    pub leader: u64,
    /// The leader's applied index when the follower was wiped.
    pub target_index: u64,
    /// From spawn until it answered `Cluster.Status`.
    pub status_ms: f64,
    /// From spawn until it had applied `target_index`.
    pub in_sync_ms: f64,
    /// The install, as the recovered node logged it.
    pub install: Option<SnapshotLog>,
    /// The leader's last snapshot build, as it logged it.
    pub last_build: Option<SnapshotLog>,
    /// The slowest build any node logged.
    pub slowest_build_ms: u64,
    /// Snapshot builds logged by all nodes over the run.
    pub builds: usize,
    /// Memory of the recovered node once in sync (its peak includes the
    /// install).
    pub memory: Option<NodeMemory>,
}

/// One measured value next to its target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    /// What was measured.
    pub what: String,
    /// The value, in `unit`.
    pub value: f64,
    /// The target, in `unit`.
    pub target: f64,
    /// Unit of both.
    pub unit: String,
    /// Whether the value meets the target.
    pub pass: bool,
}

/// Everything one scale run measured (the JSON file).
#[derive(Debug, Clone, Serialize)]
pub struct ScaleResult {
    /// `--domains`.
    pub domains_asked: u64,
    /// What the fill was to create.
    pub plan: Plan,
    /// The fill, phase by phase.
    pub fill: Vec<PhaseResult>,
    /// Seconds the whole fill took.
    pub fill_secs: f64,
    /// Domains in the registry at the end: filled and created by the
    /// throughput windows.
    pub domains_stored: u64,
    /// Create throughput on the empty cluster, per concurrency level.
    pub throughput_empty: Vec<LoadResult>,
    /// The same windows once full.
    pub throughput_full: Vec<LoadResult>,
    /// Share of the machine's CPU that processes other than the cluster and
    /// this benchmark used during the empty windows (a noisy machine makes
    /// the throughput ratio meaningless).
    pub foreign_cpu_empty: f64,
    /// The same during the full windows.
    pub foreign_cpu_full: f64,
    /// Disk of every node after the fill, live.
    pub disk: Vec<NodeDisk>,
    /// Memory of every node after the fill.
    pub memory: Vec<NodeMemory>,
    /// A follower killed and started on its data.
    pub cold_restart: Option<ColdRestart>,
    /// A follower's database compacted offline.
    pub compaction: Option<Compaction>,
    /// A follower wiped and recovered by snapshot.
    pub snapshot: Option<SnapshotRecovery>,
    /// Whether every node had the same state digest at the end (None when
    /// skipped or they never met at one index).
    pub digests_agree: Option<bool>,
    /// The summary table.
    pub targets: Vec<TargetRow>,
}

/// `kauri-bench load`.
pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    if args.domains < MIN_DOMAINS {
        bail!("--domains must be at least {MIN_DOMAINS}");
    }
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        // The harness makes its cluster directory with tempfile.
        if tempfile::env::override_temp_dir(&dir).is_err() {
            bail!("the temporary directory was already chosen");
        }
    }
    let plan = Plan::new(
        args.domains,
        args.registrars,
        args.contacts_per_domain,
        args.hosts_per_domain,
    );
    println!(
        "plan: {} domains ({} of DNS providers), {} contacts, {} hosts ({} with glue), \
         {} registrars",
        plan.domains,
        plan.provider_domains(),
        plan.contacts,
        plan.hosts,
        plan.glue_hosts,
        plan.registrars
    );
    let bin = crate::create::node_binary(args.node_bin.clone())?;
    let node_args: Vec<&str> = args.node_args.iter().map(String::as_str).collect();
    let mut cluster = TestCluster::start_plaintext(&bin, 3, &node_args);
    let leader = cluster.wait_for_leader(CLUSTER_DEADLINE).await;
    println!(
        "cluster: 3 nodes (--peers {}), leader node {leader}, data under {}",
        cluster.peers,
        cluster
            .node(1)
            .data_dir
            .parent()
            .unwrap_or(Path::new("?"))
            .display()
    );
    let client = cluster.client();

    // Throughput on the empty cluster.
    let probe = LoadArgs {
        concurrency: args.probe_concurrency.clone(),
        count: None,
        duration_secs: Some(args.probe_secs),
        warmup_secs: PROBE_WARMUP_SECS,
        json: None,
    };
    crate::create::fixture(
        &client,
        &client,
        TLD,
        probe.expected_operations().saturating_mul(2),
    )
    .await
    .context("fixture")?;
    let probe_created = Arc::new(AtomicU64::new(0));
    println!("-- create throughput, empty");
    let cpu = CpuShare::start(&cluster);
    let throughput_empty = probe
        .run("kauri", "create", probe_op(&client, "e", &probe_created))
        .await?;
    let foreign_cpu_empty = cpu.foreign_share(&cluster);

    // The fill.
    let fill_started = Instant::now();
    let fill = fill(&client, &plan, &args).await?;
    let fill_secs = fill_started.elapsed().as_secs_f64();
    let filled_domains: u64 = fill
        .iter()
        .filter(|p| p.kind.ends_with("domains"))
        .map(|p| p.ok)
        .sum();
    println!(
        "fill: done in {fill_secs:.0} s; {filled_domains} domains; settling {} s",
        args.settle_secs
    );
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    cluster.wait_caught_up(CLUSTER_DEADLINE).await;

    // Throughput once full.
    println!("-- create throughput, full");
    let cpu = CpuShare::start(&cluster);
    let throughput_full = probe
        .run("kauri", "create", probe_op(&client, "f", &probe_created))
        .await?;
    let foreign_cpu_full = cpu.foreign_share(&cluster);
    let domains_stored = filled_domains + probe_created.load(Ordering::Relaxed);

    let memory = cluster
        .ids()
        .into_iter()
        .filter_map(|id| node_memory(&cluster, id))
        .collect::<Vec<_>>();
    let disk = cluster
        .ids()
        .into_iter()
        .map(|id| {
            let usage = disk_usage(&cluster.node(id).data_dir);
            NodeDisk {
                node: id,
                bytes_per_domain: usage.total_bytes as f64 / domains_stored.max(1) as f64,
                usage,
            }
        })
        .collect::<Vec<_>>();
    for m in &memory {
        println!(
            "memory: node {}: VmRSS {:.0} MiB, VmHWM {:.0} MiB",
            m.node, m.rss_mib, m.hwm_mib
        );
    }
    for d in &disk {
        print_disk(&format!("disk: node {}", d.node), &d.usage, domains_stored);
    }

    let known = Plan::customer_name(0);
    let cold_restart = cold_restart(&mut cluster, &known).await?;
    let compaction = compact_follower(&mut cluster, domains_stored).await?;
    let snapshot = recover_wiped_follower(&mut cluster).await?;
    let digests_agree = if args.skip_digests {
        None
    } else {
        digests_agree(&cluster).await
    };

    let mut result = ScaleResult {
        domains_asked: args.domains,
        plan,
        fill,
        fill_secs,
        domains_stored,
        throughput_empty,
        throughput_full,
        foreign_cpu_empty,
        foreign_cpu_full,
        disk,
        memory,
        cold_restart: Some(cold_restart),
        compaction: Some(compaction),
        snapshot: Some(snapshot),
        digests_agree,
        targets: Vec::new(),
    };
    result.targets = targets(&result);
    print_summary(&result);
    let path = match args.json {
        Some(p) => p,
        None => {
            let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
            PathBuf::from(format!(
                "benches/results/load-{}-{stamp}.json",
                args.domains
            ))
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    crate::report::write_json(&path, &result)?;
    println!("results: {}", path.display());
    drop(cluster);
    Ok(())
}

/// The throughput window's operation: a plain create by the fixture's
/// registrar, the same before and after the fill, so the ratio shows the
/// effect of size alone. Counts what it created in `created`.
fn probe_op(
    client: &KauriClient,
    tag: &'static str,
    created: &Arc<AtomicU64>,
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = OpOutcome> + Send>> + Clone + Send + 'static
{
    let (client, created) = (client.clone(), created.clone());
    move |id: u64| {
        let (client, created) = (client.clone(), created.clone());
        Box::pin(async move {
            let request = CreateDomainRequest {
                meta: Some(meta("bench")),
                name: format!("probe-{tag}{id}.{TLD}"),
                period_years: 1,
                registrant: "bench-owner".into(),
                ..Default::default()
            };
            let result = client.create_domain(request).await.map(|_| {
                created.fetch_add(1, Ordering::Relaxed);
            });
            OpOutcome::new("create", result)
        })
    }
}

/// Creates and funds the registrars, then the contacts, the provider
/// domains, the hosts and the customer domains, each phase closed-loop at
/// `--concurrency`, printing progress every ten seconds.
async fn fill(
    client: &KauriClient,
    plan: &Plan,
    args: &ScaleArgs,
) -> anyhow::Result<Vec<PhaseResult>> {
    let deadline = Instant::now() + Duration::from_secs(args.max_fill_secs);
    for r in 0..plan.registrars {
        let id = Plan::registrar(r);
        let request = CreateRegistrarRequest {
            meta: Some(meta("bench")),
            id: id.clone(),
            name: format!("Scale Registrar {r}"),
            password: format!("{id}-password"),
            currency: "USD".into(),
        };
        match client.create_registrar(request).await {
            Ok(_) => {}
            Err(e) if crate::create::exists(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("creating registrar {id}")),
        }
        client
            .deposit_funds(DepositFundsRequest {
                meta: Some(meta("bench")),
                registrar: id.clone(),
                amount_minor_units: plan.domains_of_registrar() as i64 * CREATE_PRICE * 2,
                reference: "scale run".into(),
            })
            .await
            .with_context(|| format!("funding registrar {id}"))?;
    }

    let progress = Arc::new(Progress::default());
    let ticker = tokio::spawn(report_progress(progress.clone()));
    let c = args.concurrency.max(1);
    let mut phases = Vec::new();

    let p = plan.clone();
    let cl = client.clone();
    phases.push(
        phase(
            "contacts",
            plan.contacts,
            c,
            deadline,
            &progress,
            move |i| {
                let (id, registrar) = p.contact(i);
                let client = cl.clone();
                async move {
                    client
                        .create_contact(contact_request(i, id, &registrar))
                        .await
                }
            },
        )
        .await,
    );

    let p = plan.clone();
    let cl = client.clone();
    phases.push(
        phase(
            "provider domains",
            plan.provider_domains(),
            c,
            deadline,
            &progress,
            move |k| {
                let spec = p.provider_domain(k);
                let client = cl.clone();
                async move { client.create_domain(domain_request(spec)).await }
            },
        )
        .await,
    );

    let p = plan.clone();
    let cl = client.clone();
    phases.push(
        phase("hosts", plan.hosts, c, deadline, &progress, move |j| {
            let spec = p.host(j);
            let client = cl.clone();
            async move {
                let request = CreateHostRequest {
                    meta: Some(meta(&spec.registrar)),
                    name: spec.name,
                    addresses: spec.addresses,
                };
                client.create_host(request).await
            }
        })
        .await,
    );

    let p = plan.clone();
    let cl = client.clone();
    phases.push(
        phase(
            "customer domains",
            plan.customer_domains(),
            c,
            deadline,
            &progress,
            move |d| {
                let spec = p.customer_domain(d);
                let client = cl.clone();
                async move { client.create_domain(domain_request(spec)).await }
            },
        )
        .await,
    );
    ticker.abort();
    Ok(phases)
}

/// A contact as a registrar's customer record looks: one postal address,
/// a phone number and an e-mail address.
fn contact_request(i: u64, id: String, registrar: &str) -> CreateContactRequest {
    const CITIES: [&str; 4] = ["Wellington", "Auckland", "Christchurch", "Dunedin"];
    CreateContactRequest {
        meta: Some(meta(registrar)),
        fields: Some(ContactFields {
            postal_info: vec![PostalInfo {
                r#type: "int".into(),
                name: format!("Customer {i}"),
                org: if i.is_multiple_of(3) {
                    format!("Company {i} Ltd")
                } else {
                    String::new()
                },
                address: Some(PostalAddress {
                    street: vec![format!("{} Example Street", i % 997 + 1)],
                    city: CITIES[(i % 4) as usize].into(),
                    postal_code: format!("{:04}", i % 9000 + 1000),
                    country_code: "NZ".into(),
                    ..Default::default()
                }),
            }],
            voice: format!("+64.4{:07}", i % 10_000_000),
            email: format!("{id}@customer.example"),
            ..Default::default()
        }),
        id,
        auth_info: String::new(),
    }
}

fn domain_request(spec: DomainSpec) -> CreateDomainRequest {
    let [registrant, admin, tech] = spec.contacts;
    CreateDomainRequest {
        meta: Some(meta(&spec.registrar)),
        name: spec.name,
        period_years: 1,
        registrant,
        contacts: vec![
            DomainContact {
                r#type: ContactType::Admin as i32,
                contact_id: admin,
            },
            DomainContact {
                r#type: ContactType::Tech as i32,
                contact_id: tech,
            },
        ],
        nameservers: spec.nameservers,
        auth_info: String::new(),
        fee: None,
        ds_data: Vec::new(),
    }
}

/// Runs one phase of the fill: `count` creates made by `create(i)` for i in
/// 0..count, closed-loop at `concurrency`, until done or `deadline`. An
/// "exists" answer counts as created (a retry whose first attempt landed).
async fn phase<F, Fut, T>(
    kind: &'static str,
    count: u64,
    concurrency: u64,
    deadline: Instant,
    progress: &Arc<Progress>,
    create: F,
) -> PhaseResult
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    let bounds = Bounds {
        concurrency,
        count,
        duration: deadline.saturating_duration_since(Instant::now()),
    };
    let ids = Arc::new(AtomicU64::new(0));
    let p = progress.clone();
    let op = move |i: u64| {
        let (create, p) = (create.clone(), p.clone());
        async move {
            let result = match create(i).await {
                Ok(_) => Ok(()),
                Err(e) if crate::create::exists(&e) => Ok(()),
                Err(e) => Err(e),
            };
            let counter = if result.is_ok() { &p.ok } else { &p.errors };
            counter.fetch_add(1, Ordering::Relaxed);
            OpOutcome::new(kind, result)
        }
    };
    let report = closed_loop(&bounds, &ids, op).await;
    let summary = report.summary("fill", kind);
    print_load(&summary, &report.first_errors);
    PhaseResult {
        kind: kind.into(),
        planned: count,
        ok: summary.overall.ok,
        errors: summary.overall.errors,
        secs: summary.elapsed_secs,
    }
}

/// Prints the fill's progress every [`PROGRESS_EVERY`] until aborted.
async fn report_progress(progress: Arc<Progress>) {
    let started = Instant::now();
    let mut last = 0;
    let mut interval = tokio::time::interval(PROGRESS_EVERY);
    interval.tick().await;
    loop {
        interval.tick().await;
        let ok = progress.ok.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        println!(
            "fill: {ok} objects created, {errors} errors, {:.0}/s now, {:.0}/s overall, {secs:.0} s",
            (ok - last) as f64 / PROGRESS_EVERY.as_secs_f64(),
            ok as f64 / secs
        );
        last = ok;
    }
}

/// A running follower of `cluster`, other than `avoid` if possible.
async fn follower(cluster: &TestCluster, avoid: Option<u64>) -> (u64, u64) {
    let leader = cluster.wait_for_leader(CLUSTER_DEADLINE).await;
    let followers: Vec<u64> = cluster
        .running_ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let pick = followers
        .iter()
        .copied()
        .find(|&id| Some(id) != avoid)
        .or_else(|| followers.first().copied())
        .expect("invariant: a 3-node cluster with a leader has followers");
    (pick, leader)
}

/// A client that gives up on a node quickly, for polling one being started.
fn probe_client(cluster: &TestCluster) -> anyhow::Result<KauriClient> {
    let config = ClientConfig {
        deadline: Duration::from_secs(1),
        attempt_timeout: Duration::from_millis(500),
        retry_backoff: Duration::from_millis(20),
        ..Default::default()
    };
    Ok(KauriClient::new(&cluster.endpoints(), config)?)
}

/// SIGKILLs a follower, starts it on its data and times until it answers
/// Status and until it serves a bounded-stale read of `known` at the index
/// it had applied.
async fn cold_restart(cluster: &mut TestCluster, known: &str) -> anyhow::Result<ColdRestart> {
    println!("-- cold restart");
    let (node, _) = follower(cluster, None).await;
    let applied_before = cluster
        .status(node)
        .await
        .context("status of the follower to restart")?
        .applied_index;
    cluster.kill(node);
    let probe = probe_client(cluster)?;
    let addr = cluster.node(node).addr.clone();
    let started = Instant::now();
    cluster.spawn(node);
    let mut status_ms = None;
    let serving_ms = loop {
        if status_ms.is_none() && probe.cluster_status(&addr).await.is_ok() {
            status_ms = Some(crate::driver::ms(started.elapsed()));
        }
        let read = InfoRequest {
            registrar: "bench".into(),
            name: known.into(),
            read: bounded_stale(applied_before, 0),
        };
        if probe.info_domain_at(&addr, read).await.is_ok() {
            break crate::driver::ms(started.elapsed());
        }
        if started.elapsed() > RESTART_DEADLINE {
            bail!(
                "node {node} did not serve {known} within {} s of its restart:\n{}",
                RESTART_DEADLINE.as_secs(),
                cluster.log_tail(node)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let status_ms = status_ms.unwrap_or(serving_ms);
    println!(
        "cold restart: node {node} (applied {applied_before}) answered Status after {status_ms:.0} ms, \
         served {known} after {serving_ms:.0} ms"
    );
    Ok(ColdRestart {
        node,
        applied_before,
        status_ms,
        serving_ms,
    })
}

/// Stops a follower, compacts every column family of its database offline
/// (the node has no compaction trigger of its own), measures its data dir
/// before and after, and starts it again.
async fn compact_follower(
    cluster: &mut TestCluster,
    domains_stored: u64,
) -> anyhow::Result<Compaction> {
    println!("-- offline compaction");
    let (node, _) = follower(cluster, None).await;
    cluster.kill(node);
    let dir = cluster.node(node).data_dir.clone();
    let before = disk_usage(&dir);
    let started = Instant::now();
    let compact_dir = dir.clone();
    tokio::task::spawn_blocking(move || compact(&compact_dir))
        .await
        .context("compaction task")??;
    let secs = started.elapsed().as_secs_f64();
    let after = disk_usage(&dir);
    print_disk(
        &format!("disk: node {node}, stopped"),
        &before,
        domains_stored,
    );
    print_disk(
        &format!("disk: node {node}, compacted in {secs:.1} s"),
        &after,
        domains_stored,
    );
    cluster.spawn(node);
    cluster.wait_caught_up(CLUSTER_DEADLINE).await;
    let addr = cluster.node(node).addr.clone();
    let built = cluster
        .client()
        .snapshot(&addr)
        .await
        .with_context(|| format!("a snapshot on node {node}"))?;
    let after_snapshot = disk_usage(&dir);
    print_disk(
        &format!(
            "disk: node {node}, compacted, new snapshot at {}",
            built.snapshot_index
        ),
        &after_snapshot,
        domains_stored,
    );
    Ok(Compaction {
        node,
        bytes_per_domain: after_snapshot.total_bytes as f64 / domains_stored.max(1) as f64,
        before,
        after,
        after_snapshot,
        secs,
    })
}

/// Opens a stopped node's database as the node does and compacts every
/// column family to the bottom level.
fn compact(dir: &Path) -> anyhow::Result<()> {
    use kauri_node::storage::{Store, CF_RAFT_LOG, CF_RAFT_STATE, CF_SM_META};
    let store = Store::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let names = [CF_RAFT_LOG, CF_RAFT_STATE, CF_SM_META]
        .into_iter()
        .chain(kauri_node::registry::Cf::ALL.iter().map(|cf| cf.name()));
    for name in names {
        store
            .db()
            .compact_range_cf(store.cf(name), None::<&[u8]>, None::<&[u8]>);
    }
    Ok(())
}

/// SIGKILLs a follower, wipes its data dir and starts it with `--recover`;
/// times until it answers Status and until it has applied what the leader
/// had applied at the wipe. Build and install times come from the logs.
async fn recover_wiped_follower(cluster: &mut TestCluster) -> anyhow::Result<SnapshotRecovery> {
    println!("-- wiped follower, recovered by snapshot");
    let (node, leader) = follower(cluster, None).await;
    let leader_status = cluster.status(leader).await.context("leader status")?;
    let target_index = leader_status.applied_index;
    cluster.kill(node);
    cluster.wipe(node);
    let probe = probe_client(cluster)?;
    let addr = cluster.node(node).addr.clone();
    let started = Instant::now();
    cluster.spawn_with(node, &["--recover"]);
    let mut status_ms = None;
    let in_sync_ms = loop {
        if let Ok(s) = probe.cluster_status(&addr).await {
            status_ms.get_or_insert_with(|| crate::driver::ms(started.elapsed()));
            if s.applied_index >= target_index {
                break crate::driver::ms(started.elapsed());
            }
        }
        if started.elapsed() > RECOVERY_DEADLINE {
            bail!(
                "node {node} did not reach index {target_index} within {} s:\n{}",
                RECOVERY_DEADLINE.as_secs(),
                cluster.log_tail(node)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let status_ms = status_ms.unwrap_or(in_sync_ms);
    let log = |id: u64| std::fs::read_to_string(&cluster.node(id).log).unwrap_or_default();
    let install = snapshot_lines(&log(node), "installed snapshot").pop();
    let last_build = snapshot_lines(&log(leader), "built snapshot").pop();
    let all_builds: Vec<SnapshotLog> = cluster
        .ids()
        .into_iter()
        .flat_map(|id| snapshot_lines(&log(id), "built snapshot"))
        .collect();
    let memory = node_memory(cluster, node);
    println!(
        "snapshot: node {node} wiped; answered Status after {status_ms:.0} ms, applied the \
         leader's index {target_index} after {in_sync_ms:.0} ms"
    );
    if let Some(i) = &install {
        println!(
            "snapshot: installed at index {} ({} records, {:.1} MiB batch) in {} ms",
            i.index,
            i.records,
            mib(i.bytes),
            i.elapsed_ms
        );
    }
    if let Some(b) = &last_build {
        println!(
            "snapshot: leader's last build at index {} ({} files, {:.1} MiB) took {} ms",
            b.index,
            b.files,
            mib(b.bytes),
            b.elapsed_ms
        );
    }
    if let Some(m) = &memory {
        println!(
            "snapshot: node {node} after recovery: VmRSS {:.0} MiB, VmHWM {:.0} MiB",
            m.rss_mib, m.hwm_mib
        );
    }
    Ok(SnapshotRecovery {
        node,
        leader,
        target_index,
        status_ms,
        in_sync_ms,
        install,
        last_build,
        slowest_build_ms: all_builds.iter().map(|b| b.elapsed_ms).max().unwrap_or(0),
        builds: all_builds.len(),
        memory,
    })
}

/// Whether all nodes report the same state digest at one applied index.
async fn digests_agree(cluster: &TestCluster) -> Option<bool> {
    println!("-- state digests");
    let digests = cluster.converged_digests(CLUSTER_DEADLINE).await;
    for d in &digests {
        println!(
            "digest: node {} at index {}: {} ({} records)",
            d.node_id,
            d.applied_index,
            &d.digest[..16.min(d.digest.len())],
            d.records
        );
    }
    let same_index = digests.len() == cluster.running_ids().len()
        && digests
            .windows(2)
            .all(|w| w[0].applied_index == w[1].applied_index);
    same_index.then(|| digests.windows(2).all(|w| w[0].digest == w[1].digest))
}

/// The `built snapshot` or `installed snapshot` lines of a node's log, in
/// order: `message` followed by `key=value` fields.
pub fn snapshot_lines(log: &str, message: &str) -> Vec<SnapshotLog> {
    log.lines()
        .filter_map(|line| {
            let (_, fields) = line.split_once(message)?;
            let mut s = SnapshotLog::default();
            for field in fields.split_whitespace() {
                let Some((key, value)) = field.split_once('=') else {
                    continue;
                };
                let Ok(value) = value.parse::<u64>() else {
                    continue;
                };
                match key {
                    "index" => s.index = value,
                    "records" => s.records = value,
                    "files" => s.files = value,
                    "bytes" | "batch_bytes" | "written_bytes" => s.bytes = value,
                    "elapsed_ms" => s.elapsed_ms = value,
                    _ => {}
                }
            }
            Some(s)
        })
        .collect()
}

/// CPU time of the whole machine and of the cluster plus this process,
/// sampled at the start of a window, to tell afterwards how much of the
/// machine other processes (a concurrent build, say) took meanwhile.
struct CpuShare {
    machine: (u64, u64),
    ours: u64,
}

impl CpuShare {
    fn start(cluster: &TestCluster) -> CpuShare {
        CpuShare {
            machine: machine_ticks(),
            ours: our_ticks(cluster),
        }
    }

    /// Busy CPU time of other processes since `start`, as a share of all
    /// the machine's CPU time over the window (0 = a quiet machine).
    fn foreign_share(&self, cluster: &TestCluster) -> f64 {
        let (busy, total) = machine_ticks();
        let ours = our_ticks(cluster).saturating_sub(self.ours);
        let busy = busy.saturating_sub(self.machine.0);
        let total = total.saturating_sub(self.machine.1);
        let share = busy.saturating_sub(ours) as f64 / total.max(1) as f64;
        println!(
            "other processes used {:.0}% of the machine's CPU during these windows",
            share * 100.0
        );
        share
    }
}

/// Busy and total CPU ticks of the whole machine, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is within user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// CPU ticks used so far by the cluster's running nodes and this process.
fn our_ticks(cluster: &TestCluster) -> u64 {
    let process = |pid: &str| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // After the parenthesised command name come fields 3 (state), 4, ...;
        // utime and stime are fields 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let field = |n: usize| -> u64 {
            after
                .split_whitespace()
                .nth(n - 3)
                .and_then(|f| f.parse().ok())
                .unwrap_or(0)
        };
        field(14) + field(15)
    };
    let nodes: u64 = cluster
        .running_ids()
        .into_iter()
        .filter_map(|id| cluster.pid(id))
        .map(|pid| process(&pid.to_string()))
        .sum();
    nodes + process("self")
}

/// Memory of node `id` from `/proc/PID/status`, if it runs.
fn node_memory(cluster: &TestCluster, id: u64) -> Option<NodeMemory> {
    let pid = cluster.pid(id)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    };
    Some(NodeMemory {
        node: id,
        rss_mib: kib("VmRSS:")? / 1024.0,
        hwm_mib: kib("VmHWM:")? / 1024.0,
    })
}

/// What `dir` takes on disk, by kind of file. A file hard-linked more
/// than once (a snapshot checkpoint shares the database's table files)
/// counts once, under the database: `snapshot_bytes` is what snapshots
/// hold on their own.
pub fn disk_usage(dir: &Path) -> DiskUsage {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else {
                let in_snapshots = path
                    .strip_prefix(dir)
                    .is_ok_and(|rel| rel.starts_with("snapshots"));
                files.push((in_snapshots, path, meta));
            }
        }
    }
    // The database's files first, so files it shares count as its own.
    files.sort_by_key(|(in_snapshots, _, _)| *in_snapshots);
    let mut usage = DiskUsage::default();
    let mut seen = std::collections::HashSet::new();
    for (in_snapshots, path, meta) in files {
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let bytes = meta.blocks() * 512;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let slot = if in_snapshots {
            &mut usage.snapshot_bytes
        } else if name.ends_with(".sst") {
            &mut usage.sst_bytes
        } else if name.ends_with(".log") {
            &mut usage.wal_bytes
        } else {
            &mut usage.other_bytes
        };
        *slot += bytes;
        usage.total_bytes += bytes;
    }
    usage
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_disk(label: &str, u: &DiskUsage, domains: u64) {
    println!(
        "{label}: {:.1} MiB ({:.0} B/domain): sst {:.1} MiB, wal {:.1} MiB, snapshot {:.1} MiB, \
         other {:.1} MiB",
        mib(u.total_bytes),
        u.total_bytes as f64 / domains.max(1) as f64,
        mib(u.sst_bytes),
        mib(u.wal_bytes),
        mib(u.snapshot_bytes),
        mib(u.other_bytes)
    );
}

/// The summary rows: each measured value next to its 1 M-domain target.
fn targets(r: &ScaleResult) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    let mut row = |what: String, value: f64, target: f64, unit: &str, at_most: bool| {
        rows.push(TargetRow {
            what,
            value,
            target,
            unit: unit.into(),
            pass: if at_most {
                value <= target
            } else {
                value >= target
            },
        })
    };
    if let Some(c) = &r.compaction {
        row(
            format!("disk per domain, node {} compacted", c.node),
            c.bytes_per_domain,
            target::DISK_PER_DOMAIN_BYTES,
            "B",
            true,
        );
    }
    if let Some(m) = r
        .memory
        .iter()
        .max_by(|a, b| a.rss_mib.total_cmp(&b.rss_mib))
    {
        row(
            format!("resident memory, largest node ({})", m.node),
            m.rss_mib,
            target::RSS_MIB,
            "MiB",
            true,
        );
    }
    if let Some(s) = &r.snapshot {
        row(
            format!("wiped follower (node {}) in sync", s.node),
            s.in_sync_ms / 1e3,
            target::SNAPSHOT_RECOVERY_SECS,
            "s",
            true,
        );
    }
    if let Some(c) = &r.cold_restart {
        row(
            format!("restarted node ({}) serving", c.node),
            c.serving_ms / 1e3,
            target::COLD_RESTART_SECS,
            "s",
            true,
        );
    }
    for (empty, full) in r.throughput_empty.iter().zip(&r.throughput_full) {
        let ratio = full.overall.ops_per_sec / empty.overall.ops_per_sec.max(1e-9);
        let noisy = r.foreign_cpu_empty.max(r.foreign_cpu_full);
        row(
            format!(
                "creates/s full vs empty, c={} ({:.0} vs {:.0}){}",
                full.concurrency,
                full.overall.ops_per_sec,
                empty.overall.ops_per_sec,
                if noisy > 0.05 { ", NOISY" } else { "" }
            ),
            ratio,
            target::THROUGHPUT_RATIO,
            "x",
            false,
        );
    }
    rows
}

fn print_summary(r: &ScaleResult) {
    println!();
    println!(
        "scale run: {} domains stored ({} asked), {} contacts, {} hosts; fill {:.0} s",
        r.domains_stored,
        r.domains_asked,
        r.fill
            .iter()
            .find(|p| p.kind == "contacts")
            .map_or(0, |p| p.ok),
        r.fill
            .iter()
            .find(|p| p.kind == "hosts")
            .map_or(0, |p| p.ok),
        r.fill_secs
    );
    println!(
        "{:<52} {:>12} {:>12}  result (targets are for 1 M domains)",
        "measure", "value", "target"
    );
    for t in &r.targets {
        let cmp = if t.unit == "x" { "≥" } else { "≤" };
        println!(
            "{:<52} {:>10.2} {:<2}{:>2}{:>8.2} {:<3} {}",
            t.what,
            t.value,
            t.unit,
            cmp,
            t.target,
            t.unit,
            if t.pass { "PASS" } else { "MISS" }
        );
    }
    println!(
        "other processes took {:.0}% (empty) and {:.0}% (full) of the CPU during the \
         throughput windows",
        r.foreign_cpu_empty * 100.0,
        r.foreign_cpu_full * 100.0
    );
    match r.digests_agree {
        Some(true) => println!("state digests: all equal"),
        Some(false) => println!("state digests: DIFFER"),
        // The harness asks with a 2 s timeout, too short for a full scan
        // of a large state.
        None => println!("state digests: not compared (skipped, or no common index in time)"),
    }
    let errors: u64 = r.fill.iter().map(|p| p.errors).sum();
    if errors > 0 {
        println!("fill errors: {errors} (see above)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_a_snapshot_shares_with_the_database_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let (db, ckpt) = (dir.path().join("db"), dir.path().join("snapshots/1.ckpt"));
        std::fs::create_dir_all(&db).unwrap();
        std::fs::create_dir_all(&ckpt).unwrap();
        std::fs::write(db.join("000007.sst"), vec![1u8; 64 << 10]).unwrap();
        std::fs::write(db.join("000009.log"), vec![2u8; 8 << 10]).unwrap();
        std::fs::hard_link(db.join("000007.sst"), ckpt.join("000007.sst")).unwrap();
        std::fs::write(ckpt.join("MANIFEST-000003"), vec![3u8; 4 << 10]).unwrap();
        let u = disk_usage(dir.path());
        assert!(
            u.sst_bytes >= 64 << 10 && u.sst_bytes < 2 * (64 << 10),
            "{u:?}"
        );
        assert!(
            u.snapshot_bytes >= 4 << 10 && u.snapshot_bytes < 64 << 10,
            "{u:?}"
        );
        assert_eq!(
            u.total_bytes,
            u.sst_bytes + u.wal_bytes + u.snapshot_bytes + u.other_bytes
        );
    }

    #[test]
    fn the_plan_keeps_its_proportions_and_pairs_hosts() {
        let plan = Plan::new(1_000_000, 8, 0.5, 0.1);
        assert_eq!(plan.contacts, 500_000);
        assert_eq!(plan.hosts, 100_000);
        assert_eq!(plan.glue_hosts, 25_000);
        assert_eq!(plan.provider_domains() + plan.customer_domains(), 1_000_000);

        let tiny = Plan::new(100, 8, 0.0, 0.0);
        assert_eq!(tiny.contacts, 8, "every registrar needs a contact");
        assert_eq!(tiny.hosts, 2, "at least one pair of name servers");
    }

    #[test]
    fn a_domain_uses_its_registrars_contacts_and_one_providers_pair() {
        let plan = Plan::new(20_000, 8, 0.5, 0.1);
        for d in [0, 1, 7, 12_345, plan.customer_domains() - 1] {
            let spec = plan.customer_domain(d);
            let r = d % 8;
            assert_eq!(spec.registrar, Plan::registrar(r));
            for c in &spec.contacts {
                let i: u64 = c
                    .trim_start_matches("sc")
                    .parse()
                    .expect("numbered contact");
                assert!(i < plan.contacts);
                assert_eq!(plan.contact(i).1, spec.registrar);
            }
            let [ns1, ns2] = &spec.nameservers[..] else {
                panic!("two name servers");
            };
            assert_eq!(ns1.replacen("ns1.", "ns2.", 1), *ns2);
        }
    }

    #[test]
    fn in_bailiwick_hosts_live_under_a_provider_domain_and_carry_glue() {
        let plan = Plan::new(20_000, 8, 0.5, 0.1);
        let provider_domains: Vec<String> = (0..plan.provider_domains())
            .map(|k| plan.provider_domain(k).name)
            .collect();
        let mut glue = 0;
        for j in 0..plan.hosts {
            let host = plan.host(j);
            let parent = host.name.split_once('.').map(|(_, p)| p.to_string());
            if host.addresses.is_empty() {
                assert!(host.name.ends_with(".net"), "{}", host.name);
            } else {
                glue += 1;
                let parent = parent.expect("a host name has a parent");
                assert!(provider_domains.contains(&parent), "{}", host.name);
                let k = provider_domains.iter().position(|p| *p == parent).unwrap();
                assert_eq!(plan.provider_domain(k as u64).registrar, host.registrar);
            }
        }
        assert_eq!(glue, plan.glue_hosts);
    }

    #[test]
    fn snapshot_lines_are_read_from_a_node_log() {
        let log = "2025-01-01T00:00:00Z  INFO kauri_node::storage::state_machine: built snapshot \
                   index=10001 files=31 bytes=4567 elapsed_ms=89\n\
                   2025-01-01T00:00:01Z  INFO kauri_node::server: something else\n\
                   2025-01-01T00:00:02Z  INFO kauri_node::storage::state_machine: installed \
                   snapshot index=20002 records=5 batch_bytes=6 elapsed_ms=7\n";
        assert_eq!(
            snapshot_lines(log, "built snapshot"),
            vec![SnapshotLog {
                index: 10001,
                records: 0,
                files: 31,
                bytes: 4567,
                elapsed_ms: 89
            }]
        );
        assert_eq!(
            snapshot_lines(log, "installed snapshot")[0].bytes,
            6,
            "installs report their batch size"
        );
    }
}
