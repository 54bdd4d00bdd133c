//! Concurrency under [`WritePolicy::LastWriterWins`]: 64 requests in flight on one
//! session at once. (The default policy, `Merge`, is tested in `tests/merge.rs`.)
//!
//! express-session has no locking, and neither has this policy: each request loads the
//! session at its start and, if it saves, writes back the whole record at its end. Two
//! requests that overlap both read the same state; the one whose save reaches the store
//! last wins, and the other's change is lost (a "lost update"). With `resave(true)` even
//! a request that changed nothing writes back the state it read, and can undo another
//! request's change; that is why `resave` defaults to `false` (as express-session
//! recommends). These tests pin that documented last-writer-wins behaviour down, and
//! check that overlapping requests never panic, never fail and always answer
//! consistently.
//!
//! All requests run on one thread (`join_all` over `actix_web::test` calls); a store
//! wrapper yields to the executor before every operation so that loads and saves of
//! different requests interleave, and logs the order in which the store saw them.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_express_session::store::{SessionStore, StoreFuture};
use actix_express_session::{MemoryStore, SessionMiddleware, SessionRecord, WritePolicy};
use actix_web::test;
use common::{app, body, pair, set_cookie, set_cookies, sid, SECRET};
use futures_util::future::join_all;
use serde_json::Value;

const IN_FLIGHT: usize = 64;

/// How many times an operation yields before it reaches the store.
#[derive(Clone, Copy)]
enum Yields {
    /// Every operation yields this often: all loads happen before any save.
    Uniform(u32),
    /// 0 to 3 times, from a fixed-seed xorshift: a scrambled but repeatable order.
    Scrambled,
}

/// Store calls as they reached the store: (operation, session ID, `n` written).
type Log = Vec<(&'static str, String, Option<Value>)>;

/// A [`MemoryStore`] that yields before each operation and logs what reached the store,
/// in order: `("set", sid, n)`, `("touch", sid, n)`, `("destroy", sid, None)`.
#[derive(Clone)]
struct Interleaving {
    inner: MemoryStore,
    yields: Yields,
    rng: Arc<AtomicU64>,
    log: Arc<Mutex<Log>>,
}

impl Interleaving {
    fn new(yields: Yields) -> Self {
        Interleaving {
            inner: MemoryStore::new(),
            yields,
            rng: Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15)),
            log: Arc::default(),
        }
    }

    fn pause(&self) -> u32 {
        match self.yields {
            Yields::Uniform(n) => n,
            Yields::Scrambled => {
                let mut x = self.rng.load(Ordering::Relaxed);
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.rng.store(x, Ordering::Relaxed);
                (x % 4) as u32
            }
        }
    }

    fn take_log(&self) -> Log {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn logged(&self, op: &'static str, sid: &str, rec: Option<&SessionRecord>) {
        let n = rec.and_then(|r| r.data.get("n").cloned());
        self.log.lock().unwrap().push((op, sid.to_owned(), n));
    }
}

async fn pause(times: u32) {
    for _ in 0..times {
        tokio::task::yield_now().await;
    }
}

impl SessionStore for Interleaving {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        let times = self.pause();
        Box::pin(async move {
            pause(times).await;
            self.inner.get(sid).await
        })
    }
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        let times = self.pause();
        Box::pin(async move {
            pause(times).await;
            self.logged("set", sid, Some(rec));
            self.inner.set(sid, rec).await
        })
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        let times = self.pause();
        Box::pin(async move {
            pause(times).await;
            self.logged("destroy", sid, None);
            self.inner.destroy(sid).await
        })
    }
    fn touch<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        let times = self.pause();
        Box::pin(async move {
            pause(times).await;
            self.logged("touch", sid, Some(rec));
            self.inner.touch(sid, rec).await
        })
    }
}

/// Sends `uris` all at once with `cookie`; returns (status, Set-Cookie count, body).
async fn in_parallel<S, B>(
    app: &S,
    uris: &[&str],
    cookie: Option<&str>,
) -> Vec<(u16, usize, String)>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let calls = uris.iter().map(|uri| async move {
        let mut req = test::TestRequest::get().uri(uri);
        if let Some(cookie) = cookie {
            req = req.insert_header(("cookie", cookie));
        }
        let res = test::call_service(app, req.to_request()).await;
        let status = res.status().as_u16();
        let cookies = set_cookies(&res).len();
        (status, cookies, body(res).await)
    });
    join_all(calls).await
}

