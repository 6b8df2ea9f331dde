//! `kauri tld create|update|info`: policy and prices (yearly, and per whole
//! period with `--create-price-for 2=1800`), lifecycle periods and name
//! lists.

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

/// Policy flags shared by create and update.
#[derive(Debug, clap::Args)]
pub struct PolicyFlags {
    /// ISO 4217 currency of the prices.
    #[arg(long, default_value = "USD")]
    currency: String,
    /// Create price per year, in minor units (cents).
    #[arg(long, default_value_t = 1000)]
    create_price: i64,
    /// Renew price per year, in minor units (cents).
    #[arg(long, default_value_t = 1000)]
    renew_price: i64,
    /// Shortest registration period in years.
    #[arg(long, default_value_t = 1)]
    min_period: u32,
    /// Longest registration period in years.
    #[arg(long, default_value_t = 10)]
    max_period: u32,
    /// Shortest second-level label.
    #[arg(long, default_value_t = 1)]
    min_label: u32,
    /// Longest second-level label.
    #[arg(long, default_value_t = 63)]
    max_label: u32,
    /// Refuse IDN (xn--) labels.
    #[arg(long)]
    no_idn: bool,
}

impl PolicyFlags {
    fn policy(&self) -> TldPolicy {
        TldPolicy {
            min_period_years: self.min_period,
            max_period_years: self.max_period,
            create_price_minor_units: self.create_price,
            renew_price_minor_units: self.renew_price,
            currency: self.currency.clone(),
            min_label_length: self.min_label,
            max_label_length: self.max_label,
            allow_idn: !self.no_idn,
            idn: None,
        }
    }
}

/// Policy flags of `tld update`: each one given replaces that value, the
/// rest stay as they are.
#[derive(Debug, clap::Args)]
pub struct PolicyChanges {
    /// ISO 4217 currency of the prices.
    #[arg(long)]
    currency: Option<String>,
    /// Create price per year, in minor units (cents).
    #[arg(long)]
    create_price: Option<i64>,
    /// Renew price per year, in minor units (cents).
    #[arg(long)]
    renew_price: Option<i64>,
    /// Shortest registration period in years.
    #[arg(long)]
    min_period: Option<u32>,
    /// Longest registration period in years.
    #[arg(long)]
    max_period: Option<u32>,
    /// Shortest second-level label.
    #[arg(long)]
    min_label: Option<u32>,
    /// Longest second-level label.
    #[arg(long)]
    max_label: Option<u32>,
    /// Accept IDN (xn--) labels (true/false).
    #[arg(long)]
    idn: Option<bool>,
}

impl PolicyChanges {
    fn is_set(&self) -> bool {
        self.currency.is_some()
            || self.create_price.is_some()
            || self.renew_price.is_some()
            || self.min_period.is_some()
            || self.max_period.is_some()
            || self.min_label.is_some()
            || self.max_label.is_some()
            || self.idn.is_some()
    }

    fn apply(&self, p: &mut TldPolicy) {
        if let Some(v) = &self.currency {
            p.currency = v.clone();
        }
        let set = |target: &mut i64, v: Option<i64>| {
            if let Some(v) = v {
                *target = v;
            }
        };
        set(&mut p.create_price_minor_units, self.create_price);
        set(&mut p.renew_price_minor_units, self.renew_price);
        let set = |target: &mut u32, v: Option<u32>| {
            if let Some(v) = v {
                *target = v;
            }
        };
        set(&mut p.min_period_years, self.min_period);
        set(&mut p.max_period_years, self.max_period);
        set(&mut p.min_label_length, self.min_label);
        set(&mut p.max_label_length, self.max_label);
        if let Some(idn) = self.idn {
            p.allow_idn = idn;
        }
    }
}

