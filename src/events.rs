//! [`SessionEvent`]: what an application can audit through
//! [`SessionMiddlewareBuilder::on_event`](crate::SessionMiddlewareBuilder::on_event).

use std::sync::Arc;

use actix_web::HttpRequest;

use crate::record::SessionRecord;

/// A change in a session's life, reported to the `on_event` callback after the store
/// has done it. Session IDs are secrets: keep them out of logs (the session's data, such
/// as a user name, is what an audit line wants).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SessionEvent<'a> {
    /// A new session was stored for the first time.
    Created {
        /// Its ID.
        id: &'a str,
    },
    /// [`Session::regenerate`](crate::Session::regenerate) gave the session a new ID and
    /// empty data (typically a login); the old ID is destroyed.
    Regenerated {
        /// The ID it had.
        from: &'a str,
        /// The new one.
        to: &'a str,
    },
    /// The session was destroyed ([`Session::destroy`](crate::Session::destroy), or
    /// [`Session::unset`](crate::Session::unset) with [`Unset::Destroy`](crate::Unset::Destroy)).
    Destroyed {
        /// Its ID.
        id: &'a str,
        /// The session as it was, so that an audit line can name its user.
        record: &'a SessionRecord,
    },
    /// A validly signed cookie named a session that has expired or is no longer stored;
    /// the request gets a new session.
    Expired {
        /// The ID the cookie named.
        id: &'a str,
    },
}

/// The callback registered with `on_event`.
pub(crate) type Hook = Arc<dyn Fn(&HttpRequest, &SessionEvent<'_>) + Send + Sync>;
