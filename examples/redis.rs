//! The page-view counter on Redis: run several copies on different ports and they share
//! one set of sessions (as do Express apps using connect-redis on the same Redis).
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis --features redis
//! curl -c jar -b jar http://127.0.0.1:8080/   # views: 1, then 2, 3, ...
//! PORT=8081 cargo run --example redis --features redis
//! curl -c jar -b jar http://127.0.0.1:8081/   # the same session: views: 4
//! ```

use std::io::{Error, ErrorKind};

use actix_express_session::{RedisStore, Session, SessionMiddleware};
use actix_web::{web, App, HttpServer};

async fn index(session: Session) -> actix_web::Result<String> {
    let views: u64 = session.get("views")?.unwrap_or(0);
    session.insert("views", views + 1)?;
    Ok(format!("views: {}\n", views + 1))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| "keyboard cat".to_owned());
    let store = RedisStore::new(&url)
        .await
        .map_err(|e| Error::new(ErrorKind::ConnectionRefused, e))?;
    let sessions = SessionMiddleware::builder(store, secret)
        .build()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    println!("listening on http://127.0.0.1:{port}/ with sessions in {url}");
    HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(index))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
