//! The registry's view of storage: named column families, a read trait, and a
//! transaction overlay that collects one applied batch's writes.
//!
//! The state machine never holds a RocksDB handle. It reads through
//! [`StateRead`] and writes into a [`Txn`]; the storage layer turns the
//! finished write set into one RocksDB `WriteBatch` (together with the last
//! applied log id). [`MemState`] is the in-memory engine used by tests and by
//! the determinism checks.

use std::collections::BTreeMap;
use std::ops::Bound;

/// A column family of registry state. The discriminant order is the order in
/// which state is hashed and snapshotted; append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// Registry-wide values: current registry time, id counters.
    Meta,
    /// TLD policies, keyed by lower-case A-label.
    Tlds,
    /// Registrar accounts, keyed by registrar id.
    Registrars,
    /// Ledger entries, keyed by registrar id, 0x00, big-endian sequence.
    Ledger,
    /// Contacts, keyed by contact id.
    Contacts,
    /// Hosts, keyed by lower-case A-label.
    Hosts,
    /// Domains, keyed by lower-case A-label.
    Domains,
    /// Idempotency records, keyed by actor, 0x00, client transaction id.
    Idempotency,
    /// Scheduled lifecycle events, keyed by due time (order-preserving
    /// big-endian) and event id: a tick reads only what is due.
    DueEvents,
    /// Poll messages, keyed by registrar id, 0x00, big-endian message id.
    Poll,
    /// Audit records, keyed by big-endian sequence number.
    Audit,
    /// Audit index by object: `kind:name`, 0x00, inverted time, inverted
    /// sequence (newest first) → sequence.
    AuditByObject,
    /// Audit index by actor: actor, 0x00, inverted time, inverted sequence.
    AuditByActor,
    /// AUP complaint cases, keyed by big-endian case id.
    Cases,
    /// When idempotency records expire: big-endian expiry time and log
    /// index → the record's key. Ticks prune what has expired.
    IdempotencyExpiry,
    /// Registrar sessions of gateways, keyed by the SHA-256 of the token.
    Sessions,
    /// Sessions by registrar: registrar id, 0x00, token hash → nothing.
    SessionsByRegistrar,
    /// When sessions expire: big-endian expiry time, token hash → nothing.
    /// Ticks prune what has expired.
    SessionExpiry,
    /// Which domains delegate to a host: host A-label, 0x00, domain A-label
    /// → nothing, so a host rename finds the delegations to rewrite.
    /// Derived from the domains' nameservers ([`Cf::is_derived`]).
    HostDelegations,
}

impl Cf {
    /// Every registry column family, in hashing order.
    pub const ALL: [Cf; 19] = [
        Cf::Meta,
        Cf::Tlds,
        Cf::Registrars,
        Cf::Ledger,
        Cf::Contacts,
        Cf::Hosts,
        Cf::Domains,
        Cf::Idempotency,
        Cf::DueEvents,
        Cf::Poll,
        Cf::Audit,
        Cf::AuditByObject,
        Cf::AuditByActor,
        Cf::Cases,
        Cf::IdempotencyExpiry,
        Cf::Sessions,
        Cf::SessionsByRegistrar,
        Cf::SessionExpiry,
        Cf::HostDelegations,
    ];

    /// The RocksDB column family name.
    pub const fn name(self) -> &'static str {
        match self {
            Cf::Meta => "registry_meta",
            Cf::Tlds => "tlds",
            Cf::Registrars => "registrars",
            Cf::Ledger => "ledger",
            Cf::Contacts => "contacts",
            Cf::Hosts => "hosts",
            Cf::Domains => "domains",
            Cf::Idempotency => "idempotency",
            Cf::DueEvents => "due_events",
            Cf::Poll => "poll",
            Cf::Audit => "audit",
            Cf::AuditByObject => "audit_by_object",
            Cf::AuditByActor => "audit_by_actor",
            Cf::Cases => "cases",
            Cf::IdempotencyExpiry => "idempotency_expiry",
            Cf::Sessions => "sessions",
            Cf::SessionsByRegistrar => "sessions_by_registrar",
            Cf::SessionExpiry => "session_expiry",
            Cf::HostDelegations => "host_delegations",
        }
    }

    /// Whether this family is an index computed from others alone (the
    /// delegations, from the domains). A derived family is left out of the
    /// state digest and the state chain, so replicas compare what the
    /// commands decided, and builds that keep the index compare equal to
    /// builds from before it; it is rebuilt from its source where a data
    /// directory or a snapshot lacks it.
    pub const fn is_derived(self) -> bool {
        matches!(self, Cf::HostDelegations)
    }

    /// A stable one-byte tag used in snapshots.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The column family with this snapshot tag.
    pub fn from_tag(tag: u8) -> Option<Cf> {
        Cf::ALL.get(tag as usize).copied()
    }
}

