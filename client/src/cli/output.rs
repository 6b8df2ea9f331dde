//! Human rendering of responses (`--output json` uses serde instead).

use std::fmt::Write;

use kauri_client::proto::*;

/// A response the CLI can print.
pub trait Output: serde::Serialize {
    /// Readable text, ending with a newline.
    fn human(&self) -> String;
}

/// Formats ms since the epoch as an RFC 3339 UTC timestamp.
pub fn time(ms: i64) -> String {
    if ms == 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn line(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{key:<18}{value}");
}

fn list(values: &[String]) -> String {
    if values.is_empty() {
        "-".into()
    } else {
        values.join(", ")
    }
}

fn money(m: &Option<Money>) -> String {
    match m {
        Some(m) => format!(
            "{}.{:02} {}",
            m.minor_units / 100,
            (m.minor_units % 100).abs(),
            m.currency
        ),
        None => "-".into(),
    }
}

fn tx(out: &mut String, tx: &Option<TxInfo>) {
    if let Some(tx) = tx {
        let replay = if tx.replayed {
            " (replayed: original response of an earlier request)"
        } else {
            ""
        };
        line(out, "svTRID", format!("{}{replay}", tx.sv_trid));
        line(out, "clTRID", &tx.cl_trid);
    }
}

fn read(out: &mut String, info: &Option<ReadInfo>) {
    if let Some(r) = info {
        let how = if r.consistency == Consistency::BoundedStale as i32 {
            "bounded-stale"
        } else {
            "linearizable"
        };
        line(
            out,
            "read",
            format!(
                "{how} from node {} at index {} ({})",
                r.node_id,
                r.applied_index,
                time(r.applied_time_ms)
            ),
        );
    }
}

fn contact_type(t: i32) -> &'static str {
    match ContactType::try_from(t) {
        Ok(ContactType::Admin) => "admin",
        Ok(ContactType::Tech) => "tech",
        Ok(ContactType::Billing) => "billing",
        _ => "unspecified",
    }
}

