//! Test harness for real `kauri-node` processes: a cluster with ports and
//! data directories of its own, every process stopped by PID on drop, and
//! waits on conditions with deadlines instead of sleeps. Used by the node's
//! integration tests, by the CLI tests and by the fault-injection tests.
//!
//! On top of the harness sits the chaos toolkit:
//! - [`history`]: a thread-safe recorder of every operation a workload
//!   invokes, with monotonic invocation and completion times and its
//!   outcome (ok, a definite rejection, or unknown);
//! - [`workload`]: registrars that check, create, renew, update and read
//!   domains concurrently, racing for a pool of hot names, retrying unknown
//!   outcomes with the same client transaction id;
//! - [`faults`]: SIGKILL, SIGSTOP/SIGCONT, restarts, wipe-and-rejoin, and
//!   network partitions between nodes placed in network namespaces;
//! - [`checkers`]: linearizability per domain name, acknowledged writes,
//!   drop-catch races, money conservation and replica convergence;
//! - [`scenario`]: a whole run (cluster, workload, faults, checks).

pub mod checkers;
pub mod delay;
pub mod faults;
pub mod fixtures;
pub mod history;
pub mod scenario;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use kauri_client::devpki::DEV_STAFF;
use kauri_client::devpki::{DevCa, DevCerts};
use kauri_client::proto::registry_client::RegistryClient;
use kauri_client::proto::{CheckRequest, StateDigestResponse, StatusResponse};
use kauri_client::tls::{ClientTls, Principal, Role, TlsFiles};
use kauri_client::{ClientConfig, KauriClient};

use crate::faults::NetLab;

/// The `kauri-node` binary of this build.
///
/// A test of this crate cannot name another package's binary with
/// `CARGO_BIN_EXE_*`, so it looks next to its own executable:
/// `target/<profile>/deps/<test>` → `target/<profile>/kauri-node`.
/// `cargo test --workspace` builds it; panics with what to run otherwise.
pub fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| {
            if deps.file_name().is_some_and(|n| n == "deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let bin = profile_dir.join("kauri-node");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace tests (cargo test --workspace) or \
         `cargo build -p kauri-node` first",
        bin.display()
    );
    bin
}

/// The cluster name of test clusters' certificates.
pub const TEST_CLUSTER: &str = "test";

/// One node of a test cluster.
pub struct TestNode {
    /// Node id (1-based).
    pub id: u64,
    /// gRPC address.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its `--site`.
    pub site: String,
    /// Where it serves `/metrics`, `/healthz` and `/readyz` (HOST:PORT).
    pub metrics_addr: String,
    /// File receiving its stdout and stderr.
    pub log: PathBuf,
    child: Option<Child>,
    /// Command prefix that places the process (e.g. `ip netns exec NS`).
    wrapper: Vec<String>,
    /// Stopped with SIGSTOP and not yet continued.
    paused: bool,
}

/// How [`TestCluster::launch`] sets a cluster up.
struct Layout {
    /// Mutual TLS with a development CA (else plain text).
    tls: bool,
    /// Nodes serve `--metrics-addr`.
    metrics: bool,
    /// The sites of spare nodes: the last nodes, not among the initial
    /// voters and not started, to be added later (`--join`).
    spare_sites: Vec<String>,
    /// Start the voters at once (else the test starts them).
    start: bool,
}

impl Layout {
    /// Every initial voter started at once, no spares.
    fn new(tls: bool, metrics: bool) -> Self {
        Layout {
            tls,
            metrics,
            spare_sites: Vec::new(),
            start: true,
        }
    }
}

