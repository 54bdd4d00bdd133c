//! The hostile-input catalogue: what a malicious client (or a corrupted store) can send
//! the middleware, and what must happen. Every case asserts the status, what the
//! browser is told and what the store holds afterwards.
//!
//! | input | expected | where |
//! |---|---|---|
//! | 100 cookies named like ours in one header | the first one decides, look-alike names are other cookies | here |
//! | a 64 KiB cookie (ours, or beside ours) | a fresh session, rejected before any decoding; a big header does not hide a good cookie | here |
//! | `s:` with no dot, an empty or padded signature, the URL-safe alphabet | a fresh session | here (`s:` + ID alone also in secrets.rs) |
//! | a signature with a NUL byte | a fresh session | here (a short one in secrets.rs) |
//! | percent-encoding that decodes to invalid UTF-8, raw non-UTF-8 bytes | a fresh session | here |
//! | an ID in the store signed with a removed secret | a fresh session, the record untouched | secrets.rs `a_removed_secret_no_longer_verifies` |
//! | an ID with the Redis prefix, SQL metacharacters, glob or path characters | an ID like any other: no aliasing, no injection | here, per store |
//! | a stored record that is not an object, has a non-object `cookie`, a bad `expires` | a fresh session, a warning, the record left in place | here |
//! | `X-Forwarded-Proto: https` from an untrusted client | no `Secure` upgrade, a `Secure` cookie still withheld | here (`Secure::Auto` in cookies.rs) |
//! | a crafted crc32 collision | still saved | properties.rs |
//! | a near copy of a cookie the worker already verified (one character changed) | a fresh session: only exact, verified values skip the HMAC | here |

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix_express_session::store::{SessionStore, StoreError, StoreFuture};
use actix_express_session::{
    sign, CookieOptions, MemoryStore, Secure, SessionMiddleware, SessionRecord,
};
use actix_web::http::header::HeaderValue;
use actix_web::test;
use common::conformance::record;
use common::{app, body, get, pair, set_cookie, set_cookies, sid, SECRET};
use serde_json::json;

const HOUR: Option<i64> = Some(3_600_000);

/// `connect.sid=s%3A<id>.<sig>`, exactly as the middleware (and Node) sends it.
fn cookie_for(id: &str, secret: &str) -> String {
    let mut value = String::new();
    for b in format!("s:{}", sign(id, secret)).bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            value.push(char::from(b));
        } else {
            value.push_str(&format!("%{b:02X}"));
        }
    }
    format!("connect.sid={value}")
}

/// A store holding `victim` with `{"n": 41}`, and an app on it.
async fn victim_store() -> MemoryStore {
    let store = MemoryStore::new();
    store
        .set("victim", &record(HOUR, json!({"n": 41})))
        .await
        .unwrap();
    store
}

