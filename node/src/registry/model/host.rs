//! Hosts (RFC 5732): name, addresses (glue) and the domain above them.

use super::*;

/// A host object, keyed by its A-label name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostRecord {
    pub name: String,
    pub roid: String,
    /// `client*` statuses, set by the sponsor.
    pub statuses: BTreeSet<ClientStatus>,
    /// `server*` statuses set by registry staff (only those RFC 5732
    /// defines for hosts).
    pub server_statuses: BTreeSet<ServerStatus>,
    /// Glue addresses; only in-bailiwick hosts have any.
    pub addresses: BTreeSet<IpAddr>,
    /// The registry domain this host is under, for in-bailiwick hosts.
    pub superordinate: Option<String>,
    pub sponsor: String,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
    /// How many domains delegate to this host.
    pub domain_refs: u64,
}

impl Record for HostRecord {
    const CF: Cf = Cf::Hosts;
    fn key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
}

impl HostRecord {
    pub fn to_proto(&self) -> v1::Host {
        v1::Host {
            name: self.name.clone(),
            roid: self.roid.clone(),
            statuses: shown_statuses(
                &self.statuses,
                &self.server_statuses,
                self.domain_refs > 0,
                false,
            ),
            addresses: self.addresses.iter().map(|a| a.to_string()).collect(),
            sponsor: self.sponsor.clone(),
            created_by: self.created_by.clone(),
            created_ms: self.created_ms,
            updated_by: self.updated_by.clone(),
            updated_ms: self.updated_ms,
        }
    }
}

/// The prefix of the keys in [`Cf::HostDelegations`] of the domains
/// delegating to `host`: its name, 0x00.
pub(crate) fn delegation_prefix(host: &str) -> Vec<u8> {
    audit_index_prefix(host)
}

/// The key in [`Cf::HostDelegations`] saying that `domain` delegates to
/// `host`: host name, 0x00, domain name (names hold no 0x00).
pub(crate) fn delegation_key(host: &str, domain: &str) -> Vec<u8> {
    let mut key = delegation_prefix(host);
    key.extend_from_slice(domain.as_bytes());
    key
}

/// The domain a [`Cf::HostDelegations`] key of `host` names, or `None`
/// when the key is not one of `host`'s.
pub(crate) fn delegating_domain<'k>(host: &str, key: &'k [u8]) -> Option<&'k str> {
    let rest = key.strip_prefix(host.as_bytes())?.strip_prefix(&[0])?;
    std::str::from_utf8(rest).ok()
}

/// The [`Cf::HostDelegations`] keys of the domain stored as `bytes` under
/// `key` in [`Cf::Domains`]: what rebuilding the index writes for it.
pub(crate) fn delegation_keys_of(key: &[u8], bytes: &[u8]) -> Result<Vec<Vec<u8>>, StorageFault> {
    let domain: DomainRecord = decode(Cf::Domains, key, bytes)?;
    Ok(domain
        .nameservers
        .iter()
        .map(|ns| delegation_key(ns, &domain.name))
        .collect())
}