/// A running test cluster. Dropping it kills every node it started (by PID)
/// and then removes its network namespaces, if it has any.
pub struct TestCluster {
    /// The nodes, node id N at index N - 1.
    pub nodes: Vec<TestNode>,
    /// The `--peers` value all nodes were started with.
    pub peers: String,
    node_bin: PathBuf,
    extra_args: Vec<String>,
    /// The cluster's certificates when it runs mutual TLS.
    pki: Option<(DevCerts, DevCa)>,
    /// Registrar identities issued so far, by registrar id.
    registrar_files: Mutex<BTreeMap<String, TlsFiles>>,
    // Dropped after the nodes are killed (see `Drop`), before the temp dir.
    net: Option<NetLab>,
    /// Whether nodes serve metrics (`--metrics-addr`).
    metrics: bool,
    _dir: tempfile::TempDir,
}

/// Ports this process has handed out: concurrent tests in one binary each
/// start clusters, and a port released by one call must not be handed to
/// another cluster before its node binds it.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Finds free loopback ports by binding port 0 (and releasing them for the
/// nodes to take), never one this process handed out before.
fn free_ports(n: usize) -> Vec<u16> {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        assert!(
            held.len() < 10_000,
            "no unused loopback port among 10,000 tries"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
        let port = listener
            .local_addr()
            .expect("bound socket has an address")
            .port();
        if handed.insert(port) {
            ports.push(port);
        }
        // Held until all are chosen, so the kernel offers other ports.
        held.push(listener);
    }
    ports
}

/// `n` free loopback addresses.
fn loopback_addrs(n: usize) -> Vec<String> {
    free_ports(n)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect()
}

/// A client for probing single nodes: short timeouts, so a paused or
/// cut-off node costs two seconds, not the default deadline.
fn probe_client(endpoints: &[String], tls: Option<ClientTls>) -> KauriClient {
    let config = ClientConfig {
        tls,
        deadline: Duration::from_secs(3),
        attempt_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_millis(50),
    };
    KauriClient::new(endpoints, config).expect("valid endpoints")
}

impl TestCluster {
    /// Starts `n` fresh nodes of the `kauri-node` binary at `node_bin`, with
    /// extra flags, on loopback ports, over mutual TLS: a development CA
    /// in the cluster's directory issues the nodes' certificates (cluster
    /// name [`TEST_CLUSTER`]) and the staff identity that [`client`] uses;
    /// [`registrar_client`] and [`pki`] issue more.
    ///
    /// [`client`]: TestCluster::client
    /// [`registrar_client`]: TestCluster::registrar_client
    /// [`pki`]: TestCluster::pki
    pub fn start(node_bin: impl Into<PathBuf>, n: usize, extra_args: &[&str]) -> TestCluster {
        Self::launch(
            node_bin.into(),
            loopback_addrs(n),
            Vec::new(),
            extra_args,
            None,
            Layout::new(true, true),
        )
    }

    /// Like [`TestCluster::start`] with `voters` initial voters, plus one
    /// spare node per entry of `spare_sites` (ids after the voters, each in
    /// that site) that is not started: [`TestCluster::spawn_with`] starts
    /// it with `--join` when a test adds it to the membership.
    pub fn start_with_spares(
        node_bin: impl Into<PathBuf>,
        voters: usize,
        spare_sites: &[&str],
        extra_args: &[&str],
    ) -> TestCluster {
        Self::launch(
            node_bin.into(),
            loopback_addrs(voters + spare_sites.len()),
            Vec::new(),
            extra_args,
            None,
            Layout {
                spare_sites: spare_sites.iter().map(|s| s.to_string()).collect(),
                ..Layout::new(true, true)
            },
        )
    }

    /// Like [`TestCluster::start`], but no node is started: the test
    /// prepares their data directories (e.g. restores a backup into one)
    /// and starts them with [`TestCluster::spawn`] or
    /// [`TestCluster::spawn_with`].
    pub fn prepare(node_bin: impl Into<PathBuf>, n: usize, extra_args: &[&str]) -> TestCluster {
        Self::launch(
            node_bin.into(),
            loopback_addrs(n),
            Vec::new(),
            extra_args,
            None,
            Layout {
                start: false,
                ..Layout::new(true, true)
            },
        )
    }

