//! A web page in headless Chromium: the JavaScript SDK v3 bundled for the browser with
//! esbuild (`tests/clients/js`), served from its own origin by a tiny in-test HTTP server,
//! which the page's script posts its result back to. A missing `chromium`, `node_modules`
//! or esbuild fails the test, never skips it.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{check_js_installed, repo_root, within};

/// What headless Chromium needs here: no sandbox (containers), and nothing that reaches for
/// Google's services, which on a closed network stalls it.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// `tests/clients/js/browser.mjs` bundled for the browser, as one ES module.
pub(crate) fn bundle_browser_sdk() -> Vec<u8> {
    let dir = repo_root().join("tests/clients/js");
    check_js_installed(&dir);
    let esbuild = dir.join("node_modules/.bin/esbuild");
    let out = tempfile::tempdir().expect("a bundle directory");
    let bundle = out.path().join("bundle.js");
    let output = std::process::Command::new(&esbuild)
        .current_dir(&dir)
        .args([
            "browser.mjs",
            "--bundle",
            "--format=esm",
            "--platform=browser",
        ])
        .arg(format!("--outfile={}", bundle.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): npm ci --prefix tests/clients/js installs it",
                esbuild.display()
            )
        });
    assert!(
        output.status.success(),
        "esbuild failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&bundle).expect("the bundle")
}

/// What the page's script posted back.
#[derive(Default)]
struct Results {
    posted: Mutex<Vec<String>>,
    arrived: Notify,
}

/// A page and its script on `http://127.0.0.1:PORT` (an origin of its own); stops on drop.
pub(crate) struct PageServer {
    addr: SocketAddr,
    results: Arc<Results>,
    task: JoinHandle<()>,
}

impl PageServer {
    pub(crate) async fn start(bundle: Arc<Vec<u8>>) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the page server");
        let addr = listener.local_addr().expect("page server address");
        let results = Arc::new(Results::default());
        let shared = Arc::clone(&results);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&bundle), Arc::clone(&shared)));
            }
        });
        Self {
            addr,
            results,
            task,
        }
    }

    /// The page's origin, as the browser sends it in `Origin`.
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Loads the page at `query` in headless Chromium and returns what its script posted
    /// back (its JSON result); Chromium is stopped then, its whole process group.
    pub(crate) async fn run(&self, query: &str) -> String {
        let before = self.posted().len();
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut command = tokio::process::Command::new("chromium");
        command
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("{}/?{query}", self.origin()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}): scripts/test installs it (apt-get install chromium)")
        });
        let group = child.id();
        let result = within("the page's result", async {
            loop {
                let notified = self.results.arrived.notified();
                if let Some(result) = self.posted().get(before) {
                    break result.clone();
                }
                notified.await;
            }
        })
        .await;
        if let Some(pid) = group {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
        drop(child);
        result
    }

    fn posted(&self) -> Vec<String> {
        self.results
            .posted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 exchange: the page, its script, or the result it posts.
async fn serve(mut stream: TcpStream, bundle: Arc<Vec<u8>>, results: Arc<Results>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (kind, body): (&str, Vec<u8>) = if head.starts_with("POST /result") {
        let posted = String::from_utf8_lossy(&request[head_end..head_end + length]).into_owned();
        results
            .posted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(posted);
        results.arrived.notify_waiters();
        ("text/plain", b"ok".to_vec())
    } else if path.starts_with("/bundle.js") {
        ("text/javascript", bundle.to_vec())
    } else if path == "/" || path.starts_with("/?") {
        ("text/html", PAGE.as_bytes().to_vec())
    } else {
        ("text/plain", b"not found".to_vec())
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>globalscale browser test</title></head>
<body><pre id="result">pending</pre><script type="module" src="/bundle.js"></script></body></html>
"#;
