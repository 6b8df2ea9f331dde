//! Which role may call which gRPC method, checked for every request before
//! its body is read: one table ([`allowed_roles`]) and the tower layer that
//! applies it ([`AuthLayer`]). A refused call gets `UNAUTHENTICATED` (no
//! usable certificate, or one for another cluster) or `PERMISSION_DENIED`
//! (a role outside the method's), with the reason `NOT_AUTHORIZED` or
//! `AUTHENTICATION_FAILED` in its details and a message naming the role and
//! the method. The handler never runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use kauri_proto::v1::Reason;
use tonic::{Code, Status};

use super::listener::PeerInfo;
use super::{refuse, Caller, Role};

use Role::*;

/// Every role but none.
const ANY: &[Role] = &[Node, Gateway, Registrar, Staff, Monitor];
/// Registrars themselves and gateways acting for them.
const REGISTRARS: &[Role] = &[Gateway, Registrar];
/// Registrar reads, which staff may make too (they see the public view).
const REGISTRY_READERS: &[Role] = &[Gateway, Registrar, Staff];

/// The roles that may call `method` of `service` (gRPC names, e.g.
/// `kauri.v1.Registry`, `CreateDomain`). Unknown methods: no role.
pub fn allowed_roles(service: &str, method: &str) -> &'static [Role] {
    match (service, method) {
        ("kauri.v1.Raft", _) => &[Node],

        ("kauri.v1.Cluster", "Status") => ANY,
        ("kauri.v1.Cluster", "StateDigest") => &[Node, Staff, Monitor],
        ("kauri.v1.Cluster", "Snapshot") => &[Node, Staff],
        ("kauri.v1.Cluster", "ChangeMembership" | "Backup") => &[Staff],

        (
            "kauri.v1.Registry",
            "CheckDomains"
            | "InfoDomain"
            | "CheckContacts"
            | "InfoContact"
            | "CheckHosts"
            | "InfoHost"
            | "QueryTransfer"
            | "QueryContactTransfer",
        ) => REGISTRY_READERS,
        (
            "kauri.v1.Registry",
            "CreateDomain" | "UpdateDomain" | "RenewDomain" | "DeleteDomain" | "CreateContact"
            | "UpdateContact" | "DeleteContact" | "CreateHost" | "UpdateHost" | "DeleteHost"
            | "TransferDomain" | "TransferContact" | "RestoreDomain" | "Poll" | "AckPoll",
        ) => REGISTRARS,

        ("kauri.v1.Admin", "InfoTld") => &[Gateway, Registrar, Staff, Monitor],
        // A registrar may read its own account (the handler checks whose).
        ("kauri.v1.Admin", "InfoRegistrar") => &[Gateway, Registrar, Staff],
        // Gateways check the passwords of registrars logging in.
        ("kauri.v1.Admin", "VerifyRegistrarPassword") => &[Gateway],
        // Gateways log registrars in and out.
        ("kauri.v1.Admin", "OpenSession" | "CloseSession") => &[Gateway],
        (
            "kauri.v1.Admin",
            "CreateTld"
            | "UpdateTld"
            | "CreateRegistrar"
            | "DepositFunds"
            | "UpdateRegistrar"
            | "SetServerStatus"
            | "SetHostServerStatus"
            | "SetContactServerStatus"
            | "OpenCase"
            | "UpdateCase"
            | "InfoCase"
            | "QueryAudit"
            | "AdvanceTestClock",
        ) => &[Staff],

        // The standard services (health checking, server reflection) tell
        // whether the node serves and describe the API, which is public in
        // the .proto files anyway; they change nothing and answer only from
        // memory. Every role may call them: load balancers and probes run
        // with whatever identity they are given (often monitor or gateway),
        // and a registrar's or staff member's tools reflect to build calls.
        // Callers without a certificate of this cluster are refused as for
        // any other method.
        ("grpc.health.v1.Health", "Check" | "Watch") => ANY,
        (
            "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection",
            "ServerReflectionInfo",
        ) => ANY,

        _ => &[],
    }
}

/// Splits `/package.Service/Method`.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!method.contains('/')).then_some((service, method))
}

