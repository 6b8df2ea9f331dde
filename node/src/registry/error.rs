//! Registry rejections as values.
//!
//! Every way the registry can refuse a command is a [`RegistryError`]
//! variant that knows its proto [`Reason`] (and through it the EPP result
//! code the gateway sends) and the request field it is about. The `Display`
//! text is the human message: it names the field and the offending value.
//! Storage faults travel in the same type so `?` works across layers, but
//! they are never stored as a command outcome: apply returns them as `Err`.

use std::fmt;

use kauri_proto::v1::Reason;

use super::engine::StorageFault;

/// The kind of registry object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A top-level domain and its policy.
    Tld,
    /// A registrar account.
    Registrar,
    /// A contact (RFC 5733).
    Contact,
    /// A host (RFC 5732).
    Host,
    /// A domain (RFC 5731).
    Domain,
    /// A message in a registrar's poll queue.
    PollMessage,
    /// An AUP complaint case.
    Case,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Tld => "TLD",
            ObjectKind::Registrar => "registrar",
            ObjectKind::Contact => "contact",
            ObjectKind::Host => "host",
            ObjectKind::Domain => "domain",
            ObjectKind::PollMessage => "poll message",
            ObjectKind::Case => "case",
        })
    }
}

/// Why the registry refused a command or a read. Each variant maps 1:1 onto
/// a proto [`Reason`] ([`RegistryError::reason`]) and names the request field
/// it is about ([`RegistryError::field`]).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A required field is missing or a value has the wrong syntax.
    #[error("{field}: {message}")]
    InvalidField {
        /// The request field.
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// A domain or host name is not a valid LDH / IDNA2008 name.
    #[error("{field}: {name:?} is not a valid name: {message}")]
    InvalidName {
        /// The request field.
        field: String,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        message: String,
    },

    /// A name, label or other value exceeds its length limit.
    #[error("{field}: {what} is {len} long, at most {max} allowed")]
    TooLong {
        /// The request field.
        field: String,
        /// The value (or label) that is too long, quoted, with its unit.
        what: String,
        /// Its length in the unit of the limit.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The name's TLD is not served by this registry.
    #[error("{field}: {name:?} is not under a TLD served by this registry: {message}")]
    UnknownTld {
        /// The request field.
        field: String,
        /// The normalised name.
        name: String,
        /// Which TLD was looked for.
        message: String,
    },

    /// The object already exists.
    #[error("{field}: {kind} {name:?} already exists")]
    ObjectExists {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name or id.
        name: String,
    },

    /// The object does not exist.
    #[error("{field}: {kind} {name:?} does not exist")]
    ObjectNotFound {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name or id.
        name: String,
    },

    /// The caller is not the sponsoring registrar of the object.
    #[error("{field}: {kind} {name:?} is sponsored by another registrar")]
    NotSponsor {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name or id.
        name: String,
    },

    /// The registrar's balance does not cover the charge. Nothing was charged.
    #[error(
        "{field}: balance {balance_minor_units} {currency} does not cover the charge of \
         {price_minor_units} {currency}"
    )]
    InsufficientFunds {
        /// The request field.
        field: String,
        /// The registrar's balance before the command.
        balance_minor_units: i64,
        /// What the command would have cost.
        price_minor_units: i64,
        /// The currency of both amounts.
        currency: String,
    },

    /// The registration period is outside the allowed range.
    #[error("{field}: {message}")]
    PeriodNotAllowed {
        /// The request field.
        field: String,
        /// The period asked for and the range allowed.
        message: String,
    },

    /// The current expiry date given with a renew is not the domain's.
    #[error("{field}: {given:?} is not the current expiry date of the domain ({actual})")]
    ExpiryDateMismatch {
        /// The request field.
        field: String,
        /// The date the client gave.
        given: String,
        /// The domain's current expiry date, YYYY-MM-DD (UTC).
        actual: String,
    },

    /// The object is referenced by other objects and cannot be deleted.
    #[error("{field}: {kind} {name:?} is in use: {message}")]
    ObjectInUse {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name or id.
        name: String,
        /// What still refers to it.
        message: String,
    },

    /// A value violates registry policy.
    #[error("{field}: {message}")]
    PolicyViolation {
        /// The request field.
        field: String,
        /// Which rule and which value.
        message: String,
    },

    /// The idempotency key was already used for a different request.
    #[error(
        "{field}: client transaction id {cl_trid:?} of {actor:?} was already used for a \
         different request"
    )]
    IdempotencyConflict {
        /// The request field.
        field: String,
        /// The actor of the key.
        actor: String,
        /// The client transaction id of the key.
        cl_trid: String,
    },

    /// The acting registrar does not exist.
    #[error("{field}: {actor:?} is not a registrar of this registry")]
    AuthenticationFailed {
        /// The request field.
        field: String,
        /// The actor as given.
        actor: String,
    },

    /// The price's currency differs from the registrar's account currency.
    #[error(
        "{field}: {object:?} is priced in {price_currency} but the registrar's account is in \
         {registrar_currency}"
    )]
    CurrencyMismatch {
        /// The request field.
        field: String,
        /// The object priced (domain name).
        object: String,
        /// The registrar's account currency.
        registrar_currency: String,
        /// The TLD's price currency.
        price_currency: String,
    },

    /// A per-request or per-object limit was exceeded.
    #[error("{field}: {message}")]
    LimitExceeded {
        /// The request field.
        field: String,
        /// Which limit and by how much.
        message: String,
    },

    /// A status on the object forbids the operation.
    #[error("{field}: {kind} {name:?} has status {status}")]
    StatusProhibits {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name or id.
        name: String,
        /// The status that forbids the operation.
        status: String,
    },

    /// The auth info given does not match the object's.
    #[error("{field}: the auth info of {kind} {name:?} does not match")]
    InvalidAuthInfo {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name.
        name: String,
    },

    /// The object cannot be transferred now.
    #[error("{field}: {kind} {name:?} is not eligible for transfer: {message}")]
    NotEligibleForTransfer {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name.
        name: String,
        /// Why not.
        message: String,
    },

    /// A transfer of the object is already pending.
    #[error("{field}: a transfer of {kind} {name:?} is already pending")]
    PendingTransfer {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name.
        name: String,
    },

    /// No transfer of the object is pending (or, for a query, ever was).
    #[error("{field}: no transfer of {kind} {name:?} is pending")]
    NotPendingTransfer {
        /// The request field.
        field: String,
        /// What kind of object.
        kind: ObjectKind,
        /// Its normalised name.
        name: String,
    },

    /// The caller may not do this to the object.
    #[error("{field}: {message}")]
    NotAuthorized {
        /// The request field.
        field: String,
        /// Who may, and who asked.
        message: String,
    },

    /// A session command names a session that is not open for the caller
    /// (unknown, closed, expired, another registrar's or another gateway's).
    #[error("{field}: {message}")]
    SessionInvalid {
        /// The request field.
        field: String,
        /// Which of those it is.
        message: String,
    },

    /// The registrar already has as many open sessions as allowed.
    #[error(
        "{field}: registrar {registrar:?} already has {max} open sessions, the most allowed; \
         close one (EPP logout) or wait for one to expire"
    )]
    SessionLimit {
        /// The request field.
        field: String,
        /// The registrar.
        registrar: String,
        /// The limit.
        max: usize,
    },

    /// The fee the registrar agreed to (RFC 8748) does not cover the price.
    #[error("{field}: {message}")]
    FeeMismatch {
        /// The request field.
        field: String,
        /// The price and the fee stated.
        message: String,
    },

    /// The storage underneath failed; not a rejection of the command.
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

