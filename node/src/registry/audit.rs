//! The audit trail: one append-only record per changed object per command
//! (or lifecycle event), with who, when, which transaction and what changed.
//!
//! Records live in [`Cf::Audit`] by sequence number, with two indexes keyed
//! by object (`kind:name`) and by actor, each followed by inverted time and
//! inverted sequence so a prefix scan yields the newest first and a time
//! range starts with a seek, not a scan. A query reads at most one page.

use kauri_proto::v1;

use super::calendar::date;
use super::engine::{Cf, StateRead, StorageFault};
use super::error::RegistryError;
use super::exec::Exec;
use super::model::{
    self, audit_index_key, audit_index_prefix, audit_object, inverted_time, meta, AuditRecord,
    DomainRecord,
};

/// Records per page when the query gives no limit.
pub const DEFAULT_AUDIT_PAGE: u32 = 50;
/// Most records per page.
pub const MAX_AUDIT_PAGE: u32 = 1000;
/// Object kinds the audit trail knows.
pub const OBJECT_KINDS: [&str; 6] = ["domain", "contact", "host", "registrar", "tld", "case"];

/// Writes the audit records a command collected, once it succeeded.
pub(crate) fn flush(cx: &mut Exec<'_, '_>) -> Result<(), RegistryError> {
    for (kind, object, changes) in cx.take_audits() {
        write(cx, kind, &object, changes)?;
    }
    Ok(())
}

/// Writes one audit record and its index entries.
fn write(
    cx: &mut Exec<'_, '_>,
    object_kind: &str,
    object: &str,
    changes: Vec<String>,
) -> Result<(), RegistryError> {
    let seq = cx.next_seq(meta::AUDIT_SEQ)?;
    let record = AuditRecord {
        seq,
        time_ms: cx.now_ms,
        actor_kind: cx.actor_kind,
        actor: cx.actor.clone(),
        command: cx.command.into(),
        object_kind: object_kind.into(),
        object: object.into(),
        sv_trid: cx.tx.sv_trid.clone(),
        cl_trid: cx.tx.cl_trid.clone(),
        changes,
        via: cx.via.clone(),
    };
    let by_object = audit_index_key(&audit_object(object_kind, object), record.time_ms, seq);
    let by_actor = audit_index_key(&record.actor, record.time_ms, seq);
    cx.put_raw(Cf::AuditByObject, &by_object, seq.to_be_bytes().to_vec());
    cx.put_raw(Cf::AuditByActor, &by_actor, seq.to_be_bytes().to_vec());
    cx.save(&record);
    Ok(())
}

