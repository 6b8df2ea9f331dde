//! `kauri-bench epp`: the same closed-loop load as `create`, but through
//! `kauri-gateway` in EPP (RFC 5730-5734 frames over TLS), so that the
//! gateway's cost can be measured beside the raw gRPC path on the same
//! cluster (`benches/compare-epp.sh`).
//!
//! - `certs` writes the development certificates of a cluster (as `kauri
//!   dev certs` does) plus a staff and a registrar certificate for "bench",
//!   the identities `kauri-bench create --identity/--staff-identity` use.
//! - `setup` makes the TLD, the registrars `PREFIX001..` (each with a
//!   password, funds and a registrant contact) through gRPC as staff and
//!   EPP as each registrar.
//! - `create`, `check` and `info` log in one EPP session per worker
//!   (spread over the registrars: the registry allows each registrar a
//!   bounded number of sessions), then run the driver's closed loop, one
//!   command in flight per session, and report like `create` does.
//! - `idle` logs in K sessions and holds them, reporting the gateway's
//!   resident memory (VmRSS) before and after.
//! - `report` renders the gRPC vs EPP table of a results directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kauri_client::proto::*;
use kauri_client::tls::{ClientTls, Principal, Role, TlsFiles};
use kauri_client::{meta, ClientConfig, KauriClient};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::driver::{closed_loop, print_load, Bounds, LoadArgs, OpOutcome};
use crate::report::{append_json, write_json, KindResult, LoadResult};

/// Price of a create in the bench TLD (as `create`'s fixture sets it).
const PRICE_MINOR_UNITS: i64 = 100;
/// The name every bench identity carries (staff and registrar), so that
/// `create`'s fixture, which acts as "bench", works over mutual TLS.
const BENCH_PRINCIPAL: &str = "bench";
/// Largest response frame read.
const MAX_FRAME_BYTES: u32 = 1 << 20;
/// Time for one EPP command (the cluster's client gives up after 30 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(40);

const EPP_NS: &str = "urn:ietf:params:xml:ns:epp-1.0";
const DOMAIN_NS: &str = "urn:ietf:params:xml:ns:domain-1.0";
const CONTACT_NS: &str = "urn:ietf:params:xml:ns:contact-1.0";

/// Files of a results directory, as `benches/compare-epp.sh` writes them.
pub const GRPC_CREATE: &str = "grpc-create.json";
/// EPP creates.
pub const EPP_CREATE: &str = "epp-create.json";
/// gRPC checks (`create --mix check=1`).
pub const GRPC_CHECK: &str = "grpc-check.json";
/// EPP checks.
pub const EPP_CHECK: &str = "epp-check.json";
/// gRPC infos (`create --mix info=1`).
pub const GRPC_INFO: &str = "grpc-info.json";
/// EPP infos.
pub const EPP_INFO: &str = "epp-info.json";
/// Idle sessions and the gateway's memory.
pub const EPP_IDLE: &str = "epp-idle.json";

/// Options of `kauri-bench epp`.
#[derive(Debug, clap::Args)]
pub struct EppArgs {
    #[command(subcommand)]
    pub mode: Mode,
}

/// What `kauri-bench epp` does.
#[derive(Debug, clap::Subcommand)]
pub enum Mode {
    /// Development certificates for a cluster, a gateway and its EPP port,
    /// plus staff and registrar certificates for "bench".
    Certs(CertsArgs),
    /// The TLD and the EPP registrars (funds, password, registrant).
    Setup(SetupArgs),
    /// Domain creates through the gateway: throughput and latency.
    Create(LoadModeArgs),
    /// Domain checks through the gateway.
    Check(LoadModeArgs),
    /// Domain infos through the gateway.
    Info(LoadModeArgs),
    /// Log in K sessions, hold them, and report the gateway's memory.
    Idle(IdleArgs),
    /// The gRPC vs EPP table of a results directory (markdown).
    Report(ReportArgs),
}

/// Where the gateway is and who logs in.
#[derive(Debug, Clone, clap::Args)]
pub struct Gateway {
    /// The gateway's EPP address.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub addr: String,
    /// The CA bundle the EPP certificate chains to.
    #[arg(long)]
    pub ca: PathBuf,
    /// Registrar ids are PREFIX001, PREFIX002, ...
    #[arg(long, default_value = "eppbench")]
    pub registrar_prefix: String,
    /// How many registrars the sessions are spread over (round robin).
    #[arg(long, default_value_t = 40)]
    pub registrars: usize,
    /// The registrars' password (6 to 16 characters).
    #[arg(long, default_value = "bench-epp-pw")]
    pub password: String,
    /// The TLD the domains are under.
    #[arg(long, default_value = "bench")]
    pub tld: String,
    /// Logins in flight at once (each costs the cluster an argon2 check).
    #[arg(long, default_value_t = 8)]
    pub login_parallelism: usize,
}

