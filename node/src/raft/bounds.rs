//! Sanity bounds on what a peer's Raft message may say, checked before
//! openraft sees it.
//!
//! Authentication admits only this cluster's node certificates, but a buggy
//! or compromised peer must still not be able to wreck the others with one
//! message. openraft trusts terms and indexes: a vote of term `u64::MAX`
//! would be stored durably and then overflow at the next election on every
//! node, on every restart. So terms and indexes are bounded far below the
//! integer range ([`MAX_TERM`], [`MAX_INDEX`]), a message may raise the term
//! by at most [`MAX_TERM_JUMP`], log ids may not name a term above the vote
//! that carries them, and a node certificate speaks only as its own node id.
//! Each refusal names the field and the value.

use super::{typ, NodeId};

/// Highest term a message may carry: a cluster electing a leader every
/// millisecond would need 146 million years to reach it, and `term + 1`
/// stays far from overflowing.
pub const MAX_TERM: u64 = 1 << 62;
/// Highest log index a message may carry (the same margin).
pub const MAX_INDEX: u64 = 1 << 62;
/// Most a single message may raise the receiver's term by. A legitimate
/// candidate is one election ahead, or as many as it ran while cut off
/// (one per election timeout); 2^32 of those take decades.
pub const MAX_TERM_JUMP: u64 = 1 << 32;
/// Longest snapshot id accepted; ids become file names.
pub const MAX_SNAPSHOT_ID_CHARS: usize = 128;

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfBounds(pub String);

fn refuse<T>(message: String) -> Result<T, OutOfBounds> {
    Err(OutOfBounds(message))
}

/// What the receiving node knows when it checks a message.
#[derive(Debug, Clone, Copy)]
pub struct Receiver {
    /// The receiver's current term.
    pub term: u64,
    /// The node id of the authenticated sender (`None` over plain text).
    pub sender: Option<NodeId>,
}

fn check_term(field: &str, term: u64) -> Result<(), OutOfBounds> {
    if term > MAX_TERM {
        return refuse(format!(
            "{field} term {term} is above the highest term accepted ({MAX_TERM})"
        ));
    }
    Ok(())
}

/// Checks a vote a peer sent: bounded, not too far ahead, and cast by the
/// sender itself.
fn check_vote(field: &str, vote: &typ::Vote, receiver: &Receiver) -> Result<(), OutOfBounds> {
    let term = vote.leader_id.term;
    check_term(field, term)?;
    if term > receiver.term.saturating_add(MAX_TERM_JUMP) {
        return refuse(format!(
            "{field} term {term} jumps more than {MAX_TERM_JUMP} past this node's term {}",
            receiver.term
        ));
    }
    if let Some(sender) = receiver.sender {
        if vote.leader_id.node_id != sender {
            return refuse(format!(
                "{field} is for node {}, but the certificate is node {sender}'s: a node speaks \
                 only for itself",
                vote.leader_id.node_id
            ));
        }
    }
    Ok(())
}

/// Checks a log id carried under a vote of term `vote_term` (`None`: the
/// log id comes from a reply and only the absolute bounds apply).
fn check_log_id(
    field: &str,
    log_id: &Option<typ::LogId>,
    vote_term: Option<u64>,
) -> Result<(), OutOfBounds> {
    let Some(log_id) = log_id else {
        return Ok(());
    };
    check_term(field, log_id.leader_id.term)?;
    if log_id.index > MAX_INDEX {
        return refuse(format!(
            "{field} index {} is above the highest index accepted ({MAX_INDEX})",
            log_id.index
        ));
    }
    if let Some(vote_term) = vote_term {
        if log_id.leader_id.term > vote_term {
            return refuse(format!(
                "{field} term {} is above the term {vote_term} of the vote carrying it",
                log_id.leader_id.term
            ));
        }
    }
    Ok(())
}

/// Checks an `AppendEntries` request: its vote, its previous log id, its
/// entries (consecutive, right after the previous log id) and its commit.
pub fn append_entries(
    rpc: &typ::AppendEntriesRequest,
    receiver: &Receiver,
) -> Result<(), OutOfBounds> {
    check_vote("vote", &rpc.vote, receiver)?;
    let term = Some(rpc.vote.leader_id.term);
    check_log_id("prev_log_id", &rpc.prev_log_id, term)?;
    check_log_id("leader_commit", &rpc.leader_commit, term)?;
    let first = rpc.prev_log_id.map_or(0, |l| l.index + 1);
    for (expected, entry) in (first..).zip(&rpc.entries) {
        check_log_id("entry log id", &Some(entry.log_id), term)?;
        if entry.log_id.index != expected {
            return refuse(format!(
                "entry index {} where {expected} was due: entries must follow prev_log_id \
                 without gaps",
                entry.log_id.index
            ));
        }
    }
    Ok(())
}

/// Checks a `Vote` request.
pub fn vote(rpc: &typ::VoteRequest, receiver: &Receiver) -> Result<(), OutOfBounds> {
    check_vote("vote", &rpc.vote, receiver)?;
    check_log_id(
        "last_log_id",
        &rpc.last_log_id,
        Some(rpc.vote.leader_id.term),
    )
}

