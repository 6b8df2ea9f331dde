//! Faults injected into a running [`TestCluster`]: process faults (SIGKILL
//! of the leader, a follower or every node, SIGSTOP/SIGCONT pauses longer
//! than the election timeout, restarts with the same data, a follower's
//! disk wiped so it must rejoin by snapshot) and network faults (the leader
//! isolated, a minority/majority split with the leader in the minority,
//! the leader's packets lost one way).
//!
//! Network faults need each node in a network namespace of its own
//! ([`NetLab`]): a veth pair per node into a hub namespace that bridges
//! them, and one more from the test's own namespace so the test can reach
//! every node. A link is cut by dropping packets at the receiving node's
//! ingress with an `ip rule ... blackhole` (silently, like a firewall DROP),
//! so only iproute2 is needed: no iptables, no tc qdiscs (which minimal
//! kernels often lack). Making namespaces needs root; [`NetLab::create`]
//! says why it cannot, and the tests then skip network faults loudly.
//!
//! Everything is cleaned up on drop: processes are killed by PID (by
//! [`TestCluster`]), namespaces and links are deleted by the names this
//! process gave them. Namespaces left by an earlier test process that died
//! are removed when a new [`NetLab`] is made (their names carry the PID).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::history::Recorder;
use crate::TestCluster;

/// The port every node listens on inside its namespace.
const NODE_PORT: u16 = 7100;
/// Rule priority of the drop rules (before the local table, moved to 1000).
const DROP_RULE_PREF: u32 = 100;

static LABS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Network namespaces for the nodes of one cluster (see the module
/// documentation). Node `i` is at `10.231.X.i`, the test at `10.231.X.254`.
pub struct NetLab {
    nodes: usize,
    /// Third octet of the subnet.
    subnet: u8,
    hub: String,
    node_ns: Vec<String>,
    host_if: String,
    /// Cut links (from, to): packets from `from` are dropped at `to`.
    cut: Mutex<BTreeSet<(u64, u64)>>,
}

impl fmt::Debug for NetLab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NetLab({} nodes in 10.231.{}.0/24)",
            self.nodes, self.subnet
        )
    }
}

