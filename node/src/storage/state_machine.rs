//! The registry state machine in RocksDB: applies committed entries through
//! the pure registry code and persists each batch atomically with the last
//! applied log id; builds and installs snapshots.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use prost::Message;
use rocksdb::{WriteBatch, WriteOptions};

use super::snapshot::{read_snapshot, SnapshotWriter};
use super::{read_json, sto_err, Store, CF_SM_META};
use crate::raft::{typ, ApplyResponse, TypeConfig};
use crate::registry::{self, Cf, Txn};
use kauri_proto::v1;

pub(crate) const KEY_LAST_APPLIED: &[u8] = b"last_applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
pub(crate) const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
/// Present while a snapshot install is under way (see `install`).
const KEY_INSTALLING: &[u8] = b"installing";
/// Bytes of records written per batch while installing a snapshot (small
/// in unit tests, so they cover several batches quickly).
const INSTALL_CHUNK_BYTES: usize = if cfg!(test) { 64 << 10 } else { 32 << 20 };

/// openraft state machine over the node's [`Store`].
#[derive(Clone)]
pub struct StateMachineStore {
    store: Store,
    /// Counter making snapshot ids unique within this process.
    snapshot_seq: Arc<AtomicU64>,
    /// The file openraft is writing a received snapshot into.
    incoming: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

impl StateMachineStore {
    /// State machine over `store`.
    pub fn new(store: Store) -> Self {
        StateMachineStore {
            store,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            incoming: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, typ::StorageError> {
        read_json(&self.store, CF_SM_META, key)
            .map_err(|e| sto_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))
    }

    fn snapshot_path(&self, snapshot_id: &str) -> PathBuf {
        self.store
            .snapshot_dir()
            .join(format!("{snapshot_id}.snap"))
    }

    /// Removes snapshot files other than `keep`.
    fn remove_other_snapshots(&self, keep: &std::path::Path) {
        if let Ok(dir) = std::fs::read_dir(self.store.snapshot_dir()) {
            for entry in dir.flatten() {
                let path = entry.path();
                if path != keep && path.extension().is_some_and(|e| e == "snap") {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }

    fn build(&self) -> Result<typ::Snapshot, typ::StorageError> {
        let started = std::time::Instant::now();
        let err =
            |e: &dyn std::fmt::Display| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e);
        let db = self.store.db();
        // Everything below reads one consistent point-in-time view.
        let view = db.snapshot();
        let json = |key: &[u8]| -> Result<Option<Vec<u8>>, typ::StorageError> {
            view.get_cf(self.store.cf(CF_SM_META), key)
                .map_err(|e| err(&e))
        };
        let last_applied: Option<typ::LogId> = match json(KEY_LAST_APPLIED)? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| err(&e))?,
            None => None,
        };
        let membership: typ::StoredMembership = match json(KEY_MEMBERSHIP)? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| err(&e))?,
            None => Default::default(),
        };
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(id) => format!(
                "{}-{}-{}-{seq}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => format!("0-0-0-{seq}"),
        };
        let path = self.snapshot_path(&snapshot_id);
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp).map_err(|e| err(&e))?;
        let mut w = SnapshotWriter::new(file).map_err(|e| err(&e))?;
        for cf in Cf::ALL {
            for item in view.iterator_cf(self.store.cf(cf.name()), rocksdb::IteratorMode::Start) {
                let (k, v) = item.map_err(|e| err(&e))?;
                w.record(cf, &k, &v).map_err(|e| err(&e))?;
            }
        }
        let records = w.records;
        let file = w.finish().map_err(|e| err(&e))?;
        file.sync_all().map_err(|e| err(&e))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        std::fs::rename(&tmp, &path).map_err(|e| err(&e))?;

        let meta = typ::SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        self.save_snapshot_meta(&meta)?;
        self.remove_other_snapshots(&path);
        tracing::info!(
            index = last_applied.map(|l| l.index).unwrap_or(0),
            records,
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built snapshot"
        );
        let file = std::fs::File::open(&path).map_err(|e| err(&e))?;
        Ok(typ::Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }

    fn save_snapshot_meta(&self, meta: &typ::SnapshotMeta) -> Result<(), typ::StorageError> {
        let bytes = serde_json::to_vec(meta)
            .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.store
            .db()
            .put_cf_opt(self.store.cf(CF_SM_META), KEY_SNAPSHOT_META, bytes, &wo)
            .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        self.store
            .snapshot_durable(meta.last_log_id.map_or(0, |l| l.index));
        Ok(())
    }

