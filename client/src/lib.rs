//! kauri-client: the Rust client of a Kauri registry cluster.
//!
//! [`KauriClient`] takes a list of endpoints and hides the cluster: it finds
//! the leader (following the leader hint in `NOT_LEADER` errors), retries
//! writes across leader changes with the *same* idempotency key so nothing is
//! registered or charged twice, and gives every call a deadline.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kauri_client::ClientError> {
//! use kauri_client::{KauriClient, ClientConfig};
//! let client = KauriClient::new(&["127.0.0.1:50051", "127.0.0.1:50052"], ClientConfig::default())?;
//! let status = client.cluster_status_any().await?;
//! println!("leader is node {}", status.leader_id);
//! # Ok(()) }
//! ```

pub mod backup;
pub mod devpki;
mod error;
pub mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kauri_proto::v1::admin_client::AdminClient;
use kauri_proto::v1::cluster_client::ClusterClient;
use kauri_proto::v1::registry_client::RegistryClient;
use kauri_proto::v1::*;
use tonic::transport::Channel;

pub use error::ClientError;
pub use kauri_proto::v1 as proto;

/// The request header a gateway's calls carry the session token in (see
/// [`KauriClient::open_session`] and [`KauriClient::in_session`]).
pub const SESSION_HEADER: &str = "kauri-session";

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Overall deadline of one call, retries included.
    pub deadline: Duration,
    /// Timeout of one attempt against one node.
    pub attempt_timeout: Duration,
    /// Pause before trying again when no leader is known.
    pub retry_backoff: Duration,
    /// Mutual TLS identity; `None` speaks plain text (development clusters
    /// started with `--insecure-plaintext` only).
    pub tls: Option<tls::ClientTls>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            deadline: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(12),
            retry_backoff: Duration::from_millis(100),
            tls: None,
        }
    }
}

/// A client of one Kauri cluster. Cheap to clone; clones share connections
/// and the leader guess.
#[derive(Clone)]
pub struct KauriClient {
    inner: Arc<Inner>,
    /// The session token every call carries in [`SESSION_HEADER`] (a
    /// gateway acting for a registrar), if any.
    session: Option<tonic::metadata::AsciiMetadataValue>,
}

struct Inner {
    config: ClientConfig,
    endpoints: Mutex<Vec<(String, Channel)>>,
    /// Index into `endpoints` of the node believed to lead.
    leader: AtomicUsize,
}

fn channel_for(addr: &str, tls: Option<&tls::ClientTls>) -> Result<Channel, ClientError> {
    tls::channel(addr, tls, Duration::from_millis(500)).map_err(ClientError::config)
}

/// A fresh client transaction id: "kc-" and 24 random hex digits.
pub fn new_cl_trid() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().gen();
    format!("kc-{:024x}", n >> 32)
}

/// Request metadata for `actor` with a fresh client transaction id.
pub fn meta(actor: &str) -> RequestMeta {
    RequestMeta {
        actor: actor.to_string(),
        cl_trid: new_cl_trid(),
    }
}

/// Read options for a linearizable read.
pub fn linearizable() -> Option<ReadOptions> {
    Some(ReadOptions::default())
}

/// Read options for a bounded-stale read served by any node.
pub fn bounded_stale(min_applied_index: u64, max_staleness_ms: u64) -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: Consistency::BoundedStale as i32,
        min_applied_index,
        max_staleness_ms,
    })
}

