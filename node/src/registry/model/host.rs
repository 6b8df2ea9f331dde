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
