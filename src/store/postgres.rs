//! [`PostgresStore`]: sessions in a PostgreSQL table, compatible with connect-pg-simple.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::FutureExt;
use ring::rand::SecureRandom;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::sync::OnceCell;

use super::{SessionStore, StoreError, StoreFuture};
use crate::encoding::now_ms;
use crate::record::SessionRecord;

const DAY: Duration = Duration::from_secs(86_400);
const PRUNE_EVERY: Duration = Duration::from_secs(15 * 60);
const PRUNE_BATCH: u64 = 1000;
/// How long [`PostgresStore::connect`]'s pool waits for a connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A [`PostgresStore`] option that [`PostgresStoreBuilder::build`] rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostgresConfigError {
    /// `table_name` is not a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes).
    InvalidTableName(String),
    /// `schema` is not a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes).
    InvalidSchemaName(String),
}

impl fmt::Display for PostgresConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (option, name) = match self {
            PostgresConfigError::InvalidTableName(n) => ("table_name", n),
            PostgresConfigError::InvalidSchemaName(n) => ("schema", n),
        };
        write!(
            f,
            "`{option}` must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*), got {name:?}"
        )
    }
}

impl std::error::Error for PostgresConfigError {}

/// Every statement the store runs, built once from the validated table name.
#[derive(Debug)]
struct Sql {
    lock: String,
    create_table: String,
    create_index: String,
    get: String,
    set: String,
    touch: String,
    destroy: String,
    all: String,
    len: String,
    clear: String,
    prune: String,
}

impl Sql {
    /// `t` is the quoted, possibly schema-qualified table; `table` the bare name. In
    /// every statement with a time, `$1` is the time zone of the `expire` column.
    fn new(t: &str, table: &str) -> Self {
        let at = |n: u8| format!("(to_timestamp(${n}) AT TIME ZONE $1)");
        let (now2, now3) = (at(2), at(3));
        Sql {
            lock: "SELECT pg_advisory_xact_lock(hashtext($1))".to_owned(),
            create_table: format!(
                r#"CREATE TABLE IF NOT EXISTS {t} ("sid" varchar NOT NULL COLLATE "default", "sess" json NOT NULL, "expire" timestamp(6) NOT NULL, CONSTRAINT "{table}_pkey" PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE)"#
            ),
            create_index: format!(
                r#"CREATE INDEX IF NOT EXISTS "IDX_{table}_expire" ON {t} ("expire")"#
            ),
            get: format!("SELECT sess::text FROM {t} WHERE expire >= {now2} AND sid = $3"),
            set: format!(
                "INSERT INTO {t} (sess, expire, sid) VALUES ($3::json, {now2}, $4) \
                 ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire"
            ),
            touch: format!("UPDATE {t} SET expire = {now3} WHERE expire >= {now2} AND sid = $4"),
            destroy: format!("DELETE FROM {t} WHERE sid = $1"),
            all: format!("SELECT sid, sess::text FROM {t} WHERE expire >= {now2}"),
            len: format!("SELECT count(*) FROM {t} WHERE expire >= {now2}"),
            clear: format!("DELETE FROM {t}"),
            prune: format!(
                "DELETE FROM {t} WHERE sid IN \
                 (SELECT sid FROM {t} WHERE expire < {now2} LIMIT {PRUNE_BATCH})"
            ),
        }
    }
}

struct Inner {
    pool: PgPool,
    table: String,
    sql: Sql,
    time_zone: String,
    default_ttl_ms: i64,
    disable_touch: bool,
    create_table: bool,
    table_ready: OnceCell<()>,
    prune_interval: Option<Duration>,
    pruning: AtomicBool,
}

/// A [`SessionStore`] keeping sessions in a PostgreSQL table, row for row what
/// connect-pg-simple keeps, so a Node app and a Rust app can share one table:
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
/// Expired rows are invisible to every read and deleted by a background task (see
/// [`prune_interval`](PostgresStoreBuilder::prune_interval)), which starts with the first
/// store call made inside a Tokio runtime and ends when the last handle is dropped.
/// Clones share one pool and one pruning task.
///
/// ```no_run
/// use actix_express_session::store::{sqlx, PostgresStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::postgres::PgPoolOptions::new()
///     .acquire_timeout(std::time::Duration::from_secs(3))
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

