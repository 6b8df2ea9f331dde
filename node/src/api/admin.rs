//! The staff-facing `kauri.v1.Admin` service: TLD policy and registrar
//! accounts, server statuses (registry lock on domains; hosts and
//! contacts), AUP cases and the audit trail.
//! The actor in `RequestMeta` is trusted as staff for now; roles from client
//! certificates come with mTLS.

use kauri_proto::v1::admin_server::Admin;
use kauri_proto::v1::command::Kind;
use kauri_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{expect_outcome, propose_unchanged, status, Node};
use crate::registry as reg;
use crate::security::actor::bound;

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
fn hash_password(password: &str) -> Result<String, Status> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(status::reject(
            Reason::InvalidField,
            "password",
            format!("password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, got {chars}"),
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| status::internal(format!("password hashing failed: {e}")))
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
        let req = bound(request)?;
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
        let req = bound(request)?;
        let command = CreateRegistrarCommand {
            meta: req.meta.clone(),
            id: req.id.clone(),
            name: req.name.clone(),
            password_hash: hash_password(&req.password)?,
            currency: req.currency.clone(),
        };
        let outcome = self
            .node
            .propose("CreateRegistrar", &req, Kind::CreateRegistrar(command))
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
        let req = bound(request)?;
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
        let req = bound(request)?;
        self.node.read_gate(None).await?;
        let store = self.node.store.clone();
        // argon2 verification is deliberately slow: keep it off the reactor.
        let valid = tokio::task::spawn_blocking(move || {
            reg::verify_registrar_password(&store, &req.id, &req.password)
        })
        .await
        .map_err(|e| status::internal(e.to_string()))??;
        Ok(Response::new(VerifyRegistrarPasswordResponse { valid }))
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
        let req = bound(request)?;
        let outcome = self
            .node
            .propose(
                "SetHostServerStatus",
                &req,
                Kind::SetHostServerStatus(req.clone()),
            )
            .await?;
        expect_outcome!(outcome, Host)
    }

    async fn set_contact_server_status(
        &self,
        request: Request<SetContactServerStatusRequest>,
    ) -> Result<Response<ContactResponse>, Status> {
        let req = bound(request)?;
        let outcome = self
            .node
            .propose(
                "SetContactServerStatus",
                &req,
                Kind::SetContactServerStatus(req.clone()),
            )
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
        let req = bound(request)?;
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
        let req = bound(request)?;
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
