//! The actor a request names is the authenticated principal, never a
//! claim: a registrar certificate acts as that registrar, a staff
//! certificate as that staff member, and a gateway certificate as the
//! registrar of the session its token names, which must be a session this
//! gateway opened and which has not expired. Each request type says where
//! its actor slot is ([`Acting`]); [`bind`] fills an empty slot with the
//! principal's name and refuses one that names somebody else. Over plain
//! text (`--insecure-plaintext`) the slot is taken as given.

use kauri_client::tls::shorten;
use kauri_proto::v1::{self, Reason};
use tonic::{Code, Status};

use super::session::{self, SessionLookup, SESSION_HEADER};
use super::{refuse, Caller, Role};
use crate::registry::StateRead;

/// Who delivered a bound request besides its actor: the gateway's
/// certificate name when a gateway calls, empty for direct calls. Proposals
/// carry it, and the audit trail records it beside the actor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Via(String);

impl Via {
    /// The gateway's name, or "" for a direct call.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose name a request's actor slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A registrar command (`meta.actor` is the registrar).
    Registrar,
    /// A registrar read (`registrar` is who asks; it decides what is shown).
    RegistrarRead,
    /// A registrar's own account (`id`): registrars may read only theirs.
    OwnAccount,
    /// A staff command (`meta.actor` is the staff member).
    Staff,
    /// No actor: the method's role check is all there is.
    None,
}

/// A request with an actor slot.
pub trait Acting {
    /// Whose name the slot holds.
    const SLOT: Slot;
    /// The slot's field name and value, if the request has one.
    fn slot(&mut self) -> Option<(&'static str, &mut String)>;
}

macro_rules! acting_meta {
    ($slot:ident: $($t:ident),* $(,)?) => {$(
        impl Acting for v1::$t {
            const SLOT: Slot = Slot::$slot;
            fn slot(&mut self) -> Option<(&'static str, &mut String)> {
                // A missing meta is refused later with "meta is missing".
                self.meta.as_mut().map(|m| ("meta.actor", &mut m.actor))
            }
        }
    )*};
}

macro_rules! acting_field {
    ($slot:ident, $field:ident: $($t:ident),* $(,)?) => {$(
        impl Acting for v1::$t {
            const SLOT: Slot = Slot::$slot;
            fn slot(&mut self) -> Option<(&'static str, &mut String)> {
                Some((stringify!($field), &mut self.$field))
            }
        }
    )*};
}

macro_rules! acting_none {
    ($($t:ident),* $(,)?) => {$(
        impl Acting for v1::$t {
            const SLOT: Slot = Slot::None;
            fn slot(&mut self) -> Option<(&'static str, &mut String)> {
                None
            }
        }
    )*};
}

acting_meta!(Registrar:
    CreateDomainRequest, UpdateDomainRequest, RenewDomainRequest, DeleteRequest,
    TransferDomainRequest, RestoreDomainRequest, AckPollRequest, CreateContactRequest,
    UpdateContactRequest, CreateHostRequest, UpdateHostRequest, TransferContactRequest,
);
acting_field!(RegistrarRead, registrar: CheckRequest, InfoRequest, TransferQueryRequest, PollRequest);
acting_field!(OwnAccount, id: InfoRegistrarRequest);
acting_meta!(Staff:
    CreateTldRequest, UpdateTldRequest, CreateRegistrarRequest, DepositFundsRequest,
    UpdateRegistrarRequest, SetServerStatusRequest, SetHostServerStatusRequest,
    SetContactServerStatusRequest, OpenCaseRequest, UpdateCaseRequest,
);
acting_meta!(Registrar: CloseSessionRequest);
acting_none!(
    InfoTldRequest,
    VerifyRegistrarPasswordRequest,
    // The registrar is authenticated by its password, not by a session.
    OpenSessionRequest,
    InfoCaseRequest,
    AuditQueryRequest,
    AdvanceTestClockRequest,
);

fn denied(message: String) -> Status {
    refuse(Code::PermissionDenied, Reason::NotAuthorized, message)
}

fn no_session(message: String) -> Status {
    refuse(Code::Unauthenticated, Reason::SessionInvalid, message)
}

/// The registrar `gateway` acts for in the session `lookup` found, at
/// registry time `now_ms`; a refusal names why without echoing the token.
fn session_registrar<'s>(
    gateway: &str,
    lookup: &'s SessionLookup,
    now_ms: i64,
) -> Result<&'s str, Status> {
    let session = match lookup {
        SessionLookup::Missing => {
            return Err(no_session(format!(
                "gateway {gateway} may act for a registrar only within a session: open one with \
                 OpenSession (the registrar's password) and send its token in the \
                 {SESSION_HEADER} header"
            )))
        }
        SessionLookup::Malformed => {
            return Err(no_session(format!(
                "the {SESSION_HEADER} header is not a session token (64 hex digits)"
            )))
        }
        SessionLookup::Unknown => {
            return Err(no_session(format!(
                "the {SESSION_HEADER} token is not an open session (closed, expired or never \
                 opened); log in again"
            )))
        }
        SessionLookup::Found(session) => session,
    };
    if session.gateway != gateway {
        // A token used by a gateway that did not open it: stolen, or
        // misrouted. Worth an operator's look.
        tracing::warn!(gateway, session = %session.id, registrar = %session.registrar,
            "refused a session token issued to another gateway");
        return Err(no_session(format!(
            "the {SESSION_HEADER} token was issued to another gateway, not to gateway {gateway}"
        )));
    }
    if session.expires_ms <= now_ms {
        return Err(no_session(format!(
            "the session of registrar {} expired at {} ms (now {now_ms} ms); log in again",
            session.registrar, session.expires_ms
        )));
    }
    Ok(&session.registrar)
}

