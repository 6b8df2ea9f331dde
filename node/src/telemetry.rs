//! What a node counts and measures: the name, HELP text and unit of every
//! metric, and the small functions the layers that see an event call to
//! record it. A leaf module (it imports nothing of the node), so storage,
//! Raft, the API and the security layer may all call it; the exporter and
//! the probes that read the node's state at scrape time are in
//! [`crate::observe`].
//!
//! Labels only ever take values from closed sets the node itself defines
//! (method names from the policy table, result kinds, column families,
//! TLDs and registrars that exist), never request data, so the number of
//! series stays bounded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

/// Buckets of latency histograms (requests, apply, log syncs), in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of snapshot build and install durations, in seconds.
pub const SNAPSHOT_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Buckets of the entries one apply call handles.
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// Histograms and their buckets (the exporter sets them at install).
pub const HISTOGRAMS: &[(&str, &[f64])] = &[
    ("kauri_grpc_request_duration_seconds", LATENCY_BUCKETS),
    ("kauri_apply_duration_seconds", LATENCY_BUCKETS),
    ("kauri_log_sync_duration_seconds", LATENCY_BUCKETS),
    ("kauri_apply_batch_entries", BATCH_BUCKETS),
    ("kauri_linearizable_read_round_reads", BATCH_BUCKETS),
    ("kauri_snapshot_build_duration_seconds", SNAPSHOT_BUCKETS),
    ("kauri_snapshot_install_duration_seconds", SNAPSHOT_BUCKETS),
];

/// What happened to a proposal this node made (`kauri_raft_proposals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalResult {
    /// Committed and applied; the command succeeded.
    Ok,
    /// Committed and applied; the registry refused the command.
    Rejected,
    /// This node is not the leader (the client is told where it is).
    NotLeader,
    /// Not committed in time, or Raft failed: the outcome is unknown.
    Error,
}

impl ProposalResult {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProposalResult::Ok => "ok",
            ProposalResult::Rejected => "rejected",
            ProposalResult::NotLeader => "not_leader",
            ProposalResult::Error => "error",
        }
    }
}

/// Describes every metric (HELP text and unit). Call once, after the
/// recorder is installed.
pub fn describe() {
    describe_gauge!(
        "kauri_node_info",
        "Always 1; the labels say which node, site and version this is"
    );
    describe_gauge!(
        "kauri_node_ready",
        "1 when the node is ready to serve (what /readyz answers 200 to), else 0"
    );
    describe_gauge!(
        "kauri_raft_role",
        "This node's Raft role: 0 follower, 1 candidate, 2 leader, 3 learner, 4 shutdown"
    );
    describe_gauge!("kauri_raft_term", "The current Raft term");
    describe_gauge!(
        "kauri_raft_leader_id",
        "The leader this node knows of; 0 when it knows none"
    );
    describe_gauge!(
        "kauri_raft_commit_index",
        "Index of the last log entry this node knows to be committed"
    );
    describe_gauge!(
        "kauri_raft_last_log_index",
        "Index of the last entry in this node's log"
    );
    describe_gauge!(
        "kauri_raft_applied_index",
        "Index of the last entry this node applied to the registry"
    );
    describe_gauge!(
        "kauri_raft_snapshot_index",
        "Last index the node's current snapshot covers"
    );
    describe_gauge!(
        "kauri_raft_replication_lag_entries",
        "On the leader: entries a peer's log is behind the leader's"
    );
    describe_gauge!(
        "kauri_raft_replication_lag_seconds",
        Unit::Seconds,
        "On the leader: seconds of registry time a peer's log is behind the leader's"
    );
    describe_gauge!(
        "kauri_dr_far_site_nodes",
        "On the leader (0 elsewhere): members outside the main site, the leader's"
    );
    describe_gauge!(
        "kauri_dr_loss_window_entries",
        "On the leader (0 elsewhere): log entries that losing the main site now would lose \
         (what the best-placed node outside it lacks; the whole log if there is none)"
    );
    describe_gauge!(
        "kauri_dr_loss_window_seconds",
        Unit::Seconds,
        "On the leader (0 elsewhere): the same window in seconds of registry time"
    );
    describe_gauge!(
        "kauri_node_behind_leader_entries",
        "On followers and learners (0 on the leader): entries the leader has committed, as \
         this node last heard, that it has not applied; what it would lack of the acknowledged \
         writes if it had to take over now"
    );
    describe_gauge!(
        "kauri_node_behind_leader_seconds",
        Unit::Seconds,
        "The same in seconds of registry time"
    );
    describe_gauge!(
        "kauri_raft_last_contact_seconds",
        Unit::Seconds,
        "On the leader: seconds since a peer last answered a replication or heartbeat message"
    );
    describe_counter!(
        "kauri_raft_leader_changes_total",
        "Times this node saw the leader change (including to none)"
    );
    describe_counter!(
        "kauri_raft_proposals_total",
        "Commands this node proposed, by result: ok, rejected (applied, refused by the registry), not_leader, error (outcome unknown)"
    );
    describe_histogram!(
        "kauri_apply_batch_entries",
        "Log entries applied to the registry in one apply call"
    );
    describe_histogram!(
        "kauri_apply_duration_seconds",
        Unit::Seconds,
        "Time to apply one batch of log entries and write the result"
    );
    describe_histogram!(
        "kauri_log_sync_duration_seconds",
        Unit::Seconds,
        "Time of one Raft log sync (fdatasync of the write-ahead log, covering every append queued meanwhile)"
    );
    describe_gauge!(
        "kauri_storage_bytes",
        Unit::Bytes,
        "Bytes a RocksDB column family holds (table files and memtables)"
    );
    describe_gauge!(
        "kauri_storage_disk_free_bytes",
        Unit::Bytes,
        "Bytes free to this process on the file system of the data directory"
    );
    describe_histogram!(
        "kauri_snapshot_build_duration_seconds",
        Unit::Seconds,
        "Time to build a snapshot (a RocksDB checkpoint)"
    );
    describe_histogram!(
        "kauri_snapshot_install_duration_seconds",
        Unit::Seconds,
        "Time to install a snapshot received from the leader"
    );
    describe_gauge!(
        "kauri_snapshot_last_success_timestamp_seconds",
        Unit::Seconds,
        "When this node last built or installed a snapshot (seconds since the epoch; 0: never)"
    );
    describe_gauge!(
        "kauri_backup_last_success_timestamp_seconds",
        Unit::Seconds,
        "When this node last sent a whole backup stream (seconds since the epoch)"
    );
    describe_gauge!(
        "kauri_registry_objects",
        "Objects that exist in the registry, by kind (domains also by TLD); from counters the state machine keeps"
    );
    describe_counter!(
        "kauri_lifecycle_events_total",
        "Lifecycle events the registry ran (auto-renewals, transfer auto-approvals, redemption ends, purges), by kind; kept in the replicated state"
    );
    describe_counter!(
        "kauri_idempotency_replays_total",
        "Commands this node applied that repeated an earlier request (same actor, clTRID and request) and were answered with the first result"
    );
    describe_gauge!(
        "kauri_registrar_balance_minor_units",
        "A registrar's account balance in minor units of its currency (cents)"
    );
    describe_gauge!(
        "kauri_state_mismatches",
        "State-chain points at which a peer's state differed from this node's (above 0: the replicas diverged)"
    );
    describe_gauge!(
        "kauri_tls_certificate_expiry_timestamp_seconds",
        Unit::Seconds,
        "When the certificate this node presents expires (seconds since the epoch)"
    );
    describe_histogram!(
        "kauri_linearizable_read_round_reads",
        "Linearizable reads one leadership check answered (its count: the checks)"
    );
    describe_counter!(
        "kauri_grpc_requests_total",
        "gRPC calls answered, by service, method and status code"
    );
    describe_histogram!(
        "kauri_grpc_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a gRPC call, by service and method"
    );
}

