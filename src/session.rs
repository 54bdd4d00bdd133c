//! The [`Session`] extractor, its per-request state, and [`SessionError`].

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::{ready, Ready};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cookie::SessionCookie;
use crate::encoding::now_ms;
use crate::middleware::Context;
use crate::store::StoreError;

mod state;

pub(crate) use state::{State, Status};

/// Why a session operation failed. As an actix-web error it is a 500 with an empty
/// body: the details go to the log, never to the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// The request did not pass through [`SessionMiddleware`](crate::SessionMiddleware)
    /// (not wrapped, or outside `cookie.path`).
    NotWrapped,
    /// `cookie` is reserved for the session cookie's state.
    ReservedKey,
    /// A value could not be converted to or from JSON.
    Json(serde_json::Error),
    /// The session was destroyed or unset in this request; call
    /// [`Session::regenerate`] to start a new one.
    Inactive,
    /// [`Session::reload`] found no stored session.
    NotFound,
    /// The operating system's random source failed.
    Random,
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionError::NotWrapped => "the session middleware did not handle this request",
            SessionError::ReservedKey => "the session key `cookie` is reserved",
            SessionError::Json(_) => "a session value could not be converted to or from JSON",
            SessionError::Inactive => "the session was destroyed or unset in this request",
            SessionError::NotFound => "failed to load session: not in the store",
            SessionError::Random => "could not generate a session ID",
            SessionError::Store(_) => "the session store failed",
        })
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::Json(e) => Some(e),
            SessionError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Store(e)
    }
}

impl ResponseError for SessionError {
    fn error_response(&self) -> HttpResponse {
        HttpResponse::InternalServerError().finish()
    }
}

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
    state: Option<Rc<RefCell<State>>>,
    req: Option<HttpRequest>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state() {
            Ok(st) => f
                .debug_struct("Session")
                .field("id", &"<redacted>")
                .field("data", &st.record.data)
                .finish(),
            Err(_) => f.write_str("Session(<not wrapped>)"),
        }
    }
}

impl Session {
    pub(crate) fn attach(state: Rc<RefCell<State>>, req: &HttpRequest) -> Self {
        Session {
            state: Some(state),
            req: Some(req.clone()),
        }
    }

    fn detached() -> Self {
        Session {
            state: None,
            req: None,
        }
    }

