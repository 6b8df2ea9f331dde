//! Hosts (RFC 5732): create, update and delete by the sponsor, and server
//! statuses set by registry staff.
//!
//! A host whose TLD this registry serves is *in-bailiwick*: it lives under
//! one of the registry's domains (its last two labels), which must exist and
//! be sponsored by the caller, and which lists it among its subordinate
//! hosts. Only in-bailiwick hosts may carry glue addresses; an out-of-bailiwick
//! host's addresses live in someone else's DNS. Domains delegating to a host
//! are counted on the host, so it cannot be deleted while in use.
//!
//! Staff may set serverUpdateProhibited (the sponsor can change nothing,
//! not even its client statuses) and serverDeleteProhibited (the sponsor
//! cannot delete it, and the purge of its superordinate domain detaches it
//! instead of deleting it); the sponsor is told by poll message.

use std::collections::BTreeSet;
use std::net::IpAddr;

use kauri_proto::v1::{self, command_result::Outcome};

use super::engine::{Cf, StateRead, StorageFault};
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::lookup::check_sponsor;
use super::model::{
    delegating_domain, delegation_key, delegation_prefix, meta, DomainRecord, HostRecord, PollKind,
    RegistrarRecord, TldRecord,
};
use super::names::{host_name, NormalizedName};
use super::poll;
use super::status::{self, ClientStatus, ServerStatus, ServerStatusChange};

/// Most addresses a host may have.
pub const MAX_ADDRESSES: usize = 13;

/// Most delegating domains a host rename rewrites: a rename is one log
/// entry, and each domain costs it a record, two index keys and an audit
/// record.
pub const MAX_RENAMED_DELEGATIONS: u64 = 1000;

pub(crate) fn create(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::CreateHostRequest,
) -> Result<Outcome, RegistryError> {
    let name = host_name("name", &req.name)?;
    if cx.load::<HostRecord>(name.ascii().as_bytes())?.is_some() {
        return Err(RegistryError::ObjectExists {
            field: "name".into(),
            kind: ObjectKind::Host,
            name: name.ascii().into(),
        });
    }
    let superordinate = superordinate_domain(cx, &name, "name")?;
    if let Some(domain) = &superordinate {
        check_sponsor(
            &caller,
            &domain.sponsor,
            "name",
            ObjectKind::Domain,
            &domain.name,
        )?;
    }
    let addresses = parse_addresses("addresses", &req.addresses)?;
    if !addresses.is_empty() && superordinate.is_none() {
        return Err(glue_refused("addresses", &name));
    }

    let record = HostRecord {
        name: name.ascii().into(),
        roid: cx.next_roid(meta::ROID_HOST, 'H')?,
        statuses: BTreeSet::new(),
        server_statuses: BTreeSet::new(),
        addresses,
        superordinate: superordinate.as_ref().map(|d| d.name.clone()),
        sponsor: caller.id.clone(),
        created_by: caller.id.clone(),
        created_ms: cx.now_ms,
        updated_by: String::new(),
        updated_ms: 0,
        domain_refs: 0,
    };
    if let Some(mut domain) = superordinate {
        let inserted = domain.subordinate_hosts.insert(record.name.clone());
        debug_assert!(inserted, "a new host cannot already be subordinate");
        cx.audit(
            "domain",
            &domain.name,
            vec![format!("subordinate hosts +{}", record.name)],
        );
        cx.save(&domain);
    }
    cx.audit("host", &record.name, vec!["created".into()]);
    cx.adjust_counter(meta::HOSTS, 1)?;
    cx.save(&record);
    Ok(response(cx, &record))
}

