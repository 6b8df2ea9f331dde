//! Mutual TLS for Kauri connections: who a certificate says its holder is
//! (the [`Principal`] in its SAN URI), loading PEM files with errors that
//! name the file, and the client side of a connection (a rustls config that
//! can be reloaded while channels stay up).
//!
//! Every certificate of a Kauri cluster carries exactly one SAN URI of the
//! form `kauri://CLUSTER/ROLE/NAME`:
//!
//! | URI | holder |
//! |---|---|
//! | `kauri://prod/node/3` | node 3 of cluster `prod` |
//! | `kauri://prod/gateway/epp-paris-1` | an EPP/RDAP/WHOIS gateway |
//! | `kauri://prod/registrar/acme` | registrar `acme`'s own tools |
//! | `kauri://prod/staff/alice` | registry staff member `alice` |
//! | `kauri://prod/monitor/prometheus` | a read-only monitor |
//!
//! The cluster name binds a certificate to one cluster, so one CA can serve
//! several clusters (test and production) without a test certificate being
//! accepted by production.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The URI scheme of Kauri principals.
pub const URI_SCHEME: &str = "kauri";
/// Longest principal name (registrar ids, staff names, node ids).
pub const MAX_PRINCIPAL_NAME_CHARS: usize = 64;

/// What a certificate holder may do (see docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A cluster node: Raft and cluster-internal calls.
    Node,
    /// A protocol gateway acting for registrars it has authenticated.
    Gateway,
    /// A registrar's own tools: its own objects, poll queue and ledger.
    Registrar,
    /// Registry staff: TLDs, registrars, funds, server statuses, cases, audit.
    Staff,
    /// Read-only monitoring: cluster status and digests.
    Monitor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Node,
        Role::Gateway,
        Role::Registrar,
        Role::Staff,
        Role::Monitor,
    ];

    /// The role's name in URIs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Gateway => "gateway",
            Role::Registrar => "registrar",
            Role::Staff => "staff",
            Role::Monitor => "monitor",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated identity: the cluster, role and name a certificate's
/// SAN URI names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The cluster the certificate is for.
    pub cluster: String,
    /// The holder's role.
    pub role: Role,
    /// The holder's name within the role (registrar id, staff name, node id).
    pub name: String,
}

impl Principal {
    /// A principal; see [`Principal::parse`] for the rules on the parts.
    pub fn new(cluster: &str, role: Role, name: &str) -> Result<Self, TlsError> {
        let p = Principal {
            cluster: cluster.to_string(),
            role,
            name: name.to_string(),
        };
        p.check()?;
        Ok(p)
    }

    /// Parses `kauri://CLUSTER/ROLE/NAME`. The cluster and name are 1 to 64
    /// characters of letters, digits, `-`, `_` and `.`; a node's name is its
    /// numeric id.
    pub fn parse(uri: &str) -> Result<Self, TlsError> {
        let bad = |why: &str| TlsError::Principal(format!("{}: {why}", shorten(uri)));
        let rest = uri
            .strip_prefix(URI_SCHEME)
            .and_then(|r| r.strip_prefix("://"))
            .ok_or_else(|| bad("not a kauri:// URI"))?;
        let mut parts = rest.split('/');
        let (Some(cluster), Some(role), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected kauri://CLUSTER/ROLE/NAME"));
        };
        let role = Role::parse(role)
            .ok_or_else(|| bad("unknown role (node, gateway, registrar, staff or monitor)"))?;
        Principal::new(cluster, role, name)
    }

