//! The records the registry stores in its column families, their keys, and
//! their conversion to the wire types.
//!
//! Records are serde structs encoded with postcard behind a one-byte format
//! version, so a later schema can be told apart from this one. Money is `i64`
//! minor units; collections are ordered (`BTreeSet`, `Vec`) so the encoding,
//! and with it the state digest, is the same on every replica.
//!
//! Postcard has no optional or trailing fields: a record type whose fields
//! change gets a new format version ([`Record::FORMAT`]) and keeps decoding
//! its older versions ([`Record::decode_older`]), so state written before
//! the change (RocksDB data, snapshots) still reads. A record is upgraded
//! in place the next time a command writes it. [`TldRecord`] is at version
//! 2, which added the IDN table to its policy; [`AuditRecord`] is at
//! version 2, which added the gateway a command came through (`via`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use kauri_proto::v1;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::engine::{Cf, StateRead, StorageFault, Txn};
use super::idn::IdnTable;
use super::names;
use super::status::{ClientStatus, ServerStatus};

/// The format version byte in front of an encoded record, for record types
/// whose fields never changed.
const RECORD_FORMAT_V1: u8 = 1;
/// The format version of [`TldRecord`] since its policy has an IDN table,
/// and of [`AuditRecord`] since it names the gateway (`via`).
const RECORD_FORMAT_V2: u8 = 2;

/// A record stored in one column family under a key it knows.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The column family records of this type live in.
    const CF: Cf;
    /// The format version records of this type are written in.
    const FORMAT: u8 = RECORD_FORMAT_V1;
    /// The key this record is stored under.
    fn key(&self) -> Vec<u8>;
    /// Decodes the postcard body of an older format `version` of this type,
    /// returning the record and the bytes after it; `None` when the type
    /// never had that version.
    fn decode_older(version: u8, body: &[u8]) -> Option<postcard::Result<(Self, &[u8])>> {
        let _ = (version, body);
        None
    }
}

/// Initial buffer of an encoded record, bytes (most records fit).
const ENCODE_CAPACITY: usize = 256;

/// Encodes a record: its format version, then postcard.
pub(crate) fn encode<T: Record>(record: &T) -> Vec<u8> {
    // Room for a typical record up front: growing from one byte would
    // reallocate half a dozen times per record.
    let mut out = Vec::with_capacity(ENCODE_CAPACITY);
    out.push(T::FORMAT);
    postcard::to_extend(record, out)
        .expect("postcard encodes plain structs of strings, integers and ordered collections")
}

/// Decodes a record written by [`encode`], in its current format version or
/// an older one the type still reads; anything else is a storage fault.
pub(crate) fn decode<T: Record>(cf: Cf, key: &[u8], bytes: &[u8]) -> Result<T, StorageFault> {
    let corrupt = |why: String| {
        StorageFault(format!(
            "corrupt record in {} under key {:?}: {why}",
            cf.name(),
            String::from_utf8_lossy(key)
        ))
    };
    let decoded = match bytes.split_first() {
        Some((&v, body)) if v == T::FORMAT => postcard::take_from_bytes(body),
        Some((&v, body)) => T::decode_older(v, body)
            .ok_or_else(|| corrupt(format!("unknown format version {v}")))?,
        None => return Err(corrupt("empty value".into())),
    };
    match decoded {
        Ok((record, [])) => Ok(record),
        Ok((_, rest)) => Err(corrupt(format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(corrupt(e.to_string())),
    }
}

/// Typed reads of records, from any source of state: the store or a
/// [`MemState`](super::MemState) for queries, the transaction (or the
/// command context over it) inside apply.
impl dyn StateRead + '_ {
    /// The record of type `T` under `key`, if any.
    pub(crate) fn load<T: Record>(&self, key: &[u8]) -> Result<Option<T>, StorageFault> {
        let mut decoded = None;
        self.read_with(T::CF, key, &mut |bytes| {
            decoded = bytes.map(|b| decode(T::CF, key, b));
        })?;
        decoded.transpose()
    }

    /// Whether a record of type `T` is stored under `key`, without decoding
    /// it (a damaged record shows when it is loaded).
    pub(crate) fn exists<T: Record>(&self, key: &[u8]) -> Result<bool, StorageFault> {
        let mut found = false;
        self.read_with(T::CF, key, &mut |bytes| found = bytes.is_some())?;
        Ok(found)
    }
}

/// Writes `record` under its own key in the current command.
pub(crate) fn save<T: Record>(txn: &mut Txn<'_>, record: &T) {
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
    /// Last lifecycle event id issued: u64 big-endian.
    pub const EVENT_SEQ: &[u8] = b"seq/event";
    /// Last audit record sequence number issued: u64 big-endian.
    pub const AUDIT_SEQ: &[u8] = b"seq/audit";
    /// Last AUP case id issued: u64 big-endian.
    pub const CASE_SEQ: &[u8] = b"seq/case";
    /// Prefix of the registry's statistics (u64 big-endian counters kept
    /// as commands apply, so metrics read them without scanning objects;
    /// the same on every replica): [`domains_in`], [`HOSTS`], [`CONTACTS`]
    /// and [`events_run`].
    pub const STATS: &[u8] = b"stats/";
    /// Prefix of the object counts under [`STATS`].
    pub const STATS_OBJECTS: &str = "stats/objects/";
    /// Prefix of the lifecycle event counts under [`STATS`].
    pub const STATS_EVENTS: &str = "stats/events/";
    /// Number of hosts that exist.
    pub const HOSTS: &[u8] = b"stats/objects/host";
    /// Number of contacts that exist.
    pub const CONTACTS: &[u8] = b"stats/objects/contact";

    /// Key of the number of domains that exist under `tld`.
    pub fn domains_in(tld: &str) -> Vec<u8> {
        format!("{STATS_OBJECTS}domain/{tld}").into_bytes()
    }

    /// Key of the number of lifecycle events of `kind` that ran.
    pub fn events_run(kind: super::EventKind) -> Vec<u8> {
        format!("{STATS_EVENTS}{}", kind.as_str()).into_bytes()
    }
}

/// Reads a big-endian u64 counter from [`Cf::Meta`]; absent is 0.
pub(crate) fn read_counter(r: &dyn StateRead, key: &[u8]) -> Result<u64, StorageFault> {
    let mut value = Ok(0);
    r.read_with(Cf::Meta, key, &mut |bytes| {
        if let Some(bytes) = bytes {
            value = bytes
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StorageFault(format!("meta {key:?} is not a u64")));
        }
    })?;
    value
}

