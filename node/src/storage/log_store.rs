//! The Raft log in RocksDB: entries in `raft_log` keyed by big-endian index,
//! vote / committed / last-purged in `raft_state`.
//!
//! Appends are group-committed: [`RaftLogStorage::append`] writes its batch
//! to RocksDB's write-ahead log without waiting for the disk and hands
//! openraft's completion callback to a flusher thread. The flusher takes
//! every callback queued so far, syncs the write-ahead log once
//! (`fdatasync`) and only then reports those appends durable, so one disk
//! sync covers all the entries that arrived while the previous one ran.
//! Raft still counts an entry towards a quorum only after it is on disk;
//! the leader's core loop just no longer stalls on each sync.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use super::{read_json, sto_err, Store, CF_RAFT_LOG, CF_RAFT_STATE};
use crate::raft::{typ, TypeConfig};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
/// How long a purge waits for the snapshot covering it to become durable.
const PURGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// openraft log storage over the node's [`Store`].
#[derive(Clone)]
pub struct LogStore {
    store: Store,
    /// Appends written but not yet synced, for the flusher thread.
    flusher: mpsc::Sender<LogFlushed<TypeConfig>>,
    /// Held by the purge under way (see `purge_when_covered`).
    purging: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Syncs the write-ahead log for every batch of queued appends and then
/// completes them; ends when every [`LogStore`] clone is gone.
fn run_flusher(store: Store, queue: mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = queue.recv() {
        let mut waiting = vec![first];
        waiting.extend(queue.try_iter());
        let started = std::time::Instant::now();
        let result = store.db().flush_wal(true);
        crate::telemetry::log_synced(started.elapsed());
        for callback in waiting {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::other(format!("syncing the raft log: {e}"))),
            };
            callback.log_io_completed(outcome);
        }
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn synced() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

impl LogStore {
    /// Log storage over `store`, with its flusher thread.
    pub fn new(store: Store) -> Self {
        let (flusher, queue) = mpsc::channel();
        let syncing = store.clone();
        std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || run_flusher(syncing, queue))
            .expect("spawning the raft log flusher thread");
        LogStore {
            store,
            flusher,
            purging: Default::default(),
        }
    }

