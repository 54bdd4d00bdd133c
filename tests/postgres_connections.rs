//! The connections [`PostgresStore`] runs its per-request operations on: at most N per
//! thread, one round trip per operation (no ping), statements prepared once, and a
//! connection that was abandoned mid-query or whose backend died is never reused.
//!
//! Each test counts the store's server connections in `pg_stat_activity` by an
//! `application_name` of its own, on its own schema of the `DATABASE_URL` server.
#![cfg(feature = "postgres")]

mod common;
mod postgres_util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_express_session::store::sqlx::postgres::{
    PgConnectOptions, PgPool, PgPoolOptions, PgSslMode,
};
use actix_express_session::store::sqlx::{self, AssertSqlSafe};
use actix_express_session::store::{
    PostgresConfigError, PostgresStore, PostgresStoreBuilder, SaveOutcome, SessionStore,
};
use common::conformance::record;
use futures_util::future::join_all;
use postgres_util::{env, TestSchema};
use serde_json::json;

const HOUR: Option<i64> = Some(3_600_000);

/// `DATABASE_URL`'s options with an `application_name` of the test's own.
fn options(app: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(&env("DATABASE_URL"))
        .expect("a valid DATABASE_URL")
        .application_name(app)
}

fn unique_app(what: &str) -> String {
    format!(
        "aes_{what}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A store on the schema's table, its pool (one connection) and its own connections
/// opened with `options`.
async fn store_with(schema: &TestSchema, options: PgConnectOptions) -> PostgresStoreBuilder {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .expect("a pool");
    PostgresStore::builder(pool)
        .schema(&schema.name)
        .create_table_if_missing(true)
        .prune_interval(None)
}

/// How many server connections carry `app`; only those running a statement when
/// `active`.
async fn backends(observer: &PgPool, app: &str, active: bool) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
               AND (NOT $2 OR state = 'active')";
    sqlx::query_scalar(sql)
        .bind(app)
        .bind(active)
        .fetch_one(observer)
        .await
        .expect("pg_stat_activity")
}

/// Waits (up to 10 s) until `backends` is `want`.
async fn until_backends(observer: &PgPool, app: &str, active: bool, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = backends(observer, app, active).await;
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} backends of {app}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Terminates every backend of `app`.
async fn terminate(observer: &PgPool, app: &str) {
    let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1";
    let q = sqlx::query(sql).bind(app);
    q.execute(observer).await.expect("pg_terminate_backend");
}

/// Terminates every (idle) backend of `app` and waits until they are gone.
async fn kill_backends(observer: &PgPool, app: &str) {
    terminate(observer, app).await;
    until_backends(observer, app, false, 0).await;
}

/// Locks the schema's table in a transaction of the observer's until it is dropped
/// or rolled back: every statement on it blocks meanwhile.
async fn lock_table(schema: &TestSchema) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = schema.pool.begin().await.expect("a transaction");
    let sql = format!(
        "LOCK TABLE \"{}\".\"session\" IN ACCESS EXCLUSIVE MODE",
        schema.name
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await
        .expect("LOCK TABLE");
    tx
}

#[actix_rt::test]
async fn zero_connections_per_worker_is_rejected_by_build() {
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/x")
        .expect("a lazy pool");
    let err = PostgresStore::builder(pool)
        .connections_per_worker(0)
        .build()
        .expect_err("zero connections");
    assert_eq!(err, PostgresConfigError::ZeroConnectionsPerWorker);
    assert!(err.to_string().contains("connections_per_worker"), "{err}");
}

#[actix_rt::test]
async fn concurrent_operations_on_one_thread_use_at_most_n_connections_and_all_succeed() {
    let schema = TestSchema::new().await;
    let app = unique_app("conc");
    let store = store_with(&schema, options(&app))
        .await
        .connections_per_worker(3)
        .query_timeout(Duration::from_secs(10))
        .build()
        .expect("valid");
    let rec = record(HOUR, json!({"n": 1}));
    store.set("s", &rec).await.expect("set");

    // With the table locked, the first three operations hold the three connections
    // and the others wait their turn.
    let lock = lock_table(&schema).await;
    let observe = async {
        until_backends(&schema.pool, &app, true, 3).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let busy = backends(&schema.pool, &app, true).await;
        lock.rollback().await.expect("unlock");
        busy
    };
    let ops = join_all((0..20).map(|_| store.get("s")));
    let (results, busy) = tokio::join!(ops, observe);
    assert_eq!(busy, 3, "three connections busy, no more");
    for found in results {
        assert_eq!(found.expect("get"), Some(rec.clone()));
    }
    let all = backends(&schema.pool, &app, false).await;
    assert!(
        all <= 3 + 1,
        "{all} connections: three of the store's and the pool's one"
    );

    // Unlocked, a burst of every kind of operation also stays within three.
    let burst = join_all((0..30).map(|i| {
        let (store, rec) = (&store, &rec);
        async move {
            let sid = format!("b{i}");
            store.set(&sid, rec).await.expect("set");
            assert_eq!(store.get(&sid).await.expect("get").as_ref(), Some(rec));
        }
    }));
    burst.await;
    let all = backends(&schema.pool, &app, false).await;
    assert!(all <= 3 + 1, "{all} connections after the burst");
    schema.drop().await;
}

#[actix_rt::test]
async fn callers_that_give_up_waiting_leave_no_connection_behind() {
    let schema = TestSchema::new().await;
    let app = unique_app("wait");
    let store = store_with(&schema, options(&app))
        .await
        .connections_per_worker(1)
        .query_timeout(Duration::from_millis(300))
        .build()
        .expect("valid");
    let rec = record(HOUR, json!({"n": 1}));
    store.set("s", &rec).await.expect("set");

    let lock = lock_table(&schema).await;
    // One runs (and is abandoned mid-query), three wait and give up.
    for result in join_all((0..4).map(|_| store.get("s"))).await {
        result.expect_err("the table is locked");
    }
    lock.rollback().await.expect("unlock");
    let started = Instant::now();
    assert_eq!(store.get("s").await.expect("get"), Some(rec.clone()));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "served at once"
    );
    until_backends(&schema.pool, &app, false, 1 + 1).await;
    schema.drop().await;
}

