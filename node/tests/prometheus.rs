//! The shipped monitoring (deploy/prometheus, deploy/grafana) against the
//! tools that run it and a live cluster: promtool accepts the config and
//! the rules and passes their unit tests; a live scrape is clean for
//! `promtool check metrics` and holds every metric the rules and the
//! dashboard use; and a real Prometheus with the shipped config and rules
//! fires the node-down alert for a killed node and resolves it when the
//! node returns.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kauri_chaos_tests::{wait_until, TestCluster};
use kauri_client::proto::*;
use kauri_client::{linearizable, meta, KauriClient};
use support::{assert_success, http_get, monitoring_tools, repo_root, run, Prometheus};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

/// The alert the kill test waits for, and its `for:` in the shipped rules.
const NODE_DOWN: &str = "KauriNodeDown";

fn shipped(path: &str) -> String {
    repo_root()
        .join("deploy/prometheus")
        .join(path)
        .display()
        .to_string()
}

/// The alert names of the shipped rules file, in order.
fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn promtool_accepts_the_shipped_config_and_rules_and_their_unit_tests() {
    monitoring_tools();
    let config = run(
        "promtool",
        &["check", "config", &shipped("prometheus.yml")],
        None,
    );
    assert_success(
        "promtool check config deploy/prometheus/prometheus.yml",
        &config,
    );
    let rules = run(
        "promtool",
        &["check", "rules", &shipped("rules/kauri-alerts.yml")],
        None,
    );
    assert_success("promtool check rules", &rules);
    let tests = run(
        "promtool",
        &["test", "rules", &shipped("tests/kauri-alerts.test.yml")],
        None,
    );
    assert_success("promtool test rules", &tests);

    // Every alert is tested both firing and quiet.
    let names = alert_names(
        &std::fs::read_to_string(shipped("rules/kauri-alerts.yml")).expect("read the rules"),
    );
    assert!(names.len() >= 12, "{names:?}");
    let test_file =
        std::fs::read_to_string(shipped("tests/kauri-alerts.test.yml")).expect("read the tests");
    let (mut fires, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    let mut alert = None;
    for line in test_file.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            alert = Some(name.trim().to_string());
        } else if let Some(expected) = line.strip_prefix("exp_alerts:") {
            let name = alert.take().expect("exp_alerts follows an alertname");
            if expected.trim() == "[]" {
                quiet.insert(name);
            } else {
                fires.insert(name);
            }
        }
    }
    for name in &names {
        assert!(fires.contains(name), "no test shows {name} firing");
        assert!(quiet.contains(name), "no test shows {name} quiet");
    }
}

/// Metric names in a PromQL expression: identifiers outside string
/// literals that start with `kauri_`, and `up`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if matches!(c, '"' | '\'' | '`') {
            // Skip the literal, honouring backslash escapes.
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                match d {
                    _ if escaped => escaped = false,
                    '\\' if c != '`' => escaped = true,
                    _ if d == c => break,
                    _ => {}
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    end = i + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expr[start..end];
            // A `$variable` of Grafana is not a metric.
            let after_dollar = start > 0 && expr[..start].ends_with('$');
            if !after_dollar && (word.starts_with("kauri_") || word == "up") {
                names.insert(word.to_string());
            }
        }
    }
    names
}

/// Every PromQL string in the dashboard JSON: `expr` of targets and
/// `query`/`definition` of template variables, wherever they nest.
fn dashboard_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        // A data-source variable's `query` is a plugin type, not PromQL.
        serde_json::Value::Object(map) if map.get("type").is_some_and(|t| t == "datasource") => {}
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::Object(q)) => {
                        if let Some(serde_json::Value::String(s)) = q.get("query") {
                            out.push(s.clone());
                        }
                    }
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// A dashboard query as Prometheus would get it from Grafana: variables
/// filled in, and a `label_values(SELECTOR, LABEL)` variable query
/// reduced to its selector.
fn grafana_to_promql(expr: &str) -> String {
    let expr = expr
        .replace("$__rate_interval", "1m")
        .replace("$job", "kauri")
        .replace("$instance", ".*");
    match expr
        .strip_prefix("label_values(")
        .and_then(|rest| rest.rsplit_once(','))
    {
        Some((selector, _label)) => selector.to_string(),
        None => expr,
    }
}

/// Percent-encodes `s` for a URL query value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The metric names of the samples in a scrape.
fn scraped_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// GitHub's anchors of the headings of a Markdown file.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

async fn scrape(cluster: &TestCluster, id: u64) -> String {
    let addr = cluster.node(id).metrics_addr.clone();
    wait_until(Duration::from_secs(10), "a scrape of /metrics", || {
        let addr = addr.clone();
        async move {
            match http_get(&addr, "/metrics").await {
                Some((200, body)) => Some(body),
                _ => None,
            }
        }
    })
    .await
}

fn create_domain_request(name: &str) -> CreateDomainRequest {
    CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: name.into(),
        period_years: 1,
        registrant: "owner".into(),
        contacts: vec![],
        nameservers: vec![],
        auth_info: String::new(),
        fee: None,
        ds_data: Vec::new(),
    }
}

