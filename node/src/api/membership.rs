//! Changing the cluster's membership one step at a time: adding learners,
//! promoting them to voters once they have caught up, demoting voters and
//! removing nodes (`Cluster.ChangeMembership`, `kauri cluster add-learner`,
//! `promote`, `demote`, `remove`).
//!
//! [`plan`] decides, from the membership the leader holds now, what a
//! request means and whether it is allowed; it is a pure function, so its
//! rules are tested without a cluster. [`change`] then asks openraft for the
//! change (joint consensus; openraft refuses a second change while one is
//! in progress).
//!
//! The rules:
//! - a request for what already holds (a learner added again at the same
//!   address, a voter promoted again, ...) changes nothing: a client's retry
//!   after a lost answer is harmless;
//! - a learner is promoted only once it is at most [`MAX_PROMOTE_LAG`]
//!   entries behind the leader's log;
//! - the last voter is never demoted or removed;
//! - the main site, the site of the leader unless the request names one,
//!   keeps a majority of the voters by itself: a change that would take
//!   that away (or make it thinner when it is already missing) is refused,
//!   so losing the far site never costs the main one its quorum. Failing
//!   back names the site the voters return to;
//! - the leadership goes only to a voter, and not while a membership change
//!   is in progress (the transfer itself is [`super::handover`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use kauri_proto::v1::{ChangeMembershipRequest, Member, MembershipOp, Reason};
use openraft::ChangeMembers;
use tonic::Status;

use super::status;
use crate::raft::{typ, NodeId, NodeInfo};

/// How far (in log entries) a learner may be behind the leader's log and
/// still be promoted.
pub const MAX_PROMOTE_LAG: u64 = 64;
/// Longest site label.
pub const MAX_SITE_CHARS: usize = 64;

/// The membership as the leader sees it.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Every member (voters and learners) and where it is.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// The voters.
    pub voters: BTreeSet<NodeId>,
    /// This node (the leader, when a plan is made).
    pub leader: NodeId,
    /// The leader's site: the main site.
    pub leader_site: String,
    /// Whether a joint (two-configuration) membership is in effect.
    pub joint: bool,
    /// The leader's last log index.
    pub last_log_index: u64,
    /// The last log index each member is known to hold (on the leader;
    /// empty elsewhere).
    pub matched: BTreeMap<NodeId, u64>,
    /// How far behind each member is in registry time, seconds: the
    /// proposal time of the leader's last entry less that of the member's
    /// (on the leader).
    pub lag_seconds: BTreeMap<NodeId, f64>,
    /// How long ago each peer last answered this node.
    pub last_contact: BTreeMap<NodeId, std::time::Duration>,
}

/// What losing the main site now would cost: what the best-placed node
/// outside it lacks of the leader's log.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossWindow {
    /// Members outside the main site.
    pub far_site_nodes: u64,
    /// Log entries the best of them lacks (the whole log when there is
    /// none).
    pub entries: u64,
    /// The same in seconds of registry time.
    pub seconds: f64,
}

/// The data-loss window, computed on the leader (all zero elsewhere,
/// where replication progress is not known).
pub fn loss_window(view: &View, whole_log_seconds: f64) -> LossWindow {
    if view.matched.is_empty() {
        return LossWindow::default();
    }
    let far: Vec<NodeId> = view
        .nodes
        .iter()
        .filter(|(_, n)| n.site != view.leader_site)
        .map(|(id, _)| *id)
        .collect();
    let best = far
        .iter()
        .max_by_key(|id| view.matched.get(id).copied().unwrap_or(0));
    match best {
        None => LossWindow {
            far_site_nodes: 0,
            entries: view.last_log_index,
            seconds: whole_log_seconds,
        },
        Some(id) => LossWindow {
            far_site_nodes: far.len() as u64,
            entries: view
                .last_log_index
                .saturating_sub(view.matched.get(id).copied().unwrap_or(0)),
            seconds: view
                .lag_seconds
                .get(id)
                .copied()
                .unwrap_or(whole_log_seconds),
        },
    }
}