impl Gateway {
    fn registrar(&self, i: usize) -> String {
        format!(
            "{}{:03}",
            self.registrar_prefix,
            i % self.registrars.max(1) + 1
        )
    }
}

/// Options of `kauri-bench epp certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory to write them into.
    #[arg(long)]
    pub out: PathBuf,
    /// The cluster name (kauri-node --cluster-name).
    #[arg(long, default_value = "bench")]
    pub cluster: String,
    /// Node certificates.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
}

/// Options of `kauri-bench epp setup`.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub gateway: Gateway,
    /// The staff identity "bench" (PREFIX.pem, PREFIX.key, ca.pem beside).
    #[arg(long)]
    pub staff_identity: PathBuf,
    /// Creates each registrar is funded for.
    #[arg(long, default_value_t = 2_000_000)]
    pub creates_funded: u64,
}

/// Options of `kauri-bench epp create|check|info`.
#[derive(Debug, clap::Args)]
pub struct LoadModeArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub gateway: Gateway,
    /// Names per check: one free name and the rest taken.
    #[arg(long, default_value_t = 1)]
    pub check_names: usize,
    /// Names each session creates (unmeasured) before a check or info
    /// level, to read back.
    #[arg(long, default_value_t = 4)]
    pub names_per_session: usize,
}

/// Options of `kauri-bench epp idle`.
#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub gateway: Gateway,
    /// Sessions to log in and hold.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// The kauri-gateway process, whose VmRSS is read.
    #[arg(long)]
    pub gateway_pid: u32,
    /// Pause before reading the memory after the logins.
    #[arg(long, default_value_t = 3)]
    pub settle_secs: u64,
    /// Hold the sessions this much longer (after the measurement).
    #[arg(long, default_value_t = 0)]
    pub hold_secs: u64,
    /// Write the result to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of `kauri-bench epp report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Directory holding grpc-*.json, epp-*.json (missing ones are skipped).
    #[arg(long)]
    pub dir: PathBuf,
}

/// What `epp idle` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    /// Sessions logged in and held.
    pub sessions: u64,
    /// Registrars they were spread over.
    pub registrars: u64,
    /// The gateway's VmRSS before the logins (one warm-up session logged
    /// in and out before that), KiB.
    pub rss_before_kib: u64,
    /// After the logins and the settle pause, KiB.
    pub rss_after_kib: u64,
    /// After every session answered a `<hello/>`, KiB.
    pub rss_after_hello_kib: u64,
    /// After logging every session out, KiB.
    pub rss_after_logout_kib: u64,
    /// Time to log them all in.
    pub login_secs: f64,
    /// (after - before) in MiB.
    pub delta_mib: f64,
    /// (after - before) per session, KiB.
    pub per_session_kib: f64,
}

/// `kauri-bench epp`.
pub async fn run(endpoints: &[String], args: EppArgs) -> anyhow::Result<()> {
    match args.mode {
        Mode::Certs(c) => certs(c),
        Mode::Setup(s) => setup(endpoints, s).await,
        Mode::Create(l) => load(Kind::Create, l).await,
        Mode::Check(l) => load(Kind::Check, l).await,
        Mode::Info(l) => load(Kind::Info, l).await,
        Mode::Idle(i) => idle(i).await,
        Mode::Report(r) => {
            print!("{}", render(&r.dir)?);
            Ok(())
        }
    }
}

/// The identity at PREFIX.pem and PREFIX.key, with ca.pem beside them.
pub fn identity_files(prefix: &Path) -> TlsFiles {
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let dir = prefix.parent().map(PathBuf::from).unwrap_or_default();
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: with(".pem"),
        key: with(".key"),
    }
}

/// A client of the cluster at `endpoints` over mutual TLS as the identity
/// at `prefix`.
pub fn client_as(endpoints: &[String], prefix: &Path) -> anyhow::Result<KauriClient> {
    let tls = ClientTls::load(identity_files(prefix))
        .with_context(|| format!("loading the identity {}", prefix.display()))?;
    Ok(KauriClient::new(
        endpoints,
        ClientConfig {
            tls: Some(tls),
            ..Default::default()
        },
    )?)
}

