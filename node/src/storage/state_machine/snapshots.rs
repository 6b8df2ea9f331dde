//! The state machine's snapshots: built as RocksDB checkpoints of the
//! database (hard links, nothing copied), installed from a verified
//! checkpoint or a legacy stream file in bounded batches behind a durable
//! "installing" marker, and the current one opened for sending.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use openraft::{ErrorSubject, ErrorVerb};
use rocksdb::{WriteBatch, WriteOptions};

use super::erased;
use super::StateMachineStore;
use crate::archive::{ArchiveReader, SnapshotData};
use crate::raft::typ;
use crate::registry::Cf;
use crate::storage::checkpoint::{
    self, KEY_INSTALLING, KEY_LAST_APPLIED, KEY_MEMBERSHIP, KEY_SNAPSHOT_META, KEY_STATE_CHAIN,
};
use crate::storage::legacy_stream::read_snapshot;
use crate::storage::{sto_err, CF_SM_META};

/// Bytes of records written per batch while installing a snapshot (small
/// in unit tests, so they cover several batches quickly).
pub(super) const INSTALL_CHUNK_BYTES: usize = if cfg!(test) { 64 << 10 } else { 32 << 20 };

impl StateMachineStore {
    /// Directory of the checkpoint of snapshot `snapshot_id`.
    pub(super) fn checkpoint_path(&self, snapshot_id: &str) -> PathBuf {
        self.store
            .snapshot_dir()
            .join(format!("{snapshot_id}.ckpt"))
    }

    /// File of snapshot `snapshot_id` in the stream format (received from
    /// a node that sends formats 1 or 2).
    pub(super) fn stream_path(&self, snapshot_id: &str) -> PathBuf {
        self.store
            .snapshot_dir()
            .join(format!("{snapshot_id}.snap"))
    }

    /// Removes snapshots (checkpoints, stream files, leftovers of builds)
    /// other than `keep`; files still being received are left alone.
    pub(super) fn remove_other_snapshots(&self, keep: &Path) {
        let Ok(dir) = std::fs::read_dir(self.store.snapshot_dir()) else {
            return;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            let stale = path != keep
                && path
                    .extension()
                    .is_some_and(|e| e == "snap" || e == "ckpt" || e == "tmp");
            if !stale {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an old snapshot");
            }
        }
    }

