//! What SREs watch on a gateway: Prometheus metrics and the health and
//! readiness probes, served over HTTP on `--metrics-addr` like a node's:
//! `/metrics`, `/healthz` (the process is up) and `/readyz` (it has
//! heard from the cluster, and the cluster knows a leader, within the
//! last [`READY_WITHIN`]).
//!
//! Metrics: `kauri_epp_sessions` (logged-in sessions), `kauri_epp_connections`
//! (open connections), `kauri_epp_commands_total{command,result}` (result:
//! the EPP result code), `kauri_epp_command_duration_seconds{command}`,
//! `kauri_epp_connections_closed_total{reason}` and
//! `kauri_gateway_cluster_reachable`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use kauri_client::KauriClient;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Seconds-scale buckets for command latency (1 ms to 10 s).
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// A gateway is ready when it heard from a cluster that knew a leader
/// this recently.
pub const READY_WITHIN: Duration = Duration::from_secs(15);
/// How often the cluster is asked.
const PROBE_EVERY: Duration = Duration::from_secs(3);
/// Connections the metrics listener serves at once.
const MAX_CONNECTIONS: usize = 32;
/// How long a scrape may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder and describes every metric.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("kauri_epp_command_duration_seconds".into()),
            &DURATION_BUCKETS,
        )?
        .install_recorder()?;
    describe_gauge!(
        "kauri_epp_sessions",
        "EPP sessions logged in on this gateway"
    );
    describe_gauge!(
        "kauri_epp_connections",
        "EPP connections open on this gateway"
    );
    describe_counter!(
        "kauri_epp_commands_total",
        "EPP commands answered, by command and result code"
    );
    describe_histogram!(
        "kauri_epp_command_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a command's frame to its answer, by command"
    );
    describe_counter!(
        "kauri_epp_connections_closed_total",
        "EPP connections closed, by reason"
    );
    describe_gauge!(
        "kauri_gateway_cluster_reachable",
        "1 when the cluster answered the last probe and knew a leader"
    );
    gauge!("kauri_epp_sessions").set(0.0);
    gauge!("kauri_epp_connections").set(0.0);
    Ok(handle)
}

/// Counts one answered command.
pub fn command(name: &'static str, code: u16, took: Duration) {
    counter!("kauri_epp_commands_total", "command" => name, "result" => code.to_string())
        .increment(1);
    histogram!("kauri_epp_command_duration_seconds", "command" => name).record(took.as_secs_f64());
}

/// Counts a closed connection.
pub fn closed(reason: &'static str) {
    counter!("kauri_epp_connections_closed_total", "reason" => reason).increment(1);
}

/// Moves the open-connections gauge.
pub fn connections(delta: f64) {
    gauge!("kauri_epp_connections").increment(delta);
}

/// Moves the sessions gauge.
pub fn sessions(delta: f64) {
    gauge!("kauri_epp_sessions").increment(delta);
}

/// When the cluster last answered with a leader known (ms since the
/// epoch; 0: never).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicI64>);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Readiness {
    /// Why the gateway is not ready, if it is not.
    pub fn check(&self) -> Result<(), String> {
        let last = self.0.load(Ordering::Relaxed);
        if last == 0 {
            return Err("the cluster has not answered yet".into());
        }
        let ago = now_ms() - last;
        if ago > READY_WITHIN.as_millis() as i64 {
            return Err(format!(
                "no answer from the cluster with a leader for {} s",
                ago / 1000
            ));
        }
        Ok(())
    }

    /// Asks the cluster every few seconds, for ever.
    pub async fn watch(self, cluster: KauriClient) {
        loop {
            let up = match cluster.cluster_status_any().await {
                Ok(s) if s.leader_id != 0 => {
                    self.0.store(now_ms(), Ordering::Relaxed);
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    tracing::debug!("cluster probe: {e}");
                    false
                }
            };
            gauge!("kauri_gateway_cluster_reachable").set(if up { 1.0 } else { 0.0 });
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}

fn text(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn answer(
    handle: &PrometheusHandle,
    ready: &Readiness,
    path: &str,
) -> hyper::Response<Full<Bytes>> {
    match path {
        "/metrics" => {
            handle.run_upkeep();
            text(200, handle.render())
        }
        "/healthz" => text(200, "ok\n".into()),
        "/readyz" => match ready.check() {
            Ok(()) => text(200, "ready\n".into()),
            Err(why) => text(503, format!("not ready: {why}\n")),
        },
        _ => text(
            404,
            "not found: /metrics, /healthz and /readyz are served here\n".into(),
        ),
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` over plain HTTP/1.1 on
/// `listener` until the process ends.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, ready: Readiness) {
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("metrics listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "metrics connection refused: {MAX_CONNECTIONS} open");
            continue;
        };
        let (handle, ready) = (handle.clone(), ready.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let response = answer(&handle, &ready, req.uri().path());
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
