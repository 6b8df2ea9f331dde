//! What the fuzz target `epp_frames` checks on each input, in one place:
//! the afl binary calls [`frames`], and `gateway/tests/fuzz_seeds.rs`
//! includes this file as a module, so that the seeds and every saved
//! regression are checked the same way by `cargo test` without afl.
//!
//! An input is what a client sends on one connection: RFC 5734 frames one
//! after another. Each frame's data goes through the gateway's refusal
//! path as the server runs it: `xml::parse`, then `epp::parse`, and for a
//! refusal the response the client would get. The property is that none
//! of it panics, waits or grows without bound, and that these hold:
//!
//! - framing: a frame takes exactly its header and the length it states,
//!   no more than the limit; reading stops only where the bytes say so;
//! - XML: an accepted document has at most `xml::MAX_ELEMENTS` elements
//!   nested at most `xml::MAX_DEPTH` deep, every element and attribute has
//!   a name, namespace bindings are not attributes, text is trimmed;
//! - EPP: a command is only read from `<epp>` in the EPP namespace; a
//!   refusal carries an EPP error code (2000-2502) and a clTRID only when
//!   it is one (3 to 64 characters, no spaces);
//! - the refusal's response is XML 1.0 (no character XML forbids) that the
//!   gateway's own reader accepts, with the message and clTRID intact.
//!
//! While a finding is open, `KAURI_FUZZ_SKIP` (comma-separated) leaves its
//! check out so that a run can look for others: `xml-chars` skips the
//! check that the response holds only XML 1.0 characters, `element-names`
//! the check that every element has a name.

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use kauri_gateway::codes::{self, Code};
use kauri_gateway::epp::{self, Parsed, Refusal};
use kauri_gateway::frame::{self, FrameError};
use kauri_gateway::render::{Response, EPP_NS};
use kauri_gateway::xml::{self, Element, XmlError};

/// The frame limit: the gateway's default `--max-frame-bytes`.
pub const MAX_FRAME_BYTES: u32 = 65_536;

/// Reads `input` as one connection's bytes: frame after frame until the
/// framing stops (as the server closes the connection), each frame's data
/// through [`document`].
pub fn frames(input: &[u8]) {
    let mut rest = input;
    loop {
        let before = rest.len();
        let header = rest
            .get(..frame::HEADER_BYTES as usize)
            .map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        match ready(frame::read(&mut rest, MAX_FRAME_BYTES)) {
            Ok(data) => {
                let Some(len) = header else {
                    panic!("a frame was read from {before} bytes, less than a header");
                };
                assert!(
                    len <= MAX_FRAME_BYTES,
                    "a frame of {len} bytes passed the {MAX_FRAME_BYTES}-byte limit"
                );
                assert_eq!(
                    data.len() as u64 + u64::from(frame::HEADER_BYTES),
                    u64::from(len),
                    "the data is not the length the header states"
                );
                assert_eq!(
                    before - rest.len(),
                    len as usize,
                    "reading a frame took other than its header and data"
                );
                let _ = document(&data);
            }
            Err(e) => {
                match header {
                    None => assert!(
                        matches!(e, FrameError::Closed),
                        "{before} bytes left (less than a header) gave {e:?}"
                    ),
                    Some(len) if len < frame::HEADER_BYTES => assert!(
                        matches!(e, FrameError::TooShort(l) if l == len),
                        "length {len} gave {e:?}"
                    ),
                    Some(len) if len > MAX_FRAME_BYTES => assert!(
                        matches!(e, FrameError::TooLong { len: l, max } if l == len && max == MAX_FRAME_BYTES),
                        "length {len} gave {e:?}"
                    ),
                    Some(len) => assert!(
                        matches!(e, FrameError::Io(_)) && before < len as usize,
                        "length {len} with {before} bytes left gave {e:?}"
                    ),
                }
                return;
            }
        }
    }
}

/// One frame's data through the server's path: the XML, the command, and
/// for a refusal the response. Returns what the two parsers said.
pub fn document(data: &[u8]) -> Result<Result<Parsed, Refusal>, XmlError> {
    let root = match xml::parse(data) {
        Ok(root) => root,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an XML error without a message");
            // What the server answers to a frame that is not XML.
            refusal(&Refusal {
                code: Code::SYNTAX_ERROR,
                detail: e.to_string(),
                cl_trid: None,
            });
            return Err(e);
        }
    };
    tree(&root);
    let parsed = epp::parse(&root);
    match &parsed {
        Ok(p) => {
            assert!(
                root.ns == EPP_NS && root.name == "epp",
                "a command was read from {}",
                root.qualified()
            );
            if let Some(id) = &p.cl_trid {
                cl_trid(id);
            }
        }
        Err(r) => refusal(r),
    }
    Ok(parsed)
}

