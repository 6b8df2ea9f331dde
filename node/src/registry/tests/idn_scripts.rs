//! Scenarios of TLD IDN tables: mixed-script look-alikes are refused, each
//! TLD accepts the scripts its table lists (any one script by default), a
//! refused create leaves nothing behind, and the table is set, shown and
//! replaced through the TLD's policy.

use super::lifecycle::charged;
use super::*;

/// An IDN table listing `scripts`, with `mixes`.
fn idn(scripts: &[&str], mixes: &[&[&str]]) -> v1::TldIdnPolicy {
    v1::TldIdnPolicy {
        scripts: strings(scripts),
        script_mixes: mixes
            .iter()
            .map(|m| v1::IdnScriptMix {
                scripts: strings(m),
            })
            .collect(),
        extra_code_points: Vec::new(),
    }
}

/// The NZD test policy (create 1000/yr) with an IDN table.
fn policy_with_idn(table: v1::TldIdnPolicy) -> v1::TldPolicy {
    v1::TldPolicy {
        idn: Some(table),
        ..policy("NZD", 1000, 900)
    }
}

/// The world plus four NZD TLDs with IDN tables:
/// `.ie` Latin only, `.bg` Cyrillic only, `.jp` Japanese (Han, Hiragana and
/// Katakana together), and `.gr` Greek or Latin, and the two mixed.
/// `.nz` keeps the default table: any one script per label.
fn world_with_idn_tables() -> Registry {
    let mut r = world();
    for (tld, table) in [
        ("ie", idn(&["Latin"], &[])),
        ("bg", idn(&["Cyrillic"], &[])),
        ("jp", idn(&["Japanese"], &[])),
        ("gr", idn(&["Greek", "Latin"], &[&["Greek", "Latin"]])),
    ] {
        r.staff(create_tld(tld, policy_with_idn(table)));
    }
    r
}

#[test]
fn idn_labels_must_be_written_in_a_script_their_tld_accepts() {
    let mut r = world_with_idn_tables();

    #[rustfmt::skip]
    let cases: &[(&str, &str, Option<&str>)] = &[
        // (story, name, None when accepted / Some(part of the refusal))
        ("Cyrillic а among Latin, default table", "pаypal.nz", Some("mixes scripts Latin and Cyrillic; .nz allows any one script per label")),
        ("Cyrillic а among Latin, Latin only", "pаypal.ie", Some("mixes scripts Latin and Cyrillic; .ie allows Latin")),
        ("Cyrillic а among Latin, Cyrillic only", "pаypal.bg", Some("mixes scripts Latin and Cyrillic; .bg allows Cyrillic")),
        ("all Cyrillic, default table", "пример.nz", None),
        ("all Cyrillic, Cyrillic allowed", "пример.bg", None),
        ("all Cyrillic, Latin only", "пример.ie", Some("is in script Cyrillic; .ie allows Latin")),
        ("Greek among Latin, default table", "αlpha.nz", Some("mixes scripts Greek and Latin")),
        ("Greek among Latin, Latin only", "αlpha.ie", Some("mixes scripts Greek and Latin; .ie allows Latin")),
        ("Han with Katakana, Japanese allowed", "東京タワー.jp", None),
        ("Han with Hiragana, Japanese allowed", "ひらがな漢字.jp", None),
        ("Han with Katakana, default table", "東京タワー.nz", None),
        ("Han with Katakana, Latin only", "東京タワー.ie", Some("mixes scripts Han and Katakana; .ie allows Latin")),
        ("Latin, Japanese only", "café.jp", Some("is in script Latin; .jp allows Japanese")),
        ("digits and hyphens with Cyrillic", "пример-2025.bg", None),
        ("digits and hyphens with Han", "123-東京.jp", None),
        ("digits and hyphens with Latin", "café-24.ie", None),
        ("Greek with Latin, a listed mix", "αlpha.gr", None),
        ("Greek alone, Greek or Latin", "αβγ.gr", None),
        ("Cyrillic with Greek, not the listed mix", "αжβ.gr", Some("mixes scripts Greek and Cyrillic; .gr allows Greek, Latin or the mix Greek+Latin")),
        ("ASCII is LDH, whatever the table", "paypal.bg", None),
    ];
    for (story, name, refusal) in cases {
        let balance = r.balance("rar-a");
        let before = data_digest(&r.state);
        let result = r.run("rar-a", create_domain(name, 1, "c-a1", &[]));
        match refusal {
            None => {
                let Some(Outcome::Domain(_)) = &result.outcome else {
                    panic!("{story}: {name} was refused: {result:?}");
                };
                let outcome = result.outcome.expect("an outcome");
                assert_eq!(charged(&outcome), 1000, "{story}");
                assert_eq!(r.balance("rar-a"), balance - 1000, "{story}");
                assert!(r.try_domain(name).is_some(), "{story}");
            }
            Some(refusal) => {
                let e = expect_error(result);
                assert_eq!(
                    (e.reason(), e.field.as_str()),
                    (Reason::PolicyViolation, "name"),
                    "{story}: {}",
                    e.message
                );
                assert!(e.message.contains(refusal), "{story}: {}", e.message);
                assert_eq!(
                    data_digest(&r.state),
                    before,
                    "{story} changed registry data"
                );
                assert_eq!(r.balance("rar-a"), balance, "{story} charged");
                assert!(r.try_domain(name).is_none(), "{story}");
            }
        }
    }
    assert_money_conserved(&r.state);
}

