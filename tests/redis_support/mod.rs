//! Helpers for the Redis tests: the servers `scripts/redis.sh` started (found through
//! `REDIS_URL`, `REDIS_CLUSTER_URLS` and `REDIS_SERVER_BIN`), unique key prefixes, raw
//! access for wire checks (on one server or the cluster), a private server a test may
//! stop and restart, and a fake server that drops the connection on every command.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_express_session::store::RedisStoreBuilder;
use actix_express_session::store::StoreError;
use actix_express_session::{uuid_v4_id, RedisStore};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A required environment variable; the message names it when it is missing.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test.sh (or source scripts/redis.sh and call start_redis / start_redis_cluster)"))
}

pub fn redis_url() -> String {
    env("REDIS_URL")
}

pub fn cluster_urls() -> Vec<String> {
    env("REDIS_CLUSTER_URLS")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    format!("test:{test}:{}:", uuid_v4_id())
}

/// A store on the standalone server under its own prefix.
pub async fn standalone(prefix: &str) -> RedisStore {
    on_server(&redis_url(), prefix).await
}

/// A store on the server at `url` under its own prefix.
pub async fn on_server(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connects to {url}: {e}"))
}

/// A store on the cluster under its own prefix.
pub async fn cluster(prefix: &str) -> RedisStore {
    RedisStore::builder()
        .prefix(prefix)
        .connect_cluster(cluster_urls())
        .await
        .expect("connects to REDIS_CLUSTER_URLS")
}

/// A plain connection for raw commands.
pub async fn raw(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).expect("a valid URL");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

/// The cause of a backend error is the driver's own error, kept (not stringified).
pub fn assert_redis_error(e: &StoreError) {
    let StoreError::Backend(inner) = e else {
        panic!("a backend error, got {e:?}")
    };
    assert!(
        inner.downcast_ref::<redis::RedisError>().is_some(),
        "the source is a RedisError: {inner:?}"
    );
}

/// A redis-server of the test's own, so that stopping it disturbs no other test.
pub struct OwnRedis {
    pub port: u16,
    dir: String,
    /// Extra `redis-server` arguments (a password, users, renamed commands).
    args: Vec<String>,
    /// The environment variable naming the server binary.
    program: &'static str,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A Valkey server (8.1: `SET … IFEQ`) of the test's own.
    pub fn valkey() -> Self {
        Self::launch("VALKEY_SERVER_BIN", &[])
    }

    /// A server started with `args` besides the defaults.
    pub fn start_with(args: &[&str]) -> Self {
        Self::launch("REDIS_SERVER_BIN", args)
    }

