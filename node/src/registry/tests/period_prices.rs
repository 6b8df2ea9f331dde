//! Scenarios of per-period prices: a TLD's create and renew tables price
//! whole periods, premium names keep premium × years, the other charges
//! stay yearly, and tables that do not fit the TLD's periods are refused.

use super::lifecycle::{charged, deleted, WORLD_EXPIRY};
use super::*;

/// `.nz` (create 1000/yr, renew 900/yr) with period tables and a premium
/// name.
fn nz_with_period_prices(r: &mut Registry) {
    r.staff(set_lifecycle(
        "nz",
        v1::TldLifecyclePolicy {
            create_period_prices: period_prices(&[(5, 4000), (2, 1800)]),
            renew_period_prices: period_prices(&[(1, 500), (3, 2400)]),
            premium_names: vec![v1::PremiumName {
                label: "gold".into(),
                create_price_minor_units: 20_000,
                renew_price_minor_units: 15_000,
            }],
            ..Default::default()
        },
    ));
}

#[test]
fn a_listed_period_costs_its_own_price_instead_of_years_times_the_yearly_price() {
    let mut r = world();
    nz_with_period_prices(&mut r);
    let lifecycle = info_tld(&r.state, "nz")
        .unwrap()
        .lifecycle
        .expect("lifecycle");
    assert_eq!(
        lifecycle.create_period_prices,
        period_prices(&[(2, 1800), (5, 4000)]),
        "shortest period first"
    );
    assert_eq!(
        lifecycle.renew_period_prices,
        period_prices(&[(1, 500), (3, 2400)])
    );

    let before = r.balance("rar-a");
    for (name, years, price) in [
        ("two.nz", 2, 1800),
        ("three.nz", 3, 3 * 1000),
        ("five.nz", 5, 4000),
        ("one.nz", 1, 1000),
    ] {
        let created = r.ok("rar-a", create_domain(name, years, "c-a1", &[]));
        assert_eq!(charged(&created), price, "{name} for {years} y");
    }
    assert_eq!(r.balance("rar-a"), before - 1800 - 3000 - 4000 - 1000);

    let renewed = r.ok("rar-a", renew("two.nz", "2027-01-01", 3));
    assert_eq!(charged(&renewed), 2400);
    let renewed = r.ok("rar-a", renew("one.nz", "2026-01-01", 2));
    assert_eq!(charged(&renewed), 2 * 900, "2 years is not listed");
    let renewed = r.ok("rar-a", renew("one.nz", "2028-01-01", 1));
    assert_eq!(charged(&renewed), 500);

    // A delete in the add grace period refunds what was charged.
    let d = deleted(r.ok("rar-a", Kind::DeleteDomain(delete("five.nz"))));
    assert_eq!(d.refunded.expect("refund").minor_units, 4000);
    assert_money_conserved(&r.state);
}

#[test]
fn premium_names_pay_premium_times_years_whatever_the_period_tables_say() {
    let mut r = world();
    nz_with_period_prices(&mut r);
    r.staff(deposit("rar-a", 100_000));
    let created = r.ok("rar-a", create_domain("gold.nz", 2, "c-a1", &[]));
    assert_eq!(charged(&created), 2 * 20_000);
    let renewed = r.ok("rar-a", renew("gold.nz", "2027-01-01", 3));
    assert_eq!(charged(&renewed), 3 * 15_000);
    let renewed = r.ok("rar-a", renew("gold.nz", "2030-01-01", 1));
    assert_eq!(charged(&renewed), 15_000);
    assert_money_conserved(&r.state);
}

