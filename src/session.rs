//! The [`Session`] extractor and [`SessionExt`].

use std::cell::{Ref, RefMut};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::guard::GuardContext;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{ready, Either, LocalBoxFuture, Ready};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cookie::SessionCookie;
use crate::encoding::now_ms;
pub(crate) use crate::error::SessionError;
use crate::record::SessionRecord;
use crate::rules::Status;

pub(crate) mod load;
pub(crate) mod persist;
mod reissue;
mod state;

use load::{Begun, Start};
pub(crate) use state::{Slot, Slots, State};

/// The session of the current request: an extractor, cheap to clone (all clones are the
/// same session).
///
/// Values are stored as JSON, so anything `Serialize` goes in and anything
/// `Deserialize` comes out. Changes are saved at the end of the request by
/// express-session's rules.
///
/// ```
/// use actix_express_session::Session;
///
/// async fn index(session: Session) -> actix_web::Result<String> {
///     let views: u64 = session.get("views")?.unwrap_or(0);
///     session.insert("views", views + 1)?;
///     Ok(format!("views: {}", views + 1))
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    slot: Option<Rc<Slot>>,
    req: Option<HttpRequest>,
}

/// Shows the status and the key names only: IDs and values (tokens, personal data)
/// stay out of logs.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state() {
            Ok(st) => f
                .debug_struct("Session")
                .field("status", &SessionStatus::of(&st))
                .field("keys", &st.record.data.keys().collect::<Vec<_>>())
                .finish_non_exhaustive(),
            Err(e) => write!(f, "Session(<{e}>)"),
        }
    }
}

/// Where a session stands in this request: [`Session::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionStatus {
    /// Not in the store yet: no valid cookie came with the request, the cookie's
    /// session had expired, or [`Session::regenerate`] made it.
    New,
    /// Loaded from the store.
    Loaded,
    /// [`Session::unset`] was called: it will not be saved.
    Unset,
    /// [`Session::destroy`] was called: it is gone from the store.
    Destroyed,
}

impl SessionStatus {
    fn of(st: &State) -> Self {
        match st.status {
            Status::Unset => SessionStatus::Unset,
            Status::Destroyed => SessionStatus::Destroyed,
            Status::Active if st.loaded && !st.regenerated => SessionStatus::Loaded,
            Status::Active => SessionStatus::New,
        }
    }
}

impl Session {
    pub(crate) fn attach(slot: Rc<Slot>, req: &HttpRequest) -> Self {
        Session {
            slot: Some(slot),
            req: Some(req.clone()),
        }
    }

    /// The slot and the request, for the store calls.
    fn slot(&self) -> Result<(&Rc<Slot>, &HttpRequest), SessionError> {
        match (&self.slot, &self.req) {
            (Some(slot), Some(req)) => Ok((slot, req)),
            (Some(_), None) => Err(SessionError::InGuard),
            _ => Err(SessionError::NotWrapped),
        }
    }

