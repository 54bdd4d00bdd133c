//! The statements, built once per store, and the queries that run them: per-request
//! ones on a lent connection (see `local.rs`), the rare ones on the pool.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{Arguments, AssertSqlSafe, SqlSafeStr, SqlStr};

use super::local::Lent;
use super::Inner;
use crate::encoding::now_ms;
use crate::record::SessionRecord;
use crate::store::StoreError;

/// The value of a `Result`, or else the connection back to its set with the error.
macro_rules! or_lend {
    ($c:ident, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(e) => return ($c, Err(e)),
        }
    };
}
pub(super) use or_lend;

/// Expired rows deleted per statement, so that pruning never holds long locks.
pub(super) const PRUNE_BATCH: u64 = 1000;

/// Every statement the store runs, built once per store. Each is a [`SqlStr`] sharing
/// its text, so a query clones an `Arc`, not the SQL; sqlx prepares it once per
/// connection and caches it (its queries are persistent by default).
///
/// In each statement with a time, `$1` is the time zone of the `expire` column (a
/// `timestamp` without time zone) and `$2` the current time (in `set`, the expiry); `$3`
/// is the new expiry where there is one.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) lock: SqlStr,
    pub(super) create_table: SqlStr,
    pub(super) create_index: SqlStr,
    pub(super) get: SqlStr,
    /// `$3` the sid; returns `sess::text` and `expire` in seconds since the epoch.
    pub(super) load: SqlStr,
    /// `$3` an array of sids; returns `sid`, then as `load` does.
    pub(super) load_many: SqlStr,
    pub(super) set: SqlStr,
    /// `$3` the expiry, `$4` the JSON, `$5` the sid: inserts, or takes over an expired row.
    pub(super) create: SqlStr,
    /// As `create` for arrays of rows; returns the sids written.
    pub(super) create_many: SqlStr,
    /// `$3`–`$5` as in `create`, `$6` the expected `sess` text.
    pub(super) save_if: SqlStr,
    pub(super) touch: SqlStr,
    pub(super) destroy: SqlStr,
    pub(super) all: SqlStr,
    pub(super) len: SqlStr,
    pub(super) clear: SqlStr,
    pub(super) prune: SqlStr,
}

/// A statement built from validated, quoted identifiers only: every value is a `$n`.
/// Shared as an `Arc<str>`, so that cloning it for a query does not copy the text.
fn stmt(sql: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}

impl Sql {
    /// `t` is the quoted, possibly schema-qualified table; `table` the bare name.
    pub(super) fn new(t: &str, table: &str) -> Self {
        let at = |n: u8| format!("(to_timestamp(${n}) AT TIME ZONE $1)");
        let (now, then) = (at(2), at(3));
        Sql {
            lock: SqlStr::from_static("SELECT pg_advisory_xact_lock(hashtext($1))"),
            create_table: stmt(format!(
                r#"CREATE TABLE IF NOT EXISTS {t} ("sid" varchar NOT NULL COLLATE "default", "sess" json NOT NULL, "expire" timestamp(6) NOT NULL, CONSTRAINT "{table}_pkey" PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE)"#
            )),
            create_index: stmt(format!(
                r#"CREATE INDEX IF NOT EXISTS "IDX_{table}_expire" ON {t} ("expire")"#
            )),
            get: stmt(format!(
                "SELECT sess::text FROM {t} WHERE expire >= {now} AND sid = $3"
            )),
            load: stmt(format!(
                "SELECT sess::text, extract(epoch FROM expire AT TIME ZONE $1)::float8 \
                 FROM {t} WHERE expire >= {now} AND sid = $3"
            )),
            load_many: stmt(format!(
                "SELECT sid::text, sess::text, extract(epoch FROM expire AT TIME ZONE $1)::float8 \
                 FROM {t} WHERE expire >= {now} AND sid = ANY($3)"
            )),
            set: stmt(format!(
                "INSERT INTO {t} (sess, expire, sid) VALUES ($3::json, {now}, $4) \
                 ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire"
            )),
            create: stmt(format!(
                "INSERT INTO {t} AS cur (sess, expire, sid) VALUES ($4::json, {then}, $5) \
                 ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire \
                 WHERE cur.expire < {now}"
            )),
            create_many: stmt(format!(
                "INSERT INTO {t} AS cur (sess, expire, sid) \
                 SELECT s::json, (to_timestamp(e) AT TIME ZONE $1), id \
                 FROM unnest($3::float8[], $4::text[], $5::text[]) AS v(e, s, id) \
                 ON CONFLICT (sid) DO UPDATE SET sess = EXCLUDED.sess, expire = EXCLUDED.expire \
                 WHERE cur.expire < {now} RETURNING sid::text"
            )),
            // `COLLATE "C"`: equal means byte for byte, whatever the database's collation.
            save_if: stmt(format!(
                "UPDATE {t} SET sess = $4::json, expire = {then} \
                 WHERE sid = $5 AND expire >= {now} AND sess::text COLLATE \"C\" = $6"
            )),
            touch: stmt(format!(
                "UPDATE {t} SET expire = {then} WHERE expire >= {now} AND sid = $4"
            )),
            destroy: stmt(format!("DELETE FROM {t} WHERE sid = $1")),
            all: stmt(format!(
                "SELECT sid, sess::text FROM {t} WHERE expire >= {now}"
            )),
            len: stmt(format!("SELECT count(*) FROM {t} WHERE expire >= {now}")),
            clear: stmt(format!("DELETE FROM {t}")),
            prune: stmt(format!(
                "DELETE FROM {t} WHERE sid IN \
                 (SELECT sid FROM {t} WHERE expire < {now} LIMIT {PRUNE_BATCH})"
            )),
        }
    }
}

