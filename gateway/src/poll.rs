//! The poll queue (RFC 5730 section 2.9.2.3): `<poll op="req"/>` shows the
//! oldest message the cluster queued for the registrar, `<poll op="ack"
//! msgID="..."/>` removes it.

use kauri_client::proto;

use crate::codes::Code;
use crate::render::{date_time, transfer_data, MsgQ, Response, TransferOf, Xml};
use crate::request::{refuse, Refusal};
use crate::session::Ctx;
use crate::xml::Element;

/// A poll command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `op="req"`.
    Request,
    /// `op="ack"` of the message with this id.
    Ack(u64),
}

impl Op {
    /// The command's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Request => "poll:req",
            Op::Ack(_) => "poll:ack",
        }
    }
}

/// Reads a `<poll>` element.
pub fn parse(e: &Element) -> Result<Op, Refusal> {
    match e.attr("op") {
        Some("req") => Ok(Op::Request),
        Some("ack") => {
            let id = e
                .attr("msgID")
                .ok_or_else(|| refuse(Code::MISSING_PARAMETER, "<poll op=\"ack\"> needs msgID"))?;
            id.parse().map(Op::Ack).map_err(|_| {
                refuse(
                    Code::VALUE_SYNTAX,
                    format!("msgID {id:?} is not a message id here"),
                )
            })
        }
        _ => Err(refuse(
            Code::SYNTAX_ERROR,
            "<poll> needs op=\"req\" or op=\"ack\"",
        )),
    }
}

/// Runs `op` in the session of `ctx`.
pub async fn run(op: Op, ctx: &Ctx<'_>) -> Response {
    let client = &ctx.session.client;
    match op {
        Op::Request => {
            let request = proto::PollRequest {
                registrar: ctx.registrar(),
                read: kauri_client::linearizable(),
            };
            match client.poll(request).await {
                Ok(r) => match r.message {
                    None => ctx.read(Code::NO_MESSAGES),
                    Some(m) => {
                        let mut response = ctx.read(Code::ACK_TO_DEQUEUE);
                        let mut inner = Xml::new();
                        inner.leaf("qDate", &[], &date_time(m.time_ms)).leaf(
                            "msg",
                            &[],
                            &message_text(&m),
                        );
                        response.msg_q = Some(MsgQ {
                            count: r.count,
                            id: m.id,
                            inner: inner.finish(),
                        });
                        if let Some(t) = &m.transfer {
                            let of = if m.kind.starts_with("contact_") {
                                TransferOf::Contact
                            } else {
                                TransferOf::Domain
                            };
                            response.res_data = Some(transfer_data(of, t));
                        }
                        response
                    }
                },
                Err(e) => ctx.failed(&e, |_| None),
            }
        }
        Op::Ack(id) => {
            let request = proto::AckPollRequest {
                meta: ctx.meta(),
                message_id: id,
            };
            match client.ack_poll(request).await {
                Ok(r) => {
                    let mut response = ctx.done(Code::OK, r.tx.as_ref());
                    response.msg_q = Some(MsgQ {
                        count: r.count,
                        id,
                        inner: String::new(),
                    });
                    response
                }
                Err(e) => ctx.failed(&e, |_| None),
            }
        }
    }
}

/// The human-readable message: the registry's, or its kind and object.
fn message_text(m: &proto::PollMessage) -> String {
    if m.message.is_empty() {
        format!("{} {}", m.kind, m.object)
    } else {
        m.message.clone()
    }
}