pub(crate) fn update(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::UpdateHostRequest,
) -> Result<Outcome, RegistryError> {
    let mut record = load_sponsored(cx, &caller, &req.name)?;
    status::check_server_not_prohibited(
        &record.server_statuses,
        ServerStatus::UpdateProhibited,
        "name",
        ObjectKind::Host,
        &record.name,
    )?;
    status::check_update_allowed(
        &record.statuses,
        "name",
        ObjectKind::Host,
        &record.name,
        &req.remove_statuses,
    )?;
    status::change_statuses(
        &mut record.statuses,
        ObjectKind::Host,
        &req.add_statuses,
        &req.remove_statuses,
    )?;

    // A rename decides where the host lives, and so whether it may have
    // glue; it is checked before the addresses are.
    let renamed = if req.new_name.is_empty() {
        None
    } else {
        Some(rename_target(cx, &caller, &record, &req.new_name)?)
    };
    let in_bailiwick = match &renamed {
        Some((_, superordinate)) => superordinate.is_some(),
        None => record.superordinate.is_some(),
    };
    for address in parse_addresses("remove_addresses", &req.remove_addresses)? {
        if !record.addresses.remove(&address) {
            return Err(RegistryError::policy(
                "remove_addresses",
                format!("{address} is not an address of host {:?}", record.name),
            ));
        }
    }
    let add = parse_addresses("add_addresses", &req.add_addresses)?;
    if !add.is_empty() && !in_bailiwick {
        return Err(RegistryError::policy(
            "add_addresses",
            format!(
                "host {:?} is not under a domain of this registry; only in-bailiwick hosts \
                 have glue addresses",
                renamed.as_ref().map_or(&record.name, |(n, _)| n)
            ),
        ));
    }
    for address in add {
        if !record.addresses.insert(address) {
            return Err(RegistryError::policy(
                "add_addresses",
                format!("{address} is already an address of host {:?}", record.name),
            ));
        }
    }
    if record.addresses.len() > MAX_ADDRESSES {
        return Err(RegistryError::policy(
            "add_addresses",
            format!(
                "host {:?} would have {} addresses, at most {MAX_ADDRESSES} allowed",
                record.name,
                record.addresses.len()
            ),
        ));
    }
    if !in_bailiwick && !record.addresses.is_empty() {
        return Err(RegistryError::policy(
            "new_name",
            format!(
                "{:?} is not under a domain of this registry, and such hosts have no glue: \
                 remove the addresses of {:?} in the same update",
                renamed.as_ref().map_or(&record.name, |(n, _)| n),
                record.name
            ),
        ));
    }
    if let Some((new_name, superordinate)) = renamed {
        rename(cx, &mut record, new_name, superordinate)?;
    }

    record.updated_by = caller.id.clone();
    record.updated_ms = cx.now_ms;
    cx.audit(
        "host",
        &record.name,
        vec![format!(
            "addresses +{:?} -{:?}; statuses +{:?} -{:?}",
            req.add_addresses, req.remove_addresses, req.add_statuses, req.remove_statuses
        )],
    );
    cx.save(&record);
    Ok(response(cx, &record))
}

pub(crate) fn delete(
    cx: &mut Exec<'_, '_>,
    caller: RegistrarRecord,
    req: &v1::DeleteRequest,
) -> Result<Outcome, RegistryError> {
    let record = load_sponsored(cx, &caller, &req.name)?;
    status::check_server_not_prohibited(
        &record.server_statuses,
        ServerStatus::DeleteProhibited,
        "name",
        ObjectKind::Host,
        &record.name,
    )?;
    status::check_not_prohibited(
        &record.statuses,
        ClientStatus::DeleteProhibited,
        "name",
        ObjectKind::Host,
        &record.name,
    )?;
    if record.domain_refs > 0 {
        return Err(RegistryError::ObjectInUse {
            field: "name".into(),
            kind: ObjectKind::Host,
            name: record.name.clone(),
            message: format!("{} domain(s) delegate to it", record.domain_refs),
        });
    }
    if let Some(parent) = &record.superordinate {
        let mut domain = cx.load::<DomainRecord>(parent.as_bytes())?.ok_or_else(|| {
            StorageFault(format!(
                "host {:?} is subordinate to {parent:?}, which does not exist",
                record.name
            ))
        })?;
        let removed = domain.subordinate_hosts.remove(&record.name);
        debug_assert!(
            removed,
            "{parent} lists its subordinate host {}",
            record.name
        );
        cx.audit(
            "domain",
            &domain.name,
            vec![format!("subordinate hosts -{}", record.name)],
        );
        cx.save(&domain);
    }
    cx.audit("host", &record.name, vec!["deleted".into()]);
    cx.delete::<HostRecord>(record.name.as_bytes());
    cx.adjust_counter(meta::HOSTS, -1)?;
    Ok(Outcome::Deleted(v1::DeleteResponse {
        tx: Some(cx.tx.clone()),
        ..Default::default()
    }))
}

