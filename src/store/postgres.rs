//! [`PostgresStore`]: sessions in a PostgreSQL table, compatible with connect-pg-simple.

mod batch;
mod builder;
mod conditional;
mod gather;
mod local;
mod prune;
mod sql;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{ready, FutureExt};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tokio::sync::OnceCell;

pub use self::builder::{PostgresConfigError, PostgresStoreBuilder};
use self::conditional::Update;
use self::local::{Connections, Idempotent, Lent};
use super::{Loaded, SaveOutcome, SessionStore, StoreError, StoreFuture, Version};
use crate::record::SessionRecord;

/// A live row's `sess` text and `expire` in seconds since the epoch.
type Row = (String, f64);

/// A row to create: `sid`, `sess` text, `expire` in seconds since the epoch.
type NewRow = (String, String, f64);

/// How long [`PostgresStore::connect`]'s pool waits for a connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);
/// The server-side `statement_timeout` of [`PostgresStore::connect`]'s connections:
/// longer than the per-request bound, so that `all`, `len` and `clear` on a large table
/// still finish, but a statement the client gave up on does not run forever.
const STATEMENT_TIMEOUT_MS: &str = "5000";

/// The state all clones of one store share.
struct Inner {
    /// `all`, `len`, `clear`, pruning and the table's creation run on it.
    pool: PgPool,
    /// Every per-request operation runs on one of these.
    conns: Connections,
    /// The quoted, possibly schema-qualified table name.
    table: String,
    sql: sql::Sql,
    time_zone: String,
    default_ttl_ms: i64,
    disable_touch: bool,
    create_table: bool,
    table_ready: OnceCell<()>,
    prune_interval: Option<Duration>,
    pruning: AtomicBool,
    /// Bounds each per-request operation; see [`PostgresStoreBuilder::query_timeout`].
    query_timeout: Duration,
}

