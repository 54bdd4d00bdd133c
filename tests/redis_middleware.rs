//! The middleware on real Redis: app instances sharing one Redis share their sessions,
//! and a Redis outage is a prompt empty 500 that heals by itself.
#![cfg(feature = "redis")]

mod common;
mod redis_support;

use std::time::{Duration, Instant};

use actix_express_session::store::SessionStore;
use actix_express_session::{RedisStore, SessionMiddleware};
use common::{app, body, get, pair, set_cookie, SECRET};
use redis_support::{redis_url, unique_prefix, OwnRedis};

async fn store(url: &str, prefix: &str) -> RedisStore {
    let builder = RedisStore::builder().prefix(prefix);
    let builder = builder.response_timeout(Duration::from_millis(800));
    builder.connect(url).await.expect("connects")
}

fn middleware(store: RedisStore) -> SessionMiddleware<RedisStore> {
    SessionMiddleware::builder(store, SECRET)
        .build()
        .expect("valid options")
}

#[actix_rt::test]
async fn two_app_instances_on_one_redis_share_sessions() {
    let prefix = unique_prefix("two-apps");
    // Two stores, two connections: as two processes behind a load balancer would have.
    let (first, second) = (
        store(&redis_url(), &prefix).await,
        store(&redis_url(), &prefix).await,
    );
    let one = app(middleware(first.clone())).await;
    let two = app(middleware(second)).await;

    let res = get(&one, "/count", None).await;
    let cookie = pair(&set_cookie(&res).expect("a new session sends its cookie"));
    assert_eq!(body(res).await, "1");

    let res = get(&two, "/count", Some(&cookie)).await;
    assert_eq!(
        body(res).await,
        "2",
        "the other instance loads the session and saves it"
    );
    let res = get(&one, "/read", Some(&cookie)).await;
    assert_eq!(
        body(res).await,
        "2",
        "and the first instance sees the change"
    );
    assert_eq!(first.len().await.expect("len"), 1, "one session, not two");
    first.clear().await.expect("clear");
}

/// Requests with and without a session answer an empty 500, within the response timeout.
async fn assert_prompt_empty_500<S, B>(app: &S, cookie: &str, what: &str)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    for known in [Some(cookie), None] {
        let started = Instant::now();
        let res = get(app, "/count", known).await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1_500), "{what}: took {took:?}");
        assert_eq!(
            res.status(),
            500,
            "{what}: a store error is an error, not a silent logout"
        );
        assert!(
            set_cookie(&res).is_none(),
            "{what}: no cookie for a session that was not saved"
        );
        assert_eq!(
            body(res).await,
            "",
            "{what}: the error says nothing about the backend"
        );
    }
}

#[actix_rt::test]
async fn a_redis_outage_is_a_prompt_empty_500_and_the_same_app_recovers() {
    let mut server = OwnRedis::start();
    let app = app(middleware(store(&server.url(), "sess:").await)).await;
    let res = get(&app, "/count", None).await;
    let cookie = pair(&set_cookie(&res).expect("a new session sends its cookie"));
    assert_eq!(body(res).await, "1");

    server.freeze(true);
    assert_prompt_empty_500(&app, &cookie, "stalled").await;
    server.freeze(false);
    let res = get(&app, "/count", Some(&cookie)).await;
    assert_eq!(body(res).await, "2", "the session survived the stall");

    server.stop();
    assert_prompt_empty_500(&app, &cookie, "stopped").await;
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = get(&app, "/count", Some(&cookie)).await;
        if res.status() == 200 {
            // The restarted server kept nothing (no persistence): a fresh session.
            assert_eq!(body(res).await, "1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after the restart",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
