//! Expiration, per cache: a maximum number of entries, a maximum age and a byte budget, the
//! oldest entries going first (Workbox's expiration plugin is the model). It runs after every
//! put, and a put that hits the storage quota purges the oldest half of its cache and retries
//! once.
//!
//! The bookkeeping lives in each entry's own key: the SW stores a response under a request that
//! carries [`STORED_AT`] (milliseconds since the epoch) and [`SIZE`] (body bytes). Why there
//! rather than in IndexedDB or a metadata entry: the numbers are written by the same atomic
//! `Cache.put` as the entry, so they cannot drift from it (a crash between two writes, a user
//! who clears one store but not the other); one `cache.keys()` lists every entry's age and size
//! without opening a response; and the stored response stays exactly what the server sent. A
//! key without them (stored by older code, or by hand) counts as the oldest and as empty.
//!
//! Age bounds storage, not freshness: freshness is the server's `no-cache` and the nudges, and
//! offline an old copy is still better than none, so expired entries are removed at the next
//! put rather than refused at read time.

use web_sys::{Cache, Request, Response};

use crate::error::Result;
use crate::strategy::LocalBoxFuture;
use crate::web;

/// The key header holding when the entry was stored, in milliseconds since the epoch.
pub const STORED_AT: &str = "X-Nudge-Stored-At";

/// The key header holding the size of the entry's body, in bytes.
pub const SIZE: &str = "X-Nudge-Size";

/// The limits of one cache; `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiration {
    /// At most this many entries.
    pub max_entries: Option<usize>,
    /// Entries stored longer ago than this many milliseconds go.
    pub max_age_ms: Option<u64>,
    /// At most this many body bytes in all.
    pub max_bytes: Option<u64>,
}

/// What expiration knows about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// When it was stored, in milliseconds since the epoch.
    pub stored_at: u64,
    /// Its body's size in bytes.
    pub size: u64,
}

impl Expiration {
    /// No limits at all (the precache, tests).
    pub const NONE: Expiration = Expiration {
        max_entries: None,
        max_age_ms: None,
        max_bytes: None,
    };

    /// True when nothing would ever expire, so the bookkeeping can be skipped.
    pub fn is_unbounded(&self) -> bool {
        *self == Self::NONE
    }

    /// The positions, in `entries`, of those that must go at time `now`. `entries` come in
    /// insertion order, which breaks ties between entries stored in the same millisecond.
    pub fn victims(&self, entries: &[Meta], now: u64) -> Vec<usize> {
        let mut count = entries.len();
        let mut bytes: u64 = entries.iter().map(|entry| entry.size).sum();
        let mut victims = Vec::new();
        for index in oldest_first(entries) {
            let entry = entries[index];
            let too_old = self
                .max_age_ms
                .is_some_and(|age| now.saturating_sub(entry.stored_at) > age);
            let too_many = self.max_entries.is_some_and(|max| count > max);
            let too_big = self.max_bytes.is_some_and(|max| bytes > max);
            // Oldest first, so once an entry may stay, every younger one may too.
            if !(too_old || too_many || too_big) {
                break;
            }
            victims.push(index);
            count -= 1;
            bytes -= entry.size;
        }
        victims
    }
}

/// The oldest half of the entries (at least one when there are any): what a quota error costs.
pub fn oldest_half(entries: &[Meta]) -> Vec<usize> {
    let mut order = oldest_first(entries);
    order.truncate(entries.len().div_ceil(2));
    order
}

fn oldest_first(entries: &[Meta]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // A stable sort: equal timestamps keep insertion order.
    order.sort_by_key(|&index| entries[index].stored_at);
    order
}

