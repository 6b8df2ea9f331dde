//! `kauri domain check|create|info|renew|update|delete|transfer|restore`
//! (registrar commands) and `kauri domain lock|unlock|server-status` (staff).

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Check whether domain names are available.
    Check { names: Vec<String> },
    /// Register a domain (charged to the registrar).
    Create {
        /// Domain name, U-label or A-label.
        name: String,
        /// Registration period in years (0 = the TLD's minimum).
        #[arg(long, default_value_t = 1)]
        period: u32,
        /// Registrant contact id.
        #[arg(long)]
        registrant: String,
        /// Admin contact id.
        #[arg(long)]
        admin: Option<String>,
        /// Tech contact id.
        #[arg(long)]
        tech: Option<String>,
        /// Billing contact id.
        #[arg(long)]
        billing: Option<String>,
        /// Name server (host object); repeatable.
        #[arg(long = "ns")]
        nameservers: Vec<String>,
        /// Auth info; generated when omitted.
        #[arg(long, default_value = "")]
        auth_info: String,
    },
    /// Show a domain.
    Info {
        name: String,
        #[command(flatten)]
        read: ReadFlags,
    },
    /// Renew a domain (charged to the registrar).
    Renew {
        name: String,
        /// The current expiry date, YYYY-MM-DD (as EPP requires).
        #[arg(long)]
        cur_exp: String,
        /// Years to add.
        #[arg(long, default_value_t = 1)]
        period: u32,
    },
    /// Change a domain's name servers, contacts, statuses, registrant or auth info.
    Update {
        name: String,
        #[arg(long)]
        add_ns: Vec<String>,
        #[arg(long)]
        rem_ns: Vec<String>,
        /// client* status to add, e.g. clientDeleteProhibited.
        #[arg(long)]
        add_status: Vec<String>,
        #[arg(long)]
        rem_status: Vec<String>,
        #[arg(long, default_value = "")]
        registrant: String,
        #[arg(long, default_value = "")]
        auth_info: String,
    },
    /// Delete a domain (inside the add grace period: purged and refunded;
    /// otherwise it enters the redemption period).
    Delete { name: String },
    /// Transfer a domain: request, approve, reject, cancel, query.
    #[command(subcommand)]
    Transfer(TransferCmd),
    /// Restore a domain in redemption (RFC 3915): a request (charged the
    /// restore fee plus a one-year renewal), then the report.
    Restore {
        name: String,
        /// Send the restore report (after the request).
        #[arg(long)]
        report: bool,
        /// Report: the registration data before the delete.
        #[arg(long, default_value = "")]
        pre_data: String,
        /// Report: the registration data now.
        #[arg(long, default_value = "")]
        post_data: String,
        /// Report: why the domain is restored.
        #[arg(long, default_value = "")]
        reason: String,
        /// Report: a statement (RFC 3915 asks for two); repeatable.
        #[arg(long = "statement")]
        statements: Vec<String>,
    },
    /// Registry lock (staff): serverUpdateProhibited,
    /// serverDeleteProhibited and serverTransferProhibited.
    Lock {
        name: String,
        /// Why (recorded in the audit trail and told to the sponsor).
        #[arg(long)]
        reason: String,
    },
    /// Lift a registry lock (staff).
    Unlock {
        name: String,
        #[arg(long)]
        reason: String,
    },
    /// Set or clear server* statuses (staff).
    ServerStatus {
        name: String,
        /// server* status to set; repeatable.
        #[arg(long)]
        add: Vec<String>,
        /// server* status to clear; repeatable.
        #[arg(long)]
        remove: Vec<String>,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TransferCmd {
    /// Request the transfer to this registrar (charged one year).
    Request {
        name: String,
        /// The domain's auth info, from the registrant.
        #[arg(long)]
        auth_info: String,
        /// Years added on approval (0 or 1).
        #[arg(long, default_value_t = 1)]
        period: u32,
    },
    /// Approve a pending transfer (the sponsoring registrar).
    Approve { name: String },
    /// Reject a pending transfer (the sponsoring registrar).
    Reject { name: String },
    /// Cancel a transfer request (the requesting registrar).
    Cancel { name: String },
    /// Show the pending or most recent transfer.
    Query {
        name: String,
        /// Auth info, unless you are a party to the transfer.
        #[arg(long, default_value = "")]
        auth_info: String,
        #[command(flatten)]
        read: ReadFlags,
    },
}

const LOCK: [&str; 3] = [
    "serverDeleteProhibited",
    "serverTransferProhibited",
    "serverUpdateProhibited",
];

async fn transfer(ctx: &Ctx, cmd: TransferCmd) -> Result<(), ClientError> {
    let op = |name: String, op: TransferOp, auth_info: String, period_years: u32| {
        Ok::<_, ClientError>(TransferDomainRequest {
            meta: Some(ctx.registrar_meta()?),
            name,
            op: op as i32,
            auth_info,
            period_years,
            fee: None,
            new_auth_info: String::new(),
        })
    };
    let request = match cmd {
        TransferCmd::Request {
            name,
            auth_info,
            period,
        } => op(name, TransferOp::Request, auth_info, period)?,
        TransferCmd::Approve { name } => op(name, TransferOp::Approve, String::new(), 0)?,
        TransferCmd::Reject { name } => op(name, TransferOp::Reject, String::new(), 0)?,
        TransferCmd::Cancel { name } => op(name, TransferOp::Cancel, String::new(), 0)?,
        TransferCmd::Query {
            name,
            auth_info,
            read,
        } => {
            let r = ctx
                .client
                .query_transfer(TransferQueryRequest {
                    registrar: ctx.registrar.clone(),
                    name,
                    auth_info,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
            return Ok(());
        }
    };
    let r = ctx.client.transfer_domain(request).await?;
    ctx.print(&r);
    Ok(())
}

async fn server_status(
    ctx: &Ctx,
    name: String,
    add: Vec<String>,
    remove: Vec<String>,
    reason: String,
) -> Result<(), ClientError> {
    let r = ctx
        .client
        .set_server_status(SetServerStatusRequest {
            meta: Some(ctx.staff_meta()),
            name,
            add_statuses: add,
            remove_statuses: remove,
            reason,
        })
        .await?;
    ctx.print(&r);
    Ok(())
}

fn contacts(
    admin: Option<String>,
    tech: Option<String>,
    billing: Option<String>,
) -> Vec<DomainContact> {
    [
        (ContactType::Admin, admin),
        (ContactType::Tech, tech),
        (ContactType::Billing, billing),
    ]
    .into_iter()
    .filter_map(|(t, id)| {
        id.map(|contact_id| DomainContact {
            r#type: t as i32,
            contact_id,
        })
    })
    .collect()
}

pub async fn run(ctx: &Ctx, cmd: DomainCmd) -> Result<(), ClientError> {
    match cmd {
        DomainCmd::Check { names } => {
            let r = ctx
                .client
                .check_domains(CheckRequest {
                    registrar: ctx.registrar.clone(),
                    names,
                    read: None,
                    fees: Vec::new(),
                })
                .await?;
            ctx.print(&r);
        }
        DomainCmd::Create {
            name,
            period,
            registrant,
            admin,
            tech,
            billing,
            nameservers,
            auth_info,
        } => {
            let r = ctx
                .client
                .create_domain(CreateDomainRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                    period_years: period,
                    registrant,
                    contacts: contacts(admin, tech, billing),
                    nameservers,
                    auth_info,
                    fee: None,
                    ds_data: Vec::new(),
                })
                .await?;
            ctx.print(&r);
        }
        DomainCmd::Info { name, read } => {
            let r = ctx
                .client
                .info_domain(InfoRequest {
                    registrar: ctx.registrar.clone(),
                    name,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
        }
        DomainCmd::Renew {
            name,
            cur_exp,
            period,
        } => {
            let r = ctx
                .client
                .renew_domain(RenewDomainRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                    current_expiry_date: cur_exp,
                    period_years: period,
                    fee: None,
                })
                .await?;
            ctx.print(&r);
        }
        DomainCmd::Update {
            name,
            add_ns,
            rem_ns,
            add_status,
            rem_status,
            registrant,
            auth_info,
        } => {
            let r = ctx
                .client
                .update_domain(UpdateDomainRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                    add_nameservers: add_ns,
                    remove_nameservers: rem_ns,
                    add_statuses: add_status,
                    remove_statuses: rem_status,
                    registrant,
                    auth_info,
                    ..Default::default()
                })
                .await?;
            ctx.print(&r);
        }
        DomainCmd::Delete { name } => {
            let r = ctx
                .client
                .delete_domain(DeleteRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                })
                .await?;
            ctx.print(&r);
        }
        DomainCmd::Transfer(cmd) => transfer(ctx, cmd).await?,
        DomainCmd::Restore {
            name,
            report,
            pre_data,
            post_data,
            reason,
            statements,
        } => {
            let (op, report) = if report {
                (
                    RestoreOp::Report,
                    Some(RestoreReport {
                        pre_data,
                        post_data,
                        restore_reason: reason,
                        statements,
                        ..Default::default()
                    }),
                )
            } else {
                (RestoreOp::Request, None)
            };
            let r = ctx
                .client
                .restore_domain(RestoreDomainRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name,
                    op: op as i32,
                    report,
                    fee: None,
                })
                .await?;
            ctx.print(&r);
        }
        DomainCmd::Lock { name, reason } => {
            let add = LOCK.iter().map(|s| s.to_string()).collect();
            server_status(ctx, name, add, Vec::new(), reason).await?;
        }
        DomainCmd::Unlock { name, reason } => {
            let remove = LOCK.iter().map(|s| s.to_string()).collect();
            server_status(ctx, name, Vec::new(), remove, reason).await?;
        }
        DomainCmd::ServerStatus {
            name,
            add,
            remove,
            reason,
        } => server_status(ctx, name, add, remove, reason).await?,
    }
    Ok(())
}