    fn state(&self) -> Result<Ref<'_, State>, SessionError> {
        self.state
            .as_ref()
            .map(|s| s.borrow())
            .ok_or(SessionError::NotWrapped)
    }

    /// What an async store call needs, taken out so that no borrow is held across it.
    fn store_handle(&self) -> Result<(Rc<Context>, String), SessionError> {
        let st = self.state()?;
        Ok((Rc::clone(&st.ctx), st.id.clone()))
    }

    fn state_mut(&self) -> Result<RefMut<'_, State>, SessionError> {
        self.state
            .as_ref()
            .map(|s| s.borrow_mut())
            .ok_or(SessionError::NotWrapped)
    }

    /// The session ID (empty if the request was not wrapped by the middleware).
    pub fn id(&self) -> String {
        self.state().map(|s| s.id.clone()).unwrap_or_default()
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
    /// [`SessionError::ReservedKey`] for `cookie`, [`SessionError::Json`] when the value
    /// does not serialize, [`SessionError::Inactive`] after `destroy`/`unset`.
    pub fn insert(
        &self,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> Result<(), SessionError> {
        let key = key.into();
        if key == "cookie" {
            return Err(SessionError::ReservedKey);
        }
        let value = serde_json::to_value(value).map_err(SessionError::Json)?;
        let mut st = self.state_mut()?;
        st.active()?;
        st.change(|data| data.insert(key, value));
        Ok(())
    }

    /// Removes `key`, returning its JSON value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut st = self.state_mut().ok()?;
        if st.record.data.contains_key(key) {
            st.change(|data| data.remove(key))
        } else {
            None
        }
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.state().is_ok_and(|s| s.record.data.contains_key(key))
    }

    /// A copy of all the data (without the cookie).
    pub fn entries(&self) -> Map<String, Value> {
        self.state()
            .map(|s| s.record.data.clone())
            .unwrap_or_default()
    }

    /// Removes every key (the session itself lives on; see [`destroy`](Self::destroy)).
    pub fn clear(&self) {
        if let Ok(mut st) = self.state_mut() {
            st.clear_data();
        }
    }

    /// Whether the session holds no data.
    pub fn is_empty(&self) -> bool {
        self.state().map_or(true, |s| s.record.data.is_empty())
    }

    /// A snapshot of the session cookie: [`max_age`](SessionCookie::max_age) is the
    /// time remaining. (Default attributes if the request was not wrapped.)
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
            st.record.cookie.set_max_age(max_age, now_ms());
            st.mark_cookie_changed();
        }
    }

    /// Resets the expiry to now + the original max age (express-session's `touch()`);
    /// the middleware does this on every response anyway.
    pub fn touch(&self) {
        if let Ok(mut st) = self.state_mut() {
            st.record.cookie.reset_expiry(now_ms());
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
    /// # Errors
    /// When the store fails to destroy the old session (the new session is still in
    /// place), or a new ID cannot be generated.
    pub async fn regenerate(&self) -> Result<(), SessionError> {
        let (ctx, old_id) = self.store_handle()?;
        let destroyed = ctx.store.destroy(&old_id).await;
        let req = ServiceRequest::from_request(self.req.clone().ok_or(SessionError::NotWrapped)?);
        let id = ctx.config.new_id(&req)?;
        self.state_mut()?.regenerate_as(id);
        destroyed.map_err(SessionError::Store)
    }

    /// Destroys the session in the store now; the response tells the browser to drop
    /// the cookie.
    ///
    /// # Errors
    /// When the store fails (the session then stays as it was).
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let (ctx, id) = self.store_handle()?;
        ctx.store.destroy(&id).await?;
        let mut st = self.state_mut()?;
        st.clear_data();
        st.status = Status::Destroyed;
        Ok(())
    }

    /// Re-reads the session from the store, replacing this request's data and cookie.
    ///
    /// # Errors
    /// [`SessionError::NotFound`] when the store no longer has it, or a store error.
    pub async fn reload(&self) -> Result<(), SessionError> {
        let (ctx, id) = self.store_handle()?;
        let record = ctx.store.get(&id).await?.ok_or(SessionError::NotFound)?;
        let mut st = self.state_mut()?;
        st.change(|data| *data = record.data);
        st.record.cookie = record.cookie;
        st.status = Status::Active;
        Ok(())
    }

    /// Saves the session to the store now (the end of the request then saves again only
    /// if something changed after this).
    ///
    /// # Errors
    /// [`SessionError::Inactive`] after `destroy`/`unset`, or a store error.
    pub async fn save(&self) -> Result<(), SessionError> {
        let (ctx, id, record, generation) = {
            let st = self.state()?;
            st.active()?;
            (
                Rc::clone(&st.ctx),
                st.id.clone(),
                st.record.clone(),
                st.generation,
            )
        };
        ctx.store.set(&id, &record).await?;
        let mut st = self.state_mut()?;
        st.mark_saved(generation, record.fingerprint());
        Ok(())
    }
}

impl FromRequest for Session {
    type Error = SessionError;
    type Future = Ready<Result<Session, SessionError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            state_of(req)
                .map(|s| Session::attach(s, req))
                .ok_or_else(|| {
                    tracing::error!(
                        path = req.path(),
                        "Session extractor used on a request the SessionMiddleware did not handle \
                 (not wrapped, or outside cookie.path)"
                    );
                    SessionError::NotWrapped
                }),
        )
    }
}

/// Reaches the session from a request outside a handler (guards, other middleware).
pub trait SessionExt {
    /// The request's session. When the middleware did not handle the request, reads see
    /// an empty session and fallible calls return [`SessionError::NotWrapped`].
    fn get_session(&self) -> Session;
}

/// The session state the middleware put on this request, if it did.
fn state_of(req: &HttpRequest) -> Option<Rc<RefCell<State>>> {
    req.extensions().get::<Rc<RefCell<State>>>().cloned()
}

fn session_of(req: &HttpRequest) -> Session {
    state_of(req).map_or_else(Session::detached, |s| Session::attach(s, req))
}

impl SessionExt for HttpRequest {
    fn get_session(&self) -> Session {
        session_of(self)
    }
}

impl SessionExt for ServiceRequest {
    fn get_session(&self) -> Session {
        session_of(self.request())
    }
}

impl<B> SessionExt for ServiceResponse<B> {
    fn get_session(&self) -> Session {
        session_of(self.request())
    }
}
