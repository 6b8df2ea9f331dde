//! Registrar sessions: a gateway that checked a registrar's password (EPP
//! login) opens a session, and acts for that registrar while it lasts.
//!
//! The proposer checks the password and generates the token; the log and
//! the state carry only the token's SHA-256, the registrar, the gateway
//! (the proposal's `via`) and the expiry, which apply computes from registry
//! time and the command's lifetime. Sessions are replicated so any node
//! accepts them after a failover. A session ends when the gateway closes it
//! (EPP logout) or when it expires: the API refuses expired sessions, the
//! next open of the same registrar drops its expired ones, and ticks prune
//! them through the expiry index.

use kauri_proto::v1::{self, command_result::Outcome};

use super::engine::{Cf, StateRead, StorageFault, Txn};
use super::error::RegistryError;
use super::exec::Exec;
use super::model::{
    audit_index_prefix, session_by_registrar_key, session_expiry_key, RegistrarRecord,
    SessionRecord,
};

/// Most sessions one registrar may have open at once (across gateways).
pub const MAX_SESSIONS_PER_REGISTRAR: usize = 32;
/// Longest session a gateway may ask for: a day.
pub const MAX_SESSION_LIFETIME_MS: i64 = 86_400_000;
/// The lifetime of a session whose gateway asked for none: an hour.
pub const DEFAULT_SESSION_LIFETIME_MS: i64 = 3_600_000;
/// Most expired sessions one tick drops (the rest next tick).
pub const MAX_SESSIONS_PRUNED_PER_TICK: usize = 1024;
/// Octets of a token hash (SHA-256).
pub const TOKEN_SHA256_OCTETS: usize = 32;

const _: () = assert!(DEFAULT_SESSION_LIFETIME_MS <= MAX_SESSION_LIFETIME_MS);
const _: () = assert!(MAX_SESSIONS_PER_REGISTRAR > 0);

fn token_hash(field: &str, bytes: &[u8]) -> Result<[u8; TOKEN_SHA256_OCTETS], RegistryError> {
    bytes.try_into().map_err(|_| {
        RegistryError::invalid(
            field,
            format!(
                "must be a SHA-256 of {TOKEN_SHA256_OCTETS} octets, got {}",
                bytes.len()
            ),
        )
    })
}

/// Opens a session of `account` (the command's actor, whose password the
/// proposer checked) for the gateway in `cx.via`.
pub(crate) fn open(
    cx: &mut Exec<'_, '_>,
    mut account: RegistrarRecord,
    req: &v1::OpenSessionCommand,
) -> Result<Outcome, RegistryError> {
    let hash = token_hash("token_sha256", &req.token_sha256)?;
    if !req.new_password_hash.is_empty() {
        super::registrar::check_password_hash("new_password_hash", &req.new_password_hash)?;
    }
    if !(1..=MAX_SESSION_LIFETIME_MS).contains(&req.lifetime_ms) {
        return Err(RegistryError::invalid(
            "lifetime_ms",
            format!(
                "{} is not a session lifetime: 1 to {MAX_SESSION_LIFETIME_MS} ms",
                req.lifetime_ms
            ),
        ));
    }
    if cx.exists::<SessionRecord>(&hash)? {
        return Err(RegistryError::SessionInvalid {
            field: "token_sha256".into(),
            message: "a session with this token is already open".into(),
        });
    }
    // The index never holds more than the limit, so one page sees all of
    // the registrar's sessions; expired ones are dropped on the way.
    let prefix = audit_index_prefix(&account.id);
    let mut live = 0;
    for (key, _) in cx.scan(Cf::SessionsByRegistrar, &prefix, MAX_SESSIONS_PER_REGISTRAR)? {
        let other = token_hash("token_sha256", &key[prefix.len()..])
            .map_err(|_| StorageFault(format!("session index key {key:?} has no token hash")))?;
        let session = cx.load::<SessionRecord>(&other)?.ok_or_else(|| {
            StorageFault(format!("indexed session of {:?} is missing", account.id))
        })?;
        if session.expires_ms <= cx.now_ms {
            remove(cx, &session);
        } else {
            live += 1;
        }
    }
    if live >= MAX_SESSIONS_PER_REGISTRAR {
        return Err(RegistryError::SessionLimit {
            field: "meta.actor".into(),
            registrar: account.id.clone(),
            max: MAX_SESSIONS_PER_REGISTRAR,
        });
    }
    let session = SessionRecord {
        token_sha256: hash,
        registrar: account.id.clone(),
        gateway: cx.via.clone(),
        opened_ms: cx.now_ms,
        expires_ms: cx.now_ms.saturating_add(req.lifetime_ms),
        sv_trid: cx.tx.sv_trid.clone(),
    };
    cx.save(&session);
    cx.put_raw(
        Cf::SessionsByRegistrar,
        &session_by_registrar_key(&session.registrar, &hash),
        Vec::new(),
    );
    cx.put_raw(
        Cf::SessionExpiry,
        &session_expiry_key(session.expires_ms, &hash),
        Vec::new(),
    );
    let mut changes = vec![format!(
        "session {} opened, expires at {} ms",
        session.id(),
        session.expires_ms
    )];
    // EPP <newPW>: the login changes the password (the hash only; the
    // proposer checked the old password).
    if !req.new_password_hash.is_empty() {
        account.password_hash = req.new_password_hash.clone();
        cx.save(&account);
        changes.push("password changed at login".into());
    }
    cx.audit("registrar", &account.id, changes);
    Ok(Outcome::Session(v1::SessionResponse {
        session: Some(session.to_proto()),
        tx: Some(cx.tx.clone()),
    }))
}

