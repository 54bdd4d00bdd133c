//! Every `Session` method, seen through status, Set-Cookie and store contents.

mod common;

use actix_express_session::store::SessionStore;
use actix_express_session::{MemoryStore, Session, SessionExt, SessionMiddleware, Unset};
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use common::{app, attr, body, get, pair, set_cookie, sid, Recorder, SECRET};

#[actix_rt::test]
async fn regenerate_moves_to_a_new_id_and_destroys_the_old_one() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let res = get(&app, "/regenerate", Some(&pair(&cookie))).await;
    let fresh = set_cookie(&res).expect("a regenerated session always sends its cookie");
    let new_id = body(res).await;
    assert_eq!(sid(&fresh), new_id);
    assert_ne!(new_id, sid(&cookie));
    assert!(
        store.get(&sid(&cookie)).await.unwrap().is_none(),
        "old session destroyed"
    );
    let stored = store
        .get(&new_id)
        .await
        .unwrap()
        .expect("saved although empty");
    assert!(stored.data.is_empty(), "fresh data");
}

#[actix_rt::test]
async fn regenerate_uses_genid() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .genid(|req| format!("custom-{}", req.path().len()))
        .build()
        .unwrap();
    let app = app(mw).await;
    let res = get(&app, "/regenerate", None).await;
    assert_eq!(body(res).await, "custom-11");
    assert!(store.get("custom-11").await.unwrap().is_some());
}

#[actix_rt::test]
async fn uuid_ids_are_a_ready_preset() {
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .genid(|_| actix_express_session::uuid_v4_id())
        .build();
    let app = app(mw.unwrap()).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    assert_eq!(sid(&cookie).len(), 36);
}

#[actix_rt::test]
async fn destroy_removes_the_session_and_clears_the_cookie() {
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let res = get(&app, "/destroy", Some(&pair(&cookie))).await;
    let removal = set_cookie(&res).expect("a removal cookie");
    assert_eq!(pair(&removal), "connect.sid=");
    assert_eq!(
        attr(&removal, "Expires").as_deref(),
        Some("Thu, 01 Jan 1970 00:00:00 GMT")
    );
    assert_eq!(store.len().await.unwrap(), 0);
    let res = get(&app, "/read", Some(&pair(&cookie))).await;
    assert_eq!(body(res).await, "0", "the old cookie no longer finds data");
}

#[actix_rt::test]
async fn unset_keep_leaves_the_store_alone_and_sends_nothing() {
    let store = Recorder::default();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .rolling(true)
        .build()
        .unwrap();
    let app = app(mw).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    store.calls();
    let res = get(&app, "/unset", Some(&pair(&cookie))).await;
    assert_eq!(set_cookie(&res), None);
    assert_eq!(
        store.calls(),
        [format!("load {}", sid(&cookie))],
        "no save, touch or destroy"
    );
    assert!(store.inner.get(&sid(&cookie)).await.unwrap().is_some());
}

#[actix_rt::test]
async fn unset_destroy_removes_it_from_the_store() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .unset(Unset::Destroy)
        .build()
        .unwrap();
    let app = app(mw).await;
    let cookie = set_cookie(&get(&app, "/count", None).await).unwrap();
    let res = get(&app, "/unset", Some(&pair(&cookie))).await;
    assert_eq!(
        set_cookie(&res).map(|c| pair(&c)).as_deref(),
        Some("connect.sid=")
    );
    assert!(store.get(&sid(&cookie)).await.unwrap().is_none());
}

#[actix_rt::test]
async fn an_explicit_save_is_not_repeated_at_the_end() {
    let store = Recorder::default();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let res = get(&app, "/save", None).await;
    let cookie = set_cookie(&res).expect("modified new session");
    let id = sid(&cookie);
    assert_eq!(store.calls(), [format!("create {id}")], "saved once");
    assert_eq!(
        store.inner.get(&id).await.unwrap().unwrap().data["saved"],
        true
    );
}