/// Reads registry time from [`Cf::Meta`]; absent (empty state) is 0.
pub(crate) fn read_now_ms(r: &dyn StateRead) -> Result<i64, StorageFault> {
    let mut value = Ok(0);
    r.read_with(Cf::Meta, meta::NOW_MS, &mut |bytes| {
        if let Some(bytes) = bytes {
            value = bytes
                .try_into()
                .map(i64::from_be_bytes)
                .map_err(|_| StorageFault("meta now_ms is not an i64".into()));
        }
    })?;
    value
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
    /// The scripts IDN labels may be written in.
    pub idn: IdnTable,
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
            idn: Some(self.idn.to_proto()),
        }
    }
}

/// A top-level domain served by the registry, keyed by its A-label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TldRecord {
    pub name: String,
    pub policy: TldPolicy,
    pub lifecycle: Lifecycle,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
}

impl Record for TldRecord {
    const CF: Cf = Cf::Tlds;
    const FORMAT: u8 = RECORD_FORMAT_V2;
    fn key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
    fn decode_older(version: u8, body: &[u8]) -> Option<postcard::Result<(Self, &[u8])>> {
        (version == RECORD_FORMAT_V1).then(|| {
            postcard::take_from_bytes::<TldRecordV1>(body).map(|(old, rest)| (old.upgrade(), rest))
        })
    }
}

/// [`TldRecord`] as format version 1 wrote it, before the policy had an IDN
/// table. Decoded only, never written; frozen as it was.
#[derive(Deserialize)]
struct TldRecordV1 {
    name: String,
    policy: TldPolicyV1,
    lifecycle: Lifecycle,
    created_by: String,
    created_ms: i64,
    updated_by: String,
    updated_ms: i64,
}

/// [`TldPolicy`] in format version 1 of [`TldRecord`].
#[derive(Deserialize)]
struct TldPolicyV1 {
    min_period_years: u32,
    max_period_years: u32,
    create_price_minor_units: i64,
    renew_price_minor_units: i64,
    currency: String,
    min_label_length: u32,
    max_label_length: u32,
    allow_idn: bool,
}

impl TldRecordV1 {
    /// The record with the default IDN table, which accepts every
    /// single-script label: what the TLD accepted before, minus
    /// mixed-script look-alikes.
    fn upgrade(self) -> TldRecord {
        let p = self.policy;
        TldRecord {
            name: self.name,
            policy: TldPolicy {
                min_period_years: p.min_period_years,
                max_period_years: p.max_period_years,
                create_price_minor_units: p.create_price_minor_units,
                renew_price_minor_units: p.renew_price_minor_units,
                currency: p.currency,
                min_label_length: p.min_label_length,
                max_label_length: p.max_label_length,
                allow_idn: p.allow_idn,
                idn: IdnTable::default(),
            },
            lifecycle: self.lifecycle,
            created_by: self.created_by,
            created_ms: self.created_ms,
            updated_by: self.updated_by,
            updated_ms: self.updated_ms,
        }
    }
}

impl TldRecord {
    pub fn to_proto(&self) -> v1::Tld {
        v1::Tld {
            name: self.name.clone(),
            policy: Some(self.policy.to_proto()),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            lifecycle: Some(self.lifecycle.to_proto()),
        }
    }
}

