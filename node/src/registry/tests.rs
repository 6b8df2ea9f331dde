//! Scenario tests and properties of the registry state machine.
//!
//! Everything goes through [`apply_proposal`] on a [`MemState`], the way the
//! node applies log entries, so these tests cover the envelope, exactly-once
//! and dispatch as well as the command families. The properties apply random
//! proposal sequences (random case, U-label and A-label spellings, reused
//! client transaction ids, retries, time running backwards) and check
//! determinism, conservation of money and uniqueness of names.

use std::collections::{BTreeMap, BTreeSet};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use kauri_proto::v1::{
    self, command::Kind, command_result::Outcome, CommandResult, ContactType, Proposal, Reason,
    RequestMeta,
};
use proptest::prelude::*;
use prost::Message;
use sha2::{Digest, Sha256};

use super::calendar::utc_date;
use super::model::{
    decode, ContactRecord, DomainRecord, HostRecord, LedgerKind, LedgerRecord, RegistrarRecord,
};
use super::names::normalize_name;
use super::*;

/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;
const DAY_MS: i64 = 86_400_000;

mod contact_transfers;
mod golden;
mod idn_scripts;
mod lifecycle;
mod period_prices;
mod server_statuses;
mod sessions;

// ---------------------------------------------------------------------------
// Harness

/// One replica applying proposals one entry per batch, keeping the log so
/// other replicas can replay it with other batchings.
struct Registry {
    state: MemState,
    log: Vec<(ApplyContext, Proposal)>,
    /// The result of every log entry, in log order.
    results: Vec<CommandResult>,
    time_ms: i64,
    next_trid: u64,
}

impl Registry {
    fn new() -> Self {
        Registry {
            state: MemState::new(),
            log: Vec::new(),
            results: Vec::new(),
            time_ms: T0,
            next_trid: 0,
        }
    }

    /// A proposal of `kind` by `actor` with a fresh client transaction id,
    /// stamped one second after the previous one.
    fn propose(&mut self, actor: &str, kind: Kind) -> Proposal {
        self.next_trid += 1;
        let cl_trid = format!("trid-{}", self.next_trid);
        self.time_ms += 1000;
        proposal(self.time_ms, actor, &cl_trid, kind)
    }

    /// Applies `p` as the next log entry, in a batch of its own.
    fn apply(&mut self, p: &Proposal) -> CommandResult {
        let ctx = ApplyContext {
            log_index: self.log.len() as u64 + 1,
            log_term: 1,
        };
        self.log.push((ctx, p.clone()));
        let mut results = apply_batch(&mut self.state, &[(ctx, p.clone())]);
        let result = results.pop().expect("one result per proposal");
        self.results.push(result.clone());
        result
    }

    fn run(&mut self, actor: &str, kind: Kind) -> CommandResult {
        let p = self.propose(actor, kind);
        self.apply(&p)
    }

    fn ok(&mut self, actor: &str, kind: Kind) -> Outcome {
        let what = format!("{kind:?}");
        match self.run(actor, kind).outcome {
            Some(Outcome::Error(e)) => panic!("{what} by {actor} failed: {}", e.message),
            Some(outcome) => outcome,
            None => panic!("{what} by {actor} has no outcome"),
        }
    }

    fn err(&mut self, actor: &str, kind: Kind) -> v1::CommandError {
        expect_error(self.run(actor, kind))
    }

    fn domain(&self, viewer: &str, name: &str) -> v1::Domain {
        info_domain(&self.state, viewer, name).expect("domain exists")
    }

    fn registrar(&self, id: &str) -> v1::Registrar {
        info_registrar(&self.state, id, 1000).expect("registrar exists")
    }

    fn balance(&self, id: &str) -> i64 {
        self.registrar(id).balance.expect("balance").minor_units
    }
}

/// Applies proposals as one batch: one `Txn`, then one write.
fn apply_batch(state: &mut MemState, batch: &[(ApplyContext, Proposal)]) -> Vec<CommandResult> {
    let mut txn = Txn::new(&*state);
    let results = batch
        .iter()
        .map(|(ctx, p)| apply_proposal(&mut txn, ctx, p).expect("MemState has no storage faults"))
        .collect();
    let writes = txn.into_writes();
    state.write(writes);
    results
}

fn proposal(time_ms: i64, actor: &str, cl_trid: &str, mut kind: Kind) -> Proposal {
    *meta_mut(&mut kind) = Some(RequestMeta {
        actor: actor.into(),
        cl_trid: cl_trid.into(),
    });
    let command = v1::Command { kind: Some(kind) };
    Proposal {
        time_ms,
        request_digest: Sha256::digest(command.encode_to_vec()).to_vec(),
        command: Some(command),
        via: String::new(),
    }
}

fn meta_mut(kind: &mut Kind) -> &mut Option<RequestMeta> {
    match kind {
        Kind::CreateTld(r) => &mut r.meta,
        Kind::UpdateTld(r) => &mut r.meta,
        Kind::CreateRegistrar(r) => &mut r.meta,
        Kind::DepositFunds(r) => &mut r.meta,
        Kind::CreateDomain(r) => &mut r.meta,
        Kind::UpdateDomain(r) => &mut r.meta,
        Kind::RenewDomain(r) => &mut r.meta,
        Kind::DeleteDomain(r) => &mut r.meta,
        Kind::CreateContact(r) => &mut r.meta,
        Kind::UpdateContact(r) => &mut r.meta,
        Kind::DeleteContact(r) => &mut r.meta,
        Kind::CreateHost(r) => &mut r.meta,
        Kind::UpdateHost(r) => &mut r.meta,
        Kind::DeleteHost(r) => &mut r.meta,
        Kind::TransferDomain(r) => &mut r.meta,
        Kind::TransferContact(r) => &mut r.meta,
        Kind::RestoreDomain(r) => &mut r.meta,
        Kind::AckPoll(r) => &mut r.meta,
        Kind::UpdateRegistrar(r) => &mut r.meta,
        Kind::SetServerStatus(r) => &mut r.meta,
        Kind::SetHostServerStatus(r) => &mut r.meta,
        Kind::SetContactServerStatus(r) => &mut r.meta,
        Kind::OpenCase(r) => &mut r.meta,
        Kind::UpdateCase(r) => &mut r.meta,
        Kind::OpenSession(r) => &mut r.meta,
        Kind::CloseSession(r) => &mut r.meta,
        Kind::Tick(_) => panic!("ticks carry no request meta"),
    }
}

