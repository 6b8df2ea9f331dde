//! The actor a request names is the authenticated principal, never a
//! claim: a registrar certificate acts as that registrar, a staff
//! certificate as that staff member. Each request type says where its actor
//! slot is ([`Acting`]); [`bind`] fills an empty slot with the principal's
//! name and refuses one that names somebody else. Over plain text
//! (`--insecure-plaintext`) the slot is taken as given.

use kauri_client::tls::shorten;
use kauri_proto::v1::{self, Reason};
use tonic::{Code, Status};

use super::{refuse, Caller, Role};

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
    UpdateContactRequest, CreateHostRequest, UpdateHostRequest,
);
acting_field!(RegistrarRead, registrar: CheckRequest, InfoRequest, TransferQueryRequest, PollRequest);
acting_field!(OwnAccount, id: InfoRegistrarRequest);
acting_meta!(Staff:
    CreateTldRequest, UpdateTldRequest, CreateRegistrarRequest, DepositFundsRequest,
    UpdateRegistrarRequest, SetServerStatusRequest, SetHostServerStatusRequest,
    SetContactServerStatusRequest, OpenCaseRequest, UpdateCaseRequest,
);
acting_none!(
    InfoTldRequest,
    VerifyRegistrarPasswordRequest,
    InfoCaseRequest,
    AuditQueryRequest,
    AdvanceTestClockRequest,
);

fn denied(message: String) -> Status {
    refuse(Code::PermissionDenied, Reason::NotAuthorized, message)
}

/// Binds `request`'s actor slot to `caller`: fills it when empty, refuses
/// it when it names somebody other than the caller.
pub fn bind<T: Acting>(caller: &Caller, request: &mut T) -> Result<(), Status> {
    let Caller::Principal(principal) = caller else {
        return Ok(());
    };
    let slot = T::SLOT;
    let Some((field, claimed)) = request.slot() else {
        return Ok(());
    };
    let own = match (slot, principal.role) {
        (Slot::Registrar | Slot::RegistrarRead | Slot::OwnAccount, Role::Registrar)
        | (Slot::Staff, Role::Staff) => principal.name.as_str(),
        // Staff read the registry as the public does: no registrar's view.
        (Slot::RegistrarRead, Role::Staff) => "",
        // Staff read any account.
        (Slot::OwnAccount, Role::Staff) => return Ok(()),
        (Slot::Registrar | Slot::RegistrarRead | Slot::OwnAccount, Role::Gateway) => {
            return Err(denied(format!(
                "gateway {} may act for a registrar only within a session the registrar \
                 opened with its password; sessions are not available on this node yet",
                principal.name
            )))
        }
        (Slot::None, _) => return Ok(()),
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
        return Ok(());
    }
    if claimed != own {
        let acts_as = if own.is_empty() {
            "no registrar (the public view)".to_string()
        } else {
            format!("{own:?}")
        };
        return Err(denied(format!(
            "{field} is {:?}, but the client certificate ({principal}) acts as {acts_as}; \
             leave {field} empty or name the certificate's own principal",
            shorten(claimed)
        )));
    }
    Ok(())
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
/// caller.
pub fn bound<T: Acting>(request: tonic::Request<T>) -> Result<T, Status> {
    let caller = caller(&request);
    let mut inner = request.into_inner();
    bind(&caller, &mut inner)?;
    Ok(inner)
}

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
        bind(&acme, &mut r).unwrap();
        assert_eq!(r.meta.unwrap().actor, "acme", "an empty actor is filled in");
        bind(&acme, &mut create("acme")).unwrap();
        let e = bind(&acme, &mut create("victim")).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        assert!(e.message().contains("\"victim\""), "{}", e.message());
        let mut read = v1::InfoRequest {
            registrar: "victim".into(),
            ..Default::default()
        };
        assert!(bind(&acme, &mut read).is_err());
    }

    #[test]
    fn a_huge_claimed_actor_is_not_echoed() {
        let e = bind(
            &as_("kauri://c/registrar/acme"),
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
        bind(&alice, &mut deposit).unwrap();
        assert_eq!(deposit.meta.unwrap().actor, "alice");
        let mut read = v1::InfoRequest::default();
        bind(&alice, &mut read).unwrap();
        assert_eq!(read.registrar, "");
        let mut as_sponsor = v1::InfoRequest {
            registrar: "acme".into(),
            ..Default::default()
        };
        assert!(bind(&alice, &mut as_sponsor).is_err());
    }

    #[test]
    fn a_registrar_reads_only_its_own_account() {
        let acme = as_("kauri://c/registrar/acme");
        let mut own = v1::InfoRegistrarRequest {
            id: "acme".into(),
            ..Default::default()
        };
        bind(&acme, &mut own).unwrap();
        let mut other = v1::InfoRegistrarRequest {
            id: "rival".into(),
            ..Default::default()
        };
        assert!(bind(&acme, &mut other).is_err());
    }

    #[test]
    fn plain_text_takes_the_actor_as_given() {
        let mut r = create("anyone");
        bind(&Caller::Unauthenticated, &mut r).unwrap();
        assert_eq!(r.meta.unwrap().actor, "anyone");
    }
}
