//! [`PostgresStore`] against a real PostgreSQL (`DATABASE_URL`, set by scripts/test.sh):
//! the conformance suite, pruning, connect-pg-simple compatibility and a database restart.
#![cfg(feature = "postgres")]

mod common;
mod postgres_util;

use std::time::{Duration, Instant};

use actix_express_session::store::sqlx::{self, postgres::PgPoolOptions};
use actix_express_session::store::{PostgresConfigError, PostgresStore, SessionStore, StoreError};
use actix_express_session::SessionRecord;
use common::conformance::record;
use postgres_util::{pool, Server, TestSchema};
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

fn ceil_s(ms: i64) -> f64 {
    (ms as f64 / 1000.0).ceil()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

#[actix_rt::test]
async fn postgres_store_passes_the_conformance_suite() {
    let schema = TestSchema::new().await;
    common::conformance::conformance(schema.builder().build().expect("valid")).await;
    schema.drop().await;
}

#[actix_rt::test]
async fn expired_rows_are_invisible_and_pruning_deletes_them_in_batches() {
    let schema = TestSchema::new().await;
    let store = schema
        .builder()
        .prune_interval(None)
        .build()
        .expect("valid");
    store
        .set("live", &record(HOUR, json!({})))
        .await
        .expect("set");
    store
        .set("dead", &record(Some(-5_000), json!({})))
        .await
        .expect("set");
    let old = r#"INSERT INTO {s}."session" SELECT 'old' || i, '{"cookie":{}}', now() - interval '1 hour' FROM generate_series(1, 2500) i"#;
    schema.exec(old).await;
    assert_eq!(schema.count("session").await, 2502);
    assert!(
        store.get("dead").await.expect("get").is_none(),
        "expired rows are invisible"
    );
    assert!(store.get("old7").await.expect("get").is_none());
    assert_eq!(store.len().await.expect("len"), 1);
    assert_eq!(
        store.prune_expired().await.expect("prune"),
        2501,
        "three batches"
    );
    assert_eq!(
        schema.count("session").await,
        1,
        "the rows are gone, not just hidden"
    );
    assert!(store.get("live").await.expect("get").is_some());
    schema.drop().await;
}

#[actix_rt::test]
async fn the_background_task_prunes_expired_rows() {
    let schema = TestSchema::new().await;
    let store = schema
        .builder()
        .prune_interval(Some(Duration::from_millis(200)))
        .build()
        .expect("valid");
    store
        .set("live", &record(HOUR, json!({})))
        .await
        .expect("set");
    store
        .set("dead", &record(Some(-5_000), json!({})))
        .await
        .expect("set");
    let deadline = Instant::now() + Duration::from_secs(10);
    while schema.count("session").await > 1 {
        assert!(
            Instant::now() < deadline,
            "the expired row was never pruned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.get("live").await.expect("get").is_some());
    drop(store);
    schema.drop().await;
}

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
    let (sid, sess, expire): (String, String, f64) = sqlx::query_as(&sql)
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
    let expire: f64 = sqlx::query_scalar(&sql)
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

#[actix_rt::test]
async fn concurrent_stores_create_the_table_once_without_errors() {
    let schema = TestSchema::new().await;
    let stores: Vec<_> = (0..4)
        .map(|_| schema.builder().table_name("raced").build().expect("valid"))
        .collect();
    let firsts = stores
        .iter()
        .enumerate()
        .map(|(i, s)| async move { s.set(&format!("s{i}"), &record(HOUR, json!({}))).await });
    for result in futures_util::future::join_all(firsts).await {
        result.expect("every store's first call succeeds");
    }
    assert_eq!(schema.count("raced").await, 4);
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
        sqlx::query(&sql)
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
        let q = sqlx::query_scalar(&sql).bind(sid).bind(ceil_s(now_ms()));
        q.fetch_optional(&mut *self.conn).await.expect("node get")
    }

    /// `expire` as the Node app understands it, in seconds since the epoch.
    async fn expire_s(&mut self, sid: &str) -> f64 {
        let sql = format!(
            "SELECT extract(epoch from expire::timestamptz)::float8 FROM {} WHERE sid = $1",
            self.table
        );
        sqlx::query_scalar(&sql)
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

#[actix_rt::test]
async fn touch_moves_only_the_expiry_and_can_be_disabled() {
    let schema = TestSchema::new().await;
    let expire_of = |sid: &'static str| {
        let sql = format!(
            r#"SELECT sess::text, extract(epoch from expire)::float8 FROM "{}"."session" WHERE sid = '{sid}'"#,
            schema.name
        );
        let pool = schema.pool.clone();
        async move {
            sqlx::query_as::<_, (String, f64)>(&sql)
                .fetch_one(&pool)
                .await
                .expect("row")
        }
    };
    let stored = record(Some(60_000), json!({"v": "stored"}));
    let later = record(HOUR, json!({"v": "in the request"}));
    let store = schema.builder().build().expect("valid");
    store.set("t", &stored).await.expect("set");
    store.touch("t", &later).await.expect("touch");
    let (sess, expire) = expire_of("t").await;
    assert_eq!(sess, stored.to_json(), "touch does not rewrite sess");
    assert_eq!(
        expire,
        ceil_s(later.cookie.expires_unix_ms().expect("expires"))
    );

    let lazy = schema.builder().disable_touch(true).build().expect("valid");
    lazy.set("u", &stored).await.expect("set");
    lazy.touch("u", &later).await.expect("touch");
    assert_eq!(
        expire_of("u").await.1,
        ceil_s(stored.cookie.expires_unix_ms().expect("expires")),
        "disabled"
    );
    schema.drop().await;
}

#[actix_rt::test]
async fn a_malformed_row_is_a_serialization_error_and_is_kept() {
    let schema = TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    store.len().await.expect("creates the table");
    schema.exec(r#"INSERT INTO {s}."session" VALUES ('bad', '{"no":"cookie"}', now() + interval '1 hour')"#).await;
    let err = store.get("bad").await.expect_err("a row without a cookie");
    assert!(matches!(err, StoreError::Serialization(_)), "{err:?}");
    assert_eq!(
        schema.count("session").await,
        1,
        "the row is left for inspection"
    );
    schema.drop().await;
}

#[actix_rt::test]
async fn names_that_are_not_plain_identifiers_are_rejected_by_build() {
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("a lazy pool");
    for bad in [
        "",
        "1st",
        "my-table",
        "a\"b",
        "s; DROP TABLE x",
        "naïve",
        &"x".repeat(64),
    ] {
        let err = PostgresStore::builder(pool.clone())
            .table_name(bad)
            .build()
            .expect_err(bad);
        assert_eq!(err, PostgresConfigError::InvalidTableName(bad.to_owned()));
        assert!(err.to_string().contains("table_name"), "{err}");
        let err = PostgresStore::builder(pool.clone())
            .schema(bad)
            .build()
            .expect_err(bad);
        assert_eq!(err, PostgresConfigError::InvalidSchemaName(bad.to_owned()));
    }
    PostgresStore::builder(pool)
        .schema("Public_2")
        .table_name("_Sessions")
        .build()
        .expect("plain names");
}

#[actix_rt::test]
async fn connecting_to_a_dead_server_fails_promptly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let started = Instant::now();
    let err = PostgresStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x"))
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
}

/// Runs on a server of its own (see [`Server`]) so stopping it disturbs no other test.
#[actix_rt::test]
async fn the_store_fails_promptly_while_the_database_is_down_and_recovers_after() {
    let server = Server::start();
    let acquire = Duration::from_secs(2);
    let store = PostgresStore::builder(pool(&server.url(), acquire).await)
        .create_table_if_missing(true)
        .build()
        .expect("valid");
    let rec = record(HOUR, json!({"n": 1}));
    store.set("kept", &rec).await.expect("set");

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.get("kept").await.expect_err("the database is down");
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert!(
            started.elapsed() < acquire + Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    store
        .set("new", &rec)
        .await
        .expect_err("the database is down");
    assert!(
        started.elapsed() < acquire + Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    let loaded = loop {
        match store.get("kept").await {
            Ok(found) => break found,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no recovery after the restart: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        loaded,
        Some(rec.clone()),
        "the same store instance works again and the data survived"
    );
    store.set("new", &rec).await.expect("writes work again");
}
