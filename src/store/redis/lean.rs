//! A lean multiplexed connection to one Redis server, used in place of redis-rs's
//! `ConnectionManager` for plain `redis://` URLs.
//!
//! # Why
//!
//! A session read is one pipelined round trip (`GET` + `PTTL`). Under callgrind, the
//! manager's path cost ~15k instructions per round trip (its driver task's sink and
//! stream, the combine-based codec, a channel to that task and a oneshot back), more
//! than the session layer itself. This connection keeps redis-rs for what it is good at
//! (encoding commands, `Value`, `FromRedisValue`, error kinds) and replaces the rest:
//!
//! - no driver task and no channels: the caller that waits longest does the I/O for
//!   everyone (see `wire.rs`), so a lone request is one `write` and one `read` on the
//!   caller's own task, with nothing crossing tasks or threads;
//! - the request is encoded straight into the write buffer, and a resumable RESP2
//!   parser (see `parser.rs`) reads the replies in place.
//!
//! One connection per worker thread (see `local.rs`), on that thread's runtime.
//!
//! # Failures
//!
//! Every call is still bounded by the store's response timeout: its caller's deadline
//! goes with its request, and one timer per connection, armed by whoever drives it,
//! enforces them (see `wire.rs`; a tokio timer per call cost ~1.2k instructions in
//! creating, registering and clearing it). A caller that gives up leaves its reply to
//! be read and dropped, so the next caller still gets its own. An I/O error fails every
//! caller in flight with an I/O `RedisError` (dropped vs refused, as `worth_retrying`
//! tells them apart) and drops the connection; the next call opens a new one (within
//! the connection timeout, no backoff sleeps). A frozen Redis only gives timeouts: the
//! connection stays, and its late replies are read and dropped when it thaws.
//!
//! # The client cache (opt-in: `client_cache(entries)`)
//!
//! Redis's server-assisted client-side caching: the connection speaks RESP3 (`HELLO 3`,
//! with the login inside it), then `CLIENT TRACKING ON NOLOOP`. From then on Redis
//! remembers which keys this connection read and, when one changes (any write, from
//! any client; an expiry; an eviction; `FLUSHDB`), pushes an `invalidate` message on
//! this connection. So a session this thread loaded lately is answered from memory,
//! with no round trip, until Redis says it changed. What is kept (see `cache.rs`): per
//! key, the stored bytes and the key's deadline (now + `PTTL`), so a hit answers
//! exactly what `GET` + `PTTL` would; and, once a caller parsed those very bytes, the
//! parsed record, so repeat reads skip the JSON too.
//!
//! **Order is the whole correctness argument.** Redis writes replies and pushes on one
//! socket in the order its (single) thread produced them. Every cache change is made by
//! whoever reads that socket, while parsing, in socket order: a reply carries the
//! effect of its request (a load's reply fills the entry, a `DEL`'s evicts it; see
//! `Effect`), a push evicts. Nothing is changed later, when a caller's task resumes:
//! by then newer frames may have been applied. Three consequences:
//!
//! - Writes. Redis stops tracking a key for the client that writes it (`NOLOOP` only
//!   mutes the message: `trackingInvalidateKey` in tracking.c drops the key's whole
//!   tracking entry), so what we wrote cannot be cached on trust. A write evicts its
//!   key when sent, and on a tracking connection goes out as `PING`, the write, `GET
//!   key`, `PTTL key` in one batch: the last two fill the entry (tracked again, and
//!   holding what is stored then, even if another client wrote in between); `PING` is
//!   for the ordering below (a `DEL` gets one too). The caller gets the write's own
//!   reply only.
//! - A load whose `GET` was answered and whose `PTTL` was not when an invalidation of
//!   its key arrives is poisoned: it evicts instead of filling.
//! - A connection failure, a reconnection, a protocol error: the cache belongs to the
//!   connection and goes with it (invalidations may have been lost while it was down).
//!
//! **Serving a hit** (`Lean::lookup`): under the connection's lock, first read whatever
//! the kernel already holds for this socket, with a non-blocking `recv` (socket2's
//! `SockRef`; the runtime's `try_read` would trust its own readiness flag, which only
//! knows what the reactor has seen, and a push can land a moment before the reactor
//! looks), and apply it; then, if no request is in flight on the connection, look the
//! key up; an entry is good while its deadline is more than a second ahead. The lock is
//! what makes reading here safe beside the single-driver design: all reading happens
//! under it, so nobody else is reading at that moment; the driver, if there is one, is
//! merely waiting for readiness. Replies this read finishes go to their callers exactly
//! as the driver would hand them over (woken, and the next caller in line woken to
//! drive if the driver's own reply was among them). If the driver then wakes to an
//! empty socket, its read finds nothing and it waits again: epoll reports each new
//! arrival, so nothing is missed.
//!
//! **The guarantee, and where it stops** (checked against Redis 7.0.15's source).
//! Redis queues our invalidation while it runs the writing command (tracking.c:
//! `signalModifiedKey` → `trackingInvalidateKey` → `sendTrackingMessage` appends to our
//! output buffer), and writes every client's queued output in one pass before it reads
//! another command (`beforeSleep` → `handleClientsWithPendingWrites`). That pass walks
//! the clients newest first (networking.c: `putClientInPendingWriteQueue` adds at the
//! head), by when each first had output queued in this round. So:
//!
//! - A change made through a `RedisStore` with the cache on (any thread, any process):
//!   its batch starts with `PING`, so the writer has output queued before our
//!   invalidation is, and Redis writes our invalidation first; on loopback it is in
//!   our receive buffer before the writer can read its reply, and a load that begins
//!   after the write was acknowledged sees it. Two things could have queued output for
//!   us earlier in the same round, putting us behind the writer: a reply to a request
//!   of ours (so a hit needs an idle connection: a reply of ours that was read came in
//!   the same write as any invalidation behind it), or an invalidation caused by a
//!   third client's write in that round (rare, and then as below). Assumed: Redis reads
//!   the write's batch in one go, true for batches under its 16 KiB read size.
//! - A change by another client (`redis-cli`, a Node app, a `RedisStore` without the
//!   cache): Redis writes its reply first and ours a few microseconds later, in the
//!   same pass. A load that begins in between (the writer read its reply and told us
//!   faster than Redis wrote one more socket: possible when Redis is descheduled
//!   between the two writes, on a loaded machine) reads the old value. Measured on a busy 2-core machine, a load handed over from
//!   the writer's thread the instant its reply arrived was stale in 0.2 to 8% of rounds
//!   (after a store's write: 0 in 10,000); once Redis answered anything after the
//!   write (any later command), never.
//! - Across a real network, "in Redis's socket" is not "in ours": the invalidation may
//!   still be in flight when news of the write reaches us by a faster path, so a load
//!   racing an acknowledged write by less than one network delay can read the old
//!   value (as a read from a replica could). One browser's requests are not affected
//!   unless its round trip is shorter than the one-way delay to Redis.
//!
//! Needs Redis 6 or later. A server that refuses `HELLO 3` or `CLIENT TRACKING` (an old
//! Redis, a proxy, an ACL) gets one `warn` line and the connection runs without a cache,
//! on RESP2, as when the option is off.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use redis::{
    Cmd, ConnectionAddr, ErrorKind, Pipeline, ProtocolVersion, RedisError, RedisResult, Value,
};
use tokio::net::TcpStream;

