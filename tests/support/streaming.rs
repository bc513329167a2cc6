//! Bodies larger than DynamoDB allows, written over a plain TCP connection while the answer is
//! read at the same time: a server may answer (and close) before it has read the whole body,
//! and a client that only reads after writing would report a reset instead of the answer.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{RawRequest, RawResponse, within};

/// How [`send_streaming`] frames the body.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Framing {
    /// `Content-Length` announces the whole size up front.
    ContentLength,
    /// `Transfer-Encoding: chunked`, 64 KiB per chunk, no length known up front.
    Chunked,
}

const CHUNK: usize = 64 * 1024;

/// Sends `request` over a plain TCP connection while reading the answer at the same time, so a
/// server may answer before it has read the whole body. Panics if no complete response arrives.
pub(crate) async fn send_streaming(
    addr: SocketAddr,
    request: &RawRequest,
    framing: Framing,
) -> RawResponse {
    let stream = TcpStream::connect(addr).await.expect("connect to sidecar");
    let (mut reader, mut writer) = stream.into_split();
    let head = streaming_head(addr, request, framing);
    let body = Bytes::from(request.body().to_vec());
    let write = tokio::spawn(async move {
        // The server may stop reading and close: write errors are expected then.
        let _ = writer.write_all(&head).await;
        for chunk in body.chunks(CHUNK) {
            let sent = match framing {
                Framing::ContentLength => writer.write_all(chunk).await,
                Framing::Chunked => {
                    let framed =
                        [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                    writer.write_all(&framed).await
                }
            };
            if sent.is_err() {
                return;
            }
        }
        if matches!(framing, Framing::Chunked) {
            let _ = writer.write_all(b"0\r\n\r\n").await;
        }
        let _ = writer.flush().await;
        // Keep the write half open so the server sees no early EOF.
        std::future::pending::<()>().await;
    });
    let what = format!("response from {addr} to a streamed body");
    let read = within(&what, read_response(&mut reader)).await;
    write.abort();
    read.unwrap_or_else(|e| panic!("{what} incomplete: {e}"))
}

fn streaming_head(addr: SocketAddr, request: &RawRequest, framing: Framing) -> Vec<u8> {
    let mut head = format!("POST / HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in request.all_headers(addr) {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    match framing {
        Framing::ContentLength => {
            let _ = write!(head, "content-length: {}\r\n", request.body().len());
        }
        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads one HTTP/1.1 response: the head, then a body framed by `Content-Length`, by chunks,
/// or by the end of the connection.
async fn read_response(reader: &mut (impl AsyncReadExt + Unpin)) -> Result<RawResponse, String> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if read_more(reader, &mut buf).await? == 0 {
            return Err(format!(
                "connection closed inside the head: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf.split_off(head_end + 4);
    let (status, headers) = parse_head(&head)?;
    let body = if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: usize = len
            .to_str()
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or("bad content-length")?;
        while rest.len() < len {
            if read_more(reader, &mut rest).await? == 0 {
                return Err(format!("body ended after {} of {len} bytes", rest.len()));
            }
        }
        rest.truncate(len);
        rest
    } else if headers
        .get(header::TRANSFER_ENCODING)
        .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        read_chunked(reader, rest).await?
    } else {
        while read_more(reader, &mut rest).await? > 0 {}
        rest
    };
    Ok(RawResponse {
        status,
        headers,
        body: Bytes::from(body),
    })
}

async fn read_more(
    reader: &mut (impl AsyncReadExt + Unpin),
    buf: &mut Vec<u8>,
) -> Result<usize, String> {
    buf.reserve(16 * 1024);
    reader.read_buf(buf).await.map_err(|e| format!("read: {e}"))
}

fn parse_head(head: &str) -> Result<(u16, HeaderMap), String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let name = header::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| format!("header name {name:?}: {e}"))?;
        let value = header::HeaderValue::from_str(value.trim())
            .map_err(|e| format!("header value {value:?}: {e}"))?;
        headers.append(name, value);
    }
    Ok((status, headers))
}

async fn read_chunked(
    reader: &mut (impl AsyncReadExt + Unpin),
    mut raw: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(pos) = raw.windows(2).position(|w| w == b"\r\n") {
                break pos;
            }
            if read_more(reader, &mut raw).await? == 0 {
                return Err("connection closed inside a chunk size".to_owned());
            }
        };
        let size_text = String::from_utf8_lossy(&raw[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
        // The chunk, then its CRLF (after the last chunk: the final CRLF).
        while raw.len() < line_end + 2 + size + 2 {
            if read_more(reader, &mut raw).await? == 0 {
                return Err("connection closed inside a chunk".to_owned());
            }
        }
        body.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw.drain(..line_end + 2 + size + 2);
        if size == 0 {
            return Ok(body);
        }
    }
}