/// Staff set or clear server statuses of a host, with a reason; the
/// sponsor is told when anything changed.
pub(crate) fn set_server_status(
    cx: &mut Exec<'_, '_>,
    req: &v1::SetHostServerStatusRequest,
) -> Result<Outcome, RegistryError> {
    let mut record = load(&*cx, &req.name)?;
    let change = ServerStatusChange::parse(
        ObjectKind::Host,
        &req.add_statuses,
        &req.remove_statuses,
        &req.reason,
    )?;
    let before = record.server_statuses.clone();
    change.apply_to(&mut record.server_statuses);
    // The combination rules hold by construction while hosts and contacts
    // have no pending* states; checked here so a rule added later cannot
    // be broken silently.
    let shown = record.to_proto().statuses;
    status::check_combination(&shown).map_err(|e| RegistryError::policy("add_statuses", e))?;
    poll::server_statuses_changed(
        cx,
        &record.sponsor,
        ObjectKind::Host,
        &record.name,
        &before,
        &record.server_statuses,
        &req.reason,
    )?;
    record.updated_by = cx.actor.clone();
    record.updated_ms = cx.now_ms;
    let mut changes = status::server_status_changes(&before, &record.server_statuses);
    changes.push(format!("reason: {}", req.reason));
    cx.audit("host", &record.name, changes);
    cx.save(&record);
    Ok(response(cx, &record))
}

/// Checks that `record` may be renamed to `new_name` by `caller`: the
/// name is free, and a new name under a registry domain is under one the
/// caller sponsors. A host that domains delegate to is renamed with its
/// delegations (they name it by its new name afterwards), if it is
/// in-bailiwick (an external host's name is not the registry's to move
/// other registrars' delegations to), at most [`MAX_RENAMED_DELEGATIONS`]
/// domains delegate to it, and none of them is locked by staff
/// (serverUpdateProhibited). Returns the new name and that domain
/// (`None`: out of bailiwick).
fn rename_target(
    cx: &Exec<'_, '_>,
    caller: &RegistrarRecord,
    record: &HostRecord,
    new_name: &str,
) -> Result<(String, Option<DomainRecord>), RegistryError> {
    let name = host_name("new_name", new_name)?;
    if name.ascii() == record.name {
        return Err(RegistryError::invalid(
            "new_name",
            format!("{:?} is the host's name already", record.name),
        ));
    }
    if cx.load::<HostRecord>(name.ascii().as_bytes())?.is_some() {
        return Err(RegistryError::ObjectExists {
            field: "new_name".into(),
            kind: ObjectKind::Host,
            name: name.ascii().into(),
        });
    }
    if record.domain_refs > 0 {
        let in_use = |message: String| RegistryError::ObjectInUse {
            field: "name".into(),
            kind: ObjectKind::Host,
            name: record.name.clone(),
            message,
        };
        if record.superordinate.is_none() {
            return Err(in_use(format!(
                "{} domain(s) delegate to it, and it is not under a domain of this registry: \
                 an external host that is in use cannot be renamed (create a host of the new \
                 name and move the delegations to it)",
                record.domain_refs
            )));
        }
        if record.domain_refs > MAX_RENAMED_DELEGATIONS {
            return Err(in_use(format!(
                "{} domains delegate to it, more than the {MAX_RENAMED_DELEGATIONS} a rename \
                 moves; move some to another host first",
                record.domain_refs
            )));
        }
        for domain in delegating_domains(cx, &record.name, record.domain_refs)? {
            if domain
                .server_statuses_in_effect()
                .contains(&ServerStatus::UpdateProhibited)
            {
                return Err(in_use(format!(
                    "domain {:?} delegates to it and is locked by the registry \
                     (serverUpdateProhibited); its delegation cannot be renamed",
                    domain.name
                )));
            }
        }
    }
    let superordinate = superordinate_domain(cx, &name, "new_name")?;
    if let Some(domain) = &superordinate {
        check_sponsor(
            caller,
            &domain.sponsor,
            "new_name",
            ObjectKind::Domain,
            &domain.name,
        )?;
    }
    Ok((name.ascii().to_string(), superordinate))
}

/// The domains delegating to the host `host`, which counts `refs` of
/// them, found through the delegation index; a count that differs from
/// the index is a fault of the registry's own bookkeeping.
fn delegating_domains(
    r: &Exec<'_, '_>,
    host: &str,
    refs: u64,
) -> Result<Vec<DomainRecord>, RegistryError> {
    let limit = usize::try_from(refs).unwrap_or(usize::MAX);
    let keys = r.scan(
        Cf::HostDelegations,
        &delegation_prefix(host),
        limit.saturating_add(1),
    )?;
    if keys.len() as u64 != refs {
        return Err(StorageFault(format!(
            "host {host:?} counts {refs} delegating domains, but {} are indexed",
            keys.len()
        ))
        .into());
    }
    keys.iter()
        .map(|(key, _)| {
            let name = delegating_domain(host, key).ok_or_else(|| {
                StorageFault(format!("a delegation key of {host:?} names no domain"))
            })?;
            r.load::<DomainRecord>(name.as_bytes())?.ok_or_else(|| {
                StorageFault(format!(
                    "{name:?} is indexed as delegating to {host:?} but does not exist"
                ))
                .into()
            })
        })
        .collect()
}

