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

use super::apply::Exec;
use super::engine::StateRead;
use super::engine::StorageFault;
use super::error::{ObjectKind, RegistryError};
use super::fields::{self, MAX_TEXT_CHARS};
use super::model::{ledger_key, Get, LedgerKind, LedgerRecord, PollKind, RegistrarRecord};
use super::poll;

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
    if account.balance_minor_units >= account.low_balance_threshold_minor_units {
        account.low_balance_notified = false;
    }
    let entry = append_ledger(
        cx,
        &mut account,
        LedgerKind::Deposit,
        amount,
        "",
        &req.reference,
        "",
    )?;
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

/// Staff set a registrar's credit limit and low-balance threshold.
pub(crate) fn update<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
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

/// The account of registrar `id`, which must exist (objects only name
/// registrars that exist; registrars are never deleted).
pub(crate) fn load(r: &(impl Get + ?Sized), id: &str) -> Result<RegistrarRecord, RegistryError> {
    Ok(r.load::<RegistrarRecord>(id.as_bytes())?
        .ok_or_else(|| StorageFault(format!("registrar {id:?} does not exist")))?)
}

/// What a command on `object` (a domain, the request's `name`) will cost:
/// `price` (for the whole period, see `tld::period_price`) in `currency`,
/// checked against the account (balance plus credit limit) before anything
/// is written. A currency mismatch is about `name`; the amount is about
/// `funds_field`.
pub(crate) fn quote(
    account: &RegistrarRecord,
    object: &str,
    price: i64,
    currency: &str,
    funds_field: &str,
) -> Result<v1::Money, RegistryError> {
    if account.currency != currency {
        return Err(RegistryError::CurrencyMismatch {
            field: "name".into(),
            object: object.into(),
            registrar_currency: account.currency.clone(),
            price_currency: currency.into(),
        });
    }
    debug_assert!(
        price >= 0,
        "TLD prices are validated non-negative, got {price}"
    );
    if price > account.available_minor_units() {
        return Err(RegistryError::InsufficientFunds {
            field: funds_field.into(),
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

/// Charges `price` (already quoted, or checked again here) to registrar
/// `id`: writes the ledger entry and the account, and queues a low-balance
/// poll message when the balance crosses the threshold.
pub(crate) fn charge<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    id: &str,
    kind: LedgerKind,
    price: &v1::Money,
    object: &str,
) -> Result<LedgerRecord, RegistryError> {
    debug_assert!(kind.is_charge(), "{kind:?} is not a charge");
    let mut account = load(&*cx, id)?;
    // Re-checked here, against the account as it is now.
    quote(
        &account,
        object,
        price.minor_units,
        &price.currency,
        "period_years",
    )?;
    let amount = price.minor_units;
    account.balance_minor_units -= amount;
    account.total_charges_minor_units = account
        .total_charges_minor_units
        .checked_add(amount)
        .ok_or_else(|| RegistryError::LimitExceeded {
            field: "meta.actor".into(),
            message: format!("the charges total of {:?} would overflow", account.id),
        })?;
    let threshold = account.low_balance_threshold_minor_units;
    let crossed =
        threshold > 0 && account.balance_minor_units < threshold && !account.low_balance_notified;
    if crossed {
        account.low_balance_notified = true;
    }
    let entry = append_ledger(cx, &mut account, kind, -amount, object, "", "")?;
    if crossed {
        poll::push(
            cx,
            id,
            PollKind::LowBalance,
            id,
            format!(
                "balance {} {} is below the low-balance threshold {threshold}",
                account.balance_minor_units, account.currency
            ),
            None,
        )?;
    }
    Ok(entry)
}

/// Refunds `amount` (in the account's currency) to registrar `id`, linked to
/// the charge made by `linked_sv_trid`.
pub(crate) fn refund<S: StateRead + ?Sized>(
    cx: &mut Exec<'_, '_, S>,
    id: &str,
    amount: i64,
    object: &str,
    linked_sv_trid: &str,
) -> Result<(), RegistryError> {
    if amount <= 0 {
        return Ok(());
    }
    let mut account = load(&*cx, id)?;
    let overflow = || StorageFault(format!("the balance of {id:?} would overflow"));
    account.balance_minor_units = account
        .balance_minor_units
        .checked_add(amount)
        .ok_or_else(overflow)?;
    account.total_refunds_minor_units = account
        .total_refunds_minor_units
        .checked_add(amount)
        .ok_or_else(overflow)?;
    if account.balance_minor_units >= account.low_balance_threshold_minor_units {
        account.low_balance_notified = false;
    }
    append_ledger(
        cx,
        &mut account,
        LedgerKind::Refund,
        amount,
        object,
        "",
        linked_sv_trid,
    )?;
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
    linked_sv_trid: &str,
) -> Result<LedgerRecord, RegistryError> {
    // Money moved equals the ledger entry written: the account as this
    // command found it, plus the entry's amount, is the account saved.
    let before = load(&*cx, &account.id)?;
    assert_eq!(
        before.balance_minor_units.checked_add(amount),
        Some(account.balance_minor_units),
        "the balance of {:?} moved by other than the ledger entry's {amount}",
        account.id
    );
    assert_eq!(
        before.ledger_len, account.ledger_len,
        "ledger of {:?} extended outside append_ledger",
        account.id
    );
    assert!(
        account.is_balanced(),
        "deposits == balance + charges - refunds for {:?}: {account:?}",
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
        linked_sv_trid: linked_sv_trid.into(),
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
            total_refunds_minor_units: 0,
            credit_limit_minor_units: 0,
            low_balance_threshold_minor_units: 0,
            low_balance_notified: false,
            ledger_len: 0,
            poll_seq: 0,
            poll_count: 0,
            created_by: "staff".into(),
            created_ms: 0,
        }
    }

    #[test]
    fn quotes_check_currency_and_funds() {
        let f = "period_years";
        let mut a = account(100);
        let q = quote(&a, "x.nz", 100, "NZD", f).unwrap();
        assert_eq!(q.minor_units, 100);
        let cases = [
            (quote(&a, "x.nz", 101, "NZD", f), Reason::InsufficientFunds),
            (quote(&a, "x.nz", 1, "AUD", f), Reason::CurrencyMismatch),
        ];
        for (r, want) in cases {
            assert_eq!(r.unwrap_err().reason(), want);
        }
        // The credit limit extends what may be spent.
        a.credit_limit_minor_units = 2;
        assert_eq!(quote(&a, "x.nz", 102, "NZD", f).unwrap().minor_units, 102);
        assert!(quote(&a, "x.nz", 103, "NZD", f).is_err());
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