/// A failure of the storage underneath the state machine (I/O, corruption).
/// Never a registry rejection: those are [`super::RegistryError`].
#[derive(Debug, thiserror::Error)]
#[error("storage fault: {0}")]
pub struct StorageFault(pub String);

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Read access to registry state: the one read trait of the registry.
///
/// Everything that reads state takes `&dyn StateRead`: the RocksDB store
/// and [`MemState`] for queries, a [`Txn`] (or the command context over
/// it) inside apply, which sees its own writes. Typed reads of records are
/// `load` and `exists` on `dyn StateRead`.
pub trait StateRead {
    /// The value stored under `key`, if any.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault>;

    /// Calls `f` with the value under `key`, lent rather than copied where
    /// the source holds it in memory (a transaction's own writes).
    fn read_with(
        &self,
        cf: Cf,
        key: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), StorageFault> {
        f(self.get(cf, key)?.as_deref());
        Ok(())
    }

    /// Up to `limit` entries with keys starting with `prefix`, in key order,
    /// starting after `after` when given.
    fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageFault>;
}

/// Pending writes of one batch: `None` deletes the key.
pub type WriteSet = BTreeMap<(Cf, Vec<u8>), Option<Vec<u8>>>;

/// Writes to one column family, by key: `None` deletes the key.
type CfWrites = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Writes by column family (indexed by [`Cf::tag`]), so a read looks up a
/// borrowed key without allocating.
#[derive(Default)]
struct Layer {
    cfs: Vec<CfWrites>,
}

impl Layer {
    fn cf(&self, cf: Cf) -> Option<&CfWrites> {
        self.cfs.get(cf.tag() as usize)
    }

    fn cf_mut(&mut self, cf: Cf) -> &mut CfWrites {
        let i = cf.tag() as usize;
        if self.cfs.len() <= i {
            self.cfs
                .resize_with(Cf::ALL.len().max(i + 1), CfWrites::new);
        }
        &mut self.cfs[i]
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.cf(cf).and_then(|m| m.get(key))
    }
}

/// What one write of the current command replaced in the batch: the column
/// family, the key, and the batch's previous entry for it (`None`: the
/// batch did not hold the key).
type Undo = (Cf, Vec<u8>, Option<Option<Vec<u8>>>);

/// A read-your-writes overlay over a [`StateRead`]: the writes of a whole
/// applied batch, including those of the command being applied, which are
/// undone if the command fails.
///
/// Writes go straight into the batch, each with an undo entry, so a read
/// looks in one map and committing a command is free; rolling one back
/// (a rejected command, rarer) restores the entries it replaced.
pub struct Txn<'a> {
    base: &'a dyn StateRead,
    batch: Layer,
    /// The current command's writes, oldest first.
    undo: Vec<Undo>,
    /// Hash of every committed write since the last
    /// [`Txn::take_write_digest`], in the order they were made.
    written: sha2::Sha256,
}

impl<'a> Txn<'a> {
    /// An empty transaction over `base`.
    pub fn new(base: &'a dyn StateRead) -> Self {
        Txn {
            base,
            batch: Layer::default(),
            undo: Vec::new(),
            written: sha2::Sha256::default(),
        }
    }

