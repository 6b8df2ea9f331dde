//! Test harness for real `kauri-node` processes: a cluster with ports and
//! data directories of its own, every process stopped by PID on drop, and
//! waits on conditions with deadlines instead of sleeps. Used by the node's
//! integration tests and by the fault-injection tests.
//!
//! The fault-injection suite itself (kills, pauses, partitions under load with
//! history checkers) builds on this harness.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kauri_client::proto::StatusResponse;
use kauri_client::{ClientConfig, KauriClient};

/// One node of a test cluster.
pub struct TestNode {
    /// Node id (1-based).
    pub id: u64,
    /// gRPC address.
    pub addr: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// File receiving its stdout and stderr.
    pub log: PathBuf,
    child: Option<Child>,
}

/// A running test cluster. Dropping it kills every node it started.
pub struct TestCluster {
    /// The nodes, node id N at index N - 1.
    pub nodes: Vec<TestNode>,
    /// The `--peers` value all nodes were started with.
    pub peers: String,
    node_bin: PathBuf,
    extra_args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// Finds free loopback ports by binding port 0 (and releasing them for the
/// nodes to take).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound socket has an address").port())
        .collect()
}

impl TestCluster {
    /// Starts `n` fresh nodes of the `kauri-node` binary at `node_bin`, with
    /// extra flags.
    pub fn start(node_bin: impl Into<PathBuf>, n: usize, extra_args: &[&str]) -> TestCluster {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let ports = free_ports(n);
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, p)| TestNode {
                id: i as u64 + 1,
                addr: format!("127.0.0.1:{p}"),
                data_dir: dir.path().join(format!("node{}", i + 1)),
                log: dir.path().join(format!("node{}.log", i + 1)),
                child: None,
            })
            .collect();
        let mut cluster = TestCluster {
            nodes,
            peers,
            node_bin: node_bin.into(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            _dir: dir,
        };
        for id in 1..=n as u64 {
            cluster.spawn(id);
        }
        cluster
    }

    /// The endpoints of all nodes.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// A client of the whole cluster.
    pub fn client(&self) -> KauriClient {
        KauriClient::new(&self.endpoints(), ClientConfig::default()).expect("valid endpoints")
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[(id - 1) as usize]
    }

    /// Starts (or restarts, with its data) node `id`.
    pub fn spawn(&mut self, id: u64) {
        let peers = self.peers.clone();
        let extra = self.extra_args.clone();
        let bin = self.node_bin.clone();
        let node = &mut self.nodes[(id - 1) as usize];
        assert!(node.child.is_none(), "node {id} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open node log");
        let child = Command::new(&bin)
            .args([
                "--id",
                &id.to_string(),
                "--grpc-addr",
                &node.addr,
                "--peers",
                &peers,
                "--site",
                "test",
            ])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(&extra)
            .env("KAURI_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn kauri-node");
        node.child = Some(child);
    }

    /// SIGKILLs node `id` (no chance to flush anything).
    pub fn kill(&mut self, id: u64) {
        let node = &mut self.nodes[(id - 1) as usize];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of node `id`'s log, for failure messages.
    pub fn log_tail(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.node(id).log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits until the running nodes agree on a leader that is itself running
    /// and says it leads, and returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let client = self.client();
        let running: Vec<(u64, String)> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| (n.id, n.addr.clone()))
            .collect();
        wait_until(timeout, "a leader all running nodes agree on", || {
            let client = client.clone();
            let running = running.clone();
            async move {
                let mut leader = None;
                for (_, addr) in &running {
                    let s = client.cluster_status(addr).await.ok()?;
                    if s.leader_id == 0 || (leader.is_some() && leader != Some(s.leader_id)) {
                        return None;
                    }
                    leader = Some(s.leader_id);
                }
                let leader = leader?;
                let (_, addr) = running.iter().find(|(id, _)| *id == leader)?;
                let s = client.cluster_status(addr).await.ok()?;
                (s.role == "leader").then_some(leader)
            }
        })
        .await
    }

    /// Waits until node `id` has applied at least `index`; returns its status.
    pub async fn wait_for_applied(&self, id: u64, index: u64, timeout: Duration) -> StatusResponse {
        let client = self.client();
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

    /// Status of node `id`.
    pub async fn status(&self, id: u64) -> Option<StatusResponse> {
        self.client().cluster_status(&self.node(id).addr).await.ok()
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
