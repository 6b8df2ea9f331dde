//! Top-level domains: creating them and replacing their policy (staff
//! commands), and the policy rules domains are checked against.
//!
//! Policy defaults: a zero `min_period_years` / `max_period_years` becomes
//! 1 / 10 years and a zero `min_label_length` / `max_label_length` becomes
//! 1 / 63 octets, so an otherwise empty policy with just a currency is a
//! sensible free TLD. Prices of zero are taken as given (free), and
//! `allow_idn` is taken literally: proto3 cannot tell an unset bool from
//! `false`, and refusing IDNs is the safer reading. The currency is always
//! required. An unset IDN table (`policy.idn`) is the default one, which
//! accepts an IDN label in any one script and refuses mixed-script labels
//! such as `pаypal` with a Cyrillic `а` (see [`super::idn`]).
//!
//! Lifecycle defaults (`TldLifecyclePolicy`, each unset field): add grace
//! 5 d, renew grace 5 d, auto-renew grace 45 d, transfer grace 5 d, transfer
//! auto-approve 5 d, redemption 30 d, pending delete 5 d, restore report 7 d,
//! transfer lock 60 d, expiry horizon 10 y; auto-renew and transfer at the
//! renew price, restore fee 0; no period prices; no premium, reserved or
//! blocked names. A new TLD starts with these; `UpdateTld` with a
//! lifecycle replaces them.
//!
//! Per-period prices (`create_period_prices`, `renew_period_prices` in the
//! lifecycle): creating or renewing for N years costs the listed price for
//! N years when the table has one, otherwise N × the yearly price. The
//! tables only price names at the TLD's standard price: a premium name
//! always costs N × its own yearly price. Each listed period must be one the
//! policy allows, so a policy update that narrows the periods is refused
//! while a table still lists a period outside them.

use kauri_proto::v1::{self, command_result::Outcome};

use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::fields;
use super::idn;
use std::collections::{BTreeMap, BTreeSet};

use super::model::{Lifecycle, TldPolicy, TldRecord};
use super::names::{self, tld_name, MAX_LABEL_OCTETS};

/// The longest registration or renewal period, in years, and the furthest
/// into the future an expiry date may be.
pub const MAX_PERIOD_YEARS: u32 = 10;
/// Minimum period when the policy gives 0.
pub const DEFAULT_MIN_PERIOD_YEARS: u32 = 1;
/// Maximum period when the policy gives 0.
pub const DEFAULT_MAX_PERIOD_YEARS: u32 = MAX_PERIOD_YEARS;
/// Shortest second-level label when the policy gives 0.
pub const DEFAULT_MIN_LABEL_LENGTH: u32 = 1;
/// Longest second-level label when the policy gives 0.
pub const DEFAULT_MAX_LABEL_LENGTH: u32 = MAX_LABEL_OCTETS as u32;
/// Highest price per year, so that price × years can never overflow.
pub const MAX_PRICE_MINOR_UNITS: i64 = 1_000_000_000_000_000;

const DAY_S: i64 = 86_400;
/// Default add grace period.
pub const DEFAULT_ADD_GRACE_S: i64 = 5 * DAY_S;
/// Default renew grace period.
pub const DEFAULT_RENEW_GRACE_S: i64 = 5 * DAY_S;
/// Default auto-renew grace period.
pub const DEFAULT_AUTO_RENEW_GRACE_S: i64 = 45 * DAY_S;
/// Default transfer grace period.
pub const DEFAULT_TRANSFER_GRACE_S: i64 = 5 * DAY_S;
/// Default time after which the registry approves a pending transfer.
pub const DEFAULT_TRANSFER_AUTO_APPROVE_S: i64 = 5 * DAY_S;
/// Default redemption period.
pub const DEFAULT_REDEMPTION_S: i64 = 30 * DAY_S;
/// Default pending-delete period (after redemption, before the purge).
pub const DEFAULT_PENDING_DELETE_S: i64 = 5 * DAY_S;
/// Default time for a restore report after the restore request.
pub const DEFAULT_RESTORE_REPORT_S: i64 = 7 * DAY_S;
/// Default transfer lock after a create or a transfer.
pub const DEFAULT_TRANSFER_LOCK_S: i64 = 60 * DAY_S;
/// Default furthest expiry date, in years from now.
pub const DEFAULT_MAX_EXPIRY_HORIZON_YEARS: u32 = MAX_PERIOD_YEARS;
/// Longest lifecycle period (ten years), so times never overflow.
pub const MAX_PERIOD_S: i64 = 3653 * DAY_S;
/// Most names in each of a TLD's premium, reserved and blocked lists.
pub const MAX_LISTED_NAMES: usize = 10_000;

