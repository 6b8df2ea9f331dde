//! The node's log: human-readable text (the default), or one JSON object a
//! line for log shippers (`--log-format json`, `KAURI_LOG_FORMAT=json`).
//!
//! JSON lines are tracing-subscriber's own JSON format with the event's
//! fields flattened in, the fields of the span the event happened in
//! (`span`: a request's method and `request_id`, and its `cl_trid` and
//! `sv_trid` once known), and two fields of the node's own added to every
//! line: `node_id` and the Raft `term` it was in.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (colours on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

static NODE_ID: AtomicU64 = AtomicU64::new(0);
static TERM: AtomicU64 = AtomicU64::new(0);

/// Sets the node id JSON lines carry.
pub fn set_node_id(id: u64) {
    NODE_ID.store(id, Ordering::Relaxed);
}

/// Sets the Raft term JSON lines carry (called as the term changes).
pub fn set_term(term: u64) {
    TERM.store(term, Ordering::Relaxed);
}

/// Installs the process's log subscriber, writing to stderr, keeping the
/// lines `filter` (an `EnvFilter` directive such as `info,openraft=warn`)
/// selects.
pub fn init(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("--log {filter:?} is not a log filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(WithNode(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .init(),
    }
    Ok(())
}

/// The JSON format with `node_id` and `term` first in every object.
struct WithNode(Format<Json>);

impl<S, N> FormatEvent<S, N> for WithNode
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The inner format writes one object: `{...}` and a newline.
        let Some(rest) = line.strip_prefix('{') else {
            return writer.write_str(&line);
        };
        let comma = if rest.starts_with('}') { "" } else { "," };
        write!(
            writer,
            "{{\"node_id\":{},\"term\":{}{comma}{rest}",
            NODE_ID.load(Ordering::Relaxed),
            TERM.load(Ordering::Relaxed)
        )
    }
}
