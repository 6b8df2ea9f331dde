//! Durable storage of one node: a single RocksDB holding the Raft log, the
//! Raft vote, and the registry state machine, each in its own column families.
//!
//! - [`LogStore`] implements openraft's log storage; appends are acknowledged
//!   only after the write-ahead log holding them is synced (group commit),
//!   and log entries are purged only once a durable snapshot covers them.
//! - [`StateMachineStore`] applies committed entries to the registry; one
//!   applied batch is one `WriteBatch` that also records the last applied log
//!   id, so a crash at any point leaves a consistent applied index.
//! - Snapshots are RocksDB checkpoints, shipped in the current format of
//!   [`archive`]; [`legacy_stream`] is the older stream-of-records format
//!   (1 and 2), still installed when a peer sends it. [`inbox`] receives them from the
//!   leader within bounds and verifies them before they are installed.

// openraft's StorageError is large, and its traits require returning it.
#![allow(clippy::result_large_err)]

pub mod chain;
mod checkpoint;
pub mod inbox;
pub mod legacy_stream;
mod log_store;
pub mod restore;
mod state_machine;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, DB};

use crate::raft::typ;
use crate::registry::engine::KeyValue;
use crate::registry::{Cf, StateRead, StorageFault};

pub use crate::archive::SnapshotData;
pub use log_store::{oldest_proposal_time, proposal_time_at, LogStore};
pub use state_machine::StateMachineStore;

/// Column family of Raft log entries, keyed by big-endian index.
pub const CF_RAFT_LOG: &str = "raft_log";
/// Column family of Raft's own durable state: vote, committed, last purged.
pub const CF_RAFT_STATE: &str = "raft_state";
/// Column family of state machine metadata: last applied log id, membership,
/// current snapshot metadata.
pub const CF_SM_META: &str = "sm_meta";

/// The on-disk format this binary reads and writes. A data directory
/// records the format it was written in ([`KEY_FORMAT_VERSION`]); those
/// from before it did are format 1, the same layout. A later format
/// migrates older directories at open, in one synced `WriteBatch` that
/// also records the new version, so a crash leaves the old format whole or
/// the new one complete. Format 2 added the delegation index
/// ([`Cf::HostDelegations`]), built from the domains when a format-1
/// directory opens.
pub const FORMAT_VERSION: u32 = 2;
/// Where a data directory records its format, in [`CF_SM_META`].
pub const KEY_FORMAT_VERSION: &[u8] = b"format_version";

/// Write-ahead log size at which RocksDB flushes the memtables holding the
/// oldest log file, so a restart replays at most this much.
const MAX_TOTAL_WAL_BYTES: u64 = 128 << 20;
/// Memtable memory of all column families together.
const DB_WRITE_BUFFER_BYTES: usize = 128 << 20;

/// Errors opening or reading the node's storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value could not be decoded.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// File system error (snapshot files).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The state is being replaced by a snapshot install; try again later.
    #[error("busy: {0}")]
    Busy(String),
    /// The data directory is of a format this binary does not know.
    #[error(
        "{dir}: written in on-disk format {found}, but this kauri-node reads formats 1 to \
         {supported}: run the newer kauri-node that wrote it (nothing was changed)"
    )]
    UnknownFormat {
        /// The data directory.
        dir: PathBuf,
        /// The format it records.
        found: u32,
        /// The newest format this binary reads.
        supported: u32,
    },
}

/// The node's open database, shared by the log store, the state machine and
/// the read path.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    dir: PathBuf,
    /// Last log index covered by the snapshot whose metadata is durable
    /// (what a restart finds); 0 for none.
    snapshot_index: Arc<tokio::sync::watch::Sender<u64>>,
    /// Whether a snapshot install is rewriting the registry state (reads
    /// would see a mix of old and new).
    installing: Arc<std::sync::atomic::AtomicBool>,
    /// Recent points of the state chain, for the replicas' cross-check.
    chain: Arc<chain::ChainPoints>,
    /// Last log index Raft told this node is committed (0: none yet).
    committed: Arc<std::sync::atomic::AtomicU64>,
    /// The identity of the cluster this node belongs to (see
    /// [`Store::cluster_id`]), cached from [`CF_RAFT_STATE`].
    cluster_id: Arc<std::sync::RwLock<Option<String>>>,
}

