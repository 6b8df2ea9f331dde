//! Domain and host name validation and normalisation.
//!
//! A name is accepted as U-labels or A-labels in any case and stored as its
//! lower-case A-label form, so uniqueness is by the normalised name: `Café.nz`,
//! `café.nz` and `xn--caf-dma.nz` are the same domain.
//!
//! The rules, in the order they are checked:
//! 1. not empty, no trailing dot (the registry stores names without the root),
//!    no empty labels;
//! 2. ASCII labels are LDH: letters, digits and hyphens, no leading or trailing
//!    hyphen, no `--` in positions 3 and 4 unless the label is an `xn--`
//!    A-label;
//! 3. UTS 46 processing with the `idna` crate: IDNA2008 validity, STD3 ASCII
//!    rules, hyphen checks, non-transitional (`ß` stays `ß`), bidi and
//!    joiner rules, valid Punycode in `xn--` labels;
//! 4. lengths of the A-label form: every label at most 63 octets, the whole
//!    name at most 253 octets ([`RegistryError::TooLong`]);
//! 5. the name must already be in normal form: each given label, lower-cased,
//!    must equal its A-label or its U-label. This refuses input that UTS 46
//!    would silently *map* (full-width letters, decomposed accents that NFC
//!    composes, ideographic full stops, non-canonical Punycode), so what the
//!    registrar sent is what is registered;
//! 6. every non-ASCII code point must be in IDNA2008's letter/digit repertoire
//!    (RFC 5892 `LetterDigits`: general categories Ll, Lo, Lm, Mn, Mc, Nd, plus
//!    the PVALID/CONTEXT exceptions and minus the DISALLOWED exceptions of
//!    RFC 5892 section 2.6). UTS 46 alone still admits symbols such as emoji,
//!    which IDNA2008 does not. The CONTEXTO rules for the few contextual
//!    characters are not evaluated beyond what UTS 46 checks.

use std::borrow::Cow;

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use super::error::RegistryError;

/// Longest label, in octets of its A-label form (RFC 1035).
pub const MAX_LABEL_OCTETS: usize = 63;
/// Longest name, in octets of its A-label form without the root dot.
pub const MAX_NAME_OCTETS: usize = 253;
/// Input longer than this (in UTF-8 octets) is refused before any IDNA
/// processing; no valid name comes close (a U-label of 63 octets of Punycode
/// has far fewer than 4 × 63 octets of UTF-8).
const MAX_INPUT_OCTETS: usize = 4 * MAX_NAME_OCTETS;

/// A validated name in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedName {
    ascii: String,
    unicode: Option<String>,
}

impl NormalizedName {
    /// The lower-case A-label form, the key the registry stores it under.
    pub fn ascii(&self) -> &str {
        &self.ascii
    }

    /// The U-label form when any label is an IDN, else `None`.
    pub fn unicode(&self) -> Option<&str> {
        self.unicode.as_deref()
    }

    /// The labels of the A-label form, left to right.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.ascii.split('.')
    }

    /// How many labels the name has.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// The name without its leftmost label (`example.nz` for `ns1.example.nz`),
    /// or `None` for a single label.
    pub fn parent(&self) -> Option<&str> {
        self.ascii.split_once('.').map(|(_, rest)| rest)
    }

    /// The rightmost label.
    pub fn tld(&self) -> &str {
        self.ascii.rsplit('.').next().unwrap_or(&self.ascii)
    }

    /// The rightmost `n` labels joined (`example.nz` for `n = 2` of
    /// `ns1.example.nz`), or `None` when the name has fewer labels.
    pub fn suffix(&self, n: usize) -> Option<&str> {
        if n == 0 {
            return None;
        }
        match self.ascii.rmatch_indices('.').nth(n - 1) {
            Some((dot, _)) => Some(&self.ascii[dot + 1..]),
            None if n == self.label_count() => Some(&self.ascii),
            None => None,
        }
    }
}