/// A [`SessionStore`] keeping sessions in a PostgreSQL table, row for row what
/// connect-pg-simple keeps, so that a Node app and a Rust app can share one table:
///
/// ```sql
/// CREATE TABLE "session" (
///   "sid" varchar NOT NULL COLLATE "default" PRIMARY KEY,  -- constraint "session_pkey"
///   "sess" json NOT NULL,                                  -- the express-session record
///   "expire" timestamp(6) NOT NULL                         -- the cookie's expiry, rounded up to a second
/// );
/// CREATE INDEX "IDX_session_expire" ON "session" ("expire");
/// ```
///
/// Every operation is one statement, one round trip: [`load`](SessionStore::load)
/// returns the stored `sess` text verbatim as the [`Version`] and when `expire` was last
/// set (so the middleware skips most touches), [`create`](SessionStore::create) is an
/// `INSERT ... ON CONFLICT` that takes over only an expired row, and
/// [`save_if`](SessionStore::save_if) an `UPDATE` of the live row whose `sess` still has
/// those bytes (only when it writes nothing does a second query tell a conflict from a
/// destroyed session). Statements are prepared once per connection and cached.
///
/// Loads and creates that meet a busy moment share one statement: a thread runs at most
/// a quarter of its connections' worth (rounded up) of loads at once, and as many
/// creates; those that arrive while they run wait together for the next turn and go as
/// one `SELECT ... WHERE sid = ANY($3)`, each ID asked once, or one
/// `INSERT ... SELECT ... FROM unnest(...)`. Under load PostgreSQL runs one statement
/// for many requests, and the other connections stay free for the other writes; a load
/// never joins a statement already sent, so it sees every write made before it.
///
/// # Connections
///
/// The per-request operations (`load`, `create`, `save_if`, `get`, `set`, `touch`,
/// `destroy`) run on connections the store keeps itself: at most
/// [`connections_per_worker`](PostgresStoreBuilder::connections_per_worker) (default
/// 4) on each thread that uses the store, so workers × that many in all, opened on
/// first use with the pool's connect options (its settings, such as
/// [`connect`](Self::connect)'s `statement_timeout`, apply; its `after_connect` hook
/// does not run). Not the pool's, because sqlx's pool pings every connection it gets
/// back (a second round trip to PostgreSQL per operation) and spawns a task to take it
/// back; here an operation costs its one round trip, and a connection goes back by a
/// push onto the thread's list. When all of a thread's connections are busy, an
/// operation waits for the first one released, in turn, within the
/// [`query_timeout`](PostgresStoreBuilder::query_timeout).
///
/// A connection whose operation was abandoned mid-query (timeout, client gone) or that
/// failed by I/O or a fatal server error is closed, never reused; a plain SQL error
/// leaves it open. The next operation opens a new one, within the pool's acquire
/// timeout. An operation that finds its idle connection broken (its backend was
/// terminated, the database restarted since) runs again on a new one when that is safe
/// (always, but for `create` and `save_if` only after a fatal server error, which rolls
/// back whatever the session was running): service resumes by itself after an outage,
/// and only the operations in flight when a backend dies fail. The pool serves `all`,
/// `len`, `clear`, pruning and the table's creation.
///
/// Expired rows are invisible to every read and deleted by a background task (see
/// [`prune_interval`](PostgresStoreBuilder::prune_interval)), which starts with the first
/// store call made inside a Tokio runtime and ends when the last handle is dropped.
/// Clones share one pool, one set of connections and one pruning task. A row whose
/// `sess` is not a session object is a [`StoreError::Serialization`] and is left in
/// place.
///
/// On a pool of your own, set a short `acquire_timeout` (sqlx's default is 30 s, which
/// an operation opening a connection, and `all`, `len` and `clear`, wait while the
/// database is down) and `test_before_acquire(false)` (by default sqlx pings each
/// connection before handing it out; a connection found broken fails one query and is
/// replaced).
///
/// ```no_run
/// use actix_express_session::store::{sqlx, PostgresStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::postgres::PgPoolOptions::new()
///     .acquire_timeout(std::time::Duration::from_secs(3))
///     .test_before_acquire(false)
///     .connect("postgres://app@localhost/app")
///     .await?;
/// let store = PostgresStore::builder(pool).create_table_if_missing(true).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.inner.table)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// A store with the default settings on an existing pool.
    ///
    /// Give the pool a short `acquire_timeout` (sqlx's default is 30 s: while the
    /// database is down, opening a connection waits that long before failing, up to the
    /// [`query_timeout`](PostgresStoreBuilder::query_timeout) in a request) and
    /// `test_before_acquire(false)` (else each `all`, `len` or `clear` costs a ping first).
    pub fn new(pool: PgPool) -> Self {
        PostgresStoreBuilder::new(pool).assemble("\"session\"".to_owned())
    }

    /// A builder for the table, time zone, TTL, touch, pruning, timeout and connection
    /// settings.
    pub fn builder(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(pool)
    }

    /// Connects to `url` with a pool that gives up on a connection after 500 ms (so
    /// that a dead or frozen database makes prompt errors), sets `statement_timeout` to
    /// 5 s on its connections, and does not ping connections before use (one round trip
    /// per operation); returns a store with the default settings.
    ///
    /// # Errors
    /// When the URL is invalid or the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .options([("statement_timeout", STATEMENT_TIMEOUT_MS)]);
        let pool = PgPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options)
            .await;
        Ok(Self::new(pool.map_err(StoreError::backend)?))
    }

    /// Runs one per-request operation within the query timeout.
    fn bounded<'a, T: Send + 'a>(
        &'a self,
        op: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        let limit = self.inner.query_timeout;
        async move {
            match tokio::time::timeout(limit, op).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::backend(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "postgres did not answer within the query timeout",
                ))),
            }
        }
        .boxed()
    }

    /// Runs `op` on one of this thread's connections, once the table is ready (see
    /// `local.rs`).
    async fn run<'a, T, Fut>(
        &'a self,
        idempotent: Idempotent,
        mut op: impl FnMut(&'a Inner, PgConnection) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Lent<T>>,
    {
        let inner = self.ready().await?;
        inner.conns.run(idempotent, |c| op(inner, c)).await
    }

    /// The pool the store uses for `all`, `len`, `clear`, pruning and the table's
    /// creation, and whose connect options open its per-thread connections.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Deletes every expired row now, in batches of 1000, and returns how many went.
    /// The background task does this on its interval.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn prune_expired(&self) -> Result<u64, StoreError> {
        self.ready().await?.prune().await
    }

    /// Starts the pruning task once, and creates the table once if asked to. Once the
    /// table is ready this is two flag checks: the creation's (large) future is boxed so
    /// that it does not inflate every store call's future.
    async fn ready(&self) -> Result<&Inner, StoreError> {
        prune::ensure_pruner(&self.inner);
        let inner = &*self.inner;
        if inner.create_table && !inner.table_ready.initialized() {
            let create = || Box::pin(inner.create_table());
            inner.table_ready.get_or_try_init(create).await?;
        }
        Ok(inner)
    }
}