/// Enough registry work that every kind of metric has a sample: a TLD, a
/// funded registrar, a contact, domains (one create retried with the same
/// client transaction id), a year passing on the test clock (auto-renews),
/// snapshots on every node, and a wiped follower rebuilt from one.
async fn exercise(cluster: &mut TestCluster, leader: u64) {
    let staff = cluster.client();
    let reg1: KauriClient = cluster.registrar_client("reg1");
    kauri_chaos_tests::fixtures::registry_with_reg1(
        &staff,
        &reg1,
        "test",
        kauri_chaos_tests::fixtures::tld_policy("USD", 500),
        1_000_000,
    )
    .await;
    for i in 0..5 {
        reg1.create_domain(create_domain_request(&format!("watch-{i}.test")))
            .await
            .expect("create a domain");
    }
    // The same request again is answered from the idempotency record.
    let once = create_domain_request("retried.test");
    let first = reg1.create_domain(once.clone()).await.expect("create");
    let again = reg1.create_domain(once).await.expect("the retry");
    let (first, again) = (first.tx.expect("tx info"), again.tx.expect("tx info"));
    assert_eq!(
        first.sv_trid, again.sv_trid,
        "a retry returns the original answer"
    );
    assert!(again.replayed, "and says it is a replay");
    // A rejection and a read, for the code and method labels.
    assert!(reg1
        .create_domain(create_domain_request("watch-0.test"))
        .await
        .is_err());
    reg1.info_domain(InfoRequest {
        registrar: "reg1".into(),
        name: "watch-0.test".into(),
        read: linearizable(),
    })
    .await
    .expect("read a domain");

    // A year and a bit passes: the leader's ticks auto-renew the domains.
    for addr in cluster.endpoints() {
        staff
            .advance_test_clock_at(&addr, 400 * 86_400_000)
            .await
            .expect("the test clock moves");
    }
    wait_until(Duration::from_secs(30), "the domains to auto-renew", || {
        let reg1 = reg1.clone();
        async move {
            let d = reg1
                .info_domain(InfoRequest {
                    registrar: "reg1".into(),
                    name: "watch-1.test".into(),
                    read: linearizable(),
                })
                .await
                .ok()?;
            let expiry = d.domain?.expiry_ms;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis() as i64;
            (expiry > now + 365 * 86_400_000).then_some(())
        }
    })
    .await;

    // Snapshots everywhere; the leader purges its log, so a wiped follower
    // comes back only by installing one.
    let applied = cluster.status(leader).await.expect("status").applied_index;
    for id in cluster.ids() {
        staff
            .snapshot(&cluster.node(id).addr)
            .await
            .expect("build a snapshot");
    }
    let leader_addr = cluster.node(leader).addr.clone();
    wait_until(
        Duration::from_secs(30),
        "the leader to purge its log",
        || {
            let staff = staff.clone();
            let addr = leader_addr.clone();
            async move {
                let s = staff.cluster_status(&addr).await.ok()?;
                (s.purged_index >= applied).then_some(())
            }
        },
    )
    .await;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    cluster.kill(follower);
    cluster.wipe(follower);
    cluster.spawn_with(follower, &["--recover"]);
    cluster
        .wait_for_applied(follower, applied, Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_scrape_is_clean_and_has_every_metric_the_rules_and_dashboard_use() {
    monitoring_tools();
    let started = Instant::now();
    let mut cluster = TestCluster::start(
        NODE_BIN,
        3,
        &[
            "--test-clock",
            "--snapshot-every",
            "1000000",
            "--keep-logs",
            "0",
        ],
    );
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    exercise(&mut cluster, leader).await;
    cluster.wait_caught_up(Duration::from_secs(30)).await;

    // Every node's scrape passes promtool's lint.
    let mut live = BTreeSet::from(["up".to_string()]);
    for id in cluster.ids() {
        let text = scrape(&cluster, id).await;
        let lint = run("promtool", &["check", "metrics"], Some(text.as_bytes()));
        assert!(
            lint.status.success(),
            "promtool check metrics on node {id}'s /metrics:\n{}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        live.extend(scraped_names(&text));
    }

    // The rules as Prometheus itself parsed them: each alert with a
    // severity, a summary, a description and a runbook section that exists.
    let targets: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.node(id).metrics_addr.clone())
        .collect();
    let prometheus = Prometheus::start(&targets).await;
    let groups = prometheus.api("/api/v1/rules").await;
    let operations = std::fs::read_to_string(repo_root().join("docs/operations.md"))
        .expect("read docs/operations.md");
    let sections = anchors(&operations);
    let mut used: Vec<(String, String)> = Vec::new();
    let mut alerts = 0;
    for group in groups["groups"].as_array().expect("rule groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["name"].as_str().expect("a rule name").to_string();
            let expr = rule["query"].as_str().expect("a rule query");
            used.extend(metric_names(expr).into_iter().map(|m| (m, name.clone())));
            if rule["type"] != "alerting" {
                continue;
            }
            alerts += 1;
            let severity = rule["labels"]["severity"].as_str().unwrap_or("");
            assert!(
                ["critical", "warning"].contains(&severity),
                "{name}: severity {severity:?}"
            );
            for key in ["summary", "description", "runbook"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name} has no {key} annotation"
                );
            }
            let runbook = rule["annotations"]["runbook"].as_str().unwrap_or("");
            let anchor = runbook
                .strip_prefix("docs/operations.md#")
                .unwrap_or_else(|| {
                    panic!("{name}: runbook {runbook:?} is not in docs/operations.md")
                });
            assert!(
                sections.contains(anchor),
                "{name}: docs/operations.md has no section #{anchor}"
            );
        }
    }
    assert!(alerts >= 12, "{alerts} alerts loaded");

    let dashboards = repo_root().join("deploy/grafana");
    let mut dashboard_count = 0;
    for entry in std::fs::read_dir(&dashboards).expect("read deploy/grafana") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        dashboard_count += 1;
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read a dashboard"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut exprs = Vec::new();
        dashboard_exprs(&json, &mut exprs);
        let file = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .to_string();
        for expr in exprs {
            used.extend(metric_names(&expr).into_iter().map(|m| (m, file.clone())));
            // Prometheus parses it once Grafana's variables are filled in.
            let query = grafana_to_promql(&expr);
            let (code, body) = http_get(
                &prometheus.addr,
                &format!("/api/v1/query?query={}", percent_encode(&query)),
            )
            .await
            .expect("prometheus answers a query");
            assert_eq!(code, 200, "{file}: {expr}\n{body}");
        }
    }
    assert!(dashboard_count >= 1, "no dashboard in deploy/grafana");
    drop(prometheus);

    let missing: BTreeSet<String> = used
        .iter()
        .filter(|(metric, _)| !live.contains(metric))
        .map(|(metric, by)| format!("{metric} (used by {by})"))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics used by deploy/ but absent from every node's live scrape:\n  {}",
        missing.into_iter().collect::<Vec<_>>().join("\n  ")
    );
    eprintln!("scrape and names checked in {:?}", started.elapsed());
}

