//! `globalscale --config PATH`: arguments, logging, the descriptor limit, config, then the
//! app until SIGTERM; or, with a subcommand, one operator command on the same config, loaded
//! the same way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use globalscale::app::{App, ReloadHandle};
use globalscale::cli::{check_config, history, verify};
use globalscale::config::Config;

// glibc's malloc was a sixth of the request path's CPU (many small, short-lived
// allocations freed on another thread than the one that made them); mimalloc's per-thread
// free lists make them cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "DynamoDB sidecar: multi-region failover and SigV4 re-signing"
)]
struct Args {
    /// The config file (TOML).
    #[arg(long, global = true, env = "GLOBALSCALE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        env = "GLOBALSCALE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// GET this URL and exit 0 on HTTP 200, 1 otherwise (for container health checks in
    /// images without curl).
    #[arg(long, value_name = "URL")]
    health_check: Option<String>,
    /// The `check-config` command as a flag (`globalscale --check-config --config F`), the
    /// spelling other servers use for a config test (`nginx -t`, `--check-config`).
    #[arg(long)]
    check_config: bool,
    /// Without a command, run the sidecar.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Validate the config and print what it promises, as JSON.
    ///
    /// Loads the config as start-up does (the file and the environment overrides such as
    /// DDB_REGIONS), prints the home region, the region order, each table's key prefix,
    /// version attribute and audit, the audit spool, auth and the listeners, and exits 0; an
    /// invalid config exits 2 with start-up's message. Binds no port, contacts no region,
    /// creates no spool directory.
    CheckConfig,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print one item's audit records, oldest first, read through the sidecar's routing.
    History(HistoryArgs),
    /// Walk the audit trail's chains and name each record deleted, altered or forged. Exit
    /// 0 clean, 1 findings, 2 a config that cannot answer, 3 the trail could not be read.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Only records written at or after this time (RFC 3339, e.g. 2026-12-07T00:00:00Z).
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    since: Option<std::time::SystemTime>,
    /// Only records written at or before this time (RFC 3339).
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    until: Option<std::time::SystemTime>,
    /// Only findings on this table's records (the chains are still read whole).
    #[arg(long)]
    table: Option<String>,
    /// One item's records (with --table): their own hashes only.
    #[arg(long, requires = "table")]
    key: Option<String>,
    /// The item's sort key, with --key.
    #[arg(long, requires = "key")]
    sort_key: Option<String>,
}

#[derive(clap::Args)]
struct HistoryArgs {
    /// The audited table.
    #[arg(long)]
    table: String,
    /// The item's partition key as clients send it (a number as its text, binary as base64).
    #[arg(long)]
    key: String,
    /// The item's sort key, if the table has one.
    #[arg(long)]
    sort_key: Option<String>,
    /// Resolve `{region}` in the table's key_prefix to this region instead of the home
    /// region, for items another region's sidecars wrote.
    #[arg(long, value_name = "REGION")]
    home_region: Option<String>,
    /// Print the records exactly as stored, as a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("globalscale: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(url) = args.health_check {
        return runtime.block_on(globalscale::admin::health_check(&url));
    }
    let Some(path) = args.config else {
        eprintln!("globalscale: --config PATH (or GLOBALSCALE_CONFIG) is required");
        return ExitCode::from(2);
    };
    if args.check_config && args.command.is_some() {
        eprintln!("globalscale: --check-config runs no other command");
        return ExitCode::from(2);
    }
    match args.command {
        Some(Command::Audit(AuditCommand::History(history))) => {
            return audit_history(&runtime, &path, history);
        }
        Some(Command::Audit(AuditCommand::Verify(scope))) => {
            return audit_verify(&runtime, &path, scope);
        }
        Some(Command::CheckConfig) => return check(&path),
        None if args.check_config => return check(&path),
        None => {}
    }
    raise_descriptor_limit();
    let config = match load(&path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let app = match App::build(config).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("globalscale: {e}");
                return ExitCode::FAILURE;
            }
        };
        tokio::spawn(reload_on_sighup(app.reload_handle(), path));
        match app.run(terminate()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("globalscale: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// An unreadable or invalid config exits 2, before anything starts.
fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("globalscale: {e}");
        ExitCode::from(2)
    })
}

fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match check_config::print(&config, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early (`| head`) is not a failure of the check.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("globalscale: check-config: cannot write the summary: {e}");
            ExitCode::FAILURE
        }
    }
}

fn audit_history(runtime: &tokio::runtime::Runtime, path: &Path, args: HistoryArgs) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let lookup = history::Lookup {
        table: args.table,
        key: args.key,
        sort_key: args.sort_key,
        home_region: args.home_region,
    };
    let format = if args.json {
        history::Format::Json
    } else {
        history::Format::Table
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(history::run(config, &lookup, format, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("globalscale: audit history: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn audit_verify(runtime: &tokio::runtime::Runtime, path: &Path, args: VerifyArgs) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let item = args.key.map(|key| history::Lookup {
        table: args.table.clone().unwrap_or_default(),
        key,
        sort_key: args.sort_key,
        home_region: None,
    });
    let scope = verify::Scope {
        table: args.table,
        item,
        since: args.since,
        until: args.until,
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(verify::run(config, &scope, &mut stdout)) {
        Ok(findings) if findings.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("globalscale: audit verify: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_tracing(format: LogFormat) {
    globalscale::logging::init(match format {
        LogFormat::Text => globalscale::logging::Format::Text,
        LogFormat::Json => globalscale::logging::Format::Json,
    });
}

/// Raises the soft limit on open descriptors to the hard limit: the soft one is often 1024,
/// and every client and upstream connection takes one. The connection caps are derived from
/// the result (`server::limits`).
fn raise_descriptor_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the descriptor limit; keeping it"),
    }
}

/// Resolves on SIGTERM (how Kubernetes stops a sidecar) or Ctrl-C.
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// SIGHUP re-reads the config file; an invalid file is refused and the old config kept.
async fn reload_on_sighup(handle: ReloadHandle, path: PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP; hot reload is off");
        return;
    };
    while hup.recv().await.is_some() {
        let result = match Config::load(&path) {
            Ok(config) => handle.reload(config).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let label = match &result {
            Ok(()) => {
                tracing::info!(path = %path.display(), "configuration reloaded");
                "success"
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "reload refused; keeping the running configuration");
                "failure"
            }
        };
        handle
            .metrics()
            .config_reloads
            .with_label_values(&[label])
            .inc();
    }
}