/// Generates a method that runs one RPC through the leader-following retry
/// loop.
macro_rules! leader_rpc {
    ($(#[$doc:meta])* $name:ident, $client:ident, $method:ident, $req:ty, $resp:ty) => {
        $(#[$doc])*
        pub async fn $name(&self, request: $req) -> Result<$resp, ClientError> {
            self.on_leader(move |channel| {
                let request = self.request(request.clone());
                async move { $client::new(channel).$method(request).await }
            })
            .await
        }
    };
}

impl KauriClient {
    /// A client of the cluster reachable at `endpoints` (HOST:PORT each).
    /// Connections are made lazily.
    pub fn new<S: AsRef<str>>(endpoints: &[S], config: ClientConfig) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::config("at least one endpoint is required"));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| {
                Ok((
                    e.as_ref().to_string(),
                    channel_for(e.as_ref(), config.tls.as_ref())?,
                ))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        Ok(KauriClient {
            inner: Arc::new(Inner {
                config,
                endpoints: Mutex::new(endpoints),
                leader: AtomicUsize::new(0),
            }),
            session: None,
        })
    }

    /// This client acting within the session of `token` (from
    /// [`KauriClient::open_session`]): every call carries it in
    /// [`SESSION_HEADER`]. It shares connections with `self`.
    ///
    /// ```no_run
    /// # async fn demo(gateway: kauri_client::KauriClient) -> Result<(), kauri_client::ClientError> {
    /// use kauri_client::{meta, proto::OpenSessionRequest};
    /// let opened = gateway
    ///     .open_session(OpenSessionRequest {
    ///         meta: Some(meta("acme")),
    ///         password: "the registrar's EPP password".into(),
    ///         ..Default::default()
    ///     })
    ///     .await?;
    /// let acme = gateway.in_session(&opened.token)?;
    /// // acme.create_domain(...) now acts for registrar acme.
    /// # Ok(()) }
    /// ```
    pub fn in_session(&self, token: &str) -> Result<KauriClient, ClientError> {
        let value = token
            .parse()
            .map_err(|_| ClientError::config("a session token is 64 hex digits"))?;
        Ok(KauriClient {
            inner: self.inner.clone(),
            session: Some(value),
        })
    }

    /// The request envelope of one attempt: `message`, and the session
    /// token if this client acts within a session.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.session {
            request.metadata_mut().insert(SESSION_HEADER, token.clone());
        }
        request
    }

    /// The endpoints known to the client (the configured ones plus leaders it
    /// was pointed to).
    pub fn endpoints(&self) -> Vec<String> {
        self.lock().iter().map(|(a, _)| a.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Channel)>> {
        // A poisoned lock only means another thread panicked mid-push; the
        // list itself is still usable.
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn endpoint(&self, i: usize) -> (usize, String, Channel) {
        let eps = self.lock();
        let i = i % eps.len();
        (i, eps[i].0.clone(), eps[i].1.clone())
    }

    /// Points the leader guess at `addr`, adding it if unknown.
    fn follow_hint(&self, addr: &str) -> Result<(), ClientError> {
        let mut eps = self.lock();
        let i = match eps.iter().position(|(a, _)| a == addr) {
            Some(i) => i,
            None => {
                eps.push((
                    addr.to_string(),
                    channel_for(addr, self.inner.config.tls.as_ref())?,
                ));
                eps.len() - 1
            }
        };
        self.inner.leader.store(i, Ordering::Relaxed);
        Ok(())
    }

    /// Runs `call` against the leader, following leader hints and trying the
    /// other endpoints on connection failures, until it succeeds, fails with
    /// a definite answer, or the deadline passes. `call` must resend the same
    /// request each time (same idempotency key): that is what makes a retry
    /// after a lost reply safe.
    pub async fn on_leader<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.inner.config.deadline;
        let mut last_error = None;
        loop {
            let guess = self.inner.leader.load(Ordering::Relaxed);
            let (index, addr, channel) = self.endpoint(guess);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                // Out of time after retryable failures. Whatever the last
                // attempt said, an earlier one may have been applied (a
                // leader can commit an entry and lose leadership before
                // answering, which reads as NOT_LEADER): the outcome is
                // unknown, and a retry with the same key settles it.
                let mut error =
                    last_error.unwrap_or_else(|| ClientError::deadline(self.inner.config.deadline));
                error.outcome_unknown = true;
                return Err(error);
            }
            let attempt = tokio::time::timeout(
                remaining.min(self.inner.config.attempt_timeout),
                call(channel),
            )
            .await;
            let error = match attempt {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => ClientError::from_status(&status, &addr),
                Err(_) => ClientError::timeout(&addr),
            };
            if !error.is_retryable() {
                return Err(error);
            }
            tracing::debug!(%addr, %error, "retrying");
            match error.leader_hint() {
                Some(hint) if hint != addr => self.follow_hint(hint)?,
                _ => {
                    // Try the next node; if we have been round them all,
                    // give the election a moment.
                    let next = index + 1;
                    let _ = self.inner.leader.compare_exchange(
                        guess,
                        next,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    tokio::time::sleep(self.inner.config.retry_backoff).await;
                }
            }
            last_error = Some(error);
        }
    }

    /// Runs `call` against one specific endpoint, once.
    pub async fn on_endpoint<T, F, Fut>(&self, addr: &str, call: F) -> Result<T, ClientError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channel = channel_for(addr, self.inner.config.tls.as_ref())?;
        match tokio::time::timeout(self.inner.config.attempt_timeout, call(channel)).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(ClientError::from_status(&status, addr)),
            Err(_) => Err(ClientError::timeout(addr)),
        }
    }

    /// Cluster status as seen by the node at `addr`.
    pub async fn cluster_status(&self, addr: &str) -> Result<StatusResponse, ClientError> {
        self.on_endpoint(addr, |c| async move {
            ClusterClient::new(c).status(StatusRequest {}).await
        })
        .await
    }

    /// The registry state digest of the node at `addr`.
    pub async fn state_digest(&self, addr: &str) -> Result<StateDigestResponse, ClientError> {
        self.on_endpoint(addr, |c| async move {
            ClusterClient::new(c)
                .state_digest(StateDigestRequest {})
                .await
        })
        .await
    }

    /// Asks the node at `addr` to build a snapshot now; answers once it is
    /// durable.
    pub async fn snapshot(&self, addr: &str) -> Result<SnapshotResponse, ClientError> {
        self.on_endpoint(addr, |c| async move {
            ClusterClient::new(c).snapshot(SnapshotRequest {}).await
        })
        .await
    }

    /// Cluster status from the first node that answers.
    pub async fn cluster_status_any(&self) -> Result<StatusResponse, ClientError> {
        let mut last = None;
        for addr in self.endpoints() {
            match self.cluster_status(&addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::config("no endpoints")))
    }

    /// Info of a domain read from the node at `addr` (bounded-stale reads
    /// are served by whichever node you ask).
    pub async fn info_domain_at(
        &self,
        addr: &str,
        request: InfoRequest,
    ) -> Result<DomainResponse, ClientError> {
        self.on_endpoint(addr, |c| async move {
            RegistryClient::new(c).info_domain(request).await
        })
        .await
    }

    leader_rpc!(
        /// Changes the cluster's membership by one step (staff): add a
        /// learner, promote, demote or remove a node. Safe to retry: a step
        /// that already holds changes nothing.
        change_membership, ClusterClient, change_membership, ChangeMembershipRequest,
        ChangeMembershipResponse);
    leader_rpc!(
        /// Creates a TLD with its policy.
        create_tld, AdminClient, create_tld, CreateTldRequest, TldResponse);
    leader_rpc!(
        /// Replaces a TLD's policy.
        update_tld, AdminClient, update_tld, UpdateTldRequest, TldResponse);
    leader_rpc!(
        /// Reads a TLD.
        info_tld, AdminClient, info_tld, InfoTldRequest, TldResponse);
    leader_rpc!(
        /// Creates a registrar account.
        create_registrar, AdminClient, create_registrar, CreateRegistrarRequest, RegistrarResponse);
    leader_rpc!(
        /// Credits a registrar's prepaid account.
        deposit_funds, AdminClient, deposit_funds, DepositFundsRequest, RegistrarResponse);
    leader_rpc!(
        /// Reads a registrar account and recent ledger entries.
        info_registrar, AdminClient, info_registrar, InfoRegistrarRequest, RegistrarResponse);
    leader_rpc!(
        /// Checks a registrar's password.
        verify_registrar_password, AdminClient, verify_registrar_password,
        VerifyRegistrarPasswordRequest, VerifyRegistrarPasswordResponse);
    leader_rpc!(
        /// Gateways: checks a registrar's password and opens a session
        /// (EPP login); act in it with [`KauriClient::in_session`].
        open_session, AdminClient, open_session, OpenSessionRequest, OpenSessionResponse);
    leader_rpc!(
        /// Gateways: closes the session this client acts in (EPP logout).
        close_session, AdminClient, close_session, CloseSessionRequest, SessionResponse);
    leader_rpc!(
        /// Checks domain availability.
        check_domains, RegistryClient, check_domains, CheckRequest, CheckResponse);
    leader_rpc!(
        /// Registers a domain (charged to the registrar).
        create_domain, RegistryClient, create_domain, CreateDomainRequest, DomainResponse);
    leader_rpc!(
        /// Reads a domain.
        info_domain, RegistryClient, info_domain, InfoRequest, DomainResponse);
    leader_rpc!(
        /// Updates a domain.
        update_domain, RegistryClient, update_domain, UpdateDomainRequest, DomainResponse);
    leader_rpc!(
        /// Renews a domain (charged to the registrar).
        renew_domain, RegistryClient, renew_domain, RenewDomainRequest, DomainResponse);
    leader_rpc!(
        /// Deletes a domain.
        delete_domain, RegistryClient, delete_domain, DeleteRequest, DeleteResponse);
    leader_rpc!(
        /// Checks contact id availability.
        check_contacts, RegistryClient, check_contacts, CheckRequest, CheckResponse);
    leader_rpc!(
        /// Creates a contact.
        create_contact, RegistryClient, create_contact, CreateContactRequest, ContactResponse);
    leader_rpc!(
        /// Reads a contact.
        info_contact, RegistryClient, info_contact, InfoRequest, ContactResponse);
    leader_rpc!(
        /// Updates a contact.
        update_contact, RegistryClient, update_contact, UpdateContactRequest, ContactResponse);
    leader_rpc!(
        /// Deletes a contact.
        delete_contact, RegistryClient, delete_contact, DeleteRequest, DeleteResponse);
    leader_rpc!(
        /// Checks host name availability.
        check_hosts, RegistryClient, check_hosts, CheckRequest, CheckResponse);
    leader_rpc!(
        /// Creates a host.
        create_host, RegistryClient, create_host, CreateHostRequest, HostResponse);
    leader_rpc!(
        /// Reads a host.
        info_host, RegistryClient, info_host, InfoRequest, HostResponse);
    leader_rpc!(
        /// Updates a host.
        update_host, RegistryClient, update_host, UpdateHostRequest, HostResponse);
    leader_rpc!(
        /// Deletes a host.
        delete_host, RegistryClient, delete_host, DeleteRequest, DeleteResponse);
    leader_rpc!(
        /// Requests, approves, rejects or cancels a domain transfer.
        transfer_domain, RegistryClient, transfer_domain, TransferDomainRequest, TransferResponse);
    leader_rpc!(
        /// The pending or most recent transfer of a domain.
        query_transfer, RegistryClient, query_transfer, TransferQueryRequest, TransferResponse);
    leader_rpc!(
        /// Requests, approves, rejects or cancels a contact transfer.
        transfer_contact, RegistryClient, transfer_contact, TransferContactRequest, TransferResponse);
    leader_rpc!(
        /// The pending or most recent transfer of a contact.
        query_contact_transfer, RegistryClient, query_contact_transfer, TransferQueryRequest,
        TransferResponse);
    leader_rpc!(
        /// Requests or reports an RGP restore of a domain in redemption.
        restore_domain, RegistryClient, restore_domain, RestoreDomainRequest, DomainResponse);
    leader_rpc!(
        /// The oldest message in a registrar's poll queue and the count.
        poll, RegistryClient, poll, PollRequest, PollResponse);
    leader_rpc!(
        /// Acknowledges a poll message.
        ack_poll, RegistryClient, ack_poll, AckPollRequest, PollResponse);
    leader_rpc!(
        /// Sets a registrar's credit limit or low-balance threshold (staff).
        update_registrar, AdminClient, update_registrar, UpdateRegistrarRequest, RegistrarResponse);
    leader_rpc!(
        /// Sets or clears server statuses of a domain (staff; registry lock).
        set_server_status, AdminClient, set_server_status, SetServerStatusRequest, DomainResponse);
    leader_rpc!(
        /// Sets or clears server statuses of a host (staff).
        set_host_server_status, AdminClient, set_host_server_status,
        SetHostServerStatusRequest, HostResponse);
    leader_rpc!(
        /// Sets or clears server statuses of a contact (staff).
        set_contact_server_status, AdminClient, set_contact_server_status,
        SetContactServerStatusRequest, ContactResponse);
    leader_rpc!(
        /// Opens an AUP case on a domain (staff).
        open_case, AdminClient, open_case, OpenCaseRequest, CaseResponse);
    leader_rpc!(
        /// Suspends, lifts, escalates, notes or closes an AUP case (staff).
        update_case, AdminClient, update_case, UpdateCaseRequest, CaseResponse);
    leader_rpc!(
        /// Reads an AUP case.
        info_case, AdminClient, info_case, InfoCaseRequest, CaseResponse);
    leader_rpc!(
        /// Audit records of an object or an actor, newest first (staff).
        query_audit, AdminClient, query_audit, AuditQueryRequest, AuditQueryResponse);

    /// Moves the proposer clock of the node at `addr` forward (nodes
    /// started with `--test-clock` only). Call it on every node.
    pub async fn advance_test_clock_at(
        &self,
        addr: &str,
        advance_ms: i64,
    ) -> Result<AdvanceTestClockResponse, ClientError> {
        self.on_endpoint(addr, |c| async move {
            AdminClient::new(c)
                .advance_test_clock(AdvanceTestClockRequest { advance_ms })
                .await
        })
        .await
    }
}
