//! Building and running the server: the routes and the graceful shutdown.
//!
//! [`Application::with_listener`] takes a bound listener (tests bind
//! `127.0.0.1:0`), [`Application::run_until_stopped`] takes the shutdown
//! future (the binary passes SIGTERM/SIGINT, tests a oneshot). Shutdown
//! refuses new upgrades with 503, closes every session with 1001, waits for
//! them to go (at most [`DRAIN_TIMEOUT`]), then stops the HTTP server (at
//! most [`STOP_TIMEOUT`]): well inside Heroku's 30 s grace.

use crate::bans::{Ban, Bans, now_millis};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::registry::{CloseStore, Registry, Shared, Shutdown};
use crate::state::AppState;
use crate::store::database::{BanBook, Database};
use crate::store::{Store, ref_window};
use crate::{api, moderation, ws};
use actix::{AsyncContext, Context};
use actix_web::{App, HttpServer, web};
use std::future::Future;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for sessions to close after they were sent 1001.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the HTTP server's connections to finish afterwards.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound or listened on.
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
    /// The database could not be opened; the text names the path, the
    /// setting and what to do.
    #[error("{0}")]
    Database(String),
    /// Redis could not be reached; the text names the URL (without its
    /// password) and the setting.
    #[error("{0}")]
    Redis(String),
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
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let listener = TcpListener::bind((config.host, config.port)).map_err(StartError::Listen)?;
        Application::with_listener(listener, config).await
    }

    /// Serves on an already bound listener. Must run inside an actix
    /// `System`. With a Redis URL, fails when Redis cannot be reached.
    pub async fn with_listener(
        listener: TcpListener,
        config: Config,
    ) -> Result<Application, StartError> {
        let port = listener.local_addr().map_err(StartError::Listen)?.port();
        crate::registry::exit_on_registry_panic();
        let config = Arc::new(config);
        let directory = Arc::new(Directory::default());
        let metrics = Arc::new(Metrics::new());
        // The registry's address exists before the registry runs, so the
        // store's writer thread can report to it from the start.
        let context = Context::<Registry>::new();
        let cluster = match &config.redis_url {
            Some(url) => Some(
                Cluster::connect(&config, url.expose(), ref_window(config.history))
                    .await
                    .map_err(|error| StartError::Redis(error.to_string()))?,
            ),
            None => None,
        };
        let (store, disk, mut ban_book) = if cluster.is_some() {
            (Store::shared(config.history), None, None)
        } else if config.in_memory() {
            (Store::memory(config.history), None, None)
        } else {
            let database = Database::open(Path::new(&config.database))
                .map_err(|error| StartError::Database(error.to_string()))?;
            let disk = database
                .reader()
                .map_err(|error| StartError::Database(error.to_string()))?;
            let ban_book = database
                .ban_book()
                .map_err(|error| StartError::Database(error.to_string()))?;
            let store = Store::sqlite(database, config.history, context.address().recipient())
                .map_err(|error| StartError::Database(error.to_string()))?;
            (store, Some(disk), Some(ban_book))
        };
        let bans = match (&mut ban_book, &cluster) {
            (Some(book), _) => load_bans(book, &config.database)?,
            (None, Some(cluster)) => Bans::from_list(
                cluster
                    .bans()
                    .await
                    .map_err(|error| StartError::Redis(error.to_string()))?
                    .into_iter()
                    .filter_map(Ban::from_wire)
                    .collect(),
            ),
            (None, None) => Bans::default(),
        };
        let health = store.health();
        let shared = cluster
            .clone()
            .map(|cluster| Shared::new(cluster, health.clone()));
        let registry = context.run(
            Registry::new(
                config.clone(),
                store,
                directory.clone(),
                metrics.clone(),
                shared,
            )
            .with_bans(bans),
        );
        let state = web::Data::new(
            AppState::new(config, registry, directory, metrics, disk, health, cluster)
                .with_ban_book(ban_book),
        );
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                // One span per request (method, path, status, latency), the
                // parent of whatever the handler logs.
                .wrap(tracing_actix_web::TracingLogger::default())
                .app_data(app_state.clone())
                .route("/ws", web::get().to(ws::upgrade))
                .configure(api::configure)
                .configure(moderation::configure)
                .configure(crate::pages::configure)
        })
        .disable_signals()
        // Chat frames are small and latency matters: without this, Nagle's
        // algorithm holds a frame back until the previous one is acknowledged.
        .tcp_nodelay(true)
        .shutdown_timeout(STOP_TIMEOUT.as_secs())
        .listen(listener)
        .map_err(StartError::Listen)?
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
        self.state.begin_shutdown();
        match self.state.registry.send(Shutdown).await {
            Ok(drained) => {
                if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
                    tracing::warn!("some sessions did not close in time");
                }
            }
            Err(error) => tracing::error!(error = %error, "the registry is gone"),
        }
        if let Some(cluster) = &self.state.cluster
            && let Err(error) = cluster.depart().await
        {
            tracing::error!(error = %error, "could not remove this node's members from Redis");
        }
        handle.stop(true).await;
        let stopped = server.await.map_err(std::io::Error::other)?;
        if let Err(error) = self.state.registry.send(CloseStore).await {
            tracing::error!(error = %error, "the registry is gone; the store was not closed");
        }
        stopped
    }
}

/// The bans in force kept by the database at `path` (rule 52); deletes the
/// ones that ended meanwhile. A row that does not read as a ban (a file
/// edited by hand) is left out with a warning.
fn load_bans(book: &mut BanBook, path: &str) -> Result<Bans, StartError> {
    let rows = book.active(now_millis()).map_err(|error| {
        StartError::Database(format!(
            "cannot read the bans from the database {path}: {error}. Check the file, or set CHARLA_DATABASE (--database) to another path"
        ))
    })?;
    let mut bans = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id.clone();
        match Ban::from_wire(row) {
            Some(ban) => bans.push(ban),
            None => {
                tracing::warn!(ban = %id, "ignoring a stored ban that names no valid target or room")
            }
        }
    }
    if !bans.is_empty() {
        tracing::info!(bans = bans.len(), "bans in force loaded from the database");
    }
    Ok(Bans::from_list(bans))
}
