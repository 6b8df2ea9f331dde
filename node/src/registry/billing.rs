//! Money: quoting a price against a registrar's account, charging it and
//! refunding it, each movement with its ledger entry.
//!
//! Every movement of a balance goes through [`append_ledger`], which
//! asserts that the money moved equals the entry written and that the
//! account still balances (deposits = balance + charges − refunds).

use kauri_proto::v1;

use super::engine::StateRead;
use super::engine::StorageFault;
use super::error::RegistryError;
use super::exec::Exec;
use super::lookup::load_registrar;
use super::model::{ledger_key, LedgerKind, LedgerRecord, PollKind, RegistrarRecord};
use super::poll;

/// Most ledger entries an info request returns.
pub const MAX_LEDGER_LIMIT: u32 = 1000;

/// What a command on `object` (a domain, the request's `name`) will cost:
/// `price` (for the whole period, see `tld_rules::period_price`) in `currency`,
/// checked against the account (balance plus credit limit) before anything
/// is written. A currency mismatch is about `name`; the amount is about
/// `funds_field`.
/// Refuses a price the registrar did not agree to: when it stated a fee
/// (RFC 8748), the price must not exceed it, in the same currency (when it
/// names one; RFC 8748's currency is optional).
pub(crate) fn agreed(
    stated: Option<&v1::Money>,
    price_minor_units: i64,
    currency: &str,
) -> Result<(), RegistryError> {
    let Some(fee) = stated else {
        return Ok(());
    };
    if !fee.currency.is_empty() && fee.currency != currency {
        return Err(RegistryError::FeeMismatch {
            field: "fee.currency".into(),
            message: format!(
                "the price is in {currency}, the fee stated in {:?}",
                fee.currency
            ),
        });
    }
    if fee.minor_units < price_minor_units {
        return Err(RegistryError::FeeMismatch {
            field: "fee".into(),
            message: format!(
                "the price is {price_minor_units} {currency} (minor units), more than the fee \
                 stated, {}",
                fee.minor_units
            ),
        });
    }
    Ok(())
}

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
pub(crate) fn charge(
    cx: &mut Exec<'_, '_>,
    id: &str,
    kind: LedgerKind,
    price: &v1::Money,
    object: &str,
) -> Result<LedgerRecord, RegistryError> {
    debug_assert!(kind.is_charge(), "{kind:?} is not a charge");
    let mut account = load_registrar(cx.state(), id)?;
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
    // The quote above keeps a charge within balance plus credit limit.
    assert!(
        account.balance_minor_units >= -account.credit_limit_minor_units,
        "charging {amount} overdraws {:?} beyond its credit limit",
        account.id
    );
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
pub(crate) fn refund(
    cx: &mut Exec<'_, '_>,
    id: &str,
    amount: i64,
    object: &str,
    linked_sv_trid: &str,
) -> Result<(), RegistryError> {
    if amount <= 0 {
        return Ok(());
    }
    let mut account = load_registrar(cx.state(), id)?;
    if !credit(&mut account, amount, |a| &mut a.total_refunds_minor_units) {
        return Err(StorageFault(format!("the balance of {id:?} would overflow")).into());
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

/// Credits a deposit of `amount` to `account`, with its ledger entry.
pub(crate) fn deposit(
    cx: &mut Exec<'_, '_>,
    account: &mut RegistrarRecord,
    amount: i64,
    reference: &str,
) -> Result<LedgerRecord, RegistryError> {
    if !credit(account, amount, |a| &mut a.total_deposits_minor_units) {
        return Err(RegistryError::LimitExceeded {
            field: "amount_minor_units".into(),
            message: format!("the balance of {:?} would overflow", account.id),
        });
    }
    append_ledger(cx, account, LedgerKind::Deposit, amount, "", reference, "")
}

/// Adds `amount` to the balance of `account` and to the running total
/// `total` picks (deposits or refunds), and re-arms the low-balance notice
/// once the balance is back above its threshold. False when either sum
/// would overflow.
fn credit(
    account: &mut RegistrarRecord,
    amount: i64,
    total: impl FnOnce(&mut RegistrarRecord) -> &mut i64,
) -> bool {
    let Some(balance) = account.balance_minor_units.checked_add(amount) else {
        return false;
    };
    account.balance_minor_units = balance;
    let total = total(account);
    let Some(sum) = total.checked_add(amount) else {
        return false;
    };
    *total = sum;
    if account.balance_minor_units >= account.low_balance_threshold_minor_units {
        account.low_balance_notified = false;
    }
    true
}

/// Appends one ledger entry for a movement already applied to `account`,
/// and saves the account.
fn append_ledger(
    cx: &mut Exec<'_, '_>,
    account: &mut RegistrarRecord,
    kind: LedgerKind,
    amount: i64,
    object: &str,
    reference: &str,
    linked_sv_trid: &str,
) -> Result<LedgerRecord, RegistryError> {
    // Money moved equals the ledger entry written: the account as this
    // command found it, plus the entry's amount, is the account saved.
    let before = load_registrar(cx.state(), &account.id)?;
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
    r: &dyn StateRead,
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
}
