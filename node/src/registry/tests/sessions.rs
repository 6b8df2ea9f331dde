//! Gateways' registrar sessions: open, close, the per-registrar limit,
//! expiry and pruning, the gateway in the audit trail, and determinism.

use super::*;
use crate::registry::session::{MAX_SESSIONS_PER_REGISTRAR, MAX_SESSION_LIFETIME_MS};

const HOUR_MS: i64 = 3_600_000;

fn open(seed: u8, lifetime_ms: i64) -> Kind {
    Kind::OpenSession(v1::OpenSessionCommand {
        meta: None,
        token_sha256: Sha256::digest([seed]).to_vec(),
        lifetime_ms,
        new_password_hash: String::new(),
    })
}

fn close(seed: u8) -> Kind {
    Kind::CloseSession(v1::CloseSessionCommand {
        meta: None,
        token_sha256: Sha256::digest([seed]).to_vec(),
    })
}

fn session(r: &Registry, seed: u8) -> Option<v1::Session> {
    session_by_token_hash(&r.state, &Sha256::digest([seed])).expect("no storage fault")
}

impl Registry {
    /// Applies `kind` by `actor` as delivered by gateway `via`.
    fn via(&mut self, via: &str, actor: &str, kind: Kind) -> CommandResult {
        let mut p = self.propose(actor, kind);
        p.via = via.into();
        self.apply(&p)
    }
}

