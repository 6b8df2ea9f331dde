//! `kauri audit --object NAME [--kind KIND] | --actor ACTOR`: the audit
//! trail, newest first, one page at a time (staff).

use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{usage, Ctx, ReadFlags};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The object whose records to show (a domain name unless --kind says
    /// otherwise).
    #[arg(long, conflicts_with = "actor")]
    pub object: Option<String>,
    /// The object's kind: domain, contact, host, registrar, tld, case.
    #[arg(long, default_value = "domain")]
    pub kind: String,
    /// The actor whose records to show (a registrar id, a staff member, or
    /// "registry" for lifecycle events).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only records at or after this time (RFC 3339, or ms since the epoch).
    #[arg(long)]
    pub from: Option<String>,
    /// Only records at or before this time (RFC 3339, or ms since the epoch).
    #[arg(long)]
    pub until: Option<String>,
    /// Records per page.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after a previous page (the hex token it printed).
    #[arg(long, default_value = "")]
    pub page_token: String,
    #[command(flatten)]
    pub read: ReadFlags,
}

fn time_ms(flag: &str, value: &Option<String>) -> Result<i64, ClientError> {
    let Some(v) = value else { return Ok(0) };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|e| usage(format!("--{flag} {v:?}: not RFC 3339 or ms ({e})")))
}

fn from_hex(s: &str) -> Result<Vec<u8>, ClientError> {
    if !s.len().is_multiple_of(2) {
        return Err(usage("--page-token is not hex"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| usage("--page-token is not hex")))
        .collect()
}

pub async fn run(ctx: &Ctx, args: AuditArgs) -> Result<(), ClientError> {
    if args.object.is_none() == args.actor.is_none() {
        return Err(usage("give --object NAME or --actor ACTOR"));
    }
    let r = ctx
        .client
        .query_audit(AuditQueryRequest {
            object_kind: args.kind.clone(),
            object: args.object.clone().unwrap_or_default(),
            actor: args.actor.clone().unwrap_or_default(),
            from_ms: time_ms("from", &args.from)?,
            until_ms: time_ms("until", &args.until)?,
            limit: args.limit,
            page_token: from_hex(&args.page_token)?,
            read: args.read.options(),
        })
        .await?;
    ctx.print(&r);
    Ok(())
}
