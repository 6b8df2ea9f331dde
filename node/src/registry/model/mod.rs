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
//! version 2, which added the gateway a command came through (`via`);
//! [`DomainRecord`] at 2 (DS records); [`ContactRecord`] at 2 (transfers).
//!
//! One file per family of records (`tld`, `registrar`, `contact`, `host`,
//! `domain`, `idempotency`, `poll`, `audit`, `session`, `case`); this file
//! holds what they share: the [`Record`] trait, the encoding, typed reads
//! and the keys of [`Cf::Meta`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use kauri_proto::v1;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::engine::{Cf, StateRead, StorageFault, Txn};
use super::error::{ObjectKind, RegistryError};
use super::idn::IdnTable;
use super::names;
use super::status::{ClientStatus, ServerStatus};

mod tld;
mod registrar;
mod contact;
mod host;
mod domain;
mod idempotency;
mod poll;
mod audit;
mod session;
mod case;

pub(crate) use audit::*;
pub(crate) use case::*;
pub(crate) use contact::*;
pub(crate) use domain::*;
pub(crate) use host::*;
pub(crate) use idempotency::*;
pub(crate) use poll::*;
pub(crate) use registrar::*;
pub(crate) use session::*;
pub(crate) use tld::*;

/// The format version byte in front of an encoded record, for record types
/// whose fields never changed.
const RECORD_FORMAT_V1: u8 = 1;

/// The format version of [`TldRecord`] since its policy has an IDN table,
/// of [`AuditRecord`] since it names the gateway (`via`), and of
/// [`DomainRecord`] since it holds DS records.
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

/// The statuses a contact or host shows: its client and server statuses,
/// `pendingTransfer` while a (contact) transfer is pending, `ok` when
/// nothing else applies, and `linked`
/// (which may accompany any other) for referenced contacts and hosts.
/// Sorted alphabetically.
fn shown_statuses(
    client: &BTreeSet<ClientStatus>,
    server: &BTreeSet<ServerStatus>,
    linked: bool,
    pending_transfer: bool,
) -> Vec<String> {
    let mut shown: BTreeSet<&str> = client.iter().map(|s| s.as_str()).collect();
    shown.extend(server.iter().map(|s| s.as_str()));
    if pending_transfer {
        shown.insert("pendingTransfer");
    }
    if shown.is_empty() {
        shown.insert("ok");
    }
    if linked {
        shown.insert("linked");
    }
    shown.into_iter().map(String::from).collect()
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
    fn a_contact_from_before_contact_transfers_reads_as_never_transferred() {
        let old = contact::ContactRecordV1 {
            id: "c-1".into(),
            roid: "C1-KAURI".into(),
            statuses: BTreeSet::from([ClientStatus::DeleteProhibited]),
            server_statuses: BTreeSet::new(),
            fields: ContactFields {
                postal_info: vec![],
                voice: "+64.41234567".into(),
                fax: String::new(),
                email: "c@example.nz".into(),
                disclose_nothing: false,
            },
            sponsor: "rar-a".into(),
            created_by: "rar-a".into(),
            created_ms: 1,
            updated_by: String::new(),
            updated_ms: 0,
            auth_info: "secret-1".into(),
            domain_refs: 2,
        };
        let mut bytes = vec![RECORD_FORMAT_V1];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let record: ContactRecord =
            decode(Cf::Contacts, b"c-1", &bytes).expect("old contacts decode");
        assert_eq!((record.id.as_str(), record.domain_refs), ("c-1", 2));
        assert_eq!(record.auth_info, "secret-1");
        assert!(record.transfer.is_none() && record.transfer_event.is_none());
        let again = encode(&record);
        assert_eq!(again[0], RECORD_FORMAT_V2);
        assert_eq!(
            decode::<ContactRecord>(Cf::Contacts, b"c-1", &again).unwrap(),
            record
        );
        assert!(decode::<ContactRecord>(Cf::Contacts, b"c-1", &bytes[..bytes.len() - 1]).is_err());
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
        assert_eq!(
            shown_statuses(&none, &no_server, false, true),
            ["pendingTransfer"]
        );
        let hold = BTreeSet::from([ClientStatus::UpdateProhibited]);
        assert_eq!(
            shown_statuses(&hold, &no_server, true, true),
            ["clientUpdateProhibited", "linked", "pendingTransfer"]
        );
        let locked = BTreeSet::from([ServerStatus::UpdateProhibited]);
        assert_eq!(
            shown_statuses(&none, &locked, true, false),
            ["linked", "serverUpdateProhibited"],
            "a server status replaces ok"
        );
    }
}
