//! The `kauri` command line: global flags, one module per command family,
//! output rendering and exit codes.

mod audit;
mod backup;
mod case;
mod cluster;
mod contact;
mod dev;
mod domain;
mod host;
mod output;
mod poll;
mod registrar;
mod tld;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use kauri_client::{ClientConfig, ClientError, KauriClient};

pub use output::Output;

/// Exit code when the registry rejected the request.
pub const EXIT_REJECTED: u8 = 1;
/// Exit code for bad usage (clap's own errors also use 2).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the cluster could not be reached or gave no answer in time.
pub const EXIT_UNAVAILABLE: u8 = 3;

/// Command-line tool for a Kauri registry cluster.
///
/// Exit codes: 0 success, 1 the registry rejected the request (the reason is
/// printed, e.g. OBJECT_EXISTS), 2 bad usage, 3 the cluster could not be
/// reached or did not answer in time (the outcome of a write is then unknown:
/// repeat it with the same --cl-trid).
#[derive(Debug, Parser)]
#[command(name = "kauri", version)]
pub struct Args {
    /// Cluster endpoints, HOST:PORT,...
    #[arg(
        long,
        env = "KAURI_ENDPOINTS",
        default_value = "127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50053",
        value_delimiter = ',',
        global = true
    )]
    pub endpoints: Vec<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Human, global = true)]
    pub output: Format,
    /// Overall deadline of the command in milliseconds, retries included.
    #[arg(
        long,
        env = "KAURI_TIMEOUT_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub timeout_ms: u64,
    /// Client transaction id (idempotency key) of a mutating command; a fresh
    /// one is generated when omitted. Repeat a command with the same id to
    /// retry it safely.
    #[arg(long, global = true)]
    pub cl_trid: Option<String>,
    /// The registrar acting (registrar commands).
    #[arg(
        long = "registrar",
        short = 'r',
        env = "KAURI_REGISTRAR",
        global = true,
        default_value = ""
    )]
    pub registrar: String,
    /// The staff member acting (administrative commands). Over TLS the
    /// certificate says who acts; leave this empty or give the same name.
    #[arg(long, env = "KAURI_STAFF", global = true, default_value = "")]
    pub staff: String,
    /// PEM bundle of the cluster's CA (mutual TLS).
    #[arg(long, env = "KAURI_CACERT", global = true)]
    pub cacert: Option<std::path::PathBuf>,
    /// PEM client certificate naming kauri://CLUSTER/ROLE/NAME (mutual TLS).
    #[arg(long, env = "KAURI_CERT", global = true)]
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, env = "KAURI_KEY", global = true)]
    pub key: Option<std::path::PathBuf>,
    /// Shorthand for --cert PREFIX.pem --key PREFIX.key --cacert
    /// DIR/ca.pem, e.g. data/dev/certs/staff after `kauri dev up`.
    #[arg(long, env = "KAURI_IDENTITY", global = true)]
    pub identity: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable text.
    Human,
    /// One JSON document, stable for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Cluster membership and health.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Online backups of the registry state, and checking them.
    #[command(subcommand)]
    Backup(backup::BackupCmd),
    /// Top-level domains and their policy.
    #[command(subcommand)]
    Tld(tld::TldCmd),
    /// Registrar accounts.
    #[command(subcommand)]
    Registrar(registrar::RegistrarCmd),
    /// Contacts (RFC 5733).
    #[command(subcommand)]
    Contact(contact::ContactCmd),
    /// Hosts (RFC 5732).
    #[command(subcommand)]
    Host(host::HostCmd),
    /// Domains (RFC 5731), transfers, restores, registry lock.
    #[command(subcommand)]
    Domain(domain::DomainCmd),
    /// A registrar's poll queue (RFC 5730).
    #[command(subcommand)]
    Poll(poll::PollCmd),
    /// AUP complaint cases and suspensions (staff).
    #[command(subcommand)]
    Case(case::CaseCmd),
    /// The audit trail of an object or an actor (staff), newest first.
    Audit(audit::AuditArgs),
    /// A local development cluster.
    #[command(subcommand)]
    Dev(dev::DevCmd),
}

