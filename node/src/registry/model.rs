//! The records the registry stores in its column families, their keys, and
//! their conversion to the wire types.
//!
//! Records are serde structs encoded with postcard behind a one-byte format
//! version, so a later schema can be told apart from this one. Money is `i64`
//! minor units; collections are ordered (`BTreeSet`, `Vec`) so the encoding,
//! and with it the state digest, is the same on every replica.

use std::collections::BTreeSet;
use std::net::IpAddr;

use kauri_proto::v1;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::engine::{Cf, StateRead, StorageFault, Txn};
use super::names;
use super::status::ClientStatus;

/// The format version byte in front of every encoded record.
const RECORD_FORMAT_V1: u8 = 1;

/// A record stored in one column family under a key it knows.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The column family records of this type live in.
    const CF: Cf;
    /// The key this record is stored under.
    fn key(&self) -> Vec<u8>;
}

/// Encodes a record: format version, then postcard.
pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    postcard::to_extend(record, vec![RECORD_FORMAT_V1])
        .expect("postcard encodes plain structs of strings, integers and ordered collections")
}

/// Decodes a record written by [`encode`]; anything else is a storage fault.
pub(crate) fn decode<T: DeserializeOwned>(
    cf: Cf,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StorageFault> {
    let corrupt = |why: String| {
        StorageFault(format!(
            "corrupt record in {} under key {:?}: {why}",
            cf.name(),
            String::from_utf8_lossy(key)
        ))
    };
    match bytes.split_first() {
        Some((&RECORD_FORMAT_V1, body)) => match postcard::take_from_bytes(body) {
            Ok((record, [])) => Ok(record),
            Ok((_, rest)) => Err(corrupt(format!("{} trailing bytes", rest.len()))),
            Err(e) => Err(corrupt(e.to_string())),
        },
        Some((v, _)) => Err(corrupt(format!("unknown format version {v}"))),
        None => Err(corrupt("empty value".into())),
    }
}

/// Point reads, from either a [`Txn`] (inside apply) or a plain
/// [`StateRead`] (queries).
pub(crate) trait Get {
    /// The raw value under `key`.
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault>;

    /// The record of type `T` under `key`, if any.
    fn load<T: Record>(&self, key: &[u8]) -> Result<Option<T>, StorageFault> {
        self.get_raw(T::CF, key)?
            .map(|bytes| decode(T::CF, key, &bytes))
            .transpose()
    }
}

impl<S: StateRead + ?Sized> Get for Txn<'_, S> {
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault> {
        self.get(cf, key)
    }
}

/// A [`StateRead`] seen through [`Get`].
pub(crate) struct ReadOnly<'a, S: StateRead + ?Sized>(pub &'a S);

impl<S: StateRead + ?Sized> Get for ReadOnly<'_, S> {
    fn get_raw(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault> {
        self.0.get(cf, key)
    }
}

/// Writes `record` under its own key in the current command.
pub(crate) fn save<S: StateRead + ?Sized, T: Record>(txn: &mut Txn<'_, S>, record: &T) {
    txn.put(T::CF, &record.key(), encode(record));
}

/// Keys in [`Cf::Meta`].
pub(crate) mod meta {
    /// Registry time after the last applied entry: i64 big-endian ms.
    pub const NOW_MS: &[u8] = b"now_ms";
    /// Last domain ROID number issued: u64 big-endian.
    pub const ROID_DOMAIN: &[u8] = b"roid/domain";
    /// Last contact ROID number issued: u64 big-endian.
    pub const ROID_CONTACT: &[u8] = b"roid/contact";
    /// Last host ROID number issued: u64 big-endian.
    pub const ROID_HOST: &[u8] = b"roid/host";
    /// Number of domains that exist: u64 big-endian.
    pub const DOMAIN_COUNT: &[u8] = b"count/domains";
}

/// Reads a big-endian u64 counter from [`Cf::Meta`]; absent is 0.
pub(crate) fn read_counter(r: &(impl Get + ?Sized), key: &[u8]) -> Result<u64, StorageFault> {
    match r.get_raw(Cf::Meta, key)? {
        None => Ok(0),
        Some(bytes) => bytes
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StorageFault(format!("meta {key:?} is not a u64"))),
    }
}