/// Where a node records the identity of its cluster, in [`CF_RAFT_STATE`].
const KEY_CLUSTER_ID: &[u8] = b"cluster_id";

/// Length of a cluster identity: 16 random bytes, hex.
pub const CLUSTER_ID_CHARS: usize = 32;

/// Whether `id` has the shape of a cluster identity.
pub fn is_cluster_id(id: &str) -> bool {
    id.len() == CLUSTER_ID_CHARS && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new random cluster identity.
pub fn new_cluster_id() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Opens (creating if needed) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Store, StorageError> {
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(dir.join("snapshots"))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.set_keep_log_file_num(4);
        // Every applied batch writes a few small column families (applied
        // index, registrars, ledger) that never fill a memtable of their own;
        // unbounded, they pin every write-ahead log file, which then grows
        // with the registry (650 MiB at 200k domains) and is replayed on
        // every start. A cap forces those memtables out, and one memtable
        // budget for all column families bounds the node's memory.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        opts.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
        let names = [CF_RAFT_LOG, CF_RAFT_STATE, CF_SM_META]
            .into_iter()
            .chain(Cf::ALL.iter().map(|cf| cf.name()));
        let cfs = names.map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, dir.join("db"), cfs)?;
        check_format(&db, dir)?;
        let store = Store {
            db: Arc::new(db),
            dir: dir.to_path_buf(),
            snapshot_index: Arc::new(tokio::sync::watch::Sender::new(0)),
            installing: Arc::default(),
            chain: Arc::default(),
            committed: Arc::default(),
            cluster_id: Arc::default(),
        };
        let id = store.db.get_cf(store.cf(CF_RAFT_STATE), KEY_CLUSTER_ID)?;
        *store.cluster_id.write().unwrap_or_else(|p| p.into_inner()) =
            id.and_then(|b| String::from_utf8(b).ok());
        let meta: Option<typ::SnapshotMeta> =
            read_json(&store, CF_SM_META, checkpoint::KEY_SNAPSHOT_META)?;
        store.snapshot_durable(meta.and_then(|m| m.last_log_id).map_or(0, |l| l.index));
        Ok(store)
    }

    /// The identity of the cluster this node belongs to: made when a
    /// cluster is bootstrapped, restored or recovered from one of its
    /// nodes, and taken on by a node that joins while it holds nothing.
    /// Raft messages carry it, and a node refuses those of another
    /// cluster. `None` for a cluster made before identities existed.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records (synced) the identity of this node's cluster.
    pub fn set_cluster_id(&self, id: &str) -> Result<(), StorageError> {
        let mut synced = rocksdb::WriteOptions::default();
        synced.set_sync(true);
        self.db.put_cf_opt(
            self.cf(CF_RAFT_STATE),
            KEY_CLUSTER_ID,
            id.as_bytes(),
            &synced,
        )?;
        *self.cluster_id.write().unwrap_or_else(|p| p.into_inner()) = Some(id.to_string());
        Ok(())
    }

    /// Whether a snapshot install is rewriting the registry state; reads
    /// must go elsewhere meanwhile.
    pub fn installing(&self) -> bool {
        self.installing.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn set_installing(&self, on: bool) {
        self.installing
            .store(on, std::sync::atomic::Ordering::Release);
    }

    /// Records that the snapshot up to `index` is durable (its metadata
    /// written with a synced write).
    pub(crate) fn snapshot_durable(&self, index: u64) {
        self.snapshot_index.send_if_modified(|current| {
            let newer = index > *current;
            if newer {
                *current = index;
            }
            newer
        });
    }

    /// Waits until a durable snapshot covers `index`, at most `patience`;
    /// false if none does by then.
    pub(crate) async fn wait_for_snapshot(
        &self,
        index: u64,
        patience: std::time::Duration,
    ) -> bool {
        let mut updates = self.snapshot_index.subscribe();
        let covered = async { updates.wait_for(|&durable| durable >= index).await.is_ok() };
        tokio::time::timeout(patience, covered)
            .await
            .unwrap_or(false)
    }

    /// Waits, at most `patience`, until this is the only handle on the
    /// database left (every task and thread that shared it has ended), so
    /// that dropping it closes RocksDB here and now, before the process
    /// exits. Exiting with the database still open in another thread lets
    /// RocksDB's background threads run into the process's teardown (seen
    /// as a SIGSEGV or SIGABRT after the node said it stopped). False if
    /// other handles remain.
    pub async fn wait_unshared(&self, patience: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        while Arc::strong_count(&self.db) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Last log index this node knows to be committed (0: none yet).
    pub fn committed_index(&self) -> u64 {
        self.committed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_committed(&self, index: u64) {
        self.committed
            .fetch_max(index, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes each column family holds (table files and memtables), by name.
    pub fn cf_bytes(&self) -> Vec<(&'static str, u64)> {
        let names = [CF_RAFT_LOG, CF_RAFT_STATE, CF_SM_META]
            .into_iter()
            .chain(Cf::ALL.iter().map(|cf| cf.name()));
        names
            .map(|name| {
                let cf = self.cf(name);
                let property = |p: &str| {
                    self.db
                        .property_int_value_cf(cf, p)
                        .ok()
                        .flatten()
                        .unwrap_or(0)
                };
                let bytes = property("rocksdb.total-sst-files-size")
                    + property("rocksdb.cur-size-all-mem-tables");
                (name, bytes)
            })
            .collect()
    }

    /// Recent points of the state chain and what comparing them found.
    pub fn chain_points(&self) -> &chain::ChainPoints {
        &self.chain
    }

    /// The underlying database.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// Syncs the write-ahead log and closes the database, once this is its
    /// last handle ([`Store::wait_unshared`], at most `within`): what a
    /// command that opened the store and then exits (restore, recovery)
    /// calls before it returns, as the node's shutdown does (a restore once
    /// died with SIGSEGV after it had finished).
    pub async fn close(self, within: std::time::Duration) -> Result<(), StorageError> {
        if !self.wait_unshared(within).await {
            return Err(StorageError::Busy(format!(
                "{} other handle(s) on the database still open after {} s",
                Arc::strong_count(&self.db) - 1,
                within.as_secs()
            )));
        }
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Directory holding snapshot files.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }

    /// Handle of a column family that `open` created.
    pub fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("invariant: Store::open creates every column family it names")
    }

    /// The last applied log id recorded with the state.
    pub fn applied(&self) -> Result<Option<typ::LogId>, StorageError> {
        Ok(
            read_json::<Option<typ::LogId>>(self, CF_SM_META, checkpoint::KEY_LAST_APPLIED)?
                .flatten(),
        )
    }
}

/// The digest of a node's registry state at one applied index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDigest {
    /// Applied log index the digest was taken at.
    pub applied_index: u64,
    /// [`crate::registry::state_digest`] of every registry column family.
    pub digest: [u8; 32],
    /// Records hashed.
    pub records: u64,
}

impl Store {
    /// Hashes the whole registry state from one consistent point-in-time
    /// view. Scans everything: for verification, not for hot paths.
    pub fn state_digest(&self) -> Result<StateDigest, StorageError> {
        if self.installing() {
            return Err(StorageError::Busy(
                "a snapshot install is rewriting the state; ask again when it is done".into(),
            ));
        }
        let view = self.db.snapshot();
        let applied: Option<Option<typ::LogId>> = match view
            .get_cf(self.cf(CF_SM_META), checkpoint::KEY_LAST_APPLIED)?
        {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                what: "last applied log id",
                detail: e.to_string(),
            })?,
            None => None,
        };
        let mut records = 0u64;
        let mut pairs = Vec::new();
        for cf in Cf::ALL.into_iter().filter(|cf| !cf.is_derived()) {
            for item in view.iterator_cf(self.cf(cf.name()), rocksdb::IteratorMode::Start) {
                let (k, v) = item?;
                pairs.push((cf, k, v));
                records += 1;
            }
        }
        let digest =
            crate::registry::state_digest(pairs.iter().map(|(cf, k, v)| (*cf, &k[..], &v[..])));
        Ok(StateDigest {
            applied_index: applied.flatten().map(|l| l.index).unwrap_or(0),
            digest,
            records,
        })
    }
}

