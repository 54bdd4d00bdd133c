//! [`PostgresStore`] against a real PostgreSQL (`DATABASE_URL`, set by scripts/test.sh):
//! the conformance suite, expiry and pruning, touch, errors and a database restart.
#![cfg(feature = "postgres")]

mod common;
mod postgres_util;

use std::time::{Duration, Instant};

use actix_express_session::store::sqlx::{self, postgres::PgPoolOptions};
use actix_express_session::store::{PostgresConfigError, PostgresStore, SessionStore, StoreError};
use common::conformance::record;
use postgres_util::{ceil_s, pool, Server, TestSchema};
use serde_json::json;

const HOUR: Option<i64> = Some(3_600_000);
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
    let port = common::free_port();
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
