//! The store-conformance suite and eviction on [`MemoryStore`].

mod common;

use std::time::Duration;

use actix_express_session::store::SessionStore;
use actix_express_session::MemoryStore;
use serde_json::json;

#[actix_rt::test]
async fn memory_store_passes_the_conformance_suite() {
    common::conformance::conformance(MemoryStore::new()).await;
}

#[actix_rt::test]
async fn clones_share_one_map() {
    let a = MemoryStore::new();
    let b = a.clone();
    a.set(
        "id",
        &common::conformance::record(Some(60_000), json!({"n": 1})),
    )
    .await
    .expect("set");
    assert_eq!(
        b.get("id").await.expect("get").expect("shared").data["n"],
        1
    );
}

#[actix_rt::test]
async fn the_background_task_evicts_expired_sessions_from_memory() {
    let store = MemoryStore::builder()
        .sweep_interval(Duration::from_millis(100))
        .build();
    store
        .set("short", &common::conformance::record(Some(200), json!({})))
        .await
        .expect("set");
    store
        .set(
            "long",
            &common::conformance::record(Some(60_000), json!({})),
        )
        .await
        .expect("set");
    assert_eq!(store.entry_count(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.entry_count(),
        1,
        "the expired entry is gone from the map, not just hidden"
    );
}

#[actix_rt::test]
async fn without_a_sweeper_reads_still_remove_expired_entries() {
    let store = MemoryStore::builder()
        .sweep_interval(Duration::ZERO)
        .build();
    store
        .set("short", &common::conformance::record(Some(50), json!({})))
        .await
        .expect("set");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.entry_count(), 1);
    assert!(store.get("short").await.expect("get").is_none());
    assert_eq!(store.entry_count(), 0);
}

#[actix_rt::test]
async fn sessions_without_expiry_use_the_default_ttl() {
    let store = MemoryStore::builder()
        .default_ttl(Duration::from_millis(100))
        .build();
    store
        .set("browser", &common::conformance::record(None, json!({})))
        .await
        .expect("set");
    assert!(store.get("browser").await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(store.get("browser").await.expect("get").is_none());
}
