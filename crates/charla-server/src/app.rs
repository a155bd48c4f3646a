//! Building and running the server: the shared state, the routes, and the
//! graceful shutdown.
//!
//! [`Application::with_listener`] takes a bound listener (tests bind
//! `127.0.0.1:0`), [`Application::run_until_stopped`] takes the shutdown
//! future (the binary passes SIGTERM/SIGINT, tests a oneshot). Shutdown
//! refuses new upgrades with 503, closes every session with 1001, waits for
//! them to go (at most [`DRAIN_TIMEOUT`]), then stops the HTTP server (at
//! most [`STOP_TIMEOUT`]): well inside Heroku's 30 s grace.

use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::registry::{Registry, Shutdown};
use crate::store::MemoryStore;
use crate::{api, ws};
use actix::{Actor, Addr};
use actix_web::{App, HttpServer, web};
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Longest wait for sessions to close after they were sent 1001.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the HTTP server's connections to finish afterwards.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// What every request handler and session shares.
#[derive(Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Addr<Registry>,
    pub directory: Arc<Directory>,
    pub metrics: Arc<Metrics>,
    shutting_down: AtomicBool,
    next_session: AtomicU64,
}

impl AppState {
    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// A fresh session id. Ids start at a random point so a client never
    /// mistakes a session of this process for one of a previous run.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// One of the `CHARLA_MAX_CONNECTIONS` places, if one is free.
    pub fn admit(&self) -> Option<ConnectionPermit> {
        self.metrics
            .try_open_connection(self.config.max_connections)
            .then(|| ConnectionPermit {
                metrics: self.metrics.clone(),
            })
    }
}

/// An open connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionPermit {
    metrics: Arc<Metrics>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds `CHARLA_HOST:PORT` (every interface by default). Must run
    /// inside an actix `System`.
    pub fn build(config: Config) -> std::io::Result<Application> {
        let listener = TcpListener::bind((config.host, config.port))?;
        Application::with_listener(listener, config)
    }

    /// Serves on an already bound listener. Must run inside an actix `System`.
    pub fn with_listener(listener: TcpListener, config: Config) -> std::io::Result<Application> {
        let port = listener.local_addr()?.port();
        let config = Arc::new(config);
        let directory = Arc::new(Directory::default());
        let metrics = Arc::new(Metrics::new());
        let store = Box::new(MemoryStore::new(config.history));
        let registry =
            Registry::new(config.clone(), store, directory.clone(), metrics.clone()).start();
        let state = web::Data::new(AppState {
            config,
            registry,
            directory,
            metrics,
            shutting_down: AtomicBool::new(false),
            next_session: AtomicU64::new(fastrand::u64(..u64::MAX / 2)),
        });
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                // One span per request (method, path, status, latency), the
                // parent of whatever the handler logs.
                .wrap(tracing_actix_web::TracingLogger::default())
                .app_data(app_state.clone())
                .route("/ws", web::get().to(ws::upgrade))
                .configure(api::configure)
                .configure(crate::pages::configure)
        })
        .disable_signals()
        // Chat frames are small and latency matters: without this, Nagle's
        // algorithm holds a frame back until the previous one is acknowledged.
        .tcp_nodelay(true)
        .shutdown_timeout(STOP_TIMEOUT.as_secs())
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            state,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then shuts down gracefully.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = actix_web::rt::spawn(self.server);
        tokio::select! {
            finished = &mut server => return finished.map_err(std::io::Error::other)?,
            () = shutdown => {}
        }
        tracing::info!("shutting down: closing every session with 1001");
        self.state.shutting_down.store(true, Ordering::Release);
        match self.state.registry.send(Shutdown).await {
            Ok(drained) => {
                if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
                    tracing::warn!("some sessions did not close in time");
                }
            }
            Err(error) => tracing::error!(error = %error, "the registry is gone"),
        }
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)?
    }
}
