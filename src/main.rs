//! `globalscale --config PATH`: arguments, logging, the descriptor limit, config, then the
//! app until SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use globalscale::app::{App, ReloadHandle};
use globalscale::config::Config;

#[derive(Parser)]
#[command(
    version,
    about = "DynamoDB sidecar: multi-region failover and SigV4 re-signing"
)]
struct Args {
    /// The config file (TOML).
    #[arg(
        long,
        env = "GLOBALSCALE_CONFIG",
        required_unless_present = "health_check"
    )]
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
        return ExitCode::FAILURE;
    };
    raise_descriptor_limit();
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("globalscale: {e}");
            return ExitCode::from(2);
        }
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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs in files and collectors stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
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