pub(crate) fn create(
    cx: &mut Exec<'_, '_>,
    req: &v1::CreateTldRequest,
) -> Result<Outcome, RegistryError> {
    let name = tld_name("name", &req.name)?;
    let policy = policy_from_proto(req.policy.as_ref())?;
    if cx.load::<TldRecord>(name.ascii().as_bytes())?.is_some() {
        return Err(RegistryError::ObjectExists {
            field: "name".into(),
            kind: ObjectKind::Tld,
            name: name.ascii().into(),
        });
    }
    let record = TldRecord {
        name: name.ascii().into(),
        policy,
        lifecycle: lifecycle_from_proto(None)?,
        created_by: cx.actor.clone(),
        created_ms: cx.now_ms,
        updated_by: String::new(),
        updated_ms: 0,
    };
    cx.audit("tld", &record.name, vec!["created".into()]);
    cx.save(&record);
    Ok(response(cx, &record))
}

pub(crate) fn update(
    cx: &mut Exec<'_, '_>,
    req: &v1::UpdateTldRequest,
) -> Result<Outcome, RegistryError> {
    let name = tld_name("name", &req.name)?;
    if req.policy.is_none() && req.lifecycle.is_none() {
        return Err(RegistryError::invalid(
            "policy",
            "is missing: give a policy, a lifecycle or both",
        ));
    }
    let policy = req
        .policy
        .as_ref()
        .map(|p| policy_from_proto(Some(p)))
        .transpose()?;
    let lifecycle = req
        .lifecycle
        .as_ref()
        .map(|l| lifecycle_from_proto(Some(l)))
        .transpose()?;
    let mut record = cx
        .load::<TldRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "name".into(),
            kind: ObjectKind::Tld,
            name: name.ascii().into(),
        })?;
    let mut changes = Vec::new();
    let given_lifecycle = lifecycle.is_some();
    if let Some(policy) = policy {
        if policy != record.policy {
            changes.push("policy replaced".to_string());
        }
        record.policy = policy;
    }
    if let Some(lifecycle) = lifecycle {
        if lifecycle != record.lifecycle {
            changes.push("lifecycle replaced".to_string());
        }
        record.lifecycle = lifecycle;
    }
    check_period_prices(&record, given_lifecycle)?;
    cx.audit("tld", &record.name, changes);
    record.updated_by = cx.actor.clone();
    record.updated_ms = cx.now_ms;
    cx.save(&record);
    Ok(response(cx, &record))
}

fn response(cx: &Exec<'_, '_>, record: &TldRecord) -> Outcome {
    Outcome::Tld(v1::TldResponse {
        tld: Some(record.to_proto()),
        tx: Some(cx.tx.clone()),
        read_info: None,
    })
}

/// Validates a policy, filling in the documented defaults for zero fields.
pub(crate) fn policy_from_proto(
    policy: Option<&v1::TldPolicy>,
) -> Result<TldPolicy, RegistryError> {
    let p = policy.ok_or_else(|| RegistryError::invalid("policy", "is missing"))?;
    let or = |v: u32, default: u32| if v == 0 { default } else { v };
    let policy = TldPolicy {
        min_period_years: or(p.min_period_years, DEFAULT_MIN_PERIOD_YEARS),
        max_period_years: or(p.max_period_years, DEFAULT_MAX_PERIOD_YEARS),
        create_price_minor_units: p.create_price_minor_units,
        renew_price_minor_units: p.renew_price_minor_units,
        currency: p.currency.clone(),
        min_label_length: or(p.min_label_length, DEFAULT_MIN_LABEL_LENGTH),
        max_label_length: or(p.max_label_length, DEFAULT_MAX_LABEL_LENGTH),
        allow_idn: p.allow_idn,
        idn: idn::table_from_proto("policy.idn", p.idn.as_ref())?,
    };

    if policy.max_period_years > MAX_PERIOD_YEARS {
        return Err(RegistryError::invalid(
            "policy.max_period_years",
            format!(
                "{} years is more than the registry maximum of {MAX_PERIOD_YEARS}",
                policy.max_period_years
            ),
        ));
    }
    if policy.min_period_years > policy.max_period_years {
        return Err(RegistryError::invalid(
            "policy.min_period_years",
            format!(
                "{} years is more than max_period_years ({})",
                policy.min_period_years, policy.max_period_years
            ),
        ));
    }
    for (field, price) in [
        (
            "policy.create_price_minor_units",
            policy.create_price_minor_units,
        ),
        (
            "policy.renew_price_minor_units",
            policy.renew_price_minor_units,
        ),
    ] {
        if !(0..=MAX_PRICE_MINOR_UNITS).contains(&price) {
            return Err(RegistryError::invalid(
                field,
                format!("{price} is not a price between 0 and {MAX_PRICE_MINOR_UNITS}"),
            ));
        }
    }
    fields::currency("policy.currency", &policy.currency)?;
    if policy.max_label_length > DEFAULT_MAX_LABEL_LENGTH {
        return Err(RegistryError::invalid(
            "policy.max_label_length",
            format!(
                "{} is more than the DNS label limit of {MAX_LABEL_OCTETS}",
                policy.max_label_length
            ),
        ));
    }
    if policy.min_label_length > policy.max_label_length {
        return Err(RegistryError::invalid(
            "policy.min_label_length",
            format!(
                "{} is more than max_label_length ({})",
                policy.min_label_length, policy.max_label_length
            ),
        ));
    }
    Ok(policy)
}

