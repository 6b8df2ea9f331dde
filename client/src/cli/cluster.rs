//! `kauri cluster status`, `digest`, `snapshot`, `advance-clock`.

use clap::Subcommand;
use kauri_client::ClientError;

use super::{Ctx, Format};

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Each endpoint's view: role, term, leader, log and applied index, members.
    Status,
    /// Each endpoint's registry state digest at its applied index; replicas
    /// at the same index must print the same digest. Scans the whole state.
    Digest,
    /// Build a snapshot on every endpoint now (a RocksDB checkpoint, cheap
    /// at any size) so each may purge its log; prints the index each covers.
    Snapshot,
    /// Move every endpoint's proposer clock forward (nodes started with
    /// --test-clock only): registry time jumps, lifecycle events fall due.
    AdvanceClock {
        /// Milliseconds to add.
        ms: i64,
    },
}

pub async fn run(ctx: &Ctx, cmd: ClusterCmd) -> Result<(), ClientError> {
    match cmd {
        ClusterCmd::AdvanceClock { ms } => {
            let mut all = Vec::new();
            for addr in ctx.client.endpoints() {
                let r = ctx.client.advance_test_clock_at(&addr, ms).await?;
                if ctx.args_output == Format::Human {
                    println!("{addr}: offset {} ms, clock {}", r.offset_ms, r.now_ms);
                }
                all.push(r);
            }
            if ctx.args_output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            }
            Ok(())
        }
        ClusterCmd::Snapshot => {
            let mut all = Vec::new();
            for addr in ctx.client.endpoints() {
                let s = ctx.client.snapshot(&addr).await?;
                if ctx.args_output == Format::Human {
                    println!(
                        "node {} ({addr}) snapshot at index {}",
                        s.node_id, s.snapshot_index
                    );
                }
                all.push(s);
            }
            if ctx.args_output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            }
            Ok(())
        }
        ClusterCmd::Digest => {
            let mut all = Vec::new();
            for addr in ctx.client.endpoints() {
                let d = ctx.client.state_digest(&addr).await?;
                if ctx.args_output == Format::Human {
                    println!(
                        "node {} ({addr}) index {:>10} records {:>10} {}",
                        d.node_id, d.applied_index, d.records, d.digest
                    );
                }
                all.push(d);
            }
            if ctx.args_output == Format::Json {
                println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            }
            Ok(())
        }
        ClusterCmd::Status => {
            let mut statuses = Vec::new();
            let mut reachable = 0;
            for addr in ctx.client.endpoints() {
                match ctx.client.cluster_status(&addr).await {
                    Ok(s) => {
                        reachable += 1;
                        statuses.push(serde_json::json!({"endpoint": addr, "status": s}));
                        if ctx.args_output == Format::Human {
                            println!("== {addr}");
                            print!("{}", super::Output::human(&s));
                        }
                    }
                    Err(e) => {
                        if ctx.args_output == Format::Human {
                            println!("== {addr}\nunreachable: {e}");
                        }
                        statuses
                            .push(serde_json::json!({"endpoint": addr, "error": e.to_string()}));
                    }
                }
            }
            if ctx.args_output == Format::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&statuses).unwrap_or_default()
                );
            }
            if reachable == 0 {
                return Err(ClientError::from_status(
                    &tonic::Status::unavailable("no endpoint answered"),
                    "cluster",
                ));
            }
            Ok(())
        }
    }
}
