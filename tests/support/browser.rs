//! A web page in headless Chromium: the JavaScript SDK v3 bundled for the browser with
//! esbuild (`tests/clients/js`), served from its own origin by a tiny in-test HTTP server,
//! run by Chromium until its script wrote its result into the DOM. A missing `chromium`,
//! `node_modules` or esbuild fails the test, never skips it.

use std::net::{Ipv4Addr, SocketAddr};

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{check_js_installed, repo_root, within};

/// What headless Chromium needs here: no sandbox (containers), nothing that reaches for
/// Google's services, and time enough, in virtual time, for the page's calls.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=60000",
    "--dump-dom",
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

/// A page and its script on `http://127.0.0.1:PORT` (an origin of its own); stops on drop.
pub(crate) struct PageServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PageServer {
    pub(crate) async fn start(bundle: Arc<Vec<u8>>) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the page server");
        let addr = listener.local_addr().expect("page server address");
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let bundle = Arc::clone(&bundle);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head);
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (kind, body): (&str, Vec<u8>) = if path.starts_with("/bundle.js") {
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
                });
            }
        });
        Self { addr, task }
    }

    /// The page's origin, as the browser sends it in `Origin`.
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>globalscale browser test</title></head>
<body><pre id="result">pending</pre><script type="module" src="/bundle.js"></script></body></html>
"#;

/// Loads `url` in headless Chromium and returns the text of `<pre id="result">` once the
/// page is done (the DOM as Chromium dumps it).
pub(crate) async fn page_result(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut command = tokio::process::Command::new("chromium");
    command
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}): scripts/test installs it (apt-get install chromium)")
    });
    let group = child.id();
    let output = within(&format!("chromium on {url}"), child.wait_with_output()).await;
    if let Some(pid) = group {
        // Renderers left behind by a browser that exited go with its group.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    }
    let output = output.expect("chromium's output");
    assert!(
        output.status.success(),
        "chromium failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    let start = dom
        .find("<pre id=\"result\">")
        .unwrap_or_else(|| panic!("no result element in the page:\n{dom}"))
        + "<pre id=\"result\">".len();
    let end = dom[start..]
        .find("</pre>")
        .expect("the result element's end")
        + start;
    dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
