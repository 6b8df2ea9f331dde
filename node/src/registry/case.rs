//! Registry staff actions on domains: AUP complaint cases (open, suspend,
//! lift, escalate, note, close) and server statuses (registry lock). Server
//! statuses of hosts and contacts are set in `host` and `contact`.
//!
//! A suspension puts serverHold and the server update, delete and transfer
//! prohibitions on the domain, recorded against its case; the domain shows
//! them for as long as any case's suspension is in effect, on top of the
//! server statuses staff set directly. Lifting one case's suspension leaves
//! the others (and a registry lock) in force. A transfer pending when a
//! transfer prohibition takes effect is cancelled by the registry, since
//! pendingTransfer and a transfer prohibition cannot stand together. The
//! sponsor gets a poll message for every server status change.

use kauri_proto::v1::{self, command_result::Outcome};

use super::engine::StateRead;
use super::error::{ObjectKind, RegistryError};
use super::exec::Exec;
use super::fields::{self, MAX_TEXT_CHARS};
use super::model::{meta, CaseEvent, CaseRecord, CaseState, DomainRecord, SuspensionInfo};
use super::names;
use super::status::{ServerStatus, ServerStatusChange};
use super::{audit, poll, transitions};

pub(crate) fn open(
    cx: &mut Exec<'_, '_>,
    req: &v1::OpenCaseRequest,
) -> Result<Outcome, RegistryError> {
    let d = load_domain(&*cx, "domain", &req.domain)?;
    fields::text("reason", &req.reason, true, MAX_TEXT_CHARS)?;
    fields::text("reference", &req.reference, false, MAX_TEXT_CHARS)?;
    let id = cx.next_seq(meta::CASE_SEQ)?;
    let case = CaseRecord {
        id,
        domain: d.name.clone(),
        reason: req.reason.clone(),
        reference: req.reference.clone(),
        state: CaseState::Open,
        suspended: false,
        opened_by: cx.actor.clone(),
        opened_ms: cx.now_ms,
        history: vec![event(cx, "opened", &req.reason)],
    };
    cx.audit(
        "case",
        &id.to_string(),
        vec![format!("opened on {}", d.name)],
    );
    cx.audit(
        "domain",
        &d.name,
        vec![format!("case {id} opened: {}", req.reason)],
    );
    cx.save(&case);
    Ok(response(cx, &case))
}

pub(crate) fn update(
    cx: &mut Exec<'_, '_>,
    req: &v1::UpdateCaseRequest,
) -> Result<Outcome, RegistryError> {
    let mut case = cx
        .load::<CaseRecord>(&req.case_id.to_be_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "case_id".into(),
            kind: ObjectKind::Case,
            name: req.case_id.to_string(),
        })?;
    fields::text("note", &req.note, false, MAX_TEXT_CHARS)?;
    let action = v1::CaseAction::try_from(req.action)
        .ok()
        .filter(|a| *a != v1::CaseAction::Unspecified)
        .ok_or_else(|| {
            RegistryError::invalid("action", "must be SUSPEND, LIFT, ESCALATE, CLOSE or NOTE")
        })?;
    if case.state == CaseState::Closed && action != v1::CaseAction::Note {
        return Err(RegistryError::policy(
            "case_id",
            format!("case {} is closed", case.id),
        ));
    }
    let name = match action {
        v1::CaseAction::Suspend => suspend(cx, &mut case)?,
        v1::CaseAction::Lift => lift(cx, &mut case)?,
        v1::CaseAction::Escalate => {
            case.state = CaseState::Escalated;
            "escalated"
        }
        v1::CaseAction::Close => {
            if case.suspended {
                return Err(RegistryError::policy(
                    "action",
                    format!(
                        "case {} still suspends {}: lift the suspension first",
                        case.id, case.domain
                    ),
                ));
            }
            case.state = CaseState::Closed;
            "closed"
        }
        v1::CaseAction::Note | v1::CaseAction::Unspecified => "note",
    };
    case.history.push(event(cx, name, &req.note));
    cx.audit(
        "case",
        &case.id.to_string(),
        vec![format!("{name} {}", req.note).trim().to_string()],
    );
    cx.save(&case);
    Ok(response(cx, &case))
}

/// Suspends the case's domain (it leaves the zone) for the case's reason.
fn suspend(cx: &mut Exec<'_, '_>, case: &mut CaseRecord) -> Result<&'static str, RegistryError> {
    if case.suspended {
        return Err(RegistryError::policy(
            "action",
            format!("case {} already suspends {}", case.id, case.domain),
        ));
    }
    let mut d = load_domain(&*cx, "case_id", &case.domain)?;
    if d.state.is_deleted() {
        return Err(RegistryError::StatusProhibits {
            field: "case_id".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
            status: "pendingDelete".into(),
        });
    }
    let before = d.clone();
    d.suspensions.insert(
        case.id,
        SuspensionInfo {
            reason: case.reason.clone(),
            suspended_ms: cx.now_ms,
            suspended_by: cx.actor.clone(),
        },
    );
    let why = format!("suspended under case {}: {}", case.id, case.reason);
    changed(cx, &before, &mut d, &why)?;
    case.suspended = true;
    Ok("suspended")
}

