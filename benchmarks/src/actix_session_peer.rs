//! actix-session 0.11 with its defaults (private, encrypted cookie; browser-session
//! lifecycle), `Secure` off because the benchmark speaks plain HTTP.

use actix_session::storage::SessionStore;
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpServer};

use crate::{addr, body, BoxError};

/// `GET /count`.
///
/// # Errors
/// When the session cannot be read or written (a 500).
pub async fn count(session: Session) -> actix_web::Result<String> {
    let n: u64 = session.get("n")?.unwrap_or(0);
    session.insert("n", n + 1)?;
    Ok(body(n + 1))
}

/// `GET /read`.
///
/// # Errors
/// When the session cannot be read (a 500).
pub async fn read(session: Session) -> actix_web::Result<String> {
    Ok(body(session.get("n")?.unwrap_or(0)))
}

/// Serves both routes with actix-session on the store `store()` makes, one worker.
///
/// # Errors
/// When the port cannot be bound.
pub async fn serve<S, F>(store: F) -> Result<(), BoxError>
where
    S: SessionStore + 'static,
    F: Fn() -> S + Send + Clone + 'static,
{
    let key = Key::generate();
    HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(store(), key.clone())
                    .cookie_secure(false)
                    .build(),
            )
            .route("/count", web::get().to(count))
            .route("/read", web::get().to(read))
    })
    .workers(1)
    .bind(addr())?
    .run()
    .await?;
    Ok(())
}