#[actix_rt::test]
async fn an_operation_abandoned_mid_query_closes_its_connection_and_the_next_ones_see_the_data() {
    let schema = TestSchema::new().await;
    let app = unique_app("cancel");
    let store = store_with(&schema, options(&app))
        .await
        .connections_per_worker(1)
        .query_timeout(Duration::from_millis(300))
        .build()
        .expect("valid");
    let (one, two, three) = (
        record(HOUR, json!({"v": 1})),
        record(HOUR, json!({"v": 2})),
        record(HOUR, json!({"v": 3})),
    );
    store.set("a", &one).await.expect("set");
    store.set("b", &one).await.expect("set");

    // Another transaction holds row "a": the UPDATE blocks and times out.
    let mut tx = schema.pool.begin().await.expect("a transaction");
    let sql = format!(
        "SELECT 1 FROM \"{}\".\"session\" WHERE sid = 'a' FOR UPDATE",
        schema.name
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await
        .expect("row lock");
    store.set("a", &two).await.expect_err("the row is locked");

    // The only connection was closed, not kept with its reply pending: a new one
    // serves the next operations at once, and they read committed data.
    assert_eq!(store.get("b").await.expect("get"), Some(one.clone()));
    assert_eq!(store.get("a").await.expect("get"), Some(one.clone()));
    tx.rollback().await.expect("unlock");
    // The abandoned UPDATE may still land (PostgreSQL ran it); the next write is
    // applied after it, and read back.
    store.set("a", &three).await.expect("set");
    assert_eq!(store.get("a").await.expect("get"), Some(three.clone()));
    let version = store.load("a").await.expect("load").expect("live").version;
    let saved = store
        .save_if("a", &Arc::new(one.clone()), &version)
        .await
        .expect("save_if");
    assert!(matches!(saved, SaveOutcome::Saved(_)), "{saved:?}");
    // The abandoned backend goes once its statement is done: one store connection
    // and the pool's remain.
    until_backends(&schema.pool, &app, false, 1 + 1).await;
    schema.drop().await;
}

#[actix_rt::test]
async fn a_killed_backend_costs_at_most_the_operations_in_flight() {
    let schema = TestSchema::new().await;
    let app = unique_app("kill");
    let store = store_with(&schema, options(&app))
        .await
        .connections_per_worker(3)
        .query_timeout(Duration::from_secs(10))
        .build()
        .expect("valid");
    let rec = Arc::new(record(HOUR, json!({"n": 1})));
    store.set("s", &rec).await.expect("set");
    let warm = join_all((0..10).map(|_| store.get("s"))).await;
    assert!(warm.into_iter().all(|r| r.is_ok()));

    // Killed while idle: no operation fails, whatever it is.
    kill_backends(&schema.pool, &app).await;
    let concurrent = join_all((0..10).map(|_| store.get("s"))).await;
    for found in concurrent {
        assert_eq!(found.expect("get"), Some((*rec).clone()));
    }
    let mut ops = 0;
    for round in 0..2 {
        kill_backends(&schema.pool, &app).await;
        let sid = format!("k{round}");
        let version = store.create(&sid, &rec).await.expect("create");
        let version = version.expect("a free ID");
        kill_backends(&schema.pool, &app).await;
        let saved = store.save_if(&sid, &rec, &version).await.expect("save_if");
        assert!(matches!(saved, SaveOutcome::Saved(_)), "{saved:?}");
        kill_backends(&schema.pool, &app).await;
        store.load(&sid).await.expect("load").expect("live");
        kill_backends(&schema.pool, &app).await;
        store.touch(&sid, &rec).await.expect("touch");
        kill_backends(&schema.pool, &app).await;
        store.destroy(&sid).await.expect("destroy");
        ops += 5;
    }
    assert_eq!(ops, 10);

    // Killed mid-query: those in flight may fail, the next ones succeed.
    let lock = lock_table(&schema).await;
    let kill = async {
        until_backends(&schema.pool, &app, true, 3).await;
        terminate(&schema.pool, &app).await;
        lock.rollback().await.expect("unlock");
    };
    let (in_flight, ()) = tokio::join!(join_all((0..5).map(|_| store.get("s"))), kill);
    let failed = in_flight.iter().filter(|r| r.is_err()).count();
    assert!(failed <= 3, "{failed} of 5 failed; 3 were in flight");
    for found in join_all((0..10).map(|_| store.get("s"))).await {
        assert_eq!(found.expect("get"), Some((*rec).clone()));
    }
    schema.drop().await;
}

#[actix_rt::test]
async fn each_operation_is_one_round_trip_and_statements_are_prepared_once() {
    let schema = TestSchema::new().await;
    let proxy = Proxy::start(&env("DATABASE_URL"));
    let through = options(&unique_app("trips"))
        .host("127.0.0.1")
        .port(proxy.port)
        .ssl_mode(PgSslMode::Disable);
    let store = store_with(&schema, through)
        .await
        .connections_per_worker(1)
        .build()
        .expect("valid");
    const OPS: u64 = 7;
    let round = |i: usize| {
        let store = &store;
        async move {
            let rec = Arc::new(record(HOUR, json!({"i": i})));
            let sid = format!("s{i}");
            let v = store.create(&sid, &rec).await.expect("create");
            let v = v.expect("a free ID");
            let loaded = store.load(&sid).await.expect("load").expect("live");
            assert_eq!(loaded.version, v);
            let saved = store.save_if(&sid, &rec, &v).await.expect("save_if");
            assert!(matches!(saved, SaveOutcome::Saved(_)), "{saved:?}");
            store.touch(&sid, &rec).await.expect("touch");
            store.get(&sid).await.expect("get").expect("live");
            store.set(&sid, &rec).await.expect("set");
            store.destroy(&sid).await.expect("destroy");
        }
    };
    round(0).await;
    let (syncs, parses) = proxy.counts();
    for i in 1..=10 {
        round(i).await;
    }
    let (syncs_after, parses_after) = proxy.counts();
    assert_eq!(
        syncs_after - syncs,
        10 * OPS,
        "one round trip (one Sync) per operation: no ping"
    );
    assert_eq!(parses_after, parses, "no statement prepared again");
    schema.drop().await;
}

#[test]
fn a_new_runtime_on_the_same_thread_gets_new_connections() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    };
    let app = unique_app("rt");
    let rec = Arc::new(record(HOUR, json!({"n": 1})));
    let (schema, store) = runtime().block_on(async {
        let schema = TestSchema::new().await;
        let store = store_with(&schema, options(&app))
            .await
            .build()
            .expect("valid");
        store.set("s", &rec).await.expect("set");
        // The pool has done its part (the table); closed, it leaves the store's own
        // connection alone in pg_stat_activity.
        store.pool().close().await;
        (schema, store)
    });
    // The first runtime is gone, and its connections with it: every operation works
    // on the next one, the conditional ones too.
    runtime().block_on(async move {
        // `create` first: it is not run twice after a connection failure.
        let v = store.create("t", &rec).await.expect("create");
        let saved = store.save_if("t", &rec, &v.expect("a free ID")).await;
        assert!(matches!(saved, Ok(SaveOutcome::Saved(_))), "{saved:?}");
        assert_eq!(store.get("s").await.expect("get"), Some((*rec).clone()));
        let observer = PgPoolOptions::new()
            .max_connections(1)
            .connect(&env("DATABASE_URL"))
            .await
            .expect("an observer");
        // This runtime's one: the first runtime's was closed.
        until_backends(&observer, &app, false, 1).await;
        drop(store);
        let sql = format!("DROP SCHEMA \"{}\" CASCADE", schema.name);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&observer)
            .await
            .expect("drop schema");
    });
}

