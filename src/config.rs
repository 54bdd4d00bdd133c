//! [`SessionMiddleware`], its builder, and the validated configuration it carries.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, COOKIE};
use actix_web::HttpRequest;

use crate::breaker::{Breaker, CircuitBreaker};
use crate::cookie::{find_cookie, CookieOptions, SameSite, Secure, SessionCookie};
use crate::encoding::decode_uri_component;
use crate::error::SessionError;
use crate::events::{Hook, SessionEvent};
use crate::gate::Gate;
use crate::observe::{self, Event, Tagger};
use crate::outage::OutagePolicy;
use crate::record::{SessionRecord, CREATED_AT_KEY, ISSUED_AT_KEY, REISSUED_TO_KEY};
use crate::rules::Rules;
use crate::signature::{Keys, Secrets};
use crate::store::SessionStore;
use crate::watched::Watched;

/// The default [`SessionMiddlewareBuilder::touch_after`].
const DEFAULT_TOUCH_AFTER: Duration = Duration::from_secs(60);

/// Longest session ID read from a cookie; anything longer is not one of ours.
const MAX_ID_LEN: usize = 4096;
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

/// An invalid configuration, naming the option to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `secret`: the list of secrets is empty.
    NoSecret,
    /// `secret`: one of the secrets is the empty string.
    EmptySecret,
    /// `name`: not a valid cookie name (RFC 6265 token).
    InvalidCookieName(String),
    /// `cookie.path`: empty, or contains characters a cookie attribute cannot hold.
    InvalidCookiePath(String),
    /// `cookie.domain`: contains characters a cookie attribute cannot hold.
    InvalidCookieDomain(String),
    /// `cookie.same_site(SameSite::None)` needs `cookie.secure(Secure::Always)`.
    SameSiteNoneWithoutSecure,
    /// `name`: a `__Host-` cookie needs `Secure::Always`, path `/` and no domain.
    HostPrefix(&'static str),
    /// `name`: a `__Secure-` cookie needs `Secure::Always`.
    SecurePrefixWithoutSecure,
    /// `reissue_after`: a zero interval or grace, or a grace not shorter than the
    /// interval.
    InvalidReissue(&'static str),
    /// `reissue_after` needs conditional writes: `write_policy(WritePolicy::Merge)`.
    ReissueWithoutMerge,
    /// `cookie.partitioned(true)` needs `cookie.secure(Secure::Always)`: browsers drop a
    /// `Partitioned` cookie without `Secure`.
    PartitionedWithoutSecure,
    /// `circuit_breaker`: zero failures or a zero cool-down.
    InvalidCircuitBreaker(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoSecret => f.write_str("`secret`: at least one secret is required"),
            ConfigError::EmptySecret => f.write_str("`secret`: a secret must not be empty"),
            ConfigError::InvalidCookieName(n) => {
                write!(f, "`name`: {n:?} is not a valid cookie name")
            }
            ConfigError::InvalidCookiePath(p) => {
                write!(f, "`cookie.path`: {p:?} is not a valid cookie path")
            }
            ConfigError::InvalidCookieDomain(d) => {
                write!(f, "`cookie.domain`: {d:?} is not a valid cookie domain")
            }
            ConfigError::SameSiteNoneWithoutSecure => f.write_str(
                "`cookie.same_site`: SameSite=None requires `cookie.secure(Secure::Always)`",
            ),
            ConfigError::HostPrefix(why) => write!(f, "`name`: a `__Host-` cookie {why}"),
            ConfigError::SecurePrefixWithoutSecure => {
                f.write_str("`name`: a `__Secure-` cookie requires `cookie.secure(Secure::Always)`")
            }
            ConfigError::InvalidReissue(why) => write!(f, "`reissue_after`: {why}"),
            ConfigError::ReissueWithoutMerge => f.write_str(
                "`reissue_after` requires `write_policy(WritePolicy::Merge)` (conditional writes)",
            ),
            ConfigError::PartitionedWithoutSecure => {
                f.write_str("`cookie.partitioned(true)` requires `cookie.secure(Secure::Always)`")
            }
            ConfigError::InvalidCircuitBreaker(why) => write!(f, "`circuit_breaker`: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

type Genid = Arc<dyn Fn(&ServiceRequest) -> String + Send + Sync>;

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
    resign_rotated: bool,
    /// Milliseconds; see [`SessionMiddlewareBuilder::absolute_timeout`].
    pub(crate) absolute_timeout_ms: Option<i64>,
    /// See [`SessionMiddlewareBuilder::reissue_after`].
    pub(crate) reissue: Option<Reissue>,
    trust_proxy: TrustProxy,
    genid: Option<Genid>,
    /// See [`SessionMiddlewareBuilder::cache_headers`].
    pub(crate) cache_headers: bool,
    /// See [`SessionMiddlewareBuilder::clear_site_data_on_destroy`].
    pub(crate) clear_site_data: bool,
    /// See [`SessionMiddlewareBuilder::outage_policy`].
    pub(crate) outage: OutagePolicy,
    on_event: Option<Hook>,
}

impl Config {
    /// Whether the request path is inside `cookie.path` (a raw, case-sensitive prefix
    /// test, as express-session does).
    pub(crate) fn in_scope(&self, req: &ServiceRequest) -> bool {
        req.uri().path().starts_with(self.cookie.path.as_str())
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
    pub(crate) fn read_session_id(&self, headers: &HeaderMap) -> Option<(String, bool)> {
        let raw = headers
            .get_all(COOKIE)
            .find_map(|h| find_cookie(h.as_bytes(), &self.name))?;
        let verified = self.verify(raw);
        if verified.is_none() {
            observe::count(Event::CookieRejected);
            tracing::debug!(cookie = %self.name, "session cookie rejected: not validly signed");
        }
        verified
    }

    fn verify(&self, raw: &[u8]) -> Option<(String, bool)> {
        if raw.len() > MAX_COOKIE_LEN {
            return None;
        }
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

    /// A record for a new session: a new cookie, its creation time when the absolute
    /// timeout is on, and its ID's issue time when `reissue_after` is on.
    pub(crate) fn new_record(&self, secure_connection: bool, now_ms: i64) -> SessionRecord {
        let mut record = SessionRecord::new(self.cookie.new_cookie(secure_connection, now_ms));
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

    /// Whether `record` has outlived its cookie or the absolute timeout.
    pub(crate) fn is_expired(&self, record: &SessionRecord, now_ms: i64) -> bool {
        let cookie_expired = record
            .cookie
            .expires_unix_ms()
            .is_some_and(|at| at <= now_ms);
        let too_old = match (self.absolute_timeout_ms, record.created_at_ms()) {
            (Some(lifetime), Some(created)) => created.saturating_add(lifetime) <= now_ms,
            _ => false,
        };
        cookie_expired || too_old
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
    store_type: PhantomData<fn() -> S>,
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

impl<S: SessionStore> SessionMiddleware<S> {
    /// Starts a configuration with a store and the secret(s) that sign the cookie: a
    /// `&str`, a `String`, or a list (the first signs, all verify: rotate by putting the
    /// new secret first).
    pub fn builder(store: S, secret: impl Into<Secrets>) -> SessionMiddlewareBuilder<S> {
        SessionMiddlewareBuilder {
            store,
            secrets: secret.into(),
            name: "connect.sid".to_owned(),
            cookie: CookieOptions::default(),
            rules: Rules {
                resave: false,
                save_uninitialized: false,
                rolling: false,
                destroy_unset: false,
            },
            write_policy: WritePolicy::Merge,
            load: Load::Lazy,
            touch_after: DEFAULT_TOUCH_AFTER,
            resign_rotated: true,
            absolute_timeout: None,
            reissue_after: None,
            trust_proxy: TrustProxy::Never,
            genid: None,
            cache_headers: true,
            clear_site_data_on_destroy: false,
            circuit_breaker: CircuitBreaker::default(),
            outage_policy: OutagePolicy::default(),
            on_event: None,
        }
    }
}

/// Configures a [`SessionMiddleware`]; every option is checked by [`build`](Self::build).
#[must_use = "call .build() to get the middleware"]
pub struct SessionMiddlewareBuilder<S> {
    store: S,
    secrets: Secrets,
    name: String,
    cookie: CookieOptions,
    rules: Rules,
    write_policy: WritePolicy,
    load: Load,
    touch_after: Duration,
    resign_rotated: bool,
    absolute_timeout: Option<Duration>,
    reissue_after: Option<(Duration, Duration)>,
    trust_proxy: TrustProxy,
    genid: Option<Genid>,
    cache_headers: bool,
    clear_site_data_on_destroy: bool,
    circuit_breaker: CircuitBreaker,
    outage_policy: OutagePolicy,
    on_event: Option<Hook>,
}

impl<S> fmt::Debug for SessionMiddlewareBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddlewareBuilder")
            .field("secrets", &self.secrets)
            .field("name", &self.name)
            .field("cookie", &self.cookie)
            .field("rules", &self.rules)
            .field("write_policy", &self.write_policy)
            .field("load", &self.load)
            .field("touch_after", &self.touch_after)
            .field("resign_rotated", &self.resign_rotated)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("reissue_after", &self.reissue_after)
            .field("trust_proxy", &self.trust_proxy)
            .field("cache_headers", &self.cache_headers)
            .field(
                "clear_site_data_on_destroy",
                &self.clear_site_data_on_destroy,
            )
            .field("circuit_breaker", &self.circuit_breaker)
            .field("outage_policy", &self.outage_policy)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> SessionMiddlewareBuilder<S> {
    /// The cookie name. Default `connect.sid` (express-session's).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Cookie attributes for new sessions. Default: [`CookieOptions::default`].
    pub fn cookie(mut self, cookie: CookieOptions) -> Self {
        self.cookie = cookie;
        self
    }

    /// Save a loaded session on every request even when unchanged (instead of only
    /// touching it). Default `false`.
    pub fn resave(mut self, resave: bool) -> Self {
        self.rules.resave = resave;
        self
    }

    /// Save (and send the cookie for) new sessions that nothing was stored in. Default
    /// `false`: a visitor gets a session only once the application puts data in it.
    pub fn save_uninitialized(mut self, save: bool) -> Self {
        self.rules.save_uninitialized = save;
        self
    }

    /// Re-send the cookie on every response, pushing its expiry forward. Default `false`.
    pub fn rolling(mut self, rolling: bool) -> Self {
        self.rules.rolling = rolling;
        self
    }

    /// What [`Session::unset`](crate::Session::unset) does to the stored session.
    /// Default [`Unset::Keep`].
    pub fn unset(mut self, unset: Unset) -> Self {
        self.rules.destroy_unset = unset == Unset::Destroy;
        self
    }

    /// How a save meets a concurrent change to the same session. Default
    /// [`WritePolicy::Merge`].
    pub fn write_policy(mut self, policy: WritePolicy) -> Self {
        self.write_policy = policy;
        self
    }

    /// When the session is read from the store. Default [`Load::Lazy`].
    pub fn load(mut self, load: Load) -> Self {
        self.load = load;
        self
    }

    /// Extend a session's life in the store (the end-of-request touch of an unchanged
    /// session) at most once per this interval. Default 60 seconds: a session in use
    /// then costs one store read per request and one write per minute, and its server-side
    /// expiry trails express-session's by at most a minute. `Duration::ZERO` touches on
    /// every request, as express-session does.
    ///
    /// For a persistent cookie the interval is capped at half the cookie's max age, so a
    /// session in use never expires. A store that cannot tell when it last extended a
    /// record (see [`Loaded::extended_at`](crate::store::Loaded::extended_at)) is touched
    /// on every request.
    pub fn touch_after(mut self, interval: Duration) -> Self {
        self.touch_after = interval;
        self
    }

    /// Re-send a cookie that an older secret of the list signed, signed with the newest
    /// (once, on the next response that uses the session), so that an old secret can be
    /// retired after one visit of each user instead of a whole session lifetime. Default
    /// `true`.
    pub fn resign_rotated(mut self, resign: bool) -> Self {
        self.resign_rotated = resign;
        self
    }

    /// End every session this long after it was created, however active it is (OWASP's
    /// absolute timeout; the idle timeout is the cookie's max age). Enforced by the
    /// middleware on every store: a session past it is destroyed and the request gets a
    /// new one. The creation time is kept in the record under
    /// [`CREATED_AT_KEY`](crate::CREATED_AT_KEY), written only when this is on (a
    /// session created before gets it at its next use). `regenerate` starts a new
    /// lifetime. Default: none.
    pub fn absolute_timeout(mut self, lifetime: Duration) -> Self {
        self.absolute_timeout = Some(lifetime);
        self
    }

    /// Give a session a new ID once its current one is `every` old (OWASP's renewal
    /// timeout), while the old ID keeps leading to the session for `grace` more, so that
    /// requests already in flight with the old cookie are not logged out. Default: off.
    ///
    /// The next request that uses such a session moves it: the session (same data and
    /// cookie) is stored under a new ID, the old ID's record becomes a *tombstone* that
    /// names the new ID and holds no user data (a leaked old ID leads to the session for
    /// `grace` at most, never longer), and the response sends the new cookie. A request
    /// with the old cookie inside the grace is served from the new session and gets the
    /// new cookie; a request that loaded the session before the move and saves after it
    /// has its changes applied to the new session. After the grace the tombstone has
    /// expired (in every store, which derive their expiry from its cookie, and by the
    /// middleware's own check) and the old cookie is no session at all. (So a browser
    /// that never receives the response carrying the new cookie, and sends nothing else
    /// within the grace, has lost the session: choose the grace with that in mind.)
    /// A move costs two store writes (`create` and a conditional `save_if`).
    ///
    /// The time the current ID was issued is kept in the record under
    /// [`ISSUED_AT_KEY`](crate::ISSUED_AT_KEY) and a tombstone's pointer under
    /// [`REISSUED_TO_KEY`](crate::REISSUED_TO_KEY); both are written only when this is on
    /// (a session stored before gets its issue time at its next use). `regenerate` issues
    /// a new ID too, and restarts the clock; `destroy` through either ID ends both. A
    /// session whose cookie is `Secure` is not moved by a plain-HTTP request (the new
    /// cookie could not be sent).
    ///
    /// `build()` rejects a zero `every` or `grace`, a `grace` not shorter than `every`,
    /// and [`WritePolicy::LastWriterWins`] (the move needs conditional writes).
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_express_session::{MemoryStore, SessionMiddleware};
    ///
    /// let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
    ///     .reissue_after(Duration::from_secs(15 * 60), Duration::from_secs(30))
    ///     .build()
    ///     .expect("a valid configuration");
    /// # drop(sessions);
    /// ```
    ///
    /// # Node compatibility
    /// A Node app (express-session) sharing the store reads a tombstone as an empty
    /// session during the grace: a user whose session was just moved looks logged out to
    /// it until it receives the new cookie. The keys themselves are ordinary session keys
    /// to Node, which keeps them.
    pub fn reissue_after(mut self, every: Duration, grace: Duration) -> Self {
        self.reissue_after = Some((every, grace));
        self
    }

    /// Whether to believe `X-Forwarded-Proto` for [`Secure::Auto`] and for withholding
    /// `Secure` cookies on plain HTTP. Default [`TrustProxy::Never`].
    pub fn trust_proxy(mut self, trust: TrustProxy) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// A custom session ID generator. Default: 24 random bytes, base64url (32
    /// characters). IDs must be unguessable; [`uuid_v4_id`](crate::uuid_v4_id) is a
    /// ready preset.
    pub fn genid(
        mut self,
        genid: impl Fn(&ServiceRequest) -> String + Send + Sync + 'static,
    ) -> Self {
        self.genid = Some(Arc::new(genid));
        self
    }

    /// Keep responses that depend on the session out of shared caches (OWASP ASVS 5.0
    /// 14.3). Default `true`.
    ///
    /// A response that sets, re-sends or clears the session cookie gets
    /// `Cache-Control: private, no-store` (unless the handler set a `Cache-Control` of
    /// its own, which is left as is) and `Cookie` in `Vary`. A response to a request
    /// that used the session without sending the cookie gets `Cookie` in `Vary` only.
    /// `Cookie` is appended to a `Vary` the handler set, unless it already lists `Cookie`
    /// or `*`. A request that never used the session (with [`Load::Lazy`]) gets no
    /// header at all; with [`Load::Eager`] every request under `cookie.path` uses it.
    ///
    /// ```
    /// use actix_express_session::{MemoryStore, SessionMiddleware};
    ///
    /// // A CDN or proxy in front already keeps session responses private.
    /// let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
    ///     .cache_headers(false)
    ///     .build()
    ///     .expect("a valid configuration");
    /// # drop(sessions);
    /// ```
    ///
    /// # Warning: session leak through caches
    /// Switched off, a shared cache may store a response carrying one user's
    /// `Set-Cookie` and serve it, session and all, to others: only do so when every
    /// response that touches the session is made uncacheable some other way.
    pub fn cache_headers(mut self, on: bool) -> Self {
        self.cache_headers = on;
        self
    }

    /// Add `Clear-Site-Data: "cookies"` to a response that clears the session cookie
    /// ([`Session::destroy`](crate::Session::destroy), or
    /// [`Session::unset`](crate::Session::unset) with [`Unset::Destroy`]), so that the
    /// browser drops the cookies of the whole site on logout. Default `false`: it removes
    /// *every* cookie of the registrable domain (other apps' included), not only the
    /// session's.
    pub fn clear_site_data_on_destroy(mut self, on: bool) -> Self {
        self.clear_site_data_on_destroy = on;
        self
    }

    /// The circuit breaker in front of the store. Default [`CircuitBreaker::default`]:
    /// after 3 failed store calls in a row, calls fail at once (answered by the
    /// [`outage_policy`](Self::outage_policy)) and one probe every 250 ms finds out when
    /// the store answers again. [`CircuitBreaker::off`] turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_express_session::{CircuitBreaker, MemoryStore, SessionMiddleware};
    ///
    /// let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
    ///     .circuit_breaker(CircuitBreaker::new().failures(5).cool_down(Duration::from_millis(500)))
    ///     .build()
    ///     .expect("a valid configuration");
    /// # drop(sessions);
    /// ```
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.circuit_breaker = breaker;
        self
    }

    /// What a request gets when the store fails. Default
    /// [`OutagePolicy::InternalServerError`], an empty 500.
    pub fn outage_policy(mut self, policy: OutagePolicy) -> Self {
        self.outage_policy = policy;
        self
    }

    /// A callback for each [`SessionEvent`] (created, regenerated, destroyed, expired),
    /// called after the store has made the change, with the request that caused it: an
    /// audit trail of logins and logouts. It runs on the request's thread: keep it quick
    /// (send to a channel for anything slow).
    ///
    /// ```
    /// use actix_express_session::{MemoryStore, SessionEvent, SessionMiddleware};
    ///
    /// let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
    ///     .on_event(|req, event| {
    ///         if let SessionEvent::Destroyed { record, .. } = event {
    ///             let user = record.data.get("user");
    ///             tracing::info!(?user, peer = ?req.peer_addr(), "logout");
    ///         }
    ///     })
    ///     .build()
    ///     .expect("a valid configuration");
    /// # drop(sessions);
    /// ```
    pub fn on_event(
        mut self,
        hook: impl Fn(&HttpRequest, &SessionEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Checks the options and builds the middleware.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the option: no secret or an empty one, an invalid cookie
    /// name, path or domain, `SameSite=None` without `Secure::Always`, a `__Host-` /
    /// `__Secure-` name whose attributes the browser would reject, or an invalid
    /// `reissue_after`.
    pub fn build(self) -> Result<SessionMiddleware<S>, ConfigError> {
        self.validate()?;
        let config = Config {
            keys: Keys::new(&self.secrets),
            name: self.name,
            cookie: self.cookie,
            rules: self.rules,
            write_policy: self.write_policy,
            load: self.load,
            touch_after_ms: i64::try_from(self.touch_after.as_millis()).unwrap_or(i64::MAX),
            resign_rotated: self.resign_rotated,
            absolute_timeout_ms: self
                .absolute_timeout
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            reissue: self.reissue_after.map(|(every, grace)| Reissue {
                every_ms: i64::try_from(every.as_millis()).unwrap_or(i64::MAX),
                grace,
            }),
            trust_proxy: self.trust_proxy,
            genid: self.genid,
            cache_headers: self.cache_headers,
            clear_site_data: self.clear_site_data_on_destroy,
            outage: self.outage_policy,
            on_event: self.on_event,
        };
        let tagger = Tagger::new(self.secrets.iter().next().unwrap_or_default());
        let store = Watched::new(
            Arc::new(self.store),
            short_type_name::<S>(),
            Breaker::new(self.circuit_breaker),
            tagger,
        );
        Ok(SessionMiddleware {
            config: Arc::new(config),
            store: Arc::new(store),
            gate: Arc::default(),
            store_type: PhantomData,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        if self.secrets.iter().any(str::is_empty) {
            return Err(ConfigError::EmptySecret);
        }
        if self.name.is_empty() || !self.name.bytes().all(is_token_byte) {
            return Err(ConfigError::InvalidCookieName(self.name.clone()));
        }
        validate_attributes(&self.cookie)?;
        validate_prefixes(&self.name, &self.cookie)?;
        validate_breaker(self.circuit_breaker)?;
        match self.reissue_after {
            Some(every_grace) => validate_reissue(every_grace, self.write_policy),
            None => Ok(()),
        }
    }
}

fn validate_breaker(breaker: CircuitBreaker) -> Result<(), ConfigError> {
    if breaker.failures == 0 {
        return Err(ConfigError::InvalidCircuitBreaker(
            "`failures` must be at least 1",
        ));
    }
    if breaker.cool_down.is_zero() {
        return Err(ConfigError::InvalidCircuitBreaker(
            "`cool_down` must not be zero",
        ));
    }
    Ok(())
}

/// A type's name without its path: `RedisStore` for `actix_express_session::...::RedisStore`.
fn short_type_name<S>() -> &'static str {
    let full = std::any::type_name::<S>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}

fn validate_reissue(
    (every, grace): (Duration, Duration),
    policy: WritePolicy,
) -> Result<(), ConfigError> {
    if every.is_zero() {
        return Err(ConfigError::InvalidReissue("the interval must not be zero"));
    }
    if grace.is_zero() {
        return Err(ConfigError::InvalidReissue("the grace must not be zero"));
    }
    if grace >= every {
        return Err(ConfigError::InvalidReissue(
            "the grace must be shorter than the interval",
        ));
    }
    if policy != WritePolicy::Merge {
        return Err(ConfigError::ReissueWithoutMerge);
    }
    Ok(())
}

fn validate_attributes(cookie: &CookieOptions) -> Result<(), ConfigError> {
    if !cookie.path.starts_with('/') || !cookie.path.bytes().all(is_attribute_byte) {
        return Err(ConfigError::InvalidCookiePath(cookie.path.clone()));
    }
    if let Some(domain) = cookie
        .domain
        .as_ref()
        .filter(|d| d.is_empty() || !d.bytes().all(is_attribute_byte))
    {
        return Err(ConfigError::InvalidCookieDomain(domain.clone()));
    }
    let secure = cookie.secure == Secure::Always;
    if cookie.same_site == Some(SameSite::None) && !secure {
        return Err(ConfigError::SameSiteNoneWithoutSecure);
    }
    if cookie.partitioned && !secure {
        return Err(ConfigError::PartitionedWithoutSecure);
    }
    Ok(())
}

fn validate_prefixes(name: &str, cookie: &CookieOptions) -> Result<(), ConfigError> {
    let secure = cookie.secure == Secure::Always;
    if name.starts_with("__Host-") {
        if !secure {
            return Err(ConfigError::HostPrefix(
                "requires `cookie.secure(Secure::Always)`",
            ));
        }
        if cookie.domain.is_some() {
            return Err(ConfigError::HostPrefix("must not set `cookie.domain`"));
        }
        if cookie.path != "/" {
            return Err(ConfigError::HostPrefix("requires `cookie.path(\"/\")`"));
        }
    }
    if name.starts_with("__Secure-") && !secure {
        return Err(ConfigError::SecurePrefixWithoutSecure);
    }
    Ok(())
}

/// RFC 6265 / RFC 7230 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Characters a cookie attribute value may hold: visible ASCII except `;`.
fn is_attribute_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b';'
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