/// Deletes namespaces a dead test process left behind (named
/// `kc<pid>x<n>...` by [`NetLab::create`]).
fn sweep_stale_namespaces() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix("kc") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl NetLab {
    /// Builds namespaces for `nodes` nodes, or says why it cannot (not
    /// root, no `ip`, no namespace support).
    pub fn create(nodes: usize) -> Result<NetLab, String> {
        assert!((1..=200).contains(&nodes), "1 to 200 nodes");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network faults need root (network namespaces)".into());
        }
        ip(&["-V"]).map_err(|e| format!("network faults need iproute2: {e}"))?;
        sweep_stale_namespaces();

        let pid = std::process::id();
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("kc{pid}x{n}");
        let in_use = format!(
            "{}{}",
            ip(&["-4", "-o", "addr", "show"]).unwrap_or_default(),
            ip(&["-4", "route", "show"]).unwrap_or_default()
        );
        let subnet = (0..250u32)
            .map(|i| ((pid + n * 7 + i) % 250 + 1) as u8)
            .find(|s| !in_use.contains(&format!("10.231.{s}.")))
            .ok_or("no free 10.231.X.0/24 subnet")?;
        let mut lab = NetLab {
            nodes,
            subnet,
            hub: format!("{tag}h"),
            node_ns: Vec::new(),
            host_if: tag.clone(),
            cut: Mutex::new(BTreeSet::new()),
        };
        // `lab` cleans up whatever exists if a step fails.
        lab.build(&tag)?;
        Ok(lab)
    }

    fn build(&mut self, tag: &str) -> Result<(), String> {
        let hub = self.hub.clone();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;

        // The test's own end.
        let host = self.host_if.clone();
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", "uplink", "netns", &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", "uplink", "master", "br0"])?;
        ip(&["-n", &hub, "link", "set", "uplink", "up"])?;
        let host_ip = format!("10.231.{}.254/24", self.subnet);
        ip(&["addr", "add", &host_ip, "dev", &host])?;
        ip(&["link", "set", &host, "up"])?;

        for id in 1..=self.nodes {
            let ns = format!("{tag}n{id}");
            ip(&["netns", "add", &ns])?;
            self.node_ns.push(ns.clone());
            let port = format!("p{id}");
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            let addr = format!("10.231.{}.{id}/24", self.subnet);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            // Let drop rules come before local delivery.
            ip(&["-n", &ns, "rule", "add", "pref", "1000", "lookup", "local"])?;
            ip(&["-n", &ns, "rule", "del", "pref", "0"])?;
        }
        // Nodes are started with `ip netns exec`, which some containers
        // refuse (it remounts /sys): find out now, not when a node fails.
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let probe = Command::new("ip")
            .args(["netns", "exec", &self.node_ns[0]])
            .arg(&exe)
            .arg("--list")
            .output()
            .map_err(|e| format!("cannot run `ip netns exec`: {e}"))?;
        if !probe.status.success() {
            return Err(format!(
                "`ip netns exec` does not work here: {}",
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Node `id`'s IP address.
    pub fn node_ip(&self, id: u64) -> String {
        format!("10.231.{}.{id}", self.subnet)
    }

    /// Node `id`'s gRPC address.
    pub fn node_addr(&self, id: u64) -> String {
        format!("{}:{NODE_PORT}", self.node_ip(id))
    }

    /// The command prefix that runs a program in node `id`'s namespace.
    pub fn wrapper(&self, id: u64) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.node_ns[(id - 1) as usize].clone(),
        ]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<(u64, u64)>> {
        self.cut.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn drop_rule(&self, from: u64, to: u64, verb: &str) -> Result<String, String> {
        let ns = &self.node_ns[(to - 1) as usize];
        let source = format!("{}/32", self.node_ip(from));
        let pref = DROP_RULE_PREF.to_string();
        ip(&[
            "-n",
            ns,
            "rule",
            verb,
            "pref",
            &pref,
            "from",
            &source,
            "iif",
            "eth0",
            "blackhole",
        ])
    }

    /// Drops every packet from node `from` to node `to` (one way).
    pub fn cut(&self, from: u64, to: u64) -> Result<(), String> {
        if self.lock().insert((from, to)) {
            self.drop_rule(from, to, "add")?;
        }
        Ok(())
    }

    /// Cuts every link between `a` and `b`, both ways.
    pub fn partition(&self, a: &[u64], b: &[u64]) -> Result<(), String> {
        for &x in a {
            for &y in b {
                self.cut(x, y)?;
                self.cut(y, x)?;
            }
        }
        Ok(())
    }

    /// Restores every link.
    pub fn heal(&self) -> Result<(), String> {
        let cut: Vec<(u64, u64)> = std::mem::take(&mut *self.lock()).into_iter().collect();
        for (from, to) in cut {
            self.drop_rule(from, to, "del")?;
        }
        Ok(())
    }

    /// The links currently cut, as (from, to).
    pub fn cut_links(&self) -> Vec<(u64, u64)> {
        self.lock().iter().copied().collect()
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for ns in &self.node_ns {
            let _ = ip(&["netns", "del", ns]);
        }
        // Deleting the hub deletes the test's veth with it (its peer lives
        // there); delete it directly too in case the hub never got it.
        let _ = ip(&["netns", "del", &self.hub]);
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

/// A fault the [`Nemesis`] can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL the leader; restart it with its data after the hold.
    KillLeader,
    /// SIGKILL a follower; restart it with its data after the hold.
    KillFollower,
    /// SIGKILL every node at once (a power cut); restart all with their data.
    CrashAll,
    /// SIGSTOP the leader for the hold (longer than the election timeout),
    /// then SIGCONT: it wakes up believing it still leads.
    PauseLeader,
    /// SIGSTOP a follower for the hold, then SIGCONT.
    PauseFollower,
    /// SIGKILL a follower, delete its data directory and restart it empty
    /// at once (the operations runbook's "lost disk" procedure); the leader
    /// has compacted its log, so it must catch up by snapshot.
    WipeFollower,
    /// Cut the leader off from every other node (clients still reach it).
    IsolateLeader,
    /// Split the nodes into a minority holding the leader and a majority
    /// (with three nodes the minority is the leader alone).
    SplitLeaderMinority,
    /// Drop the leader's packets to every follower; theirs still reach it.
    MuteLeaderOneWay,
}

impl Fault {
    /// Process faults, which work on any cluster.
    pub const PROCESS: [Fault; 6] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::CrashAll,
        Fault::PauseLeader,
        Fault::PauseFollower,
        Fault::WipeFollower,
    ];
    /// Network faults, which need a [`NetLab`].
    pub const NETWORK: [Fault; 3] = [
        Fault::IsolateLeader,
        Fault::SplitLeaderMinority,
        Fault::MuteLeaderOneWay,
    ];

    /// Whether the fault needs nodes in network namespaces.
    pub fn needs_network(self) -> bool {
        Fault::NETWORK.contains(&self)
    }
}

impl Fault {
    /// Every fault.
    pub fn all() -> Vec<Fault> {
        Fault::PROCESS.into_iter().chain(Fault::NETWORK).collect()
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    /// Parses the name [`Fault`]'s `Display` gives, e.g. `kill-leader`.
    fn from_str(name: &str) -> Result<Fault, String> {
        Fault::all()
            .into_iter()
            .find(|f| f.to_string() == name.trim())
            .ok_or_else(|| {
                let names: Vec<String> = Fault::all().iter().map(Fault::to_string).collect();
                format!("unknown fault {name:?}; one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Fault::KillLeader => "kill-leader",
            Fault::KillFollower => "kill-follower",
            Fault::CrashAll => "crash-all",
            Fault::PauseLeader => "pause-leader",
            Fault::PauseFollower => "pause-follower",
            Fault::WipeFollower => "wipe-follower",
            Fault::IsolateLeader => "isolate-leader",
            Fault::SplitLeaderMinority => "split-leader-minority",
            Fault::MuteLeaderOneWay => "mute-leader-one-way",
        };
        f.write_str(name)
    }
}

/// How long faults last and how long recovery may take.
#[derive(Debug, Clone, Copy)]
pub struct FaultTiming {
    /// How long a fault is held before it is healed (pauses must outlast
    /// twice the election timeout, the longest a follower waits).
    pub hold: Duration,
    /// How long the cluster may take to elect a leader and catch every node
    /// up after healing.
    pub recover_timeout: Duration,
}

impl Default for FaultTiming {
    fn default() -> Self {
        FaultTiming {
            hold: Duration::from_millis(2500),
            recover_timeout: Duration::from_secs(30),
        }
    }
}

/// What one injected fault did.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    /// The fault.
    pub fault: Fault,
    /// Nodes it hit.
    pub targets: Vec<u64>,
    /// The leader before.
    pub leader_before: u64,
    /// The leader after recovery.
    pub leader_after: u64,
    /// How long from healing until a leader was elected and every node
    /// caught up.
    pub recovered_in: Duration,
}

/// Injects faults into a cluster, one at a time, and records them.
pub struct Nemesis {
    rng: StdRng,
    recorder: Recorder,
    timing: FaultTiming,
    /// Every fault injected so far, recovered from or not.
    pub injected: Vec<Fault>,
    /// Every fault the cluster recovered from.
    pub records: Vec<FaultRecord>,
}

impl Nemesis {
    /// A nemesis choosing targets with `seed`, noting events in `recorder`.
    pub fn new(seed: u64, recorder: Recorder, timing: FaultTiming) -> Self {
        Nemesis {
            rng: StdRng::seed_from_u64(seed ^ 0x6E65_6D65_7369_7321),
            recorder,
            timing,
            injected: Vec::new(),
            records: Vec::new(),
        }
    }

    /// The seeded RNG (for choosing faults).
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Injects `fault`, holds it, heals it and waits until the cluster has a
    /// leader and every node caught up. Errors say what did not recover.
    pub async fn inject(&mut self, cluster: &mut TestCluster, fault: Fault) -> Result<(), String> {
        let all = cluster.ids();
        assert!(all.len() >= 3, "fault injection needs at least three nodes");
        let leader = wait_leader(cluster, self.timing.recover_timeout).await?;
        let mut followers: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
        followers.shuffle(&mut self.rng);
        let follower = followers[0];
        let hold = self.timing.hold;
        let net = || {
            cluster
                .net()
                .ok_or_else(|| format!("{fault} needs nodes in network namespaces"))
        };

        let targets = match fault {
            Fault::KillLeader
            | Fault::PauseLeader
            | Fault::MuteLeaderOneWay
            | Fault::IsolateLeader => vec![leader],
            Fault::KillFollower | Fault::PauseFollower | Fault::WipeFollower => vec![follower],
            Fault::CrashAll => all.clone(),
            Fault::SplitLeaderMinority => {
                let minority = (all.len() - 1) / 2;
                let mut side = vec![leader];
                side.extend(followers.iter().take(minority.saturating_sub(1)));
                side.sort();
                side
            }
        };
        if fault == Fault::WipeFollower {
            // A snapshot is only needed once the leader has compacted its log.
            wait_for(
                self.timing.recover_timeout * 2,
                "the leader to purge its log",
                || async { cluster.status(leader).await.filter(|s| s.purged_index > 0) },
            )
            .await?;
        }

        self.recorder
            .note(format!("{fault} on {targets:?} (leader {leader})"));
        self.injected.push(fault);
        match fault {
            Fault::KillLeader | Fault::KillFollower | Fault::CrashAll => {
                for &id in &targets {
                    cluster.kill(id);
                }
                tokio::time::sleep(hold).await;
                for &id in &targets {
                    cluster.spawn(id);
                }
            }
            Fault::PauseLeader | Fault::PauseFollower => {
                cluster.pause(targets[0]);
                tokio::time::sleep(hold).await;
                cluster.resume(targets[0]);
            }
            Fault::WipeFollower => {
                // The disk is replaced and the node restarted at once, while
                // the leader still remembers how far its log went; as the
                // runbook says, with --recover.
                cluster.kill(follower);
                cluster.wipe(follower);
                cluster.spawn_with(follower, &["--recover"]);
            }
            Fault::IsolateLeader | Fault::SplitLeaderMinority => {
                let rest: Vec<u64> = all
                    .iter()
                    .copied()
                    .filter(|id| !targets.contains(id))
                    .collect();
                net()?.partition(&targets, &rest)?;
                tokio::time::sleep(hold).await;
                net()?.heal()?;
            }
            Fault::MuteLeaderOneWay => {
                for &f in &followers {
                    net()?.cut(leader, f)?;
                }
                tokio::time::sleep(hold).await;
                net()?.heal()?;
            }
        }
        self.recorder.note(format!("{fault} healed"));

        let healed = Instant::now();
        let leader_after = wait_leader(cluster, self.timing.recover_timeout).await?;
        caught_up(cluster, self.timing.recover_timeout).await?;
        let recovered_in = healed.elapsed();
        if fault == Fault::WipeFollower {
            let status = cluster
                .status(follower)
                .await
                .ok_or_else(|| format!("wiped node {follower} does not answer"))?;
            if status.snapshot_index == 0 {
                return Err(format!(
                    "wiped node {follower} caught up without installing a snapshot: {status:?}"
                ));
            }
        }
        self.recorder.note(format!(
            "recovered from {fault} in {:.1}s, leader {leader_after}",
            recovered_in.as_secs_f64()
        ));
        self.records.push(FaultRecord {
            fault,
            targets,
            leader_before: leader,
            leader_after,
            recovered_in,
        });
        Ok(())
    }

    /// Faults injected, by kind.
    pub fn counts(&self) -> BTreeMap<Fault, usize> {
        let mut counts = BTreeMap::new();
        for f in &self.injected {
            *counts.entry(*f).or_default() += 1;
        }
        counts
    }

    /// Faults after which another node led.
    pub fn failovers(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.leader_after != r.leader_before)
            .count()
    }

    /// The slowest recovery.
    pub fn slowest_recovery(&self) -> Duration {
        self.records
            .iter()
            .map(|r| r.recovered_in)
            .max()
            .unwrap_or_default()
    }
}

/// Polls `probe` every 100 ms until it yields a value, or fails naming
/// `what` after `timeout`.
async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for a leader every running node agrees on and that serves a
/// linearizable read (a node whose Raft core died still reports its last
/// role, so the status alone is not enough).
pub async fn wait_leader(cluster: &TestCluster, timeout: Duration) -> Result<u64, String> {
    let running = cluster.running_ids();
    let found = wait_for(
        timeout,
        "a serving leader all running nodes agree on",
        || async {
            let leader = cluster.current_leader().await?;
            for &id in &running {
                if cluster.status(id).await?.leader_id != leader {
                    return None;
                }
            }
            cluster
                .serves_linearizable_read(leader)
                .await
                .then_some(leader)
        },
    )
    .await;
    match found {
        Ok(leader) => Ok(leader),
        Err(e) => Err(with_logs(cluster, e).await),
    }
}

/// Waits until every running node applied what a serving leader had
/// logged, and that leader still leads (if leadership moved meanwhile, it
/// starts over with the new leader, until `timeout`).
pub async fn caught_up(cluster: &TestCluster, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    loop {
        let leader = wait_leader(cluster, left()).await?;
        let target = cluster
            .status(leader)
            .await
            .map(|s| s.last_log_index)
            .unwrap_or(0);
        for id in cluster.running_ids() {
            let applied = wait_for(
                left(),
                &format!("node {id} to apply index {target}"),
                || async {
                    cluster
                        .status(id)
                        .await
                        .filter(|s| s.applied_index >= target)
                },
            )
            .await;
            if let Err(e) = applied {
                return Err(with_logs(cluster, e).await);
            }
        }
        // A leader that died meanwhile (the others caught up from its
        // successor) must not pass for recovered.
        if wait_leader(cluster, left()).await? == leader {
            return Ok(());
        }
    }
}

/// `error`, with what every node says about itself and its log tail.
async fn with_logs(cluster: &TestCluster, error: String) -> String {
    let mut text = error;
    for id in cluster.ids() {
        let status = match cluster.status(id).await {
            Some(s) => format!(
                "role {} term {} leader {} applied {} last log {} snapshot {} purged {}",
                s.role,
                s.term,
                s.leader_id,
                s.applied_index,
                s.last_log_index,
                s.snapshot_index,
                s.purged_index
            ),
            None => "no answer".into(),
        };
        text.push_str(&format!(
            "\n--- node {id}: {status}; log tail ---\n{}",
            cluster.log_tail(id)
        ));
    }
    text
}