impl SessionStore for PostgresStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.bounded(async move {
            let json = self.run(Idempotent::Yes, |s, c| s.get(c, sid)).await?;
            json.as_deref().map(sql::parse).transpose()
        })
    }

    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.bounded(self.run(Idempotent::Yes, move |s, c| s.set(c, sid, rec)))
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.bounded(self.run(Idempotent::Yes, move |s, c| s.destroy(c, sid)))
    }

    /// Moves `expire` to the cookie's new expiry without rewriting `sess`, as
    /// connect-pg-simple does; a no-op with
    /// [`disable_touch`](PostgresStoreBuilder::disable_touch).
    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        if self.inner.disable_touch {
            return ready(Ok(())).boxed();
        }
        self.bounded(self.run(Idempotent::Yes, move |s, c| s.touch(c, sid, rec)))
    }

    /// One `SELECT` of `sess` and `expire`; `extended_at` is `expire` less the cookie's
    /// `originalMaxAge` (the default TTL for a browser-session cookie) and a second for
    /// connect-pg-simple's rounding up.
    fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        self.bounded(async move {
            let row = self.ready().await?.load_row(sid).await?;
            self.inner.loaded(row)
        })
    }

    /// One `INSERT ... ON CONFLICT (sid) DO UPDATE ... WHERE expire < now`.
    fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> StoreFuture<'a, Option<Version>> {
        self.bounded(async move {
            let json = rec.to_json();
            let inner = self.ready().await?;
            let expire = inner.expire_s(rec, crate::encoding::now_ms());
            let written = inner.create_row(sid, &json, expire).await?;
            Ok(written.then(|| Version::from_bytes(json.into_bytes())))
        })
    }

    /// One `UPDATE ... WHERE sess::text = expected`; when it writes nothing, a read on
    /// the same connection tells [`SaveOutcome::Gone`] from a
    /// [`SaveOutcome::Conflict`] carrying the current record.
    fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> StoreFuture<'a, SaveOutcome> {
        self.bounded(async move {
            // Stored `sess` is always UTF-8 text: other bytes cannot match it.
            let expected = expected
                .as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok());
            let json = rec.to_json();
            let save = |s: &'a Inner, c| s.save_if(c, sid, rec, &json, expected);
            Ok(match self.run(Idempotent::No, save).await? {
                Update::Written => SaveOutcome::Saved(Version::from_bytes(json.into_bytes())),
                Update::Current(row) => match self.inner.loaded(row)? {
                    Some(current) => SaveOutcome::Conflict(Some(current)),
                    None => SaveOutcome::Gone,
                },
            })
        })
    }

    fn all(&self) -> StoreFuture<'_, HashMap<String, SessionRecord>> {
        async move { self.ready().await?.all().await }.boxed()
    }

    fn len(&self) -> StoreFuture<'_, usize> {
        async move { self.ready().await?.len().await }.boxed()
    }

    /// Deletes every row, expired or not.
    fn clear(&self) -> StoreFuture<'_, ()> {
        async move { self.ready().await?.clear().await }.boxed()
    }
}
