//! Registrar accounts: creating them, depositing funds and setting the
//! credit limit (staff commands), authenticating the acting registrar of
//! registrar commands, and charging and refunding.
//!
//! Every deposit, charge and refund is one ledger entry under
//! `id 0x00 seq`, carrying the server transaction id and the balance after
//! it; a refund also names the transaction of the charge it returns. The
//! account keeps running totals so that
//! `total_deposits == balance + total_charges - total_refunds` holds after
//! every command; apply asserts it (in debug builds) each time money moves.
//! A charge may take the balance down to `-credit_limit`, no further. When a
//! charge takes the balance below the account's low-balance threshold, one
//! `low_balance` poll message is queued; the next comes only after the
//! balance has been back above the threshold.

use argon2::password_hash::PasswordHash;
use kauri_proto::v1::{self, command_result::Outcome};

use super::billing;
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::fields::{self, MAX_TEXT_CHARS};
use super::model::RegistrarRecord;

/// Largest single deposit, in minor units.
pub const MAX_DEPOSIT_MINOR_UNITS: i64 = 1_000_000_000_000_000;
/// Longest stored password hash (a PHC string is about 100 characters).
pub const MAX_PASSWORD_HASH_CHARS: usize = 512;
pub(crate) fn create(
    cx: &mut Exec<'_, '_>,
    req: &v1::CreateRegistrarCommand,
) -> Result<Outcome, RegistryError> {
    fields::registrar_id("id", &req.id)?;
    fields::text("name", &req.name, true, MAX_TEXT_CHARS)?;
    check_password_hash("password_hash", &req.password_hash)?;
    fields::currency("currency", &req.currency)?;
    if cx.load::<RegistrarRecord>(req.id.as_bytes())?.is_some() {
        return Err(RegistryError::ObjectExists {
            field: "id".into(),
            kind: ObjectKind::Registrar,
            name: req.id.clone(),
        });
    }
    let record = RegistrarRecord {
        id: req.id.clone(),
        name: req.name.clone(),
        password_hash: req.password_hash.clone(),
        currency: req.currency.clone(),
        balance_minor_units: 0,
        total_deposits_minor_units: 0,
        total_charges_minor_units: 0,
        total_refunds_minor_units: 0,
        credit_limit_minor_units: 0,
        low_balance_threshold_minor_units: 0,
        low_balance_notified: false,
        ledger_len: 0,
        poll_seq: 0,
        poll_count: 0,
        created_by: cx.actor.clone(),
        created_ms: cx.now_ms,
    };
    cx.audit("registrar", &record.id, vec!["created".into()]);
    cx.save(&record);
    Ok(Outcome::Registrar(v1::RegistrarResponse {
        registrar: Some(record.to_proto(Vec::new())),
        tx: Some(cx.tx.clone()),
        read_info: None,
    }))
}

pub(crate) fn deposit(
    cx: &mut Exec<'_, '_>,
    req: &v1::DepositFundsRequest,
) -> Result<Outcome, RegistryError> {
    fields::registrar_id("registrar", &req.registrar)?;
    let amount = req.amount_minor_units;
    if amount <= 0 {
        return Err(RegistryError::invalid(
            "amount_minor_units",
            format!("{amount} is not a positive amount"),
        ));
    }
    if amount > MAX_DEPOSIT_MINOR_UNITS {
        return Err(RegistryError::LimitExceeded {
            field: "amount_minor_units".into(),
            message: format!(
                "{amount} is more than the largest deposit, {MAX_DEPOSIT_MINOR_UNITS}"
            ),
        });
    }
    fields::text("reference", &req.reference, false, MAX_TEXT_CHARS)?;
    let mut account = cx
        .load::<RegistrarRecord>(req.registrar.as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "registrar".into(),
            kind: ObjectKind::Registrar,
            name: req.registrar.clone(),
        })?;

    let entry = billing::deposit(cx, &mut account, amount, &req.reference)?;
    cx.audit(
        "registrar",
        &account.id,
        vec![format!(
            "deposit +{amount} → balance {}",
            account.balance_minor_units
        )],
    );
    Ok(Outcome::Registrar(v1::RegistrarResponse {
        registrar: Some(account.to_proto(vec![entry.to_proto()])),
        tx: Some(cx.tx.clone()),
        read_info: None,
    }))
}

/// Staff set a registrar's credit limit and low-balance threshold.
pub(crate) fn update(
    cx: &mut Exec<'_, '_>,
    req: &v1::UpdateRegistrarRequest,
) -> Result<Outcome, RegistryError> {
    fields::registrar_id("id", &req.id)?;
    let mut account = cx
        .load::<RegistrarRecord>(req.id.as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "id".into(),
            kind: ObjectKind::Registrar,
            name: req.id.clone(),
        })?;
    let mut changes = Vec::new();
    for (field, value, target) in [
        (
            "credit_limit_minor_units",
            req.credit_limit_minor_units,
            &mut account.credit_limit_minor_units,
        ),
        (
            "low_balance_threshold_minor_units",
            req.low_balance_threshold_minor_units,
            &mut account.low_balance_threshold_minor_units,
        ),
    ] {
        let Some(value) = value else { continue };
        if !(0..=MAX_DEPOSIT_MINOR_UNITS).contains(&value) {
            return Err(RegistryError::invalid(
                field,
                format!("{value} is not an amount between 0 and {MAX_DEPOSIT_MINOR_UNITS}"),
            ));
        }
        if *target != value {
            changes.push(format!("{field} {} → {value}", *target));
            *target = value;
        }
    }
    if account.balance_minor_units >= account.low_balance_threshold_minor_units {
        account.low_balance_notified = false;
    }
    cx.audit("registrar", &account.id, changes);
    cx.save(&account);
    Ok(Outcome::Registrar(v1::RegistrarResponse {
        registrar: Some(account.to_proto(Vec::new())),
        tx: Some(cx.tx.clone()),
        read_info: None,
    }))
}

/// Checks that a password hash is an argon2id PHC string with a salt.
pub(crate) fn check_password_hash(field: &str, hash: &str) -> Result<(), RegistryError> {
    if hash.chars().count() > MAX_PASSWORD_HASH_CHARS {
        return Err(RegistryError::TooLong {
            field: field.into(),
            what: "the password hash (characters)".into(),
            len: hash.chars().count(),
            max: MAX_PASSWORD_HASH_CHARS,
        });
    }
    let parsed = PasswordHash::new(hash).map_err(|e| {
        RegistryError::invalid(field, format!("is not a PHC password hash string: {e}"))
    })?;
    if parsed.algorithm.as_str() != "argon2id" || parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(RegistryError::invalid(
            field,
            "must be a salted argon2id hash",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kauri_proto::v1::Reason;

    #[test]
    fn password_hashes_must_be_salted_argon2id() {
        let good = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$ZMfpKaHBz8tbVHB6GnuwkA";
        check_password_hash("password_hash", good).unwrap();
        for bad in [
            "",
            "hunter2",
            "$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$ZMfpKaHBz8tbVHB6GnuwkA",
            "$argon2id$v=19$m=8,t=1,p=1",
        ] {
            let e = check_password_hash("password_hash", bad).unwrap_err();
            assert_eq!(e.reason(), Reason::InvalidField, "{bad}");
            assert_eq!(e.field(), "password_hash");
        }
    }
}
