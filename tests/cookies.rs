//! The Set-Cookie header: attributes, `Secure` handling, trusted proxies, and attributes
//! that stay with a session.

mod common;

use std::time::Duration;

use actix_express_session::store::SessionStore;
use actix_express_session::{
    CookieOptions, MemoryStore, Priority, SameSite, Secure, SessionMiddleware, TrustProxy,
};
use actix_http::Request;
use actix_service::{IntoServiceFactory, ServiceFactory};
use actix_web::dev::{AppConfig, Service};
use actix_web::{test, App};
use common::{app, attr, get, pair, set_cookie, sid, SECRET};

fn with(options: CookieOptions) -> SessionMiddleware<MemoryStore> {
    SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .cookie(options)
        .build()
        .unwrap()
}

#[actix_rt::test]
async fn every_attribute_is_rendered_in_express_order() {
    let options = CookieOptions::default()
        .domain("example.com")
        .path("/")
        .max_age(Duration::from_secs(3600))
        .secure(Secure::Always)
        .partitioned(true)
        .priority(Priority::High)
        .same_site(SameSite::Strict);
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .cookie(options)
        .trust_proxy(TrustProxy::Always)
        .build()
        .unwrap();
    let app = app(mw).await;
    let req = test::TestRequest::get()
        .uri("/count")
        .insert_header(("x-forwarded-proto", "https"));
    let res = test::call_service(&app, req.to_request()).await;
    let cookie = set_cookie(&res).unwrap();
    let names: Vec<&str> = cookie
        .split("; ")
        .skip(1)
        .map(|a| a.split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Domain",
            "Path",
            "Expires",
            "HttpOnly",
            "Secure",
            "Partitioned",
            "Priority",
            "SameSite"
        ]
    );
    assert_eq!(attr(&cookie, "Priority").as_deref(), Some("High"));
    assert_eq!(attr(&cookie, "SameSite").as_deref(), Some("Strict"));
    assert!(
        attr(&cookie, "Max-Age").is_none(),
        "express-session never sends Max-Age"
    );
}

#[actix_rt::test]
async fn max_age_sets_expires_in_the_future() {
    let app = app(with(
        CookieOptions::default().max_age(Duration::from_secs(3600)),
    ))
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let expires = attr(&cookie, "Expires").expect("Expires");
    assert!(expires.ends_with(" GMT"), "{expires}");
    let res = get(&app, "/session-cookie", Some(&pair(&cookie))).await;
    let json: serde_json::Value = serde_json::from_str(&common::body(res).await).unwrap();
    assert_eq!(json["original_max_age"], 3600);
    assert!(json["max_age"].as_u64().unwrap() > 3590);
}

#[actix_rt::test]
async fn name_option_renames_the_cookie() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .name("sid")
        .build()
        .unwrap();
    let app = app(mw).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(cookie.starts_with("sid=s%3A"));
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    assert_eq!(common::body(res).await, "2");
}

#[actix_rt::test]
async fn secure_always_withholds_the_cookie_on_plain_http_but_still_saves() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(CookieOptions::default().secure(Secure::Always))
        .build()
        .unwrap();
    let app = app(mw).await;
    let res = get(&app, "/count", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(set_cookie(&res), None, "no Secure cookie over HTTP");
    assert_eq!(store.len().await.unwrap(), 1, "the session is still saved");
}

async fn auto_cookie(proxy: TrustProxy, xfp: Option<&str>) -> String {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .trust_proxy(proxy)
        .build()
        .unwrap();
    let app = app(mw).await;
    let mut req = test::TestRequest::get().uri("/count");
    if let Some(xfp) = xfp {
        req = req.insert_header(("x-forwarded-proto", xfp));
    }
    set_cookie(&test::call_service(&app, req.to_request()).await).expect("cookie")
}

