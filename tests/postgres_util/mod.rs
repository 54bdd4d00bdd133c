//! Helpers for the PostgreSQL tests: a schema of one's own on the shared server
//! (`DATABASE_URL`), and throwaway servers (`PG_BIN_DIR`) that a test may stop and start.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use actix_express_session::store::sqlx;
use actix_express_session::store::sqlx::postgres::{PgPool, PgPoolOptions};
use actix_express_session::store::sqlx::AssertSqlSafe;
use actix_express_session::store::{PostgresStore, PostgresStoreBuilder};

/// A variable `scripts/test.sh` sets; a missing one fails the test with its name.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test.sh, which starts PostgreSQL and sets it")
    })
}

/// A pool on `url` that gives up on a connection after `acquire` and, as the store's
/// docs advise, does not ping connections before use.
pub async fn pool(url: &str, acquire: Duration) -> PgPool {
    let options = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(acquire)
        .test_before_acquire(false);
    options
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// A schema with a random name on the `DATABASE_URL` server, dropped by [`drop`](Self::drop).
pub struct TestSchema {
    pub pool: PgPool,
    pub name: String,
}

impl TestSchema {
    pub async fn new() -> Self {
        let pool = pool(&env("DATABASE_URL"), Duration::from_secs(10)).await;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let schema = TestSchema { pool, name };
        schema
            .exec(&format!("CREATE SCHEMA \"{}\"", schema.name))
            .await;
        schema
    }

    /// A store on `<schema>."session"`, creating the table.
    pub fn builder(&self) -> PostgresStoreBuilder {
        PostgresStore::builder(self.pool.clone())
            .schema(&self.name)
            .create_table_if_missing(true)
    }

    /// Runs one statement, `{s}` replaced by the quoted schema name.
    pub async fn exec(&self, sql: &str) {
        let sql = sql.replace("{s}", &format!("\"{}\"", self.name));
        sqlx::raw_sql(AssertSqlSafe(sql.as_str()))
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `SELECT count(*)` of a table in the schema: rows really there, expired or not.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM \"{}\".\"{table}\"", self.name);
        sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// The rows really in a table of the schema, expired or not: sid, `sess` text and
    /// `expire` in seconds since the epoch (read as UTC, the store's default zone).
    pub async fn rows(&self, table: &str) -> Vec<(String, String, f64)> {
        let sql = format!(
            "SELECT sid::text, sess::text, extract(epoch FROM expire AT TIME ZONE 'UTC')::float8 \
             FROM \"{}\".\"{table}\" ORDER BY sid",
            self.name
        );
        sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .expect("rows")
    }

    pub async fn drop(self) {
        self.exec("DROP SCHEMA {s} CASCADE").await;
        self.pool.close().await;
    }
}

/// A PostgreSQL server of the test's own (initdb into a temp dir, its own port), so that
/// stopping it disturbs no other test. Removed on drop.
pub struct Server {
    dir: PathBuf,
    pub port: u16,
}

impl Server {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = crate::common::free_port();
        let server = Server { dir, port };
        server.init();
        server.resume();
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn init(&self) {
        if let Some(user) = os_user() {
            run(Command::new("chown").arg(&user).arg(&self.dir));
        }
        run(&mut pg(
            "initdb",
            &[
                "-D",
                &self.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        ));
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n",
            self.port,
            self.dir.display()
        );
        let path = self.dir.join("data/postgresql.conf");
        let mut all = std::fs::read_to_string(&path).expect("postgresql.conf");
        all.push_str(&conf);
        std::fs::write(&path, all).expect("postgresql.conf");
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        run(&mut pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "fast", "-w", "stop"],
        ));
    }

    /// Freezes (`true`) or thaws the server and every backend process: a frozen server
    /// accepts connections (the kernel does) but answers nothing.
    pub fn freeze(&self, frozen: bool) {
        let pid_file = self.dir.join("data/postmaster.pid");
        let pids = std::fs::read_to_string(pid_file).expect("postmaster.pid");
        let pid = pids
            .lines()
            .next()
            .expect("the postmaster's pid")
            .trim()
            .to_owned();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        run(Command::new("pkill").args([signal, "-P", &pid]));
        run(Command::new("kill").args([signal, &pid]));
    }

    /// Starts it again, same data, same port.
    pub fn resume(&self) {
        let log = self.dir.join("server.log").display().to_string();
        run(&mut pg(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-t", "30", "start"],
        ));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
        .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The unprivileged user the server runs as when the tests run as root.
fn os_user() -> Option<String> {
    std::env::var("PG_OS_USER").ok().filter(|u| !u.is_empty())
}

/// A PostgreSQL program from `PG_BIN_DIR`, run as `PG_OS_USER` when that is set.
fn pg(program: &str, args: &[&str]) -> Command {
    let path = PathBuf::from(env("PG_BIN_DIR")).join(program);
    let mut cmd = match os_user() {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", &user, "--"]).arg(path);
            c
        }
        None => Command::new(path),
    };
    cmd.args(args);
    cmd
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {err}");
}

/// connect-pg-simple's rounding of a time for `to_timestamp`: whole seconds, up.
pub fn ceil_s(ms: i64) -> f64 {
    (ms as f64 / 1000.0).ceil()
}

pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.expect("after 1970").as_millis() as i64
}
