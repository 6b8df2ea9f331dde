//! Scenarios of server statuses on hosts (RFC 5732) and contacts
//! (RFC 5733): staff set and clear them with a reason, the sponsor's
//! updates and deletes are refused while they stand, the sponsor is told,
//! the audit trail records why, and only the statuses each RFC defines are
//! accepted.

use super::lifecycle::WORLD_EXPIRY;
use super::*;

fn host_of(outcome: Outcome) -> v1::Host {
    match outcome {
        Outcome::Host(h) => h.host.expect("host"),
        other => panic!("not a host response: {other:?}"),
    }
}

fn contact_of(outcome: Outcome) -> v1::Contact {
    match outcome {
        Outcome::Contact(c) => c.contact.expect("contact"),
        other => panic!("not a contact response: {other:?}"),
    }
}

/// Asserts that `actor` running `kind` is refused with STATUS_PROHIBITS
/// naming `status`, and that registry data is untouched.
fn assert_prohibited(r: &mut Registry, actor: &str, kind: Kind, status: &str) {
    let before = data_digest(&r.state);
    let e = r.err(actor, kind);
    assert_eq!(e.reason(), Reason::StatusProhibits, "{}", e.message);
    assert!(e.message.contains(status), "{}", e.message);
    assert_eq!(data_digest(&r.state), before, "a refusal changed data");
}

const HOST_LOCK: [&str; 2] = ["serverDeleteProhibited", "serverUpdateProhibited"];

#[test]
fn a_host_under_server_prohibitions_refuses_its_sponsor_until_staff_lift_them() {
    let mut r = world();
    let host = host_of(r.staff(host_server_status("NS1.Example.NZ", &HOST_LOCK, &[])));
    assert_eq!(host.statuses, HOST_LOCK, "server statuses replace ok");
    assert_eq!(host.updated_by, "staff");
    assert_eq!(
        info_host(&r.state, "ns1.example.nz").unwrap().statuses,
        HOST_LOCK
    );

    // The sponsor is told, with the reason.
    let polls = r.polls("rar-a");
    let told = polls.last().expect("a poll message");
    assert_eq!(
        (told.kind.as_str(), told.object.as_str()),
        ("server_status_changed", "ns1.example.nz")
    );
    assert_eq!(
        told.message,
        "server statuses of host ns1.example.nz changed (added: serverDeleteProhibited, \
         serverUpdateProhibited; removed: -): court order 42"
    );
    // The audit trail says who, what and why.
    let audit = audit_of(&r, "host", "ns1.example.nz");
    let last = &audit[0];
    assert_eq!(
        (last.command.as_str(), last.actor.as_str()),
        ("SetHostServerStatus", "staff")
    );
    assert_eq!(last.actor_kind(), v1::ActorKind::Staff);
    assert_eq!(
        last.changes,
        [
            "statuses +serverDeleteProhibited +serverUpdateProhibited",
            "reason: court order 42"
        ]
    );

    // Every update by the sponsor is refused, even one that only touches
    // client statuses, and so is the delete.
    let add_glue = Kind::UpdateHost(v1::UpdateHostRequest {
        name: "ns1.example.nz".into(),
        add_addresses: strings(&["192.0.2.2"]),
        ..Default::default()
    });
    assert_prohibited(&mut r, "rar-a", add_glue.clone(), "serverUpdateProhibited");
    assert_prohibited(
        &mut r,
        "rar-a",
        Kind::UpdateHost(v1::UpdateHostRequest {
            name: "ns1.example.nz".into(),
            add_statuses: strings(&["clientDeleteProhibited"]),
            ..Default::default()
        }),
        "serverUpdateProhibited",
    );
    assert_prohibited(
        &mut r,
        "rar-a",
        Kind::DeleteHost(delete("ns1.example.nz")),
        "serverDeleteProhibited",
    );
    // Another registrar still meets the sponsorship check first.
    let e = r.err("rar-b", Kind::DeleteHost(delete("ns1.example.nz")));
    assert_eq!(e.reason(), Reason::NotSponsor);

    // Setting what is already set changes nothing and tells nobody.
    let polls_before = r.polls("rar-a").len();
    r.staff(host_server_status(
        "ns1.example.nz",
        &["serverUpdateProhibited"],
        &[],
    ));
    assert_eq!(r.polls("rar-a").len(), polls_before);

    // Lifting the update prohibition lets updates through; the delete
    // prohibition still stands.
    r.staff(host_server_status(
        "ns1.example.nz",
        &[],
        &["serverUpdateProhibited"],
    ));
    assert!(r
        .polls("rar-a")
        .last()
        .expect("told")
        .message
        .contains("(added: -; removed: serverUpdateProhibited)"));
    r.ok("rar-a", add_glue);
    assert_prohibited(
        &mut r,
        "rar-a",
        Kind::DeleteHost(delete("ns1.example.nz")),
        "serverDeleteProhibited",
    );
    r.staff(host_server_status(
        "ns1.example.nz",
        &[],
        &["serverDeleteProhibited"],
    ));
    assert_eq!(
        info_host(&r.state, "ns1.example.nz").unwrap().statuses,
        ["ok"]
    );
    r.ok("rar-a", Kind::DeleteHost(delete("ns1.example.nz")));
    assert_refs_consistent(&r.state);
    assert_registry_consistent(&r.state);
}

