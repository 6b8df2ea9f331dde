//! The one table of commands: for every request the log carries, its name,
//! who may send it, where its idempotency key is, and the function of its
//! family that applies it.
//!
//! Everything that needs to know about a command is generated from its row
//! of the table at the end of this file (one row per variant of the log's
//! `Command.kind`; several variants share a request type, such as
//! `DeleteRequest`): [`dispatch`], [`command_name`] (the gRPC
//! method, the name audit records carry and the first part of the request
//! digest the API computes), [`request_meta`] and [`actor_kind`]. Adding a
//! command is one row here plus its function in the family's file (and the
//! API handler that proposes it).
//!
//! A row's caller column says how the actor is checked before the command
//! runs: `staff` (authenticated by the API layer), `registrar` (the actor
//! must be a registrar; its account is passed to the command) or `session`
//! (a registrar's session command that checks the actor itself).

use kauri_proto::v1::{self, command, command_result::Outcome};

use super::error::RegistryError;
use super::exec::Exec;
use super::lookup;
use super::model::{ActorKind, RegistrarRecord};
use super::{
    case, contact, contact_transfer, domain, host, lifecycle, poll, registrar, session, tld,
    transfer,
};

/// How a row's function is called for each kind of caller.
macro_rules! call {
    (staff, $f:path, $cx:ident, $req:ident) => {
        $f($cx, $req)
    };
    (registrar, $f:path, $cx:ident, $req:ident) => {{
        let caller: RegistrarRecord = lookup::authenticate($cx)?;
        $f($cx, caller, $req)
    }};
    (session, $f:path, $cx:ident, $req:ident) => {
        $f($cx, $req)
    };
}

/// The actor kind of a caller column.
macro_rules! actor {
    (staff) => {
        ActorKind::Staff
    };
    (registrar) => {
        ActorKind::Registrar
    };
    (session) => {
        ActorKind::Registrar
    };
}

/// Generates the functions over [`command::Kind`] from the table.
macro_rules! commands {
    ($($kind:ident $caller:ident => $apply:path;)+) => {
        /// Applies a command (anything but a tick, which the caller runs).
        pub(crate) fn dispatch(
            cx: &mut Exec<'_, '_>,
            kind: &command::Kind,
        ) -> Result<Outcome, RegistryError> {
            match kind {
                $(command::Kind::$kind(req) => call!($caller, $apply, cx, req),)+
                command::Kind::Tick(_) => Err(RegistryError::invalid(
                    "command",
                    "a tick is applied before dispatch",
                )),
            }
        }

        /// The name of a command: its gRPC method, as audit records show
        /// it and as its request digest starts.
        pub fn command_name(kind: &command::Kind) -> &'static str {
            match kind {
                $(command::Kind::$kind(_) => stringify!($kind),)+
                command::Kind::Tick(_) => "Tick",
            }
        }

        /// The request meta (idempotency key) of any command; none for a
        /// tick.
        pub fn request_meta(kind: &command::Kind) -> Option<&v1::RequestMeta> {
            match kind {
                $(command::Kind::$kind(req) => req.meta.as_ref(),)+
                command::Kind::Tick(_) => None,
            }
        }

        /// Who acts in a command.
        pub(crate) fn actor_kind(kind: &command::Kind) -> ActorKind {
            match kind {
                $(command::Kind::$kind(_) => actor!($caller),)+
                command::Kind::Tick(_) => ActorKind::System,
            }
        }
    };
}

commands! {
    // Staff: TLDs, registrar accounts, server statuses, AUP cases.
    CreateTld staff => tld::create;
    UpdateTld staff => tld::update;
    CreateRegistrar staff => registrar::create;
    DepositFunds staff => registrar::deposit;
    UpdateRegistrar staff => registrar::update;
    SetServerStatus staff => case::set_server_status;
    SetHostServerStatus staff => host::set_server_status;
    SetContactServerStatus staff => contact::set_server_status;
    OpenCase staff => case::open;
    UpdateCase staff => case::update;
    // Registrars: their objects, transfers, restores, poll.
    CreateDomain registrar => domain::create;
    UpdateDomain registrar => domain::update;
    RenewDomain registrar => domain::renew;
    DeleteDomain registrar => domain::delete;
    CreateContact registrar => contact::create;
    UpdateContact registrar => contact::update;
    DeleteContact registrar => contact::delete;
    CreateHost registrar => host::create;
    UpdateHost registrar => host::update;
    DeleteHost registrar => host::delete;
    TransferDomain registrar => transfer::transfer;
    TransferContact registrar => contact_transfer::transfer;
    RestoreDomain registrar => lifecycle::restore;
    AckPoll registrar => poll::ack;
    // Gateways' registrar sessions: logging in (the proposer checked the
    // password) and out.
    OpenSession registrar => session::open;
    CloseSession session => session::close;
}
