//! The EPP gateway end to end: a real 3-node cluster over mutual TLS, the
//! real `kauri-gateway` binary on a loopback port, a TLS client speaking
//! RFC 5734 frames. Greeting, hello, login (wrong and right password),
//! domain check, commands before login and hostile frames (malformed XML,
//! a DTD with entities, an unknown command, an oversize frame), logout.
//! Every response validates against the official EPP schemas with xmllint
//! (Debian's libxml2-utils, installed by scripts/epp-tools.sh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kauri_chaos_tests::TestCluster;
use kauri_client::tls::{Principal, Role};
use kauri_gateway::frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const GATEWAY_BIN: &str = env!("CARGO_BIN_EXE_kauri-gateway");

fn node_bin() -> PathBuf {
    let bin = PathBuf::from(GATEWAY_BIN).with_file_name("kauri-node");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace tests (cargo test --workspace) or cargo build -p kauri-node first",
        bin.display()
    );
    bin
}

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/epp/all.xsd")
}

/// Installs xmllint, Net::EPP and pyepp if missing (once per test
/// process); returns the python of pyepp's virtualenv.
fn epp_tools() -> PathBuf {
    static DONE: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let done = DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/epp-tools.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    match done {
        Ok(python) => python.clone(),
        Err(why) => panic!(
            "xmllint (libxml2-utils), Net::EPP (libnet-epp-perl) and pyepp are needed and could \
             not be installed: {why}"
        ),
    }
}

