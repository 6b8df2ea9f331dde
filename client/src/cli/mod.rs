//! The `kauri` command line: global flags, one module per command family,
//! output rendering and exit codes.

mod audit;
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
    /// The staff member acting (administrative commands).
    #[arg(long, env = "KAURI_STAFF", global = true, default_value = "staff")]
    pub staff: String,
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
}

impl Ctx {
    /// Request metadata for a registrar command.
    pub fn registrar_meta(&self) -> Result<kauri_client::proto::RequestMeta, ClientError> {
        if self.registrar.is_empty() {
            return Err(usage(
                "registrar commands need --registrar ID (or KAURI_REGISTRAR)",
            ));
        }
        Ok(self.meta(&self.registrar))
    }

    /// Request metadata for a staff command.
    pub fn staff_meta(&self) -> kauri_client::proto::RequestMeta {
        self.meta(&self.staff)
    }

    /// Request metadata for the second command of a two-step staff command:
    /// a fresh client transaction id, or `--cl-trid` with "-2" appended.
    pub fn fresh_staff_meta(&self) -> kauri_client::proto::RequestMeta {
        let mut meta = kauri_client::meta(&self.staff);
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
            Format::Human => print!("{}", value.human()),
            Format::Json => match serde_json::to_string_pretty(value) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("cannot render JSON: {e}"),
            },
        }
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
    let config = ClientConfig {
        deadline: Duration::from_millis(args.timeout_ms),
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
    };
    let result = match args.command {
        Command::Cluster(c) => cluster::run(&ctx, c).await,
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
