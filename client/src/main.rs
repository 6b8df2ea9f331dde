//! `kauri`: command-line tool for a Kauri registry cluster.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default): sockets are written with
    // writev, which would otherwise kill the process when a server resets
    // a connection. Output into a closed pipe (`| head`) is handled where
    // it is written (`cli::out`).
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