fn expect_error(result: CommandResult) -> v1::CommandError {
    match result.outcome {
        Some(Outcome::Error(e)) => e,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn tx_of(result: &CommandResult) -> &v1::TxInfo {
    let tx = match result.outcome.as_ref().expect("an outcome") {
        Outcome::Domain(r) => &r.tx,
        Outcome::Contact(r) => &r.tx,
        Outcome::Host(r) => &r.tx,
        Outcome::Deleted(r) => &r.tx,
        Outcome::Tld(r) => &r.tx,
        Outcome::Registrar(r) => &r.tx,
        Outcome::Error(r) => &r.tx,
        Outcome::Transfer(r) => &r.tx,
        Outcome::Poll(r) => &r.tx,
        Outcome::AupCase(r) => &r.tx,
        Outcome::Session(r) => &r.tx,
        Outcome::Tick(_) => panic!("ticks carry no tx info"),
    };
    tx.as_ref().expect("every outcome carries tx info")
}

/// The audit trail of one object, newest first.
fn audit_of(r: &Registry, kind: &str, object: &str) -> Vec<v1::AuditRecord> {
    query_audit(
        &r.state,
        &v1::AuditQueryRequest {
            object_kind: kind.into(),
            object: object.into(),
            ..Default::default()
        },
    )
    .expect("audit query")
    .0
}

/// The digest of everything except registry time and idempotency records:
/// what a rejected command must leave unchanged.
fn data_digest(state: &MemState) -> [u8; 32] {
    state_digest(
        Cf::ALL
            .iter()
            .filter(|&&cf| cf != Cf::Idempotency && cf != Cf::IdempotencyExpiry)
            .flat_map(|&cf| {
                state
                    .iter(cf)
                    .filter(move |(k, _)| !(cf == Cf::Meta && k.as_slice() == b"now_ms"))
                    .map(move |(k, v)| (cf, k.as_slice(), v.as_slice()))
            }),
    )
}

fn records<T: super::model::Record>(state: &MemState, cf: Cf) -> Vec<T> {
    state
        .iter(cf)
        .map(|(k, v)| decode(cf, k, v).expect("stored records decode"))
        .collect()
}

// ---------------------------------------------------------------------------
// Request builders (meta is filled in by the harness)

fn policy(currency: &str, create: i64, renew: i64) -> v1::TldPolicy {
    v1::TldPolicy {
        min_period_years: 1,
        max_period_years: 10,
        create_price_minor_units: create,
        renew_price_minor_units: renew,
        currency: currency.into(),
        min_label_length: 1,
        max_label_length: 63,
        allow_idn: true,
        idn: None,
    }
}

fn create_tld(name: &str, policy: v1::TldPolicy) -> Kind {
    Kind::CreateTld(v1::CreateTldRequest {
        meta: None,
        name: name.into(),
        policy: Some(policy),
    })
}

/// A cheap (m = 8 KiB, t = 1) argon2id hash, so tests stay fast.
fn test_password_hash(password: &str) -> String {
    let params = Params::new(8, 1, 1, None).expect("valid argon2 parameters");
    let salt = SaltString::from_b64("c29tZXNhbHQ").expect("valid salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing works")
        .to_string()
}

fn create_registrar(id: &str, currency: &str) -> Kind {
    Kind::CreateRegistrar(v1::CreateRegistrarCommand {
        meta: None,
        id: id.into(),
        name: format!("Registrar {id}"),
        password_hash: test_password_hash("correct horse"),
        currency: currency.into(),
    })
}

fn deposit(id: &str, amount: i64) -> Kind {
    Kind::DepositFunds(v1::DepositFundsRequest {
        meta: None,
        registrar: id.into(),
        amount_minor_units: amount,
        reference: "bank-1".into(),
    })
}

fn contact_fields() -> v1::ContactFields {
    v1::ContactFields {
        postal_info: vec![v1::PostalInfo {
            r#type: "int".into(),
            name: "John Doe".into(),
            org: String::new(),
            address: Some(v1::PostalAddress {
                street: vec!["1 Queen St".into()],
                city: "Auckland".into(),
                state_province: String::new(),
                postal_code: "1010".into(),
                country_code: "NZ".into(),
            }),
        }],
        voice: "+64.91234567".into(),
        fax: String::new(),
        email: "john@example.net".into(),
        disclose_nothing: false,
    }
}

fn create_contact(id: &str) -> Kind {
    Kind::CreateContact(v1::CreateContactRequest {
        meta: None,
        id: id.into(),
        fields: Some(contact_fields()),
        auth_info: "contact-pw".into(),
    })
}

fn create_host(name: &str, addresses: &[&str]) -> Kind {
    Kind::CreateHost(v1::CreateHostRequest {
        meta: None,
        name: name.into(),
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    })
}

fn create_domain(name: &str, years: u32, registrant: &str, nameservers: &[&str]) -> Kind {
    Kind::CreateDomain(v1::CreateDomainRequest {
        meta: None,
        name: name.into(),
        period_years: years,
        registrant: registrant.into(),
        contacts: vec![v1::DomainContact {
            r#type: ContactType::Admin as i32,
            contact_id: registrant.into(),
        }],
        nameservers: nameservers.iter().map(|n| n.to_string()).collect(),
        auth_info: "domain-pw".into(),
        fee: None,
        ds_data: Vec::new(),
    })
}

fn without_auth_info(mut kind: Kind) -> Kind {
    if let Kind::CreateDomain(req) = &mut kind {
        req.auth_info.clear();
    }
    kind
}

fn update_domain(name: &str) -> v1::UpdateDomainRequest {
    v1::UpdateDomainRequest {
        name: name.into(),
        ..Default::default()
    }
}

fn renew(name: &str, current_expiry_date: &str, years: u32) -> Kind {
    Kind::RenewDomain(v1::RenewDomainRequest {
        meta: None,
        name: name.into(),
        current_expiry_date: current_expiry_date.into(),
        period_years: years,
        fee: None,
    })
}

fn delete(name: &str) -> v1::DeleteRequest {
    v1::DeleteRequest {
        meta: None,
        name: name.into(),
    }
}

fn tick_proposal(time_ms: i64) -> Proposal {
    Proposal {
        time_ms,
        request_digest: Vec::new(),
        command: Some(v1::Command {
            kind: Some(Kind::Tick(v1::TickCommand::default())),
        }),
        via: String::new(),
    }
}

fn set_lifecycle(tld: &str, lifecycle: v1::TldLifecyclePolicy) -> Kind {
    Kind::UpdateTld(v1::UpdateTldRequest {
        meta: None,
        name: tld.into(),
        policy: None,
        lifecycle: Some(lifecycle),
    })
}

/// Short periods (in seconds) for the properties.
fn prop_lifecycle() -> v1::TldLifecyclePolicy {
    let day = 86_400;
    v1::TldLifecyclePolicy {
        add_grace_seconds: Some(2 * day),
        renew_grace_seconds: Some(2 * day),
        auto_renew_grace_seconds: Some(10 * day),
        transfer_grace_seconds: Some(2 * day),
        transfer_auto_approve_seconds: Some(3 * day),
        redemption_seconds: Some(15 * day),
        pending_delete_seconds: Some(3 * day),
        restore_report_seconds: Some(4 * day),
        transfer_lock_seconds: Some(5 * day),
        restore_price_minor_units: Some(250),
        create_period_prices: period_prices(&[(2, 1000), (3, 1500)]),
        renew_period_prices: period_prices(&[(2, 1000)]),
        ..Default::default()
    }
}

fn update_registrar(id: &str, credit_limit: Option<i64>, low_balance: Option<i64>) -> Kind {
    Kind::UpdateRegistrar(v1::UpdateRegistrarRequest {
        meta: None,
        id: id.into(),
        credit_limit_minor_units: credit_limit,
        low_balance_threshold_minor_units: low_balance,
    })
}

fn transfer(name: &str, op: i32, auth_info: &str) -> Kind {
    Kind::TransferDomain(v1::TransferDomainRequest {
        meta: None,
        name: name.into(),
        op,
        auth_info: auth_info.into(),
        period_years: 1,
        fee: None,
        new_auth_info: String::new(),
    })
}

fn transfer_op(name: &str, op: v1::TransferOp) -> Kind {
    transfer(name, op as i32, "")
}

fn restore(name: &str, report: bool) -> Kind {
    Kind::RestoreDomain(v1::RestoreDomainRequest {
        meta: None,
        name: name.into(),
        op: if report {
            v1::RestoreOp::Report
        } else {
            v1::RestoreOp::Request
        } as i32,
        report: report.then(|| v1::RestoreReport {
            pre_data: "as registered before".into(),
            post_data: "as registered now".into(),
            restore_reason: "deleted by mistake".into(),
            statements: strings(&["true and accurate", "not restored for unlawful gain"]),
            ..Default::default()
        }),
        fee: None,
    })
}

fn ack(id: u64) -> Kind {
    Kind::AckPoll(v1::AckPollRequest {
        meta: None,
        message_id: id,
    })
}

const LOCK_STATUSES: [&str; 3] = [
    "serverDeleteProhibited",
    "serverTransferProhibited",
    "serverUpdateProhibited",
];

fn lock(name: &str, on: bool) -> Kind {
    let statuses = strings(&LOCK_STATUSES);
    Kind::SetServerStatus(v1::SetServerStatusRequest {
        meta: None,
        name: name.into(),
        add_statuses: if on { statuses.clone() } else { Vec::new() },
        remove_statuses: if on { Vec::new() } else { statuses },
        reason: "registrant asked for a registry lock".into(),
    })
}

fn host_server_status(name: &str, add: &[&str], remove: &[&str]) -> Kind {
    Kind::SetHostServerStatus(v1::SetHostServerStatusRequest {
        meta: None,
        name: name.into(),
        add_statuses: strings(add),
        remove_statuses: strings(remove),
        reason: "court order 42".into(),
    })
}

fn contact_server_status(id: &str, add: &[&str], remove: &[&str]) -> Kind {
    Kind::SetContactServerStatus(v1::SetContactServerStatusRequest {
        meta: None,
        id: id.into(),
        add_statuses: strings(add),
        remove_statuses: strings(remove),
        reason: "identity under dispute".into(),
    })
}

fn period_prices(table: &[(u32, i64)]) -> Vec<v1::PeriodPrice> {
    table
        .iter()
        .map(|&(years, price_minor_units)| v1::PeriodPrice {
            years,
            price_minor_units,
        })
        .collect()
}

fn open_case(domain: &str) -> Kind {
    Kind::OpenCase(v1::OpenCaseRequest {
        meta: None,
        domain: domain.into(),
        reason: "phishing".into(),
        reference: "CERT-1".into(),
    })
}

fn case_action(id: u64, action: v1::CaseAction) -> Kind {
    Kind::UpdateCase(v1::UpdateCaseRequest {
        meta: None,
        case_id: id,
        action: action as i32,
        note: String::new(),
    })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn expiry_date(r: &Registry, name: &str) -> String {
    let domain = r.domain("rar-a", name);
    utc_date(domain.expiry_ms).expect("in range").to_string()
}

/// A registry with:
/// - `.nz` (NZD, create 1000/yr, renew 900/yr, 1..10 years, IDN allowed) and
///   `.kiwi` (USD, 2..5 years, labels 3..20, no IDN);
/// - registrars `rar-a` (NZD, 100 000), `rar-b` (NZD, 5 000), `rar-usd`
///   (USD, 100 000);
/// - contacts `c-a1`, `c-a2` (rar-a) and `c-b1` (rar-b);
/// - hosts `ns1.outside.net` (rar-a), `ns2.outside.net` (rar-b);
/// - domains `example.nz` (with in-bailiwick host `ns1.example.nz`),
///   `café.nz` and `locked.nz` (every client prohibition) of rar-a, and
///   `b.nz` of rar-b.
fn world() -> Registry {
    let mut r = Registry::new();
    r.ok("staff", create_tld("nz", policy("NZD", 1000, 900)));
    r.ok(
        "staff",
        create_tld(
            "kiwi",
            v1::TldPolicy {
                min_period_years: 2,
                max_period_years: 5,
                min_label_length: 3,
                max_label_length: 20,
                allow_idn: false,
                ..policy("USD", 500, 500)
            },
        ),
    );
    for (id, currency, amount) in [
        ("rar-a", "NZD", 100_000),
        ("rar-b", "NZD", 5_000),
        ("rar-usd", "USD", 100_000),
    ] {
        r.ok("staff", create_registrar(id, currency));
        r.ok("staff", deposit(id, amount));
    }
    r.ok("rar-a", create_contact("c-a1"));
    r.ok("rar-a", create_contact("c-a2"));
    r.ok("rar-b", create_contact("c-b1"));
    r.ok("rar-a", create_host("ns1.outside.net", &[]));
    r.ok("rar-b", create_host("ns2.outside.net", &[]));
    r.ok(
        "rar-a",
        create_domain("example.nz", 1, "c-a1", &["ns1.outside.net"]),
    );
    r.ok("rar-a", create_host("ns1.example.nz", &["192.0.2.1"]));
    r.ok("rar-a", create_domain("café.nz", 1, "c-a1", &[]));
    r.ok("rar-a", create_domain("locked.nz", 1, "c-a2", &[]));
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            add_statuses: strings(&[
                "clientDeleteProhibited",
                "clientRenewProhibited",
                "clientUpdateProhibited",
            ]),
            ..update_domain("locked.nz")
        }),
    );
    r.ok(
        "rar-b",
        create_domain("b.nz", 1, "c-b1", &["ns2.outside.net"]),
    );
    r
}

// ---------------------------------------------------------------------------
// Scenarios

#[test]
fn create_domain_charges_the_sponsor_once_and_sets_calendar_dates() {
    let mut r = world();
    let before = r.balance("rar-a");
    let outcome = r.ok(
        "rar-a",
        create_domain("New-Name.NZ", 3, "c-a1", &["NS1.Outside.Net"]),
    );
    let Outcome::Domain(resp) = outcome else {
        panic!("{outcome:?}")
    };
    let domain = resp.domain.expect("domain");
    assert_eq!(domain.name, "new-name.nz");
    assert_eq!(domain.unicode_name, "");
    assert_eq!(domain.nameservers, ["ns1.outside.net"]);
    assert_eq!(domain.statuses, ["ok"]);
    assert_eq!(domain.sponsor, "rar-a");
    assert_eq!(domain.auth_info, "domain-pw");
    assert_eq!(domain.roid, "D5-KAURI", "four domains exist in the world");
    assert_eq!(
        resp.charged,
        Some(v1::Money {
            minor_units: 3000,
            currency: "NZD".into()
        })
    );
    assert_eq!(r.balance("rar-a"), before - 3000);

    let created = utc_date(domain.created_ms).expect("in range");
    let expiry = utc_date(domain.expiry_ms).expect("in range");
    assert_eq!(created.to_string(), "2025-01-01");
    assert_eq!(expiry.to_string(), "2028-01-01");
    assert_eq!(domain.expiry_ms - domain.created_ms, 365 * 3 * DAY_MS);

    let ledger = r.registrar("rar-a").ledger;
    let last = ledger.last().expect("a ledger entry");
    assert_eq!(last.kind, "create");
    assert_eq!(last.amount_minor_units, -3000);
    assert_eq!(last.balance_after_minor_units, before - 3000);
    assert_eq!(last.object, "new-name.nz");
    assert_eq!(last.sv_trid, format!("kauri-{}", r.log.len()));
    assert_eq!(count_domains(&r.state).unwrap(), 5);
}

#[test]
fn a_domain_without_name_servers_is_inactive_until_it_gets_one() {
    let mut r = world();
    assert_eq!(r.domain("rar-a", "café.nz").statuses, ["inactive"]);
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            add_nameservers: strings(&["ns1.example.nz"]),
            add_statuses: strings(&["clientHold"]),
            ..update_domain("xn--caf-dma.nz")
        }),
    );
    let domain = r.domain("rar-a", "CAFÉ.nz");
    assert_eq!(domain.statuses, ["clientHold"]);
    assert_eq!(domain.unicode_name, "café.nz");
    assert_eq!(domain.updated_by, "rar-a");
    let host = info_host(&r.state, "ns1.example.nz").unwrap();
    assert_eq!(host.statuses, ["linked", "ok"]);
}

#[test]
fn auth_info_is_shown_only_to_the_sponsor() {
    let r = world();
    assert_eq!(r.domain("rar-a", "example.nz").auth_info, "domain-pw");
    assert_eq!(r.domain("rar-b", "example.nz").auth_info, "");
    assert_eq!(
        info_contact(&r.state, "rar-a", "c-a1").unwrap().auth_info,
        "contact-pw"
    );
    assert_eq!(
        info_contact(&r.state, "rar-b", "c-a1").unwrap().auth_info,
        ""
    );
}

#[test]
fn retry_returns_the_original_response_and_charges_once() {
    let mut r = world();
    let before = r.balance("rar-a");
    let p = r.propose("rar-a", create_domain("retry.nz", 2, "c-a1", &[]));
    let first = r.apply(&p);
    assert!(!tx_of(&first).replayed);
    let first_index = r.log.len() as u64;

    let retry = r.apply(&p);
    let mut expected = first.clone();
    if let Some(Outcome::Domain(resp)) = expected.outcome.as_mut() {
        resp.tx.as_mut().expect("tx").replayed = true;
    }
    assert_eq!(retry.encode_to_vec(), expected.encode_to_vec());
    assert_eq!(tx_of(&retry).sv_trid, format!("kauri-{first_index}"));
    assert_eq!(r.balance("rar-a"), before - 2000);
    let creates = r
        .registrar("rar-a")
        .ledger
        .iter()
        .filter(|e| e.object == "retry.nz")
        .count();
    assert_eq!(creates, 1);
}

