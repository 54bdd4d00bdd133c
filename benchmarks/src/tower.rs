//! axum 0.8 + tower-sessions 0.14 with its defaults (plain session-ID cookie, saved when
//! modified), `Secure` off because the benchmark speaks plain HTTP.

use axum::routing::get;
use axum::Router;
use tower_sessions::{Session, SessionManagerLayer, SessionStore};

use crate::{addr, body, BoxError};

type Failure = (axum::http::StatusCode, String);

fn failure(e: impl std::fmt::Display) -> Failure {
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// `GET /count`.
///
/// # Errors
/// When the session cannot be read or written (a 500).
pub async fn count(session: Session) -> Result<String, Failure> {
    let n: u64 = session.get("n").await.map_err(failure)?.unwrap_or(0);
    session.insert("n", n + 1).await.map_err(failure)?;
    Ok(body(n + 1))
}

/// `GET /read`.
///
/// # Errors
/// When the session cannot be read (a 500).
pub async fn read(session: Session) -> Result<String, Failure> {
    Ok(body(session.get("n").await.map_err(failure)?.unwrap_or(0)))
}

/// Serves both routes with tower-sessions on `store`, on the calling (single-threaded)
/// Tokio runtime.
///
/// # Errors
/// When the port cannot be bound.
pub async fn serve<S: SessionStore + Clone>(store: S) -> Result<(), BoxError> {
    let app = Router::new()
        .route("/count", get(count))
        .route("/read", get(read))
        .layer(SessionManagerLayer::new(store).with_secure(false));
    let listener = tokio::net::TcpListener::bind(addr()).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
