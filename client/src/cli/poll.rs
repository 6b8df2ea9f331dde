//! `kauri poll req|ack`: a registrar's message queue.

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

#[derive(Debug, Subcommand)]
pub enum PollCmd {
    /// Show the oldest message and how many are waiting.
    Req {
        #[command(flatten)]
        read: ReadFlags,
    },
    /// Acknowledge (remove) a message by id.
    Ack { id: u64 },
}

pub async fn run(ctx: &Ctx, cmd: PollCmd) -> Result<(), ClientError> {
    let r = match cmd {
        PollCmd::Req { read } => {
            ctx.registrar_meta()?;
            ctx.client
                .poll(PollRequest {
                    registrar: ctx.registrar.clone(),
                    read: read.options(),
                })
                .await?
        }
        PollCmd::Ack { id } => {
            ctx.client
                .ack_poll(AckPollRequest {
                    meta: Some(ctx.registrar_meta()?),
                    message_id: id,
                })
                .await?
        }
    };
    ctx.print(&r);
    Ok(())
}
