//! Records are shared read-only between the requests that load them: the memory store
//! keeps its records parsed, and Redis and PostgreSQL keep, per worker thread, a parse of
//! each stored text read more than once. Two sessions whose stored text is the same then
//! share one record. A change, saved or not, must reach only its own session.
//!
//! On the memory store here, and on Redis and PostgreSQL when those features are on
//! (`scripts/test.sh` starts the servers).

mod common;

use actix_express_session::store::SessionStore;
use actix_express_session::{MemoryStore, Session, SessionMiddleware};
use actix_web::{test, web, App};
use common::{body, get, pair, set_cookie, SECRET};

/// Changes the session, then gives it up: nothing is saved.
async fn change_then_unset(session: Session) -> actix_web::Result<&'static str> {
    session.insert("n", 99)?;
    session.unset();
    Ok("unset")
}

async fn a_change_reaches_only_its_own_session<S: SessionStore + Clone>(store: S) {
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::builder(store, SECRET).build().unwrap())
            .route("/change-then-unset", web::get().to(change_then_unset))
            .configure(common::routes),
    )
    .await;
    let a = pair(&set_cookie(&get(&app, "/count", None).await).unwrap());
    let b = pair(&set_cookie(&get(&app, "/count", None).await).unwrap());
    // Both stored as the same text; reading each twice makes it a kept, shared record.
    for cookie in [&a, &b, &a, &b] {
        assert_eq!(body(get(&app, "/read", Some(cookie)).await).await, "1");
    }

    let res = get(&app, "/change-then-unset", Some(&a)).await;
    assert_eq!(res.status(), 200);
    for cookie in [&a, &b] {
        let read = body(get(&app, "/read", Some(cookie)).await).await;
        assert_eq!(read, "1", "an unsaved change stays in its request");
    }

    assert_eq!(body(get(&app, "/count", Some(&a)).await).await, "2");
    assert_eq!(body(get(&app, "/read", Some(&a)).await).await, "2");
    assert_eq!(
        body(get(&app, "/read", Some(&b)).await).await,
        "1",
        "a saved change reaches its own session only"
    );
}

#[actix_rt::test]
async fn memory() {
    a_change_reaches_only_its_own_session(MemoryStore::new()).await;
}

#[cfg(feature = "redis")]
mod redis_support;

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn redis() {
    let prefix = redis_support::unique_prefix("shared-records");
    let store = redis_support::standalone(&prefix).await;
    a_change_reaches_only_its_own_session(store.clone()).await;
    store.clear().await.expect("cleaned up");
}

#[cfg(feature = "postgres")]
mod postgres_util;

#[cfg(feature = "postgres")]
#[actix_rt::test]
async fn postgres() {
    let schema = postgres_util::TestSchema::new().await;
    let store = schema.builder().build().expect("valid");
    a_change_reaches_only_its_own_session(store).await;
    schema.drop().await;
}
