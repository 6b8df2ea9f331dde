//! IDN tables: which scripts a TLD's IDN labels may be written in, and the
//! mixed-script check that keeps look-alikes such as `pаypal` (with a
//! Cyrillic `а`) from registering as if they were `paypal`.
//!
//! The check follows UTS #39 (Unicode Security Mechanisms), section 5:
//! 1. every code point has a set of scripts, its `Script_Extensions`
//!    property; code points of the Common and Inherited scripts (digits, the
//!    hyphen, combining marks shared by many scripts) and the TLD's extra
//!    code points go with every script;
//! 2. the sets are *augmented*: Han is written together with Hiragana and
//!    Katakana in Japanese, with Hangul in Korean and with Bopomofo in
//!    Chinese, so a Han code point is also in `Jpan`, `Kore` and `Hanb`,
//!    Hiragana and Katakana are also in `Jpan`, Hangul in `Kore` and
//!    Bopomofo in `Hanb`;
//! 3. a label's *resolved* script set is the intersection of its code
//!    points' augmented sets. A label is single-script when that set is not
//!    empty (UTS #39's "Single Script" restriction level): `東京タワー`
//!    resolves to {Jpan} and is one script, `pаypal` resolves to nothing.
//!
//! A TLD's table then decides:
//! - `scripts` empty (the default): any single-script label is accepted;
//! - `scripts` listed: the resolved set must contain one of them, so a
//!   Latin-only TLD refuses an all-Cyrillic label, and one listing
//!   `Japanese` accepts Han, Hiragana and Katakana together;
//! - `script_mixes`: a label is also accepted when every code point is in
//!   one of the scripts of a listed mix (a mix naming `Japanese` stands for
//!   Han, Hiragana and Katakana), the way a registry that wants UTS #39's
//!   "Highly Restrictive" level lists Latin with Japanese.
//!
//! Only IDN labels are checked: an ASCII label is LDH, which every TLD
//! accepts whatever scripts its IDN table names. Script data comes from
//! `icu_properties` compiled into the binary, so the check is deterministic
//! for a given build; every replica of a cluster runs the same one.

use std::collections::BTreeSet;

use icu_properties::props::Script;
use icu_properties::script::ScriptWithExtensions;
use icu_properties::{PropertyNamesLong, PropertyNamesShort, PropertyParser};
use kauri_proto::v1;
use serde::{Deserialize, Serialize};

use super::engine::StorageFault;
use super::error::RegistryError;
use super::names;

/// Most scripts one IDN table may list.
pub const MAX_IDN_SCRIPTS: usize = 32;
/// Most script mixes one IDN table may list.
pub const MAX_IDN_SCRIPT_MIXES: usize = 16;
/// Most scripts one mix may name.
pub const MAX_SCRIPTS_PER_MIX: usize = 8;
/// Most extra code points one IDN table may list.
pub const MAX_IDN_EXTRA_CODE_POINTS: usize = 256;

const _: () = assert!(MAX_SCRIPTS_PER_MIX >= 2, "a mix names two scripts or more");

/// A TLD's IDN table as stored, every script by its ISO 15924 code. The
/// default (everything empty) accepts any single-script label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdnTable {
    /// The scripts a label may be written in, one per label; empty: any.
    pub scripts: BTreeSet<String>,
    /// Scripts a label may also mix, each set of two or more.
    pub script_mixes: BTreeSet<BTreeSet<String>>,
    /// Code points accepted with any script, as if they were Common.
    pub extra_code_points: BTreeSet<char>,
}

/// A script an IDN table names: a Unicode script, or one of the UTS #39
/// augmented sets of Han and the scripts written with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IdnScript {
    /// One Unicode script (never Common, Inherited or Unknown).
    Unicode(Script),
    /// `Jpan`: Han, Hiragana and Katakana.
    Japanese,
    /// `Kore`: Han and Hangul.
    Korean,
    /// `Hanb`: Han and Bopomofo.
    HanWithBopomofo,
}

