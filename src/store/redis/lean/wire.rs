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

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use redis::{RedisResult, Value};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use super::parser::Parser;

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
    replies: usize,
    waker: Option<Waker>,
    abandoned: bool,
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
        }
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

    /// Queues a request of `replies` replies, encoded by `encode`. When it is not the
    /// driver's own, the driver is woken to write it (with whatever else is queued by
    /// then: one write for the whole batch).
    pub(super) fn push(&mut self, ticket: u64, encode: impl FnOnce(&mut Vec<u8>), replies: usize) {
        let idle_out = self.written == self.out.len();
        encode(&mut self.out);
        if idle_out {
            if let Some(driver) = self.driver() {
                wake(&self.waiting[driver].waker);
            }
        }
        self.waiting.push_back(Waiting {
            ticket,
            replies,
            waker: None,
            abandoned: false,
        });
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
    /// except `own`'s, which is the one running.
    ///
    /// # Errors
    /// An I/O or protocol failure: the connection is unusable, and every request in
    /// flight failed with it.
    pub(super) fn drive(
        &mut self,
        cx: &mut Context<'_>,
        done: &mut Vec<Done>,
        own: u64,
    ) -> io::Result<()> {
        self.flush(cx)?;
        if self.deliver(done, own)? {
            return Ok(());
        }
        loop {
            self.make_room();
            let mut room = ReadBuf::new(&mut self.input[self.end..]);
            match Pin::new(&mut self.stream).poll_read(cx, &mut room) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(())) => {
                    let read = room.filled().len();
                    if read == 0 {
                        return Err(closed_by_redis());
                    }
                    self.end += read;
                    if self.deliver(done, own)? {
                        return Ok(());
                    }
                }
            }
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

    /// Adds one reply to the first waiting request; whether that finished `own`.
    fn finish(&mut self, reply: Value, done: &mut Vec<Done>, own: u64) -> io::Result<bool> {
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
        let replies = std::mem::take(&mut self.replies);
        let Some(first) = self.waiting.pop_front() else {
            return Ok(false);
        };
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
