//! Hostile clients against a real three-node cluster over mutual TLS on
//! loopback: oversized messages and headers, floods of connections that
//! never handshake or handshake a byte a second, one connection opening far
//! more streams than it may, and connections that ask for responses and
//! never read them. Through each attack a normal registrar client keeps
//! being served within its usual latency (generous bounds: this checks
//! behaviour on a loaded two-core machine, not timings), a fresh client
//! still connects, and the node's memory stays bounded.
//!
//! Attackers connect from other loopback addresses (127.0.0.2 and up) than
//! the normal client (127.0.0.1), as they would from other hosts: the
//! per-address connection cap is meant to stop one address, not to lock
//! out every client behind it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kauri_chaos_tests::TestCluster;
use kauri_client::proto::registry_client::RegistryClient;
use kauri_client::proto::*;
use kauri_client::tls::ClientTls;
use kauri_client::{linearizable, meta, KauriClient};
use kauri_node::security::listener::{
    HANDSHAKE_TIMEOUT, MAX_CONNECTIONS_PER_ADDRESS, MAX_PENDING_HANDSHAKES,
};
use kauri_node::server::MAX_STREAMS_PER_CONNECTION;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_kauri-node");
/// The name the normal client reads.
const KNOWN: &str = "known.test";
/// Reads per latency sample.
const SAMPLES: usize = 20;
/// No call of the normal client may take longer, under any attack.
const MAX_CALL: Duration = Duration::from_secs(2);
/// The normal client's median may grow at most this many times over its
/// baseline (and never needs to beat [`MEDIAN_FLOOR`]).
const MEDIAN_FACTOR: u32 = 10;
const MEDIAN_FLOOR: Duration = Duration::from_millis(100);
/// The node's resident memory may grow at most this much over the attacks.
const MAX_RSS_GROWTH_BYTES: u64 = 200 * 1024 * 1024;

/// Creates TLD `test`, funded registrar `reg1` and its domain [`KNOWN`].
async fn fixture(staff: &KauriClient, reg1: &KauriClient) {
    kauri_chaos_tests::fixtures::registry_with_reg1(
        staff,
        reg1,
        "test",
        TldPolicy {
            allow_idn: false,
            ..kauri_chaos_tests::fixtures::tld_policy("USD", 100)
        },
        1_000_000,
    )
    .await;
    reg1.create_domain(CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: KNOWN.into(),
        period_years: 1,
        registrant: "owner".into(),
        contacts: vec![],
        nameservers: vec![],
        auth_info: String::new(),
        fee: None,
        ds_data: Vec::new(),
    })
    .await
    .expect("create domain");
}

/// One linearizable read of [`KNOWN`] on the node at `addr`.
async fn read_known(client: &KauriClient, addr: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let read = client.info_domain_at(
        addr,
        InfoRequest {
            registrar: "reg1".into(),
            name: KNOWN.into(),
            read: linearizable(),
        },
    );
    match tokio::time::timeout(MAX_CALL * 2, read).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {:?}", MAX_CALL * 2)),
    }
}

/// Latencies of the normal client: [`SAMPLES`] reads on its open
/// connection, and one read through a brand-new client (TCP and TLS
/// handshake included).
#[derive(Debug)]
struct Sample {
    median: Duration,
    max: Duration,
    fresh: Duration,
}

async fn sample(normal: &KauriClient, cluster: &TestCluster, addr: &str, when: &str) -> Sample {
    let mut took = Vec::new();
    for _ in 0..SAMPLES {
        let t = read_known(normal, addr)
            .await
            .unwrap_or_else(|e| panic!("{when}: the normal client's read failed: {e}"));
        took.push(t);
    }
    took.sort();
    let fresh = read_known(&cluster.registrar_client("reg1"), addr)
        .await
        .unwrap_or_else(|e| panic!("{when}: a fresh client could not read: {e}"));
    Sample {
        median: took[took.len() / 2],
        max: took[took.len() - 1],
        fresh,
    }
}

/// Asserts that `s`, taken during an attack, is within the bounds set by
/// `baseline`.
fn assert_served(when: &str, baseline: &Sample, s: &Sample) {
    eprintln!(
        "hostile: {when}: median {:?}, max {:?}, fresh connection {:?}",
        s.median, s.max, s.fresh
    );
    let median_bound = (baseline.median * MEDIAN_FACTOR).max(MEDIAN_FLOOR);
    assert!(
        s.median <= median_bound,
        "{when}: median read {:?} over {median_bound:?} (baseline {:?})",
        s.median,
        baseline.median
    );
    assert!(
        s.max <= MAX_CALL && s.fresh <= MAX_CALL,
        "{when}: a read took {:?} (fresh connection {:?}), over {MAX_CALL:?}",
        s.max,
        s.fresh
    );
}

