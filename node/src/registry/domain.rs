//! Domains (RFC 5731): create, update, renew and delete.
//!
//! Registrations are second-level: exactly one label under a TLD the
//! registry serves, checked against that TLD's label rules and its reserved
//! and blocked lists. Creating and renewing charge the sponsor the TLD's
//! price for the period (its period table's price, else `price × years`;
//! premium names `premium price × years`) in the TLD's currency and open an
//! add or renew grace period.
//! Expiry dates move by calendar years (29 February plus one year is
//! 28 February), computed from the entry's registry time, so every replica
//! gets the same dates.
//!
//! A domain keeps its contacts' and hosts' reference counts up to date on
//! every change, so contacts and hosts in use cannot be deleted. A delete is
//! refused while hosts exist under the domain; inside the add grace period
//! it purges the domain at once, otherwise the domain enters the redemption
//! period (see `lifecycle`). Either way the grace periods in effect are
//! refunded. A domain pending deletion or transfer refuses every other
//! change, and serverUpdateProhibited refuses every update by the sponsor.

use std::collections::BTreeSet;

use kauri_proto::v1::{self, command_result::Outcome};

use super::audit;
use super::calendar::{add_years, date, parse_date, utc_date};
use super::dnssec;
use super::engine::{StateRead, StorageFault};
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::fields;
use super::lookup::{self, load_sponsored, registrable_name, tld_of};
use super::model::{
    meta, ContactRecord, ContactRole, DomainRecord, DomainState, EventKind, Grace, GraceKind,
    HostRecord, LedgerKind, RegistrarRecord,
};
use super::names::host_name;
use super::schedule::schedule;
use super::status::{self, ClientStatus, ServerStatus};
use super::tld_rules::{self, PeriodCommand};
use super::{billing, refs, transitions};

/// Most name servers a domain may have.
pub const MAX_NAMESERVERS: usize = 13;
/// Most (role, contact) pairs a domain may have.
pub const MAX_DOMAIN_CONTACTS: usize = 16;

pub(crate) fn create(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::CreateDomainRequest,
) -> Result<Outcome, RegistryError> {
    let (name, tld) = registrable_name(&*cx, "name", &req.name)?;
    if cx.exists::<DomainRecord>(name.ascii().as_bytes())? {
        return Err(RegistryError::ObjectExists {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: name.ascii().into(),
        });
    }
    // The id is taken first; if a later check refuses the command, the
    // rollback of its writes returns it (the scenario tests rely on that to
    // show rejected commands leave no trace).
    let roid = cx.next_roid(meta::ROID_DOMAIN, 'D')?;
    let years = tld_rules::period_years(&tld.policy, "period_years", req.period_years, &tld.name)?;

    let registrant = existing_registrant(&*cx, &req.registrant)?;
    let contacts = contact_list(&*cx, "contacts", &req.contacts)?;
    let nameservers = nameserver_list(&*cx, "nameservers", &req.nameservers)?;
    fields::auth_info("auth_info", &req.auth_info)?;
    let ds = dnssec::ds_list("ds_data", &req.ds_data)?;
    dnssec::check_count("ds_data", name.ascii(), ds.len())?;

    let expiry_ms = add_years(cx.now_ms, years)
        .ok_or_else(|| RegistryError::policy("period_years", "the expiry date is out of range"))?;
    let label = name.labels().next().unwrap_or_default().to_string();
    let price = tld_rules::period_price(&tld, &label, PeriodCommand::Create, years)?;
    billing::agreed(req.fee.as_ref(), price, &tld.policy.currency)?;
    let price = billing::quote(
        &caller,
        name.ascii(),
        price,
        &tld.policy.currency,
        "period_years",
    )?;

    let mut record = DomainRecord {
        name: name.ascii().into(),
        roid,
        statuses: BTreeSet::new(),
        server_statuses: BTreeSet::new(),
        suspensions: Default::default(),
        registrant,
        contacts: contacts.into_iter().collect(),
        nameservers: nameservers.into_iter().collect(),
        subordinate_hosts: BTreeSet::new(),
        sponsor: caller.id.clone(),
        created_by: caller.id.clone(),
        created_ms: cx.now_ms,
        updated_by: String::new(),
        updated_ms: 0,
        expiry_ms,
        auth_info: req.auth_info.clone(),
        state: DomainState::Active,
        graces: Vec::new(),
        transfer: None,
        transfer_lock_until_ms: cx.now_ms + tld.lifecycle.transfer_lock_ms,
        events: Vec::new(),
        ds: ds.into_iter().collect(),
    };
    let entry = billing::charge(cx, &caller.id, LedgerKind::Create, &price, &record.name)?;
    record.graces.push(Grace {
        kind: GraceKind::Add,
        ends_ms: cx.now_ms + tld.lifecycle.add_grace_ms,
        registrar: caller.id.clone(),
        amount_minor_units: price.minor_units,
        currency: price.currency.clone(),
        sv_trid: entry.sv_trid,
    });
    schedule(cx, &mut record, EventKind::AutoRenew, expiry_ms)?;
    refs::adjust_contact_refs(cx, &record.referenced_contacts(), 1)?;
    refs::adjust_host_refs(cx, &record.name, &record.nameservers, 1)?;
    cx.adjust_counter(meta::DOMAIN_COUNT, 1)?;
    cx.adjust_counter(&meta::domains_in(lookup::tld_label(&record.name)), 1)?;
    cx.audit(
        "domain",
        &record.name,
        vec![
            format!("created for {years} y, expiry {}", date(expiry_ms)),
            format!("charged {} {}", price.minor_units, price.currency),
        ],
    );
    cx.save(&record);
    Ok(response(cx, &record, Some(price)))
}

