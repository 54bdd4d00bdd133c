//! Traces: a `session_store` span per store call (store, operation, outcome, latency)
//! naming the session only by a keyed hash of its ID, and a debug line for a rejected
//! cookie. One test in this binary, so the process-wide subscriber sees nothing else.

mod common;

use actix_express_session::SessionMiddleware;
use common::logs::Logs;
use common::{app, body, get, pair, set_cookie, sid, SECRET};

/// The value of `field=` in `line`, up to the next space or `}`.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = [' ', '{']
        .iter()
        .find_map(|sep| line.find(&format!("{sep}{name}=")))?
        + name.len()
        + 2;
    let rest = &line[start..];
    let end = rest.find([' ', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

#[actix_rt::test]
async fn store_calls_are_spans_that_name_the_session_by_a_keyed_hash_only() {
    let logs = Logs::capture(tracing::Level::DEBUG);
    let app = app(
        SessionMiddleware::builder(actix_express_session::MemoryStore::new(), SECRET)
            .build()
            .unwrap(),
    )
    .await;

    let set = set_cookie(&get(&app, "/count", None).await).expect("a session");
    let id = sid(&set);
    let res = get(&app, "/count", Some(&pair(&set))).await;
    assert_eq!(body(res).await, "2");
    let tampered = format!("{}x", pair(&set));
    get(&app, "/read", Some(&tampered)).await;

    let text = logs.text();
    let closes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("session_store{") && l.contains(": close "))
        .collect();
    let ops: Vec<(&str, &str)> = closes
        .iter()
        .filter_map(|l| Some((field(l, "op")?, field(l, "outcome")?)))
        .collect();
    assert_eq!(
        ops,
        [
            ("create", "created"),
            ("load", "found"),
            ("save_if", "saved")
        ],
        "{text}"
    );
    let tags: Vec<&str> = closes.iter().filter_map(|l| field(l, "session")).collect();
    assert_eq!(tags.len(), 3, "{text}");
    assert!(
        tags.iter().all(|t| *t == tags[0]),
        "one session, one tag: {tags:?}"
    );
    assert!(tags[0].len() == 16 && tags[0].bytes().all(|b| b.is_ascii_hexdigit()));
    for line in &closes {
        assert_eq!(field(line, "store"), Some("MemoryStore"), "{line}");
        assert!(
            field(line, "latency_us").is_some_and(|v| v.parse::<u64>().is_ok()),
            "{line}"
        );
    }
    assert!(
        !text.contains(&id),
        "the session ID is never logged: {text}"
    );
    assert!(!text.contains(SECRET), "nor the secret");
    assert!(
        text.contains("session cookie rejected: not validly signed"),
        "a debug line for the tampered cookie: {text}"
    );
}