#[path = "lean/cache.rs"]
mod cache;
#[path = "lean/parser.rs"]
mod parser;
#[path = "lean/wire.rs"]
mod wire;

use super::retry::timed_out;
pub(super) use cache::{Effect, Hit};
use wire::{Done, Wire};

use crate::record::SessionRecord;

/// Where a lean connection goes, and how it logs in.
pub(super) struct Server {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    db: i64,
    connect_timeout: Duration,
    /// Sessions cached per connection; 0: no cache.
    cache: usize,
    /// Whether the refusal of the cache was logged already.
    warned: AtomicBool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("connect_timeout", &self.connect_timeout)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Server {
    /// The server a `redis://` URL names, or `None` for what only redis-rs's own
    /// connections speak (TLS, a Unix socket, RESP3).
    ///
    /// # Errors
    /// When the URL is invalid.
    pub(super) fn from_url(url: &str, connect_timeout: Duration) -> RedisResult<Option<Self>> {
        let client = redis::Client::open(url)?;
        let info = client.get_connection_info();
        let settings = info.redis_settings();
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Ok(None);
        };
        if settings.protocol() != ProtocolVersion::RESP2 {
            return Ok(None);
        }
        Ok(Some(Server {
            host: host.clone(),
            port: *port,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
            connect_timeout,
            cache: 0,
            warned: AtomicBool::new(false),
        }))
    }