/// Refuses any change by the sponsor to a domain pending deletion or
/// transfer, or one carrying `server` (or, unless `None`, `client`).
fn check_transformable(
    d: &DomainRecord,
    client: Option<ClientStatus>,
    server: ServerStatus,
) -> Result<(), RegistryError> {
    let prohibits = |status: &str| RegistryError::StatusProhibits {
        field: "name".into(),
        kind: ObjectKind::Domain,
        name: d.name.clone(),
        status: status.into(),
    };
    if d.state.is_deleted() {
        return Err(prohibits("pendingDelete"));
    }
    if d.transfer_pending() {
        return Err(prohibits("pendingTransfer"));
    }
    if d.server_statuses_in_effect().contains(&server) {
        return Err(prohibits(server.as_str()));
    }
    if let Some(client) = client {
        status::check_not_prohibited(&d.statuses, client, "name", ObjectKind::Domain, &d.name)?;
    }
    Ok(())
}

pub(crate) fn update(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::UpdateDomainRequest,
) -> Result<Outcome, RegistryError> {
    let before = load_sponsored(&*cx, &caller, &req.name)?;
    check_transformable(&before, None, ServerStatus::UpdateProhibited)?;
    status::check_update_allowed(
        &before.statuses,
        "name",
        ObjectKind::Domain,
        &before.name,
        &req.remove_statuses,
    )?;
    let mut after = before.clone();
    status::change_statuses(
        &mut after.statuses,
        ObjectKind::Domain,
        &req.add_statuses,
        &req.remove_statuses,
    )?;

    change_nameservers(&*cx, &mut after, req)?;
    change_contacts(&*cx, &mut after, req)?;
    change_ds(&mut after, req)?;
    if !req.registrant.is_empty() {
        after.registrant = existing_registrant(&*cx, &req.registrant)?;
    }
    if !req.auth_info.is_empty() {
        fields::auth_info("auth_info", &req.auth_info)?;
        after.auth_info = req.auth_info.clone();
    }
    after.updated_by = caller.id.clone();
    after.updated_ms = cx.now_ms;

    // Reference counts follow the difference between before and after.
    let contacts_before = before.referenced_contacts();
    let contacts_after = after.referenced_contacts();
    refs::adjust_contact_refs(cx, &(&contacts_before - &contacts_after), -1)?;
    refs::adjust_contact_refs(cx, &(&contacts_after - &contacts_before), 1)?;
    refs::adjust_host_refs(
        cx,
        &after.name,
        &(&before.nameservers - &after.nameservers),
        -1,
    )?;
    refs::adjust_host_refs(
        cx,
        &after.name,
        &(&after.nameservers - &before.nameservers),
        1,
    )?;
    let changes = audit::domain_changes(&before, &after);
    cx.audit("domain", &after.name, changes);
    cx.save(&after);
    Ok(response(cx, &after, None))
}

