//! The [`SessionStore`] trait that every backend implements, and [`StoreError`].
//!
//! A store maps session IDs to [`SessionRecord`]s. Methods return
//! [`BoxFuture`]s so that a store chosen at runtime works as `Arc<dyn SessionStore>`.
//!
//! | method    | status      | express-session equivalent |
//! |-----------|-------------|----------------------------|
//! | `get`     | required    | `store.get(sid, cb)`       |
//! | `set`     | required    | `store.set(sid, sess, cb)` |
//! | `destroy` | required    | `store.destroy(sid, cb)`   |
//! | `touch`   | recommended | `store.touch(sid, sess, cb)` (default: `set`) |
//! | `all`     | optional    | `store.all(cb)`            |
//! | `len`     | optional    | `store.length(cb)`         |
//! | `clear`   | optional    | `store.clear(cb)`          |
//!
//! # Writing a store
//!
//! ```
//! use std::{collections::HashMap, sync::Mutex};
//! use actix_express_session::store::{SessionStore, StoreError};
//! use actix_express_session::SessionRecord;
//! use futures_util::future::{BoxFuture, FutureExt};
//!
//! #[derive(Default)]
//! struct MapStore(Mutex<HashMap<String, String>>);
//!
//! impl SessionStore for MapStore {
//!     fn get<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
//!         let json = self.0.lock().unwrap().get(sid).cloned();
//!         async move {
//!             json.map(|j| SessionRecord::from_json(j.as_bytes()).map_err(StoreError::Serialization))
//!                 .transpose()
//!         }
//!         .boxed()
//!     }
//!     fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
//!         self.0.lock().unwrap().insert(sid.to_owned(), rec.to_json());
//!         async { Ok(()) }.boxed()
//!     }
//!     fn destroy<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
//!         self.0.lock().unwrap().remove(sid);
//!         async { Ok(()) }.boxed()
//!     }
//! }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use futures_util::future::BoxFuture;
use futures_util::future::FutureExt;

use crate::record::SessionRecord;

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
// Named apart from the driver so that `store::redis` can re-export the driver itself.
#[cfg(feature = "redis")]
#[path = "redis.rs"]
mod redis_store;

/// The Redis driver [`RedisStore`] is built on, re-exported so that your client or
/// connection manager comes from the same `redis` version.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ::redis;
/// The PostgreSQL driver [`PostgresStore`] is built on, re-exported so that your pool
/// comes from the same `sqlx` version.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use ::sqlx;
pub use memory::{MemoryStore, MemoryStoreBuilder};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresConfigError, PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_store::{RedisStore, RedisStoreBuilder};

/// Errors a store reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The store does not implement this optional operation.
    Unsupported(&'static str),
    /// A stored record is not a valid session object.
    Serialization(serde_json::Error),
    /// The backend (network, database, ...) failed.
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error: `.map_err(StoreError::backend)?`.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unsupported(op) => write!(f, "the session store does not support `{op}`"),
            StoreError::Serialization(_) => f.write_str("a stored session record is malformed"),
            StoreError::Backend(_) => f.write_str("the session store backend failed"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Unsupported(_) => None,
            StoreError::Serialization(e) => Some(e),
            StoreError::Backend(e) => Some(e.as_ref()),
        }
    }
}

/// A future resolving to a store result.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

fn unsupported<'a, T: Send + 'a>(op: &'static str) -> StoreFuture<'a, T> {
    futures_util::future::ready(Err(StoreError::Unsupported(op))).boxed()
}

/// Where sessions live. See the [module docs](self) for which methods are required.
// `len` mirrors express-session's `length`; an `is_empty` would be one more round trip.
#[allow(clippy::len_without_is_empty)]
pub trait SessionStore: Send + Sync + 'static {
    /// Required. The record stored under `sid`, or `None` when there is none or it
    /// expired. A record that does not parse is [`StoreError::Serialization`].
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>>;

    /// Required. Stores (or replaces) the record, expiring with `rec.cookie`'s expiry.
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()>;

    /// Required. Removes the record; removing an unknown ID is not an error.
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()>;

    /// Recommended. Extends the life of an existing record to `rec.cookie`'s expiry
    /// without rewriting its data. Default: [`set`](Self::set).
    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.set(sid, rec)
    }

    /// Optional. Every unexpired session, by ID.
    fn all(&self) -> StoreFuture<'_, HashMap<String, SessionRecord>> {
        unsupported("all")
    }

    /// Optional. The number of unexpired sessions.
    fn len(&self) -> StoreFuture<'_, usize> {
        unsupported("len")
    }

    /// Optional. Removes every session.
    fn clear(&self) -> StoreFuture<'_, ()> {
        unsupported("clear")
    }
}

macro_rules! forward_store {
    ($($ptr:ident),*) => {$(
        impl<S: SessionStore + ?Sized> SessionStore for $ptr<S> {
            fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
                (**self).get(sid)
            }
            fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
                (**self).set(sid, rec)
            }
            fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
                (**self).destroy(sid)
            }
            fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
                (**self).touch(sid, rec)
            }
            fn all(&self) -> StoreFuture<'_, HashMap<String, SessionRecord>> {
                (**self).all()
            }
            fn len(&self) -> StoreFuture<'_, usize> {
                (**self).len()
            }
            fn clear(&self) -> StoreFuture<'_, ()> {
                (**self).clear()
            }
        }
    )*};
}

forward_store!(Arc, Box);
