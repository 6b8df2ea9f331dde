//! DNSSEC delegation data (RFC 5910, secDNS-1.1), the DS data interface:
//! `<secDNS:create>` and `<secDNS:update>` on domain commands, and
//! `<secDNS:infData>` in a domain's info. The registry checks what a DS
//! record may hold; the key data interface and `maxSigLife` are not
//! offered (2102).

use kauri_client::proto::DsData;

use crate::codes::Code;
use crate::render::Xml;
use crate::request::{only, refuse, required, Refusal};
use crate::xml::Element;

/// The secDNS extension's namespace.
pub const SECDNS_NS: &str = "urn:ietf:params:xml:ns:secDNS-1.1";

/// What a `<secDNS:update>` changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// `<secDNS:rem><secDNS:all>true`.
    pub remove_all: bool,
    /// `<secDNS:rem>` dsData.
    pub remove: Vec<DsData>,
    /// `<secDNS:add>` dsData.
    pub add: Vec<DsData>,
}

fn number<T: std::str::FromStr>(e: &Element, name: &str) -> Result<T, Refusal> {
    let text = required(e, SECDNS_NS, name)?;
    text.trim().parse().map_err(|_| {
        refuse(
            Code::VALUE_SYNTAX,
            format!("<secDNS:{name}> {text:?} is not a number in its range"),
        )
    })
}

fn ds_data(e: &Element) -> Result<DsData, Refusal> {
    only(
        e,
        SECDNS_NS,
        &["keyTag", "alg", "digestType", "digest", "keyData"],
    )?;
    if e.child(SECDNS_NS, "keyData").is_some() {
        return Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            "key data (<secDNS:keyData>) is not kept here: DS data only",
        ));
    }
    Ok(DsData {
        key_tag: u32::from(number::<u16>(e, "keyTag")?),
        algorithm: u32::from(number::<u8>(e, "alg")?),
        digest_type: u32::from(number::<u8>(e, "digestType")?),
        digest: required(e, SECDNS_NS, "digest")?.trim().to_string(),
    })
}

/// The dsData of a dsOrKeyType element (create, add): maxSigLife and key
/// data refused.
fn ds_list(e: &Element) -> Result<Vec<DsData>, Refusal> {
    only(e, SECDNS_NS, &["maxSigLife", "dsData", "keyData"])?;
    if e.child(SECDNS_NS, "maxSigLife").is_some() {
        return Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            "<secDNS:maxSigLife> is not offered",
        ));
    }
    if e.child(SECDNS_NS, "keyData").is_some() {
        return Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            "the key data interface is not offered here: DS data only",
        ));
    }
    let list = e
        .children_named(SECDNS_NS, "dsData")
        .map(ds_data)
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err(refuse(
            Code::MISSING_PARAMETER,
            format!("<secDNS:{}> needs <secDNS:dsData>", e.name),
        ));
    }
    Ok(list)
}

/// The DS records of a `<secDNS:create>`.
pub fn create(e: &Element) -> Result<Vec<DsData>, Refusal> {
    if e.name != "create" {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("{} does not belong on a domain create", e.qualified()),
        ));
    }
    ds_list(e)
}

/// What a `<secDNS:update>` changes.
pub fn update(e: &Element) -> Result<Update, Refusal> {
    if e.name != "update" {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("{} does not belong on a domain update", e.qualified()),
        ));
    }
    only(e, SECDNS_NS, &["rem", "add", "chg"])?;
    if e.child(SECDNS_NS, "chg").is_some() {
        return Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            "<secDNS:chg> (maxSigLife) is not offered",
        ));
    }
    if e.attr("urgent").is_some_and(|u| u == "true" || u == "1") {
        return Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            "urgent secDNS updates are not offered",
        ));
    }
    let mut out = Update::default();
    if let Some(rem) = e.child(SECDNS_NS, "rem") {
        only(rem, SECDNS_NS, &["all", "dsData", "keyData"])?;
        match rem.child_text(SECDNS_NS, "all") {
            Some("true" | "1") => out.remove_all = true,
            Some("false" | "0") => {}
            Some(other) => {
                return Err(refuse(
                    Code::VALUE_SYNTAX,
                    format!("<secDNS:all> {other:?}: true or false"),
                ))
            }
            None => {
                if rem.child(SECDNS_NS, "keyData").is_some() {
                    return Err(refuse(
                        Code::UNIMPLEMENTED_OPTION,
                        "the key data interface is not offered here: DS data only",
                    ));
                }
                out.remove = rem
                    .children_named(SECDNS_NS, "dsData")
                    .map(ds_data)
                    .collect::<Result<Vec<_>, _>>()?;
            }
        }
    }
    if let Some(add) = e.child(SECDNS_NS, "add") {
        out.add = ds_list(add)?;
    }
    Ok(out)
}

/// `<secDNS:infData>` with a domain's DS records, if it has any.
pub fn info_data(ds: &[DsData]) -> Option<String> {
    if ds.is_empty() {
        return None;
    }
    let mut x = Xml::new();
    x.open("secDNS:infData", &[("xmlns:secDNS", SECDNS_NS)]);
    for d in ds {
        x.open("secDNS:dsData", &[])
            .leaf("secDNS:keyTag", &[], &d.key_tag.to_string())
            .leaf("secDNS:alg", &[], &d.algorithm.to_string())
            .leaf("secDNS:digestType", &[], &d.digest_type.to_string())
            .leaf("secDNS:digest", &[], &d.digest)
            .close("secDNS:dsData");
    }
    x.close("secDNS:infData");
    Some(x.finish())
}