/// Closes the session with the command's token hash: it must be the
/// actor's and opened by the gateway in `cx.via`.
pub(crate) fn close(
    cx: &mut Exec<'_, '_>,
    req: &v1::CloseSessionCommand,
) -> Result<Outcome, RegistryError> {
    let hash = token_hash("token_sha256", &req.token_sha256)?;
    let invalid = |message: &str| RegistryError::SessionInvalid {
        field: "token_sha256".into(),
        message: message.into(),
    };
    let session = cx
        .load::<SessionRecord>(&hash)?
        .ok_or_else(|| invalid("no open session has this token (closed or expired)"))?;
    if session.registrar != cx.actor {
        return Err(invalid("the session is another registrar's"));
    }
    if session.gateway != cx.via {
        return Err(invalid("the session was opened by another gateway"));
    }
    remove(cx, &session);
    cx.audit(
        "registrar",
        &session.registrar,
        vec![format!("session {} closed", session.id())],
    );
    Ok(Outcome::Session(v1::SessionResponse {
        session: Some(session.to_proto()),
        tx: Some(cx.tx.clone()),
    }))
}

/// Deletes a session and its index entries.
fn remove(cx: &mut Exec<'_, '_>, session: &SessionRecord) {
    let hash = &session.token_sha256;
    cx.delete::<SessionRecord>(hash);
    cx.delete_raw(
        Cf::SessionsByRegistrar,
        &session_by_registrar_key(&session.registrar, hash),
    );
    cx.delete_raw(
        Cf::SessionExpiry,
        &session_expiry_key(session.expires_ms, hash),
    );
}

/// Drops sessions that expired by `now_ms`, at most
/// [`MAX_SESSIONS_PRUNED_PER_TICK`] of them, oldest first.
pub(crate) fn prune_expired(txn: &mut Txn<'_>, now_ms: i64) -> Result<u64, StorageFault> {
    let expired = txn.scan_prefix(Cf::SessionExpiry, &[], None, MAX_SESSIONS_PRUNED_PER_TICK)?;
    let mut pruned = 0;
    for (key, _) in expired {
        let malformed = || StorageFault(format!("session expiry key {key:?} is not 40 bytes"));
        let expires_ms = key
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .ok_or_else(malformed)?;
        if expires_ms > now_ms {
            break;
        }
        let hash: [u8; TOKEN_SHA256_OCTETS] = key
            .get(8..)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(malformed)?;
        let state: &dyn StateRead = &*txn;
        if let Some(session) = state.load::<SessionRecord>(&hash)? {
            txn.delete(
                Cf::SessionsByRegistrar,
                &session_by_registrar_key(&session.registrar, &hash),
            );
            txn.delete(Cf::Sessions, &hash);
        }
        txn.delete(Cf::SessionExpiry, &key);
        pruned += 1;
    }
    txn.commit_command();
    Ok(pruned)
}

/// The session whose token hashes to `token_sha256`, if one is stored
/// (expired sessions may still be, until pruned: the caller compares
/// `expires_ms` with the time).
pub fn session_by_token_hash(
    state: &dyn StateRead,
    token_sha256: &[u8],
) -> Result<Option<v1::Session>, RegistryError> {
    Ok(state
        .load::<SessionRecord>(token_sha256)?
        .map(|s| s.to_proto()))
}
