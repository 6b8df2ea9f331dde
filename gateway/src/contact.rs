//! Contacts (RFC 5733): check, info, create, update, delete and transfer
//! (query, request, approve, reject, cancel).
//!
//! An EPP `<contact:chg>` changes some fields and keeps the rest; the
//! registry's update replaces the contact's fields as a whole. The
//! gateway reads the contact, applies the change, and sends the result
//! under the command's clTRID, so a retried update is still answered from
//! the cluster's record of the first.

use kauri_client::proto::{self, ContactFields, PostalAddress, PostalInfo, TransferStatus};

use crate::codes::Code;
use crate::render::{self, Response, TransferOf, Xml, CONTACT_NS};
use crate::request::{
    auth_info, only, refuse, required, required_child, statuses, texts, transfer_op, Refusal,
};
use crate::session::Ctx;
use crate::xml::Element;

/// A contact command.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `<check>`.
    Check(Vec<String>),
    /// `<info>`.
    Info(String),
    /// `<create>`.
    Create(proto::CreateContactRequest),
    /// `<update>`: the statuses in the request, the field changes apart.
    Update(proto::UpdateContactRequest, Option<Change>),
    /// `<delete>`.
    Delete(String),
    /// `<transfer op="query">`: the id, and the auth info when a registrar
    /// not party to the transfer asks.
    TransferQuery(String, String),
    /// `<transfer>` request, approve, reject or cancel.
    Transfer(proto::TransferContactRequest),
}

impl Op {
    /// The command's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Check(_) => "contact:check",
            Op::Info(_) => "contact:info",
            Op::Create(_) => "contact:create",
            Op::Update(..) => "contact:update",
            Op::Delete(_) => "contact:delete",
            Op::TransferQuery(..) => "contact:transfer-query",
            Op::Transfer(_) => "contact:transfer",
        }
    }
}

/// What a `<contact:chg>` changes; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Postal infos by type, each replacing the parts it names.
    pub postal: Vec<PostalChange>,
    /// New voice number.
    pub voice: Option<String>,
    /// New fax number.
    pub fax: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
    /// New disclosure preference.
    pub disclose_nothing: Option<bool>,
}

/// A `<contact:postalInfo>` inside `<contact:chg>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostalChange {
    /// "int" or "loc".
    pub kind: String,
    /// New name.
    pub name: Option<String>,
    /// New organisation.
    pub org: Option<String>,
    /// New address.
    pub address: Option<PostalAddress>,
}

