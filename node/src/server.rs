//! Start-up and shutdown of a node: opens storage, starts Raft and the gRPC
//! server, bootstraps a fresh cluster exactly once, and stops cleanly on
//! SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kauri_proto::v1::admin_server::AdminServer;
use kauri_proto::v1::cluster_server::ClusterServer;
use kauri_proto::v1::raft_server::RaftServer;
use kauri_proto::v1::registry_server::RegistryServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use kauri_client::tls::{ClientTls, TlsFiles};

use crate::api::{self, AdminService, ClusterService, Node, RegistryService};
use crate::peer::network::Network;
use crate::peer::service::{RaftService, VoteFence};
use crate::raft::{typ, NodeId, NodeInfo};
use crate::security::listener::{self, NodeTls};
use crate::security::policy::AuthLayer;
use crate::storage::{LogStore, StateMachineStore, Store};

/// Largest Raft message accepted from a peer (entry batches, snapshot chunks).
pub const MAX_RAFT_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Concurrent HTTP/2 streams (calls in flight) one connection may open.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// Largest request header block (metadata) a client may send.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// How often the server pings an idle connection; a peer that does not
/// answer within [`KEEPALIVE_TIMEOUT`] is disconnected.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a keepalive ping may go unanswered.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the node's listener and peer links are secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Mutual TLS with these files (the production mode).
    Tls(TlsFiles),
    /// Plain text with no authentication: every caller is trusted as the
    /// actor it names. Development on loopback only, unless `on_network`.
    InsecurePlaintext {
        /// Allow a non-loopback address (`--insecure-plaintext-on-network`).
        on_network: bool,
    },
}

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (unique in the cluster, > 0).
    pub id: NodeId,
    /// Address to listen on and advertise to peers and clients.
    pub grpc_addr: SocketAddr,
    /// Where RocksDB and snapshots live.
    pub data_dir: PathBuf,
    /// The initial voters (including this node), used only to bootstrap a
    /// brand-new cluster.
    pub peers: BTreeMap<NodeId, String>,
    /// Site label of this node.
    pub site: String,
    /// The cluster's name: certificates must name it, and Raft is told it.
    pub cluster: String,
    /// TLS or (development only) plain text.
    pub transport: Transport,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind the latest snapshot, for slow followers.
    pub keep_logs: u64,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`; `None`: not
    /// served.
    pub metrics_addr: Option<SocketAddr>,
    /// Serve them over HTTPS with the node's certificate (`/metrics` then
    /// needs a client certificate of a monitor, staff member or node).
    pub metrics_tls: bool,
    /// Spacing, in log indexes, of the state-chain points replicas compare
    /// (see [`crate::storage::chain`]).
    pub state_check_every: u64,
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout (upper is 1.5 times
    /// this; openraft's leader lease equals the upper bound).
    pub election_timeout_ms: u64,
    /// How often the leader proposes a clock tick (0: never).
    pub tick_interval_ms: u64,
    /// Whether tests may move the proposer clock forward.
    pub test_clock: bool,
    /// This node lost its storage and rejoins an existing cluster: it stays
    /// out of elections until it has caught up (see [`VoteFence`]).
    pub recover: bool,
    /// This is a new node joining a running cluster as a learner: it never
    /// bootstraps and does not expect to be in `peers`.
    pub join: bool,
}

/// Parses `ID=HOST:PORT,ID=HOST:PORT,...`.
pub fn parse_peers(s: &str) -> anyhow::Result<BTreeMap<NodeId, String>> {
    let mut peers = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("peer {part:?} is not ID=HOST:PORT"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .with_context(|| format!("peer id {id:?} is not a positive integer"))?;
        if id == 0 {
            bail!("peer id 0 is reserved; ids start at 1");
        }
        let addr = addr.trim();
        addr.parse::<SocketAddr>().with_context(|| {
            format!("peer {id} address {addr:?} is not HOST:PORT with an IP address")
        })?;
        if peers.insert(id, addr.to_string()).is_some() {
            bail!("peer id {id} appears twice in --peers");
        }
    }
    Ok(peers)
}

impl NodeConfig {
    /// Checks that the settings agree with each other.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.id == 0 {
            bail!("--id must be at least 1");
        }
        if !self.peers.is_empty() && !self.join {
            match self.peers.get(&self.id) {
                None => bail!("--peers must include this node (id {})", self.id),
                Some(addr) if addr.parse::<SocketAddr>().ok() != Some(self.grpc_addr) => bail!(
                    "--peers says node {} is at {addr}, but --grpc-addr is {}",
                    self.id,
                    self.grpc_addr
                ),
                Some(_) => {}
            }
        }
        if let Transport::InsecurePlaintext { on_network: false } = self.transport {
            let mut addrs = vec![self.grpc_addr];
            addrs.extend(
                self.peers
                    .values()
                    .filter_map(|a| a.parse::<SocketAddr>().ok()),
            );
            if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                bail!(
                    "--insecure-plaintext serves and dials without TLS or authentication, so it is \
                     refused on the non-loopback address {a}; configure --tls-ca, --tls-cert and \
                     --tls-key (see docs/security.md), or add --insecure-plaintext-on-network if \
                     this network is truly private"
                );
            }
        }
        kauri_client::tls::Principal::new(&self.cluster, kauri_client::tls::Role::Node, "1")
            .map_err(|e| anyhow::anyhow!("--cluster-name: {e}"))?;
        if self.heartbeat_ms == 0 || self.election_timeout_ms <= self.heartbeat_ms {
            bail!("--election-timeout-ms must be larger than --heartbeat-ms (> 0)");
        }
        Ok(())
    }

    fn raft_config(&self) -> anyhow::Result<openraft::Config> {
        let config = openraft::Config {
            cluster_name: self.cluster.clone(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_ms,
            // Failover takes at least the lease (= the maximum), plus an
            // election: a narrow range keeps both short on a LAN.
            election_timeout_max: self.election_timeout_ms * 3 / 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_logs,
            // The reply to a snapshot's last chunk waits for the follower to
            // install the whole state (about a minute at a million domains).
            // Shorter, and the leader gives up on every install and sends the
            // snapshot again, so a follower that needs one never catches up.
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            ..Default::default()
        };
        Ok(config.validate()?)
    }
}

/// How long the leader waits for a follower to receive and install a
/// snapshot chunk (the last one includes the whole install).
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// Runs a node until SIGINT or SIGTERM.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    config.validate()?;
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("opening data dir {}", config.data_dir.display()))?;
    store.chain_points().set_every(config.state_check_every);
    let state_machine = StateMachineStore::new(store.clone());
    if let Some(index) = state_machine
        .finish_interrupted_install()
        .context("finishing an interrupted snapshot install")?
    {
        tracing::info!(index, "finished the snapshot install the last run was in");
    }
    state_machine
        .remove_leftovers()
        .context("clearing the snapshot directory")?;
    let tls = match &config.transport {
        Transport::Tls(files) => {
            let tls = NodeTls::load(files.clone(), &config.cluster, config.id)
                .context("loading the node's TLS identity")?;
            let state = tls.state();
            tracing::info!(
                principal = %state.principal,
                not_after = %kauri_client::tls::format_time(state.not_after_s),
                "mutual TLS on: clients and peers need a certificate of this cluster's CA"
            );
            Some(Arc::new(tls))
        }
        Transport::InsecurePlaintext { on_network } => {
            tracing::warn!(
                on_network,
                "INSECURE PLAIN TEXT: no TLS and no authentication; every caller can act as \
                 anyone and reach Raft. For development on loopback only"
            );
            None
        }
    };
    let peer_tls = tls.as_ref().map(|t| t.client().clone());
    // A joining node is new: its empty data dir is expected, and the
    // leader brings it up to date.
    let fence = if config.join {
        VoteFence::none()
    } else {
        lost_storage_check(&store, &config, peer_tls.as_ref()).await?
    };
    let contacts = crate::peer::network::Contacts::default();
    let network = Network {
        tls: peer_tls.clone(),
        contacts: contacts.clone(),
        store: Some(store.clone()),
        channels: Default::default(),
    };
    let raft = typ::Raft::new(
        config.id,
        Arc::new(config.raft_config()?),
        network.clone(),
        LogStore::new(store.clone()),
        state_machine,
    )
    .await
    .context("starting raft")?;

    let node = Node {
        raft: raft.clone(),
        store: store.clone(),
        id: config.id,
        site: config.site.clone(),
        clock: Arc::new(api::ProposerClock::new(config.test_clock)),
        tls: tls.clone(),
        throttle: Arc::default(),
        contacts,
        cluster: config.cluster.clone(),
        handover: Arc::default(),
        reads: Arc::default(),
        peers: network,
    };
    if config.test_clock {
        tracing::warn!(
            "--test-clock: the proposer clock can be moved forward over the admin API (tests only)"
        );
    }
    let metrics_tls = match (config.metrics_tls, &tls) {
        (false, _) => None,
        (true, Some(tls)) => Some(tls.clone()),
        (true, None) => bail!(
            "--metrics-tls serves the metrics with the node's certificate, and this node has \
             none (--insecure-plaintext)"
        ),
    };
    let metrics_listener = match config.metrics_addr {
        Some(addr) => {
            let handle = crate::observe::install()?;
            let listener = crate::observe::bind(addr).await?;
            tracing::info!(%addr, scheme = if metrics_tls.is_some() { "https" } else { "http" },
                "serving /metrics, /healthz and /readyz");
            Some((listener, handle))
        }
        None => None,
    };
    let listener = TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("binding {}", config.grpc_addr))?;
    tracing::info!(id = config.id, addr = %config.grpc_addr, site = %config.site, cluster = %config.cluster,
        data_dir = %config.data_dir.display(),
        mode = if tls.is_some() { "mutual TLS" } else { "INSECURE plain text" },
        "kauri-node listening");

    let watcher = tls.clone().map(|t| tokio::spawn(t.watch()));
    // The listener sets TCP_NODELAY on every accepted socket: with Nagle
    // on, a small reply waits for the peer's delayed ACK, 40 ms on Linux.
    let incoming = listener::accept(listener, tls.clone());
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (health_reporter, health_service) = crate::health::service().await;
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(AuthLayer::new(&config.cluster))
        .add_service(
            RaftServer::new(RaftService::new(
                raft.clone(),
                fence,
                crate::storage::inbox::SnapshotInbox::new(store.clone()),
                store.clone(),
            ))
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES),
        )
        .add_service(
            RegistryServer::new(RegistryService::new(node.clone()))
                .max_decoding_message_size(api::MAX_REQUEST_BYTES),
        )
        .add_service(
            AdminServer::new(AdminService::new(node.clone()))
                .max_decoding_message_size(api::MAX_REQUEST_BYTES),
        )
        .add_service(ClusterServer::new(ClusterService::new(node.clone())))
        .add_service(health_service)
        .add_service(crate::reflection::v1().context("building server reflection v1")?)
        .add_service(crate::reflection::v1alpha().context("building server reflection v1alpha")?)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        });
    let server = tokio::spawn(server);

    let bootstrap = tokio::spawn(bootstrap(
        raft.clone(),
        config.clone(),
        peer_tls.clone(),
        store.clone(),
    ));
    let crosscheck = tokio::spawn(crate::crosscheck::run(node.clone(), peer_tls.clone()));
    let leader_watch = tokio::spawn(crate::observe::watch_leader(node.clone()));
    let health = tokio::spawn(crate::health::follow_readiness(
        node.clone(),
        health_reporter.clone(),
    ));
    let metrics = metrics_listener.map(|(listener, handle)| {
        tokio::spawn(crate::observe::serve(
            listener,
            node.clone(),
            handle,
            metrics_tls.clone(),
        ))
    });
    let ticker = (config.tick_interval_ms > 0).then(|| {
        tokio::spawn(tick_loop(
            node.clone(),
            Duration::from_millis(config.tick_interval_ms),
        ))
    });

    let fatal = tokio::select! {
        _ = shutdown_signal() => None,
        e = raft_failure(raft.clone()) => Some(e),
    };
    if let Some(e) = &fatal {
        // Serving on with a dead Raft core would keep answering with frozen
        // state (even claiming to lead); stop so a supervisor restarts us.
        tracing::error!("raft stopped: {e}; shutting down");
    } else {
        tracing::info!("shutting down");
    }
    bootstrap.abort();
    crosscheck.abort();
    leader_watch.abort();
    health.abort();
    // Wait for the abort to land, so no late update revives a status.
    let _ = health.await;
    // Before the server stops: watchers see NOT_SERVING, and their streams
    // end instead of holding up the graceful stop.
    crate::health::shut_down(health_reporter).await;
    if let Some(m) = metrics {
        m.abort();
    }
    if let Some(w) = watcher {
        w.abort();
    }
    if let Some(t) = ticker {
        t.abort();
    }
    let _ = stop_tx.send(true);
    if let Err(e) = raft.shutdown().await {
        tracing::warn!("raft shutdown: {e}");
    }
    let mut server = server;
    match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("grpc server: {e}"),
        Ok(Err(e)) => tracing::warn!("grpc server task: {e}"),
        Err(_) => {
            // Calls still open (a long stream): cut them.
            tracing::warn!("grpc server did not stop within 5 s; closing its connections");
            server.abort();
        }
    }
    store.db().flush_wal(true).context("flushing the WAL")?;
    // Close the database on this thread before the process exits: every
    // other holder (Raft, the API, the log flusher thread, aborted tasks)
    // lets go first.
    drop(node);
    drop(raft);
    if !store.wait_unshared(STORE_CLOSE_PATIENCE).await {
        tracing::warn!(
            "the database was still in use {} s after shutdown; exiting anyway",
            STORE_CLOSE_PATIENCE.as_secs()
        );
    }
    drop(store);
    if let Some(e) = fatal {
        anyhow::bail!("raft stopped: {e}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long shutdown waits for the last users of the database to end.
const STORE_CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// Resolves when the Raft core stops on its own (a fatal storage or
/// internal error), with the reason.
async fn raft_failure(raft: typ::Raft) -> String {
    let mut metrics = raft.metrics();
    loop {
        if let Err(e) = &metrics.borrow().running_state {
            return e.to_string();
        }
        if metrics.changed().await.is_err() {
            return "raft metrics channel closed".to_string();
        }
    }
}

/// Refuses to start a node whose storage is empty while its peers hold
/// cluster state, unless the operator says it lost its disk (`--recover`);
/// with `--recover`, returns the fence that keeps it out of elections until
/// it has caught up.
async fn lost_storage_check(
    store: &Store,
    config: &NodeConfig,
    tls: Option<&ClientTls>,
) -> anyhow::Result<VoteFence> {
    use openraft::storage::RaftLogStorage;
    let mut log = LogStore::new(store.clone());
    let state = log.get_log_state().await.context("reading the raft log")?;
    let empty =
        state.last_log_id.is_none() && log.read_vote().await.context("reading the vote")?.is_none();
    if !empty {
        if config.recover {
            tracing::warn!("--recover given but this node has raft state; ignoring it");
        }
        return Ok(VoteFence::none());
    }
    let mut highest_applied = None;
    for (&id, addr) in config.peers.iter().filter(|(&id, _)| id != config.id) {
        match crate::peer::network::peer_status(addr, tls).await {
            Ok(s) if holds_state(&s) => {
                highest_applied = Some(highest_applied.unwrap_or(0).max(s.applied_index));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("peer {id} at {addr} not reachable at start-up: {e}"),
        }
    }
    match (highest_applied, config.recover) {
        (Some(index), true) => {
            tracing::warn!(
                index,
                "--recover: rejoining with empty storage; not voting until index {index} is applied"
            );
            Ok(VoteFence::until_applied(index))
        }
        (Some(_), false) => anyhow::bail!(
            "the data dir {} is empty but peers already hold cluster state: if this node lost its \
             storage, start it with --recover so it catches up before it votes again \
             (see docs/operations.md, \"Lost disk\")",
            config.data_dir.display()
        ),
        (None, true) => anyhow::bail!(
            "--recover needs a reachable peer that holds cluster state, to know how far to catch up"
        ),
        (None, false) => Ok(VoteFence::none()),
    }
}

/// Whether a peer's status shows it belongs to an initialised cluster.
fn holds_state(s: &kauri_proto::v1::StatusResponse) -> bool {
    s.last_log_index > 0 || !s.members.is_empty() || s.term > 0
}

/// While this node leads, proposes a tick every `interval`: registry time
/// keeps moving (bounded-stale reads can tell how fresh a follower is) and
/// time-driven lifecycle events run. Time itself comes from the proposal,
/// never from apply.
async fn tick_loop(node: Node, interval: Duration) {
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        timer.tick().await;
        if node.raft.metrics().borrow().state != openraft::ServerState::Leader {
            continue;
        }
        match node.propose_tick().await {
            Ok(t) if t.events > 0 => tracing::debug!(events = t.events, "tick"),
            Ok(_) => {}
            Err(e) => tracing::debug!("tick not applied: {}", e.message()),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Initialises a brand-new cluster exactly once.
///
/// Only the node with the lowest id in `--peers` initialises, and only when
/// it has no state of its own and every other peer answers that it has none
/// either. A node restarted with its data, or a wiped node rejoining an
/// existing cluster, never re-bootstraps: it waits for the leader.
async fn bootstrap(raft: typ::Raft, config: NodeConfig, tls: Option<ClientTls>, store: Store) {
    match raft.is_initialized().await {
        Ok(true) => return,
        Ok(false) => {}
        Err(e) => {
            tracing::error!("cannot tell whether raft is initialised: {e}");
            return;
        }
    }
    if config.join || config.peers.keys().next() != Some(&config.id) {
        tracing::info!("waiting to be contacted by the cluster");
        return;
    }
    loop {
        match probe_peers(&config, tls.as_ref()).await {
            Ok(Some(members)) => {
                tracing::info!(voters = ?members.keys().collect::<Vec<_>>(), "bootstrapping a new cluster");
                if store.cluster_id().is_none() {
                    if let Err(e) = store.set_cluster_id(&crate::storage::new_cluster_id()) {
                        tracing::error!("cannot record the new cluster's identity: {e}");
                        return;
                    }
                }
                if let Err(e) = raft.initialize(members).await {
                    tracing::error!("bootstrap failed: {e}");
                }
                return;
            }
            Ok(None) => {
                tracing::info!("a peer already holds cluster state; not bootstrapping");
                return;
            }
            Err(waiting_for) => {
                tracing::debug!("bootstrap waiting for {waiting_for}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Asks every peer for its status. `Ok(Some(members))` when all are fresh,
/// `Ok(None)` when any already has state, `Err` naming a peer not reachable yet.
async fn probe_peers(
    config: &NodeConfig,
    tls: Option<&ClientTls>,
) -> Result<Option<BTreeMap<NodeId, NodeInfo>>, String> {
    let mut members = BTreeMap::new();
    for (&id, addr) in &config.peers {
        if id == config.id {
            members.insert(
                id,
                NodeInfo {
                    addr: addr.clone(),
                    site: config.site.clone(),
                },
            );
            continue;
        }
        let status = crate::peer::network::peer_status(addr, tls)
            .await
            .map_err(|e| format!("node {id} at {addr}: {e}"))?;
        if holds_state(&status) {
            return Ok(None);
        }
        members.insert(
            id,
            NodeInfo {
                addr: addr.clone(),
                site: status.site,
            },
        );
    }
    Ok(Some(members))
}
