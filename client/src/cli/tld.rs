//! `kauri tld create|update|info`: policy and prices (yearly, and per whole
//! period with `--create-price-for 2=1800`), the IDN table (`--idn-scripts
//! Latin,Greek`), lifecycle periods and name lists.

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
    // Boxed: the IDN flags would make `kauri tld` the largest command by far.
    #[command(flatten)]
    idn: Box<IdnFlags>,
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
            idn: self
                .idn
                .is_set()
                .then(|| self.idn.apply(TldIdnPolicy::default())),
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
    #[command(flatten)]
    idn_table: Box<IdnFlags>,
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
            || self.idn_table.is_set()
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
        if self.idn_table.is_set() {
            p.idn = Some(self.idn_table.apply(p.idn.take().unwrap_or_default()));
        }
    }
}

/// IDN table flags of `tld create` and `tld update`: each one given
/// replaces that part of the table, the rest stay. A new TLD without them
/// accepts an IDN label in any one script and refuses mixed scripts.
#[derive(Debug, clap::Args)]
pub struct IdnFlags {
    /// Scripts an IDN label may be written in, one per label: Unicode
    /// script names or ISO 15924 codes, comma-separated (e.g. Latin,Greek;
    /// Japanese for Han with Hiragana and Katakana) [any one script].
    #[arg(long, value_delimiter = ',', value_name = "SCRIPTS")]
    idn_scripts: Option<Vec<String>>,
    /// Accept an IDN label in any one script again (drops --idn-scripts).
    #[arg(long, conflicts_with = "idn_scripts")]
    idn_any_script: bool,
    /// Scripts one label may mix, joined by '+' (e.g. Latin+Japanese);
    /// repeatable; replaces the list [none].
    #[arg(long = "idn-script-mix", value_parser = parse_script_mix, value_name = "A+B")]
    idn_script_mixes: Vec<IdnScriptMix>,
    /// Drop every script mix (before any --idn-script-mix).
    #[arg(long)]
    clear_idn_script_mixes: bool,
    /// Code points accepted with any script, as U+XXXX, comma-separated
    /// (e.g. U+00B7); replaces the list [none].
    #[arg(long, value_delimiter = ',', value_parser = parse_code_point, value_name = "U+XXXX")]
    idn_extra_code_points: Option<Vec<u32>>,
    /// Drop every extra code point.
    #[arg(long, conflicts_with = "idn_extra_code_points")]
    clear_idn_extra_code_points: bool,
}

impl IdnFlags {
    fn is_set(&self) -> bool {
        self.idn_scripts.is_some()
            || self.idn_any_script
            || !self.idn_script_mixes.is_empty()
            || self.clear_idn_script_mixes
            || self.idn_extra_code_points.is_some()
            || self.clear_idn_extra_code_points
    }

    /// `base` with every flag given applied.
    fn apply(&self, base: TldIdnPolicy) -> TldIdnPolicy {
        let mut t = base;
        if let Some(scripts) = &self.idn_scripts {
            t.scripts = scripts.iter().map(|s| s.trim().to_string()).collect();
        }
        if self.idn_any_script {
            t.scripts.clear();
        }
        if self.clear_idn_script_mixes {
            t.script_mixes.clear();
        }
        if !self.idn_script_mixes.is_empty() {
            t.script_mixes = self.idn_script_mixes.clone();
        }
        if let Some(points) = &self.idn_extra_code_points {
            t.extra_code_points = points.clone();
        }
        if self.clear_idn_extra_code_points {
            t.extra_code_points.clear();
        }
        t
    }
}

fn parse_script_mix(s: &str) -> Result<IdnScriptMix, String> {
    let scripts: Vec<String> = s.split('+').map(|p| p.trim().to_string()).collect();
    if scripts.len() < 2 || scripts.iter().any(String::is_empty) {
        return Err(format!(
            "{s:?} is not two or more scripts joined by '+' (e.g. Latin+Japanese)"
        ));
    }
    Ok(IdnScriptMix { scripts })
}

fn parse_code_point(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let hex = t
        .strip_prefix("U+")
        .or_else(|| t.strip_prefix("u+"))
        .or_else(|| t.strip_prefix("0x"))
        .unwrap_or(t);
    u32::from_str_radix(hex, 16)
        .ok()
        .filter(|cp| char::from_u32(*cp).is_some())
        .ok_or_else(|| format!("{s:?} is not a code point like U+00B7"))
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
    use clap::Parser;

    /// `kauri tld ...` alone, to parse flags as the CLI does.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: TldCmd,
    }

    fn parse(args: &[&str]) -> Result<TldCmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("tld").chain(args.iter().copied())).map(|c| c.cmd)
    }

    fn mix(scripts: &[&str]) -> IdnScriptMix {
        IdnScriptMix {
            scripts: scripts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn create_flags_build_the_idn_table_and_none_leaves_the_default() {
        let TldCmd::Create { policy, .. } = parse(&[
            "create",
            "nz",
            "--idn-scripts",
            "Latin,Greek",
            "--idn-script-mix",
            "Latin+Japanese",
            "--idn-extra-code-points",
            "U+00B7,u+0559",
        ])
        .unwrap() else {
            panic!("not a create");
        };
        assert_eq!(
            policy.policy().idn,
            Some(TldIdnPolicy {
                scripts: vec!["Latin".into(), "Greek".into()],
                script_mixes: vec![mix(&["Latin", "Japanese"])],
                extra_code_points: vec![0xB7, 0x559],
            })
        );
        let TldCmd::Create { policy, .. } = parse(&["create", "nz"]).unwrap() else {
            panic!("not a create");
        };
        assert_eq!(policy.policy().idn, None, "the registry default");
    }

    #[test]
    fn update_flags_replace_only_the_parts_of_the_table_given() {
        let current = TldPolicy {
            currency: "NZD".into(),
            idn: Some(TldIdnPolicy {
                scripts: vec!["Latin".into()],
                script_mixes: vec![mix(&["Japanese", "Latin"])],
                extra_code_points: vec![0xB7],
            }),
            ..Default::default()
        };
        let changed = |args: &[&str]| {
            let args: Vec<&str> = ["update", "nz"].iter().chain(args).copied().collect();
            let TldCmd::Update { policy, .. } = parse(&args).unwrap() else {
                panic!("not an update");
            };
            assert!(policy.is_set(), "{args:?}");
            let mut p = current.clone();
            policy.apply(&mut p);
            p.idn.expect("a table")
        };
        let t = changed(&["--idn-scripts", "Cyrillic"]);
        assert_eq!(t.scripts, ["Cyrillic"]);
        assert_eq!(t.script_mixes, [mix(&["Japanese", "Latin"])], "kept");
        let t = changed(&["--idn-any-script", "--clear-idn-script-mixes"]);
        assert!(t.scripts.is_empty() && t.script_mixes.is_empty());
        assert_eq!(t.extra_code_points, [0xB7], "kept");
        let t = changed(&["--clear-idn-extra-code-points"]);
        assert!(t.extra_code_points.is_empty());
        assert_eq!(t.scripts, ["Latin"], "kept");
    }

    #[test]
    fn bad_idn_flags_are_usage_errors() {
        for args in [
            &["create", "nz", "--idn-script-mix", "Latin"][..],
            &["create", "nz", "--idn-script-mix", "Latin+"],
            &["create", "nz", "--idn-extra-code-points", "U+D800"],
            &["create", "nz", "--idn-extra-code-points", "dot"],
            &["update", "nz", "--idn-scripts", "Latin", "--idn-any-script"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

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
