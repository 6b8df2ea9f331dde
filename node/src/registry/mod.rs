//! The registry state machine: TLD policy, registrar accounts, contacts,
//! hosts and domains, as a pure function of the replicated log.
//!
//! Nothing here touches a clock, randomness, the network or RocksDB. Apply
//! reads through [`StateRead`], writes into a [`Txn`], takes time from the
//! proposal (`now = max(previous now, proposal time)`) and gets every random
//! value (salts, generated auth info) from the proposer. The same log applied
//! anywhere gives byte-identical state; `tests` guard that.
//!
//! - [`apply_proposal`] applies one log entry: registry time, exactly-once
//!   by (actor, clTRID), dispatch to one file per command family
//!   (`tld`, `registrar`, `contact`, `host`, `domain`, `transfer`,
//!   `lifecycle` for restores, `poll`, `case` for staff actions on domains,
//!   `session` for gateways' registrar sessions;
//!   staff set server statuses of hosts and contacts in `host` and
//!   `contact`); a `Tick` runs the lifecycle events due (`lifecycle`),
//!   found through the due-time index;
//! - every mutation leaves audit records (`audit`), and registrars learn
//!   what happened to their objects through their poll queues (`poll`);
//! - the read functions (`check_*`, `info_*`, ...) serve queries from any
//!   applied state;
//! - every rejection is a [`RegistryError`] value with a proto reason and the
//!   request field it is about.
//!
//! ```
//! use kauri_node::registry::{apply_proposal, ApplyContext, MemState, Txn};
//! use kauri_proto::v1::{command, command_result::Outcome, Command, CreateTldRequest,
//!     Proposal, RequestMeta, TldPolicy};
//!
//! let mut state = MemState::new();
//! let proposal = Proposal {
//!     time_ms: 1_700_000_000_000,
//!     request_digest: vec![1; 32],
//!     command: Some(Command {
//!         kind: Some(command::Kind::CreateTld(CreateTldRequest {
//!             meta: Some(RequestMeta { actor: "staff".into(), cl_trid: "tld-1".into() }),
//!             name: "NZ".into(),
//!             policy: Some(TldPolicy { currency: "NZD".into(), ..Default::default() }),
//!         })),
//!     }),
//!     via: String::new(),
//! };
//! let mut txn = Txn::new(&state);
//! let result = apply_proposal(&mut txn, &ApplyContext { log_index: 7, log_term: 1 }, &proposal)
//!     .expect("no storage fault in memory");
//! let writes = txn.into_writes();
//! state.write(writes);
//! let Some(Outcome::Tld(created)) = result.outcome else { panic!("{result:?}") };
//! assert_eq!(created.tld.unwrap().name, "nz");
//! assert_eq!(created.tx.unwrap().sv_trid, "kauri-7");
//! ```

// The modules in layers, lowest first; a module uses only modules of
// lower layers, never one declared after it (node/tests/layers.rs checks
// it).
//
// Foundation: storage view, errors, names, statuses, records, calendar.
pub mod engine;
pub mod error;
pub mod calendar;
pub mod names;
pub mod fields;
pub mod status;
pub mod idn;
mod model;
mod tld_rules;
mod dnssec;
// The command context, and lookups every command makes.
mod exec;
mod lookup;
// Shared effects: audit records, poll messages, money, due events,
// reference counts; and the domain state changes several families share.
pub mod audit;
pub mod poll;
mod billing;
mod refs;
mod schedule;
mod transitions;
// The command families. Contact transfers sit under contacts and the
// lifecycle (staff's serverTransferProhibited cancels one; the tick
// approves one) and call neither.
pub mod case;
pub mod contact_transfer;
mod contact;
mod domain;
mod host;
pub mod lifecycle;
mod registrar;
pub mod session;
mod tld;
pub mod transfer;
// The command table, applying an entry, and the read-only queries.
mod commands;
pub mod apply;
pub mod query;

#[cfg(test)]
mod tests;

pub use apply::{
    apply_proposal, check_request_meta, registry_now_ms, tx_info, was_replayed, ApplyContext,
    MAX_EVENTS_PER_TICK,
};
pub use audit::query_audit;
pub use case::info_case;
pub use commands::{command_name, request_meta};
pub use contact_transfer::{query_contact_transfer, CONTACT_TRANSFER_AUTO_APPROVE_MS};
pub use engine::{state_digest, Cf, MemState, StateRead, StorageFault, Txn, WriteSet};
pub use error::{ObjectKind, RegistryError};
pub use exec::SYSTEM_ACTOR;
pub use poll::head as poll_head;
pub use query::{
    check_contacts, check_domains, check_hosts, count_domains, fee_quotes, info_contact,
    info_domain, info_host, info_registrar, info_tld, stats, verify_registrar_password, Stats,
    MAX_CHECK_NAMES, MAX_STATS_COUNTERS, MAX_STATS_REGISTRARS,
};
pub use refs::{derived_entries, DERIVED_FROM};
pub use session::session_by_token_hash;
pub use transfer::query_transfer;
