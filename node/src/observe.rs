//! What SREs watch: Prometheus metrics (the `metrics` facade with
//! metrics-exporter-prometheus's recorder) and the health and readiness
//! probes, served over HTTP on `--metrics-addr`: `/metrics`, `/healthz`
//! (the process is up) and `/readyz` (it knows a leader, has applied
//! nearly everything it holds, and is not installing a snapshot).
//!
//! Raft's own numbers are read from openraft's metrics at each scrape, so
//! they cost nothing between scrapes; request counters are recorded by
//! [`record_request`] as calls finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use openraft::ServerState;
use tokio::net::TcpListener;

use crate::api::Node;

/// A node applied within this many entries of what it holds is ready.
pub const READY_APPLY_LAG_ENTRIES: u64 = 1_000;

/// Buckets of request latency histograms, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder for this process and describes every
/// metric (HELP text and unit). Call once, before serving.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("kauri_grpc_request_duration_seconds".into()),
            LATENCY_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_gauge!(
        "kauri_node_info",
        "Always 1; the labels say which node, site and version this is"
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
    describe_counter!(
        "kauri_raft_leader_changes_total",
        "Times this node saw the leader change (including to none)"
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

/// The numeric code of a Raft role for `kauri_raft_role`.
fn role_code(state: ServerState) -> f64 {
    match state {
        ServerState::Follower => 0.0,
        ServerState::Candidate => 1.0,
        ServerState::Leader => 2.0,
        ServerState::Learner => 3.0,
        ServerState::Shutdown => 4.0,
    }
}

/// Sets the gauges read from openraft and the store, just before a scrape.
fn refresh(node: &Node) {
    let m = node.raft.metrics().borrow().clone();
    gauge!("kauri_node_info", "id" => node.id.to_string(), "site" => node.site.clone(),
        "version" => env!("CARGO_PKG_VERSION"))
    .set(1.0);
    gauge!("kauri_raft_role").set(role_code(m.state));
    gauge!("kauri_raft_term").set(m.current_term as f64);
    gauge!("kauri_raft_leader_id").set(m.current_leader.unwrap_or(0) as f64);
    let last = m.last_log_index.unwrap_or(0);
    gauge!("kauri_raft_last_log_index").set(last as f64);
    gauge!("kauri_raft_applied_index").set(m.last_applied.map_or(0, |l| l.index) as f64);
    gauge!("kauri_raft_snapshot_index").set(m.snapshot.map_or(0, |l| l.index) as f64);
    if let Some(replication) = &m.replication {
        for (peer, matched) in replication {
            if *peer == node.id {
                continue;
            }
            let behind = last.saturating_sub(matched.map_or(0, |l| l.index));
            gauge!("kauri_raft_replication_lag_entries", "peer" => peer.to_string())
                .set(behind as f64);
        }
    }
    gauge!("kauri_state_mismatches").set(node.store.chain_points().mismatches() as f64);
    if let Some(tls) = &node.tls {
        gauge!("kauri_tls_certificate_expiry_timestamp_seconds", "role" => "node")
            .set(tls.state().not_after_s as f64);
    }
}

/// Counts a finished gRPC call. `service` and `method` must be names the
/// policy table knows (anything else is counted as "unknown"), so no label
/// takes request data.
pub fn record_request(service: &str, method: &str, code: tonic::Code, seconds: f64) {
    let (service, method) = (service.to_string(), method.to_string());
    counter!("kauri_grpc_requests_total", "service" => service.clone(),
        "method" => method.clone(), "code" => format!("{code:?}"))
    .increment(1);
    metrics::histogram!("kauri_grpc_request_duration_seconds", "service" => service,
        "method" => method)
    .record(seconds);
}

/// Counts leader changes as openraft reports them, until the process ends.
pub async fn watch_leader(node: Node) {
    let mut metrics = node.raft.metrics();
    let mut leader = metrics.borrow().current_leader;
    while metrics.changed().await.is_ok() {
        let now = metrics.borrow().current_leader;
        if now != leader {
            counter!("kauri_raft_leader_changes_total").increment(1);
            leader = now;
        }
    }
}

/// Whether the node is ready to serve, and if not, why.
pub(crate) fn readiness(node: &Node) -> Result<(), String> {
    let m = node.raft.metrics().borrow().clone();
    if node.store.installing() {
        return Err("installing a snapshot".into());
    }
    if m.current_leader.is_none() {
        return Err("no leader known".into());
    }
    let last = m.last_log_index.unwrap_or(0);
    let applied = m.last_applied.map_or(0, |l| l.index);
    if last.saturating_sub(applied) > READY_APPLY_LAG_ENTRIES {
        return Err(format!(
            "applied index {applied} is more than {READY_APPLY_LAG_ENTRIES} entries behind the log ({last})"
        ));
    }
    Ok(())
}

fn text(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("invariant: a static status and header build a response")
}

fn answer(node: &Node, handle: &PrometheusHandle, path: &str) -> hyper::Response<Full<Bytes>> {
    match path {
        "/metrics" => {
            refresh(node);
            handle.run_upkeep();
            text(200, handle.render())
        }
        "/healthz" => text(200, "ok\n".into()),
        "/readyz" => match readiness(node) {
            Ok(()) => text(200, "ready\n".into()),
            Err(why) => text(503, format!("not ready: {why}\n")),
        },
        _ => text(
            404,
            "not found: /metrics, /healthz and /readyz are served here\n".into(),
        ),
    }
}

/// How long a scrape connection may take to send its request.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the
/// process ends (plain HTTP/1.1).
pub async fn serve(listener: TcpListener, node: Node, handle: PrometheusHandle) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("metrics listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (node, handle) = (node.clone(), handle.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let response = answer(&node, &handle, req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let _ = http.serve_connection(io, service).await;
        });
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --metrics-addr {addr}"))
}