async fn n_of(store: &impl SessionStore, id: &str) -> Option<serde_json::Value> {
    let rec = store.get(id).await.expect("the store answers")?;
    Some(rec.data.get("n").cloned().unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// Cookie headers

#[actix_rt::test]
async fn a_hundred_cookies_named_like_ours_in_one_header() {
    let store = victim_store().await;
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let good = cookie_for("victim", SECRET);
    let value = good.split_once('=').unwrap().1;
    let forged = |i: usize| format!("connect.sid=s%3Aforged{i}.{}", &value[value.len() - 43..]);
    let lookalikes = [
        "Connect.sid",
        "CONNECT.SID",
        "connect.sid2",
        "connect.si",
        "connect%2Esid",
        "connect.sid\t.",
        "xconnect.sid",
        "connect-sid",
    ];

    // 99 forgeries first, the genuine cookie last: the first one decides, as in Node.
    let mut pairs: Vec<String> = (0..99).map(forged).collect();
    pairs.push(good.clone());
    let res = get(&app, "/count", Some(&pairs.join("; "))).await;
    assert_eq!(res.status(), 200);
    let fresh = set_cookie(&res).expect("a fresh session");
    assert_ne!(sid(&fresh), "victim");
    assert_eq!(body(res).await, "1");

    // The genuine cookie first, 99 forgeries after it: the session loads.
    let mut pairs: Vec<String> = vec![good.clone()];
    pairs.extend((0..99).map(forged));
    let res = get(&app, "/count", Some(&pairs.join("; "))).await;
    assert_eq!(res.status(), 200);
    let resent = set_cookie(&res).expect("a persistent session that changed is re-sent");
    assert_eq!(pair(&resent), good, "the genuine session, not a forgery");
    assert_eq!(body(res).await, "42");

    // 100 look-alike names carrying the genuine value are other cookies, not ours.
    let pairs: Vec<String> = (0..100)
        .map(|i| format!("{}={value}", lookalikes[i % lookalikes.len()]))
        .collect();
    let res = get(&app, "/read", Some(&pairs.join("; "))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await, "0");

    // Names are trimmed as Node trims them: ` connect.sid ` is ours.
    let res = get(&app, "/read", Some(&format!("a=1;  connect.sid ={value}"))).await;
    assert_eq!(body(res).await, "42");

    assert_eq!(n_of(&store, "victim").await, Some(json!(42)));
    assert_eq!(n_of(&store, &sid(&fresh)).await, Some(json!(1)));
    assert_eq!(store.len().await.unwrap(), 2, "nothing else was stored");
}

#[actix_rt::test]
async fn a_64_kib_cookie() {
    let store = victim_store().await;
    // A record under a 64 KiB ID, correctly signed: still never looked up.
    let huge_id = "i".repeat(64 * 1024);
    store
        .set(&huge_id, &record(HOUR, json!({"n": 7})))
        .await
        .unwrap();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let cases = [
        cookie_for(&huge_id, SECRET),
        format!("connect.sid={}", "%41".repeat(64 * 1024 / 3)),
        format!("connect.sid=s%3A{}", "%".repeat(64 * 1024)),
        format!("connect.sid=\"{}\"", "s".repeat(64 * 1024)),
    ];
    for cookie in &cases {
        let res = get(&app, "/count", Some(cookie)).await;
        assert_eq!(res.status(), 200, "{cookie:.40}");
        assert!(
            set_cookie(&res).is_some(),
            "a fresh session for {cookie:.40}"
        );
        assert_eq!(body(res).await, "1", "{cookie:.40}");
    }
    assert_eq!(n_of(&store, &huge_id).await, Some(json!(7)), "untouched");

    // 64 KiB of other cookies around ours do not hide it.
    let padding: Vec<String> = (0..1024)
        .map(|i| format!("c{i:04}={}", "v".repeat(58)))
        .collect();
    let header = format!("{}; {}", padding.join("; "), cookie_for("victim", SECRET));
    assert!(header.len() > 64 * 1024);
    let res = get(&app, "/count", Some(&header)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await, "42");
    assert_eq!(
        store.len().await.unwrap(),
        2 + cases.len(),
        "the huge record, victim, one per case"
    );
}

#[actix_rt::test]
async fn malformed_signed_values_are_fresh_sessions() {
    let store = victim_store().await;
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let good = cookie_for("victim", SECRET);
    let value = good.split_once('=').unwrap().1.to_owned();
    let sig = sign("victim", SECRET).split_once('.').unwrap().1.to_owned();
    let url_safe = sig.replace('+', "-").replace('/', "_");
    let mut nul = sig.clone().into_bytes();
    nul.remove(20);
    let nul = format!(
        "{}%00{}",
        std::str::from_utf8(&nul[..20]).unwrap(),
        std::str::from_utf8(&nul[20..]).unwrap()
    );
    let enc = |s: &str| s.replace('+', "%2B").replace('/', "%2F");
    let cases = [
        // `s:` with no dot at all, raw and encoded, and an empty ID.
        "connect.sid=s:victim".to_owned(),
        "connect.sid=s%3A".to_owned(),
        "connect.sid=s:".to_owned(),
        // A dot but no usable signature.
        "connect.sid=s%3Avictim.".to_owned(),
        format!("connect.sid=s%3A.{}", enc(&sig)),
        format!("connect.sid=s%3Avictim.{}%3D", enc(&sig)),
        format!("connect.sid=s%3Avictim.{}", enc(&sig[..42])),
        format!("connect.sid=s%3Avictim.{}", enc(&url_safe)),
        // A signature with a NUL byte in place of one character (the right length).
        format!("connect.sid=s%3Avictim.{}", enc(&nul)),
        // The right signature for the wrong prefix or for an unprefixed value.
        format!("connect.sid=S%3Avictim.{}", enc(&sig)),
        format!("connect.sid=victim.{}", enc(&sig)),
        format!("connect.sid=s%3As%3Avictim.{}", enc(&sig)),
        // Percent-encoding that decodes to invalid UTF-8 (so is kept raw, as in Node),
        // including an overlong `.` that must not split value from signature.
        format!("connect.sid={value}%C3%28"),
        format!("connect.sid=s%3Avictim%C0%AE{}", enc(&sig)),
        format!("connect.sid=s%3Avic%FFtim.{}", enc(&sig)),
        // A bad escape.
        format!("connect.sid={value}%G1"),
        format!("connect.sid={value}%"),
    ];
    for cookie in &cases {
        let res = get(&app, "/count", Some(cookie)).await;
        assert_eq!(res.status(), 200, "{cookie}");
        assert!(set_cookie(&res).is_some(), "a fresh session for {cookie}");
        assert_eq!(body(res).await, "1", "{cookie}");
    }
    // Raw bytes that are not UTF-8 (obs-text is a valid header value).
    let mut raw = b"connect.sid=".to_vec();
    raw.extend_from_slice(value.as_bytes());
    raw.extend_from_slice(b"\xff\xfe");
    for bytes in [raw, [b"\xc3\x28; ".as_slice(), good.as_bytes()].concat()] {
        let req = test::TestRequest::get()
            .uri("/read")
            .insert_header(("cookie", HeaderValue::from_bytes(&bytes).unwrap()))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 200);
        let expected = if bytes.starts_with(b"connect.sid=") {
            "0"
        } else {
            "41"
        };
        assert_eq!(body(res).await, expected, "{bytes:?}");
    }
    assert_eq!(n_of(&store, "victim").await, Some(json!(41)), "untouched");
    assert_eq!(
        store.len().await.unwrap(),
        1 + cases.len(),
        "victim, one per case"
    );
}

// ---------------------------------------------------------------------------------------
// Hostile session IDs, per store

/// IDs an application's `genid` (or a Node app sharing the store) might hand out that
/// look like key prefixes, SQL, glob patterns or paths.
const HOSTILE_IDS: [&str; 7] = [
    "sess:victim",
    "'; DROP TABLE session; --",
    "victim' OR '1'='1",
    "victim*",
    "../victim",
    "victim\\",
    "vict\u{e9}m \u{1f600}",
];

/// Every hostile ID is an ID like any other in `store`: a session under it is created,
/// loaded and destroyed by its exact ID, never touching `victim`; a signed cookie for a
/// hostile ID the store does not hold is a fresh session.
async fn hostile_ids_are_just_ids<S: SessionStore>(store: Arc<S>) {
    store
        .set("victim", &record(HOUR, json!({"n": 41})))
        .await
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&next);
    let mw = SessionMiddleware::builder(Arc::clone(&store), SECRET)
        .genid(move |_| {
            let i = counter.fetch_add(1, Ordering::SeqCst);
            HOSTILE_IDS
                .get(i)
                .map_or_else(actix_express_session::uuid_v4_id, |s| (*s).to_owned())
        })
        .build()
        .unwrap();
    let app = app(mw).await;
    for id in HOSTILE_IDS {
        let res = get(&app, "/count", None).await;
        assert_eq!(res.status(), 200, "{id}");
        let cookie = pair(&set_cookie(&res).expect("a new session"));
        assert_eq!(
            cookie,
            cookie_for(id, SECRET),
            "sent exactly as Node would encode it"
        );
        let res = get(&app, "/count", Some(&cookie)).await;
        assert_eq!(body(res).await, "2", "{id} loads by its exact ID");
        assert_eq!(n_of(&*store, id).await, Some(json!(2)), "{id}");
        assert_eq!(
            n_of(&*store, "victim").await,
            Some(json!(41)),
            "{id} left victim alone"
        );
    }
    for id in HOSTILE_IDS {
        let cookie = cookie_for(id, SECRET);
        let res = get(&app, "/destroy", Some(&cookie)).await;
        assert_eq!(res.status(), 200, "{id}");
        assert_eq!(n_of(&*store, id).await, None, "{id} destroyed");
        assert_eq!(n_of(&*store, "victim").await, Some(json!(41)), "{id}");
        // A signed cookie for an ID the store no longer has: a fresh, random ID.
        let res = get(&app, "/count", Some(&cookie)).await;
        assert_eq!(res.status(), 200);
        let fresh = set_cookie(&res).expect("a fresh session");
        assert_eq!(sid(&fresh).len(), 36, "from genid's fallback, not {id}");
        assert_eq!(body(res).await, "1");
        assert_eq!(n_of(&*store, id).await, None, "{id} not resurrected");
    }
}

