//! A small, hostile-input-safe XML reader for EPP frames: the frame becomes
//! a tree of [`Element`]s with resolved namespaces.
//!
//! What an attacker could use is refused before anything is built: a
//! document type declaration (and so every entity definition, external or
//! not: no XML bomb, no external entity), processing instructions other
//! than the XML declaration, entity references other than the five
//! predefined ones and character references, unbound namespace prefixes,
//! nesting deeper than [`MAX_DEPTH`] and more than [`MAX_ELEMENTS`]
//! elements. The frame's size is bounded by the framing already.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Deepest nesting accepted (EPP commands nest about eight deep).
pub const MAX_DEPTH: usize = 32;
/// Most elements in one frame.
pub const MAX_ELEMENTS: usize = 10_000;

/// One element: its namespace and local name, attributes (unqualified
/// ones by local name; qualified ones as `{namespace}name`), the text
/// directly inside it, and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The namespace URI (empty when unbound).
    pub ns: String,
    /// The local name.
    pub name: String,
    /// Attributes in document order.
    pub attrs: Vec<(String, String)>,
    /// Character data directly inside, concatenated, trimmed.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child in namespace `ns` called `name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    /// Every child in namespace `ns` called `name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == ns && c.name == name)
    }

    /// The text of the first child `name` in `ns`.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name).map(|c| c.text.as_str())
    }

    /// The value of unqualified attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `{ns}name`, as messages show an element.
    pub fn qualified(&self) -> String {
        if self.ns.is_empty() {
            self.name.clone()
        } else {
            format!("{{{}}}{}", self.ns, self.name)
        }
    }
}

/// Why a frame is not acceptable XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed (or not UTF-8).
    #[error("not well-formed XML: {0}")]
    Malformed(String),
    /// A construct EPP does not need and an attacker could use.
    #[error("{0} is not accepted")]
    Refused(&'static str),
    /// Too deep or too many elements.
    #[error("the document is too large: {0}")]
    TooLarge(String),
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

fn namespace(resolved: ResolveResult<'_>) -> Result<String, XmlError> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(XmlError::Malformed(format!(
            "namespace prefix {:?} is not bound",
            String::from_utf8_lossy(&prefix)
        ))),
    }
}

/// Parses `bytes` (one EPP frame) into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        // The namespace is resolved (and copied) for start tags only: the
        // other events have none to give.
        let (resolved, event) = reader.read_resolved_event().map_err(malformed)?;
        match event {
            Event::Start(start) => {
                let ns = namespace(resolved)?;
                let element = open(&reader, ns, &start, &mut count, stack.len())?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let ns = namespace(resolved)?;
                let element = open(&reader, ns, &start, &mut count, stack.len())?;
                close(element, &mut stack, &mut root)?;
            }
            Event::End(_) => {
                let mut element = stack
                    .pop()
                    .ok_or_else(|| malformed("an end tag without its start"))?;
                let trimmed = element.text.trim();
                if trimmed.len() != element.text.len() {
                    element.text = trimmed.to_string();
                }
                close(element, &mut stack, &mut root)?;
            }
            Event::Text(t) => {
                let s = t.decode().map_err(malformed)?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(malformed)?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c.to_string(),
                    None => match r.decode().map_err(malformed)?.as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        _ => return Err(XmlError::Refused("an entity reference")),
                    },
                };
                push_text(&mut stack, &c)?;
            }
            Event::DocType(_) => {
                return Err(XmlError::Refused("a document type declaration (DTD)"))
            }
            Event::PI(_) => return Err(XmlError::Refused("a processing instruction")),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("the document ends inside an element"));
    }
    root.ok_or_else(|| malformed("no root element"))
}

fn open(
    reader: &NsReader<&[u8]>,
    ns: String,
    start: &quick_xml::events::BytesStart<'_>,
    count: &mut usize,
    depth: usize,
) -> Result<Element, XmlError> {
    *count += 1;
    if *count > MAX_ELEMENTS {
        return Err(XmlError::TooLarge(format!(
            "more than {MAX_ELEMENTS} elements"
        )));
    }
    if depth >= MAX_DEPTH {
        return Err(XmlError::TooLarge(format!(
            "nested more than {MAX_DEPTH} deep"
        )));
    }
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    if !is_name(&name) {
        return Err(malformed(format!(
            "{:?} is not an element name",
            escape(&name)
        )));
    }
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(malformed)?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(key);
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        let attr_ns = namespace(resolved)?;
        let value = attr.unescape_value().map_err(|e| match e {
            quick_xml::Error::Escape(_) => XmlError::Refused("an entity reference"),
            other => malformed(other),
        })?;
        let key = if attr_ns.is_empty() {
            local
        } else {
            format!("{{{attr_ns}}}{local}")
        };
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        ns,
        name,
        attrs,
        ..Default::default()
    })
}

