//! EPP object statuses (RFC 5731 section 2.3, RFC 5732 section 2.3,
//! RFC 5733 section 2.2) that registrars set, and the rules for changing them.
//!
//! Registrars may set only `client*` statuses, and only those that apply to
//! the object type; registry staff set `server*` statuses, again only those
//! the object type defines (domains all five, hosts the update and delete
//! prohibitions, contacts those and the transfer prohibition); the derived
//! statuses (`ok`, `inactive`, `linked`, `pending*`) belong to the registry
//! and are computed when an object is shown, never stored.
//!
//! Combination rules (RFC 5731 section 2.3, RFC 5732 section 2.3, RFC 5733
//! section 2.2), checked by [`check_combination`] and kept by the commands:
//! `ok` stands alone (`linked` aside); `pendingDelete` never with a delete
//! prohibition, `pendingTransfer` never with a transfer prohibition; at most
//! one `pending*` status.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::{ObjectKind, RegistryError};

/// A status a sponsoring registrar may set. The declaration order is the
/// alphabetical order of the EPP names, so a `BTreeSet` lists them as EPP
/// clients expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientStatus {
    /// `clientDeleteProhibited`: delete requests are refused.
    DeleteProhibited,
    /// `clientHold`: the domain is not published in DNS (domains only).
    Hold,
    /// `clientRenewProhibited`: renew requests are refused (domains only).
    RenewProhibited,
    /// `clientTransferProhibited`: transfer requests are refused.
    TransferProhibited,
    /// `clientUpdateProhibited`: updates are refused unless they remove this
    /// status.
    UpdateProhibited,
}

/// A status registry staff set on a domain (registry lock, suspensions), a
/// host or a contact. Declared in EPP name order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServerStatus {
    /// `serverDeleteProhibited`.
    DeleteProhibited,
    /// `serverHold`: not published in DNS.
    Hold,
    /// `serverRenewProhibited`: no renewals, no auto-renewal.
    RenewProhibited,
    /// `serverTransferProhibited`.
    TransferProhibited,
    /// `serverUpdateProhibited`: no updates by the sponsor at all.
    UpdateProhibited,
}

impl ServerStatus {
    /// Every server status, in EPP name order.
    pub const ALL: [ServerStatus; 5] = [
        ServerStatus::DeleteProhibited,
        ServerStatus::Hold,
        ServerStatus::RenewProhibited,
        ServerStatus::TransferProhibited,
        ServerStatus::UpdateProhibited,
    ];

    /// What a suspension puts on a domain.
    pub const SUSPENSION: [ServerStatus; 4] = [
        ServerStatus::DeleteProhibited,
        ServerStatus::Hold,
        ServerStatus::TransferProhibited,
        ServerStatus::UpdateProhibited,
    ];

    /// What a registry lock puts on a domain.
    pub const LOCK: [ServerStatus; 3] = [
        ServerStatus::DeleteProhibited,
        ServerStatus::TransferProhibited,
        ServerStatus::UpdateProhibited,
    ];