    /// Whether its connections keep a client cache (when the server lets them).
    pub(super) fn caching(&self) -> bool {
        self.cache > 0
    }

    /// Caches up to `entries` sessions per connection (0: none).
    pub(super) fn client_cache(mut self, entries: usize) -> Self {
        self.cache = entries;
        self
    }

    /// The commands that set a new connection up: `AUTH`, `SELECT`, when needed.
    fn handshake(&self) -> Vec<Cmd> {
        let mut cmds = Vec::new();
        if let Some(password) = &self.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = &self.username {
                auth.arg(username);
            }
            cmds.push(auth.arg(password).clone());
        }
        if self.db != 0 {
            cmds.push(redis::cmd("SELECT").arg(self.db).clone());
        }
        cmds
    }

    /// The RESP3 handshake of a caching connection: `HELLO 3`, with `AUTH` inside it
    /// when there is a login.
    fn hello(&self) -> Cmd {
        let mut hello = redis::cmd("HELLO");
        hello.arg(3);
        if let Some(password) = &self.password {
            let user = self.username.as_deref().unwrap_or("default");
            hello.arg("AUTH").arg(user).arg(password);
        }
        hello
    }

    /// A new connection, logged in, within the connection timeout.
    async fn open(&self) -> RedisResult<Wire> {
        let deadline = Instant::now() + self.connect_timeout;
        let open = async {
            let stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
            stream.set_nodelay(true)?;
            let mut wire = Wire::new(stream);
            if self.cache > 0 && self.track(&mut wire, deadline).await? {
                wire.cache(self.cache);
                return Ok(wire);
            }
            let hello = self.handshake();
            if !hello.is_empty() {
                Value::Array(exchange(&mut wire, &hello, deadline).await?).extract_error()?;
            }
            Ok(wire)
        };
        tokio::time::timeout_at(deadline.into(), open)
            .await
            .unwrap_or_else(|_| {
                let e = io::Error::new(io::ErrorKind::TimedOut, "connecting to redis timed out");
                Err(e.into())
            })
    }
}

impl Server {
    /// Turns tracking on: RESP3 and the login (`HELLO 3`), the database, then `CLIENT
    /// TRACKING ON NOLOOP`. Whether it is on; when the server refused (warned once per
    /// store), the connection is left as without a cache: RESP2, logged in, on its
    /// database.
    ///
    /// # Errors
    /// An I/O error, a wrong or missing login, or a database the server refuses.
    async fn track(&self, wire: &mut Wire, deadline: Instant) -> RedisResult<bool> {
        let [hello] = one(exchange(wire, &[self.hello()], deadline).await?)?;
        match hello.extract_error() {
            Err(e) if matches!(e.code(), Some("WRONGPASS" | "NOAUTH")) => return Err(e),
            Err(e) => {
                self.refused("HELLO 3", &e);
                let login = self.handshake();
                if !login.is_empty() {
                    Value::Array(exchange(wire, &login, deadline).await?).extract_error()?;
                }
                return Ok(false);
            }
            Ok(_) => {}
        }
        let mut setup = Vec::new();
        if self.db != 0 {
            setup.push(redis::cmd("SELECT").arg(self.db).clone());
        }
        setup.push(
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("NOLOOP")
                .clone(),
        );
        let mut replies = exchange(wire, &setup, deadline).await?;
        let tracking = replies.pop().unwrap_or(Value::Nil);
        Value::Array(replies).extract_error()?;
        let Err(e) = tracking.extract_error() else {
            return Ok(true);
        };
        self.refused("CLIENT TRACKING", &e);
        let hello2 = [redis::cmd("HELLO").arg(2).clone()];
        let [back] = one(exchange(wire, &hello2, deadline).await?)?;
        back.extract_error()?;
        Ok(false)
    }

