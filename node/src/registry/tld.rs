//! Top-level domains: creating them and replacing their policy (staff
//! commands), and the policy rules domains are checked against.
//!
//! Policy defaults: a zero `min_period_years` / `max_period_years` becomes
//! 1 / 10 years and a zero `min_label_length` / `max_label_length` becomes
//! 1 / 63 octets, so an otherwise empty policy with just a currency is a
//! sensible free TLD. Prices of zero are taken as given (free), and
//! `allow_idn` is taken literally: proto3 cannot tell an unset bool from
//! `false`, and refusing IDNs is the safer reading. The currency is always
//! required.

use kauri_proto::v1::{self, command_result::Outcome};

use super::apply::Exec;
use super::engine::StateRead;
use super::error::{ObjectKind, RegistryError};
use super::fields;
use super::model::{Get, TldPolicy, TldRecord};
use super::names::{self, NormalizedName, MAX_LABEL_OCTETS};

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

pub(crate) fn create<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
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
        created_by: cx.actor.clone(),
        created_ms: cx.now_ms,
        updated_by: String::new(),
        updated_ms: 0,
    };
    cx.save(&record);
    Ok(response(cx, &record))
}

pub(crate) fn update<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    req: &v1::UpdateTldRequest,
) -> Result<Outcome, RegistryError> {
    let name = tld_name("name", &req.name)?;
    let policy = policy_from_proto(req.policy.as_ref())?;
    let mut record = cx
        .load::<TldRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "name".into(),
            kind: ObjectKind::Tld,
            name: name.ascii().into(),
        })?;
    record.policy = policy;
    record.updated_by = cx.actor.clone();
    record.updated_ms = cx.now_ms;
    cx.save(&record);
    Ok(response(cx, &record))
}

fn response<S: StateRead + ?Sized>(cx: &Exec<'_, '_, S>, record: &TldRecord) -> Outcome {
    Outcome::Tld(v1::TldResponse {
        tld: Some(record.to_proto()),
        tx: Some(cx.tx.clone()),
        read_info: None,
    })
}

/// Validates a TLD name: one label, LDH or IDN, not all digits.
pub(crate) fn tld_name(field: &str, input: &str) -> Result<NormalizedName, RegistryError> {
    let name = names::normalize_name(field, input)?;
    if name.label_count() != 1 {
        return Err(RegistryError::InvalidName {
            field: field.into(),
            name: input.into(),
            message: "a TLD is a single label, without dots".into(),
        });
    }
    if name.ascii().bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegistryError::InvalidName {
            field: field.into(),
            name: input.into(),
            message: "a TLD cannot be all digits".into(),
        });
    }
    Ok(name)
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

/// Checks a second-level label (A-label form) against the TLD's label rules.
pub(crate) fn check_label(
    policy: &TldPolicy,
    field: &str,
    label: &str,
    tld: &str,
) -> Result<(), RegistryError> {
    let len = label.len();
    if len < policy.min_label_length as usize || len > policy.max_label_length as usize {
        return Err(RegistryError::policy(
            field,
            format!(
                "label {label:?} is {len} octets; .{tld} allows {} to {}",
                policy.min_label_length, policy.max_label_length
            ),
        ));
    }
    if names::is_a_label(label) && !policy.allow_idn {
        return Err(RegistryError::policy(
            field,
            format!("label {label:?} is an IDN; .{tld} does not accept IDNs"),
        ));
    }
    Ok(())
}

/// Resolves a registration period: 0 means the TLD minimum; anything
/// outside the policy's range is refused.
pub(crate) fn period_years(
    policy: &TldPolicy,
    field: &str,
    years: u32,
    tld: &str,
) -> Result<u32, RegistryError> {
    let years = if years == 0 {
        policy.min_period_years
    } else {
        years
    };
    if years < policy.min_period_years || years > policy.max_period_years {
        return Err(RegistryError::PeriodNotAllowed {
            field: field.into(),
            message: format!(
                "{years} years is outside .{tld}'s allowed {} to {} years",
                policy.min_period_years, policy.max_period_years
            ),
        });
    }
    Ok(years)
}

#[cfg(test)]
mod tests {
    use super::*;
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
