//! Hosts (RFC 5732): check, info, create, update and delete, each one
//! cluster call.

use kauri_client::proto;

use crate::codes::Code;
use crate::render::{self, Response, Xml, HOST_NS};
use crate::request::{only, refuse, required, statuses, Refusal};
use crate::session::Ctx;
use crate::xml::Element;

/// A host command.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `<check>`.
    Check(Vec<String>),
    /// `<info>`.
    Info(String),
    /// `<create>`.
    Create(proto::CreateHostRequest),
    /// `<update>`.
    Update(proto::UpdateHostRequest),
    /// `<delete>`.
    Delete(String),
}

impl Op {
    /// The command's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Check(_) => "host:check",
            Op::Info(_) => "host:info",
            Op::Create(_) => "host:create",
            Op::Update(_) => "host:update",
            Op::Delete(_) => "host:delete",
        }
    }
}

/// The addresses of `<addr>` children, each checked against its `ip`
/// attribute (v4 by default, as RFC 5732 says).
fn addresses(e: &Element) -> Result<Vec<String>, Refusal> {
    e.children_named(HOST_NS, "addr")
        .map(|a| {
            let parsed: Result<std::net::IpAddr, _> = a.text.parse();
            let ok = match (a.attr("ip").unwrap_or("v4"), parsed) {
                ("v4", Ok(ip)) => ip.is_ipv4(),
                ("v6", Ok(ip)) => ip.is_ipv6(),
                ("v4" | "v6", Err(_)) => false,
                (other, _) => {
                    return Err(refuse(
                        Code::VALUE_SYNTAX,
                        format!("ip={other:?}: v4 or v6"),
                    ))
                }
            };
            if !ok {
                return Err(refuse(
                    Code::VALUE_SYNTAX,
                    format!(
                        "{:?} is not an IP{} address",
                        a.text,
                        a.attr("ip").unwrap_or("v4")
                    ),
                ));
            }
            Ok(a.text.clone())
        })
        .collect()
}

fn name_of(e: &Element) -> Result<String, Refusal> {
    required(e, HOST_NS, "name").map(str::to_string)
}

/// Reads the host command `verb` whose object element is `e`.
pub fn parse(verb: &Element, e: &Element, ext: &[Element]) -> Result<Op, Refusal> {
    if let Some(x) = ext.first() {
        return Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            format!("extension {} is not offered for hosts", x.ns),
        ));
    }
    match verb.name.as_str() {
        "check" => {
            only(e, HOST_NS, &["name"])?;
            let names = crate::request::texts(e, HOST_NS, "name");
            crate::epp::check_names(&names)?;
            Ok(Op::Check(names))
        }
        "info" => {
            only(e, HOST_NS, &["name"])?;
            Ok(Op::Info(name_of(e)?))
        }
        "create" => {
            only(e, HOST_NS, &["name", "addr"])?;
            Ok(Op::Create(proto::CreateHostRequest {
                meta: None,
                name: name_of(e)?,
                addresses: addresses(e)?,
            }))
        }
        "update" => {
            only(e, HOST_NS, &["name", "add", "rem", "chg"])?;
            let mut request = proto::UpdateHostRequest {
                name: name_of(e)?,
                ..Default::default()
            };
            // RFC 5732 section 3.2.5: <host:chg> holds the new name.
            if let Some(chg) = e.child(HOST_NS, "chg") {
                only(chg, HOST_NS, &["name"])?;
                request.new_name = name_of(chg)?;
            }
            if let Some(add) = e.child(HOST_NS, "add") {
                only(add, HOST_NS, &["addr", "status"])?;
                request.add_addresses = addresses(add)?;
                request.add_statuses = statuses(add, HOST_NS)?;
            }
            if let Some(rem) = e.child(HOST_NS, "rem") {
                only(rem, HOST_NS, &["addr", "status"])?;
                request.remove_addresses = addresses(rem)?;
                request.remove_statuses = statuses(rem, HOST_NS)?;
            }
            Ok(Op::Update(request))
        }
        "delete" => {
            only(e, HOST_NS, &["name"])?;
            Ok(Op::Delete(name_of(e)?))
        }
        other => Err(refuse(
            Code::UNIMPLEMENTED_COMMAND,
            format!("<{other}> of a host is not a command (RFC 5732)"),
        )),
    }
}

fn element(field: &str, name: &str) -> Option<String> {
    (field == "name").then(|| render::element_in("host", HOST_NS, "name", name))
}

/// Runs `op` in the session of `ctx`.
pub async fn run(op: Op, ctx: &Ctx<'_>) -> Response {
    let client = &ctx.session.client;
    match op {
        Op::Check(names) => {
            let request = proto::CheckRequest {
                registrar: ctx.registrar(),
                names,
                read: None,
                fees: Vec::new(),
            };
            match ctx
                .session
                .checks
                .run(request, |r| client.check_hosts(r))
                .await
            {
                Ok(r) => ctx
                    .read(Code::OK)
                    .data(render::check_data("host", HOST_NS, "name", &r.results)),
                Err(e) => ctx.failed(&e, |_| None),
            }
        }
        Op::Info(name) => {
            let request = proto::InfoRequest {
                registrar: ctx.registrar(),
                name: name.clone(),
                read: kauri_client::linearizable(),
            };
            match client.info_host(request).await {
                Ok(r) => ctx
                    .read(Code::OK)
                    .data(info_data(&r.host.unwrap_or_default())),
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
        Op::Create(mut request) => {
            request.meta = ctx.meta();
            let name = request.name.clone();
            match client.create_host(request).await {
                Ok(r) => {
                    let h = r.host.unwrap_or_default();
                    let mut x = Xml::new();
                    x.open("host:creData", &[("xmlns:host", HOST_NS)])
                        .leaf("host:name", &[], &h.name)
                        .time("host:crDate", h.created_ms)
                        .close("host:creData");
                    ctx.done(Code::OK, r.tx.as_ref()).data(x.finish())
                }
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
        Op::Update(mut request) => {
            request.meta = ctx.meta();
            let name = request.name.clone();
            let new_name = request.new_name.clone();
            match client.update_host(request).await {
                Ok(r) => ctx.done(Code::OK, r.tx.as_ref()),
                Err(e) => ctx.failed(&e, |f| match f {
                    "new_name" => element("name", &new_name),
                    _ => element(f, &name),
                }),
            }
        }
        Op::Delete(name) => {
            let request = proto::DeleteRequest {
                meta: ctx.meta(),
                name: name.clone(),
            };
            match client.delete_host(request).await {
                Ok(r) => ctx.done(Code::OK, r.tx.as_ref()),
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
    }
}

/// `<host:infData>` of `h`.
fn info_data(h: &proto::Host) -> String {
    let mut x = Xml::new();
    x.open("host:infData", &[("xmlns:host", HOST_NS)])
        .leaf("host:name", &[], &h.name)
        .leaf("host:roid", &[], &h.roid);
    for s in &h.statuses {
        x.leaf("host:status", &[("s", s)], "");
    }
    for a in &h.addresses {
        let ip = if a.contains(':') { "v6" } else { "v4" };
        x.leaf("host:addr", &[("ip", ip)], a);
    }
    x.leaf("host:clID", &[], &h.sponsor)
        .leaf("host:crID", &[], &h.created_by)
        .time("host:crDate", h.created_ms)
        .opt("host:upID", &h.updated_by)
        .time("host:upDate", h.updated_ms)
        .close("host:infData");
    x.finish()
}
