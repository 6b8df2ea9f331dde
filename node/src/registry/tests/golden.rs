//! The golden log: a fixed, long log of proposals (every command kind,
//! ticks through every lifecycle path, rejections, retries and
//! idempotency conflicts) applied to a fresh state, with every response and
//! the final state digest recorded in `golden/log.txt`. Any change to what
//! the state machine writes or answers for the same log fails this test.
//!
//! The file is compiled in (`include_str!`), so the check reads nothing at
//! run time, and nothing in the registry module touches the file system.
//! A deliberate change of behaviour regenerates it in the same commit and
//! says why: `scripts/regenerate-golden-log.sh` runs the ignored test
//! `regenerate_the_golden_log`, which prints the log between two marker
//! lines, and writes what is between them to the file. The log itself is
//! stored, not regenerated
//! by the check, so it stays the same log whatever later changes to the
//! test helpers or proptest do.

use std::collections::BTreeSet;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use super::*;

/// The recorded log, as committed.
const GOLDEN: &str = include_str!("golden/log.txt");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn contact_transfer_kind(
    id: &str,
    op: v1::TransferOp,
    auth_info: &str,
    new_auth_info: &str,
) -> Kind {
    Kind::TransferContact(v1::TransferContactRequest {
        meta: None,
        id: id.into(),
        op: op as i32,
        auth_info: auth_info.into(),
        new_auth_info: new_auth_info.into(),
    })
}

/// The name of a proposal's command, as the audit trail writes it.
fn command_of(p: &Proposal) -> &'static str {
    match p.command.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(Kind::Tick(_)) => "Tick",
        Some(kind) => command_name(kind),
        None => "none",
    }
}

