//! Assembling the sidecar from a validated config: bind both listeners, build the policy
//! snapshot, credentials and metrics, then run the proxy, the admin port and the prober
//! until shutdown, and swap in a new config on reload.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::audit::Auditor;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::server::{self, limits};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::upstream::sign::Signer;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    KeySchema(#[from] crate::schema::NotAStringKey),
    #[error("cannot open the audit spool: {0}")]
    AuditSpool(#[from] crate::audit::spool::SpoolError),
    #[error("reload refused: {0}")]
    Reload(String),
    #[error("cannot start the proxy workers: {0}")]
    Workers(std::io::Error),
}

pub struct App {
    proxy: Arc<Proxy>,
    listener: TcpListener,
    admin: TcpListener,
    /// The proxy listener's connection cap, from the config and the descriptor limit.
    max_connections: usize,
}

/// Swaps a new config into a running sidecar.
#[derive(Clone)]
pub struct ReloadHandle {
    proxy: Arc<Proxy>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, AppError> {
        let bind =
            |addr: SocketAddr| server::bind(addr).map_err(|source| AppError::Bind { addr, source });
        let listener = bind(config.listen)?;
        let admin = bind(config.admin_listen)?;
        let max_connections = max_connections(&config);
        // Opened by the serving sidecar only: one process owns a spool.
        let auditor = match &config.audit {
            Some(audit) => Some(Arc::new(Auditor::open(audit).await?)),
            None => None,
        };
        let mut proxy = Self::proxy(config).await?;
        if let Some(auditor) = auditor {
            proxy = proxy.with_audit(auditor);
        }
        let proxy = Arc::new(proxy);
        let warm = proxy.snapshot.load().signer.clone();
        tokio::spawn(async move {
            // Not fatal: IMDS or the web identity token may appear later; until then every
            // request is refused rather than forwarded unsigned.
            if let Err(e) = warm.credentials().await {
                tracing::warn!(error = %crate::error::Chain::for_log(&e), "no upstream credentials yet");
            }
        });
        crate::schema::check_prefixed(proxy.as_ref()).await?;
        Ok(Self {
            proxy,
            listener,
            admin,
            max_connections,
        })
    }

    /// The proxy alone, with no listener, prober or schema learning: for one-shot commands
    /// (`globalscale audit history`) that send the sidecar's own requests through the same
    /// signing and region routing as the running sidecar.
    pub async fn client(config: Config) -> Result<Arc<Proxy>, AppError> {
        Ok(Arc::new(Self::proxy(config).await?))
    }

    async fn proxy(config: Config) -> Result<Proxy, AppError> {
        let signer = Signer::from_config(&config.credentials, home_region(&config)).await;
        let snapshot = Snapshot::build(config, signer, None)?;
        Ok(Proxy::new(snapshot, Metrics::new()?))
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.proxy.snapshot.load().config.listen)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .unwrap_or_else(|_| self.proxy.snapshot.load().config.admin_listen)
    }

    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            proxy: Arc::clone(&self.proxy),
        }
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let draining = Arc::new(AtomicBool::new(false));
        let readiness = Arc::new(crate::readiness::Gate::new(
            self.proxy.metrics.readiness_refusals.clone(),
            self.proxy.metrics.ready.clone(),
            &self.proxy.snapshot.load().region_names(),
        ));
        let admin = Arc::new(Admin {
            proxy: Arc::clone(&self.proxy),
            draining: Arc::clone(&draining),
            readiness: Arc::clone(&readiness),
        });
        tokio::spawn(crate::readiness::run(
            Arc::clone(&self.proxy),
            readiness,
            stop_rx.clone(),
        ));
        let prober = tokio::spawn(crate::probe::run(Arc::clone(&self.proxy), stop_rx.clone()));
        tokio::spawn(crate::schema::learn_missing(Arc::clone(&self.proxy)));
        let shipper = self.proxy.audit.as_ref().map(|auditor| {
            tokio::spawn(crate::audit::shipper::run(
                Arc::clone(&self.proxy),
                Arc::clone(auditor),
                stop_rx.clone(),
            ))
        });
        let mut admin_stop = stop_rx.clone();
        let mut admin_settings = self.settings("admin", limits::ADMIN_MAX_CONNECTIONS);
        admin_settings.header_timeout = admin_settings
            .header_timeout
            .min(server::ADMIN_HEADER_TIMEOUT);
        let proxy_settings = self.settings("proxy", self.max_connections);
        let admin_server = tokio::spawn(server::serve(
            self.admin,
            admin_settings,
            move |req| {
                let admin = Arc::clone(&admin);
                async move { admin.handle(req).await }
            },
            async move {
                let _ = admin_stop.changed().await;
            },
        ));
        let keeper = Arc::clone(&self.proxy);
        let proxy = Arc::clone(&self.proxy);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel();
        tracing::info!(listen = %self.listener.local_addr().map_err(|source| AppError::Bind { addr: proxy.snapshot.load().config.listen, source })?, workers = server::workers::count(), "globalscale serving");
        let served = server::workers::serve(
            self.listener,
            proxy_settings,
            move |req| Arc::clone(&proxy).handle(req),
            async move {
                shutdown.await;
                let _ = stopping_tx.send(tokio::time::Instant::now());
                draining.store(true, Ordering::Release);
                tracing::info!("shutting down: draining in-flight requests");
            },
        )
        .await;
        if let Err(e) = served {
            let _ = stop_tx.send(true);
            return Err(AppError::Workers(e));
        }
        let stopped_at = stopping_rx
            .await
            .unwrap_or_else(|_| tokio::time::Instant::now());
        let _ = stop_tx.send(true);
        if let Some(shipper) = shipper {
            flush_audit(&keeper, shipper, stopped_at + server::DRAIN_TIMEOUT).await;
        }
        let _ = prober.await;
        let _ = admin_server.await;
        Ok(())
    }
}

