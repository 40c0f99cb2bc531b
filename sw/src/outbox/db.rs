//! The outbox's IndexedDB database, through web-sys's bindings: the queued writes in arrival
//! order (an auto-increment `id`) and one small `meta` store for the current principal.
//!
//! Each operation is one request in a transaction of its own, and settles when the
//! transaction completes (not when the request succeeds): a write answered 202 is on disk.

use std::cell::RefCell;

use js_sys::{Array, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbDatabase, IdbObjectStore, IdbObjectStoreParameters, IdbRequest};
use web_sys::{IdbTransaction, IdbTransactionMode};

use crate::error::{Result, SwError};
use crate::web;

/// The database's name (the pages and tests may read it directly).
pub const DB_NAME: &str = "nudge-outbox";
/// The store of queued writes, keyed by `id`, an auto-incremented number.
pub const ENTRIES: &str = "entries";
const META: &str = "meta";

thread_local! {
    static DB: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

/// The open database, opened (and created) once per SW start.
async fn db() -> Result<IdbDatabase> {
    if let Some(db) = DB.with(|db| db.borrow().clone()) {
        return Ok(db);
    }
    let factory = web::scope()
        .indexed_db()?
        .ok_or_else(|| SwError::new("no IndexedDB"))?;
    let request = factory.open_with_u32(DB_NAME, 1)?;
    let opening = request.clone();
    let upgrade = Closure::once_into_js(move || {
        let Ok(db) = opening.result() else { return };
        let db: IdbDatabase = db.unchecked_into();
        let params = IdbObjectStoreParameters::new();
        params.set_key_path(&"id".into());
        params.set_auto_increment(true);
        let _ = db.create_object_store_with_optional_parameters(ENTRIES, &params);
        let _ = db.create_object_store(META);
    });
    request.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let db: IdbDatabase = web::wait(settled(&request)).await?.unchecked_into();
    DB.with(|slot| *slot.borrow_mut() = Some(db.clone()));
    Ok(db)
}

/// A request's result once it succeeded (for the open request, which has no transaction).
fn settled(request: &IdbRequest) -> Promise {
    settle(
        request,
        "success",
        ["onsuccess", "onerror"],
        request,
        request,
    )
}

/// Runs `work` on `store` in a transaction of its own; resolves with the request's result once
/// the transaction has completed.
async fn run(
    store: &str,
    mode: IdbTransactionMode,
    work: impl FnOnce(&IdbObjectStore) -> std::result::Result<IdbRequest, JsValue>,
) -> Result<JsValue> {
    let tx: IdbTransaction = db().await?.transaction_with_str_and_mode(store, mode)?;
    let request = work(&tx.object_store(store)?)?;
    // `abort` follows every error, so `complete` and `abort` are the two outcomes.
    let handlers = ["oncomplete", "onabort"];
    web::wait(settle(&tx, "complete", handlers, &request, &tx)).await
}

/// A promise of `source.result` once `target` fires `ok`, rejected with `failed.error` once it
/// fires the other event of `handlers` (both set): exactly one of the two fires, once. One
/// closure for every IndexedDB wait.
fn settle(
    target: &JsValue,
    ok: &str,
    handlers: [&str; 2],
    source: &JsValue,
    failed: &JsValue,
) -> Promise {
    Promise::new(&mut |resolve, reject| {
        let (ok_type, source, failed) = (ok.to_owned(), source.clone(), failed.clone());
        let done = Closure::once_into_js(move |event: web_sys::Event| {
            let (call, from, field) = match event.type_() == ok_type {
                true => (&resolve, &source, "result"),
                false => (&reject, &failed, "error"),
            };
            let value = js_sys::Reflect::get(from, &field.into()).unwrap_or_default();
            let _ = call.call1(&JsValue::NULL, &value);
        });
        for handler in handlers {
            let _ = js_sys::Reflect::set(target, &handler.into(), &done);
        }
    })
}

/// Stores a new entry; its `id`, which orders the queue.
pub async fn add(entry: &Object) -> Result<f64> {
    let id = run(ENTRIES, IdbTransactionMode::Readwrite, |s| s.add(entry)).await?;
    id.as_f64()
        .ok_or_else(|| SwError::new("no id for the queued entry"))
}

/// Every entry, oldest first.
pub async fn all() -> Result<Vec<Object>> {
    let rows = run(ENTRIES, IdbTransactionMode::Readonly, |s| s.get_all()).await?;
    Ok(rows
        .dyn_into::<Array>()
        .map(|rows| rows.iter().map(JsCast::unchecked_into).collect())
        .unwrap_or_default())
}

/// Removes the entry `id`.
pub async fn delete(id: f64) -> Result<()> {
    run(ENTRIES, IdbTransactionMode::Readwrite, |s| {
        s.delete(&id.into())
    })
    .await?;
    Ok(())
}

/// The value stored under `key` in the meta store (`undefined` when none).
pub async fn meta(key: &str) -> Result<JsValue> {
    run(META, IdbTransactionMode::Readonly, |s| s.get(&key.into())).await
}

/// Stores `value` under `key` in the meta store.
pub async fn set_meta(key: &str, value: &JsValue) -> Result<()> {
    run(META, IdbTransactionMode::Readwrite, |s| {
        s.put_with_key(value, &key.into())
    })
    .await?;
    Ok(())
}
