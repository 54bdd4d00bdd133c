//! Log in, see who is logged in, log out: `regenerate` on login (against session
//! fixation) and `destroy` on logout.
//!
//! ```sh
//! cargo run --example login
//! curl -c jar -b jar -d 'user=ada' http://127.0.0.1:8080/login
//! curl -c jar -b jar http://127.0.0.1:8080/          # hello, ada
//! curl -c jar -b jar -X POST http://127.0.0.1:8080/logout
//! ```

use std::time::Duration;

use actix_express_session::{CookieOptions, MemoryStore, Session, SessionMiddleware};
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn whoami(session: Session) -> actix_web::Result<String> {
    Ok(match session.get::<String>("user")? {
        Some(user) => format!("hello, {user}\n"),
        None => "not logged in\n".to_owned(),
    })
}

async fn login(session: Session, form: web::Form<Login>) -> actix_web::Result<HttpResponse> {
    // A new ID on privilege change: whoever knew the old one learns nothing.
    session.regenerate().await?;
    session.insert("user", &form.user)?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/"))
        .finish())
}

async fn logout(session: Session) -> actix_web::Result<HttpResponse> {
    session.destroy().await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/"))
        .finish())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
        .cookie(CookieOptions::default().max_age(Duration::from_secs(3600)))
        .build()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    println!("listening on http://127.0.0.1:{port}/");
    HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(whoami))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
