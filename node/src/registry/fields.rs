//! Syntax rules for the registry's non-name fields: object ids, currencies,
//! free text, auth info, e-mail addresses and phone numbers.
//!
//! Each check takes the request field name so the error names it. Values over
//! their length limit are [`RegistryError::TooLong`]; every other syntax error
//! is [`RegistryError::InvalidField`].

use super::error::RegistryError;

/// Shortest registrar id (EPP clID).
pub const MIN_REGISTRAR_ID_CHARS: usize = 3;
/// Longest registrar id (EPP clID).
pub const MAX_REGISTRAR_ID_CHARS: usize = 16;
/// Shortest contact id (RFC 5733 clIDType).
pub const MIN_CONTACT_ID_CHARS: usize = 3;
/// Longest contact id (RFC 5733 clIDType).
pub const MAX_CONTACT_ID_CHARS: usize = 16;
/// Shortest auth info (transfer password) the registry accepts.
pub const MIN_AUTH_INFO_CHARS: usize = 6;
/// Longest auth info (transfer password) the registry accepts.
pub const MAX_AUTH_INFO_CHARS: usize = 64;
/// Longest free-text value (names, organisations, street lines, references).
pub const MAX_TEXT_CHARS: usize = 255;
/// Longest e-mail address (RFC 5321 path limit less the angle brackets).
pub const MAX_EMAIL_OCTETS: usize = 254;
const _: () = assert!(MIN_REGISTRAR_ID_CHARS <= MAX_REGISTRAR_ID_CHARS);
const _: () = assert!(MIN_CONTACT_ID_CHARS <= MAX_CONTACT_ID_CHARS);
const _: () = assert!(MIN_AUTH_INFO_CHARS <= MAX_AUTH_INFO_CHARS);

/// A registrar id: 3 to 16 characters of `[A-Za-z0-9_-]`.
pub fn registrar_id(field: &str, id: &str) -> Result<(), RegistryError> {
    object_id(
        field,
        id,
        MIN_REGISTRAR_ID_CHARS,
        MAX_REGISTRAR_ID_CHARS,
        |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
        "letters, digits, '_' and '-'",
    )
}

/// A contact id: 3 to 16 characters of `[A-Za-z0-9._-]`, case-sensitive.
/// RFC 5733 allows any token; the registry narrows that to characters that
/// are safe in URLs (RDAP) and storage keys.
pub fn contact_id(field: &str, id: &str) -> Result<(), RegistryError> {
    object_id(
        field,
        id,
        MIN_CONTACT_ID_CHARS,
        MAX_CONTACT_ID_CHARS,
        |c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.',
        "letters, digits, '.', '_' and '-'",
    )
}

fn object_id(
    field: &str,
    id: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(char) -> bool,
    allowed_text: &str,
) -> Result<(), RegistryError> {
    let len = id.chars().count();
    if len > max {
        return Err(RegistryError::too_long(field, id, len, "characters", max));
    }
    if len < min {
        return Err(RegistryError::invalid(
            field,
            format!("{id:?} is shorter than {min} characters"),
        ));
    }
    if let Some(c) = id.chars().find(|&c| !allowed(c)) {
        return Err(RegistryError::invalid(
            field,
            format!("{id:?} contains {c:?}; only {allowed_text} are allowed"),
        ));
    }
    Ok(())
}

/// An ISO 4217-like currency code: three upper-case ASCII letters.
pub fn currency(field: &str, code: &str) -> Result<(), RegistryError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            field,
            format!("{code:?} is not a currency code (three upper-case letters, e.g. \"NZD\")"),
        ))
    }
}

