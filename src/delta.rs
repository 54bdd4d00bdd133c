//! [`Delta`]: one request's changes to a session, detached from the request, so that
//! they can be applied onto the record as other requests left it, by this request or by
//! another save of the same session that writes them together with its own.

use serde_json::{Map, Value};

use crate::cookie::SessionCookie;
use crate::record::{SessionRecord, LIFETIME_KEYS};

/// What a request changed: the keys it set (with their values) or removed, whether it
/// cleared the session first, and its cookie.
#[derive(Debug, Clone)]
pub(crate) struct Delta {
    cleared: bool,
    /// Each changed key with its value now; `None`: removed.
    keys: Vec<(String, Option<Value>)>,
    cookie: SessionCookie,
}

impl Delta {
    pub(crate) fn new(
        cleared: bool,
        keys: Vec<(String, Option<Value>)>,
        cookie: SessionCookie,
    ) -> Self {
        Delta {
            cleared,
            keys,
            cookie,
        }
    }

    /// These changes re-applied onto `current`, with this request's cookie. The
    /// middleware's lifetime keys keep the stored value: a request only ever adds a
    /// missing one.
    pub(crate) fn apply(&self, current: &SessionRecord) -> SessionRecord {
        let mut data = match self.cleared {
            true => Map::new(),
            false => current.data.clone(),
        };
        for (key, value) in &self.keys {
            match value {
                Some(value) => data.insert(key.clone(), value.clone()),
                None => data.remove(key),
            };
        }
        for key in LIFETIME_KEYS {
            if let Some(value) = current.data.get(key) {
                data.insert(key.to_owned(), value.clone());
            }
        }
        SessionRecord {
            cookie: self.cookie.clone(),
            data,
        }
    }
}
