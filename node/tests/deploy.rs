//! deploy/ against the tools that read it and against `kauri-node`
//! itself: the systemd unit passes `systemd-analyze verify`, the compose
//! file the Compose specification's schema, the Kubernetes manifests
//! Kubernetes' schemas, and every setting anywhere under deploy/ is a flag
//! or environment variable `kauri-node --help` or `kauri-gateway --help`
//! lists, so the examples cannot drift from the binaries.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{assert_success, monitoring_tools, repo_root, run};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

/// The path the shipped unit starts kauri-node from.
const INSTALLED_BIN: &str = "/usr/local/bin/kauri-node";

fn deploy(path: &str) -> PathBuf {
    repo_root().join("deploy").join(path)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    monitoring_tools();
    let unit = std::fs::read_to_string(deploy("systemd/kauri-node@.service"))
        .expect("read deploy/systemd/kauri-node@.service");
    // verify checks that ExecStart exists: point it at this build's binary.
    assert!(
        unit.contains(&format!("ExecStart={INSTALLED_BIN}")),
        "{unit}"
    );
    let dir = tempfile::tempdir().expect("create a temp dir");
    let copy = dir.path().join("kauri-node@.service");
    std::fs::write(&copy, unit.replace(INSTALLED_BIN, NODE_BIN)).expect("write the unit");
    let out = run("systemd-analyze", &["verify", path_str(&copy)], None);
    assert_success("systemd-analyze verify kauri-node@.service", &out);
    assert!(
        out.stderr.is_empty(),
        "systemd-analyze verify complained:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_compose_file_matches_the_compose_specification() {
    let venv = monitoring_tools();
    let compose = deploy("compose/compose.yml");
    let out = run(
        path_str(&venv.join("bin/check-jsonschema")),
        &[
            "--builtin-schema",
            "vendor.compose-spec",
            path_str(&compose),
        ],
        None,
    );
    assert_success(
        "check-jsonschema (compose-spec) deploy/compose/compose.yml",
        &out,
    );

    // Every file or directory it mounts from the repository exists.
    let text = std::fs::read_to_string(&compose).expect("read compose.yml");
    let mounts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|v| v.starts_with("./") || v.starts_with("../"))
        .filter_map(|v| v.split(':').next())
        .collect();
    assert!(mounts.len() >= 3, "{mounts:?}");
    for mount in mounts {
        let path = deploy("compose").join(mount);
        assert!(
            path.exists(),
            "compose.yml mounts {mount}, which does not exist"
        );
    }
}

#[test]
fn the_kubernetes_manifests_match_the_kubernetes_schemas() {
    let venv = monitoring_tools();
    let out = run(
        path_str(&venv.join("bin/kubernetes-validate")),
        &["--strict", path_str(&deploy("kubernetes/kauri.yaml"))],
        None,
    );
    assert_success(
        "kubernetes-validate --strict deploy/kubernetes/kauri.yaml",
        &out,
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `--flag` tokens of a line (without values: `--a=b` gives `--a`).
fn flags(line: &str) -> Vec<String> {
    line.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | ')' | ','))
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split('=').next().unwrap_or(w))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_lowercase()))
        .map(|w| format!("--{}", w.trim_end_matches(['.', ':', ';'])))
        .collect()
}

/// `KAURI_*` names in a line.
fn kauri_vars(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("KAURI_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if end > "KAURI_".len() {
            out.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// The flags and variables of `kauri-gateway --help`: the gateway binary
/// the workspace build puts beside kauri-node.
fn gateway_settings() -> (BTreeSet<String>, BTreeSet<String>) {
    let bin = std::path::Path::new(NODE_BIN).with_file_name("kauri-gateway");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace tests (cargo test --workspace) or cargo build -p kauri-gateway first",
        bin.display()
    );
    let help = run(bin.to_str().expect("a UTF-8 path"), &["--help"], None);
    assert_success("kauri-gateway --help", &help);
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let flags = help.lines().flat_map(flags).collect();
    let vars = help
        .split("[env: ")
        .skip(1)
        .filter_map(|s| s.split(['=', ']']).next())
        .map(str::to_string)
        .collect();
    (flags, vars)
}

#[test]
fn every_kauri_node_setting_under_deploy_is_one_kauri_node_takes() {
    monitoring_tools();
    let help = run(NODE_BIN, &["--help"], None);
    assert_success("kauri-node --help", &help);
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let node_flags: BTreeSet<String> = help.lines().flat_map(flags).collect();
    let node_vars: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|s| s.split(['=', ']']).next())
        .map(str::to_string)
        .collect();
    assert!(node_vars.contains("KAURI_PEERS"), "{help}");
    let (gateway_flags, gateway_vars) = gateway_settings();
    assert!(
        gateway_vars.contains("KAURI_ENDPOINTS") && gateway_flags.contains("--endpoints"),
        "kauri-gateway --help: {gateway_flags:?} {gateway_vars:?}"
    );
    // KAURI_LOG is the log filter both main.rs read, not a flag.
    for main in ["node/src/main.rs", "gateway/src/main.rs"] {
        let text = std::fs::read_to_string(repo_root().join(main)).expect("main.rs");
        assert!(
            text.contains("\"KAURI_LOG\""),
            "{main} no longer reads KAURI_LOG"
        );
    }
    let prometheus = run("prometheus", &["--help"], None);
    let prometheus_flags: BTreeSet<String> = String::from_utf8_lossy(&prometheus.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&prometheus.stdout).lines())
        .flat_map(flags)
        .collect();
    assert!(
        prometheus_flags.contains("--config.file"),
        "prometheus --help"
    );

    let mut files = Vec::new();
    files_under(&repo_root().join("deploy"), &mut files);
    let mut wrong = Vec::new();
    let mut seen_vars = 0;
    for file in files {
        // The image build's and monitoring's own files configure other tools.
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("Dockerfile") || name.ends_with(".json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let shown = file
            .strip_prefix(repo_root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            for var in kauri_vars(line) {
                seen_vars += 1;
                if !node_vars.contains(&var) && !gateway_vars.contains(&var) && var != "KAURI_LOG" {
                    wrong.push(format!("{shown}:{}: {var}", n + 1));
                }
            }
            // Lines that run another program carry that program's flags.
            let other = ["kauri dev", "kubectl", "docker", "systemctl", "promtool"];
            if other.iter().any(|p| line.contains(p)) {
                continue;
            }
            for flag in flags(line) {
                let known = if flag.contains('.') {
                    prometheus_flags.contains(&flag)
                } else {
                    node_flags.contains(&flag) || gateway_flags.contains(&flag)
                };
                if !known {
                    wrong.push(format!("{shown}:{}: {flag}", n + 1));
                }
            }
        }
    }
    assert!(
        seen_vars > 20,
        "only {seen_vars} KAURI_* settings found under deploy/"
    );
    assert!(
        wrong.is_empty(),
        "settings under deploy/ that neither kauri-node nor kauri-gateway (nor prometheus) takes:\n  {}",
        wrong.join("\n  ")
    );
}
