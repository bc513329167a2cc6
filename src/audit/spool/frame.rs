//! One framing for every file the spool writes: `[u32 length][u32 crc32][body]`, little-endian,
//! the crc over the body. A torn append (power loss mid-write) leaves a short header, a short
//! body or a crc mismatch at the tail; [`split`] stops at the first such frame and says where,
//! so the caller can truncate there and keep appending after valid data only. Segments are
//! pre-zeroed, so their valid frames are followed by zeros: the clean end of the log, where an
//! all-zero header (length 0, crc 0) stands and nothing but zeros after it.

/// Bytes before the body: the length and the crc32.
pub(super) const HEADER: usize = 8;

/// Every body starts with eight bytes (a timestamp or a record id), so a shorter one is garbage.
pub(super) const MIN_BODY: usize = 8;

/// A length above this is garbage rather than a record: no audit record comes near it, and
/// refusing it keeps a corrupt length from being mistaken for a long frame still being written.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why a frame could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("{available} bytes left, too few for a frame header")]
    ShortHeader { available: usize },
    #[error("declared length {declared} is outside {MIN_BODY}..={MAX_BODY}")]
    BadLength { declared: u32 },
    #[error("frame declares {declared} bytes, only {available} left")]
    ShortBody { declared: u32, available: usize },
    #[error("crc32 mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
}

/// Appends one frame whose body is the concatenation of `parts`.
///
/// The caller keeps the body within [`MAX_BODY`], so the length always fits a `u32`.
pub(super) fn encode(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let mut crc = crc32fast::Hasher::new();
    for part in parts {
        crc.update(part);
    }
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// The frames of a file, read up to the first bad one.
#[derive(Debug)]
pub(super) struct Split {
    /// Byte ranges of each valid body, in file order.
    pub(super) bodies: Vec<std::ops::Range<usize>>,
    /// Where the valid prefix ends: the offset to truncate at when `error` is set.
    pub(super) valid_len: usize,
    pub(super) error: Option<FrameError>,
}

/// Reads frames from the start of `buf` until its end, the first bad frame, or a clean end:
/// nothing but zeros from where a frame should start, a pre-zeroed segment's unwritten space
/// (`valid_len` then stops short of the end with no error). A zero header with data after it
/// is a bad frame: a record never starts after a gap.
pub(super) fn split(buf: &[u8]) -> Split {
    let mut bodies = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        // Stops at the first non-zero byte, within a valid frame's length field.
        if buf[pos..].iter().all(|b| *b == 0) {
            break;
        }
        match read_one(&buf[pos..]) {
            Ok(body_len) => {
                bodies.push(pos + HEADER..pos + HEADER + body_len);
                pos += HEADER + body_len;
            }
            Err(error) => {
                return Split {
                    bodies,
                    valid_len: pos,
                    error: Some(error),
                };
            }
        }
    }
    Split {
        bodies,
        valid_len: pos,
        error: None,
    }
}

/// Checks the frame at the start of `rest` and returns its body length.
fn read_one(rest: &[u8]) -> Result<usize, FrameError> {
    let (Some(len), Some(stored)) = (read_u32(rest, 0), read_u32(rest, 4)) else {
        return Err(FrameError::ShortHeader {
            available: rest.len(),
        });
    };
    let body_len = usize::try_from(len).unwrap_or(usize::MAX);
    if !(MIN_BODY..=MAX_BODY).contains(&body_len) {
        return Err(FrameError::BadLength { declared: len });
    }
    let Some(body) = rest.get(HEADER..HEADER + body_len) else {
        return Err(FrameError::ShortBody {
            declared: len,
            available: rest.len() - HEADER,
        });
    };
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(FrameError::CrcMismatch { stored, computed });
    }
    Ok(body_len)
}

/// The little-endian `u32` at `at`, if `buf` holds all four bytes.
pub(super) fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// The little-endian `u64` at `at`, if `buf` holds all eight bytes.
pub(super) fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bodies: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for body in bodies {
            encode(&mut buf, &[body]);
        }
        buf
    }

    #[test]
    fn zeros_after_the_last_frame_are_a_clean_end() {
        let mut buf = frames(&[b"record-1", b"record-22"]);
        let valid = buf.len();
        buf.resize(valid + 4096, 0);
        let split = split(&buf);
        assert_eq!(split.bodies.len(), 2);
        assert_eq!(split.valid_len, valid);
        assert_eq!(split.error, None);
        // Fewer zeros than a header are the same end.
        buf.truncate(valid + 3);
        assert_eq!(super::split(&buf).error, None);
    }

    #[test]
    fn a_torn_frame_followed_by_zeros_is_still_bad() {
        let whole = frames(&[b"record-1", b"record-22"]);
        let second = frames(&[b"record-1"]).len();
        for kept in second + 1..whole.len() {
            let mut buf = whole[..kept].to_vec();
            buf.resize(whole.len() + 4096, 0);
            let split = split(&buf);
            assert_eq!(split.bodies.len(), 1, "kept {kept}");
            assert_eq!(split.valid_len, second);
            assert!(split.error.is_some(), "kept {kept}");
        }
    }

    #[test]
    fn a_zero_header_with_data_after_it_is_bad() {
        let mut buf = frames(&[b"record-1"]);
        let valid = buf.len();
        buf.extend_from_slice(&[0; HEADER]);
        buf.extend_from_slice(&frames(&[b"record-2"]));
        let split = split(&buf);
        assert_eq!(split.valid_len, valid);
        assert_eq!(split.error, Some(FrameError::BadLength { declared: 0 }));
    }
}