#[test]
fn idempotency_records_are_forgotten_after_the_retention_window() {
    use crate::registry::apply::IDEMPOTENCY_RETENTION_MS;
    let mut r = world();
    let before = r.balance("rar-a");
    let p = r.propose("staff", deposit("rar-a", 500));
    r.apply(&p);

    // Inside the window a retry replays: credited once.
    r.time_ms += IDEMPOTENCY_RETENTION_MS - 10_000;
    let tick = tick_proposal(r.time_ms);
    r.apply(&tick);
    assert!(tx_of(&r.apply(&p)).replayed);
    assert_eq!(r.balance("rar-a"), before + 500);

    // Once the window has passed a tick drops the record (and only what
    // has expired)...
    let stored = r.state.iter(Cf::Idempotency).count();
    r.time_ms += 20_000;
    let tick = tick_proposal(r.time_ms);
    let pruned = match r.apply(&tick).outcome {
        Some(Outcome::Tick(t)) => t.idempotency_pruned,
        other => panic!("tick: {other:?}"),
    };
    assert!(pruned >= 1, "the deposit's record expired");
    let remaining = r.state.iter(Cf::Idempotency).count();
    assert_eq!(remaining as u64, stored as u64 - pruned);
    assert_eq!(
        r.state.iter(Cf::IdempotencyExpiry).count(),
        remaining,
        "every remaining record has exactly one expiry entry"
    );
    // ...and the old key is an ordinary new request again.
    let again = r.apply(&p);
    assert!(!tx_of(&again).replayed);
    assert_eq!(r.balance("rar-a"), before + 1000);
}

#[test]
fn a_retry_only_moves_registry_time() {
    let mut r = world();
    let p = r.propose("rar-a", create_domain("again.nz", 1, "c-a1", &[]));
    r.apply(&p);
    let digest = data_digest(&r.state);
    let idempotency: Vec<_> = r
        .state
        .iter(Cf::Idempotency)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut later = p.clone();
    later.time_ms += 60_000;
    // The digest covers the request, not the proposal's time stamp.
    r.apply(&later);
    assert_eq!(data_digest(&r.state), digest);
    let after: Vec<_> = r
        .state
        .iter(Cf::Idempotency)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(after, idempotency);
    assert_eq!(registry_now_ms(&r.state).unwrap(), later.time_ms);
}

#[test]
fn reusing_a_client_transaction_id_for_another_request_conflicts() {
    let mut r = world();
    let first = proposal(
        T0 + DAY_MS,
        "rar-a",
        "dup-1",
        create_domain("one.nz", 1, "c-a1", &[]),
    );
    let other = proposal(
        T0 + DAY_MS,
        "rar-a",
        "dup-1",
        create_domain("two.nz", 1, "c-a1", &[]),
    );
    r.apply(&first);
    let digest = data_digest(&r.state);
    let e = expect_error(r.apply(&other));
    assert_eq!(e.reason(), Reason::IdempotencyConflict);
    assert_eq!(e.field, "meta.cl_trid");
    assert!(e.message.contains("dup-1"), "{}", e.message);
    assert_eq!(data_digest(&r.state), digest);
    // The stored record is untouched: the first request still replays.
    let replay = r.apply(&first);
    assert!(tx_of(&replay).replayed);
    assert!(matches!(replay.outcome, Some(Outcome::Domain(_))));
    // The same id is free for another actor.
    let theirs = proposal(
        T0 + DAY_MS,
        "rar-b",
        "dup-1",
        create_domain("two.nz", 1, "c-b1", &[]),
    );
    assert!(matches!(r.apply(&theirs).outcome, Some(Outcome::Domain(_))));
}

#[test]
fn rejections_are_remembered_and_replayed_too() {
    let mut r = world();
    let p = r.propose("rar-b", create_domain("pricey.nz", 10, "c-b1", &[]));
    let first = expect_error(r.apply(&p));
    assert_eq!(first.reason(), Reason::InsufficientFunds);
    // A deposit arrives, but the retry of the same request gets the same answer.
    r.ok("staff", deposit("rar-b", 1_000_000));
    let again = expect_error(r.apply(&p));
    assert!(again.tx.as_ref().expect("tx").replayed);
    assert_eq!(again.message, first.message);
    assert_eq!(again.tx.expect("tx").sv_trid, first.tx.expect("tx").sv_trid);
}

#[test]
fn registry_time_never_runs_backwards() {
    let mut r = Registry::new();
    assert_eq!(registry_now_ms(&r.state).unwrap(), 0);
    r.apply(&proposal(
        T0,
        "staff",
        "t-1",
        create_tld("nz", policy("NZD", 0, 0)),
    ));
    // A new leader with a slow clock.
    r.apply(&proposal(
        T0 - 5_000,
        "staff",
        "t-2",
        create_registrar("rar-a", "NZD"),
    ));
    assert_eq!(registry_now_ms(&r.state).unwrap(), T0);
    assert_eq!(r.registrar("rar-a").created_ms, T0);
    // Even a rejected or malformed entry moves time forward.
    let mut bad = proposal(
        T0 + 7,
        "staff",
        "t-3",
        create_tld("nz", policy("NZD", 0, 0)),
    );
    bad.command = None;
    r.apply(&bad);
    assert_eq!(registry_now_ms(&r.state).unwrap(), T0 + 7);
}

#[test]
fn renew_extends_by_calendar_years_and_charges_the_renew_price() {
    let mut r = world();
    let before = r.balance("rar-a");
    let date = expiry_date(&r, "example.nz");
    assert_eq!(date, "2026-01-01");
    let Outcome::Domain(resp) = r.ok("rar-a", renew("example.nz", &date, 2)) else {
        panic!("not a domain response")
    };
    assert_eq!(resp.charged.expect("charged").minor_units, 1800);
    assert_eq!(expiry_date(&r, "example.nz"), "2028-01-01");
    assert_eq!(r.balance("rar-a"), before - 1800);
    assert_eq!(
        r.registrar("rar-a").ledger.last().expect("entry").kind,
        "renew"
    );
    // Replaying the old date cannot extend twice.
    let e = r.err("rar-a", renew("example.nz", &date, 2));
    assert_eq!(e.reason(), Reason::ExpiryDateMismatch);
}

#[test]
fn in_bailiwick_hosts_tie_their_domain_down() {
    let mut r = world();
    assert_eq!(
        r.domain("rar-a", "example.nz").subordinate_hosts,
        ["ns1.example.nz"]
    );
    let e = r.err("rar-a", Kind::DeleteDomain(delete("example.nz")));
    assert_eq!(e.reason(), Reason::ObjectInUse);

    r.ok(
        "rar-a",
        Kind::UpdateHost(v1::UpdateHostRequest {
            name: "ns1.example.nz".into(),
            add_addresses: strings(&["2001:DB8::53"]),
            remove_addresses: strings(&["192.0.2.1"]),
            ..Default::default()
        }),
    );
    assert_eq!(
        info_host(&r.state, "ns1.example.nz").unwrap().addresses,
        ["2001:db8::53"]
    );
    r.ok("rar-a", Kind::DeleteHost(delete("ns1.example.nz")));
    assert!(r.domain("rar-a", "example.nz").subordinate_hosts.is_empty());
    r.ok("rar-a", Kind::DeleteDomain(delete("example.nz")));
    // Its contact and name server are free again.
    r.ok("rar-a", Kind::DeleteHost(delete("ns1.outside.net")));
    assert_eq!(count_domains(&r.state).unwrap(), 3);
}

#[test]
fn contacts_in_use_cannot_be_deleted_until_no_domain_refers_to_them() {
    let mut r = world();
    assert_eq!(
        info_contact(&r.state, "rar-a", "c-a2").unwrap().statuses,
        ["linked", "ok"]
    );
    let e = r.err("rar-a", Kind::DeleteContact(delete("c-a2")));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::ObjectInUse, "name")
    );

    // locked.nz refers to c-a2 as registrant and admin; lift its update lock
    // and move both roles to c-a1 in one update.
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_statuses: strings(&["clientUpdateProhibited"]),
            registrant: "c-a1".into(),
            remove_contacts: vec![v1::DomainContact {
                r#type: ContactType::Admin as i32,
                contact_id: "c-a2".into(),
            }],
            add_contacts: vec![v1::DomainContact {
                r#type: ContactType::Tech as i32,
                contact_id: "c-a1".into(),
            }],
            ..update_domain("locked.nz")
        }),
    );
    assert_eq!(
        info_contact(&r.state, "rar-a", "c-a2").unwrap().statuses,
        ["ok"]
    );
    r.ok("rar-a", Kind::DeleteContact(delete("c-a2")));
    assert_refs_consistent(&r.state);
}

#[test]
fn update_prohibited_is_lifted_only_by_removing_it() {
    let mut r = world();
    let add_ns = Kind::UpdateDomain(v1::UpdateDomainRequest {
        add_nameservers: strings(&["ns1.outside.net"]),
        ..update_domain("locked.nz")
    });
    let e = r.err("rar-a", add_ns.clone());
    assert_eq!(e.reason(), Reason::StatusProhibits);
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_statuses: strings(&["clientUpdateProhibited"]),
            ..update_domain("locked.nz")
        }),
    );
    r.ok("rar-a", add_ns);
    assert_eq!(
        r.domain("rar-a", "locked.nz").statuses,
        ["clientDeleteProhibited", "clientRenewProhibited"]
    );
}

#[test]
fn contact_and_host_statuses_guard_their_updates_and_deletes() {
    let mut r = world();
    let mut fields = contact_fields();
    fields.email = "new@example.net".into();
    r.ok(
        "rar-b",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-b1".into(),
            fields: Some(fields),
            add_statuses: strings(&["clientDeleteProhibited", "clientUpdateProhibited"]),
            ..Default::default()
        }),
    );
    let contact = info_contact(&r.state, "rar-b", "c-b1").unwrap();
    assert_eq!(contact.fields.expect("fields").email, "new@example.net");
    assert_eq!(
        contact.statuses,
        ["clientDeleteProhibited", "clientUpdateProhibited", "linked"]
    );
    let e = r.err(
        "rar-b",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-b1".into(),
            auth_info: "another-pw".into(),
            ..Default::default()
        }),
    );
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::StatusProhibits, "id")
    );
    let e = r.err(
        "rar-b",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-b1".into(),
            add_statuses: strings(&["clientHold"]),
            remove_statuses: strings(&["clientUpdateProhibited"]),
            ..Default::default()
        }),
    );
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::PolicyViolation, "add_statuses"),
        "clientHold is for domains only"
    );

    r.ok(
        "rar-b",
        Kind::UpdateHost(v1::UpdateHostRequest {
            name: "ns2.outside.net".into(),
            add_statuses: strings(&["clientDeleteProhibited"]),
            ..Default::default()
        }),
    );
    r.ok(
        "rar-b",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_nameservers: strings(&["ns2.outside.net"]),
            ..update_domain("b.nz")
        }),
    );
    let e = r.err("rar-b", Kind::DeleteHost(delete("ns2.outside.net")));
    assert_eq!(e.reason(), Reason::StatusProhibits);
    let e = r.err(
        "rar-b",
        Kind::UpdateHost(v1::UpdateHostRequest {
            name: "ns2.outside.net".into(),
            add_addresses: strings(&["192.0.2.7"]),
            ..Default::default()
        }),
    );
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::PolicyViolation, "add_addresses"),
        "no glue out of bailiwick"
    );
    assert_refs_consistent(&r.state);
}

