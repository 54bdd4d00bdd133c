//! Cache safety (OWASP ASVS 5.0 14.3): a response that sets or clears the session
//! cookie is kept out of shared caches, and one that depends on the session varies on
//! `Cookie`.

mod common;

use actix_express_session::{MemoryStore, Session, SessionMiddleware, Unset};
use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App, Error, HttpResponse};
use common::{get, pair, routes, set_cookie, SECRET};

/// The standard routes, plus handlers that choose their own caching headers.
async fn cache_app(
    mw: SessionMiddleware<MemoryStore>,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = Error> {
    test::init_service(
        App::new()
            .wrap(mw)
            .configure(routes)
            .route("/public", web::get().to(public))
            .route("/vary/{value}", web::get().to(vary))
            .route("/vary-read", web::get().to(vary_read)),
    )
    .await
}

/// Starts a session, with a handler-chosen `Cache-Control`.
async fn public(session: Session) -> actix_web::Result<HttpResponse> {
    session.insert("n", 1)?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .finish())
}

/// Starts a session, with a handler-chosen `Vary`.
async fn vary(session: Session, value: web::Path<String>) -> actix_web::Result<HttpResponse> {
    session.insert("n", 1)?;
    Ok(HttpResponse::Ok()
        .insert_header(("vary", value.into_inner()))
        .finish())
}

/// Reads the session, with a handler-chosen `Vary`.
async fn vary_read(session: Session) -> actix_web::Result<HttpResponse> {
    let n: Option<u64> = session.get("n")?;
    Ok(HttpResponse::Ok()
        .insert_header(("vary", "Accept-Encoding"))
        .body(n.unwrap_or(0).to_string()))
}

fn middleware() -> SessionMiddleware<MemoryStore> {
    SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap()
}

fn header<B>(res: &ServiceResponse<B>, name: &str) -> Option<String> {
    let mut all = res.headers().get_all(name);
    let value = all.next().map(|v| v.to_str().expect("ASCII").to_owned());
    assert!(all.next().is_none(), "more than one {name}");
    value
}

fn cache_control<B>(res: &ServiceResponse<B>) -> Option<String> {
    header(res, "cache-control")
}

fn vary_of<B>(res: &ServiceResponse<B>) -> Option<String> {
    header(res, "vary")
}

#[actix_rt::test]
async fn a_response_that_sets_the_cookie_is_private_and_varies_on_cookie() {
    let app = cache_app(middleware()).await;
    let res = get(&app, "/count", None).await;
    assert!(set_cookie(&res).is_some());
    assert_eq!(cache_control(&res).as_deref(), Some("private, no-store"));
    assert_eq!(vary_of(&res).as_deref(), Some("Cookie"));
    assert_eq!(header(&res, "clear-site-data"), None, "off by default");
}

#[actix_rt::test]
async fn a_response_that_keeps_the_cookie_only_varies_on_cookie() {
    let app = cache_app(middleware()).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let res = get(&app, "/read", Some(&pair(&cookie))).await;
    assert_eq!(set_cookie(&res), None, "loaded and unchanged: no cookie");
    assert_eq!(cache_control(&res), None);
    assert_eq!(vary_of(&res).as_deref(), Some("Cookie"));
}

#[actix_rt::test]
async fn a_session_read_without_a_cookie_varies_on_cookie() {
    let app = cache_app(middleware()).await;
    let res = get(&app, "/read", None).await;
    assert_eq!(set_cookie(&res), None);
    assert_eq!(cache_control(&res), None);
    assert_eq!(vary_of(&res).as_deref(), Some("Cookie"));
}

#[actix_rt::test]
async fn a_response_that_clears_the_cookie_is_private_and_varies_on_cookie() {
    let app = cache_app(middleware()).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let res = get(&app, "/destroy", Some(&pair(&cookie))).await;
    let removal = set_cookie(&res).expect("a removal cookie");
    assert!(removal.contains("Expires=Thu, 01 Jan 1970"), "{removal}");
    assert_eq!(cache_control(&res).as_deref(), Some("private, no-store"));
    assert_eq!(vary_of(&res).as_deref(), Some("Cookie"));
    assert_eq!(header(&res, "clear-site-data"), None, "off by default");
}

