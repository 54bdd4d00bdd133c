//! [`SessionMiddleware`], its builder, and the validated configuration it carries.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, COOKIE};
use actix_web::HttpRequest;

use crate::cookie::{find_cookie, CookieOptions, SessionCookie};
use crate::encoding::{decode_uri_component, now_ms};
use crate::error::SessionError;
use crate::events::{Hook, SessionEvent};
use crate::gate::Gate;
use crate::observe::{self, Event};
use crate::outage::OutagePolicy;
use crate::record::{SessionRecord, CREATED_AT_KEY, ISSUED_AT_KEY, REISSUED_TO_KEY};
use crate::rules::Rules;
use crate::signature::Keys;
use crate::verified::Verified;
use crate::watched::Watched;

mod builder;
mod validate;

pub use builder::SessionMiddlewareBuilder;
use validate::validate_cookie;
pub use validate::ConfigError;

/// The default [`SessionMiddlewareBuilder::touch_after`].
pub(crate) const DEFAULT_TOUCH_AFTER: Duration = Duration::from_secs(60);

/// Longest session ID read from a cookie; anything longer is not one of ours.
pub(crate) const MAX_ID_LEN: usize = 4096;
/// Longest cookie value that can hold such an ID: `s:`, the ID and the signature, all
/// percent-encoded. Longer values are rejected before any decoding or HMAC work.
const MAX_COOKIE_LEN: usize = 3 * (2 + MAX_ID_LEN + 1 + 43);

/// What to do with the stored session when the handler calls [`Session::unset`]
/// (express-session's `unset` option, for `req.session = null`).
///
/// [`Session::unset`]: crate::Session::unset
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unset {
    /// Leave the stored session as it was (the default).
    #[default]
    Keep,
    /// Destroy the stored session and tell the browser to drop the cookie.
    Destroy,
}

/// Whether `X-Forwarded-Proto` from a reverse proxy decides if a request is secure
/// (express-session's `proxy` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustProxy {
    /// Only a direct TLS connection is secure; forwarded headers are ignored (default).
    #[default]
    Never,
    /// The first value of `X-Forwarded-Proto` decides (`https`, any case, trimmed).
    ///
    /// # Warning: spoofing risk
    /// Only enable this behind a proxy that overwrites `X-Forwarded-Proto`: otherwise
    /// any client can claim to be on HTTPS.
    Always,
}

/// How a save meets a concurrent change to the same session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WritePolicy {
    /// Apply this request's own changes (keys set, keys removed, `clear`) onto the record
    /// as it is in the store now, atomically, and never recreate a session that was
    /// destroyed meanwhile (the default). Two overlapping requests that change different
    /// keys both keep their change; for the same key the later save wins.
    #[default]
    Merge,
    /// express-session's behaviour to the byte: the whole record as this request saw it
    /// is written back, and the last save wins (an overlapping logout can be undone).
    LastWriterWins,
}

/// When the session is read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Load {
    /// When the request first uses it (the [`Session`](crate::Session) extractor, or
    /// [`Session::load`](crate::Session::load)): a request that never uses the session
    /// costs no store call, and does not extend the session's life (the default).
    #[default]
    Lazy,
    /// Before the handler runs, on every request under `cookie.path`, as express-session
    /// does: every request extends the session's life, used or not.
    Eager,
}

pub(crate) type CookieFn = Arc<dyn Fn(&ServiceRequest) -> CookieOptions + Send + Sync>;

pub(crate) type Genid = Arc<dyn Fn(&ServiceRequest) -> String + Send + Sync>;

/// [`SessionMiddlewareBuilder::reissue_after`], validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reissue {
    /// How old (ms) a session's ID may get before the next request gives it a new one.
    pub(crate) every_ms: i64,
    /// How long the old ID keeps leading to the session.
    pub(crate) grace: Duration,
}

impl Reissue {
    /// Whether `record`'s ID has reached the age for a new one.
    pub(crate) fn due(&self, record: &SessionRecord, now_ms: i64) -> bool {
        record
            .issued_at_ms()
            .is_some_and(|at| now_ms.saturating_sub(at) >= self.every_ms)
    }

    /// What a reissued session leaves under its old ID: no user data, only the new ID,
    /// and a cookie that expires at the end of the grace (so that every store, which
    /// derives its expiry from the cookie, drops it then).
    pub(crate) fn tombstone(&self, cookie: &SessionCookie, to: &str, now_ms: i64) -> SessionRecord {
        let mut cookie = cookie.clone();
        cookie.set_max_age(Some(self.grace), now_ms);
        let mut record = SessionRecord::new(cookie);
        record.data.insert(REISSUED_TO_KEY.to_owned(), to.into());
        record
    }
}

