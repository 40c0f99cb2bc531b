//! The store conformance suite: written once, run against every backend, so that every store
//! is held to the same behaviour. A backend joins by adding one `conformance!` line with a
//! function that opens a fresh, empty store publishing into the given hub.

mod accounts;
mod backends;
mod cases;
#[path = "../common/pg.rs"]
mod pg;

use std::sync::Arc;

use watercooler::access::AccessView;
use watercooler::hub::Hub;
use watercooler::store::accounts::Accounts;
use watercooler::store::{self, settings_with_buffer, Backend, Store};

/// A fresh store, the hub it publishes into, and whatever must live as long as the store.
pub(crate) struct Fixture {
    pub store: Arc<dyn Store>,
    pub accounts: Arc<dyn Accounts>,
    pub hub: Hub,
    pub access: AccessView,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn open(backend: Backend, keep: Box<dyn std::any::Any + Send>) -> Fixture {
    let opened = store::open(backend, settings_with_buffer(1024))
        .await
        .unwrap();
    Fixture {
        hub: opened.nudge.hub().clone(),
        store: opened.store,
        accounts: opened.accounts,
        access: opened.access,
        _keep: keep,
    }
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    open(Backend::Sqlite(dir.path().to_owned()), Box::new(dir)).await
}

/// A fresh database in the test binary's throwaway PostgreSQL cluster.
async fn postgres() -> Fixture {
    let url = pg::Cluster::shared().fresh_database();
    open(Backend::Postgres(url), Box::new(())).await
}

/// One `#[tokio::test]` per case, per backend (cases from `cases` unless a module is named).
macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?) => {
        conformance!($backend in cases: $($case),*);
    };
    ($backend:ident in $module:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::$module::$case(crate::$backend().await).await;
                }
            )*
        }
    };
}

conformance!(sqlite:
    general_exists_from_the_start,
    append_stores_the_message_and_its_event,
    recent_is_the_newest_oldest_first,
    pages_cut_before_and_after,
    missing_rooms_are_none,
    create_room_reports_whether_it_was_new,
    events_after_filters_by_topic_in_id_order,
    events_are_published_after_commit_in_commit_order,
    concurrent_appends_get_distinct_increasing_ids,
    idempotent_retry_stores_once,
    idempotency_key_reuse_is_a_conflict,
    retention_by_count_moves_the_resumable_range,
    retention_by_age_removes_old_events,
    closed_store_refuses_writes,
    replay_reads_only_the_subscribed_topics_in_id_order,
    replay_past_its_cap_is_incomplete,
    resuming_at_the_retention_boundary,
);

conformance!(postgres:
    general_exists_from_the_start,
    append_stores_the_message_and_its_event,
    recent_is_the_newest_oldest_first,
    pages_cut_before_and_after,
    missing_rooms_are_none,
    create_room_reports_whether_it_was_new,
    events_after_filters_by_topic_in_id_order,
    events_are_published_after_commit_in_commit_order,
    concurrent_appends_get_distinct_increasing_ids,
    idempotent_retry_stores_once,
    idempotency_key_reuse_is_a_conflict,
    retention_by_count_moves_the_resumable_range,
    retention_by_age_removes_old_events,
    closed_store_refuses_writes,
    replay_reads_only_the_subscribed_topics_in_id_order,
    replay_past_its_cap_is_incomplete,
    resuming_at_the_retention_boundary,
);

mod accounts_on {
    conformance!(sqlite in accounts: names_are_one_account_by_key, members_are_found_by_key);
    conformance!(postgres in accounts: names_are_one_account_by_key, members_are_found_by_key);
}
