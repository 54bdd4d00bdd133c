//! The checks that only an atomic store passes: conditional writes racing each other
//! (see [conditional writes](crate::store#conditional-writes)). The trait's default
//! `create` and `save_if` (`get`, then `set`) can let two writers through.

use std::sync::Arc;

use futures_util::future::{join, join_all};
use serde_json::json;

use super::checks::HOUR;
use super::kit::Kit;
use super::record::record;
use crate::store::{SaveOutcome, SessionStore};

/// 16 creates of one ID at once: exactly one wins, and its record is the one stored.
pub(super) async fn concurrent_creates_give_one_winner(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    let creates = (0..16).map(|i| async move {
        let rec = Arc::new(record(HOUR, json!({"i": i})));
        store.create("race", &rec).await.expect("create").map(|_| i)
    });
    let winners: Vec<i64> = join_all(creates).await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = store.get("race").await.expect("get").expect("the winner's");
    assert_eq!(stored.data["i"], winners[0]);
    kit.remove(&["race"]).await;
}

/// 16 saves onto one loaded version at once: exactly one wins, the others conflict.
pub(super) async fn concurrent_saves_give_one_winner(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    let base = Arc::new(record(HOUR, json!({"i": -1})));
    let v0 = store
        .create("race", &base)
        .await
        .expect("create")
        .expect("a free ID");
    let saves = (0..16).map(|i| {
        let v0 = &v0;
        async move {
            let rec = Arc::new(record(HOUR, json!({"i": i})));
            let outcome = store.save_if("race", &rec, v0).await.expect("save_if");
            (i, outcome)
        }
    });
    let outcomes = join_all(saves).await;
    let winners: Vec<i64> = outcomes
        .iter()
        .filter_map(|(i, o)| matches!(o, SaveOutcome::Saved(_)).then_some(*i))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    for (_, outcome) in &outcomes {
        let ok = matches!(outcome, SaveOutcome::Saved(_) | SaveOutcome::Conflict(_));
        assert!(ok, "a losing save conflicts: {outcome:?}");
    }
    let stored = store.get("race").await.expect("get").expect("the winner's");
    assert_eq!(stored.data["i"], winners[0]);
    kit.remove(&["race"]).await;
}

/// A save racing a destroy, 8 times at once: whichever lands first, the session ends
/// destroyed (a save after the destroy is `Gone`, never a resurrection).
pub(super) async fn a_save_racing_a_destroy_never_resurrects(kit: &Kit<impl SessionStore>) {
    let store = &kit.store;
    let ids: Vec<String> = (0..8).map(|i| format!("gone{i}")).collect();
    let rounds = ids.iter().map(|id| async move {
        let rec = Arc::new(record(HOUR, json!({"n": 1})));
        let v = store.create(id, &rec).await.expect("create").expect("free");
        let newer = Arc::new(record(HOUR, json!({"n": 2})));
        let (saved, destroyed) = join(store.save_if(id, &newer, &v), store.destroy(id)).await;
        saved.expect("save_if");
        destroyed.expect("destroy");
        let left = store.get(id).await.expect("get");
        assert!(left.is_none(), "{id} resurrected: {left:?}");
    });
    join_all(rounds).await;
}