#[actix_rt::test]
async fn reload_brings_in_what_another_request_stored() {
    let store = MemoryStore::new();
    let handler = |s: Session, store: web::Data<MemoryStore>| async move {
        s.insert("n", 1).unwrap();
        s.save().await.unwrap();
        let mut rec = store.get(&s.id()).await.unwrap().unwrap();
        rec.data.insert("n".into(), 5.into());
        store.set(&s.id(), &rec).await.unwrap();
        s.reload().await.unwrap();
        HttpResponse::Ok().body(s.get::<u64>("n").unwrap().unwrap().to_string())
    };
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap();
    let app = App::new()
        .wrap(mw)
        .app_data(web::Data::new(store.clone()))
        .route("/", web::get().to(handler));
    let app = test::init_service(app).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(body(res).await, "5");
}

#[actix_rt::test]
async fn reload_of_a_session_that_is_gone_is_an_error() {
    let app = app(SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap())
    .await;
    let res = get(&app, "/reload", None).await;
    assert_eq!(res.status(), 500);
    assert_eq!(body(res).await, "");
}

#[actix_rt::test]
async fn data_methods_behave_like_a_map() {
    let handler = |s: Session| async move {
        assert!(s.is_empty());
        s.insert("a", 1).unwrap();
        s.insert("b", vec!["x", "y"]).unwrap();
        assert!(s.contains_key("a"));
        assert_eq!(s.get::<Vec<String>>("b").unwrap().unwrap(), ["x", "y"]);
        assert!(
            s.get::<u8>("b").is_err(),
            "a type mismatch is an error, not a panic"
        );
        assert_eq!(s.remove("a").unwrap(), Some(serde_json::json!(1)));
        assert_eq!(s.remove("a").unwrap(), None);
        assert_eq!(s.entries().len(), 1);
        assert!(s.insert("cookie", 1).is_err(), "`cookie` is reserved");
        assert!(s.remove("cookie").is_err(), "`cookie` is reserved");
        s.insert("n", 7).unwrap();
        assert_eq!(s.remove_as::<u8>("n").unwrap(), Some(7));
        s.clear().unwrap();
        assert!(s.is_empty());
        s.insert("kept", true).unwrap();
        s.touch();
        HttpResponse::Ok().finish()
    };
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    let cookie = set_cookie(&res).unwrap();
    let stored = store.get(&sid(&cookie)).await.unwrap().unwrap();
    assert_eq!(
        serde_json::Value::Object(stored.data),
        serde_json::json!({"kept": true})
    );
}

#[actix_rt::test]
async fn inserting_the_reserved_key_is_a_500() {
    let handler = |s: Session| async move { s.insert("cookie", 1).map(|()| "no") };
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(res.status(), 500);
}

#[actix_rt::test]
async fn clones_are_one_session_and_session_ext_reaches_it() {
    let handler = |s: Session, req: HttpRequest| async move {
        let clone = s.clone();
        clone.insert("via", "clone").unwrap();
        let from_req = req.get_session().unwrap();
        assert_eq!(
            from_req.get::<String>("via").unwrap().as_deref(),
            Some("clone")
        );
        from_req.insert("also", 1).unwrap();
        assert!(s.contains_key("also"));
        HttpResponse::Ok().body(s.id())
    };
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    let id = body(res).await;
    assert_eq!(store.get(&id).await.unwrap().unwrap().data.len(), 2);
}

#[actix_rt::test]
async fn session_ext_on_an_unwrapped_request_reports_not_wrapped() {
    let handler = |req: HttpRequest| async move {
        let err = req.get_session().unwrap_err();
        HttpResponse::Ok().body(err.to_string())
    };
    let app = test::init_service(App::new().route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(
        body(res).await,
        "the session middleware did not handle this request"
    );
}

#[actix_rt::test]
async fn insert_after_destroy_is_refused_until_regenerate() {
    let handler = |s: Session| async move {
        s.insert("a", 1).unwrap();
        s.destroy().await.unwrap();
        assert!(s.insert("a", 2).is_err());
        s.regenerate().await.unwrap();
        s.insert("fresh", true).unwrap();
        HttpResponse::Ok().body(s.id())
    };
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert!(set_cookie(&res).is_some());
    let id = body(res).await;
    assert_eq!(store.get(&id).await.unwrap().unwrap().data["fresh"], true);
    assert_eq!(store.len().await.unwrap(), 1);
}

#[actix_rt::test]
async fn touch_resets_the_time_left_to_the_original_max_age() {
    let handler = |s: Session| async move {
        s.set_max_age(Some(std::time::Duration::from_secs(2)));
        actix_rt::time::sleep(std::time::Duration::from_millis(1100)).await;
        let before = s.cookie().max_age().unwrap();
        s.touch();
        let after = s.cookie().max_age().unwrap();
        HttpResponse::Ok().body(format!(
            "{} {}",
            before.as_millis() < 1000,
            after.as_millis() > 1900
        ))
    };
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).route("/", web::get().to(handler))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(body(res).await, "true true");
}

