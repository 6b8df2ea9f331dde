//! What a client's frame asks for: the EPP command in it (RFC 5730 section
//! 2.5), checked against the rules the schemas state, so that the session
//! only sees well-formed commands.

use crate::codes::Code;
use crate::render::Response;
use crate::render::{CONTACT_NS, DOMAIN_NS, EPP_NS, HOST_NS, OBJECTS};
pub use crate::request::Refusal;
use crate::request::{refuse, required};
use crate::session::Ctx;
use crate::xml::Element;
use crate::{contact, domain, host, poll};

/// Extensions a login may ask for: all the server serves (secDNS, RFC
/// 5910; RGP, RFC 3915; fees, RFC 8748; login security, RFC 8807). Any
/// other is refused at login (2103).
pub const LOGIN_EXTENSIONS: [&str; 4] = [
    "urn:ietf:params:xml:ns:secDNS-1.1",
    "urn:ietf:params:xml:ns:rgp-1.0",
    "urn:ietf:params:xml:ns:epp:fee-1.0",
    LOGIN_SEC_NS,
];

/// The login security extension (RFC 8807): passwords longer than the 16
/// characters of RFC 5730's `<pw>`.
pub const LOGIN_SEC_NS: &str = "urn:ietf:params:xml:ns:epp:loginSec-1.0";

/// What `<pw>` and `<newPW>` hold when the password is in `<loginSec>`.
const LOGIN_SECURITY: &str = "[LOGIN-SECURITY]";

/// Password lengths: RFC 5730's `<pw>` is 6 to 16 characters; through
/// loginSec up to the registry's 64.
const PW_CHARS: std::ops::RangeInclusive<usize> = 6..=16;
const LOGIN_SEC_PW_CHARS: std::ops::RangeInclusive<usize> = 6..=64;

/// Most names in one check (the registry's limit too).
pub const MAX_CHECK_NAMES: usize = 100;

/// A command the gateway understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `<hello/>`: answered with a greeting.
    Hello,
    /// `<login>`.
    Login(Login),
    /// `<logout/>`.
    Logout,
    /// A command of a logged-in session (boxed: some are large).
    Op(Box<Op>),
}

impl Command {
    /// The command's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Hello => "hello",
            Command::Login(_) => "login",
            Command::Logout => "logout",
            Command::Op(op) => op.name(),
        }
    }
}

/// A command only a logged-in session may send.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A domain command.
    Domain(domain::Op),
    /// A host command.
    Host(host::Op),
    /// A contact command.
    Contact(contact::Op),
    /// `<poll>`.
    Poll(poll::Op),
}

impl Op {
    /// The command's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Domain(op) => op.name(),
            Op::Host(op) => op.name(),
            Op::Contact(op) => op.name(),
            Op::Poll(op) => op.name(),
        }
    }

    /// Runs the command in the session of `ctx`.
    pub async fn run(self, ctx: &Ctx<'_>) -> Response {
        match self {
            Op::Domain(op) => domain::run(op, ctx).await,
            Op::Host(op) => host::run(op, ctx).await,
            Op::Contact(op) => contact::run(op, ctx).await,
            Op::Poll(op) => poll::run(op, ctx).await,
        }
    }
}

/// The parts of a login.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The registrar (`clID`).
    pub client_id: String,
    /// Its password. Never logged.
    pub password: String,
    /// A new password to set, if any. Never logged.
    pub new_password: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A frame's command and its client transaction id.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The command.
    pub command: Command,
    /// `<clTRID>`, if sent.
    pub cl_trid: Option<String>,
}

/// The command elements RFC 5730 defines.
const COMMANDS: [&str; 10] = [
    "check", "create", "delete", "info", "login", "logout", "poll", "renew", "transfer", "update",
];

/// Reads the command of the frame whose root is `root`.
pub fn parse(root: &Element) -> Result<Parsed, Refusal> {
    if root.ns != EPP_NS || root.name != "epp" {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!(
                "the root element must be <epp> in {EPP_NS}, not {}",
                root.qualified()
            ),
        ));
    }
    let [inner] = root.children.as_slice() else {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            "<epp> must hold exactly one of <hello> or <command>",
        ));
    };
    if inner.ns != EPP_NS {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("{} is not an EPP element", inner.qualified()),
        ));
    }
    match inner.name.as_str() {
        "hello" => Ok(Parsed {
            command: Command::Hello,
            cl_trid: None,
        }),
        "command" => {
            let cl_trid = cl_trid(inner)?;
            command(inner)
                .map(|command| Parsed {
                    command,
                    cl_trid: cl_trid.clone(),
                })
                .map_err(|r| Refusal { cl_trid, ..r })
        }
        other => Err(refuse(
            Code::SYNTAX_ERROR,
            format!("<{other}> is not something a client sends (hello or command)"),
        )),
    }
}