    /// Installs a received snapshot, replacing the whole registry state.
    ///
    /// The file is verified (checksum) before anything is touched. The new
    /// state is then written in batches of about [`INSTALL_CHUNK_BYTES`], so
    /// memory stays bounded whatever the registry's size, behind a synced
    /// "installing" marker naming the file: reads are refused meanwhile, and
    /// if the process dies half way, [`Self::finish_interrupted_install`]
    /// redoes the install from the file at the next start. The last batch
    /// records the snapshot's log id and metadata and clears the marker, in
    /// one synced write.
    fn install(
        &self,
        meta: &typ::SnapshotMeta,
        file: std::fs::File,
    ) -> Result<(), typ::StorageError> {
        let started = std::time::Instant::now();
        let err = |e: &dyn std::fmt::Display| {
            sto_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        use std::io::Seek;
        let mut file = file;
        file.rewind().map_err(|e| err(&e))?;
        // A damaged snapshot is refused here, leaving the old state untouched.
        read_snapshot(&file, |_, _, _| {}).map_err(|e| err(&e))?;

        let db = self.store.db();
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        let incoming = self
            .incoming
            .lock()
            .map_err(|e| err(&e.to_string()))?
            .clone();
        let marker = Installing {
            meta: meta.clone(),
            file: incoming.clone(),
        };
        let marker = serde_json::to_vec(&marker).map_err(|e| err(&e))?;
        self.store.set_installing(true);
        db.put_cf_opt(self.store.cf(CF_SM_META), KEY_INSTALLING, marker, &synced)
            .map_err(|e| err(&e))?;

        let mut batch = WriteBatch::default();
        for cf in Cf::ALL {
            // Everything from the empty key up to the last key, and the last
            // key itself (a range's end is exclusive): the whole family,
            // whatever bytes its keys hold.
            let handle = self.store.cf(cf.name());
            let last = db
                .iterator_cf(handle, rocksdb::IteratorMode::End)
                .next()
                .transpose()
                .map_err(|e| err(&e))?;
            if let Some((last, _)) = last {
                batch.delete_range_cf(handle, &[][..], &last[..]);
                batch.delete_cf(handle, &last[..]);
            }
        }
        file.rewind().map_err(|e| err(&e))?;
        let mut written = 0usize;
        let mut failed = None;
        let records = read_snapshot(&file, |cf, k, v| {
            batch.put_cf(self.store.cf(cf.name()), k, v);
            if batch.size_in_bytes() >= INSTALL_CHUNK_BYTES && failed.is_none() {
                written += batch.size_in_bytes();
                if let Err(e) = db.write(std::mem::take(&mut batch)) {
                    failed = Some(e);
                }
            }
        })
        .map_err(|e| err(&e))?;
        if let Some(e) = failed {
            return Err(err(&e));
        }
        written += batch.size_in_bytes();
        let json = |v: &dyn erased::Json| v.to_json().map_err(|e| err(&e));
        batch.put_cf(
            self.store.cf(CF_SM_META),
            KEY_LAST_APPLIED,
            json(&meta.last_log_id)?,
        );
        batch.put_cf(
            self.store.cf(CF_SM_META),
            KEY_MEMBERSHIP,
            json(&meta.last_membership)?,
        );
        batch.put_cf(self.store.cf(CF_SM_META), KEY_SNAPSHOT_META, json(meta)?);
        batch.delete_cf(self.store.cf(CF_SM_META), KEY_INSTALLING);
        db.write_opt(batch, &synced).map_err(|e| err(&e))?;
        self.store.set_installing(false);
        self.store
            .snapshot_durable(meta.last_log_id.map_or(0, |l| l.index));

        // Keep the received file as the current snapshot, to serve to others.
        let path = self.snapshot_path(&meta.snapshot_id);
        if let Some(incoming) = incoming {
            if incoming != path {
                std::fs::rename(&incoming, &path).map_err(|e| err(&e))?;
            }
            self.remove_other_snapshots(&path);
        }
        if let Ok(mut slot) = self.incoming.lock() {
            slot.take();
        }
        tracing::info!(
            index = meta.last_log_id.map(|l| l.index).unwrap_or(0),
            records,
            written_bytes = written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "installed snapshot"
        );
        Ok(())
    }

    /// Completes a snapshot install the process died in the middle of (see
    /// [`Self::install`]) from the snapshot file it was installing. Call
    /// before starting Raft; returns the index installed, if any.
    pub fn finish_interrupted_install(&self) -> Result<Option<u64>, typ::StorageError> {
        let Some(marker) = self.meta::<Installing>(KEY_INSTALLING)? else {
            return Ok(None);
        };
        let err = |e: String| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e);
        let Some(path) = marker.file.clone() else {
            return Err(err(
                "a snapshot install was interrupted and its file is unknown: wipe the data \
                 directory and restart with --recover"
                    .into(),
            ));
        };
        let file = std::fs::File::open(&path).map_err(|e| {
            err(format!(
                "a snapshot install was interrupted and its file {} cannot be read ({e}): wipe \
                 the data directory and restart with --recover",
                path.display()
            ))
        })?;
        tracing::warn!(file = %path.display(), "finishing an interrupted snapshot install");
        if let Ok(mut slot) = self.incoming.lock() {
            *slot = Some(path);
        }
        self.install(&marker.meta, file)?;
        Ok(marker.meta.last_log_id.map(|l| l.index))
    }
}

