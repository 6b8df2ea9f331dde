//! The standard gRPC health service, `grpc.health.v1.Health` (Check and
//! Watch), as load balancers, orchestrators and `grpc_health_probe` expect
//! it: a status for the whole node (service name `""`) and for each Kauri
//! service, kept by tonic-health's reporter and set here from the node's
//! readiness ([`crate::observe::readiness`], the same test as `/readyz`).
//!
//! - `""`, `kauri.v1.Registry`, `kauri.v1.Admin` and `kauri.v1.Cluster`
//!   are `SERVING` while the node is ready (it knows a leader, has applied
//!   within [`crate::observe::READY_APPLY_LAG_ENTRIES`] of its log, and is
//!   not installing a snapshot) and `NOT_SERVING` otherwise: its registry
//!   calls would fail or wait, and its digests and snapshots would describe
//!   a state behind the cluster's. `Cluster.Status` still answers then, so
//!   an operator can ask the node why.
//! - `kauri.v1.Raft` is `SERVING` for as long as the process runs: a node
//!   without a leader must still take votes and entries, since that is how
//!   the cluster gets a leader back; a peer or probe that avoided it then
//!   would keep the cluster down.
//!
//! At shutdown every status turns `NOT_SERVING` and the Watch streams end,
//! so watchers learn of it and the server's graceful stop is not held up.
//!
//! Resources: a Watch stream holds one receiver of a `tokio::sync::watch`
//! channel and no task; it is woken only when a status changes, which
//! [`follow_readiness`] does only on a change. What watchers can hold is
//! bounded by the listener's connection limits times
//! [`crate::server::MAX_STREAMS_PER_CONNECTION`], like any other call.

use std::time::Duration;

use kauri_proto::v1::{
    admin_server::SERVICE_NAME as ADMIN, cluster_server::SERVICE_NAME as CLUSTER,
    raft_server::SERVICE_NAME as RAFT, registry_server::SERVICE_NAME as REGISTRY,
};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::api::Node;

/// The services whose status follows readiness; `""` is the whole node.
pub const FOLLOWING_READINESS: &[&str] = &["", REGISTRY, ADMIN, CLUSTER];
/// The services that are `SERVING` while the process runs.
pub const ALWAYS_SERVING: &[&str] = &[RAFT];
/// How often readiness is checked when Raft's metrics do not change (a
/// snapshot install, for one, does not show in them).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest time between two checks: a busy leader's metrics change at
/// every apply, and a check clones them.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Largest health request accepted (it names one service).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024;

const _: () = assert!(MIN_INTERVAL.as_millis() < POLL_INTERVAL.as_millis());

/// The health service and the reporter that sets its statuses, with every
/// status that follows readiness `NOT_SERVING` until [`follow_readiness`]
/// has checked it (tonic-health starts `""` as `SERVING`).
pub async fn service() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, server) = tonic_health::server::health_reporter();
    set_all(&reporter, FOLLOWING_READINESS, ServingStatus::NotServing).await;
    set_all(&reporter, ALWAYS_SERVING, ServingStatus::Serving).await;
    (
        reporter,
        server.max_decoding_message_size(MAX_REQUEST_BYTES),
    )
}

async fn set_all(reporter: &HealthReporter, services: &[&str], status: ServingStatus) {
    for service in services {
        reporter.set_service_status(service, status).await;
    }
}

/// Keeps the statuses of [`FOLLOWING_READINESS`] equal to the node's
/// readiness, checked when Raft's metrics change (at most every
/// [`MIN_INTERVAL`]) and at least every [`POLL_INTERVAL`]. A status is set
/// only when it changes: each set wakes every Watch stream. Runs until
/// aborted, or until Raft stops.
pub async fn follow_readiness(node: Node, reporter: HealthReporter) {
    let mut metrics = node.raft.metrics();
    let mut serving = None;
    loop {
        let ready = crate::observe::readiness(&node);
        if serving != Some(ready.is_ok()) {
            match &ready {
                Ok(()) => tracing::info!("gRPC health: SERVING"),
                Err(why) => tracing::info!("gRPC health: NOT_SERVING: {why}"),
            }
            let status = if ready.is_ok() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_all(&reporter, FOLLOWING_READINESS, status).await;
            serving = Some(ready.is_ok());
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
        tokio::time::sleep(MIN_INTERVAL).await;
    }
}

/// Says `NOT_SERVING` for every service, then removes the statuses, which
/// ends every Watch stream (a watcher reads `NOT_SERVING` and then the end
/// of its call). Call when the node starts to stop.
pub async fn shut_down(mut reporter: HealthReporter) {
    let services: Vec<&str> = FOLLOWING_READINESS
        .iter()
        .chain(ALWAYS_SERVING)
        .copied()
        .collect();
    set_all(&reporter, &services, ServingStatus::NotServing).await;
    for service in services {
        reporter.clear_service_status(service).await;
    }
}
