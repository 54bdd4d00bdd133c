//! Shared pieces of the load-benchmark servers (one binary per contender in `src/bin/`).
//!
//! Every server answers the same two routes on `127.0.0.1:$PORT`, with one worker
//! thread (the benchmark pins it to one core):
//!
//! - `GET /count`: reads the integer `n` from the session (0 when absent), stores `n + 1`
//!   and returns it. Without a cookie this creates and saves a new session.
//! - `GET /read`: returns `n`, leaving the session unchanged.
//!
//! Environment: `PORT` (default 8080), `REDIS_URL`, `DATABASE_URL` for the stores that
//! need them; the memory-store server of this crate also reads `PREFILL` (sessions put
//! in the store before it listens) and `PAYLOAD_BYTES` (a string of that size stored
//! in every new session beside `n`).

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

pub mod actix_session_peer;
pub mod ours;
pub mod tower;

/// The boxed error the binaries' `main` returns.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The secret every contender signs its cookies with.
pub const SECRET: &str = "benchmark secret: long enough for any library's minimum length check";

/// The address to listen on: loopback, port `$PORT` (default 8080).
pub fn addr() -> SocketAddr {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A required environment variable.
///
/// # Errors
/// When it is not set.
pub fn required_var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} must be set").into())
}

/// A numeric environment variable, `default` when unset or not a number.
pub fn usize_var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The payload stored in every new session: `$PAYLOAD_BYTES` bytes (none by default).
pub fn payload() -> &'static str {
    static PAYLOAD: OnceLock<String> = OnceLock::new();
    PAYLOAD.get_or_init(|| "x".repeat(usize_var("PAYLOAD_BYTES", 0)))
}

/// This process's resident set size in bytes (Linux), for the memory-per-session figure.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The body both routes answer with when the session holds `n`.
pub fn body(n: u64) -> String {
    n.to_string()
}
