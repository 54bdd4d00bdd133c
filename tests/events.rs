//! `on_event`: created, regenerated, destroyed and expired sessions reach the callback,
//! once each, with the request that caused them, after the store made the change.

mod common;

use std::sync::{Arc, Mutex};

use actix_express_session::{MemoryStore, SessionEvent, SessionMiddleware, WritePolicy};
use common::{app, body, get, pair, set_cookie, sid, SECRET};

/// Runs login, logout and a replay of the logged-out cookie; the events as
/// `path: event` lines, with the IDs replaced by their order of appearance.
async fn audit(policy: WritePolicy) -> Vec<String> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let mw = SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .write_policy(policy)
        .on_event(move |req, event| {
            let line = match event {
                SessionEvent::Created { id } => format!("created {id}"),
                SessionEvent::Regenerated { from, to } => format!("regenerated {from} {to}"),
                SessionEvent::Destroyed { id, record } => {
                    format!("destroyed {id} user={}", record.data["user"])
                }
                SessionEvent::Expired { id } => format!("expired {id}"),
                _ => "unknown".to_owned(),
            };
            seen.lock().unwrap().push(format!("{}: {line}", req.path()));
        })
        .build()
        .expect("valid");
    let app = app(mw).await;

    let anonymous = set_cookie(&get(&app, "/count", None).await).expect("a session");
    let res = get(&app, "/regenerate", Some(&pair(&anonymous))).await;
    let login = set_cookie(&res).expect("the new ID");
    let user = pair(&login);
    assert_eq!(
        body(get(&app, "/set/user/ada", Some(&user)).await).await,
        "ok"
    );
    assert_eq!(body(get(&app, "/destroy", Some(&user)).await).await, "bye");
    assert_eq!(body(get(&app, "/read", Some(&user)).await).await, "0");

    let (first, second) = (sid(&anonymous), sid(&login));
    let lines = events.lock().unwrap().clone();
    lines
        .into_iter()
        .map(|l| l.replace(&first, "A").replace(&second, "B"))
        .collect()
}

#[actix_rt::test]
async fn a_login_and_logout_are_audited_in_order() {
    assert_eq!(
        audit(WritePolicy::Merge).await,
        [
            "/count: created A",
            "/regenerate: created B",
            "/regenerate: regenerated A B",
            "/destroy: destroyed B user=\"ada\"",
            "/read: expired B",
        ]
    );
}

#[actix_rt::test]
async fn under_last_writer_wins_the_regenerated_session_is_created_when_saved() {
    assert_eq!(
        audit(WritePolicy::LastWriterWins).await,
        [
            "/count: created A",
            "/regenerate: regenerated A B",
            "/regenerate: created B",
            "/destroy: destroyed B user=\"ada\"",
            "/read: expired B",
        ]
    );
}
