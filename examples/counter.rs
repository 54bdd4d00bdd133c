//! The page-view counter from express-session's README, on the in-memory store.
//!
//! ```sh
//! cargo run --example counter
//! curl -c jar -b jar http://127.0.0.1:8080/   # views: 1, then 2, 3, ...
//! ```

use actix_express_session::{MemoryStore, Session, SessionMiddleware};
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
    let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| "keyboard cat".to_owned());
    let sessions = SessionMiddleware::builder(MemoryStore::new(), secret)
        .build()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    println!("listening on http://127.0.0.1:{port}/");
    HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(index))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
