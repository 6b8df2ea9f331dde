//! Snapshot format 3: a RocksDB checkpoint of the node's database, shipped
//! file by file as one stream.
//!
//! ```text
//! "KAURISNAP3\n"
//! file count u32 BE
//! per file: name_len u16 BE | name (UTF-8, a plain file name) | size u64 BE
//! the bytes of every file, in header order
//! SHA-256 of everything above (32 bytes)
//! ```
//!
//! A checkpoint is a consistent point-in-time copy of the database made of
//! hard links to its immutable table files, so building one costs a
//! memtable flush, not a scan of the registry. The sender reads the files
//! in place ([`ArchiveReader`]); nothing is copied until a follower needs
//! the snapshot, and then only onto the wire. The receiver unpacks the
//! stream into a directory ([`extract_archive`]), verifying the checksum
//! before anything uses it.

use std::io::{self, Read, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

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

/// First bytes of a format-3 snapshot.
pub const MAGIC: &[u8] = b"KAURISNAP3\n";
/// Most files an archive may list (guards allocation on corrupt input).
const MAX_FILES: u32 = 1_000_000;
const DIGEST_BYTES: u64 = 32;

/// Whether `name` is a file of a checkpoint worth shipping: RocksDB's own
/// info logs and lock file are local to the process that opened it.
fn ships(name: &str) -> bool {
    !(name.starts_with("LOG") || name == "LOCK")
}

/// Whether `name` may be written into a directory as is: one plain
/// component, so a corrupt or hostile archive cannot escape the directory.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

/// The files of checkpoint `dir` that an archive of it holds, sorted by
/// name, each opened (open handles keep them readable even if the
/// checkpoint is deleted meanwhile) with its size.
fn checkpoint_files(dir: &Path) -> io::Result<Vec<(String, std::fs::File, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() || !ships(&name) {
            continue;
        }
        if !plain_file_name(&name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("checkpoint file name {name:?} cannot be shipped"),
            ));
        }
        let file = std::fs::File::open(entry.path())?;
        let size = file.metadata()?.len();
        files.push((name, file, size));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// One file of an archive: where its bytes start in the stream.
struct Part {
    file: std::fs::File,
    start: u64,
    size: u64,
}

/// Reads a checkpoint directory as a format-3 archive without copying it:
/// the header is built in memory, file bytes are read in place, and the
/// checksum is computed as the bytes go by (and completed on demand if a
/// reader seeks past bytes it never read).
pub struct ArchiveReader {
    header: Vec<u8>,
    parts: Vec<Part>,
    /// Where the trailing checksum starts.
    content_end: u64,
    pos: u64,
    hash: Sha256,
    /// Every byte before this offset has been hashed, in order.
    hashed: u64,
    digest: Option<[u8; 32]>,
}

impl ArchiveReader {
    /// An archive of checkpoint `dir`, its files opened now.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let files = checkpoint_files(dir)?;
        let mut header = MAGIC.to_vec();
        header.extend((files.len() as u32).to_be_bytes());
        for (name, _, size) in &files {
            header.extend((name.len() as u16).to_be_bytes());
            header.extend(name.as_bytes());
            header.extend(size.to_be_bytes());
        }
        let mut start = header.len() as u64;
        let mut parts = Vec::with_capacity(files.len());
        for (_, file, size) in files {
            parts.push(Part { file, start, size });
            start += size;
        }
        Ok(ArchiveReader {
            header,
            parts,
            content_end: start,
            pos: 0,
            hash: Sha256::new(),
            hashed: 0,
            digest: None,
        })
    }

    /// Length of the whole stream.
    pub fn len(&self) -> u64 {
        self.content_end + DIGEST_BYTES
    }

    /// Number of checkpoint files the stream holds.
    pub fn files(&self) -> usize {
        self.parts.len()
    }

    /// Whether the stream is empty (never: it always has a header).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads content (header or file bytes) at `pos` into `out`, returning
    /// how many bytes it read; `pos` must be before `content_end`.
    fn read_content(&self, pos: u64, out: &mut [u8]) -> io::Result<usize> {
        let header_len = self.header.len() as u64;
        if pos < header_len {
            let from = &self.header[pos as usize..];
            let n = from.len().min(out.len());
            out[..n].copy_from_slice(&from[..n]);
            return Ok(n);
        }
        let i = self.parts.partition_point(|p| p.start + p.size <= pos);
        let part = &self.parts[i];
        let within = pos - part.start;
        let want = ((part.size - within) as usize).min(out.len());
        let n = part.file.read_at(&mut out[..want], within)?;
        if n == 0 && want > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a checkpoint file shrank while it was being sent",
            ));
        }
        Ok(n)
    }

    /// Hashes the bytes `out` read at `pos` if they extend the hashed prefix.
    fn absorb(&mut self, pos: u64, out: &[u8]) {
        let end = (pos + out.len() as u64).min(self.content_end);
        if pos <= self.hashed && self.hashed < end {
            let from = (self.hashed - pos) as usize;
            let to = (end - pos) as usize;
            self.hash.update(&out[from..to]);
            self.hashed = end;
        }
    }

    /// The checksum of all content, reading whatever was not read yet.
    fn digest(&mut self) -> io::Result<[u8; 32]> {
        if let Some(d) = self.digest {
            return Ok(d);
        }
        let mut buf = vec![0u8; 1 << 20];
        while self.hashed < self.content_end {
            let at = self.hashed;
            let want = ((self.content_end - at) as usize).min(buf.len());
            let n = self.read_content(at, &mut buf[..want])?;
            self.absorb(at, &buf[..n]);
        }
        let d: [u8; 32] = self.hash.clone().finalize().into();
        self.digest = Some(d);
        Ok(d)
    }

    /// Reads at the current position, advancing it.
    fn read_here(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let pos = self.pos;
        if pos >= self.len() || out.is_empty() {
            return Ok(0);
        }
        let n = if pos < self.content_end {
            let n = self.read_content(pos, out)?;
            self.absorb(pos, &out[..n]);
            n
        } else {
            let digest = self.digest()?;
            let from = &digest[(pos - self.content_end) as usize..];
            let n = from.len().min(out.len());
            out[..n].copy_from_slice(&from[..n]);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Read for ArchiveReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_here(out)
    }
}

