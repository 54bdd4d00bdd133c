//! The store-conformance suite and eviction on [`MemoryStore`].

mod common;

use std::time::Duration;

use std::sync::Arc;

use actix_express_session::store::{SaveOutcome, SessionStore};
use actix_express_session::{CookieOptions, MemoryStore, SessionMiddleware};
use common::conformance::record;
use common::{app, body, get, pair, set_cookie, SECRET};
use serde_json::{json, Value};

#[actix_rt::test]
async fn memory_store_passes_the_conformance_suite() {
    common::conformance::conformance(MemoryStore::new()).await;
}

#[actix_rt::test]
async fn clones_share_one_map() {
    let a = MemoryStore::new();
    let b = a.clone();
    a.set("id", &record(Some(60_000), json!({"n": 1})))
        .await
        .expect("set");
    assert_eq!(
        b.get("id").await.expect("get").expect("shared").data["n"],
        1
    );
}

#[actix_rt::test]
async fn the_background_task_evicts_expired_sessions_from_memory() {
    let store = MemoryStore::builder()
        .sweep_interval(Duration::from_millis(100))
        .build();
    store
        .set("short", &record(Some(200), json!({})))
        .await
        .expect("set");
    store
        .set("long", &record(Some(60_000), json!({})))
        .await
        .expect("set");
    assert_eq!(store.entry_count(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.entry_count(),
        1,
        "the expired entry is gone from the map, not just hidden"
    );
}

#[actix_rt::test]
async fn without_a_sweeper_reads_still_remove_expired_entries() {
    let store = MemoryStore::builder()
        .sweep_interval(Duration::ZERO)
        .build();
    store
        .set("short", &record(Some(50), json!({})))
        .await
        .expect("set");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.entry_count(), 1);
    assert!(store.get("short").await.expect("get").is_none());
    assert_eq!(store.entry_count(), 0);
}

#[actix_rt::test]
async fn sessions_without_expiry_use_the_default_ttl() {
    let store = MemoryStore::builder()
        .default_ttl(Duration::from_millis(100))
        .build();
    store
        .set("browser", &record(None, json!({})))
        .await
        .expect("set");
    assert!(store.get("browser").await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(store.get("browser").await.expect("get").is_none());
}

#[actix_rt::test]
async fn default_ttl_zero_keeps_the_one_day_default() {
    let store = MemoryStore::builder()
        .default_ttl(Duration::ZERO)
        .sweep_interval(Duration::ZERO)
        .build();
    store
        .set("browser", &record(None, json!({"n": 1})))
        .await
        .expect("set");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rec = store.get("browser").await.expect("get");
    assert_eq!(rec.expect("still there").data["n"], 1);
    store.evict_expired();
    assert_eq!(store.entry_count(), 1, "not expired either");
}

/// As express-session's `MemoryStore.touch`: the touched cookie is stored (so a load
/// sees the new `expires`), the data stays the stored data, the version stays (a save
/// in flight still lands), and a missing or expired session is not created.
#[actix_rt::test]
async fn touch_stores_the_touched_cookie_with_the_stored_data() {
    let store = MemoryStore::new();
    store
        .set("t", &record(Some(60_000), json!({"v": "stored"})))
        .await
        .expect("set");
    let before = store.load("t").await.expect("load").expect("found");
    let touched = record(Some(3_600_000), json!({"v": "in the request"}));
    store.touch("t", &touched).await.expect("touch");

    let rec = store.get("t").await.expect("get").expect("alive");
    assert_eq!(
        rec.cookie.expires(),
        touched.cookie.expires(),
        "the new expiry"
    );
    assert_eq!(rec.data["v"], "stored", "the stored data");
    let after = store.load("t").await.expect("load").expect("found");
    assert_eq!(after.version, before.version, "a touch is not a write");
    let next = Arc::new(record(Some(60_000), json!({"v": "saved"})));
    let outcome = store.save_if("t", &next, &before.version).await;
    assert!(matches!(outcome, Ok(SaveOutcome::Saved(_))), "{outcome:?}");

    store.touch("missing", &touched).await.expect("touch");
    assert!(store.get("missing").await.expect("get").is_none());
    store
        .set("dead", &record(Some(-1_000), json!({})))
        .await
        .expect("set");
    store.touch("dead", &touched).await.expect("touch");
    assert!(
        store.get("dead").await.expect("get").is_none(),
        "not revived"
    );
    assert_eq!(store.entry_count(), 1, "only `t` is left");
}

/// Through the middleware: a read some seconds after the session was made touches it,
/// and the next request's handler sees the renewed expiry (`max_age` close to the full
/// ten seconds), not one shrinking from the creation time.
#[actix_rt::test]
async fn a_handler_sees_the_expiry_a_touch_renewed() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(CookieOptions::default().max_age(Duration::from_secs(10)))
        .touch_after(Duration::ZERO)
        .build()
        .expect("valid options");
    let app = app(mw).await;
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(body(get(&app, "/read", Some(&cookie)).await).await, "1");
    let res = get(&app, "/session-cookie", Some(&cookie)).await;
    let seen: Value = serde_json::from_str(&body(res).await).expect("JSON");
    assert_eq!(seen["original_max_age"], 10, "{seen}");
    let left = seen["max_age"].as_u64().expect("a persistent cookie");
    assert!(
        left >= 9,
        "renewed by the touch 2.1 s in, not shrinking: {seen}"
    );
}
