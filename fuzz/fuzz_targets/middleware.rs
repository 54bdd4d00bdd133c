//! The whole middleware on arbitrary header sets and options: every response is a 2xx
//! (or the empty 500 of `/reload` on a session the store does not have), never a panic,
//! and a session whose cookie was sent loads again with that cookie.
#![no_main]

use std::time::Duration;

use actix_express_session::{
    CookieOptions, SameSite, Secure, SessionMiddleware, TrustProxy, Unset,
};
use actix_express_session_fuzz::{
    block_on, known_cookie_value, routes, seeded_store, NAME, SECRET,
};
use actix_web::http::header::HeaderValue;
use actix_web::{test, App};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    resave: bool,
    save_uninitialized: bool,
    rolling: bool,
    unset_destroy: bool,
    trust_proxy: bool,
    secure: u8,
    same_site: u8,
    max_age_secs: Option<u32>,
    route: u8,
    route_arg: u64,
    /// Prepend the seeded session's valid cookie to the first `Cookie` header.
    known_cookie: bool,
    cookies: Vec<Vec<u8>>,
    forwarded_proto: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
}

const ROUTES: [&str; 9] = [
    "/count",
    "/read",
    "/id",
    "/regenerate",
    "/destroy",
    "/unset",
    "/save",
    "/reload",
    "/max-age",
];

fuzz_target!(|input: Input| block_on(run(input)));

async fn run(input: Input) {
    let mut options = CookieOptions::default()
        .secure([Secure::Auto, Secure::Never, Secure::Always][usize::from(input.secure % 3)])
        .same_site(
            [SameSite::Lax, SameSite::Strict, SameSite::None][usize::from(input.same_site % 3)],
        );
    if let Some(secs) = input.max_age_secs {
        // Long enough that the follow-up request below never finds it expired.
        options = options.max_age(Duration::from_secs(u64::from(secs) + 3600));
    }
    let store = seeded_store().await;
    let built = SessionMiddleware::builder(store, SECRET)
        .cookie(options)
        .resave(input.resave)
        .save_uninitialized(input.save_uninitialized)
        .rolling(input.rolling)
        .unset(if input.unset_destroy {
            Unset::Destroy
        } else {
            Unset::Keep
        })
        .trust_proxy(if input.trust_proxy {
            TrustProxy::Always
        } else {
            TrustProxy::Never
        })
        .build();
    let Ok(mw) = built else { return };
    let app = test::init_service(App::new().wrap(mw).configure(routes)).await;

    let route = ROUTES[usize::from(input.route) % ROUTES.len()];
    let uri = if route == "/max-age" {
        // 0 is "a browser-session cookie"; anything else at least an hour.
        let secs = if input.route_arg == 0 {
            0
        } else {
            input.route_arg.saturating_add(3600)
        };
        format!("{route}/{secs}")
    } else {
        route.to_owned()
    };
    let mut req = test::TestRequest::get().uri(&uri);
    let mut cookies = input.cookies;
    if input.known_cookie {
        let mut first = format!(
            "{NAME}={}; ",
            known_cookie_value(SECRET).replace(':', "%3A")
        )
        .into_bytes();
        first.extend_from_slice(cookies.first().map_or(&[][..], Vec::as_slice));
        match cookies.first_mut() {
            Some(c) => *c = first,
            None => cookies.push(first),
        }
    }
    for cookie in &cookies {
        if let Ok(value) = HeaderValue::from_bytes(cookie) {
            req = req.append_header(("cookie", value));
        }
    }
    for (name, value) in [
        ("x-forwarded-proto", &input.forwarded_proto),
        ("host", &input.host),
    ] {
        if let Some(value) = value
            .as_deref()
            .and_then(|v| HeaderValue::from_bytes(v).ok())
        {
            req = req.insert_header((name, value));
        }
    }
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let set_cookies: Vec<Vec<u8>> = res
        .headers()
        .get_all("set-cookie")
        .map(|v| v.as_bytes().to_vec())
        .collect();
    let body = test::read_body(res).await;
    if status == 500 {
        assert_eq!(route, "/reload", "an unexpected 500");
        assert!(body.is_empty(), "a 500 with a body: {body:?}");
        return;
    }
    assert!(status.is_success(), "status {status}");
    assert!(set_cookies.len() <= 1, "{set_cookies:?}");

    // A cookie that was sent (not a removal) names a session that now loads.
    let Some(sent) = set_cookies.first() else {
        return;
    };
    let text = std::str::from_utf8(sent).expect("Set-Cookie is ASCII");
    let pair = text.split(';').next().unwrap_or_default();
    if pair == format!("{NAME}=") {
        return;
    }
    let req = test::TestRequest::get()
        .uri("/id")
        .insert_header(("cookie", pair))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let again = test::read_body(res).await;
    if matches!(
        route,
        "/count" | "/regenerate" | "/save" | "/id" | "/max-age"
    ) {
        assert_eq!(
            again, body,
            "the session whose cookie was sent did not load: {text}"
        );
    }
}
