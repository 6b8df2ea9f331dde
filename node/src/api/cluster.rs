//! The `kauri.v1.Cluster` service: how the cluster looks from this node.

use kauri_proto::v1::cluster_server::Cluster;
use kauri_proto::v1::{
    backup_chunk, BackupChunk, BackupHeader, BackupRequest, ChainPoint, ChangeMembershipRequest,
    ChangeMembershipResponse, Consistency, SnapshotRequest, SnapshotResponse, StateDigestRequest,
    StateDigestResponse, StatusRequest, StatusResponse,
};
use openraft::ServerState;
use tonic::{Request, Response, Status};

use super::{membership, Node};

/// Serves `kauri.v1.Cluster` on a node.
pub struct ClusterService {
    node: Node,
}

impl ClusterService {
    /// The service over `node`.
    pub fn new(node: Node) -> Self {
        ClusterService { node }
    }
}

/// The lower-case name of a Raft role.
pub fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let m = self.node.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let view = membership::view(&self.node);
        let members = membership::members(&view);
        let window = membership::loss_window(
            &view,
            membership::whole_log_seconds(&self.node, view.last_log_index),
        );
        let leader = m.current_leader;
        let leader_addr = leader
            .and_then(|id| membership.get_node(&id))
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        let info = self.node.read_info(Consistency::BoundedStale)?;
        let points = self.node.store.chain_points();
        let certificate = self.node.tls.as_ref().map(|t| t.state());
        Ok(Response::new(StatusResponse {
            node_id: self.node.id,
            site: self.node.site.clone(),
            role: role_name(m.state).to_string(),
            term: m.current_term,
            leader_id: leader.unwrap_or(0),
            leader_addr,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: info.applied_index,
            applied_time_ms: info.applied_time_ms,
            members,
            snapshot_index: m.snapshot.map(|s| s.index).unwrap_or(0),
            purged_index: m.purged.map(|p| p.index).unwrap_or(0),
            state_chain: points
                .recent()
                .into_iter()
                .map(|(index, chain)| ChainPoint {
                    index,
                    chain: chain.to_vec(),
                })
                .collect(),
            state_mismatches: points.mismatches(),
            last_state_mismatch: points.last_mismatch(),
            certificate_principal: certificate
                .as_ref()
                .map(|c| c.principal.uri())
                .unwrap_or_default(),
            certificate_not_after_s: certificate.map_or(0, |c| c.not_after_s),
            commit_index: self.node.store.committed_index(),
            dr_far_site_nodes: window.far_site_nodes,
            dr_loss_window_entries: window.entries,
            dr_loss_window_seconds: window.seconds,
            cluster_id: self.node.store.cluster_id().unwrap_or_default(),
        }))
    }

    async fn state_digest(
        &self,
        _request: Request<StateDigestRequest>,
    ) -> Result<Response<StateDigestResponse>, Status> {
        let store = self.node.store.clone();
        let digest = tokio::task::spawn_blocking(move || store.state_digest())
            .await
            .map_err(|e| super::status::internal(e.to_string()))?
            .map_err(|e| super::status::internal(e.to_string()))?;
        Ok(Response::new(StateDigestResponse {
            node_id: self.node.id,
            applied_index: digest.applied_index,
            digest: digest.digest.iter().map(|b| format!("{b:02x}")).collect(),
            records: digest.records,
        }))
    }

    async fn change_membership(
        &self,
        request: Request<ChangeMembershipRequest>,
    ) -> Result<Response<ChangeMembershipResponse>, Status> {
        let who = crate::security::actor::caller(&request).describe();
        let req = request.into_inner();
        let raft = &self.node.raft;
        if raft.metrics().borrow().state != ServerState::Leader {
            return Err(super::status::not_leader(self.node.leader()));
        }
        let plan = membership::plan(&membership::view(&self.node), &req)?;
        let changed = plan != membership::Plan::Unchanged;
        if changed {
            tracing::info!(?plan, by = %who, "changing the membership");
        }
        let log_index = match plan {
            membership::Plan::TransferLeader(target) => {
                super::handover::transfer(&self.node, target).await?;
                0
            }
            plan => membership::change(raft, plan).await?,
        };
        if changed {
            tracing::info!(log_index, "membership changed");
        }
        Ok(Response::new(ChangeMembershipResponse {
            members: membership::members(&membership::view(&self.node)),
            log_index,
            changed,
            leader_id: raft.metrics().borrow().current_leader.unwrap_or(0),
        }))
    }

    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotResponse>, Status> {
        let snapshot_index = build_snapshot(&self.node.raft).await?;
        Ok(Response::new(SnapshotResponse {
            node_id: self.node.id,
            snapshot_index,
        }))
    }

    type BackupStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<BackupChunk, Status>> + Send + 'static>,
    >;

    async fn backup(
        &self,
        request: Request<BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let who = crate::security::actor::caller(&request).describe();
        build_snapshot(&self.node.raft).await?;
        let snapshot = self
            .node
            .raft
            .get_snapshot()
            .await
            .map_err(|e| Status::unavailable(format!("cannot read the snapshot: {e}")))?
            .ok_or_else(|| Status::unavailable("no snapshot to back up yet"))?;
        let meta = snapshot.meta;
        let mut data = snapshot.snapshot;
        let archive_bytes =
            match data.as_ref() {
                crate::storage::SnapshotData::Checkpoint(reader) => reader.len(),
                _ => return Err(Status::unavailable(
                    "the current snapshot is not a checkpoint of this node; retry after its next \
                     snapshot",
                )),
            };
        let applied = meta.last_log_id;
        let registry_time_ms = crate::registry::registry_now_ms(&self.node.store)
            .map_err(|e| super::status::internal(e.to_string()))?;
        let header = BackupHeader {
            node_id: self.node.id,
            cluster: self.node.cluster.clone(),
            applied_term: applied.map_or(0, |l| l.leader_id.term),
            applied_index: applied.map_or(0, |l| l.index),
            registry_time_ms,
            membership_json: serde_json::to_string(&meta.last_membership)
                .map_err(|e| super::status::internal(e.to_string()))?,
            on_disk_format: crate::storage::FORMAT_VERSION,
            archive_format: 3,
            archive_bytes,
        };
        tracing::info!(by = %who, index = header.applied_index, bytes = archive_bytes, "backup started");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let header = BackupChunk {
                part: Some(backup_chunk::Part::Header(header)),
            };
            if tx.send(Ok(header)).await.is_err() {
                return;
            }
            let mut sent = 0u64;
            loop {
                let mut buf = vec![0u8; BACKUP_CHUNK_BYTES];
                match data.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        sent += n as u64;
                        let chunk = BackupChunk {
                            part: Some(backup_chunk::Part::Data(buf)),
                        };
                        if tx.send(Ok(chunk)).await.is_err() {
                            tracing::warn!("backup abandoned by the client after {sent} bytes");
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(Status::internal(format!("reading the snapshot: {e}"))))
                            .await;
                        return;
                    }
                }
            }
            crate::telemetry::backup_served(std::time::SystemTime::now());
            tracing::info!(bytes = sent, "backup sent");
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// Bytes per data chunk of a backup stream.
const BACKUP_CHUNK_BYTES: usize = 1 << 20;

/// Builds a snapshot covering what this node has applied now; returns the
/// index it covers once it is durable.
async fn build_snapshot(raft: &crate::raft::typ::Raft) -> Result<u64, Status> {
    let applied = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
    raft.trigger()
        .snapshot()
        .await
        .map_err(|e| Status::unavailable(format!("cannot start a snapshot: {e}")))?;
    let built = raft
        .wait(Some(SNAPSHOT_PATIENCE))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= applied),
            "a snapshot covering what was applied",
        )
        .await
        .map_err(|e| {
            Status::deadline_exceeded(format!(
                "no snapshot up to index {applied} within {} s: {e}",
                SNAPSHOT_PATIENCE.as_secs()
            ))
        })?;
    Ok(built.snapshot.map_or(0, |s| s.index))
}

/// How long `Cluster.Snapshot` waits for the build (a memtable flush and a
/// checkpoint; longer only behind a snapshot install).
const SNAPSHOT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
