//! The Rust side of the interop tests (`interop/test.js`): the same routes and the same
//! configuration as `interop/node-app.js` (express-session on connect-redis or
//! connect-pg-simple), so one browser session can move between the two apps.
//!
//! ```sh
//! STORE=redis REDIS_URL=redis://127.0.0.1:6379 SECRETS='["new","old"]' PORT=8080 \
//!   cargo run --example interop --features redis,postgres
//! STORE=pg DATABASE_URL=postgres://user@127.0.0.1/db cargo run --example interop --features redis,postgres
//! ```
//!
//! Environment: `STORE` (`redis` | `pg`), `REDIS_URL` (keys `sess:<id>`), `DATABASE_URL`
//! (table `session`, created when missing), `PG_TIME_ZONE` (the `TimeZone` of the Node
//! app's connections when it is not UTC), `SECRETS` (a JSON array, the first signs;
//! default `["keyboard cat"]`), `COOKIE_MAX_AGE_MS` (optional cookie max age for new
//! sessions), `ABSOLUTE_TIMEOUT_MS` (optional absolute session lifetime, the builder's
//! `absolute_timeout`: sessions keep their creation time under `__sessionCreatedAt`),
//! `PORT` (default 0: any free port). Prints `LISTENING <port>` once bound, or one line
//! `error: ...` on stderr and exits with status 1 when it cannot start.
//!
//! Routes (JSON in, JSON out; each answers with the session as the request sees it,
//! `{"id", "cookie", "data"}`):
//! `GET /session`; `POST /update {"set": {..}, "remove": [..]}`;
//! `POST /regenerate {"set": {..}}` (new ID, data kept); `POST /maxage {"maxAge": ms |
//! null, "set": {..}}`; `POST /destroy`.

mod support;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_express_session::store::{sqlx::postgres::PgPoolOptions, PostgresStore, SessionStore};
use actix_express_session::{
    CookieOptions, RedisStore, SameSite, Secure, Session, SessionMiddleware,
};
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A request body: keys to set, keys to remove, and for `/maxage` the new max age.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Change {
    set: Map<String, Value>,
    remove: Vec<String>,
    #[serde(rename = "maxAge")]
    max_age: Option<u64>,
}

impl Change {
    fn parse(body: &[u8]) -> actix_web::Result<Self> {
        if body.is_empty() {
            return Ok(Change::default());
        }
        serde_json::from_slice(body).map_err(actix_web::error::ErrorBadRequest)
    }

    fn apply(self, session: &Session) -> actix_web::Result<()> {
        for (key, value) in self.set {
            session.insert(key, value)?;
        }
        for key in &self.remove {
            session.remove(key)?;
        }
        Ok(())
    }
}

/// The session as this request sees it, in the shape `node-app.js` answers with.
fn view(session: &Session) -> actix_web::Result<HttpResponse> {
    let cookie = serde_json::to_value(session.cookie())?;
    Ok(HttpResponse::Ok().json(json!({
        "id": session.id(),
        "cookie": cookie,
        "data": session.entries(),
    })))
}

async fn get_session(session: Session) -> actix_web::Result<HttpResponse> {
    view(&session)
}

async fn update(session: Session, body: web::Bytes) -> actix_web::Result<HttpResponse> {
    Change::parse(&body)?.apply(&session)?;
    view(&session)
}

async fn regenerate(session: Session, body: web::Bytes) -> actix_web::Result<HttpResponse> {
    let change = Change::parse(&body)?;
    let data = session.entries();
    session.regenerate().await?;
    for (key, value) in data {
        session.insert(key, value)?;
    }
    change.apply(&session)?;
    view(&session)
}

async fn max_age(session: Session, body: web::Bytes) -> actix_web::Result<HttpResponse> {
    let change = Change::parse(&body)?;
    session.set_max_age(change.max_age.map(Duration::from_millis));
    change.apply(&session)?;
    view(&session)
}

