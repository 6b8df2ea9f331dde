//! Registry objects the tests and the workload create, stated once.

use kauri_client::proto::{ContactFields, PostalAddress, PostalInfo, TldPolicy};

/// A TLD policy: 1-10 year periods, `price` minor units of `currency` to
/// create or renew a year, labels of 1-63 characters, IDNs allowed.
pub fn tld_policy(currency: &str, price: i64) -> TldPolicy {
    TldPolicy {
        min_period_years: 1,
        max_period_years: 10,
        create_price_minor_units: price,
        renew_price_minor_units: price,
        currency: currency.into(),
        min_label_length: 1,
        max_label_length: 63,
        allow_idn: true,
        idn: None,
    }
}

/// The fields of a contact in Auckland named `name`, reachable at `email`.
pub fn contact_fields(name: &str, email: &str) -> ContactFields {
    ContactFields {
        postal_info: vec![PostalInfo {
            r#type: "int".into(),
            name: name.into(),
            org: String::new(),
            address: Some(PostalAddress {
                street: vec!["1 Queen St".into()],
                city: "Auckland".into(),
                state_province: String::new(),
                postal_code: "1010".into(),
                country_code: "NZ".into(),
            }),
        }],
        voice: "+64.93001234".into(),
        fax: String::new(),
        email: email.into(),
        disclose_nothing: false,
    }
}

/// Creates TLD `tld` with `policy`, registrar `reg1` (currency of the
/// policy) with `deposit` minor units, and its contact `owner`: the
/// registry most cluster tests start from. `staff` acts as the staff
/// member, `reg1` as the registrar.
pub async fn registry_with_reg1(
    staff: &kauri_client::KauriClient,
    reg1: &kauri_client::KauriClient,
    tld: &str,
    policy: TldPolicy,
    deposit: i64,
) {
    use kauri_client::devpki::DEV_STAFF;
    use kauri_client::meta;
    use kauri_client::proto::CreateTldRequest;
    let currency = policy.currency.clone();
    staff
        .create_tld(CreateTldRequest {
            meta: Some(meta(DEV_STAFF)),
            name: tld.into(),
            policy: Some(policy),
        })
        .await
        .expect("create the TLD");
    add_registrar(staff, reg1, "reg1", &currency, deposit).await;
}

/// The contact [`add_registrar`] makes for registrar `id` (contact ids are
/// registry-wide): `owner` for reg1, `owner-{id}` for the others.
pub fn owner_of(id: &str) -> String {
    if id == "reg1" {
        "owner".into()
    } else {
        format!("owner-{id}")
    }
}

