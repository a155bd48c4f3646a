//! What every request handler shares ([`AppState`]), and the permit an open
//! connection holds. Built once by [`crate::app::Application`]; handlers
//! take it as `web::Data<AppState>`.

use crate::address::{AddressCounts, AddressPermit, ClientAddress};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::directory::Directory;
use crate::error::HttpError;
use crate::metrics::Metrics;
use crate::registry::{FetchHistory, Registry, RoomView, ViewRoom};
use crate::store::PageQuery;
use crate::store::database::{BanBook, Reader, Record};
use actix::Addr;
use actix_web::web;
use charla_protocol::{ChatMessage, RoomName};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What every request handler and session shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: Arc<Config>,
    pub(crate) registry: Addr<Registry>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) metrics: Arc<Metrics>,
    /// A read-only connection to the database, for history pages of rooms
    /// not in memory (read on a blocking thread); `None` in memory mode.
    pub(crate) disk: Option<Arc<Mutex<Reader>>>,
    /// The shared Redis, for history and members of rooms this node does
    /// not hold; `None` without Redis.
    pub(crate) cluster: Option<Cluster>,
    /// The database's ban book, written on a blocking thread before a ban
    /// or a lift is answered (rule 52); `None` in memory mode and with
    /// Redis.
    pub(crate) ban_book: Option<Arc<Mutex<BanBook>>>,
    /// Open connections per client address (`CHARLA_MAX_CONNECTIONS_PER_IP`).
    addresses: Arc<AddressCounts>,
    /// False while the database refuses writes.
    store_health: Arc<AtomicBool>,
    shutting_down: AtomicBool,
    next_session: AtomicU64,
}

impl AppState {
    pub(crate) fn new(
        config: Arc<Config>,
        registry: Addr<Registry>,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
        disk: Option<Reader>,
        store_health: Arc<AtomicBool>,
        cluster: Option<Cluster>,
    ) -> AppState {
        AppState {
            config,
            registry,
            directory,
            metrics,
            disk: disk.map(|reader| Arc::new(Mutex::new(reader))),
            cluster,
            ban_book: None,
            addresses: Arc::default(),
            store_health,
            shutting_down: AtomicBool::new(false),
            next_session: AtomicU64::new(fastrand::u64(..u64::MAX / 2)),
        }
    }

    /// The state with `book` as its ban book.
    pub(crate) fn with_ban_book(mut self, book: Option<BanBook>) -> AppState {
        self.ban_book = book.map(|book| Arc::new(Mutex::new(book)));
        self
    }

    /// Whether the store accepts writes (always, in memory).
    pub(crate) fn store_is_healthy(&self) -> bool {
        self.store_health.load(Ordering::Acquire)
    }

    /// Marks shutdown as begun: new upgrades are refused from now on.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// A fresh session id. Ids start at a random point so a client never
    /// mistakes a session of this process for one of a previous run.
    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// One of `address`'s `CHARLA_MAX_CONNECTIONS_PER_IP` places and one of
    /// the server's `CHARLA_MAX_CONNECTIONS`, if both are free.
    pub(crate) fn admit(&self, address: ClientAddress) -> Result<ConnectionPermit, HttpError> {
        let Some(place) = self
            .addresses
            .admit(address, self.config.max_connections_per_ip)
        else {
            self.metrics.address_refused();
            return Err(HttpError::TooManyConnectionsFromAddress);
        };
        if !self
            .metrics
            .try_open_connection(self.config.max_connections)
        {
            return Err(HttpError::TooManyConnections);
        }
        Ok(ConnectionPermit {
            metrics: self.metrics.clone(),
            _address: place,
        })
    }
}

/// An open connection's places (in the server's count and its address's);
/// dropping it frees both.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    metrics: Arc<Metrics>,
    _address: AddressPermit,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// A history page could not be read from the database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    #[error("the registry did not answer: {0}")]
    Registry(#[from] actix::MailboxError),
    #[error("cannot read history from the database: {0}")]
    Disk(String),
    #[error("cannot read from Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl From<HistoryError> for crate::error::HttpError {
    fn from(error: HistoryError) -> Self {
        tracing::error!(error = %error, "a history page failed");
        match error {
            HistoryError::Registry(_) => crate::error::HttpError::Internal,
            HistoryError::Disk(_) | HistoryError::Redis(_) => {
                crate::error::HttpError::HistoryUnavailable
            }
        }
    }
}

impl AppState {
    /// One page of `room`'s history: from the registry's memory when the
    /// room is there, otherwise read from the database on a blocking
    /// thread, so the registry never waits on the disk.
    pub(crate) async fn history_page(
        &self,
        room: &RoomName,
        query: PageQuery,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        let fetch = FetchHistory {
            room: room.clone(),
            query,
        };
        if let Some(messages) = self.registry.send(fetch).await? {
            return Ok(messages);
        }
        if let Some(cluster) = &self.cluster {
            return Ok(cluster.page(room, query).await?);
        }
        let Some(disk) = self.disk.clone() else {
            return Ok(Vec::new());
        };
        let room = room.clone();
        let history = self.config.history;
        let read = web::block(move || {
            let reader = disk.lock().unwrap_or_else(PoisonError::into_inner);
            reader.page(
                room.as_str(),
                query.after,
                query.before,
                query.limit,
                history,
            )
        });
        match read.await {
            Ok(Ok(records)) => Ok(records.into_iter().map(Record::into_message).collect()),
            Ok(Err(error)) => Err(HistoryError::Disk(error.to_string())),
            Err(error) => Err(HistoryError::Disk(error.to_string())),
        }
    }

    /// What a room page shows: members, and the newest
    /// `CHARLA_JOIN_HISTORY` messages.
    pub(crate) async fn room_view(&self, room: &RoomName) -> Result<RoomView, HistoryError> {
        let view = self.registry.send(ViewRoom { room: room.clone() }).await?;
        if view.history.is_some() {
            return Ok(view);
        }
        let recent = PageQuery {
            limit: self.config.join_history,
            ..PageQuery::default()
        };
        let history = self.history_page(room, recent).await?;
        let members = match &self.cluster {
            Some(cluster) => cluster.members(room).await?,
            None => view.members,
        };
        Ok(RoomView {
            members,
            history: Some(history),
        })
    }
}