async fn destroy(session: Session) -> actix_web::Result<HttpResponse> {
    session.destroy().await?;
    Ok(HttpResponse::Ok().json(json!({ "destroyed": true })))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A duration in milliseconds from the environment, if set.
fn env_ms(name: &str) -> Result<Option<Duration>, String> {
    let Some(ms) = env(name) else {
        return Ok(None);
    };
    let ms: u64 = ms
        .parse()
        .map_err(|_| format!("{name} must be a number of milliseconds, not {ms:?}"))?;
    Ok(Some(Duration::from_millis(ms)))
}

async fn make_store(kind: &str) -> Result<Arc<dyn SessionStore>, String> {
    let url = |name: &str| env(name).ok_or_else(|| format!("STORE={kind} needs {name}"));
    match kind {
        "redis" => {
            let url = url("REDIS_URL")?;
            let store = RedisStore::builder()
                .prefix("sess:")
                .connect(&url)
                .await
                .map_err(|e| {
                    format!(
                        "cannot connect to Redis at {}: {}",
                        support::printable(&url),
                        support::cause(&e)
                    )
                })?;
            Ok(Arc::new(store))
        }
        "pg" => {
            let url = url("DATABASE_URL")?;
            let pool = PgPoolOptions::new()
                .acquire_timeout(Duration::from_secs(3))
                .test_before_acquire(false)
                .connect(&url)
                .await
                .map_err(|e| {
                    format!(
                        "cannot connect to PostgreSQL at {}: {}",
                        support::printable(&url),
                        support::cause(&e)
                    )
                })?;
            let mut store = PostgresStore::builder(pool)
                .table_name("session")
                .create_table_if_missing(true);
            // connect-pg-simple writes `expire` in its connection's TimeZone.
            if let Some(zone) = env("PG_TIME_ZONE") {
                store = store.time_zone(zone);
            }
            let store = store
                .build()
                .map_err(|e| format!("invalid PostgreSQL store configuration: {e}"))?;
            Ok(Arc::new(store))
        }
        other => Err(format!("STORE must be redis or pg, not {other:?}")),
    }
}

/// Connects, starts the server and prints `LISTENING <port>`; an error is one sentence
/// for the user.
async fn run() -> Result<(), String> {
    let secrets: Vec<String> = match env("SECRETS") {
        // Only where the JSON is wrong: serde_json's message may quote a secret.
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            format!(
                "SECRETS must be a JSON array of strings (line {}, column {})",
                e.line(),
                e.column()
            )
        })?,
        None => vec!["keyboard cat".to_owned()],
    };
    let port: u16 = match env("PORT") {
        Some(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, not {p:?}"))?,
        None => 0,
    };
    let mut cookie = CookieOptions::default()
        .path("/")
        .http_only(true)
        .secure(Secure::Auto)
        .same_site(SameSite::Lax);
    if let Some(max_age) = env_ms("COOKIE_MAX_AGE_MS")? {
        cookie = cookie.max_age(max_age);
    }
    let store = make_store(&env("STORE").unwrap_or_default()).await?;
    let mut sessions = SessionMiddleware::builder(store, secrets)
        .name("connect.sid")
        .cookie(cookie)
        .resave(false)
        .save_uninitialized(false);
    if let Some(lifetime) = env_ms("ABSOLUTE_TIMEOUT_MS")? {
        sessions = sessions.absolute_timeout(lifetime);
    }
    let sessions = sessions
        .build()
        .map_err(|e| format!("invalid session configuration: {e}"))?;

    let server = HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/session", web::get().to(get_session))
            .route("/update", web::post().to(update))
            .route("/regenerate", web::post().to(regenerate))
            .route("/maxage", web::post().to(max_age))
            .route("/destroy", web::post().to(destroy))
    })
    .workers(2)
    .bind(("127.0.0.1", port))
    .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let bound = server.addrs().first().map_or(port, |a| a.port());
    let mut out = std::io::stdout();
    writeln!(out, "LISTENING {bound}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    server
        .run()
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}

#[actix_web::main]
async fn main() -> ExitCode {
    // The crate's warnings (an unreadable record, a withheld Secure cookie) on stderr.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
    support::exit(run().await)
}
