//! Failures: a store outage is an empty 500 and a log line, and service resumes by
//! itself; a handler using `Session` without the middleware gets a 500, not a panic.

mod common;

use std::time::Duration;

use actix_express_session::{Load, MemoryStore, Session, SessionMiddleware};
use actix_web::{test, web, App};
use common::logs::Logs;
use common::{app, body, get, pair, set_cookie, Flaky, SECRET};

#[actix_rt::test]
async fn a_store_outage_is_an_empty_500_with_a_log_line_and_service_resumes() {
    let logs = Logs::capture(tracing::Level::INFO);
    let store = Flaky::default();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();

    store.fail(true);
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    assert_eq!(res.status(), 500, "load failed: not a silent logout");
    assert_eq!(body(res).await, "");
    let res = get(&app, "/count", None).await;
    assert_eq!(res.status(), 500, "save failed: not a 200 with lost data");
    assert_eq!(set_cookie(&res), None);
    assert_eq!(body(res).await, "");
    let text = logs.text();
    assert!(text.contains("ERROR"), "{text}");
    // The line names the failing operation and the store.
    for op in ["load", "create"] {
        let line = format!("session store call failed: the session store backend failed: injected outage store=\"Flaky\" op=\"{op}\"");
        assert!(text.contains(&line), "{op}: {text}");
    }
    assert!(!text.contains(SECRET), "no secret in logs");

    store.fail(false);
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await, "2", "the session survived the outage");
}

/// With lazy loading (the default) a request whose handler never uses the session
/// makes no store call, so a store outage does not reach it; with eager loading it does.
#[actix_rt::test]
async fn a_store_outage_reaches_only_requests_that_use_the_session() {
    for (load, noop_status) in [(Load::Lazy, 200), (Load::Eager, 500)] {
        let store = Flaky::default();
        let sessions = SessionMiddleware::builder(store.clone(), SECRET).load(load);
        let app = app(sessions.build().unwrap()).await;
        let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
        store.fail(true);
        let res = get(&app, "/noop", Some(&pair(&cookie))).await;
        assert_eq!(res.status(), noop_status, "{load:?}");
        assert_eq!(set_cookie(&res), None);
        let res = get(&app, "/read", Some(&pair(&cookie))).await;
        assert_eq!(res.status(), 500, "{load:?}: the load failed");
    }
}

/// A touch that fails is a 500 like any other store failure.
#[actix_rt::test]
async fn a_failed_touch_is_a_500_too() {
    let store = Flaky::default();
    let sessions = SessionMiddleware::builder(store.clone(), SECRET).touch_after(Duration::ZERO);
    let app = app(sessions.build().unwrap()).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    store.fail_after(1);
    let res = get(&app, "/read", Some(&pair(&cookie))).await;
    assert_eq!(res.status(), 500, "the load worked, the touch failed");
    assert_eq!(body(res).await, "");
}

#[actix_rt::test]
async fn a_session_without_the_middleware_is_a_500_with_a_log_line() {
    let logs = Logs::capture(tracing::Level::INFO);
    let handler = |s: Session| async move { s.id() };
    let app = test::init_service(App::new().route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(res.status(), 500);
    assert_eq!(body(res).await, "");
    assert!(
        logs.text().contains("SessionMiddleware did not handle"),
        "{}",
        logs.text()
    );
}

#[actix_rt::test]
async fn an_unreadable_stored_record_is_a_fresh_session_and_is_left_in_place() {
    use actix_express_session::store::SessionStore;
    struct Corrupt(MemoryStore);
    impl SessionStore for Corrupt {
        /// Every record it has reads back as garbage.
        fn get<'a>(
            &'a self,
            sid: &'a str,
        ) -> actix_express_session::store::StoreFuture<
            'a,
            Option<actix_express_session::SessionRecord>,
        > {
            Box::pin(async move {
                if self.0.get(sid).await?.is_none() {
                    return Ok(None);
                }
                let err = actix_express_session::SessionRecord::from_json(b"[1]").unwrap_err();
                Err(actix_express_session::store::StoreError::Serialization(err))
            })
        }
        fn set<'a>(
            &'a self,
            sid: &'a str,
            rec: &'a actix_express_session::SessionRecord,
        ) -> actix_express_session::store::StoreFuture<'a, ()> {
            self.0.set(sid, rec)
        }
        fn destroy<'a>(
            &'a self,
            sid: &'a str,
        ) -> actix_express_session::store::StoreFuture<'a, ()> {
            self.0.destroy(sid)
        }
    }
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(Corrupt(store.clone()), SECRET)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    assert_eq!(res.status(), 200);
    let fresh = set_cookie(&res).expect("a new session");
    assert_ne!(common::sid(&fresh), common::sid(&cookie));
    assert!(
        store.get(&common::sid(&cookie)).await.unwrap().is_some(),
        "nothing lost"
    );
}
