//! Contacts (RFC 5733): create, update and delete by the sponsor, and
//! server statuses set by registry staff.
//!
//! A contact id is case-sensitive and unique across the registry. Domains
//! refer to contacts (as registrant or admin/tech/billing contact); the
//! contact counts the domains that do, so it cannot be deleted while any
//! domain still refers to it.
//!
//! Staff may set serverUpdateProhibited (the sponsor can change nothing,
//! not even its client statuses), serverDeleteProhibited and
//! serverTransferProhibited (which refuses transfer requests and cancels a
//! pending transfer); the sponsor is told by poll message. Transfers are in
//! [`super::contact_transfer`]; while one is pending the contact can be
//! neither updated nor deleted (RFC 5733 section 2.2).

use kauri_proto::v1::{self, command_result::Outcome};

use super::engine::StateRead;
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::fields::{self, MAX_TEXT_CHARS};
use super::lookup::check_sponsor;
use super::model::{
    meta, Address, ContactFields, ContactRecord, PostalInfo, PostalKind, RegistrarRecord,
};
use super::status::{self, ClientStatus, ServerStatus, ServerStatusChange};
use super::{contact_transfer, poll};

/// Most street lines of an address (RFC 5733).
pub const MAX_STREET_LINES: usize = 3;
/// Longest postal code (RFC 5733 `pcType`).
pub const MAX_POSTAL_CODE_CHARS: usize = 16;

pub(crate) fn create(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::CreateContactRequest,
) -> Result<Outcome, RegistryError> {
    fields::contact_id("id", &req.id)?;
    let contact_fields = contact_fields(req.fields.as_ref())?;
    fields::auth_info("auth_info", &req.auth_info)?;
    if cx.load::<ContactRecord>(req.id.as_bytes())?.is_some() {
        return Err(RegistryError::ObjectExists {
            field: "id".into(),
            kind: ObjectKind::Contact,
            name: req.id.clone(),
        });
    }
    let record = ContactRecord {
        id: req.id.clone(),
        roid: cx.next_roid(meta::ROID_CONTACT, 'C')?,
        statuses: Default::default(),
        server_statuses: Default::default(),
        fields: contact_fields,
        sponsor: caller.id.clone(),
        created_by: caller.id.clone(),
        created_ms: cx.now_ms,
        updated_by: String::new(),
        updated_ms: 0,
        auth_info: req.auth_info.clone(),
        domain_refs: 0,
        transfer: None,
        transfer_event: None,
    };
    cx.audit("contact", &record.id, vec!["created".into()]);
    cx.adjust_counter(meta::CONTACTS, 1)?;
    cx.save(&record);
    Ok(response(cx, &record))
}

pub(crate) fn update(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::UpdateContactRequest,
) -> Result<Outcome, RegistryError> {
    let mut record = load_sponsored(cx, &caller, "id", &req.id)?;
    not_pending_transfer(&record, "id")?;
    status::check_server_not_prohibited(
        &record.server_statuses,
        ServerStatus::UpdateProhibited,
        "id",
        ObjectKind::Contact,
        &record.id,
    )?;
    status::check_update_allowed(
        &record.statuses,
        "id",
        ObjectKind::Contact,
        &record.id,
        &req.remove_statuses,
    )?;
    status::change_statuses(
        &mut record.statuses,
        ObjectKind::Contact,
        &req.add_statuses,
        &req.remove_statuses,
    )?;
    if req.fields.is_some() {
        record.fields = contact_fields(req.fields.as_ref())?;
    }
    if !req.auth_info.is_empty() {
        fields::auth_info("auth_info", &req.auth_info)?;
        record.auth_info = req.auth_info.clone();
    }
    record.updated_by = caller.id.clone();
    record.updated_ms = cx.now_ms;
    let mut changes = Vec::new();
    if !req.add_statuses.is_empty() || !req.remove_statuses.is_empty() {
        changes.push(format!(
            "statuses +{:?} -{:?}",
            req.add_statuses, req.remove_statuses
        ));
    }
    if req.fields.is_some() {
        changes.push("fields replaced".into());
    }
    if !req.auth_info.is_empty() {
        changes.push("auth info changed".into());
    }
    cx.audit("contact", &record.id, changes);
    cx.save(&record);
    Ok(response(cx, &record))
}

