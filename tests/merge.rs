//! Concurrency under the default [`WritePolicy::Merge`], on every store: overlapping
//! requests on one session keep each other's changes, and a session destroyed (logout,
//! `regenerate`) while a slow request was in flight never comes back.
//!
//! Every scenario runs on the memory store here, and on Redis (standalone and Cluster),
//! Valkey and PostgreSQL when those features are on (`scripts/test.sh` starts the servers).

mod common;

use std::time::Duration;

use actix_express_session::store::SessionStore;
use actix_express_session::{CookieOptions, MemoryStore, Session, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App};
use common::{body, get, pair, set_cookie, sid, Recorder, SECRET};
use futures_util::future::{join, join_all};
use serde_json::{json, Value};

/// Requests in flight at once.
const IN_FLIGHT: usize = 64;
/// How long a slow handler holds its loaded session before changing it.
const SLOW: Duration = Duration::from_millis(300);

async fn slow_set(session: Session, key: web::Path<String>) -> actix_web::Result<&'static str> {
    actix_rt::time::sleep(SLOW).await;
    session.insert(key.into_inner(), true)?;
    Ok("set")
}

async fn slow_remove(session: Session, key: web::Path<String>) -> actix_web::Result<&'static str> {
    actix_rt::time::sleep(SLOW).await;
    session.remove(&key)?;
    Ok("removed")
}

async fn login(session: Session) -> actix_web::Result<String> {
    session.regenerate().await?;
    session.insert("user", "ada")?;
    Ok(session.id())
}

/// The test app on `store`, with a persistent cookie (so that a changed session would
/// re-send its cookie).
async fn app<S: SessionStore>(
    store: S,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    let mw = SessionMiddleware::builder(store, SECRET)
        .cookie(CookieOptions::default().max_age(Duration::from_secs(3600)))
        .build()
        .expect("valid options");
    test::init_service(
        App::new()
            .wrap(mw)
            .route("/slow/set/{key}", web::get().to(slow_set))
            .route("/slow/remove/{key}", web::get().to(slow_remove))
            .route("/login", web::get().to(login))
            .configure(common::routes),
    )
    .await
}

/// The stored data of a session, `None` when the store has no record.
async fn stored<S: SessionStore>(store: &S, id: &str) -> Option<serde_json::Map<String, Value>> {
    store
        .get(id)
        .await
        .expect("the store answers")
        .map(|r| r.data)
}

/// A stored session holding `{"n": 1}`, and its cookie.
async fn seeded<A, B>(app: &A) -> String
where
    A: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = get(app, "/count", None).await;
    pair(&set_cookie(&res).expect("a new session"))
}

/// 64 overlapping requests, each inserting its own key after a delay: all 64 keys and
/// the earlier data are stored.
async fn overlapping_inserts_all_land<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone()).await;
    let cookie = seeded(&app).await;
    let calls = (0..IN_FLIGHT).map(|i| {
        let (app, cookie) = (&app, &cookie);
        async move { get(app, &format!("/slow/set/k{i}"), Some(cookie)).await }
    });
    for res in join_all(calls).await {
        assert_eq!(res.status(), 200);
        let sent = set_cookie(&res).expect("a persistent cookie is re-sent on change");
        assert_eq!(sid(&sent), sid(&cookie));
    }
    let data = stored(&store, &sid(&cookie)).await.expect("the session");
    assert_eq!(data.len(), IN_FLIGHT + 1, "{data:?}");
    assert_eq!(data["n"], 1, "the earlier data");
    assert!((0..IN_FLIGHT).all(|i| data[&format!("k{i}")] == true));
}

/// A removal in one request and an insert of another key in an overlapping one: both
/// hold.
async fn a_removal_and_an_insert_both_hold<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone()).await;
    let cookie = seeded(&app).await;
    let set = get(&app, "/slow/set/extra", Some(&cookie));
    let remove = get(&app, "/slow/remove/n", Some(&cookie));
    let (set, remove) = join(set, remove).await;
    assert_eq!(
        (set.status().as_u16(), remove.status().as_u16()),
        (200, 200)
    );
    let data = stored(&store, &sid(&cookie)).await.expect("the session");
    assert_eq!(Value::Object(data), json!({"extra": true}));
}