/// Decides whether the connection described by `peer` may call `path` on a
/// node of `cluster`; on success, who the caller is.
pub fn authorize(peer: Option<&PeerInfo>, path: &str, cluster: &str) -> Result<Caller, Status> {
    let principal = match peer.and_then(|p| p.tls.as_ref()) {
        // A plain-text listener (only with --insecure-plaintext).
        None => return Ok(Caller::Unauthenticated),
        Some(Err(why)) => {
            return Err(refuse(
                Code::Unauthenticated,
                Reason::AuthenticationFailed,
                format!("client certificate not accepted: {why}"),
            ))
        }
        Some(Ok(p)) => p,
    };
    if principal.cluster != cluster {
        return Err(refuse(
            Code::Unauthenticated,
            Reason::AuthenticationFailed,
            format!(
                "client certificate is for cluster {:?}; this node belongs to cluster {cluster:?}",
                principal.cluster
            ),
        ));
    }
    let Some((service, method)) = split_path(path) else {
        return Err(refuse(
            Code::Unimplemented,
            Reason::InvalidField,
            "not a gRPC method path".to_string(),
        ));
    };
    let allowed = allowed_roles(service, method);
    if !allowed.contains(&principal.role) {
        let who = if allowed.is_empty() {
            "no role".to_string()
        } else {
            allowed
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(refuse(
            Code::PermissionDenied,
            Reason::NotAuthorized,
            format!(
                "{} {} may not call {}/{}: it is for {who}",
                principal.role,
                principal.name,
                kauri_client::tls::shorten(service),
                kauri_client::tls::shorten(method)
            ),
        ));
    }
    Ok(Caller::Principal(principal.clone()))
}

/// Applies [`authorize`] to every request and puts the [`Caller`] into the
/// request's extensions for the handler.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    cluster: Arc<str>,
}

