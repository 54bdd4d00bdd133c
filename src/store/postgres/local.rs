//! The connections per-request operations run on: at most N per worker thread, each
//! store's own, opened on first use.
//!
//! Not sqlx's pool, for three costs it adds to every operation: it pings each
//! connection as it goes back (`return_to_pool` runs `ping()`: a second round trip to
//! PostgreSQL per operation), it spawns a task to put the connection back, and it moves
//! its large futures several times. Here a connection goes back by a lock and a push.
//!
//! actix-web runs each worker on its own single-threaded runtime, and a connection's I/O
//! is bound to the runtime that opened it; so each thread keeps its own connections per
//! store (and per runtime: a thread that starts a new runtime gets new connections),
//! in a thread-local table keyed by a `Weak` of the store's shared part, as the Redis
//! store keeps its per-thread connections. The connections of a dropped store close
//! when their thread next sets up connections for a store, or ends.
//!
//! A connection lent to an operation is moved into it and handed back with its outcome
//! (see [`Lent`]): if the operation is dropped mid-query (timeout, client gone), the
//! connection is dropped with it, never reused with a reply still in flight. One that
//! failed by I/O, protocol or a fatal server error is dropped too; a plain SQL error
//! leaves it in use. A dropped connection frees its place, and the next operation opens
//! a fresh one.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnection, PgDatabaseError, PgPool, PgSeverity};
use sqlx::ConnectOptions;
use tokio::runtime::{Handle, Id};
use tokio::sync::oneshot;

use super::gather::{Gather, Gathers};
use super::{NewRow, Row};
use crate::store::StoreError;

/// A connection lent to one operation, handed back with the operation's result.
pub(super) type Lent<T> = (PgConnection, Result<T, sqlx::Error>);

/// Whether an operation may run a second time when its connection turns out broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Idempotent {
    /// Running it twice ends as running it once (reads, `set`, `touch`, `destroy`).
    Yes,
    /// A second run would answer differently (`create` would find its own row, `save_if`
    /// would conflict with itself): run again only when the server said it ended the
    /// session (a fatal error), which rolls back whatever it was running.
    No,
}

/// What one store's connections share across threads.
#[derive(Debug)]
struct Shared {
    /// Its connect options open every connection; its acquire timeout bounds the opening.
    pool: PgPool,
    per_thread: usize,
}

/// One store's connections: at most `per_thread` on each thread that uses it.
#[derive(Debug, Clone)]
pub(super) struct Connections(Arc<Shared>);

/// A store's connections on one thread, for one runtime. Behind a mutex, uncontended on
/// actix-web's single-threaded workers: on a multi-threaded runtime an operation may end
/// on another thread than it began, and gives its connection back to the slot it came
/// from (any thread of that runtime can drive it).
struct Slot {
    per_thread: usize,
    state: Mutex<State>,
    /// Turns to run loads and creates on these connections.
    gathers: Gathers,
}

/// Invariant: `waiters` is empty unless `idle` is empty and `open == per_thread`.
struct State {
    /// Ready for use, the most recently used last.
    idle: Vec<PgConnection>,
    /// Connections counted against the limit: idle, lent, or being opened.
    open: usize,
    /// Callers waiting for a connection, first come first served. A grant of `None` is
    /// the right to open one (a connection was dropped).
    waiters: VecDeque<oneshot::Sender<Option<PgConnection>>>,
}

struct Entry {
    store: Weak<Shared>,
    runtime: Id,
    slot: Arc<Slot>,
}

