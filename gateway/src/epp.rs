//! What a client's frame asks for: the EPP command in it (RFC 5730 section
//! 2.5), checked against the rules the schemas state, so that the session
//! only sees well-formed commands.

use crate::codes::Code;
use crate::render::{DOMAIN_NS, EPP_NS, OBJECTS};
use crate::xml::Element;

/// Extensions a login may ask for: those this gateway is being built to
/// serve (RFC 5910 secDNS, RFC 3915 RGP, RFC 8748 fee). Clients such as
/// pyepp always ask for secDNS; a login naming one succeeds, and using one
/// in a command is answered 2103 until it is served. Any other is refused
/// at login (2103).
pub const LOGIN_EXTENSIONS: [&str; 3] = [
    "urn:ietf:params:xml:ns:secDNS-1.1",
    "urn:ietf:params:xml:ns:rgp-1.0",
    "urn:ietf:params:xml:ns:epp:fee-1.0",
];

/// Most names in one check (the registry's limit too).
pub const MAX_CHECK_NAMES: usize = 100;

/// A command the gateway understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `<hello/>`: answered with a greeting.
    Hello,
    /// `<login>`.
    Login(Login),
    /// `<logout/>`.
    Logout,
    /// `<check>` of domain names.
    DomainCheck(Vec<String>),
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The command.
    pub command: Command,
    /// `<clTRID>`, if sent.
    pub cl_trid: Option<String>,
}

/// Why a frame's command is refused: the result code, a message naming
/// the problem, and the clTRID when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The result code.
    pub code: Code,
    /// What is wrong.
    pub detail: String,
    /// The command's clTRID, if it could be read.
    pub cl_trid: Option<String>,
}

fn refuse(code: Code, detail: impl Into<String>) -> Refusal {
    Refusal {
        code,
        detail: detail.into(),
        cl_trid: None,
    }
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
    if let Some(ext) = command.child(EPP_NS, "extension") {
        let uris: Vec<&str> = ext.children.iter().map(|c| c.ns.as_str()).collect();
        return Err(refuse(
            Code::UNIMPLEMENTED_EXTENSION,
            format!("extension {} is not offered", uris.join(", ")),
        ));
    }
    match verb.name.as_str() {
        "login" => login(verb).map(Command::Login),
        "logout" => Ok(Command::Logout),
        "check" => check(verb),
        other => Err(refuse(
            Code::UNIMPLEMENTED_COMMAND,
            format!("<{other}> is not served by this gateway yet"),
        )),
    }
}

fn required<'a>(e: &'a Element, name: &str) -> Result<&'a str, Refusal> {
    e.child_text(EPP_NS, name).ok_or_else(|| {
        refuse(
            Code::MISSING_PARAMETER,
            format!("<{}> needs <{name}>", e.name),
        )
    })
}

fn login(e: &Element) -> Result<Login, Refusal> {
    let client_id = required(e, "clID")?.to_string();
    if !(3..=16).contains(&client_id.chars().count()) {
        return Err(refuse(
            Code::VALUE_SYNTAX,
            "<clID> must be 3 to 16 characters",
        ));
    }
    let password = required(e, "pw")?.to_string();
    let new_password = e.child_text(EPP_NS, "newPW").map(str::to_string);
    for pw in std::iter::once(&password).chain(new_password.as_ref()) {
        if !(6..=16).contains(&pw.chars().count()) {
            return Err(refuse(
                Code::VALUE_SYNTAX,
                "a password (<pw>, <newPW>) must be 6 to 16 characters",
            ));
        }
    }
    let options = e
        .child(EPP_NS, "options")
        .ok_or_else(|| refuse(Code::MISSING_PARAMETER, "<login> needs <options>"))?;
    let version = required(options, "version")?;
    if version != "1.0" {
        return Err(refuse(
            Code::UNIMPLEMENTED_VERSION,
            format!("version {version:?}: this server speaks EPP 1.0"),
        ));
    }
    let lang = required(options, "lang")?;
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

fn check(e: &Element) -> Result<Command, Refusal> {
    let [object] = e.children.as_slice() else {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            "<check> must hold exactly one object's check",
        ));
    };
    if object.ns != DOMAIN_NS {
        let code = if OBJECTS.contains(&object.ns.as_str()) {
            Code::UNIMPLEMENTED_COMMAND
        } else {
            Code::UNIMPLEMENTED_OBJECT
        };
        return Err(refuse(
            code,
            format!("check of {} is not served yet", object.qualified()),
        ));
    }
    let names: Vec<String> = object
        .children_named(DOMAIN_NS, "name")
        .map(|n| n.text.clone())
        .collect();
    if names.is_empty() || object.children.len() != names.len() {
        return Err(refuse(
            Code::SYNTAX_ERROR,
            "<domain:check> holds one or more <domain:name> and nothing else",
        ));
    }
    if names.len() > MAX_CHECK_NAMES {
        return Err(refuse(
            Code::VALUE_RANGE,
            format!("at most {MAX_CHECK_NAMES} names per check"),
        ));
    }
    Ok(Command::DomainCheck(names))
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
            Command::DomainCheck(vec!["example.com".into(), "example.net".into()])
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
                r#"<epp xmlns="urn:ietf:params:xml:ns:epp-1.0"><command><renew/></command></epp>"#
            ),
            2101
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
