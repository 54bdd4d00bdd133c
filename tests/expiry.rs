//! Expiry the middleware enforces itself, on every store: a record whose cookie expired
//! is never used (and is removed) whatever the store returns; the absolute timeout ends
//! a session however active it is; a cookie signed with an older secret comes back
//! signed with the newest; remember-me switched off re-sends a browser-session cookie.
//!
//! Every scenario runs on the memory store here, and on Redis and PostgreSQL when those
//! features are on (`scripts/test.sh` starts the servers).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_express_session::store::{SessionStore, StoreFuture};
use actix_express_session::{
    sign, CookieOptions, MemoryStore, Session, SessionMiddleware, SessionMiddlewareBuilder,
    SessionRecord, CREATED_AT_KEY,
};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App};
use common::{attr, body, get, pair, set_cookie, sid, SECRET};
use serde_json::json;

/// `connect.sid=s%3A<id>.<signature>`, as a browser sends it back.
fn cookie_for(id: &str, secret: &str) -> String {
    let signed = sign(id, secret).replace('+', "%2B").replace('/', "%2F");
    format!("connect.sid=s%3A{signed}")
}

async fn forget_me(session: Session) -> actix_web::Result<&'static str> {
    session.set_max_age(None);
    Ok("forgotten")
}

async fn app<S: SessionStore>(
    builder: SessionMiddlewareBuilder<S>,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .wrap(builder.build().expect("valid options"))
            .route("/forget-me", web::get().to(forget_me))
            .configure(common::routes),
    )
    .await
}

/// `planted` has a record whose cookie expired an hour ago, which the store still
/// returns: the request gets a new session, and the stale record is gone.
async fn an_expired_record_is_not_used_and_is_removed<S: SessionStore + Clone>(
    store: S,
    planted: &str,
) {
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)).await;
    let res = get(&app, "/count", Some(&cookie_for(planted, SECRET))).await;
    assert_eq!(res.status(), 200);
    let fresh = set_cookie(&res).expect("a new session");
    assert_ne!(sid(&fresh), planted, "a new ID");
    assert_eq!(body(res).await, "1", "none of the expired data");
    assert!(store.get(planted).await.expect("get").is_none(), "removed");
    store.destroy(&sid(&fresh)).await.expect("cleaned up");
}

/// A session used every 400 ms (each use extending its idle life) still ends at its
/// absolute lifetime: the request after it gets a new session and the record is gone.
async fn the_absolute_timeout_ends_an_active_session<S: SessionStore + Clone>(store: S) {
    let lifetime = Duration::from_millis(1_800);
    let builder = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(CookieOptions::default().max_age(Duration::from_secs(3600)))
        .touch_after(Duration::ZERO)
        .absolute_timeout(lifetime);
    let app = app(builder).await;
    let started = std::time::Instant::now();
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    let id = sid(&cookie);
    let stored = store.get(&id).await.expect("get").expect("stored");
    assert!(stored.data[CREATED_AT_KEY].is_i64(), "{:?}", stored.data);
    let mut reads = 0;
    while started.elapsed() + Duration::from_millis(400) < lifetime {
        let res = get(&app, "/read", Some(&cookie)).await;
        assert_eq!(body(res).await, "1", "alive within its lifetime");
        reads += 1;
        actix_rt::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(reads >= 2, "{reads}");
    actix_rt::time::sleep(lifetime.saturating_sub(started.elapsed()) + Duration::from_millis(100))
        .await;
    let res = get(&app, "/count", Some(&cookie)).await;
    let fresh = set_cookie(&res).expect("a new session");
    assert_ne!(sid(&fresh), id);
    assert_eq!(body(res).await, "1", "the old data is gone");
    assert!(
        store.get(&id).await.expect("get").is_none(),
        "and so is its record"
    );
    store.destroy(&sid(&fresh)).await.expect("cleaned up");
}

/// A cookie that an older secret signed comes back signed with the newest, without
/// `rolling`; the next request (with the new cookie) gets no cookie.
async fn a_cookie_signed_with_an_old_secret_is_re_signed<S: SessionStore + Clone>(store: S) {
    let old = app(SessionMiddleware::builder(store.clone(), "old secret")).await;
    let cookie = set_cookie(&get(&old, "/count", None).await).expect("a session");
    let rotated = app(SessionMiddleware::builder(
        store.clone(),
        ["new secret", "old secret"],
    ))
    .await;
    let res = get(&rotated, "/read", Some(&pair(&cookie))).await;
    let resigned = set_cookie(&res).expect("re-sent");
    assert_eq!(body(res).await, "1");
    assert_eq!(pair(&resigned), cookie_for(&sid(&cookie), "new secret"));
    let res = get(&rotated, "/read", Some(&pair(&resigned))).await;
    assert_eq!(set_cookie(&res), None, "already signed with the newest");
    store.destroy(&sid(&cookie)).await.expect("cleaned up");
}

/// `set_max_age(None)` on a session with a persistent cookie saves the change and
/// re-sends the cookie as a browser-session cookie (no `Expires`).
async fn remember_me_switched_off_re_sends_the_cookie<S: SessionStore + Clone>(store: S) {
    let builder = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(CookieOptions::default().max_age(Duration::from_secs(3600)));
    let app = app(builder).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).expect("a session");
    assert!(attr(&cookie, "Expires").is_some(), "{cookie}");
    let res = get(&app, "/forget-me", Some(&pair(&cookie))).await;
    let sent = set_cookie(&res).expect("re-sent");
    assert_eq!(sid(&sent), sid(&cookie));
    assert_eq!(attr(&sent, "Expires"), None, "{sent}");
    let stored = store
        .get(&sid(&cookie))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        stored.cookie.expires(),
        None,
        "saved as a browser-session cookie"
    );
    assert_eq!(stored.data["n"], 1);
    store.destroy(&sid(&cookie)).await.expect("cleaned up");
}

