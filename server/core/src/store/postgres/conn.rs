//! Connections to PostgreSQL: opening one within a time limit, a small bounded pool for reads,
//! and what an error means for the caller.
//!
//! Every wait is bounded so that an outage turns into [`StoreError::Unavailable`] (a 503 with
//! `Retry-After`) within about a second rather than a request that hangs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification};

use crate::store::{StoreError, StoreResult};

/// Longest wait for a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for a pooled read connection when all are busy.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most read connections per node, so that many nodes stay under `max_connections`.
const MAX_READERS: usize = 16;

/// Maps a driver error: a lost or refused connection, or a server shutting down or starting,
/// is worth a retry ([`StoreError::Unavailable`]); anything else is a database error.
pub fn store_error(error: tokio_postgres::Error) -> StoreError {
    let lost = error.is_closed()
        || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>())
        || error.code().is_some_and(|code| {
            let code = code.code();
            // 08: connection exception; 57P0x: shutdown, crash, starting up; 53300: too many.
            code.starts_with("08") || code.starts_with("57P0") || code == "53300"
        });
    let text = describe(&error);
    if lost {
        StoreError::Unavailable(text)
    } else {
        StoreError::Database(text)
    }
}

/// The error with what the server or the socket said (its `Display` alone says "db error").
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// Opens connections to one database. Their background drivers run on the runtime that opened
/// the store, so a connection outlives the request (and the actix worker) that opened it.
pub struct Connector {
    config: tokio_postgres::Config,
    runtime: Handle,
}

impl Connector {
    /// Parses a `postgres://` URL (never logged: it may hold a password).
    pub fn new(url: &str) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("invalid database URL: {e}")))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives_idle(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("nudge");
        }
        // A node that hangs inside a transaction must not hold the commit lock for long.
        config.options("-c idle_in_transaction_session_timeout=10s");
        Ok(Self {
            config,
            runtime: Handle::current(),
        })
    }

    /// A new connection whose asynchronous messages are dropped.
    pub async fn connect(&self) -> StoreResult<Client> {
        let (client, connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls))
                .await
                .map_err(|_| StoreError::Unavailable("connecting timed out".into()))?
                .map_err(store_error)?;
        self.runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// A new connection that hands every `NOTIFY` it receives to the returned channel, which
    /// closes when the connection is lost.
    pub async fn connect_listening(
        &self,
    ) -> StoreResult<(Client, mpsc::UnboundedReceiver<Notification>)> {
        let (client, mut connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, self.config.connect(NoTls))
                .await
                .map_err(|_| StoreError::Unavailable("connecting timed out".into()))?
                .map_err(store_error)?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.runtime.spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, "PostgreSQL listening connection ended");
                        return;
                    }
                }
            }
        });
        Ok((client, rx))
    }
}

/// A connection with its statements prepared, as a [`Pool`] keeps it.
pub trait Prepare: Sized + Send + 'static {
    /// Prepares the statements on a new connection.
    fn prepare(client: Client) -> impl std::future::Future<Output = StoreResult<Self>> + Send;

    /// The connection.
    fn client(&self) -> &Client;
}

/// Read connections, each with its statements prepared, at most `MAX_READERS` (16) at once.
pub struct Pool<Reader> {
    connector: Arc<Connector>,
    idle: Arc<Mutex<Vec<Reader>>>,
    permits: Arc<Semaphore>,
}

impl<Reader: Prepare> Pool<Reader> {
    /// An empty pool; connections open on demand.
    pub fn new(connector: Arc<Connector>) -> Self {
        Self {
            connector,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(MAX_READERS)),
        }
    }

    /// A live read connection, or `Unavailable` when none can be had in time.
    pub async fn get(&self) -> StoreResult<Pooled<Reader>> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Unavailable("every read connection is busy".into()))?
            .map_err(|_| StoreError::Closed)?;
        let idle = loop {
            let candidate = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match candidate {
                // A connection the server closed (a restart) is dropped here, not used.
                Some(reader) if reader.client().is_closed() => continue,
                other => break other,
            }
        };
        let reader = match idle {
            Some(reader) => reader,
            None => Reader::prepare(self.connector.connect().await?).await?,
        };
        Ok(Pooled {
            reader: Some(reader),
            idle: self.idle.clone(),
            _permit: permit,
        })
    }

    /// Refuses new reads and drops idle connections.
    pub fn close(&self) {
        self.permits.close();
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A read connection on loan; it goes back to the pool on drop unless it was lost.
pub struct Pooled<Reader: Prepare> {
    reader: Option<Reader>,
    idle: Arc<Mutex<Vec<Reader>>>,
    _permit: OwnedSemaphorePermit,
}

impl<Reader: Prepare> std::ops::Deref for Pooled<Reader> {
    type Target = Reader;

    fn deref(&self) -> &Reader {
        self.reader.as_ref().expect("present until drop")
    }
}

impl<Reader: Prepare> Drop for Pooled<Reader> {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            if !reader.client().is_closed() {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(reader);
            }
        }
    }
}
