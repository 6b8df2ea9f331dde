//! Reads of registry state: availability checks, object info, registrar
//! accounts and password verification.
//!
//! Reads never write and take any [`StateRead`], so the API layer can serve
//! them from the applied state (linearizable after a read index, or
//! bounded-stale). Names are normalised exactly as commands normalise them.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use kauri_proto::v1;

use super::billing::ledger_tail;
use super::engine::{Cf, StateRead, StorageFault};
use super::error::{ObjectKind, RegistryError};
use super::fields;
use super::lookup::registrable_name;
use super::model::{
    self, meta, ContactRecord, DomainRecord, HostRecord, RegistrarRecord, TldRecord,
};
use super::names;
use super::names::host_name;
use super::names::tld_name;

/// Most names (or ids) one check request may ask about.
pub const MAX_CHECK_NAMES: usize = 100;

/// Availability of up to [`MAX_CHECK_NAMES`] domain names, in request order.
/// An invalid name, a name outside the registry's TLDs or against a TLD's
/// label rules is unavailable with the validation error as the reason.
pub fn check_domains(
    state: &dyn StateRead,
    names: &[String],
) -> Result<Vec<v1::CheckResult>, RegistryError> {
    let r = state;
    check_each(names, |given| {
        let (name, _) = registrable_name(r, "names", given)?;
        Ok((
            name.ascii().to_string(),
            r.load::<DomainRecord>(name.ascii().as_bytes())?.is_some(),
        ))
    })
}

/// Most commands one check may ask prices for.
pub const MAX_FEE_COMMANDS: usize = 4;

/// The prices of `commands` for each domain name (RFC 8748 fee check), in
/// request order: for a name whose TLD is known, one quote per command
/// (with a reason instead of a fee when it cannot be priced); for another
/// name, none.
pub fn fee_quotes(
    state: &dyn StateRead,
    names: &[String],
    commands: &[v1::FeeCommand],
) -> Result<Vec<Vec<v1::FeeQuote>>, RegistryError> {
    use super::tld_rules::{self, PeriodCommand};
    if commands.len() > MAX_FEE_COMMANDS {
        return Err(RegistryError::LimitExceeded {
            field: "fees".into(),
            message: format!(
                "{} commands to price, at most {MAX_FEE_COMMANDS}",
                commands.len()
            ),
        });
    }
    names
        .iter()
        .map(|given| {
            let (name, tld) = match registrable_name(state, "names", given) {
                Ok(found) => found,
                Err(RegistryError::Storage(fault)) => return Err(RegistryError::Storage(fault)),
                Err(_) => return Ok(Vec::new()),
            };
            let label = name.labels().next().unwrap_or_default().to_string();
            let prices = tld_rules::prices(&tld, &label);
            let class = if tld.lifecycle.premium.contains_key(&label) {
                "premium"
            } else {
                "standard"
            };
            Ok(commands
                .iter()
                .map(|c| {
                    let years = || {
                        tld_rules::period_years(
                            &tld.policy,
                            "period_years",
                            c.period_years,
                            &tld.name,
                        )
                    };
                    let priced = match c.command.as_str() {
                        "create" => years().and_then(|y| {
                            tld_rules::period_price(&tld, &label, PeriodCommand::Create, y)
                                .map(|p| (y, p))
                        }),
                        "renew" => years().and_then(|y| {
                            tld_rules::period_price(&tld, &label, PeriodCommand::Renew, y)
                                .map(|p| (y, p))
                        }),
                        "transfer" => Ok((1, prices.transfer)),
                        "restore" => Ok((1, prices.restore.saturating_add(prices.renew))),
                        other => Err(RegistryError::invalid(
                            "fees.command",
                            format!("{other:?}: create, renew, transfer or restore"),
                        )),
                    };
                    match priced {
                        Ok((years, fee)) => v1::FeeQuote {
                            command: c.command.clone(),
                            period_years: years,
                            fee: Some(v1::Money {
                                minor_units: fee,
                                currency: tld.policy.currency.clone(),
                            }),
                            class: class.into(),
                            reason: String::new(),
                        },
                        Err(e) => v1::FeeQuote {
                            command: c.command.clone(),
                            period_years: c.period_years,
                            fee: None,
                            class: class.into(),
                            reason: e.to_string(),
                        },
                    }
                })
                .collect())
        })
        .collect()
}