async fn every_scenario<S: SessionStore + Clone>(store: S) {
    the_absolute_timeout_ends_an_active_session(store.clone()).await;
    a_cookie_signed_with_an_old_secret_is_re_signed(store.clone()).await;
    remember_me_switched_off_re_sends_the_cookie(store).await;
}

/// A record whose cookie expired an hour ago.
fn expired_record() -> SessionRecord {
    common::conformance::record(Some(-3_600_000), json!({"n": 41}))
}

#[actix_rt::test]
async fn memory_store() {
    let store = MemoryStore::new();
    every_scenario(store.clone()).await;
    store.set("planted", &expired_record()).await.expect("set");
    an_expired_record_is_not_used_and_is_removed(store.clone(), "planted").await;
    assert_eq!(store.entry_count(), 0, "nothing left in memory");
}

/// A store that hands back whatever it holds, expired or not (as a store without TTLs,
/// or a third-party one, may): the middleware still refuses an expired record.
#[actix_rt::test]
async fn a_store_that_ignores_expiry() {
    let store = Forever::default();
    store.set("planted", &expired_record()).await.expect("set");
    assert!(
        store.get("planted").await.expect("get").is_some(),
        "it does keep it"
    );
    an_expired_record_is_not_used_and_is_removed(store, "planted").await;
}

/// Keeps every record until it is destroyed, whatever its cookie says.
#[derive(Clone, Default)]
struct Forever(Arc<Mutex<HashMap<String, SessionRecord>>>);

impl SessionStore for Forever {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        let found = self.0.lock().unwrap().get(sid).cloned();
        Box::pin(async move { Ok(found) })
    }
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.0.lock().unwrap().insert(sid.to_owned(), rec.clone());
        Box::pin(async { Ok(()) })
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.0.lock().unwrap().remove(sid);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(feature = "redis")]
mod redis_support;

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn redis() {
    let prefix = redis_support::unique_prefix("expiry");
    let store = redis_support::standalone(&prefix).await;
    every_scenario(store.clone()).await;
    // connect-redis with TTLs off (or a clock that disagrees) keeps expired records.
    let mut raw = redis_support::raw(&redis_support::redis_url()).await;
    let key = format!("{prefix}planted");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(expired_record().to_json())
        .query_async(&mut raw)
        .await
        .expect("planted");
    an_expired_record_is_not_used_and_is_removed(store.clone(), "planted").await;
    let left: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .expect("get");
    assert_eq!(left, None, "the key is deleted");
    store.clear().await.expect("cleaned up");
}

#[cfg(feature = "postgres")]
mod postgres_util;

#[cfg(feature = "postgres")]
#[actix_rt::test]
async fn postgres() {
    let schema = postgres_util::TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    every_scenario(store.clone()).await;
    // A row whose `expire` column is still ahead but whose cookie has expired (written
    // by another app, or with clocks that disagree).
    let json = expired_record().to_json().replace('\'', "''");
    schema
        .exec(&format!(
            "INSERT INTO {{s}}.\"session\" (sid, sess, expire) VALUES ('planted', '{json}', now() + interval '1 hour')"
        ))
        .await;
    an_expired_record_is_not_used_and_is_removed(store, "planted").await;
    assert_eq!(schema.count("session").await, 0, "the row is deleted");
    schema.drop().await;
}