/// A TCP proxy to PostgreSQL that counts the frontend messages it forwards: `Sync`
/// (one per round trip of the extended protocol; a ping is a `Sync` alone) and `Parse`
/// (a statement being prepared).
struct Proxy {
    port: u16,
    syncs: Arc<AtomicU64>,
    parses: Arc<AtomicU64>,
}

impl Proxy {
    fn start(url: &str) -> Self {
        let upstream = PgConnectOptions::from_str(url).expect("a valid URL");
        let upstream = format!("{}:{}", upstream.get_host(), upstream.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let (syncs, parses) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let counters = (Arc::clone(&syncs), Arc::clone(&parses));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = TcpStream::connect(&upstream).expect("PostgreSQL");
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let counters = (Arc::clone(&counters.0), Arc::clone(&counters.1));
                std::thread::spawn(move || forward_counting(client, server, counters));
                std::thread::spawn(move || copy(s2, c2));
            }
        });
        Proxy {
            port,
            syncs,
            parses,
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.syncs.load(Ordering::SeqCst),
            self.parses.load(Ordering::SeqCst),
        )
    }
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Forwards the client's bytes, counting its messages: first the untyped ones
/// (`SSLRequest`, the startup message), then `type, length, body` ones.
fn forward_counting(
    mut from: TcpStream,
    mut to: TcpStream,
    (syncs, parses): (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    const SSL_REQUEST: u32 = 80_877_103;
    let (mut pending, mut started, mut buf) = (Vec::new(), false, [0u8; 8192]);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        loop {
            let head = usize::from(started);
            let Some(len) = pending.get(head..head + 4) else {
                break;
            };
            let len = u32::from_be_bytes(len.try_into().expect("four bytes")) as usize;
            if pending.len() < head + len {
                break;
            }
            if started {
                match pending[0] {
                    b'S' => syncs.fetch_add(1, Ordering::SeqCst),
                    b'P' => parses.fetch_add(1, Ordering::SeqCst),
                    _ => 0,
                };
            } else {
                let code = u32::from_be_bytes(pending[4..8].try_into().expect("four bytes"));
                started = code != SSL_REQUEST;
            }
            pending.drain(..head + len);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// The store's statements on `schema` of one kind (their text has `kind`) logged so
/// far: for one operation, and (their text has `many`) for many at once.
fn logged(logs: &common::logs::Logs, schema: &str, kind: &str, many: &str) -> (usize, usize) {
    let text = logs.text();
    let statements = text
        .lines()
        .filter(|l| l.contains("sqlx::query") && l.contains(schema) && l.contains(kind));
    statements.fold((0, 0), |(alone, together), l| {
        if l.contains(many) {
            (alone, together + 1)
        } else {
            (alone + 1, together)
        }
    })
}

/// Loads logged: alone, and for many IDs at once.
fn loads_logged(logs: &common::logs::Logs, schema: &str) -> (usize, usize) {
    logged(logs, schema, "extract(epoch", "sid = ANY($3)")
}

/// Creates logged: alone, and for many rows at once.
fn creates_logged(logs: &common::logs::Logs, schema: &str) -> (usize, usize) {
    logged(logs, schema, "AS cur", "unnest(")
}

/// A store on the schema's table with one connection per thread, so that a second
/// operation finds it busy, holding sessions `s0`, `s1`, ... (`sessions` of them), each
/// `{"n": i}`.
async fn one_connection_store(schema: &TestSchema, what: &str, sessions: u64) -> PostgresStore {
    let store = store_with(schema, options(&unique_app(what)))
        .await
        .connections_per_worker(1)
        .build()
        .expect("valid");
    for i in 0..sessions {
        let rec = record(HOUR, json!({"n": i}));
        store.set(&format!("s{i}"), &rec).await.expect("set");
    }
    store
}

/// Rolls back `lock` (from [`lock_table`]) after 100 ms, when the operations started
/// beside it are on their way.
async fn unlock_soon(lock: sqlx::Transaction<'static, sqlx::Postgres>) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.rollback().await.expect("unlock");
}

/// Polls `fut` once; whether it finished.
async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx).is_ready())
    })
    .await
}

