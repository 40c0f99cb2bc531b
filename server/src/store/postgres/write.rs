//! The writer task: group commit over one connection per node.
//!
//! The task takes every write that is waiting (up to [`MAX_BATCH`]) and sends them as one
//! pipelined transaction: `BEGIN`, one function call per run of appends (arrays, one element
//! per message) or per other write, then `COMMIT`, so a batch costs three round trips and one
//! WAL flush whatever its size. The functions log through nudge's `nudge_log_event`, which
//! takes the commit lock once per batch and wakes every node's follower at the commit. If a statement fails
//! (which aborts the transaction), the batch is sent again with one statement per write until
//! the failing write is found; it alone gets its error. Nothing was committed or published
//! before, so that is safe. Events are not published here: the follower reads them from the log (see
//! [`super::follow`]), woken right after the commit.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::{maybe_done, poll_fn, MaybeDone};
use nudge::store::postgres::{store_error, Connector, PostgresStore as Core};
use nudge::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::{Client, Row, Statement};

use super::read::message_from_columns;
use crate::domain::{NewMessage, RoomName, ROOMS_TOPIC, ROOMS_URL};
use crate::store::{Appended, IdempotencyKey};

/// Most writes sharing one transaction; bounds the latency one commit adds to the first write.
const MAX_BATCH: usize = 1024;
/// Longest a batch may take, from `BEGIN` to the answer to `COMMIT`; past it the connection is
/// dropped (which rolls back anything not committed) and the batch answered `Unavailable`.
const BATCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection backoff while the database cannot be reached; writes meanwhile fail at once.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A write waiting for the writer task.
pub enum WriteJob {
    /// Store a message and its event.
    Append {
        /// The validated message.
        message: NewMessage,
        /// The client's idempotency key, if any.
        key: Option<IdempotencyKey>,
        /// Where the answer goes.
        reply: oneshot::Sender<StoreResult<Appended>>,
    },
    /// Create a room.
    CreateRoom {
        /// Its name.
        room: RoomName,
        /// True when it was created, false when it existed.
        reply: oneshot::Sender<StoreResult<bool>>,
    },
    /// Create a private room or change its members (see `nudge_member_change`).
    Member {
        /// What to do.
        change: MemberChange,
        /// The outcome and, for a change, its event id.
        reply: oneshot::Sender<StoreResult<MemberOutcome>>,
    },
}

impl WriteJob {
    /// Decodes this job's row and sends the answer. A caller that went away no longer needs it.
    fn answer(self, row: StoreResult<Row>) {
        let _ = match self {
            WriteJob::Append { reply, .. } => reply.send(row.and_then(appended)).map_err(drop),
            WriteJob::CreateRoom { reply, .. } => reply.send(row.map(|r| r.get(0))).map_err(drop),
            WriteJob::Member { reply, .. } => reply
                .send(row.map(|r| MemberOutcome {
                    outcome: r.get(0),
                    event_id: r.get(1),
                }))
                .map_err(drop),
        };
    }

    fn fail(self, error: &StoreError) {
        self.answer(Err(copy_error(error)));
    }
}

fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::IdempotencyConflict => StoreError::IdempotencyConflict,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Database(m) => StoreError::Database(m.clone()),
        StoreError::Closed => StoreError::Closed,
    }
}

fn appended(row: Row) -> StoreResult<Appended> {
    let outcome: &str = row.get(0);
    match outcome {
        "conflict" => Err(StoreError::IdempotencyConflict),
        "stored" | "replayed" => Ok(Appended {
            message: message_from_columns(&row, 1),
            replayed: outcome == "replayed",
        }),
        other => Err(StoreError::Database(format!(
            "unknown append outcome {other:?}"
        ))),
    }
}

/// The arguments of `nudge_member_change`.
#[derive(Debug)]
pub struct MemberChange {
    /// `private` (create a private room), `add` or `remove`.
    pub kind: &'static str,
    /// The room.
    pub room: String,
    /// The acting user (the creator, for `private`).
    pub by: String,
    /// The user added or removed (unused for `private`).
    pub user: String,
}

/// The answer of `nudge_member_change`.
#[derive(Debug)]
pub struct MemberOutcome {
    /// `changed`, `unchanged`, or a refusal.
    pub outcome: String,
    /// The event that announced the change.
    pub event_id: Option<i64>,
}

/// The writer's connection and its prepared statements.
struct Connection {
    client: Client,
    append: Statement,
    create_room: Statement,
    member: Statement,
}

