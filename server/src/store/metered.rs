//! A store decorator that records write latency and store errors, so that every backend is
//! measured the same way and no handler has to remember to.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use nudge::metrics::Metrics;
use nudge::store::{LogRange, Replay};
use nudge::{EventLog, Retention, StoreError, StoreResult, TopicSet};

use super::{Appended, IdempotencyKey, Store};
use crate::domain::{NewMessage, PageCursor, RoomMessages, RoomName, RoomSummary};

/// Wraps any store with metrics.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Measures `inner` into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn count<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        // A reused idempotency key is the client's mistake, not the store's.
        if let Err(error) = &result {
            if !matches!(error, StoreError::IdempotencyConflict) {
                self.metrics.store_error();
            }
        }
        result
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn append_message(
        &self,
        message: NewMessage,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Appended> {
        let started = Instant::now();
        let result = self.inner.append_message(message, key).await;
        if result.is_ok() {
            self.metrics.observe_write(started.elapsed());
        }
        self.count(result)
    }

    async fn create_room(&self, room: &RoomName) -> StoreResult<bool> {
        let started = Instant::now();
        let result = self.inner.create_room(room).await;
        if result.is_ok() {
            self.metrics.observe_write(started.elapsed());
        }
        self.count(result)
    }

    async fn rooms(&self) -> StoreResult<Vec<RoomSummary>> {
        self.count(self.inner.rooms().await)
    }

    async fn recent(&self, room: &RoomName, count: usize) -> StoreResult<Option<RoomMessages>> {
        self.count(self.inner.recent(room, count).await)
    }

    async fn page(
        &self,
        room: &RoomName,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<RoomMessages>> {
        self.count(self.inner.page(room, cursor, limit).await)
    }
}

#[async_trait]
impl EventLog for MeteredStore {
    async fn replay(&self, after: i64, topics: &TopicSet, max: usize) -> StoreResult<Replay> {
        self.count(self.inner.replay(after, topics, max).await)
    }

    async fn log_range(&self) -> StoreResult<LogRange> {
        self.count(self.inner.log_range().await)
    }

    async fn prune(&self, retention: Retention) -> StoreResult<u64> {
        self.count(self.inner.prune(retention).await)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.count(self.inner.ping().await)
    }

    async fn close(&self) {
        self.inner.close().await
    }
}
