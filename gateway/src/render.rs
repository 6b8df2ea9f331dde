//! The XML the gateway sends: the greeting and responses (RFC 5730
//! sections 2.4 and 2.6), in the order the schemas require.

use kauri_proto::v1::{CheckResult, TransferData};

use crate::codes::Code;
use crate::xml::escape;

/// The EPP namespace.
pub const EPP_NS: &str = "urn:ietf:params:xml:ns:epp-1.0";
/// The domain mapping (RFC 5731).
pub const DOMAIN_NS: &str = "urn:ietf:params:xml:ns:domain-1.0";
/// The host mapping (RFC 5732).
pub const HOST_NS: &str = "urn:ietf:params:xml:ns:host-1.0";
/// The contact mapping (RFC 5733).
pub const CONTACT_NS: &str = "urn:ietf:params:xml:ns:contact-1.0";
/// The extensions the server serves, as the greeting lists them: DNSSEC DS
/// data (RFC 5910), RGP (RFC 3915), fees (RFC 8748) and login security
/// (RFC 8807).
pub const EXTENSIONS: [&str; 4] = [
    "urn:ietf:params:xml:ns:secDNS-1.1",
    "urn:ietf:params:xml:ns:rgp-1.0",
    "urn:ietf:params:xml:ns:epp:fee-1.0",
    "urn:ietf:params:xml:ns:epp:loginSec-1.0",
];
/// The object mappings the server offers, as the greeting lists them.
pub const OBJECTS: [&str; 3] = [DOMAIN_NS, HOST_NS, CONTACT_NS];

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>"#;

/// The greeting: server id, its clock, the services offered and the data
/// collection policy.
pub fn greeting(server_id: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = format!(
        "{HEAD}<epp xmlns=\"{EPP_NS}\"><greeting><svID>{}</svID><svDate>{}</svDate>\
         <svcMenu><version>1.0</version><lang>en</lang>",
        escape(server_id),
        xs_date_time(now)
    );
    for ns in OBJECTS {
        out.push_str(&format!("<objURI>{ns}</objURI>"));
    }
    out.push_str("<svcExtension>");
    for ns in EXTENSIONS {
        out.push_str(&format!("<extURI>{ns}</extURI>"));
    }
    out.push_str(
        "</svcExtension></svcMenu><dcp><access><all/></access><statement><purpose><admin/><prov/></purpose>\
         <recipient><ours/><public/></recipient><retention><stated/></retention></statement>\
         </dcp></greeting></epp>",
    );
    out
}

/// One response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The result code.
    pub code: Code,
    /// A message beyond the code's own (appended after it).
    pub detail: Option<String>,
    /// `<extValue>`: the offending element (rendered XML) and why.
    pub ext_value: Option<(String, String)>,
    /// `<msgQ>`: the poll queue's count and the message shown (rendered
    /// `<qDate>` and `<msg>`), for poll responses.
    pub msg_q: Option<MsgQ>,
    /// The `<resData>` content, already rendered.
    pub res_data: Option<String>,
    /// The `<extension>` content, already rendered.
    pub extension: Option<String>,
    /// The client's transaction id, if it sent one.
    pub cl_trid: Option<String>,
    /// The server's transaction id.
    pub sv_trid: String,
}

impl Response {
    /// A response with `code` and nothing else.
    pub fn new(code: Code, cl_trid: Option<String>, sv_trid: String) -> Self {
        Response {
            code,
            detail: None,
            ext_value: None,
            msg_q: None,
            res_data: None,
            extension: None,
            cl_trid,
            sv_trid,
        }
    }

    /// With a message saying more than the code's.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// With `<resData>` content.
    pub fn data(mut self, res_data: String) -> Self {
        self.res_data = Some(res_data);
        self
    }

    /// With `part` added to `<extension>` (nothing when `None`).
    pub fn extend(&mut self, part: Option<String>) {
        if let Some(part) = part {
            self.extension
                .get_or_insert_with(String::new)
                .push_str(&part);
        }
    }

    /// The XML of the response.
    pub fn render(&self) -> String {
        let msg = match &self.detail {
            Some(d) => format!("{}: {}", self.code.message(), d),
            None => self.code.message().to_string(),
        };
        let mut out = format!(
            "{HEAD}<epp xmlns=\"{EPP_NS}\"><response><result code=\"{}\"><msg>{}</msg>",
            self.code.0,
            escape(&msg)
        );
        if let Some((value, reason)) = &self.ext_value {
            out.push_str(&format!(
                "<extValue><value>{value}</value><reason>{}</reason></extValue>",
                escape(reason)
            ));
        }
        out.push_str("</result>");
        if let Some(q) = &self.msg_q {
            out.push_str(&format!(
                "<msgQ count=\"{}\" id=\"{}\">{}</msgQ>",
                q.count, q.id, q.inner
            ));
        }
        if let Some(data) = &self.res_data {
            out.push_str(&format!("<resData>{data}</resData>"));
        }
        if let Some(ext) = &self.extension {
            out.push_str(&format!("<extension>{ext}</extension>"));
        }
        out.push_str("<trID>");
        if let Some(cl) = &self.cl_trid {
            out.push_str(&format!("<clTRID>{}</clTRID>", escape(cl)));
        }
        out.push_str(&format!(
            "<svTRID>{}</svTRID></trID></response></epp>",
            escape(&self.sv_trid)
        ));
        out
    }
}

/// `<msgQ>` of a poll response.
#[derive(Debug, Clone)]
pub struct MsgQ {
    /// Messages in the queue.
    pub count: u64,
    /// The id of the message shown (or acknowledged).
    pub id: u64,
    /// Rendered `<qDate>` and `<msg>`, or empty.
    pub inner: String,
}