/// Configures a [`PostgresStore`]; from [`PostgresStore::builder`].
#[derive(Debug, Clone)]
#[must_use = "call .build() to get the store"]
pub struct PostgresStoreBuilder {
    pool: PgPool,
    schema: Option<String>,
    table_name: String,
    create_table_if_missing: bool,
    time_zone: String,
    default_ttl: Duration,
    disable_touch: bool,
    prune_interval: Option<Duration>,
}

impl PostgresStoreBuilder {
    /// The schema holding the table. Default none: the connection's `search_path`
    /// decides, as in connect-pg-simple.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The table's name. Default `"session"`, connect-pg-simple's.
    pub fn table_name(mut self, table: impl Into<String>) -> Self {
        self.table_name = table.into();
        self
    }

    /// Create the table and its index (connect-pg-simple's `table.sql`) before the first
    /// query when they do not exist. Default `false`. The schema must already exist.
    pub fn create_table_if_missing(mut self, create: bool) -> Self {
        self.create_table_if_missing = create;
        self
    }

    /// The time zone in which `expire` (a `timestamp` *without* time zone) holds wall-clock
    /// times. Default `"UTC"`.
    ///
    /// connect-pg-simple writes and compares `expire` in its connection's `TimeZone`
    /// setting (the server's `timezone` unless the database or role overrides it). When a
    /// Node app shares the table and `SHOW TimeZone` on its connections is not `UTC`, set
    /// the same zone here, or both apps misjudge each other's expiry by the offset. An
    /// unknown zone name makes every query fail.
    ///
    /// ```no_run
    /// # fn f(pool: actix_express_session::store::sqlx::PgPool) {
    /// use actix_express_session::store::PostgresStore;
    /// let store = PostgresStore::builder(pool).time_zone("Europe/Berlin").build();
    /// # }
    /// ```
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.time_zone = zone.into();
        self
    }

    /// How long a session whose cookie has no expiry (a browser-session cookie) is kept.
    /// Default one day, connect-pg-simple's `ttl`.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// Make [`touch`](SessionStore::touch) a no-op, so unmodified sessions are never
    /// written. Default `false`.
    pub fn disable_touch(mut self, disable: bool) -> Self {
        self.disable_touch = disable;
        self
    }

    /// How often expired rows are deleted; each wait is randomized to 50–150 % of it,
    /// as connect-pg-simple does. Default 15 minutes; `None` (or zero) turns the
    /// background task off: call [`PostgresStore::prune_expired`] yourself then.
    pub fn prune_interval(mut self, every: Option<Duration>) -> Self {
        self.prune_interval = every.filter(|d| !d.is_zero());
        self
    }

    /// The store.
    ///
    /// # Errors
    /// When the table or schema name is not a plain identifier.
    pub fn build(self) -> Result<PostgresStore, PostgresConfigError> {
        let table = checked(&self.table_name);
        let table =
            table.ok_or_else(|| PostgresConfigError::InvalidTableName(self.table_name.clone()))?;
        let qualified = match &self.schema {
            None => table,
            Some(s) => {
                let schema =
                    checked(s).ok_or_else(|| PostgresConfigError::InvalidSchemaName(s.clone()))?;
                format!("{schema}.{table}")
            }
        };
        Ok(self.assemble(qualified))
    }

    /// The store on `qualified`, the quoted (and validated) table name.
    fn assemble(self, qualified: String) -> PostgresStore {
        let inner = Inner {
            sql: Sql::new(&qualified, &self.table_name),
            table: qualified,
            pool: self.pool,
            time_zone: self.time_zone,
            default_ttl_ms: i64::try_from(self.default_ttl.as_millis()).unwrap_or(i64::MAX),
            disable_touch: self.disable_touch,
            create_table: self.create_table_if_missing,
            table_ready: OnceCell::new(),
            prune_interval: self.prune_interval,
            pruning: AtomicBool::new(false),
        };
        PostgresStore {
            inner: Arc::new(inner),
        }
    }
}

/// The identifier, double-quoted, when it is `[A-Za-z_][A-Za-z0-9_]*` and fits
/// PostgreSQL's 63-byte limit.
fn checked(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let head = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok = head && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && name.len() <= 63;
    ok.then(|| format!("\"{name}\""))
}

