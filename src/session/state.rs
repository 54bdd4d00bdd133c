//! One request's session state and its change tracking.

use std::rc::Rc;

use serde_json::{Map, Value};

use super::SessionError;
use crate::cookie::SessionCookie;
use crate::encoding::now_ms;
use crate::middleware::Context;
use crate::record::{Fingerprint, SessionRecord};
use crate::rules::Facts;

/// Where a session stands at the end of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    /// [`Session::unset`]: `req.session = null`.
    Unset,
    /// [`Session::destroy`] ran (the store record is gone).
    Destroyed,
}

/// An explicit [`Session::save`]: the change counter and fingerprint it saved.
#[derive(Debug)]
struct Saved {
    generation: u64,
    fingerprint: Fingerprint,
}

/// One request's session. Change detection is lazy: the fingerprint of the data as
/// loaded is taken just before the first real change, so a request that only reads pays
/// for no serialization at all.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) ctx: Rc<Context>,
    pub(crate) id: String,
    pub(crate) record: SessionRecord,
    pub(crate) status: Status,
    /// The ID came from the cookie and the store had it.
    pub(crate) loaded: bool,
    /// The request carried a validly signed cookie (so the browser holds one).
    pub(crate) had_cookie: bool,
    pub(crate) secure_connection: bool,
    pub(crate) regenerated: bool,
    /// `set_max_age` was called: an explicit cookie change, saved like a data change.
    pub(crate) cookie_changed: bool,
    cookie_unsaved: bool,
    /// Counts real changes to the data.
    pub(crate) generation: u64,
    /// Fingerprint of the data before its first change.
    origin: Option<Fingerprint>,
    saved: Option<Saved>,
}

impl State {
    pub(crate) fn new(ctx: Rc<Context>, id: String, record: SessionRecord) -> Self {
        State {
            ctx,
            id,
            record,
            status: Status::Active,
            loaded: false,
            had_cookie: false,
            secure_connection: false,
            regenerated: false,
            cookie_changed: false,
            cookie_unsaved: false,
            generation: 0,
            origin: None,
            saved: None,
        }
    }

    pub(crate) fn active(&self) -> Result<(), SessionError> {
        if self.status == Status::Active {
            Ok(())
        } else {
            Err(SessionError::Inactive)
        }
    }

    /// Applies a change to the data, fingerprinting the original first.
    pub(crate) fn change<R>(&mut self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        if self.origin.is_none() {
            self.origin = Some(Fingerprint::of(&self.record.data));
        }
        self.generation += 1;
        f(&mut self.record.data)
    }

    /// Everything the end-of-request rules need. Whether the data changed is decided by
    /// fingerprint, never assumed.
    pub(crate) fn facts(&self) -> Facts {
        let current = (self.generation > 0).then(|| Fingerprint::of(&self.record.data));
        let differs = |fp: &Fingerprint| current.as_ref().is_some_and(|c| c != fp);
        let data_modified = self.origin.as_ref().is_some_and(differs);
        let explicit_save = self.saved.as_ref().map(|s| {
            !self.cookie_unsaved && (s.generation == self.generation || !differs(&s.fingerprint))
        });
        Facts {
            status: self.status,
            loaded: self.loaded,
            regenerated: self.regenerated,
            modified: data_modified || self.regenerated || self.cookie_changed,
            explicit_save,
            persistent: self.record.cookie.is_persistent(),
            had_cookie: self.had_cookie,
            secure_cookie: self.record.cookie.secure(),
            secure_connection: self.secure_connection,
        }
    }

    /// Empties the data (a change only if there was any).
    pub(crate) fn clear_data(&mut self) {
        if !self.record.data.is_empty() {
            self.change(Map::clear);
        }
    }

    /// An explicit save stored the session as it was at `generation`.
    pub(crate) fn mark_saved(&mut self, generation: u64, fingerprint: Fingerprint) {
        self.saved = Some(Saved {
            generation,
            fingerprint,
        });
        self.cookie_unsaved = false;
    }

    /// `set_max_age` changed the cookie: saved and re-sent like a data change.
    pub(crate) fn mark_cookie_changed(&mut self) {
        self.cookie_changed = true;
        self.cookie_unsaved = true;
    }

    /// Moves the ID and record out (for the end-of-request store call).
    pub(crate) fn take_record(&mut self) -> (String, SessionRecord) {
        let empty = SessionRecord::new(SessionCookie::placeholder());
        (
            std::mem::take(&mut self.id),
            std::mem::replace(&mut self.record, empty),
        )
    }

    /// Puts back what [`take_record`](Self::take_record) moved out.
    pub(crate) fn put_back(&mut self, id: String, record: SessionRecord) {
        self.id = id;
        self.record = record;
    }

    /// A fresh session under a new ID, with the current cookie options.
    pub(crate) fn regenerate_as(&mut self, id: String) {
        let cookie = self
            .ctx
            .config
            .cookie
            .new_cookie(self.secure_connection, now_ms());
        self.clear_data();
        self.id = id;
        self.record.cookie = cookie;
        self.status = Status::Active;
        self.regenerated = true;
        self.saved = None;
        self.cookie_unsaved = false;
    }
}