pub(crate) fn delete(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::DeleteRequest,
) -> Result<Outcome, RegistryError> {
    let record = load_sponsored(cx, &caller, "name", &req.name)?;
    not_pending_transfer(&record, "name")?;
    status::check_server_not_prohibited(
        &record.server_statuses,
        ServerStatus::DeleteProhibited,
        "name",
        ObjectKind::Contact,
        &record.id,
    )?;
    status::check_not_prohibited(
        &record.statuses,
        ClientStatus::DeleteProhibited,
        "name",
        ObjectKind::Contact,
        &record.id,
    )?;
    if record.domain_refs > 0 {
        return Err(RegistryError::ObjectInUse {
            field: "name".into(),
            kind: ObjectKind::Contact,
            name: record.id.clone(),
            message: format!("{} domain(s) refer to it", record.domain_refs),
        });
    }
    cx.audit("contact", &record.id, vec!["deleted".into()]);
    cx.delete::<ContactRecord>(record.id.as_bytes());
    cx.adjust_counter(meta::CONTACTS, -1)?;
    Ok(Outcome::Deleted(v1::DeleteResponse {
        tx: Some(cx.tx.clone()),
        ..Default::default()
    }))
}

/// Staff set or clear server statuses of a contact, with a reason; the
/// sponsor is told when anything changed.
pub(crate) fn set_server_status(
    cx: &mut Exec<'_, '_>,
    req: &v1::SetContactServerStatusRequest,
) -> Result<Outcome, RegistryError> {
    let mut record = load(&*cx, "id", &req.id)?;
    let change = ServerStatusChange::parse(
        ObjectKind::Contact,
        &req.add_statuses,
        &req.remove_statuses,
        &req.reason,
    )?;
    let before = record.server_statuses.clone();
    change.apply_to(&mut record.server_statuses);
    if record.transfer_pending()
        && record
            .server_statuses
            .contains(&ServerStatus::TransferProhibited)
    {
        contact_transfer::server_cancel(
            cx,
            &mut record,
            &format!("staff set serverTransferProhibited ({})", req.reason),
        )?;
    }
    // pendingTransfer with a transfer prohibition cannot happen (cancelled
    // above); checked here so a rule added later cannot be broken
    // silently.
    let shown = record.to_proto("").statuses;
    status::check_combination(&shown).map_err(|e| RegistryError::policy("add_statuses", e))?;
    poll::server_statuses_changed(
        cx,
        &record.sponsor,
        ObjectKind::Contact,
        &record.id,
        &before,
        &record.server_statuses,
        &req.reason,
    )?;
    record.updated_by = cx.actor.clone();
    record.updated_ms = cx.now_ms;
    let mut changes = status::server_status_changes(&before, &record.server_statuses);
    changes.push(format!("reason: {}", req.reason));
    cx.audit("contact", &record.id, changes);
    cx.save(&record);
    Ok(response(cx, &record))
}

/// Refuses while a transfer of `record` is pending (RFC 5733: transform
/// commands other than `<transfer>` are refused then).
fn not_pending_transfer(record: &ContactRecord, field: &str) -> Result<(), RegistryError> {
    if record.transfer_pending() {
        return Err(RegistryError::StatusProhibits {
            field: field.into(),
            kind: ObjectKind::Contact,
            name: record.id.clone(),
            status: "pendingTransfer".into(),
        });
    }
    Ok(())
}

/// The contact `id` (request field `field`).
fn load(r: &dyn StateRead, field: &str, id: &str) -> Result<ContactRecord, RegistryError> {
    fields::contact_id(field, id)?;
    r.load::<ContactRecord>(id.as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: field.into(),
            kind: ObjectKind::Contact,
            name: id.into(),
        })
}

/// The contact `id` (request field `field`), which `caller` must sponsor.
fn load_sponsored(
    cx: &Exec<'_, '_>,
    caller: &RegistrarRecord,
    field: &str,
    id: &str,
) -> Result<ContactRecord, RegistryError> {
    let record = load(cx, field, id)?;
    check_sponsor(caller, &record.sponsor, field, ObjectKind::Contact, id)?;
    Ok(record)
}