/// Validates a lifecycle policy, filling in the defaults for unset fields.
pub(crate) fn lifecycle_from_proto(
    given: Option<&v1::TldLifecyclePolicy>,
) -> Result<Lifecycle, RegistryError> {
    let default = v1::TldLifecyclePolicy::default();
    let l = given.unwrap_or(&default);
    let horizon = l
        .max_expiry_horizon_years
        .unwrap_or(DEFAULT_MAX_EXPIRY_HORIZON_YEARS);
    if !(1..=MAX_PERIOD_YEARS).contains(&horizon) {
        return Err(RegistryError::invalid(
            "lifecycle.max_expiry_horizon_years",
            format!("{horizon} years is not between 1 and {MAX_PERIOD_YEARS}"),
        ));
    }
    let premium = premium_table(&l.premium_names)?;
    if l.premium_names.len() > MAX_LISTED_NAMES {
        return Err(RegistryError::LimitExceeded {
            field: "lifecycle.premium_names".into(),
            message: format!(
                "{} names, at most {MAX_LISTED_NAMES}",
                l.premium_names.len()
            ),
        });
    }
    Ok(Lifecycle {
        add_grace_ms: grace_period(
            "add_grace_seconds",
            l.add_grace_seconds,
            DEFAULT_ADD_GRACE_S,
        )?,
        renew_grace_ms: grace_period(
            "renew_grace_seconds",
            l.renew_grace_seconds,
            DEFAULT_RENEW_GRACE_S,
        )?,
        auto_renew_grace_ms: grace_period(
            "auto_renew_grace_seconds",
            l.auto_renew_grace_seconds,
            DEFAULT_AUTO_RENEW_GRACE_S,
        )?,
        transfer_grace_ms: grace_period(
            "transfer_grace_seconds",
            l.transfer_grace_seconds,
            DEFAULT_TRANSFER_GRACE_S,
        )?,
        transfer_auto_approve_ms: grace_period(
            "transfer_auto_approve_seconds",
            l.transfer_auto_approve_seconds,
            DEFAULT_TRANSFER_AUTO_APPROVE_S,
        )?,
        redemption_ms: grace_period(
            "redemption_seconds",
            l.redemption_seconds,
            DEFAULT_REDEMPTION_S,
        )?,
        pending_delete_ms: grace_period(
            "pending_delete_seconds",
            l.pending_delete_seconds,
            DEFAULT_PENDING_DELETE_S,
        )?,
        restore_report_ms: grace_period(
            "restore_report_seconds",
            l.restore_report_seconds,
            DEFAULT_RESTORE_REPORT_S,
        )?,
        transfer_lock_ms: grace_period(
            "transfer_lock_seconds",
            l.transfer_lock_seconds,
            DEFAULT_TRANSFER_LOCK_S,
        )?,
        max_expiry_horizon_years: horizon,
        auto_renew_price_minor_units: optional_price(
            "auto_renew_price_minor_units",
            l.auto_renew_price_minor_units,
        )?,
        transfer_price_minor_units: optional_price(
            "transfer_price_minor_units",
            l.transfer_price_minor_units,
        )?,
        restore_price_minor_units: optional_price(
            "restore_price_minor_units",
            l.restore_price_minor_units,
        )?
        .unwrap_or(0),
        premium,
        reserved: listed_names("reserved_names", &l.reserved_names)?,
        blocked: listed_names("blocked_names", &l.blocked_names)?,
        create_period_prices: period_price_table("create_period_prices", &l.create_period_prices)?,
        renew_period_prices: period_price_table("renew_period_prices", &l.renew_period_prices)?,
    })
}

