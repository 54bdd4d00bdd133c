//! The middleware on [`PostgresStore`] while the database goes down and comes back: prompt,
//! opaque 500s during the outage, and the same app serving the same sessions after it.
//!
//! The test stops its database, so it runs on a PostgreSQL server of its own (initdb'd
//! from `PG_BIN_DIR` into a temp dir, on its own port) rather than on `DATABASE_URL`.
#![cfg(feature = "postgres")]

mod common;
mod postgres_util;

use std::time::{Duration, Instant};

use actix_express_session::store::PostgresStore;
use actix_express_session::SessionMiddleware;
use common::{app, body, get, pair, set_cookie, SECRET};
use postgres_util::{pool, Server};

const ACQUIRE: Duration = Duration::from_secs(2);

#[actix_rt::test]
async fn a_database_outage_gives_empty_500s_and_the_app_recovers_by_itself() {
    let server = Server::start();
    let pool = pool(&server.url(), ACQUIRE).await;
    let store = PostgresStore::builder(pool)
        .create_table_if_missing(true)
        .build()
        .expect("valid");
    let app = app(SessionMiddleware::builder(store, SECRET)
        .build()
        .expect("valid"))
    .await;
    let cookie = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    assert_eq!(body(get(&app, "/count", Some(&cookie)).await).await, "2");

    server.stop();
    for (what, cookie) in [("loading", Some(cookie.as_str())), ("saving", None)] {
        let started = Instant::now();
        let res = get(&app, "/count", cookie).await;
        assert!(
            started.elapsed() < ACQUIRE + Duration::from_secs(2),
            "{what} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            res.status(),
            500,
            "{what} a session while the database is down"
        );
        assert_eq!(
            set_cookie(&res),
            None,
            "{what}: no cookie for a session that was not saved"
        );
        assert_eq!(body(res).await, "", "{what}: the error is opaque");
    }

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    let res = loop {
        let res = get(&app, "/count", Some(&cookie)).await;
        if res.status() != 500 || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        res.status(),
        200,
        "the same app works again after the restart"
    );
    assert_eq!(body(res).await, "3", "and the session survived");
}
