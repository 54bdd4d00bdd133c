//! [`MemoryStore`]: the embedded store for one process and for development.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_util::future::{ready, FutureExt};

use self::stored::Stored;
use super::{Loaded, SaveOutcome, SessionStore, StoreError, StoreFuture, Version};
use crate::cookie::SessionCookie;
use crate::encoding::{ms_system_time, now_ms};
use crate::key_hash::KeyHash;
use crate::record::SessionRecord;

mod stored;

const DAY: Duration = Duration::from_secs(86_400);
/// The default [`MemoryStoreBuilder::max_sessions`].
const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// At most this many shards, each of at least `MIN_PER_SHARD` sessions: a small store is
/// one shard, so its limit and eviction order are exact.
const MAX_SHARDS: usize = 16;
const MIN_PER_SHARD: usize = 1024;
/// The sweep removes expired entries this many per write lock, so readers wait at most
/// one batch (see the `sweep_timing` test).
const SWEEP_BATCH: usize = 256;
/// A full shard evicts this share of itself at once (at least one entry): finding the
/// soonest-expiring entries scans the shard, so the scan is paid once per many inserts.
const EVICT_SHARE: usize = 256;

/// One stored session: its record (see [`Stored`]), the version of this write, and when
/// it expires and was last extended.
struct Entry {
    record: Stored,
    version: u64,
    expires_ms: i64,
    extended_ms: i64,
}

impl Entry {
    fn live(&self, now: i64) -> bool {
        self.expires_ms > now
    }

    /// The entry as loaded, if its record is unpacked (a read lock's view).
    fn shared(&self) -> Option<Loaded> {
        let record = self.record.shared()?;
        Some(self.loaded(Arc::clone(record)))
    }

    /// The entry as loaded, unpacking its record first if need be.
    fn unpacked(&mut self) -> Result<Loaded, StoreError> {
        let record = self.record.unpack().map_err(StoreError::Serialization)?;
        Ok(self.loaded(record))
    }

    fn loaded(&self, record: Arc<SessionRecord>) -> Loaded {
        Loaded {
            record,
            version: Version::from_number(self.version),
            extended_at: Some(ms_system_time(self.extended_ms)),
        }
    }
}

type Map = HashMap<Box<str>, Entry, KeyHash>;

/// One lock's share of the sessions, holding at most `cap` entries.
struct Shard {
    map: RwLock<Map>,
    cap: usize,
}

struct Inner {
    shards: Box<[Shard]>,
    /// Picks the shard, and hashes in each shard's map.
    key_hash: KeyHash,
    default_ttl_ms: i64,
    sweep_interval: Option<Duration>,
    sweeping: AtomicBool,
    /// Whether the "store is full" warning was logged (once per store).
    warned_full: AtomicBool,
    /// The last version handed out: every write gets a new one, so a record destroyed
    /// and written again never matches a version read before.
    writes: AtomicU64,
}

/// An in-memory [`SessionStore`]: concurrent (sharded locks), cheap to clone (clones
/// share one map), and unlike express-session's it does not leak: expired sessions are
/// invisible to `get` and a background task evicts them.
///
/// Records are kept parsed and shared read-only with the requests that load them: a read
/// costs no JSON parse and no copy, and a request copies its session only when it
/// changes it, so nothing reaches the store without a save. A created session is kept
/// as its JSON text (about a quarter of the memory) until its first load parses it, so
/// sessions that are never read again stay small. `create`, `save_if` and
/// `touch` are atomic under the shard's lock; `touch` stores the touched cookie (its new
/// `expires`) with the stored data, as express-session's `MemoryStore` does.
///
/// The eviction task starts with the first store call made inside a Tokio runtime (the
/// one actix-web runs on) and ends when the last handle is dropped.
///
/// The store is bounded: it holds at most [`max_sessions`](MemoryStoreBuilder::max_sessions)
/// entries (default 100 000), so a client that makes sessions in a loop cannot exhaust
/// memory. When it is full, adding a session evicts the sessions that expire soonest
/// (expired ones first).
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
    max_sessions: usize,
}

