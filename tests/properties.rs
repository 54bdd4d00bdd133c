//! Property tests (proptest): signing round-trips and rejects every single-bit change;
//! a stored record's JSON round trip is lossless for any data and any `cookie` fields;
//! change detection ignores insertion order, sees every change, and is not fooled by a
//! crafted crc32 collision; and the middleware never saves a session whose data ends
//! the request as it began.

mod common;

use actix_express_session::{
    sign, unsign, Fingerprint, Secrets, Session, SessionMiddleware, SessionRecord,
};
use actix_web::{web, App};
use common::{pair, set_cookie, Recorder, SECRET};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------
// Strategies

/// Any JSON number serde_json can hold: integers of both signs, big unsigned ones, and
/// every finite double (subnormals, -0.0 and extremes included).
fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
}

/// Any JSON value, nested up to four levels, strings of any Unicode.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Session data: any keys but the reserved `cookie`, any values.
fn session_data() -> impl Strategy<Value = Map<String, Value>> {
    vec(
        (
            any::<String>().prop_filter("reserved", |k| k != "cookie"),
            json_value(),
        ),
        0..8,
    )
    .prop_map(|kv| kv.into_iter().collect())
}

/// An ISO 8601 date as express-session or a hand-edited record may hold it: four-digit
/// or six-digit signed years, with or without milliseconds, `Z` or an offset.
fn iso_date() -> impl Strategy<Value = String> {
    let year = prop_oneof![
        (0i64..=9999).prop_map(|y| format!("{y:04}")),
        (-271_820i64..=275_759)
            .prop_filter("expanded", |y| !(0..=9999).contains(y))
            .prop_map(|y| format!("{}{:06}", if y < 0 { '-' } else { '+' }, y.abs())),
    ];
    let fraction = prop_oneof![
        Just(String::new()),
        (0u32..1000).prop_map(|f| format!(".{f:03}")),
        Just(".5".to_owned())
    ];
    let zone = prop_oneof![
        Just("Z".to_owned()),
        (any::<bool>(), 0u32..24, 0u32..60)
            .prop_map(|(east, h, m)| format!("{}{h:02}:{m:02}", if east { '+' } else { '-' })),
    ];
    (
        year,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        fraction,
        zone,
    )
        .prop_map(|(y, mo, d, h, mi, s, f, z)| {
            format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{z}")
        })
}

/// A stored `cookie` object with any mix of express-session's fields, each absent, null
/// or in any of the spellings Node writes.
fn cookie_object() -> impl Strategy<Value = Map<String, Value>> {
    let max_age = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|n| Some(json!(n))),
        json_number().prop_map(Some),
    ];
    let expires = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        iso_date().prop_map(|d| Some(json!(d)))
    ];
    let flag = || prop_oneof![Just(None), any::<bool>().prop_map(|b| Some(json!(b)))];
    let text = || prop_oneof![Just(None), any::<String>().prop_map(|s| Some(json!(s)))];
    let same_site = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        any::<bool>().prop_map(|b| Some(json!(b))),
        prop::sample::select(vec!["strict", "Strict", "lax", "LAX", "none", "None"])
            .prop_map(|s| Some(json!(s))),
    ];
    let priority = prop_oneof![
        Just(None),
        prop::sample::select(vec!["low", "Medium", "HIGH"]).prop_map(|s| Some(json!(s))),
    ];
    (
        max_age,
        expires,
        flag(),
        flag(),
        flag(),
        text(),
        text(),
        same_site,
        priority,
    )
        .prop_map(
            |(
                max_age,
                expires,
                secure,
                http_only,
                partitioned,
                domain,
                path,
                same_site,
                priority,
            )| {
                let fields = [
                    ("originalMaxAge", max_age),
                    ("expires", expires),
                    ("secure", secure),
                    ("httpOnly", http_only),
                    ("partitioned", partitioned),
                    ("domain", domain),
                    ("path", path),
                    ("sameSite", same_site),
                    ("priority", priority),
                ];
                fields
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                    .collect()
            },
        )
}

/// Rebuilds a value with every object's keys inserted in reverse order.
fn reordered(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reordered(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(reordered).collect()),
        other => other.clone(),
    }
}

/// Replaces the value that `path` leads to (each step picks a child of an object or an
/// array, modulo its size; the walk stops at a leaf or an empty container).
fn replace_at(value: &mut Value, path: &[usize], new: Value) {
    let child = match (value, path.split_first()) {
        (Value::Object(map), Some((&i, _))) if !map.is_empty() => {
            let len = map.len();
            map.values_mut().nth(i % len)
        }
        (Value::Array(items), Some((&i, _))) if !items.is_empty() => {
            let len = items.len();
            items.get_mut(i % len)
        }
        (value, _) => {
            *value = new;
            return;
        }
    };
    if let Some(child) = child {
        replace_at(child, &path[1..], new);
    }
}