impl PostgresStore {
    /// A store with the default settings on an existing pool.
    ///
    /// Give the pool a short `acquire_timeout` (sqlx's default is 30 s): while the
    /// database is down, every request waits that long before failing.
    pub fn new(pool: PgPool) -> Self {
        Self::builder(pool).assemble("\"session\"".to_owned())
    }

    /// A builder for the table, TTL, touch and pruning settings.
    pub fn builder(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            pool,
            schema: None,
            table_name: "session".to_owned(),
            create_table_if_missing: false,
            time_zone: "UTC".to_owned(),
            default_ttl: DAY,
            disable_touch: false,
            prune_interval: Some(PRUNE_EVERY),
        }
    }

    /// Connects to `url` with a pool that gives up on a connection after 3 seconds (so
    /// a dead database makes prompt errors) and returns a store with the default settings.
    ///
    /// # Errors
    /// When the URL is invalid or the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await;
        Ok(Self::new(pool.map_err(StoreError::backend)?))
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Deletes every expired row now, in batches of 1000, and returns how many went.
    /// The background task does this on its interval.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn prune_expired(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        prune(&self.inner).await
    }

    /// Creates the table once if asked to, and starts the pruning task once.
    async fn ready(&self) -> Result<&Inner, StoreError> {
        self.ensure_pruner();
        let inner = &*self.inner;
        if inner.create_table {
            inner
                .table_ready
                .get_or_try_init(|| create_table(inner))
                .await?;
        }
        Ok(inner)
    }

    /// Starts the pruning task once, from inside a Tokio runtime.
    fn ensure_pruner(&self) {
        let Some(every) = self.inner.prune_interval else {
            return;
        };
        if self.inner.pruning.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.pruning.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(prune_forever(Arc::downgrade(&self.inner), every));
    }

    fn expire_s(&self, rec: &SessionRecord, now: i64) -> f64 {
        let ms = rec
            .cookie
            .expires_unix_ms()
            .unwrap_or_else(|| now.saturating_add(self.inner.default_ttl_ms));
        ceil_s(ms)
    }
}

/// Milliseconds since the epoch, rounded up to whole seconds, as connect-pg-simple
/// rounds: its `to_timestamp($n)` values are always whole seconds.
fn ceil_s(ms: i64) -> f64 {
    (ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)) as f64
}

/// Runs `table.sql` under a transaction-scoped advisory lock, so concurrent stores
/// (other processes included) never race on the catalog.
async fn create_table(inner: &Inner) -> Result<(), StoreError> {
    let mut tx = inner.pool.begin().await.map_err(StoreError::backend)?;
    sqlx::query(&inner.sql.lock)
        .bind(&inner.table)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
    sqlx::query(&inner.sql.create_table)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
    sqlx::query(&inner.sql.create_index)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::backend)?;
    tx.commit().await.map_err(StoreError::backend)
}

async fn prune(inner: &Inner) -> Result<u64, StoreError> {
    let now = ceil_s(now_ms());
    let mut total = 0;
    loop {
        let done = sqlx::query(&inner.sql.prune)
            .bind(&inner.time_zone)
            .bind(now)
            .execute(&inner.pool)
            .await;
        let n = done.map_err(StoreError::backend)?.rows_affected();
        total += n;
        if n < PRUNE_BATCH {
            return Ok(total);
        }
    }
}

/// Clears the `pruning` flag however the task ends (store dropped, runtime shut down),
/// so that a later call can start a new one.
struct PruneGuard(Weak<Inner>);

impl Drop for PruneGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.pruning.store(false, Ordering::Release);
        }
    }
}

async fn prune_forever(store: Weak<Inner>, every: Duration) {
    let _guard = PruneGuard(store.clone());
    loop {
        tokio::time::sleep(jittered(every)).await;
        let Some(inner) = store.upgrade() else { return };
        if let Err(e) = prune(&inner).await {
            tracing::warn!(error = ?e, "pruning expired sessions failed");
        }
    }
}

/// `every` scaled by a random factor in [0.5, 1.5].
fn jittered(every: Duration) -> Duration {
    let mut bytes = [0; 4];
    let random = ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_or(0.5, |()| {
            f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
        });
    every.mul_f64(0.5 + random)
}

fn parse(json: &str) -> Result<SessionRecord, StoreError> {
    SessionRecord::from_json(json.as_bytes()).map_err(StoreError::Serialization)
}