    fn state(&self) -> Result<Ref<'_, State>, SessionError> {
        let slot = self.slot.as_ref().ok_or(SessionError::NotWrapped)?;
        Ref::filter_map(slot.state.borrow(), Option::as_ref).map_err(|_| SessionError::NotLoaded)
    }

    fn state_mut(&self) -> Result<RefMut<'_, State>, SessionError> {
        let slot = self.slot.as_ref().ok_or(SessionError::NotWrapped)?;
        RefMut::filter_map(slot.state.borrow_mut(), Option::as_mut)
            .map_err(|_| SessionError::NotLoaded)
    }

    /// Loads the session from the store if this request has not yet. The extractor and
    /// [`SessionExt::load_session`] do this for you.
    ///
    /// # Errors
    /// A store error.
    pub async fn load(&self) -> Result<(), SessionError> {
        let (slot, req) = self.slot()?;
        load::ensure_loaded(slot, req).await
    }

    /// Finishes a load that [`load::begin`] left waiting on the store.
    async fn complete_load(&self, start: Start) -> Result<(), SessionError> {
        let (slot, req) = self.slot()?;
        load::complete(slot, req, start).await
    }

    /// The session ID.
    pub fn id(&self) -> String {
        self.state().map(|s| s.id.clone()).unwrap_or_default()
    }

    /// Where the session stands: new, loaded, unset or destroyed.
    pub fn status(&self) -> SessionStatus {
        self.state()
            .map_or(SessionStatus::New, |st| SessionStatus::of(&st))
    }

    /// The value under `key`, converted from JSON; `None` when absent.
    ///
    /// # Errors
    /// [`SessionError::Json`] when the stored value does not fit `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let st = self.state()?;
        st.record
            .data
            .get(key)
            .map(T::deserialize)
            .transpose()
            .map_err(SessionError::Json)
    }

    /// Stores `value` under `key`. Storing a value equal to the current one is no change
    /// (the fingerprint at the end of the request compares the exact JSON).
    ///
    /// # Errors
    /// [`SessionError::ReservedKey`] for `cookie` and the middleware's own keys
    /// ([`CREATED_AT_KEY`](crate::CREATED_AT_KEY), [`ISSUED_AT_KEY`](crate::ISSUED_AT_KEY),
    /// [`REISSUED_TO_KEY`](crate::REISSUED_TO_KEY)),
    /// [`SessionError::Json`] when the value does not serialize,
    /// [`SessionError::Inactive`] after `destroy`/`unset`.
    pub fn insert(
        &self,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> Result<(), SessionError> {
        let key = key.into();
        if is_reserved(&key) {
            return Err(SessionError::ReservedKey);
        }
        let value = serde_json::to_value(value).map_err(SessionError::Json)?;
        let mut st = self.state_mut()?;
        st.active()?;
        st.insert(key, value);
        Ok(())
    }

    /// Removes `key`, returning its JSON value (`None` when it was not set).
    ///
    /// # Errors
    /// As [`insert`](Self::insert): [`SessionError::ReservedKey`] for the middleware's
    /// keys, [`SessionError::Inactive`] after `destroy`/`unset`.
    pub fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        if is_reserved(key) {
            return Err(SessionError::ReservedKey);
        }
        let mut st = self.state_mut()?;
        st.active()?;
        Ok(st.remove(key))
    }

    /// Removes `key`, returning its value converted from JSON (`None` when it was not
    /// set).
    ///
    /// # Errors
    /// As [`remove`](Self::remove), and [`SessionError::Json`] when the value does not
    /// fit `T` (it is removed all the same).
    pub fn remove_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.remove(key)?
            .map(serde_json::from_value)
            .transpose()
            .map_err(SessionError::Json)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.state().is_ok_and(|s| s.record.data.contains_key(key))
    }

    /// A copy of all the data (without the cookie and the middleware's own keys).
    pub fn entries(&self) -> Map<String, Value> {
        let mut data = self
            .state()
            .map(|s| s.record.data.clone())
            .unwrap_or_default();
        data.retain(|key, _| !SessionRecord::is_middleware_key(key));
        data
    }

    /// Removes every key (the session itself lives on, and keeps its creation and ID
    /// issue times; see [`destroy`](Self::destroy)).
    ///
    /// # Errors
    /// [`SessionError::Inactive`] after `destroy`/`unset`, as [`insert`](Self::insert).
    pub fn clear(&self) -> Result<(), SessionError> {
        let mut st = self.state_mut()?;
        st.active()?;
        st.clear_user_data();
        Ok(())
    }

    /// Whether the session holds no data (the middleware's own keys do not count).
    pub fn is_empty(&self) -> bool {
        self.state().map_or(true, |s| {
            s.record
                .data
                .keys()
                .all(|key| SessionRecord::is_middleware_key(key))
        })
    }

    /// A snapshot of the session cookie: [`max_age`](SessionCookie::max_age) is the
    /// time remaining.
    pub fn cookie(&self) -> SessionCookie {
        match self.state() {
            Ok(st) => st.record.cookie.clone(),
            Err(_) => crate::CookieOptions::default().new_cookie(false, now_ms()),
        }
    }

    /// Gives the cookie a new lifetime from now (`None`: a browser-session cookie), as
    /// `req.session.cookie.maxAge = ms` does. Unlike express-session this counts as a
    /// change: the session is saved and the cookie re-sent ("remember me").
    pub fn set_max_age(&self, max_age: Option<Duration>) {
        if let Ok(mut st) = self.state_mut() {
            st.record_mut().cookie.set_max_age(max_age, now_ms());
            st.mark_cookie_changed();
        }
    }

    /// Resets the expiry to now + the original max age (express-session's `touch()`);
    /// the middleware does this on every response anyway.
    pub fn touch(&self) {
        if let Ok(mut st) = self.state_mut() {
            st.record_mut().cookie.reset_expiry(now_ms());
        }
    }

    /// Drops the session from this request (`req.session = null`): it is not saved, and
    /// with [`Unset::Destroy`](crate::Unset::Destroy) it is destroyed at the end.
    pub fn unset(&self) {
        if let Ok(mut st) = self.state_mut() {
            if st.status == Status::Active {
                st.status = Status::Unset;
            }
        }
    }

    /// Replaces the session with a new, empty one under a new ID (and the current cookie
    /// options), destroying the old one in the store. Call it on login, against session
    /// fixation. The new session is saved and its cookie sent at the end of the request.
    ///
    /// With [`WritePolicy::Merge`](crate::WritePolicy::Merge) the new session is stored
    /// before the old one is destroyed, so an overlapping request never finds neither.
    ///
    /// # Errors
    /// When the store fails to destroy the old session (the new session is still in
    /// place), or a new ID cannot be generated or stored.
    pub async fn regenerate(&self) -> Result<(), SessionError> {
        let (slot, req) = self.slot()?;
        persist::regenerate(slot, req).await
    }

    /// Destroys the session in the store now; the response tells the browser to drop
    /// the cookie. With [`reissue_after`](crate::SessionMiddlewareBuilder::reissue_after)
    /// the session's old ID (its tombstone) goes too.
    ///
    /// # Errors
    /// When the store fails (the session then stays as it was).
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let (slot, req) = self.slot()?;
        persist::destroy(slot, req).await?;
        let mut st = self.state_mut()?;
        st.clear_data();
        st.status = Status::Destroyed;
        Ok(())
    }

    /// Re-reads the session from the store, replacing this request's data and cookie.
    ///
    /// # Errors
    /// [`SessionError::NotFound`] when the store no longer has it (or it has expired), or
    /// a store error.
    pub async fn reload(&self) -> Result<(), SessionError> {
        let (slot, _) = self.slot()?;
        persist::reload(slot).await
    }

    /// Saves the session to the store now (the end of the request then saves again only
    /// if something changed after this).
    ///
    /// # Errors
    /// [`SessionError::Inactive`] after `destroy`/`unset`, [`SessionError::NotFound`]
    /// when the session was destroyed meanwhile (by an overlapping request), or a store
    /// error.
    pub async fn save(&self) -> Result<(), SessionError> {
        let (slot, req) = self.slot()?;
        let generation = {
            let st = self.state()?;
            st.active()?;
            st.generation
        };
        let written = persist::save(slot, req).await?;
        let mut st = self.state_mut()?;
        if written == persist::Written::Gone {
            st.clear_data();
            st.status = Status::Destroyed;
            return Err(SessionError::NotFound);
        }
        st.mark_saved(generation);
        Ok(())
    }
}

