//! `kauri dev up`: a local 3-node cluster of real `kauri-node` processes on
//! 127.0.0.1, for development and demos, over mutual TLS with development
//! certificates (or, when asked, insecure plain text). Stops all nodes on
//! Ctrl-C. `kauri dev certs`: the development CA and certificates alone.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use kauri_client::devpki::DevCerts;
use kauri_client::tls::{ClientTls, TlsFiles};
use kauri_client::{ClientConfig, KauriClient};

/// Cluster name of development certificates.
pub const DEV_CLUSTER: &str = "dev";

#[derive(Debug, Subcommand)]
pub enum DevCmd {
    /// Start a local cluster in the foreground; Ctrl-C stops it.
    Up {
        /// Data directory; node N keeps its state in DIR/nodeN.
        #[arg(long, default_value = "./data/dev")]
        data_dir: PathBuf,
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// gRPC port of node 1; node N listens on BASE_PORT + N - 1.
        #[arg(long, default_value_t = 50051)]
        base_port: u16,
        /// The kauri-node binary (default: next to this `kauri` binary).
        #[arg(long)]
        node_bin: Option<PathBuf>,
        /// Certificates to run with (made by `kauri dev certs`); created
        /// there when missing. Default: DATA_DIR/certs.
        #[arg(long, conflicts_with = "insecure_plaintext")]
        certs: Option<PathBuf>,
        /// Mutual TLS (the default; accepted for clarity).
        #[arg(long, conflicts_with = "insecure_plaintext")]
        tls: bool,
        /// Run the nodes in plain text with no authentication (every caller
        /// may act as anyone), as `kauri-node --insecure-plaintext` does.
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// Make a development CA and certificates for the nodes, a gateway, a
    /// staff member, a registrar and a monitor (not for production: the
    /// CA key is not kept, issue more with `kauri dev certs` again).
    Certs {
        /// Directory to write ca.pem, node1.pem/.key, ..., gateway, staff,
        /// registrar and monitor .pem/.key into.
        #[arg(long)]
        out: PathBuf,
        /// The cluster name the certificates are for (kauri-node
        /// --cluster-name).
        #[arg(long, default_value = DEV_CLUSTER)]
        cluster: String,
        /// Number of node certificates.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Extra IP addresses or DNS names for the node certificates
        /// (127.0.0.1 and localhost are always included).
        #[arg(long = "host", value_name = "HOST")]
        hosts: Vec<String>,
    },
}

/// The nodes started; on drop, anything still running is stopped.
struct Nodes(Vec<(u64, Child)>);

impl Nodes {
    /// SIGTERM to each node, then wait up to `grace` before SIGKILL.
    fn stop(&mut self, grace: Duration) {
        for (_, child) in &self.0 {
            // SAFETY: kill(2) on a PID we spawned and have not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for (id, child) in &mut self.0 {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        eprintln!("node {id} stopped ({status})");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        eprintln!("node {id} killed after {} s", grace.as_secs());
                        break;
                    }
                }
            }
        }
        self.0.clear();
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

fn default_node_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating the kauri binary")?;
    Ok(me.with_file_name("kauri-node"))
}

/// How the nodes are secured.
enum Security {
    /// Mutual TLS with these certificates.
    Tls(Box<DevCerts>),
    /// `--insecure-plaintext`.
    Plaintext,
}

