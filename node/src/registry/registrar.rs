//! Registrar accounts: creating them and depositing funds (staff commands),
//! authenticating the acting registrar of registrar commands, and charging
//! for creates and renewals.
//!
//! Every deposit and every charge is one ledger entry under
//! `id 0x00 seq`, carrying the server transaction id and the balance after
//! it. The account keeps running totals so that
//! `total_deposits == balance + total_charges` holds after every command;
//! apply asserts it (in debug builds) each time money moves.

use argon2::password_hash::PasswordHash;
use kauri_proto::v1::{self, command_result::Outcome};

use super::apply::Exec;
use super::engine::StateRead;
use super::error::{ObjectKind, RegistryError};
use super::fields::{self, MAX_TEXT_CHARS};
use super::model::{ledger_key, Get, LedgerKind, LedgerRecord, RegistrarRecord};

/// Largest single deposit, in minor units.
pub const MAX_DEPOSIT_MINOR_UNITS: i64 = 1_000_000_000_000_000;
/// Longest stored password hash (a PHC string is about 100 characters).
pub const MAX_PASSWORD_HASH_CHARS: usize = 512;
/// Most ledger entries an info request returns.
pub const MAX_LEDGER_LIMIT: u32 = 1000;

pub(crate) fn create<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
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
        ledger_len: 0,
        created_by: cx.actor.clone(),
        created_ms: cx.now_ms,
    };
    cx.save(&record);
    Ok(Outcome::Registrar(v1::RegistrarResponse {
        registrar: Some(record.to_proto(Vec::new())),
        tx: Some(cx.tx.clone()),
        read_info: None,
    }))
}

pub(crate) fn deposit<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
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

    let overflow = || RegistryError::LimitExceeded {
        field: "amount_minor_units".into(),
        message: format!("the balance of {:?} would overflow", req.registrar),
    };
    account.balance_minor_units = account
        .balance_minor_units
        .checked_add(amount)
        .ok_or_else(overflow)?;
    account.total_deposits_minor_units = account
        .total_deposits_minor_units
        .checked_add(amount)
        .ok_or_else(overflow)?;
    let entry = append_ledger(
        cx,
        &mut account,
        LedgerKind::Deposit,
        amount,
        "",
        &req.reference,
    )?;
    Ok(Outcome::Registrar(v1::RegistrarResponse {
        registrar: Some(account.to_proto(vec![entry.to_proto()])),
        tx: Some(cx.tx.clone()),
        read_info: None,
    }))
}

/// The acting registrar of a registrar command.
pub(crate) fn authenticate<S: StateRead + ?Sized>(
    cx: &Exec<'_, '_, S>,
) -> Result<RegistrarRecord, RegistryError> {
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

/// What a command on `object` (a domain, the request's `name`) will cost:
/// `price_per_year × years` in `currency`, checked against the account
/// before anything is written. A currency mismatch is about `name`; the
/// amount is about `period_years`.
pub(crate) fn quote(
    account: &RegistrarRecord,
    object: &str,
    price_per_year: i64,
    years: u32,
    currency: &str,
) -> Result<v1::Money, RegistryError> {
    if account.currency != currency {
        return Err(RegistryError::CurrencyMismatch {
            field: "name".into(),
            object: object.into(),
            registrar_currency: account.currency.clone(),
            price_currency: currency.into(),
        });
    }
    let price = price_per_year
        .checked_mul(i64::from(years))
        .filter(|p| *p >= 0)
        .ok_or_else(|| {
            RegistryError::policy(
                "period_years",
                format!("{price_per_year} × {years} years overflows"),
            )
        })?;
    if price > account.balance_minor_units {
        return Err(RegistryError::InsufficientFunds {
            field: "period_years".into(),
            balance_minor_units: account.balance_minor_units,
            price_minor_units: price,
            currency: currency.into(),
        });
    }
    Ok(v1::Money {
        minor_units: price,
        currency: currency.into(),
    })
}

/// Charges a quoted price and writes the ledger entry and the account.
pub(crate) fn charge<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    account: &mut RegistrarRecord,
    kind: LedgerKind,
    price: &v1::Money,
    object: &str,
) -> Result<(), RegistryError> {
    debug_assert_eq!(
        price.currency, account.currency,
        "quote checked the currency"
    );
    let amount = price.minor_units;
    if amount < 0 || amount > account.balance_minor_units {
        // quote() refuses both; reaching here means a caller skipped it.
        return Err(RegistryError::InsufficientFunds {
            field: "period_years".into(),
            balance_minor_units: account.balance_minor_units,
            price_minor_units: amount,
            currency: account.currency.clone(),
        });
    }
    account.balance_minor_units -= amount;
    account.total_charges_minor_units = account
        .total_charges_minor_units
        .checked_add(amount)
        .ok_or_else(|| RegistryError::LimitExceeded {
            field: "meta.actor".into(),
            message: format!("the charges total of {:?} would overflow", account.id),
        })?;
    append_ledger(cx, account, kind, -amount, object, "")?;
    Ok(())
}

