//! Receiving a snapshot from the leader, chunk by chunk, so that a broken
//! or hostile sender can neither fill the disk nor stop the node.
//!
//! openraft's own receiver writes each chunk wherever its offset says and
//! hands whatever arrived to the state machine, whose refusal is a fatal
//! storage error: one garbage snapshot stopped a node, and one chunk at
//! offset 2^40 left a terabyte sparse file. Here instead:
//!
//! - chunks must arrive in order, each starting where the last ended
//!   (anything else is a mismatch: the sender starts again from 0);
//! - a format-3 snapshot declares its length in its header; nothing beyond
//!   it is accepted, and the disk must have room for it twice over (the
//!   received file and its unpacked checkpoint) plus [`DISK_RESERVE_BYTES`];
//!   stream-format snapshots (from peers of older versions) are bounded by
//!   the disk the same way as they grow;
//! - when the last chunk arrives the whole snapshot is verified (checksum,
//!   the checkpoint opens as a database, its applied log id and membership
//!   are those the sender declared) before openraft is asked to install it.
//!   A snapshot that fails is deleted and refused; the node carries on and
//!   the leader sends it again.
//!
//! Files in progress are `receiving-*.part` and `receiving-*.unpacked` in
//! the snapshot directory; a restart removes what a crash left of them
//! (`StateMachineStore::remove_leftovers`).

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::checkpoint;
use super::legacy_stream::{self, SnapshotError};
use super::Store;
use crate::archive::{self, SnapshotData};
use crate::raft::typ;

/// Free space a snapshot must leave on the data directory's file system.
pub const DISK_RESERVE_BYTES: u64 = 256 << 20;

/// Most bytes kept while the header is incomplete: the longest header
/// accepted plus one more file entry.
const PREFIX_BYTES: usize = archive::MAX_HEADER_BYTES + 2 + 255 + 8;

/// Why a chunk was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The chunk does not continue the snapshot being received: the sender
    /// must start again from offset `expect` (always 0 in practice).
    Mismatch {
        /// Where the receiver expected the chunk to start.
        expect: u64,
    },
    /// The snapshot cannot be taken (bounds, disk space, verification);
    /// what was received is gone.
    Refused(String),
}

/// A completely received and verified snapshot, ready for openraft.
pub struct Received {
    /// The vote it was sent under.
    pub vote: typ::Vote,
    /// Its metadata.
    pub meta: typ::SnapshotMeta,
    /// Its data: [`SnapshotData::Verified`].
    pub data: SnapshotData,
}

/// What the first bytes said the snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Not enough bytes yet to tell.
    Unknown,
    /// A format-3 archive of this many bytes.
    Archive { declared: u64 },
    /// A stream-format snapshot (no declared length).
    Stream,
}

