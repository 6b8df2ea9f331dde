//! The gRPC API of a node: the registry (registrar-facing), admin (staff) and
//! cluster services. Handlers never write state themselves: they validate,
//! fill in what must be decided once (time, salts, generated auth info),
//! propose through Raft and wait for the applied result.

mod admin;
mod cluster;
pub mod handover;
pub mod membership;
pub mod reads;
mod registry;
pub mod status;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kauri_proto::v1::{
    self, command::Kind, command_result::Outcome, Consistency, ReadInfo, ReadOptions, Reason,
};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Status;

pub use admin::AdminService;
pub use cluster::ClusterService;
pub use registry::RegistryService;

use crate::raft::{typ, LogPayload, NodeId};
use crate::security::actor::{self, Acting, Via};
use crate::security::throttle::PasswordThrottle;
use crate::storage::Store;

/// Largest encoded proposal accepted into the log.
pub const MAX_PROPOSAL_BYTES: usize = 256 * 1024;
/// Largest request a client may send to the public services.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// How long a write may wait for its entry to commit and apply before the
/// client is told the outcome is unknown (it retries with the same key).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The clock proposers stamp entries with: the wall clock, plus an offset
/// that only a node started with `--test-clock` lets tests move forward.
#[derive(Debug, Default)]
pub struct ProposerClock {
    test_clock: bool,
    offset_ms: std::sync::atomic::AtomicI64,
}

impl ProposerClock {
    /// A clock; `test_clock` allows [`ProposerClock::advance`].
    pub fn new(test_clock: bool) -> Self {
        ProposerClock {
            test_clock,
            offset_ms: Default::default(),
        }
    }

    /// Milliseconds since the epoch, as proposals are stamped.
    pub fn now_ms(&self) -> i64 {
        wall_clock_ms() + self.offset_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves the clock forward by `ms`; returns the new total offset.
    pub fn advance(&self, ms: i64) -> Result<i64, Status> {
        if !self.test_clock {
            return Err(status::reject(
                Reason::PolicyViolation,
                "",
                "the test clock is disabled on this node (start it with --test-clock)",
            ));
        }
        if ms < 0 {
            return Err(status::reject(
                Reason::InvalidField,
                "advance_ms",
                format!("advance_ms must not be negative, got {ms}"),
            ));
        }
        Ok(self
            .offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed)
            + ms)
    }
}

/// What every handler needs: the Raft instance, the local store and who we are.
#[derive(Clone)]
pub struct Node {
    /// The Raft instance.
    pub raft: typ::Raft,
    /// The local database (reads).
    pub store: Store,
    /// This node's id.
    pub id: NodeId,
    /// This node's site label.
    pub site: String,
    /// The clock proposals are stamped with.
    pub clock: std::sync::Arc<ProposerClock>,
    /// The node's TLS identity; `None` in plain text.
    pub tls: Option<std::sync::Arc<crate::security::listener::NodeTls>>,
    /// Failed password checks on this node, per registrar and per source.
    pub throttle: std::sync::Arc<PasswordThrottle>,
    /// When each peer last answered this node's Raft messages.
    pub contacts: crate::peer::network::Contacts,
    /// The cluster's name (`--cluster-name`).
    pub cluster: String,
    /// Holds proposals while the leadership is handed over.
    pub handover: std::sync::Arc<handover::Gate>,
    /// Messages to peers outside openraft's (leadership transfer).
    pub peers: crate::peer::network::Network,
    /// The leadership checks linearizable reads share.
    pub reads: std::sync::Arc<reads::ReadRounds<Result<(), Status>>>,
}