impl Connection {
    async fn open(connector: &Connector) -> StoreResult<Self> {
        let client = connector.connect().await?;
        let (append, create_room, member) = tokio::try_join!(
            client.prepare("SELECT * FROM nudge_append($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            client.prepare("SELECT nudge_create_room($1, $2, $3)"),
            client.prepare("SELECT * FROM nudge_member_change($1, $2, $3, $4, $5, $6)"),
        )
        .map_err(store_error)?;
        Ok(Self {
            client,
            append,
            create_room,
            member,
        })
    }

    /// The statement for one unit of `batch`: a run of appends, or one other job. Its request
    /// is sent when the future is first polled; it answers one row per job.
    fn call<'a>(&'a self, batch: &'a [WriteJob], unit: Range<usize>) -> Call<'a> {
        let jobs = &batch[unit];
        match &jobs[0] {
            WriteJob::Append { .. } => Box::pin(async move {
                let mut columns = AppendColumns::default();
                jobs.iter().for_each(|job| columns.push(job));
                let c = &columns;
                self.client
                    .query(
                        &self.append,
                        &[
                            &c.rooms,
                            &c.authors,
                            &c.texts,
                            &c.keys,
                            &c.requests,
                            &c.topics,
                            &c.urls,
                            &ROOMS_TOPIC,
                            &ROOMS_URL,
                        ],
                    )
                    .await
            }),
            WriteJob::CreateRoom { room, .. } => Box::pin(async move {
                self.client
                    .query(
                        &self.create_room,
                        &[&room.as_str(), &ROOMS_TOPIC, &ROOMS_URL],
                    )
                    .await
            }),
            WriteJob::Member { change, .. } => Box::pin(async move {
                self.client
                    .query(
                        &self.member,
                        &[
                            &change.kind,
                            &change.room,
                            &change.by,
                            &change.user,
                            &ROOMS_TOPIC,
                            &ROOMS_URL,
                        ],
                    )
                    .await
            }),
        }
    }
}

/// A statement on its way: the rows it answers.
type Call<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

/// The arguments of `nudge_append`: one array per column, element i for message i.
#[derive(Default)]
struct AppendColumns<'a> {
    rooms: Vec<&'a str>,
    authors: Vec<&'a str>,
    texts: Vec<&'a str>,
    keys: Vec<Option<&'a str>>,
    /// The request as stored, to tell a retry (same request) from a reuse of the key.
    requests: Vec<String>,
    topics: Vec<Option<String>>,
    urls: Vec<Option<String>>,
}

impl<'a> AppendColumns<'a> {
    fn push(&mut self, job: &'a WriteJob) {
        let WriteJob::Append { message, key, .. } = job else {
            return;
        };
        let room = RoomName::parse(&message.room).ok();
        self.rooms.push(&message.room);
        self.authors.push(&message.author);
        self.texts.push(&message.text);
        self.keys.push(key.as_ref().map(|k| k.0.as_str()));
        self.requests
            .push(serde_json::to_string(message).unwrap_or_default());
        self.topics.push(room.as_ref().map(RoomName::topic));
        self.urls.push(room.as_ref().map(RoomName::recent_url));
    }
}

/// Splits a batch into statements: consecutive appends share one, anything else has its own;
/// in `isolate` mode (looking for the write that failed) every job has its own.
fn units(batch: &[WriteJob], isolate: bool) -> Vec<Range<usize>> {
    let is_append = |job: &WriteJob| matches!(job, WriteJob::Append { .. });
    let mut units: Vec<Range<usize>> = Vec::new();
    for (i, job) in batch.iter().enumerate() {
        match units.last_mut() {
            Some(unit) if !isolate && is_append(job) && is_append(&batch[unit.start]) => {
                unit.end = i + 1
            }
            _ => units.push(i..i + 1),
        }
    }
    units
}

/// How one transaction attempt ended.
enum Attempt {
    /// Committed: one row per job, in order.
    Committed(Vec<Row>),
    /// The statement for these jobs failed with this error; the transaction was rolled back.
    UnitFailed(Range<usize>, StoreError),
    /// The whole batch failed (connection lost, commit refused); the connection may be gone.
    Failed(StoreError),
}

/// Owns the write connection (opened on demand, reopened with backoff after a loss).
pub struct Writer {
    connector: Arc<Connector>,
    connection: Option<Connection>,
    retry_at: Instant,
    backoff: Duration,
    core: Arc<Core>,
}

impl Writer {
    /// A writer that wakes `core`'s follower after every commit.
    pub fn new(core: Arc<Core>) -> Self {
        Self {
            connector: core.connector(),
            connection: None,
            retry_at: Instant::now(),
            backoff: MIN_BACKOFF,
            core,
        }
    }