    /// The EPP name, e.g. `"serverHold"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServerStatus::DeleteProhibited => "serverDeleteProhibited",
            ServerStatus::Hold => "serverHold",
            ServerStatus::RenewProhibited => "serverRenewProhibited",
            ServerStatus::TransferProhibited => "serverTransferProhibited",
            ServerStatus::UpdateProhibited => "serverUpdateProhibited",
        }
    }

    /// Whether staff may set this status on an object of `kind`: every
    /// server status on a domain (RFC 5731), the delete and update
    /// prohibitions on a host (RFC 5732), and those plus the transfer
    /// prohibition on a contact (RFC 5733).
    pub fn applies_to(self, kind: ObjectKind) -> bool {
        match kind {
            ObjectKind::Domain => true,
            ObjectKind::Contact => matches!(
                self,
                ServerStatus::DeleteProhibited
                    | ServerStatus::TransferProhibited
                    | ServerStatus::UpdateProhibited
            ),
            ObjectKind::Host => matches!(
                self,
                ServerStatus::DeleteProhibited | ServerStatus::UpdateProhibited
            ),
            ObjectKind::Tld
            | ObjectKind::Registrar
            | ObjectKind::PollMessage
            | ObjectKind::Case => false,
        }
    }

    /// Parses a server status staff ask to set or clear on an object of
    /// `kind`. Unknown values are [`RegistryError::InvalidField`]; a server
    /// status the object type does not define is
    /// [`RegistryError::PolicyViolation`].
    pub fn parse(field: &str, value: &str, kind: ObjectKind) -> Result<Self, RegistryError> {
        let status = Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                RegistryError::invalid(
                    field,
                    format!(
                        "{value:?} is not a server status; one of {}",
                        Self::ALL
                            .into_iter()
                            .filter(|s| s.applies_to(kind))
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        if !status.applies_to(kind) {
            return Err(RegistryError::policy(
                field,
                format!("{value} does not apply to a {kind}"),
            ));
        }
        Ok(status)
    }
}

/// A staff request to change an object's server statuses, checked: a
/// reason is given, at least one status is named, every status applies to
/// the object type, and none is both added and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatusChange {
    /// Statuses to set (already set ones change nothing).
    pub add: BTreeSet<ServerStatus>,
    /// Statuses to clear (ones not set change nothing).
    pub remove: BTreeSet<ServerStatus>,
}

impl ServerStatusChange {
    /// Checks the request fields `add_statuses`, `remove_statuses` and
    /// `reason` of a change on an object of `kind`.
    pub fn parse(
        kind: ObjectKind,
        add: &[String],
        remove: &[String],
        reason: &str,
    ) -> Result<Self, RegistryError> {
        super::fields::text("reason", reason, true, super::fields::MAX_TEXT_CHARS)?;
        if add.is_empty() && remove.is_empty() {
            return Err(RegistryError::invalid(
                "add_statuses",
                "give at least one status to add or remove",
            ));
        }
        let parse = |field: &str, values: &[String]| {
            values
                .iter()
                .map(|s| ServerStatus::parse(field, s, kind))
                .collect::<Result<BTreeSet<_>, _>>()
        };
        let add = parse("add_statuses", add)?;
        let remove = parse("remove_statuses", remove)?;
        if let Some(both) = add.intersection(&remove).next() {
            return Err(RegistryError::invalid(
                "remove_statuses",
                format!("{} is both added and removed", both.as_str()),
            ));
        }
        Ok(ServerStatusChange { add, remove })
    }

    /// Applies the change to `statuses`: removals, then additions.
    pub fn apply_to(&self, statuses: &mut BTreeSet<ServerStatus>) {
        for s in &self.remove {
            statuses.remove(s);
        }
        statuses.extend(self.add.iter().copied());
    }
}

/// The audit line of a server status change, e.g.
/// `["statuses +serverDeleteProhibited -serverUpdateProhibited"]`; empty
/// when nothing changed.
pub fn server_status_changes(
    before: &BTreeSet<ServerStatus>,
    after: &BTreeSet<ServerStatus>,
) -> Vec<String> {
    let mut parts: Vec<String> = after
        .difference(before)
        .map(|s| format!("+{}", s.as_str()))
        .collect();
    parts.extend(before.difference(after).map(|s| format!("-{}", s.as_str())));
    if parts.is_empty() {
        Vec::new()
    } else {
        vec![format!("statuses {}", parts.join(" "))]
    }
}

/// Refuses an operation by the sponsor forbidden by the server status
/// `status` if the object carries it. `field` is the request field naming
/// the object.
pub fn check_server_not_prohibited(
    statuses: &BTreeSet<ServerStatus>,
    status: ServerStatus,
    field: &str,
    kind: ObjectKind,
    name: &str,
) -> Result<(), RegistryError> {
    if statuses.contains(&status) {
        return Err(RegistryError::StatusProhibits {
            field: field.into(),
            kind,
            name: name.to_string(),
            status: status.as_str().into(),
        });
    }
    Ok(())
}

