//! The page-view counter on Redis: run several copies on different ports and they share
//! one set of sessions (as do Express apps using connect-redis on the same Redis).
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis --features redis
//! curl -c jar -b jar http://127.0.0.1:8080/   # views: 1, then 2, 3, ...
//! PORT=8081 cargo run --example redis --features redis
//! curl -c jar -b jar http://127.0.0.1:8081/   # the same session: views: 4
//! ```
//!
//! Environment: `REDIS_URL` (default `redis://127.0.0.1:6379`), `PORT` (default 8080),
//! `SESSION_SECRET` (default `keyboard cat`).

mod support;

use std::process::ExitCode;

use actix_express_session::{RedisStore, Session, SessionMiddleware};
use actix_web::{web, App, HttpServer};

async fn index(session: Session) -> actix_web::Result<String> {
    let views: u64 = session.get("views")?.unwrap_or(0);
    session.insert("views", views + 1)?;
    Ok(format!("views: {}\n", views + 1))
}

/// Connects and starts the server; an error is one sentence for the user.
async fn run() -> Result<(), String> {
    let port = support::port()?;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let secret = support::secret();
    let store = RedisStore::new(&url).await.map_err(|e| {
        format!(
            "cannot connect to Redis at {}: {}",
            support::printable(&url),
            support::cause(&e)
        )
    })?;
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
