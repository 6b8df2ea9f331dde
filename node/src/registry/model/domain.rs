//! Domains (RFC 5731) and what hangs off them: their lifecycle state,
//! grace periods, transfers, suspensions and the handles on their due
//! events (with the due-event records themselves).

use super::*;

/// A domain contact's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum ContactRole {
    Admin,
    Tech,
    Billing,
}

impl ContactRole {
    pub fn from_proto(value: i32) -> Option<Self> {
        match v1::ContactType::try_from(value).ok()? {
            v1::ContactType::Admin => Some(ContactRole::Admin),
            v1::ContactType::Tech => Some(ContactRole::Tech),
            v1::ContactType::Billing => Some(ContactRole::Billing),
            v1::ContactType::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> v1::ContactType {
        match self {
            ContactRole::Admin => v1::ContactType::Admin,
            ContactRole::Tech => v1::ContactType::Tech,
            ContactRole::Billing => v1::ContactType::Billing,
        }
    }
}

/// A domain object, keyed by its A-label name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomainRecord {
    pub name: String,
    pub roid: String,
    /// `client*` statuses, set by the sponsor.
    pub statuses: BTreeSet<ClientStatus>,
    /// `server*` statuses set by registry staff (registry lock); suspensions
    /// add theirs on top (see [`DomainRecord::server_statuses_in_effect`]).
    pub server_statuses: BTreeSet<ServerStatus>,
    /// AUP suspensions in effect, by case id.
    pub suspensions: BTreeMap<u64, SuspensionInfo>,
    pub registrant: String,
    pub contacts: BTreeSet<(ContactRole, String)>,
    pub nameservers: BTreeSet<String>,
    /// In-bailiwick hosts that exist under this domain.
    pub subordinate_hosts: BTreeSet<String>,
    pub sponsor: String,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
    pub expiry_ms: i64,
    pub auth_info: String,
    /// Where the domain is in its life.
    pub state: DomainState,
    /// Grace periods that may still be in effect (expired ones are dropped
    /// on the next change).
    pub graces: Vec<Grace>,
    /// The pending transfer, or the most recent one.
    pub transfer: Option<TransferRecord>,
    /// Transfers are refused before this time.
    pub transfer_lock_until_ms: i64,
    /// This domain's entries in [`Cf::DueEvents`], so they can be moved or
    /// removed when the domain changes.
    pub events: Vec<ScheduledEvent>,
    /// DNSSEC delegation signer records (since format version 2).
    pub ds: BTreeSet<DsRecord>,
}

/// A DNSSEC delegation signer record, validated (`dnssec`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct DsRecord {
    pub key_tag: u16,
    pub algorithm: u8,
    pub digest_type: u8,
    pub digest: Vec<u8>,
}

impl DsRecord {
    /// The proto form (digest in upper-case hex).
    pub fn to_proto(&self) -> v1::DsData {
        v1::DsData {
            key_tag: self.key_tag.into(),
            algorithm: self.algorithm.into(),
            digest_type: self.digest_type.into(),
            digest: self.digest.iter().map(|b| format!("{b:02X}")).collect(),
        }
    }
}

/// [`DomainRecord`] as format version 1 wrote it, before domains had DS
/// records. Decoded only, never written; frozen as it was.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(super) struct DomainRecordV1 {
    pub(super) name: String,
    pub(super) roid: String,
    pub(super) statuses: BTreeSet<ClientStatus>,
    pub(super) server_statuses: BTreeSet<ServerStatus>,
    pub(super) suspensions: BTreeMap<u64, SuspensionInfo>,
    pub(super) registrant: String,
    pub(super) contacts: BTreeSet<(ContactRole, String)>,
    pub(super) nameservers: BTreeSet<String>,
    pub(super) subordinate_hosts: BTreeSet<String>,
    pub(super) sponsor: String,
    pub(super) created_by: String,
    pub(super) created_ms: i64,
    pub(super) updated_by: String,
    pub(super) updated_ms: i64,
    pub(super) expiry_ms: i64,
    pub(super) auth_info: String,
    pub(super) state: DomainState,
    pub(super) graces: Vec<Grace>,
    pub(super) transfer: Option<TransferRecord>,
    pub(super) transfer_lock_until_ms: i64,
    pub(super) events: Vec<ScheduledEvent>,
}

