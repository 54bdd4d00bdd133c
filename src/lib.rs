//! # actix-express-session
//!
//! [express-session] for [actix-web] 4: the browser holds only a signed session-ID
//! cookie, the data lives server-side in a store (in memory, Redis, PostgreSQL), and the
//! middleware decides per response whether to save, touch, send the cookie or destroy by
//! express-session's own rules (`resave`, `saveUninitialized`, `rolling`, `unset`).
//! Cookies and stored records are wire-compatible with express-session, connect-redis
//! and connect-pg-simple, so a Node service can move to Rust without logging anyone out.
//!
//! ## Quick start
//!
//! ```
//! use actix_express_session::{MemoryStore, Session, SessionMiddleware};
//! use actix_web::{test, web, App};
//!
//! async fn index(session: Session) -> actix_web::Result<String> {
//!     let views: u64 = session.get("views")?.unwrap_or(0);
//!     session.insert("views", views + 1)?;
//!     Ok(format!("views: {}", views + 1))
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let sessions = SessionMiddleware::builder(MemoryStore::new(), "keyboard cat")
//!     .build()
//!     .expect("a valid configuration");
//! let app = test::init_service(App::new().wrap(sessions).route("/", web::get().to(index))).await;
//!
//! let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
//! let cookie = res.headers().get("set-cookie").expect("a new session sets its cookie");
//! let cookie = cookie.to_str().unwrap().to_owned();
//! assert!(cookie.starts_with("connect.sid=s%3A"));
//! assert!(cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"));
//! assert_eq!(test::read_body(res).await, "views: 1");
//!
//! let pair = cookie.split(';').next().unwrap();
//! let req = test::TestRequest::get().uri("/").insert_header(("cookie", pair)).to_request();
//! let res = test::call_service(&app, req).await;
//! assert!(res.headers().get("set-cookie").is_none(), "same session, nothing to re-send");
//! assert_eq!(test::read_body(res).await, "views: 2");
//! # });
//! ```
//!
//! ## Options
//!
//! | builder call | express-session | default |
//! |---|---|---|
//! | [`SessionMiddleware::builder`]`(store, secret)` | `store`, `secret` | required; a list rotates secrets |
//! | [`.name(..)`](SessionMiddlewareBuilder::name) | `name` | `"connect.sid"` |
//! | [`.cookie(..)`](SessionMiddlewareBuilder::cookie) | `cookie` | path `/`, `HttpOnly`, [`Secure::Auto`], [`SameSite::Lax`], no expiry |
//! | [`.resave(..)`](SessionMiddlewareBuilder::resave) | `resave` | `false` |
//! | [`.save_uninitialized(..)`](SessionMiddlewareBuilder::save_uninitialized) | `saveUninitialized` | `false` |
//! | [`.rolling(..)`](SessionMiddlewareBuilder::rolling) | `rolling` | `false` |
//! | [`.unset(..)`](SessionMiddlewareBuilder::unset) | `unset` | [`Unset::Keep`] |
//! | [`.trust_proxy(..)`](SessionMiddlewareBuilder::trust_proxy) | `proxy` | [`TrustProxy::Never`] |
//! | [`.genid(..)`](SessionMiddlewareBuilder::genid) | `genid` | 24 random bytes, base64url |
//! | [`.write_policy(..)`](SessionMiddlewareBuilder::write_policy) | (none) | [`WritePolicy::Merge`]: no lost updates, no resurrected logouts |
//! | [`.load(..)`](SessionMiddlewareBuilder::load) | (none) | [`Load::Lazy`]: no store call for a request that never uses the session |
//! | [`.touch_after(..)`](SessionMiddlewareBuilder::touch_after) | (none) | 60 s between touches of an unchanged session |
//! | [`.absolute_timeout(..)`](SessionMiddlewareBuilder::absolute_timeout) | (none) | off: a session's lifetime however active it is |
//! | [`.reissue_after(..)`](SessionMiddlewareBuilder::reissue_after) | (none) | off: a new ID every so often, with a grace window for the old one |
//! | [`.resign_rotated(..)`](SessionMiddlewareBuilder::resign_rotated) | (none) | `true`: old-secret cookies come back signed with the newest |
//! | [`.cookie_for(..)`](SessionMiddlewareBuilder::cookie_for) | `cookie` as a function | off: cookie options chosen per request |
//! | [`.circuit_breaker(..)`](SessionMiddlewareBuilder::circuit_breaker) | (none) | [`CircuitBreaker::default`]: fail fast while the store is down |
//! | [`.outage_policy(..)`](SessionMiddlewareBuilder::outage_policy) | (none) | [`OutagePolicy::InternalServerError`]: an empty 500 |
//! | [`.on_event(..)`](SessionMiddlewareBuilder::on_event) | (none) | none: a callback per [`SessionEvent`] |
//!
//! [`build`](SessionMiddlewareBuilder::build) returns a [`ConfigError`] naming the
//! option for an invalid combination; nothing panics at request time.
//!
//! ## Stores
//!
//! [`MemoryStore`] is always available (one process, evicts expired sessions).
//! `RedisStore` (feature `redis`, standalone or Cluster, connect-redis records) and
//! `PostgresStore` (feature `postgres`, connect-pg-simple's table) are the distributed
//! ones. Implement [`store::SessionStore`] for anything else.
//!
//! ## Beyond the `Session` extractor
//!
//! [`TypedSession`] reads and writes the session as a type of your own, [`Flash`] keeps
//! messages for the next request (connect-flash's layout), [`NamedSession`] reaches one
//! of several session middlewares by cookie name, and [`SessionExt`] reaches the session
//! from a middleware or a guard.
//!
//! ## Express compatibility
//!
//! The cookie is `s:` + ID + `.` + HMAC-SHA256 signature, percent-encoded as Node's
//! `cookie` package does; the record is express-session's JSON object with its `cookie`
//! field. Deliberate differences: `resave` and `saveUninitialized` default to `false`,
//! `SameSite=Lax` and `Secure::Auto` are on by default, `destroy()` also clears the
//! browser's cookie, an explicit [`Session::set_max_age`] counts as a change, saving
//! happens before the response leaves (a store failure is an error response), and a withheld
//! `Secure` cookie is logged.
//!
//! ## Feature flags
//!
//! ```toml
//! [dependencies]
//! actix-express-session = { version = "0.1", features = ["redis"] } # or "postgres"
//! ```
//!
//! `metrics` adds counters and latency histograms through the `metrics` facade;
//! `testing` makes the store-conformance suite public (`testing::conformance`, for your own store).
//!
//! ## Security
//!
//! Signatures are checked in constant time, IDs carry 192 random bits, the cookie holds
//! no session data, and a tampered, unsigned or malformed cookie is simply a new
//! session. Secrets never appear in `Debug` output, logs or errors.
//!
//! [express-session]: https://github.com/expressjs/session
//! [actix-web]: https://actix.rs

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod breaker;
mod config;
mod context;
mod cookie;
mod delta;
mod encoding;
mod error;
mod events;
mod flash;
mod gate;
mod id;
mod key_hash;
mod middleware;
mod named;
mod observe;
mod outage;
mod record;
mod rules;
mod session;
mod signature;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod typed;
mod verified;
mod watched;

pub use breaker::CircuitBreaker;
pub use config::{
    ConfigError, Load, SessionMiddleware, SessionMiddlewareBuilder, TrustProxy, Unset, WritePolicy,
};
pub use cookie::{CookieOptions, Priority, SameSite, Secure, SessionCookie};
pub use error::SessionError;
pub use events::SessionEvent;
pub use flash::{Flash, FLASH_KEY};
pub use id::{generate_id, uuid_v4_id};
#[doc(hidden)]
pub use middleware::SessionMiddlewareService;
pub use named::{NamedSession, SessionName};
pub use outage::OutagePolicy;
pub use record::{Fingerprint, SessionRecord, CREATED_AT_KEY, ISSUED_AT_KEY, REISSUED_TO_KEY};
pub use session::{Session, SessionExt, SessionStatus};
pub use signature::{sign, unsign, Secrets};
pub use store::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::RedisStore;
pub use typed::TypedSession;