/// Runs `slow` (which loads at once and changes the session after [`SLOW`]) and, while
/// it sleeps, `then`; returns the slow response and the other one.
async fn race<A, B>(
    app: &A,
    slow: &str,
    then: &str,
    cookie: &str,
) -> (ServiceResponse<B>, ServiceResponse<B>)
where
    A: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let other = async {
        actix_rt::time::sleep(SLOW / 3).await;
        get(app, then, Some(cookie)).await
    };
    join(get(app, slow, Some(cookie)), other).await
}

/// A slow request overlapping a logout: afterwards no record under the old ID, the old
/// cookie loads nothing, and the slow response carries no cookie for the old ID.
async fn a_logout_is_not_undone_by_a_slow_request<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone()).await;
    let cookie = seeded(&app).await;
    let (slow, logout) = race(&app, "/slow/set/late", "/destroy", &cookie).await;
    assert_eq!(
        (slow.status().as_u16(), logout.status().as_u16()),
        (200, 200)
    );
    assert_eq!(set_cookie(&slow), None, "neither re-sent nor a new ID");
    assert_eq!(stored(&store, &sid(&cookie)).await, None, "not resurrected");
    let res = get(&app, "/read", Some(&cookie)).await;
    assert_eq!(set_cookie(&res), None);
    assert_eq!(body(res).await, "0", "the old cookie loads nothing");
}

/// The same race against `regenerate` (a login): the old ID stays gone, and the new
/// session is intact.
async fn a_regenerate_is_not_undone_by_a_slow_request<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone()).await;
    let cookie = seeded(&app).await;
    let (slow, login) = race(&app, "/slow/set/late", "/login", &cookie).await;
    assert_eq!(
        (slow.status().as_u16(), login.status().as_u16()),
        (200, 200)
    );
    let new_cookie = set_cookie(&login).expect("the new session's cookie");
    assert_ne!(sid(&new_cookie), sid(&cookie));
    assert_eq!(
        set_cookie(&slow),
        None,
        "the slow response leaves the new cookie be"
    );
    assert_eq!(
        stored(&store, &sid(&cookie)).await,
        None,
        "the old ID stays gone"
    );
    let data = stored(&store, &sid(&new_cookie))
        .await
        .expect("the new session");
    assert_eq!(Value::Object(data), json!({"user": "ada"}));
}

/// A new session is written only under a free ID: when `genid` hands out an ID that has
/// a record, the new session gets another ID and the record is untouched.
async fn a_taken_id_is_never_reused<S: SessionStore + Clone>(store: S, taken: &str) {
    let record = common::conformance::record(Some(60_000), json!({"owner": "someone else"}));
    store.set(taken, &record).await.expect("seeded");
    let first = std::sync::atomic::AtomicBool::new(true);
    let taken_id = taken.to_owned();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .genid(move |_| {
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                taken_id.clone()
            } else {
                actix_express_session::uuid_v4_id()
            }
        })
        .build()
        .expect("valid");
    let app = common::app(mw).await;
    let res = get(&app, "/count", None).await;
    assert_eq!(res.status(), 200);
    let cookie = set_cookie(&res).expect("a new session");
    assert_ne!(sid(&cookie), taken, "a collision gives a fresh ID");
    let owner = stored(&store, taken).await.expect("still there");
    assert_eq!(owner["owner"], "someone else");
    assert_eq!(stored(&store, &sid(&cookie)).await.expect("ours")["n"], 1);
    store.destroy(taken).await.expect("cleaned up");
}

/// 256 increments of one session, 32 in flight at a time (the load benchmark's `count`):
/// every one is answered 200, however often their saves conflict.
async fn sustained_contention_never_fails<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone()).await;
    let cookie = seeded(&app).await;
    for _ in 0..8 {
        let calls = (0..32).map(|_| get(&app, "/count", Some(&cookie)));
        for res in join_all(calls).await {
            assert_eq!(res.status(), 200);
        }
    }
    let n = stored(&store, &sid(&cookie)).await.expect("the session")["n"].clone();
    assert!(n.as_u64().is_some_and(|n| n > 1), "{n}");
}