/// Points every delegation of the host `old_name` (now `record`) at its
/// new name: each delegating domain names the new one, the index follows,
/// the domain's trail says why, and the sponsors of domains other than
/// the host's are told by poll message.
fn rename_delegations(
    cx: &mut Exec<'_, '_>,
    old_name: &str,
    record: &HostRecord,
) -> Result<(), RegistryError> {
    // Loaded again, not kept from `rename_target`: the host's old or new
    // superordinate domain may delegate to it, and `rename` just changed it.
    for mut domain in delegating_domains(&*cx, old_name, record.domain_refs)? {
        let removed = domain.nameservers.remove(old_name);
        assert!(
            removed,
            "{} is indexed as delegating to {old_name}",
            domain.name
        );
        let inserted = domain.nameservers.insert(record.name.clone());
        assert!(
            inserted,
            "no domain delegates to the free name {}",
            record.name
        );
        cx.delete_raw(Cf::HostDelegations, &delegation_key(old_name, &domain.name));
        cx.put_raw(
            Cf::HostDelegations,
            &delegation_key(&record.name, &domain.name),
            Vec::new(),
        );
        cx.audit(
            "domain",
            &domain.name,
            vec![format!(
                "nameservers -{old_name} +{}: host renamed by its sponsor {}",
                record.name, record.sponsor
            )],
        );
        if domain.sponsor != record.sponsor {
            poll::push(
                cx,
                &domain.sponsor,
                PollKind::HostRenamed,
                &domain.name,
                format!(
                    "{} delegates to {} now: its sponsor renamed the host {old_name}",
                    domain.name, record.name
                ),
                None,
            )?;
        }
        cx.save(&domain);
    }
    Ok(())
}

/// Moves `record` to `new_name` (checked by [`rename_target`]): the old
/// key goes, the host leaves its old superordinate domain's subordinates
/// and joins its new one's.
fn rename(
    cx: &mut Exec<'_, '_>,
    record: &mut HostRecord,
    new_name: String,
    superordinate: Option<DomainRecord>,
) -> Result<(), RegistryError> {
    let old_name = std::mem::replace(&mut record.name, new_name);
    if let Some(parent) = record.superordinate.take() {
        // Renamed within the same domain, the domain is loaded once.
        let mut domain = cx.load::<DomainRecord>(parent.as_bytes())?.ok_or_else(|| {
            StorageFault(format!(
                "host {old_name:?} is subordinate to {parent:?}, which does not exist"
            ))
        })?;
        let removed = domain.subordinate_hosts.remove(&old_name);
        assert!(removed, "{parent} lists its subordinate host {old_name}");
        cx.audit(
            "domain",
            &domain.name,
            vec![format!("subordinate hosts -{old_name}")],
        );
        cx.save(&domain);
    }
    if let Some(domain) = superordinate {
        // Loaded again: it may be the domain saved just above.
        let mut domain = cx
            .load::<DomainRecord>(domain.name.as_bytes())?
            .ok_or_else(|| StorageFault(format!("{:?} vanished in a rename", domain.name)))?;
        let inserted = domain.subordinate_hosts.insert(record.name.clone());
        assert!(inserted, "a free host name cannot be subordinate already");
        cx.audit(
            "domain",
            &domain.name,
            vec![format!("subordinate hosts +{}", record.name)],
        );
        record.superordinate = Some(domain.name.clone());
        cx.save(&domain);
    }
    cx.delete::<HostRecord>(old_name.as_bytes());
    if record.domain_refs > 0 {
        rename_delegations(cx, &old_name, record)?;
    }
    cx.audit(
        "host",
        &old_name,
        vec![format!("renamed to {}", record.name)],
    );
    cx.audit(
        "host",
        &record.name,
        vec![format!("renamed from {old_name}")],
    );
    Ok(())
}