/// The resident set of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Samples `pid`'s resident set every 100 ms and keeps the peak.
fn watch_rss(pid: u32) -> Arc<AtomicU64> {
    let peak = Arc::new(AtomicU64::new(rss_bytes(pid)));
    let p = peak.clone();
    tokio::spawn(async move {
        loop {
            p.fetch_max(rss_bytes(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    peak
}

/// A TCP connection to `to` from loopback address `from`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(to).await
}

/// Attacker address `n` (127.0.0.2 and up; never the normal client's).
fn attacker(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + n)
}

/// Waits until the peer closes `tcp` (EOF or an error) or `limit` passes;
/// returns whether it was closed.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A TLS alert or record: keep waiting for the close.
            Ok(Ok(_)) => {}
        }
    }
}

/// A minimal HTTP/2 client over TLS that writes frames itself, so it can
/// do what a well-behaved library never does: open more streams than the
/// server allows, and leave responses unread with a zero flow-control
/// window.
struct RawH2 {
    io: tokio_rustls::client::TlsStream<TcpStream>,
    authority: String,
}

/// Frame types and flags (RFC 9113).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const REFUSED_STREAM: u32 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with a 7-bit prefix (no Huffman flag).
fn hpack_int(out: &mut Vec<u8>, mut n: usize) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

