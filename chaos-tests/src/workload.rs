//! A registrar workload for chaos tests: several registrars, each with its
//! own funded account and contact, concurrently check, create, renew,
//! update, read, transfer and delete domains, and race each other for a
//! pool of hot names (drop-catching). Every operation goes into a
//! [`Recorder`].
//!
//! Transfers go as they do between registrars: one asks for another's name
//! with the auth info the registrant gave it ([`auth_info_for`]); the
//! sponsor learns of the request (here from a shared inbox standing in for
//! its poll queue) and approves or rejects it, and the asker sometimes
//! cancels. The TLD has no transfer lock, so fresh names can move. Raced
//! (hot) names are never transferred or deleted, so the drop-catch checker
//! can still tell who won each race.
//!
//! Mutations behave like an EPP gateway: each has its own client
//! transaction id, and when the outcome is unknown (timeout, no leader, no
//! quorum) the same request is sent again with the *same* id, up to
//! [`WorkloadConfig::max_attempts`] times; the final outcome is recorded.
//!
//! Choices are made by a seeded RNG per task ([`seed_from_env`];
//! `KAURI_CHAOS_SEED` replays a seed). Timing still depends on the machine,
//! so a seed reproduces the workload's choices, not the interleaving.
//!
//! Adding an operation: a [`Call`] variant, a weight in [`OpMix`], its arm
//! in [`Worker::pick`] and in `send`, and how its outcome updates a
//! registrar's view (`RegistrarView::learn`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kauri_client::proto::*;
use kauri_client::tls::ClientTls;
use kauri_client::{linearizable, ClientConfig, ClientError, KauriClient};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::checkers::domain::{expiry_date, RENEW_PROHIBITED};
use crate::checkers::{Account, FinalState, LedgerLine, Prices};
use crate::history::{Call, DomainView, Outcome, ProcessId, Recorder, Reply, TransferAction};

/// The auth info (transfer password) of `name`: the workload sets it at
/// create and a registrar asking for the name presents it, as if the
/// registrant had passed it on.
pub fn auth_info_for(name: &str) -> String {
    format!("pw-{name}")
}

/// Locks `m`, carrying on past a poisoned lock: a panicking task fails the
/// test through its join handle; the others keep the shared view usable.
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The seed of this run: `KAURI_CHAOS_SEED` if set, else from the clock.
pub fn seed_from_env() -> u64 {
    match std::env::var("KAURI_CHAOS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("KAURI_CHAOS_SEED={s:?} is not an unsigned integer")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    }
}

/// Relative weights of the operations a worker picks.
#[derive(Debug, Clone, Copy)]
pub struct OpMix {
    /// Register a fresh name of one's own.
    pub create: u32,
    /// Check a hot name, then try to create it.
    pub drop_catch: u32,
    /// Renew one of one's names.
    pub renew: u32,
    /// Toggle a status or a name server on one of one's names.
    pub update: u32,
    /// Read any known name.
    pub info: u32,
    /// Check any known name.
    pub check: u32,
    /// Ask for another registrar's name.
    pub transfer_request: u32,
    /// Answer a transfer request for one of one's names (approve or
    /// reject), or cancel one's own request.
    pub transfer_answer: u32,
    /// Delete one of one's names.
    pub delete: u32,
}

impl Default for OpMix {
    fn default() -> Self {
        OpMix {
            create: 12,
            drop_catch: 16,
            renew: 14,
            update: 16,
            info: 18,
            check: 8,
            transfer_request: 8,
            transfer_answer: 6,
            delete: 2,
        }
    }
}

/// What the workload does and how much.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// RNG seed.
    pub seed: u64,
    /// Round number: names and registrars of different rounds never clash,
    /// so several rounds can run against one cluster.
    pub round: u32,
    /// The TLD everything is registered under (created if missing).
    pub tld: String,
    /// Number of registrars.
    pub registrars: usize,
    /// Concurrent tasks per registrar.
    pub workers_per_registrar: usize,
    /// Size of the pool of names every registrar races for.
    pub hot_names: usize,
    /// How often another hot name "drops" and the race for it starts
    /// (most drop-catch attempts go for the newest few), so races go on
    /// while faults happen.
    pub hot_release_interval: Duration,
    /// Most names of its own a registrar holds at once (it creates more
    /// when it has fewer).
    pub own_names_per_registrar: usize,
    /// Most renews and transfer requests sent for one name in all (each
    /// adds a year; keeps the expiry within the ten-year limit).
    pub max_renews_per_name: u32,
    /// Stop after this many operations in all.
    pub max_ops: usize,
    /// Stop after this long.
    pub max_duration: Duration,
    /// Attempts per operation (retries with the same client transaction id).
    pub max_attempts: u32,
    /// Pause between a task's operations, in ms (uniform in the range).
    pub think_time_ms: (u64, u64),
    /// Operation weights.
    pub mix: OpMix,
    /// Client deadlines for the workload's calls.
    pub client: ClientConfig,
    /// Tasks (the last ones) that behave like clients that give up: one
    /// attempt with `impatient_client` deadlines, no retry, so outcomes stay
    /// unknown and requests may still commit after the client left.
    pub impatient_workers: usize,
    /// Client deadlines of the impatient tasks.
    pub impatient_client: ClientConfig,
    /// Deposit per registrar.
    pub deposit_minor_units: i64,
    /// TLD prices.
    pub prices: Prices,
}

