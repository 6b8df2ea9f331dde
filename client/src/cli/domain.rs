//! `kauri domain check|create|info|renew|update|delete`.

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
    /// Delete a domain.
    Delete { name: String },
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
    }
    Ok(())
}