/// True when `label` (an A-label form label) is an IDN A-label.
pub fn is_a_label(label: &str) -> bool {
    label
        .as_bytes()
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"xn--"))
}

/// Validates `input` as a DNS name (domain or host) and returns its normal
/// form. Errors name `field`: [`RegistryError::InvalidName`] for syntax and
/// IDNA errors, [`RegistryError::TooLong`] for label and name lengths.
///
/// ```
/// use kauri_node::registry::names::normalize_name;
/// let n = normalize_name("name", "Café.NZ").unwrap();
/// assert_eq!(n.ascii(), "xn--caf-dma.nz");
/// assert_eq!(n.unicode(), Some("café.nz"));
/// assert!(normalize_name("name", "-bad.nz").is_err());
/// ```
pub fn normalize_name(field: &str, input: &str) -> Result<NormalizedName, RegistryError> {
    let bad = |message: String| RegistryError::InvalidName {
        field: field.to_string(),
        name: input.to_string(),
        message,
    };
    if input.is_empty() {
        return Err(bad("the name is empty".into()));
    }
    if input.len() > MAX_INPUT_OCTETS {
        return Err(RegistryError::TooLong {
            field: field.to_string(),
            what: "the name (UTF-8 octets)".into(),
            len: input.len(),
            max: MAX_NAME_OCTETS,
        });
    }
    if input.ends_with('.') {
        return Err(bad("a trailing dot is not allowed".into()));
    }
    for label in input.split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label".into()));
        }
        if label.is_ascii() {
            check_ldh(label).map_err(&bad)?;
        }
    }

    let uts46 = Uts46::new();
    let ascii = uts46
        .to_ascii(
            input.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Check,
            DnsLength::Ignore,
        )
        .map_err(|_| bad("it is not a valid IDNA2008 name".into()))?;

    for label in ascii.split('.') {
        if label.len() > MAX_LABEL_OCTETS {
            return Err(RegistryError::too_long(
                field,
                label,
                label.len(),
                "octets",
                MAX_LABEL_OCTETS,
            ));
        }
    }
    if ascii.len() > MAX_NAME_OCTETS {
        return Err(RegistryError::too_long(
            field,
            &ascii,
            ascii.len(),
            "octets",
            MAX_NAME_OCTETS,
        ));
    }

    let (unicode, decoded) =
        uts46.to_unicode(ascii.as_bytes(), AsciiDenyList::STD3, Hyphens::Check);
    decoded.map_err(|_| bad("it is not a valid IDNA2008 name".into()))?;

    let given: Vec<&str> = input.split('.').collect();
    let a_labels: Vec<&str> = ascii.split('.').collect();
    let u_labels: Vec<&str> = unicode.split('.').collect();
    if given.len() != a_labels.len() || a_labels.len() != u_labels.len() {
        return Err(bad(
            "labels must be separated by '.' (U+002E) and nothing else".into(),
        ));
    }
    for ((given, a), u) in given.iter().zip(&a_labels).zip(&u_labels) {
        let lower = given.to_lowercase();
        if lower != *a && lower != *u {
            return Err(bad(format!(
                "label {given:?} is not in normalised form; write it as {u:?} or {a:?}"
            )));
        }
        if let Some(c) = u
            .chars()
            .find(|&c| !c.is_ascii() && !in_idna2008_repertoire(c))
        {
            return Err(bad(format!(
                "U+{:04X} {c:?} is not allowed in an IDNA2008 label",
                c as u32
            )));
        }
    }

    let unicode = a_labels
        .iter()
        .any(|l| is_a_label(l))
        .then(|| unicode.into_owned());
    Ok(NormalizedName {
        ascii: ascii.into_owned(),
        unicode,
    })
}

