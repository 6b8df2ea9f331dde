//! `kauri host check|create|info|update|delete` (registrar commands) and
//! `kauri host server-status` (staff).

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

#[derive(Debug, Subcommand)]
pub enum HostCmd {
    /// Check whether host names are free.
    Check { names: Vec<String> },
    /// Create a host (name server).
    Create {
        name: String,
        /// IPv4 or IPv6 glue address (in-bailiwick hosts only); repeatable.
        #[arg(long = "addr")]
        addresses: Vec<String>,
    },
    /// Show a host.
    Info {
        name: String,
        #[command(flatten)]
        read: ReadFlags,
    },
    /// Change a host's addresses, statuses or name.
    Update {
        name: String,
        #[arg(long)]
        add_addr: Vec<String>,
        #[arg(long)]
        rem_addr: Vec<String>,
        #[arg(long)]
        add_status: Vec<String>,
        #[arg(long)]
        rem_status: Vec<String>,
        /// Rename the host (no domain may delegate to it). Under a domain
        /// of this registry, one you sponsor; outside it, remove the
        /// addresses in the same update.
        #[arg(long, value_name = "NAME")]
        rename_to: Option<String>,
    },
    /// Delete a host no domain delegates to.
    Delete { name: String },
    /// Set or clear server* statuses (staff): serverDeleteProhibited,
    /// serverUpdateProhibited.
    ServerStatus {
        name: String,
        /// server* status to set; repeatable.
        #[arg(long)]
        add: Vec<String>,
        /// server* status to clear; repeatable.
        #[arg(long)]
        remove: Vec<String>,
        /// Why (recorded in the audit trail and told to the sponsor).
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: HostCmd) -> Result<(), ClientError> {
    match cmd {
        HostCmd::Check { names } => {
            let r = ctx
                .client
                .check_hosts(CheckRequest {
                    registrar: ctx.registrar.clone(),
                    names,
                    read: None,
                    fees: Vec::new(),
                })
                .await?;
            ctx.print(&r);
        }
        HostCmd::Create { name, addresses } => {
            let r = ctx
                .client
                .create_host(CreateHostRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                    addresses,
                })
                .await?;
            ctx.print(&r);
        }
        HostCmd::Info { name, read } => {
            let r = ctx
                .client
                .info_host(InfoRequest {
                    registrar: ctx.registrar.clone(),
                    name,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
        }
        HostCmd::Update {
            name,
            add_addr,
            rem_addr,
            add_status,
            rem_status,
            rename_to,
        } => {
            let r = ctx
                .client
                .update_host(UpdateHostRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                    add_addresses: add_addr,
                    remove_addresses: rem_addr,
                    add_statuses: add_status,
                    remove_statuses: rem_status,
                    new_name: rename_to.unwrap_or_default(),
                })
                .await?;
            ctx.print(&r);
        }
        HostCmd::ServerStatus {
            name,
            add,
            remove,
            reason,
        } => {
            let r = ctx
                .client
                .set_host_server_status(SetHostServerStatusRequest {
                    meta: Some(ctx.staff_meta()),
                    name,
                    add_statuses: add,
                    remove_statuses: remove,
                    reason,
                })
                .await?;
            ctx.print(&r);
        }
        HostCmd::Delete { name } => {
            let r = ctx
                .client
                .delete_host(DeleteRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                })
                .await?;
            ctx.print(&r);
        }
    }
    Ok(())
}