impl MemoryStoreBuilder {
    /// How often expired sessions are evicted; `Duration::ZERO` turns the background
    /// task off (expired sessions are then removed only when read). Default 60 s.
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = (!every.is_zero()).then_some(every);
        self
    }

    /// How long a session whose cookie has no expiry (a browser-session cookie) is
    /// kept. Default one day, as connect-redis; `Duration::ZERO` keeps that default (as
    /// connect-redis's `ttl: 0`, and the same on every store).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let store = actix_express_session::MemoryStore::builder()
    ///     .default_ttl(Duration::from_secs(3600))
    ///     .build();
    /// ```
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = if ttl.is_zero() { DAY } else { ttl };
        self
    }

    /// The most sessions the store holds, expired ones not yet evicted included.
    /// Default 100 000: at most about 100 MB for small sessions (one of ~100 bytes of JSON
    /// costs about 260 bytes resident until it is first loaded and about 1 KB once in
    /// use, see BENCHMARKS.md), safe in a small container.
    /// More live sessions than that in one process is a case for a shared store (Redis,
    /// PostgreSQL), or raise the limit; `usize::MAX` removes it. A value of 0 counts as 1.
    ///
    /// Adding a session to a full store (a `set` or `create` of a new ID; replacing,
    /// touching or `save_if` of an existing one never evicts) first evicts expired
    /// sessions, then the live sessions that expire soonest, and logs a warning the first
    /// time a live one goes.
    ///
    /// The limit is enforced per shard: a store of `max` sessions has
    /// `n = clamp(max / 1024, 1, 16)` shards of `max / n` sessions each (the remainder
    /// spread over the first shards), so it never holds more than `max` in all. Below 2048
    /// it is one shard and the eviction order is exact; in a sharded store the evicted
    /// sessions are the soonest-expiring of their shard. A full shard evicts its
    /// soonest-expiring 1/256 at once (at least one session), so that a flood of new
    /// sessions costs one scan of the shard per 256th of it, not one per session.
    ///
    /// ```
    /// let store = actix_express_session::MemoryStore::builder()
    ///     .max_sessions(10_000)
    ///     .build();
    /// ```
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max.max(1);
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        let max = self.max_sessions;
        let n = (max / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        let key_hash = KeyHash::random();
        let shard = |i: usize| Shard {
            map: RwLock::new(HashMap::with_hasher(key_hash)),
            cap: max / n + usize::from(i < max % n),
        };
        let inner = Inner {
            shards: (0..n).map(shard).collect(),
            key_hash,
            default_ttl_ms: i64::try_from(self.default_ttl.as_millis()).unwrap_or(i64::MAX),
            sweep_interval: self.sweep_interval,
            sweeping: AtomicBool::new(false),
            warned_full: AtomicBool::new(false),
            writes: AtomicU64::new(0),
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

    /// A builder for the sweep interval, default TTL and size limit.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            sweep_interval: Some(Duration::from_secs(60)),
            default_ttl: DAY,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }

    /// Entries held right now, including expired ones not yet evicted (what the memory
    /// actually holds, unlike [`SessionStore::len`]).
    pub fn entry_count(&self) -> usize {
        self.inner.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Removes every expired entry now (the background task does this on its interval),
    /// a batch at a time so that readers and writers never wait for a whole shard.
    pub fn evict_expired(&self) {
        self.inner.evict_expired(now_ms());
    }

    fn shard(&self, sid: &str) -> &Shard {
        &self.inner.shards[shard_index(self.inner.key_hash.hash_one(sid), self.inner.shards.len())]
    }

    fn expiry_of(&self, cookie: &SessionCookie, now: i64) -> i64 {
        cookie
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

    /// The live entry under `sid`, as `f` sees it; an expired one is removed.
    fn read_live<T>(&self, sid: &str, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        let now = now_ms();
        let shard = self.shard(sid);
        match read(shard).get(sid) {
            Some(e) if e.live(now) => return Some(f(e)),
            Some(_) => {}
            None => return None,
        }
        remove_expired(&mut write(shard), sid, now);
        None
    }

    /// The live entry as loaded: under the read lock when its record is unpacked, else
    /// under the write lock, unpacking it.
    fn load_entry(&self, sid: &str) -> Result<Option<Loaded>, StoreError> {
        match self.read_live(sid, Entry::shared) {
            None => return Ok(None),
            Some(Some(loaded)) => return Ok(Some(loaded)),
            Some(None) => {}
        }
        let now = now_ms();
        let mut map = write(self.shard(sid));
        let entry = map.get_mut(sid).filter(|e| e.live(now));
        entry.map(Entry::unpacked).transpose()
    }

    fn entry(&self, rec: Stored, cookie: &SessionCookie, now: i64) -> Entry {
        Entry {
            expires_ms: self.expiry_of(cookie, now),
            extended_ms: now,
            record: rec,
            version: self.inner.writes.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    fn set_now(&self, sid: &str, rec: &SessionRecord) -> u64 {
        let entry = self.entry(Stored::packed(rec), &rec.cookie, now_ms());
        let version = entry.version;
        let shard = self.shard(sid);
        self.insert_bounded(&mut write(shard), shard.cap, sid, entry);
        version
    }

    /// One probe of the map under the lock: the record is packed before it is taken.
    fn create_now(&self, sid: &str, rec: &SessionRecord) -> Option<Version> {
        let now = now_ms();
        let shard = self.shard(sid);
        let entry = self.entry(Stored::packed(rec), &rec.cookie, now);
        let version = Version::from_number(entry.version);
        let mut map = write(shard);
        self.make_room(&mut map, shard.cap, sid);
        match map.entry(sid.into()) {
            MapEntry::Occupied(taken) if taken.get().live(now) => return None,
            MapEntry::Occupied(mut expired) => drop(expired.insert(entry)),
            MapEntry::Vacant(free) => drop(free.insert(entry)),
        }
        Some(version)
    }

    /// Inserts under the caller's lock, first making room for `sid`.
    fn insert_bounded(&self, map: &mut Map, cap: usize, sid: &str, entry: Entry) {
        self.make_room(map, cap, sid);
        map.insert(sid.into(), entry);
    }

    /// Evicts the soonest-expiring entries when `sid` is new and the shard is full.
    fn make_room(&self, map: &mut Map, cap: usize, sid: &str) {
        if map.len() >= cap && !map.contains_key(sid) {
            let now = now_ms();
            while map.len() >= cap {
                let live = evict_soonest(map, cap, now);
                if live > 0 && !self.inner.warned_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        max_sessions = self.inner.shards.iter().map(|s| s.cap).sum::<usize>(),
                        "the memory store is full: evicting the live sessions that expire \
                         soonest (raise MemoryStoreBuilder::max_sessions or use a shared store)"
                    );
                }
            }
        }
    }

    fn save_if_now(
        &self,
        sid: &str,
        rec: &Arc<SessionRecord>,
        expected: &Version,
    ) -> Result<SaveOutcome, StoreError> {
        let now = now_ms();
        let mut map = write(self.shard(sid));
        let Some(current) = map.get_mut(sid).filter(|e| e.live(now)) else {
            remove_expired(&mut map, sid, now);
            return Ok(SaveOutcome::Gone);
        };
        if expected.as_number() != Some(current.version) {
            return Ok(SaveOutcome::Conflict(Some(current.unpacked()?)));
        }
        let entry = self.entry(Stored::Shared(Arc::clone(rec)), &rec.cookie, now);
        let version = Version::from_number(entry.version);
        // In place (the key stays), and the old record is freed once the lock is let go.
        let replaced = std::mem::replace(current, entry);
        drop(map);
        drop(replaced);
        Ok(SaveOutcome::Saved(version))
    }

    /// Moves the live entry's expiry to `rec.cookie`'s and stores that cookie with the
    /// stored data, as express-session's `MemoryStore.touch` does: the next load sees
    /// the renewed `expires`. The version stays, so that a save in flight still lands.
    fn touch_now(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        let now = now_ms();
        let mut map = write(self.shard(sid));
        let Some(entry) = map.get_mut(sid).filter(|e| e.live(now)) else {
            remove_expired(&mut map, sid, now);
            return Ok(());
        };
        let cookie = &rec.cookie;
        entry
            .record
            .set_cookie(cookie)
            .map_err(StoreError::Serialization)?;
        entry.expires_ms = self.expiry_of(cookie, now);
        entry.extended_ms = now;
        Ok(())
    }

    fn all_now(&self) -> Result<HashMap<String, SessionRecord>, StoreError> {
        let now = now_ms();
        let mut out = HashMap::new();
        for shard in self.inner.shards.iter() {
            for (sid, e) in read(shard).iter().filter(|(_, e)| e.live(now)) {
                let rec = e.record.to_record().map_err(StoreError::Serialization)?;
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
        self.shards.iter().for_each(|s| sweep_shard(s, now));
    }
}

/// Finds the shard's expired IDs under its read lock (readers go on), then removes them
/// `SWEEP_BATCH` at a time under short write locks, re-checking each there (a `set` since
/// the scan may have made it live again), and frees the removed records after the lock
/// is released.
fn sweep_shard(shard: &Shard, now: i64) {
    let expired: Vec<Box<str>> = read(shard)
        .iter()
        .filter(|(_, e)| !e.live(now))
        .map(|(sid, _)| sid.clone())
        .collect();
    for batch in expired.chunks(SWEEP_BATCH) {
        let removed: Vec<Entry> = {
            let mut map = write(shard);
            let taken = batch
                .iter()
                .filter_map(|sid| remove_expired(&mut map, sid, now));
            taken.collect()
        };
        drop(removed);
    }
}

/// Evicts the soonest-expiring `1 / EVICT_SHARE` of a full shard (at least one entry;
/// expired entries expire soonest, so they go first), so that the scan this takes is
/// paid once per many inserts. Returns how many of them were still live.
fn evict_soonest(map: &mut Map, cap: usize, now: i64) -> usize {
    let mut by_expiry: Vec<(i64, &str)> =
        map.iter().map(|(sid, e)| (e.expires_ms, &**sid)).collect();
    let n = (cap / EVICT_SHARE).clamp(1, by_expiry.len().max(1));
    if n < by_expiry.len() {
        by_expiry.select_nth_unstable(n - 1);
    }
    let doomed = &by_expiry[..n.min(by_expiry.len())];
    let live = doomed.iter().filter(|(at, _)| *at > now).count();
    let doomed: Vec<Box<str>> = doomed.iter().map(|(_, sid)| Box::from(*sid)).collect();
    doomed.iter().for_each(|sid| drop(map.remove(sid)));
    live
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

/// Removes the entry under `sid` if it is still expired: a `set` may have replaced it
/// since the caller saw it expired.
fn remove_expired(map: &mut Map, sid: &str, now: i64) -> Option<Entry> {
    map.get(sid)
        .is_some_and(|e| !e.live(now))
        .then(|| map.remove(sid))
        .flatten()
}

/// A poisoned lock only means another thread panicked mid-operation; every operation
/// leaves the map consistent, so the data is still good.
fn read(shard: &Shard) -> std::sync::RwLockReadGuard<'_, Map> {
    shard
        .map
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shard of a key whose hash is `hash`, among `shards`: by bits 24 to 55, scaled by
/// a multiply rather than a division. Each shard's map takes its buckets from the low
/// bits and its one-byte probe tags from the top seven, so the keys of one shard must
/// still differ there: picked by the top bits, a shard's keys shared most of their tag,
/// and a lookup in a large store compared keys on nearly every probe.
fn shard_index(hash: u64, shards: usize) -> usize {
    let middle = (hash >> 24) & 0xffff_ffff;
    ((middle * shards as u64) >> 32) as usize
}

fn write(shard: &Shard) -> std::sync::RwLockWriteGuard<'_, Map> {
    shard
        .map
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.ensure_sweeper();
        let found = self.read_live(sid, |e| e.record.to_record());
        let found = found.transpose().map_err(StoreError::Serialization);
        ready(found).boxed()
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
        ready(self.touch_now(sid, rec)).boxed()
    }

    /// The stored record itself, shared (no copy, no parse; a created record is parsed
    /// once, by its first load).
    fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        self.ensure_sweeper();
        ready(self.load_entry(sid)).boxed()
    }

    /// Always at hand: what `load` answers, without a future.
    fn load_now(&self, sid: &str) -> Option<Result<Option<Loaded>, StoreError>> {
        self.ensure_sweeper();
        Some(self.load_entry(sid))
    }

    /// Atomic under the shard's lock.
    fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> StoreFuture<'a, Option<Version>> {
        self.ensure_sweeper();
        ready(Ok(self.create_now(sid, rec))).boxed()
    }

    /// Atomic under the shard's lock; a conflict carries the current record.
    fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> StoreFuture<'a, SaveOutcome> {
        ready(self.save_if_now(sid, rec, expected)).boxed()
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The keys of one shard spread over the whole bucket range and every probe tag
    /// (the top seven bits) of their map.
    #[test]
    fn a_shard_keeps_the_bits_its_map_uses() {
        let hash = KeyHash::random();
        let ids = (0..80_000).map(|i| format!("{i:032}"));
        let in_first: Vec<u64> = ids
            .map(|id| hash.hash_one(id))
            .filter(|&h| shard_index(h, MAX_SHARDS) == 0)
            .collect();
        assert!(
            in_first.len() > 80_000 / MAX_SHARDS / 2,
            "{}",
            in_first.len()
        );
        let tags: HashSet<u64> = in_first.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "probe tags in use");
        let buckets: HashSet<u64> = in_first.iter().map(|h| h & 0xff).collect();
        assert!(buckets.len() > 250, "{} of 256 low bytes", buckets.len());
        let shards: HashSet<usize> = (0..1000u64)
            .map(|i| shard_index(hash.hash_one(i.to_string()), MAX_SHARDS))
            .collect();
        assert_eq!(shards.len(), MAX_SHARDS, "every shard is used");
    }
}