/// Counts a finished gRPC call. `service` and `method` must be names the
/// policy table knows (its caller passes "unknown" for anything else), so
/// no label takes request data.
pub fn request(service: String, method: String, code: tonic::Code, seconds: f64) {
    counter!("kauri_grpc_requests_total", "service" => service.clone(),
        "method" => method.clone(), "code" => code_name(code))
    .increment(1);
    histogram!("kauri_grpc_request_duration_seconds", "service" => service,
        "method" => method)
    .record(seconds);
}

/// The name of a gRPC status code as a label value (`Ok`, `NotFound`, ...).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// Counts a proposal's result.
pub fn proposal(result: ProposalResult) {
    counter!("kauri_raft_proposals_total", "result" => result.as_str()).increment(1);
}

/// Counts a leader change this node saw.
pub fn leader_changed() {
    counter!("kauri_raft_leader_changes_total").increment(1);
}

/// Records one apply call: `entries` applied in `took`, of which
/// `replays` were answered from an earlier result.
pub fn applied(entries: usize, replays: u64, took: Duration) {
    histogram!("kauri_apply_batch_entries").record(entries as f64);
    histogram!("kauri_apply_duration_seconds").record(took.as_secs_f64());
    if replays > 0 {
        counter!("kauri_idempotency_replays_total").increment(replays);
    }
}

/// Records one leadership check that answered `reads` linearizable reads.
pub fn read_round(reads: usize) {
    histogram!("kauri_linearizable_read_round_reads").record(reads as f64);
}

/// Records one sync of the Raft log.
pub fn log_synced(took: Duration) {
    histogram!("kauri_log_sync_duration_seconds").record(took.as_secs_f64());
}

/// Records a snapshot built in `took`.
pub fn snapshot_built(took: Duration) {
    histogram!("kauri_snapshot_build_duration_seconds").record(took.as_secs_f64());
    snapshot_succeeded_at(SystemTime::now());
}

/// Records a snapshot installed in `took`.
pub fn snapshot_installed(took: Duration) {
    histogram!("kauri_snapshot_install_duration_seconds").record(took.as_secs_f64());
    snapshot_succeeded_at(SystemTime::now());
}

/// A backup stream was sent whole at `when`.
pub fn backup_served(when: SystemTime) {
    let seconds = when
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge!("kauri_backup_last_success_timestamp_seconds").set(seconds);
}

/// Sets when the current snapshot was made (at start: from its files).
pub fn snapshot_succeeded_at(when: SystemTime) {
    let seconds = when
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge!("kauri_snapshot_last_success_timestamp_seconds").set(seconds);
}
