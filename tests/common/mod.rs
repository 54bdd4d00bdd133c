//! Helpers shared by the integration tests: a standard set of routes, cookie parsing,
//! and two store wrappers (one records the calls a real store receives, one fails on
//! demand for fault injection).
#![allow(dead_code, unreachable_pub)]

pub mod conformance;
pub mod logs;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_express_session::store::{
    Loaded, SaveOutcome, SessionStore, StoreError, StoreFuture, Version,
};
use actix_express_session::{MemoryStore, Session, SessionMiddleware, SessionRecord};
use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App, Error, HttpResponse};

pub const SECRET: &str = "keyboard cat";

/// Routes every test app serves.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/count", web::get().to(count))
        .route("/read", web::get().to(read))
        .route("/noop", web::get().to(|| async { "ok" }))
        .route("/set/{key}/{value}", web::get().to(set))
        .route("/regenerate", web::get().to(regenerate))
        .route("/destroy", web::get().to(destroy))
        .route("/unset", web::get().to(unset))
        .route("/save", web::get().to(save))
        .route("/reload", web::get().to(reload))
        .route("/max-age/{secs}", web::get().to(max_age))
        .route("/session-cookie", web::get().to(session_cookie))
        .route("/id", web::get().to(|s: Session| async move { s.id() }));
}

async fn count(session: Session) -> actix_web::Result<String> {
    let n: u64 = session.get("n")?.unwrap_or(0);
    session.insert("n", n + 1)?;
    Ok((n + 1).to_string())
}

async fn read(session: Session) -> actix_web::Result<String> {
    Ok(session.get::<u64>("n")?.unwrap_or(0).to_string())
}

async fn set(
    session: Session,
    path: web::Path<(String, String)>,
) -> actix_web::Result<&'static str> {
    let (key, value) = path.into_inner();
    let value: serde_json::Value =
        serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
    session.insert(key, value)?;
    Ok("ok")
}

async fn regenerate(session: Session) -> actix_web::Result<String> {
    session.regenerate().await?;
    Ok(session.id())
}

async fn destroy(session: Session) -> actix_web::Result<&'static str> {
    session.destroy().await?;
    Ok("bye")
}

async fn unset(session: Session) -> &'static str {
    session.unset();
    "unset"
}

async fn save(session: Session) -> actix_web::Result<&'static str> {
    session.insert("saved", true)?;
    session.save().await?;
    Ok("saved")
}

async fn reload(session: Session) -> actix_web::Result<String> {
    session.reload().await?;
    Ok(session.get::<u64>("n")?.unwrap_or(0).to_string())
}

async fn max_age(session: Session, secs: web::Path<u64>) -> &'static str {
    let secs = secs.into_inner();
    session.set_max_age((secs > 0).then(|| Duration::from_secs(secs)));
    "ok"
}

async fn session_cookie(session: Session) -> HttpResponse {
    let c = session.cookie();
    HttpResponse::Ok().json(serde_json::json!({
        "max_age": c.max_age().map(|d| d.as_secs()),
        "original_max_age": c.original_max_age().map(|d| d.as_secs()),
        "secure": c.secure(),
        "path": c.path(),
    }))
}

/// A loopback port nobody listens on (right now).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// An app serving [`routes`] behind `mw`.
pub async fn app<S: SessionStore>(
    mw: SessionMiddleware<S>,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = Error> {
    test::init_service(App::new().wrap(mw).configure(routes)).await
}

/// GET `uri`, with `cookie` as the `Cookie` header when given.
pub async fn get<S, B>(app: &S, uri: &str, cookie: Option<&str>) -> ServiceResponse<B>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
{
    let mut req = test::TestRequest::get().uri(uri);
    if let Some(cookie) = cookie {
        req = req.insert_header(("cookie", cookie));
    }
    test::call_service(app, req.to_request()).await
}

/// Every `Set-Cookie` value of a response.
pub fn set_cookies<B>(res: &ServiceResponse<B>) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .map(|v| v.to_str().expect("ASCII cookie").to_owned())
        .collect()
}

/// The single `Set-Cookie` value, if any (panics if there are several).
pub fn set_cookie<B>(res: &ServiceResponse<B>) -> Option<String> {
    let all = set_cookies(res);
    assert!(all.len() <= 1, "more than one Set-Cookie: {all:?}");
    all.into_iter().next()
}

/// `name=value` of a `Set-Cookie` value, ready for a `Cookie` header.
pub fn pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .expect("a name=value pair")
        .to_owned()
}

/// The session ID inside a `connect.sid=s%3A<id>.<sig>` cookie.
pub fn sid(set_cookie: &str) -> String {
    let value = pair(set_cookie)
        .split_once('=')
        .expect("name=value")
        .1
        .replace("%3A", ":");
    let value = value
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let signed = value.strip_prefix("s:").expect("signed");
    signed.rsplit_once('.').expect("a signature").0.to_owned()
}

/// One attribute (`Expires`, `Path`, ...) of a `Set-Cookie` value; `Some("")` for flags.
pub fn attr(set_cookie: &str, name: &str) -> Option<String> {
    set_cookie.split(';').skip(1).map(str::trim).find_map(|a| {
        let (key, value) = a.split_once('=').unwrap_or((a, ""));
        key.eq_ignore_ascii_case(name).then(|| value.to_owned())
    })
}

pub async fn body<B: actix_web::body::MessageBody>(res: ServiceResponse<B>) -> String {
    String::from_utf8(actix_web::test::read_body(res).await.to_vec()).expect("UTF-8 body")
}