impl DomainRecordV1 {
    /// The record as format version 2 has it: no DS records.
    pub(super) fn upgrade(self) -> DomainRecord {
        DomainRecord {
            name: self.name,
            roid: self.roid,
            statuses: self.statuses,
            server_statuses: self.server_statuses,
            suspensions: self.suspensions,
            registrant: self.registrant,
            contacts: self.contacts,
            nameservers: self.nameservers,
            subordinate_hosts: self.subordinate_hosts,
            sponsor: self.sponsor,
            created_by: self.created_by,
            created_ms: self.created_ms,
            updated_by: self.updated_by,
            updated_ms: self.updated_ms,
            expiry_ms: self.expiry_ms,
            auth_info: self.auth_info,
            state: self.state,
            graces: self.graces,
            transfer: self.transfer,
            transfer_lock_until_ms: self.transfer_lock_until_ms,
            events: self.events,
            ds: BTreeSet::new(),
        }
    }
}

/// A suspension recorded against an AUP case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SuspensionInfo {
    pub reason: String,
    pub suspended_ms: i64,
    pub suspended_by: String,
}

/// Where a domain is in its life (RFC 3915).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DomainState {
    /// Registered (possibly in a grace period or pending transfer).
    Active,
    /// Deleted, restorable until `ends_ms` (rgp redemptionPeriod).
    Redemption { deleted_ms: i64, ends_ms: i64 },
    /// A restore was requested; the report is due by `report_due_ms`
    /// (rgp pendingRestore). The renewal charged with the request is
    /// refunded if the report never comes.
    PendingRestore {
        deleted_ms: i64,
        redemption_ends_ms: i64,
        report_due_ms: i64,
        renewal_minor_units: i64,
        renewal_sv_trid: String,
    },
    /// Past redemption; purged at `purge_ms` (rgp pendingDelete).
    PendingPurge { deleted_ms: i64, purge_ms: i64 },
}

impl DomainState {
    /// Whether the domain is pending deletion (any phase).
    pub fn is_deleted(&self) -> bool {
        !matches!(self, DomainState::Active)
    }
}

/// What a grace period covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum GraceKind {
    Add,
    Renew,
    AutoRenew,
    Transfer,
}

impl GraceKind {
    /// The RFC 3915 rgpStatus name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GraceKind::Add => "addPeriod",
            GraceKind::Renew => "renewPeriod",
            GraceKind::AutoRenew => "autoRenewPeriod",
            GraceKind::Transfer => "transferPeriod",
        }
    }
}

/// A grace period: a delete before `ends_ms` refunds `amount` to
/// `registrar` (the charge made by `sv_trid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Grace {
    pub kind: GraceKind,
    pub ends_ms: i64,
    pub registrar: String,
    pub amount_minor_units: i64,
    pub currency: String,
    pub sv_trid: String,
}

/// A domain transfer's outcome (RFC 5731 trStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TransferStatus {
    Pending,
    ClientApproved,
    ClientCancelled,
    ClientRejected,
    ServerApproved,
    ServerCancelled,
}

impl TransferStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Pending => "pending",
            TransferStatus::ClientApproved => "clientApproved",
            TransferStatus::ClientCancelled => "clientCancelled",
            TransferStatus::ClientRejected => "clientRejected",
            TransferStatus::ServerApproved => "serverApproved",
            TransferStatus::ServerCancelled => "serverCancelled",
        }
    }

    pub fn to_proto(self) -> v1::TransferStatus {
        match self {
            TransferStatus::Pending => v1::TransferStatus::Pending,
            TransferStatus::ClientApproved => v1::TransferStatus::ClientApproved,
            TransferStatus::ClientCancelled => v1::TransferStatus::ClientCancelled,
            TransferStatus::ClientRejected => v1::TransferStatus::ClientRejected,
            TransferStatus::ServerApproved => v1::TransferStatus::ServerApproved,
            TransferStatus::ServerCancelled => v1::TransferStatus::ServerCancelled,
        }
    }
}

/// A domain or contact transfer, pending or done (a contact's charges no
/// money: zero, no currency, no charge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TransferRecord {
    pub status: TransferStatus,
    pub gaining: String,
    pub losing: String,
    pub requested_ms: i64,
    pub action_due_ms: i64,
    pub acted_ms: i64,
    /// What the gaining registrar was charged with the request.
    pub charged_minor_units: i64,
    pub currency: String,
    pub charge_sv_trid: String,
}

/// Who may act on a pending transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferParty {
    /// The requesting registrar (cancels).
    Gaining,
    /// The sponsoring registrar (approves or rejects).
    Losing,
}

impl TransferRecord {
    /// The audit trail's line for this transfer as it stands.
    pub fn audit_line(&self) -> String {
        format!(
            "transfer {} ({} → {})",
            self.status.as_str(),
            self.losing,
            self.gaining
        )
    }

    /// Whether `registrar` is a party to this transfer.
    pub fn involves(&self, registrar: &str) -> bool {
        self.gaining == registrar || self.losing == registrar
    }

