//! `kauri`: command-line tool for a Kauri registry cluster.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // Behave like other Unix tools when output is piped into `head`: exit
    // quietly on a closed pipe instead of panicking on the failed write.
    // SAFETY: restoring the default disposition of SIGPIPE before any other
    // thread of ours writes to stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KAURI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = cli::Args::parse();
    cli::run(args).await
}
