//! Helpers for the Redis tests: the servers `scripts/redis.sh` started (found through
//! `REDIS_URL`, `REDIS_CLUSTER_URLS` and `REDIS_SERVER_BIN`), unique key prefixes, raw
//! access for wire checks, and a private server a test may stop and restart.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_express_session::store::StoreError;
use actix_express_session::{uuid_v4_id, RedisStore};
use redis::aio::MultiplexedConnection;

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
    RedisStore::builder()
        .prefix(prefix)
        .connect(&redis_url())
        .await
        .expect("connects to REDIS_URL")
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
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = crate::common::free_port();
        let dir = format!("{}/own-{port}", env("REDIS_DIR"));
        std::fs::create_dir_all(&dir).expect("a directory for the server");
        let mut server = OwnRedis {
            port,
            dir,
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
        let child = Command::new(env("REDIS_SERVER_BIN"))
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--dir",
                &self.dir,
            ])
            .args(["--save", "", "--appendonly", "no"])
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
