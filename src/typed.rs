//! [`TypedSession`]: the session's data as a type of your own.

use std::fmt;
use std::ops::{Deref, DerefMut};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{FutureExt, LocalBoxFuture};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::SessionError;
use crate::session::Session;

/// An extractor of the session's data as `T`: each field of `T` is a top-level key of
/// the session, as a Node app sees it (`req.session.user`). A session without data
/// gives `T::default()`. Change it through `&mut`; when the handler is done with it (the
/// extractor is dropped), the fields that changed are written back to the session and
/// saved by the usual rules; an unchanged value changes nothing.
///
/// Keys of the session that `T` does not name are left alone, so several types can
/// share one session. A value that no longer fits `T` is an error
/// ([`SessionError::Json`], a 500): give `T` `#[serde(default)]` to read older
/// sessions.
///
/// ```
/// use actix_express_session::TypedSession;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// #[serde(default)]
/// struct Cart {
///     items: Vec<String>,
///     coupon: Option<String>,
/// }
///
/// async fn add(mut cart: TypedSession<Cart>) -> String {
///     cart.items.push("book".to_owned());
///     format!("{} items", cart.items.len())
/// }
/// ```
pub struct TypedSession<T: Serialize> {
    value: T,
    /// The fields as loaded: only what differs from them is written back.
    loaded: Map<String, Value>,
    session: Session,
}

impl<T: Serialize + DeserializeOwned + Default> TypedSession<T> {
    /// Reads `T` from `session`.
    ///
    /// # Errors
    /// [`SessionError::Json`] when the session's data does not fit `T`.
    pub fn from_session(session: Session) -> Result<Self, SessionError> {
        let data = session.entries();
        let value = if data.is_empty() {
            T::default()
        } else {
            T::deserialize(Value::Object(data)).map_err(SessionError::Json)?
        };
        let loaded = fields(&value)?;
        Ok(TypedSession {
            value,
            loaded,
            session,
        })
    }
}

impl<T: Serialize> TypedSession<T> {
    /// The session underneath (for `regenerate`, `destroy`, the cookie, ...).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Writes the changed fields back now (dropping the extractor does it too).
    ///
    /// # Errors
    /// [`SessionError::Json`] when `T` does not serialize to a JSON object, a reserved
    /// key ([`SessionError::ReservedKey`]), or [`SessionError::Inactive`] after
    /// `destroy`/`unset`.
    pub fn write_back(&mut self) -> Result<(), SessionError> {
        let now = fields(&self.value)?;
        for (key, value) in &now {
            if self.loaded.get(key) != Some(value) {
                self.session.insert(key.clone(), value)?;
            }
        }
        for key in self.loaded.keys().filter(|key| !now.contains_key(*key)) {
            self.session.remove(key)?;
        }
        self.loaded = now;
        Ok(())
    }
}

/// `T`'s fields as JSON.
fn fields<T: Serialize>(value: &T) -> Result<Map<String, Value>, SessionError> {
    match serde_json::to_value(value).map_err(SessionError::Json)? {
        Value::Object(map) => Ok(map),
        other => Err(SessionError::Json(serde::ser::Error::custom(format!(
            "a typed session must serialize to a JSON object, not {other}"
        )))),
    }
}

impl<T: Serialize> Drop for TypedSession<T> {
    fn drop(&mut self) {
        if let Err(e) = self.write_back() {
            tracing::error!("a typed session's changes were not written back: {e}");
        }
    }
}

impl<T: Serialize> Deref for TypedSession<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Serialize> DerefMut for TypedSession<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// Shows the field names only, as [`Session`]'s `Debug` does.
impl<T: Serialize> fmt::Debug for TypedSession<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSession")
            .field("type", &std::any::type_name::<T>())
            .field("fields", &self.loaded.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned + Default + 'static> FromRequest for TypedSession<T> {
    type Error = SessionError;
    type Future = LocalBoxFuture<'static, Result<Self, SessionError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Session::from_request(req, payload)
            .map(|session| TypedSession::from_session(session?))
            .boxed_local()
    }
}
