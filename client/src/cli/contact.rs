//! `kauri contact check|create|info|update|delete|transfer` (registrar
//! commands) and `kauri contact server-status` (staff).

use clap::Subcommand;
use kauri_client::proto::*;
use kauri_client::ClientError;

use super::{Ctx, ReadFlags};

/// Contact data flags (one "int" postal info).
#[derive(Debug, clap::Args)]
pub struct ContactFlags {
    /// Full name.
    #[arg(long)]
    name: String,
    /// Email address.
    #[arg(long)]
    email: String,
    /// Organisation.
    #[arg(long, default_value = "")]
    org: String,
    /// Street line (repeat up to 3 times).
    #[arg(long)]
    street: Vec<String>,
    /// City (required by RFC 5733).
    #[arg(long)]
    city: String,
    /// State or province.
    #[arg(long, default_value = "")]
    sp: String,
    /// Postal code.
    #[arg(long, default_value = "")]
    pc: String,
    /// ISO 3166 alpha-2 country code.
    #[arg(long, default_value = "NZ")]
    cc: String,
    /// Phone, +CC.NUMBER.
    #[arg(long, default_value = "")]
    voice: String,
    /// Fax, +CC.NUMBER.
    #[arg(long, default_value = "")]
    fax: String,
}

impl ContactFlags {
    fn fields(self) -> ContactFields {
        ContactFields {
            postal_info: vec![PostalInfo {
                r#type: "int".into(),
                name: self.name,
                org: self.org,
                address: Some(PostalAddress {
                    street: self.street,
                    city: self.city,
                    state_province: self.sp,
                    postal_code: self.pc,
                    country_code: self.cc,
                }),
            }],
            voice: self.voice,
            fax: self.fax,
            email: self.email,
            disclose_nothing: false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ContactCmd {
    /// Check whether contact ids are free.
    Check { ids: Vec<String> },
    /// Create a contact.
    Create {
        /// Contact id, 3-16 characters.
        id: String,
        #[command(flatten)]
        fields: ContactFlags,
        /// Auth info; generated when omitted.
        #[arg(long, default_value = "")]
        auth_info: String,
    },
    /// Show a contact.
    Info {
        id: String,
        #[command(flatten)]
        read: ReadFlags,
    },
    /// Replace a contact's data.
    Update {
        id: String,
        #[command(flatten)]
        fields: ContactFlags,
    },
    /// Delete a contact no domain refers to.
    Delete { id: String },
    /// Transfer a contact: request, approve, reject, cancel, query.
    #[command(subcommand)]
    Transfer(ContactTransferCmd),
    /// Set or clear server* statuses (staff): serverDeleteProhibited,
    /// serverTransferProhibited, serverUpdateProhibited.
    ServerStatus {
        id: String,
        /// server* status to set; repeatable.
        #[arg(long)]
        add: Vec<String>,
        /// server* status to clear; repeatable.
        #[arg(long)]
        remove: Vec<String>,
        /// Why (recorded in the audit trail and told to the sponsor).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactTransferCmd {
    /// Request the transfer to this registrar (free of charge).
    Request {
        id: String,
        /// The contact's auth info.
        #[arg(long)]
        auth_info: String,
    },
    /// Approve a pending transfer (the sponsoring registrar).
    Approve { id: String },
    /// Reject a pending transfer (the sponsoring registrar).
    Reject { id: String },
    /// Cancel a transfer request (the requesting registrar).
    Cancel { id: String },
    /// Show the pending or most recent transfer.
    Query {
        id: String,
        /// Auth info, unless you are a party to the transfer.
        #[arg(long, default_value = "")]
        auth_info: String,
        #[command(flatten)]
        read: ReadFlags,
    },
}

async fn transfer(ctx: &Ctx, cmd: ContactTransferCmd) -> Result<(), ClientError> {
    let (id, op, auth_info) = match cmd {
        ContactTransferCmd::Request { id, auth_info } => (id, TransferOp::Request, auth_info),
        ContactTransferCmd::Approve { id } => (id, TransferOp::Approve, String::new()),
        ContactTransferCmd::Reject { id } => (id, TransferOp::Reject, String::new()),
        ContactTransferCmd::Cancel { id } => (id, TransferOp::Cancel, String::new()),
        ContactTransferCmd::Query {
            id,
            auth_info,
            read,
        } => {
            let r = ctx
                .client
                .query_contact_transfer(TransferQueryRequest {
                    registrar: ctx.registrar.clone(),
                    name: id,
                    auth_info,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
            return Ok(());
        }
    };
    let r = ctx
        .client
        .transfer_contact(TransferContactRequest {
            meta: Some(ctx.registrar_meta()?),
            id,
            op: op as i32,
            auth_info,
            new_auth_info: String::new(),
        })
        .await?;
    ctx.print(&r);
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: ContactCmd) -> Result<(), ClientError> {
    match cmd {
        ContactCmd::Check { ids } => {
            let r = ctx
                .client
                .check_contacts(CheckRequest {
                    registrar: ctx.registrar.clone(),
                    names: ids,
                    read: None,
                    fees: Vec::new(),
                })
                .await?;
            ctx.print(&r);
        }
        ContactCmd::Create {
            id,
            fields,
            auth_info,
        } => {
            let r = ctx
                .client
                .create_contact(CreateContactRequest {
                    meta: Some(ctx.registrar_meta()?),
                    id,
                    fields: Some(fields.fields()),
                    auth_info,
                })
                .await?;
            ctx.print(&r);
        }
        ContactCmd::Info { id, read } => {
            let r = ctx
                .client
                .info_contact(InfoRequest {
                    registrar: ctx.registrar.clone(),
                    name: id,
                    read: read.options(),
                })
                .await?;
            ctx.print(&r);
        }
        ContactCmd::Update { id, fields } => {
            let r = ctx
                .client
                .update_contact(UpdateContactRequest {
                    meta: Some(ctx.registrar_meta()?),
                    id,
                    fields: Some(fields.fields()),
                    ..Default::default()
                })
                .await?;
            ctx.print(&r);
        }
        ContactCmd::ServerStatus {
            id,
            add,
            remove,
            reason,
        } => {
            let r = ctx
                .client
                .set_contact_server_status(SetContactServerStatusRequest {
                    meta: Some(ctx.staff_meta()),
                    id,
                    add_statuses: add,
                    remove_statuses: remove,
                    reason,
                })
                .await?;
            ctx.print(&r);
        }
        ContactCmd::Transfer(cmd) => transfer(ctx, cmd).await?,
        ContactCmd::Delete { id } => {
            let r = ctx
                .client
                .delete_contact(DeleteRequest {
                    meta: Some(ctx.registrar_meta()?),
                    name: id,
                })
                .await?;
            ctx.print(&r);
        }
    }
    Ok(())
}
