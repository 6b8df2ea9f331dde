//! What a TLD's policy allows and what it costs: label rules, reserved
//! and blocked names, registration periods and prices (standard, premium,
//! per period).
//!
//! Pure functions of a [`TldRecord`]; the commands that create and change
//! TLD policies are in `tld`, the ones that charge these prices in the
//! domain families.

use super::error::RegistryError;
use super::idn;
use super::model::{TldPolicy, TldRecord};
use super::names;

/// Which prices apply to a second-level `label` under a TLD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prices {
    pub create: i64,
    pub renew: i64,
    pub auto_renew: i64,
    pub transfer: i64,
    pub restore: i64,
}

/// The prices of `label` under `tld`: premium prices when listed.
pub(crate) fn prices(tld: &TldRecord, label: &str) -> Prices {
    let l = &tld.lifecycle;
    match l.premium.get(label) {
        Some(&(create, renew)) => Prices {
            create,
            renew,
            auto_renew: renew,
            transfer: renew,
            restore: l.restore_price_minor_units,
        },
        None => {
            let renew = tld.policy.renew_price_minor_units;
            Prices {
                create: tld.policy.create_price_minor_units,
                renew,
                auto_renew: l.auto_renew_price_minor_units.unwrap_or(renew),
                transfer: l.transfer_price_minor_units.unwrap_or(renew),
                restore: l.restore_price_minor_units,
            }
        }
    }
}

/// A command priced by its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeriodCommand {
    /// `CreateDomain`.
    Create,
    /// `RenewDomain`.
    Renew,
}

/// What `command` on `label` under `tld` for `years` costs, in minor units:
/// the TLD's price for that whole period when its table lists one (names at
/// the standard price only), otherwise `years` × the yearly price, premium
/// or standard.
pub(crate) fn period_price(
    tld: &TldRecord,
    label: &str,
    command: PeriodCommand,
    years: u32,
) -> Result<i64, RegistryError> {
    let yearly = prices(tld, label);
    let (per_year, table) = match command {
        PeriodCommand::Create => (yearly.create, &tld.lifecycle.create_period_prices),
        PeriodCommand::Renew => (yearly.renew, &tld.lifecycle.renew_period_prices),
    };
    if !tld.lifecycle.premium.contains_key(label) {
        if let Some(&price) = table.get(&years) {
            return Ok(price);
        }
    }
    per_year
        .checked_mul(i64::from(years))
        .filter(|p| *p >= 0)
        .ok_or_else(|| {
            RegistryError::policy(
                "period_years",
                format!("{per_year} × {years} years overflows"),
            )
        })
}

/// Refuses a reserved or blocked label.
pub(crate) fn check_available_label(
    tld: &TldRecord,
    field: &str,
    label: &str,
) -> Result<(), RegistryError> {
    if tld.lifecycle.reserved.contains(label) {
        return Err(RegistryError::policy(
            field,
            format!("{label:?} is reserved by the .{} registry", tld.name),
        ));
    }
    if tld.lifecycle.blocked.contains(label) {
        return Err(RegistryError::policy(
            field,
            format!("{label:?} is blocked under .{}", tld.name),
        ));
    }
    Ok(())
}

/// Checks a second-level label against the TLD's label rules: its length
/// (A-label form), whether IDNs are accepted, and for an IDN whether its
/// scripts are in the TLD's IDN table. `label` is the A-label form and
/// `u_label` the Unicode form.
pub(crate) fn check_label(
    policy: &TldPolicy,
    field: &str,
    label: &str,
    u_label: &str,
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
    if names::is_a_label(label) {
        idn::check_label_scripts(&policy.idn, field, u_label, label, tld)?;
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