/// A registrar's account. Invariant:
/// `total_deposits == balance + total_charges - total_refunds`, refunds never
/// exceed charges, and no charge takes the balance below `-credit_limit`.
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
    pub total_refunds_minor_units: i64,
    /// The balance may go down to minus this.
    pub credit_limit_minor_units: i64,
    /// A low-balance poll message is queued when the balance drops below
    /// this (0: never); once per crossing.
    pub low_balance_threshold_minor_units: i64,
    pub low_balance_notified: bool,
    /// Number of ledger entries; the newest has this sequence number.
    pub ledger_len: u64,
    /// Last poll message id issued to this registrar.
    pub poll_seq: u64,
    /// Poll messages waiting.
    pub poll_count: u64,
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
        self.total_charges_minor_units >= 0
            && (0..=self.total_charges_minor_units).contains(&self.total_refunds_minor_units)
            && self
                .balance_minor_units
                .checked_add(self.total_charges_minor_units)
                .and_then(|v| v.checked_sub(self.total_refunds_minor_units))
                == Some(self.total_deposits_minor_units)
    }

    /// What the account can still spend: balance plus credit limit.
    pub fn available_minor_units(&self) -> i64 {
        self.balance_minor_units
            .saturating_add(self.credit_limit_minor_units)
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
            credit_limit_minor_units: self.credit_limit_minor_units,
            total_refunds_minor_units: self.total_refunds_minor_units,
            low_balance_threshold_minor_units: self.low_balance_threshold_minor_units,
            poll_count: self.poll_count,
        }
    }
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LedgerKind {
    Deposit,
    Create,
    Renew,
    AutoRenew,
    Transfer,
    Restore,
    Refund,
}

impl LedgerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Deposit => "deposit",
            LedgerKind::Create => "create",
            LedgerKind::Renew => "renew",
            LedgerKind::AutoRenew => "auto_renew",
            LedgerKind::Transfer => "transfer",
            LedgerKind::Restore => "restore",
            LedgerKind::Refund => "refund",
        }
    }

    /// Whether entries of this kind are charges (negative amounts).
    pub const fn is_charge(self) -> bool {
        !matches!(self, LedgerKind::Deposit | LedgerKind::Refund)
    }
}

/// One movement on a registrar's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LedgerRecord {
    pub registrar: String,
    pub seq: u64,
    pub time_ms: i64,
    pub kind: LedgerKind,
    /// Positive for deposits and refunds, negative (or zero) for charges.
    pub amount_minor_units: i64,
    pub balance_after_minor_units: i64,
    pub object: String,
    pub sv_trid: String,
    pub reference: String,
    /// Refunds: the transaction of the refunded charge.
    pub linked_sv_trid: String,
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
            linked_sv_trid: self.linked_sv_trid.clone(),
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
            statuses: shown_statuses(
                &self.statuses,
                &self.server_statuses,
                self.domain_refs > 0,
                false,
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
        }
    }
}

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
    /// `client*` statuses, set by the sponsor.
    pub statuses: BTreeSet<ClientStatus>,
    /// `server*` statuses set by registry staff (registry lock); suspensions
    /// add theirs on top (see [`DomainRecord::server_statuses_in_effect`]).
    pub server_statuses: BTreeSet<ServerStatus>,
    /// AUP suspensions in effect, by case id.
    pub suspensions: BTreeMap<u64, SuspensionInfo>,
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
    /// Where the domain is in its life.
    pub state: DomainState,
    /// Grace periods that may still be in effect (expired ones are dropped
    /// on the next change).
    pub graces: Vec<Grace>,
    /// The pending transfer, or the most recent one.
    pub transfer: Option<TransferRecord>,
    /// Transfers are refused before this time.
    pub transfer_lock_until_ms: i64,
    /// This domain's entries in [`Cf::DueEvents`], so they can be moved or
    /// removed when the domain changes.
    pub events: Vec<ScheduledEvent>,
}

/// A suspension recorded against an AUP case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SuspensionInfo {
    pub reason: String,
    pub suspended_ms: i64,
    pub suspended_by: String,
}

/// Where a domain is in its life (RFC 3915).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DomainState {
    /// Registered (possibly in a grace period or pending transfer).
    Active,
    /// Deleted, restorable until `ends_ms` (rgp redemptionPeriod).
    Redemption { deleted_ms: i64, ends_ms: i64 },
    /// A restore was requested; the report is due by `report_due_ms`
    /// (rgp pendingRestore). The renewal charged with the request is
    /// refunded if the report never comes.
    PendingRestore {
        deleted_ms: i64,
        redemption_ends_ms: i64,
        report_due_ms: i64,
        renewal_minor_units: i64,
        renewal_sv_trid: String,
    },
    /// Past redemption; purged at `purge_ms` (rgp pendingDelete).
    PendingPurge { deleted_ms: i64, purge_ms: i64 },
}

impl DomainState {
    /// Whether the domain is pending deletion (any phase).
    pub fn is_deleted(&self) -> bool {
        !matches!(self, DomainState::Active)
    }
}

/// What a grace period covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum GraceKind {
    Add,
    Renew,
    AutoRenew,
    Transfer,
}