    fn check(&self) -> Result<(), TlsError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars().count() <= MAX_PRINCIPAL_NAME_CHARS
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !ok(&self.cluster) {
            return Err(TlsError::Principal(format!(
                "cluster name {:?} is not 1 to {MAX_PRINCIPAL_NAME_CHARS} letters, digits, '-', '_' or '.'",
                shorten(&self.cluster)
            )));
        }
        if !ok(&self.name) {
            return Err(TlsError::Principal(format!(
                "{} name {:?} is not 1 to {MAX_PRINCIPAL_NAME_CHARS} letters, digits, '-', '_' or '.'",
                self.role,
                shorten(&self.name)
            )));
        }
        if self.role == Role::Node && !self.name.parse::<u64>().is_ok_and(|id| id > 0) {
            return Err(TlsError::Principal(format!(
                "node name {:?} is not a node id (1, 2, 3, ...)",
                self.name
            )));
        }
        Ok(())
    }

    /// The SAN URI naming this principal.
    pub fn uri(&self) -> String {
        format!(
            "{URI_SCHEME}://{}/{}/{}",
            self.cluster, self.role, self.name
        )
    }

    /// The node id, for a node principal.
    pub fn node_id(&self) -> Option<u64> {
        (self.role == Role::Node)
            .then(|| self.name.parse().ok())
            .flatten()
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// At most 64 characters of `s`, for error messages about untrusted input.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}… ({} characters)", s.chars().count())
    }
}

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{kind} file {path}: {source}")]
    Read {
        /// What the file should hold ("CA bundle", "certificate", "key").
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's content is not usable.
    #[error("{kind} file {path}: {why}")]
    Invalid {
        /// What the file should hold.
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A certificate names no (or no valid) Kauri principal.
    #[error("principal {0}")]
    Principal(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The three files of a TLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM bundle of the CA certificates peers' certificates must chain to.
    pub ca: PathBuf,
    /// PEM certificate chain of this holder (leaf first).
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// An identity loaded from [`TlsFiles`] and checked: the chain parses, the
/// leaf is valid now, names one principal and matches the key.
pub struct LoadedIdentity {
    /// The CA certificates.
    pub roots: Arc<rustls::RootCertStore>,
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
    /// Who the leaf certificate says its holder is.
    pub principal: Principal,
    /// When the leaf certificate expires, in seconds since the epoch.
    pub not_after_s: i64,
}

impl fmt::Debug for LoadedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("LoadedIdentity")
            .field("principal", &self.principal)
            .field("not_after_s", &self.not_after_s)
            .finish_non_exhaustive()
    }
}

/// The rustls crypto provider Kauri uses everywhere.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(kind: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        kind,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(kind: &'static str, path: &Path, why: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        kind,
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Reads the PEM certificates of `path`.
pub fn load_certs(
    kind: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(kind, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(kind, path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(kind, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// Reads a CA bundle into a root store.
pub fn load_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs("CA bundle", path)? {
        roots
            .add(cert)
            .map_err(|e| invalid("CA bundle", path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// What a certificate says about its holder and validity.
#[derive(Debug, Clone)]
pub struct CertFacts {
    /// The Kauri principal of its SAN URI, or why it has none.
    pub principal: Result<Principal, String>,
    /// Start of validity, seconds since the epoch.
    pub not_before_s: i64,
    /// End of validity, seconds since the epoch.
    pub not_after_s: i64,
}

/// Reads the principal and validity of a DER certificate.
pub fn cert_facts(der: &[u8]) -> Result<CertFacts, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let validity = cert.validity();
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if uri.starts_with(&format!("{URI_SCHEME}:")) {
                    uris.push(uri.to_string());
                }
            }
        }
    }
    let principal = match uris.as_slice() {
        [one] => Principal::parse(one).map_err(|e| e.to_string()),
        [] => Err("the certificate names no principal (no kauri:// SAN URI)".to_string()),
        _ => Err(format!(
            "the certificate names {} principals (kauri:// SAN URIs); it must name one",
            uris.len()
        )),
    };
    Ok(CertFacts {
        principal,
        not_before_s: validity.not_before.timestamp(),
        not_after_s: validity.not_after.timestamp(),
    })
}

/// Seconds since the epoch by the wall clock.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TlsFiles {
    /// Loads and checks the identity: a clear error naming the file when one
    /// is missing, unreadable, not PEM, expired, not yet valid, names no
    /// principal, or does not match its key.
    pub fn load(&self) -> Result<LoadedIdentity, TlsError> {
        let roots = load_roots(&self.ca)?;
        let chain = load_certs("certificate", &self.cert)?;
        let key_pem = read("key", &self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| invalid("key", &self.key, format!("no PEM private key: {e}")))?;
        let facts = cert_facts(&chain[0]).map_err(|why| invalid("certificate", &self.cert, why))?;
        let now = now_s();
        if now < facts.not_before_s {
            return Err(invalid(
                "certificate",
                &self.cert,
                format!(
                    "not valid yet (valid from {})",
                    format_time(facts.not_before_s)
                ),
            ));
        }
        if now > facts.not_after_s {
            return Err(invalid(
                "certificate",
                &self.cert,
                format!("expired at {}", format_time(facts.not_after_s)),
            ));
        }
        let principal = facts
            .principal
            .map_err(|why| invalid("certificate", &self.cert, why))?;
        let signing = provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| invalid("key", &self.key, format!("unusable private key: {e}")))?;
        let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
        certified.keys_match().map_err(|_| {
            invalid(
                "key",
                &self.key,
                format!("does not match the certificate in {}", self.cert.display()),
            )
        })?;
        Ok(LoadedIdentity {
            roots: Arc::new(roots),
            chain,
            key,
            principal,
            not_after_s: facts.not_after_s,
        })
    }
}

/// `seconds` since the epoch as an RFC 3339 UTC time.
pub fn format_time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{seconds} s after the epoch"))
}

/// The client side of mutual TLS: a rustls client config built from
/// [`TlsFiles`], swapped on [`ClientTls::reload`] so that new connections
/// present the new certificate while open ones carry on.
#[derive(Clone)]
pub struct ClientTls {
    files: TlsFiles,
    current: Arc<RwLock<Arc<rustls::ClientConfig>>>,
    principal: Arc<RwLock<Principal>>,
    /// The node id the server's certificate must name, if one is expected.
    expect_node: Option<u64>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// A rustls client config for `identity`: TLS 1.3, h2, server certificates
/// verified against the CA, and the identity's certificate presented.
pub fn client_config(identity: &LoadedIdentity) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(identity.roots.clone())
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

impl ClientTls {
    /// Loads `files` (see [`TlsFiles::load`]).
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let identity = files.load()?;
        let config = client_config(&identity)?;
        Ok(ClientTls {
            files,
            current: Arc::new(RwLock::new(Arc::new(config))),
            principal: Arc::new(RwLock::new(identity.principal)),
            expect_node: None,
        })
    }

    /// The same identity, for connections to node `id` only: a server
    /// whose certificate names another node is refused (a peer link must
    /// reach the peer it was meant for).
    pub fn expecting_node(&self, id: u64) -> ClientTls {
        ClientTls {
            expect_node: Some(id),
            ..self.clone()
        }
    }

    /// Checks the server's certificate beyond the CA's signature: it must
    /// name a node of this identity's cluster (and the expected node, if
    /// one is).
    fn check_server(
        &self,
        stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ) -> std::io::Result<()> {
        let refuse = |why: String| {
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("the server's certificate is refused: {why}"),
            )
        };
        let der = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| refuse("the server presented none".into()))?;
        let server = cert_facts(der).map_err(refuse)?.principal.map_err(refuse)?;
        let own = self.principal();
        if server.role != Role::Node || server.cluster != own.cluster {
            return Err(refuse(format!(
                "it names {server}, not a node of cluster {:?}",
                own.cluster
            )));
        }
        if let Some(id) = self.expect_node {
            if server.node_id() != Some(id) {
                return Err(refuse(format!("it names {server}, not node {id}")));
            }
        }
        Ok(())
    }

    /// Reads the files again; on success new connections use them. On
    /// error the previous identity stays in use.
    pub fn reload(&self) -> Result<Principal, TlsError> {
        let identity = self.files.load()?;
        let config = client_config(&identity)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        let principal = identity.principal.clone();
        *self.principal.write().unwrap_or_else(|p| p.into_inner()) = identity.principal;
        Ok(principal)
    }

    /// Who this identity is.
    pub fn principal(&self) -> Principal {
        self.principal
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The files the identity is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    fn config(&self) -> Arc<rustls::ClientConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Opens a TLS connection to `host:port`, verifying the server's
    /// certificate for `host` (an IP address or DNS name).
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        connect_timeout: Duration,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|e| std::io::Error::other(format!("server name {host:?}: {e}")))?
            .to_owned();
        let connector = tokio_rustls::TlsConnector::from(self.config());
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((
                host.trim_start_matches('[').trim_end_matches(']'),
                port,
            ))
            .await?;
            tcp.set_nodelay(true)?;
            let stream = connector.connect(name, tcp).await?;
            self.check_server(&stream)?;
            Ok(stream)
        };
        tokio::time::timeout(connect_timeout, connect)
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("TLS connect to {host}:{port} timed out"),
                )
            })?
    }
}

