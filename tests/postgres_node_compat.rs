//! Sharing sessions with a Node app on connect-pg-simple: the table, the rows, and the
//! `expire` column read the same way from both sides, in any server time zone.
#![cfg(feature = "postgres")]

mod common;
mod postgres_util;

use std::time::UNIX_EPOCH;

use actix_express_session::store::sqlx::{self, AssertSqlSafe};
use actix_express_session::store::{PostgresStore, SessionStore};
use actix_express_session::SessionRecord;
use common::conformance::record;
use postgres_util::{ceil_s, now_ms, TestSchema};
use serde_json::json;

const HOUR: Option<i64> = Some(3_600_000);

/// connect-pg-simple's `table.sql`, verbatim but for the schema.
const TABLE_SQL: &str = r#"
CREATE TABLE {s}."session" (
  "sid" varchar NOT NULL COLLATE "default",
  "sess" json NOT NULL,
  "expire" timestamp(6) NOT NULL
)
WITH (OIDS=FALSE);
ALTER TABLE {s}."session" ADD CONSTRAINT "session_pkey" PRIMARY KEY ("sid") NOT DEFERRABLE INITIALLY IMMEDIATE;
CREATE INDEX "IDX_session_expire" ON {s}."session" ("expire");
"#;

#[actix_rt::test]
async fn rows_are_what_connect_pg_simple_writes() {
    let schema = TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    let rec = record(HOUR, json!({"user": "ada", "cart": [1, 2]}));
    store.set("wire", &rec).await.expect("set");
    let sql = format!(
        r#"SELECT sid, sess::text, extract(epoch from expire)::float8 FROM "{}"."session""#,
        schema.name
    );
    let (sid, sess, expire): (String, String, f64) = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_one(&schema.pool)
        .await
        .expect("row");
    assert_eq!(sid, "wire");
    assert_eq!(sess, rec.to_json());
    assert!(
        sess.starts_with(r#"{"cookie":{"originalMaxAge":3600000,"expires":""#),
        "{sess}"
    );
    let expires = rec.cookie.expires_unix_ms().expect("expires");
    assert_eq!(
        expire,
        ceil_s(expires),
        "expire is the cookie's expiry rounded up to a second"
    );

    store
        .set("browser", &record(None, json!({})))
        .await
        .expect("set");
    let sql = format!(
        r#"SELECT extract(epoch from expire)::float8 FROM "{}"."session" WHERE sid = 'browser'"#,
        schema.name
    );
    let expire: f64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(&schema.pool)
        .await
        .expect("row");
    let expected = ceil_s(now_ms() + 86_400_000);
    assert!(
        (expected - expire).abs() <= 2.0,
        "a cookie without expiry lives one day: {expire} vs {expected}"
    );
    schema.drop().await;
}

#[actix_rt::test]
async fn the_created_table_is_connect_pg_simples_table() {
    let schema = TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    assert_eq!(store.len().await.expect("len"), 0, "creates the table");
    let sql = "SELECT column_name::text, data_type::text, is_nullable::text, coalesce(datetime_precision, -1) \
               FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'session' ORDER BY ordinal_position";
    let columns: Vec<(String, String, String, i32)> = sqlx::query_as(sql)
        .bind(&schema.name)
        .fetch_all(&schema.pool)
        .await
        .expect("columns");
    let columns: Vec<_> = columns
        .iter()
        .map(|(n, t, null, p)| (n.as_str(), t.as_str(), null.as_str(), *p))
        .collect();
    assert_eq!(
        columns,
        [
            ("sid", "character varying", "NO", -1),
            ("sess", "json", "NO", -1),
            ("expire", "timestamp without time zone", "NO", 6)
        ]
    );
    let sql = "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname";
    let indexes: Vec<String> = sqlx::query_scalar(sql)
        .bind(&schema.name)
        .fetch_all(&schema.pool)
        .await
        .expect("indexes");
    assert_eq!(indexes, ["IDX_session_expire", "session_pkey"]);
    schema.drop().await;
}

/// What a Node app with connect-pg-simple does, on a connection whose `TimeZone` is `zone`
/// (node-postgres sends untyped parameters; the casts stand for PostgreSQL's inference).
struct Node {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    table: String,
}

impl Node {
    async fn connect(schema: &TestSchema, zone: &str) -> Self {
        let mut conn = schema.pool.acquire().await.expect("a connection");
        sqlx::query("SELECT set_config('TimeZone', $1, false)")
            .bind(zone)
            .execute(&mut *conn)
            .await
            .expect("zone");
        Node {
            conn,
            table: format!(r#""{}"."session""#, schema.name),
        }
    }

    async fn set(&mut self, sid: &str, sess: &str, expire_s: f64) {
        let sql = format!(
            "INSERT INTO {} (sess, expire, sid) SELECT $1::json, to_timestamp($2), $3 \
             ON CONFLICT (sid) DO UPDATE SET sess=$1::json, expire=to_timestamp($2) RETURNING sid",
            self.table
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(sess)
            .bind(expire_s)
            .bind(sid)
            .execute(&mut *self.conn)
            .await
            .expect("node set");
    }

    async fn get(&mut self, sid: &str) -> Option<String> {
        let sql = format!(
            "SELECT sess::text FROM {} WHERE sid = $1 AND expire >= to_timestamp($2)",
            self.table
        );
        let q = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(sid)
            .bind(ceil_s(now_ms()));
        q.fetch_optional(&mut *self.conn).await.expect("node get")
    }

    /// `expire` as the Node app understands it, in seconds since the epoch.
    async fn expire_s(&mut self, sid: &str) -> f64 {
        let sql = format!(
            "SELECT extract(epoch from expire::timestamptz)::float8 FROM {} WHERE sid = $1",
            self.table
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(sid)
            .fetch_one(&mut *self.conn)
            .await
            .expect("node expire")
    }
}

/// The JSON express-session 1.18 hands connect-pg-simple for `rec`.
fn express_json(max_age: i64, rec: &SessionRecord) -> String {
    let ours: serde_json::Value = serde_json::from_str(&rec.to_json()).expect("json");
    let iso = ours["cookie"]["expires"].as_str().expect("an expiry");
    format!(
        r#"{{"cookie":{{"originalMaxAge":{max_age},"expires":"{iso}","secure":false,"httpOnly":true,"path":"/"}},"user":"ada"}}"#
    )
}

#[actix_rt::test]
async fn node_and_rust_share_a_connect_pg_simple_table_in_any_time_zone() {
    for zone in ["UTC", "America/New_York", "Asia/Kolkata"] {
        let schema = TestSchema::new().await;
        schema.exec(TABLE_SQL).await;
        let store = PostgresStore::builder(schema.pool.clone())
            .schema(&schema.name)
            .time_zone(zone)
            .build()
            .expect("valid");
        let mut node = Node::connect(&schema, zone).await;
        for (offset, live) in [(1_800_000, true), (-1_800_000, false)] {
            let written_at = now_ms();
            let rec = record(Some(offset), json!({"user": "ada"}));
            let expire_s = ceil_s(rec.cookie.expires_unix_ms().expect("expires"));
            let sess = express_json(offset, &rec);
            node.set("from-node", &sess, expire_s).await;
            let loaded = store.get("from-node").await.expect("get");
            assert_eq!(
                loaded.is_some(),
                live,
                "{zone}: Rust sees Node's row as Node does ({offset} ms)"
            );
            let with_version = store.load("from-node").await.expect("load");
            assert_eq!(with_version.is_some(), live, "{zone}: load agrees with get");
            if let Some(l) = with_version {
                assert_eq!(
                    l.version.as_bytes(),
                    Some(sess.as_bytes()),
                    "{zone}: verbatim"
                );
                let at = l.extended_at.expect("known").duration_since(UNIX_EPOCH);
                let at = at.expect("after 1970").as_millis() as i64;
                assert!(
                    written_at - 1_000 <= at && at <= now_ms(),
                    "{zone}: Node extended the row just now, not at {at}"
                );
            }
            if let Some(loaded) = loaded {
                assert_eq!(
                    loaded,
                    SessionRecord::from_json(sess.as_bytes()).expect("valid"),
                    "{zone}"
                );
            }
            store.set("from-rust", &rec).await.expect("set");
            assert_eq!(
                node.get("from-rust").await.is_some(),
                live,
                "{zone}: Node sees Rust's row as Rust does"
            );
            assert_eq!(
                node.expire_s("from-rust").await,
                expire_s,
                "{zone}: both mean the same instant"
            );
        }
        drop(node);
        schema.drop().await;
    }
}