/// The validated configuration, built once and shared by every worker.
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) keys: Keys,
    pub(crate) cookie: CookieOptions,
    pub(crate) rules: Rules,
    pub(crate) write_policy: WritePolicy,
    pub(crate) load: Load,
    /// Milliseconds; see [`SessionMiddlewareBuilder::touch_after`].
    pub(crate) touch_after_ms: i64,
    pub(super) resign_rotated: bool,
    /// Milliseconds; see [`SessionMiddlewareBuilder::absolute_timeout`].
    pub(crate) absolute_timeout_ms: Option<i64>,
    /// See [`SessionMiddlewareBuilder::reissue_after`].
    pub(crate) reissue: Option<Reissue>,
    pub(super) trust_proxy: TrustProxy,
    pub(super) genid: Option<Genid>,
    /// See [`SessionMiddlewareBuilder::cookie_for`].
    pub(super) cookie_fn: Option<CookieFn>,
    /// See [`SessionMiddlewareBuilder::cache_headers`].
    pub(crate) cache_headers: bool,
    /// See [`SessionMiddlewareBuilder::clear_site_data_on_destroy`].
    pub(crate) clear_site_data: bool,
    /// See [`SessionMiddlewareBuilder::outage_policy`].
    pub(crate) outage: OutagePolicy,
    pub(super) on_event: Option<Hook>,
}

impl Config {
    /// The request's own cookie options when `cookie_for` is set (`None`: the static
    /// ones), checked as `build` checks the static ones.
    pub(crate) fn cookie_for(
        &self,
        req: &ServiceRequest,
    ) -> Result<Option<CookieOptions>, SessionError> {
        let Some(cookie_for) = &self.cookie_fn else {
            return Ok(None);
        };
        let cookie = cookie_for(req);
        validate_cookie(&self.name, &cookie).map_err(SessionError::Config)?;
        Ok(Some(cookie))
    }

    /// Whether the request path is inside the cookie's path (a raw, case-sensitive
    /// prefix test, as express-session does).
    pub(crate) fn in_scope(&self, req: &ServiceRequest, cookie: Option<&CookieOptions>) -> bool {
        let path: &str = &cookie.unwrap_or(&self.cookie).path;
        req.uri().path().starts_with(path)
    }

    /// Whether the connection is secure: direct TLS, or a trusted proxy saying `https`.
    pub(crate) fn is_secure(&self, req: &HttpRequest) -> bool {
        if req.app_config().secure() {
            return true;
        }
        self.trust_proxy == TrustProxy::Always && forwarded_https(req.headers())
    }

    /// The session ID from a cookie that one of the secrets signed, if any, and whether
    /// it should be re-signed with the newest secret (an older one signed it, and
    /// `resign_rotated` is on).
    /// Cookies this worker verified before are looked up in `verified` instead.
    pub(crate) fn read_session_id(
        &self,
        headers: &HeaderMap,
        verified: &mut Verified,
    ) -> Option<(String, bool)> {
        let raw = headers
            .get_all(COOKIE)
            .find_map(|h| find_cookie(h.as_bytes(), &self.name))?;
        let verified = match raw.len() <= MAX_COOKIE_LEN {
            true => verified.get_or_verify(raw, |raw| self.verify(raw)),
            false => None,
        };
        if verified.is_none() {
            observe::count(Event::CookieRejected);
            tracing::debug!(cookie = %self.name, "session cookie rejected: not validly signed");
        }
        verified
    }

    fn verify(&self, raw: &[u8]) -> Option<(String, bool)> {
        let value = decode_uri_component(raw)?;
        let (id, by) = self.keys.unsign_by(value.strip_prefix("s:")?)?;
        (id.len() <= MAX_ID_LEN).then(|| (id.to_owned(), by > 0 && self.resign_rotated))
    }

    /// Tells the `on_event` callback, if there is one.
    pub(crate) fn emit(&self, req: &HttpRequest, event: SessionEvent<'_>) {
        if let Some(hook) = &self.on_event {
            hook(req, &event);
        }
    }

    /// A record for a new session: a new cookie (from the request's own options, if
    /// any), its creation time when the absolute timeout is on, and its ID's issue time
    /// when `reissue_after` is on.
    pub(crate) fn new_record(
        &self,
        cookie: Option<&CookieOptions>,
        secure_connection: bool,
        now_ms: i64,
    ) -> SessionRecord {
        let cookie = cookie.unwrap_or(&self.cookie);
        let mut record = SessionRecord::new(cookie.new_cookie(secure_connection, now_ms));
        if self.absolute_timeout_ms.is_some() {
            record.data.insert(CREATED_AT_KEY.to_owned(), now_ms.into());
        }
        if self.reissue.is_some() {
            record.data.insert(ISSUED_AT_KEY.to_owned(), now_ms.into());
        }
        record
    }