/// Checks the combination rules on the statuses an object shows; the
/// message names the offending pair.
pub fn check_combination(shown: &[String]) -> Result<(), String> {
    let has = |s: &str| shown.iter().any(|x| x == s);
    // RFC 5732/5733: ok may only be combined with linked.
    if has("ok") && shown.iter().any(|s| s != "ok" && s != "linked") {
        return Err(format!("ok with other statuses: {shown:?}"));
    }
    for (pending, prohibitions) in [
        (
            "pendingDelete",
            ["clientDeleteProhibited", "serverDeleteProhibited"],
        ),
        (
            "pendingTransfer",
            ["clientTransferProhibited", "serverTransferProhibited"],
        ),
        (
            "pendingRenew",
            ["clientRenewProhibited", "serverRenewProhibited"],
        ),
        (
            "pendingUpdate",
            ["clientUpdateProhibited", "serverUpdateProhibited"],
        ),
    ] {
        if has(pending) {
            if let Some(p) = prohibitions.iter().find(|p| has(p)) {
                return Err(format!("{pending} with {p}"));
            }
        }
    }
    let pending = shown.iter().filter(|s| s.starts_with("pending")).count();
    if pending > 1 {
        return Err(format!("more than one pending status: {shown:?}"));
    }
    Ok(())
}

/// Statuses only the registry sets or derives; a registrar naming one gets a
/// policy error rather than a syntax error.
const REGISTRY_STATUSES: &[&str] = &[
    "ok",
    "inactive",
    "linked",
    "pendingCreate",
    "pendingDelete",
    "pendingRenew",
    "pendingTransfer",
    "pendingUpdate",
    "serverDeleteProhibited",
    "serverHold",
    "serverRenewProhibited",
    "serverTransferProhibited",
    "serverUpdateProhibited",
];

impl ClientStatus {
    /// Every client status, in EPP name order.
    pub const ALL: [ClientStatus; 5] = [
        ClientStatus::DeleteProhibited,
        ClientStatus::Hold,
        ClientStatus::RenewProhibited,
        ClientStatus::TransferProhibited,
        ClientStatus::UpdateProhibited,
    ];

    /// The EPP name, e.g. `"clientHold"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientStatus::DeleteProhibited => "clientDeleteProhibited",
            ClientStatus::Hold => "clientHold",
            ClientStatus::RenewProhibited => "clientRenewProhibited",
            ClientStatus::TransferProhibited => "clientTransferProhibited",
            ClientStatus::UpdateProhibited => "clientUpdateProhibited",
        }
    }

    /// Whether a registrar may set this status on an object of `kind`.
    pub fn applies_to(self, kind: ObjectKind) -> bool {
        match kind {
            ObjectKind::Domain => true,
            ObjectKind::Contact => matches!(
                self,
                ClientStatus::DeleteProhibited
                    | ClientStatus::TransferProhibited
                    | ClientStatus::UpdateProhibited
            ),
            ObjectKind::Host => matches!(
                self,
                ClientStatus::DeleteProhibited | ClientStatus::UpdateProhibited
            ),
            ObjectKind::Tld
            | ObjectKind::Registrar
            | ObjectKind::PollMessage
            | ObjectKind::Case => false,
        }
    }

    /// Parses a status a registrar asks to set on an object of `kind`.
    /// Unknown values are [`RegistryError::InvalidField`]; registry statuses
    /// and client statuses of other object types are
    /// [`RegistryError::PolicyViolation`].
    pub fn parse(field: &str, value: &str, kind: ObjectKind) -> Result<Self, RegistryError> {
        if let Some(status) = Self::ALL.into_iter().find(|s| s.as_str() == value) {
            if status.applies_to(kind) {
                return Ok(status);
            }
            return Err(RegistryError::policy(
                field,
                format!("{value} does not apply to a {kind}"),
            ));
        }
        if REGISTRY_STATUSES.contains(&value) {
            return Err(RegistryError::policy(
                field,
                format!("{value} is set by the registry, not by registrars"),
            ));
        }
        Err(RegistryError::invalid(
            field,
            format!("{value:?} is not an EPP status"),
        ))
    }
}