#[actix_rt::test]
async fn hostile_ids_in_the_memory_store() {
    hostile_ids_are_just_ids(Arc::new(MemoryStore::new())).await;
}

#[cfg(feature = "redis")]
mod redis_support;

/// With a prefix ending in `sess:`, the ID `sess:victim` is the key `…sess:sess:victim`,
/// never `…sess:victim`; `*` in an ID matches only itself.
#[cfg(feature = "redis")]
#[actix_rt::test]
async fn hostile_ids_in_redis() {
    let prefix = format!("{}sess:", redis_support::unique_prefix("hostile"));
    let store = Arc::new(redis_support::standalone(&prefix).await);
    hostile_ids_are_just_ids(Arc::clone(&store)).await;
    assert_eq!(
        store.len().await.unwrap(),
        1 + HOSTILE_IDS.len(),
        "victim and the fresh sessions"
    );
    store.clear().await.unwrap();
}

#[cfg(feature = "postgres")]
mod postgres_util;

/// SQL metacharacters in an ID are data: the table survives and every row is exact.
#[cfg(feature = "postgres")]
#[actix_rt::test]
async fn hostile_ids_in_postgres() {
    let schema = postgres_util::TestSchema::new().await;
    let store = Arc::new(schema.builder().build().expect("valid"));
    hostile_ids_are_just_ids(Arc::clone(&store)).await;
    assert_eq!(
        schema.count("session").await,
        1 + HOSTILE_IDS.len() as i64,
        "the table is still there"
    );
    drop(store);
    schema.drop().await;
}