#[test]
fn a_tld_policy_update_applies_to_the_next_registration() {
    let mut r = world();
    r.ok(
        "staff",
        Kind::UpdateTld(v1::UpdateTldRequest {
            meta: None,
            name: "NZ".into(),
            policy: Some(policy("NZD", 2500, 900)),
            lifecycle: None,
        }),
    );
    let tld = info_tld(&r.state, "nz").unwrap();
    assert_eq!(tld.policy.expect("policy").create_price_minor_units, 2500);
    assert!(tld.updated_ms > tld.created_ms);
    let Outcome::Domain(resp) = r.ok("rar-a", create_domain("dearer.nz", 0, "c-a1", &[])) else {
        panic!("not a domain response")
    };
    assert_eq!(
        resp.charged.expect("charged").minor_units,
        2500,
        "period 0 is the minimum, 1 year"
    );
    let e = r.err(
        "staff",
        Kind::UpdateTld(v1::UpdateTldRequest {
            meta: None,
            name: "com".into(),
            policy: Some(policy("USD", 1, 1)),
            lifecycle: None,
        }),
    );
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::ObjectNotFound, "name")
    );
}

#[test]
fn checks_report_normalised_names_and_reasons() {
    let r = world();
    let results = check_domains(
        &r.state,
        &strings(&[
            "EXAMPLE.nz",
            "free.nz",
            "xn--caf-dma.NZ",
            "bad_name.nz",
            "x.com",
            "ab.kiwi",
        ]),
    )
    .unwrap();
    let got: Vec<(&str, bool)> = results
        .iter()
        .map(|c| (c.name.as_str(), c.available))
        .collect();
    assert_eq!(
        got,
        [
            ("example.nz", false),
            ("free.nz", true),
            ("xn--caf-dma.nz", false),
            ("bad_name.nz", false),
            ("x.com", false),
            ("ab.kiwi", false),
        ]
    );
    assert_eq!(results[0].reason, "in use");
    assert!(
        results[3].reason.starts_with("names:"),
        "{}",
        results[3].reason
    );

    let hosts = check_hosts(&r.state, &strings(&["NS1.example.nz", "ns9.example.nz"])).unwrap();
    assert_eq!((hosts[0].available, hosts[1].available), (false, true));
    let contacts = check_contacts(&r.state, &strings(&["c-a1", "C-A1", "x"])).unwrap();
    let got: Vec<bool> = contacts.iter().map(|c| c.available).collect();
    assert_eq!(got, [false, true, false], "contact ids are case-sensitive");

    let too_many = vec!["a.nz".to_string(); MAX_CHECK_NAMES + 1];
    let e = check_domains(&r.state, &too_many).unwrap_err();
    assert_eq!((e.reason(), e.field()), (Reason::LimitExceeded, "names"));
}

#[test]
fn info_reads_name_the_field_of_what_is_missing() {
    let r = world();
    let cases = [
        info_domain(&r.state, "rar-a", "nope.nz").map(|_| ()),
        info_host(&r.state, "ns9.example.nz").map(|_| ()),
        info_contact(&r.state, "rar-a", "nobody").map(|_| ()),
        info_tld(&r.state, "com").map(|_| ()),
    ];
    for case in cases {
        let e = case.unwrap_err();
        assert_eq!((e.reason(), e.field()), (Reason::ObjectNotFound, "name"));
    }
    let e = info_registrar(&r.state, "rar-x", 0).unwrap_err();
    assert_eq!((e.reason(), e.field()), (Reason::ObjectNotFound, "id"));
    assert_eq!(
        info_domain(&r.state, "rar-a", "-x.nz")
            .unwrap_err()
            .reason(),
        Reason::InvalidName
    );
    let tld = info_tld(&r.state, "KIWI").unwrap();
    assert_eq!(tld.policy.expect("policy").min_label_length, 3);
}

#[test]
fn registrar_info_lists_the_newest_ledger_entries_last() {
    let mut r = world();
    for amount in [1, 2, 3] {
        r.ok("staff", deposit("rar-b", amount));
    }
    let info = info_registrar(&r.state, "rar-b", 2).unwrap();
    let amounts: Vec<i64> = info.ledger.iter().map(|e| e.amount_minor_units).collect();
    assert_eq!(amounts, [2, 3]);
    assert_eq!(
        info.ledger[1].seq, 5,
        "deposit, create, then three deposits"
    );
    assert_eq!(info.ledger[1].reference, "bank-1");
    assert!(info_registrar(&r.state, "rar-b", 0)
        .unwrap()
        .ledger
        .is_empty());
    let all = info_registrar(&r.state, "rar-b", u32::MAX).unwrap();
    assert_eq!(all.ledger.len(), 5);
    assert_eq!(
        all.total_deposits_minor_units,
        all.balance.expect("balance").minor_units + all.total_charges_minor_units
    );
}

#[test]
fn registrar_passwords_verify_against_the_stored_hash() {
    let r = world();
    assert!(verify_registrar_password(&r.state, "rar-a", "correct horse").unwrap());
    assert!(!verify_registrar_password(&r.state, "rar-a", "wrong horse").unwrap());
    assert!(!verify_registrar_password(&r.state, "rar-zz", "correct horse").unwrap());
}

#[test]
fn object_ids_count_up_per_kind() {
    let r = world();
    assert_eq!(r.domain("rar-a", "b.nz").roid, "D4-KAURI");
    assert_eq!(
        info_contact(&r.state, "rar-a", "c-b1").unwrap().roid,
        "C3-KAURI"
    );
    assert_eq!(
        info_host(&r.state, "ns1.example.nz").unwrap().roid,
        "H3-KAURI"
    );
}

#[test]
fn bad_input_is_refused_with_the_right_reason_and_changes_nothing() {
    let mut r = world();
    let long_label = format!("{}.nz", "a".repeat(64));
    let long_name = format!("{0}.{0}.{0}.{0}.nz", "a".repeat(62));
    let example_expiry = expiry_date(&r, "example.nz");
    let update = |req: v1::UpdateDomainRequest| Kind::UpdateDomain(req);

    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Kind, Reason, &str)> = vec![
        // names
        ("leading hyphen", "rar-a", create_domain("-bad.nz", 1, "c-a1", &[]), Reason::InvalidName, "name"),
        ("underscore", "rar-a", create_domain("bad_name.nz", 1, "c-a1", &[]), Reason::InvalidName, "name"),
        ("reserved hyphens", "rar-a", create_domain("ab--cd.nz", 1, "c-a1", &[]), Reason::InvalidName, "name"),
        ("trailing dot", "rar-a", create_domain("fine.nz.", 1, "c-a1", &[]), Reason::InvalidName, "name"),
        ("overlong label", "rar-a", create_domain(&long_label, 1, "c-a1", &[]), Reason::TooLong, "name"),
        ("overlong name", "rar-a", create_domain(&long_name, 1, "c-a1", &[]), Reason::TooLong, "name"),
        ("bad punycode", "rar-a", create_domain("xn--zz.nz", 1, "c-a1", &[]), Reason::InvalidName, "name"),
        ("emoji", "rar-a", create_domain("i❤.nz", 1, "c-a1", &[]), Reason::InvalidName, "name"),
        ("unnormalised", "rar-a", create_domain("cafe\u{301}.nz", 1, "c-a1", &[]), Reason::InvalidName, "name"),
        ("unknown tld", "rar-a", create_domain("example.com", 1, "c-a1", &[]), Reason::UnknownTld, "name"),
        ("third level", "rar-a", create_domain("a.example.nz", 1, "c-a1", &[]), Reason::UnknownTld, "name"),
        ("bare tld", "rar-a", create_domain("nz", 1, "c-a1", &[]), Reason::UnknownTld, "name"),
        ("short label", "rar-usd", create_domain("ab.kiwi", 2, "c-a1", &[]), Reason::PolicyViolation, "name"),
        ("idn refused", "rar-usd", create_domain("café.kiwi", 2, "c-a1", &[]), Reason::PolicyViolation, "name"),
        // duplicates
        ("same name", "rar-b", create_domain("example.nz", 1, "c-b1", &[]), Reason::ObjectExists, "name"),
        ("other case", "rar-b", create_domain("ExAmPlE.NZ", 1, "c-b1", &[]), Reason::ObjectExists, "name"),
        ("u-label upper", "rar-b", create_domain("CAFÉ.nz", 1, "c-b1", &[]), Reason::ObjectExists, "name"),
        ("a-label", "rar-b", create_domain("xn--caf-dma.nz", 1, "c-b1", &[]), Reason::ObjectExists, "name"),
        ("a-label upper", "rar-b", create_domain("XN--CAF-DMA.NZ", 1, "c-b1", &[]), Reason::ObjectExists, "name"),
        ("contact exists", "rar-b", create_contact("c-a1"), Reason::ObjectExists, "id"),
        ("host exists", "rar-b", create_host("NS2.outside.NET", &[]), Reason::ObjectExists, "name"),
        ("tld exists", "staff", create_tld("NZ", policy("NZD", 1, 1)), Reason::ObjectExists, "name"),
        ("registrar exists", "staff", create_registrar("rar-a", "NZD"), Reason::ObjectExists, "id"),
        // money and periods
        ("insufficient funds", "rar-b", create_domain("pricey.nz", 10, "c-b1", &[]), Reason::InsufficientFunds, "period_years"),
        ("currency mismatch", "rar-usd", create_domain("dollars.nz", 1, "c-a1", &[]), Reason::CurrencyMismatch, "name"),
        ("period too long", "rar-a", create_domain("long.nz", 11, "c-a1", &[]), Reason::PeriodNotAllowed, "period_years"),
        ("period too short", "rar-usd", create_domain("short.kiwi", 1, "c-a1", &[]), Reason::PeriodNotAllowed, "period_years"),
        ("renew past 10 years", "rar-a", renew("example.nz", &example_expiry, 10), Reason::PeriodNotAllowed, "period_years"),
        ("renew wrong date", "rar-a", renew("example.nz", "2031-01-01", 1), Reason::ExpiryDateMismatch, "current_expiry_date"),
        ("renew bad date", "rar-a", renew("example.nz", "1/1/2026", 1), Reason::InvalidField, "current_expiry_date"),
        ("deposit zero", "staff", deposit("rar-a", 0), Reason::InvalidField, "amount_minor_units"),
        ("deposit negative", "staff", deposit("rar-a", -5), Reason::InvalidField, "amount_minor_units"),
        ("deposit unknown", "staff", deposit("rar-zz", 5), Reason::ObjectNotFound, "registrar"),
        // sponsorship and authentication
        ("wrong sponsor update", "rar-b", update(v1::UpdateDomainRequest { auth_info: "new-password".into(), ..update_domain("example.nz") }), Reason::NotSponsor, "name"),
        ("wrong sponsor renew", "rar-b", renew("example.nz", &example_expiry, 1), Reason::NotSponsor, "name"),
        ("wrong sponsor delete", "rar-b", Kind::DeleteDomain(delete("example.nz")), Reason::NotSponsor, "name"),
        ("wrong sponsor contact", "rar-b", Kind::DeleteContact(delete("c-a1")), Reason::NotSponsor, "name"),
        ("wrong sponsor host", "rar-b", Kind::DeleteHost(delete("ns1.outside.net")), Reason::NotSponsor, "name"),
        ("glue under other's domain", "rar-b", create_host("ns2.example.nz", &[]), Reason::NotSponsor, "name"),
        ("unknown actor", "rar-zz", create_domain("mine.nz", 1, "c-a1", &[]), Reason::AuthenticationFailed, "meta.actor"),
        ("staff is no registrar", "staff", create_contact("c-staff"), Reason::AuthenticationFailed, "meta.actor"),
        // references
        ("unknown registrant", "rar-a", create_domain("orphan.nz", 1, "c-zz", &[]), Reason::ObjectNotFound, "registrant"),
        ("unknown name server", "rar-a", create_domain("orphan.nz", 1, "c-a1", &["ns9.outside.net"]), Reason::ObjectNotFound, "nameservers"),
        ("domain not found", "rar-a", Kind::DeleteDomain(delete("nope.nz")), Reason::ObjectNotFound, "name"),
        ("glue without domain", "rar-a", create_host("ns1.nope.nz", &[]), Reason::ObjectNotFound, "name"),
        ("contact in use", "rar-a", Kind::DeleteContact(delete("c-a1")), Reason::ObjectInUse, "name"),
        ("host in use", "rar-a", Kind::DeleteHost(delete("ns1.outside.net")), Reason::ObjectInUse, "name"),
        ("domain has hosts", "rar-a", Kind::DeleteDomain(delete("example.nz")), Reason::ObjectInUse, "name"),
        // statuses
        ("delete prohibited", "rar-a", Kind::DeleteDomain(delete("locked.nz")), Reason::StatusProhibits, "name"),
        ("renew prohibited", "rar-a", renew("locked.nz", "2026-01-01", 1), Reason::StatusProhibits, "name"),
        ("update prohibited", "rar-a", update(v1::UpdateDomainRequest { add_statuses: strings(&["clientHold"]), ..update_domain("locked.nz") }), Reason::StatusProhibits, "name"),
        ("server status", "rar-a", update(v1::UpdateDomainRequest { add_statuses: strings(&["serverHold"]), ..update_domain("example.nz") }), Reason::PolicyViolation, "add_statuses"),
        ("unknown status", "rar-a", update(v1::UpdateDomainRequest { add_statuses: strings(&["frozen"]), ..update_domain("example.nz") }), Reason::InvalidField, "add_statuses"),
        ("remove absent ns", "rar-a", update(v1::UpdateDomainRequest { remove_nameservers: strings(&["ns2.outside.net"]), ..update_domain("example.nz") }), Reason::PolicyViolation, "remove_nameservers"),
        // hosts
        ("out-of-bailiwick glue", "rar-a", create_host("ns3.outside.net", &["192.0.2.9"]), Reason::PolicyViolation, "addresses"),
        ("bad address", "rar-a", create_host("ns2.example.nz", &["192.0.2.300"]), Reason::InvalidField, "addresses"),
        ("single-label host", "rar-a", create_host("localhost", &[]), Reason::InvalidName, "name"),
        // other fields
        ("empty auth info", "rar-a", without_auth_info(create_domain("noauth.nz", 1, "c-a1", &[])), Reason::InvalidField, "auth_info"),
        ("bad contact id", "rar-a", create_contact("a b"), Reason::InvalidField, "id"),
        ("bad tld policy", "staff", create_tld("org", policy("nzd", 1, 1)), Reason::InvalidField, "policy.currency"),
        ("tld with dots", "staff", create_tld("co.nz", policy("NZD", 1, 1)), Reason::InvalidName, "name"),
        ("bad registrar id", "staff", create_registrar("r!", "NZD"), Reason::InvalidField, "id"),
        ("bad currency", "staff", create_registrar("rar-q", "dollars"), Reason::InvalidField, "currency"),
    ];

    for (what, actor, kind, reason, field) in cases {
        let before = data_digest(&r.state);
        let p = r.propose(actor, kind);
        let e = expect_error(r.apply(&p));
        assert_eq!(
            (e.reason(), e.field.as_str()),
            (reason, field),
            "{what}: {}",
            e.message
        );
        assert!(
            e.message.starts_with(field),
            "{what}: message {:?} names the field",
            e.message
        );
        let tx = e.tx.as_ref().expect("errors carry tx info");
        assert_eq!(tx.sv_trid, format!("kauri-{}", r.log.len()), "{what}");
        assert_eq!(tx.cl_trid, format!("trid-{}", r.next_trid), "{what}");
        assert_eq!(
            data_digest(&r.state),
            before,
            "{what} changed registry data"
        );
        // The rejection is remembered: the retry replays it.
        let again = expect_error(r.apply(&p));
        assert!(again.tx.as_ref().expect("tx").replayed, "{what}");
        assert_eq!(again.message, e.message, "{what}");
    }
}

