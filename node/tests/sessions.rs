//! Gateways acting for registrars, through the real binaries over mutual
//! TLS: a gateway certificate alone acts for nobody; a session opened with
//! the registrar's password lets that gateway, and no other, act for
//! exactly that registrar until it is closed or expires; the audit trail
//! records the registrar and the gateway; failed password checks are
//! throttled per source and per registrar and recover after the window.

use std::time::Duration;

use kauri_chaos_tests::{TestCluster, TEST_CLUSTER};
use kauri_client::proto::*;
use kauri_client::tls::{Principal, Role};
use kauri_client::{meta, ClientError, KauriClient};
use tonic::Code;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");
const PASSWORD: &str = "correct horse battery";

struct Fixture {
    cluster: TestCluster,
    staff: KauriClient,
    /// The dev certificates' gateway, `gateway`.
    gateway: KauriClient,
    /// A second gateway, `epp2`.
    epp2: KauriClient,
}

/// A TLS cluster with the test clock, TLD `test` and registrars `acme`
/// and `rival` (both with funds and the password [`PASSWORD`]).
async fn fixture() -> Fixture {
    let cluster = TestCluster::start(NODE_BIN, 3, &["--test-clock"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let (certs, ca) = cluster.pki().unwrap();
    let epp2_files = ca
        .write(
            &certs.dir,
            "epp2",
            &certs.ca,
            &Principal::new(TEST_CLUSTER, Role::Gateway, "epp2").unwrap(),
            &[],
        )
        .unwrap();
    let staff = cluster.client();
    let gateway = cluster.client_as(&certs.gateway);
    let epp2 = cluster.client_as(&epp2_files);
    staff
        .create_tld(CreateTldRequest {
            meta: Some(meta("")),
            name: "test".into(),
            policy: Some(TldPolicy {
                create_price_minor_units: 500,
                renew_price_minor_units: 500,
                currency: "USD".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("staff creates a TLD");
    for id in ["acme", "rival"] {
        staff
            .create_registrar(CreateRegistrarRequest {
                meta: Some(meta("")),
                id: id.into(),
                name: id.into(),
                password: PASSWORD.into(),
                currency: "USD".into(),
            })
            .await
            .expect("staff creates a registrar");
        staff
            .deposit_funds(DepositFundsRequest {
                meta: Some(meta("")),
                registrar: id.into(),
                amount_minor_units: 10_000,
                reference: "wire".into(),
            })
            .await
            .expect("staff deposits");
    }
    Fixture {
        cluster,
        staff,
        gateway,
        epp2,
    }
}

fn login(registrar: &str, password: &str, client_address: &str) -> OpenSessionRequest {
    OpenSessionRequest {
        meta: Some(meta(registrar)),
        password: password.into(),
        lifetime_seconds: 0,
        new_password: String::new(),
        client_address: client_address.into(),
    }
}

fn contact(id: &str) -> CreateContactRequest {
    CreateContactRequest {
        meta: Some(meta("")),
        id: id.into(),
        fields: Some(ContactFields {
            postal_info: vec![PostalInfo {
                r#type: "int".into(),
                name: "Owner Person".into(),
                address: Some(PostalAddress {
                    city: "Auckland".into(),
                    country_code: "NZ".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            email: "owner@example.nz".into(),
            ..Default::default()
        }),
        auth_info: String::new(),
    }
}

fn assert_refused(e: &ClientError, code: Code, reason: Reason, says: &str) {
    assert_eq!((e.code, e.reason), (code, reason), "{e}");
    assert!(e.message.contains(says), "{says:?} not in: {e}");
}

async fn advance_every_node(f: &Fixture, ms: i64) {
    for addr in f.cluster.endpoints() {
        f.staff
            .advance_test_clock_at(&addr, ms)
            .await
            .expect("the test clock moves");
    }
}

async fn audit_of(staff: &KauriClient, kind: &str, object: &str) -> Vec<AuditRecord> {
    staff
        .query_audit(AuditQueryRequest {
            object_kind: kind.into(),
            object: object.into(),
            ..Default::default()
        })
        .await
        .expect("staff reads the audit trail")
        .records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lets_its_gateway_act_for_exactly_its_registrar() {
    let f = fixture().await;

    // A gateway certificate alone acts for nobody.
    let e = f
        .gateway
        .create_contact(contact("c-none"))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::Unauthenticated,
        Reason::SessionInvalid,
        "OpenSession",
    );

    // A wrong password opens nothing.
    let e = f
        .gateway
        .open_session(login("acme", "not the password", ""))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::Unauthenticated,
        Reason::AuthenticationFailed,
        "acme",
    );
    assert!(
        audit_of(&f.staff, "registrar", "acme")
            .await
            .iter()
            .all(|r| r.command != "OpenSession"),
        "no session was opened"
    );

    // The right password opens a session; within it the gateway acts as
    // acme, and only as acme.
    let opened = f
        .gateway
        .open_session(login("acme", PASSWORD, ""))
        .await
        .expect("the registrar's password opens a session");
    assert_eq!(opened.token.len(), 64);
    let session = opened.session.clone().unwrap();
    assert_eq!(
        (session.registrar.as_str(), session.gateway.as_str()),
        ("acme", "gateway")
    );
    let acme = f.gateway.in_session(&opened.token).unwrap();
    let created = acme
        .create_contact(contact("c-acme"))
        .await
        .expect("the gateway acts for acme");
    assert_eq!(created.contact.unwrap().sponsor, "acme");
    let mut as_rival = contact("c-rival");
    as_rival.meta = Some(meta("rival"));
    let e = acme.create_contact(as_rival).await.unwrap_err();
    assert_refused(
        &e,
        Code::PermissionDenied,
        Reason::NotAuthorized,
        "\"acme\"",
    );
    let own = acme
        .info_registrar(InfoRegistrarRequest {
            id: String::new(),
            ..Default::default()
        })
        .await
        .expect("the gateway reads acme's account");
    assert_eq!(own.registrar.unwrap().id, "acme");

    // The audit trail names the registrar and the gateway.
    let audit = audit_of(&f.staff, "contact", "c-acme").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].via.as_str()),
        ("acme", "gateway")
    );
    let logins = audit_of(&f.staff, "registrar", "acme").await;
    assert!(
        logins
            .iter()
            .any(|r| r.command == "OpenSession" && r.via == "gateway"),
        "{logins:?}"
    );
    // Staff commands are still recorded under the staff member, directly.
    assert!(logins
        .iter()
        .filter(|r| r.command == "DepositFunds")
        .all(|r| r.actor == "admin" && r.via.is_empty()));

    // The token is useless with another gateway's certificate.
    let stolen = f.epp2.in_session(&opened.token).unwrap();
    let e = stolen
        .create_contact(contact("c-stolen"))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::Unauthenticated,
        Reason::SessionInvalid,
        "another gateway",
    );
    assert!(
        !e.message.contains(&opened.token),
        "the token is not echoed"
    );
    let e = stolen
        .close_session(CloseSessionRequest {
            meta: Some(meta("")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.reason, Reason::SessionInvalid, "{e}");

    // A made-up token is refused the same way.
    let forged = f.gateway.in_session(&"0".repeat(64)).unwrap();
    let e = forged
        .create_contact(contact("c-forged"))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::Unauthenticated,
        Reason::SessionInvalid,
        "not an open session",
    );

    // Logout closes it everywhere.
    let closed = acme
        .close_session(CloseSessionRequest {
            meta: Some(meta("")),
        })
        .await
        .expect("the gateway closes its session");
    assert_eq!(closed.session.unwrap().id, session.id);
    let e = acme.create_contact(contact("c-closed")).await.unwrap_err();
    assert_refused(
        &e,
        Code::Unauthenticated,
        Reason::SessionInvalid,
        "not an open session",
    );

    // A session expires after its lifetime, by registry time.
    let mut short = login("acme", PASSWORD, "");
    short.lifetime_seconds = 60;
    let opened = f.gateway.open_session(short).await.unwrap();
    let acme = f.gateway.in_session(&opened.token).unwrap();
    acme.create_contact(contact("c-before-expiry"))
        .await
        .expect("the session works before it expires");
    advance_every_node(&f, 61_000).await;
    let e = acme.create_contact(contact("c-expired")).await.unwrap_err();
    assert_refused(&e, Code::Unauthenticated, Reason::SessionInvalid, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_throttled_per_source_and_recovers() {
    let f = fixture().await;
    let attacker = "192.0.2.66";

    // Five free failures, then each failure refuses the source for a while.
    for i in 0..6 {
        let e = f
            .gateway
            .open_session(login("acme", &format!("guess-{i}"), attacker))
            .await
            .unwrap_err();
        assert_eq!(e.reason, Reason::AuthenticationFailed, "guess {i}: {e}");
    }
    let e = f
        .gateway
        .open_session(login("acme", PASSWORD, attacker))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::ResourceExhausted,
        Reason::Throttled,
        "try again in 1 s",
    );
    let e = f
        .gateway
        .verify_registrar_password(VerifyRegistrarPasswordRequest {
            id: "acme".into(),
            password: "guess-x".into(),
            client_address: attacker.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.reason, Reason::Throttled, "{e}");

    // The registrar, from its own client, still logs in.
    f.gateway
        .open_session(login("acme", PASSWORD, "192.0.2.10"))
        .await
        .expect("another source is not throttled");

    // After the window the throttled source may try again.
    advance_every_node(&f, 2_000).await;
    f.gateway
        .open_session(login("acme", PASSWORD, attacker))
        .await
        .expect("the source recovers after its window");

    // The failures were logged with registrar and source, the guesses not.
    let logs: String = f
        .cluster
        .ids()
        .iter()
        .map(|&id| std::fs::read_to_string(&f.cluster.node(id).log).unwrap_or_default())
        .collect();
    assert!(logs.contains("failed password check"), "no WARN logged");
    assert!(logs.contains(attacker), "the source is logged");
    assert!(!logs.contains("guess-"), "a password reached the log");
}