impl GraceKind {
    /// The RFC 3915 rgpStatus name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GraceKind::Add => "addPeriod",
            GraceKind::Renew => "renewPeriod",
            GraceKind::AutoRenew => "autoRenewPeriod",
            GraceKind::Transfer => "transferPeriod",
        }
    }
}

/// A grace period: a delete before `ends_ms` refunds `amount` to
/// `registrar` (the charge made by `sv_trid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Grace {
    pub kind: GraceKind,
    pub ends_ms: i64,
    pub registrar: String,
    pub amount_minor_units: i64,
    pub currency: String,
    pub sv_trid: String,
}

/// A domain transfer's outcome (RFC 5731 trStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TransferStatus {
    Pending,
    ClientApproved,
    ClientCancelled,
    ClientRejected,
    ServerApproved,
    ServerCancelled,
}

impl TransferStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Pending => "pending",
            TransferStatus::ClientApproved => "clientApproved",
            TransferStatus::ClientCancelled => "clientCancelled",
            TransferStatus::ClientRejected => "clientRejected",
            TransferStatus::ServerApproved => "serverApproved",
            TransferStatus::ServerCancelled => "serverCancelled",
        }
    }

    pub fn to_proto(self) -> v1::TransferStatus {
        match self {
            TransferStatus::Pending => v1::TransferStatus::Pending,
            TransferStatus::ClientApproved => v1::TransferStatus::ClientApproved,
            TransferStatus::ClientCancelled => v1::TransferStatus::ClientCancelled,
            TransferStatus::ClientRejected => v1::TransferStatus::ClientRejected,
            TransferStatus::ServerApproved => v1::TransferStatus::ServerApproved,
            TransferStatus::ServerCancelled => v1::TransferStatus::ServerCancelled,
        }
    }
}

/// A domain transfer, pending or done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TransferRecord {
    pub status: TransferStatus,
    pub gaining: String,
    pub losing: String,
    pub requested_ms: i64,
    pub action_due_ms: i64,
    pub acted_ms: i64,
    /// What the gaining registrar was charged with the request.
    pub charged_minor_units: i64,
    pub currency: String,
    pub charge_sv_trid: String,
}

impl TransferRecord {
    pub fn to_proto(&self, name: &str, expiry_ms: i64) -> v1::TransferData {
        v1::TransferData {
            name: name.into(),
            status: self.status.to_proto() as i32,
            status_name: self.status.as_str().into(),
            gaining_registrar: self.gaining.clone(),
            requested_ms: self.requested_ms,
            losing_registrar: self.losing.clone(),
            action_due_ms: self.action_due_ms,
            acted_ms: self.acted_ms,
            expiry_ms,
        }
    }
}

/// What a scheduled lifecycle event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum EventKind {
    /// At expiry: renew for a year, or delete if that is impossible.
    AutoRenew,
    /// The registry approves a pending transfer.
    TransferAutoApprove,
    /// Redemption ends: the domain becomes pendingDelete (purge pending).
    RedemptionEnd,
    /// A restore request's report is overdue: back to redemption.
    RestoreReportDue,
    /// The domain is purged.
    Purge,
}

impl EventKind {
    /// The name audit records use.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::AutoRenew => "AutoRenew",
            EventKind::TransferAutoApprove => "TransferAutoApprove",
            EventKind::RedemptionEnd => "RedemptionEnd",
            EventKind::RestoreReportDue => "RestoreReportDue",
            EventKind::Purge => "Purge",
        }
    }
}

/// A domain's handle on one of its events in [`Cf::DueEvents`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScheduledEvent {
    pub kind: EventKind,
    pub due_ms: i64,
    pub id: u64,
}