#[test]
fn malformed_envelopes_are_refused_and_not_remembered() {
    let mut r = world();
    let good = || r_proposal("rar-a", "env-1");
    #[rustfmt::skip]
    let cases: Vec<(&str, Proposal, &str)> = vec![
        ("no command", Proposal { command: None, ..good() }, "command"),
        ("empty command", Proposal { command: Some(v1::Command { kind: None }), ..good() }, "command"),
        ("no meta", {
            let mut p = good();
            if let Some(kind) = p.command.as_mut().and_then(|c| c.kind.as_mut()) {
                *meta_mut(kind) = None;
            }
            p
        }, "meta"),
        ("short cl_trid", r_proposal("rar-a", "ab"), "meta.cl_trid"),
        ("long cl_trid", r_proposal("rar-a", &"x".repeat(65)), "meta.cl_trid"),
        ("control cl_trid", r_proposal("rar-a", "abc\ndef"), "meta.cl_trid"),
        ("padded cl_trid", r_proposal("rar-a", " abc "), "meta.cl_trid"),
        ("empty actor", r_proposal("", "env-2"), "meta.actor"),
        ("nul actor", r_proposal("rar\0a", "env-3"), "meta.actor"),
        ("no digest", Proposal { request_digest: Vec::new(), ..good() }, "request_digest"),
    ];
    for (what, p, field) in cases {
        let before = data_digest(&r.state);
        let idempotency = r.state.iter(Cf::Idempotency).count();
        let e = expect_error(r.apply(&p));
        assert_eq!(
            (e.reason(), e.field.as_str()),
            (Reason::InvalidField, field),
            "{what}: {}",
            e.message
        );
        assert!(!e.tx.as_ref().expect("tx").replayed);
        assert_eq!(data_digest(&r.state), before, "{what}");
        assert_eq!(
            r.state.iter(Cf::Idempotency).count(),
            idempotency,
            "{what} was remembered"
        );
    }
    // 64 characters is still fine.
    let ok = r.apply(&r_proposal("rar-a", &"y".repeat(64)));
    assert!(matches!(ok.outcome, Some(Outcome::Domain(_))), "{ok:?}");
}

fn r_proposal(actor: &str, cl_trid: &str) -> Proposal {
    proposal(
        T0 + DAY_MS,
        actor,
        cl_trid,
        create_domain("envelope.nz", 1, "c-a1", &[]),
    )
}

#[test]
fn batching_sees_earlier_writes_of_the_same_batch() {
    let mut state = MemState::new();
    let batch: Vec<(ApplyContext, Proposal)> = [
        ("staff", create_tld("nz", policy("NZD", 10, 10))),
        ("staff", create_registrar("rar-a", "NZD")),
        ("staff", deposit("rar-a", 100)),
        ("rar-a", create_contact("c-a1")),
        ("rar-a", create_domain("one.nz", 1, "c-a1", &[])),
        ("rar-a", create_domain("ONE.nz", 1, "c-a1", &[])),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (actor, kind))| {
        let ctx = ApplyContext {
            log_index: i as u64 + 1,
            log_term: 1,
        };
        (ctx, proposal(T0 + i as i64, actor, &format!("b-{i}"), kind))
    })
    .collect();
    let results = apply_batch(&mut state, &batch);
    assert!(matches!(results[4].outcome, Some(Outcome::Domain(_))));
    assert_eq!(
        expect_error(results[5].clone()).reason(),
        Reason::ObjectExists
    );
    assert_eq!(
        info_registrar(&state, "rar-a", 0)
            .unwrap()
            .balance
            .expect("balance")
            .minor_units,
        90
    );
}

// ---------------------------------------------------------------------------
// Invariant checks shared by scenarios and properties

/// The statistics the state machine keeps as it applies (what metrics
/// export) equal what a scan of the objects finds.
fn assert_stats_match(state: &MemState) {
    let stats = super::stats(state).expect("stats");
    let mut per_tld: BTreeMap<String, u64> = BTreeMap::new();
    for d in records::<DomainRecord>(state, Cf::Domains) {
        *per_tld
            .entry(super::lookup::tld_label(&d.name).to_string())
            .or_default() += 1;
    }
    let counted: BTreeMap<String, u64> = stats
        .domains
        .iter()
        .filter(|(_, n)| *n > 0)
        .cloned()
        .collect();
    assert_eq!(counted, per_tld, "domains per TLD");
    assert_eq!(
        stats.hosts,
        records::<HostRecord>(state, Cf::Hosts).len() as u64,
        "hosts"
    );
    assert_eq!(
        stats.contacts,
        records::<ContactRecord>(state, Cf::Contacts).len() as u64,
        "contacts"
    );
    let balances: Vec<(String, String, i64)> = records::<RegistrarRecord>(state, Cf::Registrars)
        .into_iter()
        .map(|r| (r.id, r.currency, r.balance_minor_units))
        .collect();
    assert_eq!(stats.balances, balances, "balances");
}

/// Money is conserved: per registrar and in total, deposits equal balance
/// plus charges minus refunds, both in the account records and in the
/// ledger; refunds never exceed charges.
fn assert_money_conserved(state: &MemState) {
    let registrars: Vec<RegistrarRecord> = records(state, Cf::Registrars);
    let ledger: Vec<LedgerRecord> = records(state, Cf::Ledger);
    let (mut deposits, mut balances, mut charges, mut refunds) = (0i128, 0i128, 0i128, 0i128);
    for account in &registrars {
        assert!(account.is_balanced(), "{account:?}");
        let entries: Vec<&LedgerRecord> = ledger
            .iter()
            .filter(|e| e.registrar == account.id)
            .collect();
        assert_eq!(entries.len() as u64, account.ledger_len, "{}", account.id);
        let sum = |kinds: &dyn Fn(LedgerKind) -> bool| -> i64 {
            entries
                .iter()
                .filter(|e| kinds(e.kind))
                .map(|e| e.amount_minor_units)
                .sum()
        };
        assert_eq!(
            sum(&|k| k == LedgerKind::Deposit),
            account.total_deposits_minor_units,
            "{}",
            account.id
        );
        assert_eq!(
            -sum(&|k| k.is_charge()),
            account.total_charges_minor_units,
            "{}",
            account.id
        );
        assert_eq!(
            sum(&|k| k == LedgerKind::Refund),
            account.total_refunds_minor_units,
            "{}",
            account.id
        );
        let last_balance = entries.last().map_or(0, |e| e.balance_after_minor_units);
        assert_eq!(last_balance, account.balance_minor_units, "{}", account.id);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1, "ledger sequence of {}", account.id);
            if e.kind.is_charge() {
                assert!(e.amount_minor_units <= 0, "{e:?}");
                assert!(
                    e.balance_after_minor_units >= -account.credit_limit_minor_units,
                    "a charge went past the credit limit: {e:?}"
                );
            } else {
                assert!(e.amount_minor_units > 0, "{e:?}");
            }
            if e.kind == LedgerKind::Refund {
                assert!(
                    ledger.iter().any(|c| c.registrar == e.registrar
                        && c.kind.is_charge()
                        && c.sv_trid == e.linked_sv_trid),
                    "refund {e:?} names no charge"
                );
            }
        }
        deposits += i128::from(account.total_deposits_minor_units);
        balances += i128::from(account.balance_minor_units);
        charges += i128::from(account.total_charges_minor_units);
        refunds += i128::from(account.total_refunds_minor_units);
    }
    assert_eq!(deposits, balances + charges - refunds);
    assert_eq!(
        ledger.len() as u64,
        registrars.iter().map(|a| a.ledger_len).sum::<u64>()
    );
}

