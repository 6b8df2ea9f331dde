//! A local etcd cluster for the comparison: `n` members of Debian's `etcd`
//! on loopback ports of their own, data under a temp dir (on disk: set
//! `TMPDIR` to a disk-backed directory, never a tmpfs, or fsync is free),
//! every process started and SIGKILLed by PID, all of them killed on drop.
//!
//! The flags that matter for the comparison are in [`TUNING`], each with the
//! reason it is set; everything else is etcd's default. etcd fsyncs its WAL
//! before acknowledging, always: durability equals Kauri's synced log
//! appends.
//!
//! With TLS ([`EtcdCluster::start`]'s `tls`), the members speak HTTPS to
//! each other and to clients and each side verifies the other's
//! certificate (`--cert-file`, `--peer-cert-file` and the rest, with
//! `--client-cert-auth` and `--peer-client-cert-auth`), as a Kauri cluster
//! does over mutual TLS:
//! certificates of a development CA (`kauri_client::devpki`, the same code
//! `kauri dev certs` runs), made in the cluster's temp dir.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use kauri_client::devpki::DevCerts;
use kauri_client::tls::TlsFiles;

/// etcd's settings for the comparison (flag, value, why). Addresses, names
/// and data directories are added per member.
pub const TUNING: &[(&str, &str, &str)] = &[
    (
        "--heartbeat-interval",
        "100",
        "Kauri's heartbeat (ms); etcd's default is also 100",
    ),
    (
        "--election-timeout",
        "500",
        "the smallest etcd accepts with a 100 ms heartbeat (at least 5 heartbeats); \
         etcd randomises it up to twice that, Kauri uses 400-600 ms. etcd's default, \
         1000, is meant for real networks; loopback needs less",
    ),
    (
        "--snapshot-count",
        "100000",
        "etcd's default: a snapshot every 100,000 applied entries, never during a run",
    ),
    (
        "--quota-backend-bytes",
        "8589934592",
        "8 GiB, etcd's largest recommended quota: no NOSPACE alarm however long the run",
    ),
    (
        "--experimental-backend-bbolt-freelist-type",
        "map",
        "the faster bbolt freelist (the default from etcd 3.5 on)",
    ),
    (
        "--logger",
        "zap",
        "the structured logger (capnslog is deprecated)",
    ),
    ("--log-level", "warn", "no per-request logging cost"),
];

/// One etcd member.
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// etcd's member id, learnt from the member's own status.
    member_id: Option<u64>,
    /// Its certificate and key, with TLS.
    tls: Option<TlsFiles>,
}

/// A running local etcd cluster. Dropping it SIGKILLs every member by PID.
pub struct EtcdCluster {
    members: Vec<Member>,
    bin: PathBuf,
    extra_args: Vec<String>,
    initial_cluster: String,
    token: String,
    /// What clients connect with: the CA and a client identity, with TLS.
    client: ConnectOptions,
    dir: tempfile::TempDir,
}

fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("binding ephemeral loopback ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// A client of one member only, with short timeouts (for probes).
async fn probe(url: &str, options: &ConnectOptions) -> anyhow::Result<Client> {
    let options = options
        .clone()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(1));
    Ok(Client::connect([url], Some(options)).await?)
}

/// Connect options that trust `files`' CA and present its certificate.
pub fn tls_options(files: &TlsFiles) -> anyhow::Result<ConnectOptions> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read(&files.ca)?))
        .identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?));
    Ok(ConnectOptions::new().with_tls(tls))
}