impl Output for DomainResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.domain {
            line(&mut out, "domain", &d.name);
            if !d.unicode_name.is_empty() {
                line(&mut out, "unicode", &d.unicode_name);
            }
            line(&mut out, "roid", &d.roid);
            line(&mut out, "status", list(&d.statuses));
            line(&mut out, "registrant", &d.registrant);
            for c in &d.contacts {
                line(
                    &mut out,
                    &format!("contact ({})", contact_type(c.r#type)),
                    &c.contact_id,
                );
            }
            line(&mut out, "nameservers", list(&d.nameservers));
            if !d.subordinate_hosts.is_empty() {
                line(&mut out, "hosts", list(&d.subordinate_hosts));
            }
            line(&mut out, "sponsor", &d.sponsor);
            line(
                &mut out,
                "created",
                format!("{} by {}", time(d.created_ms), d.created_by),
            );
            if d.updated_ms != 0 {
                line(
                    &mut out,
                    "updated",
                    format!("{} by {}", time(d.updated_ms), d.updated_by),
                );
            }
            line(&mut out, "expires", time(d.expiry_ms));
            line(&mut out, "in zone", if d.in_zone { "yes" } else { "no" });
            if !d.rgp_statuses.is_empty() {
                line(&mut out, "rgp status", list(&d.rgp_statuses));
            }
            for g in &d.grace_periods {
                line(
                    &mut out,
                    &format!("grace ({})", g.kind),
                    format!(
                        "until {} (refundable {})",
                        time(g.ends_ms),
                        money(&g.refundable)
                    ),
                );
            }
            if d.deleted_ms != 0 {
                line(&mut out, "deleted", time(d.deleted_ms));
            }
            if d.purge_ms != 0 {
                line(&mut out, "purge", time(d.purge_ms));
            }
            for s in &d.suspensions {
                line(
                    &mut out,
                    "suspended",
                    format!(
                        "case {} since {} by {}: {}",
                        s.case_id,
                        time(s.suspended_ms),
                        s.suspended_by,
                        s.reason
                    ),
                );
            }
            if d.transfer_lock_until_ms != 0 {
                line(
                    &mut out,
                    "transfer lock",
                    format!("until {}", time(d.transfer_lock_until_ms)),
                );
            }
            if let Some(t) = &d.transfer {
                line(&mut out, "transfer", transfer_summary(t));
            }
            if !d.auth_info.is_empty() {
                line(&mut out, "auth info", &d.auth_info);
            }
        }
        if self.charged.is_some() {
            line(&mut out, "charged", money(&self.charged));
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for ContactResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.contact {
            line(&mut out, "contact", &c.id);
            line(&mut out, "roid", &c.roid);
            line(&mut out, "status", list(&c.statuses));
            if let Some(f) = &c.fields {
                for p in &f.postal_info {
                    line(&mut out, &format!("name ({})", p.r#type), &p.name);
                    if !p.org.is_empty() {
                        line(&mut out, &format!("org ({})", p.r#type), &p.org);
                    }
                    if let Some(a) = &p.address {
                        let addr = a
                            .street
                            .iter()
                            .chain([&a.city, &a.state_province, &a.postal_code, &a.country_code])
                            .filter(|s| !s.is_empty())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ");
                        line(&mut out, &format!("address ({})", p.r#type), addr);
                    }
                }
                line(&mut out, "email", &f.email);
                if !f.voice.is_empty() {
                    line(&mut out, "voice", &f.voice);
                }
                if !f.fax.is_empty() {
                    line(&mut out, "fax", &f.fax);
                }
            }
            line(&mut out, "sponsor", &c.sponsor);
            line(
                &mut out,
                "created",
                format!("{} by {}", time(c.created_ms), c.created_by),
            );
            if !c.auth_info.is_empty() {
                line(&mut out, "auth info", &c.auth_info);
            }
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for HostResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(h) = &self.host {
            line(&mut out, "host", &h.name);
            line(&mut out, "roid", &h.roid);
            line(&mut out, "status", list(&h.statuses));
            line(&mut out, "addresses", list(&h.addresses));
            line(&mut out, "sponsor", &h.sponsor);
            line(
                &mut out,
                "created",
                format!("{} by {}", time(h.created_ms), h.created_by),
            );
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

/// A TLD's IDN table on one line: "Latin, Greek; mix Japanese+Latin;
/// extra U+00B7".
fn idn_table(t: &TldIdnPolicy) -> String {
    let mut parts = vec![if t.scripts.is_empty() {
        "any one script per label".to_string()
    } else {
        t.scripts.join(", ")
    }];
    for mix in &t.script_mixes {
        parts.push(format!("mix {}", mix.scripts.join("+")));
    }
    if !t.extra_code_points.is_empty() {
        let points: Vec<String> = t
            .extra_code_points
            .iter()
            .map(|cp| format!("U+{cp:04X}"))
            .collect();
        parts.push(format!("extra {}", points.join(" ")));
    }
    parts.join("; ")
}

impl Output for TldResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.tld {
            line(&mut out, "tld", &t.name);
            if let Some(p) = &t.policy {
                line(
                    &mut out,
                    "periods",
                    format!("{}..{} years", p.min_period_years, p.max_period_years),
                );
                let price = |v| {
                    money(&Some(Money {
                        minor_units: v,
                        currency: p.currency.clone(),
                    }))
                };
                line(
                    &mut out,
                    "create price",
                    format!("{} per year", price(p.create_price_minor_units)),
                );
                line(
                    &mut out,
                    "renew price",
                    format!("{} per year", price(p.renew_price_minor_units)),
                );
                line(
                    &mut out,
                    "label length",
                    format!("{}..{}", p.min_label_length, p.max_label_length),
                );
                line(
                    &mut out,
                    "idn",
                    if p.allow_idn {
                        "allowed"
                    } else {
                        "not allowed"
                    },
                );
                if let (true, Some(t)) = (p.allow_idn, &p.idn) {
                    line(&mut out, "idn scripts", idn_table(t));
                }
            }
            if let Some(l) = &t.lifecycle {
                let d = |s: Option<i64>| {
                    let s = s.unwrap_or(0);
                    if s % 86_400 == 0 {
                        format!("{} d", s / 86_400)
                    } else {
                        format!("{s} s")
                    }
                };
                line(
                    &mut out,
                    "grace periods",
                    format!(
                        "add {}, renew {}, auto-renew {}, transfer {}",
                        d(l.add_grace_seconds),
                        d(l.renew_grace_seconds),
                        d(l.auto_renew_grace_seconds),
                        d(l.transfer_grace_seconds)
                    ),
                );
                line(
                    &mut out,
                    "transfers",
                    format!(
                        "auto-approve after {}, locked {} after create/transfer",
                        d(l.transfer_auto_approve_seconds),
                        d(l.transfer_lock_seconds)
                    ),
                );
                line(
                    &mut out,
                    "deletion",
                    format!(
                        "redemption {}, pending delete {}, restore report {}",
                        d(l.redemption_seconds),
                        d(l.pending_delete_seconds),
                        d(l.restore_report_seconds)
                    ),
                );
                line(
                    &mut out,
                    "expiry horizon",
                    format!("{} years", l.max_expiry_horizon_years.unwrap_or(0)),
                );
                let currency = t
                    .policy
                    .as_ref()
                    .map(|p| p.currency.clone())
                    .unwrap_or_default();
                let price = |v: Option<i64>| match v {
                    Some(v) => money(&Some(Money {
                        minor_units: v,
                        currency: currency.clone(),
                    })),
                    None => "renew price".into(),
                };
                line(
                    &mut out,
                    "other prices",
                    format!(
                        "auto-renew {}, transfer {}, restore fee {}",
                        price(l.auto_renew_price_minor_units),
                        price(l.transfer_price_minor_units),
                        price(l.restore_price_minor_units)
                    ),
                );
                for p in &l.premium_names {
                    line(
                        &mut out,
                        "premium",
                        format!(
                            "{} create {} renew {}",
                            p.label,
                            price(Some(p.create_price_minor_units)),
                            price(Some(p.renew_price_minor_units))
                        ),
                    );
                }
                let per_period = |table: &[PeriodPrice]| {
                    table
                        .iter()
                        .map(|p| format!("{} y {}", p.years, price(Some(p.price_minor_units))))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if !l.create_period_prices.is_empty() {
                    line(
                        &mut out,
                        "create for period",
                        per_period(&l.create_period_prices),
                    );
                }
                if !l.renew_period_prices.is_empty() {
                    line(
                        &mut out,
                        "renew for period",
                        per_period(&l.renew_period_prices),
                    );
                }
                if !l.reserved_names.is_empty() {
                    line(&mut out, "reserved", list(&l.reserved_names));
                }
                if !l.blocked_names.is_empty() {
                    line(&mut out, "blocked", list(&l.blocked_names));
                }
            }
            line(&mut out, "created", time(t.created_ms));
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for RegistrarResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(r) = &self.registrar {
            line(&mut out, "registrar", &r.id);
            line(&mut out, "name", &r.name);
            line(&mut out, "balance", money(&r.balance));
            let currency = r
                .balance
                .as_ref()
                .map(|b| b.currency.clone())
                .unwrap_or_default();
            let m = |v| {
                money(&Some(Money {
                    minor_units: v,
                    currency: currency.clone(),
                }))
            };
            line(&mut out, "credit limit", m(r.credit_limit_minor_units));
            line(&mut out, "deposits", m(r.total_deposits_minor_units));
            line(&mut out, "charges", m(r.total_charges_minor_units));
            line(&mut out, "refunds", m(r.total_refunds_minor_units));
            if r.low_balance_threshold_minor_units > 0 {
                line(
                    &mut out,
                    "low balance at",
                    m(r.low_balance_threshold_minor_units),
                );
            }
            line(&mut out, "poll messages", r.poll_count);
            line(&mut out, "created", time(r.created_ms));
            for e in &r.ledger {
                let linked = if e.linked_sv_trid.is_empty() {
                    String::new()
                } else {
                    format!(" (refunds {})", e.linked_sv_trid)
                };
                let _ = writeln!(
                    out,
                    "  #{:<5} {} {:<10} {:>12} balance {:>12} {} {}{linked}",
                    e.seq,
                    time(e.time_ms),
                    e.kind,
                    m(e.amount_minor_units),
                    m(e.balance_after_minor_units),
                    e.object,
                    e.sv_trid
                );
            }
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for CheckResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            let verdict = if r.available {
                "available".to_string()
            } else {
                format!("unavailable: {}", r.reason)
            };
            line(&mut out, &r.name, verdict);
        }
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for DeleteResponse {
    fn human(&self) -> String {
        let mut out = if self.pending_delete {
            String::from("deleted: pendingDelete (redemption period; restorable)\n")
        } else {
            String::from("deleted\n")
        };
        if self.refunded.is_some() {
            line(&mut out, "refunded", money(&self.refunded));
        }
        tx(&mut out, &self.tx);
        out
    }
}

fn transfer_summary(t: &TransferData) -> String {
    let mut s = format!(
        "{} {} → {} requested {}",
        t.status_name,
        t.losing_registrar,
        t.gaining_registrar,
        time(t.requested_ms)
    );
    if t.acted_ms != 0 {
        let _ = write!(s, ", acted {}", time(t.acted_ms));
    } else {
        let _ = write!(s, ", auto-approves {}", time(t.action_due_ms));
    }
    s
}

impl Output for TransferResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.transfer {
            line(&mut out, "domain", &t.name);
            line(&mut out, "transfer", &t.status_name);
            line(&mut out, "gaining (reID)", &t.gaining_registrar);
            line(&mut out, "requested", time(t.requested_ms));
            line(&mut out, "losing (acID)", &t.losing_registrar);
            if t.acted_ms != 0 {
                line(&mut out, "acted", time(t.acted_ms));
            } else {
                line(&mut out, "auto-approves", time(t.action_due_ms));
            }
            line(&mut out, "expires", time(t.expiry_ms));
        }
        if self.charged.is_some() {
            line(&mut out, "charged", money(&self.charged));
        }
        if self.refunded.is_some() {
            line(&mut out, "refunded", money(&self.refunded));
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for PollResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        line(&mut out, "messages", self.count);
        if let Some(m) = &self.message {
            line(&mut out, "id", m.id);
            line(&mut out, "time", time(m.time_ms));
            line(&mut out, "kind", &m.kind);
            line(&mut out, "object", &m.object);
            line(&mut out, "message", &m.message);
            if let Some(t) = &m.transfer {
                line(&mut out, "transfer", transfer_summary(t));
            }
            line(&mut out, "caused by", &m.sv_trid);
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for CaseResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.aup_case {
            line(&mut out, "case", c.id);
            line(&mut out, "domain", &c.domain);
            line(&mut out, "state", &c.state);
            line(
                &mut out,
                "suspended",
                if c.suspended { "yes" } else { "no" },
            );
            line(&mut out, "reason", &c.reason);
            if !c.reference.is_empty() {
                line(&mut out, "reference", &c.reference);
            }
            line(
                &mut out,
                "opened",
                format!("{} by {}", time(c.opened_ms), c.opened_by),
            );
            for e in &c.history {
                let _ = writeln!(
                    out,
                    "  {} {:<10} {:<12} {} {}",
                    time(e.time_ms),
                    e.actor,
                    e.action,
                    e.sv_trid,
                    e.note
                );
            }
        }
        tx(&mut out, &self.tx);
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for AuditQueryResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        for r in &self.records {
            let kind = match ActorKind::try_from(r.actor_kind) {
                Ok(ActorKind::Registrar) => "registrar",
                Ok(ActorKind::Staff) => "staff",
                Ok(ActorKind::System) => "system",
                _ => "?",
            };
            // A command a gateway delivered in a session: "registrar:acme via epp1".
            let via = if r.via.is_empty() {
                String::new()
            } else {
                format!(" via {}", r.via)
            };
            let _ = writeln!(
                out,
                "#{:<6} {} {kind}:{}{via} {} {}:{} {} {}",
                r.seq,
                time(r.time_ms),
                r.actor,
                r.command,
                r.object_kind,
                r.object,
                r.sv_trid,
                r.cl_trid
            );
            for c in &r.changes {
                let _ = writeln!(out, "        {c}");
            }
        }
        if self.records.is_empty() {
            out.push_str("no audit records\n");
        }
        if !self.next_page_token.is_empty() {
            let hex: String = self
                .next_page_token
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            line(&mut out, "next page", format!("--page-token {hex}"));
        }
        read(&mut out, &self.read_info);
        out
    }
}

impl Output for VerifyRegistrarPasswordResponse {
    fn human(&self) -> String {
        if self.valid {
            "password valid\n".into()
        } else {
            "password INVALID\n".into()
        }
    }
}

impl Output for StatusResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        line(
            &mut out,
            "node",
            format!("{} ({}, site {})", self.node_id, self.role, self.site),
        );
        line(&mut out, "term", self.term);
        let leader = if self.leader_id == 0 {
            "none".to_string()
        } else {
            format!("{} at {}", self.leader_id, self.leader_addr)
        };
        line(&mut out, "leader", leader);
        line(&mut out, "last log index", self.last_log_index);
        line(
            &mut out,
            "applied index",
            format!("{} ({})", self.applied_index, time(self.applied_time_ms)),
        );
        line(&mut out, "snapshot index", self.snapshot_index);
        let check = match (self.state_mismatches, self.state_chain.last()) {
            (0, None) => "no state chain points yet".to_string(),
            (0, Some(p)) => format!(
                "agrees with peers ({} points, latest at index {})",
                self.state_chain.len(),
                p.index
            ),
            (n, _) => format!(
                "DIVERGED: {n} mismatch(es); latest: {}",
                self.last_state_mismatch
            ),
        };
        line(&mut out, "state check", check);
        if !self.certificate_principal.is_empty() {
            line(
                &mut out,
                "certificate",
                format!(
                    "{} until {}",
                    self.certificate_principal,
                    kauri_client::tls::format_time(self.certificate_not_after_s)
                ),
            );
        }
        line(&mut out, "commit index", self.commit_index);
        if self.role == "leader" {
            let window = format!(
                "{} entries, {:.1} s of registry time",
                self.dr_loss_window_entries, self.dr_loss_window_seconds
            );
            let what = if self.dr_far_site_nodes == 0 {
                format!("{window} (no node outside site {}: all of it)", self.site)
            } else {
                format!(
                    "{window} (best of {} node(s) outside site {})",
                    self.dr_far_site_nodes, self.site
                )
            };
            line(&mut out, "lost with this site", what);
        }
        members(&mut out, &self.members);
        out
    }
}

/// One line per member: address, voter or learner, site, and (from the
/// leader) how far behind it is.
fn members(out: &mut String, members: &[Member]) {
    for m in members {
        let kind = if m.voter { "voter" } else { "learner" };
        let mut progress = if m.matched_index > 0 || m.lag_entries > 0 {
            format!(
                ", holds index {} ({} behind, {:.1} s)",
                m.matched_index, m.lag_entries, m.lag_seconds
            )
        } else {
            String::new()
        };
        if m.last_contact_ms_ago >= 0 {
            let _ = write!(
                progress,
                ", last answered {:.1} s ago",
                m.last_contact_ms_ago as f64 / 1000.0
            );
        }
        line(
            out,
            &format!("member {}", m.id),
            format!("{} {kind} site {}{progress}", m.addr, m.site),
        );
    }
}

impl Output for ChangeMembershipResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        let what = match (self.changed, self.log_index) {
            (true, 0) => "unchanged (the leadership moved)".to_string(),
            (true, index) => format!("changed at log index {index}"),
            (false, _) => "already as asked; nothing changed".to_string(),
        };
        line(&mut out, "membership", what);
        if self.leader_id != 0 {
            line(&mut out, "leader", format!("node {}", self.leader_id));
        }
        members(&mut out, &self.members);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idn_table_reads_on_one_line() {
        assert_eq!(
            idn_table(&TldIdnPolicy::default()),
            "any one script per label"
        );
        let t = TldIdnPolicy {
            scripts: vec!["Greek".into(), "Latin".into()],
            script_mixes: vec![IdnScriptMix {
                scripts: vec!["Japanese".into(), "Latin".into()],
            }],
            extra_code_points: vec![0xB7],
        };
        assert_eq!(
            idn_table(&t),
            "Greek, Latin; mix Japanese+Latin; extra U+00B7"
        );
    }
}