fn spawn(
    bin: &Path,
    id: u64,
    addr: &str,
    peers: &str,
    dir: &Path,
    security: &Security,
) -> anyhow::Result<Child> {
    let node_dir = dir.join(format!("node{id}"));
    std::fs::create_dir_all(&node_dir)
        .with_context(|| format!("creating {}", node_dir.display()))?;
    let log_path = dir.join(format!("node{id}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--id")
        .arg(id.to_string())
        .arg("--grpc-addr")
        .arg(addr)
        .arg("--data-dir")
        .arg(&node_dir)
        .arg("--peers")
        .arg(peers)
        .arg("--site")
        .arg("local");
    match security {
        Security::Plaintext => {
            cmd.arg("--insecure-plaintext");
        }
        Security::Tls(certs) => {
            let files = certs.nodes.get(id as usize - 1).with_context(|| {
                format!("no certificate for node {id} in {}", certs.dir.display())
            })?;
            cmd.arg("--cluster-name")
                .arg(&certs.cluster)
                .arg("--tls-ca")
                .arg(&files.ca)
                .arg("--tls-cert")
                .arg(&files.cert)
                .arg("--tls-key")
                .arg(&files.key);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl in the child between fork and exec only sets the signal
    // sent to the child when this process dies, so no node outlives us.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// The development certificates in `dir`, made there if it has none.
fn dev_certs(dir: &Path, nodes: u64) -> anyhow::Result<DevCerts> {
    let files = |stem: &str| TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    };
    if !dir.join("ca.pem").exists() {
        let (certs, _) = DevCerts::create(dir, DEV_CLUSTER, nodes, &[])?;
        eprintln!("made development certificates in {}", dir.display());
        return Ok(certs);
    }
    let staff = files("staff");
    let cluster = ClientTls::load(staff.clone())
        .with_context(|| format!("reading the development certificates in {}", dir.display()))?
        .principal()
        .cluster;
    let node_files: Vec<TlsFiles> = (1..=nodes).map(|id| files(&format!("node{id}"))).collect();
    if let Some(missing) = node_files.iter().find(|f| !f.cert.exists()) {
        bail!(
            "{} is missing: make certificates for {nodes} nodes with `kauri dev certs --out {} --nodes {nodes}`",
            missing.cert.display(),
            dir.display()
        );
    }
    Ok(DevCerts {
        dir: dir.to_path_buf(),
        cluster,
        ca: dir.join("ca.pem"),
        nodes: node_files,
        gateway: files("gateway"),
        staff,
        registrar: files("registrar"),
        monitor: files("monitor"),
    })
}

pub async fn run(cmd: DevCmd) -> anyhow::Result<()> {
    let (data_dir, count, base_port, node_bin, certs_dir, insecure) = match cmd {
        DevCmd::Certs {
            out,
            cluster,
            nodes,
            hosts,
        } => {
            if !(1..=99).contains(&nodes) {
                bail!("--nodes must be between 1 and 99");
            }
            let (certs, _) = DevCerts::create(&out, &cluster, nodes, &hosts)?;
            println!(
                "wrote a development CA and certificates for cluster {cluster:?} to {}:",
                out.display()
            );
            println!("  ca.pem                     the CA bundle (--tls-ca, --cacert)");
            println!("  node1..{nodes}.pem/.key        kauri://{cluster}/node/N");
            println!(
                "  gateway.pem/.key           kauri://{cluster}/gateway/{}",
                kauri_client::devpki::DEV_GATEWAY
            );
            println!(
                "  staff.pem/.key             kauri://{cluster}/staff/{}",
                kauri_client::devpki::DEV_STAFF
            );
            println!(
                "  registrar.pem/.key         kauri://{cluster}/registrar/{}",
                kauri_client::devpki::DEV_REGISTRAR
            );
            println!(
                "  monitor.pem/.key           kauri://{cluster}/monitor/{}",
                kauri_client::devpki::DEV_MONITOR
            );
            println!(
                "use them with: kauri --identity {} cluster status",
                certs.staff.cert.with_extension("").display()
            );
            return Ok(());
        }
        DevCmd::Up {
            data_dir,
            nodes,
            base_port,
            node_bin,
            certs,
            tls: _,
            insecure_plaintext,
        } => (
            data_dir,
            nodes,
            base_port,
            node_bin,
            certs,
            insecure_plaintext,
        ),
    };
    if !(1..=9).contains(&count) {
        bail!("--nodes must be between 1 and 9");
    }
    let bin = match node_bin {
        Some(b) => b,
        None => default_node_bin()?,
    };
    if !bin.exists() {
        bail!(
            "{} not found; build it with `cargo build -p kauri-node` (or pass --node-bin)",
            bin.display()
        );
    }
    let addrs: Vec<String> = (0..count)
        .map(|i| format!("127.0.0.1:{}", base_port as u64 + i))
        .collect();
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let security = if insecure {
        Security::Plaintext
    } else {
        let dir = certs_dir.unwrap_or_else(|| data_dir.join("certs"));
        Security::Tls(Box::new(dev_certs(&dir, count)?))
    };
    let mut nodes = Nodes(Vec::new());
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u64 + 1;
        nodes
            .0
            .push((id, spawn(&bin, id, addr, &peers, &data_dir, &security)?));
    }
    let (mode, tls) = match &security {
        Security::Plaintext => ("INSECURE plain text, no authentication", None),
        Security::Tls(certs) => ("mutual TLS", Some(ClientTls::load(certs.staff.clone())?)),
    };
    eprintln!(
        "started {count} kauri-node processes ({mode}); logs in {}/nodeN.log",
        data_dir.display()
    );

    let client = KauriClient::new(
        &addrs,
        ClientConfig {
            tls,
            ..ClientConfig::default()
        },
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        for (id, child) in &mut nodes.0 {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "node {id} exited during start-up ({status}); see {}/node{id}.log",
                    data_dir.display()
                );
            }
        }
        if let Ok(s) = client.cluster_status_any().await {
            if s.leader_id != 0 {
                break s;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "no leader elected within 60 s; see the logs in {}",
                data_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let endpoints = addrs.join(",");
    println!(
        "Kauri dev cluster is up: {count} nodes, leader is node {} at {}",
        leader.leader_id, leader.leader_addr
    );
    println!("endpoints: {endpoints}");
    println!();
    println!("Try, in another terminal (the default endpoints are these):");
    let (staff, registrar, r) = match &security {
        Security::Tls(certs) => {
            let prefix = |f: &TlsFiles| f.cert.with_extension("").display().to_string();
            (
                format!(
                    "  export KAURI_IDENTITY={}    # staff member {}",
                    prefix(&certs.staff),
                    kauri_client::devpki::DEV_STAFF
                ),
                format!(
                    "  export KAURI_IDENTITY={}    # registrar {}",
                    prefix(&certs.registrar),
                    kauri_client::devpki::DEV_REGISTRAR
                ),
                "",
            )
        }
        Security::Plaintext => (String::new(), String::new(), "-r acme "),
    };
    if !staff.is_empty() {
        println!("{staff}");
    }
    println!("  kauri cluster status");
    println!("  kauri tld create nz --currency NZD --create-price 2500 --renew-price 2500");
    println!(
        "  kauri registrar create acme --name 'Acme Names' --password s3cret-pw --currency NZD"
    );
    println!("  kauri registrar deposit acme 100000");
    if !registrar.is_empty() {
        println!("{registrar}");
    }
    println!("  kauri {r}contact create alice --name 'Alice Smith' --email alice@example.nz --city Auckland");
    println!("  kauri {r}domain create kauri-example.nz --registrant alice --period 2");
    println!("  kauri {r}domain info kauri-example.nz");
    println!(
        "(from a source checkout, `kauri` is {})",
        bin.with_file_name("kauri").display()
    );
    println!();
    println!(
        "Ctrl-C stops all nodes; data stays in {} for the next start.",
        data_dir.display()
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut watch = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = watch.tick() => {
                for (id, child) in &mut nodes.0 {
                    if let Ok(Some(status)) = child.try_wait() {
                        eprintln!("warning: node {id} exited ({status}); see {}/node{id}.log", data_dir.display());
                    }
                }
            }
        }
    }
    eprintln!("stopping...");
    nodes.stop(Duration::from_secs(10));
    Ok(())
}
