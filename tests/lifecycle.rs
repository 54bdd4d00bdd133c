//! When the middleware saves, touches and sends the cookie: express-session's rules as a
//! user sees them (status, Set-Cookie, store contents).

mod common;

use std::time::Duration;

use actix_express_session::store::SessionStore;
use actix_express_session::{CookieOptions, MemoryStore, SessionMiddleware};
use common::{app, body, get, pair, set_cookie, sid, Recorder, SECRET};

#[actix_rt::test]
async fn the_counter_counts_and_sends_the_cookie_once() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let res = get(&app, "/count", None).await;
    let cookie = set_cookie(&res).expect("a new, modified session sends its cookie");
    assert!(cookie.starts_with("connect.sid=s%3A"), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(body(res).await, "1");
    for expected in ["2", "3"] {
        let res = get(&app, "/count", Some(&pair(&cookie))).await;
        assert_eq!(
            set_cookie(&res),
            None,
            "browser-session cookie, not rolling: sent once"
        );
        assert_eq!(body(res).await, expected);
    }
    let stored = store.get(&sid(&cookie)).await.unwrap().expect("saved");
    assert_eq!(stored.data["n"], 3);
}

#[actix_rt::test]
async fn an_untouched_visitor_gets_no_cookie_and_nothing_is_stored() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let res = get(&app, "/read", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(set_cookie(&res), None);
    assert_eq!(store.len().await.unwrap(), 0);
}

#[actix_rt::test]
async fn save_uninitialized_stores_and_sends_an_empty_session() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .save_uninitialized(true)
        .build()
        .unwrap();
    let app = app(mw).await;
    let res = get(&app, "/read", None).await;
    let cookie = set_cookie(&res).expect("cookie for an uninitialized session");
    let stored = store.get(&sid(&cookie)).await.unwrap().expect("stored");
    assert!(stored.data.is_empty());
}

#[actix_rt::test]
async fn resave_false_only_touches_an_unmodified_session() {
    let store = Recorder::default();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .touch_after(Duration::ZERO)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let id = sid(&cookie);
    assert_eq!(store.calls(), [format!("create {id}")]);
    get(&app, "/read", Some(&pair(&cookie))).await;
    assert_eq!(store.calls(), [format!("load {id}"), format!("touch {id}")]);
    get(&app, "/count", Some(&pair(&cookie))).await;
    assert_eq!(
        store.calls(),
        [format!("load {id}"), format!("save_if {id}")]
    );
}

/// The store round trips of each kind of request, with the default options: a request
/// that never uses the session makes none; a read within `touch_after` makes one (the
/// load); a change makes one load and one write; a new session one write. A store that
/// has the record at hand (`load_now`, as the memory store) is asked there and never
/// through `load`.
#[actix_rt::test]
async fn store_round_trips_per_request() {
    for (store, load) in [
        (Recorder::default(), "load"),
        (Recorder::at_hand(), "load_now"),
    ] {
        let app = app(SessionMiddleware::builder(store.clone(), SECRET)
            .build()
            .unwrap())
        .await;
        let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
        let id = sid(&cookie);
        assert_eq!(store.calls(), [format!("create {id}")], "new: one write");
        let res = get(&app, "/noop", Some(&pair(&cookie))).await;
        assert_eq!((res.status().as_u16(), set_cookie(&res)), (200, None));
        assert_eq!(store.calls(), Vec::<String>::new(), "unused: no store call");
        assert_eq!(
            body(get(&app, "/read", Some(&pair(&cookie))).await).await,
            "1"
        );
        assert_eq!(
            store.calls(),
            [format!("{load} {id}")],
            "read: the load only"
        );
        assert_eq!(
            body(get(&app, "/count", Some(&pair(&cookie))).await).await,
            "2"
        );
        assert_eq!(
            store.calls(),
            [format!("{load} {id}"), format!("save_if {id}")],
            "changed: one load, one write"
        );
        store.inner.destroy(&id).await.unwrap();
        let res = get(&app, "/count", Some(&pair(&cookie))).await;
        assert_ne!(
            sid(&set_cookie(&res).unwrap()),
            id,
            "a gone session: a new one"
        );
        assert_eq!(store.calls()[0], format!("{load} {id}"));
    }
}

/// A touch is due again once `touch_after` has passed since the store last extended the
/// session; a persistent cookie caps the interval at half its max age.
#[actix_rt::test]
async fn a_touch_is_due_once_touch_after_has_passed() {
    for (touch_after, max_age) in [(150, None), (60_000, Some(300))] {
        let store = Recorder::default();
        let mut cookie_options = CookieOptions::default();
        if let Some(ms) = max_age {
            cookie_options = cookie_options.max_age(Duration::from_millis(ms));
        }
        let app = app(SessionMiddleware::builder(store.clone(), SECRET)
            .touch_after(Duration::from_millis(touch_after))
            .cookie(cookie_options)
            .build()
            .unwrap())
        .await;
        let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
        let id = sid(&cookie);
        store.calls();
        get(&app, "/read", Some(&pair(&cookie))).await;
        assert_eq!(
            store.calls(),
            [format!("load {id}")],
            "{touch_after} ms: not yet"
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            body(get(&app, "/read", Some(&pair(&cookie))).await).await,
            "1"
        );
        assert_eq!(
            store.calls(),
            [format!("load {id}"), format!("touch {id}")],
            "{touch_after} ms, max age {max_age:?}: due"
        );
    }
}