/// Wall-clock time in ms since the epoch. Only proposers read the clock;
/// apply takes time from the proposal.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Node {
    /// The leader as this node currently believes it to be.
    pub fn leader(&self) -> Option<(NodeId, crate::raft::NodeInfo)> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    /// Takes a request out of its envelope with its actor bound to the
    /// authenticated caller (a gateway's through its session, judged by
    /// the proposer clock), and says who delivered it.
    pub fn bound<T: Acting>(&self, request: tonic::Request<T>) -> Result<(T, Via), Status> {
        actor::bound(request, &self.store, self.clock.now_ms())
    }

    /// Proposes `kind` on behalf of the client request `request`, delivered
    /// `via` a gateway or directly, and returns the applied outcome. The
    /// request digest is over the command's name (its gRPC method, from the
    /// registry's command table) and the request as the client sent it.
    pub async fn propose<R: Message>(
        &self,
        via: &Via,
        request: &R,
        kind: Kind,
    ) -> Result<Outcome, Status> {
        // A malformed idempotency key is refused here, before it costs a log
        // entry; apply checks it again (it must not trust the proposer).
        let meta = crate::registry::request_meta(&kind);
        crate::registry::check_request_meta(meta)?;
        // The log lines about this call carry its transaction ids.
        let span = tracing::Span::current();
        if let Some(meta) = meta {
            span.record("cl_trid", meta.cl_trid.as_str());
        }
        let proposal = v1::Proposal {
            time_ms: self.clock.now_ms(),
            request_digest: request_digest(crate::registry::command_name(&kind), request),
            command: Some(v1::Command { kind: Some(kind) }),
            via: via.as_str().to_string(),
        };
        let bytes = proposal.encode_to_vec();
        if bytes.len() > MAX_PROPOSAL_BYTES {
            return Err(status::reject(
                Reason::LimitExceeded,
                "",
                format!(
                    "request of {} bytes exceeds the {MAX_PROPOSAL_BYTES}-byte limit",
                    bytes.len()
                ),
            ));
        }
        use crate::telemetry::{proposal as counted, ProposalResult};
        let _pass = self.handover.pass().await;
        let write = self.raft.client_write(LogPayload(bytes));
        let response = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Err(_) => {
                counted(ProposalResult::Error);
                return Err(status::reject(
                    Reason::Unavailable,
                    "",
                    format!(
                        "not committed within {} s (no quorum?); the outcome is unknown, retry with the same cl_trid",
                        WRITE_TIMEOUT.as_secs()
                    ),
                ));
            }
            Ok(Ok(r)) => r,
            Ok(Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(f),
            ))) => {
                counted(ProposalResult::NotLeader);
                return Err(status::not_leader(f.leader_id.zip(f.leader_node)));
            }
            Ok(Err(e)) => {
                counted(ProposalResult::Error);
                return Err(status::reject(
                    Reason::Unavailable,
                    "",
                    format!("raft: {e}"),
                ));
            }
        };
        let result = v1::CommandResult::decode(response.data.0.as_slice())
            .map_err(|e| status::internal(format!("undecodable apply result: {e}")))?;
        if let Some(tx) = crate::registry::tx_info(&result) {
            span.record("sv_trid", tx.sv_trid.as_str());
        }
        match result.outcome {
            Some(Outcome::Error(e)) => {
                counted(ProposalResult::Rejected);
                Err(status::command_error(e))
            }
            Some(outcome) => {
                counted(ProposalResult::Ok);
                Ok(outcome)
            }
            None => Err(status::internal("apply returned no outcome")),
        }
    }

    /// Proposes a clock tick (leader only): advances registry time and runs
    /// the lifecycle events due by then.
    pub async fn propose_tick(&self) -> Result<v1::TickResult, Status> {
        let proposal = v1::Proposal {
            time_ms: self.clock.now_ms(),
            request_digest: Vec::new(),
            command: Some(v1::Command {
                kind: Some(Kind::Tick(v1::TickCommand {
                    auth_info_seed: rand::random::<[u8; 32]>().to_vec(),
                })),
            }),
            via: String::new(),
        };
        use crate::telemetry::{proposal as counted, ProposalResult};
        let _pass = self.handover.pass().await;
        let write = self.raft.client_write(LogPayload(proposal.encode_to_vec()));
        let response = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Err(_) => {
                counted(ProposalResult::Error);
                return Err(status::reject(
                    Reason::Unavailable,
                    "",
                    "tick not committed in time",
                ));
            }
            Ok(Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(_),
            ))) => {
                counted(ProposalResult::NotLeader);
                return Err(status::reject(
                    Reason::Unavailable,
                    "",
                    "tick: this node is no longer the leader",
                ));
            }
            Ok(Err(e)) => {
                counted(ProposalResult::Error);
                return Err(status::reject(
                    Reason::Unavailable,
                    "",
                    format!("tick: {e}"),
                ));
            }
            Ok(Ok(r)) => r,
        };
        match v1::CommandResult::decode(response.data.0.as_slice()).map(|r| r.outcome) {
            Ok(Some(Outcome::Tick(t))) => {
                counted(ProposalResult::Ok);
                Ok(t)
            }
            Ok(other) => Err(status::internal(format!(
                "unexpected tick outcome {other:?}"
            ))),
            Err(e) => Err(status::internal(format!("undecodable tick result: {e}"))),
        }
    }

    /// Waits until this node may serve a read with `options`, and says how
    /// fresh the state it reads from is.
    pub async fn read_gate(&self, options: Option<&ReadOptions>) -> Result<ReadInfo, Status> {
        let default = ReadOptions::default();
        let options = options.unwrap_or(&default);
        let consistency = Consistency::try_from(options.consistency).map_err(|_| {
            status::reject(
                Reason::InvalidField,
                "read.consistency",
                "unknown consistency level",
            )
        })?;
        if consistency == Consistency::Linearizable {
            self.confirm_leadership().await?;
        }
        let info = self.read_info(consistency)?;
        if consistency == Consistency::BoundedStale {
            if info.applied_index < options.min_applied_index {
                return Err(status::reject(
                    Reason::StaleRead,
                    "read.min_applied_index",
                    format!(
                        "node {} has applied index {}, below the requested {}",
                        self.id, info.applied_index, options.min_applied_index
                    ),
                ));
            }
            let age = self
                .clock
                .now_ms()
                .saturating_sub(info.applied_time_ms)
                .max(0) as u64;
            if options.max_staleness_ms > 0 && age > options.max_staleness_ms {
                return Err(status::reject(
                    Reason::StaleRead,
                    "read.max_staleness_ms",
                    format!(
                        "node {} last applied an entry {age} ms ago, over the requested {} ms",
                        self.id, options.max_staleness_ms
                    ),
                ));
            }
        }
        Ok(info)
    }

    /// Confirms, for a linearizable read, that this node leads and has
    /// applied everything committed when the read arrived. Concurrent reads
    /// share one check ([`reads::ReadRounds`]).
    async fn confirm_leadership(&self) -> Result<(), Status> {
        let raft = self.raft.clone();
        let check = move || {
            let raft = raft.clone();
            async move {
                let confirmed = tokio::time::timeout(WRITE_TIMEOUT, raft.ensure_linearizable());
                match confirmed.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(openraft::error::RaftError::APIError(
                        openraft::error::CheckIsLeaderError::ForwardToLeader(f),
                    ))) => Err(status::not_leader(f.leader_id.zip(f.leader_node))),
                    Ok(Err(e)) => Err(status::reject(
                        Reason::Unavailable,
                        "",
                        format!("linearizable read: {e}"),
                    )),
                    Err(_) => Err(status::reject(
                        Reason::Unavailable,
                        "",
                        format!(
                            "linearizable read: leadership not confirmed within {} s",
                            WRITE_TIMEOUT.as_secs()
                        ),
                    )),
                }
            }
        };
        self.reads.confirm(check).await.unwrap_or_else(|_| {
            Err(status::internal(
                "linearizable read: the leadership check ended without an answer",
            ))
        })
    }

    /// Where this node's applied state stands.
    pub fn read_info(&self, consistency: Consistency) -> Result<ReadInfo, Status> {
        if self.store.installing() {
            return Err(status::reject(
                Reason::Unavailable,
                "",
                format!(
                    "node {} is installing a snapshot; read from another node",
                    self.id
                ),
            ));
        }
        let applied = self
            .store
            .applied()
            .map_err(|e| status::internal(e.to_string()))?;
        let applied_time_ms = crate::registry::registry_now_ms(&self.store)
            .map_err(|e| status::internal(e.to_string()))?;
        Ok(ReadInfo {
            node_id: self.id,
            applied_index: applied.map(|l| l.index).unwrap_or(0),
            applied_time_ms,
            consistency: consistency as i32,
        })
    }
}