/// One membership step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The membership already is as asked.
    Unchanged,
    /// Add a learner.
    AddLearner(NodeId, NodeInfo),
    /// Make a learner a voter.
    Promote(NodeId),
    /// Make a voter a learner.
    Demote(NodeId),
    /// Remove a voter from the cluster altogether.
    RemoveVoter(NodeId),
    /// Remove a learner.
    RemoveLearner(NodeId),
    /// Hand the leadership to a voter.
    TransferLeader(NodeId),
}

fn refuse(reason: Reason, field: &str, message: String) -> Status {
    status::reject(reason, field, message)
}

/// Decides what `req` asks of the membership `view`, or why it may not.
pub fn plan(view: &View, req: &ChangeMembershipRequest) -> Result<Plan, Status> {
    let id = req.node_id;
    if id == 0 {
        return Err(refuse(
            Reason::InvalidField,
            "node_id",
            "node ids start at 1".into(),
        ));
    }
    let op = MembershipOp::try_from(req.op).unwrap_or(MembershipOp::Unspecified);
    let member = view.nodes.get(&id);
    let voter = view.voters.contains(&id);
    let plan = match op {
        MembershipOp::Unspecified => {
            return Err(refuse(
                Reason::InvalidField,
                "op",
                "must be ADD_LEARNER, PROMOTE, DEMOTE, REMOVE or TRANSFER_LEADER".into(),
            ))
        }
        MembershipOp::AddLearner => {
            let node = learner_info(req)?;
            match member {
                Some(known) if *known == node && !voter => Plan::Unchanged,
                Some(known) => {
                    let role = if voter { "voter" } else { "learner" };
                    return Err(refuse(
                        Reason::ObjectExists,
                        "node_id",
                        format!(
                            "node {id} is already a {role} at {} in site {:?}; remove it first \
                             to add it elsewhere",
                            known.addr, known.site
                        ),
                    ));
                }
                None => {
                    if let Some((other, _)) = view.nodes.iter().find(|(_, n)| n.addr == node.addr) {
                        return Err(refuse(
                            Reason::ObjectExists,
                            "addr",
                            format!("node {other} already listens at {}", node.addr),
                        ));
                    }
                    Plan::AddLearner(id, node)
                }
            }
        }
        MembershipOp::Promote => match (member, voter) {
            (None, _) => return Err(not_member(id)),
            (Some(_), true) => Plan::Unchanged,
            (Some(_), false) => {
                let matched = view.matched.get(&id).copied();
                let behind = matched.map(|m| view.last_log_index.saturating_sub(m));
                match behind {
                    Some(b) if b <= MAX_PROMOTE_LAG => Plan::Promote(id),
                    Some(b) => {
                        return Err(refuse(
                            Reason::PolicyViolation,
                            "node_id",
                            format!(
                                "learner {id} is {b} entries behind the leader (at most \
                                 {MAX_PROMOTE_LAG} to be promoted); promote it once it has \
                                 caught up (kauri cluster status shows its lag)"
                            ),
                        ))
                    }
                    None => {
                        return Err(refuse(
                            Reason::PolicyViolation,
                            "node_id",
                            format!(
                                "learner {id} has not been reached yet (is it running with \
                                 --join at {}?); promote it once it has caught up",
                                member.map(|n| n.addr.as_str()).unwrap_or_default()
                            ),
                        ))
                    }
                }
            }
        },
        MembershipOp::Demote => match (member, voter) {
            (None, _) => return Err(not_member(id)),
            (Some(_), false) => Plan::Unchanged,
            (Some(_), true) => Plan::Demote(id),
        },
        MembershipOp::Remove => match (member, voter) {
            (None, _) => Plan::Unchanged,
            (Some(_), true) => Plan::RemoveVoter(id),
            (Some(_), false) => Plan::RemoveLearner(id),
        },
        MembershipOp::TransferLeader => {
            match (member, voter) {
                (None, _) => return Err(not_member(id)),
                (Some(_), false) => {
                    return Err(refuse(
                        Reason::PolicyViolation,
                        "node_id",
                        format!("node {id} is a learner: only a voter can lead (promote it first)"),
                    ))
                }
                (Some(_), true) if id == view.leader => Plan::Unchanged,
                (Some(_), true) if view.joint => return Err(refuse(
                    Reason::PolicyViolation,
                    "op",
                    "a membership change is in progress; transfer the leadership when it is done"
                        .into(),
                )),
                (Some(_), true) => Plan::TransferLeader(id),
            }
        }
    };
    let main_site = main_site(view, req)?;
    check_voters(view, &main_site, &plan)?;
    Ok(plan)
}

