//! The snapshot file format: every registry column family, in order, with a
//! checksum.
//!
//! ```text
//! "KAURISNAP1\n"
//! repeated: tag u8 | key_len u32 BE | key | value_len u32 BE | value
//! 0xFF end marker
//! SHA-256 of everything above (32 bytes)
//! ```
//!
//! Raft metadata (last included log id, membership) travels beside the file
//! in openraft's `SnapshotMeta`.

use std::io::{BufReader, BufWriter, Read, Write};

use sha2::{Digest, Sha256};

use crate::registry::Cf;

const MAGIC: &[u8] = b"KAURISNAP1\n";
const END: u8 = 0xFF;
/// Largest key or value accepted from a snapshot file (guards allocation on
/// corrupt input).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Errors reading a snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("snapshot io: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a Kauri snapshot or is damaged.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
}

/// Writes a snapshot, hashing as it goes.
pub struct SnapshotWriter<W: Write> {
    out: BufWriter<W>,
    hash: Sha256,
    /// Number of records written.
    pub records: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot on `out`.
    pub fn new(out: W) -> Result<Self, SnapshotError> {
        let mut w = SnapshotWriter {
            out: BufWriter::with_capacity(1 << 20, out),
            hash: Sha256::new(),
            records: 0,
        };
        w.write(MAGIC)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.hash.update(bytes);
        self.out.write_all(bytes)?;
        Ok(())
    }

    /// Appends one key/value of column family `cf`.
    pub fn record(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> Result<(), SnapshotError> {
        if key.len() > MAX_RECORD_BYTES || value.len() > MAX_RECORD_BYTES {
            return Err(SnapshotError::Corrupt(format!(
                "record in {} of {} bytes exceeds the {MAX_RECORD_BYTES}-byte limit",
                cf.name(),
                key.len() + value.len()
            )));
        }
        self.write(&[cf.tag()])?;
        self.write(&(key.len() as u32).to_be_bytes())?;
        self.write(key)?;
        self.write(&(value.len() as u32).to_be_bytes())?;
        self.write(value)?;
        self.records += 1;
        Ok(())
    }

    /// Writes the end marker and checksum and flushes.
    pub fn finish(mut self) -> Result<W, SnapshotError> {
        self.write(&[END])?;
        let digest = self.hash.finalize_reset();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        self.out
            .into_inner()
            .map_err(|e| SnapshotError::Io(e.into_error()))
    }
}

/// Reads every record of a snapshot, calling `on_record` for each, and
/// verifies the checksum at the end. Callers must not make the records
/// visible until this returns `Ok`.
pub fn read_snapshot<R: Read>(
    input: R,
    mut on_record: impl FnMut(Cf, Vec<u8>, Vec<u8>),
) -> Result<u64, SnapshotError> {
    let mut r = HashingReader {
        inner: BufReader::with_capacity(1 << 20, input),
        hash: Sha256::new(),
    };
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(SnapshotError::Corrupt(
            "bad magic: not a Kauri snapshot".into(),
        ));
    }
    let mut records = 0u64;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)?;
        if tag[0] == END {
            break;
        }
        let cf = Cf::from_tag(tag[0]).ok_or_else(|| {
            SnapshotError::Corrupt(format!("unknown column family tag {}", tag[0]))
        })?;
        let key = r.read_chunk()?;
        let value = r.read_chunk()?;
        on_record(cf, key, value);
        records += 1;
    }
    let expected: [u8; 32] = r.hash.finalize_reset().into();
    let mut actual = [0u8; 32];
    r.inner
        .read_exact(&mut actual)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                SnapshotError::Corrupt("truncated checksum".into())
            }
            _ => SnapshotError::Io(e),
        })?;
    if expected != actual {
        return Err(SnapshotError::Corrupt("checksum mismatch".into()));
    }
    let mut rest = [0u8; 1];
    if r.inner.read(&mut rest)? != 0 {
        return Err(SnapshotError::Corrupt(
            "trailing bytes after checksum".into(),
        ));
    }
    Ok(records)
}

struct HashingReader<R: Read> {
    inner: BufReader<R>,
    hash: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                SnapshotError::Corrupt("truncated snapshot".into())
            } else {
                SnapshotError::Io(e)
            }
        })?;
        self.hash.update(&*buf);
        Ok(())
    }

    fn read_chunk(&mut self) -> Result<Vec<u8>, SnapshotError> {
        let mut len = [0u8; 4];
        self.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RECORD_BYTES {
            return Err(SnapshotError::Corrupt(format!(
                "record length {len} exceeds limit"
            )));
        }
        let mut buf = vec![0u8; len];
        self.read_exact(&mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        w.record(Cf::Domains, b"example.nz", b"v1").unwrap();
        w.record(Cf::Registrars, b"reg1", b"").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_written_snapshot_reads_back_record_for_record() {
        let mut seen = Vec::new();
        let n = read_snapshot(&sample()[..], |cf, k, v| seen.push((cf, k, v))).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            seen[0],
            (Cf::Domains, b"example.nz".to_vec(), b"v1".to_vec())
        );
        assert_eq!(seen[1], (Cf::Registrars, b"reg1".to_vec(), Vec::new()));
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut bytes = sample();
        let i = MAGIC.len() + 8;
        bytes[i] ^= 0x01;
        let err = read_snapshot(&bytes[..], |_, _, _| {}).unwrap_err();
        assert!(matches!(err, SnapshotError::Corrupt(_)), "{err}");
    }

    #[test]
    fn a_truncated_snapshot_is_rejected() {
        let bytes = sample();
        for cut in [0, 5, MAGIC.len() + 3, bytes.len() - 1] {
            let err = read_snapshot(&bytes[..cut], |_, _, _| {}).unwrap_err();
            assert!(
                matches!(err, SnapshotError::Corrupt(_)),
                "cut at {cut}: {err}"
            );
        }
    }
}