fn certs(args: CertsArgs) -> anyhow::Result<()> {
    let (certs, ca) =
        kauri_client::devpki::DevCerts::create(&args.out, &args.cluster, args.nodes, &[])?;
    for (stem, role) in [
        ("bench-staff", Role::Staff),
        ("bench-registrar", Role::Registrar),
    ] {
        let p = Principal::new(&args.cluster, role, BENCH_PRINCIPAL)?;
        ca.write(&certs.dir, stem, &certs.ca, &p, &[])?;
    }
    println!(
        "wrote certificates for cluster {:?} to {} (kauri dev certs' set, plus bench-staff and \
         bench-registrar for {BENCH_PRINCIPAL:?})",
        args.cluster,
        args.out.display()
    );
    Ok(())
}

fn exists(e: &kauri_client::ClientError) -> bool {
    e.reason == Reason::ObjectExists
}

/// Waits until the cluster has a leader (60 s at most).
async fn wait_for_leader(client: &KauriClient) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.cluster_status_any().await {
            Ok(s) if s.leader_id != 0 => return Ok(()),
            _ if Instant::now() > deadline => bail!("no leader within 60 s"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn setup(endpoints: &[String], args: SetupArgs) -> anyhow::Result<()> {
    let staff = client_as(endpoints, &args.staff_identity)?;
    wait_for_leader(&staff).await?;
    let gw = &args.gateway;
    let policy = crate::create::bench_tld_policy();
    match staff
        .create_tld(CreateTldRequest {
            meta: Some(meta(BENCH_PRINCIPAL)),
            name: gw.tld.clone(),
            policy: Some(policy),
        })
        .await
    {
        Ok(_) => {}
        Err(e) if exists(&e) => {}
        Err(e) => return Err(e).context("creating the TLD"),
    }
    let funds = (args.creates_funded.clamp(1, 1_000_000_000) as i64) * PRICE_MINOR_UNITS;
    for i in 0..gw.registrars {
        let id = gw.registrar(i);
        let created = staff
            .create_registrar(CreateRegistrarRequest {
                meta: Some(meta(BENCH_PRINCIPAL)),
                id: id.clone(),
                name: format!("EPP benchmark registrar {id}"),
                password: gw.password.clone(),
                currency: "USD".into(),
            })
            .await;
        match created {
            Ok(_) => {}
            Err(e) if exists(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("creating registrar {id}")),
        }
        staff
            .deposit_funds(DepositFundsRequest {
                meta: Some(meta(BENCH_PRINCIPAL)),
                registrar: id.clone(),
                amount_minor_units: funds,
                reference: "EPP benchmark".into(),
            })
            .await
            .with_context(|| format!("funding registrar {id}"))?;
    }
    // Each registrar's registrant contact, through EPP (which also proves
    // every registrar can log in).
    let target = Target::new(gw)?;
    let sessions = log_in(&target, gw, gw.registrars).await?;
    for mut s in sessions {
        let id = contact_id(&s.registrar);
        let body = format!(
            "<create><contact:create xmlns:contact=\"{CONTACT_NS}\"><contact:id>{id}</contact:id>\
             <contact:postalInfo type=\"int\"><contact:name>Bench Owner</contact:name>\
             <contact:addr><contact:city>Wellington</contact:city><contact:cc>NZ</contact:cc>\
             </contact:addr></contact:postalInfo><contact:email>owner@example.nz</contact:email>\
             <contact:authInfo><contact:pw>owner-pw-1</contact:pw></contact:authInfo>\
             </contact:create></create>"
        );
        let trid = format!("setup-{id}");
        let answer = s.command(&body, &trid).await?;
        match code(&answer) {
            Some(1000) | Some(2302) => {}
            _ => bail!("creating contact {id}: {}", summary(&answer)),
        }
        s.logout().await;
    }
    println!(
        "EPP fixture: TLD {:?}, registrars {}..{} funded for {} creates each, with contacts",
        gw.tld,
        gw.registrar(0),
        gw.registrar(gw.registrars - 1),
        args.creates_funded
    );
    Ok(())
}

/// The registrant contact of `registrar`'s domains.
fn contact_id(registrar: &str) -> String {
    format!("{registrar}-o")
}

/// How to reach the gateway.
#[derive(Clone)]
struct Target {
    addr: String,
    connector: tokio_rustls::TlsConnector,
    server_name: rustls_pki_types::ServerName<'static>,
}

impl Target {
    fn new(gw: &Gateway) -> anyhow::Result<Self> {
        let roots = kauri_client::tls::load_roots(&gw.ca)?;
        let config = rustls::ClientConfig::builder_with_provider(kauri_client::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let host = gw.addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(&gw.addr);
        let server_name = rustls_pki_types::ServerName::try_from(host.to_string())
            .with_context(|| format!("{host:?} as a TLS server name"))?;
        Ok(Target {
            addr: gw.addr.clone(),
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// One EPP connection, logged in as `registrar`.
struct Session {
    stream: TlsStream<TcpStream>,
    registrar: String,
    /// Names this session created, to read back.
    names: Vec<String>,
}

impl Session {
    /// Connects, reads the greeting and logs in as `registrar`.
    async fn open(target: &Target, registrar: String, password: &str) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(&target.addr)
            .await
            .with_context(|| format!("connecting to {}", target.addr))?;
        tcp.set_nodelay(true)?;
        let stream = target
            .connector
            .connect(target.server_name.clone(), tcp)
            .await
            .context("TLS handshake with the gateway")?;
        let mut s = Session {
            stream,
            registrar,
            names: Vec::new(),
        };
        let greeting = s.read().await?;
        if !greeting.contains("<greeting>") {
            bail!("expected a greeting, got {}", summary(&greeting));
        }
        let body = format!(
            "<login><clID>{}</clID><pw>{password}</pw><options><version>1.0</version>\
             <lang>en</lang></options><svcs><objURI>{DOMAIN_NS}</objURI>\
             <objURI>{CONTACT_NS}</objURI></svcs></login>",
            s.registrar
        );
        let answer = s.command(&body, "bench-login").await?;
        if code(&answer) != Some(1000) {
            bail!("login as {}: {}", s.registrar, summary(&answer));
        }
        Ok(s)
    }

    async fn read(&mut self) -> anyhow::Result<String> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await?;
        let len = u32::from_be_bytes(header);
        if !(4..=MAX_FRAME_BYTES).contains(&len) {
            bail!("frame length {len}");
        }
        let mut data = vec![0u8; len as usize - 4];
        self.stream.read_exact(&mut data).await?;
        Ok(String::from_utf8(data)?)
    }

    /// Sends `xml` as one frame and reads the answer.
    async fn send(&mut self, xml: &str) -> anyhow::Result<String> {
        let mut frame = Vec::with_capacity(xml.len() + 4);
        frame.extend_from_slice(&(xml.len() as u32 + 4).to_be_bytes());
        frame.extend_from_slice(xml.as_bytes());
        let exchange = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            self.read().await
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {COMMAND_TIMEOUT:?}"))?
    }

    /// Sends the command `body` with `cl_trid`.
    async fn command(&mut self, body: &str, cl_trid: &str) -> anyhow::Result<String> {
        self.send(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><epp xmlns=\"{EPP_NS}\"><command>{body}\
             <clTRID>{cl_trid}</clTRID></command></epp>"
        ))
        .await
    }

    /// A domain create of `name`; Ok when the answer is 1000.
    async fn create(&mut self, name: &str, cl_trid: &str) -> Result<(), String> {
        let body = format!(
            "<create><domain:create xmlns:domain=\"{DOMAIN_NS}\"><domain:name>{name}</domain:name>\
             <domain:period unit=\"y\">1</domain:period><domain:registrant>{}</domain:registrant>\
             </domain:create></create>",
            contact_id(&self.registrar)
        );
        self.expect_ok(&body, cl_trid).await
    }

    async fn check(&mut self, names: &[String], cl_trid: &str) -> Result<(), String> {
        let mut body = format!("<check><domain:check xmlns:domain=\"{DOMAIN_NS}\">");
        for n in names {
            let _ = write!(body, "<domain:name>{n}</domain:name>");
        }
        body.push_str("</domain:check></check>");
        self.expect_ok(&body, cl_trid).await
    }

    async fn info(&mut self, name: &str, cl_trid: &str) -> Result<(), String> {
        let body = format!(
            "<info><domain:info xmlns:domain=\"{DOMAIN_NS}\"><domain:name hosts=\"all\">{name}\
             </domain:name></domain:info></info>"
        );
        self.expect_ok(&body, cl_trid).await
    }

    async fn expect_ok(&mut self, body: &str, cl_trid: &str) -> Result<(), String> {
        let answer = self
            .command(body, cl_trid)
            .await
            .map_err(|e| e.to_string())?;
        match code(&answer) {
            Some(1000) => Ok(()),
            _ => Err(summary(&answer)),
        }
    }

    async fn hello(&mut self) -> bool {
        let hello = format!("<epp xmlns=\"{EPP_NS}\"><hello/></epp>");
        matches!(self.send(&hello).await, Ok(a) if a.contains("<greeting>"))
    }

    /// Logs out (errors ignored: the gateway closes the session when the
    /// connection goes anyway).
    async fn logout(&mut self) {
        let _ = self.command("<logout/>", "bench-logout").await;
    }
}

/// The result code of an EPP answer.
fn code(xml: &str) -> Option<u16> {
    let at = xml.find("<result code=\"")? + 14;
    xml.get(at..at + 4)?.parse().ok()
}

/// The code and message of an answer, for errors.
fn summary(xml: &str) -> String {
    let msg = xml
        .find("<msg")
        .and_then(|at| {
            let start = xml[at..].find('>')? + at + 1;
            let end = xml[start..].find("</msg>")? + start;
            Some(&xml[start..end])
        })
        .unwrap_or("");
    let reason = xml
        .find("<reason")
        .and_then(|at| {
            let start = xml[at..].find('>')? + at + 1;
            let end = xml[start..].find("</reason>")? + start;
            Some(&xml[start..end])
        })
        .unwrap_or("");
    match code(xml) {
        Some(c) => format!("{c} {msg} {reason}").trim().to_string(),
        None => format!("unexpected answer: {}", &xml[..xml.len().min(200)]),
    }
}

/// Logs in `n` sessions, session i as registrar i mod the registrar count,
/// `gw.login_parallelism` at a time.
async fn log_in(target: &Target, gw: &Gateway, n: usize) -> anyhow::Result<Vec<Session>> {
    let target = Arc::new(target.clone());
    let permits = Arc::new(tokio::sync::Semaphore::new(gw.login_parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (target, permits, registrar) = (target.clone(), permits.clone(), gw.registrar(i));
        let password = gw.password.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            Session::open(&target, registrar, &password).await
        });
    }
    let mut sessions = Vec::with_capacity(n);
    let mut first_error = None;
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(s) => sessions.push(s),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        for mut s in sessions {
            s.logout().await;
        }
        return Err(e).context(format!("{failed} of {n} logins failed"));
    }
    Ok(sessions)
}

/// The kind of command a load mode sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Check,
    Info,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Check => "check",
            Kind::Info => "info",
        }
    }
}