/// The site that must keep a majority of the voters: the one the request
/// names, or the leader's.
fn main_site(view: &View, req: &ChangeMembershipRequest) -> Result<String, Status> {
    let named = req.main_site.trim();
    if named.is_empty() {
        return Ok(view.leader_site.clone());
    }
    if !view.nodes.values().any(|n| n.site == named) {
        let mut sites: Vec<&str> = view.nodes.values().map(|n| n.site.as_str()).collect();
        sites.sort_unstable();
        sites.dedup();
        return Err(refuse(
            Reason::InvalidField,
            "main_site",
            format!(
                "no member is in site {:?} (the sites are {})",
                crate::registry::fields::clip(named),
                sites.join(", ")
            ),
        ));
    }
    Ok(named.to_string())
}

/// The address and site of a learner to add.
fn learner_info(req: &ChangeMembershipRequest) -> Result<NodeInfo, Status> {
    let addr = req.addr.trim();
    if addr.parse::<SocketAddr>().is_err() {
        return Err(refuse(
            Reason::InvalidField,
            "addr",
            format!(
                "{:?} is not the node's gRPC address as IP:PORT",
                crate::registry::fields::clip(addr)
            ),
        ));
    }
    let site = req.site.trim();
    if site.is_empty()
        || site.chars().count() > MAX_SITE_CHARS
        || site.chars().any(char::is_control)
    {
        return Err(refuse(
            Reason::InvalidField,
            "site",
            format!("a site label is 1 to {MAX_SITE_CHARS} printable characters"),
        ));
    }
    Ok(NodeInfo {
        addr: addr.to_string(),
        site: site.to_string(),
    })
}

fn not_member(id: NodeId) -> Status {
    refuse(
        Reason::ObjectNotFound,
        "node_id",
        format!("node {id} is not a member of the cluster"),
    )
}

/// Refuses a step that would leave no voter, or take from the main site
/// its majority of the voters.
fn check_voters(view: &View, main_site: &str, plan: &Plan) -> Result<(), Status> {
    let mut after = view.voters.clone();
    match plan {
        Plan::Promote(id) => {
            after.insert(*id);
        }
        Plan::Demote(id) | Plan::RemoveVoter(id) => {
            after.remove(id);
        }
        Plan::Unchanged
        | Plan::AddLearner(..)
        | Plan::RemoveLearner(_)
        | Plan::TransferLeader(_) => return Ok(()),
    }
    if after.is_empty() {
        return Err(refuse(
            Reason::PolicyViolation,
            "node_id",
            "it is the last voter: a cluster needs at least one (promote another node first)"
                .into(),
        ));
    }
    let in_main = |voters: &BTreeSet<NodeId>| {
        voters
            .iter()
            .filter(|id| view.nodes.get(id).is_some_and(|n| n.site == main_site))
            .count() as i64
    };
    // How many voters the main site holds beyond half of them.
    let margin = |voters: &BTreeSet<NodeId>| 2 * in_main(voters) - voters.len() as i64;
    let (before, then) = (margin(&view.voters), margin(&after));
    if then <= 0 && then < before {
        let whose = if main_site == view.leader_site {
            "the leader's"
        } else {
            "as named"
        };
        return Err(refuse(
            Reason::PolicyViolation,
            "node_id",
            format!(
                "the main site {main_site:?} ({whose}) would hold {} of {} voters, no \
                 majority: losing the other sites would then stop writes",
                in_main(&after),
                after.len()
            ),
        ));
    }
    Ok(())
}

/// The members of `view` as the wire type, with each one's replication
/// progress when known.
pub fn members(view: &View) -> Vec<Member> {
    view.nodes
        .iter()
        .map(|(id, node)| {
            let matched = view.matched.get(id).copied().unwrap_or(0);
            Member {
                id: *id,
                addr: node.addr.clone(),
                site: node.site.clone(),
                voter: view.voters.contains(id),
                matched_index: matched,
                lag_entries: if view.matched.is_empty() {
                    0
                } else {
                    view.last_log_index.saturating_sub(matched)
                },
                lag_seconds: view.lag_seconds.get(id).copied().unwrap_or(0.0),
                last_contact_ms_ago: view
                    .last_contact
                    .get(id)
                    .map_or(-1, |d| d.as_millis().min(i64::MAX as u128) as i64),
            }
        })
        .collect()
}

