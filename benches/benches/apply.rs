//! Micro-benchmarks of the write path below Raft:
//! - `apply/creates`: the pure registry applying domain creates (in-memory
//!   engine), batch sizes 1 to 1024: creates per second per core;
//! - `storage/apply`: the same through the RocksDB state machine (one
//!   WriteBatch per applied batch, with the last applied log id);
//! - `storage/log_append`: synced RocksDB writes of log-sized entries, the
//!   floor under every acknowledged write.
//!
//! `cargo bench -p kauri-bench --bench apply`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use kauri_node::raft::{typ, LogPayload};
use kauri_node::registry::{apply_proposal, ApplyContext, MemState, Txn};
use kauri_node::storage::{StateMachineStore, Store};
use kauri_proto::v1::{self, command::Kind};
use openraft::storage::RaftStateMachine;
use prost::Message;

const BATCHES: [usize; 5] = [1, 16, 64, 256, 1024];

// The allocator kauri-node runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn meta(actor: &str, cl_trid: String) -> Option<v1::RequestMeta> {
    Some(v1::RequestMeta {
        actor: actor.into(),
        cl_trid,
    })
}

fn proposal(time_ms: i64, seq: u64, kind: Kind) -> v1::Proposal {
    v1::Proposal {
        time_ms,
        request_digest: seq.to_be_bytes().to_vec(),
        command: Some(v1::Command { kind: Some(kind) }),
        via: String::new(),
    }
}

/// TLD "bench", registrar "bench" with ample funds, contact "owner".
fn fixture() -> Vec<v1::Proposal> {
    let t = 1_800_000_000_000;
    vec![
        proposal(
            t,
            1,
            Kind::CreateTld(v1::CreateTldRequest {
                meta: meta("staff", "fixture-1".into()),
                name: "bench".into(),
                policy: Some(v1::TldPolicy {
                    currency: "USD".into(),
                    create_price_minor_units: 100,
                    renew_price_minor_units: 100,
                    allow_idn: true,
                    ..Default::default()
                }),
            }),
        ),
        proposal(
            t,
            2,
            Kind::CreateRegistrar(v1::CreateRegistrarCommand {
                meta: meta("staff", "fixture-2".into()),
                id: "bench".into(),
                name: "Bench".into(),
                // A fixed, well-formed argon2id hash: benchmarks never log in.
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$7U3XrRkI9Z2kW8t9l5oQqZ3c3r6m0kq8Wm4u3b6pQ0E".into(),
                currency: "USD".into(),
            }),
        ),
        proposal(
            t,
            3,
            Kind::DepositFunds(v1::DepositFundsRequest {
                meta: meta("staff", "fixture-3".into()),
                registrar: "bench".into(),
                amount_minor_units: 1_000_000_000_000,
                reference: "bench".into(),
            }),
        ),
        proposal(
            t,
            4,
            Kind::CreateContact(v1::CreateContactRequest {
                meta: meta("bench", "fixture-4".into()),
                id: "owner".into(),
                fields: Some(v1::ContactFields {
                    postal_info: vec![v1::PostalInfo {
                        r#type: "int".into(),
                        name: "Owner".into(),
                        address: Some(v1::PostalAddress {
                            city: "Wellington".into(),
                            country_code: "NZ".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    email: "owner@example.nz".into(),
                    ..Default::default()
                }),
                auth_info: "owner-auth-1".into(),
            }),
        ),
    ]
}

fn create(seq: u64) -> v1::Proposal {
    proposal(
        1_800_000_000_000 + seq as i64,
        1_000 + seq,
        Kind::CreateDomain(v1::CreateDomainRequest {
            meta: meta("bench", format!("create-{seq}")),
            name: format!("domain-{seq}.bench"),
            period_years: 1,
            registrant: "owner".into(),
            auth_info: "domain-auth-1".into(),
            ..Default::default()
        }),
    )
}

fn apply_all(state: &mut MemState, proposals: &[v1::Proposal], first_index: u64) {
    let mut txn = Txn::new(&*state);
    for (i, p) in proposals.iter().enumerate() {
        let ctx = ApplyContext {
            log_index: first_index + i as u64,
            log_term: 1,
        };
        let result = apply_proposal(&mut txn, &ctx, p).expect("no storage fault in memory");
        assert!(
            !matches!(result.outcome, Some(v1::command_result::Outcome::Error(_))),
            "benchmark command rejected: {result:?}"
        );
    }
    let writes = txn.into_writes();
    state.write(writes);
}

fn pure_apply(c: &mut Criterion) {
    let mut base = MemState::new();
    apply_all(&mut base, &fixture(), 1);
    // A registry that already holds 10,000 domains.
    let existing: Vec<_> = (0..10_000).map(create).collect();
    apply_all(&mut base, &existing, 10);
    let mut group = c.benchmark_group("apply/creates");
    for batch in BATCHES {
        let proposals: Vec<_> = (100_000..100_000 + batch as u64).map(create).collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(batch),
            &proposals,
            |b, proposals| {
                // Each iteration applies the batch to the same base state and
                // drops the writes: the names stay new every time.
                b.iter(|| {
                    let mut txn = Txn::new(&base);
                    for (i, p) in proposals.iter().enumerate() {
                        let ctx = ApplyContext {
                            log_index: 20_000 + i as u64,
                            log_term: 1,
                        };
                        std::hint::black_box(apply_proposal(&mut txn, &ctx, p).expect("in memory"));
                    }
                    std::hint::black_box(txn.into_writes());
                })
            },
        );
    }
    group.finish();
}

fn entry(index: u64, p: &v1::Proposal) -> typ::Entry {
    typ::Entry {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: openraft::EntryPayload::Normal(LogPayload(p.encode_to_vec())),
    }
}

fn storage_apply(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let mut sm = StateMachineStore::new(store.clone());
    let fixture: Vec<_> = fixture()
        .iter()
        .enumerate()
        .map(|(i, p)| entry(i as u64 + 1, p))
        .collect();
    rt.block_on(sm.apply(fixture)).expect("apply fixture");
    let mut next = 100u64;
    let mut group = c.benchmark_group("storage/apply");
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter_batched(
                || {
                    let entries: Vec<_> = (next..next + batch as u64)
                        .map(|i| entry(i, &create(i)))
                        .collect();
                    next += batch as u64;
                    entries
                },
                |entries| rt.block_on(sm.apply(entries)).expect("apply"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("storage/log_append");
    let cf = store.cf(kauri_node::storage::CF_RAFT_LOG);
    let payload = create(1).encode_to_vec();
    let mut index = 0u64;
    for batch in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter(|| {
                let mut wb = rocksdb::WriteBatch::default();
                for _ in 0..batch {
                    index += 1;
                    wb.put_cf(cf, index.to_be_bytes(), &payload);
                }
                let mut wo = rocksdb::WriteOptions::default();
                wo.set_sync(true);
                store.db().write_opt(wb, &wo).expect("synced write");
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    targets = pure_apply, storage_apply
}
criterion_main!(benches);