thread_local! {
    /// This thread's connections of each live store.
    static SLOTS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

impl Connections {
    /// Connections opened with `pool`'s connect options, at most `per_thread` per thread.
    pub(super) fn new(pool: PgPool, per_thread: usize) -> Self {
        Connections(Arc::new(Shared { pool, per_thread }))
    }

    /// Runs `op` on one of this thread's connections: an idle one, a new one while
    /// fewer than the limit are open, else the first one released (callers wait in
    /// turn). A reused connection that turns out broken is dropped and `op` runs once
    /// more on a fresh one when that is safe (see [`Idempotent`]): so a backend killed
    /// while idle, or a database restarted since, costs no operation.
    pub(super) async fn run<T, Fut>(
        &self,
        idempotent: Idempotent,
        mut op: impl FnMut(PgConnection) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Lent<T>>,
    {
        let mut lease = self.lease().await?;
        loop {
            let (conn, reused) = match lease.conn.take() {
                Some(conn) => (conn, true),
                None => (self.open().await?, false),
            };
            let (conn, result) = op(conn).await;
            let e = match result {
                Ok(value) => {
                    lease.conn = Some(conn);
                    return Ok(value);
                }
                Err(e) => e,
            };
            if !breaks(&e) {
                lease.conn = Some(conn);
                return Err(StoreError::backend(e));
            }
            drop(conn);
            if !(reused && worth_retrying(&e, idempotent)) {
                return Err(StoreError::backend(e));
            }
            tracing::debug!(error = %e, "postgres connection broken; retrying on a new one");
        }
    }

    /// This thread's turns to run loads (see `gather.rs`).
    pub(super) fn loads(&self) -> Result<Arc<Gather<String, Option<Row>>>, StoreError> {
        Ok(Arc::clone(&self.slot()?.gathers.loads))
    }

    /// This thread's turns to run creates (see `gather.rs`).
    pub(super) fn creates(&self) -> Result<Arc<Gather<NewRow, bool>>, StoreError> {
        Ok(Arc::clone(&self.slot()?.gathers.creates))
    }

    /// A place among this thread's connections: taken now if one is free, else waited
    /// for in turn.
    async fn lease(&self) -> Result<Lease, StoreError> {
        let slot = self.slot()?;
        let taken = {
            let mut state = slot.lock();
            if let Some(conn) = state.idle.pop() {
                Ok(Some(conn))
            } else if state.open < slot.per_thread {
                state.open += 1;
                Ok(None)
            } else {
                let (tx, rx) = oneshot::channel();
                state.waiters.push_back(tx);
                Err(rx)
            }
        };
        match taken {
            Ok(conn) => Ok(Lease { slot, conn }),
            Err(rx) => Waiting { slot, rx }.granted().await,
        }
    }

    /// Opens a connection with the pool's connect options, within its acquire timeout.
    /// Boxed: opening is rare and its future is large.
    fn open(&self) -> BoxFuture<'static, Result<PgConnection, StoreError>> {
        let options = self.0.pool.connect_options();
        let limit = self.0.pool.options().get_acquire_timeout();
        Box::pin(async move {
            match tokio::time::timeout(limit, options.connect()).await {
                Ok(opened) => opened.map_err(StoreError::backend),
                Err(_) => Err(StoreError::backend(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connecting to postgres timed out",
                ))),
            }
        })
    }

    /// This thread's slot of this store for the current runtime, made on first use.
    fn slot(&self) -> Result<Arc<Slot>, StoreError> {
        let runtime = Handle::try_current().map_err(StoreError::backend)?.id();
        let found = SLOTS.with_borrow(|slots| {
            slots
                .iter()
                .find(|e| e.runtime == runtime && is(&e.store, &self.0))
                .map(|e| Arc::clone(&e.slot))
        });
        Ok(found.unwrap_or_else(|| self.new_slot(runtime)))
    }

    /// A new slot for `runtime`. It replaces this store's slot of another runtime (one
    /// that has ended, presumably: its connections are of no use here), and the entries
    /// of stores dropped since go; their connections are closed after the table is
    /// released.
    fn new_slot(&self, runtime: Id) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            per_thread: self.0.per_thread,
            gathers: Gathers::new(gather_limit(self.0.per_thread)),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiters: VecDeque::new(),
            }),
        });
        let entry = Entry {
            store: Arc::downgrade(&self.0),
            runtime,
            slot: Arc::clone(&slot),
        };
        let gone = SLOTS.with_borrow_mut(|slots| {
            let (keep, gone) = std::mem::take(slots)
                .into_iter()
                .partition(|e| e.store.strong_count() > 0 && !is(&e.store, &self.0));
            *slots = keep;
            slots.push(entry);
            gone
        });
        drop::<Vec<Entry>>(gone);
        slot
    }
}

/// Loads (and creates) that run at once on `per_thread` connections: a quarter of them
/// (rounded up), so that they gather into few statements and the other connections stay
/// free.
fn gather_limit(per_thread: usize) -> usize {
    per_thread.div_ceil(4)
}

fn is(store: &Weak<Shared>, owner: &Arc<Shared>) -> bool {
    std::ptr::eq(store.as_ptr(), Arc::as_ptr(owner))
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a released connection (or, for `None`, its freed place) to the first
    /// caller still waiting; with none, keeps it idle (or lowers the count).
    fn release(self: &Arc<Self>, mut grant: Option<PgConnection>) {
        loop {
            let waiter = {
                let mut state = self.lock();
                let Some(waiter) = state.waiters.pop_front() else {
                    match grant {
                        Some(conn) => state.idle.push(conn),
                        None => state.open = state.open.saturating_sub(1),
                    }
                    return;
                };
                waiter
            };
            // Outside the lock: a waiter that gave up hands the grant back.
            match waiter.send(grant) {
                Ok(()) => return,
                Err(back) => grant = back,
            }
        }
    }
}

/// One place among a slot's connections, held for one operation: the connection, or
/// (`None`) the right to open one. Dropping it gives the place back.
struct Lease {
    slot: Arc<Slot>,
    conn: Option<PgConnection>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.release(self.conn.take());
    }
}

/// A caller waiting in turn. Dropped before it is served (timeout, client gone), it
/// passes on what it may have been granted meanwhile.
struct Waiting {
    slot: Arc<Slot>,
    rx: oneshot::Receiver<Option<PgConnection>>,
}

impl Waiting {
    async fn granted(mut self) -> Result<Lease, StoreError> {
        match (&mut self.rx).await {
            Ok(conn) => Ok(Lease {
                slot: Arc::clone(&self.slot),
                conn,
            }),
            // Unreachable: a sender is only dropped by sending.
            Err(e) => Err(StoreError::backend(e)),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.rx.close();
        if let Ok(grant) = self.rx.try_recv() {
            self.slot.release(grant);
        }
    }
}

/// Whether a failure leaves the connection unfit for another statement: anything but a
/// plain SQL error (after which PostgreSQL is ready for the next one).
fn breaks(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_none_or(|pg| fatal(pg.severity())),
        _ => true,
    }
}

fn fatal(severity: PgSeverity) -> bool {
    matches!(severity, PgSeverity::Fatal | PgSeverity::Panic)
}

/// Whether an operation whose reused connection broke may run once more on a new one.
fn worth_retrying(e: &sqlx::Error, idempotent: Idempotent) -> bool {
    match (idempotent, e) {
        (Idempotent::Yes, _) => true,
        // The server ending the session (backend terminated, shutdown, idle timeout):
        // it rolls back what it was running, if anything.
        (Idempotent::No, sqlx::Error::Database(db)) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| fatal(pg.severity())),
        (Idempotent::No, _) => false,
    }
}
