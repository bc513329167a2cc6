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

/// The frames of a file, read up to the first bad one that nothing valid follows.
#[derive(Debug)]
pub(super) struct Split {
    /// Byte ranges of each valid body, in file order, with its slot: its index among the
    /// file's frames, skipped ones counted (see [`Gap`]).
    pub(super) bodies: Vec<(u64, std::ops::Range<usize>)>,
    /// Where the valid prefix ends: the offset to truncate at when `error` is set.
    pub(super) valid_len: usize,
    /// The bad frame no valid one follows: a torn or corrupt tail.
    pub(super) error: Option<FrameError>,
    /// Bad frames skipped because valid ones follow them (with [`Resync`] only).
    pub(super) gaps: Vec<Gap>,
    /// Slots taken, by valid frames and gaps: the file's frame count, as far as it is known.
    pub(super) slots: u64,
}

/// Damaged bytes between valid frames, skipped rather than cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gap {
    /// The slot the gap takes.
    pub(super) slot: u64,
    pub(super) offset: usize,
    pub(super) len: usize,
    /// Frames lost: `Some(1)` when the bad frame's own length leads exactly to the next valid
    /// one (a damaged body or crc), `None` when the damage hides how many there were. Either
    /// way the gap takes one slot.
    pub(super) frames: Option<u64>,
    pub(super) error: FrameError,
}

/// How to look past a bad frame for the next valid one: a body the caller recognises (its
/// first bytes), whose crc matches, and after which comes another valid frame or the clean
/// end. The recogniser keeps the scan cheap (the crc is computed only for candidates) and,
/// with the crc and the frame after, makes a false match in damaged bytes practically
/// impossible.
pub(super) type Resync = fn(&[u8]) -> bool;

/// Reads frames from the start of `buf` until its end, the first bad frame, or a clean end:
/// nothing but zeros from where a frame should start, a pre-zeroed segment's unwritten space
/// (`valid_len` then stops short of the end with no error). A zero header with data after it
/// is a bad frame: a record never starts after a gap. With `resync`, a bad frame that valid
/// frames follow is skipped as a [`Gap`] instead; only a bad tail ends the split.
pub(super) fn split(buf: &[u8], resync: Option<Resync>) -> Split {
    let mut split = Split {
        bodies: Vec::new(),
        valid_len: 0,
        error: None,
        gaps: Vec::new(),
        slots: 0,
    };
    let (mut pos, mut slot) = (0, 0);
    while pos < buf.len() {
        // Stops at the first non-zero byte, within a valid frame's length field.
        if buf[pos..].iter().all(|b| *b == 0) {
            break;
        }
        match read_one(&buf[pos..]) {
            Ok(body_len) => {
                split
                    .bodies
                    .push((slot, pos + HEADER..pos + HEADER + body_len));
                pos += HEADER + body_len;
            }
            Err(error) => {
                let Some(next) = resync.and_then(|known| next_valid(buf, pos + 1, known)) else {
                    split.valid_len = pos;
                    split.error = Some(error);
                    split.slots = slot;
                    return split;
                };
                let declared = read_u32(buf, pos).map(|len| len as usize);
                let exact = declared.is_some_and(|len| pos + HEADER + len == next);
                split.gaps.push(Gap {
                    slot,
                    offset: pos,
                    len: next - pos,
                    frames: exact.then_some(1),
                    error,
                });
                pos = next;
            }
        }
        slot += 1;
    }
    split.valid_len = pos;
    split.slots = slot;
    split
}

/// The first offset from `from` where a valid frame starts that `known` recognises and that
/// another valid frame, the clean end or the end of `buf` follows.
fn next_valid(buf: &[u8], from: usize, known: Resync) -> Option<usize> {
    (from..buf.len()).find(|&at| {
        let Some(len) = candidate(&buf[at..], known) else {
            return false;
        };
        let after = &buf[at + HEADER + len..];
        after.iter().all(|b| *b == 0) || read_one(after).is_ok()
    })
}