    /// Refuses unless `caller` is this transfer's `party`; `object` names
    /// what is transferred in the message ("example.nz", "contact c-1").
    pub fn check_party(
        &self,
        caller: &str,
        party: TransferParty,
        object: &str,
    ) -> Result<(), RegistryError> {
        let (who, what) = match party {
            TransferParty::Losing => (&self.losing, "the sponsoring registrar approves or rejects"),
            TransferParty::Gaining => (&self.gaining, "the requesting registrar cancels"),
        };
        if who != caller {
            return Err(RegistryError::NotAuthorized {
                field: "meta.actor".into(),
                message: format!(
                    "only {who} may do this to the transfer of {object} ({what}); {caller} asked"
                ),
            });
        }
        Ok(())
    }

    pub fn to_proto(&self, name: &str, expiry_ms: i64) -> v1::TransferData {
        v1::TransferData {
            name: name.into(),
            status: self.status.to_proto() as i32,
            status_name: self.status.as_str().into(),
            gaining_registrar: self.gaining.clone(),
            requested_ms: self.requested_ms,
            losing_registrar: self.losing.clone(),
            action_due_ms: self.action_due_ms,
            acted_ms: self.acted_ms,
            expiry_ms,
        }
    }
}

/// What a scheduled lifecycle event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum EventKind {
    /// At expiry: renew for a year, or delete if that is impossible.
    AutoRenew,
    /// The registry approves a pending transfer.
    TransferAutoApprove,
    /// Redemption ends: the domain becomes pendingDelete (purge pending).
    RedemptionEnd,
    /// A restore request's report is overdue: back to redemption.
    RestoreReportDue,
    /// The domain is purged.
    Purge,
    /// The registry approves a pending contact transfer (the event's
    /// `domain` holds the contact id).
    ContactTransferAutoApprove,
}

impl EventKind {
    /// The name audit records use.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::AutoRenew => "AutoRenew",
            EventKind::TransferAutoApprove => "TransferAutoApprove",
            EventKind::RedemptionEnd => "RedemptionEnd",
            EventKind::RestoreReportDue => "RestoreReportDue",
            EventKind::Purge => "Purge",
            EventKind::ContactTransferAutoApprove => "ContactTransferAutoApprove",
        }
    }
}

/// A domain's handle on one of its events in [`Cf::DueEvents`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScheduledEvent {
    pub kind: EventKind,
    pub due_ms: i64,
    pub id: u64,
}