// ---------------------------------------------------------------------------------------
// Corrupt stored records

/// A store of raw JSON texts, reading them the way every real store does: a record that
/// does not parse is `StoreError::Serialization`.
#[derive(Clone, Default)]
struct RawStore(Arc<Mutex<HashMap<String, String>>>);

impl RawStore {
    fn raw(&self, sid: &str) -> Option<String> {
        self.0.lock().unwrap().get(sid).cloned()
    }
}

impl SessionStore for RawStore {
    fn get<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        let parsed = self.raw(sid).map(|text| {
            SessionRecord::from_json(text.as_bytes()).map_err(StoreError::Serialization)
        });
        Box::pin(async move { parsed.transpose() })
    }
    fn set<'a>(&'a self, sid: &'a str, rec: &'a SessionRecord) -> StoreFuture<'a, ()> {
        self.0.lock().unwrap().insert(sid.to_owned(), rec.to_json());
        Box::pin(async { Ok(()) })
    }
    fn destroy<'a>(&'a self, sid: &'a str) -> StoreFuture<'a, ()> {
        self.0.lock().unwrap().remove(sid);
        Box::pin(async { Ok(()) })
    }
}

/// Log lines of this test binary (one global subscriber: tracing caches callsite
/// interest across threads, so per-thread subscribers can miss events).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        #[derive(Clone)]
        struct Writer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Writer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer(Arc::clone(&logs));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

fn warnings_about_unreadable_records() -> usize {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains("WARN") && l.contains("unreadable session record"))
        .count()
}

#[actix_rt::test]
async fn a_corrupt_stored_record_is_a_fresh_session_a_warning_and_left_in_place() {
    logs();
    let corrupt = [
        // Valid JSON, not an object.
        "[]",
        "\"s:victim\"",
        "null",
        "41",
        // An object whose `cookie` is not an object, or missing, or twice.
        r#"{"cookie":"x","n":41}"#,
        r#"{"cookie":[],"n":41}"#,
        r#"{"cookie":null,"n":41}"#,
        r#"{"n":41}"#,
        r#"{"cookie":{},"cookie":{},"n":41}"#,
        // A `cookie` whose fields have the wrong shape.
        r#"{"cookie":{"expires":"tomorrow"},"n":41}"#,
        r#"{"cookie":{"expires":1795461900852},"n":41}"#,
        r#"{"cookie":{"expires":"2026-02-30T25:00:00.000Z"},"n":41}"#,
        r#"{"cookie":{"originalMaxAge":"1h"},"n":41}"#,
        r#"{"cookie":{"sameSite":"sometimes"},"n":41}"#,
        r#"{"cookie":{"httpOnly":"yes"},"n":41}"#,
        // Not JSON at all.
        "",
        "{",
        "\u{feff}{\"cookie\":{}}",
    ];
    let store = RawStore::default();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    for (i, text) in corrupt.iter().enumerate() {
        let id = format!("corrupt{i}");
        store
            .0
            .lock()
            .unwrap()
            .insert(id.clone(), (*text).to_owned());
        let before = warnings_about_unreadable_records();
        let res = get(&app, "/count", Some(&cookie_for(&id, SECRET))).await;
        assert_eq!(res.status(), 200, "{text}");
        let fresh = set_cookie(&res).unwrap_or_else(|| panic!("a fresh session for {text}"));
        assert_ne!(sid(&fresh), id, "{text}");
        assert_eq!(body(res).await, "1", "{text}");
        assert!(
            warnings_about_unreadable_records() > before,
            "a warning for {text}"
        );
        assert_eq!(
            store.raw(&id).as_deref(),
            Some(*text),
            "left in place, byte for byte"
        );
        assert!(
            store.raw(&sid(&fresh)).is_some(),
            "the fresh session is saved"
        );
    }
    let logged = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!logged.contains(SECRET), "no secret in the logs");
}

