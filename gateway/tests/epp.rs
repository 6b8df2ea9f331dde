//! The EPP gateway end to end: a real 3-node cluster over mutual TLS, the
//! real `kauri-gateway` binary on a loopback port, a TLS client speaking
//! RFC 5734 frames. Greeting, hello, login (wrong and right password),
//! domain check, commands before login and hostile frames (malformed XML,
//! a DTD with entities, an unknown command, an oversize frame), logout.
//! Every response validates against the official EPP schemas with xmllint
//! (Debian's libxml2-utils, installed by scripts/epp-tools.sh).

mod support;

use std::time::{Duration, Instant};

use kauri_chaos_tests::TestCluster;
use support::*;
use tokio::io::AsyncWriteExt;

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
    // A registrar cannot ask for its own contact (2106).
    let own = epp
        .send(&command(
            "<transfer op=\"request\"><contact:transfer \
             xmlns:contact=\"urn:ietf:params:xml:ns:contact-1.0\"><contact:id>owner</contact:id>\
             <contact:authInfo><contact:pw>x-secret-1</contact:pw></contact:authInfo>\
             </contact:transfer></transfer>",
            "transfer-1",
        ))
        .await;
    valid(&own);
    assert_eq!(code(&own), 2106, "{own}");

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

/// The registrar's day through raw EPP frames, every answer validated
/// against the schemas: contacts, hosts and domains created, read,
/// updated, renewed; a domain deleted in its add grace period and one
/// deleted later and restored (RFC 3915); a transfer between two
/// registrars with poll messages on both sides; a command resent with its
/// clTRID answered from the cluster's record, not applied twice; wrong
/// objects and parameters refused with their codes, changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_day_in_raw_frames() {
    epp_tools();
    let cluster = TestCluster::start(node_bin(), 3, &["--test-clock"]);
    let (staff, _reg1) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let reg2 = cluster.registrar_client("reg2");
    kauri_chaos_tests::fixtures::add_registrar(&staff, &reg2, "reg2", "USD", 100_000_000).await;
    let metrics = free_addr();
    let gw = start_gateway(&cluster, &["--metrics-addr", &metrics]);
    let out = tempfile::tempdir().expect("a temp dir");
    let n = std::cell::Cell::new(0);
    let mut r1 = logged_in(&gw, "reg1", out.path(), &n).await;

    // Contacts.
    let checked = r1
        .expect(
            1000,
            &format!(
                "<check><contact:check {C}><contact:id>alice-1</contact:id>\
                 <contact:id>owner</contact:id></contact:check></check>"
            ),
            "c-check",
        )
        .await;
    assert!(
        checked.contains(r#"<contact:id avail="1">alice-1</contact:id>"#),
        "{checked}"
    );
    assert!(
        checked.contains(r#"<contact:id avail="0">owner</contact:id>"#),
        "{checked}"
    );
    let alice = format!(
        "<create><contact:create {C}><contact:id>alice-1</contact:id>\
         <contact:postalInfo type=\"int\"><contact:name>Alice Smith</contact:name>\
         <contact:addr><contact:street>1 Queen St</contact:street><contact:city>Auckland</contact:city>\
         <contact:pc>1010</contact:pc><contact:cc>NZ</contact:cc></contact:addr></contact:postalInfo>\
         <contact:voice>+64.93001234</contact:voice><contact:email>alice@example.nz</contact:email>\
         <contact:authInfo><contact:pw>alice-pw-1</contact:pw></contact:authInfo>\
         </contact:create></create>"
    );
    let created = r1.expect(1000, &alice, "c-create").await;
    assert!(
        created.contains("<contact:id>alice-1</contact:id>"),
        "{created}"
    );
    r1.expect(
        1000,
        &format!(
            "<update><contact:update {C}><contact:id>alice-1</contact:id><contact:chg>\
             <contact:email>alice@example.org</contact:email></contact:chg></contact:update></update>"
        ),
        "c-update",
    )
    .await;
    let info = r1
        .expect(
            1000,
            &format!(
                "<info><contact:info {C}><contact:id>alice-1</contact:id></contact:info></info>"
            ),
            "c-info",
        )
        .await;
    assert!(
        info.contains("<contact:email>alice@example.org</contact:email>"),
        "{info}"
    );
    assert!(
        info.contains("<contact:name>Alice Smith</contact:name>"),
        "kept: {info}"
    );
    assert!(
        info.contains("<contact:city>Auckland</contact:city>"),
        "kept: {info}"
    );

    // A domain, its in-bailiwick host with glue, then the delegation.
    let create_day = format!(
        "<create><domain:create {D}><domain:name>day.test</domain:name>\
         <domain:period unit=\"y\">2</domain:period><domain:registrant>alice-1</domain:registrant>\
         <domain:contact type=\"admin\">alice-1</domain:contact><domain:authInfo>\
         <domain:pw>day-secret-1</domain:pw></domain:authInfo></domain:create></create>"
    );
    let first = r1.expect(1000, &create_day, "d-create-day").await;
    assert!(
        first.contains("<domain:name>day.test</domain:name>"),
        "{first}"
    );
    // The same command resent with its clTRID (a client that lost the
    // answer): the same answer, applied once.
    let again = r1.expect(1000, &create_day, "d-create-day").await;
    let sv = |xml: &str| between(xml, "<svTRID>", "</svTRID>").to_string();
    assert_eq!(
        sv(&first),
        sv(&again),
        "the replay carries the first svTRID"
    );
    assert_eq!(
        between(&first, "<resData>", "</resData>"),
        between(&again, "<resData>", "</resData>")
    );
    // The clTRID of another command: refused, nothing created.
    r1.expect(
        2002,
        &format!(
            "<create><domain:create {D}><domain:name>other.test</domain:name>\
             <domain:registrant>alice-1</domain:registrant></domain:create></create>"
        ),
        "d-create-day",
    )
    .await;
    // Fees (RFC 8748): a premium name's price before it is charged; a
    // create stating less than the price is refused and charges nothing.
    staff
        .update_tld(kauri_client::proto::UpdateTldRequest {
            meta: Some(kauri_client::meta(kauri_client::devpki::DEV_STAFF)),
            name: "test".into(),
            policy: None,
            lifecycle: Some(kauri_client::proto::TldLifecyclePolicy {
                premium_names: vec![kauri_client::proto::PremiumName {
                    label: "gold".into(),
                    create_price_minor_units: 2500,
                    renew_price_minor_units: 2000,
                }],
                ..Default::default()
            }),
        })
        .await
        .expect("a premium name");
    const FEE: &str = r#"xmlns:fee="urn:ietf:params:xml:ns:epp:fee-1.0""#;
    let priced = r1
        .expect(
            1000,
            &format!(
                "<check><domain:check {D}><domain:name>gold.test</domain:name>\
                 <domain:name>plain.test</domain:name><domain:name>x.nowhere</domain:name>\
                 </domain:check></check><extension><fee:check {FEE}><fee:currency>USD</fee:currency>\
                 <fee:command name=\"create\"><fee:period unit=\"y\">1</fee:period></fee:command>\
                 <fee:command name=\"renew\"/></fee:check></extension>"
            ),
            "fee-check",
        )
        .await;
    for want in [
        r#"<fee:cd avail="1"><fee:objID>gold.test</fee:objID><fee:class>premium</fee:class><fee:command name="create"><fee:period unit="y">1</fee:period><fee:fee>25.00</fee:fee></fee:command><fee:command name="renew"><fee:period unit="y">1</fee:period><fee:fee>20.00</fee:fee>"#,
        r#"<fee:objID>plain.test</fee:objID><fee:class>standard</fee:class><fee:command name="create"><fee:period unit="y">1</fee:period><fee:fee>0.01</fee:fee>"#,
        r#"<fee:cd avail="0"><fee:objID>x.nowhere</fee:objID><fee:reason>"#,
    ] {
        assert!(priced.contains(want), "{want} in {priced}");
    }
    let create_gold = |fee: &str| {
        format!(
            "<create><domain:create {D}><domain:name>gold.test</domain:name>\
             <domain:registrant>alice-1</domain:registrant></domain:create></create><extension>\
             <fee:create {FEE}><fee:currency>USD</fee:currency><fee:fee>{fee}</fee:fee></fee:create>\
             </extension>"
        )
    };
    let low = r1
        .expect(2004, &create_gold("24.99"), "fee-create-low")
        .await;
    assert!(low.contains("more than the fee"), "{low}");
    let still = r1
        .expect(
            1000,
            &format!("<check><domain:check {D}><domain:name>gold.test</domain:name></domain:check></check>"),
            "fee-check-after",
        )
        .await;
    assert!(still.contains(r#"avail="1""#), "nothing created: {still}");
    let bought = r1.expect(1000, &create_gold("25.00"), "fee-create").await;
    assert!(
        bought.contains("<fee:creData xmlns:fee=\"urn:ietf:params:xml:ns:epp:fee-1.0\"><fee:currency>USD</fee:currency><fee:fee>25.00</fee:fee></fee:creData>"),
        "{bought}"
    );

    r1.expect(
        1000,
        &format!(
            "<create><host:create {H}><host:name>ns1.day.test</host:name>\
             <host:addr ip=\"v4\">192.0.2.1</host:addr><host:addr ip=\"v6\">2001:db8::1</host:addr>\
             </host:create></create>"
        ),
        "h-create",
    )
    .await;
    r1.expect(
        1000,
        &format!(
            "<create><host:create {H}><host:name>ns1.example.net</host:name></host:create></create>"
        ),
        "h-create-ext",
    )
    .await;
    let host = r1
        .expect(
            1000,
            &format!("<info><host:info {H}><host:name>ns1.day.test</host:name></host:info></info>"),
            "h-info",
        )
        .await;
    assert!(
        host.contains(r#"<host:addr ip="v6">2001:db8::1</host:addr>"#),
        "{host}"
    );
    // Renames (RFC 5732 <host:chg>): within its domain the host keeps its
    // glue; out of the registry only once the glue is removed.
    r1.expect(
        1000,
        &format!(
            "<create><host:create {H}><host:name>ns9.day.test</host:name>\
             <host:addr ip=\"v4\">192.0.2.9</host:addr></host:create></create>"
        ),
        "h-create-9",
    )
    .await;
    r1.expect(
        1000,
        &format!(
            "<update><host:update {H}><host:name>ns9.day.test</host:name>\
             <host:chg><host:name>ns2.day.test</host:name></host:chg></host:update></update>"
        ),
        "h-rename",
    )
    .await;
    let renamed = r1
        .expect(
            1000,
            &format!("<info><host:info {H}><host:name>ns2.day.test</host:name></host:info></info>"),
            "h-info-renamed",
        )
        .await;
    assert!(
        renamed.contains(r#"<host:addr ip="v4">192.0.2.9</host:addr>"#),
        "{renamed}"
    );
    r1.expect(
        2303,
        &format!("<info><host:info {H}><host:name>ns9.day.test</host:name></host:info></info>"),
        "h-info-old",
    )
    .await;
    let glue = r1
        .expect(
            2306,
            &format!(
                "<update><host:update {H}><host:name>ns2.day.test</host:name>\
                 <host:chg><host:name>ns2.example.org</host:name></host:chg></host:update></update>"
            ),
            "h-rename-glue",
        )
        .await;
    assert!(
        glue.contains(
            "<host:name xmlns:host=\"urn:ietf:params:xml:ns:host-1.0\">ns2.example.org</host:name>"
        ),
        "the refusal names the new name: {glue}"
    );
    r1.expect(
        1000,
        &format!(
            "<update><host:update {H}><host:name>ns2.day.test</host:name>\
             <host:rem><host:addr ip=\"v4\">192.0.2.9</host:addr></host:rem>\
             <host:chg><host:name>ns2.example.org</host:name></host:chg></host:update></update>"
        ),
        "h-rename-out",
    )
    .await;
    r1.expect(
        1000,
        &format!(
            "<update><domain:update {D}><domain:name>day.test</domain:name><domain:add>\
             <domain:ns><domain:hostObj>ns1.day.test</domain:hostObj>\
             <domain:hostObj>ns1.example.net</domain:hostObj></domain:ns>\
             <domain:contact type=\"tech\">alice-1</domain:contact>\
             <domain:status s=\"clientUpdateProhibited\" lang=\"en\">hands off</domain:status>\
             </domain:add></domain:update></update>"
        ),
        "d-update",
    )
    .await;
    let info = r1
        .expect(
            1000,
            &format!("<info><domain:info {D}><domain:name hosts=\"all\">day.test</domain:name></domain:info></info>"),
            "d-info",
        )
        .await;
    for want in [
        "<domain:hostObj>ns1.day.test</domain:hostObj>",
        "<domain:host>ns1.day.test</domain:host>",
        r#"<domain:status s="clientUpdateProhibited"/>"#,
        r#"<domain:contact type="tech">alice-1</domain:contact>"#,
        "<domain:pw>day-secret-1</domain:pw>",
        r#"<rgp:rgpStatus s="addPeriod"/>"#,
    ] {
        assert!(info.contains(want), "{want} in {info}");
    }
    // The status it set prohibits updates until removed.
    r1.expect(
        2304,
        &format!(
            "<update><domain:update {D}><domain:name>day.test</domain:name><domain:chg>\
             <domain:registrant>owner</domain:registrant></domain:chg></domain:update></update>"
        ),
        "d-update-prohibited",
    )
    .await;
    r1.expect(
        1000,
        &format!(
            "<update><domain:update {D}><domain:name>day.test</domain:name><domain:rem>\
             <domain:status s=\"clientUpdateProhibited\"/></domain:rem></domain:update></update>"
        ),
        "d-update-rem",
    )
    .await;
    // A host that domains delegate to is renamed with its delegations when
    // it is in-bailiwick; an external one in use is not (2305).
    r1.expect(
        1000,
        &format!(
            "<update><host:update {H}><host:name>ns1.day.test</host:name>\
             <host:chg><host:name>ns5.day.test</host:name></host:chg></host:update></update>"
        ),
        "h-rename-delegated",
    )
    .await;
    let info = r1
        .expect(
            1000,
            &format!(
                "<info><domain:info {D}><domain:name>day.test</domain:name></domain:info></info>"
            ),
            "d-info-renamed-ns",
        )
        .await;
    assert!(
        info.contains("<domain:hostObj>ns5.day.test</domain:hostObj>")
            && !info.contains("ns1.day.test"),
        "{info}"
    );
    let refused = r1
        .expect(
            2305,
            &format!(
                "<update><host:update {H}><host:name>ns1.example.net</host:name>\
                 <host:chg><host:name>ns7.example.net</host:name></host:chg></host:update></update>"
            ),
            "h-rename-external-in-use",
        )
        .await;
    assert!(refused.contains("external host"), "{refused}");

    // DNSSEC delegation data (RFC 5910): DS records added, shown, refused
    // when the registry does not accept them, removed.
    const SEC: &str = r#"xmlns:secDNS="urn:ietf:params:xml:ns:secDNS-1.1""#;
    let ds = |tag: u32, digest_type: u32, digest: &str| {
        format!(
            "<secDNS:dsData><secDNS:keyTag>{tag}</secDNS:keyTag><secDNS:alg>13</secDNS:alg>\
             <secDNS:digestType>{digest_type}</secDNS:digestType><secDNS:digest>{digest}</secDNS:digest>\
             </secDNS:dsData>"
        )
    };
    let ds_update = |change: &str| {
        format!(
            "<update><domain:update {D}><domain:name>day.test</domain:name></domain:update></update>\
             <extension><secDNS:update {SEC}>{change}</secDNS:update></extension>"
        )
    };
    let sha256 = "ab".repeat(32);
    r1.expect(
        1000,
        &ds_update(&format!(
            "<secDNS:add>{}</secDNS:add>",
            ds(12345, 2, &sha256)
        )),
        "ds-add",
    )
    .await;
    let signed = r1
        .expect(
            1000,
            &format!(
                "<info><domain:info {D}><domain:name>day.test</domain:name></domain:info></info>"
            ),
            "ds-info",
        )
        .await;
    assert!(
        signed.contains(&format!(
            "<secDNS:infData xmlns:secDNS=\"urn:ietf:params:xml:ns:secDNS-1.1\"><secDNS:dsData>\
             <secDNS:keyTag>12345</secDNS:keyTag><secDNS:alg>13</secDNS:alg><secDNS:digestType>2\
             </secDNS:digestType><secDNS:digest>{}</secDNS:digest></secDNS:dsData></secDNS:infData>",
            sha256.to_uppercase()
        )),
        "{signed}"
    );
    // SHA-1 digests are refused (RFC 8624), and so is a digest of the
    // wrong length; nothing changes.
    r1.expect(
        2306,
        &ds_update(&format!(
            "<secDNS:add>{}</secDNS:add>",
            ds(1, 1, &"ab".repeat(20))
        )),
        "ds-add-sha1",
    )
    .await;
    r1.expect(
        2005,
        &ds_update(&format!("<secDNS:add>{}</secDNS:add>", ds(1, 2, "abcd"))),
        "ds-add-short",
    )
    .await;
    r1.expect(
        1000,
        &ds_update("<secDNS:rem><secDNS:all>true</secDNS:all></secDNS:rem>"),
        "ds-rem-all",
    )
    .await;
    let unsigned = r1
        .expect(
            1000,
            &format!(
                "<info><domain:info {D}><domain:name>day.test</domain:name></domain:info></info>"
            ),
            "ds-info-after",
        )
        .await;
    assert!(!unsigned.contains("secDNS"), "{unsigned}");
    let expiry = between(&info, "<domain:exDate>", "</domain:exDate>")[..10].to_string();
    let renewed = r1
        .expect(
            1000,
            &format!(
                "<renew><domain:renew {D}><domain:name>day.test</domain:name>\
                 <domain:curExpDate>{expiry}</domain:curExpDate><domain:period unit=\"y\">1</domain:period>\
                 </domain:renew></renew>"
            ),
            "d-renew",
        )
        .await;
    assert!(renewed.contains("<domain:renData"), "{renewed}");
    // A renew naming a date that is not the expiry any more: refused.
    r1.expect(
        2306,
        &format!(
            "<renew><domain:renew {D}><domain:name>day.test</domain:name>\
             <domain:curExpDate>{expiry}</domain:curExpDate></domain:renew></renew>"
        ),
        "d-renew-stale",
    )
    .await;

    // Deleted inside the add grace period: gone at once (1000).
    for (name, cl) in [
        ("gone.test", "d-create-gone"),
        ("back.test", "d-create-back"),
    ] {
        r1.expect(
            1000,
            &format!(
                "<create><domain:create {D}><domain:name>{name}</domain:name>\
                 <domain:registrant>alice-1</domain:registrant></domain:create></create>"
            ),
            cl,
        )
        .await;
    }
    r1.expect(
        1000,
        &format!("<delete><domain:delete {D}><domain:name>gone.test</domain:name></domain:delete></delete>"),
        "d-delete-gone",
    )
    .await;

    // Two months pass: no grace period and no transfer lock any more.
    let mut now_ms = 0;
    for addr in cluster.endpoints() {
        now_ms = staff
            .advance_test_clock_at(&addr, 61 * 86_400_000)
            .await
            .expect("the test clock moves")
            .now_ms;
    }
    let then = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)
        .expect("a time")
        .format("%Y-%m-%dT%H:%M:%S.0Z")
        .to_string();
    // The session expired with the time (24 h): the command says so
    // (2002), and the connection may log in again.
    let expired = r1
        .expect(
            2002,
            &format!(
                "<info><domain:info {D}><domain:name>day.test</domain:name></domain:info></info>"
            ),
            "d-info-expired",
        )
        .await;
    assert!(expired.contains("log in again"), "{expired}");
    r1.login("reg1").await;
    let mut r2 = logged_in(&gw, "reg2", out.path(), &n).await;

    // Deleted later: pending deletion (1001), then restored.
    r1.expect(
        1001,
        &format!("<delete><domain:delete {D}><domain:name>back.test</domain:name></domain:delete></delete>"),
        "d-delete-back",
    )
    .await;
    let restore = |op: &str, report: &str, fee: &str| {
        format!(
            "<update><domain:update {D}><domain:name>back.test</domain:name><domain:chg/>\
             </domain:update></update><extension><rgp:update {RGP}><rgp:restore op=\"{op}\">{report}\
             </rgp:restore></rgp:update>{fee}</extension>"
        )
    };
    // With the fee the registrar agrees to: too little is refused (2004).
    let agree = |amount: &str| {
        format!("<fee:update {FEE}><fee:currency>USD</fee:currency><fee:fee>{amount}</fee:fee></fee:update>")
    };
    r1.expect(
        2004,
        &restore("request", "", &agree("0.00")),
        "rgp-request-low",
    )
    .await;
    let requested = r1
        .expect(
            1000,
            &restore("request", "", &agree("1000.00")),
            "rgp-request",
        )
        .await;
    assert!(requested.contains("<fee:upData"), "{requested}");
    assert!(
        requested.contains(r#"<rgp:rgpStatus s="pendingRestore"/>"#),
        "{requested}"
    );
    let report = format!(
        "<rgp:report><rgp:preData>Pre-delete registration data</rgp:preData>\
         <rgp:postData>Post-restore registration data</rgp:postData>\
         <rgp:delTime>{then}</rgp:delTime><rgp:resTime>{then}</rgp:resTime>\
         <rgp:resReason>Registrant error.</rgp:resReason>\
         <rgp:statement>This registrar has not restored the domain in order to assume the rights \
         to use or sell it.</rgp:statement>\
         <rgp:statement>The information in this report is true to the best of this registrar's \
         knowledge.</rgp:statement></rgp:report>"
    );
    // A deletion time in the future is refused, naming the element and
    // the times in EPP's form.
    let future = report.replacen(
        &format!("<rgp:delTime>{then}</rgp:delTime>"),
        "<rgp:delTime>2099-01-01T00:00:00Z</rgp:delTime>",
        1,
    );
    let refused = r1
        .expect(2005, &restore("report", &future, ""), "rgp-report-future")
        .await;
    assert!(
        refused.contains(
            "<rgp:delTime xmlns:rgp=\"urn:ietf:params:xml:ns:rgp-1.0\">2099-01-01T00:00:00.000Z</rgp:delTime>"
        ) && refused.contains("the deletion time 2099-01-01T00:00:00.000Z is not between"),
        "{refused}"
    );
    r1.expect(1000, &restore("report", &report, ""), "rgp-report")
        .await;
    let back = r1
        .expect(
            1000,
            &format!(
                "<info><domain:info {D}><domain:name>back.test</domain:name></domain:info></info>"
            ),
            "d-info-back",
        )
        .await;
    assert!(
        !back.contains("pendingDelete") && !back.contains("pendingRestore"),
        "{back}"
    );

    // A transfer: reg2 asks with the auth info, reg1 hears of it by poll
    // and approves, reg2 hears of that, and the domain is reg2's.
    r2.expect(
        2202,
        &format!(
            "<transfer op=\"request\"><domain:transfer {D}><domain:name>day.test</domain:name>\
             <domain:authInfo><domain:pw>wrong-secret</domain:pw></domain:authInfo></domain:transfer></transfer>"
        ),
        "t-request-wrong",
    )
    .await;
    let pending = r2
        .expect(
            1001,
            &format!(
                "<transfer op=\"request\"><domain:transfer {D}><domain:name>day.test</domain:name>\
                 <domain:period unit=\"y\">1</domain:period><domain:authInfo><domain:pw>day-secret-1</domain:pw>\
                 </domain:authInfo></domain:transfer></transfer><extension><fee:transfer {FEE}>\
                 <fee:fee>0.01</fee:fee></fee:transfer></extension>"
            ),
            "t-request",
        )
        .await;
    assert!(
        pending.contains("<fee:trnData xmlns:fee=\"urn:ietf:params:xml:ns:epp:fee-1.0\"><fee:currency>USD</fee:currency><fee:fee>0.01</fee:fee>"),
        "{pending}"
    );
    assert!(
        pending.contains("<domain:trStatus>pending</domain:trStatus>"),
        "{pending}"
    );
    assert!(
        pending.contains("<domain:reID>reg2</domain:reID>"),
        "{pending}"
    );
    let query = format!(
        "<transfer op=\"query\"><domain:transfer {D}><domain:name>day.test</domain:name>\
         </domain:transfer></transfer>"
    );
    let queried = r1.expect(1000, &query, "t-query").await;
    assert!(
        queried.contains("<domain:trStatus>pending</domain:trStatus>"),
        "{queried}"
    );
    let polled = r1.expect(1301, r#"<poll op="req"/>"#, "p-req-1").await;
    assert!(
        polled.contains("<domain:name>day.test</domain:name>"),
        "{polled}"
    );
    let id = between(&polled, " id=\"", "\"").to_string();
    r1.expect(
        1000,
        &format!(r#"<poll op="ack" msgID="{id}"/>"#),
        "p-ack-1",
    )
    .await;
    r1.expect(
        1000,
        &format!(
            "<transfer op=\"approve\"><domain:transfer {D}><domain:name>day.test</domain:name>\
             </domain:transfer></transfer>"
        ),
        "t-approve",
    )
    .await;
    let mut heard = false;
    for i in 0..10 {
        let polled = r2
            .epp
            .send(&command(r#"<poll op="req"/>"#, &format!("p2-{i}")))
            .await;
        if code(&polled) == 1300 {
            break;
        }
        n.set(n.get() + 1);
        assert_valid(&polled, out.path(), n.get());
        heard |= polled.contains("<domain:trStatus>clientApproved</domain:trStatus>");
        let id = between(&polled, " id=\"", "\"").to_string();
        r2.expect(
            1000,
            &format!(r#"<poll op="ack" msgID="{id}"/>"#),
            &format!("p2-ack-{i}"),
        )
        .await;
    }
    assert!(heard, "reg2 heard of the approval");
    let theirs = r2
        .expect(
            1000,
            &format!(
                "<info><domain:info {D}><domain:name>day.test</domain:name></domain:info></info>"
            ),
            "d-info-reg2",
        )
        .await;
    assert!(
        theirs.contains("<domain:clID>reg2</domain:clID>"),
        "{theirs}"
    );
    assert!(theirs.contains("<domain:trDate>"), "{theirs}");
    // The registry gave the domain new auth info when the transfer
    // completed: the losing registrar's copy is spent.
    let pw = between(&theirs, "<domain:pw>", "</domain:pw>");
    assert!(pw.len() >= 16 && pw != "day-secret-1", "{theirs}");

    // Contact transfers (RFC 5733): reg2 asks for two of reg1's contacts;
    // reg1 hears of both, cannot change a pending one, approves one and
    // rejects the other; reg2 hears of both outcomes.
    r1.expect(
        1000,
        &format!(
            "<create><contact:create {C}><contact:id>bob-1</contact:id>\
             <contact:postalInfo type=\"int\"><contact:name>Bob Jones</contact:name>\
             <contact:addr><contact:city>Wellington</contact:city><contact:cc>NZ</contact:cc>\
             </contact:addr></contact:postalInfo><contact:email>bob@example.nz</contact:email>\
             <contact:authInfo><contact:pw>bob-pw-1</contact:pw></contact:authInfo>\
             </contact:create></create>"
        ),
        "c-create-bob",
    )
    .await;
    let contact_transfer = |op: &str, id: &str, pw: &str| {
        let auth = if pw.is_empty() {
            String::new()
        } else {
            format!("<contact:authInfo><contact:pw>{pw}</contact:pw></contact:authInfo>")
        };
        format!(
            "<transfer op=\"{op}\"><contact:transfer {C}><contact:id>{id}</contact:id>{auth}\
             </contact:transfer></transfer>"
        )
    };
    r2.expect(
        2202,
        &contact_transfer("request", "bob-1", "not-bobs"),
        "ct-wrong",
    )
    .await;
    r1.expect(
        2106,
        &contact_transfer("request", "bob-1", "bob-pw-1"),
        "ct-own",
    )
    .await;
    for (id, pw) in [("bob-1", "bob-pw-1"), ("alice-1", "alice-pw-1")] {
        let pending = r2
            .expect(
                1001,
                &contact_transfer("request", id, pw),
                &format!("ct-{id}"),
            )
            .await;
        assert!(
            pending.contains(&format!(
                "<contact:trnData xmlns:contact=\"urn:ietf:params:xml:ns:contact-1.0\">\
                 <contact:id>{id}</contact:id><contact:trStatus>pending</contact:trStatus>\
                 <contact:reID>reg2</contact:reID>"
            )),
            "{pending}"
        );
    }
    let queried = r1
        .expect(1000, &contact_transfer("query", "bob-1", ""), "ct-query")
        .await;
    assert!(
        queried.contains("<contact:acID>reg1</contact:acID>"),
        "{queried}"
    );
    let info = r1
        .expect(
            1000,
            &format!(
                "<info><contact:info {C}><contact:id>bob-1</contact:id></contact:info></info>"
            ),
            "c-info-pending",
        )
        .await;
    assert!(
        info.contains(r#"<contact:status s="pendingTransfer"/>"#),
        "{info}"
    );
    r1.expect(
        2304,
        &format!(
            "<update><contact:update {C}><contact:id>bob-1</contact:id><contact:chg>\
             <contact:email>bob@example.org</contact:email></contact:chg></contact:update></update>"
        ),
        "c-update-pending",
    )
    .await;
    let heard = r1.drain_poll("cp1").await;
    assert_eq!(heard.len(), 2, "{heard:?}");
    for id in ["bob-1", "alice-1"] {
        assert!(
            heard
                .iter()
                .any(|m| m.contains(&format!("<contact:id>{id}</contact:id>"))
                    && m.contains("<contact:trStatus>pending</contact:trStatus>")),
            "{heard:?}"
        );
    }
    r2.expect(
        2201,
        &contact_transfer("approve", "bob-1", ""),
        "ct-approve-wrong",
    )
    .await;
    r1.expect(
        1000,
        &contact_transfer("approve", "bob-1", ""),
        "ct-approve",
    )
    .await;
    let rejected = r1
        .expect(
            1000,
            &contact_transfer("reject", "alice-1", ""),
            "ct-reject",
        )
        .await;
    assert!(
        rejected.contains("<contact:trStatus>clientRejected</contact:trStatus>"),
        "{rejected}"
    );
    let heard = r2.drain_poll("cp2").await;
    for status in ["clientApproved", "clientRejected"] {
        assert!(
            heard
                .iter()
                .any(|m| m.contains(&format!("<contact:trStatus>{status}</contact:trStatus>"))),
            "{status}: {heard:?}"
        );
    }
    let bob = r2
        .expect(
            1000,
            &format!(
                "<info><contact:info {C}><contact:id>bob-1</contact:id></contact:info></info>"
            ),
            "c-info-bob-reg2",
        )
        .await;
    assert!(bob.contains("<contact:clID>reg2</contact:clID>"), "{bob}");
    assert!(bob.contains("<contact:trDate>"), "{bob}");
    let pw = between(&bob, "<contact:pw>", "</contact:pw>");
    assert!(pw.len() >= 16 && pw != "bob-pw-1", "{bob}");

    // Wrong objects and parameters: their codes, nothing changed.
    for (i, (want, body)) in [
        (
            2303,
            format!("<info><domain:info {D}><domain:name>nowhere.test</domain:name></domain:info></info>"),
        ),
        (
            2201,
            format!("<delete><domain:delete {D}><domain:name>day.test</domain:name></domain:delete></delete>"),
        ),
        (
            2005,
            format!(
                "<create><host:create {H}><host:name>ns2.day.test</host:name>\
                 <host:addr ip=\"v4\">2001:db8::2</host:addr></host:create></create>"
            ),
        ),
        (
            2004,
            format!(
                "<create><domain:create {D}><domain:name>long.test</domain:name>\
                 <domain:period unit=\"y\">100</domain:period><domain:registrant>alice-1</domain:registrant>\
                 </domain:create></create>"
            ),
        ),
        (
            2102,
            format!(
                "<create><domain:create {D}><domain:name>attr.test</domain:name><domain:ns>\
                 <domain:hostAttr><domain:hostName>ns.attr.test</domain:hostName></domain:hostAttr>\
                 </domain:ns><domain:registrant>alice-1</domain:registrant></domain:create></create>"
            ),
        ),
        (
            2001,
            format!("<info><host:info {H} {D}><domain:name>day.test</domain:name></host:info></info>"),
        ),
        (
            2305,
            format!("<delete><contact:delete {C}><contact:id>alice-1</contact:id></contact:delete></delete>"),
        ),
        (
            2305,
            format!(
                "<update><host:update {H}><host:name>ns1.example.net</host:name>\
                 <host:chg><host:name>ns1.example.org</host:name></host:chg></host:update></update>"
            ),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        r1.expect(want, &body, &format!("bad-{want}-{i}")).await;
    }
    let info = r1
        .expect(
            1000,
            &format!(
                "<check><domain:check {D}><domain:name>long.test</domain:name>\
                      <domain:name>attr.test</domain:name></domain:check></check>"
            ),
            "d-check-after",
        )
        .await;
    assert_eq!(
        info.matches("avail=\"1\"").count(),
        2,
        "nothing created: {info}"
    );

    // The audit trail holds one create of day.test, however often it was
    // sent.
    let audit = staff
        .query_audit(kauri_client::proto::AuditQueryRequest {
            object_kind: "domain".into(),
            object: "day.test".into(),
            ..Default::default()
        })
        .await
        .expect("the audit trail");
    let creates = audit
        .records
        .iter()
        .filter(|r| r.command.contains("CreateDomain"))
        .count();
    assert_eq!(creates, 1, "{:?}", audit.records);

    // What an SRE sees: the commands by name and result, their latency,
    // the sessions, a ready gateway; an exposition promtool accepts.
    let (status, body) = http_get(&metrics, "/metrics");
    assert_eq!(status, 200, "{body}");
    for want in [
        r#"kauri_epp_commands_total{command="domain:create",result="1000"} 5"#,
        r#"kauri_epp_commands_total{command="domain:create",result="2004"} 1"#,
        r#"kauri_epp_commands_total{command="domain:create",result="2002"} 1"#,
        r#"kauri_epp_commands_total{command="domain:transfer",result="1001"} 1"#,
        r#"kauri_epp_commands_total{command="poll:req",result="1301"}"#,
        "kauri_epp_sessions 2",
        "kauri_epp_command_duration_seconds_bucket{command=\"domain:info\"",
        "kauri_gateway_cluster_reachable 1",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
    assert_promtool_accepts(&body);
    assert_eq!(http_get(&metrics, "/readyz").0, 200);
    assert_eq!(http_get(&metrics, "/healthz").0, 200);

    r1.expect(1500, "<logout/>", "logout-r1").await;
    r2.expect(1500, "<logout/>", "logout-r2").await;
}

fn login_with(client: &str, pw: &str, new_pw: Option<&str>, sec: &str) -> String {
    let new_pw = new_pw
        .map(|p| format!("<newPW>{p}</newPW>"))
        .unwrap_or_default();
    let ext = if sec.is_empty() {
        String::new()
    } else {
        format!(
            "<extension><loginSec:loginSec xmlns:loginSec=\"urn:ietf:params:xml:ns:epp:loginSec-1.0\">\
             <loginSec:userAgent><loginSec:app>kauri-tests</loginSec:app></loginSec:userAgent>{sec}\
             </loginSec:loginSec></extension>"
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><login><clID>{client}</clID><pw>{pw}</pw>{new_pw}<options><version>1.0</version><lang>en</lang></options><svcs><objURI>urn:ietf:params:xml:ns:domain-1.0</objURI></svcs></login>{ext}<clTRID>login-pw</clTRID></command></epp>"#
    )
}

/// `<newPW>` at login changes the registrar's password in the cluster
/// (the audit trail says so, the log never holds either password), and
/// RFC 8807's loginSec carries passwords longer than `<pw>`'s 16
/// characters, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_change_at_login_and_long_ones_pass_through_login_sec() {
    epp_tools();
    let cluster = TestCluster::start(node_bin(), 1, &[]);
    let (staff, _) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let gw = start_gateway(&cluster, &["--max-failed-logins", "10"]);
    let out = tempfile::tempdir().expect("a temp dir");
    let long = "a passphrase of thirty-two chars";
    let try_login = |xml: String| {
        let gw = &gw;
        let dir = out.path().to_path_buf();
        async move {
            let (mut epp, greeting) = Epp::connect(gw).await;
            assert!(
                greeting.contains("<extURI>urn:ietf:params:xml:ns:epp:loginSec-1.0</extURI>"),
                "{greeting}"
            );
            let answer = epp.send(&xml).await;
            assert_valid(&answer, &dir, code(&answer) as usize);
            code(&answer)
        }
    };
    // A new password that does not fit <newPW>: refused, nothing changed.
    assert_eq!(
        try_login(login_with(
            "reg1",
            "correct horse",
            Some("seventeen-chars-x"),
            ""
        ))
        .await,
        2005
    );
    assert_eq!(
        try_login(login_with("reg1", "correct horse", Some("new-horse-1"), "")).await,
        1000
    );
    assert_eq!(
        try_login(login_with("reg1", "correct horse", None, "")).await,
        2200
    );
    assert_eq!(
        try_login(login_with("reg1", "new-horse-1", None, "")).await,
        1000
    );
    // To a long one through loginSec, and in with it.
    let to_long = login_with(
        "reg1",
        "new-horse-1",
        Some("[LOGIN-SECURITY]"),
        &format!("<loginSec:newPW>{long}</loginSec:newPW>"),
    );
    assert_eq!(try_login(to_long).await, 1000);
    assert_eq!(
        try_login(login_with("reg1", "new-horse-1", None, "")).await,
        2200
    );
    let with_long = login_with(
        "reg1",
        "[LOGIN-SECURITY]",
        None,
        &format!("<loginSec:pw>{long}</loginSec:pw>"),
    );
    assert_eq!(try_login(with_long).await, 1000);
    // [LOGIN-SECURITY] without the extension's password: 2003.
    assert_eq!(
        try_login(login_with("reg1", "[LOGIN-SECURITY]", None, "")).await,
        2003
    );

    let audit = staff
        .query_audit(kauri_client::proto::AuditQueryRequest {
            object_kind: "registrar".into(),
            object: "reg1".into(),
            ..Default::default()
        })
        .await
        .expect("the audit trail");
    let changed = audit
        .records
        .iter()
        .filter(|r| r.changes.iter().any(|c| c == "password changed at login"))
        .count();
    assert_eq!(changed, 2, "{:?}", audit.records);
    let log = std::fs::read_to_string(gw._dir.path().join("gateway.log")).expect("the log");
    for secret in ["correct horse", "new-horse-1", long, "seventeen-chars-x"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

/// Registrars bound to client certificates (--registrar-certs): a bound
/// registrar logs in only with its certificate, whatever its password;
/// one not bound needs none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_bound_to_a_certificate_logs_in_only_with_it() {
    epp_tools();
    let cluster = TestCluster::start(node_bin(), 1, &[]);
    let (staff, _) = kauri_chaos_tests::fixtures::staff_and_reg1(&cluster).await;
    let reg2 = cluster.registrar_client("reg2");
    kauri_chaos_tests::fixtures::add_registrar(&staff, &reg2, "reg2", "USD", 1_000).await;
    let (certs, ca) = cluster.pki().expect("a TLS cluster");
    let dir = tempfile::tempdir().expect("a temp dir");
    let issue = |stem: &str| {
        ca.write(
            dir.path(),
            stem,
            &certs.ca,
            &kauri_client::tls::Principal::new(
                &certs.cluster,
                kauri_client::tls::Role::Registrar,
                stem,
            )
            .unwrap(),
            &[],
        )
        .expect("a client certificate")
    };
    let (mine, other) = (issue("reg1"), issue("someone"));
    let der = kauri_client::tls::load_certs("reg1", &mine.cert).unwrap();
    let bindings = dir.path().join("registrar-certs");
    std::fs::write(
        &bindings,
        format!(
            "# reg1 logs in with its certificate\nreg1 {}\n",
            kauri_gateway::tls::fingerprint(&der[0])
        ),
    )
    .unwrap();
    let ca_path = certs.ca.display().to_string();
    let bindings = bindings.display().to_string();
    let gw = start_gateway(
        &cluster,
        &[
            "--tls-client-ca",
            &ca_path,
            "--registrar-certs",
            &bindings,
            "--max-failed-logins",
            "5",
        ],
    );
    let out = tempfile::tempdir().expect("a temp dir");
    let login_code = |identity: Option<&kauri_client::tls::TlsFiles>, who: &'static str| {
        let gw = &gw;
        let dir = out.path().to_path_buf();
        let identity = identity.cloned();
        async move {
            let (mut epp, _) = Epp::connect_as(gw, identity.as_ref()).await;
            let answer = epp.send(&login(who, "correct horse")).await;
            assert_valid(&answer, &dir, 0);
            (code(&answer), answer)
        }
    };
    let (c, answer) = login_code(None, "reg1").await;
    assert_eq!(c, 2200, "{answer}");
    assert!(answer.contains("client certificate"), "{answer}");
    assert_eq!(login_code(Some(&other), "reg1").await.0, 2200);
    assert_eq!(login_code(Some(&mine), "reg1").await.0, 1000);
    assert_eq!(login_code(None, "reg2").await.0, 1000, "reg2 is not bound");
}
