//! Domains (RFC 5731) with the redemption grace period extension (RFC
//! 3915): the commands read from a frame, each run as one cluster call,
//! and the response data rendered in the order the schemas require.
//! The registry's rules stay in the registry; this module translates.

use kauri_client::proto::{
    self, ContactType, DomainContact, RestoreOp, RestoreReport, TransferOp, TransferStatus,
};

use crate::codes::Code;
use crate::fee::{self, FEE_NS};
use crate::render::{self, Response, Xml, DOMAIN_NS};
use crate::request::{
    auth_info, only, period, refuse, required, required_child, statuses, texts, transfer_op,
    Refusal,
};
use crate::secdns::{self, SECDNS_NS};
use crate::session::Ctx;
use crate::xml::Element;

/// The RGP extension (RFC 3915).
pub const RGP_NS: &str = "urn:ietf:params:xml:ns:rgp-1.0";

/// A domain command.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `<check>`, with the prices asked for (RFC 8748).
    Check(Vec<String>, Option<fee::Check>),
    /// `<info>`: the name and which hosts to show (all, del, sub, none).
    Info {
        /// The domain.
        name: String,
        /// The `hosts` attribute.
        hosts: String,
    },
    /// `<create>`.
    Create(proto::CreateDomainRequest),
    /// `<update>` without an RGP restore.
    Update(proto::UpdateDomainRequest),
    /// `<update>` with `<rgp:restore>`.
    Restore(proto::RestoreDomainRequest),
    /// `<renew>`.
    Renew(proto::RenewDomainRequest),
    /// `<delete>`.
    Delete(String),
    /// `<transfer op="query">`.
    TransferQuery {
        /// The domain.
        name: String,
        /// Auth info, when a registrar not party to the transfer asks.
        auth_info: String,
    },
    /// `<transfer>` request, approve, reject or cancel.
    Transfer(proto::TransferDomainRequest),
}

impl Op {
    /// The command's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Check(..) => "domain:check",
            Op::Info { .. } => "domain:info",
            Op::Create(_) => "domain:create",
            Op::Update(_) => "domain:update",
            Op::Restore(_) => "domain:restore",
            Op::Renew(_) => "domain:renew",
            Op::Delete(_) => "domain:delete",
            Op::TransferQuery { .. } => "domain:transfer-query",
            Op::Transfer(_) => "domain:transfer",
        }
    }
}

fn name_of(e: &Element) -> Result<String, Refusal> {
    required(e, DOMAIN_NS, "name").map(str::to_string)
}