/// Applies `remove` then `add` to `statuses`, refusing unknown or
/// registry-only values, removing a status that is not set, adding one
/// that is, and naming a value twice.
pub fn change_statuses(
    statuses: &mut BTreeSet<ClientStatus>,
    kind: ObjectKind,
    add: &[String],
    remove: &[String],
) -> Result<(), RegistryError> {
    let remove = parse_list("remove_statuses", remove, kind)?;
    let add = parse_list("add_statuses", add, kind)?;
    for status in remove {
        if !statuses.remove(&status) {
            return Err(RegistryError::policy(
                "remove_statuses",
                format!("{} is not set on the {kind}", status.as_str()),
            ));
        }
    }
    for status in add {
        if !statuses.insert(status) {
            return Err(RegistryError::policy(
                "add_statuses",
                format!("{} is already set on the {kind}", status.as_str()),
            ));
        }
    }
    Ok(())
}

fn parse_list(
    field: &str,
    values: &[String],
    kind: ObjectKind,
) -> Result<Vec<ClientStatus>, RegistryError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let status = ClientStatus::parse(field, value, kind)?;
        if !seen.insert(status) {
            return Err(RegistryError::invalid(
                field,
                format!("{value} is listed twice"),
            ));
        }
        out.push(status);
    }
    Ok(out)
}

/// Refuses an update of an object carrying `clientUpdateProhibited`, unless
/// the update removes that status (the only way to lift it). `field` is the
/// request field naming the object.
pub fn check_update_allowed(
    statuses: &BTreeSet<ClientStatus>,
    field: &str,
    kind: ObjectKind,
    name: &str,
    remove: &[String],
) -> Result<(), RegistryError> {
    let lifting = remove
        .iter()
        .any(|s| s == ClientStatus::UpdateProhibited.as_str());
    if statuses.contains(&ClientStatus::UpdateProhibited) && !lifting {
        return Err(RegistryError::StatusProhibits {
            field: field.into(),
            kind,
            name: name.to_string(),
            status: ClientStatus::UpdateProhibited.as_str().into(),
        });
    }
    Ok(())
}

