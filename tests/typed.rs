//! `TypedSession<T>`: the session's data as a type, saved when it changed; and `Flash`
//! messages, read once, stored as connect-flash stores them.

mod common;

use actix_express_session::store::SessionStore;
use actix_express_session::{Flash, MemoryStore, SessionMiddleware, TypedSession};
use actix_web::{test, web, App, HttpResponse};
use common::{body, get, pair, set_cookie, sid, Recorder, SECRET};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Cart {
    items: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coupon: Option<String>,
}

async fn add(mut cart: TypedSession<Cart>, item: web::Path<String>) -> String {
    cart.items.push(item.into_inner());
    cart.items.join(",")
}

async fn show(cart: TypedSession<Cart>) -> String {
    cart.items.join(",")
}

async fn coupon(mut cart: TypedSession<Cart>, code: web::Path<String>) -> &'static str {
    let code = code.into_inner();
    cart.coupon = (code != "none").then_some(code);
    "ok"
}

async fn push(flash: Flash, msg: web::Path<String>) -> actix_web::Result<HttpResponse> {
    flash.push("info", msg.into_inner())?;
    flash.push("error", "careful")?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/flash"))
        .finish())
}

async fn read_info(flash: Flash) -> actix_web::Result<String> {
    Ok(flash.take("info")?.join("|"))
}

async fn read_all(flash: Flash) -> actix_web::Result<String> {
    Ok(format!("{:?}", flash.take_all()?))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/add/{item}", web::get().to(add))
        .route("/cart", web::get().to(show))
        .route("/coupon/{code}", web::get().to(coupon))
        .route("/push/{msg}", web::get().to(push))
        .route("/flash", web::get().to(read_info))
        .route("/flash/all", web::get().to(read_all))
        .route(
            "/set/{key}/{value}",
            web::get().to(
                |s: actix_express_session::Session, p: web::Path<(String, String)>| async move {
                    let (k, v) = p.into_inner();
                    s.insert(k, v).map(|()| "ok")
                },
            ),
        );
}

#[actix_rt::test]
async fn a_typed_session_is_saved_as_top_level_keys_only_when_it_changed() {
    let store = Recorder::default();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).configure(routes)).await;

    let res = get(&app, "/add/book", None).await;
    let cookie = set_cookie(&res).expect("a changed session is saved");
    assert_eq!(body(res).await, "book");
    let id = sid(&cookie);
    let cookie = pair(&cookie);
    assert_eq!(
        body(get(&app, "/add/pen", Some(&cookie)).await).await,
        "book,pen"
    );
    assert_eq!(
        body(get(&app, "/set/user/ada", Some(&cookie)).await).await,
        "ok"
    );
    assert_eq!(
        body(get(&app, "/coupon/SAVE10", Some(&cookie)).await).await,
        "ok"
    );
    let stored = store.inner.get(&id).await.unwrap().expect("stored");
    assert_eq!(
        serde_json::Value::Object(stored.data.clone()),
        json!({"items": ["book", "pen"], "user": "ada", "coupon": "SAVE10"}),
        "fields are top-level keys; keys the type does not name are kept"
    );

    store.calls();
    assert_eq!(
        body(get(&app, "/cart", Some(&cookie)).await).await,
        "book,pen"
    );
    assert_eq!(
        store.calls(),
        [format!("load {id}")],
        "an unchanged value writes nothing"
    );

    assert_eq!(
        body(get(&app, "/coupon/none", Some(&cookie)).await).await,
        "ok"
    );
    let stored = store.inner.get(&id).await.unwrap().expect("stored");
    assert!(
        !stored.data.contains_key("coupon"),
        "a field that is gone is removed"
    );
    assert_eq!(stored.data["user"], "ada");
}

#[actix_rt::test]
async fn data_that_does_not_fit_the_type_is_a_500() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).configure(routes)).await;
    let cookie = pair(&set_cookie(&get(&app, "/set/items/not-a-list", None).await).unwrap());
    assert_eq!(get(&app, "/cart", Some(&cookie)).await.status(), 500);
}

#[actix_rt::test]
async fn flash_messages_are_read_once_in_connect_flash_s_layout() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).configure(routes)).await;

    let none = get(&app, "/flash", None).await;
    assert_eq!(
        set_cookie(&none),
        None,
        "reading no messages makes no session"
    );
    assert_eq!(body(none).await, "");

    let res = get(&app, "/push/saved", None).await;
    assert_eq!(res.status(), 303);
    let set = set_cookie(&res).expect("a session for the message");
    let cookie = pair(&set);
    let res = get(&app, "/push/again", Some(&cookie)).await;
    assert_eq!(res.status(), 303);
    let stored = store.get(&sid(&set)).await.unwrap().expect("stored");
    assert_eq!(
        stored.data["flash"],
        json!({"info": ["saved", "again"], "error": ["careful", "careful"]}),
        "connect-flash's layout"
    );

    assert_eq!(
        body(get(&app, "/flash", Some(&cookie)).await).await,
        "saved|again"
    );
    assert_eq!(
        body(get(&app, "/flash", Some(&cookie)).await).await,
        "",
        "read once"
    );
    let all = body(get(&app, "/flash/all", Some(&cookie)).await).await;
    assert_eq!(all, r#"{"error": ["careful", "careful"]}"#);
    let stored = store.get(&sid(&set)).await.unwrap().expect("stored");
    assert!(!stored.data.contains_key("flash"), "nothing left: no key");
}