/// Binds `request`'s actor slot to `caller`: fills it when empty, refuses
/// it when it names somebody other than the caller. A gateway acts as the
/// registrar of `session` (what its token led to), if that session is its
/// own and unexpired at `now_ms`. Returns who delivered the request.
pub fn bind<T: Acting>(
    caller: &Caller,
    session: &SessionLookup,
    now_ms: i64,
    request: &mut T,
) -> Result<Via, Status> {
    let Caller::Principal(principal) = caller else {
        return Ok(Via::default());
    };
    let via = match principal.role {
        Role::Gateway => Via(principal.name.clone()),
        _ => Via::default(),
    };
    let slot = T::SLOT;
    let Some((field, claimed)) = request.slot() else {
        return Ok(via);
    };
    let own = match (slot, principal.role) {
        (Slot::Registrar | Slot::RegistrarRead | Slot::OwnAccount, Role::Registrar)
        | (Slot::Staff, Role::Staff) => principal.name.as_str(),
        // Staff read the registry as the public does: no registrar's view.
        (Slot::RegistrarRead, Role::Staff) => "",
        // Staff read any account.
        (Slot::OwnAccount, Role::Staff) => return Ok(via),
        (Slot::Registrar | Slot::RegistrarRead | Slot::OwnAccount, Role::Gateway) => {
            session_registrar(&principal.name, session, now_ms)?
        }
        (Slot::None, _) => return Ok(via),
        (_, role) => {
            // The policy table keeps these out; refuse rather than guess.
            return Err(denied(format!(
                "{role} {} cannot act in {field}",
                principal.name
            )));
        }
    };
    if claimed.is_empty() {
        claimed.push_str(own);
        return Ok(via);
    }
    if claimed != own {
        let acts_as = if own.is_empty() {
            "no registrar (the public view)".to_string()
        } else {
            format!("{own:?}")
        };
        let who = match principal.role {
            Role::Gateway => format!("the session of gateway {}", principal.name),
            _ => format!("the client certificate ({principal})"),
        };
        return Err(denied(format!(
            "{field} is {:?}, but {who} acts as {acts_as}; \
             leave {field} empty or name the {}'s own principal",
            shorten(claimed),
            if principal.role == Role::Gateway {
                "session"
            } else {
                "certificate"
            },
        )));
    }
    Ok(via)
}

/// The caller of a request, as [`super::policy::AuthLayer`] established it.
pub fn caller<T>(request: &tonic::Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        // Without the layer (unit tests of handlers) nothing was
        // authenticated: the same as plain text.
        .unwrap_or(Caller::Unauthenticated)
}

