//! One open TCP connection to Redis: the bytes waiting to go out, the bytes read and not
//! yet parsed, and who waits for which reply (replies come back in the order the
//! requests went out).
//!
//! Only one caller does I/O at a time, the *driver*: the oldest caller still waiting.
//! It writes every queued request in one batch, reads, parses every whole reply and
//! hands each to its caller. When its own reply is in, it hands the role to the next
//! caller in line (a wake-up) and stops reading, so a lone request costs one write and
//! one read. A caller that gave up (its timeout, a dropped request) stays in line as
//! *abandoned*: its reply is still read, then thrown away, so the stream never slips.
//!
//! Each request carries its caller's deadline. One timer per connection bounds the
//! waits: the driver arms it for its own deadline while it waits (re-armed, not made
//! anew, as the role passes on), and when it fires every caller whose deadline has
//! passed gets a timeout and is abandoned. Callers queue in the order they started, so
//! the driver's deadline is the earliest and nobody waits past their own; the exception
//! is a call sent again after a reconnection, which may queue behind newer calls and
//! then waits at most until the driver's deadline, one timeout later at worst.
//!
//! With the client cache on (see `cache.rs`), the reader also keeps the cache: a
//! request's effect is applied when its last reply is parsed (abandoned or not), and a
//! push is routed to the cache, never to a caller. A caller about to serve a load from
//! the cache first reads whatever the socket already holds ([`Wire::receive_now`]).

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Read};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use redis::{PushKind, RedisResult, Value};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::cache::{Cache, Effect, Hit, Pending};
use super::parser::Parser;
use crate::record::SessionRecord;
use crate::store::redis_store::retry::timed_out;

/// The read buffer's size when a connection opens, and after a large reply is done.
const BUFFER: usize = 16 * 1024;
/// Never read into less room than this: the buffer is compacted or grown first.
const MIN_READ: usize = 4 * 1024;
/// A buffer grown past this by a large reply is given back once it is empty.
const MAX_IDLE: usize = 256 * 1024;

/// A finished request: its ticket and its replies (or why there are none).
pub(super) type Done = (u64, RedisResult<Vec<Value>>);

/// A request sent (or queued) whose replies have not all arrived.
#[derive(Debug)]
struct Waiting {
    ticket: u64,
    /// When its caller stops waiting.
    deadline: Instant,
    replies: usize,
    waker: Option<Waker>,
    abandoned: bool,
    /// What its replies do to the cache (only while the connection caches).
    effect: Option<Pending>,
    /// Sent after a `PING`, whose reply is not its caller's.
    fenced: bool,
    /// An invalidation of the key it fills came between its replies: what it read may
    /// be stale already, so it evicts instead of filling.
    poisoned: bool,
}

/// An open connection and its queues.
#[derive(Debug)]
pub(super) struct Wire {
    stream: TcpStream,
    /// Encoded requests; `out[written..]` has not been written yet.
    out: Vec<u8>,
    written: usize,
    /// Bytes read; `input[start..end]` has not been parsed yet (the rest is room).
    input: Vec<u8>,
    start: usize,
    end: usize,
    parser: Parser,
    /// The requests still waiting, in the order they were queued.
    waiting: VecDeque<Waiting>,
    /// The replies read so far for the first waiting request.
    replies: Vec<Value>,
    /// The sessions cached while Redis tracks keys for this connection; `None` when the
    /// cache is off (or the server refused tracking).
    cache: Option<Cache>,
    /// The one timer of the connection's waits, made on the first wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Wire {
    /// A connection on `stream`, with nothing in flight.
    pub(super) fn new(stream: TcpStream) -> Self {
        Wire {
            stream,
            out: Vec::with_capacity(BUFFER),
            written: 0,
            input: vec![0; BUFFER],
            start: 0,
            end: 0,
            parser: Parser::default(),
            waiting: VecDeque::new(),
            replies: Vec::new(),
            cache: None,
            timer: None,
        }
    }

    /// Keeps a cache of at most `entries` sessions from now on: Redis tracks the keys
    /// this connection reads.
    pub(super) fn cache(&mut self, entries: usize) {
        self.cache = Some(Cache::new(entries));
    }

