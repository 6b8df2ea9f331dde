//! A checkpoint of the node's database, which is what a snapshot is: the
//! keys of the state machine's metadata it holds, and how to open one and
//! check it against the snapshot metadata that travels with it. Below both
//! the state machine (which builds and installs checkpoints) and the inbox
//! (which verifies received ones).

use std::path::Path;

use super::{StorageError, CF_SM_META};
use crate::raft::typ;

/// The last applied log id (JSON `Option<LogId>`).
pub(crate) const KEY_LAST_APPLIED: &[u8] = b"last_applied";
/// The membership at the last applied index (JSON).
pub(super) const KEY_MEMBERSHIP: &[u8] = b"membership";
/// The metadata of the current snapshot (JSON `SnapshotMeta`).
pub(crate) const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
/// The state chain at the last applied index ([`super::chain`]).
pub(super) const KEY_STATE_CHAIN: &[u8] = b"state_chain";
/// Present while a snapshot install is under way (see the state machine's
/// `install`).
pub(super) const KEY_INSTALLING: &[u8] = b"installing";

/// Opens checkpoint `dir` read-only.
pub(super) fn open(dir: &Path) -> Result<rocksdb::DB, rocksdb::Error> {
    let opts = rocksdb::Options::default();
    let names = rocksdb::DB::list_cf(&opts, dir)?;
    rocksdb::DB::open_cf_for_read_only(&opts, dir, names, false)
}

/// The last applied log id and membership checkpoint `dir` holds.
pub(super) fn applied_state(
    dir: &Path,
) -> Result<(Option<typ::LogId>, typ::StoredMembership), StorageError> {
    let db = open(dir)?;
    let meta = db
        .cf_handle(CF_SM_META)
        .ok_or_else(|| StorageError::Corrupt {
            what: "checkpoint",
            detail: format!("no {CF_SM_META} column family"),
        })?;
    let json = |key: &[u8]| -> Result<Option<Vec<u8>>, StorageError> { Ok(db.get_cf(meta, key)?) };
    let corrupt = |e: serde_json::Error| StorageError::Corrupt {
        what: "checkpoint metadata",
        detail: e.to_string(),
    };
    if json(KEY_INSTALLING)?.is_some() {
        return Err(StorageError::Busy(
            "the checkpoint caught a snapshot install half way".into(),
        ));
    }
    let last_applied: Option<typ::LogId> = match json(KEY_LAST_APPLIED)? {
        Some(b) => serde_json::from_slice(&b).map_err(corrupt)?,
        None => None,
    };
    let membership = match json(KEY_MEMBERSHIP)? {
        Some(b) => serde_json::from_slice(&b).map_err(corrupt)?,
        None => Default::default(),
    };
    Ok((last_applied, membership))
}

/// Checks that checkpoint `dir` opens as a database and holds the applied
/// log id and membership `meta` declares.
pub(super) fn verify(dir: &Path, meta: &typ::SnapshotMeta) -> Result<(), String> {
    let (last_applied, membership) =
        applied_state(dir).map_err(|e| format!("the checkpoint does not open: {e}"))?;
    if last_applied != meta.last_log_id {
        return Err(format!(
            "the checkpoint holds the state at {last_applied:?}, but the snapshot declares {:?}",
            meta.last_log_id
        ));
    }
    if membership != meta.last_membership {
        return Err(format!(
            "the checkpoint holds membership {membership:?}, but the snapshot declares {:?}",
            meta.last_membership
        ));
    }
    Ok(())
}