/// A lifecycle period given in seconds (or its default), in ms.
fn grace_period(field: &str, given: Option<i64>, default_s: i64) -> Result<i64, RegistryError> {
    let seconds = given.unwrap_or(default_s);
    if !(0..=MAX_PERIOD_S).contains(&seconds) {
        return Err(RegistryError::invalid(
            format!("lifecycle.{field}"),
            format!("{seconds} s is not between 0 and {MAX_PERIOD_S} s (ten years)"),
        ));
    }
    Ok(seconds * 1000)
}

/// A price the lifecycle may leave unset.
fn optional_price(field: &str, given: Option<i64>) -> Result<Option<i64>, RegistryError> {
    match given {
        Some(p) if !(0..=MAX_PRICE_MINOR_UNITS).contains(&p) => Err(RegistryError::invalid(
            format!("lifecycle.{field}"),
            format!("{p} is not a price between 0 and {MAX_PRICE_MINOR_UNITS}"),
        )),
        other => Ok(other),
    }
}

/// Premium names and their (create, renew) prices, each listed once.
fn premium_table(given: &[v1::PremiumName]) -> Result<BTreeMap<String, (i64, i64)>, RegistryError> {
    let mut premium = BTreeMap::new();
    for p in given {
        let label = listed_label("lifecycle.premium_names", &p.label)?;
        for (what, v) in [
            ("create_price_minor_units", p.create_price_minor_units),
            ("renew_price_minor_units", p.renew_price_minor_units),
        ] {
            optional_price(&format!("premium_names.{what}"), Some(v))?;
        }
        if premium
            .insert(
                label.clone(),
                (p.create_price_minor_units, p.renew_price_minor_units),
            )
            .is_some()
        {
            return Err(RegistryError::invalid(
                "lifecycle.premium_names",
                format!("{label:?} is listed twice"),
            ));
        }
    }
    Ok(premium)
}

/// A table of prices by period in years, each period allowed and listed
/// once.
fn period_price_table(
    field: &str,
    given: &[v1::PeriodPrice],
) -> Result<BTreeMap<u32, i64>, RegistryError> {
    let field = format!("lifecycle.{field}");
    let mut table = BTreeMap::new();
    for p in given {
        if !(1..=MAX_PERIOD_YEARS).contains(&p.years) {
            return Err(RegistryError::invalid(
                &field,
                format!(
                    "{} years is not a period of 1 to {MAX_PERIOD_YEARS}",
                    p.years
                ),
            ));
        }
        if !(0..=MAX_PRICE_MINOR_UNITS).contains(&p.price_minor_units) {
            return Err(RegistryError::invalid(
                &field,
                format!(
                    "{} years: {} is not a price between 0 and {MAX_PRICE_MINOR_UNITS}",
                    p.years, p.price_minor_units
                ),
            ));
        }
        if table.insert(p.years, p.price_minor_units).is_some() {
            return Err(RegistryError::invalid(
                &field,
                format!("{} years is listed twice", p.years),
            ));
        }
    }
    Ok(table)
}

/// Reserved or blocked names, at most [`MAX_LISTED_NAMES`].
fn listed_names(field: &str, given: &[String]) -> Result<BTreeSet<String>, RegistryError> {
    if given.len() > MAX_LISTED_NAMES {
        return Err(RegistryError::LimitExceeded {
            field: format!("lifecycle.{field}"),
            message: format!("{} names, at most {MAX_LISTED_NAMES}", given.len()),
        });
    }
    given
        .iter()
        .map(|n| listed_label(&format!("lifecycle.{field}"), n))
        .collect()
}

