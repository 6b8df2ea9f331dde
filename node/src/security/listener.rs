//! The node's listening socket: TLS handshakes (mutual, TLS 1.3) with a
//! deadline, caps on connections in all and per source address, and the
//! certificate the node presents, reloaded on SIGHUP or when its files
//! change without harming open connections.
//!
//! Each accepted connection carries a [`PeerInfo`] (its address and the
//! principal its certificate names) that tonic hands to every request on it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use kauri_client::tls::{cert_facts, ClientTls, LoadedIdentity, Principal, Role, TlsFiles};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::Connected;

/// Connections a node keeps open at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one source address may keep open at once.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// A TLS handshake must finish within this, or the socket is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes in progress at once; accepting waits beyond this.
pub const MAX_PENDING_HANDSHAKES: usize = 128;
/// Handshakes in progress at once from one source address; more are closed
/// on accept. Without it, two addresses dribbling handshakes (64 each, the
/// per-address connection cap) would hold every pending slot and stall
/// accepting for all clients; now that takes 16 addresses.
pub const MAX_PENDING_HANDSHAKES_PER_ADDRESS: usize = 8;
/// How often the node looks at its certificate files for changes.
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(10);

const _: () = assert!(MAX_CONNECTIONS_PER_ADDRESS <= MAX_CONNECTIONS);
const _: () = assert!(MAX_PENDING_HANDSHAKES <= MAX_CONNECTIONS);
const _: () = assert!(MAX_PENDING_HANDSHAKES_PER_ADDRESS <= MAX_CONNECTIONS_PER_ADDRESS);
const _: () = assert!(MAX_PENDING_HANDSHAKES_PER_ADDRESS < MAX_PENDING_HANDSHAKES);

/// What the server knows about the other end of a connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer's socket address.
    pub remote: SocketAddr,
    /// `None` on a plain-text listener; on a TLS listener the principal the
    /// client certificate names, or why it names none usable.
    pub tls: Option<Result<Principal, String>>,
}

/// A node's TLS identity and trust: the server config new connections get,
/// the client identity it dials peers with, and the loaded certificate's
/// expiry. Reloadable.
pub struct NodeTls {
    files: TlsFiles,
    cluster: String,
    node_id: u64,
    server: RwLock<Arc<rustls::ServerConfig>>,
    /// The metrics listener's (client certificate optional, HTTP/1.1).
    metrics: RwLock<Arc<rustls::ServerConfig>>,
    client: ClientTls,
    state: RwLock<CertState>,
    loaded_mtimes: Mutex<Vec<Option<SystemTime>>>,
}

/// The certificate in use.
#[derive(Debug, Clone)]
pub struct CertState {
    /// Its principal.
    pub principal: Principal,
    /// When it expires, seconds since the epoch.
    pub not_after_s: i64,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("files", &self.files)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// The server side of the node's gRPC port (`client_optional` false: a
/// client certificate is required; HTTP/2) or of its metrics listener
/// (`client_optional` true: probes come without one, and `/metrics` asks
/// for it; HTTP/1.1).
fn server_config(
    identity: &LoadedIdentity,
    client_optional: bool,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = kauri_client::tls::provider();
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(identity.roots.clone(), provider.clone());
    if client_optional {
        verifier = verifier.allow_unauthenticated();
    }
    let verifier = verifier
        .build()
        .map_err(|e| anyhow::anyhow!("client certificate verifier: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| anyhow::anyhow!("TLS versions: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| anyhow::anyhow!("server certificate: {e}"))?;
    config.alpn_protocols = if client_optional {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec()]
    };
    Ok(config)
}

fn mtimes(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    [&files.ca, &files.cert, &files.key]
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl NodeTls {
    /// Loads the node's identity from `files` and checks that it is node
    /// `node_id` of cluster `cluster`.
    pub fn load(files: TlsFiles, cluster: &str, node_id: u64) -> anyhow::Result<Self> {
        let stamp = mtimes(&files);
        let (server, metrics, state) = Self::read(&files, cluster, node_id)?;
        let client = ClientTls::load(files.clone())?;
        Ok(NodeTls {
            files,
            cluster: cluster.to_string(),
            node_id,
            server: RwLock::new(Arc::new(server)),
            metrics: RwLock::new(Arc::new(metrics)),
            client,
            state: RwLock::new(state),
            loaded_mtimes: Mutex::new(stamp),
        })
    }

    fn read(
        files: &TlsFiles,
        cluster: &str,
        node_id: u64,
    ) -> anyhow::Result<(rustls::ServerConfig, rustls::ServerConfig, CertState)> {
        let identity = files.load()?;
        let expected = Principal::new(cluster, Role::Node, &node_id.to_string())?;
        if identity.principal != expected {
            anyhow::bail!(
                "certificate file {} names {}, but this is node {node_id} of cluster {cluster} \
                 (it must name {expected})",
                files.cert.display(),
                identity.principal
            );
        }
        let server = server_config(&identity, false)?;
        let metrics = server_config(&identity, true)?;
        Ok((
            server,
            metrics,
            CertState {
                principal: identity.principal,
                not_after_s: identity.not_after_s,
            },
        ))
    }

    /// Reads the files again. On success new connections (in and out) use
    /// the new certificate; open ones carry on with the old. On error
    /// nothing changes and the error says why.
    pub fn reload(&self) -> anyhow::Result<CertState> {
        let stamp = mtimes(&self.files);
        let (server, metrics, state) = Self::read(&self.files, &self.cluster, self.node_id)?;
        self.client.reload()?;
        *self.server.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(server);
        *self.metrics.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(metrics);
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state.clone();
        *self.loaded_mtimes.lock().unwrap_or_else(|p| p.into_inner()) = stamp;
        Ok(state)
    }

    /// Whether any of the files changed since they were last loaded.
    fn files_changed(&self) -> bool {
        let now = mtimes(&self.files);
        *self.loaded_mtimes.lock().unwrap_or_else(|p| p.into_inner()) != now
    }

    /// The certificate in use.
    pub fn state(&self) -> CertState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The identity the node dials its peers with.
    pub fn client(&self) -> &ClientTls {
        &self.client
    }

    /// The cluster this node belongs to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.server
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// The acceptor of the metrics listener (`--metrics-tls`): the node's
    /// certificate, HTTP/1.1, a client certificate of the CA optional.
    pub fn metrics_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.metrics
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// Reloads on SIGHUP and when the files change, until the process ends.
    pub async fn watch(self: Arc<Self>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP ({e}); reloading only on file changes");
                None
            }
        };
        let mut poll = tokio::time::interval(RELOAD_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let why = tokio::select! {
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => "SIGHUP",
                _ = poll.tick() => {
                    if !self.files_changed() { continue; }
                    "the certificate files changed"
                }
            };
            match self.reload() {
                Ok(state) => tracing::info!(
                    principal = %state.principal,
                    not_after = %kauri_client::tls::format_time(state.not_after_s),
                    "reloaded the TLS certificate ({why})"
                ),
                Err(e) => tracing::error!(
                    "TLS certificate not reloaded ({why}); still serving the previous one: {e:#}"
                ),
            }
        }
    }
}