/// Refuses an operation forbidden by `status` if the object carries it.
/// `field` is the request field naming the object.
pub fn check_not_prohibited(
    statuses: &BTreeSet<ClientStatus>,
    status: ClientStatus,
    field: &str,
    kind: ObjectKind,
    name: &str,
) -> Result<(), RegistryError> {
    if statuses.contains(&status) {
        return Err(RegistryError::StatusProhibits {
            field: field.into(),
            kind,
            name: name.to_string(),
            status: status.as_str().into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kauri_proto::v1::Reason;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_round_trip_and_sort_alphabetically() {
        let names: Vec<&str> = ClientStatus::ALL.iter().map(|s| s.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for s in ClientStatus::ALL {
            assert_eq!(
                ClientStatus::parse("f", s.as_str(), ObjectKind::Domain).ok(),
                Some(s)
            );
        }
    }

    #[test]
    fn registrars_cannot_set_registry_or_foreign_statuses() {
        let cases: &[(&str, ObjectKind, Reason)] = &[
            ("serverHold", ObjectKind::Domain, Reason::PolicyViolation),
            ("ok", ObjectKind::Domain, Reason::PolicyViolation),
            ("clientHold", ObjectKind::Contact, Reason::PolicyViolation),
            (
                "clientRenewProhibited",
                ObjectKind::Host,
                Reason::PolicyViolation,
            ),
            ("clienthold", ObjectKind::Domain, Reason::InvalidField),
            ("", ObjectKind::Domain, Reason::InvalidField),
        ];
        for (value, kind, want) in cases {
            let err = ClientStatus::parse("add_statuses", value, *kind).unwrap_err();
            assert_eq!(err.reason(), *want, "{value} on {kind}");
            assert_eq!(err.field(), "add_statuses");
        }
    }

    #[test]
    fn changes_remove_first_and_refuse_no_ops() {
        let mut set = BTreeSet::from([ClientStatus::Hold]);
        change_statuses(
            &mut set,
            ObjectKind::Domain,
            &strings(&["clientDeleteProhibited"]),
            &strings(&["clientHold"]),
        )
        .unwrap();
        assert_eq!(set, BTreeSet::from([ClientStatus::DeleteProhibited]));

        let err = change_statuses(&mut set, ObjectKind::Domain, &[], &strings(&["clientHold"]))
            .unwrap_err();
        assert_eq!(err.reason(), Reason::PolicyViolation);
        let err = change_statuses(
            &mut set,
            ObjectKind::Domain,
            &strings(&["clientDeleteProhibited"]),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.field(), "add_statuses");
        let err = change_statuses(
            &mut set,
            ObjectKind::Domain,
            &strings(&["clientHold", "clientHold"]),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidField);
    }

    #[test]
    fn server_statuses_apply_only_to_the_object_types_their_rfc_defines() {
        let applies = |kind| -> Vec<&str> {
            ServerStatus::ALL
                .into_iter()
                .filter(|s| s.applies_to(kind))
                .map(|s| s.as_str())
                .collect()
        };
        assert_eq!(applies(ObjectKind::Domain).len(), 5);
        assert_eq!(
            applies(ObjectKind::Host),
            ["serverDeleteProhibited", "serverUpdateProhibited"]
        );
        assert_eq!(
            applies(ObjectKind::Contact),
            [
                "serverDeleteProhibited",
                "serverTransferProhibited",
                "serverUpdateProhibited"
            ]
        );
        let cases: &[(&str, ObjectKind, Reason)] = &[
            ("serverHold", ObjectKind::Host, Reason::PolicyViolation),
            (
                "serverTransferProhibited",
                ObjectKind::Host,
                Reason::PolicyViolation,
            ),
            (
                "serverRenewProhibited",
                ObjectKind::Contact,
                Reason::PolicyViolation,
            ),
            ("clientHold", ObjectKind::Host, Reason::InvalidField),
            ("serverhold", ObjectKind::Domain, Reason::InvalidField),
        ];
        for (value, kind, want) in cases {
            let err = ServerStatus::parse("add_statuses", value, *kind).unwrap_err();
            assert_eq!(err.reason(), *want, "{value} on {kind}");
        }
    }

    #[test]
    fn server_status_changes_need_a_reason_a_status_and_no_contradiction() {
        let lock = strings(&["serverUpdateProhibited"]);
        let change =
            ServerStatusChange::parse(ObjectKind::Host, &lock, &[], "court order").unwrap();
        let mut set = BTreeSet::from([ServerStatus::DeleteProhibited]);
        change.apply_to(&mut set);
        assert_eq!(
            set,
            BTreeSet::from([
                ServerStatus::DeleteProhibited,
                ServerStatus::UpdateProhibited
            ])
        );
        let cases = [
            (
                ServerStatusChange::parse(ObjectKind::Host, &lock, &[], ""),
                "reason",
            ),
            (
                ServerStatusChange::parse(ObjectKind::Host, &[], &[], "why"),
                "add_statuses",
            ),
            (
                ServerStatusChange::parse(ObjectKind::Host, &lock, &lock, "why"),
                "remove_statuses",
            ),
        ];
        for (got, field) in cases {
            let err = got.unwrap_err();
            assert_eq!((err.reason(), err.field()), (Reason::InvalidField, field));
        }
    }

    #[test]
    fn ok_stands_alone_but_for_linked() {
        assert!(check_combination(&strings(&["ok"])).is_ok());
        assert!(check_combination(&strings(&["linked", "ok"])).is_ok());
        assert!(check_combination(&strings(&["linked", "serverUpdateProhibited"])).is_ok());
        assert!(check_combination(&strings(&["ok", "serverUpdateProhibited"])).is_err());
        assert!(check_combination(&strings(&["pendingDelete", "serverDeleteProhibited"])).is_err());
    }

    #[test]
    fn update_prohibited_lets_only_its_removal_through() {
        let set = BTreeSet::from([ClientStatus::UpdateProhibited]);
        let err = check_update_allowed(&set, "name", ObjectKind::Domain, "a.nz", &[]).unwrap_err();
        assert_eq!(err.reason(), Reason::StatusProhibits);
        check_update_allowed(
            &set,
            "name",
            ObjectKind::Domain,
            "a.nz",
            &strings(&["clientUpdateProhibited"]),
        )
        .unwrap();
    }
}
