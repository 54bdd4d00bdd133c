//! [`RedisStore`] against real Redis (standalone and Cluster): the conformance suite,
//! wire compatibility with connect-redis, the connect-redis options, and outages.
#![cfg(feature = "redis")]

mod common;
mod redis_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_express_session::store::{Loaded, SaveOutcome, SessionStore, StoreError, Version};
use actix_express_session::{RedisStore, SessionRecord};
use common::conformance::record;
use common::logs::Logs;
use redis::AsyncCommands;
use redis_support::{
    assert_redis_error, backends, eventually, raw, redis_url, standalone, unique_prefix, Backend,
    DroppingRedis, OwnRedis,
};
use serde_json::json;

const HOUR: Option<i64> = Some(3_600_000);

#[cfg(feature = "testing")]
#[actix_rt::test]
async fn redis_store_passes_the_conformance_suite() {
    common::conformance::in_full(standalone(&unique_prefix("conformance")).await).await;
}

#[cfg(feature = "testing")]
#[actix_rt::test]
async fn redis_cluster_store_passes_the_conformance_suite() {
    let urls = redis_support::cluster_urls();
    let store = RedisStore::builder()
        .prefix(unique_prefix("cluster"))
        .connect_cluster(&urls)
        .await
        .expect("cluster");
    common::conformance::in_full(store).await;
}

#[actix_rt::test]
async fn the_empty_prefix_stores_bare_ids() {
    // A database of its own: with no prefix, `clear` removes every key it can see.
    let url = format!("{}/7", redis_url());
    let store = RedisStore::builder()
        .prefix("")
        .connect(&url)
        .await
        .expect("connects");
    #[cfg(feature = "testing")]
    common::conformance::in_full(store.clone()).await;
    let id = actix_express_session::uuid_v4_id();
    store
        .set(&id, &record(HOUR, json!({"n": 1})))
        .await
        .expect("set");
    let json: Option<String> = raw(&url).await.get(&id).await.expect("GET");
    assert!(json.is_some(), "the key is the bare id");
    store.destroy(&id).await.expect("destroy");
}

/// What express-session hands connect-redis, and what connect-redis stores, byte for byte
/// (user keys in sorted order: the order this crate writes them in).
const NODE_RECORD: &str = r#"{"cookie":{"originalMaxAge":3600000,"expires":"2099-01-01T00:00:00.000Z","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"cart":[1,2],"user":"ada"}"#;

fn secs_until_2099() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    4_070_908_800 - now.as_secs() as i64
}

#[actix_rt::test]
async fn records_are_stored_as_connect_redis_stores_them() {
    let store = RedisStore::new(&redis_url()).await.expect("connects");
    let id = actix_express_session::uuid_v4_id();
    let rec = SessionRecord::from_json(NODE_RECORD.as_bytes()).expect("a record");
    store.set(&id, &rec).await.expect("set");
    let mut conn = raw(&redis_url()).await;
    let key = format!("sess:{id}");
    let stored: String = conn.get(&key).await.expect("GET");
    assert_eq!(
        stored, NODE_RECORD,
        "the value is the JSON record, cookie first"
    );
    let ttl: i64 = conn.ttl(&key).await.expect("TTL");
    let expected = secs_until_2099();
    assert!(
        (expected - 2..=expected + 1).contains(&ttl),
        "TTL {ttl} is the cookie's remaining life {expected}"
    );
    store.destroy(&id).await.expect("destroy");
    assert!(!conn.exists::<_, bool>(&key).await.expect("EXISTS"));
}

#[actix_rt::test]
async fn a_browser_session_cookie_gets_the_one_day_ttl() {
    let store = RedisStore::new(&redis_url()).await.expect("connects");
    let id = actix_express_session::uuid_v4_id();
    store
        .set(&id, &record(None, json!({"n": 1})))
        .await
        .expect("set");
    let ttl: i64 = raw(&redis_url())
        .await
        .ttl(format!("sess:{id}"))
        .await
        .expect("TTL");
    assert!((86_399..=86_400).contains(&ttl), "TTL {ttl}");
    store.destroy(&id).await.expect("destroy");
}