fn n(value: &Option<Value>) -> u64 {
    value.as_ref().and_then(Value::as_u64).expect("a count")
}

async fn stored_n(store: &Interleaving, id: &str) -> Option<u64> {
    let rec = store.inner.get(id).await.unwrap()?;
    Some(rec.data.get("n").and_then(Value::as_u64).unwrap_or(0))
}

/// A session holding n = 1, and its cookie.
async fn counted_once<S, B>(app: &S, store: &Interleaving) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = common::get(app, "/count", None).await;
    let cookie = pair(&set_cookie(&res).expect("a new session"));
    assert_eq!(body(res).await, "1");
    store.take_log();
    cookie
}

#[actix_rt::test]
async fn sixty_four_increments_at_once_lose_all_but_one_when_every_load_comes_first() {
    for resave in [false, true] {
        let store = Interleaving::new(Yields::Uniform(1));
        let app = app(SessionMiddleware::builder(store.clone(), SECRET)
            .resave(resave)
            .write_policy(WritePolicy::LastWriterWins)
            .build()
            .unwrap())
        .await;
        let cookie = counted_once(&app, &store).await;

        let results = in_parallel(&app, &["/count"; IN_FLIGHT], Some(&cookie)).await;
        for (status, cookies, text) in &results {
            assert_eq!((*status, *cookies), (200, 0), "resave={resave}");
            // Every request loaded n = 1 before any of them saved.
            assert_eq!(text, "2", "resave={resave}");
        }
        let log = store.take_log();
        assert_eq!(log.len(), IN_FLIGHT, "one save per request");
        assert!(log.iter().all(|(op, _, v)| *op == "set" && n(v) == 2));
        // Last writer wins: 64 increments, and the store says 2.
        assert_eq!(
            stored_n(&store, &sid(&cookie)).await,
            Some(2),
            "resave={resave}"
        );
    }
}

#[actix_rt::test]
async fn scrambled_increments_are_consistent_and_the_last_writer_wins() {
    for resave in [false, true] {
        let store = Interleaving::new(Yields::Scrambled);
        let app = app(SessionMiddleware::builder(store.clone(), SECRET)
            .resave(resave)
            .write_policy(WritePolicy::LastWriterWins)
            .build()
            .unwrap())
        .await;
        let cookie = counted_once(&app, &store).await;

        let results = in_parallel(&app, &["/count"; IN_FLIGHT], Some(&cookie)).await;
        let mut answered: Vec<u64> = results
            .iter()
            .map(|(status, cookies, text)| {
                assert_eq!((*status, *cookies), (200, 0), "resave={resave}");
                text.parse().expect("a count")
            })
            .collect();
        // Each answer is what that request saved: the count it loaded, plus one.
        let log = store.take_log();
        assert!(log.iter().all(|(op, _, _)| *op == "set"), "{log:?}");
        let mut saved: Vec<u64> = log.iter().map(|(_, _, v)| n(v)).collect();
        answered.sort_unstable();
        saved.sort_unstable();
        assert_eq!(answered, saved, "resave={resave}");
        assert!(answered
            .iter()
            .all(|&a| (2..=1 + IN_FLIGHT as u64).contains(&a)));

        // The store holds what the last save wrote: between 2 (every request overlapped)
        // and 65 (none did), never a mix and never more than the requests made.
        let last = n(&log.last().expect("saves").2);
        assert_eq!(
            stored_n(&store, &sid(&cookie)).await,
            Some(last),
            "resave={resave}"
        );
        assert!((2..=1 + IN_FLIGHT as u64).contains(&last));
        assert!(answered.contains(&last));
    }
}