/// The registry's structural invariants: every object's sponsor exists,
/// status sets are legal, poll queues belong to registrars and match their
/// counts, every scheduled event is indexed and every index entry is some
/// domain's, and each audit record is in both indexes.
fn assert_registry_consistent(state: &MemState) {
    use super::model::{EventKind, EventRecord, PollRecord};
    assert_stats_match(state);
    let registrars: BTreeMap<String, RegistrarRecord> =
        records::<RegistrarRecord>(state, Cf::Registrars)
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
    let domains: Vec<DomainRecord> = records(state, Cf::Domains);
    let now = registry_now_ms(state).expect("time");
    for d in &domains {
        assert!(
            registrars.contains_key(&d.sponsor),
            "{} has no sponsor",
            d.name
        );
        let shown = d.to_proto("", now).statuses;
        if let Err(e) = status::check_combination(&shown) {
            panic!("{}: illegal statuses: {e}", d.name);
        }
        if let Some(t) = &d.transfer {
            assert!(registrars.contains_key(&t.gaining) && registrars.contains_key(&t.losing));
        }
        for e in &d.events {
            let key = super::model::due_event_key(e.due_ms, e.id);
            let stored = state.get(Cf::DueEvents, &key).expect("read");
            assert!(stored.is_some(), "{}: event {e:?} not indexed", d.name);
        }
        let kinds: BTreeSet<_> = d.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds.len(),
            d.events.len(),
            "{}: two events of a kind",
            d.name
        );
        assert_eq!(
            d.transfer_pending(),
            kinds.contains(&super::model::EventKind::TransferAutoApprove),
            "{}: pending transfer and its auto-approval go together",
            d.name
        );
        assert_eq!(
            !d.state.is_deleted(),
            kinds.contains(&super::model::EventKind::AutoRenew),
            "{}: active domains (only) auto-renew",
            d.name
        );
    }
    for c in records::<ContactRecord>(state, Cf::Contacts) {
        assert!(
            registrars.contains_key(&c.sponsor),
            "contact {} has no sponsor",
            c.id
        );
        if let Err(e) = status::check_combination(&c.to_proto("").statuses) {
            panic!("contact {}: illegal statuses: {e}", c.id);
        }
        assert!(
            c.server_statuses
                .iter()
                .all(|s| s.applies_to(ObjectKind::Contact)),
            "contact {}: {:?}",
            c.id,
            c.server_statuses
        );
    }
    for h in records::<HostRecord>(state, Cf::Hosts) {
        assert!(
            registrars.contains_key(&h.sponsor),
            "host {} has no sponsor",
            h.name
        );
        if let Err(e) = status::check_combination(&h.to_proto().statuses) {
            panic!("host {}: illegal statuses: {e}", h.name);
        }
        assert!(
            h.server_statuses
                .iter()
                .all(|s| s.applies_to(ObjectKind::Host)),
            "host {}: {:?}",
            h.name,
            h.server_statuses
        );
    }
    let contacts: Vec<ContactRecord> = records(state, Cf::Contacts);
    for c in &contacts {
        if let Err(e) = schedule::check_contact_event(state, c) {
            panic!("{e}");
        }
    }
    for e in records::<EventRecord>(state, Cf::DueEvents) {
        if e.kind == EventKind::ContactTransferAutoApprove {
            let c = contacts
                .iter()
                .find(|c| c.id == e.domain)
                .unwrap_or_else(|| panic!("event {e:?} for a missing contact"));
            assert!(
                c.transfer_event.is_some_and(|s| s.id == e.id),
                "stray event {e:?}"
            );
            continue;
        }
        let d = domains
            .iter()
            .find(|d| d.name == e.domain)
            .unwrap_or_else(|| panic!("event {e:?} for a missing domain"));
        assert!(d.events.iter().any(|s| s.id == e.id), "stray event {e:?}");
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for m in records::<PollRecord>(state, Cf::Poll) {
        let owner = registrars
            .get(&m.registrar)
            .unwrap_or_else(|| panic!("poll message for missing registrar {:?}", m.registrar));
        assert!(m.id <= owner.poll_seq);
        *counts.entry(m.registrar.clone()).or_default() += 1;
    }
    for (id, r) in &registrars {
        assert_eq!(
            counts.get(id).copied().unwrap_or(0),
            r.poll_count,
            "{id} poll count"
        );
    }
    let audits = state.iter(Cf::Audit).count();
    assert_eq!(audits as u64, audit::audit_len(state).expect("count"));
    assert_eq!(state.iter(Cf::AuditByObject).count(), audits);
    assert_eq!(state.iter(Cf::AuditByActor).count(), audits);
}

/// Reference counts and subordinate-host lists match what domains and hosts
/// actually refer to; stored keys are normalised names.
fn assert_refs_consistent(state: &MemState) {
    let domains: Vec<DomainRecord> = records(state, Cf::Domains);
    let hosts: Vec<HostRecord> = records(state, Cf::Hosts);
    let contacts: Vec<ContactRecord> = records(state, Cf::Contacts);
    let mut contact_refs: BTreeMap<&str, u64> = BTreeMap::new();
    let mut host_refs: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &domains {
        for id in d.referenced_contacts() {
            *contact_refs.entry(id).or_default() += 1;
        }
        for ns in &d.nameservers {
            *host_refs.entry(ns.as_str()).or_default() += 1;
        }
        for h in &d.subordinate_hosts {
            let host = hosts
                .iter()
                .find(|x| &x.name == h)
                .expect("subordinate host exists");
            assert_eq!(host.superordinate.as_deref(), Some(d.name.as_str()));
        }
    }
    for c in &contacts {
        assert_eq!(
            c.domain_refs,
            contact_refs.get(c.id.as_str()).copied().unwrap_or(0),
            "{}",
            c.id
        );
    }
    for h in &hosts {
        assert_eq!(
            h.domain_refs,
            host_refs.get(h.name.as_str()).copied().unwrap_or(0),
            "{}",
            h.name
        );
        if let Some(parent) = &h.superordinate {
            let d = domains
                .iter()
                .find(|d| &d.name == parent)
                .expect("superordinate exists");
            assert!(d.subordinate_hosts.contains(&h.name));
        }
    }
    assert_eq!(count_domains(state).unwrap(), domains.len() as u64);
    // The delegation index is what the domains' nameservers say, and what
    // rebuilding it from them gives.
    let indexed: BTreeSet<Vec<u8>> = state
        .iter(Cf::HostDelegations)
        .map(|(k, _)| k.clone())
        .collect();
    let rebuilt: BTreeSet<Vec<u8>> = state
        .iter(Cf::Domains)
        .flat_map(|(k, v)| super::derived_entries(Cf::Domains, k, v).expect("a domain decodes"))
        .map(|(cf, k)| {
            assert_eq!(cf, Cf::HostDelegations);
            k
        })
        .collect();
    assert_eq!(
        indexed, rebuilt,
        "the delegation index differs from the domains"
    );
    assert_eq!(
        indexed.len() as u64,
        hosts.iter().map(|h| h.domain_refs).sum::<u64>()
    );
}

#[test]
fn the_world_fixture_satisfies_the_invariants() {
    let r = world();
    assert_money_conserved(&r.state);
    assert_refs_consistent(&r.state);
    assert_registry_consistent(&r.state);
}

// ---------------------------------------------------------------------------
// Properties

const REGISTRARS: [&str; 3] = ["rar-a", "rar-b", "rar-c"];
const TLDS: [&str; 2] = ["nz", "kiwi"];
/// Second-level labels as U-labels, with their A-labels computed by hand
/// (independently of the code under test).
const LABELS: [(&str, &str); 4] = [
    ("example", "example"),
    ("café", "xn--caf-dma"),
    ("straße", "xn--strae-oqa"),
    ("ab", "ab"),
];
const HOSTS: [&str; 4] = [
    "ns1.outside.net",
    "ns2.outside.net",
    "ns.example.nz",
    "ns.café.nz",
];

/// One spelling of one of the [`LABELS`] under one of the [`TLDS`].
#[derive(Debug, Clone)]
struct Spelling {
    label: usize,
    tld: usize,
    a_label: bool,
    case_mask: u32,
}

impl Spelling {
    fn text(&self) -> String {
        let (u, a) = LABELS[self.label];
        let label = if self.a_label { a } else { u };
        let name = format!("{label}.{}", TLDS[self.tld]);
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if self.case_mask & (1 << (i % 32)) == 0 {
                    return c;
                }
                // Only case changes that lower-case back to the same letter
                // (so not ß → SS).
                let mut upper = c.to_uppercase();
                match (upper.next(), upper.next()) {
                    (Some(u), None) if u.to_lowercase().eq(std::iter::once(c)) => u,
                    _ => c,
                }
            })
            .collect()
    }

    /// The normal form, by construction.
    fn canonical(&self) -> String {
        format!("{}.{}", LABELS[self.label].1, TLDS[self.tld])
    }
}

#[derive(Debug, Clone)]
enum Op {
    Deposit {
        rar: usize,
        amount: i64,
    },
    Create {
        rar: usize,
        name: Spelling,
        years: u32,
        with_ns: bool,
    },
    Renew {
        rar: usize,
        name: Spelling,
        years: u32,
        right_date: bool,
    },
    Update {
        rar: usize,
        name: Spelling,
        toggle_ns: bool,
        toggle_hold: bool,
    },
    Delete {
        rar: usize,
        name: Spelling,
    },
    CreateHost {
        rar: usize,
        host: usize,
        glue: bool,
    },
    DeleteHost {
        rar: usize,
        host: usize,
    },
    /// Re-propose an earlier proposal (a client retry after failover).
    Retry {
        back: usize,
    },
    /// A leader tick (time moves by the step's dt, perhaps a long way).
    Tick {
        long: bool,
    },
    Transfer {
        rar: usize,
        name: Spelling,
        op: i32,
        right_auth: bool,
    },
    Restore {
        rar: usize,
        name: Spelling,
        report: bool,
    },
    AckPoll {
        rar: usize,
    },
    /// Staff: registry lock on or off.
    Lock {
        name: Spelling,
        on: bool,
    },
    /// Staff: open a case and suspend, or lift the newest case's suspension.
    Suspend {
        name: Spelling,
        lift: bool,
    },
    /// Staff: set or clear a server status of a host (some not defined
    /// for hosts, so refused).
    HostServerStatus {
        host: usize,
        status: usize,
        on: bool,
    },
    /// Staff: set or clear a server status of a registrar's contact.
    ContactServerStatus {
        rar: usize,
        status: usize,
        on: bool,
    },
}

/// Server statuses the properties set on hosts: the two RFC 5732 defines,
/// and one it does not.
const HOST_SERVER_STATUSES: [&str; 3] = [
    "serverDeleteProhibited",
    "serverUpdateProhibited",
    "serverHold",
];
/// Server statuses the properties set on contacts (RFC 5733).
const CONTACT_SERVER_STATUSES: [&str; 3] = [
    "serverDeleteProhibited",
    "serverTransferProhibited",
    "serverUpdateProhibited",
];

#[derive(Debug, Clone)]
struct Step {
    op: Op,
    /// Leader clock movement; may be negative (a new leader's clock).
    dt_ms: i64,
    /// Reuse one of a few client transaction ids instead of a fresh one.
    reuse_trid: Option<u8>,
}

/// Mostly `.nz`, where every label is allowed, so that names collide often.
fn spelling() -> impl Strategy<Value = Spelling> {
    let tld = prop_oneof![3 => Just(0usize), 1 => Just(1usize)];
    (0..LABELS.len(), tld, any::<bool>(), any::<u32>()).prop_map(
        |(label, tld, a_label, case_mask)| Spelling {
            label,
            tld,
            a_label,
            case_mask,
        },
    )
}

/// Mostly the two NZD registrars; the USD one mostly meets currency errors.
fn registrar() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(0usize), 4 => Just(1usize), 1 => Just(2usize)]
}

