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
//! | `load`    | recommended | (`get`, with a [`Version`] and the store's expiry) |
//! | `load_now` | optional   | (`load`, answered without waiting when the store can) |
//! | `create`  | recommended | (`set` only if the ID is free) |
//! | `save_if` | recommended | (`set` only onto the version that was loaded) |
//! | `all`     | optional    | `store.all(cb)`            |
//! | `len`     | optional    | `store.length(cb)`         |
//! | `clear`   | optional    | `store.clear(cb)`          |
//!
//! # Conditional writes
//!
//! The middleware never overwrites a session blindly (unless configured for
//! express-session's last-writer-wins, [`WritePolicy::LastWriterWins`]). It loads a
//! session with [`load`](SessionStore::load), which returns a [`Version`] of the stored
//! state, and saves with [`save_if`](SessionStore::save_if), which writes only while the
//! stored record still has that version. On a [`SaveOutcome::Conflict`] the middleware
//! re-applies the request's own changes (keys set, keys removed, `clear`) onto the record
//! as it is now and tries again; on [`SaveOutcome::Gone`] (destroyed meanwhile) it writes
//! nothing and clears the cookie. A new session is written with
//! [`create`](SessionStore::create), which never replaces an existing record.
//!
//! A store is **atomic** when `create` and `save_if` each check and write in one step
//! that no other writer can interleave with (a lock, a Redis script or `SET NX`, one SQL
//! statement). The default methods fall back on `get` and `set`: correct without
//! concurrency, but two requests can still both pass the check before either writes.
//! Override them to make a store atomic; the built-in stores all do.
//!
//! [`WritePolicy::LastWriterWins`]: crate::WritePolicy::LastWriterWins
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

mod conditional;
mod memory;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod parsed;
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
pub use conditional::{Loaded, SaveOutcome, Version};
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
    /// Not tried: the middleware's [circuit breaker](crate::CircuitBreaker) is open
    /// because the store kept failing; a probe finds out when it answers again.
    Unavailable,
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
            StoreError::Unavailable => {
                f.write_str("the session store is unavailable (circuit breaker open)")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Unsupported(_) | StoreError::Unavailable => None,
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

    /// Recommended. The record with its [`Version`], and when the store last extended
    /// it if the store knows. Default: [`get`](Self::get), with the record's JSON as the
    /// version and no expiry information (so the middleware touches on every request).
    fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        conditional::load_by_get(self, sid).boxed()
    }

    /// Optional. What [`load`](Self::load) would answer, when the store has it at hand
    /// without waiting (an in-process map, a client-side cache); `None` when it has to
    /// wait, and the middleware then calls `load`. A session answered here loads with no
    /// future, no allocation for one, and no task wake-up. Default: `None`.
    fn load_now(&self, _sid: &str) -> Option<Result<Option<Loaded>, StoreError>> {
        None
    }

    /// Recommended. Stores `rec` only if no live record has this ID, returning its
    /// version, or `None` when the ID is taken (the middleware then picks a new ID).
    /// Default: [`get`](Self::get), then [`set`](Self::set) (not atomic).
    fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> StoreFuture<'a, Option<Version>> {
        conditional::create_by_get(self, sid, rec).boxed()
    }

    /// Recommended. Replaces the record only while it still has version `expected`:
    /// [`SaveOutcome::Saved`] with the new version, [`SaveOutcome::Conflict`] when
    /// another write came first, [`SaveOutcome::Gone`] when there is no record (never
    /// recreate it). Default: [`load`](Self::load), compare, then [`set`](Self::set)
    /// (not atomic).
    fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> StoreFuture<'a, SaveOutcome> {
        conditional::save_if_by_load(self, sid, rec, expected).boxed()
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
            fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
                (**self).load(sid)
            }
            fn load_now(&self, sid: &str) -> Option<Result<Option<Loaded>, StoreError>> {
                (**self).load_now(sid)
            }
            fn create<'a>(
                &'a self,
                sid: &'a str,
                rec: &'a Arc<SessionRecord>,
            ) -> StoreFuture<'a, Option<Version>> {
                (**self).create(sid, rec)
            }
            fn save_if<'a>(
                &'a self,
                sid: &'a str,
                rec: &'a Arc<SessionRecord>,
                expected: &'a Version,
            ) -> StoreFuture<'a, SaveOutcome> {
                (**self).save_if(sid, rec, expected)
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
