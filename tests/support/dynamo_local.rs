//! DynamoDB Local as the tests' regions: `n` JVMs started with `-sharedDb` on one store, so they
//! answer like the replicas of a global table with no replication lag. Killing one is a region
//! outage; restarting it brings the region back on the same port.
//!
//! The jar comes from `$DYNAMODB_LOCAL_DIR`, else from `deploy/local/fetch-dynamodb-local`. A
//! missing `java` or jar panics: these tests never skip.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{HANG, RawRequest, free_port, repo_root};

/// How many times a node gets a fresh port when its first one was taken before Java bound it.
const PORT_ATTEMPTS: usize = 3;

/// How many times a restarted node is started again after a start that failed on the store's lock.
const RESTART_ATTEMPTS: usize = 10;

/// What DynamoDB Local logs when its start-up read of the shared store met another process's lock.
const LOCKED_AT_START: &str = "database is locked";

/// A set of DynamoDB Local processes sharing one store; all are killed on drop.
pub(crate) struct DynamoLocal {
    jar_dir: PathBuf,
    data: tempfile::TempDir,
    in_memory: bool,
    nodes: Vec<Node>,
}

struct Node {
    port: u16,
    child: Option<Child>,
}

impl DynamoLocal {
    /// One process with an in-memory store.
    pub(crate) async fn single() -> Self {
        Self::start(1, true).await
    }

    /// `n` processes sharing one on-disk store in a temp dir.
    pub(crate) async fn cluster(n: usize) -> Self {
        Self::start(n, false).await
    }

    async fn start(n: usize, in_memory: bool) -> Self {
        let data = tempfile::Builder::new()
            .prefix("globalscale-ddblocal-")
            .tempdir()
            .expect("temp dir for DynamoDB Local");
        let mut this = Self {
            jar_dir: dynamodb_local_dir().to_path_buf(),
            data,
            in_memory,
            nodes: Vec::new(),
        };
        if !in_memory {
            write_ahead_log(this.data.path());
        }
        for _ in 0..n {
            this.nodes.push(Node {
                port: free_port(),
                child: None,
            });
        }
        for i in 0..n {
            this.spawn(i);
        }
        for i in 0..n {
            this.wait_ready_with_fresh_ports(i).await;
        }
        this
    }

    /// `http://127.0.0.1:PORT` of node `i`.
    pub(crate) fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Node `i`'s port.
    pub(crate) fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    /// Kills node `i` (SIGKILL): its region is down, connects to its port are refused.
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            // An already exited process is what we wanted anyway.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on the port it had and waits until it answers.
    ///
    /// DynamoDB Local reads its schema at start; when another process on the shared store holds
    /// SQLite's write lock at that moment (it is serving the test's load), the read fails with
    /// `database is locked` and that process answers every request with a 500 for good. Such a
    /// start is recognised from its log and repeated, so the tests measure the sidecar rather
    /// than that quirk.
    pub(crate) async fn restart(&mut self, i: usize) {
        let mut last = String::new();
        for _ in 0..RESTART_ATTEMPTS {
            self.kill(i);
            let log_start = self.log(i).len();
            self.spawn(i);
            match self.wait_ready_since(i, log_start).await {
                Ok(()) => return,
                Err(why) => {
                    eprintln!("DynamoDB Local node {i} failed to start ({why}); starting it again");
                    last = why;
                }
            }
        }
        panic!(
            "DynamoDB Local node {i} did not come back in {RESTART_ATTEMPTS} starts: {last}\nlog:\n{}",
            self.log(i)
        );
    }

