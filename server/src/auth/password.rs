//! Password hashing with argon2 (the crate's default parameters: argon2id, 19 MiB, 2 passes),
//! on a few threads of its own, with a bound on how many hashes run at once.
//!
//! Each hash holds [`HASH_MEMORY_BYTES`] while it runs. Unbounded, a crowd of sign-ins (right
//! or wrong) would hold that much per request at once: sixty from one address took the server
//! past a gigabyte. So a [`Hasher`] runs at most `concurrency` hashes (about one per core: more
//! would not finish sooner), each on one of `concurrency` dedicated threads, and a request
//! waits at most `wait` for its turn before it is answered 503 with `Retry-After`.
//!
//! **The memory bound**: hashing never holds more than `concurrency × 19 MiB`, so the process's
//! peak stays below its memory without sign-ins plus that, plus what the waiting requests' own
//! connections hold (`hash_concurrency` defaults to the number of cores: 38 MiB on two). Each
//! hashing thread allocates its 19 MiB once, on its first hash, and reuses it for every later
//! one (kept while the server runs): the bound does not depend on how the allocator treats
//! large blocks freed and asked for again.

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Memory one argon2 hash holds while it runs, with the default parameters.
pub const HASH_MEMORY_BYTES: usize = argon2::Params::DEFAULT_M_COST as usize * 1024;

/// Seconds a client asked to come back after a 503 waits.
const RETRY_AFTER_SECS: u64 = 1;

type Job = Box<dyn FnOnce() + Send>;

/// Runs argon2 hashes on dedicated threads, at most `concurrency` at once; a cheap handle.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    wait: Duration,
    concurrency: usize,
}

impl Hasher {
    /// `concurrency` threads (0: one per core), each request waiting at most `wait` for one.
    pub fn new(concurrency: usize, wait: Duration) -> std::io::Result<Self> {
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..concurrency {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("nudge-argon2-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for a job, not while running one.
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(mpsc::RecvError) => return, // every Hasher is gone
                    }
                })?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            jobs,
            wait,
            concurrency,
        })
    }

    /// How many hashes may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The argon2 PHC string of `password`, with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `stored`. For an unknown user (`None`) a hash is still
    /// checked, so that the answer takes as long as for a wrong password, and is false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.run(move || {
            let known = stored.is_some();
            let stored = match stored {
                Some(stored) => stored,
                None => unknown_user_hash()?.to_owned(),
            };
            let matches = verify_now(&password, &stored)?;
            Ok(known && matches)
        })
        .await?
    }

    /// Runs `work` on a hashing thread once a permit is free (503 past the wait). The permit
    /// goes with the work, so it is returned when the hash ends even if the request was
    /// dropped meanwhile: the bound counts running hashes, not waiting requests.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.permit().await?;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit: OwnedSemaphorePermit = permit;
            let _ = reply.send(work());
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::Internal("the hashing threads are gone".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Internal("a hashing thread failed".into()))
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let acquire = self.permits.clone().acquire_owned();
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(ApiError::Internal("the hasher is closed".into())),
            Err(_elapsed) => Err(ApiError::Busy {
                code: "busy".into(),
                message: "too many sign-ins at once; try again in a moment".into(),
                retry_after_secs: RETRY_AFTER_SECS,
            }),
        }
    }
}

/// The argon2id PHC string of `password` with a fresh random salt and default parameters.
fn hash_now(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(internal("salt"))?;
    let params = Params::default();
    let mut salt_bytes = [0; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(internal("salt"))?;
    let mut out = [0; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        &params,
        password,
        salt_bytes,
        &mut out,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(internal("parameters"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(internal("output"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `stored`, with `stored`'s algorithm and parameters. The
/// comparison takes the same time wherever the outputs differ (`Output`'s equality).
fn verify_now(password: &str, stored: &str) -> Result<bool, ApiError> {
    let parsed = PasswordHash::new(stored).map_err(internal("a stored hash"))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(internal("algorithm"))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(internal("version"))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(internal("parameters"))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(ApiError::Internal(
            "a stored hash has no salt or output".into(),
        ));
    };
    let mut salt_bytes = [0; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(internal("salt"))?;
    let mut out = vec![0; expected.len()];
    argon2_into(algorithm, version, &params, password, salt_bytes, &mut out)?;
    Ok(Output::new(&out).map_err(internal("output"))? == expected)
}

thread_local! {
    /// This thread's argon2 memory: allocated by its first hash, reused by every later one.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 into `out`, in this thread's [`BLOCKS`]. Not the allocator's fresh 19 MiB per hash:
/// glibc keeps such blocks once freed (past its adaptive mmap threshold) without reusing them
/// reliably, so the process grew by 19 MiB with each hash even one at a time.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), ApiError> {
    let argon2 = Argon2::new(algorithm, version, params.clone());
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let needed = params.block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut blocks[..needed])
            .map_err(internal("hashing"))
    })
}

fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ApiError {
    move |e| ApiError::Internal(format!("argon2, {what}: {e}"))
}

/// A hash to check unknown users against, made once.
fn unknown_user_hash() -> Result<&'static str, ApiError> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(hash) = HASH.get() {
        return Ok(hash);
    }
    let made = hash_now("no user has this password")?;
    Ok(HASH.get_or_init(|| made))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = Hasher::new(1, Duration::from_secs(5)).unwrap();
        let stored = hasher.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(hasher
            .verify("correct horse".into(), Some(stored.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("wrong horse".into(), Some(stored))
            .await
            .unwrap());
        assert!(!hasher
            .verify("no user has this password".into(), None)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn past_the_wait_a_hash_is_refused_as_busy() {
        let hasher = Hasher::new(1, Duration::from_millis(1)).unwrap();
        // The only permit, held as a running hash holds it.
        let held = hasher.permits.clone().acquire_owned().await.unwrap();
        let refused = hasher.hash("correct horse".into()).await;
        assert!(
            matches!(
                refused,
                Err(ApiError::Busy {
                    retry_after_secs: 1,
                    ..
                })
            ),
            "{refused:?}"
        );
        drop(held);
        assert!(hasher.hash("correct horse".into()).await.is_ok());
    }
}
