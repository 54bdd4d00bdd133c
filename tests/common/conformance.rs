//! The store-conformance suite: one generic async function every [`SessionStore`] must
//! pass. Give it an empty store (its own key prefix or schema); it leaves it empty.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use actix_express_session::store::{SaveOutcome, SessionStore};
use actix_express_session::SessionRecord;
use serde_json::{json, Value};

/// A record whose cookie expires `expires_in_ms` from now (`None`: a browser-session cookie).
pub fn record(expires_in_ms: Option<i64>, data: Value) -> SessionRecord {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let expires = expires_in_ms.map(|ms| {
        let d = UNIX_EPOCH + Duration::from_millis((now + ms) as u64);
        iso(d)
    });
    let mut object = json!({
        "cookie": {"originalMaxAge": expires_in_ms, "expires": expires, "httpOnly": true, "path": "/"}
    });
    if let (Some(o), Value::Object(d)) = (object.as_object_mut(), data) {
        o.extend(d);
    }
    SessionRecord::from_json(object.to_string().as_bytes()).expect("a valid record")
}

/// ISO 8601 with milliseconds, via the crate's own record serialization.
fn iso(at: SystemTime) -> String {
    let ms = at
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil(days);
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const HOUR: Option<i64> = Some(3_600_000);

/// Runs every check against `store`, which must start empty.
pub async fn conformance<S: SessionStore>(store: S) {
    unknown_ids_are_absent(&store).await;
    set_then_get_returns_the_same_record(&store).await;
    set_overwrites(&store).await;
    destroy_removes(&store).await;
    big_and_unicode_payloads_survive(&store).await;
    all_len_and_clear_see_every_session(&store).await;
    concurrent_writers_all_land(&store).await;
    touch_extends_life_without_rewriting_data(&store).await;
    expired_sessions_are_invisible(&store).await;
    conditional_writes(&store).await;
    concurrent_creates_give_one_winner(&store).await;
    store.clear().await.expect("clear");
    assert_eq!(
        store.len().await.expect("len"),
        0,
        "the suite leaves the store empty"
    );
}

async fn unknown_ids_are_absent(store: &impl SessionStore) {
    assert!(store.get("no-such-id").await.expect("get").is_none());
    store
        .destroy("no-such-id")
        .await
        .expect("destroying an unknown id is fine");
    assert_eq!(store.len().await.expect("len"), 0, "the store starts empty");
}

async fn set_then_get_returns_the_same_record(store: &impl SessionStore) {
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
    store.clear().await.expect("clear");
}

async fn set_overwrites(store: &impl SessionStore) {
    store
        .set("s1", &record(HOUR, json!({"n": 1})))
        .await
        .expect("set");
    let newer = record(HOUR, json!({"n": 2}));
    store.set("s1", &newer).await.expect("set");
    assert_eq!(store.get("s1").await.expect("get"), Some(newer));
    assert_eq!(store.len().await.expect("len"), 1);
    store.clear().await.expect("clear");
}

async fn destroy_removes(store: &impl SessionStore) {
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
    store.clear().await.expect("clear");
}

async fn big_and_unicode_payloads_survive(store: &impl SessionStore) {
    let big = "x".repeat(1 << 20);
    let rec = record(
        HOUR,
        json!({"big": big, "ключ": "値 🍪 \u{0000} \"quoted\" \\", "emoji🔑": [1e300, -0.5]}),
    );
    store.set("big-ünï", &rec).await.expect("set");
    assert_eq!(store.get("big-ünï").await.expect("get"), Some(rec));
    store.clear().await.expect("clear");
}

async fn all_len_and_clear_see_every_session(store: &impl SessionStore) {
    for i in 0..5 {
        store
            .set(&format!("id{i}"), &record(HOUR, json!({"i": i})))
            .await
            .expect("set");
    }
    assert_eq!(store.len().await.expect("len"), 5);
    let all = store.all().await.expect("all");
    assert_eq!(all.len(), 5);
    assert_eq!(all["id3"].data["i"], 3);
    store.clear().await.expect("clear");
    assert_eq!(store.len().await.expect("len"), 0);
    assert!(store.get("id3").await.expect("get").is_none());
}

async fn concurrent_writers_all_land(store: &impl SessionStore) {
    let writes = (0..32).map(|i| async move {
        let own = record(HOUR, json!({"i": i}));
        store.set(&format!("c{i}"), &own).await.expect("set");
        store
            .set("shared", &record(HOUR, json!({"writer": i})))
            .await
            .expect("set");
    });
    futures_util::future::join_all(writes).await;
    assert_eq!(store.len().await.expect("len"), 33);
    let shared = store.get("shared").await.expect("get").expect("present");
    let writer = shared.data["writer"].as_i64().expect("a number");
    assert!(
        (0..32).contains(&writer),
        "the last writer wins whole: {writer}"
    );
    store.clear().await.expect("clear");
}

async fn touch_extends_life_without_rewriting_data(store: &impl SessionStore) {
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
    assert_eq!(rec.data["v"], "stored", "touch does not rewrite the data");
    store
        .touch("never-set", &record(HOUR, json!({})))
        .await
        .expect("touching an unknown id");
    assert!(
        store.get("never-set").await.expect("get").is_none(),
        "touch does not create"
    );
    store.clear().await.expect("clear");
}

async fn expired_sessions_are_invisible(store: &impl SessionStore) {
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
    assert_eq!(
        store.len().await.expect("len"),
        1,
        "len counts live sessions only"
    );
    assert!(store.all().await.expect("all").contains_key("later"));
    store.clear().await.expect("clear");
}

/// `load`, `create` and `save_if`: versions, compare-and-set, no resurrection.
async fn conditional_writes(store: &impl SessionStore) {
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
    store.clear().await.expect("clear");
}

/// 16 creates of one ID at once: exactly one wins, and its record is the one stored.
async fn concurrent_creates_give_one_winner(store: &impl SessionStore) {
    let creates = (0..16).map(|i| async move {
        let rec = Arc::new(record(HOUR, json!({"i": i})));
        store.create("race", &rec).await.expect("create").map(|_| i)
    });
    let winners: Vec<i64> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = store.get("race").await.expect("get").expect("the winner's");
    assert_eq!(stored.data["i"], winners[0]);
    store.clear().await.expect("clear");
}
