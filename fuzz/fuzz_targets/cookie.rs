//! Any bytes as a `Cookie` header, and any text through `unsign`: never a panic, and a
//! session loads (a signature verifies) only for exactly the value that was signed.
#![no_main]

use actix_express_session::{sign, unsign, SessionMiddleware};
use actix_express_session_fuzz::{
    block_on, first_cookie, known_cookie_value, routes, seeded_store, NAME, OLD_SECRET, SECRET,
};
use actix_web::http::header::HeaderValue;
use actix_web::{test, App};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_unsign(text);
    }
    if HeaderValue::from_bytes(data).is_ok() {
        block_on(check_header(data));
    }
});

/// `unsign` accepts a text only if signing its value gives back exactly that text.
fn check_unsign(text: &str) {
    if let Some(value) = unsign(text, &SECRET.into()) {
        assert_eq!(
            sign(value, SECRET),
            text,
            "accepted a signature that is not the signature"
        );
    }
    if let Some(value) = unsign(text, &[SECRET, OLD_SECRET][..].into()) {
        assert!(sign(value, SECRET) == text || sign(value, OLD_SECRET) == text);
    }
    // The text as a secret, too: any bytes are a key.
    if !text.is_empty() {
        let signed = sign(text, text);
        assert_eq!(unsign(&signed, &text.into()), Some(text));
    }
}

/// The header through the whole middleware: a 200, and the seeded session is loaded if
/// and only if the first `connect.sid` cookie is exactly its signed value.
async fn check_header(header: &[u8]) {
    let store = seeded_store().await;
    let mw = SessionMiddleware::builder(store, [SECRET, OLD_SECRET])
        .build()
        .expect("valid options");
    let app = test::init_service(App::new().wrap(mw).configure(routes)).await;
    let req = test::TestRequest::get()
        .uri("/read")
        .insert_header(("cookie", header))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let body = test::read_body(res).await;
    let loaded = &body[..] == b"7";
    assert!(loaded || &body[..] == b"none", "unexpected body {body:?}");
    let cookie = first_cookie(header, NAME);
    let valid = [SECRET, OLD_SECRET]
        .iter()
        .any(|s| cookie.as_deref() == Some(known_cookie_value(s).as_bytes()));
    assert_eq!(loaded, valid, "cookie {cookie:?}");
}