/// Applies an update's name server removals and additions to `d`.
fn change_nameservers(
    r: &dyn StateRead,
    d: &mut DomainRecord,
    req: &v1::UpdateDomainRequest,
) -> Result<(), RegistryError> {
    for ns in nameserver_names("remove_nameservers", &req.remove_nameservers)? {
        if !d.nameservers.remove(&ns) {
            return Err(RegistryError::policy(
                "remove_nameservers",
                format!("{ns:?} is not a name server of {:?}", d.name),
            ));
        }
    }
    for ns in nameserver_list(r, "add_nameservers", &req.add_nameservers)? {
        if d.nameservers.contains(&ns) {
            return Err(RegistryError::policy(
                "add_nameservers",
                format!("{ns:?} is already a name server of {:?}", d.name),
            ));
        }
        d.nameservers.insert(ns);
    }
    if d.nameservers.len() > MAX_NAMESERVERS {
        return Err(RegistryError::policy(
            "add_nameservers",
            format!(
                "{:?} would have {} name servers, at most {MAX_NAMESERVERS} allowed",
                d.name,
                d.nameservers.len()
            ),
        ));
    }
    Ok(())
}

/// Applies an update's DS removals (all first, when asked) and additions
/// to `d`.
fn change_ds(d: &mut DomainRecord, req: &v1::UpdateDomainRequest) -> Result<(), RegistryError> {
    if req.remove_all_ds {
        d.ds.clear();
    }
    for ds in dnssec::ds_list("remove_ds", &req.remove_ds)? {
        if !d.ds.remove(&ds) {
            return Err(RegistryError::policy(
                "remove_ds",
                format!(
                    "DS record {} is not one of {:?}'s",
                    dnssec::describe(&ds),
                    d.name
                ),
            ));
        }
    }
    for ds in dnssec::ds_list("add_ds", &req.add_ds)? {
        if !d.ds.insert(ds.clone()) {
            return Err(RegistryError::policy(
                "add_ds",
                format!(
                    "DS record {} is already one of {:?}'s",
                    dnssec::describe(&ds),
                    d.name
                ),
            ));
        }
    }
    dnssec::check_count("add_ds", &d.name, d.ds.len())
}