    /// The log (stdout and stderr) of node `i`, for failure messages.
    pub(crate) fn log(&self, i: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path(i)) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.data.path().join(format!("node-{i}.log"))
    }

    fn spawn(&mut self, i: usize) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("DynamoDB Local log file");
        let log_err = log.try_clone().expect("clone log handle");
        let mut command = Command::new("java");
        // A small heap and the client compiler: these JVMs live for seconds, two cores are shared.
        command
            .args([
                "-Xms64m",
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
            ])
            .arg(format!(
                "-Djava.library.path={}",
                self.jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(self.jar_dir.join("DynamoDBLocal.jar"))
            .args(["-port", &self.nodes[i].port.to_string()])
            .arg("-sharedDb")
            .arg("-disableTelemetry")
            .current_dir(self.data.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if self.in_memory {
            command.arg("-inMemory");
        } else {
            command.arg("-dbPath").arg(self.data.path());
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start java for DynamoDB Local: {e}"));
        self.nodes[i].child = Some(child);
    }

    /// Waits for node `i`, started with a fresh log; if Java died (most likely its port was
    /// taken in the meantime) or its start failed, tries again on another port.
    async fn wait_ready_with_fresh_ports(&mut self, i: usize) {
        let mut last = String::new();
        let mut log_start = 0;
        for _ in 0..PORT_ATTEMPTS {
            match self.wait_ready_since(i, log_start).await {
                Ok(()) => return,
                Err(why) => last = why,
            }
            self.kill(i);
            self.nodes[i].port = free_port();
            log_start = self.log(i).len();
            self.spawn(i);
        }
        panic!("DynamoDB Local node {i} never became ready: {last}");
    }

    /// Waits for node `i` to answer 200, reading only the part of its log written after
    /// `log_start` (this start's).
    async fn wait_ready_since(&mut self, i: usize, log_start: usize) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + HANG;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.nodes[i].port));
        let probe = RawRequest::new("ListTables", "{}");
        let mut server_errors = 0;
        loop {
            if let Some(child) = self.nodes[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("java exited with {status}; log:\n{}", self.log(i)));
            }
            match probe.try_send(addr).await {
                Ok(response) if response.status == 200 => return Ok(()),
                Ok(response) if response.status >= 500 => {
                    if self
                        .log(i)
                        .get(log_start..)
                        .unwrap_or_default()
                        .contains(LOCKED_AT_START)
                    {
                        return Err(format!("start-up met a locked store: {}", response.text()));
                    }
                    server_errors += 1;
                    if server_errors >= 20 {
                        return Err(format!("answers {}: {}", response.status, response.text()));
                    }
                }
                _ => {}
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("no answer within {HANG:?}; log:\n{}", self.log(i)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Creates the shared store (`shared-local-instance.db`, the file `-sharedDb` opens) in SQLite's
/// write-ahead-log mode, which DynamoDB Local keeps. DynamoDB Local sets no busy timeout, so in
/// the default rollback-journal mode a read in one process that meets another process's write
/// fails at once with `database is locked`, a 500. With the log, readers never wait for a
/// writer: measured with 3 processes and 6 writers and readers, 500s fell from about 45 to 10 in
/// 15 s, and to none when one process writes. Only two processes writing at once still collide.
fn write_ahead_log(dir: &Path) {
    let store = dir.join("shared-local-instance.db");
    let db = rusqlite::Connection::open(&store)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", store.display()));
    let mode: String = db
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .expect("set the journal mode");
    assert_eq!(mode, "wal", "{} did not take WAL mode", store.display());
}

/// The directory holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib`, found once per test binary.
fn dynamodb_local_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_java();
        let dir = match std::env::var_os("DYNAMODB_LOCAL_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => fetch_dynamodb_local(),
        };
        for needed in ["DynamoDBLocal.jar", "DynamoDBLocal_lib"] {
            assert!(
                dir.join(needed).exists(),
                "{} has no {needed}: DynamoDB Local is not installed there",
                dir.display()
            );
        }
        dir
    })
}

fn require_java() {
    match Command::new("java").arg("-version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`java -version` failed ({}): DynamoDB Local needs a working JRE\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "java not found ({e}): DynamoDB Local needs a JRE on PATH \
             (apt-get install openjdk-17-jre-headless)"
        ),
    }
}

/// Runs `deploy/local/fetch-dynamodb-local`; its last stdout line is the install directory.
fn fetch_dynamodb_local() -> PathBuf {
    let script = repo_root().join("deploy/local/fetch-dynamodb-local");
    assert!(
        script.exists(),
        "{} is missing and DYNAMODB_LOCAL_DIR is not set: cannot find DynamoDB Local",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_else(|| panic!("{} printed no directory", script.display()));
    PathBuf::from(dir.trim())
}