/// Reads registry time from [`Cf::Meta`]; absent (empty state) is 0.
pub(crate) fn read_now_ms(r: &(impl Get + ?Sized)) -> Result<i64, StorageFault> {
    match r.get_raw(Cf::Meta, meta::NOW_MS)? {
        None => Ok(0),
        Some(bytes) => bytes
            .as_slice()
            .try_into()
            .map(i64::from_be_bytes)
            .map_err(|_| StorageFault("meta now_ms is not an i64".into())),
    }
}

/// The key of a ledger entry: registrar id, 0x00, big-endian sequence, so a
/// registrar's entries are contiguous and in order.
pub(crate) fn ledger_key(registrar: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(registrar.len() + 9);
    key.extend_from_slice(registrar.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The key of an idempotency record: actor, 0x00, client transaction id.
/// Neither part may contain 0x00 (both refuse control characters).
pub(crate) fn idempotency_key(actor: &str, cl_trid: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(actor.len() + cl_trid.len() + 1);
    key.extend_from_slice(actor.as_bytes());
    key.push(0);
    key.extend_from_slice(cl_trid.as_bytes());
    key
}

/// A TLD's registration policy and prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TldPolicy {
    pub min_period_years: u32,
    pub max_period_years: u32,
    pub create_price_minor_units: i64,
    pub renew_price_minor_units: i64,
    pub currency: String,
    pub min_label_length: u32,
    pub max_label_length: u32,
    pub allow_idn: bool,
}

impl TldPolicy {
    pub fn to_proto(&self) -> v1::TldPolicy {
        v1::TldPolicy {
            min_period_years: self.min_period_years,
            max_period_years: self.max_period_years,
            create_price_minor_units: self.create_price_minor_units,
            renew_price_minor_units: self.renew_price_minor_units,
            currency: self.currency.clone(),
            min_label_length: self.min_label_length,
            max_label_length: self.max_label_length,
            allow_idn: self.allow_idn,
        }
    }
}

/// A top-level domain served by the registry, keyed by its A-label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TldRecord {
    pub name: String,
    pub policy: TldPolicy,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
}

impl Record for TldRecord {
    const CF: Cf = Cf::Tlds;
    fn key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
}

impl TldRecord {
    pub fn to_proto(&self) -> v1::Tld {
        v1::Tld {
            name: self.name.clone(),
            policy: Some(self.policy.to_proto()),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        }
    }
}

/// A registrar's account. Invariant:
/// `total_deposits == balance + total_charges`, and `balance >= 0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RegistrarRecord {
    pub id: String,
    pub name: String,
    /// argon2id PHC string made by the proposer.
    pub password_hash: String,
    pub currency: String,
    pub balance_minor_units: i64,
    pub total_deposits_minor_units: i64,
    pub total_charges_minor_units: i64,
    /// Number of ledger entries; the newest has this sequence number.
    pub ledger_len: u64,
    pub created_by: String,
    pub created_ms: i64,
}

impl Record for RegistrarRecord {
    const CF: Cf = Cf::Registrars;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

impl RegistrarRecord {
    /// Whether the account invariant holds.
    pub fn is_balanced(&self) -> bool {
        self.balance_minor_units >= 0
            && self.total_charges_minor_units >= 0
            && self
                .balance_minor_units
                .checked_add(self.total_charges_minor_units)
                == Some(self.total_deposits_minor_units)
    }

    pub fn to_proto(&self, ledger: Vec<v1::LedgerEntry>) -> v1::Registrar {
        v1::Registrar {
            id: self.id.clone(),
            name: self.name.clone(),
            balance: Some(v1::Money {
                minor_units: self.balance_minor_units,
                currency: self.currency.clone(),
            }),
            created_ms: self.created_ms,
            total_deposits_minor_units: self.total_deposits_minor_units,
            total_charges_minor_units: self.total_charges_minor_units,
            ledger,
        }
    }
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LedgerKind {
    Deposit,
    Create,
    Renew,
}

impl LedgerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Deposit => "deposit",
            LedgerKind::Create => "create",
            LedgerKind::Renew => "renew",
        }
    }
}

/// One movement on a registrar's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LedgerRecord {
    pub registrar: String,
    pub seq: u64,
    pub time_ms: i64,
    pub kind: LedgerKind,
    /// Positive for deposits, negative (or zero) for charges.
    pub amount_minor_units: i64,
    pub balance_after_minor_units: i64,
    pub object: String,
    pub sv_trid: String,
    pub reference: String,
}