/// The active alerts named `alert` for `instance`, by state.
async fn alert_state(prometheus: &Prometheus, alert: &str, instance: &str) -> Option<String> {
    let data = prometheus.api("/api/v1/alerts").await;
    data["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == alert && a["labels"]["instance"] == instance)
        .and_then(|a| a["state"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_fires_node_down_and_its_restart_resolves_it() {
    monitoring_tools();
    let started = Instant::now();
    let mut cluster = TestCluster::start(NODE_BIN, 3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let targets: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.node(id).metrics_addr.clone())
        .collect();
    let prometheus = Prometheus::start(&targets).await;

    // All three targets up.
    wait_until(Duration::from_secs(60), "every target up", || {
        let prometheus = &prometheus;
        let targets = &targets;
        async move {
            let data = prometheus.api("/api/v1/targets").await;
            let up: BTreeSet<String> = data["activeTargets"]
                .as_array()?
                .iter()
                .filter(|t| t["health"] == "up" && t["labels"]["job"] == "kauri")
                .filter_map(|t| t["labels"]["instance"].as_str().map(str::to_string))
                .collect();
            targets.iter().all(|t| up.contains(t)).then_some(())
        }
    })
    .await;
    assert_eq!(alert_state(&prometheus, NODE_DOWN, &targets[0]).await, None);

    // A follower dies: after the rule's minute its alert fires.
    let victim = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let instance = cluster.node(victim).metrics_addr.clone();
    cluster.kill(victim);
    let killed = Instant::now();
    wait_until(
        Duration::from_secs(150),
        "KauriNodeDown firing for the killed node",
        || {
            let prometheus = &prometheus;
            let instance = &instance;
            async move {
                (alert_state(prometheus, NODE_DOWN, instance)
                    .await
                    .as_deref()
                    == Some("firing"))
                .then_some(())
            }
        },
    )
    .await;
    let fired_after = killed.elapsed();
    assert!(
        fired_after >= Duration::from_secs(55),
        "fired after {fired_after:?}, before the rule's `for: 1m`"
    );
    // Only the dead node is down.
    for other in targets.iter().filter(|t| **t != instance) {
        assert_eq!(alert_state(&prometheus, NODE_DOWN, other).await, None);
    }

    // It comes back: the alert resolves.
    cluster.spawn(victim);
    let restarted = Instant::now();
    wait_until(Duration::from_secs(60), "KauriNodeDown to resolve", || {
        let prometheus = &prometheus;
        let instance = &instance;
        async move {
            alert_state(prometheus, NODE_DOWN, instance)
                .await
                .is_none()
                .then_some(())
        }
    })
    .await;
    eprintln!(
        "{NODE_DOWN} fired {fired_after:?} after the kill, resolved {:?} after the restart; test took {:?}",
        restarted.elapsed(),
        started.elapsed()
    );
}