// ---------------------------------------------------------------------------------------
// Signing

proptest! {
    #[test]
    fn sign_then_unsign_gives_the_value_back(value in any::<String>(), secrets in vec(any::<String>(), 1..4)) {
        let list = Secrets::from(secrets.clone());
        let signed = sign(&value, &secrets[0]);
        prop_assert_eq!(unsign(&signed, &list), Some(value.as_str()));
        for secret in &secrets {
            let signed = sign(&value, secret);
            prop_assert_eq!(unsign(&signed, &list), Some(value.as_str()), "every secret verifies");
        }
        // HMAC pads short keys with zero bytes, so "k" and "k\0" are one key: compare so.
        let key = |s: &str| s.trim_end_matches('\0').to_owned();
        let others: Vec<String> =
            secrets.iter().map(|s| format!("{s}\0x")).filter(|s| key(s) != key(&secrets[0])).collect();
        if !others.is_empty() {
            prop_assert_eq!(unsign(&signed, &Secrets::from(others)), None, "only the listed secrets verify");
        }
    }

    #[test]
    fn unsign_rejects_every_single_bit_change(value in any::<String>(), secret in any::<String>()) {
        let list = Secrets::from(secret.as_str());
        let signed = sign(&value, &secret);
        for bit in 0..signed.len() * 8 {
            let mut bytes = signed.clone().into_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            // A flip that is not UTF-8 never reaches `unsign`: the middleware drops it first.
            if let Ok(flipped) = String::from_utf8(bytes) {
                prop_assert_eq!(unsign(&flipped, &list), None, "bit {} of {:?}", bit, signed);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stored records

proptest! {
    #[test]
    fn any_session_data_round_trips_losslessly(data in session_data()) {
        let mut stored = Map::new();
        stored.insert("cookie".to_owned(), json!({}));
        stored.extend(data.clone());
        let record = SessionRecord::from_json(Value::Object(stored).to_string().as_bytes()).expect("a valid record");
        prop_assert_eq!(&record.data, &data, "read as written");
        let json = record.to_json();
        let again = SessionRecord::from_json(json.as_bytes()).expect("to_json is readable");
        prop_assert_eq!(&again.data, &data, "written as read: {}", json);
        prop_assert_eq!(again, record);
    }

    #[test]
    fn any_cookie_fields_round_trip(cookie in cookie_object(), data in session_data()) {
        let mut stored = data;
        stored.insert("cookie".to_owned(), Value::Object(cookie.clone()));
        let text = Value::Object(stored).to_string();
        let record = SessionRecord::from_json(text.as_bytes()).expect("express-session's fields parse");
        let json = record.to_json();
        let serialized = serde_json::to_string(&record).expect("serializes");
        prop_assert_eq!(&json, &serialized, "to_json writes what Serialize writes");
        let again = SessionRecord::from_json(json.as_bytes()).expect("to_json is readable");
        prop_assert_eq!(&again, &record, "{} -> {}", text, json);
        prop_assert_eq!(again.to_json(), json.clone(), "stable after one round");

        // What was given in canonical form comes back exactly.
        let out: Value = serde_json::from_str(&json).expect("JSON");
        let out = &out["cookie"];
        for key in ["secure", "domain", "path", "partitioned"] {
            if let Some(v) = cookie.get(key) {
                prop_assert_eq!(&out[key], v, "{}", key);
            }
        }
        let http_only_default = json!(true);
        prop_assert_eq!(&out["httpOnly"], cookie.get("httpOnly").unwrap_or(&http_only_default));
        let exact = cookie.get("originalMaxAge").and_then(Value::as_i64).filter(|n| n.abs() <= 1 << 53);
        if let Some(n) = exact {
            prop_assert_eq!(out["originalMaxAge"].as_i64(), Some(n), "integers up to 2^53 are exact");
        }
        if let Some(Value::String(date)) = cookie.get("expires") {
            let canonical = date.len() >= 24 && date.as_bytes()[date.len() - 5] == b'.' && date.ends_with('Z');
            if canonical {
                prop_assert_eq!(&out["expires"], &json!(date), "a canonical date is written back as is");
            }
        }
    }

    #[test]
    fn any_bytes_parse_to_an_error_or_a_stable_record(bytes in vec(any::<u8>(), 0..256)) {
        if let Ok(record) = SessionRecord::from_json(&bytes) {
            let json = record.to_json();
            prop_assert_eq!(SessionRecord::from_json(json.as_bytes()).expect("readable"), record);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Change detection

proptest! {
    #[test]
    fn equal_data_has_one_fingerprint_whatever_the_insertion_order(data in session_data()) {
        let forward = Fingerprint::of(&data);
        let Value::Object(backward) = reordered(&Value::Object(data.clone())) else { unreachable!() };
        prop_assert_eq!(&forward, &Fingerprint::of(&backward));
        prop_assert_eq!(forward.crc32(), Fingerprint::of(&backward).crc32());
    }

    #[test]
    fn every_change_changes_the_fingerprint(
        data in session_data(),
        path in vec(any::<usize>(), 1..6),
        new in json_value(),
        extra_key in any::<String>(),
    ) {
        let before = Fingerprint::of(&data);
        let mut changed = Value::Object(data.clone());
        replace_at(&mut changed, &path, new);
        let Value::Object(changed) = changed else {
            // The walk replaced the whole (empty) map: any non-empty data differs.
            return Ok(());
        };
        if changed != data {
            prop_assert_ne!(&Fingerprint::of(&changed), &before, "{:?} vs {:?}", data, changed);
        }

        let mut added = data.clone();
        let differs = added.get(&extra_key) != Some(&Value::Null);
        added.insert(extra_key.clone(), Value::Null);
        prop_assert_eq!(differs, Fingerprint::of(&added) != before, "adding {:?}", extra_key);
        if let Some(key) = data.keys().next() {
            let mut removed = data.clone();
            removed.remove(key);
            prop_assert_ne!(&Fingerprint::of(&removed), &before, "removing {:?}", key);
        }
    }

    #[test]
    fn a_forged_crc32_collision_is_still_a_change(data in session_data(), original in any::<String>()) {
        let mut before = data;
        before.insert("k".to_owned(), json!(original));
        let forged = forge_collision(&before, "k");
        prop_assert_ne!(&forged, &before);
        prop_assert_eq!(Fingerprint::of(&forged).crc32(), Fingerprint::of(&before).crc32(), "a real collision");
        prop_assert_ne!(Fingerprint::of(&forged), Fingerprint::of(&before));
    }
}

/// `data` with `data[key]` replaced by a different string chosen so that the crc32 of
/// the canonical JSON is unchanged. crc32 is affine over GF(2) for messages of one
/// length, so 40 free bits (eight characters from `` ` ``..DEL, none of which JSON
/// escapes) are solved for by Gaussian elimination.
fn forge_collision(data: &Map<String, Value>, key: &str) -> Map<String, Value> {
    const FREE: usize = 8;
    let target = Fingerprint::of(data).crc32();
    let with = |bits: u64| {
        let free: String = (0..FREE)
            .map(|i| char::from(0x60 | ((bits >> (5 * i)) & 31) as u8))
            .collect();
        let mut forged = data.clone();
        forged.insert(key.to_owned(), json!(format!("forged:{free}")));
        forged
    };
    let crc = |bits: u64| Fingerprint::of(&with(bits)).crc32();
    let base = crc(0);
    // Column i: how flipping free bit i changes the crc.
    let mut rows: Vec<(u32, u64)> = (0..5 * FREE)
        .map(|i| (crc(1 << i) ^ base, 1u64 << i))
        .collect();
    let mut want = target ^ base;
    let mut solution = 0u64;
    for bit in (0..32).rev() {
        let Some(pivot) = rows.iter().position(|(v, _)| v >> bit & 1 == 1) else {
            continue;
        };
        let (pv, pm) = rows.swap_remove(pivot);
        for row in &mut rows {
            if row.0 >> bit & 1 == 1 {
                row.0 ^= pv;
                row.1 ^= pm;
            }
        }
        if want >> bit & 1 == 1 {
            want ^= pv;
            solution ^= pm;
        }
    }
    assert_eq!(want, 0, "the free bits span every crc32");
    let forged = with(solution);
    assert_eq!(Fingerprint::of(&forged).crc32(), target);
    forged
}

// ---------------------------------------------------------------------------------------
// The middleware

#[derive(Debug, Clone)]
enum Op {
    Insert(String, Value),
    Remove(String),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let key = || prop::sample::select(vec!["a", "b", "c", "n"]).prop_map(str::to_owned);
    let value = prop_oneof![
        json_number(),
        any::<bool>().prop_map(Value::Bool),
        vec(0u8..3, 0..3).prop_map(|v| json!(v))
    ];
    let op = prop_oneof![
        (key(), value).prop_map(|(k, v)| Op::Insert(k, v)),
        key().prop_map(Op::Remove)
    ];
    vec(op, 0..12)
}

/// Applies the ops, then puts back every key the ops touched: the data ends as it began.
async fn apply_and_restore(
    session: Session,
    ops: web::Data<Vec<Op>>,
) -> actix_web::Result<&'static str> {
    let original = session.entries();
    for op in ops.iter() {
        match op {
            Op::Insert(k, v) => session.insert(k.clone(), v)?,
            Op::Remove(k) => {
                session.remove(k)?;
            }
        }
    }
    for op in ops.iter() {
        let (Op::Insert(k, _) | Op::Remove(k)) = op;
        match original.get(k) {
            Some(v) => session.insert(k.clone(), v)?,
            None => {
                session.remove(k)?;
            }
        }
    }
    Ok("ok")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn changes_that_are_undone_are_not_saved(initial in vec((0u8..4, json_number()), 0..4), ops in ops()) {
        actix_rt::System::new().block_on(async move {
            let store = Recorder::default();
            let mw = SessionMiddleware::builder(store.clone(), SECRET)
                .touch_after(std::time::Duration::ZERO)
                .build()
                .expect("valid");
            let app = actix_web::test::init_service(
                App::new()
                    .wrap(mw)
                    .app_data(web::Data::new(ops))
                    .route("/ops", web::get().to(apply_and_restore))
                    .configure(common::routes),
            )
            .await;

            // A new session that ends empty is neither saved nor sent.
            let res = common::get(&app, "/ops", None).await;
            assert_eq!(res.status(), 200);
            assert_eq!(set_cookie(&res), None, "an untouched new session sends no cookie");
            assert_eq!(store.calls(), Vec::<String>::new(), "and is not saved");

            // A stored session that ends as it was loaded is touched, never saved.
            let res = common::get(&app, "/set/seed/0", None).await;
            let cookie = pair(&set_cookie(&res).expect("a new session"));
            for (k, v) in &initial {
                let uri = format!("/set/{}/{}", ["a", "b", "c", "n"][usize::from(*k)], v);
                assert_eq!(common::get(&app, &uri, Some(&cookie)).await.status(), 200);
            }
            let sid = common::sid(&cookie);
            let before = actix_express_session::store::SessionStore::get(&store.inner, &sid).await.unwrap().unwrap();
            store.calls();
            let res = common::get(&app, "/ops", Some(&cookie)).await;
            assert_eq!(res.status(), 200);
            assert_eq!(set_cookie(&res), None);
            assert_eq!(store.calls(), [format!("load {sid}"), format!("touch {sid}")]);
            let after = actix_express_session::store::SessionStore::get(&store.inner, &sid).await.unwrap().unwrap();
            assert_eq!(after.data, before.data);
        });
    }

    #[test]
    fn a_change_to_a_colliding_value_is_saved(original in "v[a-z]{0,12}") {
        let before = Map::from_iter([("k".to_owned(), json!(original))]);
        let forged = forge_collision(&before, "k");
        let forged_value = forged["k"].clone();
        actix_rt::System::new().block_on(async move {
            let store = Recorder::default();
            let mw = SessionMiddleware::builder(store.clone(), SECRET).build().expect("valid");
            let value = web::Data::new(forged_value.clone());
            let app = actix_web::test::init_service(
                App::new()
                    .wrap(mw)
                    .app_data(value)
                    .route(
                        "/forge",
                        web::get().to(|s: Session, v: web::Data<Value>| async move {
                            s.insert("k", v.get_ref())?;
                            actix_web::Result::<&str>::Ok("ok")
                        }),
                    )
                    .configure(common::routes),
            )
            .await;
            let res = common::get(&app, &format!("/set/k/{original}"), None).await;
            let cookie = pair(&set_cookie(&res).expect("a new session"));
            let sid = common::sid(&cookie);
            store.calls();
            assert_eq!(common::get(&app, "/forge", Some(&cookie)).await.status(), 200);
            assert_eq!(store.calls(), [format!("load {sid}"), format!("save_if {sid}")], "the colliding change is saved");
            let after = actix_express_session::store::SessionStore::get(&store.inner, &sid).await.unwrap().unwrap();
            assert_eq!(after.data["k"], forged_value);
        });
    }
}

/// Regression (found by `changes_that_are_undone_are_not_saved`): serde_json's `==`
/// says -0.0 equals 0.0, so an `insert` that skipped "equal" values kept -0.0.
#[test]
fn inserting_zero_over_negative_zero_takes_effect() {
    actix_rt::System::new().block_on(async {
        let app = actix_web::test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(Recorder::default(), SECRET)
                        .build()
                        .expect("valid"),
                )
                .route(
                    "/",
                    web::get().to(|s: Session| async move {
                        s.insert("c", -0.0)?;
                        s.insert("c", 0.0)?;
                        actix_web::Result::<String>::Ok(
                            s.get::<Value>("c")?.expect("set").to_string(),
                        )
                    }),
                ),
        )
        .await;
        let res = common::get(&app, "/", None).await;
        assert_eq!(common::body(res).await, "0.0", "the value last inserted");
    });
}
