//! One connection per worker thread for a single Redis server.
//!
//! actix-web runs each worker on its own single-threaded runtime, while a store is
//! usually connected once, in `main`, before the workers start. A connection's I/O is
//! bound to the runtime that opened it, so with one shared connection every command
//! crossed threads twice (the worker hands it to `main`'s runtime, which hands the reply
//! back): two eventfd writes, two extra `epoll_wait`s and two context switches per
//! command. Each worker thread therefore opens its own connection on first use, on its
//! own runtime; the one opened at connect time serves only the thread that opened it.
//!
//! Two kinds are kept this way: the lean connections of a plain `redis://` URL (see
//! `lean.rs`), and redis-rs `ConnectionManager`s (TLS or Unix-socket URLs, and the
//! primary behind sentinels).

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::thread::LocalKey;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisResult;

use super::lean::{Lean, Server};

/// The connections of one store (shared by its clones).
pub(super) struct Shared {
    /// Opened at connect time, or handed in by the user.
    first: ConnectionManager,
    /// How to open one more on another thread; `None` for a manager the user handed in
    /// (it is then the only one).
    client: Option<(redis::Client, ConnectionManagerConfig)>,
}

/// Per live store (by its shared part), this thread's connection.
type Table<S, C> = RefCell<Vec<(Weak<S>, C)>>;

thread_local! {
    /// This thread's manager of each live store.
    static MANAGERS: Table<Shared, ConnectionManager> = const { RefCell::new(Vec::new()) };
    /// This thread's lean connection of each live store.
    static LEAN: Table<Server, Arc<Lean>> = const { RefCell::new(Vec::new()) };
}

/// A single server's managers: this thread's own, opened on first use.
#[derive(Clone)]
pub(super) struct PerThread(Arc<Shared>);

impl PerThread {
    /// Connections opened from `client` as needed, starting with `first`.
    pub(super) fn new(
        first: ConnectionManager,
        client: Option<(redis::Client, ConnectionManagerConfig)>,
    ) -> Self {
        PerThread(Arc::new(Shared { first, client }))
    }

    /// This thread's connection, opened now if it has none yet.
    pub(super) async fn get(&self) -> RedisResult<ConnectionManager> {
        let Some((client, config)) = &self.0.client else {
            return Ok(self.0.first.clone());
        };
        if let Some(found) = find(&MANAGERS, &self.0) {
            return Ok(found);
        }
        let opened = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        Ok(keep(&MANAGERS, &self.0, opened))
    }
}

/// A single server's lean connections: this thread's own, made on first use (each
/// opens its socket on its first command, and again after a failure).
#[derive(Debug, Clone)]
pub(super) struct PerThreadLean(Arc<Server>);

impl PerThreadLean {
    /// Connects to `server` now (so that a wrong address or password is an error at
    /// start-up); the connection serves this thread.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the login or database.
    pub(super) async fn connect(server: Server) -> RedisResult<Self> {
        let lanes = PerThreadLean(Arc::new(server));
        lanes.get().connect().await?;
        Ok(lanes)
    }

    /// Whether the connections keep a client cache.
    pub(super) fn caching(&self) -> bool {
        self.0.caching()
    }

    /// This thread's connection.
    pub(super) fn get(&self) -> Arc<Lean> {
        find(&LEAN, &self.0)
            .unwrap_or_else(|| keep(&LEAN, &self.0, Arc::new(Lean::new(Arc::clone(&self.0)))))
    }
}

/// This thread's connection of `owner`, if it has one.
fn find<S, C: Clone>(table: &'static LocalKey<Table<S, C>>, owner: &Arc<S>) -> Option<C> {
    table.with_borrow(|local| {
        local
            .iter()
            .find(|(store, _)| is(store, owner))
            .map(|(_, conn)| conn.clone())
    })
}

/// Keeps `opened` as this thread's connection of `owner`, unless a racing open on this
/// thread got there first (then that one is kept, and returned). Entries of stores
/// dropped since go.
fn keep<S, C: Clone>(table: &'static LocalKey<Table<S, C>>, owner: &Arc<S>, opened: C) -> C {
    table.with_borrow_mut(|local| {
        local.retain(|(store, _)| store.strong_count() > 0);
        if let Some((_, kept)) = local.iter().find(|(store, _)| is(store, owner)) {
            return kept.clone();
        }
        local.push((Arc::downgrade(owner), opened.clone()));
        opened
    })
}

fn is<S>(store: &Weak<S>, owner: &Arc<S>) -> bool {
    std::ptr::eq(store.as_ptr(), Arc::as_ptr(owner))
}
