//! One request's session state: its record, where it stands in the store, and the
//! changes this request made (for change detection and for merging onto a record that
//! changed meanwhile).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::SessionError;
use crate::context::Context;
use crate::cookie::CookieOptions;
use crate::delta::Delta;
use crate::record::{Fingerprint, SessionRecord, LIFETIME_KEYS};
use crate::rules::{Facts, Status};
use crate::store::{Loaded, Version};

/// What the middleware puts on a request: the shared context and the session, which
/// stays `None` until the request first uses it (with `Load::Lazy`).
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) ctx: Rc<Context>,
    pub(crate) state: RefCell<Option<State>>,
    /// This request's own cookie options (`cookie_for`); `None`: the static ones.
    pub(crate) cookie: Option<CookieOptions>,
}

/// The slots of every session middleware that handles a request, outermost first: one
/// per cookie name (a nested middleware with a name already there lets the request pass).
/// The first is kept inline: most apps have one middleware, and pay no second allocation.
#[derive(Debug)]
pub(crate) struct Slots {
    first: Rc<Slot>,
    more: Vec<Rc<Slot>>,
}

impl Slots {
    pub(crate) fn new(first: Rc<Slot>) -> Self {
        Slots {
            first,
            more: Vec::new(),
        }
    }

    /// The innermost middleware's slot: the one closest to the handler.
    pub(crate) fn innermost(&self) -> &Rc<Slot> {
        self.more.last().unwrap_or(&self.first)
    }

    /// The slot of the middleware whose cookie is `name`.
    pub(crate) fn named(&self, name: &str) -> Option<&Rc<Slot>> {
        std::iter::once(&self.first)
            .chain(&self.more)
            .find(|slot| slot.ctx.config.name == name)
    }

    pub(crate) fn push(&mut self, slot: Rc<Slot>) {
        self.more.push(slot);
    }
}

/// An explicit [`Session::save`]: the change counter and fingerprint it saved.
///
/// [`Session::save`]: crate::Session::save
#[derive(Debug)]
struct Saved {
    generation: u64,
    fingerprint: Fingerprint,
}

/// The keys this request changed, to re-apply onto a record that changed meanwhile:
/// each listed key takes its value in this request's data, or is removed if it has none.
#[derive(Debug, Default)]
struct Changes {
    /// `clear` ran: the keys other requests wrote go too.
    cleared: bool,
    keys: Vec<String>,
}

impl Changes {
    fn key(&mut self, key: &str) {
        if !self.keys.iter().any(|k| k == key) {
            self.keys.push(key.to_owned());
        }
    }
}

/// One request's session. Change detection is lazy: the fingerprint of the data as
/// loaded is taken just before the first real change, so a request that only reads pays
/// for no serialization at all.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) id: String,
    /// Shared with the store that loaded it until this request changes it.
    pub(crate) record: Arc<SessionRecord>,
    /// The stored state this request last saw (loaded, created or saved); `None` while
    /// the session is not in the store as far as this request knows.
    pub(crate) version: Option<Version>,
    /// When the store last extended the record, in ms since the epoch, if it said.
    pub(crate) extended_at_ms: Option<i64>,
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
    /// An older secret signed the cookie: re-send it signed with the newest.
    pub(crate) resign: bool,
    /// The ID the session had when this request moved it to `id` (a periodic reissue,
    /// or a tombstone followed to the new ID): the new ID's cookie is sent.
    pub(crate) previous_id: Option<String>,
    /// Counts real changes to the data.
    pub(crate) generation: u64,
    /// Fingerprint of the data before its first change.
    origin: Option<Fingerprint>,
    saved: Option<Saved>,
    changes: Changes,
}

impl State {
    /// A session that is not in the store yet.
    pub(crate) fn new(id: String, record: SessionRecord) -> Self {
        Self::with(id, Arc::new(record))
    }

    fn with(id: String, record: Arc<SessionRecord>) -> Self {
        State {
            id,
            record,
            version: None,
            extended_at_ms: None,
            status: Status::Active,
            loaded: false,
            had_cookie: false,
            secure_connection: false,
            regenerated: false,
            cookie_changed: false,
            cookie_unsaved: false,
            resign: false,
            previous_id: None,
            generation: 0,
            origin: None,
            saved: None,
            changes: Changes::default(),
        }
    }

    /// A session the store had.
    pub(crate) fn loaded(id: String, loaded: Loaded) -> Self {
        let extended_at_ms = loaded.extended_at.map(crate::encoding::system_time_ms);
        State {
            version: Some(loaded.version),
            extended_at_ms,
            loaded: true,
            ..State::with(id, loaded.record)
        }
    }