    /// Logs, once per store, that the server refused the client cache.
    fn refused(&self, what: &str, e: &RedisError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "redis: client_cache is off, the server refused `{what}` ({e}); sessions are \
                 read from Redis every time (the cache needs Redis 6 or later, reached \
                 directly)"
            );
        }
    }
}

/// Sends `cmds` on a connection nobody else uses yet and waits for their replies (the
/// caller bounds the wait by `deadline`).
async fn exchange(wire: &mut Wire, cmds: &[Cmd], deadline: Instant) -> RedisResult<Vec<Value>> {
    let encode = |out: &mut Vec<u8>| cmds.iter().for_each(|c| c.write_packed_command(out));
    wire.push(0, deadline, encode, cmds.len(), Effect::None);
    let mut done = Vec::new();
    std::future::poll_fn(|cx| match wire.drive(cx, &mut done, 0) {
        Err(e) => Poll::Ready(Err(e)),
        Ok(_) => done
            .pop()
            .map_or(Poll::Pending, |(_, r)| Poll::Ready(Ok(r))),
    })
    .await?
}

/// The one reply of a one-command exchange.
fn one(replies: Vec<Value>) -> RedisResult<[Value; 1]> {
    replies
        .try_into()
        .map_err(|_| super::conn::unexpected("not one reply to one command"))
}

/// The connection's state: shared by the callers of one thread.
#[derive(Debug, Default)]
struct State {
    /// The open connection; `None` until the next call opens one.
    wire: Option<Wire>,
    /// The ticket of the next request.
    next: u64,
    /// Finished requests whose callers have not taken the result yet.
    done: Vec<Done>,
}

impl State {
    fn take(&mut self, ticket: u64) -> Option<RedisResult<Vec<Value>>> {
        let at = self.done.iter().position(|(t, _)| *t == ticket)?;
        Some(self.done.swap_remove(at).1)
    }

    /// The connection failed: every caller in flight gets the error, and the next call
    /// opens a new connection.
    fn fail(&mut self, error: &io::Error) {
        if let Some(wire) = self.wire.take() {
            wire.fail(error, &mut self.done);
        }
    }
}

/// One lean connection (opened again after a failure, on the next call).
#[derive(Debug)]
pub(super) struct Lean {
    server: Arc<Server>,
    state: Mutex<State>,
    /// One connection attempt at a time; the others wait for it and use its result.
    connecting: tokio::sync::Mutex<()>,
}

