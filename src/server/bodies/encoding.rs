//! Compressed request bodies (`Content-Encoding: gzip` or `deflate`, as the AWS SDKs send them
//! when request compression is on): decoded once, after the signature over the compressed
//! bytes was checked, into the JSON every later stage reads.
//!
//! The decoded body obeys the same rules as any body: at most DynamoDB's 16 MiB (past it, the
//! 413 an uncompressed body gets), and its bytes reserved from the body budget as they are
//! produced. A decompression bomb (a few KiB that inflate to gigabytes) is stopped at the
//! first byte past the limit, having cost at most the limit in memory.

use std::io::Read;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

use crate::error::{DecodeError, ProxyError};

/// How much of the decoded body is produced between two checks of the limit and the budget.
const STEP: usize = 64 * 1024;

/// A coding the sidecar decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// HTTP's `deflate`: a zlib stream, or (as some clients send it) raw deflate.
    Deflate,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }
}

/// The codings of `Content-Encoding` in the order they were applied, `identity` left out;
/// an unknown one is refused.
pub fn codings(headers: &HeaderMap) -> Result<Vec<Coding>, DecodeError> {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| {
            DecodeError::Unsupported(String::from_utf8_lossy(value.as_bytes()).into())
        })?;
        for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token.to_ascii_lowercase().as_str() {
                "gzip" | "x-gzip" => codings.push(Coding::Gzip),
                "deflate" => codings.push(Coding::Deflate),
                "identity" => {}
                _ => return Err(DecodeError::Unsupported(token.to_owned())),
            }
        }
    }
    Ok(codings)
}

/// Decodes `input` of `coding` into at most `limit` bytes; `grow(bytes)` is asked before the
/// output's allocations may hold `bytes`, and refuses when the body budget would be passed.
/// The buffer's capacity is what its allocation holds.
pub fn decode(
    coding: Coding,
    input: &[u8],
    limit: usize,
    grow: &mut dyn FnMut(usize) -> Result<(), ProxyError>,
) -> Result<Vec<u8>, ProxyError> {
    let corrupt = |source| DecodeError::Corrupt {
        coding: coding.name(),
        source,
    };
    if input.is_empty() {
        // Empty is not a valid stream of either coding (the decoders read it as nothing).
        return Err(corrupt(std::io::ErrorKind::UnexpectedEof.into()).into());
    }
    match coding {
        Coding::Gzip => {
            read_bounded(MultiGzDecoder::new(input), limit, grow).map_err(|e| e.or(corrupt))
        }
        Coding::Deflate if looks_like_zlib(input) => {
            read_bounded(ZlibDecoder::new(input), limit, grow).map_err(|e| e.or(corrupt))
        }
        Coding::Deflate => {
            read_bounded(DeflateDecoder::new(input), limit, grow).map_err(|e| e.or(corrupt))
        }
    }
}

