//! [`SessionMiddlewareBuilder`]: every option, checked by `build`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::HttpRequest;

use super::validate::{
    is_token_byte, validate_attributes, validate_breaker, validate_prefixes, validate_reissue,
};
use super::{
    Config, ConfigError, CookieFn, Genid, Load, Reissue, SessionMiddleware, TrustProxy, Unset,
    WritePolicy, DEFAULT_TOUCH_AFTER,
};
use crate::breaker::{Breaker, CircuitBreaker};
use crate::cookie::CookieOptions;
use crate::events::{Hook, SessionEvent};
use crate::observe::Tagger;
use crate::outage::OutagePolicy;
use crate::rules::Rules;
use crate::signature::{Keys, Secrets};
use crate::store::SessionStore;
use crate::watched::Watched;

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
            cookie_fn: None,
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
    cookie_fn: Option<CookieFn>,
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

    /// Cookie attributes chosen per request, as express-session 1.19's `cookie` option
    /// given as a function: called for each request the middleware sees; its `path`
    /// decides whether the request has a session at all, and the other attributes go
    /// to the sessions it creates (a loaded session keeps the attributes it was created
    /// with). The options are checked as [`build`](Self::build) checks the static ones:
    /// invalid ones are a 500 with an `error` line naming the problem. Replaces
    /// [`cookie`](Self::cookie), which stays the default for nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actix_express_session::{CookieOptions, MemoryStore, SessionMiddleware};
    ///
    /// // Shorter sessions on the admin host.
    /// let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
    ///     .cookie_for(|req| {
    ///         let admin = req.connection_info().host().starts_with("admin.");
    ///         let hours = if admin { 1 } else { 24 };
    ///         CookieOptions::default().max_age(Duration::from_secs(hours * 3600))
    ///     })
    ///     .build()
    ///     .expect("a valid configuration");
    /// # drop(sessions);
    /// ```
    pub fn cookie_for(
        mut self,
        cookie: impl Fn(&ServiceRequest) -> CookieOptions + Send + Sync + 'static,
    ) -> Self {
        self.cookie_fn = Some(Arc::new(cookie));
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

    /// Whether to believe `X-Forwarded-Proto` for [`Secure::Auto`](crate::Secure::Auto) and for withholding
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
            cookie_fn: self.cookie_fn,
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

/// A type's name without its path: `RedisStore` for `actix_express_session::...::RedisStore`.
fn short_type_name<S>() -> &'static str {
    let full = std::any::type_name::<S>();
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}
