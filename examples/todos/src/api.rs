//! The todo list's API: one list resource, and writes that log a change to it in their own
//! transaction, once per `Idempotency-Key`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use nudge::error::{method_not_allowed, not_found, path_error};
use nudge::idempotency::{write_once, Fingerprint, IdempotencyKey, StoredAnswer};
use nudge::store::sqlite::{SqliteStore, WriteTx};
use nudge::{http_cache, ApiError, Migrations, Nudge, StoreError};
use serde::{Deserialize, Serialize};

/// The one topic, and the one URL every write changes.
const TOPIC: &str = "todos";
const LIST: &str = "/api/todos";
const MAX_TEXT_CHARS: usize = 200;
const MAX_BODY_BYTES: usize = 16 * 1024;

/// `version` is the id of the event that last changed the row: the list's largest is both its
/// ETag and the `last_event_id` a page that shows it opens the stream at.
pub const MIGRATIONS: Migrations = Migrations {
    component: "todos",
    sqlite: &[
        "CREATE TABLE todos (id INTEGER PRIMARY KEY, text TEXT NOT NULL, \
               done INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL)",
    ],
    postgres: &[
        "CREATE TABLE todos (id bigserial PRIMARY KEY, text text NOT NULL, \
                 done boolean NOT NULL DEFAULT false, version bigint NOT NULL)",
    ],
};

#[derive(Serialize)]
struct Todo {
    id: i64,
    text: String,
    done: bool,
}

#[derive(Serialize)]
struct TodoList {
    todos: Vec<Todo>,
    last_event_id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTodo {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    text: Option<String>,
    done: Option<bool>,
}

/// `GET`/`POST /api/todos`, `PUT /api/todos/{id}`; JSON 404 for the rest of `/api/`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .service(
            web::scope("/api")
                .service(
                    web::resource("/todos")
                        .route(web::get().to(list))
                        .route(web::post().to(add))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/todos/{id}")
                        .route(web::put().to(edit))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found)),
        );
}

async fn list(req: HttpRequest, nudge: web::Data<Nudge>) -> Result<HttpResponse, ApiError> {
    let list = store(&nudge)?
        .read(|tx| {
            let todos = tx
                .prepare_cached("SELECT id, text, done FROM todos ORDER BY id")?
                .query_map([], todo_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let last_event_id =
                tx.query_row("SELECT coalesce(max(version), 0) FROM todos", [], |r| {
                    r.get(0)
                })?;
            Ok(TodoList {
                todos,
                last_event_id,
            })
        })
        .await?;
    Ok(http_cache::cacheable_json(&req, list.last_event_id, &list))
}

async fn add(
    req: HttpRequest,
    body: web::Bytes,
    nudge: web::Data<Nudge>,
) -> Result<HttpResponse, ApiError> {
    let new: NewTodo = parse(&body)?;
    let text = valid_text(&new.text)?;
    write(&req, &body, &nudge, move |tx| {
        tx.conn()
            .execute("INSERT INTO todos (text, version) VALUES (?1, 0)", [&text])
            .map_err(StoreError::from)?;
        let id = tx.conn().last_insert_rowid();
        let todo = changed(tx, id)?;
        let headers = [("Location", format!("{LIST}/{id}")), no_store()];
        Ok(StoredAnswer::json(StatusCode::CREATED, &headers, &todo)?)
    })
    .await
}

async fn edit(
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
    nudge: web::Data<Nudge>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let edit: Edit = parse(&body)?;
    if edit.text.is_none() && edit.done.is_none() {
        return Err(ApiError::invalid(
            "empty_edit",
            "give `text`, `done` or both",
        ));
    }
    let text = edit.text.as_deref().map(valid_text).transpose()?;
    write(&req, &body, &nudge, move |tx| {
        let found = tx
            .conn()
            .execute(
                "UPDATE todos SET text = coalesce(?1, text), done = coalesce(?2, done) \
                 WHERE id = ?3",
                rusqlite::params![text, edit.done, id],
            )
            .map_err(StoreError::from)?;
        if found == 0 {
            return Err(ApiError::not_found("no_such_todo", "no todo has this id"));
        }
        let todo = changed(tx, id)?;
        Ok(StoredAnswer::json(StatusCode::OK, &[no_store()], &todo)?)
    })
    .await
}

/// Runs `apply` once per `Idempotency-Key` (a retry gets the first answer again), in one
/// transaction with the change it logs.
async fn write(
    req: &HttpRequest,
    body: &[u8],
    nudge: &Nudge,
    apply: impl FnOnce(&mut WriteTx<'_>) -> Result<StoredAnswer, ApiError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let key = IdempotencyKey::from_request(req)?;
    let fingerprint = Fingerprint::of(req, body);
    let (answer, replayed) = write_once(store(nudge)?, key, fingerprint, apply).await?;
    Ok(answer.into_response(replayed))
}

/// Logs that the list changed and stamps row `id` with the event: the list's new version.
fn changed(tx: &mut WriteTx<'_>, id: i64) -> Result<Todo, StoreError> {
    let event = tx.changed(TOPIC, LIST)?;
    let conn = tx.conn();
    conn.execute("UPDATE todos SET version = ?1 WHERE id = ?2", [event, id])?;
    Ok(conn.query_row(
        "SELECT id, text, done FROM todos WHERE id = ?1",
        [id],
        todo_from_row,
    )?)
}

/// A write's answer is not a copy of anything to keep.
fn no_store() -> (&'static str, String) {
    ("Cache-Control", http_cache::NEVER_STORE.to_owned())
}

fn todo_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Todo> {
    Ok(Todo {
        id: row.get(0)?,
        text: row.get(1)?,
        done: row.get(2)?,
    })
}

fn store(nudge: &Nudge) -> Result<&SqliteStore, ApiError> {
    nudge
        .sqlite()
        .map(|store| &**store)
        .ok_or_else(|| ApiError::Internal("the todos example runs on SQLite only".into()))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("invalid_json", &format!("the body is not valid: {e}")))
}

fn valid_text(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty()
        || text.chars().count() > MAX_TEXT_CHARS
        || text.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "invalid_text",
            &format!("`text` must be 1-{MAX_TEXT_CHARS} characters, without control characters"),
        ));
    }
    Ok(text.to_owned())
}