/// What the extractors return: the session at once when it is loaded already.
pub(crate) type Extracted = Either<
    Ready<Result<Session, SessionError>>,
    LocalBoxFuture<'static, Result<Session, SessionError>>,
>;

impl FromRequest for Session {
    type Error = SessionError;
    type Future = Extracted;

    /// Loads the session on first use (see [`Load`](crate::Load)).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, None)
    }
}

/// The innermost session (`name: None`) or `name`'s, loaded on first use.
pub(crate) fn extract(req: &HttpRequest, name: Option<&str>) -> Extracted {
    let Some(slot) = slot_of(req, name) else {
        tracing::error!(
            path = req.path(),
            cookie = name,
            "Session extractor used on a request the SessionMiddleware did not handle \
             (not wrapped, or outside cookie.path)"
        );
        return Either::Left(ready(Err(SessionError::NotWrapped)));
    };
    let begun = load::begin(&slot, req);
    let session = Session::attach(slot, req);
    match begun {
        Begun::Done(result) => Either::Left(ready(result.map(|()| session))),
        Begun::Waiting(start) => Either::Right(Box::pin(async move {
            session.complete_load(start).await?;
            Ok(session)
        })),
    }
}

/// Reaches the session from a request outside a handler (guards, other middleware).
pub trait SessionExt {
    /// The request's session, once it is loaded.
    ///
    /// # Errors
    /// [`SessionError::NotWrapped`] when the middleware did not handle the request;
    /// [`SessionError::NotLoaded`] when nothing has loaded the session yet (with
    /// [`Load::Lazy`](crate::Load::Lazy), the default, the `Session` extractor or
    /// [`load_session`](Self::load_session) loads it; [`Load::Eager`](crate::Load::Eager)
    /// loads it before any guard or handler runs).
    fn get_session(&self) -> Result<Session, SessionError>;

    /// The request's session, loaded from the store first if need be. The session holds
    /// the request: in a middleware, drop it before calling the inner service.
    ///
    /// # Errors
    /// [`SessionError::NotWrapped`] when the middleware did not handle the request, or a
    /// store error.
    fn load_session(&self) -> LocalBoxFuture<'static, Result<Session, SessionError>>;

