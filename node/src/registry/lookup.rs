//! Finding the objects a command acts on, and checking that the caller may
//! act on them: the acting registrar, the sponsor of an object, a domain
//! and its TLD, a name a registrar may register.
//!
//! Reads only, through the registry's one read trait; every command family
//! and shared effect may use them.

use super::engine::{StateRead, StorageFault};
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::model::{DomainRecord, RegistrarRecord, TldRecord};
use super::names::{self, NormalizedName};
use super::tld_rules;

/// The acting registrar of a registrar command.
pub(crate) fn authenticate(cx: &Exec<'_, '_>) -> Result<RegistrarRecord, RegistryError> {
    cx.load::<RegistrarRecord>(cx.actor.as_bytes())?
        .ok_or_else(|| RegistryError::AuthenticationFailed {
            field: "meta.actor".into(),
            actor: cx.actor.clone(),
        })
}

/// Refuses a command on an object the caller does not sponsor.
pub(crate) fn check_sponsor(
    caller: &RegistrarRecord,
    sponsor: &str,
    field: &str,
    kind: ObjectKind,
    name: &str,
) -> Result<(), RegistryError> {
    if caller.id != sponsor {
        return Err(RegistryError::NotSponsor {
            field: field.into(),
            kind,
            name: name.into(),
        });
    }
    Ok(())
}

/// The account of registrar `id`, which must exist (objects only name
/// registrars that exist; registrars are never deleted).
pub(crate) fn load_registrar(
    r: &dyn StateRead,
    id: &str,
) -> Result<RegistrarRecord, RegistryError> {
    Ok(r.load::<RegistrarRecord>(id.as_bytes())?
        .ok_or_else(|| StorageFault(format!("registrar {id:?} does not exist")))?)
}

/// A name a registrar may register: valid, exactly one label under a TLD
/// served here, and within that TLD's label rules. Returns the name and its
/// TLD.
pub(crate) fn registrable_name(
    r: &dyn StateRead,
    field: &str,
    input: &str,
) -> Result<(NormalizedName, TldRecord), RegistryError> {
    let name = names::normalize_name(field, input)?;
    let unknown = |message: String| RegistryError::UnknownTld {
        field: field.into(),
        name: name.ascii().into(),
        message,
    };
    let Some(parent) = name.parent() else {
        return Err(unknown("a domain is a label under a TLD".into()));
    };
    let tld = r.load::<TldRecord>(parent.as_bytes())?.ok_or_else(|| {
        if name.label_count() == 2 {
            unknown(format!("there is no TLD {parent:?}"))
        } else {
            unknown(format!(
                "{parent:?} is not a TLD; registrations are one label under a TLD"
            ))
        }
    })?;
    let label = name
        .labels()
        .next()
        .expect("a name with a parent has a first label");
    let u_label = name
        .unicode()
        .and_then(|u| u.split('.').next())
        .unwrap_or(label);
    tld_rules::check_label(&tld.policy, field, label, u_label, &tld.name)?;
    tld_rules::check_available_label(&tld, field, label)?;
    Ok((name, tld))
}

/// The domain `input` (request field `name`), which `caller` must sponsor.
pub(crate) fn load_sponsored(
    r: &dyn StateRead,
    caller: &RegistrarRecord,
    input: &str,
) -> Result<DomainRecord, RegistryError> {
    let name = names::normalize_name("name", input)?;
    let record = r
        .load::<DomainRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "name".into(),
            kind: ObjectKind::Domain,
            name: name.ascii().into(),
        })?;
    check_sponsor(
        caller,
        &record.sponsor,
        "name",
        ObjectKind::Domain,
        &record.name,
    )?;
    Ok(record)
}

/// The TLD part of a registrable domain name (all but its first label).
pub(crate) fn tld_label(name: &str) -> &str {
    name.split_once('.').map_or("", |(_, p)| p)
}

/// The TLD of an existing domain (TLDs are never deleted).
pub(crate) fn tld_of(r: &dyn StateRead, record: &DomainRecord) -> Result<TldRecord, RegistryError> {
    let parent = tld_label(&record.name);
    Ok(r.load::<TldRecord>(parent.as_bytes())?
        .ok_or_else(|| StorageFault(format!("domain {:?} has no TLD {parent:?}", record.name)))?)
}