impl RegistryError {
    /// The proto reason, which the gateway maps 1:1 onto an EPP result code.
    pub fn reason(&self) -> Reason {
        match self {
            RegistryError::InvalidField { .. } => Reason::InvalidField,
            RegistryError::InvalidName { .. } => Reason::InvalidName,
            RegistryError::TooLong { .. } => Reason::TooLong,
            RegistryError::UnknownTld { .. } => Reason::UnknownTld,
            RegistryError::ObjectExists { .. } => Reason::ObjectExists,
            RegistryError::ObjectNotFound { .. } => Reason::ObjectNotFound,
            RegistryError::NotSponsor { .. } => Reason::NotSponsor,
            RegistryError::InsufficientFunds { .. } => Reason::InsufficientFunds,
            RegistryError::PeriodNotAllowed { .. } => Reason::PeriodNotAllowed,
            RegistryError::ExpiryDateMismatch { .. } => Reason::ExpiryDateMismatch,
            RegistryError::ObjectInUse { .. } => Reason::ObjectInUse,
            RegistryError::PolicyViolation { .. } => Reason::PolicyViolation,
            RegistryError::IdempotencyConflict { .. } => Reason::IdempotencyConflict,
            RegistryError::AuthenticationFailed { .. } => Reason::AuthenticationFailed,
            RegistryError::CurrencyMismatch { .. } => Reason::CurrencyMismatch,
            RegistryError::LimitExceeded { .. } => Reason::LimitExceeded,
            RegistryError::StatusProhibits { .. } => Reason::StatusProhibits,
            RegistryError::InvalidAuthInfo { .. } => Reason::InvalidAuthInfo,
            RegistryError::NotEligibleForTransfer { .. } => Reason::NotEligibleForTransfer,
            RegistryError::PendingTransfer { .. } => Reason::PendingTransfer,
            RegistryError::NotPendingTransfer { .. } => Reason::NotPendingTransfer,
            RegistryError::NotAuthorized { .. } => Reason::NotAuthorized,
            RegistryError::SessionInvalid { .. } => Reason::SessionInvalid,
            RegistryError::SessionLimit { .. } => Reason::SessionLimit,
            RegistryError::FeeMismatch { .. } => Reason::FeeMismatch,
            RegistryError::Storage(_) => Reason::Internal,
        }
    }