#[test]
fn a_contact_under_server_prohibitions_refuses_its_sponsor_until_staff_lift_them() {
    let mut r = world();
    let all = [
        "serverDeleteProhibited",
        "serverTransferProhibited",
        "serverUpdateProhibited",
    ];
    let contact = contact_of(r.staff(contact_server_status("c-a2", &all, &[])));
    assert_eq!(
        contact.statuses,
        [
            "linked",
            "serverDeleteProhibited",
            "serverTransferProhibited",
            "serverUpdateProhibited"
        ]
    );
    let told = r.polls("rar-a").pop().expect("a poll message");
    assert_eq!(told.object, "c-a2");
    assert!(
        told.message
            .starts_with("server statuses of contact c-a2 changed"),
        "{}",
        told.message
    );
    assert!(told.message.ends_with(": identity under dispute"));

    // The sponsor can neither update (not even lift its own client
    // statuses) nor delete it once no domain refers to it.
    let mut fields = contact_fields();
    fields.email = "new@example.net".into();
    assert_prohibited(
        &mut r,
        "rar-a",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-a2".into(),
            fields: Some(fields.clone()),
            ..Default::default()
        }),
        "serverUpdateProhibited",
    );
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            remove_statuses: strings(&["clientUpdateProhibited"]),
            registrant: "c-a1".into(),
            remove_contacts: vec![v1::DomainContact {
                r#type: ContactType::Admin as i32,
                contact_id: "c-a2".into(),
            }],
            ..update_domain("locked.nz")
        }),
    );
    assert_eq!(
        info_contact(&r.state, "rar-a", "c-a2").unwrap().statuses,
        all,
        "no longer linked, still prohibited"
    );
    assert_prohibited(
        &mut r,
        "rar-a",
        Kind::DeleteContact(delete("c-a2")),
        "serverDeleteProhibited",
    );

    // A domain may still refer to a contact staff locked: linking is not an
    // update of the contact.
    r.ok("rar-a", create_domain("uses-locked.nz", 1, "c-a2", &[]));

    r.staff(contact_server_status(
        "c-a2",
        &[],
        &["serverUpdateProhibited"],
    ));
    r.ok(
        "rar-a",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-a2".into(),
            fields: Some(fields),
            ..Default::default()
        }),
    );
    let audit = audit_of(&r, "contact", "c-a2");
    let commands: Vec<&str> = audit.iter().map(|a| a.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "UpdateContact",
            "SetContactServerStatus",
            "SetContactServerStatus",
            "CreateContact"
        ]
    );
    assert_eq!(
        audit[1].changes,
        [
            "statuses -serverUpdateProhibited",
            "reason: identity under dispute"
        ]
    );
    assert_refs_consistent(&r.state);
    assert_registry_consistent(&r.state);
}

