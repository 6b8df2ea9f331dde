//! The EPP server: TLS on the EPP port, one task per connection, each
//! connection one EPP session (greeting, login, commands, logout), the
//! registrar's rights checked by the cluster through the session the login
//! opened there.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kauri_client::proto::{CloseSessionRequest, OpenSessionRequest, Reason};
use kauri_client::KauriClient;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::codes::Code;
use crate::epp::{self, Command, Login};
use crate::render::{self, Response};
use crate::session::{local_sv_trid, refused, Ctx, Session};
use crate::{frame, observe, xml};

/// How the gateway serves.
#[derive(Clone)]
pub struct Config {
    /// The server id the greeting names.
    pub server_id: String,
    /// The TLS server configuration (certificate; client certificates if
    /// asked for).
    pub tls: Arc<rustls::ServerConfig>,
    /// The cluster, as this gateway's identity.
    pub cluster: KauriClient,
    /// Largest frame accepted, bytes (header included).
    pub max_frame_bytes: u32,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Time a client has for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Most sessions one registrar holds on this gateway at once.
    pub max_sessions_per_registrar: usize,
    /// Most connections at once.
    pub max_connections: usize,
    /// Failed logins on one connection before it is closed (2501).
    pub max_failed_logins: u32,
    /// Registrars bound to client certificates.
    pub registrar_certs: crate::tls::RegistrarCerts,
    /// How `<check>` commands read.
    pub checks: Arc<crate::session::CheckReads>,
}

/// Sessions per registrar on this gateway.
#[derive(Default)]
struct Sessions(Mutex<HashMap<String, usize>>);

impl Sessions {
    /// Takes a place for `registrar` unless it holds `max` already.
    fn take(&self, registrar: &str, max: usize) -> bool {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(registrar.to_string()).or_default();
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    fn give_back(&self, registrar: &str) {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(registrar) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(registrar);
            }
        }
    }
}

/// Serves EPP on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: Config) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config.tls.clone());
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let sessions = Arc::new(Sessions::default());
    let config = Arc::new(config);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: at the connection limit");
            observe::closed("connection_limit");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, config, sessions) = (acceptor.clone(), config.clone(), sessions.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut tls =
                match tokio::time::timeout(config.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::info!(%peer, "TLS handshake failed: {e}");
                        observe::closed("tls");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%peer, "TLS handshake timed out");
                        observe::closed("tls");
                        return;
                    }
                };
            observe::connections(1.0);
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| crate::tls::fingerprint(c));
            let mut conn = Connection {
                config: &config,
                sessions: &sessions,
                peer,
                client_cert,
                session: None,
                failed_logins: 0,
            };
            let reason = conn.run(&mut tls).await;
            // The session is closed (and its place given back) before the
            // client sees the connection close.
            conn.end().await;
            drop(tls);
            observe::connections(-1.0);
            observe::closed(reason);
        });
    }
}

struct Connection<'a> {
    config: &'a Config,
    sessions: &'a Sessions,
    peer: SocketAddr,
    /// The SHA-256 fingerprint of the client's certificate, if it sent one.
    client_cert: Option<String>,
    session: Option<Session>,
    failed_logins: u32,
}

