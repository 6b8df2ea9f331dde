//! The legacy snapshot format (formats 1 and 2; the current one is
//! [`super::archive`]): every registry column family, in order, with a
//! checksum, compressed. Nodes no longer send it; they still install it
//! from a peer that does, so a cluster can be upgraded node by node.
//!
//! ```text
//! "KAURISNAP2\n"
//! an LZ4 frame holding:
//!   repeated: tag u8 | key_len u32 BE | key | value_len u32 BE | value
//!   0xFF end marker
//!   SHA-256 of the magic and everything above (32 bytes)
//! ```
//!
//! Version 1 (`"KAURISNAP1\n"`, the same content uncompressed) is still
//! read, so a node can install a snapshot from a peer not yet upgraded.
//! Records are postcard-encoded registry records and their indexes, which
//! LZ4 shrinks about threefold at little CPU cost.
//!
//! Raft metadata (last included log id, membership) travels beside the file
//! in openraft's `SnapshotMeta`.

use std::io::{BufReader, BufWriter, Read, Write};

use lz4_flex::frame::{FrameDecoder, FrameEncoder};
use sha2::{Digest, Sha256};

pub use crate::archive::SnapshotError;
use crate::registry::Cf;

const MAGIC_V1: &[u8] = b"KAURISNAP1\n";
const MAGIC: &[u8] = b"KAURISNAP2\n";
const END: u8 = 0xFF;
/// Largest key or value accepted from a snapshot file (guards allocation on
/// corrupt input).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Damaged input (short, or not decompressible) is corruption; anything
/// else is the file system's doing.
fn reading(e: std::io::Error) -> SnapshotError {
    let lz4 = e
        .get_ref()
        .is_some_and(|inner| inner.is::<lz4_flex::frame::Error>());
    if lz4 || e.kind() == std::io::ErrorKind::UnexpectedEof {
        SnapshotError::Corrupt(format!("damaged snapshot: {e}"))
    } else {
        SnapshotError::Io(e)
    }
}

/// Writes a snapshot, hashing as it goes.
pub struct SnapshotWriter<W: Write> {
    out: FrameEncoder<BufWriter<W>>,
    hash: Sha256,
    /// Number of records written.
    pub records: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot on `out`.
    pub fn new(out: W) -> Result<Self, SnapshotError> {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(MAGIC)?;
        let mut hash = Sha256::new();
        hash.update(MAGIC);
        Ok(SnapshotWriter {
            out: FrameEncoder::new(out),
            hash,
            records: 0,
        })
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
        let mut out = self.out.finish().map_err(|e| SnapshotError::Io(e.into()))?;
        out.flush()?;
        out.into_inner()
            .map_err(|e| SnapshotError::Io(e.into_error()))
    }
}

/// Whether `magic` (a file's first bytes) starts a stream-format snapshot
/// (format 1 or 2).
pub fn is_stream_magic(magic: &[u8]) -> bool {
    magic == MAGIC || magic == MAGIC_V1
}

/// Length of the magic that starts every snapshot format.
pub const MAGIC_BYTES: usize = MAGIC.len();

/// Reads every record of a snapshot, calling `on_record` for each, and
/// verifies the checksum at the end. Callers must not make the records
/// visible until this returns `Ok`.
pub fn read_snapshot<R: Read>(
    input: R,
    on_record: impl FnMut(Cf, Vec<u8>, Vec<u8>),
) -> Result<u64, SnapshotError> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let mut magic = vec![0u8; MAGIC.len()];
    input.read_exact(&mut magic).map_err(reading)?;
    let mut hash = Sha256::new();
    hash.update(&magic);
    if magic == MAGIC {
        read_records(
            HashingReader {
                inner: FrameDecoder::new(input),
                hash,
            },
            on_record,
        )
    } else if magic == MAGIC_V1 {
        read_records(HashingReader { inner: input, hash }, on_record)
    } else {
        Err(SnapshotError::Corrupt(
            "bad magic: not a Kauri snapshot".into(),
        ))
    }
}

fn read_records<R: Read>(
    mut r: HashingReader<R>,
    mut on_record: impl FnMut(Cf, Vec<u8>, Vec<u8>),
) -> Result<u64, SnapshotError> {
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
        .map_err(|e| match reading(e) {
            SnapshotError::Corrupt(_) => SnapshotError::Corrupt("truncated checksum".into()),
            other => other,
        })?;
    if expected != actual {
        return Err(SnapshotError::Corrupt("checksum mismatch".into()));
    }
    let mut rest = [0u8; 1];
    if r.inner.read(&mut rest).map_err(reading)? != 0 {
        return Err(SnapshotError::Corrupt(
            "trailing bytes after checksum".into(),
        ));
    }
    Ok(records)
}

struct HashingReader<R: Read> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.inner.read_exact(buf).map_err(reading)?;
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
    fn a_version_1_snapshot_still_reads() {
        // Version 1: the same content, uncompressed, hashed from the magic.
        let mut body = MAGIC_V1.to_vec();
        body.push(Cf::Domains.tag());
        body.extend(3u32.to_be_bytes());
        body.extend(b"a.b");
        body.extend(1u32.to_be_bytes());
        body.extend(b"v");
        body.push(END);
        let digest = Sha256::digest(&body);
        body.extend(digest);
        let mut seen = Vec::new();
        let n = read_snapshot(&body[..], |cf, k, v| seen.push((cf, k, v))).unwrap();
        assert_eq!(n, 1);
        assert_eq!(seen, vec![(Cf::Domains, b"a.b".to_vec(), b"v".to_vec())]);
    }

    #[test]
    fn repetitive_records_are_stored_compressed() {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        let value = b"registrar=acme;status=ok;contact=owner;".repeat(8);
        for i in 0..1000 {
            w.record(Cf::Domains, format!("name-{i}.nz").as_bytes(), &value)
                .unwrap();
        }
        let bytes = w.finish().unwrap();
        let raw = 1000 * (value.len() + 20);
        assert!(bytes.len() * 4 < raw, "{} bytes for {raw} raw", bytes.len());
        assert_eq!(read_snapshot(&bytes[..], |_, _, _| {}).unwrap(), 1000);
    }

    #[test]
    fn a_truncated_snapshot_is_rejected() {
        let bytes = sample();
        // Any cut that loses content (the last 4 bytes are the LZ4 end
        // mark, after the verified checksum).
        for cut in [0, 5, MAGIC.len() + 3, bytes.len() / 2, bytes.len() - 5] {
            let err = read_snapshot(&bytes[..cut], |_, _, _| {}).unwrap_err();
            assert!(
                matches!(err, SnapshotError::Corrupt(_)),
                "cut at {cut}: {err}"
            );
        }
    }
}