    /// Serves jobs until every sender is gone.
    pub async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<WriteJob>) {
        while let Some(first) = jobs.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch).await;
        }
    }

    async fn connection(&mut self) -> StoreResult<&Connection> {
        if self
            .connection
            .as_ref()
            .is_some_and(|c| c.client.is_closed())
        {
            self.connection = None;
        }
        if self.connection.is_none() {
            if Instant::now() < self.retry_at {
                return Err(StoreError::Unavailable("reconnecting to PostgreSQL".into()));
            }
            match Connection::open(&self.connector).await {
                Ok(connection) => {
                    if self.backoff > MIN_BACKOFF {
                        tracing::info!("the writer reconnected to PostgreSQL");
                    }
                    self.backoff = MIN_BACKOFF;
                    self.connection = Some(connection);
                }
                Err(error) => {
                    if self.backoff == MIN_BACKOFF {
                        tracing::warn!(%error, "PostgreSQL unreachable: writes fail until it is back");
                    }
                    self.retry_at = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    return Err(error);
                }
            }
        }
        Ok(self.connection.as_ref().expect("just set"))
    }

    async fn commit_batch(&mut self, mut batch: Vec<WriteJob>) {
        let mut isolate = false;
        while !batch.is_empty() {
            let connection = match self.connection().await {
                Ok(connection) => connection,
                Err(error) => {
                    batch.drain(..).for_each(|job| job.fail(&error));
                    return;
                }
            };
            let attempt = tokio::time::timeout(BATCH_TIMEOUT, attempt(connection, &batch, isolate))
                .await
                .unwrap_or_else(|_| {
                    Attempt::Failed(StoreError::Unavailable(
                        "the write transaction timed out".into(),
                    ))
                });
            match attempt {
                Attempt::Committed(rows) => {
                    self.core.wake();
                    for (job, row) in batch.drain(..).zip(rows) {
                        job.answer(Ok(row));
                    }
                }
                Attempt::UnitFailed(unit, error) if unit.len() == 1 => {
                    batch.remove(unit.start).fail(&error)
                }
                // Several writes shared the failed statement: find the culprit one by one.
                Attempt::UnitFailed(..) => isolate = true,
                Attempt::Failed(error) => {
                    // Lost, timed out, or left inside an aborted transaction: start afresh.
                    self.connection = None;
                    tracing::warn!(%error, jobs = batch.len(), "write batch failed");
                    batch.drain(..).for_each(|job| job.fail(&error));
                }
            }
        }
    }
}

/// One transaction over the whole batch, pipelined.
async fn attempt(connection: &Connection, batch: &[WriteJob], isolate: bool) -> Attempt {
    let client = &connection.client;
    if let Err(error) = client.batch_execute("BEGIN").await {
        return Attempt::Failed(store_error(error));
    }
    let units = units(batch, isolate);
    let calls: Vec<Call<'_>> = units
        .iter()
        .map(|unit| connection.call(batch, unit.clone()))
        .collect();
    let mut rows = Vec::with_capacity(batch.len());
    let mut failed = None;
    for (index, result) in join_in_order(calls).await.into_iter().enumerate() {
        match result {
            Ok(unit_rows) => rows.extend(unit_rows),
            Err(error) => {
                // Only the first error is the culprit; the rest say "transaction aborted".
                failed.get_or_insert((index, store_error(error)));
            }
        }
    }
    if let Some((index, error)) = failed {
        let Some(unit) = units
            .get(index)
            .filter(|_| matches!(error, StoreError::Database(_)))
        else {
            return Attempt::Failed(error);
        };
        if let Err(rollback) = client.batch_execute("ROLLBACK").await {
            return Attempt::Failed(store_error(rollback));
        }
        return Attempt::UnitFailed(unit.clone(), error);
    }
    if rows.len() != batch.len() {
        let error = format!("{} rows for {} writes", rows.len(), batch.len());
        return Attempt::Failed(StoreError::Database(error));
    }
    match client.batch_execute("COMMIT").await {
        Ok(()) => Attempt::Committed(rows),
        // Lost during COMMIT: the outcome is unknown, so the writes get `Unavailable` and a
        // retry with an idempotency key settles it; if it did commit, the follower publishes.
        Err(error) => Attempt::Failed(store_error(error)),
    }
}

/// Awaits every future, polling them in order each time. tokio-postgres sends a request when
/// its future is first polled, so this order is the order of the statements in the pipeline.
async fn join_in_order<F: Future + Unpin>(futures: Vec<F>) -> Vec<F::Output> {
    let mut slots: Vec<MaybeDone<F>> = futures.into_iter().map(maybe_done).collect();
    poll_fn(|cx| {
        let mut all_done = true;
        for slot in &mut slots {
            all_done &= Pin::new(slot).poll(cx).is_ready();
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    slots
        .iter_mut()
        .filter_map(|slot| Pin::new(slot).take_output())
        .collect()
}
