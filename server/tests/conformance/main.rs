//! The store conformance suite: written once, run against every backend, so that every store
//! is held to the same behaviour. A backend joins by adding one `conformance!` line with a
//! function that opens a fresh, empty store publishing into the given hub.

mod accounts;
mod backends;
mod cases;
mod members;
#[path = "../common/pg.rs"]
mod pg;
#[path = "../common/wait.rs"]
mod wait;

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
    /// Where the store is, for the few cases that must look beneath the traits.
    pub backend: Backend,
    _keep: Box<dyn std::any::Any + Send>,
}

impl Fixture {
    /// The rows of `table`, counted beside the store on a connection of the test's own.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match &self.backend {
            Backend::Sqlite(dir) => rusqlite::Connection::open(dir.join("nudge.sqlite3"))
                .unwrap()
                .query_row(&sql, [], |row| row.get(0))
                .unwrap(),
            Backend::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let connection = tokio::spawn(connection);
                let count = client.query_one(&sql, &[]).await.unwrap().get(0);
                drop(client);
                let _ = connection.await;
                count
            }
        }
    }
}

async fn open(backend: Backend, keep: Box<dyn std::any::Any + Send>) -> Fixture {
    let opened = store::open(backend.clone(), settings_with_buffer(1024))
        .await
        .unwrap();
    Fixture {
        hub: opened.nudge.hub().clone(),
        store: opened.store,
        accounts: opened.accounts,
        access: opened.access,
        backend,
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

/// One `#[tokio::test]` per case, per backend (cases from `cases` unless a module is named;
/// `every backend in` a module runs its cases on each backend).
macro_rules! conformance {
    (every backend in $module:ident: $($case:ident),* $(,)?) => {
        conformance!(sqlite in $module: $($case),*);
        conformance!(postgres in $module: $($case),*);
    };
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
    conformance!(every backend in accounts:
        names_are_one_account_by_key,
        registering_signs_the_user_in,
        a_taken_name_registers_nothing,
        sessions_start_and_end_one_at_a_time,
        a_session_needs_a_registered_user,
        a_session_past_its_expiry_is_not_live,
        retention_removes_expired_sessions_and_keeps_live_ones,
    );
}

mod members_on {
    conformance!(every backend in members:
        a_private_room_is_for_its_members_from_its_creation,
        creating_a_private_room_again_is_idempotent_for_its_member_only,
        a_private_room_needs_a_registered_creator,
        members_are_added_and_removed_and_the_view_follows,
        members_are_found_by_key,
        adding_or_removing_again_changes_nothing,
        member_changes_are_refused_without_a_private_room_a_member_or_a_user,
    );
}
