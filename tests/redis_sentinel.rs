//! [`RedisStore`] through Redis Sentinel: a primary, a replica and three sentinels of each
//! test's own, on free loopback ports (`REDIS_SERVER_BIN`, files under `REDIS_DIR`).
//!
//! The primary is killed (or frozen) under a steady stream of requests: the same app
//! fails promptly for a while, then carries on with the promoted replica, the session
//! that had replicated included, and writes there. A manual failover, the old primary
//! still up, moves the store as soon as a sentinel announces it.
#![cfg(feature = "redis")]

mod common;
mod redis_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_express_session::store::redis::RedisConnectionInfo;
use actix_express_session::store::SessionStore;
use actix_express_session::{RedisStore, SessionMiddleware};
use common::{app, body, get, pair, set_cookie, sid, SECRET};
use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis_support::{env, eventually, raw, unique_prefix};

/// The name the sentinels monitor the primary under.
const SERVICE: &str = "sessions";
/// The primary's database, set through `primary_settings` (the sentinels have none).
const DB: i64 = 3;
const TIMEOUT: Duration = Duration::from_millis(800);
/// Requests answered 200 again at most this long after the primary died.
const RESUME_WITHIN: Duration = Duration::from_secs(15);
/// Direct store calls made at once on each tick of the stream.
const CONCURRENT: usize = 8;

/// The servers of one test, killed (SIGKILL) when it ends, passed or not.
struct Servers {
    dir: PathBuf,
    primary: u16,
    replica: u16,
    sentinels: Vec<u16>,
    children: Vec<(u16, Child)>,
}

impl Servers {
    /// A primary, its replica (in sync), and three sentinels that see both and each other.
    async fn start() -> Self {
        let dir = unique_prefix("sentinel").replace(':', "-");
        let dir = PathBuf::from(env("REDIS_DIR")).join(dir);
        std::fs::create_dir_all(&dir).expect("a directory for the servers");
        let mut servers = Servers {
            dir,
            primary: 0,
            replica: 0,
            sentinels: Vec::new(),
            children: Vec::new(),
        };
        // No delay before a full sync (Redis 7 waits 5 s for more replicas by default).
        servers.primary = servers.launch_node(&["--repl-diskless-sync-delay", "0"]);
        let primary = servers.primary.to_string();
        servers.replica = servers.launch_node(&["--replicaof", "127.0.0.1", &primary]);
        let replica = node(servers.replica).await;
        eventually(Duration::from_secs(10), || async {
            let mut replica = replica.clone();
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut replica)
                .await
                .map_err(|e| e.to_string())?;
            let up = info.contains("master_link_status:up");
            up.then_some(())
                .ok_or_else(|| "the replica is not in sync yet".to_owned())
        })
        .await;
        for _ in 0..3 {
            let sentinel = launch(|port| servers.sentinel(port));
            let port = servers.keep(sentinel);
            servers.sentinels.push(port);
        }
        for port in servers.sentinels.clone() {
            servers.wait_until_sentinel_ready(port).await;
        }
        servers
    }

    fn launch_node(&mut self, extra: &[&str]) -> u16 {
        let node = launch(|port| {
            let dir = self.dir.join(port.to_string());
            std::fs::create_dir_all(&dir).expect("a directory for the node");
            let mut cmd = Command::new(env("REDIS_SERVER_BIN"));
            cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .arg("--dir")
                .arg(&dir)
                .args(["--save", "", "--appendonly", "no", "--logfile", "redis.log"])
                .args(extra);
            cmd
        });
        self.keep(node)
    }

    /// The server is killed with the others; its port.
    fn keep(&mut self, (port, child): (u16, Child)) -> u16 {
        self.children.push((port, child));
        port
    }

    /// A sentinel on `port`, with a configuration file of its own (it rewrites it).
    fn sentinel(&self, port: u16) -> Command {
        let conf = self.dir.join(format!("sentinel-{port}.conf"));
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile sentinel-{port}.log\n\
             sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds {SERVICE} 500\n\
             sentinel failover-timeout {SERVICE} 2000\n",
            dir = self.dir.display(),
            primary = self.primary,
        );
        std::fs::write(&conf, text).expect("writes the sentinel's configuration");
        let mut cmd = Command::new(env("REDIS_SERVER_BIN"));
        cmd.arg(&conf).arg("--sentinel");
        cmd
    }

    /// Waits until the sentinel at `port` sees the replica (connected, in sync) and the
    /// two other sentinels: only then can they agree on a failover.
    async fn wait_until_sentinel_ready(&self, port: u16) {
        let sentinel = raw(&format!("redis://127.0.0.1:{port}")).await;
        eventually(Duration::from_secs(15), || async {
            let mut sentinel = sentinel.clone();
            let replicas = sentinel_list(&mut sentinel, "REPLICAS").await?;
            let others = sentinel_list(&mut sentinel, "SENTINELS").await?;
            let ready = replicas.len() == 1
                && replicas[0].get("flags").map(String::as_str) == Some("slave")
                && replicas[0].get("master-link-status").map(String::as_str) == Some("ok")
                && others.len() == 2;
            ready.then_some(()).ok_or(format!(
                "replicas {replicas:?}, {} other sentinels",
                others.len()
            ))
        })
        .await;
    }

    fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// SIGKILL: no goodbye to the replica or the sentinels.
    fn kill(&mut self, port: u16) {
        if let Some(i) = self.children.iter().position(|(p, _)| *p == port) {
            let (_, mut child) = self.children.remove(i);
            child.kill().expect("kills the server");
            child.wait().expect("reaps the server");
        }
    }
}