impl Connection<'_> {
    /// Serves the connection until it ends; why it ended.
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(&mut self, stream: &mut S) -> &'static str {
        let greeting = render::greeting(&self.config.server_id, chrono::Utc::now());
        if frame::write(stream, greeting.as_bytes()).await.is_err() {
            return "client";
        }
        loop {
            let read = frame::read(stream, self.config.max_frame_bytes);
            let data = match tokio::time::timeout(self.config.idle_timeout, read).await {
                Err(_) => {
                    tracing::info!(peer = %self.peer, "idle timeout: closing the connection");
                    return "idle";
                }
                Ok(Err(frame::FrameError::Closed)) => return "client",
                Ok(Err(e)) => {
                    tracing::info!(peer = %self.peer, "closing the connection: {e}");
                    return "framing";
                }
                Ok(Ok(data)) => data,
            };
            let (reply, close) = self.answer(&data).await;
            if frame::write(stream, reply.as_bytes()).await.is_err() {
                return "client";
            }
            if close {
                return "result";
            }
        }
    }

    /// The reply to one frame, and whether to close the connection after it.
    async fn answer(&mut self, data: &[u8]) -> (String, bool) {
        let began = std::time::Instant::now();
        let parsed = xml::parse(data)
            .map_err(|e| epp::Refusal {
                code: Code::SYNTAX_ERROR,
                detail: e.to_string(),
                cl_trid: None,
            })
            .and_then(|root| epp::parse(&root));
        let parsed = match parsed {
            Ok(p) => p,
            Err(r) => {
                tracing::info!(peer = %self.peer, code = r.code.0, "refused: {}", r.detail);
                observe::command("unparsed", r.code.0, began.elapsed());
                let response = Response::new(r.code, r.cl_trid, local_sv_trid()).detail(r.detail);
                return (response.render(), false);
            }
        };
        if parsed.command == Command::Hello {
            return (
                render::greeting(&self.config.server_id, chrono::Utc::now()),
                false,
            );
        }
        let cl_trid = parsed.cl_trid.clone();
        let name = parsed.command.name();
        let response = self.execute(parsed).await;
        tracing::info!(
            peer = %self.peer,
            registrar = self.session.as_ref().map(|s| s.registrar.as_str()).unwrap_or(""),
            command = name,
            cl_trid = cl_trid.as_deref().unwrap_or(""),
            sv_trid = %response.sv_trid,
            code = response.code.0,
            "epp command"
        );
        observe::command(name, response.code.0, began.elapsed());
        let close = response.code.closes();
        (response.render(), close)
    }

    async fn execute(&mut self, parsed: epp::Parsed) -> Response {
        let cl_trid = parsed.cl_trid;
        let refuse = |code: Code, detail: String| {
            Response::new(code, cl_trid.clone(), local_sv_trid()).detail(detail)
        };
        match (parsed.command, &self.session) {
            (Command::Hello, _) => refuse(Code::FAILED, "hello is answered with a greeting".into()),
            (Command::Login(_), Some(s)) => refuse(
                Code::USE_ERROR,
                format!("already logged in as {}; log out first", s.registrar),
            ),
            (Command::Login(login), None) => self.login(login, cl_trid).await,
            (_, None) => refuse(Code::USE_ERROR, "log in first".into()),
            (Command::Logout, Some(_)) => self.logout(cl_trid).await,
            (Command::Op(op), Some(session)) => {
                let ctx = Ctx::new(session, cl_trid);
                let response = op.run(&ctx).await;
                if ctx.session_ended() {
                    // Expired or closed in the cluster: this connection is
                    // logged out, and may log in again.
                    self.log_out();
                }
                response
            }
        }
    }

    async fn login(&mut self, login: Login, cl_trid: Option<String>) -> Response {
        let registrar = login.client_id.clone();
        if let Some(why) = self
            .config
            .registrar_certs
            .refusal(&registrar, self.client_cert.as_deref())
        {
            tracing::warn!(peer = %self.peer, registrar, "login refused: {why}");
            return self.failed_login(cl_trid, why);
        }
        if !self
            .sessions
            .take(&registrar, self.config.max_sessions_per_registrar)
        {
            return Response::new(Code::SESSION_LIMIT, cl_trid, local_sv_trid()).detail(format!(
                "{registrar} holds {} sessions on this gateway already",
                self.config.max_sessions_per_registrar
            ));
        }
        // A login is not retried by clTRID: each opens a new session, so
        // the cluster gets a key of its own.
        let request = OpenSessionRequest {
            meta: Some(kauri_client::meta(&registrar)),
            password: login.password,
            lifetime_seconds: 24 * 3600,
            client_address: self.peer.ip().to_string(),
            new_password: login.new_password.unwrap_or_default(),
        };
        match self.config.cluster.open_session(request).await {
            Ok(opened) => match self.config.cluster.in_session(&opened.token) {
                Ok(client) => {
                    let sv_trid = opened.tx.map(|t| t.sv_trid).unwrap_or_else(local_sv_trid);
                    self.session = Some(Session {
                        registrar,
                        client,
                        checks: self.config.checks.clone(),
                    });
                    observe::sessions(1.0);
                    Response::new(Code::OK, cl_trid, sv_trid)
                }
                Err(e) => {
                    self.sessions.give_back(&registrar);
                    refused(&e, cl_trid)
                }
            },
            Err(e) => {
                self.sessions.give_back(&registrar);
                if e.reason == Reason::AuthenticationFailed {
                    return self.failed_login(cl_trid, "wrong client id or password".into());
                }
                refused(&e, cl_trid)
            }
        }
    }

    /// A refused login (2200), counted: the last one allowed closes the
    /// connection (2501).
    fn failed_login(&mut self, cl_trid: Option<String>, why: String) -> Response {
        self.failed_logins += 1;
        let code = if self.failed_logins >= self.config.max_failed_logins {
            Code::AUTHENTICATION_CLOSING
        } else {
            Code::AUTHENTICATION
        };
        Response::new(code, cl_trid, local_sv_trid()).detail(why)
    }

    async fn logout(&mut self, cl_trid: Option<String>) -> Response {
        let sv_trid = match self.close_session().await {
            Some(t) => t,
            None => local_sv_trid(),
        };
        Response::new(Code::ENDING_SESSION, cl_trid, sv_trid)
    }

    /// Ends this connection's session at the gateway (its place back, the
    /// gauge down); the session, if there was one.
    fn log_out(&mut self) -> Option<Session> {
        let session = self.session.take()?;
        self.sessions.give_back(&session.registrar);
        observe::sessions(-1.0);
        Some(session)
    }

    /// Closes the cluster session, if one is open; its svTRID.
    async fn close_session(&mut self) -> Option<String> {
        let session = self.log_out()?;
        let closed = session
            .client
            .close_session(CloseSessionRequest {
                meta: Some(kauri_client::meta(&session.registrar)),
            })
            .await;
        match closed {
            Ok(r) => r.tx.map(|t| t.sv_trid),
            Err(e) => {
                tracing::warn!(registrar = %session.registrar, "closing the session: {e}");
                None
            }
        }
    }

    /// After the connection: a session the client did not log out of is
    /// closed in the cluster too.
    async fn end(&mut self) {
        if self.session.is_some() {
            self.close_session().await;
        }
    }
}