impl AsyncRead for ArchiveReader {
    // The reads are plain positioned reads of local files in bounded
    // chunks (one snapshot chunk at most), done in place.
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.read_here(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for ArchiveReader {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => this.len().checked_add_signed(d),
            SeekFrom::Current(d) => this.pos.checked_add_signed(d),
        };
        this.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

/// Most header bytes an archive may declare before its first file: a
/// checkpoint has tens of files, so this leaves a wide margin while
/// keeping a receiver's look at the header small.
pub const MAX_HEADER_BYTES: usize = 16 << 20;

/// The total length a format-3 stream declares in its header, from the
/// stream's first bytes: `Ok(None)` while `prefix` is too short to tell,
/// an error when the header is malformed or longer than
/// [`MAX_HEADER_BYTES`]. A receiver uses it to bound what a sender may
/// write before anything is verified.
pub fn declared_len(prefix: &[u8]) -> Result<Option<u64>, SnapshotError> {
    let corrupt = |m: String| Err(SnapshotError::Corrupt(m));
    let magic_len = MAGIC.len().min(prefix.len());
    if prefix[..magic_len] != MAGIC[..magic_len] {
        return corrupt("bad magic: not a Kauri checkpoint snapshot".into());
    }
    let mut at = MAGIC.len();
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let bytes = prefix.get(*at..*at + n)?;
        *at += n;
        Some(bytes)
    };
    let Some(count) = take(&mut at, 4) else {
        return Ok(None);
    };
    let count = u32::from_be_bytes(count.try_into().expect("4 bytes"));
    if count > MAX_FILES {
        return corrupt(format!(
            "{count} files listed, more than the {MAX_FILES} allowed"
        ));
    }
    let mut total: u64 = 0;
    for _ in 0..count {
        if at > MAX_HEADER_BYTES {
            return corrupt(format!(
                "the header is longer than the {MAX_HEADER_BYTES} bytes allowed"
            ));
        }
        let Some(len) = take(&mut at, 2) else {
            return Ok(None);
        };
        let len = u16::from_be_bytes(len.try_into().expect("2 bytes")) as usize;
        if take(&mut at, len).is_none() {
            return Ok(None);
        }
        let Some(size) = take(&mut at, 8) else {
            return Ok(None);
        };
        let size = u64::from_be_bytes(size.try_into().expect("8 bytes"));
        total = match total.checked_add(size) {
            Some(t) => t,
            None => return corrupt("the listed file sizes overflow".into()),
        };
    }
    match total.checked_add(at as u64 + DIGEST_BYTES) {
        Some(len) => Ok(Some(len)),
        None => corrupt("the listed file sizes overflow".into()),
    }
}

/// Unpacks a format-3 stream into `dir` (which must not exist), verifying
/// its checksum; returns the number of files. On any error the partial
/// directory is removed.
pub fn extract_archive<R: Read>(input: R, dir: &Path) -> Result<u32, SnapshotError> {
    std::fs::create_dir(dir)?;
    let result = extract_into(input, dir);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn extract_into<R: Read>(input: R, dir: &Path) -> Result<u32, SnapshotError> {
    let mut r = Hashing {
        inner: io::BufReader::with_capacity(1 << 20, input),
        hash: Sha256::new(),
    };
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(SnapshotError::Corrupt(
            "bad magic: not a Kauri checkpoint snapshot".into(),
        ));
    }
    let count = u32::from_be_bytes(r.array()?);
    if count > MAX_FILES {
        return Err(SnapshotError::Corrupt(format!(
            "{count} files listed, more than the {MAX_FILES} allowed"
        )));
    }
    let mut listed = Vec::new();
    for _ in 0..count {
        let len = u16::from_be_bytes(r.array()?) as usize;
        let mut name = vec![0u8; len];
        r.read_exact(&mut name)?;
        let name = String::from_utf8(name)
            .ok()
            .filter(|n| plain_file_name(n))
            .ok_or_else(|| SnapshotError::Corrupt("a listed file name is not plain".into()))?;
        let size = u64::from_be_bytes(r.array()?);
        listed.push((name, size));
    }
    let mut buf = vec![0u8; 1 << 20];
    for (name, size) in &listed {
        let path = dir.join(name);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => {
                    SnapshotError::Corrupt(format!("file {name} listed twice"))
                }
                _ => SnapshotError::Io(e),
            })?;
        let mut left = *size;
        while left > 0 {
            let want = (left as usize).min(buf.len());
            r.read_exact(&mut buf[..want])?;
            out.write_all(&buf[..want])?;
            left -= want as u64;
        }
        out.sync_all()?;
    }
    let expected: [u8; 32] = r.hash.finalize_reset().into();
    let mut actual = [0u8; 32];
    r.inner.read_exact(&mut actual).map_err(truncated)?;
    if expected != actual {
        return Err(SnapshotError::Corrupt("checksum mismatch".into()));
    }
    let mut rest = [0u8; 1];
    if r.inner.read(&mut rest)? != 0 {
        return Err(SnapshotError::Corrupt(
            "trailing bytes after checksum".into(),
        ));
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(count)
}