#[test]
fn auto_renew_stays_at_the_yearly_price_when_one_year_renewals_are_listed() {
    let mut r = world();
    nz_with_period_prices(&mut r);
    let before = r.balance("rar-b");
    r.tick_at(WORLD_EXPIRY + 1000);
    assert_eq!(expiry_date(&r, "b.nz"), "2027-01-01");
    let entry = r.registrar("rar-b").ledger.pop().expect("the auto-renewal");
    assert_eq!(
        (entry.kind.as_str(), entry.amount_minor_units),
        ("auto_renew", -900)
    );
    assert_eq!(r.balance("rar-b"), before - 900);
}

#[test]
fn period_tables_must_fit_the_tld_and_refusals_change_nothing() {
    let mut r = world();
    let create_table = |table: &[(u32, i64)]| v1::TldLifecyclePolicy {
        create_period_prices: period_prices(table),
        ..Default::default()
    };
    let renew_table = |table: &[(u32, i64)]| v1::TldLifecyclePolicy {
        renew_period_prices: period_prices(table),
        ..Default::default()
    };
    let create_field = "lifecycle.create_period_prices";
    let renew_field = "lifecycle.renew_period_prices";

    #[rustfmt::skip]
    let cases: Vec<(&str, Kind, Reason, &str)> = vec![
        ("zero years", set_lifecycle("nz", create_table(&[(0, 100)])), Reason::InvalidField, create_field),
        ("past the registry maximum", set_lifecycle("nz", create_table(&[(11, 100)])), Reason::InvalidField, create_field),
        ("negative price", set_lifecycle("nz", renew_table(&[(2, -1)])), Reason::InvalidField, renew_field),
        ("price too high", set_lifecycle("nz", renew_table(&[(2, i64::MAX)])), Reason::InvalidField, renew_field),
        ("period twice", set_lifecycle("nz", create_table(&[(2, 1800), (3, 2500), (2, 1700)])), Reason::InvalidField, create_field),
        // .kiwi allows 2 to 5 years.
        ("below the tld minimum", set_lifecycle("kiwi", create_table(&[(1, 100)])), Reason::InvalidField, create_field),
        ("above the tld maximum", set_lifecycle("kiwi", renew_table(&[(6, 100)])), Reason::InvalidField, renew_field),
    ];
    for (what, kind, reason, field) in cases {
        let before = data_digest(&r.state);
        let e = r.err("staff", kind);
        assert_eq!(
            (e.reason(), e.field.as_str()),
            (reason, field),
            "{what}: {}",
            e.message
        );
        assert_eq!(
            data_digest(&r.state),
            before,
            "{what} changed registry data"
        );
    }

    // A policy that no longer allows a listed period is refused too,
    // naming the bound that moved.
    r.staff(set_lifecycle("kiwi", create_table(&[(2, 900), (5, 2000)])));
    let before = data_digest(&r.state);
    let narrower = |min_period_years, max_period_years| {
        Kind::UpdateTld(v1::UpdateTldRequest {
            meta: None,
            name: "kiwi".into(),
            policy: Some(v1::TldPolicy {
                min_period_years,
                max_period_years,
                min_label_length: 3,
                max_label_length: 20,
                allow_idn: false,
                ..policy("USD", 500, 500)
            }),
            lifecycle: None,
        })
    };
    let e = r.err("staff", narrower(2, 4));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::PolicyViolation, "policy.max_period_years"),
        "{}",
        e.message
    );
    let e = r.err("staff", narrower(3, 5));
    assert_eq!(e.field, "policy.min_period_years", "{}", e.message);
    assert_eq!(data_digest(&r.state), before);
    // Replacing policy and lifecycle together works.
    r.staff(Kind::UpdateTld(v1::UpdateTldRequest {
        meta: None,
        name: "kiwi".into(),
        policy: match narrower(2, 4) {
            Kind::UpdateTld(req) => req.policy,
            _ => unreachable!("an UpdateTld"),
        },
        lifecycle: Some(create_table(&[(4, 1800)])),
    }));
    let created = r.ok("rar-usd", create_domain("four.kiwi", 4, "c-a1", &[]));
    assert_eq!(charged(&created), 1800);
}
