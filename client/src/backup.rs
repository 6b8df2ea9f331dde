//! Online backups: `kauri backup create --dest DIR` and `kauri backup
//! verify DIR`.
//!
//! A backup directory holds two files:
//! - `state.kauri`: the snapshot archive a node streamed (`Cluster.Backup`):
//!   a RocksDB checkpoint of its state, in the node's snapshot format 3
//!   (magic `KAURISNAP3\n`, a file count, each file's name and size, the
//!   files' bytes, and a SHA-256 of all of that);
//! - `manifest.json` ([`Manifest`]): what the backup holds (cluster, node,
//!   applied log id, registry time, membership, formats) and the size and
//!   SHA-256 of every file, those in the directory and those inside the
//!   archive.
//!
//! The directory is plain files a standard tool can ship (`rclone copy`,
//! `aws s3 cp --recursive`, `rsync`); [`verify`] checks a copy before it is
//! trusted, naming the file that is missing or damaged.

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::proto::{backup_chunk, BackupRequest};
use crate::{ClientError, KauriClient};

/// The archive file of a backup directory.
pub const ARCHIVE_FILE: &str = "state.kauri";
/// The manifest file of a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The version of the backup layout this code writes and reads.
pub const BACKUP_FORMAT: u32 = 1;
const ARCHIVE_MAGIC: &[u8] = b"KAURISNAP3\n";
/// Most files an archive may list (guards allocation on corrupt input).
const MAX_ARCHIVE_FILES: u32 = 1_000_000;

/// What a backup directory holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always "kauri-backup".
    pub kind: String,
    /// [`BACKUP_FORMAT`] of the code that wrote it.
    pub backup_format: u32,
    /// The cluster's name and the node that made the backup.
    pub cluster: String,
    pub node_id: u64,
    /// The last log entry the backed-up state applied.
    pub applied_term: u64,
    pub applied_index: u64,
    /// Registry time of the state, ms since the epoch.
    pub registry_time_ms: i64,
    /// The membership at that point, as the node stores it.
    pub membership: serde_json::Value,
    /// The node's on-disk format and the archive's format.
    pub on_disk_format: u32,
    pub archive_format: u32,
    /// When the backup was written (RFC 3339, UTC).
    pub created_at: String,
    /// The files of the directory besides this manifest.
    pub files: Vec<FileEntry>,
    /// The files inside the archive.
    pub archive_files: Vec<FileEntry>,
}

/// One file: its name, size and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Why a backup could not be made or is not to be trusted.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The cluster refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A file of the backup is missing, unreadable or damaged.
    #[error("{file}: {problem}")]
    Damaged { file: PathBuf, problem: String },
    /// The destination cannot take a backup.
    #[error("{0}")]
    Destination(String),
}