fn truncated(e: io::Error) -> SnapshotError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        SnapshotError::Corrupt("truncated checkpoint snapshot".into())
    } else {
        SnapshotError::Io(e)
    }
}

struct Hashing<R: Read> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Hashing<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.inner.read_exact(buf).map_err(truncated)?;
        self.hash.update(&*buf);
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        self.read_exact(&mut a)?;
        Ok(a)
    }
}

/// What openraft moves around as a snapshot's data: a file being received
/// (or an old-format snapshot file), or a checkpoint read in place.
pub enum SnapshotData {
    /// A plain file: received chunks are written here.
    File(tokio::fs::File),
    /// A checkpoint of this node, served as a format-3 stream.
    Checkpoint(ArchiveReader),
    /// A received snapshot, verified and ready to install: a format-3
    /// checkpoint unpacked into this directory, or a stream-format file
    /// (formats 1 and 2) whose checksum was checked.
    Verified(std::path::PathBuf),
}

impl SnapshotData {
    /// The received file, if this is one.
    pub fn into_file(self) -> Option<tokio::fs::File> {
        match self {
            SnapshotData::File(f) => Some(f),
            SnapshotData::Checkpoint(_) | SnapshotData::Verified(_) => None,
        }
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File(f) => Pin::new(f).poll_read(cx, buf),
            SnapshotData::Checkpoint(a) => Pin::new(a).poll_read(cx, buf),
            SnapshotData::Verified(_) => Poll::Ready(Err(verified())),
        }
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, to: SeekFrom) -> io::Result<()> {
        match self.get_mut() {
            SnapshotData::File(f) => Pin::new(f).start_seek(to),
            SnapshotData::Checkpoint(a) => Pin::new(a).start_seek(to),
            SnapshotData::Verified(_) => Err(verified()),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        match self.get_mut() {
            SnapshotData::File(f) => Pin::new(f).poll_complete(cx),
            SnapshotData::Checkpoint(a) => Pin::new(a).poll_complete(cx),
            SnapshotData::Verified(_) => Poll::Ready(Err(verified())),
        }
    }
}