/// The bookkeeping of a stored key.
pub fn meta(key: &Request) -> Meta {
    let headers = key.headers();
    let number = |name: &str| {
        let value = headers.get(name).ok().flatten();
        value.and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    Meta {
        stored_at: number(STORED_AT),
        size: number(SIZE),
    }
}

/// Deletes the entries of `cache` that `policy` says must go; returns how many went.
pub async fn expire(cache: &Cache, policy: &Expiration) -> Result<usize> {
    if policy.is_unbounded() {
        return Ok(0);
    }
    let keys = web::cache_keys(cache).await?;
    let metas: Vec<Meta> = keys.iter().map(meta).collect();
    let victims = policy.victims(&metas, web::now_ms() as u64);
    delete(cache, &keys, &victims).await
}

/// Deletes the oldest half of `cache`, to make room after a quota error.
pub async fn purge_oldest(cache: &Cache) -> Result<usize> {
    let keys = web::cache_keys(cache).await?;
    let metas: Vec<Meta> = keys.iter().map(meta).collect();
    delete(cache, &keys, &oldest_half(&metas)).await
}

async fn delete(cache: &Cache, keys: &[Request], victims: &[usize]) -> Result<usize> {
    for &index in victims {
        web::cache_delete(cache, &keys[index]).await?;
    }
    Ok(victims.len())
}

/// How an entry is written: the Cache API's `put`, or a stand-in in the tests (a real quota
/// error needs a full disk).
pub type PutFn = fn(&Cache, &Request, &Response) -> LocalBoxFuture<Result<()>>;

fn cache_put(cache: &Cache, key: &Request, response: &Response) -> LocalBoxFuture<Result<()>> {
    // Handle copies (`Clone::clone`), not `Request.clone()`/`Response.clone()` tees.
    let (cache, key, response) = (cache.clone(), Clone::clone(key), Clone::clone(response));
    Box::pin(async move { web::cache_put_request(&cache, &key, &response).await })
}

/// Stores `response` under `key`, then applies `policy`. `Ok(false)` when the quota still
/// refused it after a purge: the caller goes on without a stored copy.
pub async fn put(
    cache: &Cache,
    key: &Request,
    response: &Response,
    policy: &Expiration,
) -> Result<bool> {
    put_with(cache, key, response, policy, cache_put).await
}

/// [`put`] through `put_fn`.
pub async fn put_with(
    cache: &Cache,
    key: &Request,
    response: &Response,
    policy: &Expiration,
    put_fn: PutFn,
) -> Result<bool> {
    // A failed put has already consumed the body it was given: keep one back for the retry.
    let spare = response.clone()?;
    match put_fn(cache, key, response).await {
        Ok(()) => {}
        Err(error) if error.name == "QuotaExceededError" => {
            let purged = purge_oldest(cache).await?;
            web::warn(&format!("over quota: purged {purged} oldest entries"));
            if let Err(error) = put_fn(cache, key, &spare).await {
                web::warn(&format!("still not stored after the purge: {error}"));
                return Ok(false);
            }
        }
        Err(error) => return Err(error),
    }
    expire(cache, policy).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stored_at: u64, size: u64) -> Meta {
        Meta { stored_at, size }
    }

    #[test]
    fn the_oldest_go_first_when_there_are_too_many() {
        let policy = Expiration {
            max_entries: Some(2),
            ..Expiration::NONE
        };
        let entries = [entry(30, 1), entry(10, 1), entry(20, 1), entry(40, 1)];
        assert_eq!(policy.victims(&entries, 50), vec![1, 2]);
        assert!(policy.victims(&entries[..2], 50).is_empty());
    }

    #[test]
    fn ties_keep_insertion_order() {
        let policy = Expiration {
            max_entries: Some(1),
            ..Expiration::NONE
        };
        assert_eq!(policy.victims(&[entry(5, 0); 3], 5), vec![0, 1]);
    }

    #[test]
    fn entries_older_than_the_max_age_go() {
        let policy = Expiration {
            max_age_ms: Some(100),
            ..Expiration::NONE
        };
        let entries = [entry(1_000, 0), entry(850, 0), entry(950, 0), entry(0, 0)];
        assert_eq!(policy.victims(&entries, 1_000), vec![3, 1]);
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_until_it_fits() {
        let policy = Expiration {
            max_bytes: Some(100),
            ..Expiration::NONE
        };
        let entries = [entry(1, 60), entry(2, 30), entry(3, 40)];
        assert_eq!(policy.victims(&entries, 3), vec![0]);
        // One entry bigger than the whole budget does not stay either.
        assert_eq!(
            policy.victims(&[entry(1, 10), entry(2, 200)], 3),
            vec![0, 1]
        );
    }

    #[test]
    fn a_quota_purge_takes_the_oldest_half() {
        let entries = [entry(3, 0), entry(1, 0), entry(2, 0)];
        assert_eq!(oldest_half(&entries), vec![1, 2]);
        assert_eq!(oldest_half(&entries[..1]), vec![0]);
        assert!(oldest_half(&[]).is_empty());
    }
}