    /// Whether this connection caches.
    pub(super) fn caching(&self) -> bool {
        self.cache.is_some()
    }

    /// False when Redis closed an idle connection (a restart, `CLIENT KILL`, an idle
    /// timeout): a request must then go to a new connection, since on this one it would
    /// be lost after leaving. Costs no system call: it reads the readiness the runtime
    /// already recorded. Only asked while nothing is in flight.
    pub(super) fn alive(&self) -> bool {
        if !self.waiting.is_empty() {
            return true;
        }
        let ready = pin!(self.stream.ready(Interest::READABLE));
        match ready.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(ready)) => !(ready.is_read_closed() || ready.is_error()),
            Poll::Ready(Err(_)) => false,
            Poll::Pending => true,
        }
    }

    /// Queues a request of `replies` replies, encoded by `encode`, whose caller waits
    /// until `deadline`, and applies its effect on the cache as far as sending goes (a
    /// write evicts its key now, and is followed by `GET` and `PTTL` of it). When it is
    /// not the driver's own, the driver is woken to write it (with whatever else is
    /// queued by then: one write for the whole batch).
    pub(super) fn push(
        &mut self,
        ticket: u64,
        deadline: Instant,
        encode: impl FnOnce(&mut Vec<u8>),
        replies: usize,
        effect: Effect<'_>,
    ) {
        let idle_out = self.written == self.out.len();
        let effect = self.sent(effect);
        // Before a write, so that Redis writes the invalidations it causes before it
        // writes our reply (see `lean.rs`).
        let fenced = effect
            .as_ref()
            .is_some_and(|e| !matches!(e, Pending::Load(_)));
        if fenced {
            self.out.extend_from_slice(PING);
        }
        encode(&mut self.out);
        let mut replies = replies + usize::from(fenced);
        if let Some(Pending::Reload(key)) = &effect {
            encode_load(&mut self.out, key);
            replies += 2;
        }
        if idle_out {
            if let Some(driver) = self.driver() {
                wake(&self.waiting[driver].waker);
            }
        }
        self.waiting.push_back(Waiting {
            ticket,
            deadline,
            replies,
            waker: None,
            abandoned: false,
            effect,
            fenced,
            poisoned: false,
        });
    }

    /// What a request being sent does to the cache now, and what it leaves for its
    /// replies.
    fn sent(&mut self, effect: Effect<'_>) -> Option<Pending> {
        let cache = self.cache.as_mut()?;
        match effect {
            Effect::None => None,
            Effect::Load(key) => {
                cache.evict(key);
                Some(Pending::Load(key.into()))
            }
            Effect::Write(key) => {
                cache.evict(key);
                Some(Pending::Reload(key.into()))
            }
            Effect::Delete(key) => {
                cache.evict(key);
                Some(Pending::Evict(key.into()))
            }
            Effect::Flush => {
                cache.flush();
                Some(Pending::Flush)
            }
        }
    }

    /// The cached session under `key`, after everything already received was read and
    /// applied; `None` when not cached, when the connection does not cache, or while
    /// requests are in flight (an invalidation may then be queued behind their replies,
    /// which Redis may write after it answered the writer: see `lean.rs`).
    pub(super) fn cached(&mut self, key: &[u8]) -> Option<Hit> {
        if !self.waiting.is_empty() {
            return None;
        }
        self.cache.as_mut()?.get(key, Instant::now())
    }

    /// Keeps `record` as the parsed form of `key`'s entry, if it still holds `value`.
    pub(super) fn remember(&mut self, key: &[u8], value: &[u8], record: &Arc<SessionRecord>) {
        if let Some(cache) = self.cache.as_mut() {
            cache.remember(key, value, record);
        }
    }

    /// Reads and applies whatever the socket holds now, without waiting: a real
    /// `recv` (the runtime's readiness only knows what its reactor has seen, which may
    /// be behind what the kernel has). Replies it finishes go to `done` and their
    /// callers are woken; whether any did (the driver may have changed).
    ///
    /// # Errors
    /// An I/O or protocol failure, or Redis closed the connection.
    pub(super) fn receive_now(&mut self, done: &mut Vec<Done>) -> io::Result<bool> {
        let before = done.len();
        loop {
            self.make_room();
            let socket = socket2::SockRef::from(&self.stream);
            match (&*socket).read(&mut self.input[self.end..]) {
                Ok(0) => return Err(closed_by_redis()),
                Ok(read) => {
                    self.end += read;
                    self.deliver(done, 0)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done.len() > before)
    }

    /// Where `ticket` is in the line, if it is still waiting.
    pub(super) fn position(&self, ticket: u64) -> Option<usize> {
        let first = self.waiting.front()?.ticket;
        let at = usize::try_from(ticket.checked_sub(first)?).ok()?;
        self.waiting
            .get(at)
            .filter(|w| w.ticket == ticket)
            .map(|_| at)
    }

    /// The driver: the oldest request whose caller still waits.
    pub(super) fn driver(&self) -> Option<usize> {
        self.waiting.iter().position(|w| !w.abandoned)
    }

    /// Remembers who to wake when the request at `at` is done (or becomes the driver).
    pub(super) fn set_waker(&mut self, at: usize, waker: &Waker) {
        if let Some(w) = self.waiting.get_mut(at) {
            match &mut w.waker {
                Some(old) => old.clone_from(waker),
                none => *none = Some(waker.clone()),
            }
        }
    }

    /// Wakes the driver, if there is one, so that it carries on reading.
    pub(super) fn wake_driver(&self) {
        if let Some(driver) = self.driver() {
            wake(&self.waiting[driver].waker);
        }
    }

    /// The caller of `ticket` gave up: its reply will be read and dropped. If it was the
    /// driver, the next caller takes over.
    pub(super) fn abandon(&mut self, ticket: u64) {
        let Some(at) = self.position(ticket) else {
            return;
        };
        let was_driver = self.driver() == Some(at);
        self.waiting[at].abandoned = true;
        self.waiting[at].waker = None;
        if was_driver {
            self.wake_driver();
        }
    }

    /// The driver's turn: writes what is queued, then reads and hands out replies until
    /// `own`'s are in (or nothing more can be read now: the context is then woken when
    /// the socket is ready). Finished requests go to `done`; their callers are woken,
    /// except `own`'s, which is the one running. Whether `own`'s are in.
    ///
    /// # Errors
    /// An I/O or protocol failure: the connection is unusable, and every request in
    /// flight failed with it.
    pub(super) fn drive(
        &mut self,
        cx: &mut Context<'_>,
        done: &mut Vec<Done>,
        own: u64,
    ) -> io::Result<bool> {
        self.flush(cx)?;
        if self.deliver(done, own)? {
            return Ok(true);
        }
        loop {
            self.make_room();
            let mut room = ReadBuf::new(&mut self.input[self.end..]);
            match Pin::new(&mut self.stream).poll_read(cx, &mut room) {
                Poll::Pending => return Ok(false),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(())) => {
                    let read = room.filled().len();
                    if read == 0 {
                        return Err(closed_by_redis());
                    }
                    self.end += read;
                    if self.deliver(done, own)? {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// While the driver waits: arms the connection's timer for the driver's deadline
    /// (the context is woken then) and, once it has passed, gives every caller whose
    /// deadline has passed a timeout in `done` (woken, except the driver, which is the
    /// one running); their replies are read and dropped when they come.
    pub(super) fn expire(&mut self, cx: &mut Context<'_>, done: &mut Vec<Done>) {
        let Some(driver) = self.driver() else {
            return;
        };
        let deadline = tokio::time::Instant::from_std(self.waiting[driver].deadline);
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        if timer.as_mut().poll(cx).is_pending() {
            return;
        }
        let now = Instant::now();
        for (at, w) in self.waiting.iter_mut().enumerate() {
            if w.abandoned || w.deadline > now {
                continue;
            }
            w.abandoned = true;
            done.push((w.ticket, Err(timed_out().into())));
            if at != driver {
                wake(&w.waker);
            }
            w.waker = None;
        }
    }

    /// Fails every request still waiting with `error` (the connection is then dropped).
    pub(super) fn fail(self, error: &io::Error, done: &mut Vec<Done>) {
        for w in self.waiting.into_iter().filter(|w| !w.abandoned) {
            let copy = io::Error::new(error.kind(), error.to_string());
            done.push((w.ticket, Err(copy.into())));
            wake(&w.waker);
        }
    }

    /// Writes what is queued, as far as the socket takes it now.
    fn flush(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while self.written < self.out.len() {
            let rest = &self.out[self.written..];
            match Pin::new(&mut self.stream).poll_write(cx, rest) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => self.written += n,
            }
        }
        self.out.clear();
        self.written = 0;
        if self.out.capacity() > MAX_IDLE {
            self.out.shrink_to(BUFFER);
        }
        Ok(())
    }

    /// Parses every whole reply read so far and hands out every finished request;
    /// whether `own` is among them.
    fn deliver(&mut self, done: &mut Vec<Done>, own: u64) -> io::Result<bool> {
        let mut own_done = false;
        while self.start < self.end {
            let (used, reply) = self
                .parser
                .parse(&self.input[self.start..self.end])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.start += used;
            let Some(reply) = reply else {
                break;
            };
            own_done |= self.finish(reply, done, own)?;
        }
        Ok(own_done)
    }

    /// Adds one reply to the first waiting request (applying its effect on the cache
    /// when it is the last), or routes a push to the cache; whether that finished `own`.
    fn finish(&mut self, reply: Value, done: &mut Vec<Done>, own: u64) -> io::Result<bool> {
        if let Value::Push { kind, data } = reply {
            self.pushed(&kind, data);
            return Ok(false);
        }
        let Some(first) = self.waiting.front() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "redis sent a reply nobody asked for",
            ));
        };
        self.replies.push(reply);
        if self.replies.len() < first.replies {
            return Ok(false);
        }
        let mut replies = std::mem::take(&mut self.replies);
        let Some(first) = self.waiting.pop_front() else {
            return Ok(false);
        };
        if let Some(effect) = &first.effect {
            self.settle(effect, first.poisoned, &mut replies);
        }
        if first.fenced && !replies.is_empty() {
            replies.remove(0);
        }
        if first.abandoned {
            return Ok(false);
        }
        done.push((first.ticket, Ok(replies)));
        if first.ticket == own {
            return Ok(true);
        }
        wake(&first.waker);
        Ok(false)
    }

    /// Applies a finished request's effect on the cache. A write's trailing `GET` and
    /// `PTTL` replies are taken off: its caller gets its own replies only.
    fn settle(&mut self, effect: &Pending, poisoned: bool, replies: &mut Vec<Value>) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        match effect {
            Pending::Load(key) | Pending::Reload(key) => {
                let trailing = replies.len().saturating_sub(2);
                let mut load = match effect {
                    Pending::Reload(_) => replies.split_off(trailing),
                    _ => replies[trailing..].to_vec(),
                };
                let (pttl, get) = (load.pop(), load.pop());
                match (get, pttl) {
                    (Some(get), Some(pttl)) if !poisoned => {
                        cache.fill(key, get, &pttl, Instant::now());
                    }
                    _ => cache.evict(key),
                }
            }
            Pending::Evict(key) => cache.evict(key),
            Pending::Flush => cache.flush(),
        }
    }

    /// A push: an `invalidate` evicts its keys (a null list, after `FLUSHDB` or when
    /// Redis's tracking table overflows, flushes everything). A request half answered
    /// (its `GET` in, its `PTTL` not) whose key goes is poisoned: its `GET` read the
    /// value before the change.
    fn pushed(&mut self, kind: &PushKind, data: Vec<Value>) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        if *kind != PushKind::Invalidate {
            return;
        }
        let keys = match data.into_iter().next() {
            Some(Value::Array(keys)) => Some(keys),
            // Null (everything), or a shape we do not know: everything, to be safe.
            _ => None,
        };
        let half_answered = match self.waiting.front_mut() {
            Some(first) if !self.replies.is_empty() => Some(first),
            _ => None,
        };
        if let Some(first) = half_answered {
            let fills = first.effect.as_ref().and_then(Pending::fills);
            first.poisoned |= fills.is_some_and(|key| {
                keys.as_ref().is_none_or(|keys| {
                    keys.iter()
                        .any(|k| matches!(k, Value::BulkString(k) if k.as_slice() == key))
                })
            });
        }
        match keys {
            None => cache.flush(),
            Some(keys) => keys.iter().for_each(|k| match k {
                Value::BulkString(k) => cache.evict(k),
                _ => cache.flush(),
            }),
        }
    }

    /// Makes at least [`MIN_READ`] bytes of room after the unparsed input: moves the
    /// unparsed tail (never more than one unfinished element) to the front, or grows the
    /// buffer (doubling: a large reply costs linear copying, not quadratic).
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.input.len() > MAX_IDLE {
                self.input = vec![0; BUFFER];
            }
        }
        if self.input.len() - self.end >= MIN_READ {
            return;
        }
        if self.start > 0 {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.input.len() - self.end < MIN_READ {
            let grown = (self.input.len() * 2).max(self.end + MIN_READ);
            self.input.resize(grown, 0);
        }
    }
}