/// Milliseconds since the epoch rounded up to whole seconds, as connect-pg-simple
/// rounds every time it gives `to_timestamp`.
pub(super) fn ceil_s(ms: i64) -> f64 {
    (ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)) as f64
}

pub(super) fn parse(json: &str) -> Result<SessionRecord, StoreError> {
    SessionRecord::from_json(json.as_bytes()).map_err(StoreError::Serialization)
}

impl Inner {
    /// The arguments of a statement with `n` parameters, room reserved up front: `$1` the
    /// time zone and `$2` a time in seconds (now, or an expiry), as every statement here
    /// begins, then those `rest` adds.
    pub(super) fn args(
        &self,
        n: usize,
        seconds: f64,
        rest: impl FnOnce(&mut PgArguments) -> Result<(), BoxDynError>,
    ) -> Result<PgArguments, sqlx::Error> {
        let mut args = PgArguments::default();
        args.reserve(n, 64);
        args.add(self.time_zone.as_str())
            .and_then(|()| args.add(seconds))
            .and_then(|()| rest(&mut args))
            .map_err(sqlx::Error::Encode)?;
        Ok(args)
    }

    /// The `expire` of a record: its cookie's expiry, or now plus the default TTL.
    pub(super) fn expire_s(&self, rec: &SessionRecord, now: i64) -> f64 {
        let expires = rec.cookie.expires_unix_ms();
        ceil_s(expires.unwrap_or_else(|| now.saturating_add(self.default_ttl_ms)))
    }

    /// Runs `table.sql` under a transaction-scoped advisory lock, so that concurrent
    /// stores (other processes included) never race on the catalog. These run once, so
    /// they stay out of the connections' statement caches.
    pub(super) async fn create_table(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        let lock = sqlx::query(self.sql.lock.clone()).bind(&self.table);
        let lock = lock.persistent(false);
        lock.execute(&mut *tx).await.map_err(StoreError::backend)?;
        for ddl in [&self.sql.create_table, &self.sql.create_index] {
            sqlx::query(ddl.clone())
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)
    }

    /// The live row's `sess` text.
    pub(super) async fn get(&self, mut c: PgConnection, sid: &str) -> Lent<Option<String>> {
        let args = or_lend!(c, self.args(3, ceil_s(now_ms()), |a| a.add(sid)));
        let q = sqlx::query_scalar_with::<_, String, _>(self.sql.get.clone(), args);
        let found = q.fetch_optional(&mut c).await;
        (c, found)
    }

