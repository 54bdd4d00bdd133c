//! Periodic ID reissue with a grace window (`reissue_after`), on every store: a session
//! whose ID is older than `every` moves to a new ID on its next request, the old ID
//! leads to it (a tombstone without user data) for `grace`, and after that the old
//! cookie is no session at all.
//!
//! Every scenario runs on the memory store here, and on Redis (standalone and Cluster)
//! and PostgreSQL when those features are on (`scripts/test.sh` starts the servers).
//! Redis TTLs are whole seconds and PostgreSQL rounds `expire` up to one, so a store may
//! keep a tombstone a little past its grace; the middleware refuses it by its cookie.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_express_session::store::{Loaded, SaveOutcome, SessionStore, StoreFuture, Version};
use actix_express_session::{
    ConfigError, MemoryStore, Session, SessionMiddleware, SessionRecord, WritePolicy,
    ISSUED_AT_KEY, REISSUED_TO_KEY,
};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{web, App, HttpResponse};
use common::{body, get, pair, set_cookie, sid, Recorder, SECRET};
use futures_util::future::{join, join_all};
use serde_json::{json, Value};

/// How old an ID gets before the next request moves the session to a new one.
const EVERY: Duration = Duration::from_millis(1_500);
/// How long the old ID keeps leading to the session.
const GRACE: Duration = Duration::from_millis(800);
/// How long a slow handler holds its loaded session before changing it.
const SLOW: Duration = Duration::from_millis(600);

async fn slow_set(session: Session, key: web::Path<String>) -> actix_web::Result<&'static str> {
    actix_rt::time::sleep(SLOW).await;
    session.insert(key.into_inner(), true)?;
    Ok("set")
}

async fn entries(session: Session) -> HttpResponse {
    HttpResponse::Ok().json(session.entries())
}

/// The test app on `store`, with `reissue_after(EVERY, GRACE)` when `reissue` is on.
async fn app<S: SessionStore>(
    store: S,
    reissue: bool,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    let mut builder = SessionMiddleware::builder(store, SECRET);
    if reissue {
        builder = builder.reissue_after(EVERY, GRACE);
    }
    actix_web::test::init_service(
        App::new()
            .wrap(builder.build().expect("valid options"))
            .route("/slow/set/{key}", web::get().to(slow_set))
            .route("/entries", web::get().to(entries))
            .configure(common::routes),
    )
    .await
}

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.expect("after 1970").as_millis() as i64
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Sleeps until the wall clock reads `at` (ms since the epoch).
async fn until(at: i64) {
    let left = at - now_ms();
    if left > 0 {
        actix_rt::time::sleep(Duration::from_millis(left as u64)).await;
    }
}

/// The stored record of a session, `None` when the store has none.
async fn stored<S: SessionStore>(store: &S, id: &str) -> Option<SessionRecord> {
    store.get(id).await.expect("the store answers")
}

/// A stored session holding `{"n": 1}`: its cookie, its ID and when the ID was issued.
async fn seeded<A, B, S>(app: &A, store: &S) -> (String, String, i64)
where
    A: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
    S: SessionStore,
{
    let res = get(app, "/count", None).await;
    let cookie = pair(&set_cookie(&res).expect("a new session"));
    let id = sid(&cookie);
    let record = stored(store, &id).await.expect("stored");
    let issued = record.data[ISSUED_AT_KEY]
        .as_i64()
        .expect("a new session has its issue time");
    (cookie, id, issued)
}

/// Asserts that `id` holds a tombstone naming `to`, with no user data, expiring within
/// the grace.
async fn assert_tombstone<S: SessionStore>(store: &S, id: &str, to: &str) {
    let tombstone = stored(store, id)
        .await
        .expect("a tombstone under the old ID");
    assert_eq!(
        Value::Object(tombstone.data),
        json!({ REISSUED_TO_KEY: to }),
        "no user data, only the new ID"
    );
    assert_eq!(tombstone.cookie.original_max_age(), Some(GRACE));
    let left = tombstone.cookie.max_age().expect("it expires");
    assert!(left <= GRACE, "{left:?}");
}

async fn destroy<S: SessionStore>(store: &S, ids: &[&str]) {
    for id in ids {
        store.destroy(id).await.expect("cleaned up");
    }
}

