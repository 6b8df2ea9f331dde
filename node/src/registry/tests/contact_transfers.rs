//! Contact transfers (RFC 5733): who may do what, what a pending transfer
//! blocks, what each end does to the contact, its poll messages and its
//! audit trail, the registry's approval after five days and its
//! cancellation when staff prohibit the transfer.

use super::super::contact_transfer::CONTACT_TRANSFER_AUTO_APPROVE_MS;
use super::*;

fn contact_transfer(id: &str, op: v1::TransferOp, auth_info: &str) -> Kind {
    Kind::TransferContact(v1::TransferContactRequest {
        meta: None,
        id: id.into(),
        op: op as i32,
        auth_info: auth_info.into(),
        new_auth_info: String::new(),
    })
}

fn request(id: &str, auth_info: &str) -> Kind {
    contact_transfer(id, v1::TransferOp::Request, auth_info)
}

fn approve(id: &str, new_auth_info: &str) -> Kind {
    Kind::TransferContact(v1::TransferContactRequest {
        new_auth_info: new_auth_info.into(),
        ..match contact_transfer(id, v1::TransferOp::Approve, "") {
            Kind::TransferContact(t) => t,
            _ => unreachable!(),
        }
    })
}

fn contact(r: &Registry, viewer: &str, id: &str) -> v1::Contact {
    info_contact(&r.state, viewer, id).expect("contact exists")
}

fn kinds(r: &Registry, id: &str) -> Vec<String> {
    r.polls(id).into_iter().map(|m| m.kind).collect()
}

#[test]
fn a_contact_transfer_needs_the_auth_info_and_respects_its_prohibitions() {
    let mut r = world();
    let refusals = [
        (
            "rar-b",
            request("c-none", "contact-pw"),
            Reason::ObjectNotFound,
        ),
        (
            "rar-a",
            request("c-a1", "contact-pw"),
            Reason::NotEligibleForTransfer,
        ),
        (
            "rar-b",
            request("c-a1", "wrong-pw"),
            Reason::InvalidAuthInfo,
        ),
        (
            "rar-b",
            request("c-a1!", "contact-pw"),
            Reason::InvalidField,
        ),
        (
            "rar-b",
            contact_transfer("c-a1", v1::TransferOp::Unspecified, ""),
            Reason::InvalidField,
        ),
        (
            "rar-a",
            approve("c-a1", "Fresh-secret-42"),
            Reason::NotPendingTransfer,
        ),
    ];
    for (actor, kind, reason) in refusals {
        let before = data_digest(&r.state);
        let what = format!("{kind:?}");
        let e = r.err(actor, kind);
        assert_eq!(e.reason(), reason, "{what}: {}", e.message);
        assert_eq!(data_digest(&r.state), before, "{what} changed data");
    }
    r.ok(
        "rar-a",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-a2".into(),
            add_statuses: strings(&["clientTransferProhibited"]),
            ..Default::default()
        }),
    );
    let e = r.err("rar-b", request("c-a2", "contact-pw"));
    assert_eq!(e.reason(), Reason::StatusProhibits, "{}", e.message);
    r.ok(
        "staff",
        contact_server_status("c-b1", &["serverTransferProhibited"], &[]),
    );
    let e = r.err("rar-a", request("c-b1", "contact-pw"));
    assert_eq!(e.reason(), Reason::StatusProhibits, "{}", e.message);
    assert!(
        e.message.contains("serverTransferProhibited"),
        "{}",
        e.message
    );
    assert_registry_consistent(&r.state);
}