/// Loads that find every connection busy wait together and share one statement, each
/// ID asked once: of twelve loads on one connection (eleven for four sessions, one for
/// an ID with no row) the first runs alone and the other eleven in one statement, and
/// each gets its own session.
#[actix_rt::test]
async fn loads_that_meet_a_busy_connection_share_one_statement() {
    let logs = common::logs::Logs::capture(tracing::Level::DEBUG);
    let schema = TestSchema::new().await;
    let store = one_connection_store(&schema, "gather", 4).await;
    let before = loads_logged(logs, &schema.name);
    let sids: Vec<String> = (0..12)
        .map(|i| match i {
            11 => "no-such-session".to_owned(),
            i => format!("s{}", i % 4),
        })
        .collect();
    // The table is locked until every load is on its way: the first holds the
    // connection, the others wait.
    let lock = lock_table(&schema).await;
    let unlock = unlock_soon(lock);
    let loads = join_all(sids.iter().map(|sid| store.load(sid)));
    let (loaded, ()) = tokio::join!(loads, unlock);
    for (sid, found) in sids.iter().zip(loaded) {
        let found = found.expect("load");
        match sid.strip_prefix('s') {
            Some(i) => {
                let n: u64 = i.parse().expect("a number");
                assert_eq!(found.expect("a live row").record.data["n"], json!(n));
            }
            None => assert!(found.is_none(), "{sid}"),
        }
    }
    let after = loads_logged(logs, &schema.name);
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));
    schema.drop().await;
}

