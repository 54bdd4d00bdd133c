//! [`Flash`]: messages set in one request and read once in a later one, stored as
//! connect-flash stores them (`session.flash = { kind: [messages] }`), so a Node app
//! using connect-flash reads and writes the same messages.

use std::collections::BTreeMap;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{Either, FutureExt, LocalBoxFuture, Ready};
use serde_json::{Map, Value};

use crate::error::SessionError;
use crate::session::Session;

/// The session key holding the messages, connect-flash's.
pub const FLASH_KEY: &str = "flash";

/// Flash messages: [`push`](Self::push) one before a redirect, [`take`](Self::take)
/// them on the page that follows. An extractor over the [`Session`] (also
/// [`Flash::new`]); reading messages that are not there changes nothing, so a visitor
/// without any gets no session.
///
/// ```
/// use actix_express_session::Flash;
/// use actix_web::HttpResponse;
///
/// async fn save(flash: Flash) -> actix_web::Result<HttpResponse> {
///     flash.push("info", "Saved.")?;
///     Ok(HttpResponse::SeeOther().insert_header(("location", "/")).finish())
/// }
///
/// async fn index(flash: Flash) -> actix_web::Result<String> {
///     Ok(flash.take("info")?.join("\n"))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Flash {
    session: Session,
}

impl Flash {
    /// The flash messages of `session`.
    pub fn new(session: Session) -> Self {
        Flash { session }
    }

    /// Adds a message of `kind` (`"info"`, `"error"`, ...).
    ///
    /// # Errors
    /// [`SessionError::Inactive`] after `destroy`/`unset`.
    pub fn push(&self, kind: &str, message: impl Into<String>) -> Result<(), SessionError> {
        let mut all = self.stored()?;
        let list = all.entry(kind).or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        if let Value::Array(list) = list {
            list.push(Value::String(message.into()));
        }
        self.session.insert(FLASH_KEY, all)
    }

    /// The messages of `kind`, removed: the next call returns none.
    ///
    /// # Errors
    /// [`SessionError::Inactive`] after `destroy`/`unset` (when there were messages).
    pub fn take(&self, kind: &str) -> Result<Vec<String>, SessionError> {
        let mut all = self.stored()?;
        let Some(taken) = all.remove(kind) else {
            return Ok(Vec::new());
        };
        self.store(all)?;
        Ok(strings(taken))
    }

    /// Every message, by kind, removed.
    ///
    /// # Errors
    /// [`SessionError::Inactive`] after `destroy`/`unset` (when there were messages).
    pub fn take_all(&self) -> Result<BTreeMap<String, Vec<String>>, SessionError> {
        let all = self.stored()?;
        if all.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.store(Map::new())?;
        Ok(all.into_iter().map(|(k, v)| (k, strings(v))).collect())
    }

    fn stored(&self) -> Result<Map<String, Value>, SessionError> {
        Ok(self
            .session
            .get::<Map<String, Value>>(FLASH_KEY)
            .unwrap_or_default()
            .unwrap_or_default())
    }

    /// Keeps what is left; no key at all once it is empty.
    fn store(&self, left: Map<String, Value>) -> Result<(), SessionError> {
        if left.is_empty() {
            self.session.remove(FLASH_KEY).map(drop)
        } else {
            self.session.insert(FLASH_KEY, left)
        }
    }
}

/// The messages of one kind: connect-flash keeps a list of strings (a lone string, or
/// other values written by hand, are read as text too).
fn strings(value: Value) -> Vec<String> {
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match value {
        Value::Array(list) => list.into_iter().map(text).collect(),
        Value::Null => Vec::new(),
        other => vec![text(other)],
    }
}

impl FromRequest for Flash {
    type Error = SessionError;
    type Future = Either<
        Ready<Result<Self, SessionError>>,
        LocalBoxFuture<'static, Result<Self, SessionError>>,
    >;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        match Session::from_request(req, payload) {
            Either::Left(ready) => Either::Left(futures_util::future::ready(
                ready.into_inner().map(Flash::new),
            )),
            Either::Right(loading) => {
                Either::Right(loading.map(|r| r.map(Flash::new)).boxed_local())
            }
        }
    }
}
