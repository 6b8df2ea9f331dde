//! Reading a command's parameters: the refusal a badly formed one gets,
//! and the helpers each object's parser shares (required children,
//! periods, statuses, auth info), so that every object states its rules
//! the same way.

use crate::codes::Code;
use crate::xml::Element;

/// Why a frame's command is refused: the result code, a message naming
/// the problem, and the clTRID when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The result code.
    pub code: Code,
    /// What is wrong.
    pub detail: String,
    /// The command's clTRID, if it could be read.
    pub cl_trid: Option<String>,
}

/// A refusal with `code` and `detail`.
pub fn refuse(code: Code, detail: impl Into<String>) -> Refusal {
    Refusal {
        code,
        detail: detail.into(),
        cl_trid: None,
    }
}

/// The text of `e`'s child `name` in `ns`, which must be there.
pub fn required<'a>(e: &'a Element, ns: &str, name: &str) -> Result<&'a str, Refusal> {
    e.child_text(ns, name).ok_or_else(|| {
        refuse(
            Code::MISSING_PARAMETER,
            format!("<{}> needs <{name}>", e.name),
        )
    })
}

/// The child `name` in `ns` of `e`, which must be there.
pub fn required_child<'a>(e: &'a Element, ns: &str, name: &str) -> Result<&'a Element, Refusal> {
    e.child(ns, name).ok_or_else(|| {
        refuse(
            Code::MISSING_PARAMETER,
            format!("<{}> needs <{name}>", e.name),
        )
    })
}

/// The texts of every child `name` in `ns`.
pub fn texts(e: &Element, ns: &str, name: &str) -> Vec<String> {
    e.children_named(ns, name).map(|c| c.text.clone()).collect()
}

/// Refuses children of `e` that are not in `ns` or not among `allowed`:
/// the schemas fix each command's elements, so anything else is a syntax
/// error rather than something to ignore.
pub fn only(e: &Element, ns: &str, allowed: &[&str]) -> Result<(), Refusal> {
    match e
        .children
        .iter()
        .find(|c| c.ns != ns || !allowed.contains(&c.name.as_str()))
    {
        Some(c) => Err(refuse(
            Code::SYNTAX_ERROR,
            format!("{} does not belong in <{}>", c.qualified(), e.name),
        )),
        None => Ok(()),
    }
}

/// `<period unit="y|m">`: whole years (0 when absent: the registry's
/// minimum). Months are accepted in multiples of twelve; RFC 5731 allows
/// 1 to 99.
pub fn period(e: &Element, ns: &str) -> Result<u32, Refusal> {
    let Some(p) = e.child(ns, "period") else {
        return Ok(0);
    };
    let n: u32 = p.text.parse().map_err(|_| {
        refuse(
            Code::VALUE_SYNTAX,
            format!("<period> must be a number, not {:?}", p.text),
        )
    })?;
    if !(1..=99).contains(&n) {
        return Err(refuse(Code::VALUE_RANGE, "<period> must be 1 to 99"));
    }
    match p.attr("unit") {
        Some("y") => Ok(n),
        Some("m") if n.is_multiple_of(12) => Ok(n / 12),
        Some("m") => Err(refuse(
            Code::POLICY,
            "periods are whole years: a period in months must be a multiple of 12",
        )),
        _ => Err(refuse(
            Code::SYNTAX_ERROR,
            "<period> needs unit=\"y\" or unit=\"m\"",
        )),
    }
}

/// The `s` values of `<status>` children (the free text beside them is
/// the client's and is not kept).
pub fn statuses(e: &Element, ns: &str) -> Result<Vec<String>, Refusal> {
    e.children_named(ns, "status")
        .map(|s| {
            s.attr("s")
                .map(str::to_string)
                .ok_or_else(|| refuse(Code::MISSING_PARAMETER, "<status> needs its s attribute"))
        })
        .collect()
}

/// The password of an `<authInfo>` child, if there is one. Only `<pw>` is
/// offered (RFC 5731's `<ext>` is for other schemes).
pub fn auth_info(e: &Element, ns: &str) -> Result<Option<String>, Refusal> {
    let Some(a) = e.child(ns, "authInfo") else {
        return Ok(None);
    };
    match a.child(ns, "pw") {
        Some(pw) => Ok(Some(pw.text.clone())),
        None if a.child(ns, "ext").is_some() => Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            "<authInfo><ext> is not offered; use <pw>",
        )),
        None => Err(refuse(Code::MISSING_PARAMETER, "<authInfo> needs <pw>")),
    }
}

/// The operation of a `<transfer op="...">`: `None` for a query.
pub fn transfer_op(verb: &Element) -> Result<Option<kauri_client::proto::TransferOp>, Refusal> {
    use kauri_client::proto::TransferOp;
    match verb.attr("op") {
        Some("query") => Ok(None),
        Some("request") => Ok(Some(TransferOp::Request)),
        Some("approve") => Ok(Some(TransferOp::Approve)),
        Some("reject") => Ok(Some(TransferOp::Reject)),
        Some("cancel") => Ok(Some(TransferOp::Cancel)),
        _ => Err(refuse(
            Code::SYNTAX_ERROR,
            "<transfer> needs op: request, query, approve, reject or cancel",
        )),
    }
}
