//! The fee extension (RFC 8748): prices asked for in a domain check, the
//! fee a registrar agrees to in a create, renew, transfer or restore (the
//! registry refuses the command when its price is higher), and the fee
//! charged in the answer. Amounts are decimals in the currency's major
//! unit; the registry counts minor units.

use kauri_client::proto::{CheckResult, FeeCommand, Money};

use crate::codes::Code;
use crate::render::Xml;
use crate::request::{only, period, refuse, Refusal};
use crate::xml::Element;

/// The fee extension's namespace.
pub const FEE_NS: &str = "urn:ietf:params:xml:ns:epp:fee-1.0";

/// Commands a check may price.
const COMMANDS: [&str; 4] = ["create", "renew", "transfer", "restore"];

/// Digits after the decimal point of ISO 4217 `currency` (2 unless listed).
fn decimals(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `minor` minor units of `currency` as a decimal ("25.00").
pub fn amount(minor: i64, currency: &str) -> String {
    let d = decimals(currency);
    if d == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(d);
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        m / scale as u64,
        m % scale as u64,
        width = d as usize
    )
}

/// A decimal amount of `currency` in minor units: refused when it has more
/// digits after the point than the currency, is negative, or is no number.
pub fn minor_units(text: &str, currency: &str) -> Result<i64, Refusal> {
    let bad = || {
        refuse(
            Code::VALUE_SYNTAX,
            format!("<fee:fee> {text:?} is not an amount of {currency} here"),
        )
    };
    let d = decimals(currency) as usize;
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > d {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<d$}").parse().unwrap_or(0);
    whole
        .checked_mul(10i64.pow(d as u32))
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// What a `<fee:check>` asks: the commands to price, and the currency the
/// client wants (only the TLD's is offered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The currency asked for, if any.
    pub currency: Option<String>,
    /// The commands.
    pub commands: Vec<FeeCommand>,
}

/// Reads `<fee:check>`.
pub fn check(e: &Element) -> Result<Check, Refusal> {
    if e.name != "check" {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("{} does not belong on a check", e.qualified()),
        ));
    }
    only(e, FEE_NS, &["currency", "command"])?;
    let commands = e
        .children_named(FEE_NS, "command")
        .map(|c| {
            let name = c.attr("name").unwrap_or_default();
            if !COMMANDS.contains(&name) {
                return Err(refuse(
                    Code::VALUE_SYNTAX,
                    format!("<fee:command name={name:?}>: create, renew, transfer or restore"),
                ));
            }
            Ok(FeeCommand {
                command: name.to_string(),
                period_years: period(c, FEE_NS)?,
            })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    if commands.is_empty() {
        return Err(refuse(
            Code::MISSING_PARAMETER,
            "<fee:check> needs a <fee:command>",
        ));
    }
    Ok(Check {
        currency: e.child_text(FEE_NS, "currency").map(str::to_string),
        commands,
    })
}

/// The fee a `<fee:create>`, `<fee:renew>`, `<fee:transfer>` or
/// `<fee:update>` states: the sum of its `<fee:fee>`s, in its currency
/// (empty: the price's).
pub fn agreed(e: &Element, command: &str) -> Result<Money, Refusal> {
    if e.name != command {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("{} does not belong on a {command}", e.qualified()),
        ));
    }
    only(e, FEE_NS, &["currency", "fee", "credit"])?;
    let currency = e.child_text(FEE_NS, "currency").unwrap_or_default();
    let mut total = 0i64;
    for f in e.children_named(FEE_NS, "fee") {
        let m = minor_units(&f.text, if currency.is_empty() { "XXX" } else { currency })?;
        total = total
            .checked_add(m)
            .ok_or_else(|| refuse(Code::VALUE_RANGE, "the fees stated overflow"))?;
    }
    if e.child(FEE_NS, "fee").is_none() {
        return Err(refuse(
            Code::MISSING_PARAMETER,
            format!("<fee:{command}> needs a <fee:fee>"),
        ));
    }
    Ok(Money {
        minor_units: total,
        currency: currency.to_string(),
    })
}

/// `<fee:chkData>` for the check's results, their quotes in the order the
/// check asked.
pub fn check_data(asked: &Check, results: &[CheckResult]) -> String {
    let currency = asked
        .currency
        .clone()
        .or_else(|| {
            results
                .iter()
                .flat_map(|r| &r.fees)
                .find_map(|q| q.fee.as_ref().map(|m| m.currency.clone()))
        })
        .unwrap_or_else(|| "XXX".into());
    let mut x = Xml::new();
    x.open("fee:chkData", &[("xmlns:fee", FEE_NS)])
        .leaf("fee:currency", &[], &currency);
    for r in results {
        let offered = r
            .fees
            .iter()
            .all(|q| q.fee.as_ref().is_some_and(|m| m.currency == currency));
        if r.fees.is_empty() || !offered {
            let why = match r.fees.iter().find(|q| !q.reason.is_empty()) {
                Some(q) => q.reason.clone(),
                None if r.fees.is_empty() => "no prices: not a name under a TLD here".into(),
                None => format!("prices are not offered in {currency}"),
            };
            x.open("fee:cd", &[("avail", "0")])
                .leaf("fee:objID", &[], &r.name)
                .leaf("fee:reason", &[], &why)
                .close("fee:cd");
            continue;
        }
        x.open("fee:cd", &[("avail", "1")])
            .leaf("fee:objID", &[], &r.name)
            .leaf("fee:class", &[], &r.fees[0].class);
        for q in &r.fees {
            let m = q.fee.clone().unwrap_or_default();
            x.open("fee:command", &[("name", &q.command)])
                .leaf("fee:period", &[("unit", "y")], &q.period_years.to_string())
                .leaf("fee:fee", &[], &amount(m.minor_units, &m.currency))
                .close("fee:command");
        }
        x.close("fee:cd");
    }
    x.close("fee:chkData");
    x.finish()
}

/// `<fee:creData>` (or renData, trnData, upData) with what was charged.
pub fn charged_data(element: &str, charged: &Money) -> String {
    let tag = format!("fee:{element}");
    let mut x = Xml::new();
    x.open(&tag, &[("xmlns:fee", FEE_NS)])
        .leaf("fee:currency", &[], &charged.currency)
        .leaf(
            "fee:fee",
            &[],
            &amount(charged.minor_units, &charged.currency),
        )
        .close(&tag);
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_in_each_currencys_minor_units() {
        assert_eq!(amount(2500, "NZD"), "25.00");
        assert_eq!(amount(5, "USD"), "0.05");
        assert_eq!(amount(1234, "JPY"), "1234");
        assert_eq!(amount(1234, "KWD"), "1.234");
        assert_eq!(minor_units("25.00", "NZD").unwrap(), 2500);
        assert_eq!(minor_units("25", "NZD").unwrap(), 2500);
        assert_eq!(minor_units("0.5", "NZD").unwrap(), 50);
        assert_eq!(minor_units("1.250", "NZD").unwrap(), 125);
        for bad in ["1.001", "-1.00", "abc", "", "1e3", "99999999999999999999"] {
            assert!(minor_units(bad, "NZD").is_err(), "{bad}");
        }
    }
}