/// Counts something (open connections, pending handshakes) per source
/// address, up to a limit each.
struct PerAddress {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One unit of an address's count, given back on drop.
struct AddressSlot {
    ip: IpAddr,
    per_address: Arc<PerAddress>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self
            .per_address
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl PerAddress {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(PerAddress {
            limit,
            counts: Mutex::default(),
        })
    }

    /// A unit of `ip`'s count, unless it is at the limit.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            ip,
            per_address: self.clone(),
        })
    }
}

/// Held for a connection's life: its slot in the connection cap and in its
/// address's count.
struct Slot {
    _permit: OwnedSemaphorePermit,
    _address: AddressSlot,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted connection (plain or TLS) with its [`PeerInfo`].
pub struct Conn {
    io: Io,
    info: PeerInfo,
    _slot: Slot,
}

impl Connected for Conn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The principal of the client certificate of an accepted TLS connection.
pub fn peer_principal(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
) -> Result<Principal, String> {
    let (_, session) = tls.get_ref();
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| "no client certificate".to_string())?;
    cert_facts(cert)?.principal
}

/// Accepts connections on `listener` (TLS with `tls`, plain text without)
/// and yields them to the gRPC server once their handshake is done.
/// Over-limit connections and failed or slow handshakes are closed here and
/// never reach the server.
pub fn accept(
    listener: TcpListener,
    tls: Option<Arc<NodeTls>>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(MAX_PENDING_HANDSHAKES);
    tokio::spawn(async move {
        let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
        let per_address = PerAddress::new(MAX_CONNECTIONS_PER_ADDRESS);
        let handshakes_per_address = PerAddress::new(MAX_PENDING_HANDSHAKES_PER_ADDRESS);
        let mut refused_logged = tokio::time::Instant::now() - Duration::from_secs(60);
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            let slot = open.clone().try_acquire_owned().ok().and_then(|permit| {
                per_address.take(remote.ip()).map(|address| Slot {
                    _permit: permit,
                    _address: address,
                })
            });
            let Some(slot) = slot else {
                if refused_logged.elapsed() > Duration::from_secs(10) {
                    refused_logged = tokio::time::Instant::now();
                    tracing::warn!(
                        %remote,
                        "connection refused: over {MAX_CONNECTIONS} connections, or over \
                         {MAX_CONNECTIONS_PER_ADDRESS} from one address (logged once per 10 s)"
                    );
                }
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let Some(tls) = tls.clone() else {
                let conn = Conn {
                    io: Io::Plain(tcp),
                    info: PeerInfo { remote, tls: None },
                    _slot: slot,
                };
                if tx.send(Ok(conn)).await.is_err() {
                    return;
                }
                continue;
            };
            let Some(handshaking) = handshakes_per_address.take(remote.ip()) else {
                if refused_logged.elapsed() > Duration::from_secs(10) {
                    refused_logged = tokio::time::Instant::now();
                    tracing::warn!(
                        %remote,
                        "connection refused: over {MAX_PENDING_HANDSHAKES_PER_ADDRESS} TLS \
                         handshakes pending from one address (logged once per 10 s)"
                    );
                }
                drop(tcp);
                continue;
            };
            let Ok(handshake_permit) = handshakes.clone().acquire_owned().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let _handshake_permit = handshake_permit;
                let acceptor = tls.acceptor();
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                // Done (or failed): the address may start another.
                drop(handshaking);
                match handshake {
                    Ok(Ok(stream)) => {
                        let principal = peer_principal(&stream);
                        let conn = Conn {
                            io: Io::Tls(Box::new(stream)),
                            info: PeerInfo {
                                remote,
                                tls: Some(principal),
                            },
                            _slot: slot,
                        };
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%remote, "TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(
                        %remote,
                        "TLS handshake not done within {} s; closed",
                        HANDSHAKE_TIMEOUT.as_secs()
                    ),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