/// Sessions free for the next command; one per worker, so a worker always
/// finds one.
type Pool = Arc<Mutex<Vec<Session>>>;

fn lock(pool: &Pool) -> std::sync::MutexGuard<'_, Vec<Session>> {
    pool.lock().unwrap_or_else(|p| p.into_inner())
}

async fn load(kind: Kind, args: LoadModeArgs) -> anyhow::Result<()> {
    let gw = &args.gateway;
    let target = Target::new(gw)?;
    let run = format!(
        "{:x}",
        (rand::thread_rng().gen::<u64>() ^ u64::from(std::process::id())) & 0xffff_ffff_ffff
    );
    let ids = Arc::new(AtomicU64::new(0));
    let mut results = Vec::new();
    for &concurrency in &args.load.concurrency {
        let began = Instant::now();
        let mut sessions = log_in(&target, gw, concurrency.max(1) as usize).await?;
        let login_secs = began.elapsed().as_secs_f64();
        if kind != Kind::Create {
            // Names to read back, created unmeasured.
            for (i, s) in sessions.iter_mut().enumerate() {
                for j in 0..args.names_per_session.max(1) {
                    let name = format!("r{run}-{concurrency}-{i}-{j}.{}", gw.tld);
                    s.create(&name, &format!("p{run}-{concurrency}-{i}-{j}"))
                        .await
                        .map_err(|e| anyhow::anyhow!("creating {name} to read back: {e}"))?;
                    s.names.push(name);
                }
            }
        }
        println!(
            "epp: {} sessions over {} registrars logged in in {login_secs:.1} s",
            sessions.len(),
            gw.registrars.min(sessions.len())
        );
        let pool: Pool = Arc::new(Mutex::new(sessions));
        let (tld, check_names) = (gw.tld.clone(), args.check_names.max(1));
        let op = {
            let (pool, run) = (pool.clone(), run.clone());
            move |id: u64| {
                let (pool, run, tld) = (pool.clone(), run.clone(), tld.clone());
                async move {
                    let taken = lock(&pool).pop();
                    let Some(mut s) = taken else {
                        return OpOutcome::new(kind.label(), Err("no free session"));
                    };
                    let trid = format!("b{run}-{id}");
                    let result = match kind {
                        Kind::Create => s.create(&format!("e{run}-{id}.{tld}"), &trid).await,
                        Kind::Check => {
                            let mut names = vec![format!("e{run}-{id}-free.{tld}")];
                            {
                                let mut rng = rand::thread_rng();
                                while names.len() < check_names {
                                    names.push(s.names[rng.gen_range(0..s.names.len())].clone());
                                }
                            }
                            s.check(&names, &trid).await
                        }
                        Kind::Info => {
                            let name =
                                s.names[rand::thread_rng().gen_range(0..s.names.len())].clone();
                            s.info(&name, &trid).await
                        }
                    };
                    lock(&pool).push(s);
                    OpOutcome::new(kind.label(), result)
                }
            }
        };
        if args.load.warmup_secs > 0 {
            let warmup = Bounds {
                concurrency,
                count: u64::MAX,
                duration: Duration::from_secs(args.load.warmup_secs),
            };
            let r = closed_loop(&warmup, &ids, op.clone()).await;
            println!(
                "warm-up: {} epp {} ops in {:.1} s",
                r.ok(),
                kind.label(),
                r.elapsed.as_secs_f64()
            );
        }
        let report = closed_loop(&args.load.bounds(concurrency), &ids, op).await;
        let result = report.summary("epp", kind.label());
        print_load(&result, &report.first_errors);
        results.push(result);
        let sessions = std::mem::take(&mut *lock(&pool));
        for mut s in sessions {
            s.logout().await;
        }
    }
    if let Some(path) = &args.load.json {
        append_json(path, &results)?;
    }
    Ok(())
}

