//! [`OutagePolicy`]: what a request gets when the session store fails.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::SessionError;

/// The user's answer to a store failure.
type Respond = Arc<dyn Fn(&HttpRequest, &SessionError) -> HttpResponse + Send + Sync>;

/// What the middleware answers when the session store fails (down, timed out, or not
/// tried because the [circuit breaker](crate::CircuitBreaker) is open): for a failure
/// while loading or saving the session, and for a handler that returns the
/// [`SessionError`] of a store call (with `?`) as its error. Set with
/// [`SessionMiddlewareBuilder::outage_policy`](crate::SessionMiddlewareBuilder::outage_policy).
///
/// Whatever the policy, no session cookie is sent with it and the details go to the log,
/// never to the client.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OutagePolicy {
    /// An empty `500 Internal Server Error` (the default).
    #[default]
    InternalServerError,
    /// An empty `503 Service Unavailable` with `Retry-After` in whole seconds (at least 1).
    ServiceUnavailable {
        /// The value of `Retry-After`.
        retry_after: Duration,
    },
    /// The response your function makes: an error page, a redirect, a degraded
    /// anonymous page.
    Custom(Respond),
}

impl OutagePolicy {
    /// An empty 503 with `Retry-After`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_express_session::{MemoryStore, OutagePolicy, SessionMiddleware};
    ///
    /// let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
    ///     .outage_policy(OutagePolicy::unavailable(Duration::from_secs(5)))
    ///     .build()
    ///     .expect("a valid configuration");
    /// # drop(sessions);
    /// ```
    pub fn unavailable(retry_after: Duration) -> Self {
        OutagePolicy::ServiceUnavailable { retry_after }
    }

    /// Your own response.
    ///
    /// ```
    /// use actix_express_session::{MemoryStore, OutagePolicy, SessionMiddleware};
    /// use actix_web::HttpResponse;
    ///
    /// let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
    ///     .outage_policy(OutagePolicy::custom(|_req, _err| {
    ///         HttpResponse::ServiceUnavailable().body("Sign-in is down for a moment; please retry.")
    ///     }))
    ///     .build()
    ///     .expect("a valid configuration");
    /// # drop(sessions);
    /// ```
    pub fn custom(
        respond: impl Fn(&HttpRequest, &SessionError) -> HttpResponse + Send + Sync + 'static,
    ) -> Self {
        OutagePolicy::Custom(Arc::new(respond))
    }

    /// The response for `e`, a store failure.
    pub(crate) fn respond(&self, req: &HttpRequest, e: &SessionError) -> HttpResponse {
        match self {
            OutagePolicy::InternalServerError => HttpResponse::InternalServerError().finish(),
            OutagePolicy::ServiceUnavailable { retry_after } => {
                let seconds = retry_after.as_millis().div_ceil(1000).max(1);
                HttpResponse::ServiceUnavailable()
                    .insert_header((RETRY_AFTER, seconds.to_string()))
                    .finish()
            }
            OutagePolicy::Custom(respond) => respond(req, e),
        }
    }
}

impl fmt::Debug for OutagePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutagePolicy::InternalServerError => f.write_str("InternalServerError"),
            OutagePolicy::ServiceUnavailable { retry_after } => f
                .debug_struct("ServiceUnavailable")
                .field("retry_after", retry_after)
                .finish(),
            OutagePolicy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}
