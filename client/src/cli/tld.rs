//! `kauri tld create|update|info`.

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

/// Policy flags shared by create and update.
#[derive(Debug, clap::Args)]
pub struct PolicyFlags {
    /// ISO 4217 currency of the prices.
    #[arg(long, default_value = "USD")]
    currency: String,
    /// Create price per year, in minor units (cents).
    #[arg(long, default_value_t = 1000)]
    create_price: i64,
    /// Renew price per year, in minor units (cents).
    #[arg(long, default_value_t = 1000)]
    renew_price: i64,
    /// Shortest registration period in years.
    #[arg(long, default_value_t = 1)]
    min_period: u32,
    /// Longest registration period in years.
    #[arg(long, default_value_t = 10)]
    max_period: u32,
    /// Shortest second-level label.
    #[arg(long, default_value_t = 1)]
    min_label: u32,
    /// Longest second-level label.
    #[arg(long, default_value_t = 63)]
    max_label: u32,
    /// Refuse IDN (xn--) labels.
    #[arg(long)]
    no_idn: bool,
}

impl PolicyFlags {
    fn policy(&self) -> TldPolicy {
        TldPolicy {
            min_period_years: self.min_period,
            max_period_years: self.max_period,
            create_price_minor_units: self.create_price,
            renew_price_minor_units: self.renew_price,
            currency: self.currency.clone(),
            min_label_length: self.min_label,
            max_label_length: self.max_label,
            allow_idn: !self.no_idn,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TldCmd {
    /// Create a TLD with its policy.
    Create {
        /// The TLD, e.g. nz.
        name: String,
        #[command(flatten)]
        policy: PolicyFlags,
    },
    /// Replace a TLD's policy.
    Update {
        name: String,
        #[command(flatten)]
        policy: PolicyFlags,
    },
    /// Show a TLD and its policy.
    Info {
        name: String,
        #[command(flatten)]
        read: ReadFlags,
    },
}

pub async fn run(ctx: &Ctx, cmd: TldCmd) -> Result<(), ClientError> {
    match cmd {
        TldCmd::Create { name, policy } => {
            let r = ctx
                .client
                .create_tld(CreateTldRequest {
                    meta: Some(ctx.staff_meta()),
                    name,
                    policy: Some(policy.policy()),
                })
                .await?;
            ctx.print(&r);
        }
        TldCmd::Update { name, policy } => {
            let r = ctx
                .client
                .update_tld(UpdateTldRequest {
                    meta: Some(ctx.staff_meta()),
                    name,
                    policy: Some(policy.policy()),
                })
                .await?;
            ctx.print(&r);
        }
        TldCmd::Info { name, read } => {
            let r = ctx
                .client
                .info_tld(InfoTldRequest {
                    name,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
        }
    }
    Ok(())
}
