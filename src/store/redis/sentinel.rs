//! Redis Sentinel: every command goes to the primary the sentinels name for a service,
//! and a failure that says the primary moved, or a sentinel's announcement, makes the
//! store ask them again.
//!
//! # Why not `redis::sentinel` (redis 1.x, feature "sentinel")
//!
//! Its `Sentinel::async_master_for` finds the primary once; nothing in it follows a
//! failover (there is no connection manager over it), so the following would be ours
//! anyway. Its lookup also does not fit our timeout rules: it opens every connection with
//! the driver's default timeouts (1 s connect, 500 ms response) instead of the builder's,
//! takes the sentinels' answers in the configured order (a stalled first sentinel holds
//! up the others' answers), needs `&mut` (one lock around all lookups) and caches its
//! sentinel connections on whichever runtime first used them. What it does is small:
//! ask a sentinel, check the named node with `ROLE`; done here with the store's timeouts.
//!
//! # How a failover is followed
//!
//! The primary is found by asking every sentinel at once (see `resolve.rs`), and reached
//! through the standalone connections (one [`ConnectionManager`] per worker thread, see
//! `local.rs`). A new resolution starts when:
//!
//! - a command fails with a connection error, or with `READONLY`/`MASTERDOWN` (the node
//!   is a replica now, e.g. the old primary back after a failover);
//! - a command times out: the primary is suspect, and the next command waits for the
//!   resolution that starts then;
//! - a sentinel announces `+switch-master` (see `watch.rs`): that resolution tries the
//!   announced address first.
//!
//! One resolution runs at a time: callers that fail meanwhile wait for it and share its
//! result, and it runs in a task of its own, so a caller that gives up (its timeout)
//! does not cancel it. A command is sent again to the new primary only when that is
//! safe: it never ran (`READONLY`, a refused connection) or it is [`Idempotent::Yes`].

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisConnectionInfo, RedisError, RedisResult, ServerErrorKind, Value};

use super::local::PerThread;
use super::retry::{manager_config, within, worth_retrying, Idempotent};

#[path = "resolve.rs"]
mod resolve;
#[path = "watch.rs"]
mod watch;

use resolve::Resolver;

/// A node's address, as the sentinels give it.
type Addr = (String, u16);

/// One primary and this store's connections to it.
struct Primary {
    addr: Addr,
    conns: PerThread,
}

impl Primary {
    async fn send<T, Fut>(&self, send: &impl Fn(ConnectionManager) -> Fut) -> RedisResult<T>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        send(self.conns.get().await?).await
    }
}

/// A resolution under way; every caller that waits for it gets its result.
type Resolution = Shared<BoxFuture<'static, RedisResult<Arc<Primary>>>>;

/// The resolution under way, numbered: only the latest one installs its result.
struct Pending {
    id: u64,
    resolution: Resolution,
}

struct State {
    current: Arc<Primary>,
    pending: Option<Pending>,
    /// Resolutions started so far.
    started: u64,
}

struct Inner {
    resolver: Arc<Resolver>,
    state: Mutex<State>,
}

/// The primary of one sentinel-monitored service, followed across failovers. Clones
/// share the primary and the resolution under way.
#[derive(Clone)]
pub(super) struct Failover(Arc<Inner>);

impl Failover {
    /// Asks the sentinels at `urls` for the primary of `service`, connects to it, and
    /// starts listening for failovers (see `watch.rs`).
    pub(super) async fn connect(
        urls: Vec<String>,
        service: &str,
        primary: RedisConnectionInfo,
        connect: Duration,
        respond: Duration,
    ) -> RedisResult<Self> {
        let resolver = Arc::new(Resolver::new(&urls, service, primary, connect, respond)?);
        let current = resolver.locate(None, None).await?;
        let state = Mutex::new(State {
            current,
            pending: None,
            started: 0,
        });
        let failover = Failover(Arc::new(Inner { resolver, state }));
        watch::spawn(
            Arc::clone(&failover.0.resolver),
            Arc::downgrade(&failover.0),
        );
        Ok(failover)
    }