#[test]
fn an_approved_contact_transfer_moves_it_with_a_fresh_auth_info() {
    let mut r = world();
    let requested = r.ok("rar-b", request("c-a1", "contact-pw"));
    let Outcome::Transfer(t) = requested else {
        panic!("a transfer answered {requested:?}");
    };
    let t = t.transfer.expect("transfer data");
    assert_eq!(
        (t.name.as_str(), t.status_name.as_str()),
        ("c-a1", "pending")
    );
    assert_eq!(
        (t.gaining_registrar.as_str(), t.losing_registrar.as_str()),
        ("rar-b", "rar-a")
    );
    assert_eq!(
        t.action_due_ms,
        t.requested_ms + CONTACT_TRANSFER_AUTO_APPROVE_MS
    );
    assert_eq!(t.expiry_ms, 0, "contacts do not expire");

    // Pending: shown, and it blocks everything but the transfer itself.
    let c = contact(&r, "rar-a", "c-a1");
    assert!(
        c.statuses.contains(&"pendingTransfer".to_string()),
        "{:?}",
        c.statuses
    );
    let e = r.err(
        "rar-a",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-a1".into(),
            auth_info: "other-pw-1".into(),
            ..Default::default()
        }),
    );
    assert_eq!(e.reason(), Reason::StatusProhibits, "{}", e.message);
    assert!(e.message.contains("pendingTransfer"), "{}", e.message);
    let e = r.err("rar-b", request("c-a1", "contact-pw"));
    assert_eq!(e.reason(), Reason::PendingTransfer);
    for (actor, op) in [
        ("rar-b", v1::TransferOp::Approve),
        ("rar-b", v1::TransferOp::Reject),
        ("rar-a", v1::TransferOp::Cancel),
        ("rar-usd", v1::TransferOp::Reject),
    ] {
        let e = r.err(actor, contact_transfer("c-a1", op, ""));
        assert_eq!(e.reason(), Reason::NotAuthorized, "{op:?} by {actor}");
    }
    // Parties see the transfer; others only with the auth info.
    for who in ["rar-a", "rar-b"] {
        let q = query_contact_transfer(&r.state, who, "c-a1", "").unwrap();
        assert_eq!(q.status_name, "pending");
    }
    let e = query_contact_transfer(&r.state, "rar-usd", "c-a1", "").unwrap_err();
    assert_eq!(e.reason(), Reason::InvalidAuthInfo);
    assert!(query_contact_transfer(&r.state, "rar-usd", "c-a1", "contact-pw").is_ok());

    // A malformed new value (a broken proposer) is refused.
    let e = r.err("rar-a", approve("c-a1", "x"));
    assert_eq!(
        (e.reason(), e.field.as_str()),
        (Reason::InvalidField, "new_auth_info")
    );
    r.ok("rar-a", approve("c-a1", "Fresh-secret-42"));
    let c = contact(&r, "rar-b", "c-a1");
    assert_eq!(
        (c.sponsor.as_str(), c.auth_info.as_str()),
        ("rar-b", "Fresh-secret-42")
    );
    assert!(!c.statuses.contains(&"pendingTransfer".to_string()));
    assert_eq!(
        c.transfer.as_ref().map(|t| t.status_name.as_str()),
        Some("clientApproved")
    );
    // The old auth info opens nothing now; the new sponsor can update.
    let e = r.err("rar-usd", request("c-a1", "contact-pw"));
    assert_eq!(e.reason(), Reason::InvalidAuthInfo);
    r.ok(
        "rar-b",
        Kind::UpdateContact(v1::UpdateContactRequest {
            id: "c-a1".into(),
            auth_info: "registrant-pw-2".into(),
            ..Default::default()
        }),
    );
    // Domains that name it are untouched (their sponsor stays rar-a).
    assert_eq!(r.domain("rar-a", "example.nz").registrant, "c-a1");
    assert_eq!(kinds(&r, "rar-a"), ["contact_transfer_requested"]);
    assert_eq!(kinds(&r, "rar-b"), ["contact_transfer_approved"]);
    let approved = r.polls("rar-b").pop().unwrap();
    assert_eq!(approved.object, "c-a1");
    assert_eq!(
        approved.transfer.map(|t| t.status_name),
        Some("clientApproved".to_string())
    );
    let trail = audit_of(&r, "contact", "c-a1");
    assert!(trail
        .iter()
        .any(|a| a.changes.iter().any(|c| c == "sponsor rar-a → rar-b")));
    assert!(!format!("{trail:?}").contains("Fresh-secret-42"));
    assert_registry_consistent(&r.state);
}