    /// The request field the error is about (e.g. `"name"`,
    /// `"period_years"`, `"meta.cl_trid"`); empty for storage faults.
    pub fn field(&self) -> &str {
        match self {
            RegistryError::InvalidField { field, .. }
            | RegistryError::InvalidName { field, .. }
            | RegistryError::TooLong { field, .. }
            | RegistryError::UnknownTld { field, .. }
            | RegistryError::ObjectExists { field, .. }
            | RegistryError::ObjectNotFound { field, .. }
            | RegistryError::NotSponsor { field, .. }
            | RegistryError::InsufficientFunds { field, .. }
            | RegistryError::PeriodNotAllowed { field, .. }
            | RegistryError::ExpiryDateMismatch { field, .. }
            | RegistryError::ObjectInUse { field, .. }
            | RegistryError::PolicyViolation { field, .. }
            | RegistryError::IdempotencyConflict { field, .. }
            | RegistryError::AuthenticationFailed { field, .. }
            | RegistryError::CurrencyMismatch { field, .. }
            | RegistryError::LimitExceeded { field, .. }
            | RegistryError::StatusProhibits { field, .. }
            | RegistryError::InvalidAuthInfo { field, .. }
            | RegistryError::NotEligibleForTransfer { field, .. }
            | RegistryError::PendingTransfer { field, .. }
            | RegistryError::NotPendingTransfer { field, .. }
            | RegistryError::NotAuthorized { field, .. }
            | RegistryError::SessionInvalid { field, .. }
            | RegistryError::SessionLimit { field, .. }
            | RegistryError::FeeMismatch { field, .. } => field,
            RegistryError::Storage(_) => "",
        }
    }

    /// Shorthand for [`RegistryError::InvalidField`].
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        RegistryError::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`RegistryError::PolicyViolation`].
    pub(crate) fn policy(field: impl Into<String>, message: impl Into<String>) -> Self {
        RegistryError::PolicyViolation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`RegistryError::TooLong`]; `what` is quoted in the
    /// message and `unit` follows the length ("characters", "octets").
    pub(crate) fn too_long(
        field: impl Into<String>,
        what: &str,
        len: usize,
        unit: &str,
        max: usize,
    ) -> Self {
        RegistryError::TooLong {
            field: field.into(),
            what: format!("{what:?} ({unit})"),
            len,
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_names_its_field_in_the_message() {
        let errors = [
            RegistryError::invalid("meta.cl_trid", "must be 3 to 64 printable characters"),
            RegistryError::ObjectExists {
                field: "name".into(),
                kind: ObjectKind::Domain,
                name: "example.nz".into(),
            },
            RegistryError::InsufficientFunds {
                field: "period_years".into(),
                balance_minor_units: 5,
                price_minor_units: 10,
                currency: "NZD".into(),
            },
            RegistryError::too_long("name", "aaaa", 64, "octets", 63),
        ];
        for e in errors {
            assert!(
                e.to_string().starts_with(e.field()),
                "{e} does not start with {}",
                e.field()
            );
            assert_ne!(e.reason(), Reason::Unspecified);
        }
    }

    #[test]
    fn storage_faults_are_internal() {
        let e = RegistryError::from(StorageFault("disk on fire".into()));
        assert_eq!(e.reason(), Reason::Internal);
        assert_eq!(e.field(), "");
        assert!(e.to_string().contains("disk on fire"));
    }
}
