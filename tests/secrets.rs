//! Signed cookies: Node's vectors, secret rotation, and every kind of bad cookie being a
//! fresh session rather than an error.

mod common;

use actix_express_session::store::SessionStore;
use actix_express_session::{sign, MemoryStore, SessionMiddleware};
use common::{app, body, get, pair, set_cookie, sid, SECRET};

#[actix_rt::test]
async fn a_cookie_signed_by_node_loads_the_session() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    store
        .set(
            "hello",
            &common::conformance::record(Some(60_000), serde_json::json!({"n": 41})),
        )
        .await
        .unwrap();
    // Exactly the header Node's express-session sends for ID `hello` and this secret.
    let node = "connect.sid=s%3Ahello.xz6khi6%2BoL1pnNhBgjk3Nr1CX2sxTjJiO9pKXaHZ33E";
    let res = get(&app, "/count", Some(node)).await;
    assert_eq!(body(res).await, "42");
}

#[actix_rt::test]
async fn a_cookie_signed_with_an_old_secret_still_loads_and_rolling_re_signs_it() {
    let store = MemoryStore::new();
    let old = SessionMiddleware::builder(store.clone(), "old secret")
        .build()
        .unwrap();
    let cookie = set_cookie(&get(&app(old).await, "/count", None).await).unwrap();
    let rotated = SessionMiddleware::builder(store.clone(), ["new secret", "old secret"])
        .rolling(true)
        .build()
        .unwrap();
    let app = app(rotated).await;
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    let resigned = set_cookie(&res).expect("rolling re-sends");
    assert_eq!(body(res).await, "2", "the old cookie loaded the session");
    assert_eq!(sid(&resigned), sid(&cookie), "same session");
    let expected = sign(&sid(&cookie), "new secret")
        .replace('+', "%2B")
        .replace('/', "%2F");
    assert_eq!(
        pair(&resigned),
        format!("connect.sid=s%3A{expected}"),
        "signed with the first secret"
    );
}

#[actix_rt::test]
async fn a_removed_secret_no_longer_verifies() {
    let store = MemoryStore::new();
    let old = SessionMiddleware::builder(store.clone(), "old secret")
        .build()
        .unwrap();
    let cookie = set_cookie(&get(&app(old).await, "/count", None).await).unwrap();
    let app = app(SessionMiddleware::builder(store.clone(), "new secret")
        .build()
        .unwrap())
    .await;
    let res = get(&app, "/count", Some(&pair(&cookie))).await;
    let fresh = set_cookie(&res).expect("a fresh session");
    assert_ne!(sid(&fresh), sid(&cookie));
    assert_eq!(body(res).await, "1");
    assert_eq!(
        store.get(&sid(&cookie)).await.unwrap().unwrap().data["n"],
        1,
        "the old record is untouched"
    );
}

#[actix_rt::test]
async fn bad_cookies_are_fresh_sessions_never_errors() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let good = set_cookie(&get(&app, "/count", None).await).unwrap();
    let value = pair(&good).split_once('=').unwrap().1.to_owned();
    let tampered = format!("connect.sid={}x", &value[..value.len() - 1]);
    let id = sid(&good);
    let cases = [
        tampered,
        format!("connect.sid={id}"),
        format!("connect.sid=s%3A{id}"),
        format!("connect.sid={}", &value[..value.len() / 2]),
        "connect.sid=s%3A".to_owned(),
        "connect.sid=%FF%FE".to_owned(),
        "connect.sid=s%3Aabc.%00def".to_owned(),
        format!("connect.sid=s%3A{}", "a".repeat(64 * 1024)),
        "connect.sid".to_owned(),
        ";;;=;".to_owned(),
    ];
    for cookie in cases {
        let res = get(&app, "/count", Some(&cookie)).await;
        assert_eq!(res.status(), 200, "{cookie:.60}");
        assert_eq!(body(res).await, "1", "a fresh session for {cookie:.60}");
    }
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().data["n"],
        1,
        "the real session was not touched"
    );
}

#[actix_rt::test]
async fn the_first_of_two_cookies_with_our_name_wins() {
    let app = app(SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap())
    .await;
    let a = set_cookie(&get(&app, "/count", None).await).unwrap();
    let b = set_cookie(&get(&app, "/count", None).await).unwrap();
    get(&app, "/count", Some(&pair(&b))).await;
    let both = format!("{}; {}", pair(&a), pair(&b));
    assert_eq!(
        body(get(&app, "/read", Some(&both)).await).await,
        "1",
        "a's session"
    );
    let both = format!("other=1; {}; {}", pair(&b), pair(&a));
    assert_eq!(
        body(get(&app, "/read", Some(&both)).await).await,
        "2",
        "b's session"
    );
}

#[actix_rt::test]
async fn a_bad_first_cookie_is_not_skipped_for_a_good_second_one() {
    let app = app(SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap())
    .await;
    let good = set_cookie(&get(&app, "/count", None).await).unwrap();
    let header = format!("connect.sid=s%3Aforged.sig; {}", pair(&good));
    assert_eq!(
        body(get(&app, "/read", Some(&header)).await).await,
        "0",
        "first occurrence wins, as in Node"
    );
}