    /// Up to `limit` entries with keys starting with `prefix`, in key order,
    /// starting after `after` when given: the base state merged with this
    /// transaction's own writes (a deleted key is skipped).
    fn merged_scan(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageFault> {
        let start = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Included(prefix),
        };
        let mut overlay = self
            .batch
            .cf(cf)
            .into_iter()
            .flat_map(|writes| writes.range::<[u8], _>((start, Bound::Unbounded)))
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let page = limit.clamp(1, 256);
        let mut base: std::collections::VecDeque<KeyValue> = Default::default();
        let mut cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        let mut base_done = false;
        let mut out = Vec::new();
        while out.len() < limit {
            if base.is_empty() && !base_done {
                let got = self.base.scan_prefix(cf, prefix, cursor.as_deref(), page)?;
                base_done = got.len() < page;
                cursor = got.last().map(|(k, _)| k.clone()).or(cursor);
                base.extend(got);
            }
            let order = match (base.front(), overlay.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((bk, _)), Some((ok, _))) => bk.as_slice().cmp(ok.as_slice()),
            };
            if order == std::cmp::Ordering::Less {
                if let Some(kv) = base.pop_front() {
                    out.push(kv);
                }
                continue;
            }
            if order == std::cmp::Ordering::Equal {
                // The overlay's write replaces (or deletes) the base value.
                base.pop_front();
            }
            if let Some((k, Some(v))) = overlay.next() {
                out.push((k.clone(), v.clone()));
            }
        }
        Ok(out)
    }

    fn write(&mut self, cf: Cf, key: &[u8], value: Option<Vec<u8>>) {
        let previous = self.batch.cf_mut(cf).insert(key.to_vec(), value);
        self.undo.push((cf, key.to_vec(), previous));
    }

    /// Writes `value` under `key` in the current command.
    pub fn put(&mut self, cf: Cf, key: &[u8], value: Vec<u8>) {
        self.write(cf, key, Some(value));
    }

    /// Deletes `key` in the current command.
    pub fn delete(&mut self, cf: Cf, key: &[u8]) {
        self.write(cf, key, None);
    }

    /// Keeps the current command's writes as part of the batch.
    pub fn commit_command(&mut self) {
        use sha2::Digest;
        for (cf, key, _) in &self.undo {
            if cf.is_derived() {
                continue;
            }
            let value = self.batch.get(*cf, key).and_then(Option::as_ref);
            self.written.update([cf.tag()]);
            self.written.update((key.len() as u32).to_be_bytes());
            self.written.update(key);
            match value {
                Some(v) => {
                    self.written.update([1]);
                    self.written.update((v.len() as u32).to_be_bytes());
                    self.written.update(v);
                }
                None => self.written.update([0]),
            }
        }
        self.undo.clear();
    }

    /// The hash of the writes committed since the last call (or since the
    /// transaction began): what one applied entry changed, for the state
    /// chain that replicas compare ([`crate::storage`]). Equal writes in
    /// the same order give equal hashes on every replica.
    pub fn take_write_digest(&mut self) -> [u8; 32] {
        use sha2::Digest;
        self.written.finalize_reset().into()
    }

    /// Entries the batch holds (committed commands' writes and the current
    /// command's), for checks that a rollback left nothing behind.
    pub fn pending_writes(&self) -> usize {
        self.batch.cfs.iter().map(|m| m.len()).sum()
    }

    /// Writes of the current command not yet committed or rolled back.
    pub fn command_writes(&self) -> usize {
        self.undo.len()
    }

    /// The keys of `cf` the current command wrote or deleted (a key
    /// written twice shows twice), oldest first.
    pub fn command_keys(&self, cf: Cf) -> impl Iterator<Item = &[u8]> {
        self.undo
            .iter()
            .filter(move |(c, _, _)| *c == cf)
            .map(|(_, key, _)| key.as_slice())
    }

    /// Drops the current command's writes (the command was rejected):
    /// restores, newest first, what each replaced.
    pub fn rollback_command(&mut self) {
        while let Some((cf, key, previous)) = self.undo.pop() {
            let writes = self.batch.cf_mut(cf);
            match previous {
                Some(value) => {
                    writes.insert(key, value);
                }
                None => {
                    writes.remove(&key);
                }
            }
        }
    }

    /// The batch's writes, to be written atomically. Uncommitted command
    /// writes are dropped.
    pub fn into_writes(mut self) -> WriteSet {
        self.rollback_command();
        // Already in (column family, key) order: collecting builds the map
        // in bulk.
        self.batch
            .cfs
            .into_iter()
            .enumerate()
            .filter_map(|(i, writes)| Cf::from_tag(i as u8).map(|cf| (cf, writes)))
            .flat_map(|(cf, writes)| writes.into_iter().map(move |(k, v)| ((cf, k), v)))
            .collect()
    }
}

/// Reads see this transaction's own writes first.
impl StateRead for Txn<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault> {
        match self.batch.get(cf, key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(cf, key),
        }
    }

    fn read_with(
        &self,
        cf: Cf,
        key: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), StorageFault> {
        match self.batch.get(cf, key) {
            Some(v) => f(v.as_deref()),
            None => self.base.read_with(cf, key, f)?,
        }
        Ok(())
    }

    fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageFault> {
        self.merged_scan(cf, prefix, after, limit)
    }
}