    /// With several session middlewares (different cookie names), the session of the one
    /// whose cookie is `name`, loaded first if need be. [`get_session`](Self::get_session),
    /// [`load_session`](Self::load_session) and the `Session` extractor give the
    /// innermost one's; [`NamedSession`](crate::NamedSession) is the extractor by name.
    ///
    /// # Errors
    /// [`SessionError::NotWrapped`] when no middleware for `name` handled the request,
    /// or a store error.
    fn load_session_named(
        &self,
        name: &str,
    ) -> LocalBoxFuture<'static, Result<Session, SessionError>>;
}

/// Keys the application cannot set: the cookie, and the middleware's own.
fn is_reserved(key: &str) -> bool {
    key == "cookie" || SessionRecord::is_middleware_key(key)
}

/// The slot of the innermost session middleware on this request (`name: None`) or of
/// the one whose cookie is `name`.
pub(crate) fn slot_of(req: &HttpRequest, name: Option<&str>) -> Option<Rc<Slot>> {
    let extensions = req.extensions();
    let slots = extensions.get::<Slots>()?;
    match name {
        None => Some(Rc::clone(slots.innermost())),
        Some(name) => slots.named(name).cloned(),
    }
}

fn session_of(req: &HttpRequest) -> Result<Session, SessionError> {
    let slot = slot_of(req, None).ok_or(SessionError::NotWrapped)?;
    let session = Session::attach(slot, req);
    session.state()?;
    Ok(session)
}

/// The session (innermost, or `name`'s), loaded first if need be.
pub(crate) fn load_session_of(
    req: &HttpRequest,
    name: Option<&str>,
) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
    let slot = slot_of(req, name);
    let req = req.clone();
    Box::pin(async move {
        let session = Session::attach(slot.ok_or(SessionError::NotWrapped)?, &req);
        session.load().await?;
        Ok(session)
    })
}

/// `SessionExt` for a type that holds an `HttpRequest` (`$req` reaches it).
macro_rules! session_ext {
    ($ty:ty, |$this:ident| $req:expr) => {
        impl SessionExt for $ty {
            fn get_session(&self) -> Result<Session, SessionError> {
                let $this = self;
                session_of($req)
            }
            fn load_session(&self) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
                let $this = self;
                load_session_of($req, None)
            }
            fn load_session_named(
                &self,
                name: &str,
            ) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
                let $this = self;
                load_session_of($req, Some(name))
            }
        }
    };
}

session_ext!(HttpRequest, |req| req);
session_ext!(ServiceRequest, |req| req.request());

impl<B> SessionExt for ServiceResponse<B> {
    fn get_session(&self) -> Result<Session, SessionError> {
        self.request().get_session()
    }
    fn load_session(&self) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
        self.request().load_session()
    }
    fn load_session_named(
        &self,
        name: &str,
    ) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
        self.request().load_session_named(name)
    }
}

/// In a guard (which runs before any extractor) the session is there once loaded: use
/// [`Load::Eager`](crate::Load::Eager), or an outer middleware that calls
/// [`load_session`](SessionExt::load_session). A guard reads and changes the session;
/// its store calls (`regenerate`, `destroy`, `reload`, `save`) belong in the handler and
/// return [`SessionError::InGuard`]; so does `load_session`, which cannot load here.
///
/// ```
/// use actix_express_session::SessionExt;
/// use actix_web::guard::{self, Guard};
///
/// let logged_in = guard::fn_guard(|ctx| {
///     ctx.get_session()
///         .is_ok_and(|s| s.contains_key("user"))
/// });
/// # drop(logged_in);
/// ```
impl SessionExt for GuardContext<'_> {
    fn get_session(&self) -> Result<Session, SessionError> {
        guard_session(self, None)
    }
    fn load_session(&self) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
        in_guard(guard_session(self, None))
    }
    fn load_session_named(
        &self,
        name: &str,
    ) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
        in_guard(guard_session(self, Some(name)))
    }
}

/// A guard's session (innermost, or `name`'s): readable, without store calls.
fn guard_session(ctx: &GuardContext<'_>, name: Option<&str>) -> Result<Session, SessionError> {
    let extensions = ctx.req_data();
    let slots = extensions.get::<Slots>().ok_or(SessionError::NotWrapped)?;
    let slot = match name {
        None => Some(slots.innermost()),
        Some(name) => slots.named(name),
    };
    let session = Session {
        slot: Some(Rc::clone(slot.ok_or(SessionError::NotWrapped)?)),
        req: None,
    };
    session.state()?;
    Ok(session)
}

/// A guard cannot load: a session not loaded yet is [`SessionError::InGuard`] there.
fn in_guard(
    session: Result<Session, SessionError>,
) -> LocalBoxFuture<'static, Result<Session, SessionError>> {
    Box::pin(ready(match session {
        Err(SessionError::NotLoaded) => Err(SessionError::InGuard),
        other => other,
    }))
}
