//! [`PostgresStoreBuilder`] and the [`PostgresConfigError`] its `build` returns.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPool;
use tokio::sync::OnceCell;

use super::local::Connections;
use super::sql::Sql;
use super::{Inner, PostgresStore};

const DAY: Duration = Duration::from_secs(86_400);

/// A [`PostgresStore`] option that [`PostgresStoreBuilder::build`] rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostgresConfigError {
    /// `table_name` is not a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes).
    InvalidTableName(String),
    /// `schema` is not a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes).
    InvalidSchemaName(String),
    /// `connections_per_worker` is zero: every operation would wait forever.
    ZeroConnectionsPerWorker,
}

impl fmt::Display for PostgresConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (option, name) = match self {
            PostgresConfigError::InvalidTableName(n) => ("table_name", n),
            PostgresConfigError::InvalidSchemaName(n) => ("schema", n),
            PostgresConfigError::ZeroConnectionsPerWorker => {
                return f.write_str("`connections_per_worker` must be at least 1, got 0");
            }
        };
        write!(
            f,
            "`{option}` must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*), got {name:?}"
        )
    }
}

impl std::error::Error for PostgresConfigError {}

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
    query_timeout: Duration,
    connections_per_worker: usize,
}

impl PostgresStoreBuilder {
    pub(super) fn new(pool: PgPool) -> Self {
        PostgresStoreBuilder {
            pool,
            schema: None,
            table_name: "session".to_owned(),
            create_table_if_missing: false,
            time_zone: "UTC".to_owned(),
            default_ttl: DAY,
            disable_touch: false,
            prune_interval: Some(Duration::from_secs(15 * 60)),
            query_timeout: Duration::from_millis(500),
            connections_per_worker: 4,
        }
    }

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

    /// The time zone in which `expire` (a `timestamp` *without* time zone) holds
    /// wall-clock times. Default `"UTC"`.
    ///
    /// connect-pg-simple writes and compares `expire` in its connection's `TimeZone`
    /// setting (the server's `timezone` unless the database or role overrides it). When a
    /// Node app shares the table and `SHOW TimeZone` on its connections is not `UTC`, set
    /// the same zone here, or each app misjudges the other's expiries by the offset. An
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
    /// Default one day, connect-pg-simple's `ttl`; `Duration::ZERO` keeps that default
    /// (as connect-redis's `ttl: 0`, and the same on every store).
    ///
    /// ```no_run
    /// # fn f(pool: actix_express_session::store::sqlx::PgPool) {
    /// # use std::time::Duration;
    /// use actix_express_session::store::PostgresStore;
    /// let store = PostgresStore::builder(pool).default_ttl(Duration::from_secs(3600)).build();
    /// # }
    /// ```
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = if ttl.is_zero() { DAY } else { ttl };
        self
    }

    /// Make [`touch`](crate::store::SessionStore::touch) a no-op, so that unmodified sessions are
    /// never written. Default `false`.
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

    /// The longest one per-request operation (`load`, `create`, `save_if`, `get`, `set`,
    /// `touch`, `destroy`) may take, waiting for a connection (or opening one) included; past it the
    /// call fails with [`StoreError::Backend`](crate::store::StoreError::Backend) and the
    /// middleware answers by its outage policy. Default 500 ms, so that a frozen database
    /// (a hung server, a lost network path) is answered within a second. `all`, `len`,
    /// `clear` and pruning are not bounded by it. On a pool of your own, also set
    /// `statement_timeout` on its connections, so that the server gives up too.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// How many connections of its own the store keeps on each thread that uses it
    /// (each actix-web worker): per-request operations run on them, not on the pool
    /// (see [`PostgresStore`]), so the database sees up to workers × `n` connections
    /// from the store, beside the pool's. Default 4. They open on first use; when all
    /// `n` are busy, an operation waits for the first one released (first come, first
    /// served), within [`query_timeout`](Self::query_timeout). Zero is an error from
    /// [`build`](Self::build).
    ///
    /// One connection serves one statement at a time: `n` is how many operations of one
    /// worker reach the database at once. Of them, at most a quarter (rounded up) are
    /// loads, and as many creates: the loads (creates) beyond those wait together and
    /// share one statement. Raise `n` when requests of one worker often wait on each
    /// other (slow statements, many concurrent writes); keep workers × `n` (for every
    /// app instance) under the server's `max_connections`.
    ///
    /// ```no_run
    /// # fn f(pool: actix_express_session::store::sqlx::PgPool) {
    /// use actix_express_session::store::PostgresStore;
    /// let store = PostgresStore::builder(pool).connections_per_worker(8).build();
    /// # }
    /// ```
    pub fn connections_per_worker(mut self, n: usize) -> Self {
        self.connections_per_worker = n;
        self
    }

    /// The store.
    ///
    /// # Errors
    /// When the table or schema name is not a plain identifier, or
    /// `connections_per_worker` is zero.
    pub fn build(self) -> Result<PostgresStore, PostgresConfigError> {
        if self.connections_per_worker == 0 {
            return Err(PostgresConfigError::ZeroConnectionsPerWorker);
        }
        let table = quoted(&self.table_name)
            .ok_or_else(|| PostgresConfigError::InvalidTableName(self.table_name.clone()))?;
        let qualified = match &self.schema {
            None => table,
            Some(s) => {
                let schema =
                    quoted(s).ok_or_else(|| PostgresConfigError::InvalidSchemaName(s.clone()))?;
                format!("{schema}.{table}")
            }
        };
        Ok(self.assemble(qualified))
    }

    /// The store on `qualified`, the quoted (and validated) table name.
    pub(super) fn assemble(self, qualified: String) -> PostgresStore {
        let inner = Inner {
            sql: Sql::new(&qualified, &self.table_name),
            table: qualified,
            conns: Connections::new(self.pool.clone(), self.connections_per_worker.max(1)),
            pool: self.pool,
            time_zone: self.time_zone,
            default_ttl_ms: i64::try_from(self.default_ttl.as_millis()).unwrap_or(i64::MAX),
            disable_touch: self.disable_touch,
            create_table: self.create_table_if_missing,
            table_ready: OnceCell::new(),
            prune_interval: self.prune_interval,
            pruning: AtomicBool::new(false),
            query_timeout: self.query_timeout,
        };
        PostgresStore {
            inner: Arc::new(inner),
        }
    }
}

/// The identifier, double-quoted, when it is `[A-Za-z_][A-Za-z0-9_]*` and fits
/// PostgreSQL's 63-byte limit.
fn quoted(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let head = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok = head && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && name.len() <= 63;
    ok.then(|| format!("\"{name}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_accepted_and_they_are_quoted() {
        assert_eq!(quoted("session").as_deref(), Some("\"session\""));
        assert_eq!(quoted("_Tbl9").as_deref(), Some("\"_Tbl9\""));
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
            assert_eq!(quoted(bad), None, "{bad}");
        }
    }
}