impl StateRead for Store {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault> {
        self.db
            .get_cf(self.cf(cf.name()), key)
            .map_err(|e| StorageFault(e.to_string()))
    }

    fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageFault> {
        let start = after.unwrap_or(prefix);
        let iter = self.db.iterator_cf(
            self.cf(cf.name()),
            rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| StorageFault(e.to_string()))?;
            if after.is_some_and(|a| &*k == a) {
                continue;
            }
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// Checks the on-disk format of an opened data directory: a newer format
/// is refused before anything is written; an older one (format 1, or a
/// directory that records none: new, or from before formats were
/// recorded) is migrated to this one.
fn check_format(db: &DB, dir: &Path) -> Result<(), StorageError> {
    let cf = db
        .cf_handle(CF_SM_META)
        .ok_or_else(|| StorageError::Corrupt {
            what: "column families",
            detail: format!("{CF_SM_META} is missing"),
        })?;
    let found = match db.get_cf(cf, KEY_FORMAT_VERSION)? {
        Some(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| StorageError::Corrupt {
                what: "format version",
                detail: format!("{} bytes, not 4", bytes.len()),
            })?,
        None => 1,
    };
    if found == 0 || found > FORMAT_VERSION {
        return Err(StorageError::UnknownFormat {
            dir: dir.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    if found == FORMAT_VERSION {
        return Ok(());
    }
    // Format 1 to 2: the delegation index, from the domains.
    let started = std::time::Instant::now();
    let mut batch = rocksdb::WriteBatch::default();
    let entries = rebuild_derived(db, &mut batch)?;
    batch.put_cf(cf, KEY_FORMAT_VERSION, FORMAT_VERSION.to_be_bytes());
    let mut synced = rocksdb::WriteOptions::default();
    synced.set_sync(true);
    db.write_opt(batch, &synced)?;
    tracing::info!(
        from = found,
        to = FORMAT_VERSION,
        derived_entries = entries,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "migrated the data directory's on-disk format"
    );
    Ok(())
}

/// Adds to `batch` the entries of every derived family ([`Cf::is_derived`])
/// of `db`, from the records they derive from. The families are empty in
/// the formats that lacked them: opening the directory created them.
/// Returns the number of entries.
fn rebuild_derived(db: &DB, batch: &mut rocksdb::WriteBatch) -> Result<u64, StorageError> {
    let handle = |cf: Cf| {
        db.cf_handle(cf.name())
            .ok_or_else(|| StorageError::Corrupt {
                what: "column families",
                detail: format!("{} is missing", cf.name()),
            })
    };
    let mut entries = 0u64;
    for cf in crate::registry::DERIVED_FROM {
        for item in db.iterator_cf(handle(cf)?, rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            let derived = crate::registry::derived_entries(cf, &k, &v).map_err(|e| {
                StorageError::Corrupt {
                    what: "record",
                    detail: e.to_string(),
                }
            })?;
            for (to, key) in derived {
                batch.put_cf(handle(to)?, key, []);
                entries += 1;
            }
        }
    }
    Ok(entries)
}

/// Reads a JSON-encoded metadata value (small, rarely written values whose
/// readability in a debugger beats compactness).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    cf: &str,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    match store.db.get_cf(store.cf(cf), key)? {
        None => Ok(None),
        Some(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StorageError::Corrupt {
                    what: "metadata",
                    detail: e.to_string(),
                })
        }
    }
}

/// Converts any displayable error into openraft's storage error for `subject`.
pub(crate) fn sto_err(
    subject: openraft::ErrorSubject<crate::raft::NodeId>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> typ::StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}
