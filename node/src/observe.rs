//! What SREs watch: Prometheus metrics (the `metrics` facade with
//! metrics-exporter-prometheus's recorder) and the health and readiness
//! probes, served over HTTP on `--metrics-addr`: `/metrics`, `/healthz`
//! (the process is up) and `/readyz` (it knows a leader, has applied
//! nearly everything it holds, and is not installing a snapshot).
//!
//! Raft's own numbers, storage sizes and the registry's statistics are read
//! at each scrape, so they cost nothing between scrapes; counters and
//! histograms are recorded through [`crate::telemetry`] where things
//! happen (calls, proposals, apply, log syncs, snapshots).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use openraft::ServerState;
use tokio::net::TcpListener;

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::api::Node;
use crate::security::listener::{self, NodeTls};
use crate::security::{Principal, Role};
use crate::telemetry;

/// A node applied within this many entries of what it holds is ready.
pub const READY_APPLY_LAG_ENTRIES: u64 = 1_000;

/// Installs the Prometheus recorder for this process and describes every
/// metric (HELP text and unit). Call once, before serving.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in telemetry::HISTOGRAMS {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).into()), buckets)?;
    }
    let handle = builder.install_recorder()?;
    telemetry::describe();
    Ok(handle)
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

/// How far this node's applied state is behind what it knows the leader
/// has committed: entries, and seconds of registry time. What a far-site
/// learner would lose of the acknowledged writes if the main site burned
/// now, as far as it knows; zero on the leader, which reports the window
/// for all of them.
fn behind_leader(node: &Node, m: &crate::raft::typ::RaftMetrics) -> (u64, f64) {
    if m.state == openraft::ServerState::Leader {
        return (0, 0.0);
    }
    let applied = m.last_applied.map_or(0, |l| l.index);
    let committed = node.store.committed_index();
    if committed <= applied {
        return (0, 0.0);
    }
    let then = crate::storage::proposal_time_at(&node.store, committed);
    let now = crate::registry::registry_now_ms(&node.store).ok();
    let seconds = match (then, now) {
        (Some(then), Some(now)) => (then - now).max(0) as f64 / 1000.0,
        _ => 0.0,
    };
    (committed - applied, seconds)
}

/// Sets the gauges read from openraft and the store, just before a scrape.
fn refresh(node: &Node) {
    let m = node.raft.metrics().borrow().clone();
    gauge!("kauri_node_info", "id" => node.id.to_string(), "site" => node.site.clone(),
        "version" => env!("CARGO_PKG_VERSION"))
    .set(1.0);
    gauge!("kauri_node_ready").set(if readiness(node).is_ok() { 1.0 } else { 0.0 });
    gauge!("kauri_raft_role").set(role_code(m.state));
    gauge!("kauri_raft_term").set(m.current_term as f64);
    gauge!("kauri_raft_leader_id").set(m.current_leader.unwrap_or(0) as f64);
    let last = m.last_log_index.unwrap_or(0);
    gauge!("kauri_raft_last_log_index").set(last as f64);
    gauge!("kauri_raft_commit_index").set(node.store.committed_index() as f64);
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
            // A peer that never answered: as old as this node's lead.
            let since = node
                .contacts
                .since(*peer)
                .map_or(f64::INFINITY, |d| d.as_secs_f64());
            gauge!("kauri_raft_last_contact_seconds", "peer" => peer.to_string()).set(since);
        }
    }
    let view = crate::api::membership::view(node);
    for (peer, seconds) in &view.lag_seconds {
        if *peer != node.id {
            gauge!("kauri_raft_replication_lag_seconds", "peer" => peer.to_string()).set(*seconds);
        }
    }
    let window = crate::api::membership::loss_window(
        &view,
        crate::api::membership::whole_log_seconds(node, view.last_log_index),
    );
    gauge!("kauri_dr_far_site_nodes").set(window.far_site_nodes as f64);
    gauge!("kauri_dr_loss_window_entries").set(window.entries as f64);
    gauge!("kauri_dr_loss_window_seconds").set(window.seconds);
    let (entries, seconds) = behind_leader(node, &m);
    gauge!("kauri_node_behind_leader_entries").set(entries as f64);
    gauge!("kauri_node_behind_leader_seconds").set(seconds);
    for (cf, bytes) in node.store.cf_bytes() {
        gauge!("kauri_storage_bytes", "cf" => cf).set(bytes as f64);
    }
    match crate::storage::inbox::free_bytes(node.store.dir()) {
        Ok(free) => gauge!("kauri_storage_disk_free_bytes").set(free as f64),
        Err(e) => tracing::warn!("metrics: free space of the data directory: {e}"),
    }
    // Read from counters the state machine keeps (never a scan of objects);
    // skipped while a snapshot install rewrites the state.
    if !node.store.installing() {
        match crate::registry::stats(&node.store) {
            Ok(stats) => registry_gauges(&stats),
            Err(e) => tracing::warn!("metrics: registry statistics: {e}"),
        }
    }
    gauge!("kauri_state_mismatches").set(node.store.chain_points().mismatches() as f64);
    if let Some(tls) = &node.tls {
        gauge!("kauri_tls_certificate_expiry_timestamp_seconds", "role" => "node")
            .set(tls.state().not_after_s as f64);
    }
}

