//! [`RedisStore`]: sessions in Redis or Redis Cluster, stored exactly as connect-redis
//! stores them (key `sess:<id>`, value the JSON record, TTL from the cookie's expiry),
//! with an opt-in client cache kept right by Redis (`client_cache`).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::FutureExt;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue};

use super::{Loaded, SaveOutcome, SessionStore, StoreError, StoreFuture, Version};
use crate::encoding::now_ms;
use crate::record::SessionRecord;

#[path = "redis/builder.rs"]
mod builder;
#[path = "redis/conditional.rs"]
mod conditional;
#[path = "redis/conn.rs"]
mod conn;
#[path = "redis/lean.rs"]
mod lean;
#[path = "redis/local.rs"]
mod local;
#[path = "redis/retry.rs"]
mod retry;
#[path = "redis/scan.rs"]
mod scan;
#[path = "redis/sentinel.rs"]
mod sentinel;

pub use builder::RedisStoreBuilder;
use conn::{Conn, Idempotent, Target};
use lean::Effect;

/// The settings shared by every clone of a store.
#[derive(Debug)]
struct Settings {
    prefix: String,
    default_ttl_secs: i64,
    disable_touch: bool,
    disable_ttl: bool,
    scan_count: usize,
    response_timeout: Duration,
    /// The server answered `SET … IFEQ` with a syntax error (it is older than Valkey 8.1
    /// or Redis 8.4): conditional saves take the script.
    ifeq_refused: AtomicBool,
}

/// A [`SessionStore`] in Redis or Redis Cluster, wire-compatible with Node's
/// [connect-redis]: a session created by an Express app on the same Redis is read here,
/// and back. Behind Redis Sentinel, the store follows the primary across failovers
/// ([`connect_sentinel`](RedisStoreBuilder::connect_sentinel)).
///
/// - key: `prefix + id` (prefix `"sess:"` by default);
/// - value: the JSON record, `{"cookie":{...},...}`, written with one `SET key json EX ttl`;
/// - TTL: seconds until the cookie expires, rounded up, or the
///   [`default_ttl`](RedisStoreBuilder::default_ttl) (one day) for a browser-session
///   cookie; a session whose cookie already expired is deleted instead;
/// - `touch` only moves the key's TTL (`EXPIRE`), it never rewrites the record;
/// - `all`, `len` and `clear` walk the prefix with `SCAN` (on every primary of a
///   cluster), never `KEYS` or `FLUSHDB`.
///
/// The conditional writes are atomic and cost one round trip each, on one key (so they
/// work on a cluster): `load` pipelines `GET` and `PTTL` (the version is the stored
/// bytes; the TTL tells the middleware when the key was last extended, so a plain read
/// writes nothing), `create` is `SET key json NX EX ttl`, and `save_if` writes only
/// while the stored string is the expected bytes (a missing key stays missing): with
/// `SET key json IFEQ expected GET EX ttl` (and `PTTL`, pipelined) where the server has
/// it (Valkey 8.1, Redis 8.4), else with one Lua script (a server that does not know
/// `IFEQ` refuses the first try, and the store remembers, with one `info` line). The
/// stored bytes are always `rec.to_json()`.
///
/// It is a cheap-clone handle: clones share one connection. A lost connection is made
/// again by the next call, and no command waits longer than the
/// [`response_timeout`](RedisStoreBuilder::response_timeout): a dead Redis gives a
/// prompt error (a 500 from the middleware), not a hung request. After a dropped
/// connection a command is sent once more only when that is safe: reads, `SET`,
/// `EXPIRE` and `DEL`, never `SET NX` or a compare-and-set (their second run
/// would contradict the first), unless the first attempt never reached Redis.
///
/// Opt-in, [`client_cache`](RedisStoreBuilder::client_cache) keeps the sessions each
/// worker thread read lately in memory, kept right by Redis (6 or later) itself with
/// server-assisted client-side caching (`CLIENT TRACKING`): loading such a session
/// again costs no round trip, and a change by anyone is seen by the next load (the
/// option's docs say exactly when, and where that stops). It needs a plain `redis://`
/// URL; elsewhere `connect` refuses it.
///
/// ```no_run
/// use actix_express_session::{RedisStore, SessionMiddleware};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::new("redis://127.0.0.1:6379").await?;
/// let sessions = SessionMiddleware::builder(store, "keyboard cat").build()?;
/// # Ok(()) }
/// ```
///
/// [connect-redis]: https://github.com/tj/connect-redis
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    settings: Arc<Settings>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("mode", &self.conn.mode())
            .field("settings", &self.settings)
            .finish()
    }
}

impl RedisStore {
    /// Connects to one Redis server with the default settings; see
    /// [`RedisStoreBuilder::connect`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the URL is invalid or the server cannot be reached.
    pub async fn new(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// Connects to a Redis Cluster with the default settings; see
    /// [`RedisStoreBuilder::connect_cluster`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a URL is invalid or the cluster cannot be reached.
    pub async fn cluster<U: AsRef<str>>(
        urls: impl IntoIterator<Item = U>,
    ) -> Result<Self, StoreError> {
        Self::builder().connect_cluster(urls).await
    }

    /// A store with the default settings on a [`ConnectionManager`] you already hold.
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        Self::builder().build(manager)
    }

    /// A store with the default settings on a cluster connection you already hold.
    pub fn from_cluster_connection(conn: ClusterConnection) -> Self {
        Self::builder().build_cluster(conn)
    }

