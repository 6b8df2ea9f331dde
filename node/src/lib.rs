//! kauri-node: one member of a Kauri registry cluster.
//!
//! - [`registry`]: the pure, deterministic registry state machine.
//! - [`archive`]: the snapshot archive format (what nodes ship).
//! - [`raft`]: openraft's type declarations, bounds and wire encoding.
//! - [`storage`]: RocksDB holding the Raft log and the applied state.
//! - [`peer`]: the node-to-node transport (Raft RPCs out and in).
//! - [`api`]: the gRPC services clients and gateways call.
//! - [`security`]: mutual TLS, roles and the binding of actors to principals.
//! - [`server`]: configuration, start-up, bootstrap and shutdown.
//! - [`telemetry`]: what the node counts (metric names and recording);
//!   [`observe`]: the exporter and the health and readiness probes.
//! - [`health`] and [`reflection`]: the standard gRPC health and server
//!   reflection services.

pub mod api;
pub mod archive;
pub mod crosscheck;
pub mod health;
pub mod logging;
pub mod observe;
pub mod peer;
pub mod raft;
pub mod reflection;
pub mod registry;
pub mod security;
pub mod server;
pub mod storage;
pub mod telemetry;
