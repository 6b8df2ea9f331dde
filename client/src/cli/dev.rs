//! `kauri dev up`: a local 3-node cluster of real `kauri-node` processes on
//! 127.0.0.1, for development and demos, over mutual TLS with development
//! certificates (or, when asked, insecure plain text), each serving its
//! metrics and probes on a loopback `--metrics-addr`; with `--monitor` also
//! a Prometheus scraping them with the shipped config and alert rules
//! (`monitor`), and an EPP gateway (`kauri-gateway`) on loopback. Stops
//! everything it started on Ctrl-C or SIGTERM.
//! `kauri dev certs`: the development CA and certificates alone.

mod monitor;

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

/// `kauri dev`: a local cluster and its certificates.
#[derive(Debug, Subcommand)]
pub enum DevCmd {
    /// Start a local cluster in the foreground (nodes, their metrics and,
    /// with --monitor, Prometheus); Ctrl-C or SIGTERM stops it all.
    Up(UpArgs),
    /// Make a development CA and certificates for the nodes, a gateway, a
    /// staff member, a registrar, a monitor and the EPP port (not for
    /// production: the CA key is not kept, issue more with `kauri dev
    /// certs` again).
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

/// Options of `kauri dev up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Data directory; node N keeps its state in DIR/nodeN.
    #[arg(long, default_value = "./data/dev")]
    data_dir: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// gRPC port of node 1; node N listens on BASE_PORT + N - 1.
    #[arg(long, default_value_t = 50051)]
    base_port: u16,
    /// Metrics port of node 1 (its `--metrics-addr`, serving /metrics,
    /// /healthz and /readyz over plain HTTP); node N listens on
    /// METRICS_BASE_PORT + N - 1.
    #[arg(long, default_value_t = 9101)]
    metrics_base_port: u16,
    /// Also start Prometheus (the `prometheus` on PATH, e.g. Debian's
    /// package: scripts/monitoring-tools.sh installs it) scraping the
    /// nodes with the shipped deploy/prometheus config and alert rules;
    /// its files and data go in DATA_DIR/prometheus.
    #[arg(long)]
    monitor: bool,
    /// HOST:PORT of Prometheus's web UI and API with --monitor.
    #[arg(long, default_value = "127.0.0.1:9090", requires = "monitor")]
    prometheus_addr: String,
    /// The kauri-node binary (default: next to this `kauri` binary).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Where the EPP gateway (kauri-gateway, next to this `kauri` binary)
    /// serves EPP over TLS, with the development EPP certificate
    /// (certs/epp.pem, trusted through certs/ca.pem). Not with
    /// --insecure-plaintext (the gateway speaks to the cluster as its
    /// gateway certificate).
    #[arg(long, default_value = "127.0.0.1:7700")]
    epp_addr: String,
    /// The gateway's /metrics, /healthz and /readyz (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:9110")]
    gateway_metrics_addr: String,
    /// Do not start the EPP gateway.
    #[arg(long)]
    no_gateway: bool,
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
}

/// Name of the file in DATA_DIR listing the PID of every process `dev up`
/// started, one `NAME PID` a line (`node1 4242`, `prometheus 4250`), so
/// scripts can find them; removed when they are stopped.
pub const PID_FILE: &str = "dev-up.pids";

/// The processes started (nodes, then Prometheus), by name; on drop,
/// anything still running is stopped.
struct Processes {
    running: Vec<(String, Child)>,
    /// The PID file to keep up to date, once the data dir exists.
    pid_file: Option<PathBuf>,
}

impl Processes {
    fn new(pid_file: PathBuf) -> Self {
        Processes {
            running: Vec::new(),
            pid_file: Some(pid_file),
        }
    }