/// The key of a due event: due time (sign bit flipped, so negative times
/// sort first), then the event id.
pub(crate) fn due_event_key(due_ms: i64, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&((due_ms as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// A lifecycle event waiting in [`Cf::DueEvents`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub id: u64,
    pub due_ms: i64,
    pub kind: EventKind,
    pub domain: String,
}

impl Record for EventRecord {
    const CF: Cf = Cf::DueEvents;
    fn key(&self) -> Vec<u8> {
        due_event_key(self.due_ms, self.id)
    }
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

    /// The server statuses in effect: those staff set, plus serverHold and
    /// the update, delete and transfer prohibitions while suspended.
    pub fn server_statuses_in_effect(&self) -> BTreeSet<ServerStatus> {
        let mut all = self.server_statuses.clone();
        if !self.suspensions.is_empty() {
            all.extend(ServerStatus::SUSPENSION);
        }
        all
    }

    /// Whether a transfer is pending.
    pub fn transfer_pending(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| t.status == TransferStatus::Pending)
    }

    /// Whether the domain is published in the zone.
    pub fn in_zone(&self) -> bool {
        !self.nameservers.is_empty()
            && !self.statuses.contains(&ClientStatus::Hold)
            && !self
                .server_statuses_in_effect()
                .contains(&ServerStatus::Hold)
            && !self.state.is_deleted()
    }

    /// Every EPP status shown, sorted: client*, server*, pendingDelete,
    /// pendingTransfer, inactive, or ok when none applies.
    pub fn shown_statuses(&self) -> Vec<String> {
        let mut shown: BTreeSet<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
        shown.extend(self.server_statuses_in_effect().iter().map(|s| s.as_str()));
        if self.state.is_deleted() {
            shown.insert("pendingDelete");
        }
        if self.transfer_pending() {
            shown.insert("pendingTransfer");
        }
        if self.nameservers.is_empty() {
            shown.insert("inactive");
        }
        if shown.is_empty() {
            shown.insert("ok");
        }
        shown.into_iter().map(String::from).collect()
    }

    /// Grace periods still in effect at `now_ms`.
    pub fn active_graces(&self, now_ms: i64) -> impl Iterator<Item = &Grace> {
        self.graces.iter().filter(move |g| g.ends_ms > now_ms)
    }

    /// RFC 3915 rgpStatus values at `now_ms`.
    pub fn rgp_statuses(&self, now_ms: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .active_graces(now_ms)
            .map(|g| g.kind.as_str().to_string())
            .collect();
        match &self.state {
            DomainState::Active => {}
            DomainState::Redemption { .. } => out.push("redemptionPeriod".into()),
            DomainState::PendingRestore { .. } => out.push("pendingRestore".into()),
            DomainState::PendingPurge { .. } => out.push("pendingDelete".into()),
        }
        out
    }

    /// The wire form at registry time `now_ms`; auth info only for the
    /// sponsor.
    pub fn to_proto(&self, viewer: &str, now_ms: i64) -> v1::Domain {
        let (deleted_ms, purge_ms) = match &self.state {
            DomainState::Active => (0, 0),
            DomainState::Redemption { deleted_ms, .. }
            | DomainState::PendingRestore { deleted_ms, .. } => (*deleted_ms, 0),
            DomainState::PendingPurge {
                deleted_ms,
                purge_ms,
            } => (*deleted_ms, *purge_ms),
        };
        v1::Domain {
            name: self.name.clone(),
            unicode_name: names::to_unicode(&self.name).unwrap_or_default(),
            roid: self.roid.clone(),
            statuses: self.shown_statuses(),
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
            rgp_statuses: self.rgp_statuses(now_ms),
            in_zone: self.in_zone(),
            suspensions: self
                .suspensions
                .iter()
                .map(|(id, s)| v1::Suspension {
                    case_id: *id,
                    reason: s.reason.clone(),
                    suspended_ms: s.suspended_ms,
                    suspended_by: s.suspended_by.clone(),
                })
                .collect(),
            transfer_lock_until_ms: self.transfer_lock_until_ms,
            deleted_ms,
            purge_ms,
            grace_periods: self
                .active_graces(now_ms)
                .map(|g| v1::GracePeriod {
                    kind: g.kind.as_str().into(),
                    ends_ms: g.ends_ms,
                    refundable: Some(v1::Money {
                        minor_units: g.amount_minor_units,
                        currency: g.currency.clone(),
                    }),
                })
                .collect(),
            transfer: self
                .transfer
                .as_ref()
                .map(|t| t.to_proto(&self.name, self.expiry_ms)),
        }
    }
}

/// The statuses a contact or host shows: its client and server statuses,
/// `inactive` when asked for, `ok` when nothing else applies, and `linked`
/// (which may accompany any other) for referenced contacts and hosts.
/// Sorted alphabetically.
fn shown_statuses(
    client: &BTreeSet<ClientStatus>,
    server: &BTreeSet<ServerStatus>,
    linked: bool,
    inactive: bool,
) -> Vec<String> {
    let mut shown: BTreeSet<&str> = client.iter().map(|s| s.as_str()).collect();
    shown.extend(server.iter().map(|s| s.as_str()));
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
/// Kept for [`super::apply::IDEMPOTENCY_RETENTION_MS`]: each record has an
/// entry in [`Cf::IdempotencyExpiry`], and ticks drop expired records.
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

/// A TLD's lifecycle periods (ms), the prices beyond the yearly create and
/// renew prices, and its name lists, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lifecycle {
    pub add_grace_ms: i64,
    pub renew_grace_ms: i64,
    pub auto_renew_grace_ms: i64,
    pub transfer_grace_ms: i64,
    pub transfer_auto_approve_ms: i64,
    pub redemption_ms: i64,
    pub pending_delete_ms: i64,
    pub restore_report_ms: i64,
    pub transfer_lock_ms: i64,
    pub max_expiry_horizon_years: u32,
    /// `None`: the renew price.
    pub auto_renew_price_minor_units: Option<i64>,
    /// `None`: the renew price.
    pub transfer_price_minor_units: Option<i64>,
    pub restore_price_minor_units: i64,
    /// Label (A-label) → (create, renew) price per year.
    pub premium: BTreeMap<String, (i64, i64)>,
    /// Labels (A-label) held back by the registry.
    pub reserved: BTreeSet<String>,
    /// Labels (A-label) blocked.
    pub blocked: BTreeSet<String>,
    /// Years → create price of that whole period, replacing years × the
    /// yearly create price (not for premium names).
    pub create_period_prices: BTreeMap<u32, i64>,
    /// Years → renew price of that whole period, for renew commands.
    pub renew_period_prices: BTreeMap<u32, i64>,
}

impl Lifecycle {
    /// The wire form, every value set.
    pub fn to_proto(&self) -> v1::TldLifecyclePolicy {
        let s = |ms: i64| Some(ms / 1000);
        v1::TldLifecyclePolicy {
            add_grace_seconds: s(self.add_grace_ms),
            renew_grace_seconds: s(self.renew_grace_ms),
            auto_renew_grace_seconds: s(self.auto_renew_grace_ms),
            transfer_grace_seconds: s(self.transfer_grace_ms),
            transfer_auto_approve_seconds: s(self.transfer_auto_approve_ms),
            redemption_seconds: s(self.redemption_ms),
            pending_delete_seconds: s(self.pending_delete_ms),
            restore_report_seconds: s(self.restore_report_ms),
            transfer_lock_seconds: s(self.transfer_lock_ms),
            max_expiry_horizon_years: Some(self.max_expiry_horizon_years),
            auto_renew_price_minor_units: self.auto_renew_price_minor_units,
            transfer_price_minor_units: self.transfer_price_minor_units,
            restore_price_minor_units: Some(self.restore_price_minor_units),
            premium_names: self
                .premium
                .iter()
                .map(|(label, (create, renew))| v1::PremiumName {
                    label: label.clone(),
                    create_price_minor_units: *create,
                    renew_price_minor_units: *renew,
                })
                .collect(),
            reserved_names: self.reserved.iter().cloned().collect(),
            blocked_names: self.blocked.iter().cloned().collect(),
            create_period_prices: period_prices_to_proto(&self.create_period_prices),
            renew_period_prices: period_prices_to_proto(&self.renew_period_prices),
        }
    }
}

/// A period price table as the wire type, shortest period first.
fn period_prices_to_proto(table: &BTreeMap<u32, i64>) -> Vec<v1::PeriodPrice> {
    table
        .iter()
        .map(|(&years, &price)| v1::PeriodPrice {
            years,
            price_minor_units: price,
        })
        .collect()
}

/// One message in a registrar's poll queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PollRecord {
    pub registrar: String,
    pub id: u64,
    pub time_ms: i64,
    pub kind: PollKind,
    pub object: String,
    pub message: String,
    /// Transfer messages: the transfer as it stood, and the expiry.
    pub transfer: Option<(TransferRecord, i64)>,
    pub sv_trid: String,
}