fn damaged(file: &Path, problem: impl Into<String>) -> BackupError {
    BackupError::Damaged {
        file: file.to_path_buf(),
        problem: problem.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asks the node at `addr` for a backup and writes it to `dest` (created;
/// it must not exist or be empty). Returns the manifest written.
pub async fn create(
    client: &KauriClient,
    addr: &str,
    dest: &Path,
) -> Result<Manifest, BackupError> {
    if dest.exists()
        && fs::read_dir(dest)
            .map_err(|e| BackupError::Destination(format!("{}: {e}", dest.display())))?
            .next()
            .is_some()
    {
        return Err(BackupError::Destination(format!(
            "{} is not empty: a backup goes into a new or empty directory",
            dest.display()
        )));
    }
    fs::create_dir_all(dest)
        .map_err(|e| BackupError::Destination(format!("{}: {e}", dest.display())))?;
    let partial = dest.join(format!("{ARCHIVE_FILE}.partial"));
    let mut stream = client
        .on_endpoint(addr, |c| async move {
            crate::proto::cluster_client::ClusterClient::new(c)
                .backup(BackupRequest {})
                .await
        })
        .await?;
    let header = match stream.message().await {
        Ok(Some(crate::proto::BackupChunk {
            part: Some(backup_chunk::Part::Header(h)),
        })) => h,
        Ok(_) => {
            return Err(BackupError::Destination(
                "the node's backup stream did not start with its header".into(),
            ))
        }
        Err(status) => return Err(ClientError::from_status(&status, addr).into()),
    };
    let write_err = |e: std::io::Error| damaged(&partial, format!("cannot write: {e}"));
    let mut out = File::create(&partial).map_err(write_err)?;
    let mut sha = Sha256::new();
    let mut received = 0u64;
    loop {
        match stream.message().await {
            Ok(Some(crate::proto::BackupChunk {
                part: Some(backup_chunk::Part::Data(bytes)),
            })) => {
                received += bytes.len() as u64;
                if received > header.archive_bytes {
                    return Err(damaged(
                        &partial,
                        format!(
                            "the node sent more than the {} bytes it announced",
                            header.archive_bytes
                        ),
                    ));
                }
                sha.update(&bytes);
                out.write_all(&bytes).map_err(write_err)?;
            }
            Ok(None) => break,
            Ok(Some(_)) => {
                return Err(damaged(&partial, "a second header in the backup stream"));
            }
            Err(status) => return Err(ClientError::from_status(&status, addr).into()),
        }
    }
    if received != header.archive_bytes {
        return Err(damaged(
            &partial,
            format!(
                "the stream ended after {received} of {} bytes",
                header.archive_bytes
            ),
        ));
    }
    out.sync_all().map_err(write_err)?;
    drop(out);
    let archive = dest.join(ARCHIVE_FILE);
    fs::rename(&partial, &archive).map_err(write_err)?;
    let archive_files = read_archive(&archive)?;
    let manifest = Manifest {
        kind: "kauri-backup".into(),
        backup_format: BACKUP_FORMAT,
        cluster: header.cluster,
        node_id: header.node_id,
        applied_term: header.applied_term,
        applied_index: header.applied_index,
        registry_time_ms: header.registry_time_ms,
        membership: serde_json::from_str(&header.membership_json)
            .unwrap_or(serde_json::Value::Null),
        on_disk_format: header.on_disk_format,
        archive_format: header.archive_format,
        created_at: chrono::Utc::now().to_rfc3339(),
        files: vec![FileEntry {
            name: ARCHIVE_FILE.into(),
            bytes: received,
            sha256: hex(&sha.finalize()),
        }],
        archive_files,
    };
    let manifest_path = dest.join(MANIFEST_FILE);
    let tmp = dest.join(format!("{MANIFEST_FILE}.partial"));
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    let mut f = File::create(&tmp).map_err(|e| damaged(&tmp, e.to_string()))?;
    f.write_all(&json)
        .and_then(|()| f.sync_all())
        .map_err(|e| damaged(&tmp, e.to_string()))?;
    fs::rename(&tmp, &manifest_path).map_err(|e| damaged(&manifest_path, e.to_string()))?;
    File::open(dest)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::Destination(format!("{}: {e}", dest.display())))?;
    Ok(manifest)
}

/// Checks a backup directory against its manifest: every file there, of
/// its size and SHA-256, and the archive whole inside. Returns the
/// manifest; the error names the file at fault.
pub fn verify(dir: &Path) -> Result<Manifest, BackupError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = fs::read(&manifest_path).map_err(|e| damaged(&manifest_path, e.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| damaged(&manifest_path, format!("not a backup manifest: {e}")))?;
    if manifest.kind != "kauri-backup" || manifest.backup_format != BACKUP_FORMAT {
        return Err(damaged(
            &manifest_path,
            format!(
                "a {:?} of format {}; this kauri reads kauri-backup format {BACKUP_FORMAT}",
                manifest.kind, manifest.backup_format
            ),
        ));
    }
    for entry in &manifest.files {
        if !plain_name(&entry.name) {
            return Err(damaged(
                &manifest_path,
                format!("lists {:?}, not a plain file name", entry.name),
            ));
        }
        let path = dir.join(&entry.name);
        let (bytes, sha) = hash_file(&path)?;
        if bytes != entry.bytes {
            return Err(damaged(
                &path,
                format!("{bytes} bytes, the manifest says {}", entry.bytes),
            ));
        }
        if sha != entry.sha256 {
            return Err(damaged(&path, "its SHA-256 differs from the manifest's"));
        }
    }
    let archive = dir.join(ARCHIVE_FILE);
    let inside = read_archive(&archive)?;
    if inside != manifest.archive_files {
        return Err(damaged(
            &archive,
            "the files inside differ from those the manifest lists",
        ));
    }
    Ok(manifest)
}

fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = File::open(path).map_err(|e| damaged(path, e.to_string()))?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| damaged(path, e.to_string()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        sha.update(&buf[..n]);
    }
    Ok((total, hex(&sha.finalize())))
}

/// Reads a format-3 archive whole: its header, each file (hashed) and the
/// trailing SHA-256 over everything before it, which must match.
fn read_archive(path: &Path) -> Result<Vec<FileEntry>, BackupError> {
    let f = File::open(path).map_err(|e| damaged(path, e.to_string()))?;
    let mut r = BufReader::new(f);
    let mut all = Sha256::new();
    let truncated = |what: &str| damaged(path, format!("truncated in {what}"));
    let take = |r: &mut BufReader<File>, n: usize, what: &str, all: &mut Sha256| {
        let mut buf = vec![0u8; n];
        r.read_exact(&mut buf).map_err(|_| truncated(what))?;
        all.update(&buf);
        Ok::<_, BackupError>(buf)
    };
    if take(&mut r, ARCHIVE_MAGIC.len(), "its magic", &mut all)? != ARCHIVE_MAGIC {
        return Err(damaged(path, "not a Kauri snapshot archive (format 3)"));
    }
    let count = u32::from_be_bytes(
        take(&mut r, 4, "its file count", &mut all)?
            .try_into()
            .expect("4 bytes"),
    );
    if count > MAX_ARCHIVE_FILES {
        return Err(damaged(path, format!("lists {count} files")));
    }
    let mut listed = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = u16::from_be_bytes(
            take(&mut r, 2, "its header", &mut all)?
                .try_into()
                .expect("2 bytes"),
        );
        let name = String::from_utf8(take(&mut r, len as usize, "its header", &mut all)?)
            .map_err(|_| damaged(path, "a file name that is not UTF-8"))?;
        let size = u64::from_be_bytes(
            take(&mut r, 8, "its header", &mut all)?
                .try_into()
                .expect("8 bytes"),
        );
        listed.push((name, size));
    }
    let mut entries = Vec::with_capacity(listed.len());
    let mut buf = vec![0u8; 1 << 16];
    for (name, size) in listed {
        let mut sha = Sha256::new();
        let mut left = size;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            r.read_exact(&mut buf[..n])
                .map_err(|_| truncated(&format!("the bytes of {name}")))?;
            sha.update(&buf[..n]);
            all.update(&buf[..n]);
            left -= n as u64;
        }
        entries.push(FileEntry {
            name,
            bytes: size,
            sha256: hex(&sha.finalize()),
        });
    }
    let mut trailer = [0u8; 32];
    r.read_exact(&mut trailer)
        .map_err(|_| truncated("its checksum"))?;
    if all.finalize().as_slice() != trailer {
        return Err(damaged(path, "its checksum does not match its contents"));
    }
    let mut rest = [0u8; 1];
    if r.read(&mut rest)
        .map_err(|e| damaged(path, e.to_string()))?
        != 0
    {
        return Err(damaged(path, "bytes after its checksum"));
    }
    Ok(entries)
}
