//! What the middleware reports besides its log lines: counters and store latencies
//! through the [`metrics`](https://docs.rs/metrics) facade (with the `metrics` feature),
//! and the keyed tag that names a session in spans and logs instead of its ID.

use std::fmt;

use ring::hmac;

/// A counted event. The names are the public contract (README, "Operations").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A new session was stored with `create` (under `WritePolicy::Merge`; under
    /// `LastWriterWins` every write is a `set`, counted as saved).
    Created,
    /// A session was found in the store.
    Loaded,
    /// A session was written.
    Saved,
    /// A session's expiry was extended without a write of its data.
    Touched,
    /// A session was removed from the store.
    Destroyed,
    /// A validly signed cookie named a session that is gone or has expired.
    Expired,
    /// A session cookie was present but not validly signed (tampered, unsigned, malformed).
    CookieRejected,
    /// A conditional save met a concurrent write and merged onto it.
    MergeConflict,
    /// A save found its session destroyed meanwhile and did not recreate it.
    ResurrectionPrevented,
}

impl Event {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::Created => "session_created_total",
            Event::Loaded => "session_loaded_total",
            Event::Saved => "session_saved_total",
            Event::Touched => "session_touched_total",
            Event::Destroyed => "session_destroyed_total",
            Event::Expired => "session_expired_total",
            Event::CookieRejected => "session_cookie_rejected_total",
            Event::MergeConflict => "session_merge_conflicts_total",
            Event::ResurrectionPrevented => "session_resurrections_prevented_total",
        }
    }
}

/// Counts one event.
#[inline]
pub(crate) fn count(event: Event) {
    #[cfg(feature = "metrics")]
    metrics::counter!(event.name()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = event;
}

/// Counts a failed store call: `kind` is `backend`, `unavailable` (the circuit breaker
/// is open), `malformed` or `unsupported`.
#[inline]
pub(crate) fn store_error(store: &'static str, op: &'static str, kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("session_store_errors_total", "store" => store, "operation" => op, "kind" => kind)
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, op, kind);
}

/// Records how long a store call took, failed ones included.
#[inline]
pub(crate) fn store_latency(store: &'static str, op: &'static str, seconds: f64) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("session_store_duration_seconds", "store" => store, "operation" => op)
        .record(seconds);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, op, seconds);
}

/// Names sessions in spans and logs by a keyed hash of their ID: the same session gets
/// the same tag in every process that shares the first secret, and the tag reveals
/// neither the ID nor anything that would forge a cookie.
pub(crate) struct Tagger(hmac::Key);

impl Tagger {
    /// A key of its own, derived from the signing secret.
    pub(crate) fn new(secret: &str) -> Self {
        let signing = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let derived = hmac::sign(&signing, b"actix-express-session: log tag key");
        Tagger(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// The tag of `id`, computed only when it is formatted.
    pub(crate) fn tag<'a>(&'a self, id: &'a str) -> Tag<'a> {
        Tag { key: &self.0, id }
    }
}

impl fmt::Debug for Tagger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tagger")
    }
}

/// A session's tag: 16 hex digits (64 bits) of HMAC-SHA256 under the tag key.
pub(crate) struct Tag<'a> {
    key: &'a hmac::Key,
    id: &'a str,
}

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mac = hmac::sign(self.key, self.id.as_bytes());
        mac.as_ref()[..8]
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_stable_per_secret_and_reveals_no_id() {
        let tagger = Tagger::new("keyboard cat");
        let tag = tagger.tag("abc").to_string();
        assert_eq!(tag.len(), 16);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(tag, Tagger::new("keyboard cat").tag("abc").to_string());
        assert_ne!(tag, tagger.tag("abd").to_string());
        assert_ne!(tag, Tagger::new("other").tag("abc").to_string());
        assert!(!tag.contains("abc"));
    }
}