/// The clTRID of `<command>`: 3 to 64 characters without spaces.
fn cl_trid(command: &Element) -> Result<Option<String>, Refusal> {
    let Some(t) = command.child(EPP_NS, "clTRID") else {
        return Ok(None);
    };
    let id = t.text.clone();
    let n = id.chars().count();
    if !(3..=64).contains(&n) || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse(
            Code::VALUE_SYNTAX,
            "<clTRID> must be 3 to 64 characters without spaces",
        ));
    }
    Ok(Some(id))
}

fn command(command: &Element) -> Result<Command, Refusal> {
    let mut verbs = command
        .children
        .iter()
        .filter(|c| !(c.ns == EPP_NS && (c.name == "clTRID" || c.name == "extension")));
    let (Some(verb), None) = (verbs.next(), verbs.next()) else {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            "<command> must hold exactly one command element",
        ));
    };
    if verb.ns != EPP_NS || !COMMANDS.contains(&verb.name.as_str()) {
        return Err(refuse(
            Code::UNKNOWN_COMMAND,
            format!("{} is not an EPP command", verb.qualified()),
        ));
    }
    let ext: &[Element] = command
        .child(EPP_NS, "extension")
        .map(|e| e.children.as_slice())
        .unwrap_or_default();
    if let Some(x) = ext
        .iter()
        .find(|x| !LOGIN_EXTENSIONS.contains(&x.ns.as_str()))
    {
        return Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            format!("extension {} is not offered", x.ns),
        ));
    }
    match verb.name.as_str() {
        "login" => login(verb, ext).map(Command::Login),
        "logout" | "poll" if !ext.is_empty() => Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            format!("<{}> takes no extension", verb.name),
        )),
        "logout" => Ok(Command::Logout),
        "poll" => poll::parse(verb).map(|op| Command::Op(Box::new(Op::Poll(op)))),
        _ => object(verb, ext),
    }
}

/// An object command: `verb` holds exactly one object element, whose
/// namespace picks the object's module.
fn object(verb: &Element, ext: &[Element]) -> Result<Command, Refusal> {
    let [e] = verb.children.as_slice() else {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("<{}> must hold exactly one object element", verb.name),
        ));
    };
    if e.name != verb.name {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            format!("<{}> cannot hold {}", verb.name, e.qualified()),
        ));
    }
    match e.ns.as_str() {
        DOMAIN_NS => domain::parse(verb, e, ext).map(Op::Domain),
        HOST_NS => host::parse(verb, e, ext).map(Op::Host),
        CONTACT_NS => contact::parse(verb, e, ext).map(Op::Contact),
        other => Err(refuse(
            Code::UNIMPLEMENTED_OBJECT,
            format!("object service {other:?} is not offered"),
        )),
    }
    .map(|op| Command::Op(Box::new(op)))
}

/// Refuses a check of no names or of more than [`MAX_CHECK_NAMES`].
pub fn check_names(names: &[String]) -> Result<(), Refusal> {
    if names.is_empty() {
        return Err(refuse(
            Code::MISSING_PARAMETER,
            "a check needs one or more names",
        ));
    }
    if names.len() > MAX_CHECK_NAMES {
        return Err(refuse(
            Code::VALUE_RANGE,
            format!("at most {MAX_CHECK_NAMES} names per check"),
        ));
    }
    Ok(())
}

/// A password of the login: `<pw>` or `<newPW>` itself, or, when that
/// says `[LOGIN-SECURITY]`, the same element of `<loginSec:loginSec>`.
fn read_password(
    e: &Element,
    sec: Option<&Element>,
    name: &str,
) -> Result<Option<String>, Refusal> {
    let Some(plain) = e.child_text(EPP_NS, name) else {
        return Ok(None);
    };
    let (pw, range) = if plain == LOGIN_SECURITY {
        let long = sec.and_then(|s| s.child_text(LOGIN_SEC_NS, name));
        let long = long.ok_or_else(|| {
            refuse(
                Code::MISSING_PARAMETER,
                format!("<{name}> says {LOGIN_SECURITY}: <loginSec:{name}> must hold it"),
            )
        })?;
        (long, LOGIN_SEC_PW_CHARS)
    } else {
        (plain, PW_CHARS)
    };
    if !range.contains(&pw.chars().count()) {
        return Err(refuse(
            Code::VALUE_SYNTAX,
            format!(
                "<{name}> must be {} to {} characters{}",
                range.start(),
                range.end(),
                if plain == LOGIN_SECURITY {
                    ""
                } else {
                    " (longer ones through loginSec, RFC 8807)"
                }
            ),
        ));
    }
    Ok(Some(pw.to_string()))
}