/// Takes the request out of its envelope with its actor bound to the
/// caller, a gateway's session looked up in `state` and judged at
/// `now_ms`; and who delivered it.
pub fn bound<T: Acting>(
    request: tonic::Request<T>,
    state: &dyn StateRead,
    now_ms: i64,
) -> Result<(T, Via), Status> {
    let caller = caller(&request);
    let lookup = match &caller {
        Caller::Principal(p) if p.role == Role::Gateway && T::SLOT != Slot::None => {
            session::lookup(state, request.metadata())?
        }
        _ => SessionLookup::Missing,
    };
    let mut inner = request.into_inner();
    let via = bind(&caller, &lookup, now_ms, &mut inner)?;
    Ok((inner, via))
}

/// Where a request comes from, for throttling and logs: the caller and
/// its address (`client_address` when a gateway names the address of the
/// client it serves, the socket's otherwise). A named address keeps only
/// the characters of an IP address or host name, at most
/// [`MAX_CLIENT_ADDRESS_CHARS`], so it cannot forge log lines or grow the
/// throttle table's keys.
pub fn source<T>(request: &tonic::Request<T>, client_address: &str) -> String {
    let caller = caller(request);
    let who = match &caller {
        Caller::Unauthenticated => "plain-text".to_string(),
        Caller::Principal(p) => format!("{}/{}", p.role, p.name),
    };
    if let Caller::Principal(p) = &caller {
        if p.role == Role::Gateway && !client_address.is_empty() {
            let address: String = client_address
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || ".:-[]%".contains(*c))
                .take(MAX_CLIENT_ADDRESS_CHARS)
                .collect();
            return format!("{who} for client {address}");
        }
    }
    let remote = request
        .extensions()
        .get::<super::listener::PeerInfo>()
        .map(|p| p.remote.ip().to_string())
        .or_else(|| request.remote_addr().map(|a| a.ip().to_string()))
        .unwrap_or_else(|| "unknown".into());
    format!("{who} at {remote}")
}

