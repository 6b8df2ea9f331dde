//! The registry state machine in RocksDB: applies committed entries through
//! the pure registry code and persists each batch atomically with the last
//! applied log id. Building snapshots as RocksDB checkpoints and
//! installing received ones is [`snapshots`].

mod snapshots;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use prost::Message;
use rocksdb::WriteBatch;

use super::{read_json, sto_err, Store, CF_SM_META};
use crate::archive::SnapshotData;
use crate::raft::{typ, ApplyResponse, TypeConfig};
use crate::registry::{self, Txn};
use kauri_proto::v1;

use super::checkpoint::{KEY_LAST_APPLIED, KEY_MEMBERSHIP, KEY_STATE_CHAIN};

/// openraft state machine over the node's [`Store`].
#[derive(Clone)]
pub struct StateMachineStore {
    store: Store,
    /// Counter making snapshot ids unique within this process.
    snapshot_seq: Arc<AtomicU64>,
    /// The file openraft is writing a received snapshot into.
    incoming: Arc<std::sync::Mutex<Option<PathBuf>>>,
    /// Held while a snapshot is built, installed or opened for sending, so
    /// none sees another's half-done files or state.
    exclusive: Arc<std::sync::Mutex<()>>,
}

impl StateMachineStore {
    /// State machine over `store`.
    pub fn new(store: Store) -> Self {
        StateMachineStore {
            store,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            incoming: Arc::new(std::sync::Mutex::new(None)),
            exclusive: Arc::default(),
        }
    }

    fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, typ::StorageError> {
        read_json(&self.store, CF_SM_META, key)
            .map_err(|e| sto_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))
    }

    /// The state chain at `applied` (the persisted applied log id): the
    /// genesis value on an empty state, the stored one when it is at that
    /// index, `None` when the state has no chain.
    fn chain_at(
        &self,
        applied: Option<typ::LogId>,
    ) -> Result<Option<super::chain::Chain>, typ::StorageError> {
        let Some(applied) = applied else {
            return Ok(Some(super::chain::GENESIS));
        };
        let stored = self
            .store
            .db()
            .get_cf(self.store.cf(CF_SM_META), KEY_STATE_CHAIN)
            .map_err(|e| sto_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?;
        Ok(stored
            .as_deref()
            .and_then(super::chain::decode)
            .filter(|(index, _)| *index == applied.index)
            .map(|(_, chain)| chain))
    }
}

/// Small helper so heterogenous values can be JSON-encoded through one closure.
pub(super) mod erased {
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
        let started = std::time::Instant::now();
        let err = |verb, e: &dyn std::fmt::Display| sto_err(ErrorSubject::StateMachine, verb, e);
        let persisted = self.meta::<Option<typ::LogId>>(KEY_LAST_APPLIED)?.flatten();
        let (mut applied, mut replays) = (0usize, 0u64);
        let mut chain = self.chain_at(persisted)?;
        let points = self.store.chain_points();
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
            applied += 1;
            let log_id = entry.log_id;
            // What the entry wrote, hashed for the state chain.
            let writes: [u8; 32] = match entry.payload {
                EntryPayload::Blank => {
                    responses.push(ApplyResponse::default());
                    txn.take_write_digest()
                }
                EntryPayload::Membership(m) => {
                    let m = typ::StoredMembership::new(Some(entry.log_id), m);
                    let bytes = serde_json::to_vec(&m).map_err(|e| err(ErrorVerb::Write, &e))?;
                    // A membership entry's "writes" are the membership.
                    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
                    membership = Some(bytes);
                    responses.push(ApplyResponse::default());
                    digest
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
                    replays += u64::from(registry::was_replayed(&result));
                    responses.push(ApplyResponse(result.encode_to_vec()));
                    txn.take_write_digest()
                }
            };
            if let Some(c) = chain.as_mut() {
                *c = super::chain::step(c, &log_id, &writes);
                points.applied(log_id.index, c);
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
            batch.put_cf(self.store.cf(CF_SM_META), KEY_MEMBERSHIP, m);
        }
        match chain {
            Some(c) => batch.put_cf(
                self.store.cf(CF_SM_META),
                KEY_STATE_CHAIN,
                super::chain::encode(last_applied.index, &c),
            ),
            None => batch.delete_cf(self.store.cf(CF_SM_META), KEY_STATE_CHAIN),
        }
        // Not synced: the log entries are durable already, and a lost tail
        // of applied state is re-applied from the log after a crash. Purging
        // the log flushes the WAL first.
        self.store
            .db()
            .write(batch)
            .map_err(|e| err(ErrorVerb::Write, &e))?;
        crate::telemetry::applied(applied, replays, started.elapsed());
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, typ::StorageError> {
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
        Ok(Box::new(SnapshotData::File(tokio::fs::File::from_std(
            file,
        ))))
    }