async fn every_scenario<S: SessionStore + Clone>(store: S) {
    sustained_contention_never_fails(store.clone()).await;
    overlapping_inserts_all_land(store.clone()).await;
    a_removal_and_an_insert_both_hold(store.clone()).await;
    a_logout_is_not_undone_by_a_slow_request(store.clone()).await;
    a_regenerate_is_not_undone_by_a_slow_request(store.clone()).await;
    let taken = format!("taken-{}", actix_express_session::uuid_v4_id());
    a_taken_id_is_never_reused(store, &taken).await;
}

#[actix_rt::test]
async fn memory_store() {
    every_scenario(MemoryStore::new()).await;
}

/// The default store methods (a third-party store with only `get`/`set`/`destroy`)
/// still merge and never resurrect when requests do not race inside a store call.
#[actix_rt::test]
async fn a_store_with_only_the_required_methods() {
    every_scenario(common::Minimal::default()).await;
}

/// 64 overlapping saves of one session whose first attempts meet: the ones that
/// collided wait in line and are written together, in a write or two, where one after
/// another they took 63 more. A save that starts while others are already in line joins
/// them without a first attempt of its own (on a loaded machine some do), so the count
/// has an upper bound only. Every change lands.
#[actix_rt::test]
async fn saves_in_line_are_written_together() {
    let store = Recorder::with_save_delay(Duration::from_millis(5));
    let app = app(store.clone()).await;
    let cookie = seeded(&app).await;
    store.calls();
    let calls = (0..IN_FLIGHT).map(|i| {
        let (app, cookie) = (&app, &cookie);
        async move { get(app, &format!("/slow/set/k{i}"), Some(cookie)).await }
    });
    for res in join_all(calls).await {
        assert_eq!(res.status(), 200);
    }
    let calls = store.calls();
    let writes = calls.iter().filter(|c| c.starts_with("save_if")).count();
    assert!(writes <= IN_FLIGHT + 4, "{writes} writes: {calls:?}");
    let data = stored(&store, &sid(&cookie)).await.expect("the session");
    assert!(
        (0..IN_FLIGHT).all(|i| data[&format!("k{i}")] == true),
        "{data:?}"
    );
}

/// `regenerate` stores the new session before it destroys the old one, and a save
/// without conflict is one write.
#[actix_rt::test]
async fn regenerate_creates_before_it_destroys() {
    let store = Recorder::default();
    let app = app(store.clone()).await;
    let cookie = seeded(&app).await;
    let old = sid(&cookie);
    store.calls();
    let res = get(&app, "/login", Some(&cookie)).await;
    let new = sid(&set_cookie(&res).expect("the new cookie"));
    assert_eq!(
        store.calls(),
        [
            format!("load {old}"),
            format!("create {new}"),
            format!("destroy {old}"),
            format!("save_if {new}"),
        ]
    );
}

#[cfg(feature = "redis")]
mod redis_support;

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn redis_standalone() {
    let prefix = redis_support::unique_prefix("merge");
    let store = redis_support::standalone(&prefix).await;
    every_scenario(store.clone()).await;
    store.clear().await.expect("cleaned up");
}

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn redis_cluster() {
    let prefix = redis_support::unique_prefix("merge-cluster");
    let store = redis_support::cluster(&prefix).await;
    every_scenario(store.clone()).await;
    store.clear().await.expect("cleaned up");
}

/// Valkey 8.1: the conditional saves are `SET … IFEQ`, not the script.
#[cfg(feature = "redis")]
#[actix_rt::test]
async fn valkey() {
    let prefix = redis_support::unique_prefix("merge-valkey");
    let store = redis_support::on_server(&redis_support::valkey_url(), &prefix).await;
    every_scenario(store.clone()).await;
    store.clear().await.expect("cleaned up");
}

#[cfg(feature = "postgres")]
mod postgres_util;

#[cfg(feature = "postgres")]
#[actix_rt::test]
async fn postgres() {
    let db = postgres_util::TestSchema::new().await;
    let store = db.builder().build().expect("valid");
    every_scenario(store).await;
    db.drop().await;
}