    /// Takes `child` into the set and rewrites the PID file.
    fn add(&mut self, name: String, child: Child) -> anyhow::Result<()> {
        self.running.push((name, child));
        let Some(path) = &self.pid_file else {
            return Ok(());
        };
        let list: String = self
            .running
            .iter()
            .map(|(name, child)| format!("{name} {}\n", child.id()))
            .collect();
        std::fs::write(path, list).with_context(|| format!("writing {}", path.display()))
    }

    /// The process called `name`.
    fn get(&mut self, name: &str) -> Option<&mut Child> {
        self.running
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
    }

    /// SIGTERM to every process (by PID), then wait up to `grace` for each
    /// before SIGKILL.
    fn stop(&mut self, grace: Duration) {
        for (_, child) in &self.running {
            // SAFETY: kill(2) on a PID we spawned and have not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        for (name, child) in &mut self.running {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        eprintln!("{name} stopped ({status})");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        eprintln!("{name} killed after {} s", grace.as_secs());
                        break;
                    }
                }
            }
        }
        self.running.clear();
        if let Some(path) = self.pid_file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The name of the Prometheus process in [`Processes`] and the PID file.
const PROMETHEUS: &str = "prometheus";

/// Where the process `name` of [`Processes`] writes its log.
fn log_of(data_dir: &Path, name: &str) -> PathBuf {
    if name == PROMETHEUS {
        data_dir.join("prometheus").join("prometheus.log")
    } else {
        data_dir.join(format!("{name}.log"))
    }
}

