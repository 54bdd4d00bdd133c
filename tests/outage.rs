//! Store outages: what a request gets (the outage policy), the circuit breaker that makes
//! later requests fail at once, and recovery in the same app once the store answers.
//!
//! The policy and breaker rules run on an injected failure; the timing runs on real
//! servers of the test's own (so that freezing them disturbs no other test): Redis and
//! PostgreSQL, each killed and each frozen (SIGSTOP: a hung process or a lost network
//! path). Those print what they measured (`cargo test --all-features --test outage --
//! --nocapture`); README "Operations" quotes them.
// The timing harness is used by the server tests only.
#![cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]

mod common;
#[cfg(feature = "postgres")]
mod postgres_util;
#[cfg(feature = "redis")]
mod redis_support;

use std::time::{Duration, Instant};

use actix_express_session::store::SessionStore;
use actix_express_session::{CircuitBreaker, OutagePolicy, SessionMiddleware};
use actix_http::Request;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::RETRY_AFTER;
use actix_web::HttpResponse;
use common::{app, body, get, pair, set_cookie, Flaky, SECRET};

/// Every request during an outage is answered within this, the first ones included.
const FIRST_FAILURE: Duration = Duration::from_secs(1);
/// A request while the breaker is open is answered within this.
const FAST_FAILURE: Duration = Duration::from_millis(100);
/// Service is back within this of the store answering again.
const RESUME: Duration = Duration::from_secs(1);

#[actix_rt::test]
async fn the_default_answers_a_store_failure_with_an_empty_500_and_no_cookie() {
    let store = Flaky::default();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .expect("valid"))
    .await;
    store.fail(true);
    let res = get(&app, "/count", None).await;
    assert_eq!(res.status(), 500);
    assert_eq!(set_cookie(&res), None);
    assert_eq!(body(res).await, "");
}

#[actix_rt::test]
async fn a_503_policy_answers_load_and_save_failures_with_retry_after() {
    let store = Flaky::default();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .outage_policy(OutagePolicy::unavailable(Duration::from_millis(1500)))
        .circuit_breaker(CircuitBreaker::off())
        .build()
        .expect("valid");
    let app = app(mw).await;
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    store.fail(true);
    // Loading fails in the extractor; a new session fails when it is saved.
    for (what, cookie) in [("load", Some(cookie.as_str())), ("save", None)] {
        let res = get(&app, "/count", cookie).await;
        assert_eq!(res.status(), 503, "{what}");
        let retry = res.headers().get(RETRY_AFTER).expect("Retry-After");
        assert_eq!(retry, "2", "{what}: whole seconds, rounded up");
        assert_eq!(set_cookie(&res), None, "{what}");
        assert_eq!(body(res).await, "", "{what}");
    }
}

#[actix_rt::test]
async fn a_custom_policy_makes_the_response() {
    let store = Flaky::default();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .outage_policy(OutagePolicy::custom(|req, err| {
            HttpResponse::ServiceUnavailable().body(format!("{} failed: {err}", req.path()))
        }))
        .build()
        .expect("valid");
    let app = app(mw).await;
    store.fail(true);
    let res = get(&app, "/count", None).await;
    assert_eq!(res.status(), 503);
    assert_eq!(body(res).await, "/count failed: the session store failed");
}

