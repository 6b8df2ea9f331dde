//! `kauri-node`: runs one member of a Kauri registry cluster.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use kauri_client::tls::TlsFiles;
use kauri_node::logging::{self, LogFormat};
use kauri_node::server::{self, NodeConfig, Transport};

// Every request allocates many small buffers (protobuf messages, records,
// the write set); mimalloc serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One node of a Kauri registry cluster: Raft over gRPC, RocksDB storage, and
/// the registry, admin and cluster gRPC APIs on one port.
#[derive(Debug, Parser)]
#[command(name = "kauri-node", version)]
struct Args {
    /// This node's id, unique in the cluster (1, 2, 3, ...).
    #[arg(long, env = "KAURI_NODE_ID")]
    id: u64,
    /// Address to listen on and to advertise to peers and clients (IP:PORT).
    #[arg(long, env = "KAURI_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// Directory for the RocksDB database and snapshots.
    #[arg(long, env = "KAURI_DATA_DIR", default_value = "./data/node")]
    data_dir: PathBuf,
    /// The initial voters, including this node: ID=HOST:PORT,... A brand-new
    /// cluster bootstraps itself once when all of them start with empty data.
    #[arg(long, env = "KAURI_PEERS", default_value = "")]
    peers: String,
    /// Site label of this node (e.g. paris, auckland).
    #[arg(long, env = "KAURI_SITE", default_value = "default")]
    site: String,
    /// The cluster's name. Every certificate names it in its SAN URI
    /// (kauri://CLUSTER/ROLE/NAME), so certificates of one CA for another
    /// cluster are refused.
    #[arg(long, env = "KAURI_CLUSTER_NAME", default_value = "kauri")]
    cluster_name: String,
    /// PEM bundle of the CA that client and peer certificates must chain to.
    #[arg(long, env = "KAURI_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// PEM certificate chain of this node; it must name kauri://CLUSTER/node/ID
    /// and the addresses clients and peers dial. Reloaded on SIGHUP and when
    /// the file changes.
    #[arg(long, env = "KAURI_TLS_CERT", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "KAURI_TLS_KEY", requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<PathBuf>,
    /// Serve and dial peers in plain text with NO authentication: anyone who
    /// reaches the port can act as anyone and talk Raft. Development on
    /// loopback only; refused on other addresses.
    #[arg(long, env = "KAURI_INSECURE_PLAINTEXT", conflicts_with_all = ["tls_ca", "tls_cert", "tls_key"])]
    insecure_plaintext: bool,
    /// With --insecure-plaintext, allow a non-loopback address too. Only on a
    /// network nobody else can reach.
    #[arg(long, requires = "insecure_plaintext")]
    insecure_plaintext_on_network: bool,
    /// Take a snapshot after this many log entries since the last one. A
    /// snapshot is a RocksDB checkpoint (a memtable flush and hard links,
    /// cheap at any size); the log it bounds costs about 300 bytes an entry.
    /// Each build flushes every memtable, so keep this in the thousands.
    #[arg(long, env = "KAURI_SNAPSHOT_EVERY", default_value_t = 100_000)]
    snapshot_every: u64,
    /// Log entries kept behind the latest snapshot so slow followers can catch
    /// up from the log instead of a snapshot.
    #[arg(long, env = "KAURI_KEEP_LOGS", default_value_t = 5_000)]
    keep_logs: u64,
    /// Serve Prometheus metrics on /metrics, and the /healthz and /readyz
    /// probes, at this HOST:PORT (plain HTTP unless --metrics-tls). Off when
    /// not given.
    #[arg(long, env = "KAURI_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Serve --metrics-addr over HTTPS with the node's certificate. The
    /// probes answer anyone; /metrics needs a client certificate of this
    /// cluster's CA with the monitor, staff or node role.
    #[arg(long, env = "KAURI_METRICS_TLS", requires = "metrics_addr")]
    metrics_tls: bool,
    /// Every this many log indexes, replicas compare a running hash of
    /// what they applied (the state chain) and report any difference
    /// loudly (`kauri cluster status`, the node's ERROR log). Give every
    /// node the same value.
    #[arg(long, env = "KAURI_STATE_CHECK_EVERY", default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..))]
    state_check_every: u64,
    /// Leader heartbeat interval in milliseconds.
    #[arg(long, env = "KAURI_HEARTBEAT_MS", default_value_t = 100)]
    heartbeat_ms: u64,
    /// Minimum election timeout in milliseconds; the maximum is 1.5 times
    /// this, and a follower keeps honouring a silent leader (its lease) for
    /// that maximum. Raise both this and --heartbeat-ms for nodes on
    /// high-latency links (e.g. across continents).
    #[arg(long, env = "KAURI_ELECTION_TIMEOUT_MS", default_value_t = 250)]
    election_timeout_ms: u64,
    /// How often the leader proposes a clock tick, which advances registry
    /// time and runs due lifecycle events, in milliseconds (0 disables).
    #[arg(long, env = "KAURI_TICK_INTERVAL_MS", default_value_t = 1000)]
    tick_interval_ms: u64,
    /// Let tests move this node's proposer clock forward over the admin API.
    /// Never in production.
    #[arg(long)]
    test_clock: bool,
    /// This node lost its storage (its data dir is empty) and rejoins an
    /// existing cluster: it stays out of elections until it has caught up.
    /// A node with an empty data dir whose peers hold state refuses to start
    /// without this flag.
    #[arg(long)]
    recover: bool,
    /// This is a new node joining a running cluster: it never bootstraps
    /// one, and waits with its empty data dir until the leader adds it as a
    /// learner (kauri cluster add-learner). --peers may then name the
    /// cluster's nodes or be left out.
    #[arg(long, conflicts_with = "recover")]
    join: bool,
    /// How log lines look on stderr: text, or json (one object a line, with
    /// node_id and term in each, and a request's method, request_id,
    /// cl_trid and sv_trid in the lines about it).
    #[arg(long, env = "KAURI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Which log lines to keep: a tracing filter directive (LEVEL, or
    /// TARGET=LEVEL,... e.g. info,kauri_node::security=debug).
    #[arg(long, env = "KAURI_LOG", default_value = "info,openraft=warn")]
    log: String,
    #[command(subcommand)]
    command: Option<NodeCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum NodeCommand {
    /// Seed this node's empty --data-dir from a backup (kauri backup
    /// create) as the first node of a new cluster whose voters are
    /// --peers (each in --site), then exit. Start this node as usual
    /// afterwards, and the other voters with --join: they receive the
    /// state from it.
    Restore {
        /// The backup directory (verified first).
        #[arg(long)]
        from: PathBuf,
    },
    /// Disaster recovery: make this (stopped) node the only voter of a new
    /// cluster from the state it has applied, when the rest of its cluster
    /// is lost, then exit. Entries it had not applied are dropped (the
    /// data-loss window); the new cluster has a new identity, so nodes of
    /// the old one are refused if they come back. Start it again (with
    /// --join, since --peers names the lost cluster) and grow the new
    /// cluster with kauri cluster add-learner and promote.
    ForceNewCluster,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(args.log_format, &args.log)?;
    logging::set_node_id(args.id);
    let peers = server::parse_peers(&args.peers)?;
    if let Some(NodeCommand::ForceNewCluster) = &args.command {
        let node = kauri_node::raft::NodeInfo {
            addr: args.grpc_addr.to_string(),
            site: args.site.clone(),
        };
        let recovered =
            kauri_node::storage::restore::recover_alone(&args.data_dir, args.id, node).await?;
        eprintln!(
            "node {} is now the only voter of a new cluster, at log index {} (term {}): what it \
             had not applied is dropped",
            args.id, recovered.applied.index, recovered.applied.leader_id.term
        );
        return Ok(());
    }
    if let Some(NodeCommand::Restore { from }) = &args.command {
        let voters = peers
            .iter()
            .map(|(id, addr)| {
                let info = kauri_node::raft::NodeInfo {
                    addr: addr.clone(),
                    site: args.site.clone(),
                };
                (*id, info)
            })
            .collect();
        let restored =
            kauri_node::storage::restore::seed(&args.data_dir, from, args.id, voters).await?;
        eprintln!(
            "restored {} into {}: the state at log index {} (term {}); voters {:?}",
            from.display(),
            args.data_dir.display(),
            restored.applied.index,
            restored.applied.leader_id.term,
            restored.voters
        );
        return Ok(());
    }
    let transport = match (args.tls_ca, args.tls_cert, args.tls_key) {
        (Some(ca), Some(cert), Some(key)) => Transport::Tls(TlsFiles { ca, cert, key }),
        _ if args.insecure_plaintext => Transport::InsecurePlaintext {
            on_network: args.insecure_plaintext_on_network,
        },
        _ => anyhow::bail!(
            "no TLS identity: pass --tls-ca, --tls-cert and --tls-key (or KAURI_TLS_CA, \
             KAURI_TLS_CERT, KAURI_TLS_KEY; `kauri dev certs` makes a development set), or \
             --insecure-plaintext for a loopback development cluster"
        ),
    };
    server::run(NodeConfig {
        id: args.id,
        grpc_addr: args.grpc_addr,
        data_dir: args.data_dir,
        peers,
        site: args.site,
        cluster: args.cluster_name,
        transport,
        snapshot_every: args.snapshot_every,
        keep_logs: args.keep_logs,
        state_check_every: args.state_check_every,
        metrics_addr: args.metrics_addr,
        metrics_tls: args.metrics_tls,
        heartbeat_ms: args.heartbeat_ms,
        election_timeout_ms: args.election_timeout_ms,
        tick_interval_ms: args.tick_interval_ms,
        test_clock: args.test_clock,
        recover: args.recover,
        join: args.join,
    })
    .await
}