impl Change {
    /// `fields` with this change applied.
    pub fn apply(&self, mut fields: ContactFields) -> ContactFields {
        for p in &self.postal {
            let at = fields.postal_info.iter().position(|i| i.r#type == p.kind);
            let info = match at {
                Some(i) => &mut fields.postal_info[i],
                None => {
                    fields.postal_info.push(PostalInfo {
                        r#type: p.kind.clone(),
                        ..Default::default()
                    });
                    fields.postal_info.last_mut().expect("just pushed")
                }
            };
            if let Some(n) = &p.name {
                info.name = n.clone();
            }
            if let Some(o) = &p.org {
                info.org = o.clone();
            }
            if let Some(a) = &p.address {
                info.address = Some(a.clone());
            }
        }
        for (new, old) in [
            (&self.voice, &mut fields.voice),
            (&self.fax, &mut fields.fax),
            (&self.email, &mut fields.email),
        ] {
            if let Some(v) = new {
                *old = v.clone();
            }
        }
        if let Some(d) = self.disclose_nothing {
            fields.disclose_nothing = d;
        }
        fields
    }
}

fn id_of(e: &Element) -> Result<String, Refusal> {
    required(e, CONTACT_NS, "id").map(str::to_string)
}

fn address(a: &Element) -> Result<PostalAddress, Refusal> {
    only(a, CONTACT_NS, &["street", "city", "sp", "pc", "cc"])?;
    let street = texts(a, CONTACT_NS, "street");
    if street.len() > 3 {
        return Err(refuse(
            Code::VALUE_RANGE,
            "at most 3 <contact:street> lines",
        ));
    }
    let text = |n: &str| a.child_text(CONTACT_NS, n).unwrap_or_default().to_string();
    Ok(PostalAddress {
        street,
        city: required(a, CONTACT_NS, "city")?.to_string(),
        state_province: text("sp"),
        postal_code: text("pc"),
        country_code: required(a, CONTACT_NS, "cc")?.to_string(),
    })
}

fn postal_kind(p: &Element) -> Result<String, Refusal> {
    match p.attr("type") {
        Some(t @ ("int" | "loc")) => Ok(t.to_string()),
        Some(t) => Err(refuse(
            Code::VALUE_SYNTAX,
            format!("postalInfo type {t:?}: int or loc"),
        )),
        None => Err(refuse(
            Code::MISSING_PARAMETER,
            "<contact:postalInfo> needs its type attribute",
        )),
    }
}

fn postal_infos(e: &Element) -> Result<Vec<PostalInfo>, Refusal> {
    let infos = e
        .children_named(CONTACT_NS, "postalInfo")
        .map(|p| {
            only(p, CONTACT_NS, &["name", "org", "addr"])?;
            Ok(PostalInfo {
                r#type: postal_kind(p)?,
                name: required(p, CONTACT_NS, "name")?.to_string(),
                org: p
                    .child_text(CONTACT_NS, "org")
                    .unwrap_or_default()
                    .to_string(),
                address: Some(address(required_child(p, CONTACT_NS, "addr")?)?),
            })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    if infos.is_empty() || infos.len() > 2 {
        return Err(refuse(
            Code::MISSING_PARAMETER,
            "a contact needs one or two <contact:postalInfo> (int, loc)",
        ));
    }
    Ok(infos)
}

/// `<contact:disclose flag="0|1">`: flag 0 asks the registry to publish
/// none of the contact's data.
fn disclose(e: &Element) -> Result<Option<bool>, Refusal> {
    let Some(d) = e.child(CONTACT_NS, "disclose") else {
        return Ok(None);
    };
    match d.attr("flag") {
        Some("0" | "false") => Ok(Some(true)),
        Some("1" | "true") => Ok(Some(false)),
        _ => Err(refuse(
            Code::SYNTAX_ERROR,
            "<contact:disclose> needs flag=\"0\" or flag=\"1\"",
        )),
    }
}

/// Reads the contact command `verb` whose object element is `e`.
pub fn parse(verb: &Element, e: &Element, ext: &[Element]) -> Result<Op, Refusal> {
    if let Some(x) = ext.first() {
        return Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            format!("extension {} is not offered for contacts", x.ns),
        ));
    }
    match verb.name.as_str() {
        "check" => {
            only(e, CONTACT_NS, &["id"])?;
            let ids = texts(e, CONTACT_NS, "id");
            crate::epp::check_names(&ids)?;
            Ok(Op::Check(ids))
        }
        "info" => {
            only(e, CONTACT_NS, &["id", "authInfo"])?;
            Ok(Op::Info(id_of(e)?))
        }
        "create" => {
            only(
                e,
                CONTACT_NS,
                &[
                    "id",
                    "postalInfo",
                    "voice",
                    "fax",
                    "email",
                    "authInfo",
                    "disclose",
                ],
            )?;
            Ok(Op::Create(proto::CreateContactRequest {
                meta: None,
                id: id_of(e)?,
                fields: Some(ContactFields {
                    postal_info: postal_infos(e)?,
                    voice: e.child_text(CONTACT_NS, "voice").unwrap_or_default().into(),
                    fax: e.child_text(CONTACT_NS, "fax").unwrap_or_default().into(),
                    email: required(e, CONTACT_NS, "email")?.to_string(),
                    disclose_nothing: disclose(e)?.unwrap_or(false),
                }),
                auth_info: auth_info(e, CONTACT_NS)?.unwrap_or_default(),
            }))
        }
        "update" => update(e),
        "delete" => {
            only(e, CONTACT_NS, &["id"])?;
            Ok(Op::Delete(id_of(e)?))
        }
        "transfer" => transfer(verb, e),
        other => Err(refuse(
            Code::UNIMPLEMENTED_COMMAND,
            format!("<{other}> of a contact is not a command (RFC 5733)"),
        )),
    }
}

fn transfer(verb: &Element, e: &Element) -> Result<Op, Refusal> {
    only(e, CONTACT_NS, &["id", "authInfo"])?;
    let id = id_of(e)?;
    let auth = auth_info(e, CONTACT_NS)?.unwrap_or_default();
    let Some(op) = transfer_op(verb)? else {
        return Ok(Op::TransferQuery(id, auth));
    };
    Ok(Op::Transfer(proto::TransferContactRequest {
        meta: None,
        id,
        op: op as i32,
        auth_info: auth,
        new_auth_info: String::new(),
    }))
}

fn update(e: &Element) -> Result<Op, Refusal> {
    only(e, CONTACT_NS, &["id", "add", "rem", "chg"])?;
    let mut request = proto::UpdateContactRequest {
        id: id_of(e)?,
        ..Default::default()
    };
    if let Some(add) = e.child(CONTACT_NS, "add") {
        only(add, CONTACT_NS, &["status"])?;
        request.add_statuses = statuses(add, CONTACT_NS)?;
    }
    if let Some(rem) = e.child(CONTACT_NS, "rem") {
        only(rem, CONTACT_NS, &["status"])?;
        request.remove_statuses = statuses(rem, CONTACT_NS)?;
    }
    let mut change = None;
    if let Some(chg) = e.child(CONTACT_NS, "chg") {
        only(
            chg,
            CONTACT_NS,
            &[
                "postalInfo",
                "voice",
                "fax",
                "email",
                "authInfo",
                "disclose",
            ],
        )?;
        request.auth_info = auth_info(chg, CONTACT_NS)?.unwrap_or_default();
        let postal = chg
            .children_named(CONTACT_NS, "postalInfo")
            .map(|p| {
                only(p, CONTACT_NS, &["name", "org", "addr"])?;
                Ok(PostalChange {
                    kind: postal_kind(p)?,
                    name: p.child_text(CONTACT_NS, "name").map(str::to_string),
                    org: p.child_text(CONTACT_NS, "org").map(str::to_string),
                    address: p.child(CONTACT_NS, "addr").map(address).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, Refusal>>()?;
        let c = Change {
            postal,
            voice: chg.child_text(CONTACT_NS, "voice").map(str::to_string),
            fax: chg.child_text(CONTACT_NS, "fax").map(str::to_string),
            email: chg.child_text(CONTACT_NS, "email").map(str::to_string),
            disclose_nothing: disclose(chg)?,
        };
        if c != Change::default() {
            change = Some(c);
        }
    }
    Ok(Op::Update(request, change))
}

fn element(field: &str, id: &str) -> Option<String> {
    (field == "id").then(|| render::element_in("contact", CONTACT_NS, "id", id))
}

fn info_request(ctx: &Ctx<'_>, id: &str) -> proto::InfoRequest {
    proto::InfoRequest {
        registrar: ctx.registrar(),
        name: id.to_string(),
        read: kauri_client::linearizable(),
    }
}

/// Runs `op` in the session of `ctx`.
pub async fn run(op: Op, ctx: &Ctx<'_>) -> Response {
    let client = &ctx.session.client;
    match op {
        Op::Check(ids) => {
            let request = proto::CheckRequest {
                registrar: ctx.registrar(),
                names: ids,
                read: None,
                fees: Vec::new(),
            };
            match ctx
                .session
                .checks
                .run(request, |r| client.check_contacts(r))
                .await
            {
                Ok(r) => ctx
                    .read(Code::OK)
                    .data(render::check_data("contact", CONTACT_NS, "id", &r.results)),
                Err(e) => ctx.failed(&e, |_| None),
            }
        }
        Op::Info(id) => match client.info_contact(info_request(ctx, &id)).await {
            Ok(r) => ctx
                .read(Code::OK)
                .data(info_data(&r.contact.unwrap_or_default())),
            Err(e) => ctx.failed(&e, |f| element(f, &id)),
        },
        Op::Create(mut request) => {
            request.meta = ctx.meta();
            let id = request.id.clone();
            match client.create_contact(request).await {
                Ok(r) => {
                    let c = r.contact.unwrap_or_default();
                    let mut x = Xml::new();
                    x.open("contact:creData", &[("xmlns:contact", CONTACT_NS)])
                        .leaf("contact:id", &[], &c.id)
                        .time("contact:crDate", c.created_ms)
                        .close("contact:creData");
                    ctx.done(Code::OK, r.tx.as_ref()).data(x.finish())
                }
                Err(e) => ctx.failed(&e, |f| element(f, &id)),
            }
        }
        Op::Update(mut request, change) => {
            let id = request.id.clone();
            if let Some(change) = change {
                let current = match client.info_contact(info_request(ctx, &id)).await {
                    Ok(r) => r.contact.unwrap_or_default(),
                    Err(e) => return ctx.failed(&e, |f| element(f, &id)),
                };
                request.fields = Some(change.apply(current.fields.unwrap_or_default()));
            }
            request.meta = ctx.meta();
            match client.update_contact(request).await {
                Ok(r) => ctx.done(Code::OK, r.tx.as_ref()),
                Err(e) => ctx.failed(&e, |f| element(f, &id)),
            }
        }
        Op::Delete(id) => {
            let request = proto::DeleteRequest {
                meta: ctx.meta(),
                name: id.clone(),
            };
            match client.delete_contact(request).await {
                Ok(r) => ctx.done(Code::OK, r.tx.as_ref()),
                Err(e) => ctx.failed(&e, |f| element(f, &id)),
            }
        }
        Op::TransferQuery(id, auth_info) => {
            let request = proto::TransferQueryRequest {
                registrar: ctx.registrar(),
                name: id.clone(),
                auth_info,
                read: kauri_client::linearizable(),
            };
            match client.query_contact_transfer(request).await {
                Ok(r) => ctx.read(Code::OK).data(render::transfer_data(
                    TransferOf::Contact,
                    &r.transfer.unwrap_or_default(),
                )),
                Err(e) => ctx.failed(&e, |f| element(f, &id)),
            }
        }
        Op::Transfer(mut request) => {
            request.meta = ctx.meta();
            let id = request.id.clone();
            match client.transfer_contact(request).await {
                Ok(r) => {
                    let t = r.transfer.unwrap_or_default();
                    let code = if t.status == TransferStatus::Pending as i32 {
                        Code::PENDING
                    } else {
                        Code::OK
                    };
                    ctx.done(code, r.tx.as_ref())
                        .data(render::transfer_data(TransferOf::Contact, &t))
                }
                Err(e) => ctx.failed(&e, |f| element(f, &id)),
            }
        }
    }
}

/// `<contact:infData>` of `c`.
fn info_data(c: &proto::Contact) -> String {
    let fields = c.fields.clone().unwrap_or_default();
    let mut x = Xml::new();
    x.open("contact:infData", &[("xmlns:contact", CONTACT_NS)])
        .leaf("contact:id", &[], &c.id)
        .leaf("contact:roid", &[], &c.roid);
    for s in &c.statuses {
        x.leaf("contact:status", &[("s", s)], "");
    }
    for p in &fields.postal_info {
        let a = p.address.clone().unwrap_or_default();
        x.open("contact:postalInfo", &[("type", &p.r#type)])
            .leaf("contact:name", &[], &p.name)
            .opt("contact:org", &p.org)
            .open("contact:addr", &[]);
        for s in &a.street {
            x.leaf("contact:street", &[], s);
        }
        x.leaf("contact:city", &[], &a.city)
            .opt("contact:sp", &a.state_province)
            .opt("contact:pc", &a.postal_code)
            .leaf("contact:cc", &[], &a.country_code)
            .close("contact:addr")
            .close("contact:postalInfo");
    }
    x.opt("contact:voice", &fields.voice)
        .opt("contact:fax", &fields.fax)
        .leaf("contact:email", &[], &fields.email)
        .leaf("contact:clID", &[], &c.sponsor)
        .leaf("contact:crID", &[], &c.created_by)
        .time("contact:crDate", c.created_ms)
        .opt("contact:upID", &c.updated_by)
        .time("contact:upDate", c.updated_ms);
    let approved = [
        TransferStatus::ClientApproved as i32,
        TransferStatus::ServerApproved as i32,
    ];
    if let Some(t) = c.transfer.as_ref().filter(|t| approved.contains(&t.status)) {
        x.time("contact:trDate", t.acted_ms);
    }
    if !c.auth_info.is_empty() {
        x.open("contact:authInfo", &[])
            .leaf("contact:pw", &[], &c.auth_info)
            .close("contact:authInfo");
    }
    if fields.disclose_nothing {
        x.open("contact:disclose", &[("flag", "0")])
            .leaf("contact:name", &[("type", "int")], "")
            .leaf("contact:addr", &[("type", "int")], "")
            .leaf("contact:voice", &[], "")
            .leaf("contact:fax", &[], "")
            .leaf("contact:email", &[], "")
            .close("contact:disclose");
    }
    x.close("contact:infData");
    x.finish()
}
