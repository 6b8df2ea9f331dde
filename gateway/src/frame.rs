//! RFC 5734 framing: each EPP data unit is preceded by a 4-byte big-endian
//! length that counts itself and the data.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes of the length header.
pub const HEADER_BYTES: u32 = 4;

/// Why a frame could not be read. Any of these closes the connection:
/// after broken framing there is no telling where the next frame starts.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The length header says less than the header itself.
    #[error("frame length {0} is shorter than its 4-byte header")]
    TooShort(u32),
    /// The length header says more than this server accepts.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// What the header said.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// Reading failed (including a connection closed inside a frame).
    #[error("reading a frame: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame's data (without its header), at most `max` bytes in all.
pub async fn read<R: AsyncRead + Unpin>(reader: &mut R, max: u32) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER_BYTES as usize];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(header);
    if len < HEADER_BYTES {
        return Err(FrameError::TooShort(len));
    }
    if len > max {
        return Err(FrameError::TooLong { len, max });
    }
    let mut data = vec![0u8; (len - HEADER_BYTES) as usize];
    reader.read_exact(&mut data).await?;
    Ok(data)
}

/// Writes `data` as one frame and flushes it.
pub async fn write<W: AsyncWrite + Unpin>(writer: &mut W, data: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(data.len() + HEADER_BYTES as usize)
        .map_err(|_| std::io::Error::other("frame too large"))?;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    writer.write_all(&out).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_lengths_are_refused() {
        let mut buf = Vec::new();
        write(&mut buf, b"<epp/>").await.unwrap();
        assert_eq!(&buf[..4], &10u32.to_be_bytes());
        assert_eq!(read(&mut buf.as_slice(), 100).await.unwrap(), b"<epp/>");
        let short = 3u32.to_be_bytes();
        assert!(matches!(
            read(&mut short.as_slice(), 100).await,
            Err(FrameError::TooShort(3))
        ));
        let long = 1000u32.to_be_bytes();
        assert!(matches!(
            read(&mut long.as_slice(), 100).await,
            Err(FrameError::TooLong {
                len: 1000,
                max: 100
            })
        ));
        assert!(matches!(
            read(&mut [].as_slice(), 100).await,
            Err(FrameError::Closed)
        ));
        // Cut inside a frame.
        let cut = [0u8, 0, 0, 20, b'<'];
        assert!(matches!(
            read(&mut cut.as_slice(), 100).await,
            Err(FrameError::Io(_))
        ));
    }
}
