//! `kauri case open|suspend|lift|escalate|note|close|info`: AUP complaint
//! cases and the suspensions recorded against them (staff).

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

#[derive(Debug, Subcommand)]
pub enum CaseCmd {
    /// Open a case on a domain.
    Open {
        domain: String,
        /// What the complaint is about.
        #[arg(long)]
        reason: String,
        /// External reference (ticket, complainant).
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Suspend the case's domain: serverHold plus server update, delete and
    /// transfer prohibitions.
    Suspend {
        id: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Lift the case's suspension.
    Lift {
        id: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Escalate the case.
    Escalate {
        id: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Add a note to the case.
    Note { id: u64, note: String },
    /// Close the case (lift its suspension first).
    Close {
        id: u64,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Show a case and its history.
    Info {
        id: u64,
        #[command(flatten)]
        read: ReadFlags,
    },
}

pub async fn run(ctx: &Ctx, cmd: CaseCmd) -> Result<(), ClientError> {
    let (case_id, action, note) = match cmd {
        CaseCmd::Open {
            domain,
            reason,
            reference,
        } => {
            let r = ctx
                .client
                .open_case(OpenCaseRequest {
                    meta: Some(ctx.staff_meta()),
                    domain,
                    reason,
                    reference,
                })
                .await?;
            ctx.print(&r);
            return Ok(());
        }
        CaseCmd::Info { id, read } => {
            let r = ctx
                .client
                .info_case(InfoCaseRequest {
                    case_id: id,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
            return Ok(());
        }
        CaseCmd::Suspend { id, note } => (id, CaseAction::Suspend, note),
        CaseCmd::Lift { id, note } => (id, CaseAction::Lift, note),
        CaseCmd::Escalate { id, note } => (id, CaseAction::Escalate, note),
        CaseCmd::Note { id, note } => (id, CaseAction::Note, note),
        CaseCmd::Close { id, note } => (id, CaseAction::Close, note),
    };
    let r = ctx
        .client
        .update_case(UpdateCaseRequest {
            meta: Some(ctx.staff_meta()),
            case_id,
            action: action as i32,
            note,
        })
        .await?;
    ctx.print(&r);
    Ok(())
}
