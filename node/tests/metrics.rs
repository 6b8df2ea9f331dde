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
            fields: Some(ContactFields {
                postal_info: vec![PostalInfo {
                    r#type: "int".into(),
                    name: "Watch Person".into(),
                    org: String::new(),
                    address: Some(PostalAddress {
                        street: vec!["1 Queen St".into()],
                        city: "Auckland".into(),
                        state_province: String::new(),
                        postal_code: "1010".into(),
                        country_code: "NZ".into(),
                    }),
                }],
                voice: "+64.93001234".into(),
                fax: String::new(),
                email: "watch@example.nz".into(),
                disclose_nothing: false,
            }),
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