#[actix_rt::test]
async fn records_written_by_connect_redis_load() {
    let prefix = unique_prefix("node");
    let store = standalone(&prefix).await;
    let node = r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ada"}"#;
    let _: () = raw(&redis_url())
        .await
        .set_ex(format!("{prefix}abc"), node, 60)
        .await
        .expect("SET");
    let rec = store.get("abc").await.expect("get").expect("found");
    assert_eq!(rec.data["user"], "ada");
    assert_eq!(
        (
            rec.cookie.expires(),
            rec.cookie.http_only(),
            rec.cookie.path()
        ),
        (None, true, "/")
    );
    assert_eq!(rec.to_json(), node, "and it round-trips to the same bytes");
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn an_expired_cookie_deletes_the_key_instead_of_saving() {
    let prefix = unique_prefix("expired");
    let store = standalone(&prefix).await;
    store
        .set("id", &record(HOUR, json!({"n": 1})))
        .await
        .expect("set");
    store
        .set("id", &record(Some(-1), json!({"n": 2})))
        .await
        .expect("set");
    assert!(!raw(&redis_url())
        .await
        .exists::<_, bool>(format!("{prefix}id"))
        .await
        .expect("EXISTS"));
}

#[actix_rt::test]
async fn touch_only_moves_the_ttl() {
    let prefix = unique_prefix("touch");
    let store = standalone(&prefix).await;
    let key = format!("{prefix}id");
    let mut conn = raw(&redis_url()).await;
    store
        .set("id", &record(Some(60_000), json!({"v": "stored"})))
        .await
        .expect("set");
    let before: String = conn.get(&key).await.expect("GET");
    store
        .touch("id", &record(HOUR, json!({"v": "in the request"})))
        .await
        .expect("touch");
    let after: String = conn.get(&key).await.expect("GET");
    assert_eq!(
        after, before,
        "the stored record, its cookie included, is not rewritten"
    );
    let ttl: i64 = conn.ttl(&key).await.expect("TTL");
    assert!((3_599..=3_600).contains(&ttl), "TTL {ttl}");
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn disable_ttl_stores_without_expiry_and_disables_touch() {
    let prefix = unique_prefix("nottl");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .disable_ttl(true)
        .connect(&redis_url())
        .await
        .expect("connects");
    let key = format!("{prefix}id");
    let mut conn = raw(&redis_url()).await;
    store
        .set("id", &record(HOUR, json!({})))
        .await
        .expect("set");
    assert_eq!(
        conn.ttl::<_, i64>(&key).await.expect("TTL"),
        -1,
        "no expiry"
    );
    store
        .touch("id", &record(Some(1_000), json!({})))
        .await
        .expect("touch");
    assert_eq!(
        conn.ttl::<_, i64>(&key).await.expect("TTL"),
        -1,
        "touch did nothing"
    );
    store
        .set("id", &record(Some(-1), json!({})))
        .await
        .expect("set");
    assert!(
        !conn.exists::<_, bool>(&key).await.expect("EXISTS"),
        "an expired session is still deleted"
    );
}

#[actix_rt::test]
async fn disable_touch_leaves_the_ttl_alone() {
    let prefix = unique_prefix("notouch");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .disable_touch(true)
        .connect(&redis_url())
        .await
        .expect("connects");
    store
        .set("id", &record(Some(60_000), json!({})))
        .await
        .expect("set");
    store
        .touch("id", &record(HOUR, json!({})))
        .await
        .expect("touch");
    let ttl: i64 = raw(&redis_url())
        .await
        .ttl(format!("{prefix}id"))
        .await
        .expect("TTL");
    assert!((59..=60).contains(&ttl), "TTL {ttl}");
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn the_default_ttl_is_configurable() {
    let prefix = unique_prefix("ttl");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .default_ttl(Duration::from_millis(1_500))
        .connect(&redis_url())
        .await
        .expect("connects");
    store
        .set("id", &record(None, json!({})))
        .await
        .expect("set");
    assert_eq!(
        raw(&redis_url())
            .await
            .ttl::<_, i64>(format!("{prefix}id"))
            .await
            .expect("TTL"),
        2,
        "rounded up"
    );
    store.clear().await.expect("clear");
}

/// `default_ttl(Duration::ZERO)` keeps the one-day default, as on every store (and as
/// connect-redis's `ttl: 0`), through `set` and `create` alike.
#[actix_rt::test]
async fn default_ttl_zero_keeps_the_one_day_default() {
    let prefix = unique_prefix("ttl0");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .default_ttl(Duration::ZERO)
        .connect(&redis_url())
        .await
        .expect("connects");
    let browser = record(None, json!({"n": 1}));
    store.set("set", &browser).await.expect("set");
    let created = store.create("created", &Arc::new(browser)).await;
    assert!(created.expect("create").is_some());
    let mut conn = raw(&redis_url()).await;
    for sid in ["set", "created"] {
        let ttl: i64 = conn.ttl(format!("{prefix}{sid}")).await.expect("TTL");
        assert!((86_399..=86_400).contains(&ttl), "{sid}: TTL {ttl}");
        let rec = store.get(sid).await.expect("get").expect("still there");
        assert_eq!(rec.data["n"], 1);
    }
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn glob_characters_in_the_prefix_match_only_themselves() {
    let base = unique_prefix("glob");
    let star = standalone(&format!("{base}a*[?]\\:")).await;
    let other = standalone(&format!("{base}aXb\\:")).await;
    star.set("1", &record(HOUR, json!({}))).await.expect("set");
    other.set("2", &record(HOUR, json!({}))).await.expect("set");
    assert_eq!(star.len().await.expect("len"), 1);
    assert_eq!(
        star.all().await.expect("all").keys().collect::<Vec<_>>(),
        ["1"]
    );
    star.clear().await.expect("clear");
    assert!(
        other.get("2").await.expect("get").is_some(),
        "a key the pattern would match unescaped survives"
    );
    other.clear().await.expect("clear");
}

#[actix_rt::test]
async fn many_sessions_are_scanned_in_pages() {
    let prefix = unique_prefix("pages");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .scan_count(7)
        .connect(&redis_url())
        .await
        .expect("connects");
    let writes = (0..250).map(|i| {
        let store = &store;
        async move {
            store
                .set(&format!("s{i}"), &record(HOUR, json!({"i": i})))
                .await
        }
    });
    futures_util::future::try_join_all(writes)
        .await
        .expect("sets");
    assert_eq!(store.len().await.expect("len"), 250);
    let all = store.all().await.expect("all");
    assert_eq!((all.len(), &all["s249"].data["i"]), (250, &json!(249)));
    store.clear().await.expect("clear");
    assert_eq!(store.len().await.expect("len"), 0);
}

#[actix_rt::test]
async fn a_malformed_record_is_a_serialization_error() {
    let prefix = unique_prefix("malformed");
    let store = standalone(&prefix).await;
    let _: () = raw(&redis_url())
        .await
        .set_ex(format!("{prefix}bad"), "{not json", 60)
        .await
        .expect("SET");
    assert!(matches!(
        store.get("bad").await,
        Err(StoreError::Serialization(_))
    ));
    assert!(matches!(
        store.all().await,
        Err(StoreError::Serialization(_))
    ));
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn an_unreachable_server_is_an_error_at_connect() {
    let port = common::free_port();
    let started = Instant::now();
    let err = RedisStore::new(&format!("redis://127.0.0.1:{port}"))
        .await
        .expect_err("nobody listens");
    assert_redis_error(&err);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(RedisStore::new("not a url").await.is_err());
}

const TIMEOUT: Duration = Duration::from_millis(800);
const MARGIN: Duration = Duration::from_millis(700);

/// Every call fails, promptly, with the driver's error as its source.
async fn assert_fails_promptly(store: &RedisStore, what: &str) {
    let rec = record(HOUR, json!({"n": 1}));
    for _ in 0..3 {
        let started = Instant::now();
        let get = store.get("id").await.map(drop);
        let took = started.elapsed();
        assert!(took < TIMEOUT + MARGIN, "{what}: get took {took:?}");
        assert_redis_error(&get.expect_err(what));
        let started = Instant::now();
        let set = store.set("id", &rec).await;
        let took = started.elapsed();
        assert!(took < TIMEOUT + MARGIN, "{what}: set took {took:?}");
        assert_redis_error(&set.expect_err(what));
    }
}

#[actix_rt::test]
async fn a_dead_or_stalled_server_fails_promptly_and_the_same_store_recovers() {
    let mut server = OwnRedis::start();
    let store = RedisStore::builder()
        .response_timeout(TIMEOUT)
        .connect(&server.url())
        .await
        .expect("connects");
    let rec = record(HOUR, json!({"n": 1}));
    store.set("id", &rec).await.expect("set while up");

    server.freeze(true);
    assert_fails_promptly(&store, "stalled server").await;
    server.freeze(false);
    eventually(Duration::from_secs(10), || store.get("id")).await;

    server.stop();
    assert_fails_promptly(&store, "stopped server").await;
    server.restart();
    eventually(Duration::from_secs(10), || store.set("id", &rec)).await;
    assert_eq!(store.get("id").await.expect("get after restart"), Some(rec));
}

// The conditional store calls (load, create, save_if), on one server and on the cluster,
// checked against what Redis holds.

/// The stored value and its TTL in seconds, read raw.
async fn stored(b: &mut Backend, sid: &str) -> (Option<Vec<u8>>, i64) {
    let key = b.key(sid);
    let value: Option<Vec<u8>> = b.raw.get(&key).await.expect("GET");
    let ttl: i64 = b.raw.ttl(&key).await.expect("TTL");
    (value, ttl)
}

/// `at` is within two seconds of `expected`.
fn assert_near(at: SystemTime, expected: SystemTime, what: &str) {
    let off = at
        .duration_since(expected)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .expect("a distance");
    assert!(off < Duration::from_secs(2), "{what}: off by {off:?}");
}

fn bytes(v: &Version) -> &[u8] {
    v.as_bytes().expect("a Redis version is the stored bytes")
}

#[actix_rt::test]
async fn load_returns_the_stored_bytes_and_when_the_ttl_was_set() {
    for mut b in backends("load").await {
        let name = b.name;
        assert!(
            b.store.load("missing").await.expect("load").is_none(),
            "{name}"
        );

        for (sid, rec) in [
            ("a", record(HOUR, json!({"n": 1}))),
            ("b", record(None, json!({}))),
        ] {
            b.store.set(sid, &rec).await.expect("set");
            let loaded = b.store.load(sid).await.expect("load").expect("found");
            let (value, _) = stored(&mut b, sid).await;
            assert_eq!(
                Some(bytes(&loaded.version)),
                value.as_deref(),
                "{name}: the exact bytes"
            );
            assert_eq!(bytes(&loaded.version), rec.to_json().as_bytes(), "{name}");
            assert_eq!(*loaded.record, rec, "{name}");
            let at = loaded.extended_at.expect("the key has a TTL");
            assert_near(
                at,
                SystemTime::now(),
                &format!("{name}: {sid} just written"),
            );
        }

        // Extended ten minutes ago: an hour-long session with 50 minutes left.
        let key = b.key("old");
        let old = record(HOUR, json!({})).to_json();
        let _: () = b.raw.pset_ex(&key, &old, 3_000_000).await.expect("PSETEX");
        let loaded = b.store.load("old").await.expect("load").expect("found");
        let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
        assert_near(loaded.extended_at.expect("a TTL"), ten_minutes_ago, name);

        // No TTL (disable_ttl, or a key made persistent): unknown.
        let _: () = b.raw.set(&key, &old).await.expect("SET");
        let loaded = b.store.load("old").await.expect("load").expect("found");
        assert_eq!(loaded.extended_at, None, "{name}");
        b.store.clear().await.expect("clear");
    }
}

#[actix_rt::test]
async fn create_writes_only_under_a_free_id() {
    for mut b in backends("create").await {
        let name = b.name;
        let first = Arc::new(record(HOUR, json!({"who": "first"})));
        let version = b.store.create("id", &first).await.expect("create");
        let version = version.expect("a free ID is written");
        let (value, ttl) = stored(&mut b, "id").await;
        assert_eq!(value.as_deref(), Some(first.to_json().as_bytes()), "{name}");
        assert_eq!(bytes(&version), first.to_json().as_bytes(), "{name}");
        assert!((3_599..=3_600).contains(&ttl), "{name}: TTL {ttl}");

        let second = Arc::new(record(HOUR, json!({"who": "second"})));
        let taken = b.store.create("id", &second).await.expect("create");
        assert!(taken.is_none(), "{name}: a taken ID is refused");
        let (after, _) = stored(&mut b, "id").await;
        assert_eq!(after, value, "{name}: the existing record is untouched");

        // An already expired cookie: nothing written, yet a version (written, then gone).
        let expired = Arc::new(record(Some(-1_000), json!({})));
        let version = b.store.create("expired", &expired).await.expect("create");
        assert_eq!(
            bytes(&version.expect("a version")),
            expired.to_json().as_bytes()
        );
        assert_eq!(stored(&mut b, "expired").await, (None, -2), "{name}");
        b.store.clear().await.expect("clear");
    }
}

#[actix_rt::test]
async fn save_if_writes_only_onto_the_loaded_version() {
    for mut b in backends("save-if").await {
        let name = b.name;
        b.store
            .set("id", &record(Some(60_000), json!({"v": 1})))
            .await
            .expect("set");
        let loaded = b.store.load("id").await.expect("load").expect("found");

        let newer = Arc::new(record(HOUR, json!({"v": 2})));
        let outcome = b.store.save_if("id", &newer, &loaded.version).await;
        let SaveOutcome::Saved(version) = outcome.expect("save_if") else {
            panic!("{name}: the loaded version is current")
        };
        let (value, ttl) = stored(&mut b, "id").await;
        assert_eq!(value.as_deref(), Some(newer.to_json().as_bytes()), "{name}");
        assert_eq!(bytes(&version), newer.to_json().as_bytes(), "{name}");
        assert!((3_599..=3_600).contains(&ttl), "{name}: TTL {ttl}");

        // The version loaded first is stale now: nothing written, the current record back.
        let stale = Arc::new(record(HOUR, json!({"v": 3})));
        let outcome = b.store.save_if("id", &stale, &loaded.version).await;
        let SaveOutcome::Conflict(Some(current)) = outcome.expect("save_if") else {
            panic!("{name}: a conflict carrying the current record")
        };
        assert_current(&current, &newer, name);
        assert_eq!(stored(&mut b, "id").await.0, value, "{name}: unchanged");

        // A version this store never hands out conflicts with whatever is stored.
        let outcome = b
            .store
            .save_if("id", &stale, &Version::from_number(7))
            .await;
        let SaveOutcome::Conflict(Some(current)) = outcome.expect("save_if") else {
            panic!("{name}: a conflict")
        };
        assert_current(&current, &newer, name);

        // Destroyed meanwhile: gone, and not brought back.
        b.store.destroy("id").await.expect("destroy");
        for expected in [version, Version::from_number(7)] {
            let outcome = b.store.save_if("id", &stale, &expected).await;
            assert!(
                matches!(outcome, Ok(SaveOutcome::Gone)),
                "{name}: {outcome:?}"
            );
            assert_eq!(
                stored(&mut b, "id").await,
                (None, -2),
                "{name}: no resurrection"
            );
        }
        b.store.clear().await.expect("clear");
    }
}

fn assert_current(current: &Loaded, expected: &SessionRecord, name: &str) {
    assert_eq!(*current.record, *expected, "{name}");
    assert_eq!(
        bytes(&current.version),
        expected.to_json().as_bytes(),
        "{name}"
    );
    let at = current.extended_at.expect("a TTL");
    assert_near(at, SystemTime::now(), name);
}

#[actix_rt::test]
async fn save_if_follows_the_ttl_options_and_deletes_an_expired_session() {
    for mut b in backends("save-if-ttl").await {
        let name = b.name;
        let no_ttl = b.store_with(RedisStore::builder().disable_ttl(true)).await;
        no_ttl
            .set("id", &record(HOUR, json!({"v": 1})))
            .await
            .expect("set");
        let loaded = no_ttl.load("id").await.expect("load").expect("found");
        let next = Arc::new(record(HOUR, json!({"v": 2})));
        let outcome = no_ttl.save_if("id", &next, &loaded.version).await;
        assert!(
            matches!(outcome, Ok(SaveOutcome::Saved(_))),
            "{name}: {outcome:?}"
        );
        assert_eq!(stored(&mut b, "id").await.1, -1, "{name}: no expiry");

        let loaded = b.store.load("id").await.expect("load").expect("found");
        let expired = Arc::new(record(Some(-1_000), json!({"v": 3})));
        let outcome = b.store.save_if("id", &expired, &loaded.version).await;
        assert!(
            matches!(outcome, Ok(SaveOutcome::Saved(_))),
            "{name}: {outcome:?}"
        );
        assert_eq!(
            stored(&mut b, "id").await,
            (None, -2),
            "{name}: deleted, as `set` does"
        );
    }
}

#[actix_rt::test]
async fn concurrent_saves_of_one_version_let_exactly_one_through() {
    for b in backends("save-if-race").await {
        b.store
            .set("id", &record(HOUR, json!({"v": 0})))
            .await
            .expect("set");
        let loaded = b.store.load("id").await.expect("load").expect("found");
        let saves = (0..16).map(|i| {
            let (store, version) = (&b.store, &loaded.version);
            async move {
                let rec = Arc::new(record(HOUR, json!({"v": i + 1})));
                store.save_if("id", &rec, version).await.expect("save_if")
            }
        });
        let outcomes = futures_util::future::join_all(saves).await;
        let saved = outcomes
            .iter()
            .filter(|o| matches!(o, SaveOutcome::Saved(_)))
            .count();
        assert_eq!(saved, 1, "{}: {outcomes:?}", b.name);
        b.store.clear().await.expect("clear");
    }
}

#[actix_rt::test]
async fn save_if_runs_after_the_script_cache_is_flushed() {
    for mut b in backends("noscript").await {
        let name = b.name;
        b.store
            .set("id", &record(HOUR, json!({"v": 1})))
            .await
            .expect("set");
        let loaded = b.store.load("id").await.expect("load").expect("found");
        // Every node forgets its scripts (restart, failover): EVALSHA answers NOSCRIPT.
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut b.raw)
            .await
            .expect("SCRIPT FLUSH");
        let next = Arc::new(record(HOUR, json!({"v": 2})));
        let outcome = b.store.save_if("id", &next, &loaded.version).await;
        assert!(
            matches!(outcome, Ok(SaveOutcome::Saved(_))),
            "{name}: {outcome:?}"
        );
        assert_eq!(
            stored(&mut b, "id").await.0,
            Some(next.to_json().into_bytes())
        );
        b.store.clear().await.expect("clear");
    }
}

#[actix_rt::test]
async fn records_written_by_connect_redis_compare_byte_for_byte() {
    let prefix = unique_prefix("node-cas");
    let store = standalone(&prefix).await;
    let mut conn = raw(&redis_url()).await;
    let _: () = conn
        .set_ex(format!("{prefix}abc"), NODE_RECORD, 60)
        .await
        .expect("SET");
    let loaded = store.load("abc").await.expect("load").expect("found");
    assert_eq!(bytes(&loaded.version), NODE_RECORD.as_bytes());
    let next = Arc::new(record(HOUR, json!({"user": "ada"})));
    let outcome = store.save_if("abc", &next, &loaded.version).await;
    assert!(matches!(outcome, Ok(SaveOutcome::Saved(_))), "{outcome:?}");
    store.clear().await.expect("clear");
}

/// Calls per command name, from `INFO commandstats`.
async fn command_calls(url: &str) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw(url).await)
        .await
        .expect("INFO");
    let calls = |line: &str| -> Option<(String, u64)> {
        let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
        let n = rest
            .strip_prefix("calls=")?
            .split(',')
            .next()?
            .parse()
            .ok()?;
        Some((name.to_owned(), n))
    };
    info.lines().filter_map(calls).collect()
}

/// A server with `SET … IFEQ` (Valkey 8.1) compares and sets by itself: no script.
/// One without it (Redis 7.0) refuses the first try, and the store takes the script.
/// Either way, on the lean connection and through a `ConnectionManager`, the saves land
/// and a stale one conflicts.
#[actix_rt::test]
async fn save_if_takes_set_ifeq_where_the_server_has_it() {
    for (server, name, scripted) in [
        (OwnRedis::start(), "redis 7.0", true),
        (OwnRedis::valkey(), "valkey 8.1", false),
    ] {
        let logs = Logs::capture(tracing::Level::INFO);
        let client = redis::Client::open(server.url()).expect("a valid URL");
        let manager = redis::aio::ConnectionManager::new(client)
            .await
            .expect("connects");
        let prefix = unique_prefix("ifeq");
        let builder = || RedisStore::builder().prefix(&prefix);
        let lean = builder().connect(&server.url()).await.expect("connects");
        for store in [lean, builder().build(manager)] {
            saves_land_and_a_stale_one_conflicts(&store, name).await;
        }
        let calls = command_calls(&server.url()).await;
        let scripts = ["evalsha", "eval"].map(|c| calls.get(c).copied().unwrap_or(0));
        assert_eq!(scripts != [0, 0], scripted, "{name}: calls {calls:?}");
        // One line per store that fell back, naming its prefix.
        let said = logs.text().matches(&format!("prefix={prefix}")).count();
        assert_eq!(
            said,
            if scripted { 2 } else { 0 },
            "{name}: {said} log lines"
        );
    }
}

async fn saves_land_and_a_stale_one_conflicts(store: &RedisStore, name: &str) {
    store
        .set("id", &record(HOUR, json!({"v": 0})))
        .await
        .expect("set");
    let first = store.load("id").await.expect("load").expect("found");
    let (mut version, mut last) = (first.version.clone(), None);
    for v in 1..=3 {
        let rec = Arc::new(record(HOUR, json!({ "v": v })));
        let outcome = store.save_if("id", &rec, &version).await.expect("save_if");
        let SaveOutcome::Saved(saved) = outcome else {
            panic!("{name}: save {v} lands: {outcome:?}")
        };
        (version, last) = (saved, Some(rec));
    }
    let stale = Arc::new(record(HOUR, json!({"v": 9})));
    let outcome = store.save_if("id", &stale, &first.version).await;
    let Ok(SaveOutcome::Conflict(Some(current))) = outcome else {
        panic!("{name}: a stale save conflicts: {outcome:?}")
    };
    assert_current(&current, &last.expect("saved"), name);
}

/// A connection that drops after the command went out leaves unknown whether Redis ran
/// it: reads and plain writes are sent once more, `SET NX` and the compare-and-set
/// script never (their second run would contradict the first).
#[actix_rt::test]
async fn a_write_whose_connection_dropped_is_not_sent_twice() {
    let fake = DroppingRedis::start();
    let store = RedisStore::builder()
        .response_timeout(Duration::from_secs(3))
        .connect(&fake.url())
        .await
        .expect("the handshake is answered");
    let rec = Arc::new(record(HOUR, json!({"n": 1})));

    assert_redis_error(&store.create("id", &rec).await.expect_err("dropped"));
    assert_eq!(fake.count("SET"), 1, "SET NX is not re-sent");
    let version = Version::from_bytes(rec.to_json().into_bytes());
    assert_redis_error(
        &store
            .save_if("id", &rec, &version)
            .await
            .expect_err("dropped"),
    );
    assert_eq!(fake.count("SET"), 2, "nor is the conditional SET");

    assert_redis_error(&store.get("id").await.expect_err("dropped"));
    assert_eq!(fake.count("GET"), 2, "a read is sent once more");
    assert_redis_error(&store.load("id").await.expect_err("dropped"));
    assert_eq!(fake.count("GET"), 4, "so is the GET + PTTL pipeline");
    assert_redis_error(&store.set("id", &rec).await.expect_err("dropped"));
    assert_eq!(fake.count("SET"), 4, "but a plain SET is");
    assert_redis_error(&store.touch("id", &rec).await.expect_err("dropped"));
    assert_eq!(fake.count("EXPIRE"), 2, "and EXPIRE");
}
