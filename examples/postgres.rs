//! The page-view counter on PostgreSQL, in connect-pg-simple's `session` table (created
//! when missing), so a Node app using connect-pg-simple can share the sessions.
//!
//! ```sh
//! DATABASE_URL=postgres://user@127.0.0.1/db cargo run --example postgres --features postgres
//! curl -c jar -b jar http://127.0.0.1:8080/   # views: 1, then 2, 3, ...
//! ```

use std::io::{Error, ErrorKind};
use std::time::Duration;

use actix_express_session::store::{sqlx::postgres::PgPoolOptions, PostgresStore};
use actix_express_session::{Session, SessionMiddleware};
use actix_web::{web, App, HttpServer};

async fn index(session: Session) -> actix_web::Result<String> {
    let views: u64 = session.get("views")?.unwrap_or(0);
    session.insert("views", views + 1)?;
    Ok(format!("views: {}\n", views + 1))
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::InvalidInput, e)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let url = std::env::var("DATABASE_URL").map_err(|_| {
        Error::new(
            ErrorKind::NotFound,
            "set DATABASE_URL=postgres://user@host/db",
        )
    })?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| "keyboard cat".to_owned());
    // A short acquire timeout: while the database is down, requests fail fast with a 500.
    // No ping before each query: one round trip per store operation.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(3))
        .test_before_acquire(false)
        .connect(&url)
        .await
        .map_err(|e| Error::new(ErrorKind::ConnectionRefused, e))?;
    let store = PostgresStore::builder(pool)
        .create_table_if_missing(true)
        .build()
        .map_err(invalid)?;
    let sessions = SessionMiddleware::builder(store, secret)
        .build()
        .map_err(invalid)?;
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