/// The U-label form of a stored A-label name, or `None` when it has no IDN
/// labels (or, which cannot happen for stored names, does not decode).
pub fn to_unicode(ascii: &str) -> Option<String> {
    if !ascii.split('.').any(is_a_label) {
        return None;
    }
    let (unicode, result) =
        Uts46::new().to_unicode(ascii.as_bytes(), AsciiDenyList::STD3, Hyphens::Check);
    result.ok().map(|_| match unicode {
        Cow::Borrowed(s) => s.to_string(),
        Cow::Owned(s) => s,
    })
}

/// LDH rules for one ASCII label, with messages that say which rule.
fn check_ldh(label: &str) -> Result<(), String> {
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(format!(
            "label {label:?} contains {c:?}; only letters, digits and hyphens are allowed"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label {label:?} starts or ends with a hyphen"));
    }
    if label.as_bytes().get(2..4) == Some(b"--") && !is_a_label(label) {
        return Err(format!(
            "label {label:?} has \"--\" in positions 3 and 4, which is reserved for xn-- A-labels"
        ));
    }
    Ok(())
}

/// Whether a non-ASCII code point (after UTS 46 mapping) is in IDNA2008's
/// repertoire, approximated by RFC 5892's `LetterDigits` category with the
/// exception lists of RFC 5892 section 2.6 and the CONTEXTJ/CONTEXTO points.
pub(crate) fn in_idna2008_repertoire(c: char) -> bool {
    // RFC 5892 2.6 exceptions: DISALLOWED although they are letters.
    const DISALLOWED: &[char] = &[
        '\u{0640}', '\u{07FA}', '\u{302E}', '\u{302F}', '\u{3031}', '\u{3032}', '\u{3033}',
        '\u{3034}', '\u{3035}', '\u{303B}',
    ];
    // RFC 5892 2.6 PVALID exceptions, CONTEXTO points and CONTEXTJ joiners
    // that fall outside LetterDigits.
    const ALLOWED: &[char] = &[
        '\u{00DF}', '\u{03C2}', '\u{06FD}', '\u{06FE}', '\u{0F0B}', '\u{3007}', '\u{00B7}',
        '\u{0375}', '\u{05F3}', '\u{05F4}', '\u{30FB}', '\u{200C}', '\u{200D}',
    ];
    if DISALLOWED.contains(&c) {
        return false;
    }
    if ALLOWED.contains(&c) {
        return true;
    }
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::LowercaseLetter
            | GeneralCategory::OtherLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::DecimalNumber
    )
}