/// Reads the domain command `verb` (check, info, ...) whose object element
/// is `e`, with the command's `<extension>` children `ext`.
pub fn parse(verb: &Element, e: &Element, ext: &[Element]) -> Result<Op, Refusal> {
    let rgp = ext.iter().find(|x| x.ns == RGP_NS);
    let fee = ext.iter().find(|x| x.ns == FEE_NS);
    let dnssec = ext.iter().find(|x| x.ns == SECDNS_NS);
    if let Some(other) = ext
        .iter()
        .find(|x| ![RGP_NS, FEE_NS, SECDNS_NS].contains(&x.ns.as_str()))
    {
        return Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            format!("extension {} is not offered here", other.ns),
        ));
    }
    if ext.len()
        > usize::from(rgp.is_some()) + usize::from(fee.is_some()) + usize::from(dnssec.is_some())
    {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            "one element per extension in <extension>",
        ));
    }
    if dnssec.is_some() && (verb.name != "create" && verb.name != "update" || rgp.is_some()) {
        return Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            "DNSSEC data (secDNS) belongs on a domain create or update",
        ));
    }
    if rgp.is_some() && verb.name != "update" {
        return Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            "the RGP extension belongs on a domain update (restore)",
        ));
    }
    // The fee a registrar agrees to, on the commands that charge.
    let agreed = |command: &str| fee.map(|f| fee::agreed(f, command)).transpose();
    let mut op = match verb.name.as_str() {
        "check" => {
            let asked = fee.map(fee::check).transpose()?;
            check(e, asked)
        }
        "info" => {
            only(e, DOMAIN_NS, &["name", "authInfo"])?;
            let name = required_child(e, DOMAIN_NS, "name")?;
            let hosts = name.attr("hosts").unwrap_or("all").to_string();
            if !["all", "del", "sub", "none"].contains(&hosts.as_str()) {
                return Err(refuse(
                    Code::VALUE_SYNTAX,
                    "hosts must be all, del, sub or none",
                ));
            }
            Ok(Op::Info {
                name: name.text.clone(),
                hosts,
            })
        }
        "create" => create(e, dnssec),
        "update" => match rgp {
            Some(rgp) => restore(e, rgp),
            None => update(e, dnssec),
        },
        "renew" => {
            only(e, DOMAIN_NS, &["name", "curExpDate", "period"])?;
            Ok(Op::Renew(proto::RenewDomainRequest {
                meta: None,
                name: name_of(e)?,
                current_expiry_date: required(e, DOMAIN_NS, "curExpDate")?.to_string(),
                period_years: period(e, DOMAIN_NS)?,
                fee: None,
            }))
        }
        "delete" => {
            only(e, DOMAIN_NS, &["name"])?;
            Ok(Op::Delete(name_of(e)?))
        }
        "transfer" => transfer(verb, e),
        other => Err(refuse(
            Code::UNIMPLEMENTED_COMMAND,
            format!("<{other}> of a domain is not a command"),
        )),
    }?;
    match &mut op {
        Op::Check(..) => {}
        Op::Create(r) => r.fee = agreed("create")?,
        Op::Renew(r) => r.fee = agreed("renew")?,
        Op::Transfer(r) if r.op == TransferOp::Request as i32 => r.fee = agreed("transfer")?,
        Op::Restore(r) if r.op == RestoreOp::Request as i32 => r.fee = agreed("update")?,
        _ if fee.is_some() => {
            return Err(refuse(
                Code::UNIMPLEMENTED_EXTENSION,
                "the fee extension belongs on a check, create, renew, transfer request or \
                 restore request",
            ))
        }
        _ => {}
    }
    Ok(op)
}

fn check(e: &Element, fees: Option<fee::Check>) -> Result<Op, Refusal> {
    only(e, DOMAIN_NS, &["name"])?;
    let names = texts(e, DOMAIN_NS, "name");
    crate::epp::check_names(&names)?;
    Ok(Op::Check(names, fees))
}

fn contact_type(t: Option<&str>) -> Result<ContactType, Refusal> {
    match t {
        Some("admin") => Ok(ContactType::Admin),
        Some("tech") => Ok(ContactType::Tech),
        Some("billing") => Ok(ContactType::Billing),
        Some(other) => Err(refuse(
            Code::VALUE_SYNTAX,
            format!("contact type {other:?}: admin, tech or billing"),
        )),
        None => Err(refuse(
            Code::MISSING_PARAMETER,
            "<contact> needs its type attribute",
        )),
    }
}

fn contacts(e: &Element) -> Result<Vec<DomainContact>, Refusal> {
    e.children_named(DOMAIN_NS, "contact")
        .map(|c| {
            Ok(DomainContact {
                r#type: contact_type(c.attr("type"))? as i32,
                contact_id: c.text.clone(),
            })
        })
        .collect()
}

/// The host object names of a `<ns>` child.
fn nameservers(e: &Element) -> Result<Vec<String>, Refusal> {
    let Some(ns) = e.child(DOMAIN_NS, "ns") else {
        return Ok(Vec::new());
    };
    if ns.child(DOMAIN_NS, "hostAttr").is_some() {
        return Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            "name servers are host objects here (<hostObj>), not <hostAttr>",
        ));
    }
    only(ns, DOMAIN_NS, &["hostObj"])?;
    Ok(texts(ns, DOMAIN_NS, "hostObj"))
}