impl Lean {
    /// A connection to `server`, opened on first use.
    pub(super) fn new(server: Arc<Server>) -> Self {
        Lean {
            server,
            state: Mutex::new(State {
                next: 1,
                ..State::default()
            }),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// Opens the connection now, unless it is open.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the login or database.
    pub(super) async fn connect(&self) -> RedisResult<()> {
        let _one_at_a_time = self.connecting.lock().await;
        if self.lock().wire.as_ref().is_some_and(Wire::alive) {
            return Ok(());
        }
        let wire = self.server.open().await?;
        self.lock().wire = Some(wire);
        Ok(())
    }

    /// The cached session under `key`, after applying whatever the socket already
    /// holds (read without waiting); `None` when it is not cached (see the module docs).
    pub(super) fn lookup(&self, key: &[u8]) -> Option<Hit> {
        let mut state = self.lock();
        let state = &mut *state;
        let wire = state.wire.as_mut().filter(|w| w.caching())?;
        match wire.receive_now(&mut state.done) {
            Ok(finished) => {
                if finished {
                    wire.wake_driver();
                }
                wire.cached(key)
            }
            Err(e) => {
                state.fail(&e);
                None
            }
        }
    }

    /// Keeps `record`, parsed from `value`, on `key`'s entry if it still holds `value`.
    pub(super) fn remember(&self, key: &[u8], value: &[u8], record: &Arc<SessionRecord>) {
        if let Some(wire) = self.lock().wire.as_mut() {
            wire.remember(key, value, record);
        }
    }

    /// Sends `cmd` and waits for its reply until `deadline` (a server error is left in
    /// the value, as redis-rs's `req_packed_command` leaves it).
    ///
    /// # Errors
    /// An I/O error: the connection failed (or could not be opened); or a timeout.
    pub(super) async fn query(
        &self,
        cmd: &Cmd,
        effect: Effect<'_>,
        deadline: Instant,
    ) -> RedisResult<Value> {
        let encode = |out: &mut Vec<u8>| cmd.write_packed_command(out);
        self.send_one(encode, effect, deadline).await
    }

    /// Sends one command of plain arguments, written straight into the buffer, and waits
    /// for its reply until `deadline` (a server error is left in the value, as
    /// [`query`](Self::query) leaves it).
    ///
    /// # Errors
    /// An I/O error: the connection failed (or could not be opened); or a timeout.
    pub(super) async fn query_args(
        &self,
        args: &[&[u8]],
        effect: Effect<'_>,
        deadline: Instant,
    ) -> RedisResult<Value> {
        let encode = |out: &mut Vec<u8>| wire::encode_command(out, args);
        self.send_one(encode, effect, deadline).await
    }

    /// Queues one command and waits for its reply until `deadline`.
    async fn send_one(
        &self,
        encode: impl Fn(&mut Vec<u8>),
        effect: Effect<'_>,
        deadline: Instant,
    ) -> RedisResult<Value> {
        let mut replies = self.send(encode, 1, effect, deadline).await?;
        replies
            .pop()
            .ok_or_else(|| super::conn::unexpected("no reply to a command"))
    }

    /// Sends commands of plain arguments in one go, written straight into the buffer,
    /// and waits for their replies until `deadline`, in order (server errors among them
    /// are left for the caller to extract).
    ///
    /// # Errors
    /// An I/O error: the connection failed (or could not be opened); or a timeout.
    pub(super) async fn query_commands(
        &self,
        cmds: &[&[&[u8]]],
        effect: Effect<'_>,
        deadline: Instant,
    ) -> RedisResult<Vec<Value>> {
        let encode = |out: &mut Vec<u8>| cmds.iter().for_each(|c| wire::encode_command(out, c));
        self.send(encode, cmds.len(), effect, deadline).await
    }

    /// Sends the commands of `pipe` in one go and waits for their replies until
    /// `deadline`, in order (server errors among them are left for the caller to extract).
    ///
    /// # Errors
    /// An I/O error or a timeout; or the pipeline is a transaction (`MULTI`/`EXEC` is not
    /// sent here).
    pub(super) async fn query_pipeline(
        &self,
        pipe: &Pipeline,
        effect: Effect<'_>,
        deadline: Instant,
    ) -> RedisResult<Vec<Value>> {
        if pipe.is_transaction() {
            return Err(redis::RedisError::from((
                ErrorKind::InvalidClientConfig,
                "a transaction is not sent on the lean connection",
            )));
        }
        if pipe.is_empty() {
            return Ok(Vec::new());
        }
        let encode = |out: &mut Vec<u8>| pipe.cmd_iter().for_each(|c| c.write_packed_command(out));
        self.send(encode, pipe.len(), effect, deadline).await
    }

    /// Queues a request of `replies` replies (opening the connection first if needed)
    /// and waits for them until `deadline`.
    async fn send(
        &self,
        encode: impl Fn(&mut Vec<u8>),
        replies: usize,
        effect: Effect<'_>,
        deadline: Instant,
    ) -> RedisResult<Vec<Value>> {
        let ticket = match self.enqueue(deadline, &encode, replies, effect) {
            Some(ticket) => ticket,
            None => {
                // Boxed: connecting is rare, and its future would otherwise be part of
                // every command's.
                let connect = tokio::time::timeout_at(deadline.into(), self.connect());
                Box::pin(connect).await.map_err(|_| timed_out())??;
                self.enqueue(deadline, &encode, replies, effect)
                    .ok_or_else(gone)?
            }
        };
        Reply {
            lean: self,
            ticket,
            finished: false,
        }
        .await
    }

    /// Queues a request on the open connection; `None` when there is none (or Redis
    /// closed it while idle).
    fn enqueue(
        &self,
        deadline: Instant,
        encode: &impl Fn(&mut Vec<u8>),
        replies: usize,
        effect: Effect<'_>,
    ) -> Option<u64> {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(wire) = state.wire.as_mut().filter(|w| w.alive()) else {
            state.wire = None;
            return None;
        };
        let ticket = state.next;
        state.next += 1;
        wire.push(ticket, deadline, encode, replies, effect);
        Some(ticket)
    }

    /// The reply of `ticket`, if in; the caller drives the connection when it is first
    /// in line (and keeps the connection's timer while it waits).
    fn poll_reply(&self, ticket: u64, cx: &mut Context<'_>) -> Poll<RedisResult<Vec<Value>>> {
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(result) = state.take(ticket) {
            return Poll::Ready(result);
        }
        let Some(wire) = state.wire.as_mut() else {
            return Poll::Ready(Err(gone()));
        };
        let Some(at) = wire.position(ticket) else {
            return Poll::Ready(Err(gone()));
        };
        wire.set_waker(at, cx.waker());
        if wire.driver() != Some(at) {
            return Poll::Pending;
        }
        match wire.drive(cx, &mut state.done, ticket) {
            Ok(true) => {}
            Ok(false) => wire.expire(cx, &mut state.done),
            Err(e) => state.fail(&e),
        }
        let Some(result) = state.take(ticket) else {
            return Poll::Pending;
        };
        if let Some(wire) = &state.wire {
            wire.wake_driver();
        }
        Poll::Ready(result)
    }

    /// The caller of `ticket` gave up.
    fn abandon(&self, ticket: u64) {
        let mut state = self.lock();
        if state.take(ticket).is_none() {
            if let Some(wire) = state.wire.as_mut() {
                wire.abandon(ticket);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock can panic half-way; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A caller waiting for its reply. Dropped before the reply came (a timeout), it
/// leaves its place in line to be read and discarded.
#[derive(Debug)]
struct Reply<'a> {
    lean: &'a Lean,
    ticket: u64,
    finished: bool,
}

impl std::future::Future for Reply<'_> {
    type Output = RedisResult<Vec<Value>>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = self.lean.poll_reply(self.ticket, cx);
        self.finished = polled.is_ready();
        polled
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.lean.abandon(self.ticket);
        }
    }
}

/// The connection went away under a request that had not been sent (or answered).
fn gone() -> redis::RedisError {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection to redis closed",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_go_lean_and_the_rest_stays_with_redis_rs() {
        let t = Duration::from_millis(100);
        let server = Server::from_url("redis://bob:pw@127.0.0.1:6380/4", t)
            .expect("valid")
            .expect("lean");
        assert_eq!(
            (server.host.as_str(), server.port, server.db),
            ("127.0.0.1", 6380, 4)
        );
        assert_eq!(server.username.as_deref(), Some("bob"));
        let debug = format!("{server:?}");
        assert!(
            !debug.contains("pw") && debug.contains("<redacted>"),
            "{debug}"
        );
        assert_eq!(server.handshake().len(), 2, "AUTH and SELECT");
        let plain = Server::from_url("redis://127.0.0.1", t)
            .expect("valid")
            .expect("lean");
        assert!(plain.handshake().is_empty(), "nothing to set up");
        for other in [
            "redis+unix:///tmp/redis.sock",
            "redis://127.0.0.1/?protocol=resp3",
        ] {
            assert!(
                Server::from_url(other, t).expect("valid").is_none(),
                "{other}"
            );
        }
        assert!(Server::from_url("not a url", t).is_err());
    }

    #[test]
    fn the_caching_handshake_logs_in_inside_hello() {
        let t = Duration::from_millis(100);
        let text = |c: Cmd| String::from_utf8_lossy(&c.get_packed_command()).into_owned();
        let server = Server::from_url("redis://bob:pw@127.0.0.1:6380/4", t)
            .expect("valid")
            .expect("lean")
            .client_cache(10);
        assert!(server.caching());
        let hello = text(server.hello());
        assert!(hello.contains("HELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$3\r\nbob\r\n$2\r\npw"));
        let anonymous = Server::from_url("redis://:pw@127.0.0.1", t)
            .expect("valid")
            .expect("lean");
        assert!(!anonymous.caching(), "off by default");
        assert!(text(anonymous.hello()).contains("$7\r\ndefault\r\n$2\r\npw"));
        let open = Server::from_url("redis://127.0.0.1", t)
            .expect("valid")
            .expect("lean");
        assert!(!text(open.hello()).contains("AUTH"));
    }
}