/// Lifecycle flags of `tld create` and `tld update`: each one given
/// replaces that value; the registry defaults are in each flag's help.
#[derive(Debug, clap::Args)]
pub struct LifecycleFlags {
    /// Add grace period in seconds [5 d].
    #[arg(long)]
    add_grace_seconds: Option<i64>,
    /// Renew grace period in seconds [5 d].
    #[arg(long)]
    renew_grace_seconds: Option<i64>,
    /// Auto-renew grace period in seconds [45 d].
    #[arg(long)]
    auto_renew_grace_seconds: Option<i64>,
    /// Transfer grace period in seconds [5 d].
    #[arg(long)]
    transfer_grace_seconds: Option<i64>,
    /// Pending transfers are approved by the registry after this [5 d].
    #[arg(long)]
    transfer_auto_approve_seconds: Option<i64>,
    /// Redemption period in seconds [30 d].
    #[arg(long)]
    redemption_seconds: Option<i64>,
    /// Pending-delete period before the purge, in seconds [5 d].
    #[arg(long)]
    pending_delete_seconds: Option<i64>,
    /// Time for a restore report, in seconds [7 d].
    #[arg(long)]
    restore_report_seconds: Option<i64>,
    /// Transfers refused this long after a create or transfer [60 d].
    #[arg(long)]
    transfer_lock_seconds: Option<i64>,
    /// Furthest expiry date, in years from now [10].
    #[arg(long)]
    max_expiry_horizon_years: Option<u32>,
    /// Auto-renew price per year [the renew price].
    #[arg(long)]
    auto_renew_price: Option<i64>,
    /// Transfer price [the renew price].
    #[arg(long)]
    transfer_price: Option<i64>,
    /// Restore fee, on top of a one-year renewal [0].
    #[arg(long)]
    restore_price: Option<i64>,
    /// Premium name LABEL=CREATE:RENEW (prices per year); repeatable;
    /// replaces the list.
    #[arg(long = "premium", value_parser = parse_premium)]
    premium: Vec<PremiumName>,
    /// Reserved label; repeatable; replaces the list.
    #[arg(long = "reserved")]
    reserved: Vec<String>,
    /// Blocked label; repeatable; replaces the list.
    #[arg(long = "blocked")]
    blocked: Vec<String>,
    /// Create price of a whole period, YEARS=PRICE in minor units (e.g.
    /// 2=1800: two years for 1800 instead of twice the yearly price; not for
    /// premium names); repeatable; other periods keep theirs.
    #[arg(long = "create-price-for", value_parser = parse_period_price)]
    create_price_for: Vec<PeriodPrice>,
    /// Renew price of a whole period, YEARS=PRICE, like --create-price-for.
    #[arg(long = "renew-price-for", value_parser = parse_period_price)]
    renew_price_for: Vec<PeriodPrice>,
    /// Drop every create period price (before any --create-price-for).
    #[arg(long)]
    clear_create_prices_for: bool,
    /// Drop every renew period price (before any --renew-price-for).
    #[arg(long)]
    clear_renew_prices_for: bool,
}

fn parse_period_price(s: &str) -> Result<PeriodPrice, String> {
    let bad = || format!("{s:?} is not YEARS=PRICE (e.g. 2=1800)");
    let (years, price) = s.split_once('=').ok_or_else(bad)?;
    Ok(PeriodPrice {
        years: years.trim().parse().map_err(|_| bad())?,
        price_minor_units: price.trim().parse().map_err(|_| bad())?,
    })
}

/// `table` with `given` merged in: a period given replaces its price, the
/// others stay; shortest period first.
fn merge_period_prices(table: &mut Vec<PeriodPrice>, given: &[PeriodPrice]) {
    for p in given {
        table.retain(|q| q.years != p.years);
        table.push(*p);
    }
    table.sort_by_key(|p| p.years);
}

fn parse_premium(s: &str) -> Result<PremiumName, String> {
    let bad = || format!("{s:?} is not LABEL=CREATE:RENEW");
    let (label, prices) = s.split_once('=').ok_or_else(bad)?;
    let (create, renew) = prices.split_once(':').ok_or_else(bad)?;
    Ok(PremiumName {
        label: label.into(),
        create_price_minor_units: create.parse().map_err(|_| bad())?,
        renew_price_minor_units: renew.parse().map_err(|_| bad())?,
    })
}

impl LifecycleFlags {
    fn is_set(&self) -> bool {
        self.apply(TldLifecyclePolicy::default()) != TldLifecyclePolicy::default()
            || self.clear_create_prices_for
            || self.clear_renew_prices_for
    }

