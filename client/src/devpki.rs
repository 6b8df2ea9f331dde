//! A development certificate authority: what `kauri dev certs` writes and
//! what test clusters run with. Every certificate names one
//! [`Principal`](crate::tls::Principal) in its SAN URI; node certificates
//! also carry the IP addresses and DNS names clients dial them by.
//!
//! Not for production: the CA key sits next to the certificates. An
//! organisation's own CA issues the same layout (docs/operations.md).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::tls::{Principal, Role, TlsFiles};

/// How long development certificates are valid.
pub const DEV_VALIDITY_DAYS: i64 = 365;

/// A CA that issues Kauri certificates.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM-encoded.
pub struct Issued {
    /// The certificate chain, leaf first (the CA is not included).
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("certificate generation: {e}")
}

impl DevCa {
    /// A new self-signed CA called `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "Kauri development");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(DEV_VALIDITY_DAYS * 2);
        let key = KeyPair::generate().map_err(err)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(err)?;
        Ok(DevCa { issuer })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a certificate for `principal`, valid from `not_before` to
    /// `not_after`, with extra subject alternative names `hosts` (IP
    /// addresses or DNS names) for servers.
    pub fn issue_with_validity(
        &self,
        principal: &Principal,
        hosts: &[String],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> anyhow::Result<Issued> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, principal.uri());
        params.distinguished_name = dn;
        params
            .subject_alt_names
            .push(SanType::URI(principal.uri().try_into().map_err(err)?));
        for host in hosts {
            match host.parse::<IpAddr>() {
                Ok(ip) => params.subject_alt_names.push(SanType::IpAddress(ip)),
                Err(_) => params
                    .subject_alt_names
                    .push(SanType::DnsName(host.clone().try_into().map_err(err)?)),
            }
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a certificate valid for [`DEV_VALIDITY_DAYS`] from now.
    pub fn issue(&self, principal: &Principal, hosts: &[String]) -> anyhow::Result<Issued> {
        let now = OffsetDateTime::now_utc();
        self.issue_with_validity(
            principal,
            hosts,
            now - Duration::hours(1),
            now + Duration::days(DEV_VALIDITY_DAYS),
        )
    }

    /// Issues a certificate into `dir/STEM.pem` and `dir/STEM.key` and
    /// returns the files of that identity (with `ca` as its CA bundle).
    pub fn write(
        &self,
        dir: &Path,
        stem: &str,
        ca: &Path,
        principal: &Principal,
        hosts: &[String],
    ) -> anyhow::Result<TlsFiles> {
        let issued = self.issue(principal, hosts)?;
        write_identity(dir, stem, ca, &issued)
    }
}

/// Writes an issued certificate and key as `dir/STEM.pem` and
/// `dir/STEM.key` (the key readable by its owner only).
pub fn write_identity(
    dir: &Path,
    stem: &str,
    ca: &Path,
    issued: &Issued,
) -> anyhow::Result<TlsFiles> {
    let cert = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    write_file(&cert, issued.cert_pem.as_bytes(), 0o644)?;
    write_file(&key, issued.key_pem.as_bytes(), 0o600)?;
    Ok(TlsFiles {
        ca: ca.to_path_buf(),
        cert,
        key,
    })
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Written under a temporary name and renamed, so a node reloading its
    // certificate never reads half a file.
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("renaming {} to {}: {e}", tmp.display(), path.display()))
}

/// The files `kauri dev certs` wrote.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The directory.
    pub dir: PathBuf,
    /// The cluster name the certificates are for.
    pub cluster: String,
    /// The CA bundle.
    pub ca: PathBuf,
    /// Node N's identity at index N - 1.
    pub nodes: Vec<TlsFiles>,
    /// The gateway `gateway`.
    pub gateway: TlsFiles,
    /// Staff member `admin`.
    pub staff: TlsFiles,
    /// Registrar `acme`.
    pub registrar: TlsFiles,
    /// Monitor `prometheus`.
    pub monitor: TlsFiles,
    /// The EPP port's server certificate (for `kauri-gateway --tls-cert`),
    /// valid for the nodes' hosts and 127.0.0.1/localhost: what registrars'
    /// EPP clients verify against `ca.pem`.
    pub epp: TlsFiles,
}

/// Name of the development staff member.
pub const DEV_STAFF: &str = "admin";
/// Name of the development registrar.
pub const DEV_REGISTRAR: &str = "acme";
/// Name of the development gateway.
pub const DEV_GATEWAY: &str = "gateway";
/// Name of the development monitor.
pub const DEV_MONITOR: &str = "prometheus";

impl DevCerts {
    /// Makes a CA in `dir` and certificates for `nodes` nodes (valid for
    /// `hosts` and 127.0.0.1/localhost), a gateway, a staff member, a
    /// registrar and a monitor of cluster `cluster`, and the EPP port's
    /// server certificate (for the same hosts).
    pub fn create(
        dir: &Path,
        cluster: &str,
        nodes: u64,
        hosts: &[String],
    ) -> anyhow::Result<(DevCerts, DevCa)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
        let ca = DevCa::new(&format!("Kauri {cluster} development CA"))?;
        let ca_path = dir.join("ca.pem");
        write_file(&ca_path, ca.cert_pem().as_bytes(), 0o644)?;
        let mut node_hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        node_hosts.extend(hosts.iter().cloned());
        let p = |role, name: &str| Principal::new(cluster, role, name);
        let mut node_files = Vec::new();
        for id in 1..=nodes {
            node_files.push(ca.write(
                dir,
                &format!("node{id}"),
                &ca_path,
                &p(Role::Node, &id.to_string())?,
                &node_hosts,
            )?);
        }
        let certs = DevCerts {
            dir: dir.to_path_buf(),
            cluster: cluster.to_string(),
            nodes: node_files,
            gateway: ca.write(
                dir,
                "gateway",
                &ca_path,
                &p(Role::Gateway, DEV_GATEWAY)?,
                &[],
            )?,
            staff: ca.write(dir, "staff", &ca_path, &p(Role::Staff, DEV_STAFF)?, &[])?,
            registrar: ca.write(
                dir,
                "registrar",
                &ca_path,
                &p(Role::Registrar, DEV_REGISTRAR)?,
                &[],
            )?,
            monitor: ca.write(
                dir,
                "monitor",
                &ca_path,
                &p(Role::Monitor, DEV_MONITOR)?,
                &[],
            )?,
            epp: ca.write(dir, "epp", &ca_path, &p(Role::Gateway, "epp")?, &node_hosts)?,
            ca: ca_path,
        };
        Ok((certs, ca))
    }
}
