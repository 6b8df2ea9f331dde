//! The EPP port's TLS configuration (rustls): the server's certificate and,
//! when a CA is given, client certificates checked against it (required of
//! every client, or, with per-registrar certificates, only of the
//! registrars bound to one), and the bindings of registrars to their
//! certificates' fingerprints.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

/// The server configuration for certificate `cert` and key `key` (PEM),
/// with client certificates issued by `client_ca` if given: required, or,
/// when `optional`, asked for and checked when sent. TLS 1.3 only, as on
/// every Kauri port.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    optional: bool,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = kauri_client::tls::load_certs("EPP certificate", cert)?;
    let key_pem = std::fs::read(key)
        .map_err(|e| anyhow::anyhow!("reading the EPP key {}: {e}", key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("the EPP key {} holds no PEM key: {e}", key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(kauri_client::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match client_ca {
        Some(ca) => {
            let roots = kauri_client::tls::load_roots(ca)?;
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                kauri_client::tls::provider(),
            );
            if optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("the EPP certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(config))
}

/// The SHA-256 fingerprint of a DER certificate, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Registrars bound to client certificates: each may log in only over a
/// connection whose client certificate has one of its fingerprints.
#[derive(Debug, Clone, Default)]
pub struct RegistrarCerts(std::collections::HashMap<String, Vec<String>>);

impl RegistrarCerts {
    /// Reads `path`: one `CLID SHA256` a line (the fingerprint in hex,
    /// colons allowed, as `openssl x509 -fingerprint -sha256` prints it);
    /// `#` starts a comment. A registrar may have several lines (while a
    /// certificate is rotated).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let mut map: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| anyhow::anyhow!("{}:{}: {why}", path.display(), n + 1);
            let mut words = line.split_whitespace();
            let (Some(id), Some(fp), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad("expected CLID SHA256-FINGERPRINT"));
            };
            let fp: String = fp
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_lowercase();
            if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("the fingerprint must be 32 octets of hex (SHA-256)"));
            }
            map.entry(id.to_string()).or_default().push(fp);
        }
        Ok(RegistrarCerts(map))
    }

    /// Whether any registrar is bound.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Why `registrar` may not log in over a connection whose client
    /// certificate has fingerprint `presented`, if it may not.
    pub fn refusal(&self, registrar: &str, presented: Option<&str>) -> Option<String> {
        let allowed = self.0.get(registrar)?;
        match presented {
            None => Some(format!(
                "{registrar} must log in with its client certificate"
            )),
            Some(fp) if allowed.iter().any(|a| a == fp) => None,
            Some(_) => Some(format!("this client certificate is not {registrar}'s")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_read_and_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certs");
        let fp = "AB:".repeat(31) + "AB";
        std::fs::write(
            &path,
            format!("# bound\nreg1 {fp}\nreg1 {}\n", "cd".repeat(32)),
        )
        .unwrap();
        let certs = RegistrarCerts::load(&path).unwrap();
        assert_eq!(certs.refusal("reg1", Some(&"ab".repeat(32))), None);
        assert_eq!(certs.refusal("reg1", Some(&"cd".repeat(32))), None);
        assert!(certs.refusal("reg1", Some(&"ef".repeat(32))).is_some());
        assert!(certs.refusal("reg1", None).is_some());
        assert_eq!(certs.refusal("reg2", None), None, "reg2 is not bound");
        std::fs::write(&path, "reg1 nothex\n").unwrap();
        let e = RegistrarCerts::load(&path).unwrap_err().to_string();
        assert!(e.contains(":1:"), "{e}");
    }
}
