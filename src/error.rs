//! [`SessionError`]: why a session operation failed.

use std::fmt;

use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

/// Why a session operation failed. As an actix-web error it is a 500 with an empty
/// body: the details go to the log, never to the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// The request did not pass through [`SessionMiddleware`](crate::SessionMiddleware)
    /// (not wrapped, or outside `cookie.path`).
    NotWrapped,
    /// `cookie` (the session cookie's state), [`CREATED_AT_KEY`](crate::CREATED_AT_KEY),
    /// [`ISSUED_AT_KEY`](crate::ISSUED_AT_KEY) and
    /// [`REISSUED_TO_KEY`](crate::REISSUED_TO_KEY) are the middleware's.
    ReservedKey,
    /// A value could not be converted to or from JSON.
    Json(serde_json::Error),
    /// The session was destroyed or unset in this request; call
    /// [`Session::regenerate`](crate::Session::regenerate) to start a new one.
    Inactive,
    /// [`Session::reload`](crate::Session::reload) found no stored session.
    NotFound,
    /// The operating system's random source failed.
    Random,
    /// The store failed.
    Store(StoreError),
    /// A save met concurrent writes to the same session on every one of its attempts.
    Contended,
    /// [`SessionExt::get_session`](crate::SessionExt::get_session) found the session not
    /// loaded yet (with [`Load::Lazy`](crate::Load::Lazy)): use the extractor or
    /// [`SessionExt::load_session`](crate::SessionExt::load_session).
    NotLoaded,
    /// `genid` returned an empty ID, or one longer than 4096 bytes.
    InvalidId,
    /// The cookie options [`cookie_for`](crate::SessionMiddlewareBuilder::cookie_for)
    /// gave for this request are invalid.
    Config(crate::ConfigError),
    /// A session reached from a guard ([`GuardContext`](actix_web::guard::GuardContext))
    /// cannot call the store: call it from the handler.
    InGuard,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionError::NotWrapped => "the session middleware did not handle this request",
            SessionError::ReservedKey => {
                "the session keys `cookie`, `__sessionCreatedAt`, `__sessionIssuedAt` and `__sessionReissuedTo` are reserved"
            }
            SessionError::Json(_) => "a session value could not be converted to or from JSON",
            SessionError::Inactive => "the session was destroyed or unset in this request",
            SessionError::NotFound => "failed to load session: not in the store",
            SessionError::Random => "could not generate a session ID",
            SessionError::Store(_) => "the session store failed",
            SessionError::Contended => {
                "the session save kept conflicting with concurrent writes to the same session"
            }
            SessionError::NotLoaded => {
                "the session is not loaded yet: use the Session extractor or load_session"
            }
            SessionError::InvalidId => "`genid` returned an empty or over-long session ID",
            SessionError::Config(_) => "`cookie_for` gave invalid cookie options",
            SessionError::InGuard => "a guard cannot call the session store: call it from the handler",
        })
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Json(e) => Some(e),
            SessionError::Store(e) => Some(e),
            SessionError::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Store(e)
    }
}

impl ResponseError for SessionError {
    fn error_response(&self) -> HttpResponse {
        HttpResponse::InternalServerError().finish()
    }
}