/// The load that waits for the busy connection is dropped (timeout, client gone) with
/// a load gathered behind it: that one runs alone and still gets its session.
#[actix_rt::test]
async fn a_load_gathered_behind_one_that_gave_up_runs_alone() {
    let schema = TestSchema::new().await;
    let store = one_connection_store(&schema, "leader", 3).await;
    let lock = lock_table(&schema).await;
    let (mut first, mut leader, mut follower) =
        (store.load("s0"), store.load("s1"), store.load("s2"));
    assert!(
        !poll_once(&mut first).await,
        "the first load holds the connection"
    );
    assert!(!poll_once(&mut leader).await, "the second waits for it");
    assert!(
        !poll_once(&mut follower).await,
        "the third goes with the second"
    );
    drop(leader);
    let unlock = unlock_soon(lock);
    let (first, follower, ()) = tokio::join!(first, follower, unlock);
    let n = |found: Result<Option<_>, _>| {
        let found: Option<actix_express_session::store::Loaded> = found.expect("load");
        found.expect("a live row").record.data["n"].clone()
    };
    assert_eq!((n(first), n(follower)), (json!(0), json!(2)));
    schema.drop().await;
}

/// Creates that find every connection busy share one statement too: of seven on one
/// connection the first runs alone and the other six in one `INSERT`, and each is told
/// whether its row went in: yes for a free ID and an expired row's, no for a live
/// row's, and of two creates of one ID only the first.
#[actix_rt::test]
async fn creates_that_meet_a_busy_connection_share_one_statement() {
    let logs = common::logs::Logs::capture(tracing::Level::DEBUG);
    let schema = TestSchema::new().await;
    let store = one_connection_store(&schema, "create", 0).await;
    let live = record(HOUR, json!({"owner": "someone else"}));
    store.set("live", &live).await.expect("set");
    let expired = record(Some(-5_000), json!({}));
    store.set("expired", &expired).await.expect("set");
    let before = creates_logged(logs, &schema.name);

    let rec = Arc::new(record(HOUR, json!({"n": 1})));
    let sids = ["first", "a", "b", "live", "expired", "twice", "twice"];
    let lock = lock_table(&schema).await;
    let unlock = unlock_soon(lock);
    let creates = join_all(sids.iter().map(|sid| store.create(sid, &rec)));
    let (created, ()) = tokio::join!(creates, unlock);
    let written: Vec<bool> = created
        .into_iter()
        .map(|c| c.expect("create").is_some())
        .collect();
    assert_eq!(written, [true, true, true, false, true, true, false]);
    assert_eq!(store.get("live").await.expect("get"), Some(live));
    for sid in ["first", "a", "b", "expired", "twice"] {
        assert_eq!(
            store.get(sid).await.expect("get").as_ref(),
            Some(&*rec),
            "{sid}"
        );
    }
    let after = creates_logged(logs, &schema.name);
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));
    schema.drop().await;
}