    /// `base` with every flag given applied.
    fn apply(&self, base: TldLifecyclePolicy) -> TldLifecyclePolicy {
        let mut l = base;
        let or = |v: Option<i64>, old: Option<i64>| v.or(old);
        l.add_grace_seconds = or(self.add_grace_seconds, l.add_grace_seconds);
        l.renew_grace_seconds = or(self.renew_grace_seconds, l.renew_grace_seconds);
        l.auto_renew_grace_seconds = or(self.auto_renew_grace_seconds, l.auto_renew_grace_seconds);
        l.transfer_grace_seconds = or(self.transfer_grace_seconds, l.transfer_grace_seconds);
        l.transfer_auto_approve_seconds = or(
            self.transfer_auto_approve_seconds,
            l.transfer_auto_approve_seconds,
        );
        l.redemption_seconds = or(self.redemption_seconds, l.redemption_seconds);
        l.pending_delete_seconds = or(self.pending_delete_seconds, l.pending_delete_seconds);
        l.restore_report_seconds = or(self.restore_report_seconds, l.restore_report_seconds);
        l.transfer_lock_seconds = or(self.transfer_lock_seconds, l.transfer_lock_seconds);
        l.max_expiry_horizon_years = self.max_expiry_horizon_years.or(l.max_expiry_horizon_years);
        l.auto_renew_price_minor_units = or(self.auto_renew_price, l.auto_renew_price_minor_units);
        l.transfer_price_minor_units = or(self.transfer_price, l.transfer_price_minor_units);
        l.restore_price_minor_units = or(self.restore_price, l.restore_price_minor_units);
        if !self.premium.is_empty() {
            l.premium_names = self.premium.clone();
        }
        if !self.reserved.is_empty() {
            l.reserved_names = self.reserved.clone();
        }
        if !self.blocked.is_empty() {
            l.blocked_names = self.blocked.clone();
        }
        if self.clear_create_prices_for {
            l.create_period_prices.clear();
        }
        merge_period_prices(&mut l.create_period_prices, &self.create_price_for);
        if self.clear_renew_prices_for {
            l.renew_period_prices.clear();
        }
        merge_period_prices(&mut l.renew_period_prices, &self.renew_price_for);
        l
    }
}

#[derive(Debug, Subcommand)]
pub enum TldCmd {
    /// Create a TLD with its policy (and lifecycle, when any lifecycle flag
    /// is given: a second step, `tld update`, right after the create).
    Create {
        /// The TLD, e.g. nz.
        name: String,
        #[command(flatten)]
        policy: PolicyFlags,
        #[command(flatten)]
        lifecycle: LifecycleFlags,
    },
    /// Change a TLD's policy or lifecycle: the values given replace the
    /// current ones, the rest stay.
    Update {
        name: String,
        #[command(flatten)]
        policy: PolicyChanges,
        #[command(flatten)]
        lifecycle: LifecycleFlags,
    },
    /// Show a TLD and its policy.
    Info {
        name: String,
        #[command(flatten)]
        read: ReadFlags,
    },
}

pub async fn run(ctx: &Ctx, cmd: TldCmd) -> Result<(), ClientError> {
    match cmd {
        TldCmd::Create {
            name,
            policy,
            lifecycle,
        } => {
            let mut r = ctx
                .client
                .create_tld(CreateTldRequest {
                    meta: Some(ctx.staff_meta()),
                    name: name.clone(),
                    policy: Some(policy.policy()),
                })
                .await?;
            if lifecycle.is_set() {
                r = ctx
                    .client
                    .update_tld(UpdateTldRequest {
                        meta: Some(ctx.fresh_staff_meta()),
                        name,
                        policy: None,
                        lifecycle: Some(lifecycle.apply(TldLifecyclePolicy::default())),
                    })
                    .await?;
            }
            ctx.print(&r);
        }
        TldCmd::Update {
            name,
            policy,
            lifecycle,
        } => {
            let current = ctx
                .client
                .info_tld(InfoTldRequest {
                    name: name.clone(),
                    read: None,
                })
                .await?
                .tld
                .unwrap_or_default();
            let new_policy = policy.is_set().then(|| {
                let mut p = current.policy.clone().unwrap_or_default();
                policy.apply(&mut p);
                p
            });
            let new_lifecycle = lifecycle
                .is_set()
                .then(|| lifecycle.apply(current.lifecycle.clone().unwrap_or_default()));
            if new_policy.is_none() && new_lifecycle.is_none() {
                return Err(super::usage("give at least one policy or lifecycle flag"));
            }
            let r = ctx
                .client
                .update_tld(UpdateTldRequest {
                    meta: Some(ctx.staff_meta()),
                    name,
                    policy: new_policy,
                    lifecycle: new_lifecycle,
                })
                .await?;
            ctx.print(&r);
        }
        TldCmd::Info { name, read } => {
            let r = ctx
                .client
                .info_tld(InfoTldRequest {
                    name,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_prices_parse_and_merge_by_period() {
        assert_eq!(
            parse_period_price("2=1800"),
            Ok(PeriodPrice {
                years: 2,
                price_minor_units: 1800
            })
        );
        for bad in ["2", "two=1800", "2=", "=1800", "2=18.00"] {
            assert!(parse_period_price(bad).is_err(), "{bad}");
        }
        let p = |years, price_minor_units| PeriodPrice {
            years,
            price_minor_units,
        };
        let mut table = vec![p(2, 1800), p(5, 4000)];
        merge_period_prices(&mut table, &[p(3, 2500), p(2, 1700)]);
        assert_eq!(table, [p(2, 1700), p(3, 2500), p(5, 4000)]);
    }
}