/// Panics unless `xml` validates against the EPP schemas.
fn assert_valid(xml: &str, dir: &Path, n: usize) {
    let file = dir.join(format!("response-{n}.xml"));
    std::fs::write(&file, xml).expect("write the response");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schemas())
        .arg(&file)
        .output()
        .expect("run xmllint");
    assert!(
        out.status.success(),
        "response does not validate: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

struct Gateway {
    child: Child,
    addr: String,
    roots: Arc<rustls::RootCertStore>,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SAFETY: signalling the child this test started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn start_gateway(cluster: &TestCluster, more: &[&str]) -> Gateway {
    let (certs, ca) = cluster.pki().expect("a TLS cluster");
    let dir = tempfile::tempdir().expect("a temp dir");
    let epp = ca
        .write(
            dir.path(),
            "epp",
            &certs.ca,
            &Principal::new(&certs.cluster, Role::Gateway, "epp").unwrap(),
            &["127.0.0.1".to_string()],
        )
        .expect("an EPP certificate");
    let identity = certs.gateway.cert.with_extension("");
    let addr = free_addr();
    let child = Command::new(GATEWAY_BIN)
        .arg("--endpoints")
        .arg(cluster.endpoints().join(","))
        .args(["--epp-addr", &addr])
        .arg("--tls-cert")
        .arg(&epp.cert)
        .arg("--tls-key")
        .arg(&epp.key)
        .arg("--identity")
        .arg(&identity)
        .args(more)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("gateway.log")).unwrap())
        .spawn()
        .expect("start kauri-gateway");
    let roots = Arc::new(kauri_client::tls::load_roots(&certs.ca).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Gateway {
        child,
        addr,
        roots,
        _dir: dir,
    }
}

/// One EPP connection.
struct Epp {
    stream: TlsStream<TcpStream>,
}

impl Epp {
    async fn connect(gw: &Gateway) -> (Epp, String) {
        let config = rustls::ClientConfig::builder_with_provider(kauri_client::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(gw.roots.clone())
            .with_no_client_auth();
        let tcp = TcpStream::connect(&gw.addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let mut epp = Epp { stream };
        let greeting = epp.read().await.expect("a greeting");
        (epp, greeting)
    }

    async fn read(&mut self) -> Option<String> {
        frame::read(&mut self.stream, 1 << 20)
            .await
            .ok()
            .map(|b| String::from_utf8(b).expect("UTF-8"))
    }

    async fn send(&mut self, xml: &str) -> String {
        frame::write(&mut self.stream, xml.as_bytes())
            .await
            .expect("send");
        self.read().await.expect("an answer")
    }
}

fn code(xml: &str) -> u16 {
    let at = xml.find("<result code=\"").expect("a result") + 14;
    xml[at..at + 4].parse().expect("a code")
}

fn command(body: &str, cl_trid: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command>{body}<clTRID>{cl_trid}</clTRID></command></epp>"#
    )
}

fn login(client: &str, password: &str) -> String {
    command(
        &format!(
            "<login><clID>{client}</clID><pw>{password}</pw><options><version>1.0</version>\
             <lang>en</lang></options><svcs><objURI>urn:ietf:params:xml:ns:domain-1.0</objURI>\
             </svcs></login>"
        ),
        "login-1",
    )
}

fn check(names: &[&str]) -> String {
    let names: String = names
        .iter()
        .map(|n| format!("<domain:name>{n}</domain:name>"))
        .collect();
    command(
        &format!(
            "<check><domain:check xmlns:domain=\"urn:ietf:params:xml:ns:domain-1.0\">{names}\
             </domain:check></check>"
        ),
        "check-1",
    )
}

/// A 3-node cluster with registrar reg1 (password "correct horse") and
/// its domain taken.test.
async fn with_a_taken_name() -> TestCluster {
    let cluster = TestCluster::start(node_bin(), 3, &[]);
    let (_staff, reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    reg1.create_domain(kauri_client::proto::CreateDomainRequest {
        meta: Some(kauri_client::meta("reg1")),
        name: "taken.test".into(),
        period_years: 1,
        registrant: "owner".into(),
        ..Default::default()
    })
    .await
    .expect("a domain to find taken");
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_logs_in_checks_names_and_hostile_frames_change_nothing() {
    epp_tools();
    let cluster = with_a_taken_name().await;
    let gw = start_gateway(&cluster, &["--max-failed-logins", "2"]);
    let out = tempfile::tempdir().expect("a temp dir");
    let mut n = 0;
    let mut valid = |xml: &str| {
        n += 1;
        assert_valid(xml, out.path(), n);
    };

    let (mut epp, greeting) = Epp::connect(&gw).await;
    valid(&greeting);
    assert!(greeting.contains("<svID>Kauri EPP</svID>"), "{greeting}");
    let hello = epp
        .send(r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><hello/></epp>"#)
        .await;
    valid(&hello);
    assert!(hello.contains("<greeting>"));

    // Before login: a check is a use error, nothing reaches the registry.
    let early = epp.send(&check(&["free.test"])).await;
    valid(&early);
    assert_eq!(code(&early), 2002, "{early}");
    assert!(early.contains("<clTRID>check-1</clTRID>"));

    // Hostile and broken frames: the right error, the connection lives.
    for (frame, want) in [
        ("<epp", 2001),
        (
            r#"<?xml version="1.0"?><!DOCTYPE epp [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><epp xmlns="urn:ietf:params:xml:ns:epp-1.0">&b;</epp>"#,
            2001,
        ),
        (
            r#"<!DOCTYPE epp [<!ENTITY x SYSTEM "file:///etc/passwd">]><epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><hello/>&x;</epp>"#,
            2001,
        ),
        (r#"<epp xmlns="urn:example:wrong"><hello/></epp>"#, 2001),
        (
            r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><frobnicate/><clTRID>abc-1</clTRID></command></epp>"#,
            2000,
        ),
    ] {
        let answer = epp.send(frame).await;
        valid(&answer);
        assert_eq!(code(&answer), want, "{frame}: {answer}");
        assert!(!answer.contains("root:"), "no file content: {answer}");
    }

    // A wrong password, then the right one.
    let wrong = epp.send(&login("reg1", "not-the-pw")).await;
    valid(&wrong);
    assert_eq!(code(&wrong), 2200, "{wrong}");
    assert!(!wrong.contains("not-the-pw"));
    let ok = epp.send(&login("reg1", "correct horse")).await;
    valid(&ok);
    assert_eq!(code(&ok), 1000, "{ok}");
    assert!(ok.contains("<clTRID>login-1</clTRID>"));
    let again = epp.send(&login("reg1", "correct horse")).await;
    assert_eq!(code(&again), 2002, "{again}");

    let checked = epp
        .send(&check(&["taken.test", "free.test", "bad_name.test"]))
        .await;
    valid(&checked);
    assert_eq!(code(&checked), 1000, "{checked}");
    assert!(
        checked.contains(r#"<domain:name avail="0">taken.test</domain:name>"#),
        "{checked}"
    );
    assert!(
        checked.contains(r#"<domain:name avail="1">free.test</domain:name>"#),
        "{checked}"
    );
    let unimplemented = epp
        .send(&command(
            "<renew><domain:renew xmlns:domain=\"urn:ietf:params:xml:ns:domain-1.0\">\
             <domain:name>taken.test</domain:name><domain:curExpDate>2027-01-01</domain:curExpDate>\
             </domain:renew></renew>",
            "renew-1",
        ))
        .await;
    valid(&unimplemented);
    assert_eq!(code(&unimplemented), 2101, "{unimplemented}");

    let bye = epp.send(&command("<logout/>", "logout-1")).await;
    valid(&bye);
    assert_eq!(code(&bye), 1500, "{bye}");
    assert!(epp.read().await.is_none(), "closed after logout");

    // Repeated wrong passwords close the connection (2501).
    let (mut epp, _) = Epp::connect(&gw).await;
    assert_eq!(code(&epp.send(&login("reg1", "wrong-pw-1")).await), 2200);
    let closing = epp.send(&login("reg1", "wrong-pw-2")).await;
    valid(&closing);
    assert_eq!(code(&closing), 2501, "{closing}");
    assert!(epp.read().await.is_none(), "closed after 2501");

    // Broken framing closes the connection without an answer.
    let (mut epp, _) = Epp::connect(&gw).await;
    epp.stream
        .write_all(&(64u32 << 20).to_be_bytes())
        .await
        .expect("send a header");
    epp.stream.flush().await.expect("flush");
    assert!(epp.read().await.is_none(), "closed after an oversize frame");
    let (mut epp, _) = Epp::connect(&gw).await;
    epp.stream
        .write_all(&2u32.to_be_bytes())
        .await
        .expect("send a header");
    epp.stream.flush().await.expect("flush");
    assert!(epp.read().await.is_none(), "closed after a short length");

    // The gateway is still up and serving.
    let (mut epp, _) = Epp::connect(&gw).await;
    assert_eq!(code(&epp.send(&login("reg1", "correct horse")).await), 1000);

    // Its log names the commands and their transaction ids, never a
    // password.
    let log = std::fs::read_to_string(gw._dir.path().join("gateway.log")).expect("the log");
    assert!(log.contains("\"cl_trid\":\"check-1\""), "{log}");
    for secret in ["correct horse", "not-the-pw", "wrong-pw-1"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

/// Runs `program` with `args` to completion off the async runtime.
async fn run_client(program: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&program)
            .args(&args)
            .envs(env)
            .output()
            .expect("run the client")
    })
    .await
    .expect("the client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Two registrar clients the project did not write, unmodified: Perl's
/// Net::EPP (gateway/tests/clients/net_epp.pl) and InternetNZ's pyepp
/// (gateway/tests/clients/pyepp_day.py) each log in, check a taken and a
/// free name and log out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_epp_and_pyepp_log_in_check_and_log_out() {
    let python = epp_tools();
    let cluster = with_a_taken_name().await;
    let gw = start_gateway(&cluster, &[]);
    let (host, port) = gw.addr.rsplit_once(':').expect("HOST:PORT");
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let ca = cluster.pki().expect("TLS").0.ca.display().to_string();
    let s = |v: &str| v.to_string();

    let perl = run_client(
        PathBuf::from("perl"),
        vec![
            clients.join("net_epp.pl").display().to_string(),
            s(host),
            s(port),
            s("reg1"),
            s("correct horse"),
            ca.clone(),
            s("taken.test"),
            s("free.test"),
        ],
        vec![],
    )
    .await;
    assert_eq!(
        perl,
        "login 1000\ncheck taken.test 0\ncheck free.test 1\nlogout ok\n"
    );

    let py = run_client(
        python,
        vec![
            clients.join("pyepp_day.py").display().to_string(),
            s(host),
            s(port),
            s("reg1"),
            s("correct horse"),
            s("taken.test"),
            s("free.test"),
        ],
        vec![(s("SSL_CERT_FILE"), ca)],
    )
    .await;
    assert_eq!(
        py,
        "login 1000\ncheck 1000\ntaken.test taken, free.test free\nlogout 1500\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_registrar_are_limited_and_idle_connections_closed() {
    epp_tools();
    let cluster = TestCluster::start(node_bin(), 1, &[]);
    kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let gw = start_gateway(
        &cluster,
        &[
            "--max-sessions-per-registrar",
            "1",
            "--idle-timeout-secs",
            "2",
        ],
    );
    let (mut first, _) = Epp::connect(&gw).await;
    assert_eq!(
        code(&first.send(&login("reg1", "correct horse")).await),
        1000
    );
    let (mut second, _) = Epp::connect(&gw).await;
    let limited = second.send(&login("reg1", "correct horse")).await;
    assert_eq!(code(&limited), 2502, "{limited}");
    assert!(second.read().await.is_none(), "closed after 2502");
    // The first one, idle, is closed; its place is free again.
    let began = Instant::now();
    assert!(first.read().await.is_none(), "idle connection closed");
    assert!(began.elapsed() < Duration::from_secs(10));
    let (mut third, _) = Epp::connect(&gw).await;
    let answer = third.send(&login("reg1", "correct horse")).await;
    assert_eq!(code(&answer), 1000, "{answer}");
}
