//! `kauri-gateway`: serves EPP over TLS in front of a Kauri cluster.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

// Every command allocates its XML, protobuf and TLS buffers and frees them
// at once; mimalloc serves that pattern with less CPU than the system
// allocator (measured in docs/performance.md, "EPP gateway").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The registrars' door to a Kauri cluster: an EPP server (RFC 5730-5734)
/// over TLS. Stateless: logins and commands go to the cluster through
/// kauri-client as this gateway's identity.
#[derive(Debug, Parser)]
#[command(name = "kauri-gateway", version)]
struct Args {
    /// The cluster's nodes, HOST:PORT, comma-separated.
    #[arg(long, env = "KAURI_ENDPOINTS", value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// Where to serve EPP.
    #[arg(long, env = "KAURI_EPP_ADDR", default_value = "0.0.0.0:700")]
    epp_addr: String,
    /// The EPP port's certificate chain (PEM).
    #[arg(long, env = "KAURI_EPP_TLS_CERT")]
    tls_cert: PathBuf,
    /// The EPP port's private key (PEM).
    #[arg(long, env = "KAURI_EPP_TLS_KEY")]
    tls_key: PathBuf,
    /// Check client certificates against this CA bundle (PEM): required of
    /// every client, or, with --registrar-certs, of the registrars listed
    /// there.
    #[arg(long, env = "KAURI_EPP_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Registrars bound to client certificates: a file of `CLID SHA256`
    /// lines (the certificate's SHA-256 fingerprint in hex). A listed
    /// registrar logs in only over a connection with one of its
    /// certificates (else 2200); others need none. Needs --tls-client-ca.
    #[arg(long, env = "KAURI_EPP_REGISTRAR_CERTS", requires = "tls_client_ca")]
    registrar_certs: Option<PathBuf>,
    /// This gateway's identity towards the cluster: PREFIX.pem and
    /// PREFIX.key, with the cluster's ca.pem beside them (a gateway
    /// certificate, e.g. from `kauri dev certs`).
    #[arg(long, env = "KAURI_IDENTITY")]
    identity: PathBuf,
    /// The server id the greeting names.
    #[arg(long, env = "KAURI_EPP_SERVER_ID", default_value = "Kauri EPP")]
    server_id: String,
    /// Largest EPP frame accepted, bytes; a larger one closes the connection.
    #[arg(long, env = "KAURI_EPP_MAX_FRAME_BYTES", default_value_t = 65_536,
        value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
    max_frame_bytes: u32,
    /// Close a connection that sends nothing for this many seconds.
    #[arg(long, env = "KAURI_EPP_IDLE_TIMEOUT_SECS", default_value_t = 600,
        value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_secs: u64,
    /// Most sessions one registrar holds on this gateway at once.
    #[arg(
        long,
        env = "KAURI_EPP_MAX_SESSIONS_PER_REGISTRAR",
        default_value_t = 10
    )]
    max_sessions_per_registrar: usize,
    /// Most connections at once.
    #[arg(long, env = "KAURI_EPP_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Serve Prometheus metrics on /metrics, and the /healthz and /readyz
    /// probes, on this address (plain HTTP: keep it on an internal
    /// network). Not served when absent.
    #[arg(long, env = "KAURI_GATEWAY_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// How long a command may take in the cluster, retries across a
    /// failover included, before it is answered 2400 ("send it again with
    /// the same clTRID"); each attempt gets half. Keep it under the
    /// registrars' clients' own timeouts (pyepp waits 10 s, Net::EPP 5 s by
    /// default), or they give up before the answer.
    #[arg(long, env = "KAURI_EPP_CLUSTER_TIMEOUT_MS", default_value_t = 8_000,
        value_parser = clap::value_parser!(u64).range(1_000..=60_000))]
    cluster_timeout_ms: u64,
    /// How far behind the cluster's registry time a `<check>` answer may be,
    /// in milliseconds: checks are bounded-stale reads the leader answers
    /// without a read-index round, never older than this nor than an answer
    /// the gateway already gave (read again linearizably when the node
    /// cannot meet that). 0 makes checks linearizable. `<info>`, transfer
    /// queries and poll are always linearizable. Keep it above the nodes'
    /// --tick-interval-ms, which is how often registry time moves.
    #[arg(long, env = "KAURI_EPP_CHECK_MAX_STALENESS_MS", default_value_t = 3_000,
        value_parser = clap::value_parser!(u64).range(0..=60_000))]
    check_max_staleness_ms: u64,
    /// Failed logins on one connection before it is closed.
    #[arg(long, env = "KAURI_EPP_MAX_FAILED_LOGINS", default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..))]
    max_failed_logins: u32,
    /// Threads running the gateway's connections and its calls to the
    /// cluster; 0 is one per CPU. Where the gateway shares a small host with
    /// cluster nodes, 1 leaves them the other CPUs and saves a thread
    /// hand-off per command (docs/performance.md, "EPP gateway").
    #[arg(long, env = "KAURI_GATEWAY_WORKER_THREADS", default_value_t = 0,
        value_parser = clap::value_parser!(u16).range(0..=1024))]
    worker_threads: u16,
}

fn identity_files(prefix: &std::path::Path) -> kauri_client::tls::TlsFiles {
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let dir = prefix.parent().map(PathBuf::from).unwrap_or_default();
    kauri_client::tls::TlsFiles {
        ca: dir.join("ca.pem"),
        cert: with(".pem"),
        key: with(".key"),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if args.worker_threads > 0 {
        runtime.worker_threads(usize::from(args.worker_threads));
    }
    match runtime.build() {
        Ok(runtime) => runtime.block_on(serve(args)),
        Err(e) => {
            eprintln!("kauri-gateway: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KAURI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kauri-gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let registrar_certs = match &args.registrar_certs {
        Some(path) => kauri_gateway::tls::RegistrarCerts::load(path)?,
        None => Default::default(),
    };
    let tls = kauri_gateway::tls::server_config(
        &args.tls_cert,
        &args.tls_key,
        args.tls_client_ca.as_deref(),
        args.registrar_certs.is_some(),
    )?;
    let identity = kauri_client::tls::ClientTls::load(identity_files(&args.identity))?;
    let cluster = kauri_client::KauriClient::new(
        &args.endpoints,
        kauri_client::ClientConfig {
            tls: Some(identity),
            deadline: Duration::from_millis(args.cluster_timeout_ms),
            attempt_timeout: Duration::from_millis(args.cluster_timeout_ms / 2),
            ..Default::default()
        },
    )?;
    if let Some(addr) = args.metrics_addr {
        let handle = kauri_gateway::observe::install()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on --metrics-addr {addr}: {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
        let ready = kauri_gateway::observe::Readiness::default();
        tokio::spawn(ready.clone().watch(cluster.clone()));
        tokio::spawn(kauri_gateway::observe::serve(listener, handle, ready));
    }
    let listener = tokio::net::TcpListener::bind(&args.epp_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.epp_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving EPP");
    let config = kauri_gateway::server::Config {
        server_id: args.server_id,
        tls,
        cluster,
        max_frame_bytes: args.max_frame_bytes,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        handshake_timeout: Duration::from_secs(10),
        max_sessions_per_registrar: args.max_sessions_per_registrar,
        max_connections: args.max_connections,
        max_failed_logins: args.max_failed_logins,
        registrar_certs,
        checks: kauri_gateway::session::CheckReads::new(args.check_max_staleness_ms),
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        served = kauri_gateway::server::serve(listener, config) => served?,
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping (SIGINT)"),
        _ = term.recv() => tracing::info!("stopping (SIGTERM)"),
    }
    Ok(())
}
