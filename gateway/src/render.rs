//! The XML the gateway sends: the greeting and responses (RFC 5730
//! sections 2.4 and 2.6), in the order the schemas require.

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
        now.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    for ns in OBJECTS {
        out.push_str(&format!("<objURI>{ns}</objURI>"));
    }
    out.push_str(
        "</svcMenu><dcp><access><all/></access><statement><purpose><admin/><prov/></purpose>\
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
    /// `<extValue>`: the offending element as sent, and why.
    pub ext_value: Option<(String, String)>,
    /// The `<resData>` content, already rendered.
    pub res_data: Option<String>,
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
            res_data: None,
            cl_trid,
            sv_trid,
        }
    }

    /// With a message saying more than the code's.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
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
                "<extValue><value>{}</value><reason>{}</reason></extValue>",
                escape(value),
                escape(reason)
            ));
        }
        out.push_str("</result>");
        if let Some(data) = &self.res_data {
            out.push_str(&format!("<resData>{data}</resData>"));
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

/// Longest `<domain:reason>` the schema allows.
pub const MAX_REASON_CHARS: usize = 32;

/// A check reason short enough for the schema: the registry's own when it
/// fits, else its gist.
fn short_reason(reason: &str) -> String {
    if reason.chars().count() <= MAX_REASON_CHARS {
        return reason.to_string();
    }
    if reason.contains("not a valid name") {
        return "not a valid name".into();
    }
    reason.chars().take(MAX_REASON_CHARS).collect()
}

/// `<domain:chkData>` for (name, available, reason) triples.
pub fn domain_check(results: &[(String, bool, String)]) -> String {
    let mut out = format!("<domain:chkData xmlns:domain=\"{DOMAIN_NS}\">");
    for (name, avail, reason) in results {
        out.push_str(&format!(
            "<domain:cd><domain:name avail=\"{}\">{}</domain:name>",
            u8::from(*avail),
            escape(name)
        ));
        if !*avail && !reason.is_empty() {
            out.push_str(&format!(
                "<domain:reason>{}</domain:reason>",
                escape(&short_reason(reason))
            ));
        }
        out.push_str("</domain:cd>");
    }
    out.push_str("</domain:chkData>");
    out
}