/// Checks the metadata of a snapshot being sent under `vote`.
pub fn snapshot(
    vote: &typ::Vote,
    meta: &typ::SnapshotMeta,
    receiver: &Receiver,
) -> Result<(), OutOfBounds> {
    check_vote("vote", vote, receiver)?;
    let term = Some(vote.leader_id.term);
    check_log_id("snapshot last_log_id", &meta.last_log_id, term)?;
    check_log_id(
        "snapshot membership log id",
        meta.last_membership.log_id(),
        term,
    )?;
    snapshot_id(&meta.snapshot_id)
}

/// Checks a snapshot id, which becomes part of file names: short, and only
/// letters, digits, `-` and `_`.
pub fn snapshot_id(id: &str) -> Result<(), OutOfBounds> {
    let plain = !id.is_empty()
        && id.len() <= MAX_SNAPSHOT_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return refuse(format!(
            "snapshot id {:?} is not 1 to {MAX_SNAPSHOT_ID_CHARS} letters, digits, '-' or '_'",
            kauri_client::tls::shorten(id)
        ));
    }
    Ok(())
}

/// Checks the vote of a peer's reply (a higher vote it reports is adopted).
pub fn reply_vote(vote: &typ::Vote) -> Result<(), OutOfBounds> {
    check_term("reply vote", vote.leader_id.term)
}

/// Checks a log id of a peer's reply.
pub fn reply_log_id(field: &str, log_id: &Option<typ::LogId>) -> Result<(), OutOfBounds> {
    check_log_id(field, log_id, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::LogPayload;
    use openraft::{CommittedLeaderId, EntryPayload, LeaderId, LogId};

    fn vote(term: u64, node: u64) -> typ::Vote {
        typ::Vote {
            leader_id: LeaderId::new(term, node),
            committed: true,
        }
    }

    fn log_id(term: u64, index: u64) -> typ::LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64, index: u64) -> typ::Entry {
        typ::Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(LogPayload(vec![1, 2, 3])),
        }
    }

    fn append(term: u64, prev: Option<u64>, entries: Vec<typ::Entry>) -> typ::AppendEntriesRequest {
        typ::AppendEntriesRequest {
            vote: vote(term, 1),
            prev_log_id: prev.map(|i| log_id(term, i)),
            leader_commit: None,
            entries,
        }
    }

    const AT_5: Receiver = Receiver {
        term: 5,
        sender: Some(1),
    };

    #[test]
    fn an_ordinary_append_passes() {
        let rpc = append(5, Some(10), vec![entry(5, 11), entry(5, 12)]);
        append_entries(&rpc, &AT_5).unwrap();
        append_entries(&append(6, None, vec![entry(6, 0)]), &AT_5).unwrap();
    }

    #[test]
    fn terms_near_the_integer_limit_are_refused() {
        let e = append_entries(&append(u64::MAX, None, vec![]), &AT_5).unwrap_err();
        assert!(e.0.contains("above the highest term"), "{e}");
        let far = Receiver {
            term: MAX_TERM,
            sender: None,
        };
        assert!(append_entries(&append(MAX_TERM + 1, None, vec![]), &far).is_err());
        assert!(append_entries(&append(MAX_TERM, None, vec![]), &far).is_ok());
    }

    #[test]
    fn a_jump_of_more_than_the_bound_is_refused() {
        let e = append_entries(&append(5 + MAX_TERM_JUMP + 1, None, vec![]), &AT_5).unwrap_err();
        assert!(e.0.contains("jumps"), "{e}");
        append_entries(&append(5 + MAX_TERM_JUMP, None, vec![]), &AT_5).unwrap();
    }

    #[test]
    fn a_node_speaks_only_for_itself() {
        let other = Receiver {
            term: 5,
            sender: Some(2),
        };
        let e = append_entries(&append(5, None, vec![]), &other).unwrap_err();
        assert!(e.0.contains("node 2's"), "{e}");
        let plain = Receiver {
            term: 5,
            sender: None,
        };
        append_entries(&append(5, None, vec![]), &plain).unwrap();
    }

    #[test]
    fn entries_must_follow_their_predecessor_and_term() {
        let gap = append(5, Some(10), vec![entry(5, 12)]);
        assert!(append_entries(&gap, &AT_5).unwrap_err().0.contains("gaps"));
        let future = append(5, Some(10), vec![entry(6, 11)]);
        assert!(append_entries(&future, &AT_5)
            .unwrap_err()
            .0
            .contains("vote carrying"));
        let huge = append(5, Some(MAX_INDEX), vec![]);
        assert!(append_entries(&huge, &AT_5).is_ok());
        let beyond = append(5, Some(MAX_INDEX + 1), vec![]);
        assert!(append_entries(&beyond, &AT_5).is_err());
    }

    #[test]
    fn snapshot_ids_are_plain_file_name_parts() {
        snapshot_id("5-1-1234-7").unwrap();
        for bad in ["", "../../etc", "a/b", "a.ckpt", &"x".repeat(200)] {
            assert!(snapshot_id(bad).is_err(), "{bad:?}");
        }
    }
}