#[actix_rt::test]
async fn secure_auto_is_secure_only_behind_a_trusted_https_proxy() {
    for xfp in ["https", "HTTPS", " https , http"] {
        assert!(
            attr(&auto_cookie(TrustProxy::Always, Some(xfp)).await, "Secure").is_some(),
            "{xfp}"
        );
    }
    for xfp in [
        None,
        Some("http"),
        Some("http, https"),
        Some("wss"),
        Some("https;x"),
    ] {
        assert!(
            attr(&auto_cookie(TrustProxy::Always, xfp).await, "Secure").is_none(),
            "{xfp:?}"
        );
    }
    let spoofed = auto_cookie(TrustProxy::Never, Some("https")).await;
    assert!(
        attr(&spoofed, "Secure").is_none(),
        "an untrusted X-Forwarded-Proto is ignored"
    );
}

#[actix_rt::test]
async fn forwarded_header_is_not_read() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .trust_proxy(TrustProxy::Always)
        .build()
        .unwrap();
    let app = app(mw).await;
    let req = test::TestRequest::get()
        .uri("/count")
        .insert_header(("forwarded", "proto=https"));
    let cookie = set_cookie(&test::call_service(&app, req.to_request()).await).unwrap();
    assert!(attr(&cookie, "Secure").is_none());
}

/// An app whose connection is TLS (what `HttpServer::bind_rustls` gives a request).
async fn tls_app(
    mw: SessionMiddleware<MemoryStore>,
) -> impl Service<
    Request,
    Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    let factory = App::new().wrap(mw).configure(common::routes).into_factory();
    let addr = "127.0.0.1:443".parse().unwrap();
    factory
        .new_service(AppConfig::__priv_test_new(true, "localhost".into(), addr))
        .await
        .unwrap()
}

#[actix_rt::test]
async fn secure_auto_is_secure_on_a_direct_tls_connection() {
    let app = tls_app(
        SessionMiddleware::builder(MemoryStore::new(), SECRET)
            .build()
            .unwrap(),
    )
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(attr(&cookie, "Secure").is_some());
}

#[actix_rt::test]
async fn a_session_keeps_the_attributes_it_was_created_with() {
    let store = MemoryStore::new();
    let old = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(
            CookieOptions::default()
                .max_age(Duration::from_secs(60))
                .domain("old.example"),
        )
        .build()
        .unwrap();
    let cookie = set_cookie(&get(&app(old).await, "/count", None).await).unwrap();
    let new = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(
            CookieOptions::default()
                .max_age(Duration::from_secs(7200))
                .domain("new.example"),
        )
        .build()
        .unwrap();
    let app = app(new).await;
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    let resent = set_cookie(&res).expect("persistent and modified: re-sent");
    assert_eq!(attr(&resent, "Domain").as_deref(), Some("old.example"));
    let stored = store.get(&sid(&cookie)).await.unwrap().unwrap();
    assert_eq!(
        stored.cookie.original_max_age(),
        Some(Duration::from_secs(60))
    );
    let fresh = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert_eq!(
        attr(&fresh, "Domain").as_deref(),
        Some("new.example"),
        "new sessions get the new options"
    );
}

#[actix_rt::test]
async fn set_max_age_is_a_change_saved_and_re_sent() {
    let app = app(with(CookieOptions::default())).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(attr(&cookie, "Expires").is_none());
    let res = get(&app, "/max-age/600", Some(&pair(&cookie))).await;
    let remembered = set_cookie(&res).expect("an explicit cookie change re-sends the cookie");
    assert!(attr(&remembered, "Expires").is_some());
    let res = get(&app, "/session-cookie", Some(&pair(&cookie))).await;
    let json: serde_json::Value = serde_json::from_str(&common::body(res).await).unwrap();
    assert_eq!(json["original_max_age"], 600, "the new lifetime was saved");
}