/// Audit records matching `req`, newest first, one page; and the token of
/// the next page (empty on the last).
pub fn query_audit(
    state: &dyn StateRead,
    req: &v1::AuditQueryRequest,
) -> Result<(Vec<v1::AuditRecord>, Vec<u8>), RegistryError> {
    let (cf, value) = match (req.object.is_empty(), req.actor.is_empty()) {
        (false, true) => {
            let kind = if req.object_kind.is_empty() {
                "domain"
            } else {
                req.object_kind.as_str()
            };
            if !OBJECT_KINDS.contains(&kind) {
                return Err(RegistryError::invalid(
                    "object_kind",
                    format!("{kind:?} is not one of {}", OBJECT_KINDS.join(", ")),
                ));
            }
            let object = match kind {
                "domain" | "host" => super::names::normalize_name("object", &req.object)?
                    .ascii()
                    .to_string(),
                "tld" => super::names::tld_name("object", &req.object)?
                    .ascii()
                    .to_string(),
                _ => req.object.clone(),
            };
            (Cf::AuditByObject, audit_object(kind, &object))
        }
        (true, false) => (Cf::AuditByActor, req.actor.clone()),
        _ => {
            return Err(RegistryError::invalid(
                "object",
                "give exactly one of object and actor",
            ))
        }
    };
    if req.from_ms < 0 || req.until_ms < 0 || (req.until_ms > 0 && req.from_ms > req.until_ms) {
        return Err(RegistryError::invalid(
            "from_ms",
            format!("{}..{} is not a time range", req.from_ms, req.until_ms),
        ));
    }
    let limit = match req.limit {
        0 => DEFAULT_AUDIT_PAGE,
        n => n.min(MAX_AUDIT_PAGE),
    } as usize;
    let prefix = audit_index_prefix(&value);
    // Start at the page token, or seek to the newest record not after until_ms.
    let seek;
    let after: Option<&[u8]> = if !req.page_token.is_empty() {
        if !req.page_token.starts_with(&prefix) || req.page_token.len() != prefix.len() + 16 {
            return Err(RegistryError::invalid(
                "page_token",
                "is not a token of this query",
            ));
        }
        Some(&req.page_token)
    } else if req.until_ms > 0 {
        // Just before every key with time <= until_ms: the inverted time of
        // until_ms + 1, then the largest suffix.
        let mut k = prefix.clone();
        k.extend_from_slice(&inverted_time(req.until_ms.saturating_add(1)));
        k.extend_from_slice(&[0xff; 8]);
        seek = k;
        Some(&seek)
    } else {
        None
    };
    let entries = state.scan_prefix(cf, &prefix, after, limit + 1)?;
    let r = state;
    let mut out = Vec::new();
    let mut next = Vec::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        let seq: [u8; 8] = value
            .as_slice()
            .try_into()
            .map_err(|_| StorageFault(format!("audit index entry {key:?} is not a sequence")))?;
        let record = r
            .load::<AuditRecord>(&seq)?
            .ok_or_else(|| StorageFault(format!("audit record {seq:?} is missing")))?;
        if req.from_ms > 0 && record.time_ms < req.from_ms {
            break;
        }
        if i == limit {
            next = entries[i - 1].0.clone();
            break;
        }
        out.push(record.to_proto());
    }
    Ok((out, next))
}

/// What changed between two versions of a domain, one item per field.
pub(crate) fn domain_changes(before: &DomainRecord, after: &DomainRecord) -> Vec<String> {
    let mut out = Vec::new();
    let sets = |out: &mut Vec<String>, what: &str, b: Vec<String>, a: Vec<String>| {
        let added: Vec<&String> = a.iter().filter(|x| !b.contains(x)).collect();
        let removed: Vec<&String> = b.iter().filter(|x| !a.contains(x)).collect();
        if !added.is_empty() || !removed.is_empty() {
            let mut parts: Vec<String> = added.iter().map(|x| format!("+{x}")).collect();
            parts.extend(removed.iter().map(|x| format!("-{x}")));
            out.push(format!("{what} {}", parts.join(" ")));
        }
    };
    sets(
        &mut out,
        "statuses",
        before.shown_statuses(),
        after.shown_statuses(),
    );
    sets(
        &mut out,
        "ds",
        before.ds.iter().map(super::dnssec::describe).collect(),
        after.ds.iter().map(super::dnssec::describe).collect(),
    );
    sets(
        &mut out,
        "nameservers",
        before.nameservers.iter().cloned().collect(),
        after.nameservers.iter().cloned().collect(),
    );
    sets(
        &mut out,
        "contacts",
        before
            .contacts
            .iter()
            .map(|(r, id)| format!("{r:?}:{id}"))
            .collect(),
        after
            .contacts
            .iter()
            .map(|(r, id)| format!("{r:?}:{id}"))
            .collect(),
    );
    if before.registrant != after.registrant {
        out.push(format!(
            "registrant {} → {}",
            before.registrant, after.registrant
        ));
    }
    if before.auth_info != after.auth_info {
        out.push("auth info changed".into());
    }
    if before.sponsor != after.sponsor {
        out.push(format!("sponsor {} → {}", before.sponsor, after.sponsor));
    }
    if before.expiry_ms != after.expiry_ms {
        out.push(format!(
            "expiry {} → {}",
            date(before.expiry_ms),
            date(after.expiry_ms)
        ));
    }
    if before.state != after.state {
        out.push(format!(
            "rgp {:?} → {:?}",
            before.rgp_statuses(0),
            after.rgp_statuses(0)
        ));
    }
    out
}

/// The number of audit records, for tests and metrics.
pub fn audit_len(state: &dyn StateRead) -> Result<u64, RegistryError> {
    Ok(model::read_counter(state, meta::AUDIT_SEQ)?)
}