#[actix_rt::test]
async fn an_open_breaker_spares_the_store_until_a_probe_succeeds() {
    let store = Flaky::default();
    let cool_down = Duration::from_millis(300);
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .circuit_breaker(CircuitBreaker::new().failures(2).cool_down(cool_down))
        .build()
        .expect("valid");
    let app = app(mw).await;
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    store.fail(true);
    let before = store.reached();
    for _ in 0..2 {
        assert_eq!(get(&app, "/count", Some(&cookie)).await.status(), 500);
    }
    assert_eq!(
        store.reached(),
        before + 2,
        "both failures reached the store"
    );
    for _ in 0..20 {
        assert_eq!(get(&app, "/count", Some(&cookie)).await.status(), 500);
    }
    assert_eq!(
        store.reached(),
        before + 2,
        "open: no call reaches the store"
    );

    store.fail(false);
    let mended = Instant::now();
    let res = loop {
        let res = get(&app, "/count", Some(&cookie)).await;
        if res.status() == 200 || mended.elapsed() > cool_down * 3 {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(res.status(), 200, "a probe closed the breaker");
    assert!(
        mended.elapsed() >= cool_down / 2,
        "not before the cool-down"
    );
    assert_eq!(body(res).await, "2", "the session is intact");
}

#[actix_rt::test]
async fn an_invalid_breaker_is_a_build_error() {
    for breaker in [
        CircuitBreaker::new().failures(0),
        CircuitBreaker::new().cool_down(Duration::ZERO),
    ] {
        let err = SessionMiddleware::builder(Flaky::default(), SECRET)
            .circuit_breaker(breaker)
            .build()
            .expect_err("invalid");
        assert!(err.to_string().starts_with("`circuit_breaker`: "), "{err}");
    }
}

/// What one outage measured.
struct Figures {
    /// The slowest of the requests before the breaker opened.
    first_failures: Duration,
    /// The slowest request while it was open.
    fast_failures: Duration,
    /// From the store's return to the first 200.
    resumed_after: Duration,
}

impl Figures {
    fn print(&self, outage: &str) {
        println!(
            "{outage}: first failures within {:?}, then failing in {:?} at most, resumed {:?} after the store was back",
            self.first_failures, self.fast_failures, self.resumed_after
        );
    }
}

/// Serves `store` with the 503 policy and the default breaker, makes a session (a
/// counter), then runs an outage: `down` starts it, `up` ends it. Requests go one after
/// the other, as steady traffic on one session. `survives`: the store keeps its data
/// across the outage.
async fn outage<St: SessionStore>(
    store: St,
    down: impl FnOnce(),
    up: impl FnOnce(),
    survives: bool,
) -> Figures {
    let mw = SessionMiddleware::builder(store, SECRET)
        .outage_policy(OutagePolicy::unavailable(Duration::from_secs(1)))
        .build()
        .expect("valid");
    let app = app(mw).await;
    let mut cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    down();
    let first_failures = until_open(&app, &cookie).await;
    let mut fast_failures = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(get(&app, "/count", Some(&cookie)).await.status(), 503);
        fast_failures = fast_failures.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(fast_failures < FAST_FAILURE, "{fast_failures:?}");

    up();
    let back = Instant::now();
    let mut count = loop {
        let res = get(&app, "/count", Some(&cookie)).await;
        if res.status() == 200 {
            if let Some(fresh) = set_cookie(&res) {
                cookie = pair(&fresh);
            }
            let count: u64 = body(res).await.parse().expect("a count");
            assert!(!survives || count == 2, "the session survived: {count}");
            break count;
        }
        assert_eq!(res.status(), 503);
        assert!(
            back.elapsed() < RESUME,
            "not resumed after {:?}",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let resumed_after = back.elapsed();
    for _ in 0..5 {
        count += 1;
        let res = get(&app, "/count", Some(&cookie)).await;
        assert_eq!(body(res).await, count.to_string(), "and keeps working");
    }
    Figures {
        first_failures,
        fast_failures,
        resumed_after,
    }
}

/// The requests that open the breaker (the default: 3 failures in a row; each request
/// here makes one store call). Each fails within [`FIRST_FAILURE`]; the slowest time.
async fn until_open<S, B>(app: &S, cookie: &str) -> Duration
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let mut slowest = Duration::ZERO;
    for attempt in 0..3 {
        let started = Instant::now();
        let res = get(app, "/count", Some(cookie)).await;
        let took = started.elapsed();
        assert_eq!(res.status(), 503, "request {attempt} during the outage");
        assert!(took < FIRST_FAILURE, "request {attempt} took {took:?}");
        slowest = slowest.max(took);
    }
    slowest
}

#[cfg(feature = "redis")]
mod redis {
    use std::cell::RefCell;

    use super::*;
    use actix_express_session::RedisStore;
    use redis_support::OwnRedis;

    async fn store(url: String) -> RedisStore {
        RedisStore::builder().connect(&url).await.expect("connects")
    }

    #[actix_rt::test]
    async fn a_frozen_redis_fails_fast_and_service_resumes_on_sigcont() {
        let server = OwnRedis::start();
        let (down, up) = (|| server.freeze(true), || server.freeze(false));
        let figures = outage(store(server.url()).await, down, up, true).await;
        figures.print("redis frozen (SIGSTOP)");
    }

    #[actix_rt::test]
    async fn a_killed_redis_fails_fast_and_service_resumes_on_restart() {
        let server = RefCell::new(OwnRedis::start());
        let url = server.borrow().url();
        let store = store(url).await;
        let (down, up) = (
            || server.borrow_mut().stop(),
            || server.borrow_mut().restart(),
        );
        // This Redis keeps nothing on disk: the session is gone after the restart.
        let figures = outage(store, down, up, false).await;
        figures.print("redis killed (SIGKILL)");
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use actix_express_session::store::PostgresStore;
    use postgres_util::Server;

    async fn store(server: &Server) -> PostgresStore {
        let url = server.url();
        let pool = PostgresStore::connect(&url)
            .await
            .expect("connects")
            .pool()
            .clone();
        let builder = PostgresStore::builder(pool).create_table_if_missing(true);
        builder.build().expect("valid")
    }

    #[actix_rt::test]
    async fn a_frozen_postgres_fails_fast_and_service_resumes_on_sigcont() {
        let server = Server::start();
        let (down, up) = (|| server.freeze(true), || server.freeze(false));
        let figures = outage(store(&server).await, down, up, true).await;
        figures.print("postgres frozen (SIGSTOP)");
    }

    #[actix_rt::test]
    async fn a_stopped_postgres_fails_fast_and_service_resumes_on_restart() {
        let server = Server::start();
        let (down, up) = (|| server.stop(), || server.resume());
        let figures = outage(store(&server).await, down, up, true).await;
        figures.print("postgres stopped (pg_ctl stop -m fast)");
    }
}