#[actix_rt::test]
async fn resave_true_writes_an_unmodified_session_and_never_touches() {
    let store = Recorder::default();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .resave(true)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let id = sid(&cookie);
    store.calls();
    get(&app, "/read", Some(&pair(&cookie))).await;
    assert_eq!(
        store.calls(),
        [format!("load {id}"), format!("save_if {id}")]
    );
}

#[actix_rt::test]
async fn re_assigning_an_equal_value_is_not_a_change() {
    let store = Recorder::default();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .touch_after(Duration::ZERO)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/set/user/\"ada\"", None).await).unwrap();
    store.calls();
    get(&app, "/set/user/\"ada\"", Some(&pair(&cookie))).await;
    let id = sid(&cookie);
    assert_eq!(
        store.calls(),
        [format!("load {id}"), format!("touch {id}")],
        "touched, not saved"
    );
}

#[actix_rt::test]
async fn a_nested_key_named_cookie_is_user_data() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/set/prefs/%7B%22cookie%22:1%7D", None).await).unwrap();
    get(
        &app,
        "/set/prefs/%7B%22cookie%22:2%7D",
        Some(&pair(&cookie)),
    )
    .await;
    let stored = store.get(&sid(&cookie)).await.unwrap().unwrap();
    assert_eq!(stored.data["prefs"]["cookie"], 2, "the change was saved");
}

#[actix_rt::test]
async fn rolling_re_sends_the_cookie_on_every_response() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .rolling(true)
        .build()
        .unwrap();
    let app = app(mw).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    for _ in 0..2 {
        let res = get(&app, "/read", Some(&pair(&cookie))).await;
        assert_eq!(
            set_cookie(&res).map(|c| pair(&c)),
            Some(pair(&cookie)),
            "same session, re-sent"
        );
    }
}

#[actix_rt::test]
async fn a_persistent_cookie_is_re_sent_when_the_session_changes() {
    let options = CookieOptions::default().max_age(std::time::Duration::from_secs(60));
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .cookie(options)
        .build()
        .unwrap();
    let app = app(mw).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(
        set_cookie(&get(&app, "/count", Some(&pair(&cookie))).await).is_some(),
        "modified: re-sent"
    );
    assert!(
        set_cookie(&get(&app, "/read", Some(&pair(&cookie))).await).is_none(),
        "unmodified: not sent"
    );
}

#[actix_rt::test]
async fn a_path_outside_cookie_path_gets_no_session_at_all() {
    let store = Recorder::default();
    let options = CookieOptions::default().path("/cou");
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(options)
        .build()
        .unwrap();
    let app = app(mw).await;
    let res = get(&app, "/count", None).await;
    let cookie = set_cookie(&res).expect("/count starts with /cou: a raw prefix test");
    assert!(cookie.contains("; Path=/cou;"));
    let res = get(&app, "/read", Some(&pair(&cookie))).await;
    assert_eq!(
        res.status(),
        500,
        "the handler asked for a session the middleware did not provide"
    );
    assert_eq!(body(res).await, "");
    let res = get(&app, "/noop", Some(&pair(&cookie))).await;
    assert_eq!((res.status().as_u16(), set_cookie(&res)), (200, None));
    let id = sid(&cookie);
    assert_eq!(
        store.calls(),
        [format!("create {id}")],
        "no store call outside the path"
    );
}

#[actix_rt::test]
async fn a_cookie_for_an_id_the_store_does_not_know_gets_a_new_id() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let forged = format!(
        "connect.sid=s%3A{}",
        actix_express_session::sign("chosen-by-client", SECRET)
    );
    let res = get(&app, "/count", Some(&forged)).await;
    let cookie = set_cookie(&res).expect("a new session");
    assert_ne!(sid(&cookie), "chosen-by-client");
    assert!(store.get("chosen-by-client").await.unwrap().is_none());
}

#[actix_rt::test]
async fn the_handler_s_own_set_cookie_headers_are_kept() {
    use actix_web::{test, web, App, HttpResponse};
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap();
    let handler = |s: actix_express_session::Session| async move {
        s.insert("k", 1).unwrap();
        HttpResponse::Ok()
            .insert_header(("set-cookie", "theme=dark"))
            .finish()
    };
    let app = test::init_service(App::new().wrap(mw).route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    let cookies = common::set_cookies(&res);
    assert_eq!(cookies.len(), 2);
    assert_eq!(cookies[0], "theme=dark");
    assert!(cookies[1].starts_with("connect.sid="));
}

#[actix_rt::test]
async fn a_second_session_middleware_inside_the_first_does_nothing() {
    use actix_web::{test, web, App};
    let store = MemoryStore::new();
    let outer = SessionMiddleware::builder(store.clone(), SECRET)
        .save_uninitialized(true)
        .build()
        .unwrap();
    let inner = SessionMiddleware::builder(store.clone(), SECRET)
        .save_uninitialized(true)
        .build()
        .unwrap();
    let app = App::new()
        .wrap(outer)
        .service(web::scope("/api").wrap(inner).configure(common::routes));
    let app = test::init_service(app).await;
    let req = test::TestRequest::get().uri("/api/count").to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(
        common::set_cookies(&res).len(),
        1,
        "one session, one cookie"
    );
    assert_eq!(store.len().await.unwrap(), 1);
}
