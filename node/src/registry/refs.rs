//! Reference counts: how many domains name a contact or delegate to a host.
//! A contact or host with references cannot be deleted; a count that would
//! go below zero is a fault of the registry's own bookkeeping and stops the
//! apply. Delegations are also indexed by host ([`Cf::HostDelegations`]),
//! so a host rename finds the domains to rewrite; [`derived_entries`]
//! rebuilds that index from the domains alone.

use std::collections::BTreeSet;

use super::engine::{Cf, StorageFault};
use super::error::RegistryError;
use super::exec::Exec;
use super::model::{delegation_key, delegation_keys_of, ContactRecord, HostRecord};

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

/// Adds `delta` (±1) to the domain reference count of each host, which
/// `domain` starts (+1) or stops (-1) delegating to, and indexes or
/// unindexes the delegation.
pub(crate) fn adjust_host_refs(
    cx: &mut Exec<'_, '_>,
    domain: &str,
    names: &BTreeSet<String>,
    delta: i64,
) -> Result<(), RegistryError> {
    for name in names {
        let key = delegation_key(name, domain);
        if delta > 0 {
            cx.put_raw(Cf::HostDelegations, &key, Vec::new());
        } else {
            cx.delete_raw(Cf::HostDelegations, &key);
        }
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

/// The families whose records imply entries of derived families
/// ([`derived_entries`] is empty for the others).
pub const DERIVED_FROM: [Cf; 1] = [Cf::Domains];

/// The entries of derived families ([`Cf::is_derived`]) that the record
/// stored as `value` under `key` in `cf` implies: for a domain, one
/// [`Cf::HostDelegations`] key per nameserver; for anything else, none.
/// What storage writes when it rebuilds the index of a data directory or
/// a snapshot that lacks it.
pub fn derived_entries(
    cf: Cf,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<(Cf, Vec<u8>)>, StorageFault> {
    Ok(match cf {
        Cf::Domains => delegation_keys_of(key, value)?
            .into_iter()
            .map(|k| (Cf::HostDelegations, k))
            .collect(),
        _ => Vec::new(),
    })
}