/// What a command needs: the client and the global flags.
pub struct Ctx {
    pub client: KauriClient,
    pub args_output: Format,
    pub cl_trid: Option<String>,
    pub registrar: String,
    pub staff: String,
    /// Who the TLS certificate says we are, over TLS.
    pub principal: Option<kauri_client::tls::Principal>,
}

impl Ctx {
    /// Request metadata for a registrar command.
    pub fn registrar_meta(&self) -> Result<kauri_client::proto::RequestMeta, ClientError> {
        if self.registrar.is_empty() {
            // Over TLS the node takes the actor from the certificate.
            if self.principal.is_some() {
                return Ok(self.meta(""));
            }
            return Err(usage(
                "registrar commands need --registrar ID (or KAURI_REGISTRAR)",
            ));
        }
        Ok(self.meta(&self.registrar))
    }

    /// The staff actor: as given, else the certificate's (empty: the node
    /// fills it in), else "staff" over plain text.
    fn staff(&self) -> &str {
        match (&self.staff, &self.principal) {
            (s, _) if !s.is_empty() => s,
            (_, Some(_)) => "",
            (_, None) => "staff",
        }
    }

    /// Request metadata for a staff command.
    pub fn staff_meta(&self) -> kauri_client::proto::RequestMeta {
        self.meta(self.staff())
    }

    /// Request metadata for the second command of a two-step staff command:
    /// a fresh client transaction id, or `--cl-trid` with "-2" appended.
    pub fn fresh_staff_meta(&self) -> kauri_client::proto::RequestMeta {
        let mut meta = kauri_client::meta(self.staff());
        if let Some(id) = &self.cl_trid {
            meta.cl_trid = format!("{id}-2");
        }
        meta
    }

    fn meta(&self, actor: &str) -> kauri_client::proto::RequestMeta {
        let mut meta = kauri_client::meta(actor);
        if let Some(id) = &self.cl_trid {
            meta.cl_trid = id.clone();
        }
        meta
    }

    /// Prints a result in the chosen format.
    pub fn print<T: Output>(&self, value: &T) {
        match self.args_output {
            Format::Human => out(&value.human()),
            Format::Json => match serde_json::to_string_pretty(value) {
                Ok(s) => out(&format!("{s}\n")),
                Err(e) => eprintln!("cannot render JSON: {e}"),
            },
        }
    }
}

/// Writes `text` to stdout. When stdout is a closed pipe (`kauri ... |
/// head`), exits quietly with success, as Unix tools do.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cannot write the output: {e}");
    }
}

/// A usage error found before anything was sent.
pub fn usage(message: impl Into<String>) -> ClientError {
    let mut e = ClientError::from_status(&tonic::Status::invalid_argument(message.into()), "kauri");
    e.message = e.message.trim_start_matches("kauri: ").to_string();
    e
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(args: Args) -> ExitCode {
    let format = args.output;
    if let Command::Dev(cmd) = args.command {
        return match dev::run(cmd).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(EXIT_UNAVAILABLE)
            }
        };
    }
    let tls = match tls_files(&args) {
        Ok(None) => None,
        Ok(Some(files)) => match kauri_client::tls::ClientTls::load(files) {
            Ok(t) => Some(t),
            Err(e) => return report(format, &usage(e.to_string())),
        },
        Err(e) => return report(format, &e),
    };
    let principal = tls.as_ref().map(|t| t.principal());
    let config = ClientConfig {
        deadline: Duration::from_millis(args.timeout_ms),
        tls,
        ..ClientConfig::default()
    };
    let client = match KauriClient::new(&args.endpoints, config) {
        Ok(c) => c,
        Err(e) => return report(format, &e),
    };
    let ctx = Ctx {
        client,
        args_output: format,
        cl_trid: args.cl_trid,
        registrar: args.registrar,
        staff: args.staff,
        principal,
    };
    let result = match args.command {
        Command::Cluster(c) => cluster::run(&ctx, c).await,
        Command::Backup(c) => backup::run(&ctx, c).await,
        Command::Tld(c) => tld::run(&ctx, c).await,
        Command::Registrar(c) => registrar::run(&ctx, c).await,
        Command::Contact(c) => contact::run(&ctx, c).await,
        Command::Host(c) => host::run(&ctx, c).await,
        Command::Domain(c) => domain::run(&ctx, c).await,
        Command::Poll(c) => poll::run(&ctx, c).await,
        Command::Case(c) => case::run(&ctx, c).await,
        Command::Audit(a) => audit::run(&ctx, a).await,
        Command::Dev(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(format, &e),
    }
}