fn verified() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a received snapshot is installed from where it lies, not read as a stream",
    )
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a checkpoint being served is read-only",
    )
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SnapshotData::File(f) => Pin::new(f).poll_write(cx, buf),
            SnapshotData::Checkpoint(_) | SnapshotData::Verified(_) => {
                Poll::Ready(Err(read_only()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File(f) => Pin::new(f).poll_flush(cx),
            SnapshotData::Checkpoint(_) | SnapshotData::Verified(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SnapshotData::File(f) => Pin::new(f).poll_shutdown(cx),
            SnapshotData::Checkpoint(_) | SnapshotData::Verified(_) => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint_like(dir: &Path) {
        std::fs::write(dir.join("000012.sst"), vec![7u8; 300_000]).unwrap();
        std::fs::write(dir.join("CURRENT"), b"MANIFEST-000005\n").unwrap();
        std::fs::write(dir.join("MANIFEST-000005"), b"manifest bytes").unwrap();
        std::fs::write(dir.join("LOG"), b"info log, not shipped").unwrap();
        std::fs::write(dir.join("empty.log"), b"").unwrap();
    }

    fn read_all(mut r: ArchiveReader) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn an_archive_unpacks_to_the_same_files_without_local_logs() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        checkpoint_like(src.path());
        let reader = ArchiveReader::open(src.path()).unwrap();
        let len = reader.len();
        let bytes = read_all(reader);
        assert_eq!(bytes.len() as u64, len);
        let out = dst.path().join("ckpt");
        assert_eq!(extract_archive(&bytes[..], &out).unwrap(), 4);
        for name in ["000012.sst", "CURRENT", "MANIFEST-000005", "empty.log"] {
            assert_eq!(
                std::fs::read(out.join(name)).unwrap(),
                std::fs::read(src.path().join(name)).unwrap(),
                "{name}"
            );
        }
        assert!(!out.join("LOG").exists());
    }

    #[tokio::test]
    async fn chunked_seeking_reads_give_the_same_stream_and_checksum() {
        use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
        let src = tempfile::tempdir().unwrap();
        checkpoint_like(src.path());
        let whole = read_all(ArchiveReader::open(src.path()).unwrap());

        // As openraft sends: length first, then seek + read chunk by chunk.
        let mut data = SnapshotData::Checkpoint(ArchiveReader::open(src.path()).unwrap());
        let end = data.seek(SeekFrom::End(0)).await.unwrap();
        assert_eq!(end, whole.len() as u64);
        let mut sent: Vec<u8> = Vec::new();
        while (sent.len() as u64) < end {
            data.seek(SeekFrom::Start(sent.len() as u64)).await.unwrap();
            let mut chunk = vec![0u8; 65_536];
            let n = data.read(&mut chunk).await.unwrap();
            sent.extend(&chunk[..n]);
        }
        assert_eq!(sent, whole);

        // Jumping straight to the checksum still gives the right one.
        let mut jump = ArchiveReader::open(src.path()).unwrap();
        let mut tail = Vec::new();
        jump.pos = jump.len() - DIGEST_BYTES;
        Read::read_to_end(&mut jump, &mut tail).unwrap();
        assert_eq!(tail, whole[whole.len() - 32..]);
        assert!(
            data.write_all(b"x").await.is_err(),
            "served data is read-only"
        );
    }

    #[test]
    fn damaged_archives_are_refused_and_leave_nothing_behind() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        checkpoint_like(src.path());
        let bytes = read_all(ArchiveReader::open(src.path()).unwrap());
        let out = dst.path().join("ckpt");

        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("flipped", flipped),
            ("truncated", bytes[..bytes.len() - 10].to_vec()),
            ("trailing", [&bytes[..], b"x"].concat()),
            ("stream format", b"KAURISNAP2\nrest".to_vec()),
        ];
        for (what, input) in cases {
            let e = extract_archive(&input[..], &out).unwrap_err();
            assert!(matches!(e, SnapshotError::Corrupt(_)), "{what}: {e}");
            assert!(!out.exists(), "{what}: partial directory left");
        }

        // A name that would escape the directory.
        let mut evil = MAGIC.to_vec();
        evil.extend(1u32.to_be_bytes());
        evil.extend(5u16.to_be_bytes());
        evil.extend(b"../x1");
        evil.extend(0u64.to_be_bytes());
        let e = extract_archive(&evil[..], &out).unwrap_err();
        assert!(e.to_string().contains("not plain"), "{e}");
        assert!(!dst.path().join("x1").exists());
    }

    #[test]
    fn the_declared_length_is_known_from_the_header_alone() {
        let src = tempfile::tempdir().unwrap();
        checkpoint_like(src.path());
        let reader = ArchiveReader::open(src.path()).unwrap();
        let (len, header) = (reader.len(), reader.header.len());
        let bytes = read_all(reader);
        for cut in [0, 3, MAGIC.len(), MAGIC.len() + 4, header - 1] {
            assert_eq!(declared_len(&bytes[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(declared_len(&bytes[..header]).unwrap(), Some(len));
        assert_eq!(declared_len(&bytes).unwrap(), Some(len));
        assert!(declared_len(b"KAURISNAP2\n").is_err());
        let mut overflow = MAGIC.to_vec();
        overflow.extend(2u32.to_be_bytes());
        for name in [b"a", b"b"] {
            overflow.extend(1u16.to_be_bytes());
            overflow.extend(name);
            overflow.extend(u64::MAX.to_be_bytes());
        }
        assert!(declared_len(&overflow).is_err());
    }
}