/// A snapshot being received.
struct Incoming {
    meta: typ::SnapshotMeta,
    vote: typ::Vote,
    path: PathBuf,
    file: std::fs::File,
    received: u64,
    format: Format,
    /// The first bytes, kept until the format (and length) is known.
    prefix: Vec<u8>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Taken to completion, the file is renamed or removed first.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The receiving end of snapshots: one in progress at a time.
pub struct SnapshotInbox {
    store: Store,
    seq: AtomicU64,
    current: tokio::sync::Mutex<Option<Incoming>>,
}

impl SnapshotInbox {
    /// An inbox writing into `store`'s snapshot directory.
    pub fn new(store: Store) -> Self {
        SnapshotInbox {
            store,
            seq: AtomicU64::new(0),
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Takes one chunk. Returns the verified snapshot once its last chunk
    /// is in, `None` while more are due.
    pub async fn receive(
        &self,
        req: typ::InstallSnapshotRequest,
    ) -> Result<Option<Received>, Refusal> {
        let mut current = self.current.lock().await;
        let same = current
            .as_ref()
            .is_some_and(|c| c.meta.snapshot_id == req.meta.snapshot_id && c.vote == req.vote);
        // A chunk at 0 starts over (the sender begins again after a
        // mismatch); a new snapshot replaces whatever was half received.
        if !same || req.offset == 0 {
            if req.offset != 0 {
                return Err(Refusal::Mismatch { expect: 0 });
            }
            *current = None;
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let path = self
                .store
                .snapshot_dir()
                .join(format!("receiving-{seq}.part"));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| Refusal::Refused(format!("cannot create {}: {e}", path.display())))?;
            tracing::info!(snapshot = %req.meta.snapshot_id, leader = req.vote.leader_id.node_id,
                "receiving a snapshot");
            *current = Some(Incoming {
                meta: req.meta.clone(),
                vote: req.vote,
                path,
                file,
                received: 0,
                format: Format::Unknown,
                prefix: Vec::new(),
            });
        }
        let incoming = current.as_mut().expect("set above");
        let taken = take_chunk(&self.store, incoming, &req);
        if let Err(e) = taken {
            if let Refusal::Refused(why) = &e {
                tracing::warn!(snapshot = %req.meta.snapshot_id, leader = req.vote.leader_id.node_id,
                    offset = req.offset, "snapshot refused: {why}");
                *current = None;
            }
            return Err(e);
        }
        if !req.done {
            return Ok(None);
        }
        let incoming = current.take().expect("set above");
        let store = self.store.clone();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let vote = incoming.vote;
        let meta = incoming.meta.clone();
        let verified = tokio::task::spawn_blocking(move || verify(&store, incoming, seq))
            .await
            .map_err(|e| Refusal::Refused(format!("verification did not finish: {e}")))?;
        match verified {
            Ok(data) => Ok(Some(Received { vote, meta, data })),
            Err(why) => {
                tracing::warn!(snapshot = %meta.snapshot_id, leader = vote.leader_id.node_id,
                    "received snapshot refused: {why}");
                Err(Refusal::Refused(why))
            }
        }
    }
}

/// Writes one chunk after checking it against what came before and what
/// the header declared.
fn take_chunk(
    store: &Store,
    incoming: &mut Incoming,
    req: &typ::InstallSnapshotRequest,
) -> Result<(), Refusal> {
    if req.offset != incoming.received {
        return Err(Refusal::Mismatch { expect: 0 });
    }
    let len = req.data.len() as u64;
    let end = incoming.received + len;
    if incoming.format == Format::Unknown {
        let want = PREFIX_BYTES.saturating_sub(incoming.prefix.len());
        incoming
            .prefix
            .extend_from_slice(&req.data[..req.data.len().min(want)]);
        incoming.format = sniff(&incoming.prefix).map_err(|e| Refusal::Refused(e.to_string()))?;
        match incoming.format {
            Format::Archive { declared } => {
                incoming.prefix = Vec::new();
                // Room for the file and its unpacked copy.
                need_room(store, declared.saturating_mul(2))?;
            }
            Format::Stream => incoming.prefix = Vec::new(),
            Format::Unknown if req.done => {
                return Err(Refusal::Refused(
                    "the snapshot ended before its header did".into(),
                ))
            }
            Format::Unknown if incoming.prefix.len() >= PREFIX_BYTES => {
                return Err(Refusal::Refused(format!(
                    "the snapshot's header is longer than the {} bytes allowed",
                    archive::MAX_HEADER_BYTES
                )))
            }
            Format::Unknown => {}
        }
    }
    match incoming.format {
        Format::Archive { declared } if end > declared => {
            return Err(Refusal::Refused(format!(
                "a chunk ends at byte {end}, beyond the {declared} bytes the snapshot declared"
            )));
        }
        Format::Archive { declared } if req.done && end != declared => {
            return Err(Refusal::Refused(format!(
                "the snapshot ended at byte {end}; its header declared {declared}"
            )));
        }
        Format::Stream => need_room(store, len)?,
        _ => {}
    }
    incoming
        .file
        .write_all_at(&req.data, req.offset)
        .map_err(|e| Refusal::Refused(format!("cannot write the snapshot: {e}")))?;
    incoming.received = end;
    Ok(())
}

/// Tells the format from the first bytes.
fn sniff(prefix: &[u8]) -> Result<Format, SnapshotError> {
    if prefix.len() < legacy_stream::MAGIC_BYTES {
        // Too short to tell; but refuse early what cannot become a magic.
        let archive = archive::MAGIC.starts_with(prefix);
        let stream = b"KAURISNAP".starts_with(&prefix[..prefix.len().min(9)]);
        if !archive && !stream {
            return Err(SnapshotError::Corrupt(
                "not a Kauri snapshot (bad magic)".into(),
            ));
        }
        return Ok(Format::Unknown);
    }
    if legacy_stream::is_stream_magic(&prefix[..legacy_stream::MAGIC_BYTES]) {
        return Ok(Format::Stream);
    }
    Ok(match archive::declared_len(prefix)? {
        Some(declared) => Format::Archive { declared },
        None => Format::Unknown,
    })
}

/// Refuses unless the data directory's file system has room for `bytes`
/// more and still [`DISK_RESERVE_BYTES`].
fn need_room(store: &Store, bytes: u64) -> Result<(), Refusal> {
    let free = free_bytes(&store.snapshot_dir())
        .map_err(|e| Refusal::Refused(format!("cannot tell the free disk space: {e}")))?;
    if free < bytes.saturating_add(DISK_RESERVE_BYTES) {
        return Err(Refusal::Refused(format!(
            "the snapshot needs {bytes} bytes of disk and {DISK_RESERVE_BYTES} must stay free; \
             only {free} are"
        )));
    }
    Ok(())
}

/// Bytes available to this process on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a valid,
    // writable statvfs for the call to fill.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Verifies a completely received snapshot (see [`verify_file`]); one
/// whose header never ended is refused.
fn verify(store: &Store, incoming: Incoming, seq: u64) -> Result<SnapshotData, String> {
    if incoming.format == Format::Unknown {
        return Err("the snapshot ended before its header did".into());
    }
    let unpack_to = store
        .snapshot_dir()
        .join(format!("receiving-{seq}.unpacked"));
    verify_file(&incoming.file, &incoming.path, &incoming.meta, &unpack_to)
        .map(SnapshotData::Verified)
}

/// Verifies the whole snapshot file at `path` (open as `file`) and returns
/// where the verified snapshot now lies: a checkpoint is unpacked into
/// `unpack_to` (checksum checked), opened, and must hold the applied log id
/// and membership `meta` declares, and the file is removed; a stream-format
/// file must pass its checksum and is renamed to `*.verified`. Nothing of
/// a snapshot that fails is left in place of `unpack_to`.
pub(super) fn verify_file(
    file: &std::fs::File,
    path: &Path,
    meta: &typ::SnapshotMeta,
    unpack_to: &Path,
) -> Result<PathBuf, String> {
    use std::io::Seek;
    file.sync_all()
        .map_err(|e| format!("cannot sync the received snapshot: {e}"))?;
    let mut magic = [0u8; legacy_stream::MAGIC_BYTES];
    file.read_exact_at(&mut magic, 0)
        .map_err(|_| "the snapshot ended before its header did".to_string())?;
    let mut from_start = file;
    from_start.rewind().map_err(|e| e.to_string())?;
    if magic[..] == *archive::MAGIC {
        if unpack_to.exists() {
            std::fs::remove_dir_all(unpack_to).map_err(|e| e.to_string())?;
        }
        archive::extract_archive(from_start, unpack_to).map_err(|e| e.to_string())?;
        if let Err(e) = checkpoint::verify(unpack_to, meta) {
            let _ = std::fs::remove_dir_all(unpack_to);
            return Err(e);
        }
        let _ = std::fs::remove_file(path);
        return Ok(unpack_to.to_path_buf());
    }
    if legacy_stream::is_stream_magic(&magic) {
        legacy_stream::read_snapshot(from_start, |_, _, _| {}).map_err(|e| e.to_string())?;
        let verified = path.with_extension("verified");
        std::fs::rename(path, &verified).map_err(|e| e.to_string())?;
        return Ok(verified);
    }
    Err("not a Kauri snapshot (bad magic)".into())
}

#[cfg(test)]
mod tests {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    use openraft::{CommittedLeaderId, EntryPayload, LeaderId, LogId};
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::storage::StateMachineStore;

