//! The Raft log in RocksDB: entries in `raft_log` keyed by big-endian index,
//! vote / committed / last-purged in `raft_state`.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use super::{read_json, sto_err, Store, CF_RAFT_LOG, CF_RAFT_STATE};
use crate::raft::{typ, TypeConfig};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// openraft log storage over the node's [`Store`].
#[derive(Clone)]
pub struct LogStore {
    store: Store,
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
    /// Log storage over `store`.
    pub fn new(store: Store) -> Self {
        LogStore { store }
    }

    fn put_state<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), typ::StorageError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| sto_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.store.cf(CF_RAFT_STATE), key, bytes);
        self.store
            .db()
            .write_opt(batch, &synced())
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
        self.put_state(KEY_VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<typ::Vote>, typ::StorageError> {
        self.get_state(KEY_VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<typ::LogId>,
    ) -> Result<(), typ::StorageError> {
        self.put_state(KEY_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<typ::LogId>, typ::StorageError> {
        Ok(self
            .get_state::<Option<typ::LogId>>(KEY_COMMITTED)?
            .flatten())
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
        // Raft may only count this node towards a quorum once the entries
        // survive a power cut: a synced write.
        let result = self
            .store
            .db()
            .write_opt(batch, &synced())
            .map_err(std::io::Error::other);
        let failed = result.as_ref().err().map(|e| e.to_string());
        callback.log_io_completed(result);
        match failed {
            Some(e) => Err(sto_err(ErrorSubject::Logs, ErrorVerb::Write, e)),
            None => Ok(()),
        }
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
        // Entries are only purged once a snapshot covers them; make sure the
        // applied state written without sync is on disk before they go.
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