    fn launch(program: &'static str, args: &[&str]) -> Self {
        let port = crate::common::free_port();
        let dir = format!("{}/own-{port}", env("REDIS_DIR"));
        std::fs::create_dir_all(&dir).expect("a directory for the server");
        let mut server = OwnRedis {
            port,
            dir,
            args: args.iter().map(|a| a.to_string()).collect(),
            program,
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new(env(self.program))
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--dir",
                &self.dir,
            ])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .expect("starts redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`true`) or thaws the server: a frozen server accepts nothing and answers nothing.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("runs kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}

/// Runs `attempt` until it succeeds, for at most `within`.
pub async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    within: Duration,
    mut attempt: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("still failing after {within:?}: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A raw connection to one server or to the cluster, for checking what a store wrote.
pub enum Raw {
    One(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Raw {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Raw::One(c) => c.req_packed_command(cmd),
            Raw::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Raw::One(c) => c.req_packed_commands(pipeline, offset, count),
            Raw::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Raw::One(c) => c.get_db(),
            Raw::Cluster(c) => c.get_db(),
        }
    }
}

/// A store under a prefix of its own, with raw access to the same server(s).
pub struct Backend {
    /// "standalone", "cluster", "valkey" or "valkey cluster", for assertion messages.
    pub name: &'static str,
    pub prefix: String,
    pub store: RedisStore,
    pub raw: Raw,
    urls: Urls,
}

/// Where a backend's server(s) listen.
enum Urls {
    One(String),
    Cluster(Vec<String>),
}

impl Backend {
    /// The Redis key of a session ID.
    pub fn key(&self, sid: &str) -> String {
        format!("{}{sid}", self.prefix)
    }

    /// Another store on the same server(s) and prefix, with these options.
    pub async fn store_with(&self, builder: RedisStoreBuilder) -> RedisStore {
        let builder = builder.prefix(&self.prefix);
        match &self.urls {
            Urls::One(url) => builder.connect(url).await,
            Urls::Cluster(urls) => builder.connect_cluster(urls.clone()).await,
        }
        .expect("connects")
    }

    async fn one(name: &'static str, test: &str, url: String) -> Self {
        let prefix = unique_prefix(test);
        let store = on_server(&url, &prefix).await;
        let raw = Raw::One(raw(&url).await);
        Backend {
            name,
            prefix,
            store,
            raw,
            urls: Urls::One(url),
        }
    }

    async fn cluster(name: &'static str, test: &str, urls: Vec<String>) -> Self {
        let prefix = unique_prefix(test);
        let store = RedisStore::builder()
            .prefix(&prefix)
            .connect_cluster(urls.clone())
            .await
            .expect("connects");
        let client = redis::cluster::ClusterClient::new(urls.clone()).expect("valid URLs");
        let conn = client.get_async_connection().await.expect("connects");
        Backend {
            name,
            prefix,
            store,
            raw: Raw::Cluster(conn),
            urls: Urls::Cluster(urls),
        }
    }
}

/// The Valkey server (8.1, with `SET … IFEQ`) that `scripts/valkey.sh` started.
pub fn valkey_url() -> String {
    env("VALKEY_URL")
}

fn valkey_cluster_urls() -> Vec<String> {
    env("VALKEY_CLUSTER_URLS")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// The standalone server and the cluster of Redis 7.0 (conditional saves by script),
/// and of Valkey 8.1 (by `SET … IFEQ`), each with a store under a unique prefix.
pub async fn backends(test: &str) -> [Backend; 4] {
    [
        Backend::one("standalone", test, redis_url()).await,
        Backend::cluster("cluster", test, cluster_urls()).await,
        Backend::one("valkey", test, valkey_url()).await,
        Backend::cluster("valkey cluster", test, valkey_cluster_urls()).await,
    ]
}

/// A fake Redis that answers the connection handshake (`CLIENT SETINFO`) and drops the
/// connection, unanswered, on any other command: as if Redis ran it and the reply was
/// lost. It counts the commands it received, by name.
pub struct DroppingRedis {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl DroppingRedis {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve_then_drop(stream, &log));
            }
        });
        DroppingRedis { port, seen }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// How many commands named `name` arrived so far.
    pub fn count(&self, name: &str) -> usize {
        let seen = self.seen.lock().expect("not poisoned");
        seen.iter().filter(|n| n.as_str() == name).count()
    }
}

fn serve_then_drop(stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("a second handle"));
    let mut writer = stream;
    while let Some(name) = read_command_name(&mut reader) {
        seen.lock().expect("not poisoned").push(name.clone());
        if name != "CLIENT" {
            break;
        }
        if writer.write_all(b"+OK\r\n").is_err() {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

/// The upper-cased name of the next command (a RESP array of bulk strings).
fn read_command_name(reader: &mut impl BufRead) -> Option<String> {
    let count: usize = read_header(reader, b'*')?;
    let mut name = None;
    for _ in 0..count {
        let len: usize = read_header(reader, b'$')?;
        let mut arg = vec![0; len + 2];
        reader.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        name.get_or_insert_with(|| String::from_utf8_lossy(&arg).to_uppercase());
    }
    name
}

fn read_header(reader: &mut impl BufRead, kind: u8) -> Option<usize> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let rest = line.strip_prefix(char::from(kind))?;
    rest.trim_end().parse().ok()
}