/// Sent before a write on a tracking connection (see `lean.rs`).
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// `GET key` and `PTTL key`, as redis-rs would encode them.
pub(super) fn encode_load(out: &mut Vec<u8>, key: &[u8]) {
    encode_command(out, &[b"GET", key]);
    encode_command(out, &[b"PTTL", key]);
}

/// A command of plain arguments, as RESP.
pub(super) fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    decimal(out, args.len());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        decimal(out, arg.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// `n` in decimal, without allocating.
fn decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0_u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn wake(waker: &Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake_by_ref();
    }
}

/// Redis closed the connection while replies were due.
pub(super) fn closed_by_redis() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "redis closed the connection before replying",
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A caching wire on one end of a loopback connection, and the other end, where the
    /// test plays Redis.
    async fn pair() -> (Wire, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("an address");
        let stream = TcpStream::connect(addr).await.expect("connects");
        let (redis, _) = listener.accept().expect("accepts");
        let mut wire = Wire::new(stream);
        wire.cache(10);
        (wire, redis)
    }

    /// Sends `bytes` as Redis, waits until they all reached `wire`'s socket, and lets
    /// `wire` read them without waiting.
    fn answer(wire: &mut Wire, redis: &mut std::net::TcpStream, bytes: &[u8]) -> Vec<Done> {
        redis.write_all(bytes).expect("writes");
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut room = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        while socket2::SockRef::from(&wire.stream)
            .peek(&mut room)
            .expect("peeks")
            < bytes.len()
        {
            assert!(Instant::now() < deadline, "the bytes arrive");
            std::thread::yield_now();
        }
        let mut done = Vec::new();
        wire.receive_now(&mut done).expect("reads");
        assert_eq!(wire.start, wire.end, "everything was read and parsed");
        done
    }

    fn hit(wire: &mut Wire, key: &[u8]) -> Option<Vec<u8>> {
        wire.cached(key).map(|h| h.value.into_vec())
    }

    const LOAD: &[u8] = b"$2\r\n{}\r\n:60000\r\n";

    #[tokio::test]
    async fn a_load_fills_a_push_evicts_and_a_null_push_flushes() {
        let (mut wire, mut redis) = pair().await;
        wire.push(1, Instant::now(), |_| {}, 2, Effect::Load(b"k"));
        let done = answer(&mut wire, &mut redis, LOAD);
        assert_eq!(done.len(), 1);
        assert_eq!(hit(&mut wire, b"k"), Some(b"{}".to_vec()));
        answer(
            &mut wire,
            &mut redis,
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n",
        );
        assert_eq!(hit(&mut wire, b"k"), None, "evicted");
        wire.push(2, Instant::now(), |_| {}, 2, Effect::Load(b"k"));
        answer(&mut wire, &mut redis, LOAD);
        assert!(hit(&mut wire, b"k").is_some());
        answer(&mut wire, &mut redis, b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        assert_eq!(hit(&mut wire, b"k"), None, "flushed");
    }

    #[tokio::test]
    async fn an_invalidation_between_a_loads_replies_poisons_it() {
        let (mut wire, mut redis) = pair().await;
        wire.push(1, Instant::now(), |_| {}, 2, Effect::Load(b"k"));
        let half = answer(&mut wire, &mut redis, b"$2\r\n{}\r\n");
        assert!(half.is_empty());
        answer(
            &mut wire,
            &mut redis,
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n",
        );
        let done = answer(&mut wire, &mut redis, b":60000\r\n");
        assert_eq!(done.len(), 1, "the caller still gets its replies");
        assert_eq!(hit(&mut wire, b"k"), None, "but nothing is cached");
    }

    #[tokio::test]
    async fn a_write_is_fenced_and_reloaded_and_its_caller_gets_its_own_reply() {
        let (mut wire, mut redis) = pair().await;
        wire.push(
            1,
            Instant::now(),
            |out| out.extend_from_slice(b"SET"),
            1,
            Effect::Write(b"k"),
        );
        assert!(wire.out.starts_with(PING), "PING goes first");
        assert!(wire.out.ends_with(b"$4\r\nPTTL\r\n$1\r\nk\r\n"));
        // A request in flight: no hits meanwhile.
        let done = answer(
            &mut wire,
            &mut redis,
            b"+PONG\r\n+OK\r\n$2\r\n{}\r\n:60000\r\n",
        );
        let [(ticket, replies)] = <[Done; 1]>::try_from(done).expect("one");
        assert_eq!((ticket, replies.expect("replies")), (1, vec![Value::Okay]));
        assert_eq!(hit(&mut wire, b"k"), Some(b"{}".to_vec()), "reloaded");
        wire.push(
            2,
            Instant::now(),
            |out| out.extend_from_slice(b"DEL"),
            1,
            Effect::Delete(b"k"),
        );
        assert_eq!(hit(&mut wire, b"k"), None, "evicted when sent");
        let done = answer(&mut wire, &mut redis, b"+PONG\r\n:1\r\n");
        assert_eq!(done[0].1.as_ref().expect("replies"), &vec![Value::Int(1)]);
    }

    #[test]
    fn commands_are_encoded_as_redis_rs_encodes_them() {
        let mut ours = Vec::new();
        encode_load(&mut ours, b"sess:0123456789");
        let mut theirs = redis::cmd("GET")
            .arg("sess:0123456789")
            .get_packed_command();
        theirs.extend(
            redis::cmd("PTTL")
                .arg("sess:0123456789")
                .get_packed_command(),
        );
        assert_eq!(ours, theirs);
        let args: [&[u8]; 6] = [b"SET", b"k", b"{\"n\":1}", b"NX", b"EX", b"-1"];
        let mut ours = Vec::new();
        encode_command(&mut ours, &args);
        let mut cmd = redis::cmd("SET");
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        assert_eq!(ours, cmd.get_packed_command());
        for n in [0, 7, 10, 99, 100, 12345, usize::MAX] {
            let mut out = Vec::new();
            decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[tokio::test]
    async fn no_hit_is_served_while_a_request_is_in_flight() {
        let (mut wire, mut redis) = pair().await;
        wire.push(1, Instant::now(), |_| {}, 2, Effect::Load(b"k"));
        answer(&mut wire, &mut redis, LOAD);
        wire.push(2, Instant::now(), |_| {}, 1, Effect::None);
        assert_eq!(hit(&mut wire, b"k"), None, "in flight");
        answer(&mut wire, &mut redis, b"+PONG\r\n");
        assert!(hit(&mut wire, b"k").is_some(), "idle again");
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error_for_a_reader_that_does_not_wait() {
        let (mut wire, redis) = pair().await;
        drop(redis);
        let mut done = Vec::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match wire.receive_now(&mut done) {
                Err(e) => break assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
                Ok(_) => assert!(Instant::now() < deadline, "the close is seen"),
            }
        }
    }
}