/// What a poll message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PollKind {
    TransferRequested,
    TransferApproved,
    TransferRejected,
    TransferCancelled,
    TransferAutoApproved,
    TransferServerCancelled,
    AutoRenewed,
    AutoRenewFailed,
    RedemptionEnded,
    Purged,
    RestoreReportOverdue,
    ServerStatusChanged,
    LowBalance,
}

impl PollKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            PollKind::TransferRequested => "transfer_requested",
            PollKind::TransferApproved => "transfer_approved",
            PollKind::TransferRejected => "transfer_rejected",
            PollKind::TransferCancelled => "transfer_cancelled",
            PollKind::TransferAutoApproved => "transfer_auto_approved",
            PollKind::TransferServerCancelled => "transfer_server_cancelled",
            PollKind::AutoRenewed => "auto_renewed",
            PollKind::AutoRenewFailed => "auto_renew_failed",
            PollKind::RedemptionEnded => "redemption_ended",
            PollKind::Purged => "purged",
            PollKind::RestoreReportOverdue => "restore_report_overdue",
            PollKind::ServerStatusChanged => "server_status_changed",
            PollKind::LowBalance => "low_balance",
        }
    }
}

/// The key of a poll message: registrar id, 0x00, big-endian id.
pub(crate) fn poll_key(registrar: &str, id: u64) -> Vec<u8> {
    ledger_key(registrar, id)
}

impl Record for PollRecord {
    const CF: Cf = Cf::Poll;
    fn key(&self) -> Vec<u8> {
        poll_key(&self.registrar, self.id)
    }
}

impl PollRecord {
    pub fn to_proto(&self) -> v1::PollMessage {
        v1::PollMessage {
            id: self.id,
            time_ms: self.time_ms,
            kind: self.kind.as_str().into(),
            object: self.object.clone(),
            message: self.message.clone(),
            transfer: self
                .transfer
                .as_ref()
                .map(|(t, expiry_ms)| t.to_proto(&self.object, *expiry_ms)),
            sv_trid: self.sv_trid.clone(),
        }
    }
}

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ActorKind {
    Registrar,
    Staff,
    System,
}

impl ActorKind {
    pub fn to_proto(self) -> v1::ActorKind {
        match self {
            ActorKind::Registrar => v1::ActorKind::Registrar,
            ActorKind::Staff => v1::ActorKind::Staff,
            ActorKind::System => v1::ActorKind::System,
        }
    }
}