fn close(
    element: Element,
    stack: &mut [Element],
    root: &mut Option<Element>,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(malformed("more than one root element")),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(e) => e.text.push_str(s),
        None if s.trim().is_empty() => {}
        None => return Err(malformed("text outside the root element")),
    }
    Ok(())
}

/// Whether `name` can be an XML name (loosely: not empty, no white space,
/// controls or markup characters, not starting with a digit, '-' or '.').
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let ok = |c: char| {
        xml_char(c)
            && !c.is_whitespace()
            && !c.is_control()
            && !"<>&\"'=/!?;,()[]{}`^|\\".contains(c)
    };
    ok(first) && !first.is_ascii_digit() && first != '-' && first != '.' && chars.all(ok)
}

/// Whether XML 1.0 can carry `c` at all (its `Char` production): not the
/// C0 controls other than tab, newline and carriage return, nor U+FFFE and
/// U+FFFF.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes `s` for element content or an attribute value. Characters XML
/// 1.0 cannot carry, even escaped (a client's control characters echoed
/// back), become U+FFFD, so every response stays well-formed.
pub fn escape(s: &str) -> String {
    if s.chars().all(xml_char) {
        return quick_xml::escape::escape(s).into_owned();
    }
    let clean: String = s
        .chars()
        .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
        .collect();
    quick_xml::escape::escape(&clean).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_xml_cannot_carry_is_replaced_when_echoed() {
        assert_eq!(escape("a\u{1}b<"), "a\u{FFFD}b&lt;");
        assert_eq!(escape("tab\tok"), "tab\tok");
    }

    #[test]
    fn namespaces_resolve_and_text_is_unescaped() {
        let e = parse(
            br#"<?xml version="1.0" encoding="UTF-8"?>
<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><check>
<domain:check xmlns:domain="urn:ietf:params:xml:ns:domain-1.0">
<domain:name>a&amp;b&#x41;.nz</domain:name></domain:check></check></command></epp>"#,
        )
        .unwrap();
        assert_eq!(e.name, "epp");
        assert_eq!(e.ns, "urn:ietf:params:xml:ns:epp-1.0");
        let check = &e.children[0].children[0].children[0];
        assert_eq!(check.ns, "urn:ietf:params:xml:ns:domain-1.0");
        assert_eq!(check.children[0].text, "a&bA.nz");
    }

    #[test]
    fn what_an_attacker_could_use_is_refused() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><epp>&lol2;</epp>"#;
        assert_eq!(
            parse(bomb),
            Err(XmlError::Refused("a document type declaration (DTD)"))
        );
        let xxe = br#"<!DOCTYPE epp [<!ENTITY x SYSTEM "file:///etc/passwd">]><epp>&x;</epp>"#;
        assert!(matches!(parse(xxe), Err(XmlError::Refused(_))));
        assert_eq!(
            parse(b"<epp>&x;</epp>"),
            Err(XmlError::Refused("an entity reference"))
        );
        assert_eq!(
            parse(b"<epp a=\"&x;\"/>"),
            Err(XmlError::Refused("an entity reference"))
        );
        assert!(matches!(
            parse(b"<?evil x?><epp/>"),
            Err(XmlError::Refused(_))
        ));
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert!(matches!(parse(deep.as_bytes()), Err(XmlError::TooLarge(_))));
        assert!(matches!(parse(b"<x:epp/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(
            parse(b"<epp><a></epp>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"<epp/><epp/>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(parse(b""), Err(XmlError::Malformed(_))));
        assert!(matches!(
            parse(b"<epp>< /></epp>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(parse(b"<e\x01pp/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"\xff\xfe"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"<epp>"), Err(XmlError::Malformed(_))));
    }
}