impl WorkloadConfig {
    /// A small, quick workload: 4 registrars with 2 tasks each (2 of the 8
    /// impatient), a hot name dropping every 1.5 s.
    pub fn short(seed: u64) -> Self {
        WorkloadConfig {
            seed,
            round: 0,
            tld: "chaos".into(),
            registrars: 4,
            workers_per_registrar: 2,
            hot_names: 40,
            hot_release_interval: Duration::from_millis(1500),
            own_names_per_registrar: 12,
            max_renews_per_name: 4,
            max_ops: 200_000,
            max_duration: Duration::from_secs(600),
            max_attempts: 3,
            think_time_ms: (5, 30),
            mix: OpMix::default(),
            client: ClientConfig {
                deadline: Duration::from_secs(4),
                attempt_timeout: Duration::from_millis(1500),
                retry_backoff: Duration::from_millis(50),
                ..Default::default()
            },
            impatient_workers: 2,
            impatient_client: ClientConfig {
                deadline: Duration::from_millis(900),
                attempt_timeout: Duration::from_millis(600),
                retry_backoff: Duration::from_millis(50),
                ..Default::default()
            },
            deposit_minor_units: 10_000_000,
            prices: Prices {
                create_per_year: 1000,
                renew_per_year: 700,
            },
        }
    }

    fn registrar_id(&self, i: usize) -> String {
        format!("k{}r{i}", self.round)
    }

    /// The ids of the workload's registrars (each needs an identity of its
    /// own over TLS, see [`Identities`]).
    pub fn registrar_ids(&self) -> Vec<String> {
        (0..self.registrars).map(|i| self.registrar_id(i)).collect()
    }

    fn hot_name(&self, h: usize) -> String {
        format!("k{}hot{h}.{}", self.round, self.tld)
    }

    fn is_hot(&self, name: &str) -> bool {
        name.starts_with(&format!("k{}hot", self.round))
    }

    fn registrar_index(&self, id: &str) -> Option<usize> {
        (0..self.registrars).find(|&i| self.registrar_id(i) == id)
    }
}

/// What a registrar believes about one of its names.
#[derive(Debug, Clone, Default)]
struct NameView {
    /// `None` when unknown (never seen, or a renew's outcome is unknown).
    expiry_ms: Option<i64>,
    statuses: BTreeSet<String>,
    nameservers: BTreeSet<String>,
    /// Whether statuses and name servers are known to be current.
    fresh: bool,
}

/// A registrar's knowledge, shared by its tasks.
#[derive(Debug)]
struct RegistrarView {
    id: String,
    contact: String,
    names: BTreeMap<String, NameView>,
    next_own: usize,
}

impl RegistrarView {
    /// Marks what it believes about `key` as unknown.
    fn forget(&mut self, key: &str) {
        if let Some(view) = self.names.get_mut(key) {
            view.fresh = false;
            view.expiry_ms = None;
        }
    }

    /// Updates the view from an operation's outcome.
    fn learn(&mut self, key: &str, call: &Call, outcome: &Outcome) {
        match (call, outcome) {
            // Transfers change other registrars' views too: see
            // `Worker::after_transfer`.
            (Call::Transfer(_), _) => return,
            (Call::Delete, Outcome::Ok(_)) => {
                self.names.remove(key);
                return;
            }
            (Call::Delete, Outcome::Unknown { .. }) => {
                self.forget(key);
                return;
            }
            _ => {}
        }
        match outcome {
            Outcome::Ok(Reply::Domain { domain, .. }) if domain.pending_delete => {
                self.names.remove(key);
            }
            Outcome::Ok(Reply::Domain { domain, .. }) if domain.sponsor == self.id => {
                let view = self.names.entry(key.to_string()).or_default();
                view.expiry_ms = Some(domain.expiry_ms);
                view.statuses = domain.statuses.clone();
                view.nameservers = domain.nameservers.clone();
                view.fresh = true;
            }
            Outcome::Ok(Reply::Domain { .. }) => {
                self.names.remove(key);
            }
            Outcome::Ok(_) => {}
            Outcome::Rejected { reason, .. } => match reason {
                Reason::ObjectNotFound | Reason::NotSponsor => {
                    self.names.remove(key);
                }
                Reason::ObjectExists => {}
                _ => self.forget(key),
            },
            Outcome::Unknown { .. } => match call {
                Call::Create { .. } => {
                    self.names.entry(key.to_string()).or_default();
                }
                _ => self.forget(key),
            },
        }
    }
}