/// Free text of at most `max` characters without control characters;
/// `required` refuses an empty (or all-whitespace) value.
pub fn text(field: &str, value: &str, required: bool, max: usize) -> Result<(), RegistryError> {
    let len = value.chars().count();
    if len > max {
        return Err(RegistryError::too_long(
            field,
            &clip(value),
            len,
            "characters",
            max,
        ));
    }
    if required && value.trim().is_empty() {
        return Err(RegistryError::invalid(field, "is required"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(RegistryError::invalid(
            field,
            format!("contains the control character {c:?}"),
        ));
    }
    Ok(())
}

/// Auth info (an EPP `pw`): 6 to 64 characters, no control characters, not
/// all whitespace. The API layer fills in a random one when the client left
/// it empty, so an empty value here is a malformed request.
pub fn auth_info(field: &str, value: &str) -> Result<(), RegistryError> {
    let len = value.chars().count();
    if len > MAX_AUTH_INFO_CHARS {
        return Err(RegistryError::TooLong {
            field: field.to_string(),
            what: "the auth info (characters)".into(),
            len,
            max: MAX_AUTH_INFO_CHARS,
        });
    }
    if len < MIN_AUTH_INFO_CHARS {
        return Err(RegistryError::invalid(
            field,
            format!("auth info must be at least {MIN_AUTH_INFO_CHARS} characters"),
        ));
    }
    if value.trim().is_empty() || value.chars().any(|c| c.is_control()) {
        return Err(RegistryError::invalid(
            field,
            "auth info must be printable characters",
        ));
    }
    Ok(())
}

/// The characters of auth info the registry makes up: letters and digits
/// without look-alikes (0/O, 1/l/I).
pub const AUTH_INFO_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
/// Length of auth info the registry makes up (16 of 57 characters: 93 bits).
pub const MADE_AUTH_INFO_CHARS: usize = 16;
const _: () = assert!(MADE_AUTH_INFO_CHARS >= MIN_AUTH_INFO_CHARS);
const _: () = assert!(MADE_AUTH_INFO_CHARS <= MAX_AUTH_INFO_CHARS);

/// Auth info for `object` derived from proposer-drawn random `seed` (apply
/// may not draw randomness itself): SHA-256 over a domain separator, the
/// seed and the object's name, read as a number in base 57. Different
/// objects sharing a seed get unrelated values; whoever lacks the seed (it
/// is only in the replicated log) cannot work them out.
pub fn auth_info_from_seed(seed: &[u8], object: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"kauri auth info\0");
    h.update((seed.len() as u64).to_be_bytes());
    h.update(seed);
    h.update(object.as_bytes());
    let digest = h.finalize();
    let mut n = u128::from_be_bytes(digest[..16].try_into().expect("16 of 32 bytes"));
    let base = AUTH_INFO_ALPHABET.len() as u128;
    (0..MADE_AUTH_INFO_CHARS)
        .map(|_| {
            let c = AUTH_INFO_ALPHABET[(n % base) as usize] as char;
            n /= base;
            c
        })
        .collect()
}

/// A plausible e-mail address: one `@`, a non-empty local part of at most 64
/// octets, a domain with at least two non-empty labels, no whitespace or
/// control characters. Deliverability is the registrar's business.
pub fn email(field: &str, value: &str) -> Result<(), RegistryError> {
    if value.len() > MAX_EMAIL_OCTETS {
        return Err(RegistryError::too_long(
            field,
            &clip(value),
            value.len(),
            "octets",
            MAX_EMAIL_OCTETS,
        ));
    }
    let bad = || RegistryError::invalid(field, format!("{value:?} is not an e-mail address"));
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err(bad());
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err(bad());
    }
    Ok(())
}

/// A phone number in RFC 5733's E.164 form `+CC.NUMBER`: `+`, a country
/// code of 1 to 3 digits, `.`, and 1 to 14 digits.
pub fn phone(field: &str, value: &str) -> Result<(), RegistryError> {
    let bad = || {
        RegistryError::invalid(
            field,
            format!("{value:?} is not a phone number of the form +CC.NUMBER (e.g. +64.41234567)"),
        )
    };
    let rest = value.strip_prefix('+').ok_or_else(bad)?;
    let (cc, number) = rest.split_once('.').ok_or_else(bad)?;
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if digits(cc, 3) && digits(number, 14) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters.
pub fn country_code(field: &str, value: &str) -> Result<(), RegistryError> {
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            field,
            format!("{value:?} is not a country code (two upper-case letters, e.g. \"NZ\")"),
        ))
    }
}

