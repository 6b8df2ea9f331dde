//! EPP result codes (RFC 5730 section 3) and the one table that maps the
//! cluster's rejection reasons onto them.

use kauri_proto::v1::Reason;

/// An EPP result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub u16);

impl Code {
    /// 1000.
    pub const OK: Code = Code(1000);
    /// 1001: action pending (a transfer request, a deletion into the
    /// redemption period).
    pub const PENDING: Code = Code(1001);
    /// 1300: the poll queue is empty.
    pub const NO_MESSAGES: Code = Code(1300);
    /// 1301: a poll message; acknowledge it to see the next.
    pub const ACK_TO_DEQUEUE: Code = Code(1301);
    /// 1500: logout.
    pub const ENDING_SESSION: Code = Code(1500);
    /// 2000.
    pub const UNKNOWN_COMMAND: Code = Code(2000);
    /// 2001.
    pub const SYNTAX_ERROR: Code = Code(2001);
    /// 2002.
    pub const USE_ERROR: Code = Code(2002);
    /// 2003.
    pub const MISSING_PARAMETER: Code = Code(2003);
    /// 2004.
    pub const VALUE_RANGE: Code = Code(2004);
    /// 2005.
    pub const VALUE_SYNTAX: Code = Code(2005);
    /// 2100.
    pub const UNIMPLEMENTED_VERSION: Code = Code(2100);
    /// 2101.
    pub const UNIMPLEMENTED_COMMAND: Code = Code(2101);
    /// 2102.
    pub const UNIMPLEMENTED_OPTION: Code = Code(2102);
    /// 2103.
    pub const UNIMPLEMENTED_EXTENSION: Code = Code(2103);
    /// 2200.
    pub const AUTHENTICATION: Code = Code(2200);
    /// 2201.
    pub const AUTHORIZATION: Code = Code(2201);
    /// 2306.
    pub const POLICY: Code = Code(2306);
    /// 2307.
    pub const UNIMPLEMENTED_OBJECT: Code = Code(2307);
    /// 2400.
    pub const FAILED: Code = Code(2400);
    /// 2500.
    pub const FAILED_CLOSING: Code = Code(2500);
    /// 2501.
    pub const AUTHENTICATION_CLOSING: Code = Code(2501);
    /// 2502.
    pub const SESSION_LIMIT: Code = Code(2502);

    /// The RFC's message for the code.
    pub fn message(self) -> &'static str {
        match self.0 {
            1000 => "Command completed successfully",
            1001 => "Command completed successfully; action pending",
            1300 => "Command completed successfully; no messages",
            1301 => "Command completed successfully; ack to dequeue",
            1500 => "Command completed successfully; ending session",
            2000 => "Unknown command",
            2001 => "Command syntax error",
            2002 => "Command use error",
            2003 => "Required parameter missing",
            2004 => "Parameter value range error",
            2005 => "Parameter value syntax error",
            2100 => "Unimplemented protocol version",
            2101 => "Unimplemented command",
            2102 => "Unimplemented option",
            2103 => "Unimplemented extension",
            2104 => "Billing failure",
            2105 => "Object is not eligible for renewal",
            2106 => "Object is not eligible for transfer",
            2200 => "Authentication error",
            2201 => "Authorization error",
            2202 => "Invalid authorization information",
            2300 => "Object pending transfer",
            2301 => "Object not pending transfer",
            2302 => "Object exists",
            2303 => "Object does not exist",
            2304 => "Object status prohibits operation",
            2305 => "Object association prohibits operation",
            2306 => "Parameter value policy error",
            2307 => "Unimplemented object service",
            2308 => "Data management policy violation",
            2400 => "Command failed",
            2500 => "Command failed; server closing connection",
            2501 => "Authentication error; server closing connection",
            2502 => "Session limit exceeded; server closing connection",
            _ => "Command failed",
        }
    }

    /// Whether the server closes the connection after this result.
    pub fn closes(self) -> bool {
        matches!(self.0, 1500 | 2500..=2502)
    }
}

/// Every code RFC 5730 defines.
pub const DEFINED: [u16; 34] = [
    1000, 1001, 1300, 1301, 1500, 2000, 2001, 2002, 2003, 2004, 2005, 2100, 2101, 2102, 2103, 2104,
    2105, 2106, 2200, 2201, 2202, 2300, 2301, 2302, 2303, 2304, 2305, 2306, 2307, 2308, 2400, 2500,
    2501, 2502,
];

/// The EPP result for a rejection the cluster gave `reason`: the one
/// table of the mapping.
pub fn for_reason(reason: Reason) -> Code {
    use Reason::*;
    Code(match reason {
        InvalidField | InvalidName => 2005,
        // RFC 8748: a stated fee below the price is a value range error.
        TooLong | FeeMismatch => 2004,
        UnknownTld | PeriodNotAllowed | ExpiryDateMismatch | PolicyViolation | LimitExceeded => {
            2306
        }
        ObjectExists => 2302,
        ObjectNotFound => 2303,
        NotSponsor | NotAuthorized => 2201,
        InsufficientFunds | CurrencyMismatch => 2104,
        ObjectInUse => 2305,
        // The clTRID was used before for another command.
        IdempotencyConflict => 2002,
        AuthenticationFailed => 2200,
        StatusProhibits => 2304,
        InvalidAuthInfo => 2202,
        NotEligibleForTransfer => 2106,
        PendingTransfer => 2300,
        NotPendingTransfer => 2301,
        // The session expired or was closed: log in again.
        SessionInvalid => 2002,
        SessionLimit => 2502,
        Throttled => 2501,
        Unspecified | NotLeader | StaleRead | Unavailable | Internal => 2400,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_maps_to_a_code_the_rfc_defines() {
        for value in 0..=40 {
            let Ok(reason) = Reason::try_from(value) else {
                continue;
            };
            let code = for_reason(reason);
            assert!(DEFINED.contains(&code.0), "{reason:?} -> {}", code.0);
            assert!((2000..=2502).contains(&code.0), "{reason:?}");
        }
        assert_eq!(for_reason(Reason::Unavailable), Code::FAILED);
        assert!(Code::ENDING_SESSION.closes() && !Code::OK.closes());
    }
}