/// Who the workload's clients are over mutual TLS. A registrar
/// certificate acts only as its own registrar and a staff certificate
/// cannot act as any registrar, so each registrar needs its own; with none
/// at all (the default) the clients speak plain text and name their actors.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    /// Creates the TLD and the registrars, funds them, reads their accounts.
    pub staff: Option<ClientTls>,
    /// Each registrar's own identity, by registrar id.
    pub registrars: BTreeMap<String, ClientTls>,
}

impl Identities {
    /// The staff member acting: the certificate's, or a name of the
    /// workload's own in plain text.
    fn staff_actor(&self) -> String {
        self.staff
            .as_ref()
            .map(|tls| tls.principal().name)
            .unwrap_or_else(|| "chaos-staff".to_string())
    }

    /// Client settings `base` as registrar `id`. Errors when the workload
    /// runs over TLS and `id` has no identity.
    fn registrar(&self, id: &str, base: &ClientConfig) -> Result<ClientConfig, ClientError> {
        let tls = match (&self.staff, self.registrars.get(id)) {
            (_, Some(tls)) => Some(tls.clone()),
            (None, None) => None,
            (Some(_), None) => {
                let why = format!("the workload runs over TLS but registrar {id} has no identity");
                return Err(ClientError::from_status(
                    &tonic::Status::invalid_argument(why),
                    "workload",
                ));
            }
        };
        Ok(ClientConfig {
            tls,
            ..base.clone()
        })
    }
}

/// A registrar's clients: every call of a registrar goes out with its own
/// certificate.
struct RegistrarClients {
    /// With the workload's deadlines and retries.
    patient: KauriClient,
    /// With the impatient tasks' deadlines.
    impatient: KauriClient,
}

struct Shared {
    config: WorkloadConfig,
    /// By registrar index.
    clients: Vec<RegistrarClients>,
    /// Staff with default deadlines (the healed cluster may still be
    /// electing), for the final read of the registrars' accounts.
    staff: KauriClient,
    /// Registrar 0 with default deadlines, for the final read of the names.
    final_reader: KauriClient,
    recorder: Recorder,
    registrars: Vec<Mutex<RegistrarView>>,
    /// Per registrar: its names another registrar asked to transfer (what
    /// its poll queue would tell it).
    inboxes: Vec<Mutex<Vec<String>>>,
    /// Per registrar: names it asked to transfer, which it may cancel.
    outgoing: Vec<Mutex<Vec<String>>>,
    /// Renews and transfer requests sent per name, by anyone.
    extensions: Mutex<BTreeMap<String, u32>>,
    hosts: Vec<String>,
    /// Every name any task has touched.
    names: Mutex<BTreeSet<String>>,
    ops: AtomicUsize,
    stop: AtomicBool,
    started: Instant,
}

/// A set-up workload: registrars funded, contacts and hosts created.
pub struct Workload {
    shared: Arc<Shared>,
    deposits: BTreeMap<String, i64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Whether an error leaves the outcome of the request unknown.
fn indefinite(e: &ClientError) -> bool {
    e.outcome_unknown || e.is_retryable() || e.reason == Reason::Internal
}

/// Sends a set-up mutation until it gets a definite answer, with one
/// idempotency key for all attempts.
async fn setup_call<T, F, Fut>(what: &str, call: F) -> Result<T, ClientError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match call().await {
            Err(e) if indefinite(&e) && attempts < 10 => {
                eprintln!("chaos setup: {what}: {e}; retrying with the same cl_trid");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            other => return other,
        }
    }
}

fn request_meta(actor: &str, cl_trid: &str) -> Option<RequestMeta> {
    Some(RequestMeta {
        actor: actor.to_string(),
        cl_trid: cl_trid.to_string(),
    })
}