fn response(cx: &Exec<'_, '_>, record: &ContactRecord) -> Outcome {
    Outcome::Contact(v1::ContactResponse {
        contact: Some(record.to_proto(&record.sponsor)),
        tx: Some(cx.tx.clone()),
        read_info: None,
    })
}

/// Validates a contact's data (RFC 5733 section 2.4 and 3.2.1).
fn contact_fields(given: Option<&v1::ContactFields>) -> Result<ContactFields, RegistryError> {
    let given = given.ok_or_else(|| RegistryError::invalid("fields", "is missing"))?;
    if given.postal_info.is_empty() || given.postal_info.len() > 2 {
        return Err(RegistryError::invalid(
            "fields.postal_info",
            format!(
                "needs one or two entries (one \"int\", one \"loc\"), got {}",
                given.postal_info.len()
            ),
        ));
    }
    let mut postal_info = Vec::with_capacity(given.postal_info.len());
    for p in &given.postal_info {
        let info = postal(p)?;
        if postal_info.iter().any(|q: &PostalInfo| q.kind == info.kind) {
            return Err(RegistryError::invalid(
                "fields.postal_info.type",
                format!("{:?} is given twice", info.kind.as_str()),
            ));
        }
        postal_info.push(info);
    }
    postal_info.sort_by_key(|p| p.kind);

    if !given.voice.is_empty() {
        fields::phone("fields.voice", &given.voice)?;
    }
    if !given.fax.is_empty() {
        fields::phone("fields.fax", &given.fax)?;
    }
    if given.email.is_empty() {
        return Err(RegistryError::invalid("fields.email", "is required"));
    }
    fields::email("fields.email", &given.email)?;

    Ok(ContactFields {
        postal_info,
        voice: given.voice.clone(),
        fax: given.fax.clone(),
        email: given.email.clone(),
        disclose_nothing: given.disclose_nothing,
    })
}