fn create(e: &Element, dnssec: Option<&Element>) -> Result<Op, Refusal> {
    only(
        e,
        DOMAIN_NS,
        &["name", "period", "ns", "registrant", "contact", "authInfo"],
    )?;
    Ok(Op::Create(proto::CreateDomainRequest {
        meta: None,
        name: name_of(e)?,
        period_years: period(e, DOMAIN_NS)?,
        registrant: e
            .child_text(DOMAIN_NS, "registrant")
            .unwrap_or_default()
            .to_string(),
        contacts: contacts(e)?,
        nameservers: nameservers(e)?,
        auth_info: auth_info(e, DOMAIN_NS)?.unwrap_or_default(),
        fee: None,
        ds_data: dnssec.map(secdns::create).transpose()?.unwrap_or_default(),
    }))
}

fn update(e: &Element, dnssec: Option<&Element>) -> Result<Op, Refusal> {
    only(e, DOMAIN_NS, &["name", "add", "rem", "chg"])?;
    let mut request = proto::UpdateDomainRequest {
        name: name_of(e)?,
        ..Default::default()
    };
    if let Some(add) = e.child(DOMAIN_NS, "add") {
        only(add, DOMAIN_NS, &["ns", "contact", "status"])?;
        request.add_nameservers = nameservers(add)?;
        request.add_contacts = contacts(add)?;
        request.add_statuses = statuses(add, DOMAIN_NS)?;
    }
    if let Some(rem) = e.child(DOMAIN_NS, "rem") {
        only(rem, DOMAIN_NS, &["ns", "contact", "status"])?;
        request.remove_nameservers = nameservers(rem)?;
        request.remove_contacts = contacts(rem)?;
        request.remove_statuses = statuses(rem, DOMAIN_NS)?;
    }
    if let Some(chg) = e.child(DOMAIN_NS, "chg") {
        only(chg, DOMAIN_NS, &["registrant", "authInfo"])?;
        if let Some(r) = chg.child(DOMAIN_NS, "registrant") {
            if r.text.is_empty() {
                return Err(refuse(
                    Code::POLICY,
                    "every domain here has a registrant: name the new one",
                ));
            }
            request.registrant = r.text.clone();
        }
        request.auth_info = auth_info(chg, DOMAIN_NS)?.unwrap_or_default();
    }
    if let Some(ds) = dnssec.map(secdns::update).transpose()? {
        request.remove_all_ds = ds.remove_all;
        request.remove_ds = ds.remove;
        request.add_ds = ds.add;
    }
    if request
        == (proto::UpdateDomainRequest {
            name: request.name.clone(),
            ..Default::default()
        })
    {
        return Err(refuse(
            Code::MISSING_PARAMETER,
            "<domain:update> needs something to add, remove or change",
        ));
    }
    Ok(Op::Update(request))
}

fn rgp_time(report: &Element, name: &str) -> Result<i64, Refusal> {
    let text = required(report, RGP_NS, name)?;
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            refuse(
                Code::VALUE_SYNTAX,
                format!("<rgp:{name}> must be a date and time, not {text:?}"),
            )
        })
}

