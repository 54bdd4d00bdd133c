//! [`RedisStoreBuilder`]: the connect-redis options, then a connection.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::RedisConnectionInfo;

use super::conn::Conn;
use super::{RedisStore, Settings};
use crate::store::StoreError;

const DAY: Duration = Duration::from_secs(86_400);
const TIMEOUT: Duration = Duration::from_millis(500);
const SCAN_COUNT: usize = 100;
/// Sessions cached per worker thread unless [`RedisStoreBuilder::client_cache`] says
/// otherwise: 0, no cache.
const CLIENT_CACHE: usize = 0;

/// Configures a [`RedisStore`], then connects it ([`connect`](Self::connect),
/// [`connect_cluster`](Self::connect_cluster),
/// [`connect_sentinel`](Self::connect_sentinel)) or wraps a connection you already hold
/// ([`build`](Self::build), [`build_cluster`](Self::build_cluster)).
///
/// ```no_run
/// use std::time::Duration;
/// use actix_express_session::RedisStore;
///
/// # async fn run() -> Result<(), actix_express_session::store::StoreError> {
/// let store = RedisStore::builder()
///     .prefix("myapp:sess:")
///     .default_ttl(Duration::from_secs(3600))
///     .connect("redis://127.0.0.1:6379")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "call .connect(url) or .build(connection) to get the store"]
pub struct RedisStoreBuilder {
    prefix: String,
    default_ttl: Duration,
    disable_touch: bool,
    disable_ttl: bool,
    scan_count: usize,
    response_timeout: Duration,
    connection_timeout: Duration,
    primary_settings: RedisConnectionInfo,
    client_cache: usize,
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            prefix: "sess:".to_owned(),
            default_ttl: DAY,
            disable_touch: false,
            disable_ttl: false,
            scan_count: SCAN_COUNT,
            response_timeout: TIMEOUT,
            connection_timeout: TIMEOUT,
            primary_settings: RedisConnectionInfo::default(),
            client_cache: CLIENT_CACHE,
        }
    }
}