fn postal(p: &v1::PostalInfo) -> Result<PostalInfo, RegistryError> {
    let kind = match p.r#type.as_str() {
        "int" => PostalKind::Int,
        "loc" => PostalKind::Loc,
        other => {
            return Err(RegistryError::invalid(
                "fields.postal_info.type",
                format!("{other:?} is not \"int\" or \"loc\""),
            ))
        }
    };
    fields::text("fields.postal_info.name", &p.name, true, MAX_TEXT_CHARS)?;
    fields::text("fields.postal_info.org", &p.org, false, MAX_TEXT_CHARS)?;
    let a = p
        .address
        .as_ref()
        .ok_or_else(|| RegistryError::invalid("fields.postal_info.address", "is missing"))?;
    if a.street.len() > MAX_STREET_LINES {
        return Err(RegistryError::invalid(
            "fields.postal_info.address.street",
            format!(
                "has {} lines, at most {MAX_STREET_LINES} allowed",
                a.street.len()
            ),
        ));
    }
    for line in &a.street {
        fields::text(
            "fields.postal_info.address.street",
            line,
            true,
            MAX_TEXT_CHARS,
        )?;
    }
    fields::text(
        "fields.postal_info.address.city",
        &a.city,
        true,
        MAX_TEXT_CHARS,
    )?;
    fields::text(
        "fields.postal_info.address.state_province",
        &a.state_province,
        false,
        MAX_TEXT_CHARS,
    )?;
    fields::text(
        "fields.postal_info.address.postal_code",
        &a.postal_code,
        false,
        MAX_POSTAL_CODE_CHARS,
    )?;
    fields::country_code("fields.postal_info.address.country_code", &a.country_code)?;

    let info = PostalInfo {
        kind,
        name: p.name.clone(),
        org: p.org.clone(),
        address: Address {
            street: a.street.clone(),
            city: a.city.clone(),
            state_province: a.state_province.clone(),
            postal_code: a.postal_code.clone(),
            country_code: a.country_code.clone(),
        },
    };
    // RFC 5733: the "int" form is restricted to 7-bit ASCII.
    if kind == PostalKind::Int {
        let texts = [
            &info.name,
            &info.org,
            &info.address.city,
            &info.address.state_province,
        ]
        .into_iter()
        .chain(&info.address.street)
        .chain([&info.address.postal_code]);
        if let Some(t) = texts.into_iter().find(|t| !t.is_ascii()) {
            return Err(RegistryError::invalid(
                "fields.postal_info",
                format!("{t:?} is not ASCII; \"int\" postal info must be ASCII, use \"loc\""),
            ));
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kauri_proto::v1::Reason;

    pub(crate) fn sample() -> v1::ContactFields {
        v1::ContactFields {
            postal_info: vec![v1::PostalInfo {
                r#type: "int".into(),
                name: "John Doe".into(),
                org: "Example Ltd".into(),
                address: Some(v1::PostalAddress {
                    street: vec!["123 Example St".into()],
                    city: "Wellington".into(),
                    state_province: String::new(),
                    postal_code: "6011".into(),
                    country_code: "NZ".into(),
                }),
            }],
            voice: "+64.41234567".into(),
            fax: String::new(),
            email: "jdoe@example.nz".into(),
            disclose_nothing: false,
        }
    }

    #[test]
    fn a_complete_contact_is_accepted() {
        let f = contact_fields(Some(&sample())).unwrap();
        assert_eq!(f.to_proto(), sample());
    }

    #[test]
    fn postal_info_is_sorted_int_before_loc() {
        let mut given = sample();
        let mut loc = given.postal_info[0].clone();
        loc.r#type = "loc".into();
        loc.name = "Jöhn Døe".into();
        given.postal_info.insert(0, loc);
        let f = contact_fields(Some(&given)).unwrap();
        let kinds: Vec<_> = f.postal_info.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [PostalKind::Int, PostalKind::Loc]);
    }

    #[test]
    fn bad_contact_fields_name_the_field() {
        type Edit = fn(&mut v1::ContactFields);
        let cases: &[(Edit, &str, Reason)] = &[
            (
                |f| f.postal_info.clear(),
                "fields.postal_info",
                Reason::InvalidField,
            ),
            (
                |f| {
                    let again = f.postal_info[0].clone();
                    f.postal_info.push(again)
                },
                "fields.postal_info.type",
                Reason::InvalidField,
            ),
            (
                |f| f.postal_info[0].r#type = "intl".into(),
                "fields.postal_info.type",
                Reason::InvalidField,
            ),
            (
                |f| f.postal_info[0].name.clear(),
                "fields.postal_info.name",
                Reason::InvalidField,
            ),
            (
                |f| f.postal_info[0].name = "x".repeat(256),
                "fields.postal_info.name",
                Reason::TooLong,
            ),
            (
                |f| f.postal_info[0].name = "Jöhn".into(),
                "fields.postal_info",
                Reason::InvalidField,
            ),
            (
                |f| f.postal_info[0].address = None,
                "fields.postal_info.address",
                Reason::InvalidField,
            ),
            (
                |f| {
                    if let Some(a) = f.postal_info[0].address.as_mut() {
                        a.country_code = "nz".into()
                    }
                },
                "fields.postal_info.address.country_code",
                Reason::InvalidField,
            ),
            (
                |f| {
                    if let Some(a) = f.postal_info[0].address.as_mut() {
                        a.street = vec!["a".into(); 4]
                    }
                },
                "fields.postal_info.address.street",
                Reason::InvalidField,
            ),
            (|f| f.email.clear(), "fields.email", Reason::InvalidField),
            (
                |f| f.email = "not-an-address".into(),
                "fields.email",
                Reason::InvalidField,
            ),
            (
                |f| f.voice = "04 123 4567".into(),
                "fields.voice",
                Reason::InvalidField,
            ),
            (|f| f.fax = "+64".into(), "fields.fax", Reason::InvalidField),
        ];
        for (edit, field, reason) in cases {
            let mut given = sample();
            edit(&mut given);
            let err = contact_fields(Some(&given)).unwrap_err();
            assert_eq!((err.field(), err.reason()), (*field, *reason), "{err}");
        }
        assert_eq!(contact_fields(None).unwrap_err().field(), "fields");
    }
}