    /// Like [`TestCluster::start`], but in plain text with no
    /// authentication (`--insecure-plaintext` on loopback): every caller is
    /// trusted as the actor it names. For the one plain-text smoke test
    /// and for benchmarks that compare TLS against plain text, nothing else.
    pub fn start_plaintext(
        node_bin: impl Into<PathBuf>,
        n: usize,
        extra_args: &[&str],
    ) -> TestCluster {
        Self::launch(
            node_bin.into(),
            loopback_addrs(n),
            Vec::new(),
            extra_args,
            None,
            Layout::new(false, true),
        )
    }

    /// Like [`TestCluster::start`] (`tls`) or [`TestCluster::start_plaintext`],
    /// but without `--metrics-addr`: no metrics recorder is installed, so a
    /// benchmark can measure what metrics cost on the write path.
    pub fn start_unmonitored(
        node_bin: impl Into<PathBuf>,
        n: usize,
        extra_args: &[&str],
        tls: bool,
    ) -> TestCluster {
        Self::launch(
            node_bin.into(),
            loopback_addrs(n),
            Vec::new(),
            extra_args,
            None,
            Layout {
                tls,
                metrics: false,
                spare_sites: Vec::new(),
                start: true,
            },
        )
    }

    /// Starts one fresh node in each network namespace of `net` (each node
    /// with an address of its own, so [`NetLab`] can cut links between
    /// them), over mutual TLS: the nodes' certificates name their
    /// namespace addresses.
    pub fn start_in_namespaces(
        node_bin: impl Into<PathBuf>,
        net: NetLab,
        extra_args: &[&str],
    ) -> TestCluster {
        let addrs = (1..=net.nodes() as u64)
            .map(|id| net.node_addr(id))
            .collect();
        let wrappers = (1..=net.nodes() as u64).map(|id| net.wrapper(id)).collect();
        Self::launch(
            node_bin.into(),
            addrs,
            wrappers,
            extra_args,
            Some(net),
            Layout::new(true, true),
        )
    }

