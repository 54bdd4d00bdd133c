//! The page-view counter on PostgreSQL, in connect-pg-simple's `session` table (created
//! when missing), so a Node app using connect-pg-simple can share the sessions.
//!
//! ```sh
//! DATABASE_URL=postgres://user@127.0.0.1/db cargo run --example postgres --features postgres
//! curl -c jar -b jar http://127.0.0.1:8080/   # views: 1, then 2, 3, ...
//! ```
//!
//! Environment: `DATABASE_URL` (required), `PORT` (default 8080), `SESSION_SECRET`
//! (default `keyboard cat`).

mod support;

use std::process::ExitCode;
use std::time::Duration;

use actix_express_session::store::{sqlx::postgres::PgPoolOptions, PostgresStore};
use actix_express_session::{Session, SessionMiddleware};
use actix_web::{web, App, HttpServer};

async fn index(session: Session) -> actix_web::Result<String> {
    let views: u64 = session.get("views")?.unwrap_or(0);
    session.insert("views", views + 1)?;
    Ok(format!("views: {}\n", views + 1))
}

/// Connects and starts the server; an error is one sentence for the user.
async fn run() -> Result<(), String> {
    let port = support::port()?;
    let url = std::env::var("DATABASE_URL").map_err(|_| {
        "set DATABASE_URL, e.g. DATABASE_URL=postgres://user@127.0.0.1/db".to_owned()
    })?;
    let secret = support::secret();
    // A short acquire timeout: while the database is down, requests fail fast with a 500.
    // No ping before each query: one round trip per store operation.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(3))
        .test_before_acquire(false)
        .connect(&url)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to PostgreSQL at {}: {}",
                support::printable(&url),
                support::cause(&e)
            )
        })?;
    let store = PostgresStore::builder(pool)
        .create_table_if_missing(true)
        .build()
        .map_err(|e| format!("invalid PostgreSQL store configuration: {e}"))?;
    let sessions = SessionMiddleware::builder(store, secret)
        .build()
        .map_err(|e| format!("invalid session configuration: {e}"))?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(index))
    })
    .bind(("127.0.0.1", port))
    .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    for addr in server.addrs() {
        println!(
            "listening on http://{addr}/ with sessions in {}",
            support::printable(&url)
        );
    }
    server
        .run()
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

#[actix_web::main]
async fn main() -> ExitCode {
    support::exit(run().await)
}
