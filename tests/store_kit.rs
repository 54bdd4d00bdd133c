//! The store test kit (`actix_express_session::testing`) as a third-party store uses it:
//! a store with the three required methods only passes, with the optional methods
//! reported unsupported; a broken store fails, naming the check it breaks.
#![cfg(feature = "testing")]

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::SystemTime;

use actix_express_session::store::{SessionStore, StoreError, StoreFuture};
use actix_express_session::testing::{conformance, record, Conformance, Outcome};
use actix_express_session::SessionRecord;
use futures_util::future::{ready, FutureExt};

/// A flaw to plant in [`MapStore`].
#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    None,
    GetIgnoresExpiry,
    DestroyDoesNothing,
}

/// A third-party store: `get`, `set` and `destroy` over a map of JSON text and expiry.
struct MapStore {
    map: Mutex<HashMap<String, (String, Option<SystemTime>)>>,
    flaw: Flaw,
}

impl MapStore {
    fn new(flaw: Flaw) -> Self {
        MapStore {
            map: Mutex::default(),
            flaw,
        }
    }

    fn get_now(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let map = self.map.lock().expect("lock");
        let Some((json, expires)) = map.get(sid) else {
            return Ok(None);
        };
        let expired = expires.is_some_and(|at| at <= SystemTime::now());
        if expired && self.flaw != Flaw::GetIgnoresExpiry {
            return Ok(None);
        }
        SessionRecord::from_json(json.as_bytes())
            .map(Some)
            .map_err(StoreError::Serialization)
    }

    fn set_now(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        let entry = (rec.to_json(), rec.cookie.expires());
        self.map.lock().expect("lock").insert(sid.to_owned(), entry);
        Ok(())
    }

    fn destroy_now(&self, sid: &str) -> Result<(), StoreError> {
        if self.flaw != Flaw::DestroyDoesNothing {
            self.map.lock().expect("lock").remove(sid);
        }
        Ok(())
    }

    /// A real touch: a new expiry for a live record, its data kept.
    fn touch_now(&self, sid: &str, rec: &SessionRecord) -> Result<(), StoreError> {
        let mut map = self.map.lock().expect("lock");
        let now = SystemTime::now();
        if let Some((_, expires)) = map
            .get_mut(sid)
            .filter(|(_, at)| at.is_none_or(|at| at > now))
        {
            *expires = rec.cookie.expires();
        }
        Ok(())
    }
}

impl SessionStore for MapStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        ready(self.get_now(sid)).boxed()
    }

    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        ready(self.set_now(sid, rec)).boxed()
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        ready(self.destroy_now(sid)).boxed()
    }
}

/// A [`MapStore`] with a real `touch`, behind a network: every call waits a turn
/// before it acts, so the default `create` and `save_if` (`get`, then `set`) of
/// concurrent requests interleave.
struct Remote(MapStore);

impl SessionStore for Remote {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        after_a_turn(move || self.0.get_now(sid))
    }

    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        after_a_turn(move || self.0.set_now(sid, rec))
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        after_a_turn(move || self.0.destroy_now(sid))
    }

    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        after_a_turn(move || self.0.touch_now(sid, rec))
    }
}

fn after_a_turn<'a, T: Send + 'a>(
    op: impl FnOnce() -> Result<T, StoreError> + Send + 'a,
) -> StoreFuture<'a, T> {
    async move {
        tokio::task::yield_now().await;
        op()
    }
    .boxed()
}

/// The message `kit` panicked with (it must panic).
async fn failure(kit: Conformance<impl SessionStore>) -> String {
    let panic = AssertUnwindSafe(kit.run())
        .catch_unwind()
        .await
        .expect_err("the kit rejects the store");
    let message = panic.downcast_ref::<String>().expect("a message");
    message.clone()
}

#[tokio::test]
async fn a_store_with_only_get_set_and_destroy_passes() {
    let report = conformance(MapStore::new(Flaw::None)).await;
    println!("{report}");
    assert_eq!(report.unsupported(), ["len", "all", "clear"]);
    let partial = |name| matches!(report.outcome(name), Some(Outcome::Partial(_)));
    let skipped = |name| matches!(report.outcome(name), Some(Outcome::Skipped(_)));
    assert!(partial("all_len_and_clear_see_every_session"));
    assert!(partial("touch_extends_life_without_rewriting_data"));
    assert_eq!(report.outcome("destroy_removes"), Some(&Outcome::Passed));
    assert_eq!(report.outcome("conditional_writes"), Some(&Outcome::Passed));
    assert!(skipped("concurrent_creates_give_one_winner"));
    assert!(skipped("concurrent_saves_give_one_winner"));
    assert!(!report.all_passed());
    let text = report.to_string();
    assert!(text.contains("`len` is unsupported"), "{text}");
    assert!(text.contains("atomicity not claimed"), "{text}");
}

#[test]
fn the_record_helper_writes_what_express_session_stores() {
    let rec = record(Some(60_000), serde_json::json!({"user": "ada"}));
    let json: serde_json::Value = serde_json::from_str(&rec.to_json()).expect("JSON");
    assert_eq!(json["cookie"]["originalMaxAge"], 60_000);
    assert!(json["cookie"]["expires"]
        .as_str()
        .expect("ISO")
        .ends_with('Z'));
    assert_eq!(json["user"], "ada");
}

#[tokio::test]
async fn claiming_atomicity_holds_the_default_touch_to_the_real_contract() {
    let kit = Conformance::new(MapStore::new(Flaw::None)).atomic(true);
    let message = failure(kit).await;
    assert!(
        message.contains("check `touch_extends_life_without_rewriting_data` failed"),
        "{message}"
    );
}

#[tokio::test]
async fn the_kit_catches_a_get_that_ignores_expiry() {
    let message = failure(Conformance::new(MapStore::new(Flaw::GetIgnoresExpiry))).await;
    assert!(
        message.starts_with("store conformance check `expired_sessions_are_invisible` failed:"),
        "{message}"
    );
}

#[tokio::test]
async fn the_kit_catches_a_destroy_that_does_nothing() {
    let message = failure(Conformance::new(MapStore::new(Flaw::DestroyDoesNothing))).await;
    assert!(
        message.starts_with("store conformance check `destroy_removes` failed:"),
        "{message}"
    );
}

#[tokio::test]
async fn a_remote_store_with_a_real_touch_passes_without_claiming_atomicity() {
    let report = conformance(Remote(MapStore::new(Flaw::None))).await;
    let touch = report.outcome("touch_extends_life_without_rewriting_data");
    assert_eq!(touch, Some(&Outcome::Passed), "{report}");
    assert_eq!(report.outcome("conditional_writes"), Some(&Outcome::Passed));
}

#[tokio::test]
async fn claiming_atomicity_catches_the_default_create_racing_itself() {
    let kit = Conformance::new(Remote(MapStore::new(Flaw::None))).atomic(true);
    let message = failure(kit).await;
    assert!(
        message.starts_with("store conformance check `concurrent_creates_give_one_winner` failed:"),
        "{message}"
    );
}
