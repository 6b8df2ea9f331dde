//! The registrar-facing `kauri.v1.Registry` service: domains, contacts and
//! hosts (RFC 5731-5733 semantics), transfers, RGP restores (RFC 3915) and
//! the poll queue (RFC 5730).

use kauri_proto::v1::command::Kind;
use kauri_proto::v1::registry_server::Registry;
use kauri_proto::v1::*;
use tonic::{Request, Response, Status};

use super::{
    auth_info_on_completion, expect_outcome, generate_auth_info, propose_unchanged, status, Node,
};
use crate::registry::{self as reg, MAX_CHECK_NAMES};

/// Serves `kauri.v1.Registry` on a node.
pub struct RegistryService {
    node: Node,
}

impl RegistryService {
    /// The service over `node`.
    pub fn new(node: Node) -> Self {
        RegistryService { node }
    }
}

fn check_limit(names: &[String]) -> Result<(), Status> {
    if names.is_empty() {
        return Err(status::reject(
            Reason::InvalidField,
            "names",
            "at least one name is required",
        ));
    }
    if names.len() > MAX_CHECK_NAMES {
        return Err(status::reject(
            Reason::LimitExceeded,
            "names",
            format!(
                "{} names given; at most {MAX_CHECK_NAMES} per check",
                names.len()
            ),
        ));
    }
    Ok(())
}

/// A registry read over the node's applied state.
type CheckFn = fn(&dyn reg::StateRead, &[String]) -> Result<Vec<CheckResult>, reg::RegistryError>;

impl RegistryService {
    /// Serves an availability check of domains, contacts or hosts.
    async fn check(
        &self,
        request: Request<CheckRequest>,
        check: CheckFn,
    ) -> Result<Response<CheckResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        check_limit(&req.names)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let results = check(&self.node.store, &req.names)?;
        Ok(Response::new(CheckResponse {
            results,
            read_info: Some(read_info),
        }))
    }
}

#[tonic::async_trait]
impl Registry for RegistryService {
    async fn check_domains(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let fees = request.get_ref().fees.clone();
        let names = request.get_ref().names.clone();
        let mut response = self.check(request, reg::check_domains).await?;
        if !fees.is_empty() {
            // Priced from the same applied state the check read.
            let quotes = reg::fee_quotes(&self.node.store, &names, &fees)?;
            for (result, quotes) in response.get_mut().results.iter_mut().zip(quotes) {
                result.fees = quotes;
            }
        }
        Ok(response)
    }

    async fn create_domain(
        &self,
        request: Request<CreateDomainRequest>,
    ) -> Result<Response<DomainResponse>, Status> {
        let (req, via) = self.node.bound(request)?;
        let mut cmd = req.clone();
        if cmd.auth_info.is_empty() {
            cmd.auth_info = generate_auth_info();
        }
        let outcome = self
            .node
            .propose(&via, &req, Kind::CreateDomain(cmd))
            .await?;
        expect_outcome!(outcome, Domain)
    }