impl IdnScript {
    /// The augmented sets, with their ISO 15924 code, their name and the
    /// Unicode scripts they join.
    const AUGMENTED: [(IdnScript, &'static str, &'static str, &'static [Script]); 3] = [
        (
            IdnScript::Japanese,
            "Jpan",
            "Japanese",
            &[Script::Han, Script::Hiragana, Script::Katakana],
        ),
        (
            IdnScript::Korean,
            "Kore",
            "Korean",
            &[Script::Han, Script::Hangul],
        ),
        (
            IdnScript::HanWithBopomofo,
            "Hanb",
            "Han_with_Bopomofo",
            &[Script::Han, Script::Bopomofo],
        ),
    ];

    /// Parses a Unicode script name or ISO 15924 code, loosely (any case,
    /// spaces, hyphens or underscores), or the name or code of an augmented
    /// set. `None` for anything else, and for Common, Inherited and Unknown,
    /// which are not scripts a label is written in.
    pub fn parse(given: &str) -> Option<IdnScript> {
        let loose = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, ' ' | '-' | '_'))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let wanted = loose(given);
        if let Some((set, ..)) = Self::AUGMENTED
            .iter()
            .find(|(_, code, name, _)| loose(code) == wanted || loose(name) == wanted)
        {
            return Some(*set);
        }
        PropertyParser::<Script>::new()
            .get_loose(given)
            .filter(|s| is_real_script(*s))
            .map(IdnScript::Unicode)
    }

    /// The script of a stored ISO 15924 code, exactly as [`IdnScript::code`]
    /// wrote it.
    fn from_code(code: &str) -> Option<IdnScript> {
        if let Some((set, ..)) = Self::AUGMENTED.iter().find(|(_, c, ..)| *c == code) {
            return Some(*set);
        }
        PropertyParser::<Script>::new()
            .get_strict(code)
            .filter(|s| is_real_script(*s))
            .map(IdnScript::Unicode)
    }

    /// Its ISO 15924 code (`Latn`, `Jpan`), the form stored.
    pub fn code(self) -> &'static str {
        match self {
            IdnScript::Unicode(s) => PropertyNamesShort::<Script>::new().get(s).unwrap_or("Zzzz"),
            set => Self::augmented(set).1,
        }
    }

    /// Its Unicode name (`Latin`, `Japanese`), the form shown.
    pub fn name(self) -> &'static str {
        match self {
            IdnScript::Unicode(s) => script_name(s),
            set => Self::augmented(set).2,
        }
    }

    /// The Unicode scripts it stands for in a mix.
    fn members(self) -> Vec<Script> {
        match self {
            IdnScript::Unicode(s) => vec![s],
            set => Self::augmented(set).3.to_vec(),
        }
    }

    fn augmented(
        set: IdnScript,
    ) -> &'static (IdnScript, &'static str, &'static str, &'static [Script]) {
        Self::AUGMENTED
            .iter()
            .find(|(s, ..)| *s == set)
            .expect("every IdnScript other than Unicode is in AUGMENTED")
    }
}

/// Whether `s` is a script a label can be written in, rather than one of
/// the placeholders Common, Inherited and Unknown.
fn is_real_script(s: Script) -> bool {
    !matches!(s, Script::Common | Script::Inherited | Script::Unknown)
}

fn script_name(s: Script) -> &'static str {
    PropertyNamesLong::<Script>::new()
        .get(s)
        .unwrap_or("Unknown")
}

impl IdnTable {
    /// The wire form, scripts by their Unicode names.
    pub fn to_proto(&self) -> v1::TldIdnPolicy {
        let names = |codes: &BTreeSet<String>| -> Vec<String> {
            codes
                .iter()
                .map(|c| match IdnScript::from_code(c) {
                    Some(script) => script.name().to_string(),
                    None => c.clone(),
                })
                .collect()
        };
        v1::TldIdnPolicy {
            scripts: names(&self.scripts),
            script_mixes: self
                .script_mixes
                .iter()
                .map(|mix| v1::IdnScriptMix {
                    scripts: names(mix),
                })
                .collect(),
            extra_code_points: self.extra_code_points.iter().map(|&c| c as u32).collect(),
        }
    }

