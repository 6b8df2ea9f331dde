//! `kauri-bench create`: domain creates (or a registrar-like mix of
//! operations) against a Kauri cluster through kauri-client, closed loop.
//!
//! The fixture (a TLD, a funded registrar and a contact) is made once;
//! reruns reuse it. With `--local-cluster` the command starts a fresh 3-node
//! cluster of its own (default node settings: synced log appends) and stops
//! it by PID afterwards.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use kauri_chaos_tests::TestCluster;
use kauri_client::proto::*;
use kauri_client::{bounded_stale, linearizable, meta, ClientConfig, ClientError, KauriClient};
use rand::Rng;

use crate::driver::{LoadArgs, OpOutcome};

/// Price of a create and of a one-year renew in the bench TLD.
const PRICE_MINOR_UNITS: i64 = 100;
/// Created names the mix keeps for info and renew, at most.
const POOL_LIMIT: usize = 100_000;
/// Staleness a bounded-stale read accepts, as a WHOIS front end might.
const STALE_BOUND_MS: u64 = 5_000;
/// Names per availability check in the mix.
const CHECK_NAMES: usize = 5;

/// Options of `kauri-bench create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// TLD to create the domains under (created if missing).
    #[arg(long, default_value = "bench")]
    pub tld: String,
    /// Operation mix by weight instead of creates only, e.g.
    /// create=60,info=20,stale=10,renew=5,check=5. Kinds: create, info
    /// (linearizable), stale (bounded-stale info from a random node), renew,
    /// check.
    #[arg(long)]
    pub mix: Option<Mix>,
    /// Start a fresh 3-node cluster for this run (data under $TMPDIR)
    /// instead of using --endpoints.
    #[arg(long)]
    pub local_cluster: bool,
    /// With --local-cluster: run it over mutual TLS (the staff and the
    /// registrar "bench" each with a certificate of the cluster's CA).
    #[arg(long, requires = "local_cluster")]
    pub tls: bool,
    /// The kauri-node binary for --local-cluster (default: next to kauri-bench).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// With --local-cluster: start the nodes without --metrics-addr (no
    /// metrics recorded), to measure what metrics cost.
    #[arg(long, requires = "local_cluster")]
    pub no_metrics: bool,
    /// An extra kauri-node flag for --local-cluster (repeat for more).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Without --local-cluster: speak mutual TLS to --endpoints as this
    /// registrar identity (PREFIX.pem and PREFIX.key, ca.pem beside them),
    /// a certificate for registrar "bench" (`kauri-bench epp certs` makes
    /// one).
    #[arg(long, conflicts_with = "local_cluster", requires = "staff_identity")]
    pub identity: Option<PathBuf>,
    /// With --identity: the staff identity "bench" that makes the fixture.
    #[arg(long, requires = "identity")]
    pub staff_identity: Option<PathBuf>,
    /// After each level, print where its time went in each node (from the
    /// nodes' metrics at its start and end): the leader's time per create,
    /// log syncs and the entries each covered, apply batches, the
    /// followers' AppendEntries. Needs --local-cluster or --node-metrics.
    #[arg(long)]
    pub stages: bool,
    /// Record a CPU profile (`perf record -g`) of each node and of
    /// kauri-bench during each level into DIR (cC-nodeN.perf, with the top
    /// of each in cC-nodeN.txt); implies --stages. Needs perf, and
    /// --local-cluster or --node-pids.
    #[arg(long, value_name = "DIR")]
    pub profile: Option<PathBuf>,
    /// Without --local-cluster: the nodes' metrics addresses (HOST:PORT,
    /// nodes 1, 2, ... in this order), for --stages.
    #[arg(long, value_delimiter = ',', conflicts_with = "local_cluster")]
    pub node_metrics: Vec<String>,
    /// Without --local-cluster: the nodes' PIDs, in --node-metrics order,
    /// for --profile.
    #[arg(long, value_delimiter = ',', requires = "node_metrics")]
    pub node_pids: Vec<u32>,
}

