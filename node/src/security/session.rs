//! Session tokens: what a gateway carries, in the [`SESSION_HEADER`]
//! request header, to act for the registrar whose password opened the
//! session. A token is 256 bits from the OS random number generator, shown
//! to the gateway once (as 64 hex digits); the cluster keeps only its
//! SHA-256 (`registry::session`). [`lookup`] finds the session a request's
//! token names; [`super::actor::bind`] decides whether it may be used.

use kauri_proto::v1;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::registry::{self, StateRead};

pub use kauri_client::SESSION_HEADER;

/// Random octets in a token.
pub const TOKEN_OCTETS: usize = 32;

/// A session token. Its `Debug` shows nothing of it, so it cannot end up in
/// a log by accident; [`SessionToken::reveal`] is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken([u8; TOKEN_OCTETS]);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

impl SessionToken {
    /// A fresh token from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut octets = [0; TOKEN_OCTETS];
        rand::rngs::OsRng.fill_bytes(&mut octets);
        SessionToken(octets)
    }

    /// Reads a token written by [`SessionToken::reveal`] (hex digits, any
    /// case); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 2 * TOKEN_OCTETS {
            return None;
        }
        let mut octets = [0; TOKEN_OCTETS];
        for (octet, pair) in octets.iter_mut().zip(text.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *octet = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(SessionToken(octets))
    }

    /// The token as the gateway gets it: 64 lower-case hex digits. Only
    /// the answer to `OpenSession` carries it.
    pub fn reveal(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the cluster stores and replicates instead of the token.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }

    /// The token a request carries in [`SESSION_HEADER`]: `Ok(None)` when
    /// there is none, `Err` when the header is not a token.
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Option<Self>, NotAToken> {
        match metadata.get(SESSION_HEADER) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|t| SessionToken::parse(t.trim()))
                .map(Some)
                .ok_or(NotAToken),
        }
    }
}

/// A session header that is not a session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAToken;

/// What a request's session header leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionLookup {
    /// The request carries no session token (or nobody looked: callers
    /// other than gateways never need one).
    Missing,
    /// The header is not a session token.
    Malformed,
    /// No stored session has this token: never opened, closed, or
    /// expired and pruned.
    Unknown,
    /// The stored session (which may have expired since).
    Found(v1::Session),
}

/// Finds the session the token in `metadata` names, in `state`.
pub fn lookup(state: &dyn StateRead, metadata: &MetadataMap) -> Result<SessionLookup, Status> {
    let token = match SessionToken::from_metadata(metadata) {
        Ok(None) => return Ok(SessionLookup::Missing),
        Err(NotAToken) => return Ok(SessionLookup::Malformed),
        Ok(Some(token)) => token,
    };
    Ok(
        match registry::session_by_token_hash(state, &token.sha256())? {
            Some(session) => SessionLookup::Found(session),
            None => SessionLookup::Unknown,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_round_trip_and_never_show_in_debug() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        let text = a.reveal();
        assert_eq!(text.len(), 64);
        assert_eq!(SessionToken::parse(&text), Some(a.clone()));
        assert_eq!(SessionToken::parse(&text.to_uppercase()), Some(a.clone()));
        assert!(!format!("{a:?}").contains(&text[..8]));
        for bad in ["", "xyz", &text[..63], &format!("{text}0"), &"g".repeat(64)] {
            assert_eq!(SessionToken::parse(bad), None, "{bad}");
        }
        assert_ne!(a.sha256(), b.sha256());
    }

    #[test]
    fn the_header_gives_the_token_none_or_a_refusal() {
        let token = SessionToken::generate();
        let mut metadata = MetadataMap::new();
        assert_eq!(SessionToken::from_metadata(&metadata), Ok(None));
        metadata.insert(SESSION_HEADER, token.reveal().parse().unwrap());
        assert_eq!(SessionToken::from_metadata(&metadata), Ok(Some(token)));
        metadata.insert(SESSION_HEADER, "not-a-token".parse().unwrap());
        assert_eq!(SessionToken::from_metadata(&metadata), Err(NotAToken));
    }
}