/// When a shared statement fails, every load that went with it fails with it, and the
/// loads after run again once the cause is gone: here the table is moved away while
/// the loads wait behind the first, then moved back.
#[actix_rt::test]
async fn a_failed_shared_statement_fails_every_load_in_it_and_service_resumes() {
    let schema = TestSchema::new().await;
    let store = one_connection_store(&schema, "failed", 3).await;
    let mut lock = lock_table(&schema).await;
    let table = format!("\"{}\".\"session\"", schema.name);
    let move_away = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sql = format!("ALTER TABLE {table} RENAME TO \"moved\"");
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *lock)
            .await
            .expect("rename");
        lock.commit().await.expect("commit");
    };
    let sids = ["s0", "s1", "s2", "s1", "s0"];
    let loads = join_all(sids.iter().map(|sid| store.load(sid)));
    let (loaded, ()) = tokio::join!(loads, move_away);
    for (sid, found) in sids.iter().zip(loaded).skip(1) {
        found.expect_err(&format!("{sid}: the table is gone"));
    }
    let back = format!(
        "ALTER TABLE \"{}\".\"moved\" RENAME TO \"session\"",
        schema.name
    );
    sqlx::raw_sql(AssertSqlSafe(back))
        .execute(&schema.pool)
        .await
        .expect("rename back");
    let found = store.load("s1").await.expect("load").expect("a live row");
    assert_eq!(found.record.data["n"], json!(1));
    schema.drop().await;
}
