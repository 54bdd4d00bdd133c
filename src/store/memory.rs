//! [`MemoryStore`]: the embedded store for one process and for development.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_util::future::{ready, FutureExt};

use super::{SessionStore, StoreError, StoreFuture};
use crate::encoding::now_ms;
use crate::record::SessionRecord;

const SHARDS: usize = 16;
const DAY: Duration = Duration::from_secs(86_400);

/// One stored session: its JSON (a copy taken at `set`, so later changes to a request's
/// session never leak in without a save) and when it expires (atomic, so that `touch`
/// needs only a read lock).
struct Entry {
    json: Box<str>,
    expires_ms: AtomicI64,
}

impl Entry {
    fn live(&self, now: i64) -> bool {
        self.expires_ms.load(Ordering::Relaxed) > now
    }
}

type Shard = RwLock<HashMap<Box<str>, Entry>>;

struct Inner {
    shards: Box<[Shard]>,
    default_ttl_ms: i64,
    sweep_interval: Option<Duration>,
    sweeping: AtomicBool,
}

/// An in-memory [`SessionStore`]: concurrent (sharded locks), cheap to clone (clones
/// share one map), and unlike express-session's it does not leak: expired sessions are
/// invisible to `get` and a background task evicts them.
///
/// The eviction task starts with the first store call made inside a Tokio runtime (the
/// one actix-web runs on) and ends when the last handle is dropped.
///
/// ```
/// use std::time::Duration;
/// use actix_express_session::MemoryStore;
///
/// let store = MemoryStore::builder().sweep_interval(Duration::from_secs(30)).build();
/// let shared = store.clone(); // the same sessions
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entry_count())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Configures a [`MemoryStore`].
#[derive(Debug, Clone)]
#[must_use = "call .build() to get the store"]
pub struct MemoryStoreBuilder {
    sweep_interval: Option<Duration>,
    default_ttl: Duration,
}

impl MemoryStoreBuilder {
    /// How often expired sessions are evicted; `Duration::ZERO` turns the background
    /// task off (expired sessions are then removed only when read). Default 60 s.
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = (!every.is_zero()).then_some(every);
        self
    }

    /// How long a session whose cookie has no expiry (a browser-session cookie) is
    /// kept. Default one day, as connect-redis.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        let shards = (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect();
        let inner = Inner {
            shards,
            default_ttl_ms: i64::try_from(self.default_ttl.as_millis()).unwrap_or(i64::MAX),
            sweep_interval: self.sweep_interval,
            sweeping: AtomicBool::new(false),
        };
        MemoryStore {
            inner: Arc::new(inner),
        }
    }
}

impl MemoryStore {
    /// A store with the default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for the sweep interval and default TTL.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            sweep_interval: Some(Duration::from_secs(60)),
            default_ttl: DAY,
        }
    }

    /// Entries held right now, including expired ones not yet evicted (what the memory
    /// actually holds, unlike [`SessionStore::len`]).
    pub fn entry_count(&self) -> usize {
        self.inner.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Removes every expired entry now (the background task does this on its interval).
    pub fn evict_expired(&self) {
        self.inner.evict_expired(now_ms());
    }

    /// The shard for `sid`, picked with FNV-1a: cheap, and it needs no resistance to
    /// crafted IDs (the worst case is one busy shard; each shard's map hashes with
    /// SipHash).
    fn shard(&self, sid: &str) -> &Shard {
        let fnv = sid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        &self.inner.shards[(fnv % SHARDS as u64) as usize]
    }

    fn expiry_of(&self, rec: &SessionRecord, now: i64) -> i64 {
        rec.cookie
            .expires_unix_ms()
            .unwrap_or_else(|| now.saturating_add(self.inner.default_ttl_ms))
    }

    /// Starts the eviction task once, from inside a Tokio runtime.
    fn ensure_sweeper(&self) {
        let Some(every) = self.inner.sweep_interval else {
            return;
        };
        if self.inner.sweeping.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(sweep(Arc::downgrade(&self.inner), every));
    }

    fn get_now(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let now = now_ms();
        let shard = self.shard(sid);
        let found = read(shard).get(sid).map(|e| {
            e.live(now)
                .then(|| SessionRecord::from_json(e.json.as_bytes()))
        });
        match found {
            None => Ok(None),
            Some(None) => {
                write(shard).remove(sid);
                Ok(None)
            }
            Some(Some(parsed)) => parsed.map(Some).map_err(StoreError::Serialization),
        }
    }

    fn set_now(&self, sid: &str, rec: &SessionRecord) {
        let entry = Entry {
            json: rec.to_json().into_boxed_str(),
            expires_ms: AtomicI64::new(self.expiry_of(rec, now_ms())),
        };
        write(self.shard(sid)).insert(sid.into(), entry);
    }

    fn touch_now(&self, sid: &str, rec: &SessionRecord) {
        let now = now_ms();
        if let Some(entry) = read(self.shard(sid)).get(sid).filter(|e| e.live(now)) {
            entry
                .expires_ms
                .store(self.expiry_of(rec, now), Ordering::Relaxed);
        }
    }

    fn all_now(&self) -> Result<HashMap<String, SessionRecord>, StoreError> {
        let now = now_ms();
        let mut out = HashMap::new();
        for shard in self.inner.shards.iter() {
            for (sid, e) in read(shard).iter().filter(|(_, e)| e.live(now)) {
                let rec = SessionRecord::from_json(e.json.as_bytes())
                    .map_err(StoreError::Serialization)?;
                out.insert(sid.to_string(), rec);
            }
        }
        Ok(out)
    }

    fn len_now(&self) -> usize {
        let now = now_ms();
        let live = |s: &Shard| read(s).values().filter(|e| e.live(now)).count();
        self.inner.shards.iter().map(live).sum()
    }
}

impl Inner {
    fn evict_expired(&self, now: i64) {
        for shard in self.shards.iter() {
            write(shard).retain(|_, e| e.live(now));
        }
    }
}

/// Clears the `sweeping` flag however the task ends (store dropped, runtime shut down),
/// so that a later call can start a new one.
struct SweepGuard(Weak<Inner>);

impl Drop for SweepGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.sweeping.store(false, Ordering::Release);
        }
    }
}

async fn sweep(store: Weak<Inner>, every: Duration) {
    let _guard = SweepGuard(store.clone());
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = store.upgrade() else { return };
        inner.evict_expired(now_ms());
    }
}

/// A poisoned lock only means another thread panicked mid-operation; every operation
/// leaves the map consistent, so the data is still good.
fn read(shard: &Shard) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Entry>> {
    shard
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(shard: &Shard) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Entry>> {
    shard
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.ensure_sweeper();
        ready(self.get_now(sid)).boxed()
    }

    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.ensure_sweeper();
        self.set_now(sid, rec);
        ready(Ok(())).boxed()
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        write(self.shard(sid)).remove(sid);
        ready(Ok(())).boxed()
    }

    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.touch_now(sid, rec);
        ready(Ok(())).boxed()
    }

    fn all(&self) -> StoreFuture<'_, HashMap<String, SessionRecord>> {
        ready(self.all_now()).boxed()
    }

    fn len(&self) -> StoreFuture<'_, usize> {
        ready(Ok(self.len_now())).boxed()
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        self.inner.shards.iter().for_each(|s| write(s).clear());
        ready(Ok(())).boxed()
    }
}