    /// Writes `value` under `key` in `raft_state`; `sync` waits for the
    /// disk.
    fn put_state<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        sync: bool,
    ) -> Result<(), typ::StorageError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| sto_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.store
            .db()
            .put_cf_opt(self.store.cf(CF_RAFT_STATE), key, bytes, &options)
            .map_err(|e| sto_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    fn get_state<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, typ::StorageError> {
        read_json(&self.store, CF_RAFT_STATE, key)
            .map_err(|e| sto_err(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    fn last_entry_log_id(&self) -> Result<Option<typ::LogId>, typ::StorageError> {
        let mut iter = self
            .store
            .db()
            .iterator_cf(self.store.cf(CF_RAFT_LOG), IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (_, v) = item.map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                let entry = decode_entry(&v)?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

/// How far back from an index [`proposal_time_at`] looks for an entry that
/// carries a proposal time (membership and blank entries carry none).
const TIME_LOOKBACK: usize = 64;

/// The proposal time (registry time, ms) of the newest client or tick
/// entry at or before `index` still in the log, looking back at most
/// [`TIME_LOOKBACK`] entries; `None` when there is none (purged, or only
/// membership entries).
pub fn proposal_time_at(store: &Store, index: u64) -> Option<i64> {
    let key = index_key(index);
    first_time(store.db().iterator_cf(
        store.cf(super::CF_RAFT_LOG),
        rocksdb::IteratorMode::From(&key, rocksdb::Direction::Reverse),
    ))
}

/// The proposal time of the oldest entry still in the log, if any within
/// [`TIME_LOOKBACK`] entries of its start.
pub fn oldest_proposal_time(store: &Store) -> Option<i64> {
    first_time(
        store
            .db()
            .iterator_cf(store.cf(super::CF_RAFT_LOG), rocksdb::IteratorMode::Start),
    )
}

/// The proposal time of the first entry `entries` yields that has one,
/// among the first [`TIME_LOOKBACK`].
fn first_time(entries: rocksdb::DBIteratorWithThreadMode<'_, rocksdb::DB>) -> Option<i64> {
    use prost::Message;
    for item in entries.take(TIME_LOOKBACK) {
        let (_, value) = item.ok()?;
        let entry = decode_entry(&value).ok()?;
        if let openraft::EntryPayload::Normal(payload) = entry.payload {
            if let Ok(p) = kauri_proto::v1::Proposal::decode(payload.0.as_slice()) {
                return Some(p.time_ms);
            }
        }
    }
    None
}

/// Encodes a log entry for storage (postcard: compact and deterministic).
pub(crate) fn encode_entry(entry: &typ::Entry) -> Result<Vec<u8>, typ::StorageError> {
    postcard::to_allocvec(entry).map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Write, e))
}

/// Decodes a stored log entry.
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<typ::Entry, typ::StorageError> {
    postcard::from_bytes(bytes).map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Read, e))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<typ::Entry>, typ::StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let iter = self.store.db().iterator_cf(
            self.store.cf(CF_RAFT_LOG),
            IteratorMode::From(&index_key(start), Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let index = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
                sto_err(
                    ErrorSubject::Logs,
                    ErrorVerb::Read,
                    "log key is not 8 bytes",
                )
            })?);
            if !range.contains(&index) {
                break;
            }
            out.push(decode_entry(&v)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, typ::StorageError> {
        let last_purged_log_id: Option<typ::LogId> = self.get_state(KEY_LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &typ::Vote) -> Result<(), typ::StorageError> {
        self.put_state(KEY_VOTE, vote, true)
    }

    async fn read_vote(&mut self) -> Result<Option<typ::Vote>, typ::StorageError> {
        self.get_state(KEY_VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<typ::LogId>,
    ) -> Result<(), typ::StorageError> {
        // A hint for restart (apply up to here at once), not needed for
        // safety: losing the newest value in a power cut only means the
        // node learns it from the leader again. Not worth a disk sync.
        self.store.set_committed(committed.map_or(0, |c| c.index));
        self.put_state(KEY_COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<typ::LogId>, typ::StorageError> {
        let committed = self
            .get_state::<Option<typ::LogId>>(KEY_COMMITTED)?
            .flatten();
        self.store.set_committed(committed.map_or(0, |c| c.index));
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), typ::StorageError>
    where
        I: IntoIterator<Item = typ::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.store.cf(CF_RAFT_LOG);
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(cf, index_key(entry.log_id.index), encode_entry(&entry)?);
        }
        // Into the write-ahead log now; durable once the flusher's next
        // sync returns, and only then reported (see the module docs).
        if let Err(e) = self.store.db().write(batch) {
            let message = e.to_string();
            callback.log_io_completed(Err(std::io::Error::other(e)));
            return Err(sto_err(ErrorSubject::Logs, ErrorVerb::Write, message));
        }
        self.flusher.send(callback).map_err(|_| {
            sto_err(
                ErrorSubject::Logs,
                ErrorVerb::Write,
                "the raft log flusher thread has stopped",
            )
        })
    }

    async fn truncate(&mut self, log_id: typ::LogId) -> Result<(), typ::StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.store.cf(CF_RAFT_LOG),
            index_key(log_id.index),
            index_key(u64::MAX),
        );
        batch.delete_cf(self.store.cf(CF_RAFT_LOG), index_key(u64::MAX));
        self.store
            .db()
            .write_opt(batch, &synced())
            .map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: typ::LogId) -> Result<(), typ::StorageError> {
        // openraft asks for a purge up to a snapshot it may still be
        // installing (the state machine works on it in parallel). Purging
        // first would let a crash in between leave the log purged beyond
        // any snapshot, which openraft refuses to start from; waiting here
        // would stall the Raft core for the whole install. So the purge
        // happens in the background once the snapshot is durable. Entries
        // below openraft's purge point are never read again, and keeping
        // them a little longer is harmless.
        let this = self.clone();
        tokio::spawn(async move { this.purge_when_covered(log_id).await });
        Ok(())
    }
}

impl LogStore {
    /// Purges the log up to `log_id` once a durable snapshot covers it (at
    /// most [`PURGE_PATIENCE`] later; otherwise a later purge takes these
    /// entries too). Purges run one at a time and never move the purge
    /// point back.
    async fn purge_when_covered(&self, log_id: typ::LogId) {
        let _one_at_a_time = self.purging.lock().await;
        if !self
            .store
            .wait_for_snapshot(log_id.index, PURGE_PATIENCE)
            .await
        {
            tracing::warn!(
                index = log_id.index,
                "no durable snapshot covers the raft log up to this index; not purging it"
            );
            return;
        }
        if let Err(e) = self.purge_now(log_id) {
            tracing::error!(index = log_id.index, error = %e, "purging the raft log failed");
        }
    }

    /// Purges the log up to `log_id` now, whatever snapshot there is: for
    /// seeding a data directory whose snapshot covers it
    /// ([`super::restore`]).
    pub(crate) fn purge_through(&self, log_id: typ::LogId) -> Result<(), typ::StorageError> {
        self.purge_now(log_id)
    }

    /// Deletes every entry after `index` (synced): for a node recovering
    /// alone from what it has applied ([`super::restore`]).
    pub(crate) fn drop_after(&self, index: u64) -> Result<(), typ::StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.store.cf(CF_RAFT_LOG),
            index_key(index + 1),
            index_key(u64::MAX),
        );
        self.store
            .db()
            .write_opt(batch, &synced())
            .map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    fn purge_now(&self, log_id: typ::LogId) -> Result<(), typ::StorageError> {
        let purged: Option<typ::LogId> = self
            .get_state::<Option<typ::LogId>>(KEY_LAST_PURGED)?
            .flatten();
        if purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        // Make sure the applied state written without sync is on disk
        // before the entries go.
        self.store
            .db()
            .flush_wal(true)
            .map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        let bytes = serde_json::to_vec(&Some(log_id))
            .map_err(|e| sto_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.store.cf(CF_RAFT_STATE), KEY_LAST_PURGED, bytes);
        batch.delete_range_cf(
            self.store.cf(CF_RAFT_LOG),
            index_key(0),
            index_key(log_id.index + 1),
        );
        self.store
            .db()
            .write_opt(batch, &synced())
            .map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn log_id(index: u64) -> typ::LogId {
        typ::LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    fn stored_indexes(store: &Store) -> Vec<u64> {
        store
            .db()
            .iterator_cf(store.cf(CF_RAFT_LOG), IteratorMode::Start)
            .map(|item| {
                let (k, _) = item.expect("log readable");
                u64::from_be_bytes(k.as_ref().try_into().expect("8-byte key"))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_purge_waits_for_the_snapshot_that_covers_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store opens");
        for index in 1..=10 {
            let entry = typ::Entry {
                log_id: log_id(index),
                payload: EntryPayload::Blank,
            };
            let bytes = encode_entry(&entry).expect("entry encodes");
            store
                .db()
                .put_cf(store.cf(CF_RAFT_LOG), index_key(index), bytes)
                .expect("entry written");
        }
        let mut log = LogStore::new(store.clone());
        // openraft purges up to a snapshot it is still installing.
        log.purge(log_id(6)).await.expect("purge accepted");

        // Nothing goes before a durable snapshot covers it...
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(stored_indexes(&store), (1..=10).collect::<Vec<_>>());
        store.snapshot_durable(5);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            stored_indexes(&store),
            (1..=10).collect::<Vec<_>>(),
            "purged beyond the durable snapshot"
        );
        // ... and then everything it covers does.
        store.snapshot_durable(6);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stored_indexes(&store) != (7..=10).collect::<Vec<_>>() {
            assert!(std::time::Instant::now() < deadline, "the purge never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // An older purge arriving late does not move the purge point back.
        log.purge(log_id(3)).await.expect("purge accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let purged: Option<typ::LogId> = read_json(&store, CF_RAFT_STATE, KEY_LAST_PURGED)
            .expect("last purged readable")
            .flatten();
        assert_eq!(purged, Some(log_id(6)));
    }

    #[tokio::test]
    async fn a_reopened_store_knows_its_durable_snapshot() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open(dir.path()).expect("store opens");
            let meta = typ::SnapshotMeta {
                last_log_id: Some(log_id(42)),
                last_membership: Default::default(),
                snapshot_id: "s42".into(),
            };
            store
                .db()
                .put_cf(
                    store.cf(super::super::CF_SM_META),
                    super::super::checkpoint::KEY_SNAPSHOT_META,
                    serde_json::to_vec(&meta).expect("meta encodes"),
                )
                .expect("meta written");
        }
        let store = Store::open(dir.path()).expect("store reopens");
        assert!(store.wait_for_snapshot(42, Duration::ZERO).await);
        assert!(!store.wait_for_snapshot(43, Duration::from_millis(10)).await);
    }
}