impl Workload {
    /// Creates the TLD (unless it exists), the registrars with their
    /// deposits and contacts, and two name servers, through `endpoints`,
    /// each registrar acting with its own client of `identities`.
    pub async fn setup(
        endpoints: &[String],
        config: WorkloadConfig,
        identities: &Identities,
        recorder: Recorder,
    ) -> Result<Workload, ClientError> {
        let admin = KauriClient::new(
            endpoints,
            ClientConfig {
                tls: identities.staff.clone(),
                ..Default::default()
            },
        )?;
        let staff = identities.staff_actor();
        let round = config.round;
        let p = &config.prices;
        let tld = CreateTldRequest {
            meta: request_meta(&staff, &format!("k{round}-tld")),
            name: config.tld.clone(),
            policy: Some(TldPolicy {
                min_period_years: 1,
                max_period_years: 10,
                create_price_minor_units: p.create_per_year,
                renew_price_minor_units: p.renew_per_year,
                currency: "USD".into(),
                min_label_length: 1,
                max_label_length: 63,
                allow_idn: false,
                idn: None,
            }),
        };
        match setup_call("create tld", || admin.create_tld(tld.clone())).await {
            Ok(_) => {}
            Err(e) if e.reason == Reason::ObjectExists => {}
            Err(e) => return Err(e),
        }
        // No transfer lock, so names created in the run can move.
        let lifecycle = UpdateTldRequest {
            meta: request_meta(&staff, &format!("k{round}-tld-lifecycle")),
            name: config.tld.clone(),
            policy: None,
            lifecycle: Some(TldLifecyclePolicy {
                transfer_lock_seconds: Some(0),
                ..Default::default()
            }),
        };
        setup_call("set the TLD lifecycle", || {
            admin.update_tld(lifecycle.clone())
        })
        .await?;

        let mut registrars = Vec::new();
        let mut clients = Vec::new();
        let mut deposits = BTreeMap::new();
        for i in 0..config.registrars {
            let id = config.registrar_id(i);
            let own = RegistrarClients {
                patient: KauriClient::new(endpoints, identities.registrar(&id, &config.client)?)?,
                impatient: KauriClient::new(
                    endpoints,
                    identities.registrar(&id, &config.impatient_client)?,
                )?,
            };
            let create = CreateRegistrarRequest {
                meta: request_meta(&staff, &format!("{id}-create")),
                id: id.clone(),
                name: format!("Chaos Registrar {i}"),
                password: format!("chaos-password-{i}"),
                currency: "USD".into(),
            };
            setup_call("create registrar", || {
                admin.create_registrar(create.clone())
            })
            .await?;
            let deposit = DepositFundsRequest {
                meta: request_meta(&staff, &format!("{id}-deposit")),
                registrar: id.clone(),
                amount_minor_units: config.deposit_minor_units,
                reference: format!("chaos round {round}"),
            };
            setup_call("deposit", || admin.deposit_funds(deposit.clone())).await?;
            deposits.insert(id.clone(), config.deposit_minor_units);
            let contact = format!("k{round}c{i}");
            let create_contact = CreateContactRequest {
                meta: request_meta(&id, &format!("{id}-contact")),
                id: contact.clone(),
                fields: Some(crate::fixtures::contact_fields(
                    &format!("Holder {i}"),
                    &format!("holder{i}@example.nz"),
                )),
                auth_info: String::new(),
            };
            setup_call("create contact", || {
                own.patient.create_contact(create_contact.clone())
            })
            .await?;
            clients.push(own);
            registrars.push(Mutex::new(RegistrarView {
                id,
                contact,
                names: BTreeMap::new(),
                next_own: 0,
            }));
        }
        let mut hosts = Vec::new();
        let host_owner = config.registrar_id(0);
        for n in 1..=2 {
            let name = format!("ns{n}.dns-k{round}.example");
            let create = CreateHostRequest {
                meta: request_meta(&host_owner, &format!("{host_owner}-host{n}")),
                name: name.clone(),
                addresses: vec![],
            };
            setup_call("create host", || {
                clients[0].patient.create_host(create.clone())
            })
            .await?;
            hosts.push(name);
        }

        let mailboxes = || (0..config.registrars).map(|_| Mutex::default()).collect();
        Ok(Workload {
            shared: Arc::new(Shared {
                inboxes: mailboxes(),
                outgoing: mailboxes(),
                extensions: Mutex::default(),
                final_reader: KauriClient::new(
                    endpoints,
                    identities.registrar(&host_owner, &ClientConfig::default())?,
                )?,
                config,
                clients,
                staff: admin,
                recorder,
                registrars,
                hosts,
                names: Mutex::new(BTreeSet::new()),
                ops: AtomicUsize::new(0),
                stop: AtomicBool::new(false),
                started: Instant::now(),
            }),
            deposits,
            tasks: Vec::new(),
        })
    }

