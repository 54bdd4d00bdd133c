//! [`RedisStore`]: sessions in Redis or Redis Cluster, stored exactly as connect-redis
//! stores them (key `sess:<id>`, value the JSON record, TTL from the cookie's expiry).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::FutureExt;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::RoutingInfo;
use redis::{Cmd, FromRedisValue};

use super::{SessionStore, StoreError, StoreFuture};
use crate::encoding::now_ms;
use crate::record::SessionRecord;

#[path = "redis/builder.rs"]
mod builder;
#[path = "redis/conn.rs"]
mod conn;

pub use builder::RedisStoreBuilder;
use conn::Conn;

/// The settings shared by every clone of a store.
#[derive(Debug)]
struct Settings {
    prefix: String,
    default_ttl_secs: i64,
    disable_touch: bool,
    disable_ttl: bool,
    scan_count: usize,
    response_timeout: Duration,
}

/// A [`SessionStore`] in Redis or Redis Cluster, wire-compatible with Node's
/// [connect-redis]: a session created by an Express app on the same Redis is read here,
/// and back.
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
/// It is a cheap-clone handle: clones share one connection. A lost connection is made
/// again by the next call, and no command waits longer than the
/// [`response_timeout`](RedisStoreBuilder::response_timeout): a dead Redis gives a
/// prompt error (a 500 from the middleware), not a hung request.
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
        format!("{}{sid}", self.settings.prefix)
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
        cmd: &Cmd,
        node: Option<&RoutingInfo>,
    ) -> Result<T, StoreError> {
        let timeout = self.settings.response_timeout;
        self.conn
            .run(cmd, node, timeout)
            .await
            .map_err(StoreError::backend)
    }

    /// Every key under the prefix, deduplicated (`SCAN` may repeat keys).
    async fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let timeout = self.settings.response_timeout;
        let nodes = self
            .conn
            .scan_targets(timeout)
            .await
            .map_err(StoreError::backend)?;
        let mut keys = HashSet::new();
        for node in &nodes {
            let mut cursor = 0_u64;
            loop {
                let (next, page): (u64, Vec<Vec<u8>>) =
                    self.run(&self.scan(cursor), node.as_ref()).await?;
                keys.extend(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    fn scan(&self, cursor: u64) -> Cmd {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(glob_pattern(&self.settings.prefix));
        cmd.arg("COUNT").arg(self.settings.scan_count);
        cmd
    }

    async fn get_record(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let json: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(self.key(sid)), None).await?;
        let parse = |j: Vec<u8>| SessionRecord::from_json(&j).map_err(StoreError::Serialization);
        json.map(parse).transpose()
    }

    async fn set_record(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        let ttl = self.ttl_secs(rec);
        if ttl <= 0 {
            return self.run(redis::cmd("DEL").arg(self.key(sid)), None).await;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(sid)).arg(rec.to_json());
        if !self.settings.disable_ttl {
            cmd.arg("EX").arg(ttl);
        }
        self.run(&cmd, None).await
    }

    async fn touch_record(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        if self.settings.disable_touch || self.settings.disable_ttl {
            return Ok(());
        }
        // EXPIRE leaves a missing key missing; with a TTL of 0 it deletes the key.
        let mut cmd = redis::cmd("EXPIRE");
        cmd.arg(self.key(sid)).arg(self.ttl_secs(rec));
        self.run::<i64>(&cmd, None).await.map(drop)
    }

    async fn all_records(&self) -> Result<HashMap<String, SessionRecord>, StoreError> {
        let keys = self.keys().await?;
        let mut out = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(self.settings.scan_count) {
            let values: Vec<Option<Vec<u8>>> =
                self.run(redis::cmd("MGET").arg(chunk), None).await?;
            // A value is missing when its key expired between SCAN and MGET.
            for (key, json) in chunk.iter().zip(values).filter_map(|(k, v)| Some((k, v?))) {
                let sid = key
                    .strip_prefix(self.settings.prefix.as_bytes())
                    .unwrap_or(key);
                let rec = SessionRecord::from_json(&json).map_err(StoreError::Serialization)?;
                out.insert(String::from_utf8_lossy(sid).into_owned(), rec);
            }
        }
        Ok(out)
    }

    async fn clear_all(&self) -> Result<(), StoreError> {
        for chunk in self.keys().await?.chunks(self.settings.scan_count) {
            self.run::<i64>(redis::cmd("DEL").arg(chunk), None).await?;
        }
        Ok(())
    }
}

/// A `SCAN MATCH` pattern for every key starting with `prefix`: glob metacharacters in
/// the prefix are escaped so that they match only themselves.
fn glob_pattern(prefix: &str) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 2);
    for &b in prefix.as_bytes() {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(b);
    }
    pattern.push(b'*');
    pattern
}

impl SessionStore for RedisStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.get_record(sid).boxed()
    }

    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.set_record(sid, rec).boxed()
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        async move { self.run(redis::cmd("DEL").arg(self.key(sid)), None).await }.boxed()
    }

    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.touch_record(sid, rec).boxed()
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

#[cfg(test)]
mod tests {
    use super::glob_pattern;

    #[test]
    fn glob_metacharacters_in_the_prefix_match_only_themselves() {
        assert_eq!(glob_pattern("sess:"), b"sess:*");
        assert_eq!(glob_pattern(""), b"*");
        assert_eq!(glob_pattern(r"a*b?[c]\"), br"a\*b\?\[c\]\\*");
    }
}