    async fn info_domain(
        &self,
        request: Request<InfoRequest>,
    ) -> Result<Response<DomainResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let domain = reg::info_domain(&self.node.store, &req.registrar, &req.name)?;
        Ok(Response::new(DomainResponse {
            domain: Some(domain),
            read_info: Some(read_info),
            ..Default::default()
        }))
    }

    async fn update_domain(
        &self,
        request: Request<UpdateDomainRequest>,
    ) -> Result<Response<DomainResponse>, Status> {
        propose_unchanged!(self, request, UpdateDomain, Domain)
    }

    async fn renew_domain(
        &self,
        request: Request<RenewDomainRequest>,
    ) -> Result<Response<DomainResponse>, Status> {
        propose_unchanged!(self, request, RenewDomain, Domain)
    }

    async fn delete_domain(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        propose_unchanged!(self, request, DeleteDomain, Deleted)
    }

    async fn check_contacts(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        self.check(request, reg::check_contacts).await
    }

    async fn create_contact(
        &self,
        request: Request<CreateContactRequest>,
    ) -> Result<Response<ContactResponse>, Status> {
        let (req, via) = self.node.bound(request)?;
        let mut cmd = req.clone();
        if cmd.auth_info.is_empty() {
            cmd.auth_info = generate_auth_info();
        }
        let outcome = self
            .node
            .propose(&via, &req, Kind::CreateContact(cmd))
            .await?;
        expect_outcome!(outcome, Contact)
    }

    async fn info_contact(
        &self,
        request: Request<InfoRequest>,
    ) -> Result<Response<ContactResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let contact = reg::info_contact(&self.node.store, &req.registrar, &req.name)?;
        Ok(Response::new(ContactResponse {
            contact: Some(contact),
            read_info: Some(read_info),
            ..Default::default()
        }))
    }

    async fn update_contact(
        &self,
        request: Request<UpdateContactRequest>,
    ) -> Result<Response<ContactResponse>, Status> {
        propose_unchanged!(self, request, UpdateContact, Contact)
    }

    async fn delete_contact(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        propose_unchanged!(self, request, DeleteContact, Deleted)
    }

    async fn check_hosts(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        self.check(request, reg::check_hosts).await
    }

    async fn create_host(
        &self,
        request: Request<CreateHostRequest>,
    ) -> Result<Response<HostResponse>, Status> {
        propose_unchanged!(self, request, CreateHost, Host)
    }

    async fn info_host(
        &self,
        request: Request<InfoRequest>,
    ) -> Result<Response<HostResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let host = reg::info_host(&self.node.store, &req.name)?;
        Ok(Response::new(HostResponse {
            host: Some(host),
            read_info: Some(read_info),
            ..Default::default()
        }))
    }

    async fn update_host(
        &self,
        request: Request<UpdateHostRequest>,
    ) -> Result<Response<HostResponse>, Status> {
        propose_unchanged!(self, request, UpdateHost, Host)
    }

    async fn transfer_domain(
        &self,
        request: Request<TransferDomainRequest>,
    ) -> Result<Response<TransferResponse>, Status> {
        let (req, via) = self.node.bound(request)?;
        let mut cmd = req.clone();
        cmd.new_auth_info = auth_info_on_completion(cmd.op);
        let outcome = self
            .node
            .propose(&via, &req, Kind::TransferDomain(cmd))
            .await?;
        expect_outcome!(outcome, Transfer)
    }

    async fn transfer_contact(
        &self,
        request: Request<TransferContactRequest>,
    ) -> Result<Response<TransferResponse>, Status> {
        let (req, via) = self.node.bound(request)?;
        let mut cmd = req.clone();
        cmd.new_auth_info = auth_info_on_completion(cmd.op);
        let outcome = self
            .node
            .propose(&via, &req, Kind::TransferContact(cmd))
            .await?;
        expect_outcome!(outcome, Transfer)
    }

    async fn query_contact_transfer(
        &self,
        request: Request<TransferQueryRequest>,
    ) -> Result<Response<TransferResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let transfer = reg::query_contact_transfer(
            &self.node.store,
            &req.registrar,
            &req.name,
            &req.auth_info,
        )?;
        Ok(Response::new(TransferResponse {
            transfer: Some(transfer),
            read_info: Some(read_info),
            ..Default::default()
        }))
    }

    async fn query_transfer(
        &self,
        request: Request<TransferQueryRequest>,
    ) -> Result<Response<TransferResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let transfer =
            reg::query_transfer(&self.node.store, &req.registrar, &req.name, &req.auth_info)?;
        Ok(Response::new(TransferResponse {
            transfer: Some(transfer),
            read_info: Some(read_info),
            ..Default::default()
        }))
    }

    async fn restore_domain(
        &self,
        request: Request<RestoreDomainRequest>,
    ) -> Result<Response<DomainResponse>, Status> {
        propose_unchanged!(self, request, RestoreDomain, Domain)
    }

    async fn poll(&self, request: Request<PollRequest>) -> Result<Response<PollResponse>, Status> {
        let (req, _) = self.node.bound(request)?;
        let read_info = self.node.read_gate(req.read.as_ref()).await?;
        let (message, count) = reg::poll_head(&self.node.store, &req.registrar)?;
        Ok(Response::new(PollResponse {
            message,
            count,
            read_info: Some(read_info),
            tx: None,
        }))
    }

    async fn ack_poll(
        &self,
        request: Request<AckPollRequest>,
    ) -> Result<Response<PollResponse>, Status> {
        propose_unchanged!(self, request, AckPoll, Poll)
    }

    async fn delete_host(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        propose_unchanged!(self, request, DeleteHost, Deleted)
    }
}