/// Builds the log (only when the golden file is regenerated): the
/// property tests' random steps from a fixed seed, long enough to walk
/// every phase, then the commands those steps never make.
fn generate() -> Registry {
    let mut r = prop_world();
    let mut runner = TestRunner::deterministic();
    let mut made = 0;
    while made < 900 {
        let chunk = steps(300)
            .new_tree(&mut runner)
            .expect("steps generate")
            .current();
        for step in &chunk {
            let p = step_proposal(&mut r, step);
            r.apply(&p);
        }
        made += chunk.len();
    }
    // Commands the random steps do not make, each accepted and refused.
    r.run("staff", set_lifecycle("kiwi", prop_lifecycle()));
    r.run("staff", update_registrar("rar-a", Some(0), Some(100)));
    r.run("staff", update_registrar("no-such-rar", None, None));
    r.run("rar-a", create_contact("golden-1"));
    r.run(
        "rar-a",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "golden-1".into(),
            add_statuses: strings(&["clientDeleteProhibited"]),
            ..Default::default()
        }),
    );
    r.run("rar-a", Kind::DeleteContact(delete("golden-1")));
    r.run(
        "rar-a",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "golden-1".into(),
            remove_statuses: strings(&["clientDeleteProhibited"]),
            ..Default::default()
        }),
    );
    r.run("rar-a", Kind::DeleteContact(delete("golden-1")));
    r.run("rar-b", Kind::DeleteContact(delete("c-rar-a")));
    // Contact transfers: approved (with the proposer's new auth info),
    // rejected, cancelled, cancelled by staff, approved by a seeded tick,
    // and refused for a wrong auth info.
    for id in ["golden-4", "golden-5", "golden-6", "golden-7", "golden-8"] {
        r.run("rar-a", create_contact(id));
        r.run(
            "rar-b",
            contact_transfer_kind(id, v1::TransferOp::Request, "contact-pw", ""),
        );
    }
    r.run(
        "rar-c",
        contact_transfer_kind("golden-4", v1::TransferOp::Request, "wrong-pw", ""),
    );
    r.run(
        "rar-a",
        contact_transfer_kind("golden-4", v1::TransferOp::Approve, "", "Golden-new-pw"),
    );
    r.run(
        "rar-a",
        contact_transfer_kind("golden-5", v1::TransferOp::Reject, "", ""),
    );
    r.run(
        "rar-b",
        contact_transfer_kind("golden-6", v1::TransferOp::Cancel, "", ""),
    );
    r.run(
        "staff",
        contact_server_status("golden-7", &["serverTransferProhibited"], &[]),
    );
    r.time_ms += 5 * DAY_MS + 1;
    let mut seeded = tick_proposal(r.time_ms);
    seeded.command = Some(v1::Command {
        kind: Some(Kind::Tick(v1::TickCommand {
            auth_info_seed: vec![42; 32],
        })),
    });
    r.apply(&seeded);
    r.run("rar-a", create_host("ns9.outside.net", &[]));
    r.run(
        "rar-a",
        Kind::UpdateHost(v1::UpdateHostRequest {
            name: "ns9.outside.net".into(),
            add_statuses: strings(&["clientUpdateProhibited"]),
            ..Default::default()
        }),
    );
    r.run(
        "rar-a",
        Kind::UpdateHost(v1::UpdateHostRequest {
            name: "ns9.outside.net".into(),
            add_addresses: strings(&["192.0.2.9"]),
            ..Default::default()
        }),
    );
    for (via, actor, seed) in [
        ("epp1", "rar-a", 1u8),
        ("epp2", "rar-b", 2),
        ("", "rar-c", 3),
    ] {
        let mut p = r.propose(
            actor,
            Kind::OpenSession(v1::OpenSessionCommand {
                meta: None,
                token_sha256: Sha256::digest([seed]).to_vec(),
                lifetime_ms: 3_600_000,
                new_password_hash: String::new(),
            }),
        );
        p.via = via.into();
        r.apply(&p);
    }
    for (via, actor, seed) in [("epp2", "rar-a", 1u8), ("epp1", "rar-a", 1)] {
        let mut p = r.propose(
            actor,
            Kind::CloseSession(v1::CloseSessionCommand {
                meta: None,
                token_sha256: Sha256::digest([seed]).to_vec(),
            }),
        );
        p.via = via.into();
        r.apply(&p);
    }
    // A retried request, and another request under the same clTRID.
    let again = r.log[r.log.len() - 1].1.clone();
    r.apply(&again);
    let mut conflict = r.propose("rar-a", create_contact("golden-2"));
    *meta_mut(conflict.command.as_mut().unwrap().kind.as_mut().unwrap()) = Some(RequestMeta {
        actor: "rar-a".into(),
        cl_trid: "trid-1".into(),
    });
    r.apply(&conflict);
    // A malformed envelope and an empty command.
    let mut bad = r.propose("rar-a", create_contact("golden-3"));
    *meta_mut(bad.command.as_mut().unwrap().kind.as_mut().unwrap()) = None;
    r.apply(&bad);
    let empty = Proposal {
        time_ms: r.time_ms,
        command: None,
        ..Default::default()
    };
    r.apply(&empty);
    // A restore whose report never comes.
    r.run("staff", deposit("rar-a", 100_000));
    r.run(
        "rar-a",
        create_domain("golden-restore.nz", 1, "c-rar-a", &[]),
    );
    r.time_ms += 3 * DAY_MS;
    let p = tick_proposal(r.time_ms);
    r.apply(&p);
    r.run("rar-a", Kind::DeleteDomain(delete("golden-restore.nz")));
    r.run("rar-a", restore("golden-restore.nz", false));
    for _ in 0..3 {
        r.time_ms += 2 * DAY_MS + 1;
        let p = tick_proposal(r.time_ms);
        r.apply(&p);
    }
    // A restore with reports refused for each thing they get wrong, then
    // one accepted; a restore request and a report out of turn; an unknown
    // operation.
    r.run(
        "rar-a",
        create_domain("golden-report.nz", 1, "c-rar-a", &[]),
    );
    r.time_ms += 6 * DAY_MS;
    r.run("rar-a", restore("golden-report.nz", false));
    r.run("rar-a", restore("golden-report.nz", true));
    r.run("rar-a", Kind::DeleteDomain(delete("golden-report.nz")));
    r.run("rar-a", restore("golden-report.nz", true));
    r.run("rar-a", restore("golden-report.nz", false));
    r.run("rar-a", restore("golden-report.nz", false));
    let good = match restore("golden-report.nz", true) {
        Kind::RestoreDomain(req) => req,
        _ => unreachable!(),
    };
    let report = good.report.clone().expect("a report");
    let now = r.time_ms;
    let bad_reports = [
        None,
        Some(v1::RestoreReport {
            statements: strings(&["only one"]),
            ..report.clone()
        }),
        Some(v1::RestoreReport {
            statements: vec!["s".into(); 9],
            ..report.clone()
        }),
        Some(v1::RestoreReport {
            pre_data: "x".repeat(4001),
            ..report.clone()
        }),
        Some(v1::RestoreReport {
            restore_reason: String::new(),
            ..report.clone()
        }),
        Some(v1::RestoreReport {
            delete_ms: now + DAY_MS,
            ..report.clone()
        }),
        Some(v1::RestoreReport {
            delete_ms: 1,
            ..report.clone()
        }),
        Some(v1::RestoreReport {
            delete_ms: now - DAY_MS,
            restore_ms: now - 2 * DAY_MS,
            ..report.clone()
        }),
    ];
    for bad in bad_reports {
        let req = v1::RestoreDomainRequest {
            report: bad,
            ..good.clone()
        };
        r.run("rar-a", Kind::RestoreDomain(req));
    }
    r.run(
        "rar-a",
        Kind::RestoreDomain(v1::RestoreDomainRequest {
            op: 7,
            ..good.clone()
        }),
    );
    r.run(
        "rar-a",
        Kind::RestoreDomain(v1::RestoreDomainRequest {
            report: Some(v1::RestoreReport {
                delete_ms: now - DAY_MS,
                restore_ms: now - 1,
                ..report
            }),
            ..good
        }),
    );
    // Years of ticks: auto-renewals, redemption, purges, expired sessions
    // and idempotency records.
    for _ in 0..40 {
        r.time_ms += 30 * DAY_MS;
        let p = tick_proposal(r.time_ms);
        r.apply(&p);
    }
    r
}

