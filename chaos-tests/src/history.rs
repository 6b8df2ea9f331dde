//! Operation histories: what each client asked, when, and what came back.
//!
//! A [`Recorder`] is shared by every workload task. Each operation is
//! recorded at invocation (before the first attempt is sent) and again at
//! completion (after the last attempt), with times from one monotonic clock,
//! so the checkers can tell which operations overlapped. An operation has a
//! single key (a domain name); multi-name requests are recorded as one
//! operation per name.
//!
//! The outcome is one of:
//! - [`Outcome::Ok`]: the registry answered with a result;
//! - [`Outcome::Rejected`]: a definite registry rejection (a reason such as
//!   `OBJECT_EXISTS`): the command changed nothing;
//! - [`Outcome::Unknown`]: no definite answer (timeouts, lost connections,
//!   no quorum, even after retries with the same client transaction id):
//!   a mutation may or may not have taken effect, at any time after its
//!   invocation. Checkers treat it as never completing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kauri_client::proto::{self, Reason};

/// Which workload task issued an operation (the "process" of the
/// linearizability literature). Each task runs one operation at a time.
pub type ProcessId = usize;

/// The kind of an operation, without its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// `CheckDomains` (availability).
    Check,
    /// `CreateDomain`.
    Create,
    /// `RenewDomain`.
    Renew,
    /// `UpdateDomain`.
    Update,
    /// `InfoDomain` (linearizable).
    Info,
    /// `TransferDomain` (request, approve, reject or cancel).
    Transfer,
    /// `DeleteDomain`.
    Delete,
}

impl OpKind {
    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Check => "check",
            OpKind::Create => "create",
            OpKind::Renew => "renew",
            OpKind::Update => "update",
            OpKind::Info => "info",
            OpKind::Transfer => "transfer",
            OpKind::Delete => "delete",
        }
    }
}

/// What a transfer command does (RFC 5731 `<transfer op=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransferAction {
    /// The gaining registrar asks for the name (charged one year).
    Request,
    /// The sponsoring (losing) registrar lets it go.
    Approve,
    /// The sponsoring registrar refuses (the gaining one is refunded).
    Reject,
    /// The gaining registrar withdraws its request (and is refunded).
    Cancel,
}

impl TransferAction {
    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferAction::Request => "request",
            TransferAction::Approve => "approve",
            TransferAction::Reject => "reject",
            TransferAction::Cancel => "cancel",
        }
    }
}

/// An operation's request, as far as the checkers need it. New operations
/// are added here, in [`crate::workload`]'s executor and in
/// [`crate::checkers::domain::DomainModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// Is the name available?
    Check,
    /// Register the name for `period_years`, delegated to `nameservers`.
    Create {
        /// Registration period.
        period_years: u32,
        /// Host names the domain is delegated to.
        nameservers: Vec<String>,
    },
    /// Extend the registration from `current_expiry_date` (YYYY-MM-DD).
    Renew {
        /// The expiry date the client believes is current.
        current_expiry_date: String,
        /// Years to add.
        period_years: u32,
    },
    /// Change client statuses and name servers.
    Update {
        /// Statuses to set.
        add_statuses: Vec<String>,
        /// Statuses to clear.
        remove_statuses: Vec<String>,
        /// Name servers to add.
        add_nameservers: Vec<String>,
        /// Name servers to remove.
        remove_nameservers: Vec<String>,
    },
    /// Read the domain.
    Info,
    /// A transfer command. Requests carry the domain's auth info, which the
    /// workload derives from the name (see
    /// [`crate::workload::auth_info_for`]), so the model takes it as right.
    Transfer(TransferAction),
    /// Delete the domain: purged at once inside the add grace period (every
    /// charge in grace refunded), otherwise into redemption.
    Delete,
}

impl Call {
    /// The kind of this call.
    pub fn kind(&self) -> OpKind {
        match self {
            Call::Check => OpKind::Check,
            Call::Create { .. } => OpKind::Create,
            Call::Renew { .. } => OpKind::Renew,
            Call::Update { .. } => OpKind::Update,
            Call::Info => OpKind::Info,
            Call::Transfer(_) => OpKind::Transfer,
            Call::Delete => OpKind::Delete,
        }
    }