/// An update carrying `<rgp:update><rgp:restore op=...>`: RFC 3915 wants
/// the domain update itself empty (`<domain:chg/>`).
fn restore(e: &Element, rgp: &Element) -> Result<Op, Refusal> {
    only(e, DOMAIN_NS, &["name", "add", "rem", "chg"])?;
    if e.children
        .iter()
        .any(|c| c.name != "name" && !c.children.is_empty())
    {
        return Err(refuse(
            Code::POLICY,
            "a restore is a domain update that changes nothing else (an empty <domain:chg/>)",
        ));
    }
    if rgp.name != "update" {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("{} is not a command extension", rgp.qualified()),
        ));
    }
    let r = required_child(rgp, RGP_NS, "restore")?;
    let name = name_of(e)?;
    match r.attr("op") {
        Some("request") => Ok(Op::Restore(proto::RestoreDomainRequest {
            meta: None,
            name,
            op: RestoreOp::Request as i32,
            report: None,
            fee: None,
        })),
        Some("report") => {
            let report = required_child(r, RGP_NS, "report")?;
            let text = |n: &str| report.child_text(RGP_NS, n).unwrap_or_default().to_string();
            Ok(Op::Restore(proto::RestoreDomainRequest {
                meta: None,
                name,
                op: RestoreOp::Report as i32,
                report: Some(RestoreReport {
                    pre_data: required(report, RGP_NS, "preData")?.to_string(),
                    post_data: required(report, RGP_NS, "postData")?.to_string(),
                    delete_ms: rgp_time(report, "delTime")?,
                    restore_ms: rgp_time(report, "resTime")?,
                    restore_reason: required(report, RGP_NS, "resReason")?.to_string(),
                    statements: texts(report, RGP_NS, "statement"),
                    other: text("other"),
                }),
                fee: None,
            }))
        }
        _ => Err(refuse(
            Code::SYNTAX_ERROR,
            "<rgp:restore> needs op=\"request\" or op=\"report\"",
        )),
    }
}

fn transfer(verb: &Element, e: &Element) -> Result<Op, Refusal> {
    only(e, DOMAIN_NS, &["name", "period", "authInfo"])?;
    let name = name_of(e)?;
    let auth = auth_info(e, DOMAIN_NS)?.unwrap_or_default();
    let Some(op) = transfer_op(verb)? else {
        return Ok(Op::TransferQuery {
            name,
            auth_info: auth,
        });
    };
    Ok(Op::Transfer(proto::TransferDomainRequest {
        meta: None,
        name,
        op: op as i32,
        auth_info: auth,
        period_years: period(e, DOMAIN_NS)?,
        fee: None,
        new_auth_info: String::new(),
    }))
}