    /// A leader's snapshot (metadata and bytes) after a few blank entries.
    async fn leader_snapshot(dir: &Path) -> (typ::SnapshotMeta, Vec<u8>) {
        let mut sm = StateMachineStore::new(Store::open(dir).unwrap());
        let entries = (1..=5)
            .map(|index| typ::Entry {
                log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
                payload: EntryPayload::Blank,
            })
            .collect::<Vec<_>>();
        sm.apply(entries).await.unwrap();
        let mut snapshot = sm.build_snapshot().await.unwrap();
        let mut bytes = Vec::new();
        snapshot.snapshot.read_to_end(&mut bytes).await.unwrap();
        (snapshot.meta, bytes)
    }

    fn chunk(
        meta: &typ::SnapshotMeta,
        offset: u64,
        data: &[u8],
        done: bool,
    ) -> typ::InstallSnapshotRequest {
        typ::InstallSnapshotRequest {
            vote: typ::Vote {
                leader_id: LeaderId::new(2, 1),
                committed: true,
            },
            meta: meta.clone(),
            offset,
            data: data.to_vec(),
            done,
        }
    }

    /// Sends `bytes` in chunks of `size`.
    async fn send(
        inbox: &SnapshotInbox,
        meta: &typ::SnapshotMeta,
        bytes: &[u8],
        size: usize,
    ) -> Result<Option<Received>, Refusal> {
        let mut offset = 0;
        loop {
            let end = (offset + size).min(bytes.len());
            let done = end == bytes.len();
            let got = inbox
                .receive(chunk(meta, offset as u64, &bytes[offset..end], done))
                .await?;
            if done {
                return Ok(got);
            }
            offset = end;
        }
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_snapshot_sent_in_chunks_arrives_verified() {
        let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (meta, bytes) = leader_snapshot(l.path()).await;
        let store = Store::open(f.path()).unwrap();
        let inbox = SnapshotInbox::new(store.clone());
        let received = send(&inbox, &meta, &bytes, 1000).await.unwrap().unwrap();
        assert_eq!(received.meta, meta);
        let SnapshotData::Verified(dir) = received.data else {
            panic!("not verified");
        };
        assert!(dir.is_dir());
        assert_eq!(
            files_in(&store.snapshot_dir()),
            vec!["receiving-1.unpacked"]
        );
    }

    #[tokio::test]
    async fn chunks_out_of_order_far_away_or_beyond_the_declared_end_are_refused() {
        let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (meta, bytes) = leader_snapshot(l.path()).await;
        let store = Store::open(f.path()).unwrap();
        let inbox = SnapshotInbox::new(store.clone());

        // A first chunk that is not at 0.
        let far = chunk(&meta, 1 << 40, b"x", true);
        assert_eq!(
            inbox.receive(far).await.err(),
            Some(Refusal::Mismatch { expect: 0 })
        );
        // A gap after a good start.
        inbox
            .receive(chunk(&meta, 0, &bytes[..100], false))
            .await
            .unwrap();
        let gap = chunk(&meta, 1 << 40, b"x", false);
        assert_eq!(
            inbox.receive(gap).await.err(),
            Some(Refusal::Mismatch { expect: 0 })
        );
        // Past the length the header declared.
        inbox.receive(chunk(&meta, 0, &bytes, false)).await.unwrap();
        let past = chunk(&meta, bytes.len() as u64, b"more", true);
        let Err(Refusal::Refused(why)) = inbox.receive(past).await else {
            panic!("accepted bytes beyond the declared end");
        };
        assert!(why.contains("beyond"), "{why}");
        // Ending early.
        let short = send(&inbox, &meta, &bytes[..bytes.len() - 1], 4096).await;
        assert!(matches!(short, Err(Refusal::Refused(w)) if w.contains("declared")));
        // Nothing is left behind, and no file grew large.
        assert_eq!(files_in(&store.snapshot_dir()), Vec::<String>::new());
    }

    #[tokio::test]
    async fn garbage_or_a_damaged_snapshot_is_refused_and_removed() {
        let (l, f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (meta, bytes) = leader_snapshot(l.path()).await;
        let store = Store::open(f.path()).unwrap();
        let inbox = SnapshotInbox::new(store.clone());

        let garbage = inbox
            .receive(chunk(&meta, 0, b"garbage, and done", true))
            .await;
        assert!(matches!(garbage, Err(Refusal::Refused(w)) if w.contains("magic")));

        let mut flipped = bytes.clone();
        let at = flipped.len() - 100;
        flipped[at] ^= 1;
        let damaged = send(&inbox, &meta, &flipped, 4096).await;
        assert!(matches!(damaged, Err(Refusal::Refused(w)) if w.contains("checksum")));

        // Intact, but not the state the metadata declares.
        let mut lying = meta.clone();
        lying.last_log_id = Some(LogId::new(CommittedLeaderId::new(2, 1), 99));
        let lie = send(&inbox, &lying, &bytes, 4096).await;
        assert!(
            matches!(&lie, Err(Refusal::Refused(w)) if w.contains("declares")),
            "{:?}",
            lie.err()
        );
        assert_eq!(files_in(&store.snapshot_dir()), Vec::<String>::new());
    }
}