fn login(e: &Element, ext: &[Element]) -> Result<Login, Refusal> {
    let client_id = required(e, EPP_NS, "clID")?.to_string();
    if !(3..=16).contains(&client_id.chars().count()) {
        return Err(refuse(
            Code::VALUE_SYNTAX,
            "<clID> must be 3 to 16 characters",
        ));
    }
    let sec = match ext {
        [] => None,
        [x] if x.ns == LOGIN_SEC_NS && x.name == "loginSec" => Some(x),
        _ => {
            return Err(refuse(
                Code::UNIMPLEMENTED_EXTENSION,
                "a login takes only the loginSec extension (RFC 8807)",
            ))
        }
    };
    let password = read_password(e, sec, "pw")?
        .ok_or_else(|| refuse(Code::MISSING_PARAMETER, "<login> needs <pw>"))?;
    let new_password = read_password(e, sec, "newPW")?;
    let options = e
        .child(EPP_NS, "options")
        .ok_or_else(|| refuse(Code::MISSING_PARAMETER, "<login> needs <options>"))?;
    let version = required(options, EPP_NS, "version")?;
    if version != "1.0" {
        return Err(refuse(
            Code::UNIMPLEMENTED_VERSION,
            format!("version {version:?}: this server speaks EPP 1.0"),
        ));
    }
    let lang = required(options, EPP_NS, "lang")?;
    if lang != "en" {
        return Err(refuse(
            Code::UNIMPLEMENTED_OPTION,
            format!("language {lang:?}: this server speaks en"),
        ));
    }
    let svcs = e
        .child(EPP_NS, "svcs")
        .ok_or_else(|| refuse(Code::MISSING_PARAMETER, "<login> needs <svcs>"))?;
    for obj in svcs.children_named(EPP_NS, "objURI") {
        if !OBJECTS.contains(&obj.text.as_str()) {
            return Err(refuse(
                Code::UNIMPLEMENTED_OBJECT,
                format!("object service {:?} is not offered", obj.text),
            ));
        }
    }
    if let Some(ext) = svcs.child(EPP_NS, "svcExtension") {
        for uri in ext.children_named(EPP_NS, "extURI") {
            if !LOGIN_EXTENSIONS.contains(&uri.text.as_str()) {
                return Err(refuse(
                    Code::UNIMPLEMENTED_EXTENSION,
                    format!("extension {:?} is not offered", uri.text),
                ));
            }
        }
    }
    Ok(Login {
        client_id,
        password,
        new_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Result<Parsed, Refusal> {
        parse(&crate::xml::parse(s.as_bytes()).unwrap())
    }

    const LOGIN: &str = r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><login>
<clID>ClientX</clID><pw>foo-BAR2</pw><options><version>1.0</version><lang>en</lang></options>
<svcs><objURI>urn:ietf:params:xml:ns:domain-1.0</objURI></svcs></login>
<clTRID>ABC-12345</clTRID></command></epp>"#;

    #[test]
    fn rfc_examples_parse() {
        let login = parsed(LOGIN).unwrap();
        assert_eq!(login.cl_trid.as_deref(), Some("ABC-12345"));
        let Command::Login(l) = login.command else {
            panic!("a login")
        };
        assert_eq!(l.client_id, "ClientX");
        assert!(
            !format!("{l:?}").contains("foo-BAR2"),
            "no password in Debug"
        );
        let hello = parsed(r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><hello/></epp>"#);
        assert_eq!(hello.unwrap().command, Command::Hello);
        let check = parsed(
            r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><check>
<domain:check xmlns:domain="urn:ietf:params:xml:ns:domain-1.0">
<domain:name>example.com</domain:name><domain:name>example.net</domain:name>
</domain:check></check><clTRID>ABC-12345</clTRID></command></epp>"#,
        )
        .unwrap();
        assert_eq!(
            check.command,
            Command::Op(Box::new(Op::Domain(domain::Op::Check(
                vec!["example.com".into(), "example.net".into()],
                None
            ))))
        );
    }

    #[test]
    fn wrong_shapes_get_their_codes() {
        let code = |s: &str| parsed(s).unwrap_err().code.0;
        assert_eq!(code(r#"<epp><hello/></epp>"#), 2001);
        assert_eq!(
            code(
                r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><frobnicate/></command></epp>"#
            ),
            2000
        );
        assert_eq!(
            code(
                r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><renew><x:renew xmlns:x="urn:example:x"/></renew></command></epp>"#
            ),
            2307
        );
        assert_eq!(code(&LOGIN.replace(">1.0<", ">2.0<")), 2100);
        assert_eq!(code(&LOGIN.replace(">en<", ">fr<")), 2102);
        assert_eq!(code(&LOGIN.replace("domain-1.0", "nothing-1.0")), 2307);
        assert_eq!(code(&LOGIN.replace("<pw>foo-BAR2</pw>", "")), 2003);
        let with_ext = |uri: &str| {
            LOGIN.replace(
                "</svcs>",
                &format!("<svcExtension><extURI>{uri}</extURI></svcExtension></svcs>"),
            )
        };
        assert!(parsed(&with_ext("urn:ietf:params:xml:ns:secDNS-1.1")).is_ok());
        assert_eq!(code(&with_ext("urn:example:made-up-1.0")), 2103);
        assert_eq!(code(&LOGIN.replace("ABC-12345", "a b")), 2005);
        let refused = parsed(&LOGIN.replace(">1.0<", ">2.0<")).unwrap_err();
        assert_eq!(refused.cl_trid.as_deref(), Some("ABC-12345"));
    }
}
