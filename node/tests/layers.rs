//! The registry's modules are layered: `node/src/registry/mod.rs` declares
//! them lowest layer first, and a module may use only modules declared
//! before it. This test reads the sources and fails on any use of a module
//! declared later (which is also what would let a circle of imports form),
//! naming the file and the module it reaches up to.
//!
//! `cargo test -p kauri-node --test layers -- --nocapture` prints the
//! import graph.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn registry_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/registry")
}

/// The module declarations of `mod.rs`, in order, without the tests.
fn declared_modules(mod_rs: &str) -> Vec<String> {
    let mut modules = Vec::new();
    let mut cfg_test = false;
    for line in mod_rs.lines().map(str::trim) {
        if line == "#[cfg(test)]" {
            cfg_test = true;
            continue;
        }
        let decl = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("pub(crate) mod "))
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = decl.and_then(|d| d.strip_suffix(';')) {
            if !cfg_test {
                modules.push(name.to_string());
            }
        }
        cfg_test = false;
    }
    modules
}

/// The source of a module (`m.rs`, or `m/mod.rs` and the files beside
/// it) without comments and without unit tests.
fn production_source(module: &str) -> String {
    let dir = registry_dir();
    let file = dir.join(format!("{module}.rs"));
    let files = if file.exists() {
        vec![file]
    } else {
        let sub = dir.join(module);
        let mut files: Vec<PathBuf> = fs::read_dir(&sub)
            .unwrap_or_else(|e| panic!("{}: {e}", sub.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        files
    };
    let mut source = String::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        for line in text.lines() {
            source.push_str(match line.find("//") {
                Some(i) => &line[..i],
                None => line,
            });
            source.push('\n');
        }
    }
    source
}

/// The sibling modules `source` refers to: `super::m`, `super::{m, ...}`
/// and `crate::registry::m`.
fn references(source: &str, modules: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    for prefix in ["super::", "crate::registry::"] {
        for (i, _) in source.match_indices(prefix) {
            let rest = &source[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    found.insert(ident(item.trim()));
                }
            } else {
                found.insert(ident(rest));
            }
        }
    }
    found.retain(|m| modules.contains(m.as_str()));
    found
}

#[test]
fn registry_modules_use_only_the_layers_below_them() {
    let mod_rs = fs::read_to_string(registry_dir().join("mod.rs")).expect("mod.rs");
    let order = declared_modules(&mod_rs);
    assert!(
        order.len() >= 20,
        "found only {} module declarations in mod.rs: {order:?}",
        order.len()
    );
    let all: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    let mut violations = Vec::new();
    let mut edges = 0;
    for (rank, module) in order.iter().enumerate() {
        let uses = references(&production_source(module), &all);
        edges += uses.len();
        println!(
            "{module} -> {}",
            uses.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for used in &uses {
            let used_rank = order.iter().position(|m| m == used).expect("declared");
            if used_rank >= rank && used != module {
                violations.push(format!(
                    "{module}.rs uses {used}, which mod.rs declares in the same place or \
                     above it (move the shared code down a layer)"
                ));
            }
        }
    }
    println!("{} modules, {edges} imports between them", order.len());
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_upward_imports() {
    let modules: BTreeSet<&str> = ["engine", "apply", "model"].into_iter().collect();
    let source = "use super::engine::Cf;\nuse super::{apply, model::X};\nlet x = crate::registry::apply::f();";
    let found = references(source, &modules);
    assert_eq!(
        found,
        ["apply", "engine", "model"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let decls = declared_modules("pub mod a;\nmod b;\n#[cfg(test)]\nmod tests;\n");
    assert_eq!(decls, ["a", "b"]);
}
