//! The client-side cache of one lean connection: the sessions it read lately, kept as
//! Redis stores them (the bytes and the key's deadline), while Redis tracks the keys
//! for it (`CLIENT TRACKING ON NOLOOP`) and says when one changes.
//!
//! Every change is made by the connection's reader, in the order frames arrive (see
//! `lean.rs` for why that order is the whole correctness argument): a reply carries the
//! effect of its request ([`Effect`]), an `invalidate` push evicts its keys (a null list
//! flushes everything), and the cache goes with the connection.
//!
//! Bounded: at most `capacity` entries (a full cache evicts by the clock algorithm: the
//! hand skips, once, an entry served since it last passed), and a value longer than
//! [`MAX_VALUE`] is never kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use crate::record::SessionRecord;

/// An entry is served only while its key has at least this long to live: the deadline
/// is taken when the reply is read, a little after Redis counted it (and Redis's clock
/// may run ahead), so a session about to expire is read from Redis instead.
pub(crate) const MARGIN: Duration = Duration::from_secs(1);
/// Values longer than this are not cached (memory stays bounded by a few MB per
/// thousand entries, whatever the sessions hold).
pub(crate) const MAX_VALUE: usize = 64 * 1024;

/// What a request does to the cache. Only the lean connection caches; the others
/// ignore it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Effect<'a> {
    /// Nothing cached changes (`SCAN`, `MGET`, a `GET` that is not a load).
    None,
    /// The request ends with `GET key` and `PTTL key`: their replies fill the entry.
    Load(&'a [u8]),
    /// A write to `key` (`SET`, `SET NX`, `EXPIRE`, the compare-and-set script): the
    /// entry is evicted when it is sent. Redis stops tracking a key when its tracking
    /// client writes it (NOLOOP only mutes the message), so on a tracking connection
    /// `GET key` and `PTTL key` go right after it, in the same batch, and fill the entry
    /// with what is stored then; a `PING` goes before it (for the order in which Redis
    /// answers, see `lean.rs`). Only the write's own reply is handed to the caller.
    Write(&'a [u8]),
    /// `DEL key`: the entry is evicted when sent and when answered. (Every write, this
    /// one and the next, goes after a `PING` on a tracking connection.)
    Delete(&'a [u8]),
    /// Writes to keys not named here (`DEL` of many): everything cached goes, when sent
    /// and when answered.
    Flush,
}

/// A request's effect, kept until its replies are in.
#[derive(Debug)]
pub(super) enum Pending {
    Load(Box<[u8]>),
    /// A write before `GET` and `PTTL` of its key (two replies more).
    Reload(Box<[u8]>),
    Evict(Box<[u8]>),
    Flush,
}

impl Pending {
    /// The key whose entry this request fills, if any.
    pub(super) fn fills(&self) -> Option<&[u8]> {
        match self {
            Pending::Load(key) | Pending::Reload(key) => Some(key),
            Pending::Evict(_) | Pending::Flush => None,
        }
    }
}

/// A cached session, as a load would have read it.
#[derive(Debug)]
pub(crate) struct Hit {
    /// The stored bytes.
    pub(crate) value: Box<[u8]>,
    /// The record parsed from exactly these bytes, if a caller kept it.
    pub(crate) record: Option<Arc<SessionRecord>>,
    /// Milliseconds the key has left (`-1`: no TTL), as `PTTL` would answer.
    pub(crate) pttl_ms: i64,
}

#[derive(Debug)]
struct Entry {
    key: Arc<[u8]>,
    value: Box<[u8]>,
    deadline: Option<Instant>,
    record: Option<Arc<SessionRecord>>,
    /// Served since the clock hand last passed.
    used: bool,
}

/// The cached sessions of one connection.
#[derive(Debug)]
pub(super) struct Cache {
    capacity: usize,
    slots: Vec<Option<Entry>>,
    index: HashMap<Arc<[u8]>, usize>,
    free: Vec<usize>,
    hand: usize,
}

impl Cache {
    /// An empty cache of at most `capacity` (at least one) entries.
    pub(super) fn new(capacity: usize) -> Self {
        Cache {
            capacity: capacity.max(1),
            slots: Vec::new(),
            index: HashMap::new(),
            free: Vec::new(),
            hand: 0,
        }
    }

    /// The entry of `key`, while its deadline is more than [`MARGIN`] ahead of `now`.
    pub(super) fn get(&mut self, key: &[u8], now: Instant) -> Option<Hit> {
        let at = *self.index.get(key)?;
        let entry = self.slots.get_mut(at)?.as_mut()?;
        let pttl_ms = match entry.deadline {
            None => -1,
            Some(deadline) => match deadline.checked_duration_since(now) {
                Some(left) if left > MARGIN => i64::try_from(left.as_millis()).unwrap_or(i64::MAX),
                _ => {
                    self.remove(at);
                    return None;
                }
            },
        };
        entry.used = true;
        Some(Hit {
            value: entry.value.clone(),
            record: entry.record.clone(),
            pttl_ms,
        })
    }

    /// Keeps what `GET key` and `PTTL key` answered; anything else (a missing key, an
    /// error, a value too long) evicts the entry.
    pub(super) fn fill(&mut self, key: &[u8], get: Value, pttl: &Value, now: Instant) {
        let (Value::BulkString(value), &Value::Int(pttl)) = (get, pttl) else {
            return self.evict(key);
        };
        if pttl < -1 || value.len() > MAX_VALUE {
            return self.evict(key);
        }
        let deadline = match u64::try_from(pttl) {
            Ok(ms) => match now.checked_add(Duration::from_millis(ms)) {
                Some(deadline) => Some(deadline),
                None => return self.evict(key),
            },
            Err(_) => None,
        };
        self.put(key, value.into_boxed_slice(), deadline);
    }

    /// Keeps `record` as the parsed form of `key`'s entry, if the entry still holds
    /// exactly the bytes it was parsed from.
    pub(super) fn remember(&mut self, key: &[u8], value: &[u8], record: &Arc<SessionRecord>) {
        let Some(&at) = self.index.get(key) else {
            return;
        };
        if let Some(entry) = self.slots.get_mut(at).and_then(Option::as_mut) {
            if *entry.value == *value {
                entry.record = Some(Arc::clone(record));
            }
        }
    }

    pub(super) fn evict(&mut self, key: &[u8]) {
        if let Some(at) = self.index.get(key).copied() {
            self.remove(at);
        }
    }

    pub(super) fn flush(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.free.clear();
        self.hand = 0;
    }

    /// How many entries are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    fn put(&mut self, key: &[u8], value: Box<[u8]>, deadline: Option<Instant>) {
        if let Some(&at) = self.index.get(key) {
            if let Some(entry) = self.slots.get_mut(at).and_then(Option::as_mut) {
                entry.value = value;
                entry.deadline = deadline;
                entry.record = None;
                return;
            }
        }
        let at = self.room();
        let key: Arc<[u8]> = Arc::from(key);
        self.index.insert(Arc::clone(&key), at);
        self.slots[at] = Some(Entry {
            key,
            value,
            deadline,
            record: None,
            used: false,
        });
    }

    /// An empty slot: a free one, a new one, or the clock's victim.
    fn room(&mut self) -> usize {
        if let Some(at) = self.free.pop() {
            return at;
        }
        if self.slots.len() < self.capacity {
            self.slots.push(None);
            return self.slots.len() - 1;
        }
        loop {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            match &mut self.slots[at] {
                Some(entry) if entry.used => entry.used = false,
                Some(_) => {
                    self.remove(at);
                    self.free.pop();
                    return at;
                }
                None => return at,
            }
        }
    }

    fn remove(&mut self, at: usize) {
        if let Some(entry) = self.slots.get_mut(at).and_then(Option::take) {
            self.index.remove(&entry.key);
            self.free.push(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn value(hit: Option<Hit>) -> Option<Vec<u8>> {
        hit.map(|h| h.value.into_vec())
    }

    #[test]
    fn an_entry_lives_until_its_deadline_less_the_margin() {
        let now = Instant::now();
        let mut cache = Cache::new(4);
        cache.fill(b"a", bulk("{}"), &Value::Int(5_000), now);
        let hit = cache.get(b"a", now).expect("cached");
        assert_eq!((&*hit.value, hit.pttl_ms), (&b"{}"[..], 5_000));
        assert!(cache
            .get(b"a", now + Duration::from_millis(3_900))
            .is_some());
        assert!(cache
            .get(b"a", now + Duration::from_millis(4_100))
            .is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped");
        cache.fill(b"forever", bulk("{}"), &Value::Int(-1), now);
        let later = now + Duration::from_secs(86_400 * 365);
        assert_eq!(cache.get(b"forever", later).expect("no TTL").pttl_ms, -1);
    }

    #[test]
    fn a_missing_key_an_error_or_a_huge_value_is_not_kept() {
        let now = Instant::now();
        let mut cache = Cache::new(4);
        cache.fill(b"a", bulk("{}"), &Value::Int(5_000), now);
        cache.fill(b"a", Value::Nil, &Value::Int(-2), now);
        assert!(cache.get(b"a", now).is_none(), "a missing key evicts");
        cache.fill(b"a", bulk("{}"), &Value::Int(-2), now);
        assert!(
            cache.get(b"a", now).is_none(),
            "expired between GET and PTTL"
        );
        let huge = Value::BulkString(vec![b'x'; MAX_VALUE + 1]);
        cache.fill(b"a", huge, &Value::Int(5_000), now);
        assert!(cache.get(b"a", now).is_none());
        let error = redis::parse_redis_value(b"-WRONGTYPE no\r\n").expect("an error");
        cache.fill(b"a", error, &Value::Int(5_000), now);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_record_is_remembered_only_for_the_bytes_it_was_parsed_from() {
        let now = Instant::now();
        let mut cache = Cache::new(4);
        let record = Arc::new(SessionRecord::from_json(br#"{"cookie":{}}"#).expect("a record"));
        cache.fill(b"a", bulk("{\"cookie\":{}}"), &Value::Int(5_000), now);
        cache.remember(b"a", b"{\"other\":1}", &record);
        assert!(cache.get(b"a", now).expect("cached").record.is_none());
        cache.remember(b"a", b"{\"cookie\":{}}", &record);
        assert!(cache.get(b"a", now).expect("cached").record.is_some());
        cache.fill(b"a", bulk("{\"cookie\":{}}"), &Value::Int(5_000), now);
        assert!(
            cache.get(b"a", now).expect("cached").record.is_none(),
            "a new entry forgets the record"
        );
    }

    #[test]
    fn a_full_cache_evicts_an_entry_not_served_lately() {
        let now = Instant::now();
        let mut cache = Cache::new(3);
        for key in ["a", "b", "c"] {
            cache.fill(key.as_bytes(), bulk(key), &Value::Int(60_000), now);
        }
        assert!(cache.get(b"a", now).is_some(), "a is served");
        cache.fill(b"d", bulk("d"), &Value::Int(60_000), now);
        assert_eq!(cache.len(), 3);
        assert!(
            value(cache.get(b"a", now)).is_some(),
            "a had a second chance"
        );
        assert!(value(cache.get(b"b", now)).is_none(), "b went");
        for i in 0..1000 {
            let key = format!("k{i}");
            cache.fill(key.as_bytes(), bulk(&key), &Value::Int(60_000), now);
            assert!(cache.len() <= 3);
        }
        assert_eq!(value(cache.get(b"k999", now)), Some(b"k999".to_vec()));
        cache.evict(b"k999");
        cache.evict(b"never");
        assert_eq!(cache.len(), 2);
        cache.flush();
        assert_eq!(cache.len(), 0);
        cache.fill(b"z", bulk("z"), &Value::Int(60_000), now);
        assert_eq!(value(cache.get(b"z", now)), Some(b"z".to_vec()));
    }
}
