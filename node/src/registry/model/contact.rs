//! Contacts (RFC 5733): postal information, voice, fax, email.

use super::*;

/// Whether postal info is internationalised (ASCII only) or localised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum PostalKind {
    Int,
    Loc,
}

impl PostalKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            PostalKind::Int => "int",
            PostalKind::Loc => "loc",
        }
    }
}

/// A postal address (RFC 5733 `addr`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Address {
    pub street: Vec<String>,
    pub city: String,
    pub state_province: String,
    pub postal_code: String,
    pub country_code: String,
}

/// One postal info element (RFC 5733 `postalInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PostalInfo {
    pub kind: PostalKind,
    pub name: String,
    pub org: String,
    pub address: Address,
}

/// A contact's data; postal info sorted by kind (`int` before `loc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContactFields {
    pub postal_info: Vec<PostalInfo>,
    pub voice: String,
    pub fax: String,
    pub email: String,
    pub disclose_nothing: bool,
}

impl ContactFields {
    pub fn to_proto(&self) -> v1::ContactFields {
        v1::ContactFields {
            postal_info: self
                .postal_info
                .iter()
                .map(|p| v1::PostalInfo {
                    r#type: p.kind.as_str().into(),
                    name: p.name.clone(),
                    org: p.org.clone(),
                    address: Some(v1::PostalAddress {
                        street: p.address.street.clone(),
                        city: p.address.city.clone(),
                        state_province: p.address.state_province.clone(),
                        postal_code: p.address.postal_code.clone(),
                        country_code: p.address.country_code.clone(),
                    }),
                })
                .collect(),
            voice: self.voice.clone(),
            fax: self.fax.clone(),
            email: self.email.clone(),
            disclose_nothing: self.disclose_nothing,
        }
    }
}

/// A contact object, keyed by its id (case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    pub id: String,
    pub roid: String,
    /// `client*` statuses, set by the sponsor.
    pub statuses: BTreeSet<ClientStatus>,
    /// `server*` statuses set by registry staff (only those RFC 5733
    /// defines for contacts).
    pub server_statuses: BTreeSet<ServerStatus>,
    pub fields: ContactFields,
    pub sponsor: String,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
    pub auth_info: String,
    /// How many domains refer to this contact (in any role).
    pub domain_refs: u64,
    /// The pending or most recent transfer (since format version 2).
    pub transfer: Option<TransferRecord>,
    /// The handle on its auto-approval while a transfer is pending.
    pub transfer_event: Option<ScheduledEvent>,
}

/// [`ContactRecord`] as format version 1 wrote it, before contacts could
/// be transferred. Decoded only, never written; frozen as it was.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) struct ContactRecordV1 {
    pub(super) id: String,
    pub(super) roid: String,
    pub(super) statuses: BTreeSet<ClientStatus>,
    pub(super) server_statuses: BTreeSet<ServerStatus>,
    pub(super) fields: ContactFields,
    pub(super) sponsor: String,
    pub(super) created_by: String,
    pub(super) created_ms: i64,
    pub(super) updated_by: String,
    pub(super) updated_ms: i64,
    pub(super) auth_info: String,
    pub(super) domain_refs: u64,
}

impl ContactRecordV1 {
    /// The record as format version 2 has it: never transferred.
    pub(super) fn upgrade(self) -> ContactRecord {
        ContactRecord {
            id: self.id,
            roid: self.roid,
            statuses: self.statuses,
            server_statuses: self.server_statuses,
            fields: self.fields,
            sponsor: self.sponsor,
            created_by: self.created_by,
            created_ms: self.created_ms,
            updated_by: self.updated_by,
            updated_ms: self.updated_ms,
            auth_info: self.auth_info,
            domain_refs: self.domain_refs,
            transfer: None,
            transfer_event: None,
        }
    }
}

impl Record for ContactRecord {
    const CF: Cf = Cf::Contacts;
    const FORMAT: u8 = super::RECORD_FORMAT_V2;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
    fn decode_older(version: u8, body: &[u8]) -> Option<postcard::Result<(Self, &[u8])>> {
        (version == super::RECORD_FORMAT_V1).then(|| {
            postcard::take_from_bytes::<ContactRecordV1>(body)
                .map(|(old, rest)| (old.upgrade(), rest))
        })
    }
}

impl ContactRecord {
    /// The wire form; auth info only for the sponsor.
    pub fn to_proto(&self, viewer: &str) -> v1::Contact {
        v1::Contact {
            id: self.id.clone(),
            roid: self.roid.clone(),
            statuses: shown_statuses(
                &self.statuses,
                &self.server_statuses,
                self.domain_refs > 0,
                self.transfer_pending(),
            ),
            fields: Some(self.fields.to_proto()),
            sponsor: self.sponsor.clone(),
            created_by: self.created_by.clone(),
            created_ms: self.created_ms,
            updated_by: self.updated_by.clone(),
            updated_ms: self.updated_ms,
            auth_info: if viewer == self.sponsor {
                self.auth_info.clone()
            } else {
                String::new()
            },
            transfer: self.transfer.as_ref().map(|t| t.to_proto(&self.id, 0)),
        }
    }

    /// Whether a transfer is pending.
    pub fn transfer_pending(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| t.status == TransferStatus::Pending)
    }
}
