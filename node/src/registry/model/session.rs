//! Registrar sessions of gateways and the keys of their indexes.

use super::*;

/// A registrar session a gateway opened with the registrar's password,
/// keyed by the SHA-256 of its token (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub token_sha256: [u8; 32],
    pub registrar: String,
    /// The certificate name of the gateway that opened it.
    pub gateway: String,
    pub opened_ms: i64,
    pub expires_ms: i64,
    pub sv_trid: String,
}

impl Record for SessionRecord {
    const CF: Cf = Cf::Sessions;
    fn key(&self) -> Vec<u8> {
        self.token_sha256.to_vec()
    }
}

impl SessionRecord {
    /// The public handle of the session: the first 8 octets of the token
    /// hash, in hex.
    pub fn id(&self) -> String {
        self.token_sha256[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn to_proto(&self) -> v1::Session {
        v1::Session {
            id: self.id(),
            registrar: self.registrar.clone(),
            gateway: self.gateway.clone(),
            opened_ms: self.opened_ms,
            expires_ms: self.expires_ms,
        }
    }
}

/// The key of a session in [`Cf::SessionsByRegistrar`]: registrar id,
/// 0x00, token hash.
pub(crate) fn session_by_registrar_key(registrar: &str, token_sha256: &[u8; 32]) -> Vec<u8> {
    let mut key = audit_index_prefix(registrar);
    key.extend_from_slice(token_sha256);
    key
}

/// The key of a session in [`Cf::SessionExpiry`]: big-endian expiry
/// (non-negative registry times sort correctly), token hash.
pub(crate) fn session_expiry_key(expires_ms: i64, token_sha256: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(&expires_ms.max(0).to_be_bytes());
    key.extend_from_slice(token_sha256);
    key
}