    /// The scripts of a stored table; a code this build does not know is a
    /// storage fault (tables are validated when they are set).
    fn compiled(&self) -> Result<Compiled, StorageFault> {
        let parse = |codes: &BTreeSet<String>| -> Result<Vec<IdnScript>, StorageFault> {
            codes
                .iter()
                .map(|c| {
                    IdnScript::from_code(c)
                        .ok_or_else(|| StorageFault(format!("IDN table has unknown script {c:?}")))
                })
                .collect()
        };
        Ok(Compiled {
            scripts: parse(&self.scripts)?,
            mixes: self
                .script_mixes
                .iter()
                .map(parse)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A stored table with its scripts parsed.
struct Compiled {
    scripts: Vec<IdnScript>,
    mixes: Vec<Vec<IdnScript>>,
}

impl Compiled {
    /// What the table allows, for messages: "Latin or Greek", "any one
    /// script per label, or the mix Latin+Japanese".
    fn describe(&self) -> String {
        let mut items: Vec<String> = if self.scripts.is_empty() {
            vec!["any one script per label".into()]
        } else {
            self.scripts.iter().map(|s| s.name().to_string()).collect()
        };
        for mix in &self.mixes {
            let names: Vec<&str> = mix.iter().map(|s| s.name()).collect();
            items.push(format!("the mix {}", names.join("+")));
        }
        match items.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => items.concat(),
        }
    }
}

/// Validates an IDN table from the wire (request field `field`), storing
/// scripts by their ISO 15924 codes. Unset is the default table.
pub(crate) fn table_from_proto(
    field: &str,
    given: Option<&v1::TldIdnPolicy>,
) -> Result<IdnTable, RegistryError> {
    let Some(p) = given else {
        return Ok(IdnTable::default());
    };
    let scripts_field = format!("{field}.scripts");
    let mixes_field = format!("{field}.script_mixes");
    let extra_field = format!("{field}.extra_code_points");
    for (f, len, max) in [
        (&scripts_field, p.scripts.len(), MAX_IDN_SCRIPTS),
        (&mixes_field, p.script_mixes.len(), MAX_IDN_SCRIPT_MIXES),
        (
            &extra_field,
            p.extra_code_points.len(),
            MAX_IDN_EXTRA_CODE_POINTS,
        ),
    ] {
        if len > max {
            return Err(RegistryError::LimitExceeded {
                field: f.clone(),
                message: format!("{len} entries, at most {max}"),
            });
        }
    }
    let script_codes = |f: &str, names: &[String]| -> Result<BTreeSet<String>, RegistryError> {
        let mut codes = BTreeSet::new();
        for name in names {
            let script = IdnScript::parse(name).ok_or_else(|| {
                RegistryError::invalid(
                    f,
                    format!(
                        "{name:?} is not a Unicode script name or ISO 15924 code of a script \
                         (Common and Inherited characters go with every script)"
                    ),
                )
            })?;
            if !codes.insert(script.code().to_string()) {
                return Err(RegistryError::invalid(
                    f,
                    format!("{} is listed twice", script.name()),
                ));
            }
        }
        Ok(codes)
    };
    let scripts = script_codes(&scripts_field, &p.scripts)?;
    let mut script_mixes = BTreeSet::new();
    for mix in &p.script_mixes {
        if !(2..=MAX_SCRIPTS_PER_MIX).contains(&mix.scripts.len()) {
            return Err(RegistryError::invalid(
                &mixes_field,
                format!(
                    "a mix names 2 to {MAX_SCRIPTS_PER_MIX} scripts, not {} (a single script \
                     belongs in scripts)",
                    mix.scripts.len()
                ),
            ));
        }
        let codes = script_codes(&mixes_field, &mix.scripts)?;
        if !script_mixes.insert(codes) {
            return Err(RegistryError::invalid(
                &mixes_field,
                format!("the mix {} is listed twice", mix.scripts.join("+")),
            ));
        }
    }
    let mut extra_code_points = BTreeSet::new();
    for &cp in &p.extra_code_points {
        let c = char::from_u32(cp)
            .filter(|c| !c.is_ascii() && names::in_idna2008_repertoire(*c))
            .ok_or_else(|| {
                RegistryError::invalid(
                    &extra_field,
                    format!("U+{cp:04X} is not an IDNA2008 code point outside ASCII"),
                )
            })?;
        if !extra_code_points.insert(c) {
            return Err(RegistryError::invalid(
                &extra_field,
                format!("U+{cp:04X} is listed twice"),
            ));
        }
    }
    Ok(IdnTable {
        scripts,
        script_mixes,
        extra_code_points,
    })
}

/// The scripts of one code point (its `Script_Extensions`), or `None` when
/// it goes with every script (Common, Inherited, or listed as extra).
fn code_point_scripts(c: char, table: &IdnTable) -> Option<Vec<Script>> {
    if table.extra_code_points.contains(&c) {
        return None;
    }
    let scx: Vec<Script> = ScriptWithExtensions::new()
        .get_script_extensions_val(c)
        .iter()
        .collect();
    scx.iter().all(|s| is_real_script(*s)).then_some(scx)
}

/// The UTS #39 augmented script set of a code point's scripts.
fn augmented(scripts: &[Script]) -> BTreeSet<IdnScript> {
    let mut set: BTreeSet<IdnScript> = scripts.iter().map(|&s| IdnScript::Unicode(s)).collect();
    for (aug, _, _, members) in &IdnScript::AUGMENTED {
        if scripts.iter().any(|s| members.contains(s)) {
            set.insert(*aug);
        }
    }
    set
}

/// The scripts a label's code points are in, for messages: each code
/// point's own `Script` value, in order of first appearance. Code points
/// whose own value is Common or Inherited are used by several scripts (the
/// prolonged sound mark `ー` of Hiragana and Katakana) and are left out.
fn scripts_found(code_points: &[(char, Vec<Script>)]) -> Vec<&'static str> {
    let swe = ScriptWithExtensions::new();
    let mut found: Vec<&'static str> = Vec::new();
    for &(c, _) in code_points {
        let s = swe.get_script_val(c);
        if is_real_script(s) && !found.contains(&script_name(s)) {
            found.push(script_name(s));
        }
    }
    found
}

/// "Latin", "Latin and Cyrillic", "Latin, Greek and Cyrillic".
fn and_list(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Checks one IDN label against `tld`'s IDN table. `u_label` is the label
/// in Unicode, `a_label` its A-label; a refusal is a
/// [`RegistryError::PolicyViolation`] naming the label, the scripts found
/// and what the TLD allows.
pub(crate) fn check_label_scripts(
    table: &IdnTable,
    field: &str,
    u_label: &str,
    a_label: &str,
    tld: &str,
) -> Result<(), RegistryError> {
    let compiled = table.compiled()?;
    let per_code_point: Vec<(char, Vec<Script>)> = u_label
        .chars()
        .filter_map(|c| code_point_scripts(c, table).map(|scripts| (c, scripts)))
        .collect();
    // The resolved script set; `None` while every code point so far goes
    // with every script.
    let mut resolved: Option<BTreeSet<IdnScript>> = None;
    for (_, scripts) in &per_code_point {
        let set = augmented(scripts);
        resolved = Some(match resolved {
            None => set,
            Some(r) => r.intersection(&set).copied().collect(),
        });
    }
    let Some(resolved) = resolved else {
        return Ok(());
    };
    let single_ok = if compiled.scripts.is_empty() {
        !resolved.is_empty()
    } else {
        compiled.scripts.iter().any(|s| resolved.contains(s))
    };
    let mix_ok = || {
        compiled.mixes.iter().any(|mix| {
            let members: Vec<Script> = mix.iter().flat_map(|s| s.members()).collect();
            per_code_point
                .iter()
                .all(|(_, scripts)| scripts.iter().any(|s| members.contains(s)))
        })
    };
    if single_ok || mix_ok() {
        return Ok(());
    }
    let found = scripts_found(&per_code_point);
    let what = if found.len() == 1 {
        format!("is in script {}", found.concat())
    } else {
        format!("mixes scripts {}", and_list(&found))
    };
    Err(RegistryError::policy(
        field,
        format!(
            "label {u_label:?} ({a_label}) {what}; .{tld} allows {}",
            compiled.describe()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kauri_proto::v1::Reason;

    fn table(scripts: &[&str], mixes: &[&[&str]], extra: &[u32]) -> IdnTable {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        table_from_proto(
            "policy.idn",
            Some(&v1::TldIdnPolicy {
                scripts: strings(scripts),
                script_mixes: mixes
                    .iter()
                    .map(|m| v1::IdnScriptMix {
                        scripts: strings(m),
                    })
                    .collect(),
                extra_code_points: extra.to_vec(),
            }),
        )
        .expect("a valid table")
    }

    fn check(table: &IdnTable, label: &str) -> Result<(), String> {
        check_label_scripts(table, "name", label, "xn--label", "nz").map_err(|e| {
            assert_eq!(e.reason(), Reason::PolicyViolation, "{e}");
            assert_eq!(e.field(), "name", "{e}");
            e.to_string()
        })
    }

    #[test]
    fn labels_are_judged_by_their_resolved_script_set() {
        let any = IdnTable::default();
        let latin = table(&["Latin"], &[], &[]);
        let cyrillic = table(&["Cyrl"], &[], &[]);
        let latin_greek = table(&["latin", "Greek"], &[], &[]);
        let han = table(&["Han"], &[], &[]);
        let japanese = table(&["Japanese"], &[], &[]);
        let korean = table(&["Kore"], &[], &[]);
        let latin_with_japanese = table(&["Latin"], &[&["Latin", "Japanese"]], &[]);
        let greek_with_extra = table(&["Greek"], &[], &[0x00E9]);

        #[rustfmt::skip]
        let cases: &[(&str, &IdnTable, &str, bool)] = &[
            ("one Latin script", &any, "café", true),
            ("Latin with a Cyrillic а", &any, "pаypal", false),
            ("all Cyrillic, any script", &any, "пример", true),
            ("all Cyrillic, Cyrillic allowed", &cyrillic, "пример", true),
            ("all Cyrillic, Latin only", &latin, "пример", false),
            ("Latin, Cyrillic only", &cyrillic, "café", false),
            ("Greek with Latin", &any, "αbc-é", false),
            ("Greek with Latin, both allowed one at a time", &latin_greek, "αbc-é", false),
            ("Greek alone, Latin or Greek", &latin_greek, "αβγ", true),
            ("Han and Katakana, any script", &any, "東京タワー", true),
            ("Han and Katakana, Japanese", &japanese, "東京タワー", true),
            ("Han and Hiragana, Japanese", &japanese, "ひらがな漢字", true),
            ("Han alone, Japanese", &japanese, "東京", true),
            ("Han and Katakana, Han only", &han, "東京タワー", false),
            ("Hangul and Han, Korean", &korean, "한국漢字", true),
            ("Katakana and Hangul", &any, "タ한", false),
            ("digits and hyphens with Cyrillic", &cyrillic, "пример-2025", true),
            ("digits and hyphens with Han", &han, "123-東京", true),
            ("combining mark with Latin", &latin, "n\u{308}u", true),
            ("Latin with Japanese, as a listed mix", &latin_with_japanese, "jリーグ", true),
            ("Latin with Japanese, not listed", &japanese, "jリーグ", false),
            ("a mix does not let in a third script", &latin_with_japanese, "jリーグпр", false),
            ("Catalan middle dot is Latin already", &latin, "col·lecció", true),
            ("an extra code point goes with any script", &greek_with_extra, "αβγé", true),
            ("an extra code point is not a free pass", &greek_with_extra, "αβγç", false),
        ];
        for (what, table, label, accepted) in cases {
            let got = check(table, label);
            assert_eq!(got.is_ok(), *accepted, "{what}: {label:?} gave {got:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_label_the_scripts_and_what_the_tld_allows() {
        let e = check(&table(&["Latin"], &[], &[]), "pаypal").unwrap_err();
        assert_eq!(
            e,
            "name: label \"pаypal\" (xn--label) mixes scripts Latin and Cyrillic; .nz allows Latin"
        );
        let e = check(&table(&["Latin"], &[], &[]), "пример").unwrap_err();
        assert!(
            e.ends_with("is in script Cyrillic; .nz allows Latin"),
            "{e}"
        );
        let e = check(&IdnTable::default(), "αbc").unwrap_err();
        assert!(
            e.ends_with("mixes scripts Greek and Latin; .nz allows any one script per label"),
            "{e}"
        );
        let e = check(
            &table(&["Cyrillic", "Latin"], &[&["Latin", "Japanese"]], &[]),
            "αβ",
        )
        .unwrap_err();
        assert!(
            e.ends_with(".nz allows Cyrillic, Latin or the mix Japanese+Latin"),
            "{e}"
        );
    }

    #[test]
    fn tables_store_codes_and_show_names() {
        let t = table(&["cyrillic", "Latn"], &[&["Latin", "jpan"]], &[0xB7]);
        assert_eq!(t.scripts, BTreeSet::from(["Cyrl".into(), "Latn".into()]));
        let shown = t.to_proto();
        assert_eq!(shown.scripts, ["Cyrillic", "Latin"]);
        assert_eq!(shown.script_mixes[0].scripts, ["Japanese", "Latin"]);
        assert_eq!(shown.extra_code_points, [0xB7]);
        let back = table_from_proto("policy.idn", Some(&shown)).unwrap();
        assert_eq!(back, t, "what info shows can be given back");
    }

    #[test]
    fn bad_tables_name_the_field() {
        let mix = |s: &[&str]| v1::IdnScriptMix {
            scripts: s.iter().map(|s| s.to_string()).collect(),
        };
        let scripts = |s: &[&str]| v1::TldIdnPolicy {
            scripts: s.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, v1::TldIdnPolicy, Reason, &str)> = vec![
            ("unknown script", scripts(&["Klingon"]), Reason::InvalidField, "policy.idn.scripts"),
            ("Common is no script", scripts(&["Common"]), Reason::InvalidField, "policy.idn.scripts"),
            ("Inherited is no script", scripts(&["Zinh"]), Reason::InvalidField, "policy.idn.scripts"),
            ("twice under two names", scripts(&["Latin", "latn"]), Reason::InvalidField, "policy.idn.scripts"),
            ("too many", scripts(&["Latin"; MAX_IDN_SCRIPTS + 1]), Reason::LimitExceeded, "policy.idn.scripts"),
            ("a mix of one", v1::TldIdnPolicy { script_mixes: vec![mix(&["Latin"])], ..Default::default() }, Reason::InvalidField, "policy.idn.script_mixes"),
            ("a mix twice", v1::TldIdnPolicy { script_mixes: vec![mix(&["Latin", "Greek"]), mix(&["Grek", "Latn"])], ..Default::default() }, Reason::InvalidField, "policy.idn.script_mixes"),
            ("ASCII extra", v1::TldIdnPolicy { extra_code_points: vec![0x61], ..Default::default() }, Reason::InvalidField, "policy.idn.extra_code_points"),
            ("symbol extra", v1::TldIdnPolicy { extra_code_points: vec![0x2603], ..Default::default() }, Reason::InvalidField, "policy.idn.extra_code_points"),
            ("surrogate extra", v1::TldIdnPolicy { extra_code_points: vec![0xD800], ..Default::default() }, Reason::InvalidField, "policy.idn.extra_code_points"),
        ];
        for (what, given, reason, field) in cases {
            let e = table_from_proto("policy.idn", Some(&given)).unwrap_err();
            assert_eq!((e.reason(), e.field()), (reason, field), "{what}: {e}");
        }
        assert_eq!(
            table_from_proto("policy.idn", None).unwrap(),
            IdnTable::default()
        );
    }
}