/// A real [`MemoryStore`] that records which calls it receives (`create sid`,
/// `load sid`, `save_if sid`, `touch sid`, ...): one entry per store round trip.
#[derive(Clone, Default)]
pub struct Recorder {
    pub inner: MemoryStore,
    calls: Arc<Mutex<Vec<String>>>,
    /// How long each `save_if` takes, as a network store's round trip would.
    save_delay: Option<std::time::Duration>,
    /// Answers `load_now` (as the memory store itself does) instead of leaving every
    /// load to `load`.
    at_hand: bool,
}

impl Recorder {
    /// A recorder whose `save_if` calls each take `delay`.
    pub fn with_save_delay(delay: std::time::Duration) -> Self {
        Recorder {
            save_delay: Some(delay),
            ..Recorder::default()
        }
    }

    /// A recorder that answers `load_now`, logged as `load_now sid`.
    pub fn at_hand() -> Self {
        Recorder {
            at_hand: true,
            ..Recorder::default()
        }
    }

    pub fn calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().expect("lock"))
    }

    fn log(&self, op: &str, sid: &str) {
        self.calls.lock().expect("lock").push(format!("{op} {sid}"));
    }
}

impl SessionStore for Recorder {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.log("get", sid);
        self.inner.get(sid)
    }
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.log("set", sid);
        self.inner.set(sid, rec)
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.log("destroy", sid);
        self.inner.destroy(sid)
    }
    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.log("touch", sid);
        self.inner.touch(sid, rec)
    }
    fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        self.log("load", sid);
        self.inner.load(sid)
    }
    fn load_now(&self, sid: &str) -> Option<Result<Option<Loaded>, StoreError>> {
        if !self.at_hand {
            return None;
        }
        self.log("load_now", sid);
        self.inner.load_now(sid)
    }
    fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> StoreFuture<'a, Option<Version>> {
        self.log("create", sid);
        self.inner.create(sid, rec)
    }
    fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> StoreFuture<'a, SaveOutcome> {
        self.log("save_if", sid);
        let Some(delay) = self.save_delay else {
            return self.inner.save_if(sid, rec, expected);
        };
        Box::pin(async move {
            actix_rt::time::sleep(delay).await;
            self.inner.save_if(sid, rec, expected).await
        })
    }
    fn all(&self) -> StoreFuture<'_, HashMap<String, SessionRecord>> {
        self.inner.all()
    }
    fn len(&self) -> StoreFuture<'_, usize> {
        self.inner.len()
    }
    fn clear(&self) -> StoreFuture<'_, ()> {
        self.inner.clear()
    }
}

/// Fault injection: a [`MemoryStore`] (every method, the atomic ones too) whose calls
/// fail on demand.
#[derive(Clone)]
pub struct Flaky {
    pub inner: MemoryStore,
    /// Calls that still succeed before every call fails (`u64::MAX`: healthy).
    ok_left: Arc<AtomicU64>,
    /// Calls that reached the store, failed or not.
    reached: Arc<AtomicU64>,
}

impl Default for Flaky {
    fn default() -> Self {
        Flaky {
            inner: MemoryStore::new(),
            ok_left: Arc::new(AtomicU64::new(u64::MAX)),
            reached: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct Outage;

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected outage")
    }
}

impl std::error::Error for Outage {}

impl Flaky {
    /// Every call fails from now on (`true`) or none does (`false`).
    pub fn fail(&self, on: bool) {
        self.ok_left
            .store(if on { 0 } else { u64::MAX }, Ordering::SeqCst);
    }

    /// The next `calls` calls succeed, then every call fails.
    pub fn fail_after(&self, calls: u64) {
        self.ok_left.store(calls, Ordering::SeqCst);
    }

    /// How many calls have reached the store so far.
    pub fn reached(&self) -> u64 {
        self.reached.load(Ordering::SeqCst)
    }

    fn check<'a, T: Send + 'a>(
        &self,
        op: impl FnOnce() -> StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        self.reached.fetch_add(1, Ordering::SeqCst);
        let left = self.ok_left.load(Ordering::SeqCst);
        if left == 0 {
            return Box::pin(async { Err(StoreError::backend(Outage)) });
        }
        if left != u64::MAX {
            self.ok_left.fetch_sub(1, Ordering::SeqCst);
        }
        op()
    }
}

impl SessionStore for Flaky {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.check(|| self.inner.get(sid))
    }
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.check(|| self.inner.set(sid, rec))
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.check(|| self.inner.destroy(sid))
    }
    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.check(|| self.inner.touch(sid, rec))
    }
    fn load<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        self.check(|| self.inner.load(sid))
    }
    fn create<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
    ) -> StoreFuture<'a, Option<Version>> {
        self.check(|| self.inner.create(sid, rec))
    }
    fn save_if<'a>(
        &'a self,
        sid: &'a str,
        rec: &'a Arc<SessionRecord>,
        expected: &'a Version,
    ) -> StoreFuture<'a, SaveOutcome> {
        self.check(|| self.inner.save_if(sid, rec, expected))
    }
}

/// A store with only the required methods (`get`, `set`, `destroy`) over a
/// [`MemoryStore`]: what the trait's default methods do for a third-party store.
#[derive(Clone, Default)]
pub struct Minimal(pub MemoryStore);

impl SessionStore for Minimal {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        self.0.get(sid)
    }
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.0.set(sid, rec)
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.0.destroy(sid)
    }
}
