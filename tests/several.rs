//! Several session middlewares in one app, under different cookie names: an admin
//! session beside the user one, each with its own store, each reachable from handlers.

mod common;

use actix_express_session::store::SessionStore;
use actix_express_session::{MemoryStore, NamedSession, Session, SessionMiddleware, SessionName};
use actix_web::{test, web, App};
use common::{body, get, set_cookies, sid};

struct User;
impl SessionName for User {
    const NAME: &'static str = "connect.sid";
}

struct Admin;
impl SessionName for Admin {
    const NAME: &'static str = "admin.sid";
}

async fn user_login(user: Session) -> actix_web::Result<&'static str> {
    user.insert("user", "ada")?;
    Ok("user")
}

/// Under /admin the plain extractor is the innermost middleware's: the admin session.
async fn admin_login(admin: Session, user: NamedSession<User>) -> actix_web::Result<String> {
    let who: Option<String> = user.get("user")?;
    admin.insert("elevated", true)?;
    user.insert("visited_admin", true)?;
    Ok(format!("admin for {}", who.unwrap_or_default()))
}

async fn admin_whoami(
    admin: NamedSession<Admin>,
    user: NamedSession<User>,
) -> actix_web::Result<String> {
    let elevated: Option<bool> = admin.get("elevated")?;
    let who: Option<String> = user.get("user")?;
    Ok(format!("{who:?} {elevated:?}"))
}

fn cookie_header(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

#[actix_rt::test]
async fn two_middlewares_keep_two_sessions_in_two_stores() {
    let (users, admins) = (MemoryStore::new(), MemoryStore::new());
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(users.clone(), "user secret")
                    .build()
                    .unwrap(),
            )
            .route("/login", web::get().to(user_login))
            .service(
                web::scope("/admin")
                    .wrap(
                        SessionMiddleware::builder(admins.clone(), "admin secret")
                            .name(Admin::NAME)
                            .build()
                            .unwrap(),
                    )
                    .route("/login", web::get().to(admin_login))
                    .route("/whoami", web::get().to(admin_whoami)),
            ),
    )
    .await;

    let res = get(&app, "/login", None).await;
    let user_cookies = set_cookies(&res);
    assert_eq!(user_cookies.len(), 1);
    assert!(user_cookies[0].starts_with("connect.sid="));
    let user_id = sid(&user_cookies[0]);

    let res = get(&app, "/admin/login", Some(&cookie_header(&user_cookies))).await;
    let both = set_cookies(&res);
    assert_eq!(body(res).await, "admin for ada");
    let admin_cookie = both
        .iter()
        .find(|c| c.starts_with("admin.sid="))
        .expect("the admin session's cookie");
    let admin_id = sid(admin_cookie);
    assert_ne!(admin_id, user_id);

    let user_record = users.get(&user_id).await.unwrap().expect("stored");
    assert_eq!(user_record.data["user"], "ada");
    assert_eq!(user_record.data["visited_admin"], true);
    assert!(!user_record.data.contains_key("elevated"));
    let admin_record = admins.get(&admin_id).await.unwrap().expect("stored");
    assert_eq!(admin_record.data["elevated"], true);
    assert!(!admin_record.data.contains_key("user"));
    assert!(
        users.get(&admin_id).await.unwrap().is_none(),
        "not in the other store"
    );

    let cookies = format!(
        "{}; {}",
        cookie_header(&user_cookies),
        cookie_header(std::slice::from_ref(admin_cookie))
    );
    let res = get(&app, "/admin/whoami", Some(&cookies)).await;
    assert_eq!(body(res).await, "Some(\"ada\") Some(true)");
}

#[actix_rt::test]
async fn a_named_session_without_its_middleware_is_a_500() {
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::builder(MemoryStore::new(), "s")
                    .build()
                    .unwrap(),
            )
            .route(
                "/",
                web::get().to(|admin: NamedSession<Admin>| async move { admin.id() }),
            ),
    )
    .await;
    assert_eq!(get(&app, "/", None).await.status(), 500);
}