    /// The recorder the workload writes to.
    pub fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    /// Starts the tasks (on the current tokio runtime).
    pub fn start(&mut self) {
        let c = &self.shared.config;
        let workers = c.registrars * c.workers_per_registrar;
        for process in 0..workers {
            let worker = Worker {
                shared: self.shared.clone(),
                process,
                impatient: process >= workers.saturating_sub(c.impatient_workers),
                registrar: process % c.registrars,
                rng: StdRng::seed_from_u64(
                    c.seed ^ (process as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                ),
                seq: 0,
                asked: None,
            };
            self.tasks.push(tokio::spawn(worker.run()));
        }
    }

    /// Asks the tasks to stop after their current operation and waits for
    /// them.
    pub async fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            if let Err(e) = task.await {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    }

    /// Operations issued so far.
    pub fn ops_issued(&self) -> usize {
        self.shared.ops.load(Ordering::Relaxed)
    }

    /// Reads the final state (the cluster must be healed): a linearizable
    /// info of every name touched (recorded in the history, so the
    /// linearizability checker sees them too) and every registrar's account
    /// with its ledger.
    pub async fn final_state(&self) -> Result<FinalState, String> {
        let s = &self.shared;
        let reader = locked(&s.registrars[0]).id.clone();
        let process = s.config.registrars * s.config.workers_per_registrar;
        let names: Vec<String> = locked(&s.names).iter().cloned().collect();
        let patient = &s.final_reader;
        let mut domains = BTreeMap::new();
        for name in names {
            let outcome = run_op(
                patient,
                &s.recorder,
                process,
                &reader,
                "",
                &name,
                Call::Info,
                None,
                5,
            )
            .await;
            let state = match outcome {
                Outcome::Ok(Reply::Domain { domain, .. }) => Some(domain),
                Outcome::Rejected {
                    reason: Reason::ObjectNotFound,
                    ..
                } => None,
                other => return Err(format!("final read of {name}: {other:?}")),
            };
            domains.insert(name, state);
        }
        let mut accounts = BTreeMap::new();
        for r in &s.registrars {
            let id = locked(r).id.clone();
            let info = s
                .staff
                .info_registrar(InfoRegistrarRequest {
                    id: id.clone(),
                    read: linearizable(),
                    ledger_limit: 1000,
                })
                .await
                .map_err(|e| format!("final read of registrar {id}: {e}"))?;
            let registrar = info.registrar.ok_or("registrar info without a registrar")?;
            let ledger: Vec<LedgerLine> = registrar
                .ledger
                .iter()
                .map(|l| LedgerLine {
                    seq: l.seq,
                    kind: l.kind.clone(),
                    amount: l.amount_minor_units,
                    object: l.object.clone(),
                    sv_trid: l.sv_trid.clone(),
                    linked_sv_trid: l.linked_sv_trid.clone(),
                })
                .collect();
            accounts.insert(
                id,
                Account {
                    balance: registrar.balance.map(|b| b.minor_units).unwrap_or(0),
                    total_deposits: registrar.total_deposits_minor_units,
                    total_charges: registrar.total_charges_minor_units,
                    total_refunds: registrar.total_refunds_minor_units,
                    ledger_complete: ledger.first().is_none_or(|l| l.seq == 1),
                    ledger,
                },
            );
        }
        Ok(FinalState {
            domains,
            accounts,
            deposits: self.deposits.clone(),
            prices: s.config.prices,
            raced: (0..s.config.hot_names)
                .map(|h| s.config.hot_name(h))
                .collect(),
        })
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Sends one attempt of `call`.
async fn send(
    client: &KauriClient,
    actor: &str,
    registrant: &str,
    key: &str,
    call: &Call,
    cl_trid: Option<&str>,
) -> Result<Reply, ClientError> {
    let meta = || request_meta(actor, cl_trid.unwrap_or_default());
    let response = match call {
        Call::Check => {
            let r = client
                .check_domains(CheckRequest {
                    registrar: actor.into(),
                    names: vec![key.into()],
                    read: linearizable(),
                    fees: Vec::new(),
                })
                .await?;
            let available = r.results.first().is_some_and(|c| c.available);
            return Ok(Reply::Available(available));
        }
        Call::Info => {
            client
                .info_domain(InfoRequest {
                    registrar: actor.into(),
                    name: key.into(),
                    read: linearizable(),
                })
                .await?
        }
        Call::Create {
            period_years,
            nameservers,
        } => {
            client
                .create_domain(CreateDomainRequest {
                    meta: meta(),
                    name: key.into(),
                    period_years: *period_years,
                    registrant: registrant.into(),
                    contacts: vec![],
                    nameservers: nameservers.clone(),
                    auth_info: auth_info_for(key),
                    fee: None,
                    ds_data: Vec::new(),
                })
                .await?
        }
        Call::Transfer(action) => {
            let (op, auth_info, period_years) = match action {
                TransferAction::Request => (TransferOp::Request, auth_info_for(key), 1),
                TransferAction::Approve => (TransferOp::Approve, String::new(), 0),
                TransferAction::Reject => (TransferOp::Reject, String::new(), 0),
                TransferAction::Cancel => (TransferOp::Cancel, String::new(), 0),
            };
            let r = client
                .transfer_domain(TransferDomainRequest {
                    meta: meta(),
                    name: key.into(),
                    op: op as i32,
                    auth_info,
                    period_years,
                    fee: None,
                    new_auth_info: String::new(),
                })
                .await?;
            let t = r.transfer.unwrap_or_default();
            let tx = r.tx.unwrap_or_default();
            return Ok(Reply::Transfer {
                status: t.status_name,
                gaining: t.gaining_registrar,
                losing: t.losing_registrar,
                expiry_ms: t.expiry_ms,
                sv_trid: tx.sv_trid,
                replayed: tx.replayed,
                charged_minor_units: r.charged.map(|m| m.minor_units),
                refunded_minor_units: r.refunded.map(|m| m.minor_units),
            });
        }
        Call::Delete => {
            let r = client
                .delete_domain(DeleteRequest {
                    meta: meta(),
                    name: key.into(),
                })
                .await?;
            let tx = r.tx.unwrap_or_default();
            return Ok(Reply::Deleted {
                pending_delete: r.pending_delete,
                sv_trid: tx.sv_trid,
                replayed: tx.replayed,
                refunded_minor_units: r.refunded.map(|m| m.minor_units),
            });
        }
        Call::Renew {
            current_expiry_date,
            period_years,
        } => {
            client
                .renew_domain(RenewDomainRequest {
                    meta: meta(),
                    name: key.into(),
                    current_expiry_date: current_expiry_date.clone(),
                    period_years: *period_years,
                    fee: None,
                })
                .await?
        }
        Call::Update {
            add_statuses,
            remove_statuses,
            add_nameservers,
            remove_nameservers,
        } => {
            client
                .update_domain(UpdateDomainRequest {
                    meta: meta(),
                    name: key.into(),
                    add_nameservers: add_nameservers.clone(),
                    remove_nameservers: remove_nameservers.clone(),
                    add_contacts: vec![],
                    remove_contacts: vec![],
                    add_statuses: add_statuses.clone(),
                    remove_statuses: remove_statuses.clone(),
                    registrant: String::new(),
                    // A completed transfer gave the name an auth info
                    // only the registry knows; the sponsor sets the
                    // registrant's back with every update.
                    auth_info: auth_info_for(key),
                    add_ds: Vec::new(),
                    remove_all_ds: false,
                    remove_ds: Vec::new(),
                })
                .await?
        }
    };
    let domain = response
        .domain
        .as_ref()
        .map(DomainView::from_proto)
        .ok_or_else(|| {
            ClientError::from_status(&tonic::Status::internal("response without a domain"), "")
        })?;
    let tx = response.tx.unwrap_or_default();
    Ok(Reply::Domain {
        domain,
        sv_trid: tx.sv_trid,
        replayed: tx.replayed,
        charged_minor_units: response.charged.map(|m| m.minor_units),
    })
}

/// Runs one operation: records it, sends it until the outcome is definite
/// or `max_attempts` attempts are spent (mutations keep their client
/// transaction id), and records the outcome.
#[allow(clippy::too_many_arguments)]
async fn run_op(
    client: &KauriClient,
    recorder: &Recorder,
    process: ProcessId,
    actor: &str,
    registrant: &str,
    key: &str,
    call: Call,
    cl_trid: Option<String>,
    max_attempts: u32,
) -> Outcome {
    let pending = recorder.invoke(process, actor, key, cl_trid.clone(), call.clone());
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        match send(client, actor, registrant, key, &call, cl_trid.as_deref()).await {
            Ok(reply) => break Outcome::Ok(reply),
            Err(e) if indefinite(&e) => {
                if attempts >= max_attempts {
                    break Outcome::Unknown {
                        error: e.to_string(),
                        client_said_unknown: e.outcome_unknown,
                    };
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                break Outcome::Rejected {
                    reason: e.reason,
                    sv_trid: e.sv_trid,
                    message: e.message,
                }
            }
        }
    };
    recorder.complete(pending, outcome.clone(), attempts);
    outcome
}

/// One task of the workload, acting for one registrar.
struct Worker {
    shared: Arc<Shared>,
    process: ProcessId,
    /// Gives up after one short attempt.
    impatient: bool,
    registrar: usize,
    rng: StdRng,
    seq: u64,
    /// The registrar whose name the last transfer request asked for.
    asked: Option<usize>,
}

/// An operation a worker decided on.
struct Plan {
    key: String,
    call: Call,
}

impl Worker {
    fn view(&self) -> std::sync::MutexGuard<'_, RegistrarView> {
        locked(&self.shared.registrars[self.registrar])
    }

    fn should_stop(&self) -> bool {
        let c = &self.shared.config;
        self.shared.stop.load(Ordering::Relaxed)
            || self.shared.ops.load(Ordering::Relaxed) >= c.max_ops
            || self.shared.started.elapsed() >= c.max_duration
    }

    async fn run(mut self) {
        while !self.should_stop() {
            for plan in self.pick() {
                self.perform(plan).await;
            }
            let (lo, hi) = self.shared.config.think_time_ms;
            let pause = self.rng.gen_range(lo..=hi.max(lo));
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// A name this registrar believes it holds, chosen at random, with its
    /// view; `None` if it holds none.
    fn own_name(&mut self) -> Option<(String, NameView)> {
        let names: Vec<(String, NameView)> = self
            .view()
            .names
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if names.is_empty() {
            return None;
        }
        Some(names[self.rng.gen_range(0..names.len())].clone())
    }

    /// Hot names released so far (at least one).
    fn released_hot_names(&self) -> usize {
        let c = &self.shared.config;
        let interval = c.hot_release_interval.as_millis().max(1);
        let released = 1 + (self.shared.started.elapsed().as_millis() / interval) as usize;
        released.min(c.hot_names.max(1))
    }

    /// A hot name to race for: mostly one of the three newest.
    fn hot_name(&mut self) -> String {
        let released = self.released_hot_names();
        let index = if self.rng.gen_bool(0.8) {
            released - 1 - self.rng.gen_range(0..released.min(3))
        } else {
            self.rng.gen_range(0..released)
        };
        self.shared.config.hot_name(index)
    }

    fn any_name(&mut self) -> String {
        let hot = self.hot_name();
        let names: Vec<String> = locked(&self.shared.names).iter().cloned().collect();
        if names.is_empty() || self.rng.gen_bool(0.3) {
            hot
        } else {
            names[self.rng.gen_range(0..names.len())].clone()
        }
    }

    /// Decides what to do next: one or two operations (drop-catching checks
    /// first).
    fn pick(&mut self) -> Vec<Plan> {
        let mix = self.shared.config.mix;
        let weights = [
            mix.create,
            mix.drop_catch,
            mix.renew,
            mix.update,
            mix.info,
            mix.check,
            mix.transfer_request,
            mix.transfer_answer,
            mix.delete,
        ];
        let total: u32 = weights.iter().sum();
        let mut roll = self.rng.gen_range(0..total.max(1));
        let mut choice = 0;
        for (i, w) in weights.iter().enumerate() {
            if roll < *w {
                choice = i;
                break;
            }
            roll -= w;
        }
        match choice {
            0 => self.plan_create(),
            1 => {
                let key = self.hot_name();
                vec![
                    Plan {
                        key: key.clone(),
                        call: Call::Check,
                    },
                    Plan {
                        key,
                        call: Call::Create {
                            period_years: 1,
                            nameservers: vec![],
                        },
                    },
                ]
            }
            2 => self.plan_renew(),
            3 => self.plan_update(),
            4 => vec![Plan {
                key: self.any_name(),
                call: Call::Info,
            }],
            5 => vec![Plan {
                key: self.any_name(),
                call: Call::Check,
            }],
            6 => self.plan_transfer_request(),
            7 => self.plan_transfer_answer(),
            _ => self.plan_delete(),
        }
    }

    /// Takes one of the `max_renews_per_name` extensions of `key`; false
    /// when they are used up.
    fn take_extension(&self, key: &str) -> bool {
        let max = self.shared.config.max_renews_per_name;
        let mut all = locked(&self.shared.extensions);
        let used = all.entry(key.to_string()).or_default();
        if *used >= max {
            return false;
        }
        *used += 1;
        true
    }

    /// Asks for a name another registrar holds (never a raced one).
    fn plan_transfer_request(&mut self) -> Vec<Plan> {
        let c = &self.shared.config;
        if c.registrars < 2 {
            return self.plan_create();
        }
        let mut other = self.rng.gen_range(0..c.registrars - 1);
        if other >= self.registrar {
            other += 1;
        }
        let names: Vec<String> = locked(&self.shared.registrars[other])
            .names
            .keys()
            .filter(|n| !c.is_hot(n))
            .cloned()
            .collect();
        if names.is_empty() {
            return self.plan_create();
        }
        let key = names[self.rng.gen_range(0..names.len())].clone();
        self.asked = Some(other);
        if !self.take_extension(&key) {
            return vec![Plan {
                key,
                call: Call::Info,
            }];
        }
        vec![Plan {
            key,
            call: Call::Transfer(TransferAction::Request),
        }]
    }

    /// Answers a transfer request for one of one's names (mostly
    /// approving), or now and then cancels one's own request.
    fn plan_transfer_answer(&mut self) -> Vec<Plan> {
        let take = |list: &Mutex<Vec<String>>, rng: &mut StdRng| {
            let mut list = locked(list);
            (!list.is_empty()).then(|| {
                let i = rng.gen_range(0..list.len());
                list.swap_remove(i)
            })
        };
        let inbox = take(&self.shared.inboxes[self.registrar], &mut self.rng);
        if let Some(key) = inbox {
            let action = if self.rng.gen_bool(0.7) {
                TransferAction::Approve
            } else {
                TransferAction::Reject
            };
            return vec![Plan {
                key,
                call: Call::Transfer(action),
            }];
        }
        if self.rng.gen_bool(0.3) {
            if let Some(key) = take(&self.shared.outgoing[self.registrar], &mut self.rng) {
                return vec![Plan {
                    key,
                    call: Call::Transfer(TransferAction::Cancel),
                }];
            }
        }
        vec![Plan {
            key: self.any_name(),
            call: Call::Info,
        }]
    }

    /// Deletes one of one's names (never a raced one).
    fn plan_delete(&mut self) -> Vec<Plan> {
        match self.own_name() {
            Some((key, view)) if view.fresh && !self.shared.config.is_hot(&key) => vec![Plan {
                key,
                call: Call::Delete,
            }],
            Some((key, _)) => vec![Plan {
                key,
                call: Call::Info,
            }],
            None => self.plan_create(),
        }
    }

    /// Passes a transfer's outcome on to the registrars it concerns: a
    /// request reaches the sponsor's inbox, an approval hands the name to
    /// the gaining registrar's view.
    fn after_transfer(
        &self,
        key: &str,
        action: TransferAction,
        outcome: &Outcome,
        asked: Option<usize>,
    ) {
        let c = &self.shared.config;
        // The name may now be this registrar's; it reads it before acting.
        let hand_over = |m: &Mutex<RegistrarView>| {
            let mut view = locked(m);
            view.forget(key);
            view.names.entry(key.to_string()).or_default();
        };
        let definite = outcome.is_definite();
        match (action, outcome) {
            (TransferAction::Request, Outcome::Ok(Reply::Transfer { losing, .. })) => {
                if let Some(i) = c.registrar_index(losing) {
                    self.push(&self.shared.inboxes[i], key);
                }
                self.push(&self.shared.outgoing[self.registrar], key);
            }
            (TransferAction::Request, _) if !definite => {
                if let Some(i) = asked {
                    self.push(&self.shared.inboxes[i], key);
                }
                self.push(&self.shared.outgoing[self.registrar], key);
            }
            (TransferAction::Approve, Outcome::Ok(Reply::Transfer { gaining, .. })) => {
                self.view().names.remove(key);
                if let Some(i) = c.registrar_index(gaining) {
                    hand_over(&self.shared.registrars[i]);
                }
            }
            (TransferAction::Approve, _) if !definite => {
                // Whoever holds it finds out on its next read.
                self.view().forget(key);
                for (i, r) in self.shared.registrars.iter().enumerate() {
                    if i != self.registrar {
                        hand_over(r);
                    }
                }
            }
            _ => {}
        }
    }

    fn push(&self, list: &Mutex<Vec<String>>, key: &str) {
        locked(list).push(key.to_string());
    }

    fn plan_create(&mut self) -> Vec<Plan> {
        let c = self.shared.config.clone();
        let period_years = self.rng.gen_range(1..=2);
        let with_ns = self.rng.gen_bool(0.5);
        let n = {
            let mut view = self.view();
            if view.names.len() >= c.own_names_per_registrar {
                None
            } else {
                view.next_own += 1;
                Some(view.next_own)
            }
        };
        let Some(n) = n else {
            return self.plan_update();
        };
        let nameservers = if with_ns {
            vec![self.shared.hosts[0].clone()]
        } else {
            vec![]
        };
        vec![Plan {
            key: format!("{}n{n}.{}", c.registrar_id(self.registrar), c.tld),
            call: Call::Create {
                period_years,
                nameservers,
            },
        }]
    }

    fn plan_renew(&mut self) -> Vec<Plan> {
        let Some((key, view)) = self.own_name() else {
            return self.plan_create();
        };
        match view.expiry_ms {
            Some(expiry) if self.take_extension(&key) => {
                vec![Plan {
                    key,
                    call: Call::Renew {
                        current_expiry_date: expiry_date(expiry),
                        period_years: 1,
                    },
                }]
            }
            Some(_) => self.plan_update(),
            None => vec![Plan {
                key,
                call: Call::Info,
            }],
        }
    }

    fn plan_update(&mut self) -> Vec<Plan> {
        let Some((key, view)) = self.own_name() else {
            return vec![Plan {
                key: self.any_name(),
                call: Call::Info,
            }];
        };
        if !view.fresh {
            return vec![Plan {
                key,
                call: Call::Info,
            }];
        }
        let mut call = Call::Update {
            add_statuses: vec![],
            remove_statuses: vec![],
            add_nameservers: vec![],
            remove_nameservers: vec![],
        };
        if let Call::Update {
            add_statuses,
            remove_statuses,
            add_nameservers,
            remove_nameservers,
        } = &mut call
        {
            match self.rng.gen_range(0..4) {
                0 | 1 => {
                    let status = if self.rng.gen_bool(0.5) {
                        "clientHold"
                    } else {
                        RENEW_PROHIBITED
                    };
                    if view.statuses.contains(status) {
                        remove_statuses.push(status.into());
                    } else {
                        add_statuses.push(status.into());
                    }
                }
                _ => {
                    let host =
                        self.shared.hosts[self.rng.gen_range(0..self.shared.hosts.len())].clone();
                    if view.nameservers.contains(&host) {
                        remove_nameservers.push(host);
                    } else {
                        add_nameservers.push(host);
                    }
                }
            }
        }
        vec![Plan { key, call }]
    }

    async fn perform(&mut self, plan: Plan) {
        if self.should_stop() {
            return;
        }
        self.shared.ops.fetch_add(1, Ordering::Relaxed);
        locked(&self.shared.names).insert(plan.key.clone());
        let (actor, registrant) = {
            let v = self.view();
            (v.id.clone(), v.contact.clone())
        };
        let cl_trid = (!plan.call.is_read()).then(|| {
            self.seq += 1;
            format!(
                "k{}p{}s{}",
                self.shared.config.round, self.process, self.seq
            )
        });
        let own = &self.shared.clients[self.registrar];
        let (client, attempts) = if self.impatient {
            (&own.impatient, 1)
        } else {
            (&own.patient, self.shared.config.max_attempts)
        };
        let outcome = run_op(
            client,
            &self.shared.recorder,
            self.process,
            &actor,
            &registrant,
            &plan.key,
            plan.call.clone(),
            cl_trid,
            attempts,
        )
        .await;
        self.view().learn(&plan.key, &plan.call, &outcome);
        if let Call::Transfer(action) = plan.call {
            self.after_transfer(&plan.key, action, &outcome, self.asked);
        }
    }
}
