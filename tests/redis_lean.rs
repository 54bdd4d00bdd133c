//! The lean connection under [`RedisStore`] for a plain `redis://` URL: replies split at
//! any byte or many in one read, hundreds of callers on one worker, callers that give up,
//! callers queued behind a stalled Redis, a login and a database from the URL, and a
//! Redis that dies and comes back.
#![cfg(feature = "redis")]

mod common;
mod redis_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_express_session::store::{SaveOutcome, SessionStore};
use actix_express_session::{RedisStore, SessionRecord};
use common::conformance::record;
use futures_util::future::join_all;
use redis::AsyncCommands;
use redis_support::{assert_redis_error, raw, redis_url, unique_prefix, OwnRedis};
use serde_json::json;

const HOUR: Option<i64> = Some(3_600_000);

/// A TCP proxy in front of Redis that can hold Redis's replies back (`hold`) or pass
/// them on one byte at a time (`trickle`), so that the client sees replies split at
/// every byte, or many at once.
struct Proxy {
    port: u16,
    hold: Arc<AtomicBool>,
    trickle: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let hold = Arc::new(AtomicBool::new(false));
        let trickle = Arc::new(AtomicBool::new(false));
        let (h, t) = (Arc::clone(&hold), Arc::clone(&trickle));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pass(c2, s2, None));
                let modes = (Arc::clone(&h), Arc::clone(&t));
                std::thread::spawn(move || pass(server, client, Some(modes)));
            }
        });
        Proxy {
            port,
            hold,
            trickle,
        }
    }

    /// The URL of the proxied server, with `path` (a database, say) after it.
    fn url(&self, path: &str) -> String {
        format!("redis://127.0.0.1:{}{path}", self.port)
    }

    fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    fn trickle(&self, on: bool) {
        self.trickle.store(on, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`; with `modes` (Redis to client), held back or byte by byte.
fn pass(mut from: TcpStream, mut to: TcpStream, modes: Option<(Arc<AtomicBool>, Arc<AtomicBool>)>) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Checked after the read: a reply read while the hold began is held too.
        if let Some((hold, _)) = &modes {
            while hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let trickle = modes
            .as_ref()
            .is_some_and(|(_, t)| t.load(Ordering::SeqCst));
        let sent = if trickle {
            buf[..n].iter().try_for_each(|b| {
                to.write_all(&[*b])?;
                std::thread::sleep(Duration::from_micros(50));
                Ok::<_, std::io::Error>(())
            })
        } else {
            to.write_all(&buf[..n])
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = (from.shutdown(Shutdown::Both), to.shutdown(Shutdown::Both));
}

async fn store_at(url: &str, prefix: &str, timeout: Duration) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .response_timeout(timeout)
        .connect(url)
        .await
        .expect("connects")
}

fn numbered(i: usize) -> SessionRecord {
    record(HOUR, json!({"i": i}))
}

#[actix_rt::test]
async fn replies_split_at_every_byte_parse_as_whole_ones() {
    let proxy = Proxy::start(port_of(&redis_url()));
    let prefix = unique_prefix("lean-split");
    let store = store_at(&proxy.url(""), &prefix, Duration::from_secs(10)).await;
    proxy.trickle(true);
    let big = record(
        HOUR,
        json!({"blob": "x".repeat(6000), "nested": {"a": [1, 2, 3]}}),
    );
    store.set("big", &big).await.expect("set");
    let small = numbered(1);
    store.set("small", &small).await.expect("set");
    assert_eq!(store.get("big").await.expect("get"), Some(big.clone()));
    let loaded = store.load("small").await.expect("load").expect("found");
    assert_eq!(*loaded.record, small);
    assert!(
        loaded.extended_at.is_some(),
        "PTTL came through as an integer"
    );
    assert_eq!(
        store.get("missing").await.expect("get"),
        None,
        "a null bulk string"
    );
    let next = Arc::new(numbered(2));
    let saved = store
        .save_if("small", &next, &loaded.version)
        .await
        .expect("saved");
    assert!(matches!(saved, SaveOutcome::Saved(_)), "{saved:?}");
    // A conflict answers an array: the current bytes and their TTL.
    let other = Arc::new(numbered(3));
    let conflict = store
        .save_if("small", &other, &loaded.version)
        .await
        .expect("answered");
    assert!(
        matches!(conflict, SaveOutcome::Conflict(Some(_))),
        "{conflict:?}"
    );
    // SCAN answers nested arrays, MGET an array of bulk strings.
    assert_eq!(store.len().await.expect("len"), 2);
    assert_eq!(store.all().await.expect("all").len(), 2);
    proxy.trickle(false);
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn with_the_client_cache_replies_and_pushes_split_at_every_byte_parse_whole() {
    let proxy = Proxy::start(port_of(&redis_url()));
    let prefix = unique_prefix("lean-cache-split");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .client_cache(10)
        .response_timeout(Duration::from_secs(10))
        .connect(&proxy.url(""))
        .await
        .expect("connects");
    proxy.trickle(true);
    store.set("a", &numbered(1)).await.expect("set");
    let loaded = store.load("a").await.expect("load").expect("found");
    assert_eq!(loaded.record.data["i"], 1);
    let next = Arc::new(numbered(2));
    let saved = store
        .save_if("a", &next, &loaded.version)
        .await
        .expect("save");
    assert!(matches!(saved, SaveOutcome::Saved(_)), "{saved:?}");
    assert_eq!(store.get("a").await.expect("get").as_ref(), Some(&*next));

    // Another client's write: the invalidation trickles in byte by byte (through the
    // proxy, like a slow network); once it is in, the next load reads Redis.
    let mut other = raw(&redis_url()).await;
    let _: () = other
        .set(format!("{prefix}a"), numbered(3).to_json())
        .await
        .expect("SET");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = store.load("a").await.expect("load").expect("found");
    assert_eq!(loaded.record.data["i"], 3);
    let _: () = other.del(format!("{prefix}a")).await.expect("DEL");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.load("a").await.expect("load").is_none());
    proxy.trickle(false);
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn with_the_client_cache_two_hundred_callers_each_get_their_own_session() {
    let proxy = Proxy::start(port_of(&redis_url()));
    let prefix = unique_prefix("lean-cache-many");
    let store = RedisStore::builder()
        .prefix(&prefix)
        .client_cache(1000)
        .response_timeout(Duration::from_secs(10))
        .connect(&proxy.url(""))
        .await
        .expect("connects");
    let ids: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    let mut other = raw(&redis_url()).await;
    for (i, id) in ids.iter().enumerate() {
        let _: () = other
            .set(format!("{prefix}{id}"), numbered(i).to_json())
            .await
            .expect("SET");
    }
    for round in 0..3 {
        // Held back, the replies (and, later, pushes) pile up and arrive together.
        proxy.hold(true);
        let loads = join_all(ids.iter().map(|id| store.load(id)));
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            proxy.hold(false);
        };
        let (loaded, ()) = tokio::join!(loads, release);
        for (i, got) in loaded.into_iter().enumerate() {
            let got = got.expect("load").expect("found");
            let expected = if round == 2 && i % 2 == 0 {
                i + 1000
            } else {
                i
            };
            assert_eq!(got.record.data["i"], expected, "round {round}, caller {i}");
        }
        if round == 1 {
            for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
                let _: () = other
                    .set(format!("{prefix}{id}"), numbered(i + 1000).to_json())
                    .await
                    .expect("SET");
            }
            let _: () = redis::cmd("PING")
                .query_async(&mut other)
                .await
                .expect("PING");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn two_hundred_callers_on_one_worker_each_get_their_own_reply() {
    let proxy = Proxy::start(port_of(&redis_url()));
    let prefix = unique_prefix("lean-many");
    let store = store_at(&proxy.url(""), &prefix, Duration::from_secs(10)).await;
    let ids: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    let records: Vec<SessionRecord> = (0..200).map(numbered).collect();
    let created = join_all(ids.iter().zip(&records).map(|(id, rec)| store.set(id, rec))).await;
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    // Held back, the replies pile up and arrive many per read.
    proxy.hold(true);
    let loads = join_all(ids.iter().map(|id| store.load(id)));
    let release = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.hold(false);
    };
    let (loaded, ()) = tokio::join!(loads, release);
    for (i, got) in loaded.into_iter().enumerate() {
        let got = got.expect("load").expect("found");
        assert_eq!(got.record.data["i"], i, "caller {i} got its own reply");
    }

    // Loads and conditional saves interleaved, every other caller.
    let mixed = ids.iter().enumerate().map(|(i, id)| {
        let store = &store;
        async move {
            if i % 2 == 0 {
                let got = store.get(id).await.expect("get").expect("found");
                assert_eq!(got.data["i"], i);
            } else {
                let now = store.load(id).await.expect("load").expect("found");
                let next = Arc::new(numbered(i + 1000));
                let saved = store.save_if(id, &next, &now.version).await.expect("save");
                assert!(matches!(saved, SaveOutcome::Saved(_)), "{saved:?}");
            }
        }
    });
    join_all(mixed).await;
    let odd = store.get("s7").await.expect("get").expect("found");
    assert_eq!(odd.data["i"], 1007);
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn a_caller_that_gives_up_does_not_shift_the_next_callers_reply() {
    let proxy = Proxy::start(port_of(&redis_url()));
    let prefix = unique_prefix("lean-drop");
    let store = store_at(&proxy.url(""), &prefix, Duration::from_millis(300)).await;
    store.set("a", &numbered(1)).await.expect("set");
    store.set("b", &numbered(2)).await.expect("set");

    proxy.hold(true);
    // Dropped by the caller mid-flight (sent, no reply yet), and timed out by the store.
    let dropped = tokio::time::timeout(Duration::from_millis(50), store.load("a")).await;
    assert!(dropped.is_err(), "still waiting when dropped");
    let timed_out = store
        .get("a")
        .await
        .expect_err("the store's response timeout");
    assert_redis_error(&timed_out);
    proxy.hold(false);

    // Their replies come first on the wire; each caller still gets its own.
    let b = store.get("b").await.expect("get").expect("found");
    assert_eq!(b.data["i"], 2);
    let a = store.load("a").await.expect("load").expect("found");
    assert_eq!(a.record.data["i"], 1);
    assert_eq!(store.len().await.expect("len"), 2);
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn a_large_reply_grows_the_buffer_and_later_replies_still_fit() {
    let prefix = unique_prefix("lean-large");
    let store = store_at(&redis_url(), &prefix, Duration::from_secs(5)).await;
    let huge = record(HOUR, json!({"blob": "y".repeat(2 * 1024 * 1024)}));
    store.set("huge", &huge).await.expect("set");
    store.set("tiny", &numbered(3)).await.expect("set");
    let (h, t) = tokio::join!(store.get("huge"), store.get("tiny"));
    assert_eq!(h.expect("get"), Some(huge));
    assert_eq!(t.expect("get").expect("found").data["i"], 3);
    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn a_password_a_user_and_a_database_from_the_url_are_used() {
    let server = GuardedRedis::start();
    let prefix = unique_prefix("lean-auth");
    for url in [
        format!("redis://:s3cret@127.0.0.1:{}/5", server.port),
        format!("redis://alice:wonderland@127.0.0.1:{}/5", server.port),
    ] {
        let store = store_at(&url, &prefix, Duration::from_secs(2)).await;
        store.set("id", &numbered(5)).await.expect("set");
        let mut db5 = raw(&url).await;
        let stored: Option<String> = db5.get(format!("{prefix}id")).await.expect("GET");
        assert!(stored.is_some(), "{url}: written to database 5");
        let db0 = format!("redis://:s3cret@127.0.0.1:{}", server.port);
        let elsewhere: Option<String> = raw(&db0)
            .await
            .get(format!("{prefix}id"))
            .await
            .expect("GET");
        assert_eq!(elsewhere, None, "{url}: not to database 0");
        store.clear().await.expect("clear");
    }
    for wrong in [
        format!("redis://:nope@127.0.0.1:{}", server.port),
        format!("redis://127.0.0.1:{}", server.port),
    ] {
        let no_login = RedisStore::builder().connect(&wrong).await;
        match no_login {
            // Without a password, connecting works, and the first command is refused.
            Ok(store) => assert_redis_error(&store.get("id").await.expect_err("NOAUTH")),
            Err(e) => assert_redis_error(&e),
        }
    }
}

#[actix_rt::test]
async fn a_killed_redis_gives_errors_and_the_first_call_after_its_restart_succeeds() {
    let mut server = OwnRedis::start();
    let store = store_at(&server.url(), "lean-kill:", Duration::from_millis(500)).await;
    store.set("id", &numbered(1)).await.expect("set");

    server.stop();
    assert_redis_error(&store.get("id").await.expect_err("down"));
    let fresh = Arc::new(numbered(2));
    assert_redis_error(&store.create("new", &fresh).await.expect_err("down"));
    server.restart();
    // This Redis keeps nothing on disk.
    assert_eq!(store.get("id").await.expect("back"), None);

    // Restarted while the connection sat idle: the closed connection is noticed before
    // a command goes out, so even a command that is never re-sent (SET NX) succeeds.
    store.set("id", &numbered(1)).await.expect("set");
    server.stop();
    server.restart();
    tokio::time::sleep(Duration::from_millis(50)).await; // the runtime sees the close
    let created = store.create("new", &fresh).await.expect("first try");
    assert!(created.is_some(), "written");
}

#[actix_rt::test]
async fn a_frozen_redis_times_out_and_its_late_replies_are_dropped_when_it_thaws() {
    let server = OwnRedis::start();
    let store = store_at(&server.url(), "lean-freeze:", Duration::from_millis(200)).await;
    for i in 0..5 {
        store
            .set(&format!("s{i}"), &numbered(i))
            .await
            .expect("set");
    }
    server.freeze(true);
    let started = Instant::now();
    for i in 0..5 {
        assert_redis_error(&store.get(&format!("s{i}")).await.expect_err("frozen"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.freeze(false);
    for i in (0..5).rev() {
        let got = store
            .get(&format!("s{i}"))
            .await
            .expect("thawed")
            .expect("found");
        assert_eq!(got.data["i"], i);
    }
}

#[actix_rt::test]
async fn callers_queued_behind_a_stalled_redis_each_time_out_at_their_own_deadline() {
    let proxy = Proxy::start(port_of(&redis_url()));
    let prefix = unique_prefix("lean-deadlines");
    let timeout = Duration::from_millis(200);
    let store = store_at(&proxy.url(""), &prefix, timeout).await;
    store.set("a", &numbered(1)).await.expect("set");

    proxy.hold(true);
    // Twenty requests, 20 ms apart, each in line behind the ones before it.
    let callers = (0..20u64).map(|i| {
        let store = store.clone();
        actix_rt::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i)).await;
            let started = Instant::now();
            let result = store.get("a").await;
            (result, started.elapsed())
        })
    });
    for caller in join_all(callers).await {
        let (result, waited) = caller.expect("joined");
        assert_redis_error(&result.expect_err("held"));
        // Each gives up at its own deadline, not after the callers ahead of it did (the
        // last would then wait over 3 s); the bound leaves room for a loaded machine.
        assert!(waited >= timeout && waited < timeout * 10, "{waited:?}");
    }
    proxy.hold(false);

    let a = store.get("a").await.expect("get").expect("found");
    assert_eq!(a.data["i"], 1);
    store.clear().await.expect("clear");
}

/// The port of a `redis://host:port` URL.
fn port_of(url: &str) -> u16 {
    let port = url.rsplit(':').next().expect("a port");
    port.trim_end_matches('/').parse().expect("a numeric port")
}

/// A redis-server of this test's own that requires a password (`s3cret`) and knows a
/// user `alice` (password `wonderland`).
struct GuardedRedis;

impl GuardedRedis {
    fn start() -> OwnRedis {
        OwnRedis::start_with(&[
            "--requirepass",
            "s3cret",
            "--user",
            "alice",
            "on",
            ">wonderland",
            "~*",
            "&*",
            "+@all",
        ])
    }
}
