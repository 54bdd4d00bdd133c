//! The page-view counter from express-session's README, on the in-memory store.
//!
//! ```sh
//! cargo run --example counter
//! curl -c jar -b jar http://127.0.0.1:8080/   # views: 1, then 2, 3, ...
//! ```
//!
//! Environment: `PORT` (default 8080), `SESSION_SECRET` (default `keyboard cat`).

mod support;

use std::process::ExitCode;

use actix_express_session::{MemoryStore, Session, SessionMiddleware};
use actix_web::{web, App, HttpServer};

async fn index(session: Session) -> actix_web::Result<String> {
    let views: u64 = session.get("views")?.unwrap_or(0);
    session.insert("views", views + 1)?;
    Ok(format!("views: {}\n", views + 1))
}

/// Starts the server; an error is one sentence for the user.
async fn run() -> Result<(), String> {
    let port = support::port()?;
    let secret = support::secret();
    let sessions = SessionMiddleware::builder(MemoryStore::new(), secret)
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
        println!("listening on http://{addr}/");
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
