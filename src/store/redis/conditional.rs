//! The atomic half of [`RedisStore`]: `load` (the value and its TTL in one round trip),
//! `create` (one `SET NX`) and `save_if` (one `SET … IFEQ` where the server has it, else
//! one compare-and-set script per attempt).
//!
//! A version is the stored bytes themselves, so the comparison is exact: no hash, no
//! re-encoding, and a record written by connect-redis compares like one written here.
//!
//! With the client cache on, a load this thread's connection can answer from memory
//! costs no round trip (see `lean.rs`), and every write tells the cache what it does.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use redis::{ErrorKind, ServerErrorKind, Value};

use super::conn::{unexpected, Idempotent, Target};
use super::lean::{Effect, Hit};
use super::RedisStore;
use crate::encoding::{ms_system_time, now_ms};
use crate::record::SessionRecord;
use crate::store::parsed;
use crate::store::{Loaded, SaveOutcome, StoreError, Version};

/// Compare-and-set on one key. KEYS[1] the session's key; ARGV[1] the expected value,
/// ARGV[2] the new one, ARGV[3] its TTL in seconds (`-1`: none, `0`: the cookie already
/// expired, so delete). Answers `0` when there is no record (nothing written), `1` when
/// written, or `{current, pttl}` on a conflict. A record that already holds the new bytes
/// counts as written: a re-sent script whose first run landed (the cluster driver
/// re-sends after a dropped connection) then reports success, not a conflict with itself.
const CAS: &str = r"local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
if current ~= ARGV[1] and current ~= ARGV[2] then
  return {current, redis.call('PTTL', KEYS[1])}
end
local ttl = tonumber(ARGV[3])
if ttl == 0 then
  redis.call('DEL', KEYS[1])
elseif ttl < 0 then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
";

/// The script's SHA-1, as `EVALSHA` wants it.
static CAS_SHA: LazyLock<String> = LazyLock::new(|| sha1_hex(CAS));

