//! Invalid configurations are an `Err` from `build()` naming the option.

use actix_express_session::{
    ConfigError, CookieOptions, MemoryStore, SameSite, Secrets, Secure, SessionMiddleware,
};

fn build(secret: impl Into<Secrets>, name: &str, cookie: CookieOptions) -> Result<(), ConfigError> {
    SessionMiddleware::builder(MemoryStore::new(), secret)
        .name(name)
        .cookie(cookie)
        .build()
        .map(|_| ())
}

fn ok() -> CookieOptions {
    CookieOptions::default()
}

fn secure() -> CookieOptions {
    CookieOptions::default().secure(Secure::Always)
}

#[test]
fn secrets_must_be_present_and_non_empty() {
    assert_eq!(
        build(Vec::<String>::new(), "sid", ok()),
        Err(ConfigError::NoSecret)
    );
    assert_eq!(build("", "sid", ok()), Err(ConfigError::EmptySecret));
    assert_eq!(
        build(["new", ""], "sid", ok()),
        Err(ConfigError::EmptySecret)
    );
    assert!(build(["new", "old"], "sid", ok()).is_ok());
    assert!(build(String::from("s"), "sid", ok()).is_ok());
    assert!(build(vec!["a".to_string()], "sid", ok()).is_ok());
}

#[test]
fn cookie_names_must_be_tokens() {
    for bad in ["", "a b", "a;b", "a=b", "sé", "a\"b", "a,b"] {
        assert_eq!(
            build("s", bad, ok()),
            Err(ConfigError::InvalidCookieName(bad.into())),
            "{bad}"
        );
    }
    assert!(build("s", "connect.sid", ok()).is_ok());
}

#[test]
fn same_site_none_needs_secure() {
    let none = CookieOptions::default().same_site(SameSite::None);
    assert_eq!(
        build("s", "sid", none.clone()),
        Err(ConfigError::SameSiteNoneWithoutSecure)
    );
    assert_eq!(
        build("s", "sid", none.clone().secure(Secure::Auto)),
        Err(ConfigError::SameSiteNoneWithoutSecure),
        "Auto is plain on HTTP, where browsers reject SameSite=None"
    );
    assert!(build("s", "sid", none.secure(Secure::Always)).is_ok());
}

#[test]
fn host_prefix_rules() {
    assert!(matches!(
        build("s", "__Host-sid", ok()),
        Err(ConfigError::HostPrefix(_))
    ));
    assert!(matches!(
        build("s", "__Host-sid", secure().domain("example.com")),
        Err(ConfigError::HostPrefix(_))
    ));
    assert!(matches!(
        build("s", "__Host-sid", secure().path("/app")),
        Err(ConfigError::HostPrefix(_))
    ));
    assert!(build("s", "__Host-sid", secure()).is_ok());
}

#[test]
fn secure_prefix_rules() {
    assert_eq!(
        build("s", "__Secure-sid", ok()),
        Err(ConfigError::SecurePrefixWithoutSecure)
    );
    assert!(build("s", "__Secure-sid", secure().domain("example.com")).is_ok());
}

#[test]
fn attributes_that_would_break_the_header_are_refused() {
    assert!(matches!(
        build("s", "sid", ok().path("app")),
        Err(ConfigError::InvalidCookiePath(_))
    ));
    assert!(matches!(
        build("s", "sid", ok().path("/a;b")),
        Err(ConfigError::InvalidCookiePath(_))
    ));
    assert!(matches!(
        build("s", "sid", ok().domain("a\r\nb")),
        Err(ConfigError::InvalidCookieDomain(_))
    ));
}

#[test]
fn errors_name_the_option_and_debug_hides_secrets() {
    assert!(ConfigError::NoSecret.to_string().contains("`secret`"));
    assert!(ConfigError::SameSiteNoneWithoutSecure
        .to_string()
        .contains("`cookie.same_site`"));
    assert!(ConfigError::InvalidCookieName("a b".into())
        .to_string()
        .contains("`name`"));
    let builder = SessionMiddleware::builder(MemoryStore::new(), "hunter2");
    assert!(!format!("{builder:?}").contains("hunter2"));
    let mw = builder.build().unwrap();
    assert!(!format!("{mw:?}").contains("hunter2"));
}

#[test]
fn partitioned_needs_secure() {
    let partitioned = CookieOptions::default().partitioned(true);
    assert_eq!(
        build("s", "sid", partitioned.clone()),
        Err(ConfigError::PartitionedWithoutSecure)
    );
    assert_eq!(
        build("s", "sid", partitioned.clone().secure(Secure::Auto)),
        Err(ConfigError::PartitionedWithoutSecure),
        "Auto is plain on HTTP, where browsers drop a Partitioned cookie"
    );
    assert!(build("s", "sid", partitioned.secure(Secure::Always)).is_ok());
}

/// A `genid` cannot be checked before it runs: an empty or over-long ID is a 500 (with
/// an error line), never a session under that ID.
#[actix_rt::test]
async fn a_genid_giving_an_empty_or_over_long_id_is_a_500() {
    use actix_web::{test, web, App};
    for id in [String::new(), "x".repeat(4097)] {
        let mw = SessionMiddleware::builder(MemoryStore::new(), "s")
            .genid(move |_| id.clone())
            .build()
            .expect("valid");
        let app = test::init_service(App::new().wrap(mw).route(
            "/",
            web::get().to(|s: actix_express_session::Session| async move {
                s.insert("k", 1).map(|()| "ok")
            }),
        ))
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(res.status(), 500);
        assert!(res.headers().get("set-cookie").is_none());
    }
}
