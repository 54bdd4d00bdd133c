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
//! Every call is still bounded by the store's response timeout (`within` in `retry.rs`).
//! A caller that gives up leaves its reply to be read and dropped, so the next caller
//! still gets its own. An I/O error fails every caller in flight with an I/O
//! `RedisError` (dropped vs refused, as `worth_retrying` tells them apart) and drops the
//! connection; the next call opens a new one (within the connection timeout, no backoff
//! sleeps). A frozen Redis only gives timeouts: the connection stays, and its late
//! replies are read and dropped when it thaws.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use redis::{Cmd, ConnectionAddr, ErrorKind, Pipeline, ProtocolVersion, RedisResult, Value};
use tokio::net::TcpStream;

#[path = "lean/parser.rs"]
mod parser;
#[path = "lean/wire.rs"]
mod wire;

use wire::{Done, Wire};

/// Where a lean connection goes, and how it logs in.
pub(super) struct Server {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    db: i64,
    connect_timeout: Duration,
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
        }))
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

    /// A new connection, logged in, within the connection timeout.
    async fn open(&self) -> RedisResult<Wire> {
        let open = async {
            let stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
            stream.set_nodelay(true)?;
            let mut wire = Wire::new(stream);
            let hello = self.handshake();
            if !hello.is_empty() {
                let encode =
                    |out: &mut Vec<u8>| hello.iter().for_each(|c| c.write_packed_command(out));
                wire.push(0, encode, hello.len());
                let mut done = Vec::new();
                let replies = std::future::poll_fn(|cx| match wire.drive(cx, &mut done, 0) {
                    Err(e) => Poll::Ready(Err(e)),
                    Ok(()) => done
                        .pop()
                        .map_or(Poll::Pending, |(_, r)| Poll::Ready(Ok(r))),
                })
                .await??;
                Value::Array(replies).extract_error()?;
            }
            Ok(wire)
        };
        tokio::time::timeout(self.connect_timeout, open)
            .await
            .unwrap_or_else(|_| {
                let e = io::Error::new(io::ErrorKind::TimedOut, "connecting to redis timed out");
                Err(e.into())
            })
    }
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

    /// Sends `cmd` and waits for its reply (a server error is left in the value, as
    /// redis-rs's `req_packed_command` leaves it).
    ///
    /// # Errors
    /// An I/O error: the connection failed (or could not be opened).
    pub(super) async fn query(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut replies = self.send(|out| cmd.write_packed_command(out), 1).await?;
        replies
            .pop()
            .ok_or_else(|| super::conn::unexpected("no reply to a command"))
    }

    /// Sends the commands of `pipe` in one go and waits for their replies, in order
    /// (server errors among them are left for the caller to extract).
    ///
    /// # Errors
    /// An I/O error; or the pipeline is a transaction (`MULTI`/`EXEC` is not sent here).
    pub(super) async fn query_pipeline(&self, pipe: &Pipeline) -> RedisResult<Vec<Value>> {
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
        self.send(encode, pipe.len()).await
    }

    /// Queues a request of `replies` replies (opening the connection first if needed)
    /// and waits for them.
    async fn send(&self, encode: impl Fn(&mut Vec<u8>), replies: usize) -> RedisResult<Vec<Value>> {
        let ticket = match self.enqueue(&encode, replies) {
            Some(ticket) => ticket,
            None => {
                self.connect().await?;
                self.enqueue(&encode, replies).ok_or_else(gone)?
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
    fn enqueue(&self, encode: &impl Fn(&mut Vec<u8>), replies: usize) -> Option<u64> {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(wire) = state.wire.as_mut().filter(|w| w.alive()) else {
            state.wire = None;
            return None;
        };
        let ticket = state.next;
        state.next += 1;
        wire.push(ticket, encode, replies);
        Some(ticket)
    }

    /// The reply of `ticket`, if in; the caller drives the connection when it is first
    /// in line.
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
        if let Err(e) = wire.drive(cx, &mut state.done, ticket) {
            state.fail(&e);
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
}