/// `count` consecutive loopback addresses from port `base` (set by `flag`).
fn loopback_addrs(flag: &str, base: u16, count: u64) -> anyhow::Result<Vec<String>> {
    if base == 0 || base as u64 + count - 1 > u16::MAX as u64 {
        bail!("{flag} {base}: the ports {base}..{base}+{count} must be between 1 and 65535");
    }
    Ok((0..count)
        .map(|i| format!("127.0.0.1:{}", base as u64 + i))
        .collect())
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
    metrics_addr: &str,
    peers: &str,
    dir: &Path,
    security: &Security,
) -> anyhow::Result<Child> {
    let node_dir = dir.join(format!("node{id}"));
    std::fs::create_dir_all(&node_dir)
        .with_context(|| format!("creating {}", node_dir.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--id")
        .arg(id.to_string())
        .arg("--grpc-addr")
        .arg(addr)
        .arg("--metrics-addr")
        .arg(metrics_addr)
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
    spawn_child(cmd, &dir.join(format!("node{id}.log")))
}

/// Name of the gateway among the processes.
const GATEWAY: &str = "gateway";

/// `kauri-gateway` in front of the nodes at `addrs`, as the development
/// gateway identity, serving EPP on `epp_addr` with the development EPP
/// certificate.
fn gateway_command(
    bin: &Path,
    addrs: &[String],
    epp_addr: &str,
    metrics_addr: &str,
    certs: &DevCerts,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--endpoints")
        .arg(addrs.join(","))
        .arg("--epp-addr")
        .arg(epp_addr)
        .arg("--tls-cert")
        .arg(&certs.epp.cert)
        .arg("--tls-key")
        .arg(&certs.epp.key)
        .arg("--identity")
        .arg(certs.gateway.cert.with_extension(""))
        .arg("--metrics-addr")
        .arg(metrics_addr)
        .arg("--server-id")
        .arg("Kauri dev EPP");
    cmd
}

/// Waits until something accepts connections on `addr`, or a process
/// exits, or 30 s pass.
async fn wait_listening(procs: &mut Processes, addr: &str, data_dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        for (name, child) in &mut procs.running {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "{name} exited during start-up ({status}); see {}",
                    log_of(data_dir, name).display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "nothing listens on {addr} after 30 s; see {}",
                log_of(data_dir, GATEWAY).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How to reach the gateway with third-party EPP clients.
fn print_epp_example(epp_addr: &str, ca: &Path) {
    let (host, port) = epp_addr.rsplit_once(':').unwrap_or((epp_addr, "700"));
    let ca = ca.display();
    println!();
    println!(
        "EPP, with Perl's Net::EPP (Debian: apt-get install libnet-epp-perl), once acme exists:"
    );
    println!(
        "  perl -MNet::EPP::Simple -e 'my $e = Net::EPP::Simple->new(host => \"{host}\", port => {port}, \
         user => \"acme\", pass => \"s3cret-pw\", verify => 1, ca_file => \"{ca}\", reconnect => 0) \
         or die $Net::EPP::Simple::Error; print $e->check_domain(\"kauri-example.nz\") ? \"free\\n\" : \"taken\\n\"'"
    );
    println!("or openssl's client, typing frames by hand: openssl s_client -connect {epp_addr} -CAfile {ca}");
}

/// Starts `cmd` with no stdin, its output appended to `log_path`, and
/// SIGTERM as its signal when this process dies, so no child of `kauri dev
/// up` (node or Prometheus) outlives it.
fn spawn_child(mut cmd: Command, log_path: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl in the child between fork and exec only sets the signal
    // sent to the child when this process dies.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))
}

/// The development certificates in `dir`, made there if it has none.
fn dev_certs(dir: &Path, nodes: u64, need_epp: bool) -> anyhow::Result<DevCerts> {
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
    let epp = files("epp");
    if need_epp && !epp.cert.exists() {
        bail!(
            "{} is missing (certificates from before the EPP gateway): remove {} to have new ones made, \
             or make them with `kauri dev certs --out {}`",
            epp.cert.display(),
            dir.display(),
            dir.display()
        );
    }
    Ok(DevCerts {
        dir: dir.to_path_buf(),
        epp,
        cluster,
        ca: dir.join("ca.pem"),
        nodes: node_files,
        gateway: files("gateway"),
        staff,
        registrar: files("registrar"),
        monitor: files("monitor"),
    })
}

/// Runs a `kauri dev` command.
pub async fn run(cmd: DevCmd) -> anyhow::Result<()> {
    match cmd {
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
            println!("  epp.pem/.key               the EPP port's server certificate (kauri-gateway --tls-cert)");
            println!(
                "use them with: kauri --identity {} cluster status",
                certs.staff.cert.with_extension("").display()
            );
            Ok(())
        }
        DevCmd::Up(args) => up(args).await,
    }
}

/// `kauri dev up`: starts everything, prints where it is, waits for Ctrl-C
/// or SIGTERM and stops it all.
async fn up(args: UpArgs) -> anyhow::Result<()> {
    let UpArgs {
        data_dir,
        nodes: count,
        base_port,
        metrics_base_port,
        monitor,
        prometheus_addr,
        node_bin,
        epp_addr,
        gateway_metrics_addr,
        no_gateway,
        certs: certs_dir,
        tls: _,
        insecure_plaintext: insecure,
    } = args;
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
    let gateway_bin = bin.with_file_name("kauri-gateway");
    let with_gateway = !no_gateway && !insecure;
    if with_gateway && !gateway_bin.exists() {
        bail!(
            "{} not found; build it with `cargo build -p kauri-gateway` (or pass --no-gateway)",
            gateway_bin.display()
        );
    }
    let addrs = loopback_addrs("--base-port", base_port, count)?;
    let metrics_addrs = loopback_addrs("--metrics-base-port", metrics_base_port, count)?;
    // Fail before starting anything when --monitor cannot work.
    let prometheus_bin = if monitor {
        Some(monitor::find_prometheus()?)
    } else {
        None
    };
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
        Security::Tls(Box::new(dev_certs(&dir, count, with_gateway)?))
    };
    let mut procs = Processes::new(data_dir.join(PID_FILE));
    for (i, (addr, metrics_addr)) in addrs.iter().zip(&metrics_addrs).enumerate() {
        let id = i as u64 + 1;
        let child = spawn(&bin, id, addr, metrics_addr, &peers, &data_dir, &security)?;
        procs.add(format!("node{id}"), child)?;
    }
    let (mode, tls) = match &security {
        Security::Plaintext => ("INSECURE plain text, no authentication", None),
        Security::Tls(certs) => ("mutual TLS", Some(ClientTls::load(certs.staff.clone())?)),
    };
    eprintln!(
        "started {count} kauri-node processes ({mode}); logs in {}/nodeN.log",
        data_dir.display()
    );
    // Prometheus starts while the nodes elect a leader.
    let prometheus_dir = data_dir.join("prometheus");
    if let Some(prometheus_bin) = &prometheus_bin {
        std::fs::create_dir_all(&prometheus_dir)
            .with_context(|| format!("creating {}", prometheus_dir.display()))?;
        let config = monitor::write_config(&prometheus_dir, &metrics_addrs)?;
        let child = monitor::spawn(prometheus_bin, &prometheus_dir, &config, &prometheus_addr)?;
        procs.add(PROMETHEUS.to_string(), child)?;
    }

    let client = KauriClient::new(
        &addrs,
        ClientConfig {
            tls,
            ..ClientConfig::default()
        },
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        for (name, child) in &mut procs.running {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "{name} exited during start-up ({status}); see {}",
                    log_of(&data_dir, name).display()
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
    if let Some(prometheus) = procs.get(PROMETHEUS) {
        let log = log_of(&data_dir, PROMETHEUS);
        monitor::wait_ready(prometheus, &prometheus_addr, &log).await?;
    }
    let epp = match (&security, with_gateway) {
        (Security::Tls(certs), true) => {
            let cmd = gateway_command(
                &gateway_bin,
                &addrs,
                &epp_addr,
                &gateway_metrics_addr,
                certs,
            );
            let child = spawn_child(cmd, &log_of(&data_dir, GATEWAY))?;
            procs.add(GATEWAY.to_string(), child)?;
            wait_listening(&mut procs, &epp_addr, &data_dir).await?;
            Some(certs.ca.clone())
        }
        _ => None,
    };
    let endpoints = addrs.join(",");
    println!(
        "Kauri dev cluster is up: {count} nodes, leader is node {} at {}",
        leader.leader_id, leader.leader_addr
    );
    println!("endpoints: {endpoints}");
    let metrics_urls: Vec<String> = metrics_addrs
        .iter()
        .map(|a| format!("http://{a}/metrics"))
        .collect();
    println!(
        "metrics:   {}  (and /healthz, /readyz)",
        metrics_urls.join(" ")
    );
    if monitor {
        println!(
            "Prometheus: http://{prometheus_addr}  (alerts: http://{prometheus_addr}/alerts, \
             targets: http://{prometheus_addr}/targets; shipped config and rules in {})",
            prometheus_dir.display()
        );
    }
    if let Some(ca) = &epp {
        println!(
            "EPP:       {epp_addr} over TLS (kauri-gateway; certificate for 127.0.0.1 and localhost \
             from {}); its metrics on http://{gateway_metrics_addr}/metrics",
            ca.display()
        );
    }
    println!("PIDs in {}", data_dir.join(PID_FILE).display());
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
    if let Some(ca) = &epp {
        print_epp_example(&epp_addr, ca);
    }
    println!();
    println!(
        "Ctrl-C stops all nodes{}; data stays in {} for the next start.",
        if monitor { " and Prometheus" } else { "" },
        data_dir.display()
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut watch = tokio::time::interval(Duration::from_millis(500));
    // Each unexpected exit is reported once.
    let mut exited = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = watch.tick() => {
                for (name, child) in &mut procs.running {
                    if let Ok(Some(status)) = child.try_wait() {
                        if exited.insert(name.clone()) {
                            eprintln!(
                                "warning: {name} exited ({status}); see {}",
                                log_of(&data_dir, name).display()
                            );
                        }
                    }
                }
            }
        }
    }
    eprintln!("stopping...");
    procs.stop(Duration::from_secs(10));
    Ok(())
}