/// VmRSS of process `pid`, KiB.
fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

async fn idle(args: IdleArgs) -> anyhow::Result<()> {
    let gw = &args.gateway;
    let target = Target::new(gw)?;
    // One session in and out first: the gateway's connections to the
    // cluster and its first TLS state are not what a session costs.
    for mut s in log_in(&target, gw, 1).await? {
        s.logout().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = vm_rss_kib(args.gateway_pid)?;
    let began = Instant::now();
    let mut sessions = log_in(&target, gw, args.sessions).await?;
    let login_secs = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let after = vm_rss_kib(args.gateway_pid)?;
    let mut alive = 0;
    for s in &mut sessions {
        alive += u64::from(s.hello().await);
    }
    let after_hello = vm_rss_kib(args.gateway_pid)?;
    if alive != sessions.len() as u64 {
        eprintln!(
            "  error: {} of {} sessions did not answer a hello",
            sessions.len() as u64 - alive,
            sessions.len()
        );
    }
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    for s in &mut sessions {
        s.logout().await;
    }
    drop(sessions);
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let after_logout = vm_rss_kib(args.gateway_pid)?;
    let delta_kib = after.saturating_sub(before) as f64;
    let result = IdleResult {
        sessions: args.sessions as u64,
        registrars: gw.registrars.min(args.sessions) as u64,
        rss_before_kib: before,
        rss_after_kib: after,
        rss_after_hello_kib: after_hello,
        rss_after_logout_kib: after_logout,
        login_secs,
        delta_mib: delta_kib / 1024.0,
        per_session_kib: delta_kib / args.sessions.max(1) as f64,
    };
    println!(
        "epp idle: {} sessions over {} registrars logged in in {:.1} s ({alive} answered a hello); \
         gateway VmRSS {:.1} MiB before, {:.1} MiB after (+{:.1} MiB, {:.0} KiB a session), \
         {:.1} MiB after a hello on each, {:.1} MiB after logging out",
        result.sessions,
        result.registrars,
        login_secs,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        result.delta_mib,
        result.per_session_kib,
        after_hello as f64 / 1024.0,
        after_logout as f64 / 1024.0,
    );
    if let Some(path) = &args.json {
        write_json(path, &result)?;
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("parsing {}", path.display()))
}

/// The figures of `kind` in a level: its own entry of a mix (a gRPC info
/// mix creates names first), or the whole level.
fn of_kind<'a>(r: &'a LoadResult, kind: &str) -> &'a KindResult {
    r.by_kind
        .iter()
        .find(|k| k.kind == kind)
        .unwrap_or(&r.overall)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// Reads thresholds of the issue.
