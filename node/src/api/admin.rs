//! The staff-facing `kauri.v1.Admin` service: TLD policy and registrar
//! accounts, server statuses (registry lock on domains; hosts and
//! contacts), AUP cases and the audit trail.
//! Gateways check registrar passwords here and open and close the
//! registrars' sessions (EPP login and logout). Actors are bound to the
//! authenticated principal (`security::actor`).

use kauri_proto::v1::admin_server::Admin;
use kauri_proto::v1::command::Kind;
use kauri_proto::v1::command_result::Outcome;
use kauri_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{expect_outcome, propose_unchanged, status, Node};
use crate::registry as reg;
use crate::security::actor;
use crate::security::session::{SessionToken, SESSION_HEADER};

/// Shortest registrar password accepted.
pub const MIN_PASSWORD_CHARS: usize = 6;
/// Longest registrar password accepted (EPP pwType).
pub const MAX_PASSWORD_CHARS: usize = 64;

/// Serves `kauri.v1.Admin` on a node.
pub struct AdminService {
    node: Node,
}

impl AdminService {
    /// The service over `node`.
    pub fn new(node: Node) -> Self {
        AdminService { node }
    }
}

/// Hashes a registrar password with argon2id and a fresh random salt. Done
/// by the proposer so the log never carries the password and apply stays
/// deterministic.
fn hash_password(field: &str, password: &str) -> Result<String, Status> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(status::reject(
            Reason::InvalidField,
            field,
            format!("{field} must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, got {chars}"),
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| status::internal(format!("password hashing failed: {e}")))
}

impl AdminService {
    /// Checks `registrar`'s password for `source`, unless failed checks
    /// throttle either of them: refused with `THROTTLED`, or counted.
    async fn check_password(
        &self,
        registrar: &str,
        password: String,
        source: &str,
    ) -> Result<bool, Status> {
        let node = &self.node;
        let now_ms = node.clock.now_ms();
        // What cannot be a registrar id is counted under one key, so junk
        // ids neither grow the table nor reach argon2.
        let well_formed = reg::fields::registrar_id("id", registrar).is_ok();
        let registrar = if well_formed {
            registrar
        } else {
            "(not a registrar id)"
        };
        if let Err(t) = node.throttle.check(registrar, source, now_ms) {
            tracing::debug!(registrar, source, by = t.by, "password check throttled");
            let whose = match t.by {
                "registrar" => format!("for registrar {:?}", kauri_client::tls::shorten(registrar)),
                _ => "from this source".to_string(),
            };
            return Err(status::reject(
                Reason::Throttled,
                "password",
                format!(
                    "too many failed password checks {whose}; try again in {} s",
                    (t.retry_after_ms + 999) / 1000
                ),
            ));
        }
        node.read_gate(None).await?;
        let store = node.store.clone();
        let id = registrar.to_string();
        // argon2 verification is deliberately slow: keep it off the reactor.
        let valid = well_formed
            && tokio::task::spawn_blocking(move || {
                reg::verify_registrar_password(&store, &id, &password)
            })
            .await
            .map_err(|e| status::internal(e.to_string()))??;
        if valid {
            node.throttle.succeeded(registrar);
        } else {
            let refused_ms = node.throttle.failed(registrar, source, now_ms);
            tracing::warn!(registrar, source, refused_ms, "failed password check");
        }
        Ok(valid)
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_tld(
        &self,
        request: Request<CreateTldRequest>,
    ) -> Result<Response<TldResponse>, Status> {
        propose_unchanged!(self, request, CreateTld, Tld)
    }

    async fn update_tld(
        &self,
        request: Request<UpdateTldRequest>,
    ) -> Result<Response<TldResponse>, Status> {
        propose_unchanged!(self, request, UpdateTld, Tld)
    }

    async fn info_tld(
        &self,
        request: Request<InfoTldRequest>,
    ) -> Result<Response<TldResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let tld = reg::info_tld(&self.node.store, &req.name)?;
        Ok(Response::new(TldResponse {
            tld: Some(tld),
            read_info: Some(read_info),
            ..Default::default()
        }))
    }

