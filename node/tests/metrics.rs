//! What SREs watch, through the real binaries: every node of a TLS cluster
//! serves `/metrics`, `/healthz` and `/readyz` on `--metrics-addr`; its
//! Raft gauges agree with `Cluster.Status`; request counters move with a
//! known number of calls; killing the leader shows as a leader change on
//! the survivors, and the new leader's role gauge says so.

use std::time::Duration;

use kauri_chaos_tests::{wait_until, TestCluster};
use kauri_client::meta;
use kauri_client::proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

/// GETs `path` from `addr`: the status code and the body.
async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (code, body.to_string())
}

/// The value of the first sample of `name` whose labels contain every one
/// of `labels` (`key="value"`), if any.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let metric = series.split('{').next().unwrap_or("");
            metric == name && labels.iter().all(|label| series.contains(label))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

async fn scrape(cluster: &TestCluster, id: u64) -> String {
    let (code, body) = get(&cluster.node(id).metrics_addr, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_exports_what_its_status_says_and_counts_calls() {
    let mut cluster = TestCluster::start(NODE_BIN, 3, &["--tick-interval-ms", "0"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.wait_caught_up(Duration::from_secs(30)).await;

    for id in cluster.ids() {
        let addr = cluster.node(id).metrics_addr.clone();
        assert_eq!(get(&addr, "/healthz").await.0, 200);
        wait_until(Duration::from_secs(10), "the node is ready", || {
            let addr = addr.clone();
            async move { (get(&addr, "/readyz").await.0 == 200).then_some(()) }
        })
        .await;
        assert_eq!(get(&addr, "/nothing").await.0, 404);

        let text = scrape(&cluster, id).await;
        let status = cluster.status(id).await.unwrap();
        for (name, value) in [
            ("kauri_raft_term", status.term),
            ("kauri_raft_leader_id", status.leader_id),
            ("kauri_raft_last_log_index", status.last_log_index),
            ("kauri_raft_applied_index", status.applied_index),
            ("kauri_raft_commit_index", status.commit_index),
        ] {
            assert_eq!(
                sample(&text, name, &[]),
                Some(value as f64),
                "node {id} {name}"
            );
        }
        let role = if id == leader { 2.0 } else { 0.0 };
        assert_eq!(
            sample(&text, "kauri_raft_role", &[]),
            Some(role),
            "node {id}"
        );
        let id_label = format!("id=\"{id}\"");
        assert_eq!(sample(&text, "kauri_node_info", &[&id_label]), Some(1.0));
        assert!(text.contains("# HELP kauri_raft_term"), "HELP text");
        assert!(
            sample(&text, "kauri_tls_certificate_expiry_timestamp_seconds", &[]).unwrap() > 1.7e9
        );
        assert_eq!(sample(&text, "kauri_state_mismatches", &[]), Some(0.0));
        // Caught up (no ticks: nothing new is committed): nothing behind.
        assert_eq!(
            sample(&text, "kauri_node_behind_leader_entries", &[]),
            Some(0.0),
            "node {id}"
        );
        assert_eq!(sample(&text, "kauri_node_ready", &[]), Some(1.0));
        assert!(sample(&text, "kauri_storage_disk_free_bytes", &[]).unwrap() > 0.0);
        assert!(sample(&text, "kauri_storage_bytes", &["cf=\"raft_log\""]).unwrap() > 0.0);
        assert!(sample(&text, "kauri_apply_batch_entries_count", &[]).unwrap() > 0.0);
        assert!(sample(&text, "kauri_log_sync_duration_seconds_count", &[]).unwrap() > 0.0);
    }

    // Five calls answered, one refused: the leader's counters move by that.
    let staff = cluster.client();
    let before = scrape(&cluster, leader).await;
    let ok = [
        "service=\"kauri.v1.Admin\"",
        "method=\"CreateRegistrar\"",
        "code=\"Ok\"",
    ];
    let count = |text: &str, labels: &[&str]| {
        sample(text, "kauri_grpc_requests_total", labels).unwrap_or(0.0)
    };
    for i in 0..5 {
        staff
            .create_registrar(CreateRegistrarRequest {
                meta: Some(meta("")),
                id: format!("rar-{i}"),
                name: "Registrar".into(),
                password: "correct horse battery".into(),
                currency: "USD".into(),
            })
            .await
            .expect("staff creates a registrar");
    }
    let refused = staff
        .create_registrar(CreateRegistrarRequest {
            meta: Some(meta("")),
            id: "rar-0".into(),
            name: "Again".into(),
            password: "correct horse battery".into(),
            currency: "USD".into(),
        })
        .await;
    assert!(refused.is_err());
    let after = scrape(&cluster, leader).await;
    assert_eq!(count(&after, &ok) - count(&before, &ok), 5.0);
    let proposals = |text: &str, result: &str| {
        let label = format!("result=\"{result}\"");
        sample(text, "kauri_raft_proposals_total", &[&label]).unwrap_or(0.0)
    };
    assert_eq!(proposals(&after, "ok") - proposals(&before, "ok"), 5.0);
    assert_eq!(
        proposals(&after, "rejected") - proposals(&before, "rejected"),
        1.0,
        "the duplicate registrar was proposed, applied and refused"
    );
    for id in cluster.ids().into_iter().filter(|&i| i != leader) {
        let label = format!("peer=\"{id}\"");
        let since = sample(&after, "kauri_raft_last_contact_seconds", &[&label]).unwrap();
        assert!(since < 5.0, "the leader heard from node {id} {since} s ago");
    }
    let exists = ["method=\"CreateRegistrar\"", "code=\"AlreadyExists\""];
    assert_eq!(count(&after, &exists) - count(&before, &exists), 1.0);
    let histogram = sample(
        &after,
        "kauri_grpc_request_duration_seconds_count",
        &["method=\"CreateRegistrar\""],
    )
    .unwrap();
    assert!(histogram >= 6.0, "{histogram}");
    assert!(
        after.contains("kauri_raft_replication_lag_entries{peer="),
        "the leader reports its peers' lag"
    );

    registry_statistics_are_the_same_on_every_node(&cluster).await;
    made_up_methods_add_no_series(&cluster, leader).await;

    // The leader dies: the survivors see a leader change and one of them
    // reports itself as leader.
    let survivors: Vec<u64> = cluster.ids().into_iter().filter(|&i| i != leader).collect();
    let changes = |text: &str| sample(text, "kauri_raft_leader_changes_total", &[]).unwrap_or(0.0);
    let mut before = Vec::new();
    for &id in &survivors {
        before.push(changes(&scrape(&cluster, id).await));
    }
    cluster.kill(leader);
    let new_leader = cluster
        .wait_for_leader_among(&survivors, Duration::from_secs(30))
        .await;
    for (i, &id) in survivors.iter().enumerate() {
        let text = scrape(&cluster, id).await;
        assert!(changes(&text) > before[i], "node {id} saw no leader change");
        let role = if id == new_leader { 2.0 } else { 0.0 };
        assert_eq!(
            sample(&text, "kauri_raft_role", &[]),
            Some(role),
            "node {id}"
        );
    }
}

/// Objects per TLD, balances and replays, as every replica exports them
/// after a known set of commands.
async fn registry_statistics_are_the_same_on_every_node(cluster: &TestCluster) {
    let staff = cluster.client();
    staff
        .create_tld(CreateTldRequest {
            meta: Some(meta("")),
            name: "watch".into(),
            policy: Some(TldPolicy {
                min_period_years: 1,
                max_period_years: 10,
                create_price_minor_units: 1_000,
                renew_price_minor_units: 1_000,
                currency: "USD".into(),
                min_label_length: 1,
                max_label_length: 63,
                allow_idn: false,
                idn: None,
            }),
        })
        .await
        .expect("create tld");
    let deposit = DepositFundsRequest {
        meta: Some(meta("")),
        registrar: "rar-0".into(),
        amount_minor_units: 10_000,
        reference: "wire 1".into(),
    };
    staff.deposit_funds(deposit.clone()).await.expect("deposit");
    // The same request again: answered from the first result, no money moved.
    staff
        .deposit_funds(deposit)
        .await
        .expect("a replayed deposit");
    let registrar = cluster.registrar_client("rar-0");
    registrar
        .create_contact(CreateContactRequest {
            meta: Some(meta("rar-0")),
            id: "watcher".into(),
            fields: Some(kauri_chaos_tests::fixtures::contact_fields(
                "Watch Person",
                "watch@example.nz",
            )),
            auth_info: String::new(),
        })
        .await
        .expect("create contact");
    for name in ["one.watch", "two.watch"] {
        registrar
            .create_domain(CreateDomainRequest {
                meta: Some(meta("rar-0")),
                name: name.into(),
                period_years: 1,
                registrant: "watcher".into(),
                contacts: vec![],
                nameservers: vec![],
                auth_info: String::new(),
                fee: None,
                ds_data: Vec::new(),
            })
            .await
            .expect("create domain");
    }
    cluster.wait_caught_up(Duration::from_secs(30)).await;
    for id in cluster.ids() {
        let text = scrape(cluster, id).await;
        let domains = ["kind=\"domain\"", "tld=\"watch\""];
        assert_eq!(
            sample(&text, "kauri_registry_objects", &domains),
            Some(2.0),
            "node {id}"
        );
        assert_eq!(
            sample(&text, "kauri_registry_objects", &["kind=\"contact\""]),
            Some(1.0),
            "node {id}"
        );
        let balance = ["registrar=\"rar-0\"", "currency=\"USD\""];
        assert_eq!(
            sample(&text, "kauri_registrar_balance_minor_units", &balance),
            Some(8_000.0),
            "node {id}: deposited 10,000 once, two creates at 1,000"
        );
        let replays = sample(&text, "kauri_idempotency_replays_total", &[]).unwrap_or(0.0);
        assert!(replays >= 1.0, "node {id} applied the replayed deposit");
        assert!(
            !text.contains("registrar=\"rar-9\""),
            "no series for registrars that do not exist"
        );
    }
}

/// GETs `path` over HTTPS from `addr`, trusting the cluster's CA and
/// presenting `identity` if given: the status code and the body, or the
/// TLS or I/O error.
async fn get_tls(
    addr: &str,
    path: &str,
    ca: &std::path::Path,
    identity: Option<&kauri_client::tls::TlsFiles>,
) -> Result<(u16, String), String> {
    use kauri_client::tls::{load_certs, load_roots, provider};
    use rustls_pki_types::pem::PemObject;
    let roots = load_roots(ca).map_err(|e| e.to_string())?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(files) => {
            let chain = load_certs("certificate", &files.cert).unwrap();
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let ip: std::net::IpAddr = addr.rsplit_once(':').unwrap().0.parse().unwrap();
    let mut tls = connector
        .connect(rustls_pki_types::ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // A peer closing without close_notify is fine for this check.
    let _ = tls.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {raw:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status code in {head:?}"))?;
    Ok((code, body.to_string()))
}

/// `--metrics-tls`: probes answer anyone over HTTPS, `/metrics` only a
/// monitor, staff or node certificate of the cluster. `--log-format json`:
/// every line one JSON object with the node id and term; the lines about a
/// call carry its method, request id and the registry's transaction ids;
/// no password reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_https_and_json_logs() {
    let cluster = TestCluster::start(
        NODE_BIN,
        3,
        &[
            "--tick-interval-ms",
            "0",
            "--metrics-tls",
            "--log-format",
            "json",
            "--log",
            "info,openraft=warn,kauri_node::security=debug",
        ],
    );
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let (certs, _) = cluster.pki().expect("a TLS cluster");
    let addr = cluster.node(leader).metrics_addr.clone();

    let ready = wait_until(Duration::from_secs(10), "readyz over https", || {
        let (addr, ca) = (addr.clone(), certs.ca.clone());
        async move {
            get_tls(&addr, "/readyz", &ca, None)
                .await
                .ok()
                .filter(|(code, _)| *code == 200)
        }
    })
    .await;
    assert_eq!(ready.1, "ready\n");
    assert_eq!(
        get_tls(&addr, "/healthz", &certs.ca, None).await.unwrap().0,
        200
    );
    let (code, body) = get_tls(&addr, "/metrics", &certs.ca, None).await.unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("no client certificate"), "{body}");
    let (code, body) = get_tls(&addr, "/metrics", &certs.ca, Some(&certs.registrar))
        .await
        .unwrap();
    assert_eq!(
        code, 403,
        "a registrar may not read the finance desk's numbers"
    );
    assert!(body.contains("may not read /metrics"), "{body}");
    let (code, body) = get_tls(&addr, "/metrics", &certs.ca, Some(&certs.monitor))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("# HELP kauri_raft_term"), "{body}");
    // Plain HTTP to the HTTPS listener gets no metrics.
    let plain = tokio::time::timeout(Duration::from_secs(10), async {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = tcp
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        String::from_utf8_lossy(&raw).to_string()
    })
    .await
    .expect("the listener closes a plain-text connection");
    assert!(!plain.contains("kauri_raft_term"), "{plain}");

    // Calls whose log lines carry their ids.
    let staff = cluster.client();
    let m = meta("");
    let cl_trid = m.cl_trid.clone();
    staff
        .create_registrar(CreateRegistrarRequest {
            meta: Some(m),
            id: "logged".into(),
            name: "Logged Registrar".into(),
            password: "never-in-a-log-line".into(),
            currency: "USD".into(),
        })
        .await
        .expect("create registrar");
    cluster.wait_caught_up(Duration::from_secs(30)).await;

    let log = std::fs::read_to_string(&cluster.node(leader).log).unwrap();
    assert!(
        !log.contains("never-in-a-log-line"),
        "a password in the log"
    );
    let mut lines = 0;
    let mut about_the_call = None;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"));
        assert_eq!(value["node_id"], leader, "{line}");
        assert!(value["term"].is_u64(), "{line}");
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
        lines += 1;
        let span = &value["span"];
        if span["cl_trid"] == cl_trid.as_str() {
            about_the_call = Some(value.clone());
        }
    }
    assert!(lines > 3, "{log}");
    let line = about_the_call.unwrap_or_else(|| panic!("no line about the call in {log}"));
    let span = &line["span"];
    assert_eq!(span["method"], "kauri.v1.Admin/CreateRegistrar", "{line}");
    assert!(
        span["sv_trid"].as_str().unwrap().starts_with("kauri-"),
        "{line}"
    );
    assert_eq!(span["request_id"].as_str().unwrap().len(), 16, "{line}");
    assert!(line["term"].as_u64().unwrap() >= 1, "{line}");
}

/// Calls to methods that do not exist, with names an attacker chose, are
/// counted under `unknown`: no label takes request data.
async fn made_up_methods_add_no_series(cluster: &TestCluster, leader: u64) {
    let tls = cluster.staff_tls().expect("a TLS cluster");
    let channel = kauri_client::tls::channel(
        &cluster.node(leader).addr,
        Some(&tls),
        Duration::from_secs(2),
    )
    .unwrap();
    let before = scrape(cluster, leader).await;
    let unknown = [
        "service=\"unknown\"",
        "method=\"unknown\"",
        "code=\"PermissionDenied\"",
    ];
    let count = |text: &str| sample(text, "kauri_grpc_requests_total", &unknown).unwrap_or(0.0);
    let paths = [
        "/kauri.v1.Registry/NoSuchMethod",
        "/evil.Service/Method",
        "/kauri.v1.Registry/Drop\"Tables",
    ];
    let mut sent = 0.0;
    for path in paths {
        let Ok(path) = http::uri::PathAndQuery::try_from(path) else {
            continue;
        };
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.unwrap();
        let answer: Result<tonic::Response<StatusResponse>, _> = grpc
            .unary(
                tonic::Request::new(StatusRequest::default()),
                path,
                tonic_prost::ProstCodec::<StatusRequest, StatusResponse>::default(),
            )
            .await;
        assert_eq!(answer.unwrap_err().code(), tonic::Code::PermissionDenied);
        sent += 1.0;
    }
    assert!(sent >= 2.0);
    let after = scrape(cluster, leader).await;
    assert_eq!(count(&after) - count(&before), sent);
    for word in ["NoSuchMethod", "evil", "Drop"] {
        assert!(!after.contains(word), "a label took request data: {word}");
    }
}

/// A node stopped with SIGTERM while Prometheus-like scrapers hold
/// keep-alive connections to it (and Raft peers talk to it) exits 0 after
/// closing its database: nothing of RocksDB is left running into the
/// process's exit. Repeated, as the failure this guards against was a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_while_scraped_exits_cleanly() {
    let mut cluster = TestCluster::start(NODE_BIN, 3, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    for round in 0..6 {
        for id in cluster.ids() {
            let addr = cluster.node(id).metrics_addr.clone();
            // Keep-alive scrapers that stay connected through the stop.
            let mut scrapers = Vec::new();
            for _ in 0..4 {
                let addr = addr.clone();
                scrapers.push(tokio::spawn(async move {
                    let Ok(mut tcp) = tokio::net::TcpStream::connect(&addr).await else {
                        return;
                    };
                    for _ in 0..200 {
                        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                        if tcp.write_all(request.as_bytes()).await.is_err() {
                            return;
                        }
                        let mut buf = vec![0u8; 64 * 1024];
                        match tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await
                        {
                            Ok(Ok(n)) if n > 0 => {}
                            _ => return,
                        }
                    }
                }));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let status =
                tokio::task::block_in_place(|| cluster.terminate(id, Duration::from_secs(30)))
                    .expect("the node was running");
            assert!(
                status.success(),
                "round {round}: node {id} exited with {status} after SIGTERM; log: {}",
                std::fs::read_to_string(&cluster.node(id).log)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let log = std::fs::read_to_string(&cluster.node(id).log).unwrap_or_default();
            assert!(
                !log.contains("database was still in use"),
                "round {round}: node {id} exited with its database open"
            );
            for s in scrapers {
                s.abort();
            }
            cluster.spawn(id);
            cluster.wait_for_leader(Duration::from_secs(30)).await;
        }
    }
}