/// Runs `op` in the session of `ctx`.
pub async fn run(op: Op, ctx: &Ctx<'_>) -> Response {
    let client = &ctx.session.client;
    let registrar = ctx.registrar();
    match op {
        Op::Check(names, asked) => {
            let request = proto::CheckRequest {
                registrar,
                names,
                read: None,
                fees: asked
                    .as_ref()
                    .map(|a| a.commands.clone())
                    .unwrap_or_default(),
            };
            match ctx
                .session
                .checks
                .run(request, |r| client.check_domains(r))
                .await
            {
                Ok(r) => {
                    let mut response = ctx
                        .read(Code::OK)
                        .data(render::check_data("domain", DOMAIN_NS, "name", &r.results));
                    response.extension = asked.map(|a| fee::check_data(&a, &r.results));
                    response
                }
                Err(e) => ctx.failed(&e, |_| None),
            }
        }
        Op::Info { name, hosts } => {
            let request = proto::InfoRequest {
                registrar,
                name: name.clone(),
                read: kauri_client::linearizable(),
            };
            match client.info_domain(request).await {
                Ok(r) => {
                    let d = r.domain.unwrap_or_default();
                    let mut response = ctx.read(Code::OK).data(info_data(&d, &hosts));
                    response.extend(secdns::info_data(&d.ds_data));
                    response.extend(rgp_data("infData", &d.rgp_statuses));
                    response
                }
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
        Op::Create(mut request) => {
            request.meta = ctx.meta();
            let name = request.name.clone();
            let with_fee = request.fee.is_some();
            match client.create_domain(request).await {
                Ok(r) => {
                    let d = r.domain.unwrap_or_default();
                    let mut x = Xml::new();
                    x.open("domain:creData", &[("xmlns:domain", DOMAIN_NS)])
                        .leaf("domain:name", &[], &d.name)
                        .time("domain:crDate", d.created_ms)
                        .time("domain:exDate", d.expiry_ms)
                        .close("domain:creData");
                    let mut response = ctx.done(Code::OK, r.tx.as_ref()).data(x.finish());
                    response.extension = charged(with_fee, "creData", r.charged.as_ref());
                    response
                }
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
        Op::Update(mut request) => {
            request.meta = ctx.meta();
            let name = request.name.clone();
            match client.update_domain(request).await {
                Ok(r) => ctx.done(Code::OK, r.tx.as_ref()),
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
        Op::Restore(mut request) => {
            request.meta = ctx.meta();
            let name = request.name.clone();
            let report = request.report.clone();
            let with_fee = request.fee.is_some();
            match client.restore_domain(request).await {
                Ok(r) => {
                    let d = r.domain.unwrap_or_default();
                    let mut response = ctx.done(Code::OK, r.tx.as_ref());
                    response.extend(rgp_data("upData", &d.rgp_statuses));
                    response.extend(charged(with_fee, "upData", r.charged.as_ref()));
                    response
                }
                Err(e) => ctx.failed(&e, |f| {
                    element(f, &name).or_else(|| report.as_ref().and_then(|r| report_element(f, r)))
                }),
            }
        }
        Op::Renew(mut request) => {
            request.meta = ctx.meta();
            let name = request.name.clone();
            let expiry = request.current_expiry_date.clone();
            let with_fee = request.fee.is_some();
            match client.renew_domain(request).await {
                Ok(r) => {
                    let d = r.domain.unwrap_or_default();
                    let mut x = Xml::new();
                    x.open("domain:renData", &[("xmlns:domain", DOMAIN_NS)])
                        .leaf("domain:name", &[], &d.name)
                        .time("domain:exDate", d.expiry_ms)
                        .close("domain:renData");
                    let mut response = ctx.done(Code::OK, r.tx.as_ref()).data(x.finish());
                    response.extension = charged(with_fee, "renData", r.charged.as_ref());
                    response
                }
                Err(e) => ctx.failed(&e, |f| match f {
                    "current_expiry_date" => Some(render::element_in(
                        "domain",
                        DOMAIN_NS,
                        "curExpDate",
                        &expiry,
                    )),
                    _ => element(f, &name),
                }),
            }
        }
        Op::Delete(name) => {
            let request = proto::DeleteRequest {
                meta: ctx.meta(),
                name: name.clone(),
            };
            match client.delete_domain(request).await {
                // Outside the add grace period the domain enters the
                // redemption period: the deletion is pending (1001).
                Ok(r) if r.pending_delete => ctx.done(Code::PENDING, r.tx.as_ref()),
                Ok(r) => ctx.done(Code::OK, r.tx.as_ref()),
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
        Op::TransferQuery { name, auth_info } => {
            let request = proto::TransferQueryRequest {
                registrar,
                name: name.clone(),
                auth_info,
                read: kauri_client::linearizable(),
            };
            match client.query_transfer(request).await {
                Ok(r) => ctx
                    .read(Code::OK)
                    .data(transfer_data(&r.transfer.unwrap_or_default())),
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
        Op::Transfer(mut request) => {
            request.meta = ctx.meta();
            let name = request.name.clone();
            let with_fee = request.fee.is_some();
            match client.transfer_domain(request).await {
                Ok(r) => {
                    let t = r.transfer.unwrap_or_default();
                    let code = if t.status == TransferStatus::Pending as i32 {
                        Code::PENDING
                    } else {
                        Code::OK
                    };
                    let mut response = ctx.done(code, r.tx.as_ref()).data(transfer_data(&t));
                    response.extension = charged(with_fee, "trnData", r.charged.as_ref());
                    response
                }
                Err(e) => ctx.failed(&e, |f| element(f, &name)),
            }
        }
    }
}

/// The fee extension's answer (`element`: creData, renData, trnData,
/// upData) when the command stated a fee and something was charged.
fn charged(with_fee: bool, element: &str, charged: Option<&proto::Money>) -> Option<String> {
    charged
        .filter(|_| with_fee)
        .map(|m| fee::charged_data(element, m))
}

/// The element behind a cluster's field, for `<extValue>`. Auth info is
/// never echoed.
fn element(field: &str, name: &str) -> Option<String> {
    match field {
        "name" => Some(render::element_in("domain", DOMAIN_NS, "name", name)),
        _ => None,
    }
}

/// The `<rgp:report>` element behind the restore report field `field`
/// the cluster names in a refusal, as the report stated it.
fn report_element(field: &str, r: &RestoreReport) -> Option<String> {
    let (local, text) = match field {
        "report.delete_ms" => ("delTime", render::date_time(r.delete_ms)),
        "report.restore_ms" => ("resTime", render::date_time(r.restore_ms)),
        "report.pre_data" => ("preData", r.pre_data.clone()),
        "report.post_data" => ("postData", r.post_data.clone()),
        "report.restore_reason" => ("resReason", r.restore_reason.clone()),
        "report.other" => ("other", r.other.clone()),
        _ => return None,
    };
    Some(render::element_in("rgp", RGP_NS, local, &text))
}

fn contact_type_name(t: i32) -> &'static str {
    match ContactType::try_from(t) {
        Ok(ContactType::Admin) => "admin",
        Ok(ContactType::Tech) => "tech",
        _ => "billing",
    }
}

/// `<domain:infData>` of `d`, showing the hosts `hosts` asks for.
fn info_data(d: &proto::Domain, hosts: &str) -> String {
    let mut x = Xml::new();
    x.open("domain:infData", &[("xmlns:domain", DOMAIN_NS)])
        .leaf("domain:name", &[], &d.name)
        .leaf("domain:roid", &[], &d.roid);
    for s in &d.statuses {
        x.leaf("domain:status", &[("s", s)], "");
    }
    x.opt("domain:registrant", &d.registrant);
    for c in &d.contacts {
        x.leaf(
            "domain:contact",
            &[("type", contact_type_name(c.r#type))],
            &c.contact_id,
        );
    }
    if matches!(hosts, "all" | "del") && !d.nameservers.is_empty() {
        x.open("domain:ns", &[]);
        for ns in &d.nameservers {
            x.leaf("domain:hostObj", &[], ns);
        }
        x.close("domain:ns");
    }
    if matches!(hosts, "all" | "sub") {
        for h in &d.subordinate_hosts {
            x.leaf("domain:host", &[], h);
        }
    }
    x.leaf("domain:clID", &[], &d.sponsor)
        .opt("domain:crID", &d.created_by)
        .time("domain:crDate", d.created_ms)
        .opt("domain:upID", &d.updated_by)
        .time("domain:upDate", d.updated_ms)
        .time("domain:exDate", d.expiry_ms);
    if let Some(t) = &d.transfer {
        let approved = [
            TransferStatus::ClientApproved as i32,
            TransferStatus::ServerApproved as i32,
        ];
        if approved.contains(&t.status) {
            x.time("domain:trDate", t.acted_ms);
        }
    }
    if !d.auth_info.is_empty() {
        x.open("domain:authInfo", &[])
            .leaf("domain:pw", &[], &d.auth_info)
            .close("domain:authInfo");
    }
    x.close("domain:infData");
    x.finish()
}

/// `<rgp:infData>` or `<rgp:upData>` with the RGP statuses, if any.
fn rgp_data(element: &str, statuses: &[String]) -> Option<String> {
    if statuses.is_empty() {
        return None;
    }
    let tag = format!("rgp:{element}");
    let mut x = Xml::new();
    x.open(&tag, &[("xmlns:rgp", RGP_NS)]);
    for s in statuses {
        x.leaf("rgp:rgpStatus", &[("s", s)], "");
    }
    x.close(&tag);
    Some(x.finish())
}

/// `<domain:trnData>` of a transfer.
fn transfer_data(t: &proto::TransferData) -> String {
    render::transfer_data(render::TransferOf::Domain, t)
}