/// What the "installing" marker records: the snapshot and its file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Installing {
    meta: typ::SnapshotMeta,
    file: Option<PathBuf>,
}

/// Small helper so heterogenous values can be JSON-encoded through one closure.
mod erased {
    pub trait Json {
        fn to_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec(self)
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<typ::Snapshot, typ::StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.build())
            .await
            .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<typ::LogId>, typ::StoredMembership), typ::StorageError> {
        let last_applied = self.meta::<Option<typ::LogId>>(KEY_LAST_APPLIED)?.flatten();
        let membership = self.meta(KEY_MEMBERSHIP)?.unwrap_or_default();
        Ok((last_applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, typ::StorageError>
    where
        I: IntoIterator<Item = typ::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let err = |verb, e: &dyn std::fmt::Display| sto_err(ErrorSubject::StateMachine, verb, e);
        let persisted = self.meta::<Option<typ::LogId>>(KEY_LAST_APPLIED)?.flatten();
        let mut txn = Txn::new(&self.store);
        let mut responses = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        for entry in entries {
            // Replay-safe: an entry at or below the persisted applied index
            // was already applied (and its effects are in the state).
            if persisted.is_some_and(|p| entry.log_id.index <= p.index) {
                responses.push(ApplyResponse::default());
                continue;
            }
            last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => responses.push(ApplyResponse::default()),
                EntryPayload::Membership(m) => {
                    membership = Some(typ::StoredMembership::new(Some(entry.log_id), m));
                    responses.push(ApplyResponse::default());
                }
                EntryPayload::Normal(payload) => {
                    let ctx = registry::ApplyContext {
                        log_index: entry.log_id.index,
                        log_term: entry.log_id.leader_id.term,
                    };
                    let result = match v1::Proposal::decode(payload.0.as_slice()) {
                        Ok(proposal) => registry::apply_proposal(&mut txn, &ctx, &proposal)
                            .map_err(|e| err(ErrorVerb::Write, &e))?,
                        // Deterministic on every replica: the same bytes fail
                        // the same way everywhere.
                        Err(e) => undecodable(&ctx, &e),
                    };
                    responses.push(ApplyResponse(result.encode_to_vec()));
                }
            }
        }
        let Some(last_applied) = last_applied else {
            return Ok(responses);
        };
        let mut batch = WriteBatch::default();
        for ((cf, key), value) in txn.into_writes() {
            let handle = self.store.cf(cf.name());
            match value {
                Some(v) => batch.put_cf(handle, key, v),
                None => batch.delete_cf(handle, key),
            }
        }
        let json = |v: &dyn erased::Json| v.to_json().map_err(|e| err(ErrorVerb::Write, &e));
        batch.put_cf(
            self.store.cf(CF_SM_META),
            KEY_LAST_APPLIED,
            json(&Some(last_applied))?,
        );
        if let Some(m) = membership {
            batch.put_cf(self.store.cf(CF_SM_META), KEY_MEMBERSHIP, json(&m)?);
        }
        // Not synced: the log entries are durable already, and a lost tail
        // of applied state is re-applied from the log after a crash. Purging
        // the log flushes the WAL first.
        self.store
            .db()
            .write(batch)
            .map_err(|e| err(ErrorVerb::Write, &e))?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, typ::StorageError> {
        let err = |e: std::io::Error| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e);
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let path = self
            .store
            .snapshot_dir()
            .join(format!("incoming-{seq}.part"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(err)?;
        if let Ok(mut slot) = self.incoming.lock() {
            if let Some(old) = slot.replace(path) {
                let _ = std::fs::remove_file(old);
            }
        }
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &typ::SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), typ::StorageError> {
        let file = snapshot.into_std().await;
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            file.sync_all()
                .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
            this.install(&meta, file)
        })
        .await
        .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<typ::Snapshot>, typ::StorageError> {
        let Some(meta) = self.meta::<typ::SnapshotMeta>(KEY_SNAPSHOT_META)? else {
            return Ok(None);
        };
        let path = self.snapshot_path(&meta.snapshot_id);
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Some(typ::Snapshot {
                meta,
                snapshot: Box::new(tokio::fs::File::from_std(file)),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e)),
        }
    }
}

