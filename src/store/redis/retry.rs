//! What every connection mode shares: which commands may be sent twice, when a failure
//! is worth one more try, the timeout error, the timer around a call (redis-rs's
//! connections; the lean connection keeps one timer of its own, see `lean/wire.rs`),
//! and the connection settings.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{RedisError, RedisResult};

/// Commands queued on the multiplexed connection before a caller waits for room.
const PIPELINE_BUFFER: usize = 1024;

/// Whether a command may be sent a second time after a connection failure that leaves
/// unknown whether Redis ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Idempotent {
    /// Running it twice ends as running it once: reads (`GET`, `PTTL`, `SCAN`, `MGET`),
    /// `DEL`, `EXPIRE`, and a plain `SET` (a last-writer-wins write: re-sent while the
    /// call is still in flight, it is just a later write in that call's window).
    Yes,
    /// A second run would answer differently (`SET NX` would report the ID taken by its
    /// own first run; the compare-and-set script would report a conflict with itself):
    /// sent again only when the first attempt certainly never reached Redis.
    No,
}

/// The settings of the connections the store opens to one server (also the primary
/// found through sentinels).
pub(super) fn manager_config(connect: Duration) -> ConnectionManagerConfig {
    // No backoff retries inside the manager: its first retry sleeps at least 100 ms
    // and the next ones longer, which would stall every request during an outage. A
    // failed attempt is retried by the next command instead (see `Conn::run`).
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(connect))
        .set_response_timeout(None)
        .set_pipeline_buffer_size(PIPELINE_BUFFER)
}

/// Whether a failed command is worth one more try on one server.
///
/// A connection refused (the manager's reconnection failed, so the command was never
/// written) is retried whatever the command. Any other connection failure (dropped,
/// reset, broken pipe) may have come after Redis ran the command, so only an
/// [`Idempotent::Yes`] command is sent again. A timeout is never retried: the time is up.
pub(super) fn worth_retrying(e: &RedisError, idempotent: Idempotent) -> bool {
    if e.is_timeout() {
        return false;
    }
    match idempotent {
        Idempotent::Yes => e.is_io_error() || e.is_connection_dropped(),
        Idempotent::No => e.is_connection_refusal(),
    }
}

/// `call()`, and once more when its failure is [`worth_retrying`] (on the lean
/// connection the failed connection is gone by then: the second try opens a new one).
pub(super) async fn retried<T, Fut>(
    idempotent: Idempotent,
    call: impl Fn() -> Fut,
) -> RedisResult<T>
where
    Fut: Future<Output = RedisResult<T>>,
{
    match call().await {
        Err(e) if worth_retrying(&e, idempotent) => call().await,
        done => done,
    }
}

/// Bounds a call: a dead or stalled Redis gives a prompt error, never a hung request.
pub(super) async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(timed_out().into()))
}

/// What a call that ran out of time gets.
pub(super) fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer in time")
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind as Io};

    use redis::ErrorKind;

    use super::*;

    fn io(kind: Io) -> RedisError {
        RedisError::from(Error::from(kind))
    }

    #[test]
    fn only_idempotent_commands_are_sent_again_after_a_dropped_connection() {
        use Idempotent::{No, Yes};
        // The command may have run before the connection went.
        for maybe_ran in [Io::ConnectionReset, Io::BrokenPipe, Io::UnexpectedEof] {
            assert!(worth_retrying(&io(maybe_ran), Yes), "{maybe_ran:?}");
            assert!(!worth_retrying(&io(maybe_ran), No), "{maybe_ran:?}");
        }
        let driver_gone = RedisError::from((ErrorKind::Io, "connection dropped"));
        assert!(worth_retrying(&driver_gone, Yes) && !worth_retrying(&driver_gone, No));
        // The command never left: no connection could be made.
        assert!(worth_retrying(&io(Io::ConnectionRefused), Yes));
        assert!(worth_retrying(&io(Io::ConnectionRefused), No));
    }

    #[test]
    fn timeouts_and_server_errors_are_never_retried() {
        let server = redis::make_extension_error("WRONGTYPE".to_owned(), None);
        for e in [io(Io::TimedOut), server] {
            assert!(!worth_retrying(&e, Idempotent::Yes), "{e:?}");
            assert!(!worth_retrying(&e, Idempotent::No), "{e:?}");
        }
    }
}