/// Polls `f` once: reading from a byte slice never waits.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("reading frames from a byte slice waited"),
    }
}

/// The bounds and shape of an accepted document.
fn tree(root: &Element) {
    let mut count = 0usize;
    let mut pending = vec![(root, 1usize)];
    while let Some((e, depth)) = pending.pop() {
        count += 1;
        assert!(
            count <= xml::MAX_ELEMENTS,
            "more than {} elements were accepted",
            xml::MAX_ELEMENTS
        );
        assert!(
            depth <= xml::MAX_DEPTH,
            "{} nested {depth} deep was accepted (limit {})",
            e.qualified(),
            xml::MAX_DEPTH
        );
        assert!(
            !e.name.is_empty() || skipped("element-names"),
            "an element without a name was accepted"
        );
        assert_eq!(
            e.text,
            e.text.trim(),
            "the text of {} is not trimmed",
            e.qualified()
        );
        for (key, _) in &e.attrs {
            assert!(
                !key.is_empty(),
                "an attribute without a name on {}",
                e.qualified()
            );
            assert!(
                key != "xmlns" && !key.starts_with("xmlns:"),
                "the namespace binding {key} is kept as an attribute"
            );
        }
        pending.extend(e.children.iter().map(|c| (c, depth + 1)));
    }
}

/// A clTRID as RFC 5730 allows it (and the gateway checks it).
fn cl_trid(id: &str) {
    let n = id.chars().count();
    assert!(
        (3..=64).contains(&n) && !id.chars().any(|c| c.is_whitespace() || c.is_control()),
        "clTRID {id:?} was accepted"
    );
}

/// A refusal's code and clTRID, and the response the server renders for
/// it (as `Server::answer` does).
fn refusal(r: &Refusal) {
    assert!(
        r.code.0 >= 2000 && codes::DEFINED.contains(&r.code.0),
        "refused with code {}",
        r.code.0
    );
    if let Some(id) = &r.cl_trid {
        cl_trid(id);
    }
    let rendered = Response::new(r.code, r.cl_trid.clone(), "fuzz-sv-1".into())
        .detail(r.detail.clone())
        .render();
    let forbidden = rendered.chars().find(|&c| !xml_char(c));
    if let Some(c) = forbidden.filter(|_| !skipped("xml-chars")) {
        panic!("the response to a refusal holds {c:?}, which XML 1.0 forbids: {rendered:?}");
    }
    let doc = match xml::parse(rendered.as_bytes()) {
        Ok(doc) => doc,
        Err(e) => panic!("the response to a refusal is not XML ({e}): {rendered:?}"),
    };
    let result = doc
        .child(EPP_NS, "response")
        .and_then(|res| res.child(EPP_NS, "result"));
    let Some(result) = result else {
        panic!("no <response><result> in {rendered:?}");
    };
    assert_eq!(result.attr("code"), Some(r.code.0.to_string().as_str()));
    // What XML cannot carry is sent as U+FFFD (xml::escape).
    let msg: String = format!("{}: {}", r.code.message(), r.detail)
        .chars()
        .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
        .collect();
    assert_eq!(
        result.child_text(EPP_NS, "msg"),
        Some(msg.trim()),
        "the message did not survive rendering"
    );
    let sent = doc
        .child(EPP_NS, "response")
        .and_then(|res| res.child(EPP_NS, "trID"))
        .and_then(|t| t.child_text(EPP_NS, "clTRID"));
    assert_eq!(
        sent,
        r.cl_trid.as_deref(),
        "the clTRID did not survive rendering"
    );
}

/// Whether `KAURI_FUZZ_SKIP` names `check`.
fn skipped(check: &str) -> bool {
    static SKIP: OnceLock<String> = OnceLock::new();
    SKIP.get_or_init(|| std::env::var("KAURI_FUZZ_SKIP").unwrap_or_default())
        .split(',')
        .any(|c| c.trim() == check)
}

/// XML 1.0's `Char` production (surrogates are not `char`s).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}