fn render(r: &Registry) -> String {
    let mut out = String::from(
        "# The golden log of the registry state machine (see golden.rs):\n\
         # E <index> <term> <command> <proposal hex> <result hex>, then D <state digest>.\n",
    );
    for ((ctx, p), result) in r.log.iter().zip(&r.results) {
        out.push_str(&format!(
            "E {} {} {} {} {}\n",
            ctx.log_index,
            ctx.log_term,
            command_of(p),
            hex(&p.encode_to_vec()),
            hex(&result.encode_to_vec())
        ));
    }
    out.push_str(&format!("D {}\n", hex(&r.state.digest())));
    out
}

/// One recorded entry.
struct Entry {
    ctx: ApplyContext,
    command: String,
    proposal: Proposal,
    result: Vec<u8>,
}

fn parse(text: &str) -> (Vec<Entry>, Vec<u8>) {
    let mut entries = Vec::new();
    let mut digest = None;
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["#", ..] => {}
            ["E", index, term, command, proposal, result] => entries.push(Entry {
                ctx: ApplyContext {
                    log_index: index.parse().expect("index"),
                    log_term: term.parse().expect("term"),
                },
                command: command.to_string(),
                proposal: Proposal::decode(unhex(proposal).as_slice()).expect("proposal"),
                result: unhex(result),
            }),
            ["D", d] => digest = Some(unhex(d)),
            _ => panic!("golden/log.txt line {}: not an entry: {line:?}", n + 1),
        }
    }
    (entries, digest.expect("a D line"))
}

/// Marks where the regenerated log begins in the test's output.
const BEGIN_MARKER: &str = "---- kauri golden log begins ----";
/// Marks where it ends.
const END_MARKER: &str = "---- kauri golden log ends ----";

/// Prints the log [`generate`] makes between [`BEGIN_MARKER`] and
/// [`END_MARKER`], for scripts/regenerate-golden-log.sh; run by hand,
/// never by the suite (see the module docs).
#[test]
#[ignore = "prints the golden log; scripts/regenerate-golden-log.sh writes it"]
fn regenerate_the_golden_log() {
    println!("{BEGIN_MARKER}\n{}{END_MARKER}", render(&generate()));
}

#[test]
fn the_golden_log_gives_the_recorded_responses_and_state() {
    let (entries, digest) = parse(GOLDEN);
    assert!(entries.len() > 1_000, "a long log: {}", entries.len());

    // It covers every command kind and every lifecycle event.
    let commands: BTreeSet<&str> = entries.iter().map(|e| e.command.as_str()).collect();
    for kind in [
        "CreateTld",
        "UpdateTld",
        "CreateRegistrar",
        "DepositFunds",
        "CreateDomain",
        "UpdateDomain",
        "RenewDomain",
        "DeleteDomain",
        "CreateContact",
        "UpdateContact",
        "DeleteContact",
        "CreateHost",
        "UpdateHost",
        "DeleteHost",
        "Tick",
        "TransferDomain",
        "TransferContact",
        "RestoreDomain",
        "AckPoll",
        "UpdateRegistrar",
        "SetServerStatus",
        "OpenCase",
        "UpdateCase",
        "SetHostServerStatus",
        "SetContactServerStatus",
        "OpenSession",
        "CloseSession",
    ] {
        assert!(
            commands.contains(kind),
            "the golden log has no {kind}: {commands:?}"
        );
    }

    // Applied entry by entry: the recorded responses and digest.
    let mut state = MemState::new();
    for e in &entries {
        let results = apply_batch(&mut state, &[(e.ctx, e.proposal.clone())]);
        assert_eq!(
            hex(&results[0].encode_to_vec()),
            hex(&e.result),
            "entry {} ({}) answered differently from the golden log",
            e.ctx.log_index,
            e.command
        );
    }
    assert_eq!(hex(&state.digest()), hex(&digest), "final state digest");
    let stats = stats(&state).expect("stats");
    let events: BTreeSet<&str> = stats.events.iter().map(|(k, _)| k.as_str()).collect();
    for kind in [
        "AutoRenew",
        "TransferAutoApprove",
        "RedemptionEnd",
        "RestoreReportDue",
        "Purge",
        "ContactTransferAutoApprove",
    ] {
        assert!(events.contains(kind), "no {kind} event ran: {events:?}");
    }
    assert_registry_consistent(&state);
    assert_money_conserved(&state);

    // The same log as one batch: the same state, byte for byte.
    let mut once = MemState::new();
    let log: Vec<(ApplyContext, Proposal)> = entries
        .iter()
        .map(|e| (e.ctx, e.proposal.clone()))
        .collect();
    apply_batch(&mut once, &log);
    assert!(once == state, "one batch and entry by entry differ");
}