/// A lazily connected gRPC channel to `addr` (HOST:PORT, optionally with an
/// `http://` or `https://` prefix): over mutual TLS with `tls`, in plain
/// text without.
pub fn channel(
    addr: &str,
    tls: Option<&ClientTls>,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, String> {
    let host_port = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{host_port}"))
        .map_err(|e| format!("bad endpoint {addr:?}: {e}"))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    let Some(tls) = tls else {
        return Ok(endpoint.connect_lazy());
    };
    let tls = tls.clone();
    let connector = tower::service_fn(move |uri: http::Uri| {
        let tls = tls.clone();
        async move {
            let host = uri
                .host()
                .ok_or_else(|| std::io::Error::other(format!("endpoint {uri} has no host")))?
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let stream = tls.connect(&host, port, connect_timeout).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_round_trip_through_their_uri() {
        let p = Principal::new("prod", Role::Registrar, "acme").unwrap();
        assert_eq!(p.uri(), "kauri://prod/registrar/acme");
        assert_eq!(Principal::parse(&p.uri()).unwrap(), p);
        assert_eq!(
            Principal::parse("kauri://prod/node/3").unwrap().node_id(),
            Some(3)
        );
    }

    #[test]
    fn malformed_principals_are_refused_with_the_reason() {
        for (uri, why) in [
            ("https://prod/node/3", "not a kauri:// URI"),
            ("kauri://prod/node", "expected kauri://CLUSTER/ROLE/NAME"),
            (
                "kauri://prod/node/3/x",
                "expected kauri://CLUSTER/ROLE/NAME",
            ),
            ("kauri://prod/root/alice", "unknown role"),
            ("kauri://prod/node/alice", "not a node id"),
            ("kauri://prod/node/0", "not a node id"),
            ("kauri:///staff/alice", "cluster name"),
            ("kauri://prod/staff/al ice", "staff name"),
        ] {
            let e = Principal::parse(uri).unwrap_err().to_string();
            assert!(e.contains(why), "{uri}: {e}");
        }
        let long = format!("kauri://prod/staff/{}", "a".repeat(10_000));
        let e = Principal::parse(&long).unwrap_err().to_string();
        assert!(e.len() < 300, "the error echoes at most a prefix: {e}");
    }
}