/// The first request after `every` moves the session: a new cookie, the same data, the
/// old ID a tombstone naming the new one, and a fresh issue time in the new record.
async fn a_session_older_than_every_gets_a_new_id<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone(), true).await;
    let (cookie, id, issued) = seeded(&app, &store).await;
    until(issued + ms(EVERY)).await;
    let res = get(&app, "/read", Some(&cookie)).await;
    assert_eq!(res.status(), 200);
    let sent = set_cookie(&res).expect("the new ID's cookie, browser-session cookie or not");
    let new = sid(&sent);
    assert_ne!(new, id);
    assert_eq!(body(res).await, "1", "the same data");
    assert_tombstone(&store, &id, &new).await;
    let moved = stored(&store, &new)
        .await
        .expect("the session, under its new ID");
    let reissued_at = moved.data[ISSUED_AT_KEY].as_i64().expect("an issue time");
    assert!(
        reissued_at >= issued + ms(EVERY),
        "{reissued_at} vs {issued}"
    );
    assert_eq!(
        Value::Object(moved.data),
        json!({"n": 1, ISSUED_AT_KEY: reissued_at})
    );
    let res = get(&app, "/read", Some(&pair(&sent))).await;
    assert_eq!(set_cookie(&res), None, "the new ID is not moved again");
    assert_eq!(body(res).await, "1");
    destroy(&store, &[&id, &new]).await;
}

/// While the old ID leads to the session: a request with the old cookie is served from
/// the new session and gets the new cookie, and a slow request that loaded the session
/// before the move and changes it after has its change saved under the new ID.
async fn the_old_cookie_works_within_the_grace<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone(), true).await;
    let (cookie, id, issued) = seeded(&app, &store).await;
    until(issued + ms(EVERY) - 300).await;
    // Loads now (not due yet), changes the session SLOW later (after the move).
    let slow = get(&app, "/slow/set/late", Some(&cookie));
    let others = async {
        until(issued + ms(EVERY) + 50).await;
        let mover = get(&app, "/read", Some(&cookie)).await;
        let straggler = get(&app, "/read", Some(&cookie)).await;
        (mover, straggler)
    };
    let (slow, (mover, straggler)) = join(slow, others).await;
    let new = sid(&set_cookie(&mover).expect("the new ID's cookie"));
    assert_ne!(new, id);
    assert_eq!(body(mover).await, "1");
    assert_eq!(straggler.status(), 200);
    let sent = set_cookie(&straggler).expect("the old cookie gets the new one");
    assert_eq!(sid(&sent), new);
    assert_eq!(body(straggler).await, "1", "served, with its data");
    assert_eq!(slow.status(), 200);
    let sent = set_cookie(&slow).expect("the slow request's save moved to the new ID");
    assert_eq!(sid(&sent), new);
    let data = stored(&store, &new).await.expect("the session").data;
    assert_eq!((&data["n"], &data["late"]), (&json!(1), &json!(true)));
    assert_tombstone(&store, &id, &new).await;
    destroy(&store, &[&id, &new]).await;
}

/// After the grace the old cookie is no session (a new, empty one) and the tombstone is
/// gone from the store; the new cookie still works.
async fn after_the_grace_the_old_cookie_is_no_session<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone(), true).await;
    let (cookie, id, issued) = seeded(&app, &store).await;
    until(issued + ms(EVERY)).await;
    let res = get(&app, "/read", Some(&cookie)).await;
    let new = pair(&set_cookie(&res).expect("the new ID's cookie"));
    actix_rt::time::sleep(GRACE + Duration::from_millis(200)).await;
    let res = get(&app, "/read", Some(&cookie)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(set_cookie(&res), None, "an empty new session sets nothing");
    assert_eq!(body(res).await, "0", "not served");
    assert!(stored(&store, &id).await.is_none(), "the tombstone is gone");
    let res = get(&app, "/count", Some(&cookie)).await;
    let fresh = sid(&set_cookie(&res).expect("a new session"));
    assert!(fresh != id && fresh != sid(&new));
    assert_eq!(body(res).await, "1");
    let res = get(&app, "/read", Some(&new)).await;
    assert_eq!(body(res).await, "1", "the moved session lives on");
    destroy(&store, &[&id, &sid(&new), &fresh]).await;
}

/// A session younger than `every` keeps its ID; with the option off nothing is written
/// under the new keys, however old the session.
async fn only_an_old_session_moves_and_only_with_the_option<S: SessionStore + Clone>(store: S) {
    let app_on = app(store.clone(), true).await;
    let (cookie, id, _) = seeded(&app_on, &store).await;
    let res = get(&app_on, "/count", Some(&cookie)).await;
    assert_eq!(set_cookie(&res), None, "same ID, nothing to send");
    assert_eq!(body(res).await, "2");
    let record = stored(&store, &id).await.expect("still there");
    assert_eq!(record.data["n"], 2);
    assert!(!record.data.contains_key(REISSUED_TO_KEY));
    destroy(&store, &[&id]).await;

    let app_off = app(store.clone(), false).await;
    let res = get(&app_off, "/count", None).await;
    let cookie = pair(&set_cookie(&res).expect("a new session"));
    let id = sid(&cookie);
    actix_rt::time::sleep(EVERY + Duration::from_millis(100)).await;
    let res = get(&app_off, "/count", Some(&cookie)).await;
    assert_eq!(set_cookie(&res), None, "same ID");
    assert_eq!(body(res).await, "2");
    let record = stored(&store, &id).await.expect("the session");
    assert_eq!(Value::Object(record.data), json!({"n": 2}), "no new keys");
    destroy(&store, &[&id]).await;
}