/// Availability of up to [`MAX_CHECK_NAMES`] contact ids, in request order.
pub fn check_contacts(
    state: &dyn StateRead,
    ids: &[String],
) -> Result<Vec<v1::CheckResult>, RegistryError> {
    let r = state;
    check_each(ids, |given| {
        fields::contact_id("names", given)?;
        Ok((
            given.to_string(),
            r.load::<ContactRecord>(given.as_bytes())?.is_some(),
        ))
    })
}

/// Availability of up to [`MAX_CHECK_NAMES`] host names, in request order.
pub fn check_hosts(
    state: &dyn StateRead,
    names: &[String],
) -> Result<Vec<v1::CheckResult>, RegistryError> {
    let r = state;
    check_each(names, |given| {
        let name = host_name("names", given)?;
        Ok((
            name.ascii().to_string(),
            r.load::<HostRecord>(name.ascii().as_bytes())?.is_some(),
        ))
    })
}

/// Runs `lookup` (normalised name, exists) for each name; validation errors
/// become unavailable results, storage faults end the check.
fn check_each(
    names: &[String],
    lookup: impl Fn(&str) -> Result<(String, bool), RegistryError>,
) -> Result<Vec<v1::CheckResult>, RegistryError> {
    if names.len() > MAX_CHECK_NAMES {
        return Err(RegistryError::LimitExceeded {
            field: "names".into(),
            message: format!(
                "{} names given, at most {MAX_CHECK_NAMES} per check",
                names.len()
            ),
        });
    }
    names
        .iter()
        .map(|given| match lookup(given) {
            Ok((name, exists)) => Ok(v1::CheckResult {
                name,
                available: !exists,
                reason: if exists {
                    "in use".into()
                } else {
                    String::new()
                },
                fees: Vec::new(),
            }),
            Err(RegistryError::Storage(fault)) => Err(RegistryError::Storage(fault)),
            Err(invalid) => Ok(v1::CheckResult {
                name: given.clone(),
                available: false,
                reason: invalid.to_string(),
                fees: Vec::new(),
            }),
        })
        .collect()
}

/// A domain; its auth info only when `registrar` is the sponsor.
pub fn info_domain(
    state: &dyn StateRead,
    registrar: &str,
    name: &str,
) -> Result<v1::Domain, RegistryError> {
    let name = names::normalize_name("name", name)?;
    let r = state;
    let record = r
        .load::<DomainRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| not_found(ObjectKind::Domain, name.ascii()))?;
    Ok(record.to_proto(registrar, model::read_now_ms(r)?))
}

/// A contact; its auth info only when `registrar` is the sponsor.
pub fn info_contact(
    state: &dyn StateRead,
    registrar: &str,
    id: &str,
) -> Result<v1::Contact, RegistryError> {
    fields::contact_id("name", id)?;
    let record = state
        .load::<ContactRecord>(id.as_bytes())?
        .ok_or_else(|| not_found(ObjectKind::Contact, id))?;
    Ok(record.to_proto(registrar))
}

/// A host.
pub fn info_host(state: &dyn StateRead, name: &str) -> Result<v1::Host, RegistryError> {
    let name = host_name("name", name)?;
    let record = state
        .load::<HostRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| not_found(ObjectKind::Host, name.ascii()))?;
    Ok(record.to_proto())
}

/// A TLD and its policy.
pub fn info_tld(state: &dyn StateRead, name: &str) -> Result<v1::Tld, RegistryError> {
    let name = tld_name("name", name)?;
    let record = state
        .load::<TldRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| not_found(ObjectKind::Tld, name.ascii()))?;
    Ok(record.to_proto())
}