/// The first 40 characters of `value`, for messages about overlong values.
pub fn clip(value: &str) -> String {
    const SHOWN: usize = 40;
    if value.chars().count() <= SHOWN {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(SHOWN).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kauri_proto::v1::Reason;

    fn reason(r: Result<(), RegistryError>) -> Option<Reason> {
        r.err().map(|e| {
            assert_eq!(e.field(), "f");
            e.reason()
        })
    }

    #[test]
    fn registrar_ids() {
        assert_eq!(reason(registrar_id("f", "rar-1_X")), None);
        assert_eq!(reason(registrar_id("f", "ab")), Some(Reason::InvalidField));
        assert_eq!(
            reason(registrar_id("f", "a.b.c")),
            Some(Reason::InvalidField)
        );
        assert_eq!(
            reason(registrar_id("f", &"a".repeat(17))),
            Some(Reason::TooLong)
        );
    }

    #[test]
    fn contact_ids() {
        assert_eq!(reason(contact_id("f", "sh8013")), None);
        assert_eq!(reason(contact_id("f", "c.1-x_y")), None);
        assert_eq!(reason(contact_id("f", "c 1")), Some(Reason::InvalidField));
        assert_eq!(reason(contact_id("f", "")), Some(Reason::InvalidField));
        assert_eq!(
            reason(contact_id("f", &"c".repeat(17))),
            Some(Reason::TooLong)
        );
    }

    #[test]
    fn currencies() {
        assert_eq!(reason(currency("f", "NZD")), None);
        for bad in ["nzd", "NZ", "NZDD", "N1D", ""] {
            assert_eq!(
                reason(currency("f", bad)),
                Some(Reason::InvalidField),
                "{bad}"
            );
        }
    }

    #[test]
    fn emails() {
        assert_eq!(reason(email("f", "jdoe@example.nz")), None);
        for bad in [
            "",
            "jdoe",
            "@example.nz",
            "jdoe@",
            "jdoe@nz",
            "j doe@x.nz",
            "a@b@c.nz",
            "a@b..nz",
        ] {
            assert_eq!(reason(email("f", bad)), Some(Reason::InvalidField), "{bad}");
        }
        let long = format!("{}@example.nz", "a".repeat(250));
        assert_eq!(reason(email("f", &long)), Some(Reason::TooLong));
    }

    #[test]
    fn phones() {
        assert_eq!(reason(phone("f", "+64.41234567")), None);
        assert_eq!(reason(phone("f", "+1.7035555555")), None);
        for bad in [
            "",
            "64.4123",
            "+64",
            "+64.",
            "+.123",
            "+1234.5",
            "+64.4123a",
            "+64.123456789012345",
        ] {
            assert_eq!(reason(phone("f", bad)), Some(Reason::InvalidField), "{bad}");
        }
    }

    #[test]
    fn text_and_auth_info() {
        assert_eq!(reason(text("f", "", false, 5)), None);
        assert_eq!(reason(text("f", " ", true, 5)), Some(Reason::InvalidField));
        assert_eq!(
            reason(text("f", "a\nb", true, 5)),
            Some(Reason::InvalidField)
        );
        assert_eq!(reason(text("f", "abcdef", true, 5)), Some(Reason::TooLong));
        assert_eq!(reason(auth_info("f", "2fooBAR")), None);
        assert_eq!(reason(auth_info("f", "")), Some(Reason::InvalidField));
        assert_eq!(reason(auth_info("f", "      ")), Some(Reason::InvalidField));
        assert_eq!(
            reason(auth_info("f", &"x".repeat(65))),
            Some(Reason::TooLong)
        );
    }

    #[test]
    fn country_codes() {
        assert_eq!(reason(country_code("f", "NZ")), None);
        for bad in ["nz", "NZL", "N", ""] {
            assert_eq!(
                reason(country_code("f", bad)),
                Some(Reason::InvalidField),
                "{bad}"
            );
        }
    }
}