impl RedisStoreBuilder {
    /// The key prefix: a session is stored under `prefix + id`. Default `"sess:"`, as
    /// connect-redis; an empty prefix is allowed (the keys are then the bare IDs, and
    /// `clear` empties the whole database).
    ///
    /// ```
    /// let builder = actix_express_session::RedisStore::builder().prefix("shop:sess:");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a session whose cookie has no expiry (a browser-session cookie) is kept,
    /// rounded up to whole seconds. Default one day (86400 s), as connect-redis; like
    /// connect-redis's `ttl: 0`, `Duration::ZERO` keeps that default (the same on every
    /// store).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = actix_express_session::RedisStore::builder().default_ttl(Duration::from_secs(3600));
    /// ```
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = if ttl.is_zero() { DAY } else { ttl };
        self
    }

    /// When true, `touch` does nothing, so a session's TTL moves only when it is saved.
    /// Default false (connect-redis's `disableTouch`).
    pub fn disable_touch(mut self, disable: bool) -> Self {
        self.disable_touch = disable;
        self
    }

    /// When true, sessions are stored without a TTL (Redis never expires them) and
    /// `touch` does nothing; an already expired session is still deleted when saved.
    /// Default false (connect-redis's `disableTTL`).
    pub fn disable_ttl(mut self, disable: bool) -> Self {
        self.disable_ttl = disable;
        self
    }

    /// The `COUNT` hint of each `SCAN` step in `all`, `len` and `clear`, and how many keys
    /// one `MGET` or `DEL` carries there. Default 100 (connect-redis's `scanCount`); 0
    /// keeps the default.
    pub fn scan_count(mut self, count: usize) -> Self {
        self.scan_count = if count == 0 { SCAN_COUNT } else { count };
        self
    }

    /// The longest one Redis command may take, waiting for a reconnection included; past
    /// it the store call fails with [`StoreError::Backend`] (the middleware answers by
    /// its outage policy). Default 500 ms, so that a frozen Redis (a hung server, a lost
    /// network path) is answered within a second.
    ///
    /// # Warning: keep it short
    /// This is what turns a dead or stalled Redis into a prompt error page instead of
    /// requests that hang until the client gives up.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The longest one connection attempt may take, at start-up and when reconnecting.
    /// Default 500 ms. Not used by [`build`](Self::build) and
    /// [`build_cluster`](Self::build_cluster), whose connection is already made.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// The database and login used on the primary that the sentinels name, for
    /// [`connect_sentinel`](Self::connect_sentinel) (whose URLs are the sentinels' own).
    /// Default: database 0, no login.
    ///
    /// ```
    /// use actix_express_session::store::redis::RedisConnectionInfo;
    ///
    /// let builder = actix_express_session::RedisStore::builder()
    ///     .primary_settings(RedisConnectionInfo::default().set_db(1).set_password("s3cret"));
    /// ```
    pub fn primary_settings(mut self, settings: RedisConnectionInfo) -> Self {
        self.primary_settings = settings;
        self
    }

    /// Caches up to `entries` sessions per worker thread, so that loading a session the
    /// thread read (or wrote) lately costs no round trip to Redis. Default 0: no cache.
    ///
    /// ```
    /// let builder = actix_express_session::RedisStore::builder().client_cache(10_000);
    /// ```
    ///
    /// This is Redis's server-assisted client-side caching (Redis 6 or later): each
    /// worker thread's connection speaks RESP3 and turns on `CLIENT TRACKING`, so Redis
    /// remembers which sessions it read and pushes an invalidation on that connection
    /// the moment one changes, whoever changed it (another thread, another app instance,
    /// a Node app, `redis-cli`), and when it expires, is evicted or the database is
    /// flushed. What is kept, per session: the stored bytes, the key's deadline (from
    /// `PTTL`), and the record parsed from them once; never the sessions of other
    /// threads. An entry is used while its key has more than a second to live; a full
    /// cache evicts the entries not used lately; a value over 64 KiB is not cached. A
    /// write evicts its session, then reads it back in the same round trip (Redis stops
    /// tracking a key for the client that writes it), so the next load is a hit. Loads
    /// are served from the cache only while the thread's connection is idle; under
    /// concurrent requests on one worker, some go to Redis as before.
    ///
    /// # Guarantee
    /// A change made through a `RedisStore` with this option on (on any thread, in any
    /// process) that Redis acknowledged before a load begins is seen by that load. Redis
    /// queues the invalidation during the writing command, and the store sends its
    /// writes so that Redis writes that invalidation to this thread's connection before
    /// the writer's reply (short of a rare coincidence in Redis's event loop, which then
    /// leaves the microsecond window described below); a load first reads, without
    /// waiting, whatever has reached its socket, applies it, and only then looks in the
    /// cache (and only while no other command of its connection is in flight). A
    /// dropped connection flushes the thread's cache (invalidations may have been lost
    /// while it was down). Details, with the Redis source behind them, in the source of
    /// the store's connection (`lean.rs`).
    ///
    /// # Caveat: other clients, a real network
    /// A change by another client (`redis-cli`, a Node app, a store without the cache)
    /// is answered a few
    /// microseconds before the invalidation reaches us (Redis writes both in the same
    /// pass of its event loop, that reply first): a load that begins inside that window
    /// reads the value from before the change. Reaching us that fast takes a writer that
    /// tells us the moment it is answered while Redis is descheduled, on a loaded
    /// machine; anything Redis answers after the write closes the window. Across a
    /// network the window is one network delay: a load racing an acknowledged write by
    /// less than that can read the old value, as a read from a replica could. One
    /// browser's requests are not affected (each waits for the response to the previous
    /// one).
    ///
    /// # Where it applies
    /// Only [`connect`](Self::connect) with a plain `redis://` URL. There,
    /// a server that refuses `HELLO 3` or `CLIENT TRACKING` (Redis 5, a proxy, an ACL)
    /// gets one `warn` line, and the store runs without the cache. With a cache set,
    /// [`connect`](Self::connect) on another URL (TLS, a Unix socket, `protocol=resp3`),
    /// [`connect_cluster`](Self::connect_cluster) and
    /// [`connect_sentinel`](Self::connect_sentinel) fail with
    /// [`StoreError::Unsupported`]`("client_cache")`; [`build`](Self::build) and
    /// [`build_cluster`](Self::build_cluster), which cannot fail, log a `warn` line and
    /// run without it.
    pub fn client_cache(mut self, entries: usize) -> Self {
        self.client_cache = entries;
        self
    }

    /// Connects to one Redis server: `redis://[user:password@]host:port[/db]`.
    ///
    /// A plain `redis://` URL is served by the store's own lean connection, one per
    /// worker thread (multiplexed: concurrent requests share it, their commands written
    /// in batches), which costs a fraction of redis-rs's `ConnectionManager` per command.
    /// Other URLs (`rediss://` with the driver's TLS features, a Unix socket, RESP3 via
    /// `?protocol=resp3`) go through redis-rs's `ConnectionManager`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the URL is invalid or the server cannot be reached;
    /// [`StoreError::Unsupported`]`("client_cache")` when a
    /// [`client_cache`](Self::client_cache) is set and the URL is not a plain `redis://`
    /// one.
    pub async fn connect(self, url: &str) -> Result<RedisStore, StoreError> {
        if self.client_cache > 0 && !Conn::is_lean(url).map_err(StoreError::backend)? {
            return Err(no_cache());
        }
        let conn = Conn::standalone(url, self.connection_timeout, self.client_cache).await;
        Ok(self.finish(conn.map_err(StoreError::backend)?))
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port` each).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a URL is invalid or the cluster cannot be reached;
    /// [`StoreError::Unsupported`]`("client_cache")` when a
    /// [`client_cache`](Self::client_cache) is set.
    pub async fn connect_cluster<U: AsRef<str>>(
        self,
        urls: impl IntoIterator<Item = U>,
    ) -> Result<RedisStore, StoreError> {
        if self.client_cache > 0 {
            return Err(no_cache());
        }
        let urls = urls.into_iter().map(|u| u.as_ref().to_owned()).collect();
        let conn = Conn::cluster(urls, self.connection_timeout, self.response_timeout).await;
        Ok(self.finish(conn.map_err(StoreError::backend)?))
    }

    /// Connects through Redis Sentinel: asks the sentinels at `sentinel_urls`
    /// (`redis://[user:password@]host:port` each, with the sentinels' own login, if any)
    /// which node is the primary of `service_name` (the name in their `sentinel monitor`
    /// line), sends every command there, and follows a failover without a restart. The
    /// other options apply as with [`connect`](Self::connect); the primary's database and
    /// login are [`primary_settings`](Self::primary_settings).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use actix_express_session::store::redis::RedisConnectionInfo;
    /// use actix_express_session::RedisStore;
    ///
    /// # async fn run() -> Result<(), actix_express_session::store::StoreError> {
    /// let sentinels = ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"];
    /// let store = RedisStore::builder()
    ///     .prefix("myapp:sess:")
    ///     .response_timeout(Duration::from_millis(500))
    ///     .primary_settings(RedisConnectionInfo::default().set_password("primary-secret"))
    ///     .connect_sentinel(sentinels, "mymaster")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Setting up
    /// Run a primary, at least one replica (`replicaof <primary> 6379`) and three
    /// sentinels on three machines, each with `sentinel monitor mymaster <primary-ip> 6379
    /// 2` (2: the quorum that must agree the primary is down). Give the store every
    /// sentinel: one that answers is enough, and the others cover for it. The addresses
    /// the sentinels hand out must be reachable from the app (behind NAT or in
    /// containers set `replica-announce-ip` and `sentinel announce-ip`). The connection is
    /// plain TCP.
    ///
    /// # During a failover
    /// The primary stops answering: commands fail (a refused or dropped connection, or the
    /// [`response_timeout`](Self::response_timeout)), and the store asks the sentinels
    /// again (`SENTINEL GET-MASTER-ADDR-BY-NAME`, all at once; the first address whose
    /// node answers `ROLE` as a primary wins). One such resolution runs at a time,
    /// bounded by the connection and response timeouts; requests that fail meanwhile wait
    /// for it and use its answer. Until the sentinels have promoted a replica
    /// (`down-after-milliseconds`, then an election and the promotion: a few seconds)
    /// they still name the lost primary, and a request that needs the store gets the
    /// middleware's outage answer (an empty 500 by default) within the response timeout,
    /// never a hang. Then the store moves to the new primary and service resumes, without
    /// a restart. A `READONLY` reply (the old primary came back as a replica) also makes
    /// the store ask again.
    ///
    /// The store also listens to a sentinel for `+switch-master`, and moves the moment a
    /// failover is announced rather than at the next failure. This matters when the old
    /// primary is still up (a manual `SENTINEL FAILOVER`, a partition): it keeps taking
    /// writes until the sentinels make it a replica, seconds later. The listener runs on
    /// the runtime that called `connect_sentinel` (in an actix-web app, `main`'s).
    ///
    /// A command cut off by the failure is sent again to the new primary only when that
    /// is safe: when it never ran (`READONLY`, a refused connection), or when running it
    /// twice is harmless (reads, `SET`, `EXPIRE`, `DEL`). Creating a session (`SET NX`)
    /// and the conditional save are not re-sent after an uncertain failure: that request
    /// fails instead.
    ///
    /// # Warning: a session written just before a failover can be lost
    /// Replication is asynchronous: the primary confirms a write before its replicas
    /// have it. A session created or saved in the last moments before the primary died,
    /// and not yet copied to the replica that is promoted, is not there: its cookie then
    /// points at nothing, so the next request starts a fresh session (the user is logged
    /// out, the cart is empty). The window is the replication lag, usually milliseconds.
    /// When the old primary is still up, the window is wider: what it takes between the
    /// promotion and the `+switch-master` announcement (about a second in a manual
    /// failover; for a primary cut off from the sentinels, until it learns of the
    /// failover) is lost when it rejoins as a replica. `min-replicas-to-write 1` and
    /// `min-replicas-max-lag 10` on the primary narrow both windows: it then refuses
    /// writes while no replica is close behind, which the store reports as an error (the
    /// outage answer), not as a silent logout.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when a URL is invalid or names a database (sentinels have
    /// none: see [`primary_settings`](Self::primary_settings)), when no sentinel answers,
    /// or when none names a reachable primary for `service_name`;
    /// [`StoreError::Unsupported`]`("client_cache")` when a
    /// [`client_cache`](Self::client_cache) is set.
    pub async fn connect_sentinel<U: AsRef<str>>(
        self,
        sentinel_urls: impl IntoIterator<Item = U>,
        service_name: &str,
    ) -> Result<RedisStore, StoreError> {
        if self.client_cache > 0 {
            return Err(no_cache());
        }
        let urls = sentinel_urls
            .into_iter()
            .map(|u| u.as_ref().to_owned())
            .collect();
        let primary = self.primary_settings.clone();
        let (connect, respond) = (self.connection_timeout, self.response_timeout);
        let conn = Conn::sentinel(urls, service_name, primary, connect, respond).await;
        Ok(self.finish(conn.map_err(StoreError::backend)?))
    }

    /// A store on a [`ConnectionManager`] you already hold. It keeps its own reconnection
    /// settings; [`response_timeout`](Self::response_timeout) still bounds every command.
    /// A [`client_cache`](Self::client_cache) does not apply (a `warn` line says so).
    pub fn build(self, manager: ConnectionManager) -> RedisStore {
        self.warn_no_cache();
        self.finish(Conn::from_manager(manager))
    }

    /// A store on a cluster connection you already hold. A
    /// [`client_cache`](Self::client_cache) does not apply (a `warn` line says so).
    pub fn build_cluster(self, conn: ClusterConnection) -> RedisStore {
        self.warn_no_cache();
        self.finish(Conn::Cluster(conn))
    }

    fn warn_no_cache(&self) {
        if self.client_cache > 0 {
            tracing::warn!(
                "redis: client_cache is ignored on a connection handed to the store \
                 (only `connect` with a plain redis:// URL caches)"
            );
        }
    }

    fn finish(self, conn: Conn) -> RedisStore {
        let ttl_secs = self.default_ttl.as_millis().div_ceil(1000);
        let settings = Settings {
            prefix: self.prefix,
            default_ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
            disable_touch: self.disable_touch,
            disable_ttl: self.disable_ttl,
            scan_count: self.scan_count,
            response_timeout: self.response_timeout,
            ifeq_refused: AtomicBool::new(false),
        };
        RedisStore {
            conn,
            settings: Arc::new(settings),
        }
    }
}

/// A client cache on a connection that cannot keep one.
fn no_cache() -> StoreError {
    StoreError::Unsupported("client_cache")
}