impl EtcdCluster {
    /// Starts `n` fresh members of the etcd binary at `bin`, with
    /// `extra_args` after the tuned flags (for experiments); over mutual
    /// TLS between members and to clients if `tls`.
    pub fn start(
        bin: &Path,
        n: usize,
        extra_args: &[String],
        tls: bool,
    ) -> anyhow::Result<EtcdCluster> {
        let dir = tempfile::tempdir().context("creating the etcd temp dir")?;
        let ports = free_ports(2 * n)?;
        let pki = if tls {
            let (certs, _) =
                DevCerts::create(&dir.path().join("pki"), "etcd-bench", n as u64, &[])?;
            Some(certs)
        } else {
            None
        };
        let scheme = if tls { "https" } else { "http" };
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{}", i + 1),
                client_url: format!("{scheme}://127.0.0.1:{}", ports[2 * i]),
                peer_url: format!("{scheme}://127.0.0.1:{}", ports[2 * i + 1]),
                data_dir: dir.path().join(format!("m{}", i + 1)),
                log: dir.path().join(format!("m{}.log", i + 1)),
                child: None,
                member_id: None,
                tls: pki.as_ref().map(|p| p.nodes[i].clone()),
            })
            .collect();
        let client = match &pki {
            Some(p) => tls_options(&p.staff)?,
            None => ConnectOptions::new(),
        };
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            bin: bin.to_path_buf(),
            extra_args: extra_args.to_vec(),
            initial_cluster,
            token: format!("kauri-bench-{}", std::process::id()),
            client,
            dir,
        };
        for id in 1..=n as u64 {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// The command line of member `id` (1-based), as it is run.
    pub fn command_line(&self, id: u64) -> Vec<String> {
        let m = &self.members[(id - 1) as usize];
        let mut args = vec![
            self.bin.display().to_string(),
            "--name".into(),
            m.name.clone(),
            "--data-dir".into(),
            m.data_dir.display().to_string(),
            "--listen-client-urls".into(),
            m.client_url.clone(),
            "--advertise-client-urls".into(),
            m.client_url.clone(),
            "--listen-peer-urls".into(),
            m.peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            m.peer_url.clone(),
            "--initial-cluster".into(),
            self.initial_cluster.clone(),
            "--initial-cluster-token".into(),
            self.token.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        for (flag, value, _) in TUNING {
            args.push(flag.to_string());
            args.push(value.to_string());
        }
        if let Some(files) = &m.tls {
            // Both listeners present the member's certificate and require
            // one of the CA from the other side.
            let (cert, key, ca) = (&files.cert, &files.key, &files.ca);
            for (flag, file) in [
                ("--cert-file", cert),
                ("--key-file", key),
                ("--trusted-ca-file", ca),
                ("--peer-cert-file", cert),
                ("--peer-key-file", key),
                ("--peer-trusted-ca-file", ca),
            ] {
                args.push(flag.to_string());
                args.push(file.display().to_string());
            }
            args.push("--client-cert-auth".into());
            args.push("--peer-client-cert-auth".into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// What a client of this cluster connects with (with TLS: the CA and a
    /// client certificate); add timeouts and such to a clone.
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.client
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Where the members' data and logs are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts (or restarts, with its data) member `id`. A restarted member
    /// finds its data dir and ignores the initial-cluster flags.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let command_line = self.command_line(id);
        let m = &mut self.members[(id - 1) as usize];
        if m.child.is_some() {
            bail!("etcd member {id} is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .with_context(|| format!("opening {}", m.log.display()))?;
        let mut command = Command::new(&command_line[0]);
        command
            .args(&command_line[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // The member dies with the thread that started it, so an aborted
        // benchmark leaves no etcd behind.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", command_line[0]))?;
        m.child = Some(child);
        Ok(())
    }

    /// SIGKILLs member `id` by PID (no chance to flush anything).
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.members[(id - 1) as usize].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Member `id`'s status (leader id and its own member id), if it answers.
    async fn status(&self, id: u64) -> anyhow::Result<(u64, u64)> {
        let m = &self.members[(id - 1) as usize];
        let mut client = probe(&m.client_url, &self.client).await?;
        let status = client.status().await?;
        let own = status
            .header()
            .map(|h| h.member_id())
            .context("status without a header")?;
        Ok((own, status.leader()))
    }

    /// Waits until every running member names the same leader, one of ours
    /// and running (as the Kauri harness's `wait_for_leader` does), and
    /// returns its 1-based id.
    pub async fn leader(&mut self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            if let Some(id) = self.agreed_leader().await {
                return Ok(id);
            }
            if Instant::now() > deadline {
                bail!(
                    "no etcd leader within {} s (logs in {}); member 1 log:\n{}",
                    timeout.as_secs(),
                    self.dir().display(),
                    self.log_tail(1)
                );
            }
            // As often as the Kauri harness polls.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails with the member's log if a member we did not kill has exited
    /// (a bad flag, a port taken), instead of waiting out a deadline.
    fn check_running(&mut self) -> anyhow::Result<()> {
        for id in 1..=self.members.len() as u64 {
            let child = self.members[(id - 1) as usize].child.as_mut();
            if let Some(status) = child.and_then(|c| c.try_wait().ok().flatten()) {
                self.members[(id - 1) as usize].child = None;
                bail!("etcd member {id} exited ({status}):\n{}", self.log_tail(id));
            }
        }
        Ok(())
    }

    async fn agreed_leader(&mut self) -> Option<u64> {
        let mut agreed = None;
        for id in 1..=self.members.len() as u64 {
            if self.members[(id - 1) as usize].child.is_none() {
                continue;
            }
            let (own, leader) = self.status(id).await.ok()?;
            self.members[(id - 1) as usize].member_id = Some(own);
            if leader == 0 || agreed.is_some_and(|a| a != leader) {
                return None;
            }
            agreed = Some(leader);
        }
        let leader = agreed?;
        self.members
            .iter()
            .position(|m| m.member_id == Some(leader) && m.child.is_some())
            .map(|i| i as u64 + 1)
    }

    /// The last lines of member `id`'s log, for error messages.
    pub fn log_tail(&self, id: u64) -> String {
        let text =
            std::fs::read_to_string(&self.members[(id - 1) as usize].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for id in 1..=self.members.len() as u64 {
            self.kill(id);
        }
    }
}