// ---------------------------------------------------------------------------------------
// Spoofed proxy headers

#[actix_rt::test]
async fn an_untrusted_x_forwarded_proto_upgrades_nothing() {
    // `Secure::Always` on plain HTTP: the cookie is withheld, and claiming HTTPS does not
    // get it sent (the proxy is not trusted).
    let store = MemoryStore::new();
    let mw = SessionMiddleware::builder(store.clone(), SECRET)
        .cookie(CookieOptions::default().secure(Secure::Always))
        .build()
        .unwrap();
    let plain = app(mw).await;
    for xfp in ["https", "HTTPS", "https, https", " https "] {
        let req = test::TestRequest::get()
            .uri("/count")
            .insert_header(("x-forwarded-proto", xfp))
            .to_request();
        let res = test::call_service(&plain, req).await;
        assert_eq!(res.status(), 200, "{xfp}");
        assert_eq!(
            set_cookies(&res),
            Vec::<String>::new(),
            "{xfp}: still plain HTTP"
        );
    }
    assert_eq!(
        store.len().await.unwrap(),
        4,
        "each session is saved all the same"
    );

    // `Secure::Auto`, several X-Forwarded-Proto lines and a Forwarded header: the session
    // is created as a plain-HTTP one, and stays so.
    let store = MemoryStore::new();
    let app = app(SessionMiddleware::builder(store.clone(), SECRET)
        .build()
        .unwrap())
    .await;
    let req = test::TestRequest::get()
        .uri("/count")
        .append_header(("x-forwarded-proto", "https"))
        .append_header(("x-forwarded-proto", "https"))
        .append_header(("forwarded", "proto=https"))
        .append_header(("x-forwarded-ssl", "on"))
        .to_request();
    let res = test::call_service(&app, req).await;
    let cookie = set_cookie(&res).expect("a new session");
    assert!(common::attr(&cookie, "Secure").is_none(), "{cookie}");
    let stored = store.get(&sid(&cookie)).await.unwrap().unwrap();
    assert!(!stored.cookie.secure(), "stored as a plain-HTTP session");
}

/// A worker keeps the cookies it verified, to skip the HMAC when they come back: a value
/// one character away from one of them is checked in full, and rejected.
#[actix_rt::test]
async fn a_near_copy_of_a_verified_cookie_is_rejected() {
    let app = app(SessionMiddleware::builder(MemoryStore::new(), SECRET)
        .build()
        .unwrap())
    .await;
    let good = pair(&set_cookie(&get(&app, "/count", None).await).expect("a session"));
    assert_eq!(body(get(&app, "/count", Some(&good)).await).await, "2");
    let alphabet = ['A', 'b', '0', '+', '/', 'z'];
    for at in [
        good.len() - 1,
        good.len() - 20,
        "connect.sid=s%3A".len() + 3,
    ] {
        for c in alphabet {
            let mut near: Vec<char> = good.chars().collect();
            if near[at] == c {
                continue;
            }
            near[at] = c;
            let near: String = near.into_iter().collect();
            let res = get(&app, "/read", Some(&near)).await;
            assert_eq!(body(res).await, "0", "{near} is not the verified cookie");
        }
    }
    assert_eq!(
        body(get(&app, "/count", Some(&good)).await).await,
        "3",
        "still good"
    );
}
