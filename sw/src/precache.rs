//! Precaching the app shell from the build-time manifest (`self.NUDGE_PRECACHE`).
//!
//! The cache's name is derived from every entry's URL and revision, so a new build with a
//! changed file installs into a new cache while the active SW keeps serving the old one;
//! `activate` then deletes precaches that the manifest no longer names. Runtime caches (API
//! data) are left alone: their contents do not depend on the shell's version.

use std::collections::BTreeSet;

use js_sys::{Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Cache, RequestCache, RequestInit};

use crate::error::{Result, SwError};
use crate::strategy::storable;
use crate::web;

/// The prefix of every precache's name; caches without it are not the precache's business.
pub const PREFIX: &str = "nudge-precache-";

/// One file of the shell: its URL (a path on the SW's origin, or absolute) and content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The URL to fetch and to answer.
    pub url: String,
    /// A hash of the content, so that the cache name changes when the file does.
    pub revision: String,
}

/// The list of files to precache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<Entry>,
}

impl Manifest {
    /// A manifest of these entries.
    pub fn new(entries: Vec<Entry>) -> Self {
        Manifest { entries }
    }

    /// The manifest that the loader imported as `self.NUDGE_PRECACHE`; empty (with a warning)
    /// when it is missing, so the SW still routes the API without a shell.
    pub fn from_global() -> Self {
        let value = Reflect::get(&js_sys::global(), &JsValue::from_str("NUDGE_PRECACHE"))
            .unwrap_or(JsValue::UNDEFINED);
        if value.is_undefined() {
            return Manifest::default();
        }
        match Self::entries_from_js(&value) {
            Some(entries) => Manifest::new(entries),
            None => {
                web::warn("ignoring a malformed NUDGE_PRECACHE");
                Manifest::default()
            }
        }
    }

    /// `[{url, revision}]` read by hand (serde's machinery would cost the wasm more than this).
    fn entries_from_js(value: &JsValue) -> Option<Vec<Entry>> {
        let field = |entry: &JsValue, name: &str| {
            Reflect::get(entry, &JsValue::from_str(name))
                .ok()?
                .as_string()
        };
        let array: &js_sys::Array = value.dyn_ref()?;
        array
            .iter()
            .map(|entry| {
                Some(Entry {
                    url: field(&entry, "url")?,
                    revision: field(&entry, "revision")?,
                })
            })
            .collect()
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The cache this manifest's files live in: the prefix and a hash of every URL and
    /// revision (FNV-1a: tiny, stable across builds, and collisions only cost a refetch).
    pub fn cache_name(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for entry in &self.entries {
            for byte in entry
                .url
                .bytes()
                .chain([0])
                .chain(entry.revision.bytes())
                .chain([0])
            {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{PREFIX}{hash:016x}")
    }

    /// The same-origin paths the manifest names, for the router.
    pub fn paths(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .filter(|entry| entry.url.starts_with('/'))
            .map(|entry| entry.url.clone())
            .collect()
    }

    /// The caches among `names` that are precaches of another manifest.
    pub fn stale_caches<'n>(&self, names: &'n [String]) -> Vec<&'n str> {
        let current = self.cache_name();
        names
            .iter()
            .filter(|name| name.starts_with(PREFIX) && **name != current)
            .map(String::as_str)
            .collect()
    }
}

/// How many shell files are fetched at once: as many as Chromium opens connections to one
/// HTTP/1.1 host, so a long manifest neither waits on one file after another (the first visit
/// pays for every round trip and cache write in turn) nor floods the browser.
const LANES: usize = 6;

/// Fills the manifest's cache, up to [`LANES`] files at a time. A file already there is kept
/// (the cache name pins its revision); the others are fetched past the HTTP cache, which could
/// hold an older revision. Any failure fails the install, so a SW never activates with half a
/// shell (files stored before it stay: their revision is in the cache's name).
pub async fn install(manifest: &Manifest) -> Result<()> {
    let cache = web::open_cache(&manifest.cache_name()).await?;
    let entries = manifest.entries();
    let lanes: js_sys::Array = (0..LANES.min(entries.len()))
        .map(|lane| {
            let cache = cache.clone();
            let urls: Vec<String> = entries
                .iter()
                .skip(lane)
                .step_by(LANES)
                .map(|entry| web::resolve(&entry.url))
                .collect();
            web::promise(async move {
                for url in urls {
                    install_one(&cache, &url).await?;
                }
                Ok(JsValue::UNDEFINED)
            })
        })
        .collect();
    web::wait(Promise::all(&lanes)).await?;
    Ok(())
}

/// Stores one file of the shell unless the cache has it.
async fn install_one(cache: &Cache, url: &str) -> Result<()> {
    if web::cache_match(cache, url).await?.is_some() {
        return Ok(());
    }
    let init = RequestInit::new();
    init.set_cache(RequestCache::Reload);
    let request = web_sys::Request::new_with_str_and_init(url, &init)?;
    let response = web::fetch(&request).await?;
    if let Err(refusal) = storable("GET", &response) {
        return Err(SwError::new(format!(
            "cannot precache {url}: {refusal:?} (status {})",
            response.status()
        )));
    }
    web::cache_put(cache, url, &response).await?;
    Ok(())
}

/// Deletes the precaches that this manifest does not name; returns their names.
pub async fn activate(manifest: &Manifest) -> Result<Vec<String>> {
    let names = web::cache_names().await?;
    let mut deleted = Vec::new();
    for name in manifest.stale_caches(&names) {
        web::delete_cache(name).await?;
        deleted.push(name.to_owned());
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(revision: &str) -> Manifest {
        Manifest::new(vec![
            Entry {
                url: "/".into(),
                revision: "a1".into(),
            },
            Entry {
                url: "/app.js".into(),
                revision: revision.into(),
            },
        ])
    }

    #[test]
    fn the_cache_name_follows_every_revision() {
        assert_eq!(manifest("b1").cache_name(), manifest("b1").cache_name());
        assert_ne!(manifest("b1").cache_name(), manifest("b2").cache_name());
        assert!(manifest("b1").cache_name().starts_with(PREFIX));
    }

    #[test]
    fn only_other_precaches_are_stale() {
        let current = manifest("b1");
        let names = vec![
            current.cache_name(),
            manifest("b0").cache_name(),
            "nudge-api-v1".to_owned(),
            "someone-else".to_owned(),
        ];
        assert_eq!(current.stale_caches(&names), vec![names[1].as_str()]);
    }

    #[test]
    fn paths_are_the_same_origin_urls() {
        let mut with_foreign = manifest("b1");
        with_foreign.entries.push(Entry {
            url: "https://cdn.example/x.js".into(),
            revision: "c".into(),
        });
        let paths: Vec<_> = with_foreign.paths().into_iter().collect();
        assert_eq!(paths, vec!["/".to_owned(), "/app.js".to_owned()]);
    }
}