const MIN_CREATE_RATIO: f64 = 0.80;
const MAX_ADDED_P50_MS: f64 = 2.0;
const MAX_ADDED_P99_MS: f64 = 5.0;
const MIN_READS_PER_SEC: f64 = 5000.0;
const MAX_IDLE_MIB: f64 = 100.0;

/// The rounds of one kind of operation at one concurrency, combined: the
/// rate over all of them (operations over time), the median of their
/// percentiles, the slowest of their maxima.
#[derive(Debug, Clone, PartialEq)]
struct Rounds {
    /// Each round's rate, in run order.
    rates: Vec<f64>,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The rounds of `kind` at concurrency `c` among `results` (a results
/// file holds one result per round and level), or `None` when none ran.
fn rounds(results: &[LoadResult], c: u64, kind: &str) -> Option<Rounds> {
    let runs: Vec<(&KindResult, f64)> = results
        .iter()
        .filter(|r| r.concurrency == c)
        .map(|r| (of_kind(r, kind), r.elapsed_secs))
        .collect();
    if runs.is_empty() {
        return None;
    }
    let ok: u64 = runs.iter().map(|(k, _)| k.ok).sum();
    let secs: f64 = runs.iter().map(|(_, s)| s).sum();
    Some(Rounds {
        rates: runs.iter().map(|(k, _)| k.ops_per_sec).collect(),
        ops_per_sec: ok as f64 / secs.max(1e-9),
        p50_ms: median(runs.iter().map(|(k, _)| k.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|(k, _)| k.p99_ms).collect()),
        max_ms: runs.iter().map(|(k, _)| k.max_ms).fold(0.0, f64::max),
        errors: runs.iter().map(|(k, _)| k.errors).sum(),
    })
}

/// The concurrency levels of `results`, in first-run order, once each.
fn levels(results: &[LoadResult]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for r in results {
        if !out.contains(&r.concurrency) {
            out.push(r.concurrency);
        }
    }
    out
}

/// "0.78 / 0.86 / 0.80": EPP's rate over gRPC's, round by round.
fn round_ratios(g: &Rounds, e: &Rounds) -> String {
    g.rates
        .iter()
        .zip(&e.rates)
        .map(|(g, e)| format!("{:.2}", e / g.max(1e-9)))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The markdown table of the results in `dir`. A level that ran in
/// several rounds (gRPC and EPP alternating) is reported combined: rates
/// over all rounds, the median round's p50 and p99.
pub fn render(dir: &Path) -> anyhow::Result<String> {
    let load = |name: &str| -> anyhow::Result<Vec<LoadResult>> {
        Ok(read_json(&dir.join(name))?.unwrap_or_default())
    };
    let mut out = String::new();
    out.push_str("| measure | gRPC | EPP | EPP/gRPC | target | met? |\n");
    out.push_str("|---|---:|---:|---:|---|---|\n");
    let (grpc, epp) = (load(GRPC_CREATE)?, load(EPP_CREATE)?);
    for c in levels(&epp) {
        let (Some(g), Some(e)) = (rounds(&grpc, c, "create"), rounds(&epp, c, "create")) else {
            continue;
        };
        let ratio = e.ops_per_sec / g.ops_per_sec.max(1e-9);
        let _ = writeln!(
            out,
            "| c={c}: creates/s | {:.0} | {:.0} | {ratio:.2} | >= {MIN_CREATE_RATIO:.2} | {} |",
            g.ops_per_sec,
            e.ops_per_sec,
            verdict(ratio >= MIN_CREATE_RATIO)
        );
        if g.rates.len() > 1 {
            let _ = writeln!(
                out,
                "| c={c}: EPP/gRPC creates, round by round | | | {} | | |",
                round_ratios(&g, &e)
            );
        }
        for (name, gv, ev, limit) in [
            ("p50", g.p50_ms, e.p50_ms, Some(MAX_ADDED_P50_MS)),
            ("p99", g.p99_ms, e.p99_ms, Some(MAX_ADDED_P99_MS)),
            ("max", g.max_ms, e.max_ms, None),
        ] {
            let added = ev - gv;
            let (target, met) = match limit {
                Some(l) => (format!("+<= {l:.0} ms"), verdict(added <= l).to_string()),
                None => (String::new(), String::new()),
            };
            let _ = writeln!(
                out,
                "| c={c}: create {name}, ms | {gv:.2} | {ev:.2} | {added:+.2} ms | {target} | {met} |"
            );
        }
        if g.errors + e.errors > 0 {
            let _ = writeln!(
                out,
                "| c={c}: failed creates | {} | {} | | | |",
                g.errors, e.errors
            );
        }
    }
    for (kind, grpc_file, epp_file) in [
        ("check", GRPC_CHECK, EPP_CHECK),
        ("info", GRPC_INFO, EPP_INFO),
    ] {
        let (grpc, epp) = (load(grpc_file)?, load(epp_file)?);
        for c in levels(&epp) {
            let g = rounds(&grpc, c, kind);
            let Some(e) = rounds(&epp, c, kind) else {
                continue;
            };
            let g = g.as_ref();
            let cell = |v: Option<f64>, digits: usize| {
                v.map(|v| format!("{v:.digits$}"))
                    .unwrap_or_else(|| "-".into())
            };
            let ratio = g
                .map(|g| format!("{:.2}", e.ops_per_sec / g.ops_per_sec.max(1e-9)))
                .unwrap_or_else(|| "-".into());
            // gRPC reads ask for linearizable reads; the gateway's checks
            // are bounded-stale (its default), its infos linearizable.
            let how = if kind == "check" {
                "gRPC linearizable, EPP bounded-stale"
            } else {
                "linearizable"
            };
            let _ = writeln!(
                out,
                "| c={c}: {kind}s/s ({how}) | {} | {:.0} | {ratio} | EPP >= {MIN_READS_PER_SEC:.0}/s | {} |",
                cell(g.map(|g| g.ops_per_sec), 0),
                e.ops_per_sec,
                verdict(e.ops_per_sec >= MIN_READS_PER_SEC)
            );
            for (name, gv, ev) in [
                ("p50", g.map(|g| g.p50_ms), e.p50_ms),
                ("p99", g.map(|g| g.p99_ms), e.p99_ms),
            ] {
                let added = gv
                    .map(|gv| format!("{:+.2} ms", ev - gv))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "| c={c}: {kind} {name}, ms | {} | {ev:.2} | {added} | | |",
                    cell(gv, 2)
                );
            }
            let errors = g.map(|g| g.errors).unwrap_or(0) + e.errors;
            if errors > 0 {
                let _ = writeln!(
                    out,
                    "| c={c}: failed {kind}s | {} | {} | | | |",
                    g.map(|g| g.errors).unwrap_or(0),
                    e.errors
                );
            }
        }
    }
    if let Some(idle) = read_json::<IdleResult>(&dir.join(EPP_IDLE))? {
        let _ = writeln!(
            out,
            "| {} idle sessions: gateway RSS growth, MiB | | {:.1} | | <= {MAX_IDLE_MIB:.0} MiB | {} |",
            idle.sessions,
            idle.delta_mib,
            verdict(idle.delta_mib <= MAX_IDLE_MIB)
        );
        let _ = writeln!(
            out,
            "| idle: gateway RSS before / after, MiB ({:.0} KiB a session) | | {:.1} / {:.1} | | | |",
            idle.per_session_kib,
            idle.rss_before_kib as f64 / 1024.0,
            idle.rss_after_kib as f64 / 1024.0
        );
        let _ = writeln!(
            out,
            "| idle: {} logins (over {} registrars), s | | {:.1} | | | |",
            idle.sessions, idle.registrars, idle.login_secs
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_give_their_code_and_message() {
        let ok = r#"<epp><response><result code="1000"><msg>Command completed successfully</msg></result></response></epp>"#;
        assert_eq!(code(ok), Some(1000));
        let refused = r#"<epp><response><result code="2302"><msg lang="en">Object exists</msg><extValue><reason>taken</reason></extValue></result></response></epp>"#;
        assert_eq!(summary(refused), "2302 Object exists taken");
        assert_eq!(code("<epp/>"), None);
    }

    fn level(c: u64, ok: u64, secs: f64, p50: f64, max: f64) -> LoadResult {
        LoadResult {
            system: "kauri".into(),
            operation: "create".into(),
            concurrency: c,
            elapsed_secs: secs,
            overall: KindResult {
                kind: "create".into(),
                ok,
                errors: 0,
                ops_per_sec: ok as f64 / secs,
                p50_ms: p50,
                p99_ms: p50 * 2.0,
                p999_ms: p50 * 3.0,
                max_ms: max,
            },
            by_kind: vec![],
        }
    }

    #[test]
    fn rounds_combine_into_the_rate_over_all_and_the_median_percentiles() {
        let results = [
            level(64, 1000, 10.0, 30.0, 50.0),
            level(16, 500, 10.0, 9.0, 20.0),
            level(64, 2000, 10.0, 20.0, 90.0),
            level(64, 3000, 10.0, 25.0, 40.0),
        ];
        assert_eq!(levels(&results), [64, 16]);
        let r = rounds(&results, 64, "create").expect("three rounds");
        assert_eq!(r.rates, [100.0, 200.0, 300.0]);
        assert_eq!(r.ops_per_sec, 200.0);
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (25.0, 50.0, 90.0));
        assert_eq!(rounds(&results, 1, "create"), None);
        let one = rounds(&results, 16, "create").expect("one round");
        assert_eq!((one.ops_per_sec, one.p50_ms), (50.0, 9.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        let epp = rounds(
            &[
                level(64, 500, 10.0, 1.0, 1.0),
                level(64, 1800, 10.0, 1.0, 1.0),
            ],
            64,
            "create",
        )
        .expect("two rounds");
        assert_eq!(round_ratios(&r, &epp), "0.50 / 0.90");
    }

    #[test]
    fn sessions_spread_round_robin_over_the_registrars() {
        let gw = Gateway {
            addr: "127.0.0.1:700".into(),
            ca: PathBuf::new(),
            registrar_prefix: "eppbench".into(),
            registrars: 3,
            password: String::new(),
            tld: "bench".into(),
            login_parallelism: 1,
        };
        let ids: Vec<String> = (0..4).map(|i| gw.registrar(i)).collect();
        assert_eq!(
            ids,
            ["eppbench001", "eppbench002", "eppbench003", "eppbench001"]
        );
    }
}
