//! A listener under silent clients, in simulated time: the header timeout shortens as the
//! listener fills, and at the cap a new connection takes the slot of the oldest silent one.

use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::server::occupancy::HEADER_FLOOR;

const HEADER: Duration = Duration::from_secs(30);

/// A listener answering `ok` with a cap of `max`; it stops when the sender is dropped.
async fn listener(max: usize) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = |name: &str| IntCounter::new(name, name).unwrap();
    let settings = Settings {
        name: "test",
        max_connections: max,
        header_timeout: HEADER,
        idle_timeout: Duration::from_mins(1),
        open: IntGauge::new("open", "open").unwrap(),
        max_header_bytes: 16 * 1024,
        max_headers: 64,
        evicted_silent: counter("silent"),
        evicted_idle: counter("idle"),
        header_timeouts: counter("timeouts"),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        settings,
        |_request| async { Response::new(Full::new(Bytes::from_static(b"ok"))) },
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// Whether the server still holds the connection open (nothing to read, no EOF).
fn is_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn connect(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    // Accepted and registered before anyone looks.
    tokio::time::sleep(Duration::from_millis(10)).await;
    streams
}

#[tokio::test(start_paused = true)]
async fn below_half_the_cap_a_silent_connection_gets_the_whole_header_timeout() {
    let (addr, _stop) = listener(4).await;
    let silent = connect(addr, 1).await;
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(is_open(&silent[0]), "closed before the header timeout");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!is_open(&silent[0]), "open past the header timeout");
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_silent_connections_are_closed_until_the_listener_has_room() {
    let (addr, _stop) = listener(4).await;
    let silent = connect(addr, 4).await;
    let open = || silent.iter().map(is_open).collect::<Vec<_>>();
    tokio::time::sleep(HEADER_FLOOR / 2).await;
    assert_eq!(open(), [true; 4], "closed before the floor");
    // At the cap the timeout is the floor; one closed, and at three of four it is 15.5 s.
    tokio::time::sleep(HEADER_FLOOR).await;
    assert_eq!(open(), [false, true, true, true]);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        open(),
        [false, false, true, true],
        "at three of four: 15.5 s"
    );
    // At half the cap, the whole header timeout.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(open(), [false, false, true, true]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(open(), [false; 4]);
}

#[tokio::test(start_paused = true)]
async fn the_header_timeout_shortens_as_the_listener_fills_up() {
    let (addr, _stop) = listener(8).await;
    let first = connect(addr, 1).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(is_open(&first[0]));
    // Six of eight: the timeout is now half-way between 30 s and the floor, 15.5 s, and
    // the first connection, 10 s old, is past it once the others have waited 6 s more.
    let _later = connect(addr, 5).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        !is_open(&first[0]),
        "the first connection kept the full timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_a_new_connection_takes_the_oldest_silent_ones_slot() {
    let (addr, _stop) = listener(4).await;
    let silent = connect(addr, 4).await;
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh
        .write_all(b"GET / HTTP/1.1\r\nhost: sidecar\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 256];
    let n = fresh.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!is_open(&silent[0]), "the oldest silent one made room");
    assert!(silent[1..].iter().all(is_open), "one was enough");
}

#[tokio::test(start_paused = true)]
async fn past_the_cap_a_silent_connection_holds_no_slot_and_is_dropped_from_the_lobby() {
    let (addr, _stop) = listener(2).await;
    let _holders = connect(addr, 2).await;
    let lobby = connect(addr, 1).await;
    tokio::time::sleep(lobby::LOBBY_TIMEOUT / 2).await;
    assert!(is_open(&lobby[0]), "waiting in the lobby");
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh
        .write_all(b"GET / HTTP/1.1\r\nhost: sidecar\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 256];
    let n = fresh.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "the one that spoke is served"
    );
    tokio::time::sleep(lobby::LOBBY_TIMEOUT).await;
    assert!(
        !is_open(&lobby[0]),
        "dropped from the lobby for saying nothing"
    );
}