/// Longest client address a gateway may name for throttling.
pub const MAX_CLIENT_ADDRESS_CHARS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Principal;

    fn as_(uri: &str) -> Caller {
        Caller::Principal(Principal::parse(uri).unwrap())
    }

    fn create(actor: &str) -> v1::CreateDomainRequest {
        v1::CreateDomainRequest {
            meta: Some(v1::RequestMeta {
                actor: actor.into(),
                cl_trid: "abc-1".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_registrar_acts_as_itself_and_never_as_another() {
        let acme = as_("kauri://c/registrar/acme");
        let mut r = create("");
        bind(&acme, &SessionLookup::Missing, 0, &mut r).unwrap();
        assert_eq!(r.meta.unwrap().actor, "acme", "an empty actor is filled in");
        bind(&acme, &SessionLookup::Missing, 0, &mut create("acme")).unwrap();
        let e = bind(&acme, &SessionLookup::Missing, 0, &mut create("victim")).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        assert!(e.message().contains("\"victim\""), "{}", e.message());
        let mut read = v1::InfoRequest {
            registrar: "victim".into(),
            ..Default::default()
        };
        assert!(bind(&acme, &SessionLookup::Missing, 0, &mut read).is_err());
    }

    #[test]
    fn a_huge_claimed_actor_is_not_echoed() {
        let e = bind(
            &as_("kauri://c/registrar/acme"),
            &SessionLookup::Missing,
            0,
            &mut create(&"x".repeat(200_000)),
        )
        .unwrap_err();
        assert!(e.message().len() < 400, "{} bytes", e.message().len());
    }

    #[test]
    fn staff_act_as_themselves_and_read_the_public_view() {
        let alice = as_("kauri://c/staff/alice");
        let mut deposit = v1::DepositFundsRequest {
            meta: Some(v1::RequestMeta {
                actor: String::new(),
                cl_trid: "abc-1".into(),
            }),
            ..Default::default()
        };
        bind(&alice, &SessionLookup::Missing, 0, &mut deposit).unwrap();
        assert_eq!(deposit.meta.unwrap().actor, "alice");
        let mut read = v1::InfoRequest::default();
        bind(&alice, &SessionLookup::Missing, 0, &mut read).unwrap();
        assert_eq!(read.registrar, "");
        let mut as_sponsor = v1::InfoRequest {
            registrar: "acme".into(),
            ..Default::default()
        };
        assert!(bind(&alice, &SessionLookup::Missing, 0, &mut as_sponsor).is_err());
    }

    #[test]
    fn a_registrar_reads_only_its_own_account() {
        let acme = as_("kauri://c/registrar/acme");
        let mut own = v1::InfoRegistrarRequest {
            id: "acme".into(),
            ..Default::default()
        };
        bind(&acme, &SessionLookup::Missing, 0, &mut own).unwrap();
        let mut other = v1::InfoRegistrarRequest {
            id: "rival".into(),
            ..Default::default()
        };
        assert!(bind(&acme, &SessionLookup::Missing, 0, &mut other).is_err());
    }

    fn session(registrar: &str, gateway: &str, expires_ms: i64) -> SessionLookup {
        SessionLookup::Found(v1::Session {
            id: "0011223344556677".into(),
            registrar: registrar.into(),
            gateway: gateway.into(),
            opened_ms: 0,
            expires_ms,
        })
    }

    #[test]
    fn a_gateway_acts_only_within_its_own_unexpired_session() {
        let gw = as_("kauri://c/gateway/epp1");
        let acme = session("acme", "epp1", 1_000);
        let mut r = create("");
        let via = bind(&gw, &acme, 999, &mut r).unwrap();
        assert_eq!(
            r.meta.unwrap().actor,
            "acme",
            "the session's registrar fills the actor"
        );
        assert_eq!(via.as_str(), "epp1");
        bind(&gw, &acme, 999, &mut create("acme")).unwrap();
        let mut read = v1::InfoRequest::default();
        bind(&gw, &acme, 999, &mut read).unwrap();
        assert_eq!(read.registrar, "acme");

        // Another registrar than the session's: not authorized.
        let e = bind(&gw, &acme, 999, &mut create("rival")).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        assert!(
            e.message().contains("session of gateway epp1"),
            "{}",
            e.message()
        );

        // No session, a bad header, an unknown token, an expired session or
        // one of another gateway: unauthenticated, SESSION_INVALID.
        let cases = [
            (SessionLookup::Missing, 999, "OpenSession"),
            (SessionLookup::Malformed, 999, "not a session token"),
            (SessionLookup::Unknown, 999, "not an open session"),
            (session("acme", "epp1", 1_000), 1_000, "expired"),
            (session("acme", "epp2", 1_000), 999, "another gateway"),
        ];
        for (lookup, now, says) in cases {
            let e = bind(&gw, &lookup, now, &mut create("")).unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated, "{lookup:?}");
            assert!(e.message().contains(says), "{lookup:?}: {}", e.message());
            let detail = <v1::ErrorDetail as prost::Message>::decode(e.details()).unwrap();
            assert_eq!(detail.reason(), Reason::SessionInvalid);
        }

        // Methods without an actor need no session.
        let via = bind(
            &gw,
            &SessionLookup::Missing,
            0,
            &mut v1::InfoTldRequest::default(),
        );
        assert_eq!(via.unwrap().as_str(), "epp1");
    }

    #[test]
    fn a_gateway_names_its_client_but_cannot_forge_log_lines() {
        let mut request = tonic::Request::new(());
        request
            .extensions_mut()
            .insert(as_("kauri://c/gateway/epp1"));
        assert_eq!(
            source(&request, "192.0.2.1\nWARN forged"),
            "gateway/epp1 for client 192.0.2.1WARNforged"
        );
        let long = source(&request, &"9".repeat(1000));
        assert!(long.len() < 100, "{long}");
        assert!(source(&request, "").starts_with("gateway/epp1 at "));
    }

    #[test]
    fn plain_text_takes_the_actor_as_given() {
        let mut r = create("anyone");
        bind(&Caller::Unauthenticated, &SessionLookup::Missing, 0, &mut r).unwrap();
        assert_eq!(r.meta.unwrap().actor, "anyone");
    }
}