/// Creates registrar `id` (password "correct horse") in `currency`, funds
/// it with `deposit` and gives it the contact [`owner_of`] `id`, through
/// `registrar` (a client acting as `id`).
pub async fn add_registrar(
    staff: &kauri_client::KauriClient,
    registrar: &kauri_client::KauriClient,
    id: &str,
    currency: &str,
    deposit: i64,
) {
    use kauri_client::devpki::DEV_STAFF;
    use kauri_client::meta;
    use kauri_client::proto::{CreateContactRequest, CreateRegistrarRequest, DepositFundsRequest};
    staff
        .create_registrar(CreateRegistrarRequest {
            meta: Some(meta(DEV_STAFF)),
            id: id.into(),
            name: format!("Registrar {id}"),
            password: "correct horse".into(),
            currency: currency.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("create registrar {id}: {e}"));
    staff
        .deposit_funds(DepositFundsRequest {
            meta: Some(meta(DEV_STAFF)),
            registrar: id.into(),
            amount_minor_units: deposit,
            reference: format!("wire for {id}"),
        })
        .await
        .unwrap_or_else(|e| panic!("deposit for {id}: {e}"));
    registrar
        .create_contact(CreateContactRequest {
            meta: Some(meta(id)),
            id: owner_of(id),
            fields: Some(contact_fields("Owner Person", "owner@example.nz")),
            auth_info: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("create contact owner of {id}: {e}"));
}

/// What [`write_steadily`] did.
#[derive(Debug, Default)]
pub struct Writes {
    /// Names created, in order.
    pub created: Vec<String>,
    /// The requests that created them and the server transaction ids
    /// they were answered with, in the same order.
    pub acknowledged: Vec<(kauri_client::proto::CreateDomainRequest, String)>,
    /// Writes that failed after the client's retries, with the error.
    pub failed: Vec<String>,
    /// When each write was sent and how long it took.
    pub took: Vec<(std::time::Instant, std::time::Duration)>,
}

/// Creates domains `{prefix}-N.{tld}` for registrar reg1 (registrant
/// `owner`, as [`registry_with_reg1`] sets up) one after another until
/// `stop` is set, at most `max` of them and for at most `limit`: a steady
/// write load for tests that change the cluster underneath it.
pub async fn write_steadily(
    reg1: kauri_client::KauriClient,
    tld: &str,
    prefix: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    max: usize,
    limit: std::time::Duration,
) -> Writes {
    write_steadily_as(reg1, "reg1", tld, prefix, stop, max, limit).await
}

/// [`write_steadily`] as registrar `registrar` (set up with
/// [`add_registrar`]) through `client`.
pub async fn write_steadily_as(
    client: kauri_client::KauriClient,
    registrar: &str,
    tld: &str,
    prefix: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    max: usize,
    limit: std::time::Duration,
) -> Writes {
    use kauri_client::proto::CreateDomainRequest;
    let mut writes = Writes::default();
    let started = std::time::Instant::now();
    for i in 0..max {
        if stop.load(std::sync::atomic::Ordering::Relaxed) || started.elapsed() > limit {
            break;
        }
        let name = format!("{prefix}-{i}.{tld}");
        let request = CreateDomainRequest {
            meta: Some(kauri_client::meta(registrar)),
            name: name.clone(),
            period_years: 1,
            registrant: owner_of(registrar),
            ..Default::default()
        };
        let sent = std::time::Instant::now();
        match client.create_domain(request.clone()).await {
            Ok(answer) => {
                writes.created.push(name);
                let sv_trid = answer.tx.map(|t| t.sv_trid).unwrap_or_default();
                writes.acknowledged.push((request, sv_trid));
            }
            Err(e) => writes.failed.push(format!("{name}: {e}")),
        }
        writes.took.push((sent, sent.elapsed()));
    }
    writes
}

/// Staff and registrar reg1 clients of `cluster`, once its leader is
/// known, over a registry with TLD "test" (creates cost 1 minor unit),
/// reg1 funded with 100,000,000 and its contact `owner`: where the tests
/// that change a cluster under a steady write load start.
pub async fn staff_and_reg1(
    cluster: &crate::TestCluster,
) -> (kauri_client::KauriClient, kauri_client::KauriClient) {
    cluster
        .wait_for_leader(std::time::Duration::from_secs(30))
        .await;
    let staff = cluster.client();
    let reg1 = cluster.registrar_client("reg1");
    registry_with_reg1(&staff, &reg1, "test", tld_policy("USD", 1), 100_000_000).await;
    (staff, reg1)
}

/// Starts [`write_steadily`] as reg1 in a task: the flag that stops it and
/// the task, for [`stop_and_check`].
pub fn write_in_background(
    reg1: &kauri_client::KauriClient,
    tld: &str,
    prefix: &str,
    max: usize,
    limit: std::time::Duration,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<Writes>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (reg1, tld, prefix, stop) = (
            reg1.clone(),
            tld.to_string(),
            prefix.to_string(),
            stop.clone(),
        );
        async move { write_steadily(reg1, &tld, &prefix, stop, max, limit).await }
    });
    (stop, writer)
}

/// Ends a [`write_steadily`] load: stops it, waits for it, and panics
/// unless no write failed and every acknowledged one is there (read as
/// reg1). What the tests that change a cluster under writes end with.
pub async fn stop_and_check(
    stop: &std::sync::atomic::AtomicBool,
    writer: tokio::task::JoinHandle<Writes>,
    reg1: &kauri_client::KauriClient,
) -> Writes {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.expect("the writer task");
    assert!(
        writes.failed.is_empty(),
        "writes failed: {:?}",
        writes.failed
    );
    assert_all_present(reg1, &writes.created).await;
    writes
}

/// Panics unless every domain in `names` is there (linearizable reads as
/// reg1): nothing acknowledged was lost.
pub async fn assert_all_present(reg1: &kauri_client::KauriClient, names: &[String]) {
    use kauri_client::proto::InfoRequest;
    for name in names {
        reg1.info_domain(InfoRequest {
            registrar: "reg1".into(),
            name: name.clone(),
            read: kauri_client::linearizable(),
        })
        .await
        .unwrap_or_else(|e| panic!("{name} was acknowledged but is gone: {e}"));
    }
}