    async fn install_snapshot(
        &mut self,
        meta: &typ::SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), typ::StorageError> {
        let err = |e: &dyn std::fmt::Display| {
            sto_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        if let SnapshotData::Verified(path) = *snapshot {
            let this = self.clone();
            let meta = meta.clone();
            return tokio::task::spawn_blocking(move || this.install_verified(&meta, &path))
                .await
                .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        }
        let Some(file) = snapshot.into_file() else {
            return Err(err(&"a snapshot to install must be a received file"));
        };
        let file = file.into_std().await;
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            file.sync_all()
                .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
            this.install_received(&meta, file)
        })
        .await
        .map_err(|e| sto_err(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<typ::Snapshot>, typ::StorageError> {
        self.current()
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

    use super::snapshots::Installing;
    use super::*;
    use crate::archive;
    use crate::registry::Cf;
    use crate::storage::checkpoint::{self, KEY_INSTALLING};

    /// A store holding `domains` raw records (in contacts: a domain's would be
    /// decoded for the delegation index) at applied index 7.
    fn source(dir: &std::path::Path, domains: usize) -> Store {
        let store = Store::open(dir).expect("store opens");
        for i in 0..domains {
            store
                .db()
                .put_cf(
                    store.cf(Cf::Contacts.name()),
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

    /// Receives `data` as openraft would: into a fresh incoming file.
    async fn receive(sm: &mut StateMachineStore, data: &[u8]) -> Box<SnapshotData> {
        use tokio::io::AsyncWriteExt;
        let mut incoming = sm.begin_receiving_snapshot().await.expect("incoming file");
        incoming.write_all(data).await.unwrap();
        incoming.flush().await.unwrap();
        incoming
    }

    /// The bytes a node would send of its current snapshot.
    async fn sent(sm: &mut StateMachineStore) -> (typ::SnapshotMeta, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut snapshot = sm
            .get_current_snapshot()
            .await
            .expect("reads")
            .expect("a snapshot");
        let mut bytes = Vec::new();
        snapshot.snapshot.read_to_end(&mut bytes).await.unwrap();
        (snapshot.meta, bytes)
    }

    /// A follower holding other state than `source`'s.
    fn stale_follower(dir: &std::path::Path) -> Store {
        let follower = source(dir, 3);
        follower
            .db()
            .put_cf(follower.cf(Cf::Hosts.name()), b"stale.host", b"old")
            .unwrap();
        follower
    }

    /// A stale follower under `dir` that received and installed `bytes`.
    async fn installed_on_a_stale_follower(
        dir: &std::path::Path,
        meta: &typ::SnapshotMeta,
        bytes: &[u8],
    ) -> (Store, StateMachineStore) {
        let follower = stale_follower(dir);
        let mut sm = StateMachineStore::new(follower.clone());
        let incoming = receive(&mut sm, bytes).await;
        sm.install_snapshot(meta, incoming).await.expect("installs");
        (follower, sm)
    }

    #[tokio::test]
    async fn a_checkpoint_snapshot_installs_in_chunks_and_an_interrupted_install_finishes_at_start()
    {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Enough data for several install batches.
        let domains = 2 * snapshots::INSTALL_CHUNK_BYTES / 200 + 100;
        let origin = source(a.path(), domains);
        let mut leader = StateMachineStore::new(origin.clone());
        let built = leader.build_snapshot().await.expect("snapshot builds");
        assert_eq!(built.meta.last_log_id.map(|l| l.index), Some(7));
        assert!(matches!(*built.snapshot, SnapshotData::Checkpoint(_)));
        let expected = origin.state_digest().expect("digest");

        // Writes after the build are not in the snapshot.
        origin
            .db()
            .put_cf(origin.cf(Cf::Contacts.name()), b"later.nz", b"x")
            .unwrap();
        let (meta, bytes) = sent(&mut leader).await;
        assert_eq!(meta, built.meta);
        assert!(bytes.starts_with(archive::MAGIC));

        // A follower with other state installs it.
        let (follower, mut sm) = installed_on_a_stale_follower(b.path(), &meta, &bytes).await;
        assert_eq!(follower.state_digest().expect("digest"), expected);
        assert!(!follower.installing());
        assert!(sm.meta::<Installing>(KEY_INSTALLING).unwrap().is_none());
        // The follower serves the same snapshot on, and keeps no received file.
        let (meta_on, bytes_on) = sent(&mut sm).await;
        assert_eq!(meta_on, meta);
        let mut unpacked = Vec::new();
        for bytes in [&bytes, &bytes_on] {
            let dir = tempfile::tempdir().unwrap();
            archive::extract_archive(&bytes[..], &dir.path().join("c")).unwrap();
            let db = checkpoint::open(&dir.path().join("c")).unwrap();
            let handle = db.cf_handle(Cf::Contacts.name()).unwrap();
            unpacked.push(db.iterator_cf(handle, rocksdb::IteratorMode::Start).count());
        }
        assert_eq!(unpacked, vec![domains, domains]);
        let leftovers: Vec<_> = std::fs::read_dir(follower.snapshot_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, vec![format!("{}.ckpt", meta.snapshot_id)]);

        // A crash half way: the marker names the checkpoint, the state is a mix.
        let marker = Installing {
            meta: meta.clone(),
            file: Some(sm.checkpoint_path(&meta.snapshot_id)),
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
            .delete_cf(follower.cf(Cf::Contacts.name()), b"name-000001.nz")
            .unwrap();
        assert_ne!(follower.state_digest().expect("digest"), expected);
        let restarted = StateMachineStore::new(follower.clone());
        assert_eq!(restarted.finish_interrupted_install().unwrap(), Some(7));
        assert_eq!(follower.state_digest().expect("digest"), expected);
        assert_eq!(restarted.finish_interrupted_install().unwrap(), None);

        // Without its source the node refuses to start, saying what to do.
        let gone = Installing {
            meta: meta.clone(),
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

    fn entries(changed_at: Option<u64>) -> Vec<typ::Entry> {
        use crate::raft::LogPayload;
        (1..=12u64)
            .map(|index| {
                let payload = match index % 4 {
                    0 => EntryPayload::Blank,
                    3 => EntryPayload::Normal(LogPayload(b"not a proposal".to_vec())),
                    _ => {
                        let time_ms = 1_000 * index as i64 + i64::from(changed_at == Some(index));
                        let tick = v1::Proposal {
                            time_ms,
                            request_digest: Vec::new(),
                            command: Some(v1::Command {
                                kind: Some(v1::command::Kind::Tick(v1::TickCommand::default())),
                            }),
                            ..Default::default()
                        };
                        EntryPayload::Normal(LogPayload(tick.encode_to_vec()))
                    }
                };
                typ::Entry {
                    log_id: LogId::new(CommittedLeaderId::new(3, 1), index),
                    payload,
                }
            })
            .collect()
    }

    /// Applies `entries` in batches of `batch`; returns the stored chain
    /// and the points kept.
    async fn chain_after(
        entries: Vec<typ::Entry>,
        batch: usize,
    ) -> (Vec<u8>, Vec<(u64, super::super::chain::Chain)>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.chain_points().set_every(4);
        let mut sm = StateMachineStore::new(store.clone());
        for chunk in entries.chunks(batch) {
            sm.apply(chunk.to_vec()).await.unwrap();
        }
        // Applying the same entries again changes nothing (replay-safe).
        sm.apply(entries).await.unwrap();
        let stored = store
            .db()
            .get_cf(store.cf(CF_SM_META), KEY_STATE_CHAIN)
            .unwrap()
            .unwrap();
        (stored, store.chain_points().recent())
    }

    #[tokio::test]
    async fn the_state_chain_is_the_same_whatever_the_batches_and_differs_with_any_entry() {
        let one = chain_after(entries(None), 12).await;
        assert_eq!(one.0.len(), 40);
        assert_eq!(&one.0[..8], &12u64.to_be_bytes());
        assert_eq!(
            one.1.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![4, 8, 12]
        );
        for batch in [1, 3, 5] {
            assert_eq!(
                chain_after(entries(None), batch).await,
                one,
                "batches of {batch}"
            );
        }
        let forged = chain_after(entries(Some(6)), 12).await;
        assert_eq!(forged.1[0], one.1[0], "the same before the changed entry");
        assert_ne!(forged.1[1], one.1[1], "different from it on");
        assert_ne!(forged.1[2], one.1[2]);
    }

    #[tokio::test]
    async fn the_state_chain_travels_in_a_checkpoint_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut leader = StateMachineStore::new(store.clone());
        leader.apply(entries(None)).await.unwrap();
        leader.build_snapshot().await.unwrap();
        let (meta, bytes) = sent(&mut leader).await;
        let chain = |s: &Store| s.db().get_cf(s.cf(CF_SM_META), KEY_STATE_CHAIN).unwrap();

        let other = tempfile::tempdir().unwrap();
        let follower_store = Store::open(other.path()).unwrap();
        let mut follower = StateMachineStore::new(follower_store.clone());
        let data = receive(&mut follower, &bytes).await;
        follower.install_snapshot(&meta, data).await.unwrap();
        assert!(chain(&store).is_some());
        assert_eq!(chain(&follower_store), chain(&store));
    }

    #[tokio::test]
    async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = StateMachineStore::new(source(a.path(), 500));
        leader.build_snapshot().await.expect("snapshot builds");
        let (meta, bytes) = sent(&mut leader).await;

        let follower = stale_follower(b.path());
        let before = follower.state_digest().expect("digest");
        let mut sm = StateMachineStore::new(follower.clone());
        let mut damaged = bytes.clone();
        let i = damaged.len() - 100;
        damaged[i] ^= 0x40;
        let cases = [
            ("checksum mismatch", damaged),
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ];
        for (what, data) in cases {
            let incoming = receive(&mut sm, &data).await;
            let e = sm.install_snapshot(&meta, incoming).await.unwrap_err();
            assert!(e.to_string().contains(what), "{what}: {e}");
            assert_eq!(follower.state_digest().expect("digest"), before, "{what}");
            assert!(!follower.installing());
            assert!(sm.meta::<Installing>(KEY_INSTALLING).unwrap().is_none());
            assert!(!sm.checkpoint_path(&meta.snapshot_id).exists(), "{what}");
        }
    }

    #[tokio::test]
    async fn a_stream_format_snapshot_from_an_older_peer_still_installs() {
        use crate::storage::legacy_stream::SnapshotWriter;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let origin = source(a.path(), 300);
        let expected = origin.state_digest().expect("digest");
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        for cf in Cf::ALL {
            for item in origin
                .db()
                .iterator_cf(origin.cf(cf.name()), rocksdb::IteratorMode::Start)
            {
                let (k, v) = item.unwrap();
                w.record(cf, &k, &v).unwrap();
            }
        }
        let bytes = w.finish().unwrap();
        let meta = typ::SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(2, 1), 7)),
            last_membership: Default::default(),
            snapshot_id: "2-1-7-0".into(),
        };

        let (follower, mut sm) = installed_on_a_stale_follower(b.path(), &meta, &bytes).await;
        assert_eq!(follower.state_digest().expect("digest"), expected);
        let (meta_on, bytes_on) = sent(&mut sm).await;
        assert_eq!((meta_on, bytes_on), (meta, bytes), "served on as received");
    }
}