    fn launch(
        node_bin: PathBuf,
        addrs: Vec<String>,
        mut wrappers: Vec<Vec<String>>,
        extra_args: &[&str],
        net: Option<NetLab>,
        layout: Layout,
    ) -> TestCluster {
        let Layout {
            tls,
            metrics,
            spare_sites,
            start,
        } = layout;
        let voters = addrs.len() - spare_sites.len();
        let dir = tempfile::tempdir().expect("create a temp dir");
        let pki = tls.then(|| {
            let hosts: Vec<String> = addrs
                .iter()
                .filter_map(|a| a.rsplit_once(':').map(|(h, _)| h.to_string()))
                .collect();
            DevCerts::create(
                &dir.path().join("pki"),
                TEST_CLUSTER,
                addrs.len() as u64,
                &hosts,
            )
            .expect("issue the test cluster's certificates")
        });
        // Run a private copy: a rebuild of the shared target directory while
        // the cluster runs must not restart nodes with another binary.
        let private_bin = dir.path().join("kauri-node");
        std::fs::copy(&node_bin, &private_bin)
            .unwrap_or_else(|e| panic!("copy {} into the cluster dir: {e}", node_bin.display()));
        let node_bin = private_bin;
        let n = addrs.len();
        wrappers.resize(n, Vec::new());
        let peers = addrs
            .iter()
            .take(voters)
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let metrics_ports = free_ports(n);
        let nodes = addrs
            .into_iter()
            .zip(wrappers)
            .enumerate()
            .map(|(i, (addr, wrapper))| TestNode {
                id: i as u64 + 1,
                metrics_addr: format!(
                    "{}:{}",
                    addr.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h),
                    metrics_ports[i]
                ),
                addr,
                data_dir: dir.path().join(format!("node{}", i + 1)),
                site: i
                    .checked_sub(voters)
                    .map_or_else(|| "test".to_string(), |s| spare_sites[s].clone()),
                log: dir.path().join(format!("node{}.log", i + 1)),
                child: None,
                wrapper,
                paused: false,
            })
            .collect();
        let mut cluster = TestCluster {
            nodes,
            peers,
            node_bin,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            pki,
            registrar_files: Mutex::default(),
            net,
            metrics,
            _dir: dir,
        };
        if start {
            for id in 1..=voters as u64 {
                cluster.spawn(id);
            }
        }
        cluster
    }

    /// The endpoints of all nodes.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// A client of the whole cluster (over TLS, as the staff member of the
    /// cluster's certificates).
    pub fn client(&self) -> KauriClient {
        self.client_with(ClientConfig::default())
    }

    /// A client of the whole cluster with the given configuration (over
    /// TLS, as the staff member unless `config` has an identity).
    pub fn client_with(&self, mut config: ClientConfig) -> KauriClient {
        if config.tls.is_none() {
            config.tls = self.staff_tls();
        }
        KauriClient::new(&self.endpoints(), config).expect("valid endpoints")
    }

    /// A client of the whole cluster with the identity in `files`.
    pub fn client_as(&self, files: &TlsFiles) -> KauriClient {
        let tls = ClientTls::load(files.clone()).expect("load the test identity");
        self.client_with(ClientConfig {
            tls: Some(tls),
            ..Default::default()
        })
    }

    /// A client of the whole cluster acting as registrar `id`: over TLS
    /// with a registrar certificate of its own (issued on first use; a
    /// registrar certificate acts only as its own registrar), in plain text
    /// the same as [`TestCluster::client`].
    pub fn registrar_client(&self, id: &str) -> KauriClient {
        self.registrar_client_with(id, ClientConfig::default())
    }

    /// [`TestCluster::registrar_client`] with the given deadlines.
    pub fn registrar_client_with(&self, id: &str, config: ClientConfig) -> KauriClient {
        self.client_with(ClientConfig {
            tls: self.registrar_tls(id),
            ..config
        })
    }

    /// The identity files of registrar `id` (issued by the cluster's CA on
    /// first use), or `None` in plain text.
    pub fn registrar_identity(&self, id: &str) -> Option<TlsFiles> {
        let (certs, ca) = self.pki.as_ref()?;
        let mut issued = self
            .registrar_files
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(files) = issued.get(id) {
            return Some(files.clone());
        }
        let principal = Principal::new(TEST_CLUSTER, Role::Registrar, id)
            .unwrap_or_else(|e| panic!("registrar id {id:?} as a principal: {e}"));
        let files = ca
            .write(
                &certs.dir,
                &format!("registrar-{id}"),
                &certs.ca,
                &principal,
                &[],
            )
            .unwrap_or_else(|e| panic!("issue registrar {id}'s certificate: {e}"));
        issued.insert(id.to_string(), files.clone());
        Some(files)
    }

    /// Registrar `id`'s loaded identity, or `None` in plain text.
    pub fn registrar_tls(&self, id: &str) -> Option<ClientTls> {
        self.registrar_identity(id)
            .map(|files| ClientTls::load(files).expect("load a registrar identity"))
    }

    /// The certificates and CA of the cluster, unless it runs in plain
    /// text ([`TestCluster::start_plaintext`]).
    pub fn pki(&self) -> Option<&(DevCerts, DevCa)> {
        self.pki.as_ref()
    }

    /// The staff identity (staff member [`DEV_STAFF`]) [`TestCluster::client`]
    /// uses, or `None` in plain text.
    pub fn staff_tls(&self) -> Option<ClientTls> {
        self.pki.as_ref().map(|(certs, _)| {
            ClientTls::load(certs.staff.clone()).expect("load the staff identity")
        })
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[(id - 1) as usize]
    }

    /// The network namespaces the nodes run in, if they were started with
    /// [`TestCluster::start_in_namespaces`].
    pub fn net(&self) -> Option<&NetLab> {
        self.net.as_ref()
    }

    /// Ids of all nodes.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Ids of the nodes whose process is running (paused ones included).
    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// Whether node `id`'s process is running (possibly paused).
    pub fn is_running(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// Whether node `id` is stopped with SIGSTOP.
    pub fn is_paused(&self, id: u64) -> bool {
        self.node(id).paused
    }

    /// The PID of node `id`'s process, if it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.node(id).child.as_ref().map(Child::id)
    }

    /// Starts (or restarts, with its data) node `id`.
    ///
    /// The process gets SIGKILL if the thread that spawned it exits (so a
    /// killed test run leaves no nodes behind): call this from the test's
    /// own thread or a runtime worker, not from a short-lived thread.
    pub fn spawn(&mut self, id: u64) {
        self.spawn_with(id, &[]);
    }

    /// Starts (or restarts) node `id` with flags beyond the cluster's own,
    /// e.g. `--recover` after its disk was wiped.
    pub fn spawn_with(&mut self, id: u64, more_args: &[&str]) {
        let peers = self.peers.clone();
        let mut extra = self.extra_args.clone();
        extra.extend(more_args.iter().map(|s| s.to_string()));
        match &self.pki {
            None => extra.push("--insecure-plaintext".to_string()),
            Some((certs, _)) => {
                let files = &certs.nodes[(id - 1) as usize];
                extra.extend(["--cluster-name".to_string(), TEST_CLUSTER.to_string()]);
                for (flag, path) in [
                    ("--tls-ca", &files.ca),
                    ("--tls-cert", &files.cert),
                    ("--tls-key", &files.key),
                ] {
                    extra.extend([flag.to_string(), path.display().to_string()]);
                }
            }
        }
        let bin = self.node_bin.clone();
        let node = &mut self.nodes[(id - 1) as usize];
        assert!(node.child.is_none(), "node {id} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open node log");
        let mut command = match node.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        command
            .args([
                "--id",
                &id.to_string(),
                "--grpc-addr",
                &node.addr,
                "--peers",
                &peers,
                "--site",
                &node.site,
            ])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(if self.metrics {
                vec!["--metrics-addr", node.metrics_addr.as_str()]
            } else {
                Vec::new()
            })
            .args(&extra)
            .env("KAURI_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        // A freshly copied binary can be briefly "text file busy": another
        // test thread may have forked while the copy was open for writing,
        // and its child holds that descriptor until it execs. Retry briefly.
        let mut attempts = 0;
        let child = loop {
            match command.spawn() {
                Ok(child) => break child,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("spawn {}: {e}", bin.display()),
            }
        };
        node.child = Some(child);
        node.paused = false;
    }

    /// SIGKILLs node `id` (no chance to flush anything).
    pub fn kill(&mut self, id: u64) {
        let node = &mut self.nodes[(id - 1) as usize];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// Stops node `id` the way a supervisor does, with SIGTERM by PID, and
    /// returns how it exited (`None` if it was not running). A node that
    /// has not exited within `patience` is SIGKILLed and reported as such.
    pub fn terminate(&mut self, id: u64, patience: Duration) -> Option<std::process::ExitStatus> {
        self.signal(id, libc::SIGTERM);
        let node = &mut self.nodes[(id - 1) as usize];
        let mut child = node.child.take()?;
        node.paused = false;
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to node `id`'s process, by PID.
    fn signal(&self, id: u64, signal: libc::c_int) {
        if let Some(pid) = self.pid(id) {
            // SAFETY: kill(2) with the PID of a child we have not reaped.
            let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
            assert_eq!(rc, 0, "kill({pid}, {signal}) failed for node {id}");
        }
    }

    /// Freezes node `id` with SIGSTOP: it keeps its sockets but answers
    /// nothing, like a long GC pause or a stalled VM.
    pub fn pause(&mut self, id: u64) {
        if self.is_running(id) && !self.is_paused(id) {
            self.signal(id, libc::SIGSTOP);
            self.nodes[(id - 1) as usize].paused = true;
        }
    }

    /// Resumes a node frozen by [`TestCluster::pause`] (SIGCONT).
    pub fn resume(&mut self, id: u64) {
        if self.is_paused(id) {
            self.signal(id, libc::SIGCONT);
            self.nodes[(id - 1) as usize].paused = false;
        }
    }

    /// Deletes the data directory of stopped node `id` (a lost disk). Start
    /// it again with [`TestCluster::spawn`]: it must rejoin empty.
    pub fn wipe(&mut self, id: u64) {
        assert!(!self.is_running(id), "stop node {id} before wiping it");
        let dir = &self.node(id).data_dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir).expect("remove the node's data dir");
        }
    }

    /// The last lines of node `id`'s log, for failure messages.
    pub fn log_tail(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.node(id).log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Copies every node's log into a fresh directory under the system temp
    /// dir (the cluster's own directory goes when it is dropped) and
    /// returns it, for failure reports.
    pub fn save_logs(&self, label: &str) -> Option<PathBuf> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let dir = std::env::temp_dir()
            .join("kauri-chaos")
            .join(format!("{label}-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        for node in &self.nodes {
            let _ = std::fs::copy(&node.log, dir.join(format!("node{}.log", node.id)));
        }
        Some(dir)
    }

    /// Waits until the running nodes agree on a leader that is itself running
    /// and says it leads, and returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        self.wait_for_leader_among(&self.running_ids(), timeout)
            .await
    }

    /// Waits until nodes `ids` agree on a leader among them that says it
    /// leads, and returns its id.
    pub async fn wait_for_leader_among(&self, ids: &[u64], timeout: Duration) -> u64 {
        let client = probe_client(&self.endpoints(), self.staff_tls());
        let members: Vec<(u64, String)> = ids
            .iter()
            .map(|&id| (id, self.node(id).addr.clone()))
            .collect();
        wait_until(timeout, "a leader all running nodes agree on", || {
            let client = client.clone();
            let members = members.clone();
            async move {
                let mut leader = None;
                for (_, addr) in &members {
                    let s = client.cluster_status(addr).await.ok()?;
                    if s.leader_id == 0 || (leader.is_some() && leader != Some(s.leader_id)) {
                        return None;
                    }
                    leader = Some(s.leader_id);
                }
                let leader = leader?;
                let (_, addr) = members.iter().find(|(id, _)| *id == leader)?;
                let s = client.cluster_status(addr).await.ok()?;
                (s.role == "leader").then_some(leader)
            }
        })
        .await
    }

    /// The node that says it leads and is named leader by a majority of
    /// the nodes that answer now; `None` if there is no such node (one quick
    /// round of status calls, no waiting).
    pub async fn current_leader(&self) -> Option<u64> {
        let client = probe_client(&self.endpoints(), self.staff_tls());
        let mut votes = std::collections::BTreeMap::<u64, usize>::new();
        let mut claims = Vec::new();
        for id in self.running_ids() {
            if self.is_paused(id) {
                continue;
            }
            if let Ok(s) = client.cluster_status(&self.node(id).addr).await {
                if s.leader_id != 0 {
                    *votes.entry(s.leader_id).or_default() += 1;
                }
                if s.role == "leader" {
                    claims.push((s.term, id));
                }
            }
        }
        let majority = self.nodes.len() / 2 + 1;
        claims.sort();
        claims
            .into_iter()
            .rev()
            .map(|(_, id)| id)
            .find(|id| votes.get(id).copied().unwrap_or(0) >= majority)
    }

    /// Waits until node `id` has applied at least `index`; returns its status.
    pub async fn wait_for_applied(&self, id: u64, index: u64, timeout: Duration) -> StatusResponse {
        let client = probe_client(&self.endpoints(), self.staff_tls());
        let addr = self.node(id).addr.clone();
        wait_until(
            timeout,
            &format!("node {id} to apply index {index}"),
            || {
                let client = client.clone();
                let addr = addr.clone();
                async move {
                    let s = client.cluster_status(&addr).await.ok()?;
                    (s.applied_index >= index).then_some(s)
                }
            },
        )
        .await
    }

    /// Whether node `id` serves a linearizable read right now (its Raft core
    /// is alive and it can confirm leadership with a quorum, or it is a
    /// follower that knows the leader). `Cluster.Status` alone cannot tell:
    /// it reports the last metrics even of a node whose Raft core died.
    pub async fn serves_linearizable_read(&self, id: u64) -> bool {
        let client = probe_client(&self.endpoints(), self.staff_tls());
        let request = CheckRequest {
            registrar: String::new(),
            names: vec!["probe.invalid".into()],
            read: kauri_client::linearizable(),
            fees: Vec::new(),
        };
        client
            .on_endpoint(&self.node(id).addr, |channel| async move {
                RegistryClient::new(channel).check_domains(request).await
            })
            .await
            .is_ok()
    }

    /// Status of node `id`.
    pub async fn status(&self, id: u64) -> Option<StatusResponse> {
        probe_client(&self.endpoints(), self.staff_tls())
            .cluster_status(&self.node(id).addr)
            .await
            .ok()
    }

    /// Waits until every running node has applied everything the leader had
    /// in its log when this was called.
    pub async fn wait_caught_up(&self, timeout: Duration) {
        let leader = self.wait_for_leader(timeout).await;
        let target = self
            .status(leader)
            .await
            .map(|s| s.last_log_index)
            .unwrap_or(0);
        for id in self.running_ids() {
            self.wait_for_applied(id, target, timeout).await;
        }
    }

    /// Asks every running node for its state digest, until all answer at the
    /// same applied index (the leader's ticks keep the index moving, so this
    /// may take a few rounds) or `timeout` passes. Returns the last round:
    /// the caller (see [`checkers::check_convergence`]) decides whether they
    /// agree. Two digests at the same index are never retried away.
    pub async fn converged_digests(&self, timeout: Duration) -> Vec<StateDigestResponse> {
        // A digest is a full scan of the node's state, which takes seconds
        // on a large state in a debug build: allow each ask the whole
        // timeout, not a probe's two seconds.
        let client = KauriClient::new(
            &self.endpoints(),
            ClientConfig {
                deadline: timeout,
                attempt_timeout: timeout,
                retry_backoff: Duration::from_millis(50),
                tls: self.staff_tls(),
            },
        )
        .expect("valid endpoints");
        let deadline = Instant::now() + timeout;
        let mut last = Vec::new();
        loop {
            // Ask every node at once: the leader keeps proposing ticks, so
            // asking one after another (each a full scan) rarely catches
            // them all at the same applied index on a large state.
            let mut asks = tokio::task::JoinSet::new();
            for id in self.running_ids() {
                let client = client.clone();
                let addr = self.node(id).addr.clone();
                asks.spawn(async move { client.state_digest(&addr).await.ok() });
            }
            let mut round: Vec<StateDigestResponse> =
                asks.join_all().await.into_iter().flatten().collect();
            round.sort_by_key(|d| d.node_id);
            let same_index = round.len() == self.running_ids().len()
                && round
                    .windows(2)
                    .all(|w| w[0].applied_index == w[1].applied_index);
            let split = round.iter().any(|a| {
                round
                    .iter()
                    .any(|b| a.applied_index == b.applied_index && a.digest != b.digest)
            });
            last = if round.is_empty() { last } else { round };
            if same_index || split || Instant::now() > deadline {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // `net` drops next: the namespaces go once nothing runs in them.
    }
}

/// Polls `probe` until it yields a value or `timeout` passes (then panics
/// naming `what`).
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