/// A zlib header: compression method 8 and a check value over the two bytes (RFC 1950).
fn looks_like_zlib(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Why a bounded read stopped.
enum Stop {
    /// The stream is damaged.
    Io(std::io::Error),
    /// Past the limit, or past the budget: the request's own error.
    Refused(ProxyError),
}

impl Stop {
    fn or(self, corrupt: impl FnOnce(std::io::Error) -> DecodeError) -> ProxyError {
        match self {
            Self::Io(e) => corrupt(e).into(),
            Self::Refused(e) => e,
        }
    }
}

fn read_bounded(
    mut reader: impl Read,
    limit: usize,
    grow: &mut dyn FnMut(usize) -> Result<(), ProxyError>,
) -> Result<Vec<u8>, Stop> {
    let mut out: Vec<u8> = Vec::new();
    loop {
        // One byte past the limit is enough to know the body is too large.
        let room = (limit + 1).saturating_sub(out.len()).min(STEP);
        if room == 0 {
            return Err(Stop::Refused(ProxyError::BodyTooLarge { limit }));
        }
        let start = out.len();
        if out.capacity() < start + room {
            // Doubling, so a large body costs a few moves, not one per step; while the
            // buffer moves, the old one and the new one are both allocated.
            let doubled = (out.capacity() * 2).max(start + room);
            // Within a doubling of the limit, straight to it: one move fewer, and never a
            // buffer of the limit being moved into one a byte larger.
            let target = if doubled >= limit { limit + 1 } else { doubled };
            grow(target + out.capacity()).map_err(Stop::Refused)?;
            out.reserve_exact(target - start);
        }
        out.resize(start + room, 0);
        let read = reader.read(&mut out[start..]).map_err(Stop::Io)?;
        out.truncate(start + read);
        if read == 0 {
            // The doubling may have left up to half the buffer unused, held for as long as
            // the request lives: given back (a shrinking reallocation).
            if out.capacity() - out.len() > out.len() / 4 {
                out.shrink_to_fit();
            }
            return Ok(out);
        }
        if out.len() > limit {
            return Err(Stop::Refused(ProxyError::BodyTooLarge { limit }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn unbounded(coding: Coding, input: &[u8], limit: usize) -> Result<Vec<u8>, ProxyError> {
        decode(coding, input, limit, &mut |_| Ok(()))
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn codings_are_read_in_order_and_unknown_ones_refused() {
        assert_eq!(codings(&HeaderMap::new()).unwrap(), vec![]);
        assert_eq!(codings(&headers("identity")).unwrap(), vec![]);
        assert_eq!(codings(&headers("GZIP")).unwrap(), vec![Coding::Gzip]);
        assert_eq!(
            codings(&headers("deflate, x-gzip")).unwrap(),
            vec![Coding::Deflate, Coding::Gzip]
        );
        assert!(matches!(
            codings(&headers("br")),
            Err(DecodeError::Unsupported(c)) if c == "br"
        ));
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode() {
        let json = br#"{"TableName":"T"}"#;
        assert_eq!(
            &unbounded(Coding::Gzip, &gzip(json), 100).unwrap()[..],
            json
        );
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(json).unwrap();
        assert_eq!(
            &unbounded(Coding::Deflate, &z.finish().unwrap(), 100).unwrap()[..],
            json
        );
        let mut d = DeflateEncoder::new(Vec::new(), Compression::default());
        d.write_all(json).unwrap();
        assert_eq!(
            &unbounded(Coding::Deflate, &d.finish().unwrap(), 100).unwrap()[..],
            json
        );
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let mut two = gzip(br#"{"Table"#);
        two.extend(gzip(br#"Name":"T"}"#));
        assert_eq!(
            &unbounded(Coding::Gzip, &two, 100).unwrap()[..],
            br#"{"TableName":"T"}"#
        );
    }

    #[test]
    fn damaged_truncated_and_empty_streams_are_corrupt() {
        let whole = gzip(br#"{"TableName":"T"}"#);
        for bad in [&whole[..whole.len() - 1], b"{\"TableName\":\"T\"}", b""] {
            assert!(
                matches!(
                    unbounded(Coding::Gzip, bad, 100),
                    Err(ProxyError::Undecodable(DecodeError::Corrupt { .. }))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_bomb_stops_one_byte_past_the_limit_within_the_budget() {
        let bomb = gzip(&vec![b' '; 4 << 20]);
        assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
        let mut asked = 0;
        let result = decode(Coding::Gzip, &bomb, 1 << 20, &mut |bytes| {
            asked = bytes;
            Ok(())
        });
        assert!(matches!(
            result,
            Err(ProxyError::BodyTooLarge { limit }) if limit == 1 << 20
        ));
        // The last move holds the old buffer and the new one: the limit and half of it.
        assert!(asked <= (1 << 20) + 1 + (1 << 19), "reserved {asked}");
        // At the limit exactly, the body is accepted.
        let exact = gzip(&vec![b' '; 1 << 20]);
        assert_eq!(
            unbounded(Coding::Gzip, &exact, 1 << 20).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn a_budget_refusal_ends_the_decoding() {
        let big = gzip(&vec![b'a'; 300_000]);
        let result = decode(Coding::Gzip, &big, 1 << 20, &mut |bytes| {
            if bytes > 100_000 {
                Err(ProxyError::BodyMemory { limit: 100_000 })
            } else {
                Ok(())
            }
        });
        assert!(matches!(result, Err(ProxyError::BodyMemory { .. })));
    }
}
