//! Seeding a brand-new cluster from a backup (`kauri-node ... restore
//! --from DIR`).
//!
//! The backup's archive is a checkpoint of a node's state at some applied
//! log id. Restoring it into the empty data directory of the first node of
//! a new cluster:
//! 1. verifies the backup against its manifest;
//! 2. installs the checkpoint as this node's state and current snapshot,
//!    at the log id it applied;
//! 3. replaces its membership with the new cluster's voters and builds a
//!    fresh snapshot, so the other nodes (started with `--join`) receive a
//!    snapshot that names the new membership;
//! 4. records the log as purged up to that log id and a vote of its term,
//!    so this node's first election opens a later term.
//!
//! The new cluster is a new cluster: a new identity (see
//! [`Store::cluster_id`]) that its nodes take on as they join, and that
//! keeps the nodes of the backed-up cluster out. [`recover_alone`] does
//! the same for a node's own state: disaster recovery.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::RaftSnapshotBuilder;

use super::checkpoint::{self, KEY_MEMBERSHIP};
use super::{LogStore, SnapshotData, StateMachineStore, Store, CF_SM_META, FORMAT_VERSION};
use crate::raft::{typ, NodeId, NodeInfo};

/// What a restore made of a backup.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The log id the restored state has applied.
    pub applied: typ::LogId,
    /// The voters of the new cluster.
    pub voters: BTreeSet<NodeId>,
}

/// How long a restore or recovery waits for the store's other handles (the
/// log flusher thread, a snapshot task) to let go before it closes the
/// database.
const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Seeds the empty data directory `data_dir` of node `id` from the backup
/// in `backup_dir`, as the first node of a new cluster with `voters`.
pub async fn seed(
    data_dir: &Path,
    backup_dir: &Path,
    id: NodeId,
    voters: BTreeMap<NodeId, NodeInfo>,
) -> anyhow::Result<Restored> {
    if !voters.contains_key(&id) {
        bail!("--peers must list this node (id {id}) among the new cluster's voters");
    }
    let manifest = kauri_client::backup::verify(backup_dir)
        .with_context(|| format!("the backup in {} does not verify", backup_dir.display()))?;
    if manifest.on_disk_format > FORMAT_VERSION {
        bail!(
            "the backup was written in on-disk format {}, but this kauri-node reads formats 1 to \
             {FORMAT_VERSION}",
            manifest.on_disk_format
        );
    }
    let store = Store::open(data_dir)?;
    let mut log = LogStore::new(store.clone());
    let state = log.get_log_state().await?;
    if state.last_log_id.is_some() || log.read_vote().await?.is_some() || store.applied()?.is_some()
    {
        bail!(
            "{} already holds a node's state: restore into an empty data directory",
            data_dir.display()
        );
    }

    // The checkpoint, unpacked where snapshots are received.
    let unpacked = store.snapshot_dir().join("restore-incoming");
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked)?;
    }
    let archive = std::fs::File::open(backup_dir.join(kauri_client::backup::ARCHIVE_FILE))?;
    crate::archive::extract_archive(std::io::BufReader::new(archive), &unpacked)?;
    let (applied, old_membership) = checkpoint::applied_state(&unpacked)?;
    let applied = applied.context("the backup's state has applied nothing")?;
    if applied.index != manifest.applied_index {
        bail!(
            "the backup's archive holds the state at index {}, its manifest says {}",
            applied.index,
            manifest.applied_index
        );
    }
    let meta = typ::SnapshotMeta {
        last_log_id: Some(applied),
        last_membership: old_membership,
        snapshot_id: format!("restored-{}-{}", applied.leader_id.term, applied.index),
    };
    let mut sm = StateMachineStore::new(store.clone());
    sm.install_snapshot(&meta, Box::new(SnapshotData::Verified(unpacked)))
        .await?;

    // The new cluster's membership, as of the restored log id.
    let ids: BTreeSet<NodeId> = voters.keys().copied().collect();
    let membership = typ::StoredMembership::new(
        Some(applied),
        openraft::Membership::new(vec![ids.clone()], voters),
    );
    store.db().put_cf(
        store.cf(CF_SM_META),
        KEY_MEMBERSHIP,
        serde_json::to_vec(&membership)?,
    )?;
    let built = sm.get_snapshot_builder().await.build_snapshot().await?;
    if built.meta.last_membership != membership {
        bail!("the rebuilt snapshot does not hold the new membership");
    }

    log.purge_through(applied)?;
    log.save_vote(&typ::Vote::new(applied.leader_id.term, id))
        .await?;
    store.set_cluster_id(&super::new_cluster_id())?;
    drop((sm, log));
    store.close(CLOSE_WITHIN).await?;
    Ok(Restored {
        applied,
        voters: ids,
    })
}

/// Makes the node whose data directory is `data_dir` (stopped) the only
/// voter of a new cluster, from the state it has applied: the disaster
/// recovery of a far-site node when the main site is lost.
///
/// Log entries after what it applied are dropped (they are the data-loss
/// window: nothing of them is half there), its membership becomes itself
/// alone (at `node`), a fresh snapshot holds that, the log is purged to
/// its applied entry, its vote moves to the newest term it knew, and the
/// cluster gets a new identity: nodes of the old cluster, should they come
/// back, are refused.
pub async fn recover_alone(
    data_dir: &Path,
    id: NodeId,
    node: NodeInfo,
) -> anyhow::Result<Restored> {
    let store = Store::open(data_dir)?;
    let applied = store
        .applied()?
        .with_context(|| format!("{} has applied nothing to recover from", data_dir.display()))?;
    let mut log = LogStore::new(store.clone());
    let vote = log.read_vote().await?;
    let ids = BTreeSet::from([id]);
    let membership = typ::StoredMembership::new(
        Some(applied),
        openraft::Membership::new(vec![ids.clone()], BTreeMap::from([(id, node)])),
    );
    store.db().put_cf(
        store.cf(CF_SM_META),
        KEY_MEMBERSHIP,
        serde_json::to_vec(&membership)?,
    )?;
    let mut sm = StateMachineStore::new(store.clone());
    let built = sm.get_snapshot_builder().await.build_snapshot().await?;
    if built.meta.last_membership != membership || built.meta.last_log_id != Some(applied) {
        bail!("the rebuilt snapshot does not hold the new membership at the applied entry");
    }
    log.drop_after(applied.index)?;
    log.purge_through(applied)?;
    let term = vote
        .map_or(0, |v| v.leader_id().term)
        .max(applied.leader_id.term);
    log.save_vote(&typ::Vote::new(term, id)).await?;
    store.set_cluster_id(&super::new_cluster_id())?;
    drop((sm, log));
    store.close(CLOSE_WITHIN).await?;
    Ok(Restored {
        applied,
        voters: ids,
    })
}