fn undecodable(ctx: &registry::ApplyContext, e: &prost::DecodeError) -> v1::CommandResult {
    v1::CommandResult {
        outcome: Some(v1::command_result::Outcome::Error(v1::CommandError {
            reason: v1::Reason::InvalidField as i32,
            field: "proposal".into(),
            message: format!(
                "log entry {} does not decode as a proposal: {e}",
                ctx.log_index
            ),
            tx: Some(v1::TxInfo {
                sv_trid: format!("kauri-{}", ctx.log_index),
                cl_trid: String::new(),
                log_index: ctx.log_index,
                replayed: false,
            }),
        })),
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;

    /// A store holding `domains` raw domain records at applied index 7.
    fn source(dir: &std::path::Path, domains: usize) -> Store {
        let store = Store::open(dir).expect("store opens");
        for i in 0..domains {
            store
                .db()
                .put_cf(
                    store.cf(Cf::Domains.name()),
                    format!("name-{i:06}.nz"),
                    vec![b'x'; 200],
                )
                .expect("record written");
        }
        let applied: Option<typ::LogId> = Some(LogId::new(CommittedLeaderId::new(2, 1), 7));
        store
            .db()
            .put_cf(
                store.cf(CF_SM_META),
                KEY_LAST_APPLIED,
                serde_json::to_vec(&applied).expect("log id encodes"),
            )
            .expect("applied written");
        store
    }

    #[tokio::test]
    async fn a_snapshot_installs_in_chunks_and_an_interrupted_install_finishes_at_start() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Enough data for several install batches.
        let domains = 2 * INSTALL_CHUNK_BYTES / 200 + 100;
        let origin = source(a.path(), domains);
        let mut builder = StateMachineStore::new(origin.clone());
        let snapshot = builder.build_snapshot().await.expect("snapshot builds");
        let expected = origin.state_digest().expect("digest");

        // A follower with other state installs it.
        let follower = source(b.path(), 3);
        follower
            .db()
            .put_cf(follower.cf(Cf::Hosts.name()), b"stale.host", b"old")
            .unwrap();
        let mut sm = StateMachineStore::new(follower.clone());
        let mut incoming = sm.begin_receiving_snapshot().await.expect("incoming file");
        let mut from = tokio::fs::File::from_std(
            std::fs::File::open(
                origin
                    .snapshot_dir()
                    .join(format!("{}.snap", snapshot.meta.snapshot_id)),
            )
            .unwrap(),
        );
        tokio::io::copy(&mut from, &mut *incoming).await.unwrap();
        sm.install_snapshot(&snapshot.meta, incoming)
            .await
            .expect("installs");
        assert_eq!(follower.state_digest().expect("digest"), expected);
        assert!(!follower.installing());
        assert!(sm.meta::<Installing>(KEY_INSTALLING).unwrap().is_none());

        // A crash half way: the marker names the file, the state is a mix.
        let file = follower
            .snapshot_dir()
            .join(format!("{}.snap", snapshot.meta.snapshot_id));
        let marker = Installing {
            meta: snapshot.meta.clone(),
            file: Some(file.clone()),
        };
        follower
            .db()
            .put_cf(
                follower.cf(CF_SM_META),
                KEY_INSTALLING,
                serde_json::to_vec(&marker).unwrap(),
            )
            .unwrap();
        follower
            .db()
            .delete_cf(follower.cf(Cf::Domains.name()), b"name-000001.nz")
            .unwrap();
        assert_ne!(follower.state_digest().expect("digest"), expected);
        let restarted = StateMachineStore::new(follower.clone());
        assert_eq!(restarted.finish_interrupted_install().unwrap(), Some(7));
        assert_eq!(follower.state_digest().expect("digest"), expected);
        assert_eq!(restarted.finish_interrupted_install().unwrap(), None);

        // Without its file the node refuses to start, saying what to do.
        let gone = Installing {
            meta: snapshot.meta.clone(),
            file: Some(b.path().join("missing.part")),
        };
        follower
            .db()
            .put_cf(
                follower.cf(CF_SM_META),
                KEY_INSTALLING,
                serde_json::to_vec(&gone).unwrap(),
            )
            .unwrap();
        let e = restarted.finish_interrupted_install().unwrap_err();
        assert!(e.to_string().contains("--recover"), "{e}");
    }
}