/// An in-memory engine: the whole state in ordered maps. Used by tests and
/// property checks; the node uses RocksDB.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemState {
    cfs: BTreeMap<Cf, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a finished write set.
    pub fn write(&mut self, writes: WriteSet) {
        for ((cf, key), value) in writes {
            let map = self.cfs.entry(cf).or_default();
            match value {
                Some(v) => {
                    map.insert(key, v);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
    }

    /// All entries of a column family, in key order.
    pub fn iter(&self, cf: Cf) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.cfs.get(&cf).into_iter().flat_map(|m| m.iter())
    }
}

impl StateRead for MemState {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageFault> {
        Ok(self.cfs.get(&cf).and_then(|m| m.get(key)).cloned())
    }

    fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageFault> {
        let Some(map) = self.cfs.get(&cf) else {
            return Ok(Vec::new());
        };
        let start = match after {
            Some(a) => Bound::Excluded(a.to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        Ok(map
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// A digest of every registry column family but the derived ones
/// ([`Cf::is_derived`]): SHA-256 over tag, key and value lengths and
/// bytes, in order. Two replicas that applied the same log have the same
/// digest.
pub fn state_digest<'a, I>(entries: I) -> [u8; 32]
where
    I: IntoIterator<Item = (Cf, &'a [u8], &'a [u8])>,
{
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (cf, k, v) in entries.into_iter().filter(|(cf, _, _)| !cf.is_derived()) {
        h.update([cf.tag()]);
        h.update((k.len() as u64).to_be_bytes());
        h.update(k);
        h.update((v.len() as u64).to_be_bytes());
        h.update(v);
    }
    h.finalize().into()
}

impl MemState {
    /// The [`state_digest`] of this state.
    pub fn digest(&self) -> [u8; 32] {
        state_digest(Cf::ALL.iter().flat_map(|&cf| {
            self.iter(cf)
                .map(move |(k, v)| (cf, k.as_slice(), v.as_slice()))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> MemState {
        let mut state = MemState::new();
        let mut writes = WriteSet::new();
        writes.insert((Cf::Domains, b"a.nz".to_vec()), Some(b"a0".to_vec()));
        writes.insert((Cf::Domains, b"b.nz".to_vec()), Some(b"b0".to_vec()));
        state.write(writes);
        state
    }

    fn view(txn: &Txn<'_>) -> Vec<KeyValue> {
        txn.scan_prefix(Cf::Domains, b"", None, 100).unwrap()
    }

    #[test]
    fn a_rolled_back_command_leaves_the_batch_as_the_last_commit_left_it() {
        let state = base();
        let mut txn = Txn::new(&state);
        txn.put(Cf::Domains, b"a.nz", b"a1".to_vec());
        txn.put(Cf::Domains, b"c.nz", b"c1".to_vec());
        txn.commit_command();
        let committed = view(&txn);

        // A command that overwrites, deletes, creates and rewrites keys.
        txn.put(Cf::Domains, b"a.nz", b"a2".to_vec());
        txn.delete(Cf::Domains, b"b.nz");
        txn.delete(Cf::Domains, b"c.nz");
        txn.put(Cf::Domains, b"d.nz", b"d2".to_vec());
        txn.put(Cf::Domains, b"a.nz", b"a3".to_vec());
        txn.put(Cf::Hosts, b"ns1.a.nz", b"h".to_vec());
        assert_eq!(txn.get(Cf::Domains, b"a.nz").unwrap(), Some(b"a3".to_vec()));
        assert_eq!(txn.get(Cf::Domains, b"b.nz").unwrap(), None);
        assert_eq!(
            view(&txn)
                .iter()
                .map(|(k, _)| k.as_slice())
                .collect::<Vec<_>>(),
            vec![&b"a.nz"[..], b"d.nz"]
        );
        txn.rollback_command();
        assert_eq!(view(&txn), committed);
        assert_eq!(txn.get(Cf::Hosts, b"ns1.a.nz").unwrap(), None);
        assert_eq!(txn.get(Cf::Domains, b"b.nz").unwrap(), Some(b"b0".to_vec()));

        // Uncommitted writes never reach the write set.
        txn.put(Cf::Domains, b"e.nz", b"e".to_vec());
        let writes = txn.into_writes();
        let mut expected = WriteSet::new();
        expected.insert((Cf::Domains, b"a.nz".to_vec()), Some(b"a1".to_vec()));
        expected.insert((Cf::Domains, b"c.nz".to_vec()), Some(b"c1".to_vec()));
        assert_eq!(writes, expected);
    }
}