fn op() -> impl Strategy<Value = Op> {
    let rar = registrar;
    prop_oneof![
        2 => (rar(), -10i64..20_000).prop_map(|(rar, amount)| Op::Deposit { rar, amount }),
        5 => (rar(), spelling(), 0u32..12, any::<bool>())
            .prop_map(|(rar, name, years, with_ns)| Op::Create { rar, name, years, with_ns }),
        2 => (rar(), spelling(), 0u32..4, prop::bool::weighted(0.8))
            .prop_map(|(rar, name, years, right_date)| Op::Renew { rar, name, years, right_date }),
        2 => (rar(), spelling(), any::<bool>(), any::<bool>()).prop_map(
            |(rar, name, toggle_ns, toggle_hold)| Op::Update { rar, name, toggle_ns, toggle_hold }
        ),
        2 => (rar(), spelling()).prop_map(|(rar, name)| Op::Delete { rar, name }),
        1 => (rar(), 0..HOSTS.len(), any::<bool>())
            .prop_map(|(rar, host, glue)| Op::CreateHost { rar, host, glue }),
        1 => (rar(), 0..HOSTS.len()).prop_map(|(rar, host)| Op::DeleteHost { rar, host }),
        1 => (0usize..8).prop_map(|back| Op::Retry { back }),
        3 => prop::bool::weighted(0.2).prop_map(|long| Op::Tick { long }),
        3 => (rar(), spelling(), 1i32..5, prop::bool::weighted(0.8)).prop_map(
            |(rar, name, op, right_auth)| Op::Transfer { rar, name, op, right_auth }
        ),
        1 => (rar(), spelling(), any::<bool>())
            .prop_map(|(rar, name, report)| Op::Restore { rar, name, report }),
        1 => rar().prop_map(|rar| Op::AckPoll { rar }),
        1 => (spelling(), any::<bool>()).prop_map(|(name, on)| Op::Lock { name, on }),
        1 => (spelling(), any::<bool>()).prop_map(|(name, lift)| Op::Suspend { name, lift }),
        1 => (0..HOSTS.len(), 0..HOST_SERVER_STATUSES.len(), any::<bool>())
            .prop_map(|(host, status, on)| Op::HostServerStatus { host, status, on }),
        1 => (rar(), 0..CONTACT_SERVER_STATUSES.len(), any::<bool>())
            .prop_map(|(rar, status, on)| Op::ContactServerStatus { rar, status, on }),
    ]
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            op(),
            -5_000i64..40 * DAY_MS,
            prop::option::weighted(0.15, 0u8..3),
        )
            .prop_map(|(op, dt_ms, reuse_trid)| Step {
                op,
                dt_ms,
                reuse_trid,
            }),
        1..max,
    )
}

/// The starting point of every property run.
fn prop_world() -> Registry {
    let mut r = Registry::new();
    r.ok("staff", create_tld("nz", policy("NZD", 700, 600)));
    r.ok(
        "staff",
        create_tld(
            "kiwi",
            v1::TldPolicy {
                min_label_length: 3,
                allow_idn: false,
                ..policy("NZD", 300, 300)
            },
        ),
    );
    // Short periods so that random steps walk through every phase.
    for tld in TLDS {
        r.ok("staff", set_lifecycle(tld, prop_lifecycle()));
    }
    for (id, currency) in [("rar-a", "NZD"), ("rar-b", "NZD"), ("rar-c", "USD")] {
        r.ok("staff", create_registrar(id, currency));
        r.ok("staff", deposit(id, 5_000));
        r.ok(id, create_contact(&format!("c-{id}")));
    }
    r.ok("staff", update_registrar("rar-b", Some(1_500), Some(2_000)));
    r.ok("rar-a", create_host("ns1.outside.net", &[]));
    r.ok("rar-b", create_host("ns2.outside.net", &[]));
    r
}

/// Turns a step into a proposal, looking at replica `r` where the request
/// depends on state (the current expiry date, whether a name server is set),
/// as a registrar's client would.
fn step_proposal(r: &mut Registry, step: &Step) -> Proposal {
    let (actor, kind) = match &step.op {
        Op::Deposit { rar, amount } => ("staff".to_string(), deposit(REGISTRARS[*rar], *amount)),
        Op::Create {
            rar,
            name,
            years,
            with_ns,
        } => {
            let id = REGISTRARS[*rar];
            let ns: &[&str] = if *with_ns { &["ns1.outside.net"] } else { &[] };
            (
                id.to_string(),
                create_domain(&name.text(), *years, &format!("c-{id}"), ns),
            )
        }
        Op::Renew {
            rar,
            name,
            years,
            right_date,
        } => {
            let date = info_domain(&r.state, "", &name.canonical())
                .ok()
                .filter(|_| *right_date)
                .and_then(|d| utc_date(d.expiry_ms))
                .map_or_else(|| "2030-06-30".to_string(), |d| d.to_string());
            (
                REGISTRARS[*rar].to_string(),
                renew(&name.text(), &date, *years),
            )
        }
        Op::Update {
            rar,
            name,
            toggle_ns,
            toggle_hold,
        } => {
            let current = info_domain(&r.state, "", &name.canonical()).ok();
            let has = |f: &dyn Fn(&v1::Domain) -> bool| current.as_ref().is_some_and(f);
            let mut req = update_domain(&name.text());
            if *toggle_ns {
                let ns = "ns2.outside.net".to_string();
                if has(&|d| d.nameservers.contains(&ns)) {
                    req.remove_nameservers.push(ns);
                } else {
                    req.add_nameservers.push(ns);
                }
            }
            if *toggle_hold {
                let hold = "clientHold".to_string();
                if has(&|d| d.statuses.contains(&hold)) {
                    req.remove_statuses.push(hold);
                } else {
                    req.add_statuses.push(hold);
                }
            }
            (REGISTRARS[*rar].to_string(), Kind::UpdateDomain(req))
        }
        Op::Delete { rar, name } => (
            REGISTRARS[*rar].to_string(),
            Kind::DeleteDomain(delete(&name.text())),
        ),
        Op::CreateHost { rar, host, glue } => {
            let addresses: &[&str] = if *glue {
                &["192.0.2.53", "2001:db8::53"]
            } else {
                &[]
            };
            (
                REGISTRARS[*rar].to_string(),
                create_host(HOSTS[*host], addresses),
            )
        }
        Op::DeleteHost { rar, host } => (
            REGISTRARS[*rar].to_string(),
            Kind::DeleteHost(delete(HOSTS[*host])),
        ),
        Op::Retry { back } => {
            let (_, earlier) = &r.log[r.log.len() - 1 - back % r.log.len()];
            let mut again = earlier.clone();
            again.time_ms = r.time_ms + step.dt_ms;
            r.time_ms = again.time_ms;
            return again;
        }
        Op::Tick { long } => {
            r.time_ms += if *long { 200 * DAY_MS } else { step.dt_ms };
            return tick_proposal(r.time_ms);
        }
        Op::Transfer {
            rar,
            name,
            op,
            right_auth,
        } => {
            let auth = if *right_auth { "domain-pw" } else { "wrong-pw" };
            (
                REGISTRARS[*rar].to_string(),
                transfer(&name.text(), *op, auth),
            )
        }
        Op::Restore { rar, name, report } => {
            (REGISTRARS[*rar].to_string(), restore(&name.text(), *report))
        }
        Op::AckPoll { rar } => {
            let id = REGISTRARS[*rar];
            let head = poll_head(&r.state, id)
                .ok()
                .and_then(|(m, _)| m)
                .map_or(1, |m| m.id);
            (id.to_string(), ack(head))
        }
        Op::Lock { name, on } => ("staff".to_string(), lock(&name.text(), *on)),
        Op::HostServerStatus { host, status, on } => {
            let status = [HOST_SERVER_STATUSES[*status]];
            let (add, remove): (&[&str], &[&str]) =
                if *on { (&status, &[]) } else { (&[], &status) };
            (
                "staff".to_string(),
                host_server_status(HOSTS[*host], add, remove),
            )
        }
        Op::ContactServerStatus { rar, status, on } => {
            let status = [CONTACT_SERVER_STATUSES[*status]];
            let (add, remove): (&[&str], &[&str]) =
                if *on { (&status, &[]) } else { (&[], &status) };
            (
                "staff".to_string(),
                contact_server_status(&format!("c-{}", REGISTRARS[*rar]), add, remove),
            )
        }
        Op::Suspend { name, lift } => {
            let case = (1..=64u64)
                .rev()
                .filter_map(|id| info_case(&r.state, id).ok())
                .find(|c| c.domain == name.canonical() && c.suspended);
            match (lift, case) {
                (true, Some(c)) => ("staff".to_string(), case_action(c.id, v1::CaseAction::Lift)),
                _ => {
                    // Open a case (its suspension follows as the next step
                    // of the same op, applied right away).
                    let open = proposal(
                        r.time_ms,
                        "staff",
                        &format!("case-{}", r.log.len()),
                        open_case(&name.text()),
                    );
                    let opened = r.apply(&open);
                    let id = match opened.outcome {
                        Some(Outcome::AupCase(c)) => c.aup_case.map_or(0, |c| c.id),
                        _ => 0,
                    };
                    (
                        "staff".to_string(),
                        case_action(id, v1::CaseAction::Suspend),
                    )
                }
            }
        }
    };
    r.time_ms += step.dt_ms;
    let cl_trid = match step.reuse_trid {
        Some(k) => format!("reused-{k}"),
        None => {
            r.next_trid += 1;
            format!("trid-{}", r.next_trid)
        }
    };
    proposal(r.time_ms, &actor, &cl_trid, kind)
}

/// Runs `steps` on a fresh replica one entry per batch; returns it and the
/// result of every step (some steps apply a helper entry first).
fn run_steps(steps: &[Step]) -> (Registry, Vec<CommandResult>) {
    let mut r = prop_world();
    let mut results = Vec::with_capacity(steps.len());
    for step in steps {
        let p = step_proposal(&mut r, step);
        results.push(r.apply(&p));
    }
    (r, results)
}

/// Replays a log on a fresh state in batches of the given sizes (cycled).
fn replay_in_batches(
    log: &[(ApplyContext, Proposal)],
    sizes: &[usize],
) -> (MemState, Vec<CommandResult>) {
    let mut state = MemState::new();
    let mut results = Vec::with_capacity(log.len());
    let mut rest = log;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().expect("sizes is not empty")).clamp(1, rest.len());
        let (batch, tail) = rest.split_at(n);
        results.extend(apply_batch(&mut state, batch));
        rest = tail;
    }
    (state, results)
}

