//! What the gateway tests share: a real 3-node cluster over mutual TLS,
//! the real `kauri-gateway` binary on a loopback port, a TLS client
//! speaking RFC 5734 frames, schema validation with xmllint, and the
//! third-party tools (scripts/epp-tools.sh, scripts/monitoring-tools.sh).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kauri_chaos_tests::TestCluster;
use kauri_client::tls::{Principal, Role};
use kauri_gateway::frame;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub const GATEWAY_BIN: &str = env!("CARGO_BIN_EXE_kauri-gateway");

pub fn node_bin() -> PathBuf {
    let bin = PathBuf::from(GATEWAY_BIN).with_file_name("kauri-node");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace tests (cargo test --workspace) or cargo build -p kauri-node first",
        bin.display()
    );
    bin
}

pub fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/epp/all.xsd")
}

/// Installs xmllint, Net::EPP and pyepp if missing (once per test
/// process); returns the python of pyepp's virtualenv.
pub fn epp_tools() -> PathBuf {
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

/// `xml` without its RFC 8748 fee elements (and an `<extension>` they
/// leave empty): the fee extension's schema is not among the ones in
/// tests/schemas, so what the fee elements say is checked by the tests
/// themselves, and the rest of the response by the schemas.
fn without_fee(xml: &str) -> String {
    let mut out = xml.to_string();
    while let Some(at) = out.find("<fee:") {
        let name: String = out[at + 5..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let close = format!("</fee:{name}>");
        let end = out[at..]
            .find(&close)
            .map(|e| at + e + close.len())
            .unwrap_or_else(|| panic!("<fee:{name}> is not closed: {xml}"));
        out.replace_range(at..end, "");
    }
    // An <extension> that held only fee elements is left empty (or, in a
    // pretty-printed frame, holding white space): it goes too.
    let mut from = 0;
    while let Some(at) = out[from..].find("<extension>").map(|i| from + i) {
        let open = at + "<extension>".len();
        match out[open..].find("</extension>") {
            Some(len) if out[open..open + len].trim().is_empty() => {
                out.replace_range(at..open + len + "</extension>".len(), "");
                from = at;
            }
            _ => from = open,
        }
    }
    out
}

/// Panics unless `xml` validates against the EPP schemas (fee elements
/// aside: see [`without_fee`]).
pub fn assert_valid(xml: &str, dir: &Path, n: usize) {
    let file = dir.join(format!("response-{n}.xml"));
    std::fs::write(&file, without_fee(xml)).expect("write the response");
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

pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// A running kauri-gateway (stopped with SIGTERM when dropped).
pub struct Gateway {
    pub child: Child,
    pub addr: String,
    pub roots: Arc<rustls::RootCertStore>,
    pub _dir: tempfile::TempDir,
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

pub fn start_gateway(cluster: &TestCluster, more: &[&str]) -> Gateway {
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
/// One EPP connection.
pub struct Epp {
    pub stream: TlsStream<TcpStream>,
}

impl Epp {
    pub async fn connect(gw: &Gateway) -> (Epp, String) {
        Self::connect_as(gw, None).await
    }

    /// Connects presenting the client certificate `identity`, if given.
    pub async fn connect_as(
        gw: &Gateway,
        identity: Option<&kauri_client::tls::TlsFiles>,
    ) -> (Epp, String) {
        use rustls_pki_types::pem::PemObject;
        let builder = rustls::ClientConfig::builder_with_provider(kauri_client::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(gw.roots.clone());
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(files) => {
                let chain = kauri_client::tls::load_certs("client certificate", &files.cert)
                    .expect("the client certificate");
                let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key)
                    .expect("the client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("a client certificate and key")
            }
        };
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

    pub async fn read(&mut self) -> Option<String> {
        frame::read(&mut self.stream, 1 << 20)
            .await
            .ok()
            .map(|b| String::from_utf8(b).expect("UTF-8"))
    }

    pub async fn send(&mut self, xml: &str) -> String {
        frame::write(&mut self.stream, xml.as_bytes())
            .await
            .expect("send");
        self.read().await.expect("an answer")
    }
}

pub fn code(xml: &str) -> u16 {
    let at = xml.find("<result code=\"").expect("a result") + 14;
    xml[at..at + 4].parse().expect("a code")
}

pub fn command(body: &str, cl_trid: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command>{body}<clTRID>{cl_trid}</clTRID></command></epp>"#
    )
}

pub fn login(client: &str, password: &str) -> String {
    command(
        &format!(
            "<login><clID>{client}</clID><pw>{password}</pw><options><version>1.0</version>\
             <lang>en</lang></options><svcs><objURI>urn:ietf:params:xml:ns:domain-1.0</objURI>\
             </svcs></login>"
        ),
        "login-1",
    )
}

pub fn check(names: &[&str]) -> String {
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
pub async fn with_a_taken_name() -> TestCluster {
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

/// Runs `program` with `args` to completion off the async runtime.
pub async fn run_client(program: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> String {
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

/// `GET path` on a plain HTTP listener: the status and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect to the metrics port");
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("read");
    let status = answer[9..12].parse().expect("a status");
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// Panics unless promtool (Debian's prometheus package, installed by
/// scripts/monitoring-tools.sh) finds `text` a valid exposition.
pub fn assert_promtool_accepts(text: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/monitoring-tools.sh");
    let installed = Command::new("bash")
        .arg(&script)
        .arg("--prometheus-only")
        .output()
        .expect("run monitoring-tools.sh");
    assert!(
        installed.status.success(),
        "promtool is needed and could not be installed: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A session that validates every answer and checks its code.
pub struct Checked<'a> {
    pub epp: Epp,
    pub dir: &'a Path,
    pub n: &'a std::cell::Cell<usize>,
}

impl Checked<'_> {
    /// Sends `body` with `cl_trid`; panics unless the answer validates and
    /// has code `want`.
    pub async fn expect(&mut self, want: u16, body: &str, cl_trid: &str) -> String {
        let answer = self.epp.send(&command(body, cl_trid)).await;
        self.n.set(self.n.get() + 1);
        assert_valid(&answer, self.dir, self.n.get());
        assert_eq!(code(&answer), want, "{body}\n{answer}");
        assert!(
            answer.contains(&format!("<clTRID>{cl_trid}</clTRID>")),
            "{answer}"
        );
        answer
    }
}

impl Checked<'_> {
    /// Reads and acknowledges poll messages until the queue is empty (at
    /// most 20); returns what was read.
    pub async fn drain_poll(&mut self, tag: &str) -> Vec<String> {
        let mut read = Vec::new();
        for i in 0..20 {
            let cl_trid = format!("{tag}-req-{i}");
            let polled = self
                .epp
                .send(&command(r#"<poll op="req"/>"#, &cl_trid))
                .await;
            self.n.set(self.n.get() + 1);
            assert_valid(&polled, self.dir, self.n.get());
            if code(&polled) == 1300 {
                return read;
            }
            assert_eq!(code(&polled), 1301, "{polled}");
            let id = between(&polled, " id=\"", "\"").to_string();
            self.expect(
                1000,
                &format!(r#"<poll op="ack" msgID="{id}"/>"#),
                &format!("{tag}-ack-{i}"),
            )
            .await;
            read.push(polled);
        }
        panic!("more than 20 poll messages");
    }
}

/// Logs `registrar` in on a new connection to `gw`.
pub async fn logged_in<'a>(
    gw: &Gateway,
    registrar: &str,
    dir: &'a Path,
    n: &'a std::cell::Cell<usize>,
) -> Checked<'a> {
    let (epp, _) = Epp::connect(gw).await;
    let mut s = Checked { epp, dir, n };
    s.login(registrar).await;
    s
}

impl Checked<'_> {
    /// Logs `registrar` in (password "correct horse", every object, RGP).
    pub async fn login(&mut self, registrar: &str) {
        self.expect(
            1000,
            &format!(
            "<login><clID>{registrar}</clID><pw>correct horse</pw><options><version>1.0</version>\
             <lang>en</lang></options><svcs><objURI>urn:ietf:params:xml:ns:domain-1.0</objURI>\
             <objURI>urn:ietf:params:xml:ns:host-1.0</objURI>\
             <objURI>urn:ietf:params:xml:ns:contact-1.0</objURI><svcExtension>\
             <extURI>urn:ietf:params:xml:ns:rgp-1.0</extURI></svcExtension></svcs></login>"
        ),
            &format!("login-{registrar}"),
        )
        .await;
    }
}

pub const D: &str = r#"xmlns:domain="urn:ietf:params:xml:ns:domain-1.0""#;
pub const H: &str = r#"xmlns:host="urn:ietf:params:xml:ns:host-1.0""#;
pub const C: &str = r#"xmlns:contact="urn:ietf:params:xml:ns:contact-1.0""#;
pub const RGP: &str = r#"xmlns:rgp="urn:ietf:params:xml:ns:rgp-1.0""#;

pub fn between<'a>(xml: &'a str, open: &str, close: &str) -> &'a str {
    let at = xml.find(open).unwrap_or_else(|| panic!("{open} in {xml}")) + open.len();
    let end = xml[at..].find(close).expect("closed") + at;
    &xml[at..end]
}