    pub(crate) fn active(&self) -> Result<(), SessionError> {
        if self.status == Status::Active {
            Ok(())
        } else {
            Err(SessionError::Inactive)
        }
    }

    /// The record, to change: copied first if a store still shares it.
    pub(crate) fn record_mut(&mut self) -> &mut SessionRecord {
        Arc::make_mut(&mut self.record)
    }

    /// Applies a change to the data, fingerprinting the original first.
    fn change<R>(&mut self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        if self.origin.is_none() {
            self.origin = Some(Fingerprint::of(&self.record.data));
        }
        self.generation += 1;
        f(&mut self.record_mut().data)
    }

    /// Sets `key` (a change only if the value differs, by its exact JSON).
    pub(crate) fn insert(&mut self, key: String, value: Value) {
        self.note_change(&key);
        self.change(|data| data.insert(key, value));
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.record.data.contains_key(key) {
            return None;
        }
        self.note_change(key);
        self.change(|data| data.remove(key))
    }

    /// Lists `key` among the changes to re-apply on a conflict. Only a stored session
    /// can meet one: a session not in the store yet is created whole, and the store
    /// call that stores it starts the list afresh ([`stored`](Self::stored)).
    fn note_change(&mut self, key: &str) {
        if self.version.is_some() {
            self.changes.key(key);
        }
    }

    /// Empties the data (a change only if there was any).
    pub(crate) fn clear_data(&mut self) {
        if !self.record.data.is_empty() {
            self.changes = Changes {
                cleared: true,
                keys: Vec::new(),
            };
            self.change(Map::clear);
        }
    }

    /// Takes the stored record as this request's, as [`Session::reload`] does.
    ///
    /// [`Session::reload`]: crate::Session::reload
    pub(crate) fn replace(&mut self, loaded: Loaded) {
        let Loaded {
            record, version, ..
        } = loaded;
        self.change(|data| *data = record.data.clone());
        self.record_mut().cookie = record.cookie.clone();
        self.version = Some(version);
        self.changes = Changes::default();
        self.status = Status::Active;
    }

    /// This request's changes, detached from it (to be applied onto a record another
    /// request wrote meanwhile).
    pub(crate) fn delta(&self) -> Delta {
        let keys = self.changes.keys.iter();
        let keys = keys.map(|key| (key.clone(), self.record.data.get(key).cloned()));
        Delta::new(
            self.changes.cleared,
            keys.collect(),
            self.record.cookie.clone(),
        )
    }

    /// This request's changes re-applied onto `current`, with this request's cookie.
    pub(crate) fn rebase(&self, current: &SessionRecord) -> SessionRecord {
        self.delta().apply(current)
    }

    /// The store now holds `record` (this request's, or its rebase) at `version`.
    pub(crate) fn stored(&mut self, record: Arc<SessionRecord>, version: Version) {
        self.record = record;
        self.version = Some(version);
        self.changes = Changes::default();
    }

    /// Everything the end-of-request rules need. Whether the data changed is decided by
    /// fingerprint, never assumed.
    pub(crate) fn facts(&self) -> Facts {
        let differs = |fp: &Fingerprint| self.generation > 0 && !fp.matches(&self.record.data);
        let data_modified = self.origin.as_ref().is_some_and(differs);
        let explicit_save = self.saved.as_ref().map(|s| {
            !self.cookie_unsaved && (s.generation == self.generation || !differs(&s.fingerprint))
        });
        Facts {
            status: self.status,
            loaded: self.loaded,
            regenerated: self.regenerated,
            modified: data_modified || self.regenerated || self.cookie_changed,
            cookie_changed: self.cookie_changed,
            resign: self.resign,
            reissued: self.previous_id.is_some(),
            explicit_save,
            persistent: self.record.cookie.is_persistent(),
            had_cookie: self.had_cookie,
            secure_cookie: self.record.cookie.secure(),
            secure_connection: self.secure_connection,
        }
    }

    /// An explicit save stored the session as it was at `generation`.
    pub(crate) fn mark_saved(&mut self, generation: u64) {
        self.saved = Some(Saved {
            generation,
            fingerprint: self.record.fingerprint(),
        });
        self.cookie_unsaved = false;
    }

    /// `set_max_age` changed the cookie: saved and re-sent like a data change.
    pub(crate) fn mark_cookie_changed(&mut self) {
        self.cookie_changed = true;
        self.cookie_unsaved = true;
    }

    /// A fresh session under a new ID, as `version` in the store (`None`: not stored
    /// yet).
    pub(crate) fn regenerate_as(
        &mut self,
        id: String,
        record: Arc<SessionRecord>,
        version: Option<Version>,
    ) {
        self.clear_data();
        self.id = id;
        self.record = record;
        self.version = version;
        self.changes = Changes::default();
        self.status = Status::Active;
        self.regenerated = true;
        self.previous_id = None;
        self.saved = None;
        self.cookie_unsaved = false;
    }