/// Requests that find the session due at the same time all end up under one new ID,
/// with one tombstone naming it.
async fn requests_due_together_move_to_one_new_id<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone(), true).await;
    let (cookie, id, issued) = seeded(&app, &store).await;
    until(issued + ms(EVERY)).await;
    let calls = (0..8).map(|_| get(&app, "/read", Some(&cookie)));
    let mut ids = Vec::new();
    for res in join_all(calls).await {
        assert_eq!(res.status(), 200);
        ids.push(sid(&set_cookie(&res).expect("the new ID's cookie")));
        assert_eq!(body(res).await, "1");
    }
    let new = ids[0].clone();
    assert!(ids.iter().all(|i| *i == new), "{ids:?}");
    assert_ne!(new, id);
    assert_tombstone(&store, &id, &new).await;
    destroy(&store, &[&id, &new]).await;
}

/// A logout with the old cookie inside the grace ends the session under both IDs.
async fn a_logout_with_the_old_cookie_ends_both_ids<S: SessionStore + Clone>(store: S) {
    let app = app(store.clone(), true).await;
    let (cookie, id, issued) = seeded(&app, &store).await;
    until(issued + ms(EVERY)).await;
    let res = get(&app, "/read", Some(&cookie)).await;
    let new = sid(&set_cookie(&res).expect("the new ID's cookie"));
    let res = get(&app, "/destroy", Some(&cookie)).await;
    assert_eq!(res.status(), 200);
    let removal = set_cookie(&res).expect("a removal cookie");
    assert_eq!(pair(&removal), "connect.sid=", "{removal}");
    assert!(stored(&store, &new).await.is_none(), "the new ID is gone");
    assert!(stored(&store, &id).await.is_none(), "and its tombstone");
}

async fn every_scenario<S: SessionStore + Clone>(store: S) {
    a_session_older_than_every_gets_a_new_id(store.clone()).await;
    the_old_cookie_works_within_the_grace(store.clone()).await;
    after_the_grace_the_old_cookie_is_no_session(store.clone()).await;
    only_an_old_session_moves_and_only_with_the_option(store.clone()).await;
    requests_due_together_move_to_one_new_id(store.clone()).await;
    a_logout_with_the_old_cookie_ends_both_ids(store).await;
}

#[actix_rt::test]
async fn memory_store() {
    let store = MemoryStore::new();
    every_scenario(store.clone()).await;
    assert_eq!(
        store.len().await.expect("len"),
        0,
        "every scenario cleaned up"
    );
}

#[test]
fn build_rejects_a_zero_or_oversized_grace_and_last_writer_wins() {
    let build = |every: u64, grace: u64, policy: WritePolicy| {
        SessionMiddleware::builder(MemoryStore::new(), SECRET)
            .write_policy(policy)
            .reissue_after(Duration::from_secs(every), Duration::from_secs(grace))
            .build()
            .map(drop)
    };
    let merge = WritePolicy::Merge;
    for (every, grace) in [(0, 0), (60, 0), (0, 1), (60, 60), (60, 61)] {
        let e = build(every, grace, merge).expect_err("rejected");
        assert!(matches!(e, ConfigError::InvalidReissue(_)), "{e:?}");
        assert!(e.to_string().starts_with("`reissue_after`"), "{e}");
    }
    let e = build(60, 5, WritePolicy::LastWriterWins).expect_err("rejected");
    assert_eq!(e, ConfigError::ReissueWithoutMerge);
    assert!(e.to_string().contains("`reissue_after`"), "{e}");
    assert!(build(60, 5, merge).is_ok());
}

