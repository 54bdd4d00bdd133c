//! The checks, one async function each, named as the sentence it asserts. Each starts
//! from an empty store and leaves it empty; an optional method the store does not
//! support is left out (see [`Kit`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use super::kit::Kit;
use super::record::record;
use crate::store::{Loaded, SaveOutcome, SessionStore};

/// A cookie that expires in an hour.
pub(super) const HOUR: Option<i64> = Some(3_600_000);

const TOUCH_IS_SET: &str =
    "`touch` acts as `set` (the trait default): not held to keeping the data and never creating";

pub(super) async fn unknown_ids_are_absent(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    assert!(store.get("no-such-id").await.expect("get").is_none());
    store
        .destroy("no-such-id")
        .await
        .expect("destroying an unknown id is fine");
    if let Some(len) = kit.len().await {
        assert_eq!(len, 0, "the store starts empty");
    }
}

pub(super) async fn destroy_removes(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    store
        .set("s1", &record(HOUR, json!({"n": 1})))
        .await
        .expect("set");
    store
        .set("s2", &record(HOUR, json!({"n": 2})))
        .await
        .expect("set");
    store.destroy("s1").await.expect("destroy");
    assert!(store.get("s1").await.expect("get").is_none());
    assert!(
        store.get("s2").await.expect("get").is_some(),
        "other sessions stay"
    );
    kit.remove(&["s2"]).await;
}

pub(super) async fn set_then_get_returns_the_same_record(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    let rec = record(
        HOUR,
        json!({"user": "ada", "n": 1, "nested": {"cookie": [1, 2.5, null, true]}}),
    );
    store.set("s1", &rec).await.expect("set");
    assert_eq!(store.get("s1").await.expect("get"), Some(rec));
    let browser_session = record(None, json!({"n": 2}));
    store.set("s2", &browser_session).await.expect("set");
    assert_eq!(
        store.get("s2").await.expect("get"),
        Some(browser_session),
        "no expiry is kept"
    );
    kit.remove(&["s1", "s2"]).await;
}

pub(super) async fn set_overwrites(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    store
        .set("s1", &record(HOUR, json!({"n": 1})))
        .await
        .expect("set");
    let newer = record(HOUR, json!({"n": 2}));
    store.set("s1", &newer).await.expect("set");
    assert_eq!(store.get("s1").await.expect("get"), Some(newer));
    if let Some(len) = kit.len().await {
        assert_eq!(len, 1, "one session, written twice");
    }
    kit.remove(&["s1"]).await;
}

pub(super) async fn big_and_unicode_payloads_survive(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    let big = "x".repeat(1 << 20);
    let rec = record(
        HOUR,
        json!({"big": big, "ключ": "値 🍪 \u{0000} \"quoted\" \\", "emoji🔑": [1e300, -0.5]}),
    );
    store.set("big-ünï", &rec).await.expect("set");
    assert_eq!(store.get("big-ünï").await.expect("get"), Some(rec));
    kit.remove(&["big-ünï"]).await;
}

pub(super) async fn all_len_and_clear_see_every_session(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    let ids = ["id0", "id1", "id2", "id3", "id4"];
    for (i, id) in ids.iter().enumerate() {
        store
            .set(id, &record(HOUR, json!({"i": i})))
            .await
            .expect("set");
    }
    if let Some(len) = kit.len().await {
        assert_eq!(len, 5, "len counts every session");
    }
    if let Some(all) = kit.all().await {
        assert_eq!(all.len(), 5, "all returns every session");
        assert_eq!(all.get("id3").map(|r| &r.data["i"]), Some(&json!(3)));
    }
    if kit.clear().await {
        if let Some(len) = kit.len().await {
            assert_eq!(len, 0, "clear removes every session");
        }
        assert!(store.get("id3").await.expect("get").is_none(), "cleared");
    } else {
        kit.remove(&ids).await;
    }
}

pub(super) async fn concurrent_writers_all_land(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    let ids: Vec<String> = (0..32).map(|i| format!("c{i}")).collect();
    let writes = ids.iter().zip(0..).map(|(id, i)| async move {
        store
            .set(id, &record(HOUR, json!({"i": i})))
            .await
            .expect("set");
        store
            .set("shared", &record(HOUR, json!({"writer": i})))
            .await
            .expect("set");
    });
    join_all(writes).await;
    for (id, i) in ids.iter().zip(0..) {
        let own = store
            .get(id)
            .await
            .expect("get")
            .expect("every write lands");
        assert_eq!(own.data["i"], i, "{id} holds its own write");
    }
    if let Some(len) = kit.len().await {
        assert_eq!(len, 33);
    }
    let shared = store.get("shared").await.expect("get").expect("present");
    let writer = shared.data["writer"].as_i64().expect("a number");
    assert!(
        (0..32).contains(&writer),
        "the last writer wins whole: {writer}"
    );
    let mut all: Vec<&str> = ids.iter().map(String::as_str).collect();
    all.push("shared");
    kit.remove(&all).await;
}

