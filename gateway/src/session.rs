//! A logged-in EPP session and what each command runs with: the
//! registrar's cluster client, the command's clTRID as the cluster's
//! idempotency key, and the responses built from the cluster's answers.

use kauri_client::proto::{RequestMeta, TxInfo};
use kauri_client::{ClientError, KauriClient};

use crate::codes::{self, Code};
use crate::render::Response;

/// A logged-in session.
pub struct Session {
    /// The registrar (the login's clID).
    pub registrar: String,
    /// The cluster, as this registrar's session.
    pub client: KauriClient,
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