    /// Whether `reissue_after` is on and `record`'s ID is old enough for a new one.
    pub(crate) fn reissue_due(&self, record: &SessionRecord, now_ms: i64) -> bool {
        self.reissue.is_some_and(|r| r.due(record, now_ms))
    }

    /// Whether `record` has outlived its cookie or the absolute timeout. The clock is
    /// read only when there is such a deadline (a browser-session cookie has none).
    pub(crate) fn is_expired(&self, record: &SessionRecord) -> bool {
        let too_old_at = self.absolute_timeout_ms.and_then(|lifetime| {
            let created = record.created_at_ms()?;
            Some(created.saturating_add(lifetime))
        });
        let deadline = match (record.cookie.expires_unix_ms(), too_old_at) {
            (Some(expires), Some(too_old)) => Some(expires.min(too_old)),
            (expires, too_old) => expires.or(too_old),
        };
        deadline.is_some_and(|at| at <= now_ms())
    }

    /// A new session ID from `genid`, or 24 random bytes.
    pub(crate) fn new_id(&self, req: &ServiceRequest) -> Result<String, SessionError> {
        let Some(genid) = &self.genid else {
            return crate::id::generate_id().ok_or(SessionError::Random);
        };
        let id = genid(req);
        if id.is_empty() || id.len() > MAX_ID_LEN {
            tracing::error!(
                len = id.len(),
                "`genid` returned an empty session ID or one longer than {MAX_ID_LEN} bytes"
            );
            return Err(SessionError::InvalidId);
        }
        Ok(id)
    }
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get("x-forwarded-proto") else {
        return false;
    };
    let first = value
        .as_bytes()
        .split(|&b| b == b',')
        .next()
        .unwrap_or_default();
    first.trim_ascii().eq_ignore_ascii_case(b"https")
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("name", &self.name)
            .field("keys", &self.keys)
            .field("cookie", &self.cookie)
            .field("rules", &self.rules)
            .field("write_policy", &self.write_policy)
            .field("load", &self.load)
            .field("touch_after_ms", &self.touch_after_ms)
            .field("resign_rotated", &self.resign_rotated)
            .field("absolute_timeout_ms", &self.absolute_timeout_ms)
            .field("reissue", &self.reissue)
            .field("trust_proxy", &self.trust_proxy)
            .field("genid", &self.genid.as_ref().map(|_| "custom"))
            .field("cookie_fn", &self.cookie_fn.as_ref().map(|_| "custom"))
            .field("cache_headers", &self.cache_headers)
            .field("clear_site_data", &self.clear_site_data)
            .field("outage", &self.outage)
            .field("on_event", &self.on_event.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// The session middleware: wrap an `App` (or a scope) with it.
///
/// Built by [`SessionMiddleware::builder`]; cheap to clone, so build it once outside the
/// `HttpServer` factory and clone it into each worker.
pub struct SessionMiddleware<S> {
    pub(crate) config: Arc<Config>,
    /// The store behind the circuit breaker and the instruments.
    pub(crate) store: Arc<Watched>,
    pub(crate) gate: Arc<Gate>,
    pub(super) store_type: PhantomData<fn() -> S>,
}

impl<S> Clone for SessionMiddleware<S> {
    fn clone(&self) -> Self {
        SessionMiddleware {
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
            gate: Arc::clone(&self.gate),
            store_type: PhantomData,
        }
    }
}

impl<S> fmt::Debug for SessionMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reissue_is_due_at_every_and_its_tombstone_lives_for_the_grace() {
        let policy = Reissue {
            every_ms: 1_000,
            grace: Duration::from_millis(300),
        };
        let mut record = SessionRecord::new(CookieOptions::default().new_cookie(false, 0));
        assert!(!policy.due(&record, 5_000), "no issue time: not due");
        record.data.insert(ISSUED_AT_KEY.to_owned(), 10_000.into());
        assert!(!policy.due(&record, 10_999));
        assert!(policy.due(&record, 11_000));
        record.data.insert("user".to_owned(), "ada".into());
        let tombstone = policy.tombstone(&record.cookie, "new-id", 11_000);
        assert_eq!(tombstone.reissued_to(), Some("new-id"));
        assert_eq!(tombstone.data.len(), 1, "no user data");
        assert_eq!(tombstone.cookie.expires_unix_ms(), Some(11_300));
        assert_eq!(
            tombstone.cookie.original_max_age(),
            Some(Duration::from_millis(300))
        );
    }
}