/// Appends one ledger entry for a movement already applied to `account`,
/// and saves the account.
fn append_ledger<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    account: &mut RegistrarRecord,
    kind: LedgerKind,
    amount: i64,
    object: &str,
    reference: &str,
) -> Result<LedgerRecord, RegistryError> {
    debug_assert!(
        account.is_balanced(),
        "deposits == balance + charges and balance >= 0 for {:?}: {account:?}",
        account.id
    );
    account.ledger_len += 1;
    let entry = LedgerRecord {
        registrar: account.id.clone(),
        seq: account.ledger_len,
        time_ms: cx.now_ms,
        kind,
        amount_minor_units: amount,
        balance_after_minor_units: account.balance_minor_units,
        object: object.into(),
        sv_trid: cx.tx.sv_trid.clone(),
        reference: reference.into(),
    };
    cx.save(&entry);
    cx.save(&*account);
    Ok(entry)
}

/// The newest `limit` ledger entries of `account` (at most
/// [`MAX_LEDGER_LIMIT`]), oldest first.
pub(crate) fn ledger_tail(
    r: &(impl Get + ?Sized),
    account: &RegistrarRecord,
    limit: u32,
) -> Result<Vec<LedgerRecord>, RegistryError> {
    let limit = u64::from(limit.min(MAX_LEDGER_LIMIT));
    let first = account.ledger_len.saturating_sub(limit) + 1;
    let mut entries = Vec::new();
    for seq in first..=account.ledger_len {
        let key = ledger_key(&account.id, seq);
        let entry = r.load::<LedgerRecord>(&key)?.ok_or_else(|| {
            super::engine::StorageFault(format!(
                "ledger entry {seq} of {:?} is missing",
                account.id
            ))
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Checks that a password hash is an argon2id PHC string with a salt.
fn check_password_hash(field: &str, hash: &str) -> Result<(), RegistryError> {
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

    fn account(balance: i64) -> RegistrarRecord {
        RegistrarRecord {
            id: "rar-a".into(),
            name: "A".into(),
            password_hash: String::new(),
            currency: "NZD".into(),
            balance_minor_units: balance,
            total_deposits_minor_units: balance,
            total_charges_minor_units: 0,
            ledger_len: 0,
            created_by: "staff".into(),
            created_ms: 0,
        }
    }

    #[test]
    fn quotes_check_currency_and_funds() {
        let a = account(100);
        let q = quote(&a, "x.nz", 50, 2, "NZD").unwrap();
        assert_eq!(q.minor_units, 100);
        let cases = [
            (quote(&a, "x.nz", 51, 2, "NZD"), Reason::InsufficientFunds),
            (quote(&a, "x.nz", 1, 1, "AUD"), Reason::CurrencyMismatch),
            (
                quote(&a, "x.nz", i64::MAX, 2, "NZD"),
                Reason::PolicyViolation,
            ),
        ];
        for (r, want) in cases {
            assert_eq!(r.unwrap_err().reason(), want);
        }
    }

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