fn sha1_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl RedisStore {
    /// `GET` and `PTTL` of the key, pipelined: one round trip (and one node: one key).
    /// Not a script: on loopback Redis 7.0 (`redis-benchmark`, 50 clients) the pair
    /// pipelined ran ~99k round trips/s at p50 0.30 ms, an `EVALSHA` doing both ~77k/s
    /// at p50 0.44 ms. Not atomic, which a read does not need: a key that expires
    /// between the two gives a record with an unknown `extended_at` (touched, as ever).
    pub(super) async fn load_record(&self, sid: &str) -> Result<Option<Loaded>, StoreError> {
        let key = self.key(sid);
        if let Some(hit) = self.conn.cached(key.as_bytes()) {
            return self.loaded_from_cache(&key, hit).map(Some);
        }
        let replies = self
            .conn
            .run_load(key.as_bytes(), self.settings.response_timeout)
            .await
            .and_then(|r| Value::Array(r).extract_error())
            .map_err(StoreError::backend)?;
        let (json, pttl): (Option<Vec<u8>>, i64) =
            redis::from_redis_value(replies).map_err(StoreError::backend)?;
        let Some(json) = json else {
            return Ok(None);
        };
        let loaded = self.loaded(json, pttl)?;
        if let Some(bytes) = loaded.version.as_bytes() {
            self.conn.remember(key.as_bytes(), bytes, &loaded.record);
        }
        Ok(Some(loaded))
    }

    /// A load the client cache answers, without a round trip; `None` on a miss or with
    /// the cache off.
    pub(super) fn load_cached(&self, sid: &str) -> Option<Result<Option<Loaded>, StoreError>> {
        if !self.conn.caching() {
            return None;
        }
        let key = self.key(sid);
        let hit = self.conn.cached(key.as_bytes())?;
        Some(self.loaded_from_cache(&key, hit).map(Some))
    }

    /// A load answered by the client cache: the record parsed once per cached value.
    fn loaded_from_cache(&self, key: &str, hit: Hit) -> Result<Loaded, StoreError> {
        let record = match hit.record {
            Some(record) => record,
            None => {
                let parsed = SessionRecord::from_json(&hit.value);
                let record = Arc::new(parsed.map_err(StoreError::Serialization)?);
                self.conn.remember(key.as_bytes(), &hit.value, &record);
                record
            }
        };
        let extended_at = self.extended_at(&record, hit.pttl_ms);
        Ok(Loaded {
            record,
            version: Version::from_bytes(hit.value),
            extended_at,
        })
    }

    /// A stored value and its PTTL as a [`Loaded`]; the bytes become the version as they are.
    fn loaded(&self, json: Vec<u8>, pttl_ms: i64) -> Result<Loaded, StoreError> {
        let record = parsed::parse(&json).map_err(StoreError::Serialization)?;
        let extended_at = self.extended_at(&record, pttl_ms);
        Ok(Loaded {
            record,
            version: Version::from_bytes(json),
            extended_at,
        })
    }

    /// When the key's TTL was last set: now + PTTL - the lifetime this store gives the
    /// record (its cookie's `originalMaxAge`, or the default TTL for a browser-session
    /// cookie), never later than now. `None` when the key has no TTL (`disable_ttl`) or
    /// the lifetime is unknown (an expiry without an `originalMaxAge`).
    fn extended_at(&self, rec: &SessionRecord, pttl_ms: i64) -> Option<SystemTime> {
        if pttl_ms < 0 {
            return None;
        }
        let lifetime_ms = match rec.cookie.expires_unix_ms() {
            Some(_) => rec.cookie.original_max_age_ms().filter(|ms| *ms > 0)?,
            None => self.settings.default_ttl_secs.saturating_mul(1000),
        };
        let now = now_ms();
        let at = now.saturating_add(pttl_ms).saturating_sub(lifetime_ms);
        Some(ms_system_time(at.min(now)))
    }

    /// `SET key json NX EX ttl`: written only when the key is free. A record whose cookie
    /// already expired is not written at all (`set` would delete it) and still answers
    /// with its version, as if written and expired at once.
    pub(super) async fn create_record(
        &self,
        sid: &str,
        rec: &SessionRecord,
    ) -> Result<Option<Version>, StoreError> {
        let json = rec.to_json();
        let ttl = self.ttl_secs(rec);
        if ttl > 0 {
            let key = self.key(sid);
            let ttl = ttl.to_string();
            let args: [&[u8]; 6] = [
                b"SET",
                key.as_bytes(),
                json.as_bytes(),
                b"NX",
                b"EX",
                ttl.as_bytes(),
            ];
            let n = if self.settings.disable_ttl { 4 } else { 6 }; // without `EX ttl`
            let target = Target::Key(key.as_bytes());
            let effect = Effect::Write(key.as_bytes());
            let reply: Value = self
                .run_args(&args[..n], target, effect, Idempotent::No)
                .await?;
            if matches!(reply, Value::Nil) {
                return Ok(None);
            }
        }
        Ok(Some(Version::from_bytes(json.into_bytes())))
    }

    /// One compare-and-set: `SET … IFEQ` where the server has it (see [`save_ifeq`]),
    /// else the script (see [`CAS`]). A version that is not stored bytes (not this
    /// store's) conflicts with whatever is stored.
    ///
    /// [`save_ifeq`]: Self::save_ifeq
    pub(super) async fn save_if_record(
        &self,
        sid: &str,
        rec: &SessionRecord,
        expected: &Version,
    ) -> Result<SaveOutcome, StoreError> {
        let Some(expected) = expected.as_bytes() else {
            let current = self.load_record(sid).await?;
            return Ok(current.map_or(SaveOutcome::Gone, |c| SaveOutcome::Conflict(Some(c))));
        };
        let json = rec.to_json();
        let ttl = match self.ttl_secs(rec) {
            expired if expired <= 0 => 0,
            _ if self.settings.disable_ttl => -1,
            ttl => ttl,
        };
        // `SET` cannot delete: an expired session (TTL 0) takes the script.
        let native = ttl != 0 && !self.settings.ifeq_refused.load(Ordering::Relaxed);
        let (key, ttl) = (self.key(sid), ttl.to_string());
        if native {
            if let Some(replies) = self.save_ifeq(&key, expected, &json, &ttl).await? {
                return self.ifeq_outcome(replies, expected, json);
            }
        }
        let reply = self.save_by_script(&key, expected, &json, &ttl).await?;
        self.outcome(reply, json)
    }

    /// `SET key json IFEQ expected GET EX ttl` and `PTTL key`, pipelined (Valkey 8.1,
    /// Redis 8.4): the server compares and writes by itself, at under a quarter of the
    /// script's CPU (`INFO commandstats` on Valkey 8.1: 0.34 µs for the `SET` and 0.10
    /// for the `PTTL`, against 1.83 for `EVALSHA`). The `GET` answers what was stored
    /// before, so a conflict needs no second round trip. `None` when the server does not know
    /// `IFEQ` (a syntax error: nothing ran), and the store takes the script from then on.
    async fn save_ifeq(
        &self,
        key: &str,
        expected: &[u8],
        json: &str,
        ttl: &str,
    ) -> Result<Option<Vec<Value>>, StoreError> {
        let (key, ttl) = (key.as_bytes(), ttl.as_bytes());
        let set: [&[u8]; 8] = [
            b"SET",
            key,
            json.as_bytes(),
            b"IFEQ",
            expected,
            b"GET",
            b"EX",
            ttl,
        ];
        let n = if self.settings.disable_ttl { 6 } else { 8 }; // without `EX ttl`
        let cmds: [&[&[u8]]; 2] = [&set[..n], &[b"PTTL", key]];
        let timeout = self.settings.response_timeout;
        let replies = self
            .conn
            .run_commands(&cmds, key, Effect::Write(key), Idempotent::No, timeout)
            .await
            .map_err(StoreError::backend)?;
        if replies.first().is_some_and(is_syntax_error) {
            if !self.settings.ifeq_refused.swap(true, Ordering::Relaxed) {
                tracing::info!(
                    prefix = %self.settings.prefix,
                    "the Redis server has no SET ... IFEQ (Valkey 8.1 and Redis 8.4 have \
                     it): conditional saves use a Lua script, at several times the server's \
                     CPU per save"
                );
            }
            return Ok(None);
        }
        Ok(Some(replies))
    }

    /// What `SET … IFEQ … GET` and `PTTL` answered: the value stored before the `SET`
    /// tells it all. None: gone. The expected bytes: written. The new bytes: written by
    /// an earlier send of this very save (a re-sent command, as the script counts it).
    /// Anything else: a conflict, with that record and its TTL.
    fn ifeq_outcome(
        &self,
        replies: Vec<Value>,
        expected: &[u8],
        json: String,
    ) -> Result<SaveOutcome, StoreError> {
        let mut replies = replies.into_iter();
        let (Some(before), Some(pttl)) = (replies.next(), replies.next()) else {
            return Err(StoreError::backend(unexpected(
                "SET IFEQ and PTTL did not answer twice",
            )));
        };
        let before: Option<Vec<u8>> =
            redis::from_redis_value(before.extract_error().map_err(StoreError::backend)?)
                .map_err(StoreError::backend)?;
        match before {
            None => Ok(SaveOutcome::Gone),
            Some(b) if b == expected || b == json.as_bytes() => {
                Ok(SaveOutcome::Saved(Version::from_bytes(json.into_bytes())))
            }
            Some(current) => {
                let pttl: i64 = redis::from_redis_value(pttl).map_err(StoreError::backend)?;
                Ok(SaveOutcome::Conflict(self.loaded(current, pttl).ok()))
            }
        }
    }

    /// The compare-and-set script (see [`CAS`]), by its hash, or in full when the server
    /// does not have it cached.
    async fn save_by_script(
        &self,
        key: &str,
        expected: &[u8],
        json: &str,
        ttl: &str,
    ) -> Result<Value, StoreError> {
        let cas = |op: &'static [u8], script: &'static str| -> [&[u8]; 7] {
            [
                op,
                script.as_bytes(),
                b"1",
                key.as_bytes(),
                expected,
                json.as_bytes(),
                ttl.as_bytes(),
            ]
        };
        let target = Target::Key(key.as_bytes());
        let effect = Effect::Write(key.as_bytes());
        let evalsha = cas(b"EVALSHA", CAS_SHA.as_str());
        match self
            .run_args(&evalsha, target, effect, Idempotent::No)
            .await
        {
            // Not in this node's script cache (restart, SCRIPT FLUSH, failover): EVAL
            // runs it and caches it. NOSCRIPT means it did not run, so this is no re-send.
            Err(StoreError::Backend(e)) if is_noscript(e.as_ref()) => {
                self.run_args(&cas(b"EVAL", CAS), target, effect, Idempotent::No)
                    .await
            }
            other => other,
        }
    }

    fn outcome(&self, reply: Value, json: String) -> Result<SaveOutcome, StoreError> {
        match reply {
            Value::Int(0) => Ok(SaveOutcome::Gone),
            Value::Int(1) => Ok(SaveOutcome::Saved(Version::from_bytes(json.into_bytes()))),
            Value::Array(pair) => {
                let (current, pttl): (Vec<u8>, i64) =
                    redis::from_redis_value(Value::Array(pair)).map_err(StoreError::backend)?;
                // A current record that does not parse is left to the caller's own load.
                Ok(SaveOutcome::Conflict(self.loaded(current, pttl).ok()))
            }
            _ => Err(StoreError::backend(unexpected(
                "the compare-and-set script answered an unknown shape",
            ))),
        }
    }
}

/// `ERR syntax error`: what a server without `SET … IFEQ` answers it.
fn is_syntax_error(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(e)
        if e.code() == "ERR" && e.details().is_some_and(|d| d.starts_with("syntax error")))
}

fn is_noscript(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<redis::RedisError>()
        .is_some_and(|e| e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_hash_is_its_sha1() {
        assert_eq!(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(CAS_SHA.len(), 40);
    }
}
