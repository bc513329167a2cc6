//! The sidecar under test, in two shapes: [`Sidecar`] runs the library's `App` inside the test's
//! runtime; [`SidecarProcess`] runs the `globalscale` binary, for signals and exit codes. Both
//! take their configuration from [`SidecarConfig`].

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use globalscale::app::{App, AppError};
use globalscale::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{HANG, SIDECAR_ACCESS_KEY_ID, SIDECAR_SECRET, TABLE, free_addr, get, within};

/// A config file's text, built up from the parts a test cares about.
#[derive(Clone, Debug)]
pub(crate) struct SidecarConfig {
    listen: String,
    admin_listen: String,
    top_level: Vec<String>,
    session_token: Option<String>,
    regions: Vec<(String, String)>,
    /// `streams_endpoint` of the regions that have one, by name.
    streams: Vec<(String, String)>,
    /// Whether `GlobalCatalog` is left out: a sidecar that manages no table.
    unmanaged: bool,
    table_lines: Vec<String>,
    timeouts: Option<(u64, u64, u64)>,
    sections: Vec<String>,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SidecarConfig {
    /// Both listeners on `127.0.0.1:0`, the sidecar's keys, the `GlobalCatalog` table, generous
    /// timeouts (a cold DynamoDB Local answers its first requests slowly), no regions yet.
    pub(crate) fn new() -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            admin_listen: "127.0.0.1:0".to_owned(),
            top_level: Vec::new(),
            session_token: None,
            regions: Vec::new(),
            streams: Vec::new(),
            unmanaged: false,
            table_lines: Vec::new(),
            timeouts: Some((1_000, 10_000, 30_000)),
            sections: Vec::new(),
        }
    }

    /// Adds a region; the first one added is the home region.
    pub(crate) fn region(mut self, name: &str, endpoint: &str) -> Self {
        self.regions.push((name.to_owned(), endpoint.to_owned()));
        self
    }

    /// The `streams_endpoint` of region `name` (added with [`Self::region`]): DynamoDB Local
    /// serves the Streams API on its one port.
    pub(crate) fn streams_endpoint(mut self, name: &str, endpoint: &str) -> Self {
        self.streams.push((name.to_owned(), endpoint.to_owned()));
        self
    }

    /// No `[[tables]]` at all: a sidecar that manages no table.
    pub(crate) fn unmanaged(mut self) -> Self {
        self.unmanaged = true;
        self
    }

    /// `[upstream_credentials] session_token`.
    pub(crate) fn session_token(mut self, token: &str) -> Self {
        self.session_token = Some(token.to_owned());
        self
    }

    /// A raw `key = value` line at the top level.
    pub(crate) fn top_level(mut self, line: &str) -> Self {
        self.top_level.push(line.to_owned());
        self
    }

    /// A raw `key = value` line inside the `GlobalCatalog` table.
    pub(crate) fn table_line(mut self, line: &str) -> Self {
        self.table_lines.push(line.to_owned());
        self
    }

    /// `[timeouts]`: `connect_ms`, `attempt_ms` and `request_ms`.
    pub(crate) fn timeouts(mut self, connect_ms: u64, attempt_ms: u64, request_ms: u64) -> Self {
        self.timeouts = Some((connect_ms, attempt_ms, request_ms));
        self
    }

    /// A raw TOML section (`[routing]\npolicy = "latency"`), appended at the end.
    pub(crate) fn section(mut self, text: &str) -> Self {
        self.sections.push(text.to_owned());
        self
    }

    /// Where the sidecar listens (`listen`, `admin_listen`).
    pub(crate) fn listeners(mut self, listen: SocketAddr, admin: SocketAddr) -> Self {
        self.listen = listen.to_string();
        self.admin_listen = admin.to_string();
        self
    }

    /// The TOML text.
    pub(crate) fn to_toml(&self) -> String {
        let mut toml = String::new();
        let _ = writeln!(toml, "listen = {:?}", self.listen);
        let _ = writeln!(toml, "admin_listen = {:?}", self.admin_listen);
        for line in &self.top_level {
            let _ = writeln!(toml, "{line}");
        }
        let _ = writeln!(toml, "\n[upstream_credentials]");
        let _ = writeln!(toml, "access_key_id = {SIDECAR_ACCESS_KEY_ID:?}");
        let _ = writeln!(toml, "secret_access_key = {SIDECAR_SECRET:?}");
        if let Some(token) = &self.session_token {
            let _ = writeln!(toml, "session_token = {token:?}");
        }
        for (name, endpoint) in &self.regions {
            let _ = writeln!(
                toml,
                "\n[[regions]]\nname = {name:?}\nendpoint = {endpoint:?}"
            );
            if let Some((_, streams)) = self.streams.iter().find(|(n, _)| n == name) {
                let _ = writeln!(toml, "streams_endpoint = {streams:?}");
            }
        }
        if !self.unmanaged {
            let _ = writeln!(toml, "\n[[tables]]\nname = {TABLE:?}");
            let _ = writeln!(toml, "partition_key = \"ItemID\"\nsort_key = \"Category\"");
            for line in &self.table_lines {
                let _ = writeln!(toml, "{line}");
            }
        }
        if let Some((connect_ms, attempt_ms, request_ms)) = self.timeouts {
            let _ = writeln!(toml, "\n[timeouts]");
            let _ = writeln!(toml, "connect_ms = {connect_ms}\nattempt_ms = {attempt_ms}");
            let _ = writeln!(toml, "request_ms = {request_ms}");
        }
        for section in &self.sections {
            let _ = writeln!(toml, "\n{section}");
        }
        toml
    }
}

