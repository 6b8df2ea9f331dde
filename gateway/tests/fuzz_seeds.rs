//! The fuzz target's seeds and saved regressions, checked without afl
//! (docs/fuzzing.md): every file in gateway/fuzz/seeds/xml/ goes through
//! the same checks as `epp_frames` (gateway/fuzz/src/lib.rs, included
//! here), alone and as a frame; the RFC examples must be XML the gateway
//! reads and the hostile ones must be refused by its XML reader; every
//! file in gateway/fuzz/regressions/ (an input afl saved, a connection's
//! bytes) is replayed as frames.

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod checks;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    files.sort();
    files
}

fn framed(data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn seeds_pass_the_fuzz_checks() {
    let seeds = files(&fuzz_dir().join("seeds/xml"));
    assert!(seeds.len() >= 30, "seeds missing: {seeds:?}");
    let mut rfc = 0;
    for path in &seeds {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(path).unwrap();
        let xml = checks::document(&data);
        if name.starts_with("hostile-") {
            assert!(xml.is_err(), "{name}: the XML reader accepted it");
        } else {
            assert!(
                name.starts_with("rfc"),
                "{name}: neither rfc* nor hostile-*"
            );
            let parsed = xml.unwrap_or_else(|e| panic!("{name}: {e}"));
            // epp::parse may refuse what the gateway does not serve yet;
            // the checks above made sure a refusal renders properly.
            if let Err(r) = &parsed {
                eprintln!("{name}: {} {}", r.code.0, r.detail);
            }
            rfc += 1;
        }
        checks::frames(&framed(&data));
    }
    assert!(rfc >= 25, "only {rfc} RFC examples");
    // Every seed on one connection, then a frame cut short.
    let mut session: Vec<u8> = seeds
        .iter()
        .flat_map(|p| framed(&std::fs::read(p).unwrap()))
        .collect();
    session.extend_from_slice(&100u32.to_be_bytes());
    session.extend_from_slice(b"<epp");
    checks::frames(&session);
}

#[test]
fn framing_edges_pass_the_fuzz_checks() {
    for input in [
        &b""[..],
        b"\x00\x00",
        b"\x00\x00\x00\x02",
        b"\x00\x00\x00\x04",
        b"\x00\x01\x00\x01<epp/>",
        b"\xff\xff\xff\xff",
        b"\x00\x00\x00\x0a<epp/>\x00\x00\x00\x04\x00\x00\x00\x09<epp",
    ] {
        checks::frames(input);
    }
}

#[test]
fn saved_regressions_pass_the_fuzz_checks() {
    for path in files(&fuzz_dir().join("regressions")) {
        let data = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        checks::frames(&data);
    }
}