/// The two recording stores, each with the call a load makes on it: one asked through
/// `load`, one that has its records at hand (`load_now`).
fn recorders() -> [(Recorder, &'static str); 2] {
    [
        (Recorder::default(), "load"),
        (Recorder::at_hand(), "load_now"),
    ]
}

/// An app on `store` whose session was just moved to a new ID by a read with its old
/// cookie: the app, that cookie, the old ID and the new one. The store's log holds
/// the moving read's calls only.
async fn moved(
    store: &Recorder,
) -> (
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    String,
    String,
    String,
) {
    let app = app(store.clone(), true).await;
    let (cookie, old, issued) = seeded(&app, &store.inner).await;
    until(issued + ms(EVERY)).await;
    store.calls();
    let res = get(&app, "/read", Some(&cookie)).await;
    let new = sid(&set_cookie(&res).expect("the new ID's cookie"));
    (app, cookie, old, new)
}

/// The move costs one `create` and one `save_if` on top of the load, and nothing else
/// (the new record was just written: no touch). A store with the record at hand
/// (`load_now`) is asked once too: the move goes on from that answer.
#[actix_rt::test]
async fn a_reissue_is_a_create_and_a_conditional_write() {
    for (store, load) in recorders() {
        let (_app, _cookie, old, new) = moved(&store).await;
        assert_eq!(
            store.calls(),
            [
                format!("{load} {old}"),
                format!("create {new}"),
                format!("save_if {old}"),
            ]
        );
    }
}

/// Within the grace, the old cookie's request reads the tombstone once and then the
/// session it names, on either kind of store.
#[actix_rt::test]
async fn a_tombstone_is_read_once_then_followed() {
    for (store, load) in recorders() {
        let (app, cookie, old, new) = moved(&store).await;
        store.calls();
        let res = get(&app, "/read", Some(&cookie)).await;
        assert_eq!(body(res).await, "1");
        assert_eq!(
            store.calls(),
            [format!("{load} {old}"), format!("load {new}")]
        );
    }
}

/// The middleware's keys are reserved and hidden from `entries`.
#[actix_rt::test]
async fn the_new_keys_are_reserved_and_hidden() {
    let store = MemoryStore::new();
    let app = app(store.clone(), true).await;
    let (cookie, _, _) = seeded(&app, &store).await;
    for key in [ISSUED_AT_KEY, REISSUED_TO_KEY] {
        let res = get(&app, &format!("/set/{key}/1"), Some(&cookie)).await;
        assert_eq!(res.status(), 500, "{key}");
    }
    let res = get(&app, "/entries", Some(&cookie)).await;
    assert_eq!(body(res).await, r#"{"n":1}"#);
}

/// A concurrent change to the session between the load and the tombstone (injected by
/// the store on `create`): the tombstone is not written, the new record is destroyed,
/// the request is served the session as it now is under its old ID, and the next
/// request moves it.
#[actix_rt::test]
async fn a_change_during_the_move_keeps_the_old_id() {
    let store = Interloper::default();
    let app = app(store.clone(), true).await;
    let (cookie, id, issued) = seeded(&app, &store.inner).await;
    until(issued + ms(EVERY)).await;
    *store.change.lock().expect("lock") = Some(id.clone());
    let res = get(&app, "/entries", Some(&cookie)).await;
    assert_eq!(set_cookie(&res), None, "still the old ID");
    assert_eq!(
        body(res).await,
        r#"{"n":1,"other":1}"#,
        "as the store has it now"
    );
    let record = stored(&store.inner, &id).await.expect("a live session");
    assert_eq!(record.data["other"], 1);
    assert_eq!(
        store.inner.len().await.expect("len"),
        1,
        "the new record is gone"
    );
    let res = get(&app, "/read", Some(&cookie)).await;
    let new = sid(&set_cookie(&res).expect("moved this time"));
    assert_tombstone(&store.inner, &id, &new).await;
}

/// A memory store that, when armed with an ID, changes that session just before the
/// next `create`: as an overlapping request's save would.
#[derive(Clone, Default)]
struct Interloper {
    inner: MemoryStore,
    change: Arc<Mutex<Option<String>>>,
}

impl SessionStore for Interloper {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.inner.get(sid)
    }
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.inner.set(sid, rec)
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.inner.destroy(sid)
    }
    fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        self.inner.load(sid)
    }
    fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> StoreFuture<'a, Option<Version>> {
        let change = self.change.lock().expect("lock").take();
        Box::pin(async move {
            if let Some(id) = change {
                let mut current = self.inner.get(&id).await?.expect("the session");
                current.data.insert("other".to_owned(), json!(1));
                self.inner.set(&id, &current).await?;
            }
            self.inner.create(sid, rec).await
        })
    }
    fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> StoreFuture<'a, SaveOutcome> {
        self.inner.save_if(sid, rec, expected)
    }
    fn len(&self) -> StoreFuture<'_, usize> {
        self.inner.len()
    }
}

#[cfg(feature = "redis")]
mod redis_support;

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn redis_standalone() {
    let prefix = redis_support::unique_prefix("reissue");
    let store = redis_support::standalone(&prefix).await;
    every_scenario(store.clone()).await;
    store.clear().await.expect("cleaned up");
}

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn redis_cluster() {
    let prefix = redis_support::unique_prefix("reissue-cluster");
    let store = redis_support::cluster(&prefix).await;
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