/// Applies an update's contact removals and additions to `d`.
fn change_contacts(
    r: &dyn StateRead,
    d: &mut DomainRecord,
    req: &v1::UpdateDomainRequest,
) -> Result<(), RegistryError> {
    for pair in contact_pairs("remove_contacts", &req.remove_contacts)? {
        if !d.contacts.remove(&pair) {
            return Err(RegistryError::policy(
                "remove_contacts",
                format!("{:?} is not a {:?} contact of {:?}", pair.1, pair.0, d.name),
            ));
        }
    }
    for pair in contact_list(r, "add_contacts", &req.add_contacts)? {
        if d.contacts.contains(&pair) {
            return Err(RegistryError::policy(
                "add_contacts",
                format!(
                    "{:?} is already a {:?} contact of {:?}",
                    pair.1, pair.0, d.name
                ),
            ));
        }
        d.contacts.insert(pair);
    }
    if d.contacts.len() > MAX_DOMAIN_CONTACTS {
        return Err(RegistryError::policy(
            "add_contacts",
            format!(
                "{:?} would have {} contacts, at most {MAX_DOMAIN_CONTACTS} allowed",
                d.name,
                d.contacts.len()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn renew(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::RenewDomainRequest,
) -> Result<Outcome, RegistryError> {
    let mut record = load_sponsored(&*cx, &caller, &req.name)?;
    check_transformable(
        &record,
        Some(ClientStatus::RenewProhibited),
        ServerStatus::RenewProhibited,
    )?;
    let before = record.clone();
    let tld = tld_of(&*cx, &record)?;

    let given = parse_date(&req.current_expiry_date).ok_or_else(|| {
        RegistryError::invalid(
            "current_expiry_date",
            format!(
                "{:?} is not a date of the form YYYY-MM-DD",
                req.current_expiry_date
            ),
        )
    })?;
    let actual = utc_date(record.expiry_ms)
        .ok_or_else(|| StorageFault(format!("expiry of {:?} is out of range", record.name)))?;
    if given != actual {
        return Err(RegistryError::ExpiryDateMismatch {
            field: "current_expiry_date".into(),
            given: req.current_expiry_date.clone(),
            actual: actual.to_string(),
        });
    }

    let years = tld_rules::period_years(&tld.policy, "period_years", req.period_years, &tld.name)?;
    let out_of_range = || RegistryError::policy("period_years", "the expiry date is out of range");
    let new_expiry_ms = add_years(record.expiry_ms, years).ok_or_else(out_of_range)?;
    let horizon = tld.lifecycle.max_expiry_horizon_years;
    let limit_ms = add_years(cx.now_ms, horizon).ok_or_else(out_of_range)?;
    if new_expiry_ms > limit_ms {
        return Err(RegistryError::PeriodNotAllowed {
            field: "period_years".into(),
            message: format!(
                "renewing by {years} years would expire on {}, more than {horizon} \
                 years from now",
                utc_date(new_expiry_ms).map_or_else(String::new, |d| d.to_string())
            ),
        });
    }
    let label = record
        .name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let price = tld_rules::period_price(&tld, &label, PeriodCommand::Renew, years)?;
    billing::agreed(req.fee.as_ref(), price, &tld.policy.currency)?;
    let price = billing::quote(
        &caller,
        &record.name,
        price,
        &tld.policy.currency,
        "period_years",
    )?;

    let entry = billing::charge(cx, &caller.id, LedgerKind::Renew, &price, &record.name)?;
    record.expiry_ms = new_expiry_ms;
    record.graces.retain(|g| g.ends_ms > cx.now_ms);
    record.graces.push(Grace {
        kind: GraceKind::Renew,
        ends_ms: cx.now_ms + tld.lifecycle.renew_grace_ms,
        registrar: caller.id.clone(),
        amount_minor_units: price.minor_units,
        currency: price.currency.clone(),
        sv_trid: entry.sv_trid,
    });
    schedule(cx, &mut record, EventKind::AutoRenew, new_expiry_ms)?;
    record.updated_by = caller.id.clone();
    record.updated_ms = cx.now_ms;
    let mut changes = audit::domain_changes(&before, &record);
    changes.push(format!("charged {} {}", price.minor_units, price.currency));
    cx.audit("domain", &record.name, changes);
    cx.save(&record);
    Ok(response(cx, &record, Some(price)))
}

pub(crate) fn delete(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::DeleteRequest,
) -> Result<Outcome, RegistryError> {
    let mut record = load_sponsored(&*cx, &caller, &req.name)?;
    check_transformable(
        &record,
        Some(ClientStatus::DeleteProhibited),
        ServerStatus::DeleteProhibited,
    )?;
    if !record.subordinate_hosts.is_empty() {
        let hosts: Vec<&str> = record
            .subordinate_hosts
            .iter()
            .map(String::as_str)
            .collect();
        return Err(RegistryError::ObjectInUse {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: record.name.clone(),
            message: format!("delete its subordinate hosts first: {}", hosts.join(", ")),
        });
    }
    // Every grace period in effect refunds its charge to the sponsor.
    let now = cx.now_ms;
    let mut refunded = 0i64;
    let mut currency = String::new();
    let mut in_add_grace = false;
    for g in record.graces.clone() {
        if g.ends_ms <= now || g.registrar != caller.id {
            continue;
        }
        in_add_grace |= g.kind == GraceKind::Add;
        billing::refund(
            cx,
            &caller.id,
            g.amount_minor_units,
            &record.name,
            &g.sv_trid,
        )?;
        refunded += g.amount_minor_units;
        currency = g.currency.clone();
    }
    let refunded = (refunded > 0).then_some(v1::Money {
        minor_units: refunded,
        currency,
    });
    if in_add_grace {
        transitions::purge(cx, record)?;
    } else {
        let before = record.clone();
        transitions::enter_redemption(cx, &mut record)?;
        record.updated_by = caller.id.clone();
        record.updated_ms = now;
        let mut changes = audit::domain_changes(&before, &record);
        if let Some(m) = &refunded {
            changes.push(format!("refunded {} {}", m.minor_units, m.currency));
        }
        cx.audit("domain", &record.name, changes);
        cx.save(&record);
    }
    Ok(Outcome::Deleted(v1::DeleteResponse {
        tx: Some(cx.tx.clone()),
        pending_delete: !in_add_grace,
        refunded,
    }))
}

/// The registrant, which must be given and exist.
fn existing_registrant(r: &dyn StateRead, id: &str) -> Result<String, RegistryError> {
    if id.is_empty() {
        return Err(RegistryError::invalid("registrant", "is required"));
    }
    fields::contact_id("registrant", id)?;
    if !r.exists::<ContactRecord>(id.as_bytes())? {
        return Err(RegistryError::ObjectNotFound {
            field: "registrant".into(),
            kind: ObjectKind::Contact,
            name: id.into(),
        });
    }
    Ok(id.to_string())
}

/// Parses (role, contact id) pairs without looking them up.
fn contact_pairs(
    field: &str,
    given: &[v1::DomainContact],
) -> Result<Vec<(ContactRole, String)>, RegistryError> {
    if given.len() > MAX_DOMAIN_CONTACTS {
        return Err(RegistryError::LimitExceeded {
            field: field.into(),
            message: format!(
                "{} contacts given, at most {MAX_DOMAIN_CONTACTS} allowed",
                given.len()
            ),
        });
    }
    let mut pairs = Vec::with_capacity(given.len());
    for c in given {
        let role = ContactRole::from_proto(c.r#type).ok_or_else(|| {
            RegistryError::invalid(
                field,
                format!(
                    "contact {:?} needs a type: ADMIN, TECH or BILLING",
                    c.contact_id
                ),
            )
        })?;
        fields::contact_id(field, &c.contact_id)?;
        let pair = (role, c.contact_id.clone());
        if pairs.contains(&pair) {
            return Err(RegistryError::invalid(
                field,
                format!("{:?} is listed twice as {role:?} contact", c.contact_id),
            ));
        }
        pairs.push(pair);
    }
    Ok(pairs)
}

/// Parses (role, contact id) pairs whose contacts must exist.
fn contact_list(
    r: &dyn StateRead,
    field: &str,
    given: &[v1::DomainContact],
) -> Result<Vec<(ContactRole, String)>, RegistryError> {
    let pairs = contact_pairs(field, given)?;
    for (_, id) in &pairs {
        if !r.exists::<ContactRecord>(id.as_bytes())? {
            return Err(RegistryError::ObjectNotFound {
                field: field.into(),
                kind: ObjectKind::Contact,
                name: id.clone(),
            });
        }
    }
    Ok(pairs)
}

/// Normalises name server names without looking them up.
fn nameserver_names(field: &str, given: &[String]) -> Result<Vec<String>, RegistryError> {
    if given.len() > MAX_NAMESERVERS {
        return Err(RegistryError::LimitExceeded {
            field: field.into(),
            message: format!(
                "{} name servers given, at most {MAX_NAMESERVERS} allowed",
                given.len()
            ),
        });
    }
    let mut out: Vec<String> = Vec::with_capacity(given.len());
    for input in given {
        let name = host_name(field, input)?;
        if out.iter().any(|n| n == name.ascii()) {
            return Err(RegistryError::invalid(
                field,
                format!("{:?} is listed twice", name.ascii()),
            ));
        }
        out.push(name.ascii().into());
    }
    Ok(out)
}

/// Normalises name server names whose host objects must exist.
fn nameserver_list(
    r: &dyn StateRead,
    field: &str,
    given: &[String],
) -> Result<Vec<String>, RegistryError> {
    let names = nameserver_names(field, given)?;
    for name in &names {
        if !r.exists::<HostRecord>(name.as_bytes())? {
            return Err(RegistryError::ObjectNotFound {
                field: field.into(),
                kind: ObjectKind::Host,
                name: name.clone(),
            });
        }
    }
    Ok(names)
}

fn response(cx: &Exec<'_, '_>, record: &DomainRecord, charged: Option<v1::Money>) -> Outcome {
    Outcome::Domain(v1::DomainResponse {
        domain: Some(record.to_proto(&record.sponsor, cx.now_ms)),
        tx: Some(cx.tx.clone()),
        read_info: None,
        charged,
    })
}