impl PostgresStore {
    async fn get_row(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let inner = self.ready().await?;
        let q = sqlx::query_scalar::<_, String>(&inner.sql.get)
            .bind(&inner.time_zone)
            .bind(ceil_s(now_ms()));
        let q = q.bind(sid);
        let json = q
            .fetch_optional(&inner.pool)
            .await
            .map_err(StoreError::backend)?;
        json.as_deref().map(parse).transpose()
    }

    async fn set_row(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        let inner = self.ready().await?;
        let q = sqlx::query(&inner.sql.set)
            .bind(&inner.time_zone)
            .bind(self.expire_s(rec, now_ms()));
        let q = q.bind(rec.to_json()).bind(sid);
        q.execute(&inner.pool).await.map_err(StoreError::backend)?;
        Ok(())
    }

    async fn touch_row(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        let inner = self.ready().await?;
        let now = now_ms();
        let q = sqlx::query(&inner.sql.touch)
            .bind(&inner.time_zone)
            .bind(ceil_s(now));
        let q = q.bind(self.expire_s(rec, now)).bind(sid);
        q.execute(&inner.pool).await.map_err(StoreError::backend)?;
        Ok(())
    }

    async fn destroy_row(&self, sid: &str) -> Result<(), StoreError> {
        let inner = self.ready().await?;
        sqlx::query(&inner.sql.destroy)
            .bind(sid)
            .execute(&inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn clear_rows(&self) -> Result<(), StoreError> {
        let inner = self.ready().await?;
        sqlx::query(&inner.sql.clear)
            .execute(&inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn all_rows(&self) -> Result<HashMap<String, SessionRecord>, StoreError> {
        let inner = self.ready().await?;
        let q = sqlx::query_as::<_, (String, String)>(&inner.sql.all)
            .bind(&inner.time_zone)
            .bind(ceil_s(now_ms()));
        let rows = q
            .fetch_all(&inner.pool)
            .await
            .map_err(StoreError::backend)?;
        rows.into_iter()
            .map(|(sid, json)| Ok((sid, parse(&json)?)))
            .collect()
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let inner = self.ready().await?;
        let q = sqlx::query_scalar::<_, i64>(&inner.sql.len)
            .bind(&inner.time_zone)
            .bind(ceil_s(now_ms()));
        let n = q
            .fetch_one(&inner.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl SessionStore for PostgresStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.get_row(sid).boxed()
    }

    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.set_row(sid, rec).boxed()
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.destroy_row(sid).boxed()
    }

    /// Moves `expire` to the cookie's new expiry without rewriting `sess`, like
    /// connect-pg-simple; a no-op with [`disable_touch`](PostgresStoreBuilder::disable_touch).
    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        if self.inner.disable_touch {
            return futures_util::future::ready(Ok(())).boxed();
        }
        self.touch_row(sid, rec).boxed()
    }

    fn all(&self) -> StoreFuture<'_, HashMap<String, SessionRecord>> {
        self.all_rows().boxed()
    }

    fn len(&self) -> StoreFuture<'_, usize> {
        self.count().boxed()
    }

    /// Deletes every row, expired or not.
    fn clear(&self) -> StoreFuture<'_, ()> {
        self.clear_rows().boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_accepted_and_they_are_quoted() {
        assert_eq!(checked("session").as_deref(), Some("\"session\""));
        assert_eq!(checked("_Tbl9").as_deref(), Some("\"_Tbl9\""));
        for bad in [
            "",
            "9a",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            "sé",
            &"x".repeat(64),
        ] {
            assert_eq!(checked(bad), None, "{bad}");
        }
    }

    #[test]
    fn expiry_is_rounded_up_to_whole_seconds() {
        assert_eq!(ceil_s(1_000), 1.0);
        assert_eq!(ceil_s(1_001), 2.0);
        assert_eq!(ceil_s(0), 0.0);
        assert_eq!(ceil_s(-1), 0.0);
        assert_eq!(ceil_s(-1_500), -1.0);
    }

    #[test]
    fn the_pruning_interval_is_jittered_between_half_and_one_and_a_half() {
        let every = Duration::from_secs(100);
        for _ in 0..100 {
            let d = jittered(every);
            assert!(d >= every / 2 && d <= every * 3 / 2, "{d:?}");
        }
    }
}