/// Validates a TLD name: one label, LDH or IDN, not all digits.
pub(crate) fn tld_name(field: &str, input: &str) -> Result<NormalizedName, RegistryError> {
    let name = normalize_name(field, input)?;
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

/// Validates a host name: a valid DNS name of at least two labels.
pub(crate) fn host_name(field: &str, input: &str) -> Result<NormalizedName, RegistryError> {
    let name = normalize_name(field, input)?;
    if name.label_count() < 2 {
        return Err(RegistryError::InvalidName {
            field: field.into(),
            name: input.into(),
            message: "a host name has at least two labels".into(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kauri_proto::v1::Reason;

    fn ok(input: &str) -> NormalizedName {
        match normalize_name("name", input) {
            Ok(n) => n,
            Err(e) => panic!("{input:?} should be valid: {e}"),
        }
    }

    fn reason(input: &str) -> Reason {
        match normalize_name("name", input) {
            Ok(n) => panic!("{input:?} should be refused, got {n:?}"),
            Err(e) => {
                assert_eq!(e.field(), "name", "{e}");
                e.reason()
            }
        }
    }

    #[test]
    fn ascii_names_are_lower_cased() {
        let n = ok("Example.NZ");
        assert_eq!(n.ascii(), "example.nz");
        assert_eq!(n.unicode(), None);
        assert_eq!(n.label_count(), 2);
        assert_eq!(n.tld(), "nz");
        assert_eq!(n.parent(), Some("nz"));
    }

    #[test]
    fn u_label_and_a_label_of_one_idn_normalise_alike() {
        for input in [
            "café.nz",
            "CAFÉ.nz",
            "Café.Nz",
            "xn--caf-dma.nz",
            "XN--CAF-DMA.NZ",
        ] {
            let n = ok(input);
            assert_eq!(n.ascii(), "xn--caf-dma.nz", "{input}");
            assert_eq!(n.unicode(), Some("café.nz"), "{input}");
        }
    }

    #[test]
    fn non_transitional_processing_keeps_sharp_s() {
        assert_eq!(ok("straße.de").ascii(), "xn--strae-oqa.de");
    }

    #[test]
    fn suffixes_count_labels_from_the_right() {
        let n = ok("ns1.example.nz");
        assert_eq!(n.suffix(1), Some("nz"));
        assert_eq!(n.suffix(2), Some("example.nz"));
        assert_eq!(n.suffix(3), Some("ns1.example.nz"));
        assert_eq!(n.suffix(4), None);
        assert_eq!(n.suffix(0), None);
    }

    #[test]
    fn bad_names_are_refused_with_the_right_reason() {
        let long_label = "a".repeat(64);
        let max_label = "a".repeat(63);
        let long_name = [max_label.as_str(); 4].join(".") + ".nz";
        let cases: &[(&str, Reason)] = &[
            ("", Reason::InvalidName),
            ("example.nz.", Reason::InvalidName),
            ("example..nz", Reason::InvalidName),
            (".nz", Reason::InvalidName),
            ("-example.nz", Reason::InvalidName),
            ("example-.nz", Reason::InvalidName),
            ("ex--ample.nz", Reason::InvalidName),
            ("exa_mple.nz", Reason::InvalidName),
            ("exa mple.nz", Reason::InvalidName),
            ("exa@mple.nz", Reason::InvalidName),
            ("xn--zz.nz", Reason::InvalidName),
            ("xn--.nz", Reason::InvalidName),
            // Punycode of plain ASCII is not an A-label.
            ("xn--abc-.nz", Reason::InvalidName),
            // Full-width letters would be mapped by UTS 46.
            ("ｅｘａｍｐｌｅ.nz", Reason::InvalidName),
            // Decomposed e + combining acute: not NFC.
            ("cafe\u{301}.nz", Reason::InvalidName),
            // Ideographic full stop as a separator.
            ("example\u{3002}nz", Reason::InvalidName),
            // Symbols are not IDNA2008.
            ("☃.nz", Reason::InvalidName),
            ("i❤.nz", Reason::InvalidName),
            ("a\u{0640}b.nz", Reason::InvalidName),
            ("exa\u{0}mple.nz", Reason::InvalidName),
            (long_label.as_str(), Reason::TooLong),
            (long_name.as_str(), Reason::TooLong),
        ];
        for (input, want) in cases {
            assert_eq!(reason(input), *want, "{input:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let max_label = "a".repeat(63);
        assert_eq!(ok(&format!("{max_label}.nz")).ascii().len(), 66);
        // 3 × 63 + 61 + 3 dots = 253 octets.
        let name = format!("{0}.{0}.{0}.{1}", max_label, "b".repeat(61));
        assert_eq!(ok(&name).ascii().len(), 253);
        let too_long = format!("{0}.{0}.{0}.{1}", max_label, "b".repeat(62));
        assert_eq!(reason(&too_long), Reason::TooLong);
    }

    #[test]
    fn huge_input_is_refused_before_idna_processing() {
        let input = "é".repeat(10_000);
        assert_eq!(reason(&input), Reason::TooLong);
    }

    #[test]
    fn a_label_detection_never_slices_inside_a_character() {
        assert!(is_a_label("XN--caf-dma"));
        assert!(!is_a_label("xn-"));
        assert!(!is_a_label("xné-"));
        assert!(!is_a_label("ééé"));
    }

    #[test]
    fn to_unicode_round_trips_stored_names() {
        assert_eq!(to_unicode("xn--caf-dma.nz").as_deref(), Some("café.nz"));
        assert_eq!(to_unicode("example.nz"), None);
    }
}
