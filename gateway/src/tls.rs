//! The EPP port's TLS configuration (rustls): the server's certificate and,
//! when a CA is given, client certificates required and checked against it.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

/// The server configuration for certificate `cert` and key `key` (PEM),
/// requiring client certificates issued by `client_ca` if given. TLS 1.3
/// only, as on every Kauri port.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
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
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                kauri_client::tls::provider(),
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("the EPP certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(config))
}