/// One audit record: a mutation of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditRecord {
    pub seq: u64,
    pub time_ms: i64,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub command: String,
    pub object_kind: String,
    pub object: String,
    pub sv_trid: String,
    pub cl_trid: String,
    pub changes: Vec<String>,
    /// The gateway that delivered the command for the registrar (its
    /// certificate name); empty for direct calls.
    pub via: String,
}

impl Record for AuditRecord {
    const CF: Cf = Cf::Audit;
    const FORMAT: u8 = RECORD_FORMAT_V2;
    fn key(&self) -> Vec<u8> {
        self.seq.to_be_bytes().to_vec()
    }
    fn decode_older(version: u8, body: &[u8]) -> Option<postcard::Result<(Self, &[u8])>> {
        (version == RECORD_FORMAT_V1).then(|| {
            postcard::take_from_bytes::<AuditRecordV1>(body)
                .map(|(old, rest)| (old.upgrade(), rest))
        })
    }
}

/// [`AuditRecord`] as format version 1 wrote it, before records named the
/// gateway. Decoded only, never written; frozen as it was.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct AuditRecordV1 {
    seq: u64,
    time_ms: i64,
    actor_kind: ActorKind,
    actor: String,
    command: String,
    object_kind: String,
    object: String,
    sv_trid: String,
    cl_trid: String,
    changes: Vec<String>,
}

impl AuditRecordV1 {
    /// The record of a direct call: no gateway recorded one then.
    fn upgrade(self) -> AuditRecord {
        AuditRecord {
            seq: self.seq,
            time_ms: self.time_ms,
            actor_kind: self.actor_kind,
            actor: self.actor,
            command: self.command,
            object_kind: self.object_kind,
            object: self.object,
            sv_trid: self.sv_trid,
            cl_trid: self.cl_trid,
            changes: self.changes,
            via: String::new(),
        }
    }
}

impl AuditRecord {
    pub fn to_proto(&self) -> v1::AuditRecord {
        v1::AuditRecord {
            seq: self.seq,
            time_ms: self.time_ms,
            actor_kind: self.actor_kind.to_proto() as i32,
            actor: self.actor.clone(),
            command: self.command.clone(),
            object_kind: self.object_kind.clone(),
            object: self.object.clone(),
            sv_trid: self.sv_trid.clone(),
            cl_trid: self.cl_trid.clone(),
            changes: self.changes.clone(),
            via: self.via.clone(),
        }
    }
}

/// The prefix of an audit index key: the indexed value and 0x00.
pub(crate) fn audit_index_prefix(value: &str) -> Vec<u8> {
    let mut key = value.as_bytes().to_vec();
    key.push(0);
    key
}

/// Inverted time, so that newer records sort first.
pub(crate) fn inverted_time(time_ms: i64) -> [u8; 8] {
    (u64::MAX - ((time_ms as u64) ^ (1 << 63))).to_be_bytes()
}

/// An audit index key: prefix, inverted time, inverted sequence.
pub(crate) fn audit_index_key(value: &str, time_ms: i64, seq: u64) -> Vec<u8> {
    let mut key = audit_index_prefix(value);
    key.extend_from_slice(&inverted_time(time_ms));
    key.extend_from_slice(&(u64::MAX - seq).to_be_bytes());
    key
}

/// The object index value of an object: `kind:name`.
pub(crate) fn audit_object(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

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

/// The state of an AUP case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CaseState {
    Open,
    Escalated,
    Closed,
}

impl CaseState {
    pub const fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Escalated => "escalated",
            CaseState::Closed => "closed",
        }
    }
}

/// One step in a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CaseEvent {
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub note: String,
    pub sv_trid: String,
}

/// An AUP complaint case on a domain, keyed by big-endian id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CaseRecord {
    pub id: u64,
    pub domain: String,
    pub reason: String,
    pub reference: String,
    pub state: CaseState,
    pub suspended: bool,
    pub opened_by: String,
    pub opened_ms: i64,
    pub history: Vec<CaseEvent>,
}

impl Record for CaseRecord {
    const CF: Cf = Cf::Cases;
    fn key(&self) -> Vec<u8> {
        self.id.to_be_bytes().to_vec()
    }
}

impl CaseRecord {
    pub fn to_proto(&self) -> v1::AupCase {
        v1::AupCase {
            id: self.id,
            domain: self.domain.clone(),
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            state: self.state.as_str().into(),
            suspended: self.suspended,
            opened_by: self.opened_by.clone(),
            opened_ms: self.opened_ms,
            history: self
                .history
                .iter()
                .map(|e| v1::CaseEvent {
                    time_ms: e.time_ms,
                    actor: e.actor.clone(),
                    action: e.action.clone(),
                    note: e.note.clone(),
                    sv_trid: e.sv_trid.clone(),
                })
                .collect(),
        }
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
            server_statuses: BTreeSet::from([ServerStatus::DeleteProhibited]),
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

    /// `.nz` as the registry stored it before TLD policies had an IDN
    /// table (format version 1): NZD, create 1000, renew 900, 1 to 10
    /// years, labels 1 to 63, IDNs allowed, the default lifecycle, created
    /// by "staff" at 2025-01-01T00:00:00Z.
    const TLD_RECORD_V1: &str = "01026e7a010ad00f880e034e5a44013f0180b0fe9b0380b0fe9b0380b0f1\
                                 fb1c80b0fe9b0380b0fe9b0380a0f6a71380b0fe9b038090e4c00480c0ec\
                                 cf260a000000000000000005737461666680f0cbf283650000";

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex fixture"))
            .collect()
    }

