//! `kauri cluster status`, `digest`, `snapshot`, `advance-clock`, and the
//! membership steps `add-learner`, `promote`, `demote`, `remove`, and
//! `transfer-leader`.

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
    /// Add a new node as a learner: it receives the log but does not vote.
    /// Start it first with --join (and its own --id, --grpc-addr, --site).
    AddLearner {
        /// The new node's id (unused in the cluster).
        id: u64,
        /// Its gRPC address, IP:PORT.
        addr: String,
        /// Its site label (e.g. auckland).
        #[arg(long)]
        site: String,
    },
    /// Make a learner a voter, once it has caught up with the leader.
    Promote {
        /// The learner's id.
        id: u64,
        #[command(flatten)]
        main: MainSite,
    },
    /// Make a voter a learner (it keeps the log but stops voting).
    Demote {
        /// The voter's id.
        id: u64,
        #[command(flatten)]
        main: MainSite,
    },
    /// Remove a node from the cluster; stop its process afterwards.
    Remove {
        /// The node's id.
        id: u64,
        #[command(flatten)]
        main: MainSite,
    },
    /// Hand the leadership to another voter: the leader holds new writes
    /// (clients see a short pause, not errors), waits until the voter has
    /// its whole log, and has it elected.
    TransferLeader {
        /// The voter that is to lead.
        id: u64,
    },
    /// Move every endpoint's proposer clock forward (nodes started with
    /// --test-clock only): registry time jumps, lifecycle events fall due.
    AdvanceClock {
        /// Milliseconds to add.
        ms: i64,
    },
}

/// The site whose majority of voters a membership step must keep.
#[derive(Debug, clap::Args)]
pub struct MainSite {
    /// The site that must keep a majority of the voters (default: the
    /// leader's). Failing back after a disaster names the site the voters
    /// are returning to, e.g. --main-site paris.
    #[arg(long)]
    main_site: Option<String>,
}

pub async fn run(ctx: &Ctx, cmd: ClusterCmd) -> Result<(), ClientError> {
    if let Some(request) = membership_step(&cmd) {
        let done = ctx.client.change_membership(request).await?;
        ctx.print(&done);
        return Ok(());
    }
    match cmd {
        ClusterCmd::AddLearner { .. }
        | ClusterCmd::Promote { .. }
        | ClusterCmd::Demote { .. }
        | ClusterCmd::Remove { .. }
        | ClusterCmd::TransferLeader { .. } => Ok(()),
        ClusterCmd::AdvanceClock { ms } => {
            on_each(
                ctx,
                |addr| async move { ctx.client.advance_test_clock_at(&addr, ms).await },
                |addr, r| format!("{addr}: offset {} ms, clock {}", r.offset_ms, r.now_ms),
            )
            .await
        }
        ClusterCmd::Snapshot => {
            on_each(
                ctx,
                |addr| async move { ctx.client.snapshot(&addr).await },
                |addr, s| {
                    format!(
                        "node {} ({addr}) snapshot at index {}",
                        s.node_id, s.snapshot_index
                    )
                },
            )
            .await
        }
        ClusterCmd::Digest => {
            on_each(
                ctx,
                |addr| async move { ctx.client.state_digest(&addr).await },
                |addr, d| {
                    format!(
                        "node {} ({addr}) index {:>10} records {:>10} {}",
                        d.node_id, d.applied_index, d.records, d.digest
                    )
                },
            )
            .await
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
                            super::out(&format!("== {addr}\n{}", super::Output::human(&s)));
                        }
                    }
                    Err(e) => {
                        if ctx.args_output == Format::Human {
                            super::out(&format!("== {addr}\nunreachable: {e}\n"));
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

/// The membership change a command asks for, if it is one.
fn membership_step(cmd: &ClusterCmd) -> Option<kauri_client::proto::ChangeMembershipRequest> {
    use kauri_client::proto::{ChangeMembershipRequest, MembershipOp};
    let step = |op: MembershipOp, id: u64, main: &MainSite| ChangeMembershipRequest {
        op: op as i32,
        node_id: id,
        main_site: main.main_site.clone().unwrap_or_default(),
        ..Default::default()
    };
    let none = MainSite { main_site: None };
    Some(match cmd {
        ClusterCmd::AddLearner { id, addr, site } => ChangeMembershipRequest {
            addr: addr.clone(),
            site: site.clone(),
            ..step(MembershipOp::AddLearner, *id, &none)
        },
        ClusterCmd::Promote { id, main } => step(MembershipOp::Promote, *id, main),
        ClusterCmd::Demote { id, main } => step(MembershipOp::Demote, *id, main),
        ClusterCmd::Remove { id, main } => step(MembershipOp::Remove, *id, main),
        ClusterCmd::TransferLeader { id } => step(MembershipOp::TransferLeader, *id, &none),
        _ => return None,
    })
}

/// Asks every endpoint in turn with `call`; prints each answer as `human`
/// says, or all of them as one JSON array. Stops at the first error.
async fn on_each<T, F, Fut>(
    ctx: &Ctx,
    call: F,
    human: impl Fn(&str, &T) -> String,
) -> Result<(), ClientError>
where
    T: serde::Serialize,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut all = Vec::new();
    for addr in ctx.client.endpoints() {
        let answer = call(addr.clone()).await?;
        if ctx.args_output == Format::Human {
            super::out(&format!("{}\n", human(&addr, &answer)));
        }
        all.push(answer);
    }
    if ctx.args_output == Format::Json {
        super::out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&all).unwrap_or_default()
        ));
    }
    Ok(())
}
