//! DNSSEC delegation data on domains (RFC 5910 dsData): what a DS record
//! may hold here, and the most a domain may have.
//!
//! Algorithms are RFC 8624's set for signing (8, 10, 13, 14, 15, 16); the
//! ones it says not to sign with are refused, so no new delegation uses
//! them. Digest types are SHA-256 (2) and SHA-384 (4); SHA-1 (1) is
//! refused for the same reason. A digest must be exactly its type's
//! length.

use std::collections::BTreeSet;

use kauri_proto::v1;

use super::error::RegistryError;
use super::model::DsRecord;

/// Most DS records one domain may have.
pub const MAX_DS: usize = 8;

/// DNSSEC algorithm numbers accepted.
pub const ALGORITHMS: [u8; 6] = [8, 10, 13, 14, 15, 16];

/// The digest length of an accepted digest type, octets.
fn digest_len(digest_type: u8) -> Option<usize> {
    match digest_type {
        2 => Some(32),
        4 => Some(48),
        _ => None,
    }
}

/// One DS record of a request, checked.
pub(crate) fn ds_record(field: &str, ds: &v1::DsData) -> Result<DsRecord, RegistryError> {
    let key_tag = u16::try_from(ds.key_tag).map_err(|_| {
        RegistryError::invalid(field, format!("key tag {} is not 0 to 65535", ds.key_tag))
    })?;
    let algorithm = u8::try_from(ds.algorithm)
        .ok()
        .filter(|a| ALGORITHMS.contains(a))
        .ok_or_else(|| {
            RegistryError::policy(
                field,
                format!(
                    "DNSSEC algorithm {} is not accepted: one of {ALGORITHMS:?} (RFC 8624)",
                    ds.algorithm
                ),
            )
        })?;
    let digest_type = u8::try_from(ds.digest_type).unwrap_or(u8::MAX);
    let Some(len) = digest_len(digest_type) else {
        return Err(RegistryError::policy(
            field,
            format!(
                "digest type {} is not accepted: 2 (SHA-256) or 4 (SHA-384)",
                ds.digest_type
            ),
        ));
    };
    let hex = ds.digest.as_bytes();
    if hex.len() != 2 * len || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(RegistryError::invalid(
            field,
            format!(
                "the digest of type {digest_type} is {len} octets in hex ({} hex digits), got {:?}",
                2 * len,
                ds.digest.chars().take(2 * len + 8).collect::<String>()
            ),
        ));
    }
    let digest = hex
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            u8::from_str_radix(s, 16).unwrap_or(0)
        })
        .collect();
    Ok(DsRecord {
        key_tag,
        algorithm,
        digest_type,
        digest,
    })
}

/// The DS records of a request, checked; a record given twice is refused.
pub(crate) fn ds_list(field: &str, list: &[v1::DsData]) -> Result<Vec<DsRecord>, RegistryError> {
    let mut seen = BTreeSet::new();
    list.iter()
        .map(|ds| {
            let record = ds_record(field, ds)?;
            if !seen.insert(record.clone()) {
                return Err(RegistryError::invalid(
                    field,
                    format!("DS record {} is given twice", ds.key_tag),
                ));
            }
            Ok(record)
        })
        .collect()
}

/// Refuses more than [`MAX_DS`] records on domain `name`.
pub(crate) fn check_count(field: &str, name: &str, n: usize) -> Result<(), RegistryError> {
    if n > MAX_DS {
        return Err(RegistryError::policy(
            field,
            format!("{name:?} would have {n} DS records, at most {MAX_DS} allowed"),
        ));
    }
    Ok(())
}

/// A DS record as the audit trail shows it: key tag, algorithm, digest
/// type and the digest's first octets.
pub(crate) fn describe(ds: &DsRecord) -> String {
    let head: String = ds
        .digest
        .iter()
        .take(4)
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("{}/{}/{}/{head}…", ds.key_tag, ds.algorithm, ds.digest_type)
}
