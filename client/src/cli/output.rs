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
            line(&mut out, "deposits", m(r.total_deposits_minor_units));
            line(&mut out, "charges", m(r.total_charges_minor_units));
            line(&mut out, "created", time(r.created_ms));
            for e in &r.ledger {
                let _ = writeln!(
                    out,
                    "  #{:<5} {} {:<8} {:>12} balance {:>12} {} {}",
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
        let mut out = String::from("deleted\n");
        tx(&mut out, &self.tx);
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
        for m in &self.members {
            let kind = if m.voter { "voter" } else { "learner" };
            line(
                &mut out,
                &format!("member {}", m.id),
                format!("{} {kind} site {}", m.addr, m.site),
            );
        }
        out
    }
}