    /// Empties the user's data; the middleware's lifetime keys (creation and issue
    /// times) stay.
    pub(crate) fn clear_user_data(&mut self) {
        let kept: Vec<(&str, Value)> = LIFETIME_KEYS
            .iter()
            .filter_map(|&key| Some((key, self.record.data.get(key)?.clone())))
            .collect();
        self.clear_data();
        for (key, value) in kept {
            self.insert(key.to_owned(), value);
        }
    }

    /// The session now lives under `id`, which this request moved it to.
    pub(crate) fn moved_to(&mut self, id: String) {
        let previous = std::mem::replace(&mut self.id, id);
        self.previous_id.get_or_insert(previous);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cookie::SessionCookie;

    fn record(data: Value) -> SessionRecord {
        let Value::Object(data) = data else {
            panic!("an object")
        };
        SessionRecord {
            cookie: SessionCookie::placeholder(),
            data,
        }
    }

    fn loaded(data: Value) -> State {
        let loaded = Loaded::new(record(data), Version::from_number(1));
        State::loaded("id".to_owned(), loaded)
    }

    #[test]
    fn a_rebase_keeps_other_keys_and_applies_only_this_requests_changes() {
        let mut st = loaded(json!({"a": 1, "b": 2, "c": 3}));
        st.insert("a".to_owned(), json!(10));
        st.remove("b");
        st.insert("d".to_owned(), json!(4));
        let now = record(json!({"a": 1, "b": 2, "c": 30, "e": 5}));
        let merged = st.rebase(&now);
        assert_eq!(
            Value::Object(merged.data),
            json!({"a": 10, "c": 30, "d": 4, "e": 5})
        );
    }

    #[test]
    fn a_rebase_after_clear_drops_every_key_but_those_set_since() {
        let mut st = loaded(json!({"a": 1}));
        st.clear_data();
        st.insert("z".to_owned(), json!(true));
        let merged = st.rebase(&record(json!({"a": 1, "other": 2})));
        assert_eq!(Value::Object(merged.data), json!({"z": true}));
    }

    #[test]
    fn a_key_set_then_removed_is_removed_from_the_current_record() {
        let mut st = loaded(json!({}));
        st.insert("k".to_owned(), json!(1));
        st.remove("k");
        let merged = st.rebase(&record(json!({"k": "written by another request"})));
        assert_eq!(Value::Object(merged.data), json!({}));
    }

    #[test]
    fn a_rebase_keeps_the_stored_lifetime_keys_and_adds_a_missing_one() {
        use crate::record::{CREATED_AT_KEY, ISSUED_AT_KEY};
        let mut st = loaded(json!({"a": 1, ISSUED_AT_KEY: 1}));
        st.clear_user_data();
        st.insert(CREATED_AT_KEY.to_owned(), json!(2));
        st.insert("z".to_owned(), json!(true));
        assert_eq!(
            Value::Object(st.record.data.clone()),
            json!({ISSUED_AT_KEY: 1, CREATED_AT_KEY: 2, "z": true}),
            "clear keeps the issue time"
        );
        // The session was reissued meanwhile: its new record has a later issue time.
        let merged = st.rebase(&record(json!({"a": 1, ISSUED_AT_KEY: 5})));
        assert_eq!(
            Value::Object(merged.data),
            json!({ISSUED_AT_KEY: 5, CREATED_AT_KEY: 2, "z": true})
        );
    }

    #[test]
    fn only_a_stored_session_lists_its_changes() {
        let mut st = State::new("id".to_owned(), record(json!({})));
        st.insert("a".to_owned(), json!(1));
        let merged = st.rebase(&record(json!({"x": 1})));
        assert_eq!(
            Value::Object(merged.data),
            json!({"x": 1}),
            "created whole: nothing listed to re-apply"
        );
        st.stored(Arc::new(record(json!({"a": 1}))), Version::from_number(1));
        st.insert("b".to_owned(), json!(2));
        let merged = st.rebase(&record(json!({"a": 1, "c": 3})));
        assert_eq!(Value::Object(merged.data), json!({"a": 1, "b": 2, "c": 3}));
    }

    #[test]
    fn changing_a_loaded_record_never_changes_the_shared_copy() {
        let shared = Arc::new(record(json!({"n": 1})));
        let loaded = Loaded::new(Arc::clone(&shared), Version::from_number(1));
        let mut st = State::loaded("id".to_owned(), loaded);
        st.insert("n".to_owned(), json!(2));
        assert_eq!(shared.data["n"], 1, "the store's copy");
        assert_eq!(st.record.data["n"], 2);
    }
}
