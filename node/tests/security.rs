//! The locked doors, through the real binaries on real sockets: a cluster
//! over mutual TLS refuses callers without a certificate, with one from
//! another CA or cluster, with an expired one, or with a role outside the
//! method's, and binds every actor to the certificate's principal. Each
//! refusal changes nothing; the right certificate works for each role.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kauri_chaos_tests::{wait_until, TestCluster, TEST_CLUSTER};
use kauri_client::devpki::{write_identity, DevCa};
use kauri_client::proto::admin_client::AdminClient;
use kauri_client::proto::cluster_client::ClusterClient;
use kauri_client::proto::raft_client::RaftClient;
use kauri_client::proto::*;
use kauri_client::tls::{self, ClientTls, LoadedIdentity, Principal, Role, TlsFiles};
use kauri_client::{meta, ClientConfig, ClientError, KauriClient};
use tonic::Code;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");

/// A channel to `addr` over TLS with an arbitrary rustls config: lets a
/// test present what a normal client would refuse to load (an expired
/// certificate, no certificate at all).
fn raw_channel(addr: &str, config: rustls::ClientConfig) -> tonic::transport::Channel {
    let config = Arc::new(config);
    let connector = tower::service_fn(move |uri: http::Uri| {
        let config = config.clone();
        async move {
            let host = uri.host().unwrap_or("127.0.0.1").to_string();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let name =
                rustls::pki_types::ServerName::try_from(host).map_err(std::io::Error::other)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect_with_connector_lazy(connector)
}

fn roots(ca: &Path) -> Arc<rustls::RootCertStore> {
    Arc::new(tls::load_roots(ca).unwrap())
}

/// A client config presenting `issued` (whatever its validity) and trusting `ca`.
fn presenting(ca: &Path, issued: &kauri_client::devpki::Issued) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
    let facts = tls::cert_facts(&chain[0]).unwrap();
    tls::client_config(&LoadedIdentity {
        roots: roots(ca),
        chain,
        key,
        principal: facts.principal.unwrap(),
        not_after_s: facts.not_after_s,
    })
    .unwrap()
}

fn code_of(r: Result<impl std::fmt::Debug, tonic::Status>) -> (Code, String) {
    let s = r.expect_err("the call must be refused");
    (s.code(), s.message().to_string())
}

fn client_error_code(e: &ClientError) -> String {
    e.to_string()
}

struct Fixture {
    cluster: TestCluster,
    staff: KauriClient,
    acme: KauriClient,
    rival: KauriClient,
}

/// A TLS cluster with TLD `test`, registrars `acme` (with the domain
/// `owned.test`) and `rival`, and a client per role.
async fn fixture() -> Fixture {
    let cluster = TestCluster::start(NODE_BIN, 3, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let (certs, ca) = cluster.pki().unwrap();
    let staff = cluster.client();
    let rival_files = ca
        .write(
            &certs.dir,
            "rival",
            &certs.ca,
            &Principal::new(TEST_CLUSTER, Role::Registrar, "rival").unwrap(),
            &[],
        )
        .unwrap();
    let acme = cluster.client_as(&certs.registrar);
    let rival = cluster.client_as(&rival_files);
    staff
        .create_tld(CreateTldRequest {
            meta: Some(meta("")),
            name: "test".into(),
            policy: Some(TldPolicy {
                create_price_minor_units: 500,
                renew_price_minor_units: 500,
                currency: "USD".into(),
                allow_idn: true,
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
                password: "correct horse battery".into(),
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
    acme.create_contact(CreateContactRequest {
        meta: Some(meta("")),
        id: "owner".into(),
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
    })
    .await
    .expect("acme creates a contact");
    acme.create_domain(CreateDomainRequest {
        meta: Some(meta("")),
        name: "owned.test".into(),
        registrant: "owner".into(),
        period_years: 1,
        auth_info: "acme-secret-1".into(),
        ..Default::default()
    })
    .await
    .expect("acme creates its domain");
    Fixture {
        cluster,
        staff,
        acme,
        rival,
    }
}

async fn balance(staff: &KauriClient, id: &str) -> i64 {
    staff
        .info_registrar(InfoRegistrarRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .expect("staff reads the account")
        .registrar
        .unwrap()
        .balance
        .unwrap()
        .minor_units
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_its_own_work_and_nothing_else() {
    let f = fixture().await;
    let (certs, ca) = f.cluster.pki().unwrap();
    let addr = f.cluster.endpoints()[0].clone();

    // The audit trail names the certificate's principals, not claims.
    let audit = f
        .staff
        .query_audit(AuditQueryRequest {
            object: "owned.test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit.records.iter().any(|r| r.actor == "acme"),
        "audit: {audit:?}"
    );
    let deposits = f
        .staff
        .query_audit(AuditQueryRequest {
            object_kind: "registrar".into(),
            object: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        deposits.records.iter().all(|r| r.actor == "admin"),
        "staff commands are recorded as staff member admin: {deposits:?}"
    );

    // Impersonation: rival names acme as the actor.
    let before = balance(&f.staff, "acme").await;
    let e = f
        .rival
        .delete_domain(DeleteRequest {
            meta: Some(meta("acme")),
            name: "owned.test".into(),
        })
        .await
        .unwrap_err();
    assert!(
        client_error_code(&e).contains("NOT_AUTHORIZED"),
        "rival cannot act as acme: {e}"
    );
    let e = f
        .rival
        .info_domain(InfoRequest {
            registrar: "acme".into(),
            name: "owned.test".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(client_error_code(&e).contains("NOT_AUTHORIZED"), "{e}");
    // Its own view shows no auth info; the domain is still acme's.
    let seen = f
        .rival
        .info_domain(InfoRequest {
            name: "owned.test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .domain
        .unwrap();
    assert_eq!(seen.sponsor, "acme");
    assert!(seen.auth_info.is_empty(), "only the sponsor sees auth info");
    // Rival may not read acme's account; acme may read its own.
    assert!(f
        .rival
        .info_registrar(InfoRegistrarRequest {
            id: "acme".into(),
            ..Default::default()
        })
        .await
        .is_err());
    f.acme
        .info_registrar(InfoRegistrarRequest {
            id: "acme".into(),
            ..Default::default()
        })
        .await
        .expect("a registrar reads its own account");
    // A registrar calling Admin: refused, balance unchanged.
    let e = f
        .acme
        .deposit_funds(DepositFundsRequest {
            meta: Some(meta("")),
            registrar: "acme".into(),
            amount_minor_units: 1_000_000,
            reference: "free money".into(),
        })
        .await
        .unwrap_err();
    assert!(client_error_code(&e).contains("NOT_AUTHORIZED"), "{e}");
    assert_eq!(balance(&f.staff, "acme").await, before);
    // Staff may not act as a registrar.
    assert!(f
        .staff
        .delete_domain(DeleteRequest {
            meta: Some(meta("acme")),
            name: "owned.test".into(),
        })
        .await
        .is_err());

    // The monitor reads digests and status, and nothing else.
    let monitor = f.cluster.client_as(&certs.monitor);
    monitor
        .cluster_status(&addr)
        .await
        .expect("monitor reads status");
    let digest = monitor
        .on_endpoint(&addr, |c| async move {
            ClusterClient::new(c)
                .state_digest(StateDigestRequest {})
                .await
        })
        .await;
    assert!(digest.is_ok(), "monitor reads digests: {digest:?}");
    let e = monitor
        .create_tld(CreateTldRequest {
            meta: Some(meta("")),
            name: "evil".into(),
            policy: Some(TldPolicy {
                currency: "USD".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert!(client_error_code(&e).contains("NOT_AUTHORIZED"), "{e}");

    // Gateways, registrars and staff cannot speak Raft: refused before the
    // payload is even decoded.
    for files in [&certs.gateway, &certs.registrar, &certs.staff] {
        let tls = ClientTls::load(files.clone()).unwrap();
        let channel = tls::channel(&addr, Some(&tls), Duration::from_secs(2)).unwrap();
        let (code, message) = code_of(
            RaftClient::new(channel)
                .append_entries(RaftMessage {
                    payload: vec![0xff; 64],
                })
                .await,
        );
        assert_eq!(code, Code::PermissionDenied, "{message}");
        assert!(message.contains("AppendEntries"), "{message}");
    }
    // The gateway cannot act for a registrar on its certificate alone.
    let gateway = f.cluster.client_as(&certs.gateway);
    let e = gateway
        .delete_domain(DeleteRequest {
            meta: Some(meta("acme")),
            name: "owned.test".into(),
        })
        .await
        .unwrap_err();
    assert!(client_error_code(&e).contains("SESSION_INVALID"), "{e}");

    // A certificate of this CA for another cluster.
    let other = ca
        .write(
            &certs.dir,
            "other-cluster",
            &certs.ca,
            &Principal::new("prod", Role::Staff, "admin").unwrap(),
            &[],
        )
        .unwrap();
    // The node refuses it (a raw client that does not check the server)...
    let config = tls::client_config(&other.load().unwrap()).unwrap();
    let (code, message) = code_of(
        AdminClient::new(raw_channel(&addr, config))
            .info_tld(InfoTldRequest {
                name: "test".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::Unauthenticated, "{message}");
    assert!(message.contains("\"prod\""), "{message}");
    // ...and Kauri's own client refuses the node: its certificate is not
    // a node of the cluster the client belongs to.
    let tls = ClientTls::load(other).unwrap();
    let channel = tls::channel(&addr, Some(&tls), Duration::from_secs(2)).unwrap();
    let (code, message) = code_of(
        AdminClient::new(channel)
            .info_tld(InfoTldRequest {
                name: "test".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::Unavailable, "{message}");
    assert!(
        message.contains("not a node of cluster \"prod\""),
        "{message}"
    );

    // Bytes that do not decode as the method's message (a string field
    // holding invalid UTF-8) are the client's fault: INVALID_ARGUMENT.
    let registrar = ClientTls::load(certs.registrar.clone()).unwrap();
    let mut grpc = tonic::client::Grpc::new(
        tls::channel(&addr, Some(&registrar), Duration::from_secs(2)).unwrap(),
    );
    grpc.ready().await.unwrap();
    let garbled: Result<tonic::Response<CheckResponse>, _> = grpc
        .unary(
            tonic::Request::new(RaftMessage {
                payload: vec![0xff, 0xfe, 0xfd],
            }),
            http::uri::PathAndQuery::from_static("/kauri.v1.Registry/CheckDomains"),
            tonic_prost::ProstCodec::<RaftMessage, CheckResponse>::default(),
        )
        .await;
    let (code, message) = code_of(garbled);
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("decode"), "{message}");

    // Nothing of the above changed the domain.
    let d = f
        .acme
        .info_domain(InfoRequest {
            name: "owned.test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .domain
        .unwrap();
    assert_eq!(d.sponsor, "acme");
    assert_eq!(d.auth_info, "acme-secret-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_turned_away_at_the_handshake() {
    let cluster = TestCluster::start(NODE_BIN, 1, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let (certs, ca) = cluster.pki().unwrap();
    let addr = cluster.endpoints()[0].clone();
    let status = |channel| async move {
        ClusterClient::new(channel)
            .status(StatusRequest {})
            .await
            .map(|r| r.into_inner())
    };

    // Plain text to a TLS port.
    let plain = KauriClient::new(
        &[addr.as_str()],
        ClientConfig {
            deadline: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(plain.cluster_status(&addr).await.is_err());

    // TLS without a client certificate.
    let anonymous = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(&certs.ca))
        .with_no_client_auth();
    let mut anonymous = anonymous;
    anonymous.alpn_protocols = vec![b"h2".to_vec()];
    assert!(status(raw_channel(&addr, anonymous)).await.is_err());

    // A certificate from another CA, naming a principal of this cluster.
    let stranger_ca = DevCa::new("someone else").unwrap();
    let forged = stranger_ca
        .issue(
            &Principal::new(TEST_CLUSTER, Role::Staff, "admin").unwrap(),
            &[],
        )
        .unwrap();
    assert!(status(raw_channel(&addr, presenting(&certs.ca, &forged)))
        .await
        .is_err());

    // An expired certificate from the right CA.
    let now = time::OffsetDateTime::now_utc();
    let expired = ca
        .issue_with_validity(
            &Principal::new(TEST_CLUSTER, Role::Staff, "admin").unwrap(),
            &[],
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .unwrap();
    assert!(status(raw_channel(&addr, presenting(&certs.ca, &expired)))
        .await
        .is_err());

    // The right certificate works over the same kind of channel.
    let staff = kauri_client::devpki::Issued {
        cert_pem: std::fs::read_to_string(&certs.staff.cert).unwrap(),
        key_pem: std::fs::read_to_string(&certs.staff.key).unwrap(),
    };
    let ok = status(raw_channel(&addr, presenting(&certs.ca, &staff))).await;
    assert!(ok.is_ok(), "{ok:?}");
    assert!(
        cluster.log_tail(1).contains("mutual TLS"),
        "the log says which mode is on"
    );
}

/// Runs kauri-node with `args` and expects it to refuse to start, saying `why`.
fn refuses_to_start(args: &[&str], why: &str) {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(NODE_BIN)
        .args(["--id", "1", "--data-dir"])
        .arg(data.path())
        .args(args)
        .env("KAURI_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} started: {stderr}");
    assert!(
        stderr.contains(why),
        "{args:?}: expected {why:?} in {stderr}"
    );
}

#[test]
fn a_node_refuses_to_start_insecure_or_with_bad_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (certs, ca) =
        kauri_client::devpki::DevCerts::create(dir.path(), TEST_CLUSTER, 2, &[]).unwrap();
    let s = |p: &Path| p.display().to_string();
    let tls_args = |files: &TlsFiles| vec![s(&files.ca), s(&files.cert), s(&files.key)];
    let with = |files: &TlsFiles, extra: &[&str], why: &str| {
        let f = tls_args(files);
        let mut args = vec![
            "--cluster-name",
            TEST_CLUSTER,
            "--grpc-addr",
            "127.0.0.1:0",
            "--tls-ca",
            &f[0],
            "--tls-cert",
            &f[1],
            "--tls-key",
            &f[2],
        ];
        args.extend_from_slice(extra);
        refuses_to_start(&args, why);
    };

    refuses_to_start(&["--grpc-addr", "127.0.0.1:0"], "no TLS identity");
    refuses_to_start(
        &["--grpc-addr", "10.1.2.3:50051", "--insecure-plaintext"],
        "refused on the non-loopback address 10.1.2.3:50051",
    );
    // Another node's certificate.
    with(
        &certs.nodes[1],
        &[],
        "names kauri://test/node/2, but this is node 1",
    );
    // Another cluster.
    refuses_to_start(
        &[
            "--cluster-name",
            "prod",
            "--grpc-addr",
            "127.0.0.1:0",
            "--tls-ca",
            &s(&certs.ca),
            "--tls-cert",
            &s(&certs.nodes[0].cert),
            "--tls-key",
            &s(&certs.nodes[0].key),
        ],
        "this is node 1 of cluster prod",
    );
    // A missing file is named.
    let mut missing = certs.nodes[0].clone();
    missing.key = dir.path().join("nowhere.key");
    with(&missing, &[], "nowhere.key");
    // A key that is not the certificate's.
    let mut mismatched = certs.nodes[0].clone();
    mismatched.key = certs.nodes[1].key.clone();
    with(&mismatched, &[], "does not match the certificate");
    // An expired certificate.
    let now = time::OffsetDateTime::now_utc();
    let expired = ca
        .issue_with_validity(
            &Principal::new(TEST_CLUSTER, Role::Node, "1").unwrap(),
            &["127.0.0.1".into()],
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .unwrap();
    let expired = write_identity(dir.path(), "expired", &certs.ca, &expired).unwrap();
    with(&expired, &[], "expired at");
    // Not yet valid.
    let future = ca
        .issue_with_validity(
            &Principal::new(TEST_CLUSTER, Role::Node, "1").unwrap(),
            &["127.0.0.1".into()],
            now + time::Duration::days(1),
            now + time::Duration::days(30),
        )
        .unwrap();
    let future = write_identity(dir.path(), "future", &certs.ca, &future).unwrap();
    with(&future, &[], "not valid yet");
}

/// The DER of the certificate node `addr` presents.
async fn presented_cert(addr: &str, certs: &kauri_client::devpki::DevCerts) -> Vec<u8> {
    let tls = ClientTls::load(certs.staff.clone()).unwrap();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let stream = tls
        .connect(host, port.parse().unwrap(), Duration::from_secs(2))
        .await
        .unwrap();
    let (_, session) = stream.get_ref();
    session.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_certificate_rotates_under_load_without_a_restart() {
    let cluster = TestCluster::start(NODE_BIN, 3, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let (certs, ca) = cluster.pki().unwrap();
    let staff = cluster.client();
    staff
        .create_tld(CreateTldRequest {
            meta: Some(meta("")),
            name: "test".into(),
            policy: Some(TldPolicy {
                currency: "USD".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let addr = cluster.endpoints()[0].clone();
    let old = presented_cert(&addr, certs).await;
    let pid = cluster.pid(1).unwrap();

    // A write load through every node while the certificate changes.
    let load = {
        let staff = staff.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..60 {
                let r = staff
                    .create_registrar(CreateRegistrarRequest {
                        meta: Some(meta("")),
                        id: format!("rot{i}"),
                        name: "Rotation".into(),
                        password: "correct horse battery".into(),
                        currency: "USD".into(),
                    })
                    .await;
                if let Err(e) = r {
                    failures.push(e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            failures
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // New certificate and key in place, then SIGHUP.
    ca.write(
        &certs.dir,
        "node1",
        &certs.ca,
        &Principal::new(TEST_CLUSTER, Role::Node, "1").unwrap(),
        &["127.0.0.1".into(), "localhost".into()],
    )
    .unwrap();
    // SAFETY: kill(2) on the PID of a node this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGHUP);
    }
    let new = wait_until(
        Duration::from_secs(15),
        "node 1 presents its new certificate",
        || {
            let addr = addr.clone();
            let old = old.clone();
            async move {
                let now = presented_cert(&addr, certs).await;
                (now != old).then_some(now)
            }
        },
    )
    .await;
    let on_disk = std::fs::read_to_string(&certs.nodes[0].cert).unwrap();
    let on_disk: Vec<u8> = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(on_disk.as_bytes())
            .unwrap()
            .to_vec()
    };
    assert_eq!(new, on_disk, "the presented certificate is the new file's");
    let failures = load.await.unwrap();
    assert!(failures.is_empty(), "writes failed: {failures:?}");
    assert!(cluster.is_running(1), "no restart");
    assert!(cluster.log_tail(1).contains("reloaded the TLS certificate"));
}