fn prop_config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(prop_config())]

    /// The same log gives byte-identical state and responses on every
    /// replica, however it is cut into batches.
    #[test]
    fn replicas_agree_byte_for_byte_whatever_the_batching(
        steps in steps(48),
        sizes in prop::collection::vec(1usize..9, 1..6),
    ) {
        let (sequential, _) = run_steps(&steps);
        let (batched, batched_results) = replay_in_batches(&sequential.log, &sizes);
        let (one_batch, one_batch_results) = replay_in_batches(&sequential.log, &[usize::MAX]);

        prop_assert_eq!(sequential.state.digest(), batched.digest());
        prop_assert_eq!(sequential.state.digest(), one_batch.digest());
        prop_assert!(sequential.state == batched);
        prop_assert_eq!(sequential.results.len(), batched_results.len());
        for (i, result) in sequential.results.iter().enumerate() {
            let bytes = result.encode_to_vec();
            prop_assert_eq!(&bytes, &batched_results[i].encode_to_vec());
            prop_assert_eq!(&bytes, &one_batch_results[i].encode_to_vec());
        }
    }

    /// Money is neither made nor lost: deposits equal balances plus charges
    /// minus refunds, in the accounts and in the ledger; rejected commands
    /// and replays move no money; and the registry stays consistent
    /// (sponsors exist, statuses legal, events and poll queues indexed).
    #[test]
    fn balances_are_conserved_and_the_registry_stays_consistent(steps in steps(64)) {
        let (r, results) = run_steps(&steps);
        assert_money_conserved(&r.state);
        assert_refs_consistent(&r.state);
        assert_registry_consistent(&r.state);

        let ledger: Vec<LedgerRecord> = records(&r.state, Cf::Ledger);
        for result in &results {
            let Some(Outcome::Tick(_)) = result.outcome else {
                let tx = tx_of(result);
                let entries = ledger.iter().filter(|e| e.sv_trid == tx.sv_trid).count();
                let charged = match &result.outcome {
                    Some(Outcome::Domain(d)) => d.charged.is_some(),
                    Some(Outcome::Transfer(t)) => t.charged.is_some() || t.refunded.is_some(),
                    Some(Outcome::Deleted(d)) => d.refunded.is_some(),
                    Some(Outcome::Registrar(resp)) => {
                        resp.registrar.as_ref().is_some_and(|a| !a.ledger.is_empty())
                    }
                    _ => false,
                };
                // A charge or refund the response reports is in the ledger
                // under the svTRID of the first execution (a replay points
                // back at it). Some commands move money they do not report:
                // approving a transfer refunds an auto-renewal, a suspension
                // refunds a transfer it cancels.
                if charged {
                    prop_assert!(entries > 0, "{:?}", result);
                }
                if matches!(result.outcome, Some(Outcome::Error(_))) {
                    prop_assert_eq!(entries, 0);
                }
                continue;
            };
        }
    }

    /// No two domains share a normalised name, whatever case or IDN form
    /// registrars spell them in: a create succeeds exactly when no domain of
    /// that name exists (in any phase, redemption included).
    #[test]
    fn no_two_domains_share_a_normalised_name(steps in steps(64)) {
        let mut r = prop_world();
        for step in &steps {
            let existed = |r: &Registry, name: &Spelling| {
                info_domain(&r.state, "", &name.canonical()).is_ok()
            };
            let before = match &step.op {
                Op::Create { name, .. } => Some(existed(&r, name)),
                _ => None,
            };
            let p = step_proposal(&mut r, step);
            let result = r.apply(&p);
            let replayed = !matches!(result.outcome, Some(Outcome::Tick(_))) && tx_of(&result).replayed;
            if let (Op::Create { name, .. }, Some(existed), false) = (&step.op, before, replayed) {
                match &result.outcome {
                    Some(Outcome::Domain(resp)) => {
                        let created = resp.domain.as_ref().expect("domain").name.clone();
                        prop_assert_eq!(&created, &name.canonical());
                        prop_assert!(!existed, "{} registered twice", name.text());
                    }
                    Some(Outcome::Error(e)) if e.reason() == Reason::ObjectExists => {
                        prop_assert!(existed);
                    }
                    _ => {}
                }
            }
        }
        for (key, _) in r.state.iter(Cf::Domains) {
            let key = String::from_utf8(key.clone()).expect("keys are ASCII");
            prop_assert_eq!(
                &normalize_name("name", &key).expect("stored names are valid").ascii().to_string(),
                &key
            );
        }
        prop_assert_eq!(count_domains(&r.state).unwrap(), r.state.iter(Cf::Domains).count() as u64);
    }
}

fn rename_host(name: &str, new_name: &str) -> Kind {
    Kind::UpdateHost(v1::UpdateHostRequest {
        name: name.into(),
        new_name: new_name.into(),
        ..Default::default()
    })
}

fn subordinates(r: &Registry, domain: &str) -> Vec<String> {
    r.domain("", domain).subordinate_hosts
}

#[test]
fn a_host_rename_moves_it_between_domains_under_the_glue_rules() {
    let mut r = world();
    let roid = info_host(&r.state, "ns1.example.nz").unwrap().roid;

    // Refusals name the field and change nothing.
    r.ok("rar-a", create_host("ns2.example.nz", &["192.0.2.2"]));
    let before = data_digest(&r.state);
    for (actor, kind, reason, field) in [
        (
            "rar-a",
            rename_host("ns1.example.nz", "ns2.example.nz"),
            Reason::ObjectExists,
            "new_name",
        ),
        (
            "rar-a",
            rename_host("ns1.example.nz", "NS1.Example.NZ"),
            Reason::InvalidField,
            "new_name",
        ),
        (
            "rar-a",
            rename_host("ns1.example.nz", "ns1.nothere.nz"),
            Reason::ObjectNotFound,
            "new_name",
        ),
        (
            "rar-a",
            rename_host("ns1.example.nz", "ns1.b.nz"),
            Reason::NotSponsor,
            "new_name",
        ),
        (
            "rar-a",
            rename_host("ns1.example.nz", "-bad-.example.nz"),
            Reason::InvalidName,
            "new_name",
        ),
        (
            "rar-a",
            rename_host("ns1.example.nz", "ns1.elsewhere.net"),
            Reason::PolicyViolation,
            "new_name",
        ),
        (
            "rar-b",
            rename_host("ns1.example.nz", "ns9.b.nz"),
            Reason::NotSponsor,
            "name",
        ),
        (
            "rar-b",
            rename_host("ns2.outside.net", "ns3.outside.net"),
            Reason::ObjectInUse,
            "name",
        ),
    ] {
        let e = r.err(actor, kind);
        assert_eq!(
            (e.reason(), e.field.as_str()),
            (reason, field),
            "{}",
            e.message
        );
        assert_eq!(
            data_digest(&r.state),
            before,
            "a refused rename changed data: {}",
            e.message
        );
    }

    // Into another domain of the same sponsor: the host keeps its ROID and
    // glue, and moves between the domains' subordinates.
    r.ok("rar-a", rename_host("ns1.example.nz", "ns1.café.nz"));
    let cafe = r.domain("", "café.nz").name;
    let moved = info_host(&r.state, &format!("ns1.{cafe}")).unwrap();
    assert_eq!(
        (moved.roid.as_str(), moved.addresses.as_slice()),
        (roid.as_str(), &["192.0.2.1".to_string()][..])
    );
    assert!(
        info_host(&r.state, "ns1.example.nz").is_err(),
        "the old name is free"
    );
    assert_eq!(subordinates(&r, "example.nz"), ["ns2.example.nz"]);
    assert_eq!(subordinates(&r, "café.nz"), [format!("ns1.{cafe}")]);
    let trail = audit_of(&r, "host", "ns1.example.nz");
    assert!(trail[0]
        .changes
        .iter()
        .any(|c| c.starts_with("renamed to ns1.")));

    // Within its domain.
    r.ok("rar-a", rename_host("ns2.example.nz", "ns3.example.nz"));
    assert_eq!(subordinates(&r, "example.nz"), ["ns3.example.nz"]);

    // Out of the registry: only without glue, removed in the same update.
    r.ok(
        "rar-a",
        Kind::UpdateHost(v1::UpdateHostRequest {
            remove_addresses: strings(&["192.0.2.2"]),
            ..match rename_host("ns3.example.nz", "ns3.elsewhere.net") {
                Kind::UpdateHost(u) => u,
                _ => unreachable!(),
            }
        }),
    );
    assert!(subordinates(&r, "example.nz").is_empty());
    assert!(info_host(&r.state, "ns3.elsewhere.net")
        .unwrap()
        .addresses
        .is_empty());

    // And back in, with glue added in the same update.
    r.ok(
        "rar-a",
        Kind::UpdateHost(v1::UpdateHostRequest {
            add_addresses: strings(&["192.0.2.9"]),
            ..match rename_host("ns3.elsewhere.net", "ns4.example.nz") {
                Kind::UpdateHost(u) => u,
                _ => unreachable!(),
            }
        }),
    );
    assert_eq!(subordinates(&r, "example.nz"), ["ns4.example.nz"]);
    // A renamed host is delegated to by its new name.
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            add_nameservers: strings(&["ns4.example.nz"]),
            ..update_domain("example.nz")
        }),
    );
    r.ok("rar-a", rename_host("ns4.example.nz", "ns5.example.nz"));
    assert_eq!(
        r.domain("", "example.nz").nameservers,
        ["ns1.outside.net", "ns5.example.nz"]
    );
    assert_refs_consistent(&r.state);
    assert_registry_consistent(&r.state);
}

#[test]
fn a_delegated_in_bailiwick_host_is_renamed_with_its_delegations() {
    let mut r = world();
    // ns1.example.nz (rar-a's) is delegated to by example.nz (rar-a's) and
    // b.nz (rar-b's).
    for (actor, domain) in [("rar-a", "example.nz"), ("rar-b", "b.nz")] {
        r.ok(
            actor,
            Kind::UpdateDomain(v1::UpdateDomainRequest {
                add_nameservers: strings(&["ns1.example.nz"]),
                ..update_domain(domain)
            }),
        );
    }

    // Refusals change nothing: an external host in use, and a delegating
    // domain under registry lock.
    let before = data_digest(&r.state);
    let e = r.err("rar-a", rename_host("ns1.outside.net", "ns9.outside.net"));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::ObjectInUse, "name")
    );
    assert!(e.message.contains("external host"), "{}", e.message);
    r.ok(
        "staff",
        Kind::SetServerStatus(v1::SetServerStatusRequest {
            name: "b.nz".into(),
            add_statuses: strings(&["serverUpdateProhibited"]),
            reason: "registry lock".into(),
            ..Default::default()
        }),
    );
    let locked = data_digest(&r.state);
    let e = r.err("rar-a", rename_host("ns1.example.nz", "ns2.example.nz"));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::ObjectInUse, "name")
    );
    assert!(e.message.contains("\"b.nz\""), "{}", e.message);
    assert_eq!(data_digest(&r.state), locked);
    assert_ne!(before, locked);
    r.ok(
        "staff",
        Kind::SetServerStatus(v1::SetServerStatusRequest {
            name: "b.nz".into(),
            remove_statuses: strings(&["serverUpdateProhibited"]),
            reason: "lock lifted".into(),
            ..Default::default()
        }),
    );
    let polls_before = r.poll_kinds("rar-b").len();

    // The rename: both domains delegate to the new name, the host keeps its
    // two references, rar-b is told about its domain, rar-a's trail shows it.
    r.ok("rar-a", rename_host("ns1.example.nz", "ns2.café.nz"));
    let new = format!("ns2.{}", r.domain("", "café.nz").name);
    assert_eq!(
        r.domain("", "b.nz").nameservers,
        ["ns2.outside.net".to_string(), new.clone()]
    );
    assert!(r.domain("", "example.nz").nameservers.contains(&new));
    assert_eq!(r.domain("", "b.nz").sponsor, "rar-b");
    let kinds = r.poll_kinds("rar-b");
    assert_eq!(kinds.len(), polls_before + 1);
    assert_eq!(kinds.last().map(String::as_str), Some("host_renamed"));
    assert_eq!(
        r.poll_kinds("rar-a")
            .iter()
            .filter(|k| *k == "host_renamed")
            .count(),
        0
    );
    let trail = audit_of(&r, "domain", "b.nz");
    assert!(
        trail[0]
            .changes
            .iter()
            .any(|c| c.contains("-ns1.example.nz +ns2.")),
        "{:?}",
        trail[0]
    );
    assert_refs_consistent(&r.state);
    assert_registry_consistent(&r.state);

    // The old name is free, and the domains let go of the new one.
    r.ok("rar-a", create_host("ns1.example.nz", &[]));
    for (actor, domain) in [("rar-a", "example.nz"), ("rar-b", "b.nz")] {
        r.ok(
            actor,
            Kind::UpdateDomain(v1::UpdateDomainRequest {
                remove_nameservers: strings(&[&new]),
                ..update_domain(domain)
            }),
        );
    }
    r.ok("rar-a", Kind::DeleteHost(delete(&new)));
    assert_refs_consistent(&r.state);
}

#[test]
fn a_rename_moves_at_most_the_most_delegations_it_may() {
    let mut r = world();
    r.ok("staff", deposit("rar-a", 10_000_000));
    let n = super::host::MAX_RENAMED_DELEGATIONS + 1;
    for i in 0..n {
        r.ok(
            "rar-a",
            create_domain(&format!("d{i}.nz"), 1, "c-a1", &["ns1.example.nz"]),
        );
    }
    let before = data_digest(&r.state);
    let e = r.err("rar-a", rename_host("ns1.example.nz", "ns2.example.nz"));
    assert_eq!(e.reason(), Reason::ObjectInUse, "{}", e.message);
    assert!(e.message.contains(&format!("{n} domains")), "{}", e.message);
    assert_eq!(data_digest(&r.state), before);
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_nameservers: strings(&["ns1.example.nz"]),
            ..update_domain("d0.nz")
        }),
    );
    r.ok("rar-a", rename_host("ns1.example.nz", "ns2.example.nz"));
    assert_eq!(r.domain("", "d1.nz").nameservers, ["ns2.example.nz"]);
    assert_refs_consistent(&r.state);
}
