//! One connection per worker thread for a single Redis server.
//!
//! actix-web runs each worker on its own single-threaded runtime, while a store is
//! usually connected once, in `main`, before the workers start. A multiplexed
//! connection's I/O task lives on the runtime that opened it, so with one shared
//! connection every command crossed threads twice (the worker hands it to `main`'s
//! runtime, which hands the reply back): two eventfd writes, two extra `epoll_wait`s and
//! two context switches per command. Each worker thread therefore opens its own
//! connection on first use, on its own runtime; the one opened at connect time serves
//! only the thread that opened it.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisResult;

/// The connections of one store (shared by its clones).
pub(super) struct Shared {
    /// Opened at connect time, or handed in by the user.
    first: ConnectionManager,
    /// How to open one more on another thread; `None` for a manager the user handed in
    /// (it is then the only one).
    client: Option<(redis::Client, ConnectionManagerConfig)>,
}

thread_local! {
    /// This thread's connection of each live store.
    static LOCAL: RefCell<Vec<(Weak<Shared>, ConnectionManager)>> = const { RefCell::new(Vec::new()) };
}

/// A single server's connections: this thread's own, opened on first use.
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
        if let Some(found) = self.local() {
            return Ok(found);
        }
        let opened = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        LOCAL.with_borrow_mut(|local| {
            // Entries of stores dropped since go, and a racing open on this thread loses.
            local.retain(|(store, _)| store.strong_count() > 0);
            if !local.iter().any(|(store, _)| self.is(store)) {
                local.push((Arc::downgrade(&self.0), opened.clone()));
            }
        });
        Ok(self.local().unwrap_or(opened))
    }

    fn local(&self) -> Option<ConnectionManager> {
        LOCAL.with_borrow(|local| {
            local
                .iter()
                .find(|(store, _)| self.is(store))
                .map(|(_, conn)| conn.clone())
        })
    }

    fn is(&self, store: &Weak<Shared>) -> bool {
        std::ptr::eq(store.as_ptr(), Arc::as_ptr(&self.0))
    }
}