impl Record for LedgerRecord {
    const CF: Cf = Cf::Ledger;
    fn key(&self) -> Vec<u8> {
        ledger_key(&self.registrar, self.seq)
    }
}

impl LedgerRecord {
    pub fn to_proto(&self) -> v1::LedgerEntry {
        v1::LedgerEntry {
            seq: self.seq,
            time_ms: self.time_ms,
            kind: self.kind.as_str().into(),
            amount_minor_units: self.amount_minor_units,
            balance_after_minor_units: self.balance_after_minor_units,
            object: self.object.clone(),
            sv_trid: self.sv_trid.clone(),
            reference: self.reference.clone(),
        }
    }
}

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
    pub statuses: BTreeSet<ClientStatus>,
    pub fields: ContactFields,
    pub sponsor: String,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
    pub auth_info: String,
    /// How many domains refer to this contact (in any role).
    pub domain_refs: u64,
}

impl Record for ContactRecord {
    const CF: Cf = Cf::Contacts;
    fn key(&self) -> Vec<u8> {
        self.id.as_bytes().to_vec()
    }
}

impl ContactRecord {
    /// The wire form; auth info only for the sponsor.
    pub fn to_proto(&self, viewer: &str) -> v1::Contact {
        v1::Contact {
            id: self.id.clone(),
            roid: self.roid.clone(),
            statuses: shown_statuses(&self.statuses, self.domain_refs > 0, false),
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
        }
    }
}

/// A host object, keyed by its A-label name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostRecord {
    pub name: String,
    pub roid: String,
    pub statuses: BTreeSet<ClientStatus>,
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
            statuses: shown_statuses(&self.statuses, self.domain_refs > 0, false),
            addresses: self.addresses.iter().map(|a| a.to_string()).collect(),
            sponsor: self.sponsor.clone(),
            created_by: self.created_by.clone(),
            created_ms: self.created_ms,
            updated_by: self.updated_by.clone(),
            updated_ms: self.updated_ms,
        }
    }
}

/// A domain contact's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum ContactRole {
    Admin,
    Tech,
    Billing,
}

impl ContactRole {
    pub fn from_proto(value: i32) -> Option<Self> {
        match v1::ContactType::try_from(value).ok()? {
            v1::ContactType::Admin => Some(ContactRole::Admin),
            v1::ContactType::Tech => Some(ContactRole::Tech),
            v1::ContactType::Billing => Some(ContactRole::Billing),
            v1::ContactType::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> v1::ContactType {
        match self {
            ContactRole::Admin => v1::ContactType::Admin,
            ContactRole::Tech => v1::ContactType::Tech,
            ContactRole::Billing => v1::ContactType::Billing,
        }
    }
}

/// A domain object, keyed by its A-label name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomainRecord {
    pub name: String,
    pub roid: String,
    pub statuses: BTreeSet<ClientStatus>,
    pub registrant: String,
    pub contacts: BTreeSet<(ContactRole, String)>,
    pub nameservers: BTreeSet<String>,
    /// In-bailiwick hosts that exist under this domain.
    pub subordinate_hosts: BTreeSet<String>,
    pub sponsor: String,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
    pub expiry_ms: i64,
    pub auth_info: String,
}

impl Record for DomainRecord {
    const CF: Cf = Cf::Domains;
    fn key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
}

impl DomainRecord {
    /// Every contact id the domain refers to, in any role (registrant too),
    /// once each: the unit of [`ContactRecord::domain_refs`].
    pub fn referenced_contacts(&self) -> BTreeSet<&str> {
        self.contacts
            .iter()
            .map(|(_, id)| id.as_str())
            .chain(std::iter::once(self.registrant.as_str()))
            .collect()
    }