#[actix_rt::test]
async fn a_secure_session_is_never_sent_over_http_later() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .trust_proxy(TrustProxy::Always)
        .rolling(true)
        .build()
        .unwrap();
    let app = app(mw).await;
    let req = test::TestRequest::get()
        .uri("/count")
        .insert_header(("x-forwarded-proto", "https"));
    let cookie = set_cookie(&test::call_service(&app, req.to_request()).await).unwrap();
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        set_cookie(&res),
        None,
        "Secure was resolved at creation and persists"
    );
    assert_eq!(
        store.get(&sid(&cookie)).await.unwrap().unwrap().data["n"],
        2
    );
}

#[actix_rt::test]
async fn an_absolute_expiry_becomes_the_session_s_lifetime() {
    let at = std::time::SystemTime::now() + Duration::from_secs(120);
    let app = app(with(CookieOptions::default().expires(at))).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(attr(&cookie, "Expires").is_some());
    let res = get(&app, "/session-cookie", Some(&pair(&cookie))).await;
    let json: serde_json::Value = serde_json::from_str(&common::body(res).await).unwrap();
    let lifetime = json["original_max_age"].as_u64().unwrap();
    assert!(
        (118..=120).contains(&lifetime),
        "time left at creation: {lifetime}"
    );
}

#[actix_rt::test]
async fn http_only_can_be_turned_off() {
    let app = app(with(CookieOptions::default().http_only(false))).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(attr(&cookie, "HttpOnly").is_none(), "{cookie}");
}

#[actix_rt::test]
async fn secure_never_is_plain_even_on_tls() {
    let app = tls_app(with(CookieOptions::default().secure(Secure::Never))).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(attr(&cookie, "Secure").is_none(), "{cookie}");
}

#[actix_rt::test]
async fn same_site_none_with_secure_renders() {
    let options = CookieOptions::default()
        .same_site(SameSite::None)
        .secure(Secure::Always);
    let app = tls_app(with(options)).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert!(
        cookie.ends_with("; HttpOnly; Secure; SameSite=None"),
        "{cookie}"
    );
}

/// express-session 1.19's `cookie` as a function: per-request options for new sessions,
/// whose path decides whether the request has a session at all.
#[actix_rt::test]
async fn cookie_for_chooses_the_options_per_request() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie_for(|req| {
            let admin = req.headers().contains_key("x-admin");
            let (path, secs) = if admin { ("/", 60) } else { ("/count", 3600) };
            CookieOptions::default()
                .path(path)
                .max_age(Duration::from_secs(secs))
        })
        .build()
        .unwrap();
    let app = app(mw).await;
    let lifetime = |cookie: &str| {
        let store = store.clone();
        let id = sid(cookie);
        async move {
            let record = store.get(&id).await.unwrap().expect("stored");
            record.cookie.original_max_age()
        }
    };
    let plain = set_cookie(&get(&app, "/count", None).await).expect("a session");
    assert_eq!(attr(&plain, "Path").as_deref(), Some("/count"));
    assert_eq!(lifetime(&plain).await, Some(Duration::from_secs(3600)));
    let outside = get(&app, "/set/k/v", None).await;
    assert_eq!(
        outside.status(),
        500,
        "outside the path: no session for the handler"
    );
    assert_eq!(set_cookie(&outside), None);

    let req = test::TestRequest::get()
        .uri("/set/k/v")
        .insert_header(("x-admin", "1"))
        .to_request();
    let admin = set_cookie(&test::call_service(&app, req).await).expect("a session");
    assert_eq!(attr(&admin, "Path").as_deref(), Some("/"));
    assert_eq!(lifetime(&admin).await, Some(Duration::from_secs(60)));
}

#[actix_rt::test]
async fn invalid_per_request_options_are_a_500() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .cookie_for(|_| CookieOptions::default().same_site(SameSite::None))
        .build()
        .expect("only checked per request");
    let app = app(mw).await;
    let res = get(&app, "/count", None).await;
    assert_eq!(res.status(), 500);
    assert_eq!(set_cookie(&res), None);
}