/// A small XML writer for response data: elements are written in the
/// order the caller gives, which is the order the schemas require.
#[derive(Debug, Default)]
pub struct Xml(String);

impl Xml {
    /// An empty document fragment.
    pub fn new() -> Self {
        Xml(String::new())
    }

    /// Opens `<tag attrs...>`; attribute values are escaped.
    pub fn open(&mut self, tag: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.0.push('<');
        self.0.push_str(tag);
        for (name, value) in attrs {
            self.0.push_str(&format!(" {name}=\"{}\"", escape(value)));
        }
        self.0.push('>');
        self
    }

    /// Closes `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.0.push_str(&format!("</{tag}>"));
        self
    }

    /// `<tag attrs...>text</tag>`, or `<tag attrs.../>` when `text` is
    /// empty.
    pub fn leaf(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        if text.is_empty() {
            self.open(tag, attrs);
            self.0.insert(self.0.len() - 1, '/');
            return self;
        }
        self.open(tag, attrs);
        self.0.push_str(&escape(text));
        self.close(tag)
    }

    /// `<tag>text</tag>` unless `text` is empty.
    pub fn opt(&mut self, tag: &str, text: &str) -> &mut Self {
        if !text.is_empty() {
            self.leaf(tag, &[], text);
        }
        self
    }

    /// `<tag>time</tag>` for a time in ms since the epoch, unless 0.
    pub fn time(&mut self, tag: &str, ms: i64) -> &mut Self {
        if ms != 0 {
            self.leaf(tag, &[], &date_time(ms));
        }
        self
    }

    /// The XML written.
    pub fn finish(self) -> String {
        self.0
    }
}

/// `<prefix:local xmlns:prefix="ns">text</prefix:local>` on its own, as
/// `<extValue>` shows the element a refusal is about.
pub fn element_in(prefix: &str, ns: &str, local: &str, text: &str) -> String {
    let mut x = Xml::new();
    x.leaf(
        &format!("{prefix}:{local}"),
        &[(&format!("xmlns:{prefix}"), ns)],
        text,
    );
    x.finish()
}

/// An XML Schema dateTime (UTC, milliseconds) for ms since the epoch.
pub fn date_time(ms: i64) -> String {
    xs_date_time(chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap_or_default())
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`, without parsing a format string at
/// every call (an info answer holds up to five times).
fn xs_date_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Longest `<reason>` in a check result the schemas allow.
pub const MAX_REASON_CHARS: usize = 32;

/// A check reason short enough for the schema: the registry's own when it
/// fits, else its gist.
fn short_reason(reason: &str) -> String {
    if reason.chars().count() <= MAX_REASON_CHARS {
        return reason.to_string();
    }
    if reason.contains("not a valid") {
        return "not a valid name".into();
    }
    reason.chars().take(MAX_REASON_CHARS).collect()
}

/// `<P:chkData>` of object prefix `prefix` (domain, host or contact, its
/// namespace `ns`) whose key element is `key` (name, or id for contacts).
pub fn check_data(prefix: &str, ns: &str, key: &str, results: &[CheckResult]) -> String {
    let mut x = Xml::new();
    x.open(
        &format!("{prefix}:chkData"),
        &[(&format!("xmlns:{prefix}"), ns)],
    );
    let cd = format!("{prefix}:cd");
    for c in results {
        x.open(&cd, &[]);
        x.leaf(
            &format!("{prefix}:{key}"),
            &[("avail", if c.available { "1" } else { "0" })],
            &c.name,
        );
        if !c.available && !c.reason.is_empty() {
            x.leaf(&format!("{prefix}:reason"), &[], &short_reason(&c.reason));
        }
        x.close(&cd);
    }
    x.close(&format!("{prefix}:chkData"));
    x.finish()
}

/// Which object a transfer is of: its namespace and the element naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOf {
    /// RFC 5731 `<domain:trnData>`: `<domain:name>` and an `<domain:exDate>`.
    Domain,
    /// RFC 5733 `<contact:trnData>`: `<contact:id>`, no expiry.
    Contact,
}

/// `<domain:trnData>` or `<contact:trnData>` of a transfer. `acDate` is
/// when it was acted on, or while pending when the registry acts.
pub fn transfer_data(of: TransferOf, t: &TransferData) -> String {
    let (prefix, ns, id) = match of {
        TransferOf::Domain => ("domain", DOMAIN_NS, "name"),
        TransferOf::Contact => ("contact", CONTACT_NS, "id"),
    };
    let acted = if t.acted_ms != 0 {
        t.acted_ms
    } else {
        t.action_due_ms
    };
    let tag = |name: &str| format!("{prefix}:{name}");
    let mut x = Xml::new();
    x.open(&tag("trnData"), &[(&format!("xmlns:{prefix}"), ns)])
        .leaf(&tag(id), &[], &t.name)
        .leaf(&tag("trStatus"), &[], &t.status_name)
        .leaf(&tag("reID"), &[], &t.gaining_registrar)
        .leaf(&tag("reDate"), &[], &date_time(t.requested_ms))
        .leaf(&tag("acID"), &[], &t.losing_registrar)
        .leaf(&tag("acDate"), &[], &date_time(acted));
    if of == TransferOf::Domain {
        x.time(&tag("exDate"), t.expiry_ms);
    }
    x.close(&tag("trnData"));
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_escapes_and_closes() {
        let mut x = Xml::new();
        x.open("a:b", &[("x", "1\"<")])
            .leaf("a:c", &[], "t&u")
            .leaf("a:d", &[("s", "ok")], "")
            .opt("a:e", "")
            .close("a:b");
        assert_eq!(
            x.finish(),
            "<a:b x=\"1&quot;&lt;\"><a:c>t&amp;u</a:c><a:d s=\"ok\"/></a:b>"
        );
        assert_eq!(date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