    /// The wire form; auth info only for the sponsor.
    pub fn to_proto(&self, viewer: &str) -> v1::Domain {
        v1::Domain {
            name: self.name.clone(),
            unicode_name: names::to_unicode(&self.name).unwrap_or_default(),
            roid: self.roid.clone(),
            statuses: shown_statuses(&self.statuses, false, self.nameservers.is_empty()),
            registrant: self.registrant.clone(),
            contacts: self
                .contacts
                .iter()
                .map(|(role, id)| v1::DomainContact {
                    r#type: role.to_proto() as i32,
                    contact_id: id.clone(),
                })
                .collect(),
            nameservers: self.nameservers.iter().cloned().collect(),
            subordinate_hosts: self.subordinate_hosts.iter().cloned().collect(),
            sponsor: self.sponsor.clone(),
            created_by: self.created_by.clone(),
            created_ms: self.created_ms,
            updated_by: self.updated_by.clone(),
            updated_ms: self.updated_ms,
            expiry_ms: self.expiry_ms,
            auth_info: if viewer == self.sponsor {
                self.auth_info.clone()
            } else {
                String::new()
            },
        }
    }
}

/// The statuses an object shows: its client statuses, `inactive` for a
/// domain without nameservers, `ok` when nothing else applies, and `linked`
/// (which may accompany any other) for referenced contacts and hosts.
/// Sorted alphabetically.
fn shown_statuses(stored: &BTreeSet<ClientStatus>, linked: bool, inactive: bool) -> Vec<String> {
    let mut shown: BTreeSet<&str> = stored.iter().map(|s| s.as_str()).collect();
    if inactive {
        shown.insert("inactive");
    }
    if shown.is_empty() {
        shown.insert("ok");
    }
    if linked {
        shown.insert("linked");
    }
    shown.into_iter().map(String::from).collect()
}

/// What the registry remembers of an applied request, keyed by
/// (actor, client transaction id).
///
/// Records are kept forever in this slice; pruning after a retention window
/// (driven by `Tick` entries through a time-ordered index) is a later issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub actor: String,
    pub cl_trid: String,
    pub request_digest: Vec<u8>,
    /// The protobuf-encoded `CommandResult` returned the first time.
    pub result: Vec<u8>,
    pub log_index: u64,
    pub time_ms: i64,
}

impl Record for IdempotencyRecord {
    const CF: Cf = Cf::Idempotency;
    fn key(&self) -> Vec<u8> {
        idempotency_key(&self.actor, &self.cl_trid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::engine::MemState;

    #[test]
    fn records_round_trip_through_their_encoding() {
        let record = HostRecord {
            name: "ns1.example.nz".into(),
            roid: "H1-KAURI".into(),
            statuses: BTreeSet::from([ClientStatus::UpdateProhibited]),
            addresses: BTreeSet::from([
                "192.0.2.1".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            ]),
            superordinate: Some("example.nz".into()),
            sponsor: "rar-a".into(),
            created_by: "rar-a".into(),
            created_ms: 1,
            updated_by: String::new(),
            updated_ms: 0,
            domain_refs: 3,
        };
        let bytes = encode(&record);
        assert_eq!(bytes[0], RECORD_FORMAT_V1);
        let back: HostRecord = decode(Cf::Hosts, b"k", &bytes).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn undecodable_values_are_storage_faults_not_panics() {
        for bytes in [&b""[..], &[9, 1, 2][..], &[RECORD_FORMAT_V1, 0xff][..]] {
            let r: Result<DomainRecord, _> = decode(Cf::Domains, b"x.nz", bytes);
            assert!(r.is_err(), "{bytes:?}");
        }
        let mut state = MemState::new();
        let mut txn = Txn::new(&state);
        txn.put(Cf::Meta, meta::NOW_MS, vec![1, 2, 3]);
        txn.commit_command();
        let writes = txn.into_writes();
        state.write(writes);
        assert!(read_now_ms(&ReadOnly(&state)).is_err());
    }

    #[test]
    fn ledger_keys_sort_by_registrar_then_sequence() {
        let mut keys = vec![
            ledger_key("rar-b", 1),
            ledger_key("rar-a", 256),
            ledger_key("rar-a", 2),
            ledger_key("rar-a-x", 1),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ledger_key("rar-a", 2),
                ledger_key("rar-a", 256),
                ledger_key("rar-a-x", 1),
                ledger_key("rar-b", 1),
            ]
        );
    }

    #[test]
    fn shown_statuses_follow_epp_combination_rules() {
        let none = BTreeSet::new();
        assert_eq!(shown_statuses(&none, false, false), ["ok"]);
        assert_eq!(shown_statuses(&none, true, false), ["linked", "ok"]);
        assert_eq!(shown_statuses(&none, false, true), ["inactive"]);
        let hold = BTreeSet::from([ClientStatus::Hold]);
        assert_eq!(
            shown_statuses(&hold, false, true),
            ["clientHold", "inactive"]
        );
    }
}