    pub(super) async fn set(
        &self,
        mut c: PgConnection,
        sid: &str,
        rec: &SessionRecord,
    ) -> Lent<()> {
        let expire = self.expire_s(rec, now_ms());
        let json = rec.to_json();
        let args = or_lend!(
            c,
            self.args(4, expire, |a| {
                a.add(&json)?;
                a.add(sid)
            })
        );
        let done = sqlx::query_with(self.sql.set.clone(), args)
            .execute(&mut c)
            .await;
        (c, done.map(drop))
    }

    /// Moves `expire` of a live row only: `sess` (and its `cookie.expires`) stays as it
    /// was, as in connect-pg-simple.
    pub(super) async fn touch(
        &self,
        mut c: PgConnection,
        sid: &str,
        rec: &SessionRecord,
    ) -> Lent<()> {
        let now = now_ms();
        let args = or_lend!(
            c,
            self.args(4, ceil_s(now), |a| {
                a.add(self.expire_s(rec, now))?;
                a.add(sid)
            })
        );
        let done = sqlx::query_with(self.sql.touch.clone(), args)
            .execute(&mut c)
            .await;
        (c, done.map(drop))
    }

    pub(super) async fn destroy(&self, mut c: PgConnection, sid: &str) -> Lent<()> {
        let q = sqlx::query(self.sql.destroy.clone()).bind(sid);
        let done = q.execute(&mut c).await.map(drop);
        (c, done)
    }

    pub(super) async fn all(&self) -> Result<HashMap<String, SessionRecord>, StoreError> {
        let q = sqlx::query_as::<_, (String, String)>(self.sql.all.clone()).bind(&self.time_zone);
        let q = q.bind(ceil_s(now_ms()));
        let rows = q.fetch_all(&self.pool).await.map_err(StoreError::backend)?;
        rows.into_iter()
            .map(|(sid, json)| Ok((sid, parse(&json)?)))
            .collect()
    }

    pub(super) async fn len(&self) -> Result<usize, StoreError> {
        let q = sqlx::query_scalar::<_, i64>(self.sql.len.clone()).bind(&self.time_zone);
        let n = q.bind(ceil_s(now_ms())).fetch_one(&self.pool).await;
        Ok(usize::try_from(n.map_err(StoreError::backend)?).unwrap_or(0))
    }

    /// Deletes every row, expired or not.
    pub(super) async fn clear(&self) -> Result<(), StoreError> {
        let q = sqlx::query(self.sql.clear.clone());
        q.execute(&self.pool).await.map_err(StoreError::backend)?;
        Ok(())
    }

    /// Deletes the rows expired by now, [`PRUNE_BATCH`] per statement; how many went.
    pub(super) async fn prune(&self) -> Result<u64, StoreError> {
        let now = ceil_s(now_ms());
        let mut total = 0;
        loop {
            let q = sqlx::query(self.sql.prune.clone())
                .bind(&self.time_zone)
                .bind(now);
            let n = q
                .execute(&self.pool)
                .await
                .map_err(StoreError::backend)?
                .rows_affected();
            total += n;
            if n < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_rounded_up_to_whole_seconds() {
        assert_eq!(ceil_s(1_000), 1.0);
        assert_eq!(ceil_s(1_001), 2.0);
        assert_eq!(ceil_s(0), 0.0);
        assert_eq!(ceil_s(-1), 0.0);
        assert_eq!(ceil_s(-1_500), -1.0);
    }

    #[test]
    fn statements_are_parameterized_and_quote_the_table() {
        let sql = Sql::new(r#""s"."t""#, "t");
        assert!(sql
            .create_table
            .as_str()
            .contains(r#"CONSTRAINT "t_pkey" PRIMARY KEY ("sid")"#));
        assert!(sql
            .create_index
            .as_str()
            .starts_with(r#"CREATE INDEX IF NOT EXISTS "IDX_t_expire" ON "s"."t""#));
        assert_eq!(
            sql.get.as_str(),
            r#"SELECT sess::text FROM "s"."t" WHERE expire >= (to_timestamp($2) AT TIME ZONE $1) AND sid = $3"#
        );
    }
}