/// The membership `node` holds now, with replication progress if it leads.
pub fn view(node: &super::Node) -> View {
    let m = node.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let last_log_index = m.last_log_index.unwrap_or(0);
    let matched: BTreeMap<NodeId, u64> = m
        .replication
        .iter()
        .flatten()
        .map(|(id, log)| (*id, log.map_or(0, |l| l.index)))
        .collect();
    let nodes: BTreeMap<NodeId, NodeInfo> =
        membership.nodes().map(|(id, n)| (*id, n.clone())).collect();
    let mut lag_seconds = BTreeMap::new();
    if !matched.is_empty() {
        let time = |index| crate::storage::proposal_time_at(&node.store, index);
        let last_time = time(last_log_index);
        let oldest = crate::storage::oldest_proposal_time(&node.store);
        for (id, &at) in &matched {
            let seconds = if at >= last_log_index {
                0.0
            } else {
                // An entry no longer in the log (or none with a time):
                // at least as old as the oldest one that is.
                let then = time(at).or(oldest);
                match (last_time, then) {
                    (Some(last), Some(then)) => (last - then).max(0) as f64 / 1000.0,
                    _ => 0.0,
                }
            };
            lag_seconds.insert(*id, seconds);
        }
    }
    let last_contact = nodes
        .keys()
        .filter(|id| **id != node.id)
        .filter_map(|id| node.contacts.since(*id).map(|d| (*id, d)))
        .collect();
    View {
        nodes,
        voters: membership.voter_ids().collect(),
        leader: node.id,
        leader_site: node.site.clone(),
        joint: membership.get_joint_config().len() > 1,
        last_log_index,
        matched: matched.into_iter().filter(|(_, i)| *i > 0).collect(),
        lag_seconds,
        last_contact,
    }
}

