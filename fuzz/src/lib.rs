//! Shared pieces of the fuzz targets: a one-thread actix runtime, the test routes, a
//! session seeded in the store, and an independent reading of the `Cookie` header used
//! as the oracle for "a valid signature only for the exact signed value".

use std::future::Future;
use std::time::Duration;

use actix_express_session::store::SessionStore;
use actix_express_session::{sign, MemoryStore, SessionRecord};
use actix_web::web;

/// The secret every target signs with.
pub const SECRET: &str = "keyboard cat";
/// A second, rotated-out-but-accepted secret.
pub const OLD_SECRET: &str = "old secret";
/// The cookie name.
pub const NAME: &str = "connect.sid";
/// A session that exists in the store of every run, holding `{"n": 7}`.
pub const KNOWN_ID: &str = "known-session-id";

thread_local! {
    static RUNTIME: actix_rt::SystemRunner = actix_rt::System::new();
}

/// Runs a future to completion on this thread's actix system (libFuzzer calls the
/// target on one thread, so one runtime serves every input).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(fut))
}

/// A fresh store (no background task, so nothing outlives the input) holding the known
/// session.
pub async fn seeded_store() -> MemoryStore {
    let store = MemoryStore::builder()
        .sweep_interval(Duration::ZERO)
        .build();
    let json = serde_json::json!({
        "cookie": {"originalMaxAge": 3_600_000, "expires": "2100-01-01T00:00:00.000Z", "httpOnly": true, "path": "/"},
        "n": 7
    });
    let record =
        SessionRecord::from_json(json.to_string().as_bytes()).expect("a valid seed record");
    store
        .set(KNOWN_ID, &record)
        .await
        .expect("the memory store accepts the seed");
    store
}

/// `s:<id>.<sig>`: the decoded cookie value that loads the known session.
pub fn known_cookie_value(secret: &str) -> String {
    format!("s:{}", sign(KNOWN_ID, secret))
}

/// Percent-decoding as `decodeURIComponent`: `None` for a bad escape or non-UTF-8.
pub fn percent_decode(input: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2)?;
            let text = std::str::from_utf8(hex).ok()?;
            if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(text, 16).ok()?);
            rest = &tail[2..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

/// The decoded value of the first `name` cookie of a header, read the way Node's
/// `cookie.parse` does (pairs split on `;`, trimmed, one pair of quotes removed, the
/// value kept raw when it does not decode). Written separately from the crate's parser
/// so that the two can disagree.
pub fn first_cookie(header: &[u8], name: &str) -> Option<Vec<u8>> {
    for pair in header.split(|&b| b == b';') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if pair[..eq].trim_ascii() != name.as_bytes() {
            continue;
        }
        let mut value = pair[eq + 1..].trim_ascii();
        if value.len() >= 2 && value.starts_with(b"\"") && value.ends_with(b"\"") {
            value = &value[1..value.len() - 1];
        }
        if !value.contains(&b'%') {
            return Some(value.to_vec());
        }
        return Some(percent_decode(value).map_or_else(|| value.to_vec(), String::into_bytes));
    }
    None
}

/// Routes of the middleware target; every one of them answers 2xx for any session
/// except `/reload` of a session the store does not have (an empty 500).
pub fn routes(cfg: &mut web::ServiceConfig) {
    use actix_express_session::Session;
    cfg.route(
        "/count",
        web::get().to(|s: Session| async move {
            let n: u64 = s.get("n").ok().flatten().unwrap_or(0);
            s.insert("n", n.wrapping_add(1))?;
            actix_web::Result::<String>::Ok(s.id())
        }),
    )
    .route(
        "/read",
        web::get().to(|s: Session| async move {
            let n: Option<u64> = s.get("n").ok().flatten();
            n.map_or_else(|| "none".to_owned(), |n| n.to_string())
        }),
    )
    .route("/id", web::get().to(|s: Session| async move { s.id() }))
    .route(
        "/regenerate",
        web::get().to(|s: Session| async move {
            s.regenerate().await?;
            s.insert("n", 1)?;
            actix_web::Result::<String>::Ok(s.id())
        }),
    )
    .route(
        "/destroy",
        web::get().to(|s: Session| async move {
            s.destroy().await?;
            actix_web::Result::<&str>::Ok("bye")
        }),
    )
    .route(
        "/unset",
        web::get().to(|s: Session| async move {
            s.unset();
            "unset"
        }),
    )
    .route(
        "/save",
        web::get().to(|s: Session| async move {
            s.insert("saved", true)?;
            s.save().await?;
            actix_web::Result::<String>::Ok(s.id())
        }),
    )
    .route(
        "/reload",
        web::get().to(|s: Session| async move {
            s.reload().await?;
            actix_web::Result::<String>::Ok(s.id())
        }),
    )
    .route(
        "/max-age/{secs}",
        web::get().to(|s: Session, secs: web::Path<u64>| async move {
            let secs = secs.into_inner();
            s.set_max_age((secs > 0).then(|| Duration::from_secs(secs)));
            s.id()
        }),
    );
}