#[test]
fn a_login_with_a_new_password_replaces_the_hash_and_a_bad_hash_changes_nothing() {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let mut r = world();
    let hash = argon2::Argon2::default()
        .hash_password(b"new-secret-1", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    let with_hash = |seed: u8, hash: &str| {
        Kind::OpenSession(v1::OpenSessionCommand {
            meta: None,
            token_sha256: Sha256::digest([seed]).to_vec(),
            lifetime_ms: HOUR_MS,
            new_password_hash: hash.into(),
        })
    };
    let account = |r: &Registry| crate::registry::info_registrar(&r.state, "rar-a", 10).unwrap();
    let before = account(&r);
    let e = expect_error(r.via("epp1", "rar-a", with_hash(1, "not-a-phc-hash")));
    assert_eq!(e.field, "new_password_hash");
    assert!(session(&r, 1).is_none(), "no session opened");
    assert!(account(&r) == before, "the account is unchanged");
    r.via("epp1", "rar-a", with_hash(1, &hash));
    assert!(session(&r, 1).is_some());
    assert!(crate::registry::verify_registrar_password(&r.state, "rar-a", "new-secret-1").unwrap());
    let audit = crate::registry::query_audit(
        &r.state,
        &v1::AuditQueryRequest {
            object_kind: "registrar".into(),
            object: "rar-a".into(),
            ..Default::default()
        },
    )
    .unwrap()
    .0;
    assert!(
        audit[0]
            .changes
            .iter()
            .any(|c| c == "password changed at login"),
        "{audit:?}"
    );
}

#[test]
fn a_session_is_opened_for_its_gateway_and_closed_only_by_it() {
    let mut r = world();
    let opened = r.via("epp1", "rar-a", open(1, HOUR_MS));
    let Some(Outcome::Session(resp)) = opened.outcome else {
        panic!("{opened:?}")
    };
    let s = resp.session.unwrap();
    assert_eq!(
        (s.registrar.as_str(), s.gateway.as_str()),
        ("rar-a", "epp1")
    );
    assert_eq!(s.expires_ms, s.opened_ms + HOUR_MS);
    assert_eq!(session(&r, 1), Some(s.clone()));

    // Another gateway or another registrar cannot close it.
    let e = expect_error(r.via("epp2", "rar-a", close(1)));
    assert_eq!(e.reason(), Reason::SessionInvalid);
    assert!(e.message.contains("another gateway"), "{}", e.message);
    let e = expect_error(r.via("epp1", "rar-b", close(1)));
    assert_eq!(e.reason(), Reason::SessionInvalid);
    assert!(session(&r, 1).is_some());

    r.via("epp1", "rar-a", close(1));
    assert_eq!(session(&r, 1), None);
    assert_eq!(r.state.iter(Cf::SessionsByRegistrar).count(), 0);
    assert_eq!(r.state.iter(Cf::SessionExpiry).count(), 0);
    let e = expect_error(r.via("epp1", "rar-a", close(1)));
    assert_eq!(e.reason(), Reason::SessionInvalid);
}

#[test]
fn session_commands_check_what_they_carry() {
    let mut r = world();
    let e = expect_error(r.via("epp1", "nobody", open(1, HOUR_MS)));
    assert_eq!(e.reason(), Reason::AuthenticationFailed);
    for lifetime in [0, -1, MAX_SESSION_LIFETIME_MS + 1] {
        let e = expect_error(r.via("epp1", "rar-a", open(1, lifetime)));
        assert_eq!(e.field, "lifetime_ms");
    }
    let mut short = open(1, HOUR_MS);
    if let Kind::OpenSession(c) = &mut short {
        c.token_sha256.truncate(31);
    }
    assert_eq!(
        expect_error(r.via("epp1", "rar-a", short)).field,
        "token_sha256"
    );
    r.via("epp1", "rar-a", open(1, HOUR_MS));
    let e = expect_error(r.via("epp1", "rar-a", open(1, HOUR_MS)));
    assert_eq!(
        e.reason(),
        Reason::SessionInvalid,
        "a token hash is opened once"
    );
    let e = expect_error(r.via("epp1\n", "rar-a", open(2, HOUR_MS)));
    assert_eq!(e.field, "via");
}

#[test]
fn a_registrar_has_at_most_the_limit_of_open_sessions_and_expired_ones_make_room() {
    let mut r = world();
    for seed in 0..MAX_SESSIONS_PER_REGISTRAR as u8 {
        r.via("epp1", "rar-a", open(seed, HOUR_MS));
    }
    let e = expect_error(r.via("epp2", "rar-a", open(200, HOUR_MS)));
    assert_eq!(e.reason(), Reason::SessionLimit);
    assert!(e.message.contains("rar-a"), "{}", e.message);
    // Other registrars are not affected.
    r.via("epp1", "rar-b", open(201, HOUR_MS));

    // Once they have expired, the next open drops them.
    r.advance(HOUR_MS);
    r.via("epp2", "rar-a", open(200, HOUR_MS));
    assert_eq!(session(&r, 0), None);
    let rar_a = audit_index_prefix_count(&r, "rar-a");
    assert_eq!(rar_a, 1);
}

fn audit_index_prefix_count(r: &Registry, registrar: &str) -> usize {
    let mut prefix = registrar.as_bytes().to_vec();
    prefix.push(0);
    r.state
        .iter(Cf::SessionsByRegistrar)
        .filter(|(k, _)| k.starts_with(&prefix))
        .count()
}

#[test]
fn ticks_prune_expired_sessions() {
    let mut r = world();
    r.via("epp1", "rar-a", open(1, HOUR_MS));
    r.via("epp1", "rar-b", open(2, 2 * HOUR_MS));
    r.advance(HOUR_MS);
    assert_eq!(r.tick().sessions_pruned, 1);
    assert_eq!(session(&r, 1), None);
    assert!(session(&r, 2).is_some());
    r.advance(HOUR_MS);
    assert_eq!(r.tick().sessions_pruned, 1);
    for cf in [Cf::Sessions, Cf::SessionsByRegistrar, Cf::SessionExpiry] {
        assert_eq!(r.state.iter(cf).count(), 0, "{cf:?}");
    }
}

#[test]
fn gateway_commands_are_audited_with_the_registrar_and_the_gateway() {
    let mut r = world();
    r.via("epp1", "rar-a", open(1, HOUR_MS));
    r.via(
        "epp1",
        "rar-a",
        create_domain("via-gateway.nz", 1, "c-a1", &[]),
    );
    let (records, _) = query_audit(
        &r.state,
        &v1::AuditQueryRequest {
            object: "via-gateway.nz".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].actor.as_str(), records[0].via.as_str()),
        ("rar-a", "epp1")
    );
    let (opened, _) = query_audit(
        &r.state,
        &v1::AuditQueryRequest {
            object_kind: "registrar".into(),
            object: "rar-a".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(opened[0].changes[0].contains("session"), "{opened:?}");
    assert_eq!(opened[0].via, "epp1");
    // A direct call names no gateway.
    r.ok("rar-a", create_domain("direct.nz", 1, "c-a1", &[]));
    let (direct, _) = query_audit(
        &r.state,
        &v1::AuditQueryRequest {
            object: "direct.nz".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(direct[0].via, "");
}

#[test]
fn the_same_session_log_gives_the_same_state_however_it_is_batched() {
    let mut r = world();
    for seed in 0..8 {
        let registrar = if seed % 2 == 0 { "rar-a" } else { "rar-b" };
        r.via(
            "epp1",
            registrar,
            open(seed, HOUR_MS * (1 + seed as i64 % 3)),
        );
    }
    r.via("epp1", "rar-a", close(2));
    r.via("epp2", "rar-b", close(3));
    r.advance(HOUR_MS);
    r.tick();
    r.via("epp1", "rar-a", open(9, HOUR_MS));
    r.advance(2 * HOUR_MS);
    r.tick();
    for sizes in [&[1][..], &[3, 1, 7], &[usize::MAX]] {
        let (replayed, results) = replay_in_batches(&r.log, sizes);
        assert_eq!(replayed.digest(), r.state.digest(), "batches {sizes:?}");
        assert!(replayed == r.state);
        for (a, b) in results.iter().zip(&r.results) {
            assert_eq!(a.encode_to_vec(), b.encode_to_vec());
        }
    }
}
