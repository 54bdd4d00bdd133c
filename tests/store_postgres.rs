//! [`PostgresStore`] against a real PostgreSQL (`DATABASE_URL`, set by scripts/test.sh):
//! the conformance suite, the conditional operations (`load`, `create`, `save_if`) row by
//! row, expiry and pruning, touch, errors and a database restart.
#![cfg(feature = "postgres")]

mod common;
mod postgres_util;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_express_session::store::sqlx::{self, postgres::PgPoolOptions, AssertSqlSafe};
use actix_express_session::store::{
    Loaded, PostgresConfigError, PostgresStore, SaveOutcome, SessionStore, StoreError, Version,
};
use actix_express_session::{CookieOptions, SessionMiddleware};
use common::conformance::record;
use common::{app, body, get, pair, set_cookie, SECRET};
use postgres_util::{ceil_s, now_ms, pool, Server, TestSchema};
use serde_json::json;

const HOUR: Option<i64> = Some(3_600_000);
const DAY_MS: i64 = 86_400_000;

/// The version's bytes as text (PostgreSQL versions are the stored `sess` text).
fn text(v: &Version) -> &str {
    std::str::from_utf8(v.as_bytes().expect("a bytes version")).expect("UTF-8")
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// Asserts that `loaded.extended_at` is within the second before `[from, to]`: `expire`
/// is rounded up to a second, so the store reports the earliest time it could have been.
fn assert_extended_between(loaded: &Loaded, from: i64, to: i64) {
    let at = ms(loaded
        .extended_at
        .expect("the store knows when it extended the row"));
    assert!(
        from - 1_000 <= at && at <= to,
        "extended_at {at} not in [{from} - 1 s, {to}]"
    );
}
#[cfg(feature = "testing")]
#[actix_rt::test]
async fn postgres_store_passes_the_conformance_suite() {
    let schema = TestSchema::new().await;
    common::conformance::in_full(schema.builder().build().expect("valid")).await;
    schema.drop().await;
}

#[actix_rt::test]
async fn load_returns_the_stored_text_as_version_and_when_expire_was_set() {
    let schema = TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    let rec = record(HOUR, json!({"user": "ada"}));
    let before = now_ms();
    store.set("hour", &rec).await.expect("set");
    store
        .set("browser", &record(None, json!({"n": 1})))
        .await
        .expect("set");
    let after = now_ms();
    let rows = schema.rows("session").await;
    let loaded = store.load("hour").await.expect("load").expect("live");
    assert_eq!(*loaded.record, rec);
    assert_eq!(
        text(&loaded.version),
        rows[1].1,
        "the version is the row's text"
    );
    assert_eq!(text(&loaded.version), rec.to_json());
    assert_extended_between(&loaded, before, after);
    let browser = store.load("browser").await.expect("load").expect("live");
    assert_extended_between(&browser, before, after);

    // Text another writer stored, spaced its own way, comes back verbatim.
    let spaced = r#"{ "cookie" : {"originalMaxAge":3600000,"expires":"2099-01-01T00:00:00.000Z","path":"/"},  "n" : 1 }"#;
    schema.exec(&format!(
        r#"INSERT INTO {{s}}."session" VALUES ('spaced', '{spaced}', now() AT TIME ZONE 'UTC' + interval '30 minutes')"#
    )).await;
    let loaded = store.load("spaced").await.expect("load").expect("live");
    assert_eq!(text(&loaded.version), spaced);
    let half_an_hour_ago = now_ms() - 1_800_000;
    assert_extended_between(&loaded, half_an_hour_ago - 1_000, half_an_hour_ago + 1_000);

    store
        .set("dead", &record(Some(-5_000), json!({})))
        .await
        .expect("set");
    assert!(store.load("dead").await.expect("load").is_none(), "expired");
    assert!(store.load("missing").await.expect("load").is_none());
    assert_eq!(schema.count("session").await, 4, "loading changes no row");
    schema.drop().await;
}

#[actix_rt::test]
async fn create_takes_a_free_id_and_an_expired_one_but_never_a_live_one() {
    let schema = TestSchema::new().await;
    let store = schema
        .builder()
        .prune_interval(None)
        .build()
        .expect("valid");
    let rec = Arc::new(record(HOUR, json!({"n": 1})));
    let version = store.create("new", &rec).await.expect("create");
    assert_eq!(version.as_ref().map(text), Some(rec.to_json().as_str()));
    let expire = ceil_s(rec.cookie.expires_unix_ms().expect("expires"));
    let written = vec![("new".to_owned(), rec.to_json(), expire)];
    assert_eq!(schema.rows("session").await, written);

    let other = Arc::new(record(Some(7_200_000), json!({"n": 2})));
    assert_eq!(store.create("new", &other).await.expect("create"), None);
    assert_eq!(
        schema.rows("session").await,
        written,
        "the live row is left byte for byte"
    );

    schema.exec(r#"INSERT INTO {s}."session" VALUES ('old', '{"cookie":{},"stale":true}', now() AT TIME ZONE 'UTC' - interval '1 minute')"#).await;
    let taken = store.create("old", &other).await.expect("create");
    assert_eq!(taken.as_ref().map(text), Some(other.to_json().as_str()));
    let rows = schema.rows("session").await;
    let expire = ceil_s(other.cookie.expires_unix_ms().expect("expires"));
    assert_eq!(
        rows[1],
        ("old".to_owned(), other.to_json(), expire),
        "taken over"
    );

    let browser = Arc::new(record(None, json!({})));
    assert!(store.create("b", &browser).await.expect("create").is_some());
    let expire = schema.rows("session").await[0].2;
    let expected = ceil_s(now_ms() + DAY_MS);
    assert!(
        (expected - expire).abs() <= 2.0,
        "the default TTL: {expire}"
    );
    schema.drop().await;
}

/// `default_ttl(Duration::ZERO)` keeps the one-day default, as on every store: a
/// browser-session record gets `expire` a day ahead (through `set` and `create`), not now.
#[actix_rt::test]
async fn default_ttl_zero_keeps_the_one_day_default() {
    let schema = TestSchema::new().await;
    let store = schema
        .builder()
        .default_ttl(Duration::ZERO)
        .prune_interval(None)
        .build()
        .expect("valid");
    let browser = record(None, json!({"n": 1}));
    store.set("set", &browser).await.expect("set");
    let created = store.create("created", &Arc::new(browser)).await;
    assert!(created.expect("create").is_some());
    let expected = ceil_s(now_ms() + DAY_MS);
    let rows = schema.rows("session").await;
    assert_eq!(rows.len(), 2);
    for (sid, _, expire) in rows {
        assert!(
            (expected - expire).abs() <= 2.0,
            "{sid}: expire {expire}, expected about {expected}"
        );
        let rec = store.get(&sid).await.expect("get").expect("still there");
        assert_eq!(rec.data["n"], 1);
    }
    schema.drop().await;
}

#[actix_rt::test]
async fn save_if_writes_only_onto_the_loaded_version_and_never_resurrects() {
    let schema = TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    store
        .set("s", &record(HOUR, json!({"n": 1})))
        .await
        .expect("set");
    let loaded = store.load("s").await.expect("load").expect("live");
    let next = Arc::new(record(Some(7_200_000), json!({"n": 2})));
    let saved = match store.save_if("s", &next, &loaded.version).await {
        Ok(SaveOutcome::Saved(v)) => v,
        other => panic!("the loaded version saves: {other:?}"),
    };
    assert_eq!(text(&saved), next.to_json());
    let expire = ceil_s(next.cookie.expires_unix_ms().expect("expires"));
    let written = vec![("s".to_owned(), next.to_json(), expire)];
    assert_eq!(
        schema.rows("session").await,
        written,
        "exactly rec.to_json()"
    );

    let late = Arc::new(record(HOUR, json!({"n": 3})));
    for stale in [loaded.version.clone(), Version::from_number(1)] {
        match store.save_if("s", &late, &stale).await {
            Ok(SaveOutcome::Conflict(Some(current))) => {
                assert_eq!(*current.record, *next);
                assert_eq!(text(&current.version), next.to_json());
            }
            other => panic!("a stale version conflicts: {other:?}"),
        }
        assert_eq!(schema.rows("session").await, written, "nothing written");
    }

    // The same JSON, other bytes: a conflict (no jsonb normalization).
    let respaced = next.to_json().replacen(':', ": ", 1);
    schema
        .exec(&format!(
            r#"UPDATE {{s}}."session" SET sess = '{respaced}'"#
        ))
        .await;
    let outcome = store.save_if("s", &late, &saved).await.expect("save_if");
    assert!(
        matches!(&outcome, SaveOutcome::Conflict(Some(c)) if text(&c.version) == respaced),
        "{outcome:?}"
    );

    store.destroy("s").await.expect("destroy");
    let outcome = store.save_if("s", &late, &saved).await.expect("save_if");
    assert!(matches!(outcome, SaveOutcome::Gone), "{outcome:?}");
    assert_eq!(
        schema.count("session").await,
        0,
        "a destroyed session stays gone"
    );

    let dead = record(Some(-5_000), json!({}));
    store.set("dead", &dead).await.expect("set");
    let rows = schema.rows("session").await;
    let version = Version::from_bytes(dead.to_json().into_bytes());
    let outcome = store
        .save_if("dead", &late, &version)
        .await
        .expect("save_if");
    assert!(matches!(outcome, SaveOutcome::Gone), "expired: {outcome:?}");
    assert_eq!(
        schema.rows("session").await,
        rows,
        "an expired row is not revived"
    );
    schema.drop().await;
}

#[actix_rt::test]
async fn concurrent_creates_and_saves_of_one_session_let_exactly_one_through() {
    let schema = TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    let recs: Vec<_> = (0..16)
        .map(|i| Arc::new(record(HOUR, json!({"writer": i}))))
        .collect();
    let creates = recs.iter().map(|rec| store.create("one", rec));
    let created = futures_util::future::join_all(creates).await;
    let winners: Vec<_> = created
        .into_iter()
        .filter_map(|r| r.expect("create"))
        .collect();
    assert_eq!(winners.len(), 1, "one create takes the ID");
    let stored = &schema.rows("session").await[0].1;
    assert_eq!(text(&winners[0]), stored);

    // Not the winner's own record: rewriting the same bytes keeps the version.
    let others = recs.iter().filter(|rec| rec.to_json() != *stored);
    let saves = others.map(|rec| store.save_if("one", rec, &winners[0]));
    let saved: Vec<_> = futures_util::future::join_all(saves).await;
    let mut versions = Vec::new();
    for outcome in saved {
        match outcome.expect("save_if") {
            SaveOutcome::Saved(v) => versions.push(v),
            SaveOutcome::Conflict(Some(_)) => {}
            other => panic!("a save either wins or conflicts: {other:?}"),
        }
    }
    assert_eq!(
        versions.len(),
        1,
        "one save applies onto the shared version"
    );
    assert_eq!(text(&versions[0]), schema.rows("session").await[0].1);
    schema.drop().await;
}

// Statements prepared once per connection, one round trip per operation, and the
// store's own connections: tests/postgres_connections.rs.

/// Moves every row's `expire` `secs` seconds back, as if extended that much earlier.
async fn back_date(schema: &TestSchema, secs: u32) {
    let sql = format!(r#"UPDATE {{s}}."session" SET expire = expire - interval '{secs} seconds'"#);
    schema.exec(&sql).await;
}

/// The middleware on this store: a read within `touch_after` of the last extension
/// writes nothing; a later one moves `expire` (and only `expire`).
#[actix_rt::test]
async fn a_read_does_not_write_until_touch_after_has_passed() {
    let schema = TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    let cookie = CookieOptions::default().max_age(Duration::from_secs(3600));
    let mw = SessionMiddleware::builder(store, SECRET).cookie(cookie);
    let app = app(mw.build().expect("valid")).await;
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    back_date(&schema, 10).await;
    let before = schema.rows("session").await;
    assert_eq!(body(get(&app, "/read", Some(&cookie)).await).await, "1");
    assert_eq!(
        schema.rows("session").await,
        before,
        "extended 10 s ago: no write"
    );

    back_date(&schema, 120).await;
    let stale = schema.rows("session").await;
    assert_eq!(body(get(&app, "/read", Some(&cookie)).await).await, "1");
    let touched = schema.rows("session").await;
    assert_eq!(touched[0].1, stale[0].1, "the touch leaves sess as it was");
    let expected = ceil_s(now_ms() + 3_600_000);
    assert!(
        (expected - touched[0].2).abs() <= 2.0,
        "extended 130 s ago: touched to {} (expected {expected})",
        touched[0].2
    );
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
            sqlx::query_as::<_, (String, f64)>(AssertSqlSafe(sql))
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
