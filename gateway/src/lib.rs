//! `kauri-gateway`: the registrars' door to a Kauri cluster. An EPP server
//! (RFC 5730 over TLS with RFC 5734 framing) that keeps no state of its
//! own: each EPP login opens a registrar session in the cluster
//! (`Admin.OpenSession`, checked there with the registrar's password) and
//! each command is a kauri-client call within it, so any number of
//! gateways can serve in any site.
//!
//! Layers, lowest first: [`frame`] (the length-prefixed frames), [`xml`]
//! (a bounded, DTD-free XML reader), [`codes`] (result codes and the one
//! table from the cluster's reasons), [`render`] (greeting, responses and
//! an XML writer), [`request`] (reading parameters, refusals),
//! [`session`] (a command's session, clTRID and cluster answers), [`fee`]
//! (RFC 8748 prices and agreed fees), [`secdns`] (RFC 5910 DS data), the
//! objects [`domain`], [`host`], [`contact`] and [`poll`] (each one's
//! commands: parse, run, render), [`epp`] (what a frame asks),
//! [`server`] (TLS, connections, login); [`observe`] (metrics, probes).

pub mod frame;
pub mod xml;
pub mod codes;
pub mod render;
pub mod request;
pub mod session;
pub mod fee;
pub mod secdns;
pub mod domain;
pub mod host;
pub mod contact;
pub mod poll;
pub mod epp;
pub mod observe;
pub mod server;
pub mod tls;