impl App {
    /// One listener's rules; the timeouts are the config's, the same for both listeners.
    fn settings(&self, name: &'static str, max_connections: usize) -> server::Settings {
        let config = &self.proxy.snapshot.load().config;
        let metrics = &self.proxy.metrics;
        let cap = i64::try_from(max_connections).unwrap_or(i64::MAX);
        metrics.connections_max.with_label_values(&[name]).set(cap);
        server::Settings {
            name,
            max_connections,
            header_timeout: config.server.header_timeout,
            idle_timeout: config.server.idle_timeout,
            open: metrics.connections_open.with_label_values(&[name]),
            max_header_bytes: config.limits.max_header_bytes,
            max_headers: config.limits.max_headers,
            evicted_silent: metrics
                .connections_evicted
                .with_label_values(&[name, "silent"]),
            evicted_idle: metrics
                .connections_evicted
                .with_label_values(&[name, "idle"]),
            header_timeouts: metrics.header_timeouts.with_label_values(&[name]),
        }
    }
}

/// The proxy listener's cap: `server.max_connections` if set, never above what the
/// descriptor limit allows.
fn max_connections(config: &Config) -> usize {
    let nofile = limits::descriptor_limit().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the descriptor limit; assuming 1024");
        1024
    });
    let cap = limits::effective_max_connections(config.server.max_connections, nofile);
    tracing::info!(
        nofile,
        proxy = cap,
        admin = limits::ADMIN_MAX_CONNECTIONS,
        "connection caps"
    );
    cap
}

/// Lets the shipper empty the spool, within the drain time; what is left waits on disk for
/// the next start.
async fn flush_audit(
    proxy: &Proxy,
    shipper: tokio::task::JoinHandle<()>,
    deadline: tokio::time::Instant,
) {
    let Some(auditor) = &proxy.audit else {
        return;
    };
    let waiting = auditor.spool().backlog().records;
    if waiting > 0 {
        tracing::info!(records = waiting, "shipping the audit spool before exit");
    }
    if tokio::time::timeout_at(deadline, shipper).await.is_err() {
        tracing::warn!(
            records = auditor.spool().backlog().records,
            "drain time over: audit records left in the spool ship at the next start"
        );
    }
}

/// The spool is opened at start: a reload may change what records carry and where they are
/// shipped, but cannot start auditing, and a changed spool takes effect on restart.
fn check_audit_reload(
    running: bool,
    current: Option<&crate::config::AuditConfig>,
    new: Option<&crate::config::AuditConfig>,
) -> Result<(), AppError> {
    match (running, new) {
        (false, Some(_)) => Err(AppError::Reload(
            "[audit] was added: auditing starts with a restart (the spool opens at start)".into(),
        )),
        (true, Some(new))
            if current.is_some_and(|c| {
                c.spool_dir != new.spool_dir
                    || c.max_spool_bytes != new.max_spool_bytes
                    || c.commit_delay != new.commit_delay
            }) =>
        {
            tracing::warn!(
                "audit.spool_dir, audit.max_spool_bytes or audit.commit_delay_us changed: they take effect on restart only"
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

fn home_region(config: &Config) -> &str {
    config
        .regions
        .first()
        .map_or("us-east-1", |r| r.name.as_str())
}

impl ReloadHandle {
    /// Builds a snapshot from `config` and swaps it in; requests in flight finish on the
    /// old one. Listen addresses cannot move without a restart.
    pub async fn reload(&self, config: Config) -> Result<(), AppError> {
        let current = self.proxy.snapshot.load_full();
        if config.listen != current.config.listen
            || config.admin_listen != current.config.admin_listen
        {
            tracing::warn!("listen addresses changed: they take effect on restart only");
        }
        if config.server != current.config.server || config.limits != current.config.limits {
            tracing::warn!("[server] or [limits] changed: they take effect on restart only");
        }
        check_audit_reload(
            self.proxy.audit.is_some(),
            current.config.audit.as_ref(),
            config.audit.as_ref(),
        )?;
        let signer = if config.credentials == current.config.credentials {
            current.signer.clone()
        } else {
            tracing::info!("upstream credentials changed");
            Signer::from_config(&config.credentials, home_region(&config)).await
        };
        let snapshot = Snapshot::build(config, signer, Some(&current))?;
        self.proxy.snapshot.store(Arc::new(snapshot));
        // Regions no longer configured must not linger in the health gauge.
        self.proxy.metrics.region_healthy.reset();
        self.proxy.publish_health();
        self.proxy.keep_write_region();
        tokio::spawn(crate::schema::learn_missing(Arc::clone(&self.proxy)));
        Ok(())
    }

    pub fn metrics(&self) -> &Metrics {
        &self.proxy.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuditConfig, AuditImages, AuditMode};

    fn audit(dir: &str) -> AuditConfig {
        AuditConfig {
            table: "Trail".into(),
            spool_dir: dir.into(),
            images: AuditImages::New,
            mode: AuditMode::Spooled,
            max_spool_bytes: 1 << 30,
            commit_delay: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn a_reload_cannot_start_auditing_but_may_change_or_stop_it() {
        let a = audit("/spool");
        assert!(check_audit_reload(false, None, Some(&a)).is_err());
        assert!(check_audit_reload(false, None, None).is_ok());
        let moved = audit("/elsewhere");
        assert!(check_audit_reload(true, Some(&a), Some(&moved)).is_ok());
        assert!(check_audit_reload(true, Some(&a), None).is_ok());
    }
}