#[test]
fn the_refusal_names_the_label_in_both_forms_the_scripts_and_the_tld_table() {
    let mut r = world_with_idn_tables();
    let a_label = normalize_name("name", "pаypal.ie")
        .expect("valid IDNA2008")
        .labels()
        .next()
        .expect("a first label")
        .to_string();
    let e = r.err("rar-a", create_domain("pаypal.ie", 1, "c-a1", &[]));
    assert_eq!(
        e.message,
        format!(
            "name: label \"pаypal\" ({a_label}) mixes scripts Latin and Cyrillic; .ie allows Latin"
        )
    );
}

#[test]
fn a_domain_check_reports_a_mixed_script_name_unavailable_with_the_reason() {
    let r = world_with_idn_tables();
    let results = check_domains(&r.state, &strings(&["pаypal.nz", "пример.nz"])).unwrap();
    assert!(!results[0].available);
    assert!(
        results[0]
            .reason
            .contains("mixes scripts Latin and Cyrillic"),
        "{}",
        results[0].reason
    );
    assert!(results[1].available, "{}", results[1].reason);
}

#[test]
fn info_shows_the_table_and_an_update_replaces_it_for_new_registrations_only() {
    let mut r = world_with_idn_tables();
    let shown = |r: &Registry, tld: &str| {
        info_tld(&r.state, tld)
            .unwrap()
            .policy
            .expect("policy")
            .idn
            .expect("the table in effect is always shown")
    };
    assert_eq!(shown(&r, "nz"), idn(&[], &[]), "the default table");
    assert_eq!(
        shown(&r, "gr"),
        idn(&["Greek", "Latin"], &[&["Greek", "Latin"]])
    );

    // .nz narrows to Latin: an existing Cyrillic name stays and renews,
    // a new one is refused.
    r.ok("rar-a", create_domain("пример.nz", 1, "c-a1", &[]));
    r.staff(Kind::UpdateTld(v1::UpdateTldRequest {
        meta: None,
        name: "nz".into(),
        policy: Some(policy_with_idn(idn(&["latn"], &[]))),
        lifecycle: None,
    }));
    assert_eq!(shown(&r, "nz"), idn(&["Latin"], &[]), "shown by name");
    r.ok("rar-a", renew("пример.nz", "2026-01-01", 1));
    let e = r.err("rar-a", create_domain("другой.nz", 1, "c-a1", &[]));
    assert_eq!(e.reason(), Reason::PolicyViolation, "{}", e.message);
    assert!(e.message.ends_with(".nz allows Latin"), "{}", e.message);
    r.ok("rar-a", create_domain("crème.nz", 1, "c-a1", &[]));
}

#[test]
fn a_bad_table_is_refused_and_changes_nothing() {
    let mut r = world();
    #[rustfmt::skip]
    let cases: Vec<(&str, v1::TldIdnPolicy, Reason, &str)> = vec![
        ("unknown script", idn(&["Elvish"], &[]), Reason::InvalidField, "policy.idn.scripts"),
        ("Common is no script", idn(&["Zyyy"], &[]), Reason::InvalidField, "policy.idn.scripts"),
        ("a mix of one", idn(&[], &[&["Latin"]]), Reason::InvalidField, "policy.idn.script_mixes"),
        ("an ASCII extra", v1::TldIdnPolicy { extra_code_points: vec![u32::from(b'a')], ..Default::default() }, Reason::InvalidField, "policy.idn.extra_code_points"),
    ];
    for (what, table, reason, field) in cases {
        let before = data_digest(&r.state);
        let e = r.err("staff", create_tld("ie", policy_with_idn(table)));
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
}