/// The nodes `--stages` and `--profile` watch, if asked.
fn probe(
    args: &CreateArgs,
    cluster: Option<&TestCluster>,
) -> anyhow::Result<Option<crate::stages::Probe>> {
    if !args.stages && args.profile.is_none() {
        return Ok(None);
    }
    let nodes: Vec<crate::stages::Watched> = match cluster {
        Some(_) if args.no_metrics => {
            bail!("--stages reads the nodes' metrics: leave out --no-metrics")
        }
        Some(c) => c
            .ids()
            .into_iter()
            .map(|id| crate::stages::Watched {
                id,
                metrics_addr: c.node(id).metrics_addr.clone(),
                pid: c.pid(id),
            })
            .collect(),
        None if args.node_metrics.is_empty() => {
            bail!("--stages without --local-cluster needs --node-metrics")
        }
        None => {
            if !args.node_pids.is_empty() && args.node_pids.len() != args.node_metrics.len() {
                bail!("--node-pids needs one PID per --node-metrics address");
            }
            args.node_metrics
                .iter()
                .enumerate()
                .map(|(i, addr)| crate::stages::Watched {
                    id: i as u64 + 1,
                    metrics_addr: addr.clone(),
                    pid: args.node_pids.get(i).copied(),
                })
                .collect()
        }
    };
    Ok(Some(crate::stages::Probe::new(
        nodes,
        args.profile.clone(),
    )?))
}

/// One kind of operation in a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A domain create (a new name).
    Create,
    /// A linearizable domain info of a name this run created.
    Info,
    /// A bounded-stale domain info from a random node.
    Stale,
    /// A one-year renew of a name this run created.
    Renew,
    /// An availability check of a few names.
    Check,
}

impl OpKind {
    fn label(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Info => "info",
            OpKind::Stale => "stale",
            OpKind::Renew => "renew",
            OpKind::Check => "check",
        }
    }
}

/// Weighted operation kinds, parsed from `create=60,info=20,...`.
#[derive(Debug, Clone)]
pub struct Mix(Vec<(OpKind, u32)>);

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut kinds = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected KIND=WEIGHT"))?;
            let kind = match name.trim() {
                "create" => OpKind::Create,
                "info" => OpKind::Info,
                "stale" => OpKind::Stale,
                "renew" => OpKind::Renew,
                "check" => OpKind::Check,
                other => {
                    return Err(format!(
                        "unknown kind {other:?} (create, info, stale, renew, check)"
                    ))
                }
            };
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
            kinds.push((kind, weight));
        }
        if kinds.iter().map(|(_, w)| w).sum::<u32>() == 0 {
            return Err("the mix needs at least one kind with a positive weight".into());
        }
        Ok(Mix(kinds))
    }
}

impl Mix {
    /// A kind drawn by weight.
    fn pick(&self, rng: &mut impl Rng) -> OpKind {
        let total: u32 = self.0.iter().map(|(_, w)| w).sum();
        let mut x = rng.gen_range(0..total);
        for &(kind, weight) in &self.0 {
            if x < weight {
                return kind;
            }
            x -= weight;
        }
        unreachable!("x < total, the sum of the weights")
    }
}

/// A name this run created, its expiry and the years it is registered for.
#[derive(Debug, Clone)]
struct Owned {
    name: String,
    expiry_ms: i64,
    years: u32,
}

/// The kauri-node binary: `given`, or the one next to this executable.
pub fn node_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("kauri-node"),
    };
    if !bin.exists() {
        bail!(
            "{} not found; build it (cargo build -p kauri-node) or pass --node-bin",
            bin.display()
        );
    }
    Ok(bin)
}

pub(crate) fn exists(e: &ClientError) -> bool {
    e.reason == Reason::ObjectExists
}

/// The benchmark TLD's policy: USD, [`PRICE_MINOR_UNITS`] a year, 1 to 10
/// years.
pub(crate) fn bench_tld_policy() -> TldPolicy {
    TldPolicy {
        min_period_years: 1,
        max_period_years: 10,
        create_price_minor_units: PRICE_MINOR_UNITS,
        renew_price_minor_units: PRICE_MINOR_UNITS,
        currency: "USD".into(),
        min_label_length: 1,
        max_label_length: 63,
        allow_idn: true,
        idn: None,
    }
}