/// Registry time the whole log on `node` spans, seconds: what is lost with
/// the main site when no copy exists outside it.
pub fn whole_log_seconds(node: &super::Node, last_log_index: u64) -> f64 {
    let last = crate::storage::proposal_time_at(&node.store, last_log_index);
    let first = crate::storage::oldest_proposal_time(&node.store);
    match (last, first) {
        (Some(l), Some(f)) => (l - f).max(0) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// Carries out `plan` through openraft; returns the log index of the
/// membership entry.
pub async fn change(raft: &typ::Raft, plan: Plan) -> Result<u64, Status> {
    let result = match plan {
        Plan::Unchanged => return Ok(0),
        Plan::TransferLeader(_) => {
            return Err(status::internal(
                "a leadership transfer is not a membership change (see api::handover)",
            ))
        }
        Plan::AddLearner(id, node) => raft.add_learner(id, node, false).await,
        Plan::Promote(id) => {
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                .await
        }
        Plan::Demote(id) => {
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), true)
                .await
        }
        Plan::RemoveVoter(id) => {
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
        }
        Plan::RemoveLearner(id) => {
            raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
        }
    };
    use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
    match result {
        Ok(response) => Ok(response.log_id.index),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(status::not_leader(f.leader_id.zip(f.leader_node)))
        }
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            let message = match e {
                ChangeMembershipError::InProgress(p) => format!(
                    "another membership change is in progress (committed up to {:?}); retry \
                     when it is done",
                    p.committed
                ),
                other => other.to_string(),
            };
            Err(refuse(Reason::PolicyViolation, "op", message))
        }
        Err(e) => Err(refuse(Reason::Unavailable, "", format!("raft: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addr: &str, site: &str) -> NodeInfo {
        NodeInfo {
            addr: addr.into(),
            site: site.into(),
        }
    }

    /// Voters 1-3 in paris (1 leads), learner 4 in auckland caught up,
    /// learner 5 in auckland far behind.
    fn view() -> View {
        View {
            nodes: BTreeMap::from([
                (1, node("10.0.0.1:7000", "paris")),
                (2, node("10.0.0.2:7000", "paris")),
                (3, node("10.0.0.3:7000", "paris")),
                (4, node("10.1.0.4:7000", "auckland")),
                (5, node("10.1.0.5:7000", "auckland")),
            ]),
            voters: BTreeSet::from([1, 2, 3]),
            leader: 1,
            leader_site: "paris".into(),
            joint: false,
            last_log_index: 1000,
            matched: BTreeMap::from([(1, 1000), (2, 1000), (3, 998), (4, 990), (5, 10)]),
            lag_seconds: BTreeMap::from([(3, 0.5), (4, 3.0), (5, 600.0)]),
            last_contact: BTreeMap::new(),
        }
    }

    fn req(op: MembershipOp, id: NodeId) -> ChangeMembershipRequest {
        ChangeMembershipRequest {
            op: op as i32,
            node_id: id,
            ..Default::default()
        }
    }

    fn refused(view: &View, r: &ChangeMembershipRequest) -> String {
        plan(view, r).unwrap_err().message().to_string()
    }

    #[test]
    fn learners_are_added_once_at_a_valid_address() {
        let v = view();
        let add = |id, addr: &str, site: &str| ChangeMembershipRequest {
            addr: addr.into(),
            site: site.into(),
            ..req(MembershipOp::AddLearner, id)
        };
        assert_eq!(
            plan(&v, &add(6, "10.1.0.6:7000", "auckland")).unwrap(),
            Plan::AddLearner(6, node("10.1.0.6:7000", "auckland"))
        );
        // Again, as a retry would: nothing to do.
        assert_eq!(
            plan(&v, &add(4, "10.1.0.4:7000", "auckland")).unwrap(),
            Plan::Unchanged
        );
        assert!(refused(&v, &add(4, "10.1.0.9:7000", "auckland")).contains("already a learner"));
        assert!(refused(&v, &add(1, "10.0.0.1:7000", "paris")).contains("already a voter"));
        assert!(refused(&v, &add(6, "10.1.0.4:7000", "auckland")).contains("node 4 already"));
        assert!(refused(&v, &add(6, "node6:7000", "auckland")).contains("IP:PORT"));
        assert!(refused(&v, &add(6, "10.1.0.6:7000", "")).contains("site label"));
        assert!(refused(&v, &add(0, "10.1.0.6:7000", "x")).contains("start at 1"));
    }

    #[test]
    fn only_a_caught_up_learner_is_promoted() {
        let v = view();
        assert_eq!(
            plan(&v, &req(MembershipOp::Promote, 4)).unwrap(),
            Plan::Promote(4)
        );
        let far = refused(&v, &req(MembershipOp::Promote, 5));
        assert!(far.contains("990 entries behind"), "{far}");
        let mut unseen = view();
        unseen.matched.remove(&5);
        assert!(refused(&unseen, &req(MembershipOp::Promote, 5)).contains("not been reached"));
        assert_eq!(
            plan(&v, &req(MembershipOp::Promote, 2)).unwrap(),
            Plan::Unchanged
        );
        assert!(refused(&v, &req(MembershipOp::Promote, 9)).contains("not a member"));
    }

    #[test]
    fn the_main_site_keeps_its_majority_and_the_last_voter_stays() {
        let mut v = view();
        v.voters.insert(4);
        // Paris 3 of 4: demoting a Paris voter leaves 2 of 3 ... still a
        // majority; a second one would not be.
        assert_eq!(
            plan(&v, &req(MembershipOp::Demote, 3)).unwrap(),
            Plan::Demote(3)
        );
        v.voters.remove(&3);
        let thin = refused(&v, &req(MembershipOp::Demote, 2));
        assert!(thin.contains("would hold 1 of 2 voters"), "{thin}");
        let thin = refused(&v, &req(MembershipOp::Remove, 2));
        assert!(thin.contains("no majority"), "{thin}");
        // Taking the far site's voter away only helps.
        assert_eq!(
            plan(&v, &req(MembershipOp::Remove, 4)).unwrap(),
            Plan::RemoveVoter(4)
        );
        // Promoting a second Auckland node would leave Paris 2 of 4.
        let mut v = view();
        v.voters = BTreeSet::from([1, 2, 4]);
        v.matched.insert(5, 1000);
        assert!(refused(&v, &req(MembershipOp::Promote, 5)).contains("no majority"));

        let mut alone = view();
        alone.voters = BTreeSet::from([1]);
        for op in [MembershipOp::Demote, MembershipOp::Remove] {
            assert!(refused(&alone, &req(op, 1)).contains("last voter"));
        }
    }

    /// After a disaster the far site leads alone; failing back grows the
    /// voters in the named main site, which the leader's site rule would
    /// refuse.
    #[test]
    fn failing_back_names_the_site_the_voters_return_to() {
        let mut v = view();
        v.voters = BTreeSet::from([4]);
        v.leader = 4;
        v.leader_site = "auckland".into();
        let back = |id, site: &str| ChangeMembershipRequest {
            main_site: site.into(),
            ..req(MembershipOp::Promote, id)
        };
        let thin = refused(&v, &req(MembershipOp::Promote, 1));
        assert!(
            thin.contains("\"auckland\" (the leader's) would hold 1 of 2"),
            "{thin}"
        );
        assert_eq!(plan(&v, &back(1, "paris")).unwrap(), Plan::Promote(1));
        v.voters.insert(1);
        assert_eq!(plan(&v, &back(2, "paris")).unwrap(), Plan::Promote(2));
        // Named or not, the site must exist, and the rule still holds for it.
        assert!(refused(&v, &back(2, "tokyo")).contains("no member is in site \"tokyo\""));
        v.voters = BTreeSet::from([1, 2, 4]);
        let demote = ChangeMembershipRequest {
            main_site: "paris".into(),
            ..req(MembershipOp::Demote, 1)
        };
        assert!(refused(&v, &demote).contains("\"paris\" (as named) would hold 1 of 2"));
    }

    #[test]
    fn the_leadership_goes_only_to_a_voter_between_changes() {
        let v = view();
        let to = |id| req(MembershipOp::TransferLeader, id);
        assert_eq!(plan(&v, &to(2)).unwrap(), Plan::TransferLeader(2));
        assert_eq!(plan(&v, &to(1)).unwrap(), Plan::Unchanged);
        assert!(refused(&v, &to(4)).contains("only a voter can lead"));
        assert!(refused(&v, &to(9)).contains("not a member"));
        let joint = View {
            joint: true,
            ..view()
        };
        assert!(refused(&joint, &to(2)).contains("in progress"));
    }

    #[test]
    fn removing_and_demoting_what_is_gone_changes_nothing() {
        let v = view();
        assert_eq!(
            plan(&v, &req(MembershipOp::Remove, 9)).unwrap(),
            Plan::Unchanged
        );
        assert_eq!(
            plan(&v, &req(MembershipOp::Demote, 4)).unwrap(),
            Plan::Unchanged
        );
        assert_eq!(
            plan(&v, &req(MembershipOp::Remove, 5)).unwrap(),
            Plan::RemoveLearner(5)
        );
        assert!(refused(&v, &req(MembershipOp::Unspecified, 4)).contains("must be"));
    }

    #[test]
    fn the_loss_window_is_what_the_best_far_node_lacks() {
        let v = view();
        assert_eq!(
            loss_window(&v, 9999.0),
            LossWindow {
                far_site_nodes: 2,
                entries: 10,
                seconds: 3.0
            }
        );
        // No node outside the main site: losing it loses everything.
        let mut alone = view();
        alone.nodes.retain(|id, _| *id <= 3);
        assert_eq!(
            loss_window(&alone, 9999.0),
            LossWindow {
                far_site_nodes: 0,
                entries: 1000,
                seconds: 9999.0
            }
        );
        // A follower does not know: zero.
        let follower = View {
            matched: BTreeMap::new(),
            ..view()
        };
        assert_eq!(loss_window(&follower, 9999.0), LossWindow::default());
    }

    #[test]
    fn members_show_their_lag_on_the_leader() {
        let v = view();
        let m = members(&v);
        let five = m.iter().find(|m| m.id == 5).unwrap();
        assert_eq!(
            (five.matched_index, five.lag_entries, five.voter),
            (10, 990, false)
        );
        let follower_view = View {
            matched: BTreeMap::new(),
            ..view()
        };
        assert!(members(&follower_view).iter().all(|m| m.lag_entries == 0));
    }
}
