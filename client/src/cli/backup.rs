//! `kauri backup create` and `kauri backup verify`.

use std::path::PathBuf;

use clap::Subcommand;
use kauri_client::backup::{self, BackupError, Manifest};
use kauri_client::ClientError;

use super::{Ctx, Format};

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Take an online backup of a node's applied state (writes go on) into
    /// a new directory: state.kauri (the snapshot archive) and
    /// manifest.json (what it holds; size and SHA-256 of every file).
    Create {
        /// The directory to write; must not exist or be empty.
        #[arg(long)]
        dest: PathBuf,
        /// The node to take it from (HOST:PORT); the first endpoint if
        /// not given.
        #[arg(long)]
        node: Option<String>,
    },
    /// Check a backup directory: every file there, of its size and SHA-256,
    /// and the archive whole. Names the file that is missing or damaged.
    Verify {
        /// The backup directory.
        dir: PathBuf,
    },
}

/// A backup error as the CLI reports it: the cluster's own error; a bad
/// destination as a usage error (exit 2); a damaged backup as a refusal
/// about the directory given (exit 1).
fn failed(e: BackupError) -> ClientError {
    match e {
        BackupError::Client(e) => e,
        BackupError::Destination(message) => super::usage(message),
        damaged @ BackupError::Damaged { .. } => {
            let mut e = super::usage(damaged.to_string());
            e.field = "dir".into();
            e
        }
    }
}

pub async fn run(ctx: &Ctx, cmd: BackupCmd) -> Result<(), ClientError> {
    let manifest = match cmd {
        BackupCmd::Create { dest, node } => {
            let addr = match node {
                Some(a) => a,
                None => ctx
                    .client
                    .endpoints()
                    .into_iter()
                    .next()
                    .ok_or_else(|| super::usage("no endpoint to take the backup from"))?,
            };
            backup::create(&ctx.client, &addr, &dest)
                .await
                .map_err(failed)?
        }
        BackupCmd::Verify { dir } => backup::verify(&dir).map_err(failed)?,
    };
    show(ctx, &manifest);
    Ok(())
}

fn show(ctx: &Ctx, m: &Manifest) {
    match ctx.args_output {
        Format::Json => super::out(&format!(
            "{}\n",
            serde_json::to_string_pretty(m).unwrap_or_default()
        )),
        Format::Human => {
            let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
            super::out(&format!(
                "backup of cluster {} from node {}: applied index {} (term {}), registry time \
                 {}\n{} files inside, {bytes} bytes; verified against its manifest\n",
                m.cluster,
                m.node_id,
                m.applied_index,
                m.applied_term,
                chrono::DateTime::from_timestamp_millis(m.registry_time_ms)
                    .map_or_else(|| m.registry_time_ms.to_string(), |t| t.to_rfc3339()),
                m.archive_files.len(),
            ))
        }
    }
}