/// A header as an HPACK literal without indexing, with a new name.
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    hpack_int(out, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// A gRPC message: the 5-byte prefix and the encoded protobuf.
fn grpc_message(m: &impl Message) -> Vec<u8> {
    let body = m.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

impl RawH2 {
    /// Connects from `from` with `tls`'s certificate and exchanges
    /// settings, announcing `initial_window` as the window for every
    /// response stream.
    async fn open(from: Ipv4Addr, to: SocketAddr, tls: &ClientTls, initial_window: u32) -> RawH2 {
        let tcp = connect_from(from, to).await.expect("connect");
        let config = kauri_client::tls::client_config(&tls.files().load().expect("identity"))
            .expect("client config");
        let name = rustls::pki_types::ServerName::IpAddress(to.ip().into());
        let io = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let mut h2 = RawH2 {
            io,
            authority: to.to_string(),
        };
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let mut settings = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
        settings.extend_from_slice(&initial_window.to_be_bytes());
        hello.extend(frame(SETTINGS, 0, 0, &settings));
        h2.io.write_all(&hello).await.expect("preface");
        // Acknowledge the server's settings (an ack before them is a
        // protocol error).
        loop {
            let (kind, flags, _, _) = h2.read_frame().await.expect("server settings");
            if kind == SETTINGS && flags & ACK == 0 {
                break;
            }
        }
        h2.io
            .write_all(&frame(SETTINGS, ACK, 0, &[]))
            .await
            .expect("settings ack");
        h2
    }

    /// The HEADERS frame opening a gRPC call of `path` on `stream`.
    fn call_headers(&self, stream: u32, path: &str) -> Vec<u8> {
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", path),
            (":authority", self.authority.as_str()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            hpack_literal(&mut block, name, value);
        }
        frame(HEADERS, END_HEADERS, stream, &block)
    }

    async fn read_frame(&mut self) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
        let mut head = [0u8; 9];
        self.io.read_exact(&mut head).await?;
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        self.io.read_exact(&mut payload).await?;
        Ok((head[3], head[4], stream, payload))
    }
}

/// A CheckDomains request for `n` long names.
fn check_of(n: usize) -> CheckRequest {
    CheckRequest {
        registrar: "reg1".into(),
        names: (0..n)
            .map(|i| format!("name-{i:03}-{}.test", "x".repeat(40)))
            .collect(),
        read: None,
        fees: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_keeps_serving_a_normal_client_through_hostile_clients() {
    let cluster = TestCluster::start(NODE_BIN, 3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let staff = cluster.client();
    let normal = cluster.registrar_client("reg1");
    fixture(&staff, &normal).await;
    let tls = cluster.registrar_tls("reg1").expect("a TLS cluster");
    let addr = cluster.node(leader).addr.clone();
    let target: SocketAddr = addr.parse().expect("a socket address");
    let pid = cluster.pid(leader).expect("the leader runs");

    // Warm up (connections, caches), then the baseline.
    sample(&normal, &cluster, &addr, "warm-up").await;
    let baseline = sample(&normal, &cluster, &addr, "baseline").await;
    let rss_before = rss_bytes(pid);
    let peak = watch_rss(pid);
    eprintln!(
        "hostile: baseline: median {:?}, max {:?}, fresh connection {:?}; node RSS {} MiB",
        baseline.median,
        baseline.max,
        baseline.fresh,
        rss_before >> 20
    );

    // (a) Oversized messages: a request eight times the public API's limit
    // is refused without being read whole; so is a 64 KiB header.
    let channel =
        kauri_client::tls::channel(&addr, Some(&tls), Duration::from_secs(2)).expect("channel");
    let mut raw = RegistryClient::new(channel).max_encoding_message_size(usize::MAX);
    let oversized = CreateDomainRequest {
        meta: Some(meta("reg1")),
        name: "big.test".into(),
        period_years: 1,
        registrant: "owner".into(),
        contacts: vec![],
        nameservers: vec![],
        auth_info: "x".repeat(8 * kauri_node::api::MAX_REQUEST_BYTES),
        fee: None,
        ds_data: Vec::new(),
    };
    let refused = raw
        .create_domain(oversized)
        .await
        .expect_err("an 8 MiB request must be refused");
    assert!(
        matches!(
            refused.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "oversized request: {refused:?}"
    );
    let mut padded = tonic::Request::new(check_of(100));
    padded.metadata_mut().insert(
        "x-padding",
        "p".repeat(64 * 1024)
            .parse()
            .expect("an ASCII header value"),
    );
    let refused = raw
        .check_domains(padded)
        .await
        .expect_err("a 64 KiB header must be refused");
    eprintln!("hostile: 64 KiB header refused: {:?}", refused.code());
    assert_served(
        "after oversized messages",
        &baseline,
        &sample(&normal, &cluster, &addr, "oversized").await,
    );

    // (b) A flood of connections that never handshake, from one address:
    // beyond the per-address cap they are closed at once, the rest when
    // the handshake timeout passes.
    let flood = 2000;
    let mut idle = Vec::new();
    for _ in 0..flood {
        if let Ok(tcp) = connect_from(attacker(0), target).await {
            idle.push(tcp);
        }
    }
    assert_served(
        "connection flood (one address)",
        &baseline,
        &sample(&normal, &cluster, &addr, "connection flood").await,
    );
    let started = Instant::now();
    let mut open_after_timeout = 0;
    for tcp in &mut idle {
        let left = (HANDSHAKE_TIMEOUT + Duration::from_secs(5)).saturating_sub(started.elapsed());
        if !closed_within(tcp, left).await {
            open_after_timeout += 1;
        }
    }
    eprintln!(
        "hostile: {} of {flood} idle connections made; {open_after_timeout} still open after \
         the handshake timeout",
        idle.len()
    );
    assert!(idle.len() > MAX_CONNECTIONS_PER_ADDRESS);
    assert_eq!(
        open_after_timeout, 0,
        "idle connections outlive the handshake timeout"
    );
    drop(idle);

    // Slow handshakes from several addresses, a byte a second, more of them
    // than handshakes may be pending at once: the node closes each at the
    // handshake timeout and keeps accepting other clients meanwhile.
    let addresses: u8 = 4;
    let per_address = MAX_CONNECTIONS_PER_ADDRESS;
    assert!(usize::from(addresses) * per_address > MAX_PENDING_HANDSHAKES);
    let mut slow = tokio::task::JoinSet::new();
    for a in 0..addresses {
        for _ in 0..per_address {
            slow.spawn(async move {
                let mut tcp = connect_from(attacker(1 + a), target).await.ok()?;
                let started = Instant::now();
                // The start of a TLS record carrying a ClientHello.
                let hello = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
                let mut buf = [0u8; 64];
                for byte in hello.iter().cycle() {
                    tokio::select! {
                        r = tcp.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {
                            if tcp.write_all(&[*byte]).await.is_err() { break }
                        }
                    }
                    if started.elapsed() > HANDSHAKE_TIMEOUT * 4 {
                        return Some(None);
                    }
                }
                Some(Some(started.elapsed()))
            });
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_served(
        "slow handshakes",
        &baseline,
        &sample(&normal, &cluster, &addr, "slow handshakes").await,
    );
    let lived: Vec<Option<Duration>> = slow.join_all().await.into_iter().flatten().collect();
    let longest = lived.iter().flatten().max().copied().unwrap_or_default();
    let survivors = lived.iter().filter(|l| l.is_none()).count();
    eprintln!(
        "hostile: {} slow handshakes; the longest lived {longest:?}; {survivors} outlived 4× the \
         handshake timeout",
        lived.len()
    );
    assert_eq!(survivors, 0, "slow handshakes must be closed");

    // (c) One authenticated connection opens five times the streams it may:
    // the excess is refused, and the node carries on.
    let mut h2 = RawH2::open(attacker(10), target, &tls, 65_535).await;
    let streams = 5 * MAX_STREAMS_PER_CONNECTION;
    let mut burst = Vec::new();
    for i in 0..streams {
        burst.extend(h2.call_headers(2 * i + 1, "/kauri.v1.Registry/CheckDomains"));
    }
    let write_result = h2.io.write_all(&burst).await;
    let (mut refused_streams, mut goaway) = (0, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Ok((kind, _, _, payload))) =
        tokio::time::timeout_at(deadline, h2.read_frame()).await
    {
        match kind {
            RST_STREAM
                if payload.len() == 4
                    && u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                        == REFUSED_STREAM =>
            {
                refused_streams += 1;
            }
            GOAWAY => {
                goaway = true;
                break;
            }
            _ => {}
        }
    }
    eprintln!(
        "hostile: {streams} streams on one connection (write {:?}): {refused_streams} refused, \
         GOAWAY {goaway}",
        write_result.as_ref().map(|_| ())
    );
    assert!(
        goaway || refused_streams >= streams - MAX_STREAMS_PER_CONNECTION,
        "streams beyond {MAX_STREAMS_PER_CONNECTION} must be refused"
    );
    assert_served(
        "stream flood",
        &baseline,
        &sample(&normal, &cluster, &addr, "stream flood").await,
    );
    drop(h2);

    // (d) Connections that ask for answers and never read them: a zero
    // window for every response, all the streams a connection may have,
    // and then not another byte read from the socket.
    // Ten names a call: all 64 request bodies fit in the 65,535-byte
    // connection window a client may fill before the server widens it.
    let request = grpc_message(&check_of(10));
    assert!(request.len() * MAX_STREAMS_PER_CONNECTION as usize <= 65_535);
    let mut stalled = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_ADDRESS / 2 {
        let mut h2 = RawH2::open(attacker(11), target, &tls, 0).await;
        let mut calls = Vec::new();
        for i in 0..MAX_STREAMS_PER_CONNECTION {
            calls.extend(h2.call_headers(2 * i + 1, "/kauri.v1.Registry/CheckDomains"));
            calls.extend(frame(DATA, END_STREAM, 2 * i + 1, &request));
        }
        h2.io.write_all(&calls).await.expect("send the calls");
        stalled.push(h2);
    }
    // The calls are served: the first connection gets a response's headers
    // for each (their bodies wait for a window that never opens).
    let mut answered = 0;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while answered < MAX_STREAMS_PER_CONNECTION {
        match tokio::time::timeout_at(deadline, stalled[0].read_frame()).await {
            Ok(Ok((HEADERS, _, _, _))) => answered += 1,
            Ok(Ok((kind, flags, stream, payload))) => seen.push(format!(
                "type {kind} flags {flags} stream {stream} {payload:?}"
            )),
            Ok(Err(e)) => {
                seen.push(format!("error {e}"));
                break;
            }
            Err(_) => {
                seen.push("timeout".into());
                break;
            }
        }
    }
    eprintln!("hostile: unread responses: {answered} calls answered on the first connection");
    assert_eq!(
        answered, MAX_STREAMS_PER_CONNECTION,
        "the stalled calls were served; other frames: {seen:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_served(
        "unread responses",
        &baseline,
        &sample(&normal, &cluster, &addr, "unread responses").await,
    );
    drop(stalled);

    // Memory stayed bounded, and the node is still the one that started.
    let rss_peak = peak.load(Ordering::Relaxed);
    let rss_after = rss_bytes(pid);
    eprintln!(
        "hostile: node RSS before {} MiB, peak {} MiB, after {} MiB",
        rss_before >> 20,
        rss_peak >> 20,
        rss_after >> 20
    );
    assert!(
        rss_peak <= rss_before + MAX_RSS_GROWTH_BYTES,
        "RSS grew from {rss_before} to {rss_peak} bytes"
    );
    assert_eq!(cluster.pid(leader), Some(pid));
    assert_served(
        "after the attacks",
        &baseline,
        &sample(&normal, &cluster, &addr, "after").await,
    );
    assert_eq!(
        cluster.current_leader().await,
        Some(leader),
        "the attacks cost no election"
    );
}