#[test]
fn a_rejected_or_cancelled_contact_transfer_leaves_it_where_it_was() {
    let mut r = world();
    r.ok("rar-b", request("c-a1", "contact-pw"));
    r.ok(
        "rar-a",
        contact_transfer("c-a1", v1::TransferOp::Reject, ""),
    );
    r.ok("rar-b", request("c-a2", "contact-pw"));
    r.ok(
        "rar-b",
        contact_transfer("c-a2", v1::TransferOp::Cancel, ""),
    );
    for id in ["c-a1", "c-a2"] {
        let c = contact(&r, "rar-a", id);
        assert_eq!(
            (c.sponsor.as_str(), c.auth_info.as_str()),
            ("rar-a", "contact-pw")
        );
    }
    assert_eq!(
        contact(&r, "rar-a", "c-a2").transfer.map(|t| t.status_name),
        Some("clientCancelled".to_string())
    );
    assert_eq!(
        kinds(&r, "rar-a"),
        [
            "contact_transfer_requested",
            "contact_transfer_requested",
            "contact_transfer_cancelled"
        ]
    );
    assert_eq!(kinds(&r, "rar-b"), ["contact_transfer_rejected"]);
    // Nothing is left scheduled: a tick after the period moves nothing.
    r.advance(CONTACT_TRANSFER_AUTO_APPROVE_MS + DAY_MS);
    r.tick();
    assert_eq!(contact(&r, "rar-a", "c-a1").sponsor, "rar-a");
    // And it can be asked for again.
    r.ok("rar-b", request("c-a1", "contact-pw"));
    assert_registry_consistent(&r.state);
}

#[test]
fn the_registry_approves_a_contact_transfer_nobody_answered_in_five_days() {
    let mut r = world();
    r.ok("rar-b", request("c-a1", "contact-pw"));
    r.advance(CONTACT_TRANSFER_AUTO_APPROVE_MS - 10_000);
    r.tick();
    assert_eq!(contact(&r, "rar-a", "c-a1").sponsor, "rar-a", "not yet");
    r.advance(20_000);
    let seed = [9u8; 32];
    let mut tick = tick_proposal(r.time_ms);
    tick.command = Some(v1::Command {
        kind: Some(Kind::Tick(v1::TickCommand {
            auth_info_seed: seed.to_vec(),
        })),
    });
    r.apply(&tick);
    let c = contact(&r, "rar-b", "c-a1");
    assert_eq!(c.sponsor, "rar-b");
    assert_eq!(
        c.auth_info,
        super::super::fields::auth_info_from_seed(&seed, "c-a1")
    );
    assert_eq!(
        c.transfer.map(|t| t.status_name),
        Some("serverApproved".to_string())
    );
    assert_eq!(kinds(&r, "rar-b"), ["contact_transfer_auto_approved"]);
    assert_eq!(
        kinds(&r, "rar-a"),
        [
            "contact_transfer_requested",
            "contact_transfer_auto_approved"
        ]
    );
    assert_registry_consistent(&r.state);
}

#[test]
fn staff_prohibiting_a_pending_contact_transfer_cancels_it() {
    let mut r = world();
    r.ok("rar-b", request("c-a1", "contact-pw"));
    r.ok(
        "staff",
        contact_server_status("c-a1", &["serverTransferProhibited"], &[]),
    );
    let c = contact(&r, "rar-a", "c-a1");
    assert_eq!(c.sponsor, "rar-a");
    assert_eq!(
        c.transfer.map(|t| t.status_name),
        Some("serverCancelled".to_string())
    );
    assert!(c.statuses.contains(&"serverTransferProhibited".to_string()));
    assert!(!c.statuses.contains(&"pendingTransfer".to_string()));
    assert!(kinds(&r, "rar-b").contains(&"contact_transfer_server_cancelled".to_string()));
    assert!(kinds(&r, "rar-a").contains(&"contact_transfer_server_cancelled".to_string()));
    r.advance(CONTACT_TRANSFER_AUTO_APPROVE_MS + DAY_MS);
    r.tick();
    assert_eq!(contact(&r, "rar-a", "c-a1").sponsor, "rar-a");
    assert_registry_consistent(&r.state);
}