    /// Builds a snapshot: a RocksDB checkpoint of the database (hard links
    /// to its table files after a memtable flush), whose own metadata says
    /// which log id and membership it holds. Nothing is scanned or copied.
    pub(super) fn build(&self) -> Result<typ::Snapshot, typ::StorageError> {
        let started = std::time::Instant::now();
        let err =
            |e: &dyn std::fmt::Display| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e);
        // No install may rewrite the state while the checkpoint is taken.
        let _exclusive = self.exclusive.lock().map_err(|e| err(&e.to_string()))?;
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let building = self
            .store
            .snapshot_dir()
            .join(format!("building-{seq}.tmp"));
        if building.exists() {
            std::fs::remove_dir_all(&building).map_err(|e| err(&e))?;
        }
        rocksdb::checkpoint::Checkpoint::new(self.store.db())
            .and_then(|c| c.create_checkpoint(&building))
            .map_err(|e| err(&e))?;
        let (last_applied, membership) =
            checkpoint::applied_state(&building).map_err(|e| err(&e))?;
        let snapshot_id = match last_applied {
            Some(id) => format!(
                "{}-{}-{}-{seq}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => format!("0-0-0-{seq}"),
        };
        let path = self.checkpoint_path(&snapshot_id);
        std::fs::rename(&building, &path).map_err(|e| err(&e))?;
        sync_dir(&self.store.snapshot_dir()).map_err(|e| err(&e))?;

        let meta = typ::SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        self.save_snapshot_meta(&meta)?;
        self.remove_other_snapshots(&path);
        let reader = ArchiveReader::open(&path).map_err(|e| err(&e))?;
        tracing::info!(
            index = last_applied.map(|l| l.index).unwrap_or(0),
            files = reader.files(),
            bytes = reader.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built snapshot"
        );
        crate::telemetry::snapshot_built(started.elapsed());
        Ok(typ::Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::Checkpoint(reader)),
        })
    }

    pub(super) fn save_snapshot_meta(
        &self,
        meta: &typ::SnapshotMeta,
    ) -> Result<(), typ::StorageError> {
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

    /// Installs a snapshot file received through openraft's own chunk
    /// receiver ([`Self::begin_receiving_snapshot`]; the node itself
    /// receives through [`super::inbox`]): verified as the inbox verifies
    /// (a damaged one is refused, leaving the old state untouched), then
    /// installed from where it lies.
    pub(super) fn install_received(
        &self,
        meta: &typ::SnapshotMeta,
        file: std::fs::File,
    ) -> Result<(), typ::StorageError> {
        let err = |e: &dyn std::fmt::Display| {
            sto_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let path = self
            .incoming
            .lock()
            .map_err(|e| err(&e.to_string()))?
            .take()
            .ok_or_else(|| err(&"no received snapshot file is known"))?;
        let unpack_to = path.with_extension("unpacked");
        let verified = crate::storage::inbox::verify_file(&file, &path, meta, &unpack_to);
        drop(file);
        let verified = verified.map_err(|e| {
            let _ = std::fs::remove_file(&path);
            err(&e)
        })?;
        self.install_verified(meta, &verified)
    }

    /// Installs a snapshot the inbox received and verified
    /// ([`super::inbox`]): an unpacked checkpoint directory or a stream
    /// file, which becomes this node's current snapshot.
    pub(super) fn install_verified(
        &self,
        meta: &typ::SnapshotMeta,
        path: &Path,
    ) -> Result<(), typ::StorageError> {
        let err = |e: &dyn std::fmt::Display| {
            sto_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        // The id names files: the inbox checked it, and so does this.
        crate::raft::bounds::snapshot_id(&meta.snapshot_id).map_err(|e| err(&e))?;
        let exclusive = self.exclusive.lock().map_err(|e| err(&e.to_string()))?;
        if path.is_dir() {
            let dir = self.checkpoint_path(&meta.snapshot_id);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| err(&e))?;
            }
            std::fs::rename(path, &dir).map_err(|e| err(&e))?;
            sync_dir(&self.store.snapshot_dir()).map_err(|e| err(&e))?;
            return self.install(meta, Source::Checkpoint(dir), &exclusive);
        }
        let file = std::fs::File::open(path).map_err(|e| err(&e))?;
        let source = Source::Stream {
            file,
            path: Some(path.to_path_buf()),
        };
        self.install(meta, source, &exclusive)
    }

    /// Removes from the snapshot directory everything but the current
    /// snapshot: files a crash left half received or half unpacked, and
    /// older snapshots. Call at start, after
    /// [`Self::finish_interrupted_install`].
    pub fn remove_leftovers(&self) -> Result<(), typ::StorageError> {
        let err =
            |e: &dyn std::fmt::Display| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Delete, e);
        let keep = self.meta::<typ::SnapshotMeta>(KEY_SNAPSHOT_META)?.map(|m| {
            [
                self.checkpoint_path(&m.snapshot_id),
                self.stream_path(&m.snapshot_id),
            ]
        });
        let dir = std::fs::read_dir(self.store.snapshot_dir()).map_err(|e| err(&e))?;
        for entry in dir {
            let path = entry.map_err(|e| err(&e))?.path();
            if keep.as_ref().is_some_and(|k| k.contains(&path)) {
                // The current snapshot: made when its files were.
                if let Ok(made) = std::fs::metadata(&path).and_then(|m| m.modified()) {
                    crate::telemetry::snapshot_succeeded_at(made);
                }
                continue;
            }
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => tracing::info!(path = %path.display(), bytes,
                    "removed a leftover from the snapshot directory"),
                Err(e) => return Err(err(&format!("removing {}: {e}", path.display()))),
            }
        }
        Ok(())
    }

    /// Replaces the whole registry state with snapshot `meta` from `source`.
    ///
    /// The source is verified first (a stream's checksum; a checkpoint was
    /// verified when unpacked and opens read-only). The new state is then
    /// written in batches of about [`INSTALL_CHUNK_BYTES`], so memory stays
    /// bounded whatever the registry's size, behind a synced "installing"
    /// marker naming the source: reads are refused meanwhile, and if the
    /// process dies half way, [`Self::finish_interrupted_install`] redoes
    /// the install from the source at the next start. The last batch
    /// records the snapshot's log id and metadata and clears the marker, in
    /// one synced write.
    /// The caller holds `exclusive`, so no build runs meanwhile.
    fn install(
        &self,
        meta: &typ::SnapshotMeta,
        source: Source,
        _exclusive: &std::sync::MutexGuard<'_, ()>,
    ) -> Result<(), typ::StorageError> {
        let started = std::time::Instant::now();
        let err = |e: &dyn std::fmt::Display| {
            sto_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        // Verified (a stream) or opened (a checkpoint) before anything changes.
        let opened = match &source {
            Source::Stream { file, .. } => {
                use std::io::Seek;
                let mut file = file;
                file.rewind().map_err(|e| err(&e))?;
                read_snapshot(file, |_, _, _| {}).map_err(|e| err(&e))?;
                Records::Stream(file)
            }
            Source::Checkpoint(dir) => {
                Records::Checkpoint(checkpoint::open(dir).map_err(|e| err(&e))?)
            }
        };

        let db = self.store.db();
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        let marker = Installing {
            meta: meta.clone(),
            file: source.path().map(Path::to_path_buf),
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
        let mut written = 0usize;
        let mut records = 0u64;
        // Derived families are not copied but rebuilt from what they derive
        // from, so a snapshot from a build without them (or a damaged index
        // in one) installs a whole index.
        let mut put = |cf: Cf, k: &[u8], v: &[u8]| -> Result<(), String> {
            if cf.is_derived() {
                return Ok(());
            }
            batch.put_cf(self.store.cf(cf.name()), k, v);
            records += 1;
            for (to, key) in
                crate::registry::derived_entries(cf, k, v).map_err(|e| e.to_string())?
            {
                batch.put_cf(self.store.cf(to.name()), key, []);
            }
            if batch.size_in_bytes() >= INSTALL_CHUNK_BYTES {
                written += batch.size_in_bytes();
                db.write(std::mem::take(&mut batch))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        match &opened {
            Records::Checkpoint(from) => {
                for cf in Cf::ALL.into_iter().filter(|cf| !cf.is_derived()) {
                    let handle = from.cf_handle(cf.name()).ok_or_else(|| {
                        err(&format!(
                            "the checkpoint has no column family {}",
                            cf.name()
                        ))
                    })?;
                    let mut opts = rocksdb::ReadOptions::default();
                    opts.fill_cache(false);
                    let iter = from.iterator_cf_opt(handle, opts, rocksdb::IteratorMode::Start);
                    for item in iter {
                        let (k, v) = item.map_err(|e| err(&e))?;
                        put(cf, &k, &v).map_err(|e| err(&e))?;
                    }
                }
            }
            Records::Stream(file) => {
                use std::io::Seek;
                let mut file = *file;
                file.rewind().map_err(|e| err(&e))?;
                let mut failed = None;
                read_snapshot(file, |cf, k, v| {
                    if failed.is_none() {
                        failed = put(cf, &k, &v).err();
                    }
                })
                .map_err(|e| err(&e))?;
                if let Some(e) = failed {
                    return Err(err(&e));
                }
            }
        }
        // The state chain comes with a checkpoint when it is at the
        // snapshot's index; a stream-format snapshot carries none.
        let chain = match &opened {
            Records::Checkpoint(from) => from
                .cf_handle(CF_SM_META)
                .map(|h| from.get_cf(h, KEY_STATE_CHAIN))
                .transpose()
                .map_err(|e| err(&e))?
                .flatten()
                .filter(|bytes| {
                    crate::storage::chain::decode(bytes).map(|(i, _)| i)
                        == meta.last_log_id.map(|l| l.index)
                }),
            Records::Stream(_) => None,
        };
        drop(opened);
        match &chain {
            Some(bytes) => batch.put_cf(self.store.cf(CF_SM_META), KEY_STATE_CHAIN, bytes),
            None => {
                tracing::warn!(
                    "the installed snapshot has no state chain: this node's state is not \
                     cross-checked with its peers until it installs one that has"
                );
                batch.delete_cf(self.store.cf(CF_SM_META), KEY_STATE_CHAIN)
            }
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

        // Keep what was installed as the current snapshot, to serve to
        // others.
        let keep = match &source {
            Source::Checkpoint(dir) => Some(dir.clone()),
            Source::Stream {
                path: Some(received),
                ..
            } => {
                let path = self.stream_path(&meta.snapshot_id);
                if *received != path {
                    std::fs::rename(received, &path).map_err(|e| err(&e))?;
                }
                Some(path)
            }
            Source::Stream { path: None, .. } => None,
        };
        if let Some(keep) = keep {
            self.remove_other_snapshots(&keep);
        }
        tracing::info!(
            index = meta.last_log_id.map(|l| l.index).unwrap_or(0),
            records,
            written_bytes = written,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "installed snapshot"
        );
        crate::telemetry::snapshot_installed(started.elapsed());
        Ok(())
    }

    /// Completes a snapshot install the process died in the middle of (see
    /// [`Self::install`]) from the checkpoint or file it was installing.
    /// Call before starting Raft; returns the index installed, if any.
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
        tracing::warn!(source = %path.display(), "finishing an interrupted snapshot install");
        let exclusive = self.exclusive.lock().map_err(|e| err(e.to_string()))?;
        if path.is_dir() {
            self.install(&marker.meta, Source::Checkpoint(path), &exclusive)?;
        } else {
            let file = std::fs::File::open(&path).map_err(|e| {
                err(format!(
                    "a snapshot install was interrupted and its file {} cannot be read ({e}): \
                     wipe the data directory and restart with --recover",
                    path.display()
                ))
            })?;
            let source = Source::Stream {
                file,
                path: Some(path),
            };
            self.install(&marker.meta, source, &exclusive)?;
        }
        Ok(marker.meta.last_log_id.map(|l| l.index))
    }

    /// The current snapshot, opened for sending: the checkpoint this node
    /// built or unpacked, or a stream-format file it received.
    pub(super) fn current(&self) -> Result<Option<typ::Snapshot>, typ::StorageError> {
        let err =
            |e: &dyn std::fmt::Display| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e);
        // Not while a build replaces the files.
        let _exclusive = self.exclusive.lock().map_err(|e| err(&e.to_string()))?;
        let Some(meta) = self.meta::<typ::SnapshotMeta>(KEY_SNAPSHOT_META)? else {
            return Ok(None);
        };
        let dir = self.checkpoint_path(&meta.snapshot_id);
        let data = if dir.is_dir() {
            SnapshotData::Checkpoint(ArchiveReader::open(&dir).map_err(|e| err(&e))?)
        } else {
            match std::fs::File::open(self.stream_path(&meta.snapshot_id)) {
                Ok(file) => SnapshotData::File(tokio::fs::File::from_std(file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(err(&e)),
            }
        };
        Ok(Some(typ::Snapshot {
            meta,
            snapshot: Box::new(data),
        }))
    }
}

/// Where an install takes the new state from.
enum Source {
    /// A snapshot file in the stream format (1 or 2), and where it lies.
    Stream {
        file: std::fs::File,
        path: Option<PathBuf>,
    },
    /// An unpacked checkpoint directory (format 3).
    Checkpoint(PathBuf),
}

impl Source {
    /// What the "installing" marker names, to redo the install from.
    fn path(&self) -> Option<&Path> {
        match self {
            Source::Stream { path, .. } => path.as_deref(),
            Source::Checkpoint(dir) => Some(dir),
        }
    }
}

/// A [`Source`] verified and open for reading its records.
enum Records<'a> {
    Stream(&'a std::fs::File),
    Checkpoint(rocksdb::DB),
}

/// Opens a checkpoint directory read-only with all its column families.
/// Makes renames in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// What the "installing" marker records: the snapshot and its file.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Installing {
    pub(super) meta: typ::SnapshotMeta,
    pub(super) file: Option<PathBuf>,
}