/// A real touch keeps the data and never creates. The trait's default touch is `set`,
/// which does both: accepted (and reported) unless the store claims atomicity, since a
/// touch that rewrites can undo a concurrent save or logout.
pub(super) async fn touch_extends_life_without_rewriting_data(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    store
        .set("t", &record(Some(1_500), json!({"v": "stored"})))
        .await
        .expect("set");
    store
        .touch("t", &record(HOUR, json!({"v": "in the request"})))
        .await
        .expect("touch");
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let rec = store
        .get("t")
        .await
        .expect("get")
        .expect("touch kept the session alive");
    let rewrites = rec.data["v"] != "stored";
    assert!(
        !rewrites || !kit.atomic,
        "touch does not rewrite the data (a store claiming atomicity overrides `touch`)"
    );
    store
        .touch("never-set", &record(HOUR, json!({})))
        .await
        .expect("touching an unknown id");
    let created = store.get("never-set").await.expect("get").is_some();
    assert!(!created || rewrites, "touch does not create");
    if rewrites {
        kit.leave_out(TOUCH_IS_SET.to_owned());
    }
    kit.remove(&["t", "never-set"]).await;
}

pub(super) async fn expired_sessions_are_invisible(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    store
        .set("past", &record(Some(-1_000), json!({"n": 1})))
        .await
        .expect("set");
    assert!(store.get("past").await.expect("get").is_none());
    store
        .set("soon", &record(Some(1_000), json!({"n": 1})))
        .await
        .expect("set");
    store
        .set("later", &record(HOUR, json!({"n": 2})))
        .await
        .expect("set");
    assert!(store.get("soon").await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(
        store.get("soon").await.expect("get").is_none(),
        "expired after its cookie"
    );
    if let Some(len) = kit.len().await {
        assert_eq!(len, 1, "len counts live sessions only");
    }
    if let Some(all) = kit.all().await {
        assert!(all.contains_key("later"), "all returns live sessions");
        assert_eq!(all.len(), 1, "all returns live sessions only");
    }
    kit.remove(&["past", "soon", "later"]).await;
}

/// `load`, `create` and `save_if`: versions, compare-and-set, no resurrection. The
/// trait's defaults pass this (one writer at a time); the races are in `races`.
pub(super) async fn conditional_writes(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    assert!(store.load("c").await.expect("load").is_none());
    let first = Arc::new(record(HOUR, json!({"n": 1})));
    let v1 = store
        .create("c", &first)
        .await
        .expect("create")
        .expect("a free ID");
    let loaded = store.load("c").await.expect("load").expect("created");
    assert_eq!(*loaded.record, *first);
    assert_eq!(loaded.version, v1, "load sees the version create gave");
    load_now_agrees(store, "c").await;
    let other = Arc::new(record(HOUR, json!({"owner": "other"})));
    assert!(
        store.create("c", &other).await.expect("create").is_none(),
        "a taken ID is refused"
    );
    assert_eq!(
        store.get("c").await.expect("get").as_ref(),
        Some(&*first),
        "and untouched"
    );

    let second = Arc::new(record(HOUR, json!({"n": 2})));
    let SaveOutcome::Saved(v2) = store.save_if("c", &second, &v1).await.expect("save_if") else {
        panic!("the loaded version saves")
    };
    assert_ne!(v2, v1);
    assert_eq!(store.get("c").await.expect("get").as_ref(), Some(&*second));
    load_now_agrees(store, "c").await;
    let stale = Arc::new(record(HOUR, json!({"n": "stale"})));
    match store.save_if("c", &stale, &v1).await.expect("save_if") {
        SaveOutcome::Conflict(Some(current)) => {
            assert_eq!(*current.record, *second);
            assert_eq!(current.version, v2);
        }
        SaveOutcome::Conflict(None) => {}
        other => panic!("a stale version conflicts: {other:?}"),
    }
    assert_eq!(
        store.get("c").await.expect("get").as_ref(),
        Some(&*second),
        "not written"
    );

    store.destroy("c").await.expect("destroy");
    let late = store.save_if("c", &stale, &v2).await.expect("save_if");
    assert!(matches!(late, SaveOutcome::Gone), "{late:?}");
    assert!(
        store.get("c").await.expect("get").is_none(),
        "never resurrected"
    );
    load_now_agrees(store, "c").await;
}

/// `load_now`, when the store answers it, says what `load` says.
async fn load_now_agrees(store: &impl SessionStore, sid: &str) {
    let Some(now) = store.load_now(sid) else {
        return;
    };
    let now = now.expect("load_now");
    let later = store.load(sid).await.expect("load");
    let view = |l: &Option<Loaded>| l.as_ref().map(|l| (l.record.clone(), l.version.clone()));
    assert_eq!(view(&now), view(&later), "load_now answers as load does");
}

pub(super) async fn the_suite_leaves_the_store_empty(kit: &Kit<impl SessionStore>) {
    if let Some(len) = kit.len().await {
        assert_eq!(len, 0, "every check removed what it wrote");
    } else if let Some(all) = kit.all().await {
        assert!(all.is_empty(), "every check removed what it wrote: {all:?}");
    }
}