/// The TLD, a registrar funded for `operations` creates or renews, and the
/// registrant contact. Idempotent: existing objects are reused.
pub(crate) async fn fixture(
    client: &KauriClient,
    registrar_client: &KauriClient,
    tld: &str,
    operations: u64,
) -> anyhow::Result<()> {
    let policy = bench_tld_policy();
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
    // One deposit stays far below the registry's largest (10^15).
    const MAX_OPERATIONS_FUNDED: u64 = 1_000_000_000;
    let funded = operations.clamp(1, MAX_OPERATIONS_FUNDED) as i64 + 1;
    client
        .deposit_funds(DepositFundsRequest {
            meta: Some(meta("bench")),
            registrar: "bench".into(),
            amount_minor_units: funded * PRICE_MINOR_UNITS,
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
    match registrar_client.create_contact(contact).await {
        Ok(_) => Ok(()),
        Err(e) if exists(&e) => Ok(()),
        Err(e) => Err(e).context("creating the contact"),
    }
}

/// The clients of a local cluster acting as staff member "bench" and as
/// registrar "bench": over TLS each with a certificate of the cluster's CA
/// for that principal, in plain text the same client twice.
pub(crate) fn bench_clients(c: &TestCluster) -> anyhow::Result<(KauriClient, KauriClient)> {
    let Some((certs, ca)) = c.pki() else {
        return Ok((c.client(), c.client()));
    };
    let as_bench = |role| -> anyhow::Result<KauriClient> {
        let p = kauri_client::tls::Principal::new(kauri_chaos_tests::TEST_CLUSTER, role, "bench")?;
        let files = ca.write(&certs.dir, &format!("bench-{role}"), &certs.ca, &p, &[])?;
        Ok(c.client_as(&files))
    };
    Ok((
        as_bench(kauri_client::tls::Role::Staff)?,
        as_bench(kauri_client::tls::Role::Registrar)?,
    ))
}

/// `kauri-bench create`.
pub async fn run(endpoints: &[String], args: CreateArgs) -> anyhow::Result<()> {
    let cluster = if args.local_cluster {
        let bin = node_binary(args.node_bin.clone())?;
        let node_args: Vec<&str> = args.node_args.iter().map(String::as_str).collect();
        let cluster = if args.no_metrics {
            TestCluster::start_unmonitored(&bin, 3, &node_args, args.tls)
        } else if args.tls {
            TestCluster::start(&bin, 3, &node_args)
        } else {
            TestCluster::start_plaintext(&bin, 3, &node_args)
        };
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        println!(
            "kauri: started a 3-node cluster (--peers {}), leader node {leader}",
            cluster.peers
        );
        Some(cluster)
    } else {
        None
    };
    let mut probe = probe(&args, cluster.as_ref())?;
    let (staff, client) = match &cluster {
        Some(c) => bench_clients(c)?,
        None => match (&args.staff_identity, &args.identity) {
            (Some(staff), Some(registrar)) => (
                crate::epp::client_as(endpoints, staff)?,
                crate::epp::client_as(endpoints, registrar)?,
            ),
            _ => {
                let c = KauriClient::new(endpoints, ClientConfig::default())?;
                (c.clone(), c)
            }
        },
    };
    fixture(&staff, &client, &args.tld, args.load.expected_operations()).await?;
    let run = format!(
        "{:x}",
        (rand::thread_rng().gen::<u64>() ^ u64::from(std::process::id())) & 0xffff_ffff_ffff
    );
    let endpoints = client.endpoints();
    let pool: Arc<Mutex<Vec<Owned>>> = Arc::default();
    let keep_names = args.mix.is_some();
    let mix = args.mix.clone();
    let tld = args.tld.clone();
    let op = move |id: u64| {
        let kind = match &mix {
            Some(m) => m.pick(&mut rand::thread_rng()),
            None => OpKind::Create,
        };
        let (client, pool, tld, run, endpoints) = (
            client.clone(),
            pool.clone(),
            tld.clone(),
            run.clone(),
            endpoints.clone(),
        );
        async move {
            let name = format!("b{run}-{id}.{tld}");
            operation(kind, &client, &pool, name, &endpoints, keep_names).await
        }
    };
    let operation_label = if args.mix.is_some() { "mix" } else { "create" };
    args.load
        .run_probed("kauri", operation_label, op, probe.as_mut())
        .await?;
    drop(cluster);
    Ok(())
}

/// One operation of `kind`. `fresh_name` is unused by reads of existing
/// names; kinds that need a created name fall back to a create while the
/// pool is empty.
async fn operation(
    kind: OpKind,
    client: &KauriClient,
    pool: &Mutex<Vec<Owned>>,
    fresh_name: String,
    endpoints: &[String],
    keep_names: bool,
) -> OpOutcome {
    let lock = || pool.lock().unwrap_or_else(|p| p.into_inner());
    let random_owned = || {
        let pool = lock();
        (!pool.is_empty()).then(|| pool[rand::thread_rng().gen_range(0..pool.len())].clone())
    };
    let kind = match kind {
        OpKind::Info | OpKind::Stale | OpKind::Renew if lock().is_empty() => OpKind::Create,
        k => k,
    };
    let label = kind.label();
    match kind {
        OpKind::Create => {
            let request = CreateDomainRequest {
                meta: Some(meta("bench")),
                name: fresh_name,
                period_years: 1,
                registrant: "bench-owner".into(),
                ..Default::default()
            };
            let result = client.create_domain(request).await.map(|r| {
                if let (true, Some(d)) = (keep_names, r.domain) {
                    let mut pool = lock();
                    if pool.len() < POOL_LIMIT {
                        pool.push(Owned {
                            name: d.name,
                            expiry_ms: d.expiry_ms,
                            years: 1,
                        });
                    }
                }
            });
            OpOutcome::new(label, result)
        }
        OpKind::Info => {
            let Some(owned) = random_owned() else {
                return OpOutcome::new(label, Err("no created name yet"));
            };
            let request = InfoRequest {
                registrar: "bench".into(),
                name: owned.name,
                read: linearizable(),
            };
            OpOutcome::new(label, client.info_domain(request).await.map(drop))
        }
        OpKind::Stale => {
            let Some(owned) = random_owned() else {
                return OpOutcome::new(label, Err("no created name yet"));
            };
            let addr = &endpoints[rand::thread_rng().gen_range(0..endpoints.len())];
            let request = InfoRequest {
                registrar: "bench".into(),
                name: owned.name,
                read: bounded_stale(0, STALE_BOUND_MS),
            };
            // A follower may not have applied a name created a moment ago:
            // that answer was still served within the bound.
            let result = match client.info_domain_at(addr, request).await {
                Err(e) if e.reason == Reason::ObjectNotFound => Ok(()),
                r => r.map(drop),
            };
            OpOutcome::new(label, result)
        }
        OpKind::Renew => {
            // Taken out of the pool while renewing, so no two renews race
            // on one expiry date.
            let owned = {
                let mut pool = lock();
                if pool.is_empty() {
                    return OpOutcome::new(label, Err("no created name yet"));
                }
                let i = rand::thread_rng().gen_range(0..pool.len());
                pool.swap_remove(i)
            };
            let Some(expiry) = chrono::DateTime::from_timestamp_millis(owned.expiry_ms) else {
                return OpOutcome::new(label, Err("expiry out of range"));
            };
            let request = RenewDomainRequest {
                meta: Some(meta("bench")),
                name: owned.name.clone(),
                current_expiry_date: expiry.format("%Y-%m-%d").to_string(),
                period_years: 1,
                fee: None,
            };
            let result = client.renew_domain(request).await.map(|r| {
                let years = owned.years + 1;
                // The TLD allows at most 10 years; leave room to renew again.
                if let (true, Some(d)) = (years < 9, r.domain) {
                    lock().push(Owned {
                        name: owned.name,
                        expiry_ms: d.expiry_ms,
                        years,
                    });
                }
            });
            OpOutcome::new(label, result)
        }
        OpKind::Check => {
            let mut names = vec![fresh_name.replace('.', "-free.")];
            names.extend((1..CHECK_NAMES).filter_map(|_| random_owned().map(|o| o.name)));
            let request = CheckRequest {
                registrar: "bench".into(),
                names,
                read: linearizable(),
                fees: Vec::new(),
            };
            OpOutcome::new(label, client.check_domains(request).await.map(drop))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_and_draws_only_weighted_kinds() {
        let mix: Mix = "create=3,renew=0,check=1".parse().expect("valid mix");
        let mut rng = rand::thread_rng();
        let drawn: Vec<OpKind> = (0..1000).map(|_| mix.pick(&mut rng)).collect();
        assert!(drawn.contains(&OpKind::Create));
        assert!(drawn.contains(&OpKind::Check));
        assert!(!drawn.contains(&OpKind::Renew));
        assert!("create=0".parse::<Mix>().is_err());
        assert!("delete=1".parse::<Mix>().is_err());
        assert!("create".parse::<Mix>().is_err());
    }
}