#[actix_rt::test]
async fn with_resave_true_a_read_that_overlaps_a_write_can_undo_it() {
    // Half the requests read, half increment, all loaded before any saved.
    let uris: Vec<&str> = (0..IN_FLIGHT)
        .map(|i| if i % 2 == 0 { "/count" } else { "/read" })
        .collect();
    for resave in [false, true] {
        let store = Interleaving::new(Yields::Uniform(1));
        let app = app(SessionMiddleware::builder(store.clone(), SECRET)
            .resave(resave)
            .write_policy(WritePolicy::LastWriterWins)
            .build()
            .unwrap())
        .await;
        let cookie = counted_once(&app, &store).await;

        let results = in_parallel(&app, &uris, Some(&cookie)).await;
        for ((status, cookies, text), uri) in results.iter().zip(&uris) {
            assert_eq!((*status, *cookies), (200, 0));
            assert_eq!(text, if *uri == "/count" { "2" } else { "1" }, "{uri}");
        }
        let log = store.take_log();
        let ops = |name| log.iter().filter(|(op, _, _)| *op == name).count();
        let last = log.last().expect("store calls");
        let stored = stored_n(&store, &sid(&cookie)).await;
        if resave {
            // Every request saves what it holds; reads write back the stale n = 1.
            assert_eq!((ops("set"), ops("touch")), (IN_FLIGHT, 0));
            assert_eq!(stored, Some(n(&last.2)), "last writer wins");
            let sets: Vec<u64> = log.iter().map(|(_, _, v)| n(v)).collect();
            let first_increment = sets.iter().position(|&v| v == 2).expect("increments");
            assert!(
                sets[first_increment..].contains(&1),
                "a read wrote the stale n = 1 over an increment: {sets:?}"
            );
        } else {
            // Reads only touch (which never rewrites data): the increment survives.
            assert_eq!((ops("set"), ops("touch")), (IN_FLIGHT / 2, IN_FLIGHT / 2));
            assert_eq!(stored, Some(2), "no read can undo a write");
        }
    }
}

#[actix_rt::test]
async fn destroys_racing_increments_end_as_the_last_store_call_says() {
    let uris: Vec<&str> = (0..IN_FLIGHT)
        .map(|i| if i % 3 == 0 { "/destroy" } else { "/count" })
        .collect();
    for resave in [false, true] {
        let store = Interleaving::new(Yields::Scrambled);
        let app = app(SessionMiddleware::builder(store.clone(), SECRET)
            .resave(resave)
            .write_policy(WritePolicy::LastWriterWins)
            .build()
            .unwrap())
        .await;
        let cookie = counted_once(&app, &store).await;

        let results = in_parallel(&app, &uris, Some(&cookie)).await;
        for ((status, _, text), uri) in results.iter().zip(&uris) {
            assert_eq!(*status, 200, "{uri}");
            if *uri == "/destroy" {
                assert_eq!(text, "bye");
            }
        }
        let log = store.take_log();
        let stored = stored_n(&store, &sid(&cookie)).await;
        // Requests that loaded after a destroy start sessions of their own; what
        // happened to this one is decided by the last store call on its ID.
        let id = sid(&cookie);
        let ours: Vec<_> = log.iter().filter(|(_, s, _)| *s == id).collect();
        match ours.last().expect("store calls on the session") {
            ("destroy", _, _) => assert_eq!(stored, None, "resave={resave}"),
            (_, _, v) => assert_eq!(
                stored,
                Some(n(v)),
                "a save that loaded before a destroy and lands after it recreates the session"
            ),
        }
    }
}

#[actix_rt::test]
async fn sixty_four_new_visitors_at_once_get_sixty_four_sessions() {
    let store = Interleaving::new(Yields::Scrambled);
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let calls = (0..IN_FLIGHT).map(|_| async {
        let res = common::get(&app, "/count", None).await;
        assert_eq!(res.status(), 200);
        let cookie = set_cookie(&res).expect("each gets its cookie");
        assert_eq!(body(res).await, "1");
        sid(&cookie)
    });
    let mut ids = join_all(calls).await;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), IN_FLIGHT, "distinct IDs");
    assert_eq!(store.inner.len().await.unwrap(), IN_FLIGHT);
    for id in &ids {
        assert_eq!(stored_n(&store, id).await, Some(1));
    }
}