/// Refuses period prices for periods the TLD's policy does not allow.
/// `lifecycle_given`: whether the update replaced the lifecycle (then the
/// table is the field at fault), or only the policy (then the narrowed
/// policy is).
fn check_period_prices(tld: &TldRecord, lifecycle_given: bool) -> Result<(), RegistryError> {
    let p = &tld.policy;
    let allowed = p.min_period_years..=p.max_period_years;
    let l = &tld.lifecycle;
    for (table, field) in [
        (&l.create_period_prices, "create_period_prices"),
        (&l.renew_period_prices, "renew_period_prices"),
    ] {
        if let Some(years) = table.keys().find(|y| !allowed.contains(y)) {
            let message = format!(
                "{field} lists {years} years, outside .{}'s allowed {} to {} years",
                tld.name, p.min_period_years, p.max_period_years
            );
            return Err(if lifecycle_given {
                RegistryError::invalid(format!("lifecycle.{field}"), message)
            } else {
                let bound = if *years > p.max_period_years {
                    "policy.max_period_years"
                } else {
                    "policy.min_period_years"
                };
                RegistryError::policy(
                    bound,
                    format!("{message}; change the lifecycle's period prices too"),
                )
            });
        }
    }
    Ok(())
}

/// A label in a TLD's name lists: one valid label, stored as its A-label.
fn listed_label(field: &str, given: &str) -> Result<String, RegistryError> {
    let name = names::normalize_name(field, given)?;
    if name.label_count() != 1 {
        return Err(RegistryError::invalid(
            field,
            format!("{given:?} is not a single label (list labels without the TLD)"),
        ));
    }
    Ok(name.ascii().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tld_rules::period_years;
    use kauri_proto::v1::Reason;

    fn base() -> v1::TldPolicy {
        v1::TldPolicy {
            currency: "NZD".into(),
            ..Default::default()
        }
    }

    #[test]
    fn zero_fields_get_the_documented_defaults() {
        let p = policy_from_proto(Some(&base())).unwrap();
        assert_eq!((p.min_period_years, p.max_period_years), (1, 10));
        assert_eq!((p.min_label_length, p.max_label_length), (1, 63));
        assert_eq!(p.create_price_minor_units, 0);
        assert!(!p.allow_idn);
    }

    #[test]
    fn bad_policies_name_the_field() {
        let cases: Vec<(v1::TldPolicy, &str)> = vec![
            (
                v1::TldPolicy {
                    max_period_years: 11,
                    ..base()
                },
                "policy.max_period_years",
            ),
            (
                v1::TldPolicy {
                    min_period_years: 3,
                    max_period_years: 2,
                    ..base()
                },
                "policy.min_period_years",
            ),
            (
                v1::TldPolicy {
                    create_price_minor_units: -1,
                    ..base()
                },
                "policy.create_price_minor_units",
            ),
            (
                v1::TldPolicy {
                    renew_price_minor_units: i64::MAX,
                    ..base()
                },
                "policy.renew_price_minor_units",
            ),
            (
                v1::TldPolicy {
                    currency: "nzd".into(),
                    ..base()
                },
                "policy.currency",
            ),
            (
                v1::TldPolicy {
                    currency: String::new(),
                    ..base()
                },
                "policy.currency",
            ),
            (
                v1::TldPolicy {
                    max_label_length: 64,
                    ..base()
                },
                "policy.max_label_length",
            ),
            (
                v1::TldPolicy {
                    min_label_length: 10,
                    max_label_length: 5,
                    ..base()
                },
                "policy.min_label_length",
            ),
        ];
        for (policy, field) in cases {
            let err = policy_from_proto(Some(&policy)).unwrap_err();
            assert_eq!(err.reason(), Reason::InvalidField, "{policy:?}");
            assert_eq!(err.field(), field, "{policy:?}");
        }
        assert_eq!(policy_from_proto(None).unwrap_err().field(), "policy");
    }

    #[test]
    fn tld_names_are_single_labels() {
        assert_eq!(tld_name("name", "NZ").unwrap().ascii(), "nz");
        assert_eq!(tld_name("name", "中国").unwrap().ascii(), "xn--fiqs8s");
        for bad in ["co.nz", "123", "-nz", ""] {
            assert_eq!(
                tld_name("name", bad).unwrap_err().reason(),
                Reason::InvalidName,
                "{bad}"
            );
        }
    }

    #[test]
    fn periods_default_to_the_minimum_and_respect_the_range() {
        let p = TldPolicy {
            min_period_years: 2,
            max_period_years: 5,
            ..policy_from_proto(Some(&base())).unwrap()
        };
        assert_eq!(period_years(&p, "period_years", 0, "nz").unwrap(), 2);
        assert_eq!(period_years(&p, "period_years", 5, "nz").unwrap(), 5);
        for bad in [1, 6, u32::MAX] {
            assert_eq!(
                period_years(&p, "period_years", bad, "nz")
                    .unwrap_err()
                    .reason(),
                Reason::PeriodNotAllowed
            );
        }
    }
}
