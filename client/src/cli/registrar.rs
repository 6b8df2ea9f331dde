//! `kauri registrar create|deposit|update|info|ledger|verify-password`.

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

#[derive(Debug, Subcommand)]
pub enum RegistrarCmd {
    /// Create a registrar account (balance 0).
    Create {
        /// Registrar id (EPP clID), 3-16 of [A-Za-z0-9_-].
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// EPP password (6-64 characters); stored only as an argon2id hash.
        #[arg(long, env = "KAURI_REGISTRAR_PASSWORD")]
        password: String,
        /// ISO 4217 currency of the prepaid account.
        #[arg(long, default_value = "USD")]
        currency: String,
    },
    /// Credit a registrar's prepaid account.
    Deposit {
        id: String,
        /// Amount in minor units (cents).
        amount: i64,
        /// Payment reference.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Show a registrar's account and ledger.
    Info {
        id: String,
        /// Most recent ledger entries to show.
        #[arg(long, default_value_t = 20)]
        ledger: u32,
        #[command(flatten)]
        read: ReadFlags,
    },
    /// Set a registrar's credit limit or low-balance threshold.
    Update {
        id: String,
        /// The balance may go down to minus this (minor units).
        #[arg(long)]
        credit_limit: Option<i64>,
        /// Queue a low_balance poll message below this balance (0: never).
        #[arg(long)]
        low_balance_threshold: Option<i64>,
    },
    /// Show a registrar's ledger: every charge, refund and deposit with the
    /// transaction that caused it.
    Ledger {
        id: String,
        /// Most recent entries to show (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        read: ReadFlags,
    },
    /// Check a registrar's password (exit code 1 when wrong).
    VerifyPassword {
        id: String,
        #[arg(long, env = "KAURI_REGISTRAR_PASSWORD")]
        password: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: RegistrarCmd) -> Result<(), ClientError> {
    match cmd {
        RegistrarCmd::Create {
            id,
            name,
            password,
            currency,
        } => {
            let r = ctx
                .client
                .create_registrar(CreateRegistrarRequest {
                    meta: Some(ctx.staff_meta()),
                    id,
                    name,
                    password,
                    currency,
                })
                .await?;
            ctx.print(&r);
        }
        RegistrarCmd::Deposit {
            id,
            amount,
            reference,
        } => {
            let r = ctx
                .client
                .deposit_funds(DepositFundsRequest {
                    meta: Some(ctx.staff_meta()),
                    registrar: id,
                    amount_minor_units: amount,
                    reference,
                })
                .await?;
            ctx.print(&r);
        }
        RegistrarCmd::Update {
            id,
            credit_limit,
            low_balance_threshold,
        } => {
            let r = ctx
                .client
                .update_registrar(UpdateRegistrarRequest {
                    meta: Some(ctx.staff_meta()),
                    id,
                    credit_limit_minor_units: credit_limit,
                    low_balance_threshold_minor_units: low_balance_threshold,
                })
                .await?;
            ctx.print(&r);
        }
        RegistrarCmd::Ledger { id, limit, read } => {
            let r = ctx
                .client
                .info_registrar(InfoRegistrarRequest {
                    id,
                    read: read.options(),
                    ledger_limit: limit,
                })
                .await?;
            ctx.print(&r);
        }
        RegistrarCmd::Info { id, ledger, read } => {
            let r = ctx
                .client
                .info_registrar(InfoRegistrarRequest {
                    id,
                    read: read.options(),
                    ledger_limit: ledger,
                })
                .await?;
            ctx.print(&r);
        }
        RegistrarCmd::VerifyPassword { id, password } => {
            let r = ctx
                .client
                .verify_registrar_password(VerifyRegistrarPasswordRequest {
                    id,
                    password,
                    client_address: String::new(),
                })
                .await?;
            ctx.print(&r);
            if !r.valid {
                let mut e = ClientError::from_status(
                    &tonic::Status::unauthenticated("password invalid"),
                    "kauri",
                );
                e.reason = Reason::AuthenticationFailed;
                e.message = "password invalid".into();
                return Err(e);
            }
        }
    }
    Ok(())
}