/// For an in-bailiwick host (its TLD is served here), the domain it lives
/// under, which must exist; `None` for an out-of-bailiwick host.
fn superordinate_domain(
    r: &dyn StateRead,
    name: &NormalizedName,
    field: &str,
) -> Result<Option<DomainRecord>, RegistryError> {
    if r.load::<TldRecord>(name.tld().as_bytes())?.is_none() {
        return Ok(None);
    }
    let parent = name
        .suffix(2)
        .expect("host names have at least two labels (host_name)");
    match r.load::<DomainRecord>(parent.as_bytes())? {
        Some(domain) => Ok(Some(domain)),
        None => Err(RegistryError::ObjectNotFound {
            field: field.into(),
            kind: ObjectKind::Domain,
            name: parent.into(),
        }),
    }
}

fn glue_refused(field: &str, name: &NormalizedName) -> RegistryError {
    RegistryError::policy(
        field,
        format!(
            "host {:?} is not under a domain of this registry; only in-bailiwick hosts have \
             glue addresses",
            name.ascii()
        ),
    )
}

/// Parses IP addresses into their canonical form, dropping duplicates.
/// Unspecified, loopback, multicast and broadcast addresses are refused.
fn parse_addresses(field: &str, given: &[String]) -> Result<BTreeSet<IpAddr>, RegistryError> {
    if given.len() > MAX_ADDRESSES {
        return Err(RegistryError::LimitExceeded {
            field: field.into(),
            message: format!(
                "{} addresses given, at most {MAX_ADDRESSES} allowed",
                given.len()
            ),
        });
    }
    let mut addresses = BTreeSet::new();
    for text in given {
        let address: IpAddr = text.parse().map_err(|_| {
            RegistryError::invalid(field, format!("{text:?} is not an IPv4 or IPv6 address"))
        })?;
        let unusable = address.is_unspecified()
            || address.is_loopback()
            || address.is_multicast()
            || matches!(address, IpAddr::V4(v4) if v4.is_broadcast());
        if unusable {
            return Err(RegistryError::policy(
                field,
                format!("{address} cannot be a name server address"),
            ));
        }
        addresses.insert(address);
    }
    Ok(addresses)
}

/// The host `name` (request field `name`).
fn load(r: &dyn StateRead, name: &str) -> Result<HostRecord, RegistryError> {
    let name = host_name("name", name)?;
    r.load::<HostRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "name".into(),
            kind: ObjectKind::Host,
            name: name.ascii().into(),
        })
}

/// The host `name`, which `caller` must sponsor.
fn load_sponsored(
    cx: &Exec<'_, '_>,
    caller: &RegistrarRecord,
    name: &str,
) -> Result<HostRecord, RegistryError> {
    let record = load(cx, name)?;
    check_sponsor(
        caller,
        &record.sponsor,
        "name",
        ObjectKind::Host,
        &record.name,
    )?;
    Ok(record)
}

fn response(cx: &Exec<'_, '_>, record: &HostRecord) -> Outcome {
    Outcome::Host(v1::HostResponse {
        host: Some(record.to_proto()),
        tx: Some(cx.tx.clone()),
        read_info: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kauri_proto::v1::Reason;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn addresses_are_canonical_and_deduplicated() {
        let got = parse_addresses(
            "addresses",
            &strings(&["2001:DB8:0:0::1", "192.0.2.1", "2001:db8::1"]),
        )
        .unwrap();
        let shown: Vec<String> = got.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["192.0.2.1", "2001:db8::1"]);
    }

    #[test]
    fn bad_addresses_are_refused() {
        let cases: &[(&str, Reason)] = &[
            ("192.0.2", Reason::InvalidField),
            ("192.0.2.256", Reason::InvalidField),
            ("example.nz", Reason::InvalidField),
            ("fe80::1%eth0", Reason::InvalidField),
            ("0.0.0.0", Reason::PolicyViolation),
            ("127.0.0.1", Reason::PolicyViolation),
            ("::1", Reason::PolicyViolation),
            ("224.0.0.1", Reason::PolicyViolation),
            ("255.255.255.255", Reason::PolicyViolation),
        ];
        for (text, want) in cases {
            let err = parse_addresses("addresses", &strings(&[text])).unwrap_err();
            assert_eq!((err.reason(), err.field()), (*want, "addresses"), "{text}");
        }
        let many: Vec<String> = (1..=14).map(|i| format!("192.0.2.{i}")).collect();
        assert_eq!(
            parse_addresses("addresses", &many).unwrap_err().reason(),
            Reason::LimitExceeded
        );
    }

    #[test]
    fn host_names_need_two_labels() {
        assert_eq!(
            host_name("name", "localhost").unwrap_err().reason(),
            Reason::InvalidName
        );
        assert_eq!(
            host_name("name", "NS1.Example.NZ").unwrap().ascii(),
            "ns1.example.nz"
        );
    }
}