#[test]
fn server_status_requests_on_hosts_and_contacts_are_checked_and_refusals_change_nothing() {
    let mut r = world();
    let with_reason = |mut kind: Kind, reason: &str| {
        match &mut kind {
            Kind::SetHostServerStatus(req) => req.reason = reason.into(),
            Kind::SetContactServerStatus(req) => req.reason = reason.into(),
            _ => unreachable!("a server status request"),
        }
        kind
    };
    let lock_host = |name: &str| host_server_status(name, &["serverUpdateProhibited"], &[]);
    let long_reason = "x".repeat(256);

    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Kind, Reason, &str)> = vec![
        // Only what RFC 5732 / RFC 5733 define for the object type.
        ("hold on a host", "staff", host_server_status("ns1.example.nz", &["serverHold"], &[]), Reason::PolicyViolation, "add_statuses"),
        ("transfer on a host", "staff", host_server_status("ns1.example.nz", &["serverTransferProhibited"], &[]), Reason::PolicyViolation, "add_statuses"),
        ("renew on a host", "staff", host_server_status("ns1.example.nz", &[], &["serverRenewProhibited"]), Reason::PolicyViolation, "remove_statuses"),
        ("hold on a contact", "staff", contact_server_status("c-a1", &["serverHold"], &[]), Reason::PolicyViolation, "add_statuses"),
        ("renew on a contact", "staff", contact_server_status("c-a1", &["serverRenewProhibited"], &[]), Reason::PolicyViolation, "add_statuses"),
        ("client status", "staff", host_server_status("ns1.example.nz", &["clientUpdateProhibited"], &[]), Reason::InvalidField, "add_statuses"),
        ("derived status", "staff", contact_server_status("c-a1", &["linked"], &[]), Reason::InvalidField, "add_statuses"),
        ("unknown status", "staff", contact_server_status("c-a1", &["serverdeleteprohibited"], &[]), Reason::InvalidField, "add_statuses"),
        // The request itself.
        ("nothing to change", "staff", host_server_status("ns1.example.nz", &[], &[]), Reason::InvalidField, "add_statuses"),
        ("added and removed", "staff", contact_server_status("c-a1", &["serverUpdateProhibited"], &["serverUpdateProhibited"]), Reason::InvalidField, "remove_statuses"),
        ("no reason", "staff", with_reason(lock_host("ns1.example.nz"), ""), Reason::InvalidField, "reason"),
        ("blank reason", "staff", with_reason(contact_server_status("c-a1", &["serverDeleteProhibited"], &[]), "  "), Reason::InvalidField, "reason"),
        ("overlong reason", "staff", with_reason(lock_host("ns1.example.nz"), &long_reason), Reason::TooLong, "reason"),
        // The object.
        ("unknown host", "staff", lock_host("ns9.example.nz"), Reason::ObjectNotFound, "name"),
        ("bad host name", "staff", lock_host("ns1..example.nz"), Reason::InvalidName, "name"),
        ("unknown contact", "staff", contact_server_status("c-zz", &["serverDeleteProhibited"], &[]), Reason::ObjectNotFound, "id"),
        ("contact ids are case-sensitive", "staff", contact_server_status("C-A1", &["serverDeleteProhibited"], &[]), Reason::ObjectNotFound, "id"),
        // Registrars cannot set server statuses through their own updates.
        ("registrar host update", "rar-a", Kind::UpdateHost(v1::UpdateHostRequest { name: "ns1.example.nz".into(), add_statuses: strings(&["serverUpdateProhibited"]), ..Default::default() }), Reason::PolicyViolation, "add_statuses"),
        ("registrar contact update", "rar-a", Kind::UpdateContact(v1::UpdateContactRequest { id: "c-a1".into(), add_statuses: strings(&["serverDeleteProhibited"]), ..Default::default() }), Reason::PolicyViolation, "add_statuses"),
    ];

    for (what, actor, kind, reason, field) in cases {
        let before = data_digest(&r.state);
        let e = r.err(actor, kind);
        assert_eq!(
            (e.reason(), e.field.as_str()),
            (reason, field),
            "{what}: {}",
            e.message
        );
        assert!(e.message.starts_with(field), "{what}: {}", e.message);
        assert_eq!(
            data_digest(&r.state),
            before,
            "{what} changed registry data"
        );
    }
    assert_eq!(r.poll_kinds("rar-a"), Vec::<String>::new(), "nobody told");
}

#[test]
fn a_host_staff_keep_from_deletion_outlives_the_purge_of_its_domain_detached() {
    let mut r = world();
    // example.nz cannot be renewed, so at expiry the registry deletes it;
    // its in-bailiwick host ns1.example.nz is used by no domain.
    r.ok(
        "rar-a",
        Kind::UpdateDomain(v1::UpdateDomainRequest {
            add_statuses: strings(&["clientRenewProhibited"]),
            ..update_domain("example.nz")
        }),
    );
    r.staff(host_server_status(
        "ns1.example.nz",
        &["serverDeleteProhibited"],
        &[],
    ));
    r.tick_at(WORLD_EXPIRY + 1000);
    let info = r.domain("rar-a", "example.nz");
    assert_eq!(info.rgp_statuses, ["redemptionPeriod"]);
    r.tick_at(info.deleted_ms + 30 * DAY_MS);
    r.tick_at(info.deleted_ms + 35 * DAY_MS);
    assert!(r.try_domain("example.nz").is_none(), "purged");

    // Kept, without glue and without a superordinate domain, and still
    // not deletable by its sponsor.
    let host = info_host(&r.state, "ns1.example.nz").unwrap();
    assert_eq!(host.statuses, ["serverDeleteProhibited"]);
    assert!(host.addresses.is_empty());
    let audit = audit_of(&r, "host", "ns1.example.nz");
    assert!(
        audit[0].changes[0].ends_with("kept: serverDeleteProhibited"),
        "{:?}",
        audit[0].changes
    );
    let e = r.err("rar-a", Kind::DeleteHost(delete("ns1.example.nz")));
    assert_eq!(e.reason(), Reason::StatusProhibits);
    r.staff(host_server_status(
        "ns1.example.nz",
        &[],
        &["serverDeleteProhibited"],
    ));
    r.ok("rar-a", Kind::DeleteHost(delete("ns1.example.nz")));
    assert_refs_consistent(&r.state);
    assert_registry_consistent(&r.state);
}

#[test]
fn a_server_status_request_replays_without_telling_the_sponsor_twice() {
    let mut r = world();
    let p = r.propose(
        "staff",
        contact_server_status("c-b1", &["serverDeleteProhibited"], &[]),
    );
    let first = r.apply(&p);
    let again = r.apply(&p);
    assert!(tx_of(&again).replayed);
    assert_eq!(tx_of(&again).sv_trid, tx_of(&first).sv_trid);
    assert_eq!(r.poll_kinds("rar-b"), ["server_status_changed"]);
}