fn registry_gauges(stats: &crate::registry::Stats) {
    for (tld, n) in &stats.domains {
        gauge!("kauri_registry_objects", "kind" => "domain", "tld" => tld.clone()).set(*n as f64);
    }
    gauge!("kauri_registry_objects", "kind" => "host").set(stats.hosts as f64);
    gauge!("kauri_registry_objects", "kind" => "contact").set(stats.contacts as f64);
    for (kind, n) in &stats.events {
        counter!("kauri_lifecycle_events_total", "kind" => kind.clone()).absolute(*n);
    }
    for (registrar, currency, balance) in &stats.balances {
        gauge!("kauri_registrar_balance_minor_units", "registrar" => registrar.clone(),
            "currency" => currency.clone())
        .set(*balance as f64);
    }
}

/// Counts leader changes as openraft reports them, and keeps the term the
/// log lines carry current, until the process ends.
pub async fn watch_leader(node: Node) {
    let mut metrics = node.raft.metrics();
    let mut leader = metrics.borrow().current_leader;
    crate::logging::set_term(metrics.borrow().current_term);
    while metrics.changed().await.is_ok() {
        let (now, term) = {
            let m = metrics.borrow();
            (m.current_leader, m.current_term)
        };
        crate::logging::set_term(term);
        if now != leader {
            telemetry::leader_changed();
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

/// Who is scraping: nobody known on plain HTTP; on HTTPS the principal of
/// the client certificate, if one was presented.
#[derive(Debug, Clone)]
enum Scraper {
    Plain,
    Tls(Option<Result<Principal, String>>),
}

/// Roles whose certificates may read `/metrics` over HTTPS.
const METRICS_ROLES: &[Role] = &[Role::Monitor, Role::Staff, Role::Node];

/// Why `scraper` may not read `/metrics` of a node of `cluster`, if not.
fn metrics_refusal(scraper: &Scraper, cluster: &str) -> Option<String> {
    let Scraper::Tls(principal) = scraper else {
        return None;
    };
    match principal {
        None => Some("no client certificate: /metrics over HTTPS needs one".into()),
        Some(Err(why)) => Some(format!("client certificate not accepted: {why}")),
        Some(Ok(p)) if p.cluster != cluster => Some(format!(
            "client certificate is for cluster {:?}, not {cluster:?}",
            p.cluster
        )),
        Some(Ok(p)) if !METRICS_ROLES.contains(&p.role) => Some(format!(
            "{} {} may not read /metrics: it is for monitor, staff and node",
            p.role, p.name
        )),
        Some(Ok(_)) => None,
    }
}

fn answer(
    node: &Node,
    handle: &PrometheusHandle,
    scraper: &Scraper,
    path: &str,
) -> hyper::Response<Full<Bytes>> {
    match path {
        "/metrics" => {
            let cluster = node.tls.as_ref().map_or("", |t| t.cluster());
            if let Some(why) = metrics_refusal(scraper, cluster) {
                return text(403, format!("forbidden: {why}\n"));
            }
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

/// How long a scrape connection may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TLS handshake on the metrics listener may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the metrics listener serves at once; more are closed at
/// once (a scraper needs one, a few probes a few more).
pub const MAX_METRICS_CONNECTIONS: usize = 32;

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the
/// process ends: plain HTTP/1.1, or HTTPS with the node's certificate when
/// `tls` is given (`--metrics-tls`; the probes answer anyone, `/metrics`
/// only a client certificate of the cluster with a monitor, staff or node
/// role).
pub async fn serve(
    listener: TcpListener,
    node: Node,
    handle: PrometheusHandle,
    tls: Option<Arc<NodeTls>>,
) {
    let open = Arc::new(Semaphore::new(MAX_METRICS_CONNECTIONS));
    // Owned here, so that stopping this task ends every connection (each
    // holds the node, and with it the database).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("metrics listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "metrics connection refused: {MAX_METRICS_CONNECTIONS} open");
            continue;
        };
        let (node, handle, tls) = (node.clone(), handle.clone(), tls.clone());
        connections.spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, node, handle, Scraper::Plain).await,
                Some(tls) => {
                    let accepting = tls.metrics_acceptor().accept(stream);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accepting).await {
                        Ok(Ok(stream)) => {
                            let scraper = match stream.get_ref().1.peer_certificates() {
                                Some(_) => Scraper::Tls(Some(listener::peer_principal(&stream))),
                                None => Scraper::Tls(None),
                            };
                            serve_connection(stream, node, handle, scraper).await
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, "metrics TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%remote, "metrics TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(stream: S, node: Node, handle: PrometheusHandle, scraper: Scraper)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
        let response = answer(&node, &handle, &scraper, req.uri().path());
        async move { Ok::<_, Infallible>(response) }
    });
    let io = hyper_util::rt::TokioIo::new(stream);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let _ = http.serve_connection(io, service).await;
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --metrics-addr {addr}"))
}