    async fn create_registrar(
        &self,
        request: Request<CreateRegistrarRequest>,
    ) -> Result<Response<RegistrarResponse>, Status> {
        let (req, via) = self.node.bound(request)?;
        let command = CreateRegistrarCommand {
            meta: req.meta.clone(),
            id: req.id.clone(),
            name: req.name.clone(),
            password_hash: hash_password("password", &req.password)?,
            currency: req.currency.clone(),
        };
        let outcome = self
            .node
            .propose(&via, &req, Kind::CreateRegistrar(command))
            .await?;
        expect_outcome!(outcome, Registrar)
    }

    async fn deposit_funds(
        &self,
        request: Request<DepositFundsRequest>,
    ) -> Result<Response<RegistrarResponse>, Status> {
        propose_unchanged!(self, request, DepositFunds, Registrar)
    }

    async fn info_registrar(
        &self,
        request: Request<InfoRegistrarRequest>,
    ) -> Result<Response<RegistrarResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let registrar = reg::info_registrar(&self.node.store, &req.id, req.ledger_limit)?;
        Ok(Response::new(RegistrarResponse {
            registrar: Some(registrar),
            read_info: Some(read_info),
            ..Default::default()
        }))
    }

    async fn verify_registrar_password(
        &self,
        request: Request<VerifyRegistrarPasswordRequest>,
    ) -> Result<Response<VerifyRegistrarPasswordResponse>, Status> {
        let source = actor::source(&request, &request.get_ref().client_address);
        let (req, _) = self.node.bound(request)?;
        let valid = self.check_password(&req.id, req.password, &source).await?;
        Ok(Response::new(VerifyRegistrarPasswordResponse { valid }))
    }

    async fn open_session(
        &self,
        request: Request<OpenSessionRequest>,
    ) -> Result<Response<OpenSessionResponse>, Status> {
        let source = actor::source(&request, &request.get_ref().client_address);
        let (mut req, via) = self.node.bound(request)?;
        let meta = reg::check_request_meta(req.meta.as_ref())?.clone();
        let lifetime_ms = match req.lifetime_seconds {
            0 => reg::session::DEFAULT_SESSION_LIFETIME_MS,
            s => i64::from(s) * 1000,
        };
        if lifetime_ms > reg::session::MAX_SESSION_LIFETIME_MS {
            return Err(status::reject(
                Reason::InvalidField,
                "lifetime_seconds",
                format!(
                    "{} s is longer than the longest session, {} s",
                    req.lifetime_seconds,
                    reg::session::MAX_SESSION_LIFETIME_MS / 1000
                ),
            ));
        }
        let password = std::mem::take(&mut req.password);
        let new_password = std::mem::take(&mut req.new_password);
        let new_password_hash = match new_password.as_str() {
            "" => String::new(),
            new => hash_password("new_password", new)?,
        };
        if !self.check_password(&meta.actor, password, &source).await? {
            return Err(status::reject(
                Reason::AuthenticationFailed,
                "password",
                format!(
                    "registrar {:?} and this password do not match",
                    kauri_client::tls::shorten(&meta.actor)
                ),
            ));
        }
        let token = SessionToken::generate();
        let command = OpenSessionCommand {
            meta: Some(meta.clone()),
            token_sha256: token.sha256().to_vec(),
            lifetime_ms,
            new_password_hash,
        };
        // The digest is of the request without its passwords (taken out
        // above): the log must not carry even a fast hash of them.
        let outcome = self
            .node
            .propose(&via, &req, Kind::OpenSession(command))
            .await?;
        let Outcome::Session(opened) = outcome else {
            return Err(status::internal("OpenSession applied to another outcome"));
        };
        if opened.tx.as_ref().is_some_and(|tx| tx.replayed) {
            // The session was opened by an earlier attempt with this key;
            // its token went to that attempt's answer and is not kept.
            return Err(status::reject(
                Reason::IdempotencyConflict,
                "meta.cl_trid",
                format!(
                    "cl_trid {:?} already opened a session, whose token only its first answer \
                     carried; log in again with a new cl_trid",
                    meta.cl_trid
                ),
            ));
        }
        Ok(Response::new(OpenSessionResponse {
            token: token.reveal(),
            session: opened.session,
            tx: opened.tx,
        }))
    }

    async fn close_session(
        &self,
        request: Request<CloseSessionRequest>,
    ) -> Result<Response<SessionResponse>, Status> {
        let token = SessionToken::from_metadata(request.metadata());
        // Binding checks the session is this gateway's and still open.
        let (req, via) = self.node.bound(request)?;
        let Ok(Some(token)) = token else {
            return Err(status::reject(
                Reason::SessionInvalid,
                "",
                format!("CloseSession closes the session whose token the {SESSION_HEADER} header carries; it carries none"),
            ));
        };
        let command = CloseSessionCommand {
            meta: req.meta.clone(),
            token_sha256: token.sha256().to_vec(),
        };
        let outcome = self
            .node
            .propose(&via, &req, Kind::CloseSession(command))
            .await?;
        expect_outcome!(outcome, Session)
    }

    async fn update_registrar(
        &self,
        request: Request<UpdateRegistrarRequest>,
    ) -> Result<Response<RegistrarResponse>, Status> {
        propose_unchanged!(self, request, UpdateRegistrar, Registrar)
    }

    async fn set_server_status(
        &self,
        request: Request<SetServerStatusRequest>,
    ) -> Result<Response<DomainResponse>, Status> {
        propose_unchanged!(self, request, SetServerStatus, Domain)
    }

    async fn set_host_server_status(
        &self,
        request: Request<SetHostServerStatusRequest>,
    ) -> Result<Response<HostResponse>, Status> {
        let (req, via) = self.node.bound(request)?;
        let outcome = self
            .node
            .propose(&via, &req, Kind::SetHostServerStatus(req.clone()))
            .await?;
        expect_outcome!(outcome, Host)
    }

    async fn set_contact_server_status(
        &self,
        request: Request<SetContactServerStatusRequest>,
    ) -> Result<Response<ContactResponse>, Status> {
        let (req, via) = self.node.bound(request)?;
        let outcome = self
            .node
            .propose(&via, &req, Kind::SetContactServerStatus(req.clone()))
            .await?;
        expect_outcome!(outcome, Contact)
    }

    async fn open_case(
        &self,
        request: Request<OpenCaseRequest>,
    ) -> Result<Response<CaseResponse>, Status> {
        propose_unchanged!(self, request, OpenCase, AupCase)
    }

    async fn update_case(
        &self,
        request: Request<UpdateCaseRequest>,
    ) -> Result<Response<CaseResponse>, Status> {
        propose_unchanged!(self, request, UpdateCase, AupCase)
    }

    async fn info_case(
        &self,
        request: Request<InfoCaseRequest>,
    ) -> Result<Response<CaseResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let aup_case = reg::info_case(&self.node.store, req.case_id)?;
        Ok(Response::new(CaseResponse {
            aup_case: Some(aup_case),
            read_info: Some(read_info),
            tx: None,
        }))
    }

    async fn query_audit(
        &self,
        request: Request<AuditQueryRequest>,
    ) -> Result<Response<AuditQueryResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let (records, next_page_token) = reg::query_audit(&self.node.store, &req)?;
        Ok(Response::new(AuditQueryResponse {
            records,
            next_page_token,
            read_info: Some(read_info),
        }))
    }

    async fn advance_test_clock(
        &self,
        request: Request<AdvanceTestClockRequest>,
    ) -> Result<Response<AdvanceTestClockResponse>, Status> {
        let offset_ms = self.node.clock.advance(request.into_inner().advance_ms)?;
        Ok(Response::new(AdvanceTestClockResponse {
            offset_ms,
            now_ms: self.node.clock.now_ms(),
        }))
    }
}