    /// Whether the call never changes registry state.
    pub fn is_read(&self) -> bool {
        matches!(self, Call::Check | Call::Info)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Check => write!(f, "check"),
            Call::Info => write!(f, "info"),
            Call::Transfer(action) => write!(f, "transfer {}", action.as_str()),
            Call::Delete => write!(f, "delete"),
            Call::Create {
                period_years,
                nameservers,
            } => write!(f, "create {period_years}y ns={nameservers:?}"),
            Call::Renew {
                current_expiry_date,
                period_years,
            } => write!(f, "renew {period_years}y from {current_expiry_date}"),
            Call::Update {
                add_statuses,
                remove_statuses,
                add_nameservers,
                remove_nameservers,
            } => {
                write!(f, "update")?;
                for (sign, list) in [
                    ("+", add_statuses),
                    ("-", remove_statuses),
                    ("+ns:", add_nameservers),
                    ("-ns:", remove_nameservers),
                ] {
                    for item in list {
                        write!(f, " {sign}{item}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A domain as a response showed it (only what the model checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainView {
    /// Repository object id: tells two registrations of a name apart.
    pub roid: String,
    /// Sponsoring registrar.
    pub sponsor: String,
    /// Expiry, ms since the epoch.
    pub expiry_ms: i64,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// The `client*` statuses (derived ones like `ok` are left out).
    pub statuses: BTreeSet<String>,
    /// Name servers.
    pub nameservers: BTreeSet<String>,
    /// Whether a transfer is pending (status `pendingTransfer`).
    pub pending_transfer: bool,
    /// Whether the domain was deleted and is in redemption (status
    /// `pendingDelete`).
    pub pending_delete: bool,
}

impl DomainView {
    /// The view of a proto domain.
    pub fn from_proto(d: &proto::Domain) -> Self {
        DomainView {
            roid: d.roid.clone(),
            sponsor: d.sponsor.clone(),
            expiry_ms: d.expiry_ms,
            created_ms: d.created_ms,
            statuses: d
                .statuses
                .iter()
                .filter(|s| s.starts_with("client"))
                .cloned()
                .collect(),
            nameservers: d.nameservers.iter().cloned().collect(),
            pending_transfer: d.statuses.iter().any(|s| s == "pendingTransfer"),
            pending_delete: d.statuses.iter().any(|s| s == "pendingDelete"),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A domain (create, renew, update, info).
    Domain {
        /// The domain after the command (or as read).
        domain: DomainView,
        /// Server transaction id of a mutation.
        sv_trid: String,
        /// Whether the answer replays an earlier execution (a retry).
        replayed: bool,
        /// What a create or renew charged, in minor units.
        charged_minor_units: Option<i64>,
    },
    /// The availability of the name (check).
    Available(bool),
    /// A transfer command's answer.
    Transfer {
        /// The transfer's status after the command ("pending",
        /// "clientApproved", "clientRejected", "clientCancelled", ...).
        status: String,
        /// Gaining registrar.
        gaining: String,
        /// Losing registrar.
        losing: String,
        /// The domain's expiry after the command, ms since the epoch.
        expiry_ms: i64,
        /// Server transaction id.
        sv_trid: String,
        /// Whether the answer replays an earlier execution (a retry).
        replayed: bool,
        /// What a request charged the gaining registrar.
        charged_minor_units: Option<i64>,
        /// What a reject or cancel refunded to it.
        refunded_minor_units: Option<i64>,
    },
    /// A delete's answer.
    Deleted {
        /// True when the domain went into redemption rather than being
        /// purged at once.
        pending_delete: bool,
        /// Server transaction id.
        sv_trid: String,
        /// Whether the answer replays an earlier execution (a retry).
        replayed: bool,
        /// Grace-period refunds to the sponsor.
        refunded_minor_units: Option<i64>,
    },
}

impl Reply {
    /// The domain of a domain reply.
    pub fn domain(&self) -> Option<&DomainView> {
        match self {
            Reply::Domain { domain, .. } => Some(domain),
            _ => None,
        }
    }

    /// The server transaction id of a mutation's reply.
    pub fn sv_trid(&self) -> Option<&str> {
        match self {
            Reply::Domain { sv_trid, .. }
            | Reply::Transfer { sv_trid, .. }
            | Reply::Deleted { sv_trid, .. }
                if !sv_trid.is_empty() =>
            {
                Some(sv_trid)
            }
            _ => None,
        }
    }

    /// What the command charged the actor, if anything.
    pub fn charged(&self) -> Option<i64> {
        match self {
            Reply::Domain {
                charged_minor_units,
                ..
            }
            | Reply::Transfer {
                charged_minor_units,
                ..
            } => *charged_minor_units,
            _ => None,
        }
    }

    /// What the command refunded (to the sponsor on a delete, to the
    /// gaining registrar on a transfer reject or cancel).
    pub fn refunded(&self) -> Option<i64> {
        match self {
            Reply::Transfer {
                refunded_minor_units,
                ..
            }
            | Reply::Deleted {
                refunded_minor_units,
                ..
            } => *refunded_minor_units,
            _ => None,
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The registry answered.
    Ok(Reply),
    /// The registry refused the command; nothing changed.
    Rejected {
        /// Machine-readable reason.
        reason: Reason,
        /// Server transaction id of the log entry that recorded the
        /// rejection (mutations only).
        sv_trid: String,
        /// Human-readable message.
        message: String,
    },
    /// No definite answer: a mutation may have taken effect or not.
    Unknown {
        /// The last error seen.
        error: String,
        /// Whether the client library flagged the last error
        /// `outcome_unknown`. The workload treats every retryable error as
        /// unknown; a mutation the client did *not* flag that took effect
        /// anyway breaks the client's contract (see
        /// [`crate::checkers::registry::check_client_flags`]).
        client_said_unknown: bool,
    },
}

impl Outcome {
    /// Whether the outcome is definite (ok or rejected).
    pub fn is_definite(&self) -> bool {
        !matches!(self, Outcome::Unknown { .. })
    }

    /// The rejection reason, if rejected.
    pub fn rejection(&self) -> Option<Reason> {
        match self {
            Outcome::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Position in the history (invocation order).
    pub id: usize,
    /// The task that issued it.
    pub process: ProcessId,
    /// The registrar acting.
    pub actor: String,
    /// The domain name it is about.
    pub key: String,
    /// Client transaction id of a mutation (the same for all its attempts).
    pub cl_trid: Option<String>,
    /// What was asked.
    pub call: Call,
    /// When the first attempt was about to be sent (since the recorder
    /// started).
    pub invoked: Duration,
    /// When the last attempt returned. For [`Outcome::Unknown`] this is
    /// when the client gave up, not when the operation ended: it may still
    /// take effect later.
    pub completed: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// Attempts made (retries with the same client transaction id).
    pub attempts: u32,
}

impl Op {
    /// When the operation certainly ended: `None` if it may never have.
    pub fn returned(&self) -> Option<Duration> {
        self.outcome.is_definite().then_some(self.completed)
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn fmt_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("{ms}ms"))
}

fn fmt_tx(
    f: &mut fmt::Formatter<'_>,
    sv_trid: &str,
    replayed: bool,
    charged: Option<i64>,
    refunded: Option<i64>,
) -> fmt::Result {
    if !sv_trid.is_empty() {
        write!(f, " sv={sv_trid}")?;
    }
    if replayed {
        write!(f, " (replayed)")?;
    }
    if let Some(c) = charged {
        write!(f, " charged={c}")?;
    }
    if let Some(r) = refunded {
        write!(f, " refunded={r}")?;
    }
    Ok(())
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} p{} {} {} {} [{} .. {}] ",
            self.id,
            self.process,
            self.actor,
            self.call,
            self.key,
            fmt_secs(self.invoked),
            if self.outcome.is_definite() {
                fmt_secs(self.completed)
            } else {
                "?".to_string()
            },
        )?;
        match &self.outcome {
            Outcome::Ok(Reply::Available(a)) => write!(f, "-> available={a}")?,
            Outcome::Ok(Reply::Domain {
                domain,
                sv_trid,
                replayed,
                charged_minor_units,
            }) => {
                write!(
                    f,
                    "-> ok sponsor={} roid={} expiry={} statuses={:?} ns={:?}",
                    domain.sponsor,
                    domain.roid,
                    fmt_date(domain.expiry_ms),
                    domain.statuses,
                    domain.nameservers
                )?;
                if domain.pending_transfer {
                    write!(f, " pendingTransfer")?;
                }
                if domain.pending_delete {
                    write!(f, " pendingDelete")?;
                }
                fmt_tx(f, sv_trid, *replayed, *charged_minor_units, None)?;
            }
            Outcome::Ok(Reply::Transfer {
                status,
                gaining,
                losing,
                expiry_ms,
                sv_trid,
                replayed,
                charged_minor_units,
                refunded_minor_units,
            }) => {
                write!(
                    f,
                    "-> ok transfer {status} {losing}->{gaining} expiry={}",
                    fmt_date(*expiry_ms)
                )?;
                fmt_tx(
                    f,
                    sv_trid,
                    *replayed,
                    *charged_minor_units,
                    *refunded_minor_units,
                )?;
            }
            Outcome::Ok(Reply::Deleted {
                pending_delete,
                sv_trid,
                replayed,
                refunded_minor_units,
            }) => {
                write!(
                    f,
                    "-> ok {}",
                    if *pending_delete {
                        "redemption"
                    } else {
                        "purged"
                    }
                )?;
                fmt_tx(f, sv_trid, *replayed, None, *refunded_minor_units)?;
            }
            Outcome::Rejected {
                reason, sv_trid, ..
            } => {
                write!(f, "-> {}", reason.as_str_name())?;
                if !sv_trid.is_empty() {
                    write!(f, " sv={sv_trid}")?;
                }
            }
            Outcome::Unknown {
                error,
                client_said_unknown,
            } => {
                write!(f, "-> UNKNOWN ({error})")?;
                if !client_said_unknown {
                    write!(f, " [client: outcome_unknown=false]")?;
                }
            }
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        if let Some(t) = &self.cl_trid {
            write!(f, " cl={t}")?;
        }
        Ok(())
    }
}

/// Something that happened to the cluster (a fault injected or healed),
/// for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When (since the recorder started).
    pub at: Duration,
    /// What.
    pub text: String,
}

/// A recorded history.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Operations in invocation order.
    pub ops: Vec<Op>,
    /// Cluster events in time order.
    pub events: Vec<Event>,
}

impl History {
    /// The operations on each key, in invocation order.
    pub fn by_key(&self) -> BTreeMap<&str, Vec<&Op>> {
        let mut keys: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
        for op in &self.ops {
            keys.entry(op.key.as_str()).or_default().push(op);
        }
        keys
    }

    /// Counts of operations by kind and outcome: (ok, rejected, unknown).
    pub fn counts(&self) -> BTreeMap<OpKind, (usize, usize, usize)> {
        let mut counts: BTreeMap<OpKind, (usize, usize, usize)> = BTreeMap::new();
        for op in &self.ops {
            let c = counts.entry(op.call.kind()).or_default();
            match op.outcome {
                Outcome::Ok(_) => c.0 += 1,
                Outcome::Rejected { .. } => c.1 += 1,
                Outcome::Unknown { .. } => c.2 += 1,
            }
        }
        counts
    }

    /// The events between `from` and `to`, for context in reports.
    pub fn events_between(&self, from: Duration, to: Duration) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.at >= from && e.at <= to)
            .collect()
    }
}

#[derive(Default)]
struct Log {
    ops: Vec<Op>,
    /// Parallel to `ops`: whether the op has completed.
    done: Vec<bool>,
    events: Vec<Event>,
}

/// Records a history from many tasks at once. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    epoch: Instant,
    log: Arc<Mutex<Log>>,
}

/// An invoked operation that has not completed yet.
#[must_use = "complete the operation with Recorder::complete"]
#[derive(Debug)]
pub struct Pending {
    id: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Recorder {
            epoch: Instant::now(),
            log: Arc::new(Mutex::new(Log::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panicking recorder thread leaves a usable log.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time since the recorder started (monotonic).
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Records the invocation of an operation, now.
    pub fn invoke(
        &self,
        process: ProcessId,
        actor: &str,
        key: &str,
        cl_trid: Option<String>,
        call: Call,
    ) -> Pending {
        let mut log = self.lock();
        let id = log.ops.len();
        let now = self.now();
        log.ops.push(Op {
            id,
            process,
            actor: actor.to_string(),
            key: key.to_string(),
            cl_trid,
            call,
            invoked: now,
            completed: now,
            outcome: Outcome::Unknown {
                error: "never completed".into(),
                client_said_unknown: true,
            },
            attempts: 0,
        });
        log.done.push(false);
        Pending { id }
    }

    /// Records the completion of `pending`, now.
    pub fn complete(&self, pending: Pending, outcome: Outcome, attempts: u32) {
        let now = self.now();
        let mut log = self.lock();
        let op = &mut log.ops[pending.id];
        op.completed = now;
        op.outcome = outcome;
        op.attempts = attempts;
        log.done[pending.id] = true;
    }

    /// Notes a cluster event, now.
    pub fn note(&self, text: impl Into<String>) {
        let at = self.now();
        self.lock().events.push(Event {
            at,
            text: text.into(),
        });
    }

    /// The history so far. Operations still in flight appear as unknown.
    pub fn history(&self) -> History {
        let log = self.lock();
        let now = self.now();
        let ops = log
            .ops
            .iter()
            .zip(&log.done)
            .map(|(op, done)| {
                let mut op = op.clone();
                if !done {
                    op.completed = now;
                }
                op
            })
            .collect();
        History {
            ops,
            events: log.events.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_keeps_invocation_order_and_marks_unfinished_ops_unknown() {
        let r = Recorder::new();
        let a = r.invoke(0, "reg1", "a.test", Some("t1".into()), Call::Info);
        let b = r.invoke(1, "reg2", "b.test", None, Call::Check);
        r.complete(b, Outcome::Ok(Reply::Available(true)), 1);
        r.note("killed node 1");
        let h = r.history();
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[0].id, 0);
        assert!(!h.ops[0].outcome.is_definite(), "a never completed");
        assert_eq!(h.ops[1].outcome, Outcome::Ok(Reply::Available(true)));
        assert!(h.ops[1].completed >= h.ops[1].invoked);
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.by_key().len(), 2);
        r.complete(a, Outcome::Ok(Reply::Available(false)), 2);
        assert_eq!(r.history().counts()[&OpKind::Info], (1, 0, 0));
    }
}
