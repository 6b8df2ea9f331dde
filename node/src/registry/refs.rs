//! Reference counts: how many domains name a contact or delegate to a host.
//! A contact or host with references cannot be deleted; a count that would
//! go below zero is a fault of the registry's own bookkeeping and stops the
//! apply.

use std::collections::BTreeSet;

use super::engine::StorageFault;
use super::error::RegistryError;
use super::exec::Exec;
use super::model::{ContactRecord, HostRecord};

/// Adds `delta` (±1) to the domain reference count of each contact.
pub(crate) fn adjust_contact_refs(
    cx: &mut Exec<'_, '_>,
    ids: &BTreeSet<&str>,
    delta: i64,
) -> Result<(), RegistryError> {
    for id in ids {
        let mut contact = cx.load::<ContactRecord>(id.as_bytes())?.ok_or_else(|| {
            StorageFault(format!(
                "a domain refers to contact {id:?}, which does not exist"
            ))
        })?;
        contact.domain_refs = contact
            .domain_refs
            .checked_add_signed(delta)
            .ok_or_else(|| StorageFault(format!("reference count of contact {id:?} is off")))?;
        cx.save(&contact);
    }
    Ok(())
}

/// Adds `delta` (±1) to the domain reference count of each host.
pub(crate) fn adjust_host_refs(
    cx: &mut Exec<'_, '_>,
    names: &BTreeSet<String>,
    delta: i64,
) -> Result<(), RegistryError> {
    for name in names {
        let mut host = cx.load::<HostRecord>(name.as_bytes())?.ok_or_else(|| {
            StorageFault(format!(
                "a domain delegates to host {name:?}, which does not exist"
            ))
        })?;
        host.domain_refs = host
            .domain_refs
            .checked_add_signed(delta)
            .ok_or_else(|| StorageFault(format!("reference count of host {name:?} is off")))?;
        cx.save(&host);
    }
    Ok(())
}
