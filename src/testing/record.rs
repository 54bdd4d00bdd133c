// This file is compiled twice: as `testing::record` in the crate (feature `testing`),
// and through `#[path]` by tests/common/conformance.rs, so that the crate's own tests
// need no feature. So it names nothing but what its parent module provides:
// `SessionRecord`, `now_ms` and `format_iso` (ISO 8601 as express-session stores it).

use serde_json::{json, Value};

use super::{format_iso, now_ms, SessionRecord};

/// A record as express-session would store it: a cookie that expires `expires_in_ms`
/// milliseconds from now (negative: already expired; `None`: a browser-session cookie
/// with no expiry), `HttpOnly` on path `/`, and the keys of `data` as user data.
///
/// ```
/// use actix_express_session::testing::record;
/// use serde_json::json;
///
/// let rec = record(Some(60_000), json!({"user": "ada"}));
/// assert_eq!(rec.data["user"], "ada");
/// assert!(rec.cookie.max_age().is_some());
/// assert!(record(None, json!({})).cookie.expires().is_none());
/// ```
///
/// # Panics
/// When `data` is not a JSON object, or has a `cookie` key that is not a valid cookie.
pub fn record(expires_in_ms: Option<i64>, data: Value) -> SessionRecord {
    let Value::Object(data) = data else {
        panic!("record data must be a JSON object, not {data}");
    };
    let expires = expires_in_ms.map(|ms| format_iso(now_ms().saturating_add(ms)));
    let mut object = json!({
        "cookie": {"originalMaxAge": expires_in_ms, "expires": expires, "httpOnly": true, "path": "/"}
    });
    if let Some(o) = object.as_object_mut() {
        o.extend(data);
    }
    SessionRecord::from_json(object.to_string().as_bytes()).expect("a valid record")
}