    #[test]
    fn a_tld_record_written_before_idn_tables_decodes_with_the_default_table() {
        let bytes = from_hex(TLD_RECORD_V1);
        assert_eq!(bytes[0], RECORD_FORMAT_V1);
        let tld: TldRecord = decode(Cf::Tlds, b"nz", &bytes).expect("old records still decode");
        assert_eq!(tld.name, "nz");
        assert_eq!(tld.policy.currency, "NZD");
        assert_eq!(
            (
                tld.policy.create_price_minor_units,
                tld.policy.renew_price_minor_units
            ),
            (1000, 900)
        );
        assert!(tld.policy.allow_idn);
        assert_eq!(tld.policy.idn, IdnTable::default());
        assert_eq!(tld.lifecycle.add_grace_ms, 5 * 86_400_000);
        assert_eq!(
            (tld.created_by.as_str(), tld.created_ms),
            ("staff", 1_735_689_600_000)
        );

        // Written again, it is in the current format and reads back alike.
        let again = encode(&tld);
        assert_eq!(again[0], RECORD_FORMAT_V2);
        let back: TldRecord = decode(Cf::Tlds, b"nz", &again).unwrap();
        assert_eq!(back, tld);

        // A damaged old record is still a fault, not a default.
        let mut damaged = bytes.clone();
        damaged.push(0);
        assert!(decode::<TldRecord>(Cf::Tlds, b"nz", &damaged).is_err());
        assert!(decode::<TldRecord>(Cf::Tlds, b"nz", &bytes[..10]).is_err());
    }

    #[test]
    fn an_audit_record_written_before_gateways_were_named_decodes_as_a_direct_call() {
        let old = AuditRecordV1 {
            seq: 7,
            time_ms: 1_735_689_600_000,
            actor_kind: ActorKind::Registrar,
            actor: "acme".into(),
            command: "CreateDomain".into(),
            object_kind: "domain".into(),
            object: "example.nz".into(),
            sv_trid: "kauri-9".into(),
            cl_trid: "abc-1".into(),
            changes: vec!["created".into()],
        };
        let mut bytes = vec![RECORD_FORMAT_V1];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let record: AuditRecord = decode(Cf::Audit, b"k", &bytes).expect("old records decode");
        assert_eq!((record.seq, record.actor.as_str()), (7, "acme"));
        assert_eq!(record.changes, ["created"]);
        assert_eq!(record.via, "", "a version 1 record names no gateway");
        let again = encode(&record);
        assert_eq!(again[0], RECORD_FORMAT_V2);
        assert_eq!(
            decode::<AuditRecord>(Cf::Audit, b"k", &again).unwrap(),
            record
        );
    }

    #[test]
    fn a_record_type_reads_only_the_versions_it_had() {
        let host = HostRecord {
            name: "ns1.example.nz".into(),
            roid: "H1-KAURI".into(),
            statuses: BTreeSet::new(),
            server_statuses: BTreeSet::new(),
            addresses: BTreeSet::new(),
            superordinate: None,
            sponsor: "rar-a".into(),
            created_by: "rar-a".into(),
            created_ms: 1,
            updated_by: String::new(),
            updated_ms: 0,
            domain_refs: 0,
        };
        let mut bytes = encode(&host);
        bytes[0] = RECORD_FORMAT_V2;
        let e = decode::<HostRecord>(Cf::Hosts, b"k", &bytes).unwrap_err();
        assert!(e.0.contains("unknown format version 2"), "{e:?}");
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
        assert!(read_now_ms(&state).is_err());
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
        let no_server = BTreeSet::new();
        assert_eq!(shown_statuses(&none, &no_server, false, false), ["ok"]);
        assert_eq!(
            shown_statuses(&none, &no_server, true, false),
            ["linked", "ok"]
        );
        assert_eq!(shown_statuses(&none, &no_server, false, true), ["inactive"]);
        let hold = BTreeSet::from([ClientStatus::Hold]);
        assert_eq!(
            shown_statuses(&hold, &no_server, false, true),
            ["clientHold", "inactive"]
        );
        let locked = BTreeSet::from([ServerStatus::UpdateProhibited]);
        assert_eq!(
            shown_statuses(&none, &locked, true, false),
            ["linked", "serverUpdateProhibited"],
            "a server status replaces ok"
        );
    }
}