#[actix_rt::test]
async fn after_destroy_or_unset_remove_and_clear_are_refused_as_insert_is() {
    let handler = |s: Session, path: web::Path<String>| async move {
        s.insert("a", 1).unwrap();
        match path.as_str() {
            "destroy" => s.destroy().await.unwrap(),
            _ => s.unset(),
        }
        let refused = [
            s.insert("a", 2).unwrap_err(),
            s.remove("a").unwrap_err(),
            s.clear().unwrap_err(),
        ];
        let all_inactive = refused
            .iter()
            .all(|e| matches!(e, actix_express_session::SessionError::Inactive));
        HttpResponse::Ok().body(all_inactive.to_string())
    };
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(App::new().wrap(mw).route("/{how}", web::get().to(handler))).await;
    for how in ["destroy", "unset"] {
        let req = test::TestRequest::get()
            .uri(&format!("/{how}"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(body(res).await, "true", "{how}");
    }
}

#[actix_rt::test]
async fn debug_shows_key_names_but_no_values_and_status_follows_the_session() {
    let handler = |s: Session| async move {
        let mut seen = vec![format!("{:?}", s.status())];
        s.insert("token", "s3cr3t-value").unwrap();
        let debug = format!("{s:?}");
        assert!(debug.contains("\"token\""), "{debug}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert!(!debug.contains(&s.id()), "{debug}");
        s.unset();
        seen.push(format!("{:?}", s.status()));
        HttpResponse::Ok().body(seen.join(" "))
    };
    let loaded = |s: Session| async move {
        let before = format!("{:?}", s.status());
        s.destroy().await.unwrap();
        HttpResponse::Ok().body(format!("{before} {:?}", s.status()))
    };
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(mw)
            .configure(common::routes)
            .route("/status", web::get().to(handler))
            .route("/loaded", web::get().to(loaded)),
    )
    .await;
    assert_eq!(body(get(&app, "/status", None).await).await, "New Unset");
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).unwrap());
    let res = get(&app, "/loaded", Some(&cookie)).await;
    assert_eq!(body(res).await, "Loaded Destroyed");
}

#[actix_rt::test]
async fn a_guard_reads_the_eagerly_loaded_session() {
    use actix_web::guard;
    let logged_in = guard::fn_guard(|ctx| ctx.get_session().is_ok_and(|s| s.contains_key("user")));
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .load(actix_express_session::Load::Eager)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(mw)
            .configure(common::routes)
            .route(
                "/who",
                web::get().guard(logged_in).to(|| async { "member" }),
            )
            .route("/who", web::get().to(|| async { "guest" })),
    )
    .await;
    assert_eq!(body(get(&app, "/who", None).await).await, "guest");
    let cookie = pair(&set_cookie(&get(&app, "/set/user/ada", None).await).unwrap());
    assert_eq!(body(get(&app, "/who", Some(&cookie)).await).await, "member");
}

/// A middleware of the application's own (inside the session middleware) reads the
/// lazily loaded session: `get_session` says it is not loaded yet, `load_session` loads
/// it. The session is dropped before the inner service runs (it holds the request).
async fn mark(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let not_yet = matches!(
        req.get_session(),
        Err(actix_express_session::SessionError::NotLoaded)
    );
    let session = req.load_session().await?;
    session.insert("seen_by_middleware", not_yet)?;
    drop(session);
    next.call(req).await
}

#[actix_rt::test]
async fn a_middleware_loads_the_lazy_session_with_load_session() {
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(mark))
            .wrap(mw)
            .configure(common::routes),
    )
    .await;
    let cookie = set_cookie(&get(&app, "/noop", None).await).expect("saved");
    let stored = store.get(&sid(&cookie)).await.unwrap().expect("stored");
    assert_eq!(
        stored.data["seen_by_middleware"], true,
        "loaded by the middleware"
    );
}