/// The TLS files the flags name, if any.
fn tls_files(args: &Args) -> Result<Option<kauri_client::tls::TlsFiles>, ClientError> {
    let from_identity = args.identity.as_ref().map(|prefix| {
        let with = |ext: &str| {
            let mut p = prefix.clone().into_os_string();
            p.push(ext);
            std::path::PathBuf::from(p)
        };
        let dir = prefix
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        (dir.join("ca.pem"), with(".pem"), with(".key"))
    });
    let (ca, cert, key) = match from_identity {
        Some((ca, cert, key)) => (
            args.cacert.clone().unwrap_or(ca),
            args.cert.clone().unwrap_or(cert),
            args.key.clone().unwrap_or(key),
        ),
        None => match (&args.cacert, &args.cert, &args.key) {
            (None, None, None) => return Ok(None),
            (Some(ca), Some(cert), Some(key)) => (ca.clone(), cert.clone(), key.clone()),
            _ => {
                return Err(usage(
                    "mutual TLS needs all of --cacert, --cert and --key (or --identity PREFIX)",
                ))
            }
        },
    };
    Ok(Some(kauri_client::tls::TlsFiles { ca, cert, key }))
}

fn report(format: Format, e: &ClientError) -> ExitCode {
    match format {
        Format::Human => eprintln!("error: {e}"),
        Format::Json => eprintln!(
            "{}",
            serde_json::json!({
                "error": {
                    "reason": e.reason_name(),
                    "field": e.field,
                    "message": e.message,
                    "sv_trid": e.sv_trid,
                    "outcome_unknown": e.outcome_unknown,
                }
            })
        ),
    }
    if e.code == tonic::Code::InvalidArgument
        && e.sv_trid.is_empty()
        && e.field.is_empty()
        && e.reason == kauri_client::proto::Reason::InvalidField
    {
        ExitCode::from(EXIT_USAGE)
    } else if e.is_retryable() || e.outcome_unknown {
        ExitCode::from(EXIT_UNAVAILABLE)
    } else {
        ExitCode::from(EXIT_REJECTED)
    }
}

/// Read options from the common `--stale` / `--min-index` / `--max-staleness-ms` flags.
#[derive(Debug, clap::Args)]
pub struct ReadFlags {
    /// Serve from the node asked (bounded-stale) instead of a linearizable
    /// read through the leader.
    #[arg(long)]
    pub stale: bool,
    /// With --stale: the node must have applied at least this log index.
    #[arg(long, default_value_t = 0)]
    pub min_index: u64,
    /// With --stale: the node's newest applied entry may be at most this old.
    #[arg(long, default_value_t = 0)]
    pub max_staleness_ms: u64,
}

impl ReadFlags {
    /// The read options these flags ask for.
    pub fn options(&self) -> Option<kauri_client::proto::ReadOptions> {
        if self.stale {
            kauri_client::bounded_stale(self.min_index, self.max_staleness_ms)
        } else {
            kauri_client::linearizable()
        }
    }
}