/// Lifts the case's suspension (a purged domain has nothing left to lift).
fn lift(cx: &mut Exec<'_, '_>, case: &mut CaseRecord) -> Result<&'static str, RegistryError> {
    if !case.suspended {
        return Err(RegistryError::policy(
            "action",
            format!("case {} has no suspension to lift", case.id),
        ));
    }
    if let Some(mut d) = cx.load::<DomainRecord>(case.domain.as_bytes())? {
        let before = d.clone();
        d.suspensions.remove(&case.id);
        let why = format!("suspension of case {} lifted", case.id);
        changed(cx, &before, &mut d, &why)?;
    }
    case.suspended = false;
    Ok("lifted")
}

/// Staff set or clear server statuses of a domain, with a reason.
pub(crate) fn set_server_status(
    cx: &mut Exec<'_, '_>,
    req: &v1::SetServerStatusRequest,
) -> Result<Outcome, RegistryError> {
    let mut d = load_domain(&*cx, "name", &req.name)?;
    let change = ServerStatusChange::parse(
        ObjectKind::Domain,
        &req.add_statuses,
        &req.remove_statuses,
        &req.reason,
    )?;
    if d.state.is_deleted() && change.add.contains(&ServerStatus::DeleteProhibited) {
        return Err(RegistryError::StatusProhibits {
            field: "add_statuses".into(),
            kind: ObjectKind::Domain,
            name: d.name.clone(),
            status: "pendingDelete".into(),
        });
    }
    let before = d.clone();
    change.apply_to(&mut d.server_statuses);
    changed(cx, &before, &mut d, &req.reason)?;
    Ok(Outcome::Domain(v1::DomainResponse {
        domain: Some(d.to_proto(&d.sponsor, cx.now_ms)),
        tx: Some(cx.tx.clone()),
        read_info: None,
        charged: None,
    }))
}

/// Saves a domain whose server statuses may have changed: cancels a
/// transfer a new prohibition forbids, tells the sponsor, audits.
fn changed(
    cx: &mut Exec<'_, '_>,
    before: &DomainRecord,
    d: &mut DomainRecord,
    why: &str,
) -> Result<(), RegistryError> {
    if d.transfer_pending()
        && d.server_statuses_in_effect()
            .contains(&ServerStatus::TransferProhibited)
    {
        transitions::server_cancel(cx, d, why)?;
    }
    d.updated_by = cx.actor.clone();
    d.updated_ms = cx.now_ms;
    let sponsor = d.sponsor.clone();
    poll::server_statuses_changed(
        cx,
        &sponsor,
        ObjectKind::Domain,
        &d.name,
        &before.server_statuses_in_effect(),
        &d.server_statuses_in_effect(),
        why,
    )?;
    let mut changes = audit::domain_changes(before, d);
    changes.push(format!("reason: {why}"));
    cx.audit("domain", &d.name, changes);
    cx.save(&*d);
    Ok(())
}

/// A case.
pub fn info_case(state: &dyn StateRead, id: u64) -> Result<v1::AupCase, RegistryError> {
    state
        .load::<CaseRecord>(&id.to_be_bytes())?
        .map(|c| c.to_proto())
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: "case_id".into(),
            kind: ObjectKind::Case,
            name: id.to_string(),
        })
}

fn load_domain(r: &dyn StateRead, field: &str, input: &str) -> Result<DomainRecord, RegistryError> {
    let name = names::normalize_name(field, input)?;
    r.load::<DomainRecord>(name.ascii().as_bytes())?
        .ok_or_else(|| RegistryError::ObjectNotFound {
            field: field.into(),
            kind: ObjectKind::Domain,
            name: name.ascii().into(),
        })
}

fn event(cx: &Exec<'_, '_>, action: &str, note: &str) -> CaseEvent {
    CaseEvent {
        time_ms: cx.now_ms,
        actor: cx.actor.clone(),
        action: action.into(),
        note: note.into(),
        sv_trid: cx.tx.sv_trid.clone(),
    }
}

fn response(cx: &Exec<'_, '_>, case: &CaseRecord) -> Outcome {
    Outcome::AupCase(v1::CaseResponse {
        aup_case: Some(case.to_proto()),
        tx: Some(cx.tx.clone()),
        read_info: None,
    })
}