#[actix_rt::test]
async fn a_cache_control_set_by_the_handler_is_kept_as_is() {
    let app = cache_app(middleware()).await;
    let res = get(&app, "/public", None).await;
    assert!(set_cookie(&res).is_some());
    assert_eq!(cache_control(&res).as_deref(), Some("public, max-age=60"));
    assert_eq!(vary_of(&res).as_deref(), Some("Cookie"));
}

#[actix_rt::test]
async fn cookie_is_appended_to_a_vary_set_by_the_handler() {
    let app = cache_app(middleware()).await;
    let res = get(&app, "/vary/Accept-Encoding", None).await;
    assert!(set_cookie(&res).is_some());
    assert_eq!(vary_of(&res).as_deref(), Some("Accept-Encoding, Cookie"));
    let cookie = set_cookie(&res).unwrap();
    let res = get(&app, "/vary-read", Some(&pair(&cookie))).await;
    assert_eq!(cache_control(&res), None);
    assert_eq!(vary_of(&res).as_deref(), Some("Accept-Encoding, Cookie"));
}

#[actix_rt::test]
async fn a_vary_that_already_lists_cookie_or_star_is_left_alone() {
    let app = cache_app(middleware()).await;
    for value in ["Origin, cookie", "*"] {
        let uri = format!("/vary/{}", value.replace(' ', "%20"));
        let res = get(&app, &uri, None).await;
        assert!(set_cookie(&res).is_some());
        assert_eq!(vary_of(&res).as_deref(), Some(value));
        assert_eq!(cache_control(&res).as_deref(), Some("private, no-store"));
    }
}

#[actix_rt::test]
async fn a_request_that_never_uses_the_session_gets_no_cache_headers() {
    let app = cache_app(middleware()).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    for cookie in [None, Some(pair(&cookie))] {
        let res = get(&app, "/noop", cookie.as_deref()).await;
        assert_eq!(cache_control(&res), None);
        assert_eq!(vary_of(&res), None);
    }
}

#[actix_rt::test]
async fn cache_headers_off_adds_none() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .cache_headers(false)
        .build()
        .unwrap();
    let app = cache_app(mw).await;
    let res = get(&app, "/count", None).await;
    let cookie = set_cookie(&res).expect("a new session's cookie");
    assert_eq!(cache_control(&res), None);
    assert_eq!(vary_of(&res), None);
    for uri in ["/read", "/destroy"] {
        let res = get(&app, uri, Some(&pair(&cookie))).await;
        assert_eq!(cache_control(&res), None, "{uri}");
        assert_eq!(vary_of(&res), None, "{uri}");
    }
}

#[actix_rt::test]
async fn clear_site_data_is_sent_on_destroy_when_asked() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .clear_site_data_on_destroy(true)
        .unset(Unset::Destroy)
        .build()
        .unwrap();
    let app = cache_app(mw).await;
    let res = get(&app, "/count", None).await;
    assert_eq!(
        header(&res, "clear-site-data"),
        None,
        "not on a new session"
    );
    let cookie = pair(&set_cookie(&res).unwrap());
    let res = get(&app, "/read", Some(&cookie)).await;
    assert_eq!(header(&res, "clear-site-data"), None, "not on a plain read");
    for uri in ["/destroy", "/unset"] {
        let cookie = pair(&set_cookie(&get(&app, "/count", None).await).unwrap());
        let res = get(&app, uri, Some(&cookie)).await;
        assert!(set_cookie(&res).is_some(), "{uri}: a removal cookie");
        assert_eq!(
            header(&res, "clear-site-data").as_deref(),
            Some("\"cookies\""),
            "{uri}"
        );
        assert_eq!(cache_control(&res).as_deref(), Some("private, no-store"));
    }
}