impl AuthLayer {
    /// The layer for a node of `cluster`.
    pub fn new(cluster: &str) -> Self {
        AuthLayer {
            cluster: cluster.into(),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            cluster: self.cluster.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    cluster: Arc<str>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        use tracing::Instrument;
        let started = std::time::Instant::now();
        // Label values only from the table, never from the request.
        let (service, method) = split_path(request.uri().path())
            .filter(|(s, m)| !allowed_roles(s, m).is_empty())
            .map(|(s, m)| (s.to_string(), m.to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let request_id = request_id(request.headers());
        // Every log line about this call carries these (the API fills in
        // the registry's transaction ids once it knows them).
        let span = tracing::info_span!("request",
            method = %format_args!("{service}/{method}"),
            request_id = %request_id,
            cl_trid = tracing::field::Empty,
            sv_trid = tracing::field::Empty);
        let done = move |code: tonic::Code| {
            let seconds = started.elapsed().as_secs_f64();
            if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) {
                tracing::warn!(code = ?code, seconds, "call failed on this node");
            } else {
                tracing::debug!(code = ?code, seconds, "call answered");
            }
            crate::telemetry::request(service, method, code, seconds);
        };
        let decision = authorize(
            request.extensions().get::<PeerInfo>(),
            request.uri().path(),
            &self.cluster,
        );
        match decision {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                // The clone is ready only after poll_ready; call the one
                // that was polled and keep the clone for next time.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(
                    async move {
                        let mut response = inner.call(request).await?;
                        undecodable_is_invalid_argument(&mut response);
                        done(grpc_code(&response));
                        set_request_id(&mut response, &request_id);
                        Ok(response)
                    }
                    .instrument(span),
                )
            }
            Err(status) => {
                let _entered = span.enter();
                if let Some(peer) = request.extensions().get::<PeerInfo>() {
                    tracing::warn!(remote = %peer.remote, "refused: {}", status.message());
                }
                done(status.code());
                let mut response = status.into_http();
                set_request_id(&mut response, &request_id);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// Header naming a call for the logs of client and node alike.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id taken from a client.
pub const MAX_REQUEST_ID_CHARS: usize = 64;

/// The client's request id when it sent a usable one (1 to
/// [`MAX_REQUEST_ID_CHARS`] of `A-Z a-z 0-9 . _ -`), else a new random one:
/// nothing else from the request reaches the logs this way.
fn request_id(headers: &http::HeaderMap) -> String {
    let given = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=MAX_REQUEST_ID_CHARS).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    match given {
        Some(id) => id.to_string(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// Tells the client the request id its call was logged under.
fn set_request_id<B>(response: &mut http::Response<B>, id: &str) {
    if let Ok(value) = http::HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

/// The status code of a unary response: an error travels in the headers
/// (a trailers-only response); without one the call succeeded.
fn grpc_code<B>(response: &http::Response<B>) -> tonic::Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

/// tonic answers a request whose bytes do not decode with `INTERNAL` (as
/// gRPC's status code guide has it), which tells an operator the server
/// failed and a client that retrying may help. The client sent a malformed
/// message: the answer is `INVALID_ARGUMENT`, with tonic's message.
fn undecodable_is_invalid_argument<B>(response: &mut http::Response<B>) {
    let headers = response.headers_mut();
    let internal = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"13");
    let undecodable = headers.get("grpc-message").is_some_and(|v| {
        let m = v.as_bytes();
        m.starts_with(b"failed to decode Protobuf message")
            || m.starts_with(b"failed%20to%20decode%20Protobuf%20message")
    });
    if internal && undecodable {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Principal;

    fn peer(uri: &str) -> PeerInfo {
        PeerInfo {
            remote: "127.0.0.1:1".parse().unwrap(),
            tls: Some(Principal::parse(uri).map_err(|e| e.to_string())),
        }
    }

    #[test]
    fn each_role_reaches_only_its_methods() {
        let table = [
            ("kauri://c/node/1", "/kauri.v1.Raft/AppendEntries", true),
            ("kauri://c/gateway/g", "/kauri.v1.Raft/AppendEntries", false),
            ("kauri://c/staff/alice", "/kauri.v1.Raft/Vote", false),
            (
                "kauri://c/registrar/acme",
                "/kauri.v1.Admin/DepositFunds",
                false,
            ),
            (
                "kauri://c/staff/alice",
                "/kauri.v1.Admin/DepositFunds",
                true,
            ),
            (
                "kauri://c/staff/alice",
                "/kauri.v1.Registry/CreateDomain",
                false,
            ),
            (
                "kauri://c/staff/alice",
                "/kauri.v1.Registry/InfoDomain",
                true,
            ),
            (
                "kauri://c/registrar/acme",
                "/kauri.v1.Registry/CreateDomain",
                true,
            ),
            (
                "kauri://c/monitor/prom",
                "/kauri.v1.Cluster/StateDigest",
                true,
            ),
            (
                "kauri://c/monitor/prom",
                "/kauri.v1.Cluster/Snapshot",
                false,
            ),
            (
                "kauri://c/registrar/acme",
                "/kauri.v1.Cluster/StateDigest",
                false,
            ),
            ("kauri://c/registrar/acme", "/kauri.v1.Cluster/Status", true),
            (
                "kauri://c/registrar/acme",
                "/kauri.v1.Admin/VerifyRegistrarPassword",
                false,
            ),
            (
                "kauri://c/gateway/g",
                "/kauri.v1.Admin/VerifyRegistrarPassword",
                true,
            ),
            ("kauri://c/gateway/g", "/kauri.v1.Admin/OpenSession", true),
            (
                "kauri://c/registrar/acme",
                "/kauri.v1.Admin/OpenSession",
                false,
            ),
            (
                "kauri://c/staff/alice",
                "/kauri.v1.Admin/CloseSession",
                false,
            ),
            ("kauri://c/node/1", "/kauri.v1.Admin/Nonexistent", false),
            (
                "kauri://c/monitor/prom",
                "/grpc.health.v1.Health/Check",
                true,
            ),
            (
                "kauri://c/registrar/acme",
                "/grpc.health.v1.Health/Watch",
                true,
            ),
            (
                "kauri://c/node/1",
                "/grpc.health.v1.Health/Nonexistent",
                false,
            ),
            (
                "kauri://c/staff/alice",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                true,
            ),
            (
                "kauri://c/gateway/g",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                true,
            ),
            (
                "kauri://c/monitor/prom",
                "/grpc.reflection.v2.ServerReflection/ServerReflectionInfo",
                false,
            ),
        ];
        for (uri, path, ok) in table {
            let got = authorize(Some(&peer(uri)), path, "c");
            assert_eq!(got.is_ok(), ok, "{uri} {path}: {got:?}");
            if let Err(s) = got {
                assert_eq!(s.code(), Code::PermissionDenied, "{uri} {path}");
                assert!(s.message().contains(path.rsplit('/').next().unwrap()));
            }
        }
    }

    #[test]
    fn a_certificate_of_another_cluster_or_without_principal_is_unauthenticated() {
        let s = authorize(
            Some(&peer("kauri://other/node/1")),
            "/kauri.v1.Raft/Vote",
            "c",
        )
        .unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated);
        assert!(s.message().contains("cluster \"other\""), "{}", s.message());
        let none = PeerInfo {
            remote: "127.0.0.1:1".parse().unwrap(),
            tls: Some(Err("no kauri:// SAN URI".into())),
        };
        let s = authorize(Some(&none), "/kauri.v1.Cluster/Status", "c").unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated);
    }

    #[test]
    fn every_method_of_the_protocol_is_in_the_table() {
        use kauri_proto::v1::{
            admin_server::SERVICE_NAME as ADMIN, cluster_server::SERVICE_NAME as CLUSTER,
            registry_server::SERVICE_NAME as REGISTRY,
        };
        let protos = [
            (ADMIN, include_str!("../../../proto/kauri/v1/admin.proto")),
            (
                CLUSTER,
                include_str!("../../../proto/kauri/v1/cluster.proto"),
            ),
            (
                REGISTRY,
                include_str!("../../../proto/kauri/v1/registry.proto"),
            ),
        ];
        for (service, text) in protos {
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("rpc ") else {
                    continue;
                };
                let method = rest.split('(').next().unwrap().trim();
                assert!(
                    !allowed_roles(service, method).is_empty(),
                    "{service}/{method} has no entry in allowed_roles"
                );
            }
        }
    }
}