/// The key of a due event: due time (sign bit flipped, so negative times
/// sort first), then the event id.
pub(crate) fn due_event_key(due_ms: i64, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&((due_ms as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// A lifecycle event waiting in [`Cf::DueEvents`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub id: u64,
    pub due_ms: i64,
    pub kind: EventKind,
    /// The domain it is for; the contact id for
    /// [`EventKind::ContactTransferAutoApprove`].
    pub domain: String,
}

impl Record for EventRecord {
    const CF: Cf = Cf::DueEvents;
    fn key(&self) -> Vec<u8> {
        due_event_key(self.due_ms, self.id)
    }
}

impl Record for DomainRecord {
    const CF: Cf = Cf::Domains;
    const FORMAT: u8 = super::RECORD_FORMAT_V2;
    fn key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
    fn decode_older(version: u8, body: &[u8]) -> Option<postcard::Result<(Self, &[u8])>> {
        (version == super::RECORD_FORMAT_V1).then(|| {
            postcard::take_from_bytes::<DomainRecordV1>(body)
                .map(|(old, rest)| (old.upgrade(), rest))
        })
    }
}

impl DomainRecord {
    /// Every contact id the domain refers to, in any role (registrant too),
    /// once each: the unit of [`ContactRecord::domain_refs`].
    pub fn referenced_contacts(&self) -> BTreeSet<&str> {
        self.contacts
            .iter()
            .map(|(_, id)| id.as_str())
            .chain(std::iter::once(self.registrant.as_str()))
            .collect()
    }

    /// The server statuses in effect: those staff set, plus serverHold and
    /// the update, delete and transfer prohibitions while suspended.
    pub fn server_statuses_in_effect(&self) -> BTreeSet<ServerStatus> {
        let mut all = self.server_statuses.clone();
        if !self.suspensions.is_empty() {
            all.extend(ServerStatus::SUSPENSION);
        }
        all
    }

    /// The transfer pending on this domain; `NOT_PENDING_TRANSFER` about
    /// the request's `name` when none is.
    pub fn pending_transfer(&self) -> Result<&TransferRecord, RegistryError> {
        self.transfer
            .as_ref()
            .filter(|t| t.status == TransferStatus::Pending)
            .ok_or_else(|| RegistryError::NotPendingTransfer {
                field: "name".into(),
                kind: ObjectKind::Domain,
                name: self.name.clone(),
            })
    }

    /// Whether a transfer is pending.
    pub fn transfer_pending(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| t.status == TransferStatus::Pending)
    }

    /// Whether the domain is published in the zone.
    pub fn in_zone(&self) -> bool {
        !self.nameservers.is_empty()
            && !self.statuses.contains(&ClientStatus::Hold)
            && !self
                .server_statuses_in_effect()
                .contains(&ServerStatus::Hold)
            && !self.state.is_deleted()
    }

    /// Every EPP status shown, sorted: client*, server*, pendingDelete,
    /// pendingTransfer, inactive, or ok when none applies.
    pub fn shown_statuses(&self) -> Vec<String> {
        let mut shown: BTreeSet<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
        shown.extend(self.server_statuses_in_effect().iter().map(|s| s.as_str()));
        if self.state.is_deleted() {
            shown.insert("pendingDelete");
        }
        if self.transfer_pending() {
            shown.insert("pendingTransfer");
        }
        if self.nameservers.is_empty() {
            shown.insert("inactive");
        }
        if shown.is_empty() {
            shown.insert("ok");
        }
        shown.into_iter().map(String::from).collect()
    }

    /// Grace periods still in effect at `now_ms`.
    pub fn active_graces(&self, now_ms: i64) -> impl Iterator<Item = &Grace> {
        self.graces.iter().filter(move |g| g.ends_ms > now_ms)
    }

    /// RFC 3915 rgpStatus values at `now_ms`.
    pub fn rgp_statuses(&self, now_ms: i64) -> Vec<String> {
        let mut out: Vec<String> = self
            .active_graces(now_ms)
            .map(|g| g.kind.as_str().to_string())
            .collect();
        match &self.state {
            DomainState::Active => {}
            DomainState::Redemption { .. } => out.push("redemptionPeriod".into()),
            DomainState::PendingRestore { .. } => out.push("pendingRestore".into()),
            DomainState::PendingPurge { .. } => out.push("pendingDelete".into()),
        }
        out
    }

    /// The wire form at registry time `now_ms`; auth info only for the
    /// sponsor.
    pub fn to_proto(&self, viewer: &str, now_ms: i64) -> v1::Domain {
        let (deleted_ms, purge_ms) = match &self.state {
            DomainState::Active => (0, 0),
            DomainState::Redemption { deleted_ms, .. }
            | DomainState::PendingRestore { deleted_ms, .. } => (*deleted_ms, 0),
            DomainState::PendingPurge {
                deleted_ms,
                purge_ms,
            } => (*deleted_ms, *purge_ms),
        };
        v1::Domain {
            name: self.name.clone(),
            unicode_name: names::to_unicode(&self.name).unwrap_or_default(),
            roid: self.roid.clone(),
            statuses: self.shown_statuses(),
            registrant: self.registrant.clone(),
            contacts: self
                .contacts
                .iter()
                .map(|(role, id)| v1::DomainContact {
                    r#type: role.to_proto() as i32,
                    contact_id: id.clone(),
                })
                .collect(),
            nameservers: self.nameservers.iter().cloned().collect(),
            subordinate_hosts: self.subordinate_hosts.iter().cloned().collect(),
            sponsor: self.sponsor.clone(),
            created_by: self.created_by.clone(),
            created_ms: self.created_ms,
            updated_by: self.updated_by.clone(),
            updated_ms: self.updated_ms,
            expiry_ms: self.expiry_ms,
            auth_info: if viewer == self.sponsor {
                self.auth_info.clone()
            } else {
                String::new()
            },
            rgp_statuses: self.rgp_statuses(now_ms),
            in_zone: self.in_zone(),
            suspensions: self
                .suspensions
                .iter()
                .map(|(id, s)| v1::Suspension {
                    case_id: *id,
                    reason: s.reason.clone(),
                    suspended_ms: s.suspended_ms,
                    suspended_by: s.suspended_by.clone(),
                })
                .collect(),
            transfer_lock_until_ms: self.transfer_lock_until_ms,
            ds_data: self.ds.iter().map(DsRecord::to_proto).collect(),
            deleted_ms,
            purge_ms,
            grace_periods: self
                .active_graces(now_ms)
                .map(|g| v1::GracePeriod {
                    kind: g.kind.as_str().into(),
                    ends_ms: g.ends_ms,
                    refundable: Some(v1::Money {
                        minor_units: g.amount_minor_units,
                        currency: g.currency.clone(),
                    }),
                })
                .collect(),
            transfer: self
                .transfer
                .as_ref()
                .map(|t| t.to_proto(&self.name, self.expiry_ms)),
        }
    }
}