/// The body length of a frame at the start of `rest` that `known` recognises, checked in
/// order of cost.
fn candidate(rest: &[u8], known: Resync) -> Option<usize> {
    let len = usize::try_from(read_u32(rest, 0)?).ok()?;
    if !(MIN_BODY..=MAX_BODY).contains(&len) {
        return None;
    }
    let body = rest.get(HEADER..HEADER + len)?;
    (known(body) && crc32fast::hash(body) == read_u32(rest, 4)?).then_some(len)
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
        let split = split(&buf, None);
        assert_eq!(split.bodies.len(), 2);
        assert_eq!(split.valid_len, valid);
        assert_eq!(split.error, None);
        // Fewer zeros than a header are the same end.
        buf.truncate(valid + 3);
        assert_eq!(super::split(&buf, None).error, None);
    }

    #[test]
    fn a_torn_frame_followed_by_zeros_is_still_bad() {
        let whole = frames(&[b"record-1", b"record-22"]);
        let second = frames(&[b"record-1"]).len();
        for kept in second + 1..whole.len() {
            let mut buf = whole[..kept].to_vec();
            buf.resize(whole.len() + 4096, 0);
            let split = split(&buf, None);
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
        let split = split(&buf, None);
        assert_eq!(split.valid_len, valid);
        assert_eq!(split.error, Some(FrameError::BadLength { declared: 0 }));
    }

    /// Bodies as segments hold them: an append time in 2026 and a JSON object.
    fn bodies(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut body = 1_790_000_000_000u64.to_le_bytes().to_vec();
                body.extend_from_slice(format!("{{\"n\":{i}}}").as_bytes());
                body
            })
            .collect()
    }

    fn known(body: &[u8]) -> bool {
        body.get(MIN_BODY) == Some(&b'{')
    }

    #[test]
    fn resync_skips_a_bad_frame_between_good_ones_and_keeps_slots() {
        let bodies = bodies(5);
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let mut buf = frames(&refs);
        let frame = HEADER + bodies[0].len();
        buf[2 * frame + HEADER + 9] ^= 0x20;
        let without = split(&buf, None);
        assert_eq!(without.bodies.len(), 2);
        assert!(without.error.is_some());
        let with = split(&buf, Some(known));
        assert_eq!(with.error, None);
        let slots: Vec<u64> = with.bodies.iter().map(|(slot, _)| *slot).collect();
        assert_eq!(slots, vec![0, 1, 3, 4]);
        assert_eq!(with.slots, 5);
        assert_eq!(with.valid_len, buf.len());
        assert_eq!(with.gaps.len(), 1);
        assert_eq!(with.gaps[0].frames, Some(1));
        assert_eq!((with.gaps[0].offset, with.gaps[0].len), (2 * frame, frame));
    }

    #[test]
    fn a_bad_tail_is_still_a_tail_with_resync() {
        let bodies = bodies(3);
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let mut buf = frames(&refs);
        let frame = HEADER + bodies[0].len();
        let end = buf.len();
        buf[end - 3] ^= 0x01;
        buf.resize(end + 4096, 0);
        let split = split(&buf, Some(known));
        assert_eq!(split.bodies.len(), 2);
        assert_eq!(split.valid_len, 2 * frame);
        assert!(matches!(split.error, Some(FrameError::CrcMismatch { .. })));
        assert!(split.gaps.is_empty());
    }

    #[test]
    fn a_frame_the_caller_does_not_recognise_is_not_resynced_on() {
        // Valid frames, but not of the kind the caller knows: nothing to resync on.
        let mut buf = frames(&[b"record-1", b"record-2", b"record-3"]);
        buf[HEADER + 16 + 2] ^= 0x01;
        let split = split(&buf, Some(known));
        assert_eq!(split.bodies.len(), 1);
        assert!(split.error.is_some());
    }

    proptest::proptest! {
        /// Whatever is on disk, reading it never panics and never returns a body outside it.
        #[test]
        fn any_bytes_split_without_panic(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let split = split(&buf, Some(|_: &[u8]| true));
            for (_, range) in &split.bodies {
                proptest::prop_assert!(range.end <= buf.len());
            }
            proptest::prop_assert!(split.valid_len <= buf.len());
        }

        /// One byte changed anywhere inside one frame of many (not the last) costs that frame
        /// only: every other body is read back, with its slot.
        #[test]
        fn one_damaged_byte_costs_one_frame(
            count in 3usize..12,
            frame_pick in 0usize..100,
            offset_pick in 0usize..1000,
            flip in 1u8..=255,
        ) {
            let bodies = bodies(count);
            let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            let mut buf = frames(&refs);
            let damaged = frame_pick % (count - 1);
            let starts: Vec<usize> = (0..count)
                .map(|i| bodies[..i].iter().map(|b| HEADER + b.len()).sum())
                .collect();
            let frame_len = HEADER + bodies[damaged].len();
            buf[starts[damaged] + offset_pick % frame_len] ^= flip;
            let split = split(&buf, Some(known));
            let slots: Vec<u64> = split.bodies.iter().map(|(slot, _)| *slot).collect();
            let expected: Vec<u64> = (0..count as u64).filter(|s| *s != damaged as u64).collect();
            proptest::prop_assert_eq!(slots, expected);
            proptest::prop_assert_eq!(split.gaps.len(), 1);
            proptest::prop_assert_eq!(split.error, None);
            for (slot, range) in &split.bodies {
                let slot = usize::try_from(*slot).unwrap();
                proptest::prop_assert_eq!(&buf[range.clone()], bodies[slot].as_slice());
            }
        }
    }
}
