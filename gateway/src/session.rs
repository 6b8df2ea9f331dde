//! A logged-in EPP session and what each command runs with: the
//! registrar's cluster client, the command's clTRID as the cluster's
//! idempotency key, and the responses built from the cluster's answers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kauri_client::proto::{CheckRequest, CheckResponse, Reason, RequestMeta, TxInfo};
use kauri_client::{ClientError, KauriClient};

use crate::codes::{self, Code};
use crate::render::Response;

/// A logged-in session.
pub struct Session {
    /// The registrar (the login's clID).
    pub registrar: String,
    /// The cluster, as this registrar's session.
    pub client: KauriClient,
    /// How `<check>` commands read (the gateway's, shared by its sessions).
    pub checks: Arc<CheckReads>,
}

/// How the gateway reads for `<check>`: an availability check is a hint
/// (RFC 5730 section 2.9.2.1: the create that follows is what counts), so
/// it is a bounded-stale read the leader answers from its applied state
/// without a read-index round to the followers. It is never older than
/// `max_staleness_ms` of registry time (a leader cut off from its
/// followers stops applying ticks, and its answers age past the bound) and
/// never older than an answer this gateway already gave (monotonic reads
/// across its sessions). When the node cannot meet that, the check is read
/// again linearizably. `<info>`, transfer queries and poll stay
/// linearizable: registrars act on what they show (auth info, statuses,
/// pending transfers).
pub struct CheckReads {
    /// The bound; 0 makes every check linearizable.
    max_staleness_ms: u64,
    /// The highest applied index any answer to this gateway came from.
    seen: AtomicU64,
}

impl CheckReads {
    /// Checks read at most `max_staleness_ms` behind (0: linearizable).
    pub fn new(max_staleness_ms: u64) -> Arc<Self> {
        Arc::new(CheckReads {
            max_staleness_ms,
            seen: AtomicU64::new(0),
        })
    }

    /// Runs `call` (a check RPC) with this policy's read options.
    pub async fn run<F, Fut>(
        &self,
        mut request: CheckRequest,
        call: F,
    ) -> Result<CheckResponse, ClientError>
    where
        F: Fn(CheckRequest) -> Fut,
        Fut: Future<Output = Result<CheckResponse, ClientError>>,
    {
        if self.max_staleness_ms > 0 {
            request.read = kauri_client::bounded_stale(
                self.seen.load(Ordering::Relaxed),
                self.max_staleness_ms,
            );
            match call(request.clone()).await {
                Ok(r) => return Ok(self.saw(r)),
                Err(e) if e.reason == Reason::StaleRead => {
                    tracing::debug!("check read again linearizably: {}", e.message)
                }
                Err(e) => return Err(e),
            }
        }
        request.read = kauri_client::linearizable();
        call(request).await.map(|r| self.saw(r))
    }

    fn saw(&self, r: CheckResponse) -> CheckResponse {
        if let Some(info) = &r.read_info {
            self.seen.fetch_max(info.applied_index, Ordering::Relaxed);
        }
        r
    }
}

/// One command in a session.
pub struct Ctx<'a> {
    /// The session.
    pub session: &'a Session,
    /// The clTRID the client sent, if any.
    pub cl_trid: Option<String>,
    /// The idempotency key: the clTRID, or a fresh one when none was sent.
    key: String,
    /// Set when the cluster said the session is no longer valid (expired
    /// or closed by staff).
    ended: std::sync::atomic::AtomicBool,
}

/// A server transaction id for an answer the cluster did not give one
/// (reads, refusals at the gateway).
pub fn local_sv_trid() -> String {
    use rand::Rng;
    format!("kauri-gw-{:016x}", rand::thread_rng().gen::<u64>())
}

impl<'a> Ctx<'a> {
    /// The context of a command with `cl_trid` in `session`.
    pub fn new(session: &'a Session, cl_trid: Option<String>) -> Self {
        let key = cl_trid.clone().unwrap_or_else(kauri_client::new_cl_trid);
        Ctx {
            session,
            cl_trid,
            key,
            ended: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the cluster said the session ended: the connection is then
    /// logged out, and the client may log in again.
    pub fn session_ended(&self) -> bool {
        self.ended.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The registrar acting.
    pub fn registrar(&self) -> String {
        self.session.registrar.clone()
    }

    /// The request metadata of a mutation: the registrar and the clTRID.
    /// A command resent with the same clTRID (after a lost answer, or a
    /// gateway that lost the leader) is answered from the cluster's record
    /// of the first, never applied twice.
    pub fn meta(&self) -> Option<RequestMeta> {
        Some(RequestMeta {
            actor: self.session.registrar.clone(),
            cl_trid: self.key.clone(),
        })
    }

    /// A response with `code` for a read (the gateway's own svTRID).
    pub fn read(&self, code: Code) -> Response {
        Response::new(code, self.cl_trid.clone(), local_sv_trid())
    }

    /// A response with `code` for a mutation: the cluster's svTRID.
    pub fn done(&self, code: Code, tx: Option<&TxInfo>) -> Response {
        let sv_trid = tx
            .map(|t| t.sv_trid.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(local_sv_trid);
        Response::new(code, self.cl_trid.clone(), sv_trid)
    }

    /// A refusal at the gateway.
    pub fn refuse(&self, code: Code, detail: impl Into<String>) -> Response {
        self.read(code).detail(detail)
    }

    /// The response for a cluster's refusal. `element` renders the
    /// command's element behind a request field the cluster names (for
    /// `<extValue>`), when the command knows it.
    pub fn failed(&self, e: &ClientError, element: impl Fn(&str) -> Option<String>) -> Response {
        if e.reason == kauri_client::proto::Reason::SessionInvalid {
            self.ended.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut response = refused(e, self.cl_trid.clone());
        if !e.field.is_empty() {
            if let Some(xml) = element(&e.field) {
                response.ext_value = Some((xml, e.message.clone()));
            }
        }
        response
    }
}

/// The response for a cluster's refusal `e` of the command `cl_trid`.
pub fn refused(e: &ClientError, cl_trid: Option<String>) -> Response {
    let code = codes::for_reason(e.reason);
    let sv_trid = if e.sv_trid.is_empty() {
        local_sv_trid()
    } else {
        e.sv_trid.clone()
    };
    let detail = if e.outcome_unknown {
        format!(
            "{}; the outcome is unknown: send the command again with the same clTRID",
            e.message
        )
    } else {
        e.message.clone()
    };
    Response::new(code, cl_trid, sv_trid).detail(detail)
}