    /// A builder for the prefix, TTLs, scan size and timeouts.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    fn key(&self, sid: &str) -> String {
        let prefix = &self.settings.prefix;
        let mut key = String::with_capacity(prefix.len() + sid.len());
        key.push_str(prefix);
        key.push_str(sid);
        key
    }

    /// connect-redis's TTL: whole seconds until the cookie expires, rounded up (0 once
    /// expired), or the default TTL for a browser-session cookie.
    fn ttl_secs(&self, rec: &SessionRecord) -> i64 {
        let Some(at) = rec.cookie.expires_unix_ms() else {
            return self.settings.default_ttl_secs;
        };
        let left_ms = at.saturating_sub(now_ms()).max(0);
        left_ms.saturating_add(999) / 1000
    }

    async fn run<T: FromRedisValue>(
        &self,
        cmd: Cmd,
        target: Target<'_>,
        effect: Effect<'_>,
        idempotent: Idempotent,
    ) -> Result<T, StoreError> {
        let timeout = self.settings.response_timeout;
        self.conn
            .run(cmd, target, effect, idempotent, timeout)
            .await
            .map_err(StoreError::backend)
    }

    /// [`run`](Self::run) for a command of plain arguments (no `Cmd` built on the lean
    /// connection).
    async fn run_args<T: FromRedisValue>(
        &self,
        args: &[&[u8]],
        target: Target<'_>,
        effect: Effect<'_>,
        idempotent: Idempotent,
    ) -> Result<T, StoreError> {
        let timeout = self.settings.response_timeout;
        self.conn
            .run_args(args, target, effect, idempotent, timeout)
            .await
            .map_err(StoreError::backend)
    }

    /// Runs `cmd`, whose one key is `key`, on the node that serves that key; `write`
    /// when it changes the key (the client cache then reloads it, see `lean.rs`).
    async fn on_key<T: FromRedisValue>(
        &self,
        key: &str,
        cmd: Cmd,
        effect: Effect<'_>,
        idempotent: Idempotent,
    ) -> Result<T, StoreError> {
        let target = Target::Key(key.as_bytes());
        self.run(cmd, target, effect, idempotent).await
    }

    async fn get_record(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        if self.conn.caching() {
            let loaded = self.load_record(sid).await?;
            return Ok(loaded.map(|l| Arc::unwrap_or_clone(l.record)));
        }
        let key = self.key(sid);
        let mut cmd = redis::cmd("GET");
        cmd.arg(&key);
        let json: Option<Vec<u8>> = self
            .on_key(&key, cmd, Effect::None, Idempotent::Yes)
            .await?;
        let parse = |j: Vec<u8>| SessionRecord::from_json(&j).map_err(StoreError::Serialization);
        json.map(parse).transpose()
    }

    /// A plain `SET` is [`Idempotent::Yes`]: re-sent after a dropped connection, it is
    /// one more last-writer-wins write within this call, which is all `set` promises.
    async fn set_record(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        let ttl = self.ttl_secs(rec);
        if ttl <= 0 {
            return self.destroy_record(sid).await;
        }
        let key = self.key(sid);
        let json = rec.to_json();
        let mut cmd = Cmd::with_capacity(5, key.len() + json.len() + 24);
        cmd.arg("SET").arg(&key).arg(json.as_bytes());
        if !self.settings.disable_ttl {
            cmd.arg("EX").arg(ttl);
        }
        let effect = Effect::Write(key.as_bytes());
        self.on_key(&key, cmd, effect, Idempotent::Yes).await
    }

    async fn destroy_record(&self, sid: &str) -> Result<(), StoreError> {
        let key = self.key(sid);
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&key);
        let effect = Effect::Delete(key.as_bytes());
        self.on_key::<i64>(&key, cmd, effect, Idempotent::Yes)
            .await
            .map(drop)
    }

    async fn touch_record(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        if self.settings.disable_touch || self.settings.disable_ttl {
            return Ok(());
        }
        // EXPIRE leaves a missing key missing; with a TTL of 0 it deletes the key.
        let key = self.key(sid);
        let mut cmd = redis::cmd("EXPIRE");
        cmd.arg(&key).arg(self.ttl_secs(rec));
        let effect = Effect::Write(key.as_bytes());
        self.on_key::<i64>(&key, cmd, effect, Idempotent::Yes)
            .await
            .map(drop)
    }
}

impl SessionStore for RedisStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.get_record(sid).boxed()
    }

    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.set_record(sid, rec).boxed()
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.destroy_record(sid).boxed()
    }

    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.touch_record(sid, rec).boxed()
    }

    fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        self.load_record(sid).boxed()
    }

    /// Answered when the client cache holds the session.
    fn load_now(&self, sid: &str) -> Option<Result<Option<Loaded>, StoreError>> {
        self.load_cached(sid)
    }

    fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> StoreFuture<'a, Option<Version>> {
        self.create_record(sid, rec).boxed()
    }

    fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> StoreFuture<'a, SaveOutcome> {
        self.save_if_record(sid, rec, expected).boxed()
    }

    fn all(&self) -> StoreFuture<'_, HashMap<String, SessionRecord>> {
        self.all_records().boxed()
    }

    fn len(&self) -> StoreFuture<'_, usize> {
        async move { Ok(self.keys().await?.len()) }.boxed()
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        self.clear_all().boxed()
    }
}