    /// Runs one command (or pipeline) on the primary: `send` writes it on a connection.
    /// Bounded by `timeout`, the wait for a resolution included.
    pub(super) async fn run<T, Fut>(
        &self,
        idempotent: Idempotent,
        timeout: Duration,
        send: impl Fn(ConnectionManager) -> Fut,
    ) -> RedisResult<T>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        let seen = self.state().current.clone();
        let call = async {
            let primary = self.primary().await;
            let e = match primary.send(&send).await {
                Err(e) if moved(&e) => e,
                done => return done,
            };
            // The original error is the caller's; a failed resolution logs its own.
            let Ok(fresh) = self.resolve_after(&primary).await else {
                return Err(e);
            };
            if never_ran(&e) || worth_retrying(&e, idempotent) {
                fresh.send(&send).await
            } else {
                Err(e)
            }
        };
        let result = within(timeout, call).await;
        if matches!(&result, Err(e) if e.is_timeout()) {
            self.suspect(&seen);
        }
        result
    }

    /// Where the next command goes: the primary found by the resolution under way, if
    /// one is (else, or if it fails, the current one).
    async fn primary(&self) -> Arc<Primary> {
        let (current, pending) = {
            let state = self.state();
            let pending = state.pending.as_ref().map(|p| p.resolution.clone());
            (state.current.clone(), pending)
        };
        match pending {
            Some(resolution) => resolution.await.unwrap_or(current),
            None => current,
        }
    }

    /// The primary after `failed` failed: another caller's newer one, the result of the
    /// resolution under way, or of one started now.
    async fn resolve_after(&self, failed: &Arc<Primary>) -> RedisResult<Arc<Primary>> {
        let resolution = {
            let mut state = self.state();
            if !Arc::ptr_eq(&state.current, failed) {
                return Ok(state.current.clone());
            }
            let pending = match state.pending.take() {
                Some(pending) => pending,
                None => self.begin(&mut state, None),
            };
            let resolution = pending.resolution.clone();
            state.pending = Some(pending);
            resolution
        };
        resolution.await
    }

    /// A command on `seen` timed out: unless the primary changed since, a resolution
    /// starts, which the next command waits for.
    fn suspect(&self, seen: &Arc<Primary>) {
        let mut state = self.state();
        if Arc::ptr_eq(&state.current, seen) && state.pending.is_none() {
            let pending = self.begin(&mut state, None);
            state.pending = Some(pending);
        }
    }

    /// A sentinel announced `addr` as the new primary: a resolution that checks it first
    /// replaces any under way (which may be asking sentinels that do not know yet).
    fn switched_to(&self, addr: Addr) {
        let mut state = self.state();
        if state.current.addr != addr {
            let pending = self.begin(&mut state, Some(addr));
            state.pending = Some(pending);
        }
    }

    /// A new resolution (trying `hint` first), driven by a task of its own so that it
    /// finishes, and is installed, even when every caller waiting for it gives up first.
    fn begin(&self, state: &mut State, hint: Option<Addr>) -> Pending {
        state.started += 1;
        let id = state.started;
        let resolver = Arc::clone(&self.0.resolver);
        let current = state.current.clone();
        let resolution = resolve(resolver, Arc::downgrade(&self.0), current, hint, id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(resolution.clone());
        }
        Pending { id, resolution }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Resolution `id`, from `current`: once done, unless a later one replaced it, it
/// installs what it found (or nothing) and makes room for the next one.
fn resolve(
    resolver: Arc<Resolver>,
    failover: Weak<Inner>,
    current: Arc<Primary>,
    hint: Option<Addr>,
    id: u64,
) -> Resolution {
    async move {
        let found = resolver.locate(Some(&current), hint).await;
        let Some(failover) = failover.upgrade() else {
            return found;
        };
        let mut state = failover
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if state.pending.as_ref().is_some_and(|p| p.id == id) {
            state.pending = None;
            if let Ok(primary) = &found {
                state.current = primary.clone();
            }
            log(&resolver.service, &current, &found);
        }
        found
    }
    .boxed()
    .shared()
}

fn log(service: &str, old: &Primary, found: &RedisResult<Arc<Primary>>) {
    match found {
        Ok(new) if new.addr != old.addr => tracing::warn!(
            service,
            "redis sentinel: the primary moved from {}:{} to {}:{}",
            old.addr.0,
            old.addr.1,
            new.addr.0,
            new.addr.1,
        ),
        Ok(_) => {}
        // Repeated while the sentinels still name a dead primary; each failed command
        // is logged by the middleware anyway.
        Err(e) => tracing::debug!(service, "redis sentinel: no primary found: {e}"),
    }
}

/// Whether `e` may mean that the primary is elsewhere now: the connection failed (or
/// timed out), or the node answered as a replica.
fn moved(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || never_ran(e)
}

/// A replica's refusal: the command did not run, so sending it to the new primary is safe.
fn never_ran(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
    )
}

/// The replies of a pipeline, or the refusal of a replica among them as the error (so
/// that a pipeline follows a failover as a single command does).
pub(super) fn replica_refusal(replies: Vec<Value>) -> RedisResult<Vec<Value>> {
    let refused = replies.iter().find_map(|v| match v {
        Value::ServerError(e) => Some(RedisError::from(e.clone())).filter(never_ran),
        _ => None,
    });
    refused.map_or(Ok(replies), Err)
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind as Io};

    use super::*;

    fn server(reply: &[u8]) -> RedisError {
        let value = redis::parse_redis_value(reply).expect("a RESP error");
        value.extract_error().expect_err("an error reply")
    }

    #[test]
    fn a_replica_refusal_means_the_primary_moved_and_the_command_never_ran() {
        for reply in [
            &b"-READONLY You can't write against a read only replica.\r\n"[..],
            b"-MASTERDOWN Link with MASTER is down\r\n",
        ] {
            let e = server(reply);
            assert!(moved(&e) && never_ran(&e), "{e:?}");
        }
    }

    #[test]
    fn connection_failures_move_but_may_have_run() {
        for kind in [Io::ConnectionRefused, Io::ConnectionReset, Io::TimedOut] {
            let e = RedisError::from(Error::from(kind));
            assert!(moved(&e) && !never_ran(&e), "{kind:?}");
        }
    }

    #[test]
    fn other_server_errors_stay_where_they_are() {
        for reply in [
            &b"-WRONGTYPE Operation\r\n"[..],
            b"-NOSCRIPT No matching\r\n",
        ] {
            assert!(!moved(&server(reply)));
        }
    }

    #[test]
    fn a_pipeline_refused_by_a_replica_fails_as_a_whole() {
        let refused = redis::parse_redis_value(b"-READONLY no\r\n").expect("parses");
        let replies = vec![Value::Nil, refused];
        let e = replica_refusal(replies).expect_err("refused");
        assert!(never_ran(&e));
        let other = redis::parse_redis_value(b"-WRONGTYPE no\r\n").expect("parses");
        let replies = vec![Value::Int(1), other];
        assert_eq!(replica_refusal(replies).expect("kept").len(), 2);
    }
}