/// The idempotency digest of a client request: SHA-256 over the method name
/// and the request's protobuf encoding (deterministic: no map fields).
pub fn request_digest<R: Message>(method: &str, request: &R) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(request.encode_to_vec());
    h.finalize().to_vec()
}

/// A random secret for auth info the client left empty: 16 characters from
/// an alphabet without look-alikes. Made by the proposer, never in apply.
pub fn generate_auth_info() -> String {
    use crate::registry::fields::{AUTH_INFO_ALPHABET, MADE_AUTH_INFO_CHARS};
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..MADE_AUTH_INFO_CHARS)
        .map(|_| AUTH_INFO_ALPHABET[rng.gen_range(0..AUTH_INFO_ALPHABET.len())] as char)
        .collect()
}

/// The auth info an object gets when a transfer command `op` completes
/// its transfer: a fresh one for an approval, none otherwise. The
/// registry's to make: nobody party to the transfer chooses it (a client's
/// value is replaced).
pub fn auth_info_on_completion(op: i32) -> String {
    if op == kauri_proto::v1::TransferOp::Approve as i32 {
        generate_auth_info()
    } else {
        String::new()
    }
}

/// Unwraps the expected outcome variant of a command.
macro_rules! expect_outcome {
    ($outcome:expr, $variant:ident) => {
        match $outcome {
            kauri_proto::v1::command_result::Outcome::$variant(r) => Ok(tonic::Response::new(r)),
            other => Err($crate::api::status::internal(format!(
                "unexpected outcome {:?}",
                std::mem::discriminant(&other)
            ))),
        }
    };
}
pub(crate) use expect_outcome;

/// Proposes a request that needs nothing decided by the proposer: the log
/// carries it as received, under the gRPC method of the same name as its
/// command kind, and the handler returns the expected outcome.
macro_rules! propose_unchanged {
    ($service:ident, $request:ident, $kind:ident, $outcome:ident) => {{
        let (req, via) = $service.node.bound($request)?;
        let outcome = $service
            .node
            .propose(
                &via,
                &req,
                kauri_proto::v1::command::Kind::$kind(req.clone()),
            )
            .await?;
        $crate::api::expect_outcome!(outcome, $outcome)
    }};
}
pub(crate) use propose_unchanged;