/// A registrar account with its newest `ledger_limit` ledger entries (at
/// most [`super::billing::MAX_LEDGER_LIMIT`]), oldest first, newest last.
pub fn info_registrar(
    state: &dyn StateRead,
    id: &str,
    ledger_limit: u32,
) -> Result<v1::Registrar, RegistryError> {
    let r = state;
    fields::registrar_id("id", id)?;
    let record =
        r.load::<RegistrarRecord>(id.as_bytes())?
            .ok_or_else(|| RegistryError::ObjectNotFound {
                field: "id".into(),
                kind: ObjectKind::Registrar,
                name: id.into(),
            })?;
    let ledger = ledger_tail(r, &record, ledger_limit)?
        .iter()
        .map(|e| e.to_proto())
        .collect();
    Ok(record.to_proto(ledger))
}

/// Whether `password` matches the registrar's stored argon2id hash.
///
/// An unknown registrar is `Ok(false)`, like a wrong password, so callers
/// cannot tell the two apart. This runs argon2 with the stored parameters,
/// which is slow by design: call it off the async executor.
pub fn verify_registrar_password(
    state: &dyn StateRead,
    id: &str,
    password: &str,
) -> Result<bool, RegistryError> {
    let Some(record) = state.load::<RegistrarRecord>(id.as_bytes())? else {
        return Ok(false);
    };
    let hash = PasswordHash::new(&record.password_hash).map_err(|e| {
        StorageFault(format!(
            "stored password hash of {id:?} does not parse: {e}"
        ))
    })?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok())
}

/// How many domains exist.
pub fn count_domains(state: &dyn StateRead) -> Result<u64, RegistryError> {
    Ok(model::read_counter(state, meta::DOMAIN_COUNT)?)
}

/// Most registrars whose balances [`stats`] reports (bounds the series a
/// metrics scrape carries; a registry has far fewer).
pub const MAX_STATS_REGISTRARS: usize = 10_000;
/// Most statistics counters [`stats`] reads (object kinds per TLD and
/// lifecycle event kinds; bounded by the number of TLDs).
pub const MAX_STATS_COUNTERS: usize = 10_000;

/// The registry's own statistics, read from counters the state machine
/// keeps as it applies and from registrar accounts: the same on every
/// replica that applied the same log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Domains that exist, per TLD (A-label).
    pub domains: Vec<(String, u64)>,
    /// Hosts that exist.
    pub hosts: u64,
    /// Contacts that exist.
    pub contacts: u64,
    /// Lifecycle events run, per event kind (e.g. `AutoRenew`).
    pub events: Vec<(String, u64)>,
    /// Registrar balances: id, currency, minor units.
    pub balances: Vec<(String, String, i64)>,
}

/// Reads [`Stats`]: a scan of the statistics counters (a few per TLD) and
/// of the registrar accounts, never of domains, hosts or contacts.
pub fn stats(state: &dyn StateRead) -> Result<Stats, RegistryError> {
    let mut out = Stats::default();
    for (key, value) in state.scan_prefix(Cf::Meta, meta::STATS, None, MAX_STATS_COUNTERS)? {
        let n = value
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StorageFault(format!("meta {key:?} is not a u64")))?;
        if key == meta::HOSTS {
            out.hosts = n;
        } else if key == meta::CONTACTS {
            out.contacts = n;
        } else {
            let key = String::from_utf8_lossy(&key);
            if let Some(kind) = key.strip_prefix(meta::STATS_EVENTS) {
                out.events.push((kind.to_string(), n));
            } else if let Some(tld) = key
                .strip_prefix(meta::STATS_OBJECTS)
                .and_then(|k| k.strip_prefix("domain/"))
            {
                out.domains.push((tld.to_string(), n));
            }
        }
    }
    for (key, value) in state.scan_prefix(Cf::Registrars, &[], None, MAX_STATS_REGISTRARS)? {
        let record: RegistrarRecord = model::decode(Cf::Registrars, &key, &value)?;
        out.balances
            .push((record.id, record.currency, record.balance_minor_units));
    }
    Ok(out)
}

fn not_found(kind: ObjectKind, name: &str) -> RegistryError {
    RegistryError::ObjectNotFound {
        field: "name".into(),
        kind,
        name: name.into(),
    }
}
