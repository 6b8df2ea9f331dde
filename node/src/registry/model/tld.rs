//! TLD records: the policy (label rules, periods, prices, IDN table) and
//! the lifecycle policy (grace periods, premium, reserved and blocked names).

use super::*;

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
pub(super) struct TldRecordV1 {
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
pub(super) struct TldPolicyV1 {
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