impl Servers {
    /// SIGSTOP: the server holds its connections and answers nothing.
    fn freeze(&self, port: u16) {
        let (_, child) = self
            .children
            .iter()
            .find(|(p, _)| *p == port)
            .expect("ours");
        let status = Command::new("kill")
            .args(["-STOP", &child.id().to_string()])
            .status()
            .expect("runs kill");
        assert!(status.success(), "kill -STOP");
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("sentinel test logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts the server `command` makes for a free port, and returns that port. A port
/// taken between the choice and the start (by another test's server, or as the local
/// port of a connection) makes the server exit: another port is tried then.
fn launch(command: impl Fn(u16) -> Command) -> (u16, Child) {
    for _ in 0..5 {
        let port = common::free_port();
        let mut child = command(port)
            .stdout(Stdio::null())
            .spawn()
            .expect("starts redis-server");
        if listens(&mut child, port) {
            return (port, child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("redis-server found no free port in 5 tries");
}

/// Waits until `child` (and not some other server) answers on `port`; false if it exits.
fn listens(child: &mut Child, port: u16) -> bool {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a URL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().expect("a status").is_some() {
            return false;
        }
        let short = Duration::from_millis(200);
        let info = client
            .get_connection_with_timeout(short)
            .and_then(|mut c| redis::cmd("INFO").arg("server").query::<String>(&mut c));
        if info.is_ok_and(|i| i.contains(&format!("process_id:{}\r\n", child.id()))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server did not answer on {port}");
}

async fn sentinel_list(
    sentinel: &mut MultiplexedConnection,
    what: &str,
) -> Result<Vec<HashMap<String, String>>, String> {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg(what).arg(SERVICE);
    cmd.query_async(sentinel).await.map_err(|e| e.to_string())
}

/// A raw connection to a node, in the database the store uses.
async fn node(port: u16) -> MultiplexedConnection {
    raw(&format!("redis://127.0.0.1:{port}/{DB}")).await
}

/// The primary's address according to a sentinel.
async fn named_primary(sentinel: u16) -> (String, u16) {
    let mut sentinel = raw(&format!("redis://127.0.0.1:{sentinel}")).await;
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(SERVICE);
    cmd.query_async(&mut sentinel)
        .await
        .expect("the sentinel answers")
}

/// Connections a sentinel has accepted so far.
async fn connections_received(sentinel: u16) -> u64 {
    let mut sentinel = raw(&format!("redis://127.0.0.1:{sentinel}")).await;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut sentinel)
        .await
        .expect("INFO");
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"));
    line.expect("a connection count")
        .trim()
        .parse()
        .expect("a number")
}

async fn store(servers: &Servers, prefix: &str) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .response_timeout(TIMEOUT)
        .connection_timeout(TIMEOUT)
        .primary_settings(RedisConnectionInfo::default().set_db(DB))
        .connect_sentinel(servers.sentinel_urls(), SERVICE)
        .await
        .expect("connects through the sentinels")
}

fn middleware(store: RedisStore) -> SessionMiddleware<RedisStore> {
    SessionMiddleware::builder(store, SECRET)
        .build()
        .expect("valid options")
}

/// The counter in a stored session record.
fn counter(json: &str) -> u64 {
    let record: serde_json::Value = serde_json::from_str(json).expect("a JSON record");
    record["n"].as_u64().expect("a counter")
}

/// What one request of the stream got, and how long it took.
struct Answer {
    status: u16,
    body: String,
    took: Duration,
}

/// How the primary is lost.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// SIGKILL: its connections are refused at once.
    Killed,
    /// SIGSTOP: it accepts connections and answers nothing, so commands time out.
    Frozen,
}

#[actix_rt::test]
async fn the_same_app_follows_a_failover_when_the_primary_is_killed() {
    the_same_app_follows_a_failover(Loss::Killed).await;
}

#[actix_rt::test]
async fn the_same_app_follows_a_failover_when_the_primary_stalls() {
    the_same_app_follows_a_failover(Loss::Frozen).await;
}

/// A steady stream of requests while the primary is lost: they fail promptly for a while
/// (500s, none slower than its two store calls' timeouts), then the same app answers
/// from the promoted replica, with the session that had replicated, and writes there.
async fn the_same_app_follows_a_failover(loss: Loss) {
    let mut servers = Servers::start().await;
    let prefix = unique_prefix("sentinel");
    let store = store(&servers, &prefix).await;
    let app = app(middleware(store.clone())).await;

    // A session counted to 3 on the primary, in the database `primary_settings` names.
    let res = get(&app, "/count", None).await;
    let set = set_cookie(&res).expect("a new session sends its cookie");
    let (cookie, id) = (pair(&set), sid(&set));
    let key = format!("{prefix}{id}");
    assert_eq!(body(res).await, "1");
    for n in 2..=3 {
        assert_eq!(
            body(get(&app, "/count", Some(&cookie)).await).await,
            n.to_string()
        );
    }
    let mut primary = node(servers.primary).await;
    let on_primary: Option<String> = primary.get(&key).await.expect("GET");
    assert_eq!(counter(&on_primary.expect("stored on the primary")), 3);
    // WAIT counts this connection's own writes: one more write, ordered after the
    // session's in the replication stream, makes the replica's copy certain.
    let _: () = primary
        .set(format!("{prefix}marker"), 1)
        .await
        .expect("SET");
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(1000)
        .query_async(&mut primary)
        .await
        .expect("WAIT");
    assert_eq!(acked, 1, "the replica has the session");
    let sentinel_connections = connections_received(servers.sentinels[0]).await;

    match loss {
        Loss::Killed => servers.kill(servers.primary),
        Loss::Frozen => servers.freeze(servers.primary),
    }
    let killed = Instant::now();
    let mut answers: Vec<Answer> = Vec::new();
    let (mut direct, mut direct_failed) = (0, 0);
    let mut ticks = 0;
    let counted = loop {
        ticks += 1;
        let paths = std::iter::once("/count").chain(std::iter::repeat_n("/read", 3));
        let requests = join_all(paths.map(|path| async {
            let started = Instant::now();
            let res = get(&app, path, Some(&cookie)).await;
            let status = res.status().as_u16();
            let body = body(res).await;
            Answer {
                status,
                body,
                took: started.elapsed(),
            }
        }));
        // The store called directly as well, past the middleware's circuit breaker (which
        // holds most requests back once it opens): every call meets the failover.
        let calls = join_all((0..CONCURRENT).map(|_| store.get(&id)));
        let (tick, calls) = tokio::join!(requests, calls);
        direct += calls.len();
        direct_failed += calls.iter().filter(|c| c.is_err()).count();
        let count = &tick[0];
        let done = (count.status == 200).then(|| count.body.clone());
        answers.extend(tick);
        if let Some(n) = done {
            break n;
        }
        assert!(
            killed.elapsed() < RESUME_WITHIN,
            "no 200 for {RESUME_WITHIN:?} after the loss"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let resumed = killed.elapsed();
    let failed = answers.iter().filter(|a| a.status != 200).count();
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    let resolutions = connections_received(servers.sentinels[0]).await - sentinel_connections - 1;
    println!(
        "{loss:?}: resumed {resumed:?} after the loss, {ticks} ticks: {failed} of {} requests failed \
         (slowest {slowest:?}), {direct_failed} of {direct} direct store calls failed, \
         {resolutions} resolutions",
        answers.len(),
    );

    assert!(failed > 0, "requests fail while no primary is promoted");
    for a in &answers {
        assert!(
            a.status == 200 || a.status == 500,
            "a failure is a 500, got {}",
            a.status
        );
        assert!(
            a.status == 200 || a.body.is_empty(),
            "the 500 says nothing: {:?}",
            a.body
        );
        // A request makes at most two store calls (load, save), each bounded.
        assert!(
            a.took < 2 * TIMEOUT + Duration::from_millis(400),
            "a request took {:?}",
            a.took
        );
    }
    // One resolution at a time, shared by the calls that wait for it: far fewer than
    // one per failed call (each resolution connects once to every sentinel).
    assert!(
        resolutions <= (direct_failed / 3) as u64,
        "{resolutions} resolutions for {direct_failed} failed calls"
    );
    assert_eq!(
        counted, "4",
        "the session that had replicated is still there"
    );

    // The sentinels promoted the replica, and the store writes there now.
    let port = servers.replica;
    for sentinel in servers.sentinels.clone() {
        // The sentinels that did not lead the failover learn of it a moment later.
        eventually(Duration::from_secs(5), || async move {
            let named = named_primary(sentinel).await;
            (named == ("127.0.0.1".to_owned(), port))
                .then_some(())
                .ok_or(named)
        })
        .await;
    }
    assert_eq!(body(get(&app, "/count", Some(&cookie)).await).await, "5");
    let mut new_primary = node(port).await;
    let stored: Option<String> = new_primary.get(&key).await.expect("GET");
    let stored = stored.expect("on the new primary");
    assert_eq!(counter(&stored), 5, "{stored}");
    let res = get(&app, "/count", None).await;
    let fresh = format!("{prefix}{}", sid(&set_cookie(&res).expect("a new session")));
    assert_eq!(body(res).await, "1");
    let exists: bool = new_primary.exists(&fresh).await.expect("EXISTS");
    assert!(exists, "a new session is created on the new primary");

    store.clear().await.expect("clear");
}

#[actix_rt::test]
async fn a_manual_failover_moves_the_store_as_soon_as_a_sentinel_announces_it() {
    let servers = Servers::start().await;
    let prefix = unique_prefix("sentinel-manual");
    let store = store(&servers, &prefix).await;
    let app = app(middleware(store.clone())).await;
    let res = get(&app, "/count", None).await;
    let set = set_cookie(&res).expect("a new session sends its cookie");
    let (cookie, key) = (pair(&set), format!("{prefix}{}", sid(&set)));
    assert_eq!(body(res).await, "1");

    // The old primary stays up: it takes writes until the sentinels make it a replica,
    // about ten seconds after the failover. A store that waited for a failure to move
    // would write there all along, and lose it all.
    let mut sentinel = raw(&format!("redis://127.0.0.1:{}", servers.sentinels[0])).await;
    let asked = Instant::now();
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(SERVICE)
        .query_async(&mut sentinel)
        .await
        .expect("SENTINEL FAILOVER");
    let moved = loop {
        // Promoted first, then written to: the write cannot have come by replication.
        // (A connection of its own each time, and errors count as "not yet": the
        // sentinels close the clients of a node they reconfigure.)
        let mut promoted = node(servers.replica).await;
        let role: Option<redis::Role> = redis::cmd("ROLE").query_async(&mut promoted).await.ok();
        let res = get(&app, "/count", Some(&cookie)).await;
        let (status, n) = (res.status(), body(res).await);
        let stored: Option<String> = promoted.get(&key).await.ok().flatten();
        let landed = stored.is_some_and(|s| counter(&s).to_string() == n);
        if matches!(role, Some(redis::Role::Primary { .. })) && status == 200 && landed {
            break asked.elapsed();
        }
        assert!(
            asked.elapsed() < Duration::from_secs(6),
            "the store still writes elsewhere"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("the store wrote to the promoted replica {moved:?} after SENTINEL FAILOVER");
    store.clear().await.expect("clear");
}