/// The library's `App` running in the test's runtime; shut down on [`Sidecar::stop`] or drop.
pub(crate) struct Sidecar {
    listen: SocketAddr,
    admin: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), AppError>>>,
}

impl Sidecar {
    /// Validates `config`, builds the app (binding both listeners) and runs it.
    pub(crate) async fn start(config: &SidecarConfig) -> Self {
        log_to_test_output();
        let text = config.to_toml();
        let config = Config::from_toml_str(&text)
            .unwrap_or_else(|e| panic!("config rejected: {e}\n---\n{text}"));
        let app = App::build(config)
            .await
            .unwrap_or_else(|e| panic!("App::build failed: {e}\n---\n{text}"));
        let (listen, admin) = (app.listen_addr(), app.admin_addr());
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            // A dropped sender means the test is over: shut down as well.
            let _ = shutdown_rx.await;
        }));
        Self {
            listen,
            admin,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT` for SDK clients.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// The DynamoDB listener.
    pub(crate) fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub(crate) fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Signals shutdown and waits for `run` to return; panics if it failed or hung.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let Some(task) = self.task.take() else { return };
        match within("App::run after shutdown", task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("App::run returned an error: {e}"),
            Err(e) => panic!("App::run panicked: {e}"),
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The `globalscale` binary with a temp config file; killed on drop.
pub(crate) struct SidecarProcess {
    child: Child,
    dir: tempfile::TempDir,
    listen: SocketAddr,
    admin: SocketAddr,
    exit: Option<ExitStatus>,
}

impl SidecarProcess {
    /// Picks free ports for both listeners, starts the binary and waits for `/healthz` to
    /// answer 200.
    pub(crate) async fn start(config: SidecarConfig) -> Self {
        Self::start_with_env(config, &[]).await
    }

    /// [`start`](Self::start) with extra environment variables.
    pub(crate) async fn start_with_env(config: SidecarConfig, env: &[(&str, &str)]) -> Self {
        Self::start_on_free_ports(
            |listen, admin| {
                let text = config.clone().listeners(listen, admin).to_toml();
                (text, Vec::new())
            },
            env,
        )
        .await
    }

    /// Runs the binary on a config file's text as it is (one the repository ships), listening on
    /// free ports through `GLOBALSCALE_LISTEN` and `GLOBALSCALE_ADMIN_LISTEN`, with `env` on top
    /// (`DDB_REGIONS` moves its regions); waits for `/healthz` to answer 200.
    pub(crate) async fn start_with_config_text(config_text: &str, env: &[(&str, &str)]) -> Self {
        Self::start_on_free_ports(
            |listen, admin| {
                let vars = vec![
                    ("GLOBALSCALE_LISTEN".to_owned(), listen.to_string()),
                    ("GLOBALSCALE_ADMIN_LISTEN".to_owned(), admin.to_string()),
                ];
                (config_text.to_owned(), vars)
            },
            env,
        )
        .await
    }

    /// Starts the binary on two free ports and waits for `/healthz`. A port found free can be
    /// taken before the binary binds it (by another test's listener, or as the local port of
    /// an outgoing connection): a start that fails on a port in use is tried again on others.
    async fn start_on_free_ports(
        setup: impl Fn(SocketAddr, SocketAddr) -> (String, Vec<(String, String)>),
        env: &[(&str, &str)],
    ) -> Self {
        for _ in 0..5 {
            let (listen, admin) = (free_addr(), free_addr());
            let (text, vars) = setup(listen, admin);
            let mut all: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            all.extend_from_slice(env);
            let (child, dir) = spawn_binary(&text, &all);
            let mut process = Self {
                child,
                dir,
                listen,
                admin,
                exit: None,
            };
            match process.wait_healthy().await {
                Ok(()) => return process,
                Err(output) if output.contains("Address already in use") => {
                    eprintln!("a free port was taken before the sidecar bound it; trying others");
                }
                Err(output) => panic!("{output}"),
            }
        }
        panic!("five starts in a row lost their ports to other sockets")
    }

    /// Runs the binary on `config_text` as it is and waits for it to exit by itself; returns
    /// its exit status and stderr. Panics if it is still running after [`HANG`].
    pub(crate) async fn run_to_exit(config_text: &str) -> (ExitStatus, String) {
        let (child, dir) = spawn_binary(config_text, &[]);
        let mut process = Self {
            child,
            dir,
            listen: free_addr(),
            admin: free_addr(),
            exit: None,
        };
        let status = process.wait_exit().await;
        (status, process.stderr())
    }

    /// `http://127.0.0.1:PORT` for SDK clients.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// The DynamoDB listener.
    pub(crate) fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The admin listener.
    pub(crate) fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The process id, for reading `/proc/<pid>/status`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Replaces the config file the process was started with (keeping its listeners), for a
    /// reload on SIGHUP.
    pub(crate) fn rewrite_config(&self, config: SidecarConfig) {
        let text = config.listeners(self.listen, self.admin).to_toml();
        fs::write(self.dir.path().join("globalscale.toml"), text).expect("rewrite config");
    }

    /// Writes `text` as the config file as it is (to test that a bad file is refused).
    pub(crate) fn write_raw_config(&self, text: &str) {
        fs::write(self.dir.path().join("globalscale.toml"), text).expect("write config");
    }

    /// Sends a signal by name (`TERM`, `HUP`, ...) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{name} {} failed", self.child.id());
    }

    /// Waits for the process to exit; panics (with its stderr) if it has not after [`HANG`].
    pub(crate) async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "globalscale still running after {HANG:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the process wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// What the process wrote to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// `Err` with what the process wrote when it exited before `/healthz` answered.
    async fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            if let Some(status) = self.try_exit() {
                return Err(format!(
                    "globalscale exited with {status} before /healthz answered; stderr:\n{}\nstdout:\n{}",
                    self.stderr(),
                    self.stdout()
                ));
            }
            if tokio::net::TcpStream::connect(self.admin).await.is_ok()
                && get(self.admin, "/healthz").await.status == 200
            {
                return Ok(());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/healthz not 200 within {HANG:?}; stderr:\n{}\nstdout:\n{}",
                self.stderr(),
                self.stdout()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes `config_text` to a temp dir and starts the binary on it, output to files beside it.
fn spawn_binary(config_text: &str, env: &[(&str, &str)]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("globalscale-sidecar-")
        .tempdir()
        .expect("temp dir for the sidecar");
    let config: PathBuf = dir.path().join("globalscale.toml");
    fs::write(&config, config_text).expect("write config");
    let stdout = fs::File::create(dir.path().join("stdout.log")).expect("stdout log");
    let stderr = fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
    // `GLOBALSCALE_BIN`: another build of the binary, for a bench that measures a release
    // build without building the SDK it drives in release too (`benches/floods.rs`).
    let binary = std::env::var_os("GLOBALSCALE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_globalscale")),
        PathBuf::from,
    );
    let child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start globalscale: {e}"));
    (child, dir)
}

/// Sends the in-process sidecar's logs to the test's captured output, so a failing test shows
/// what the sidecar saw (ejections, readmissions, failed requests).
fn log_to_test_output() {
    // Another test in this binary may have installed it already; one is enough.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("globalscale=info")),
        )
        .with_test_writer()
        .try_init();
}
