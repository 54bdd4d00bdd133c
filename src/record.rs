//! [`SessionRecord`], the JSON object a store keeps for one session, and its
//! [`Fingerprint`], which is how the middleware tells whether a session changed.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cookie::SessionCookie;

/// The top-level key that holds a session's creation time (milliseconds since the
/// epoch) when [`absolute_timeout`](crate::SessionMiddlewareBuilder::absolute_timeout) is
/// on. A Node app keeps it like any other key of `req.session`.
pub const CREATED_AT_KEY: &str = "__sessionCreatedAt";

/// The top-level key that holds when the session's current ID was issued (milliseconds
/// since the epoch) when [`reissue_after`](crate::SessionMiddlewareBuilder::reissue_after)
/// is on. A Node app keeps it like any other key of `req.session`.
pub const ISSUED_AT_KEY: &str = "__sessionIssuedAt";

/// The one data key of a tombstone: the record a reissued session leaves under its old
/// ID for the grace window of
/// [`reissue_after`](crate::SessionMiddlewareBuilder::reissue_after), naming the new ID.
/// A tombstone holds no user data and is never served as a session.
pub const REISSUED_TO_KEY: &str = "__sessionReissuedTo";

/// The keys the middleware keeps in a record for itself: never user data.
pub(crate) const MIDDLEWARE_KEYS: [&str; 3] = [CREATED_AT_KEY, ISSUED_AT_KEY, REISSUED_TO_KEY];

/// The middleware's keys that time a live session. A request never changes them except
/// to add a missing one, so a merge keeps the value the store has.
pub(crate) const LIFETIME_KEYS: [&str; 2] = [CREATED_AT_KEY, ISSUED_AT_KEY];

/// One stored session: `{"cookie": {...}, ...user keys}`, exactly the object
/// express-session hands to its stores (and connect-redis / connect-pg-simple keep).
///
/// User keys are written in sorted order after `cookie`; any object express-session
/// wrote is read, whatever its key order.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The session cookie's state (`originalMaxAge`, `expires`, attributes).
    pub cookie: SessionCookie,
    /// The user data: every top-level key except `cookie`. A `cookie` key put here is
    /// never stored: [`to_json`](Self::to_json) writes the cookie's own state under it.
    pub data: Map<String, Value>,
}

impl SessionRecord {
    /// A record with this cookie and no data.
    pub fn new(cookie: SessionCookie) -> Self {
        SessionRecord {
            cookie,
            data: Map::new(),
        }
    }

    /// Parses a stored record.
    ///
    /// # Errors
    /// When the bytes are not a JSON object, or its `cookie` is missing or malformed.
    ///
    /// JavaScript strings may hold a lone UTF-16 surrogate (an emoji cut in half by
    /// `.slice()`), which `JSON.stringify` writes as `\ud83c`; such escapes are read as
    /// U+FFFD rather than losing the whole session.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes).or_else(|e| match repair_lone_surrogates(bytes) {
            Some(repaired) => serde_json::from_slice(&repaired).map_err(|_| e),
            None => Err(e),
        })
    }

    /// The JSON text a store keeps.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(128);
        self.write_json(&mut out);
        // JSON written from strings is UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the JSON text a store keeps: what `Serialize` writes, the cookie by hand.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"cookie\":");
        self.cookie.write_json(out);
        // `cookie` is the cookie's own: a `cookie` key in `data` is never written.
        for (key, value) in self.data.iter().filter(|(key, _)| *key != "cookie") {
            out.push(b',');
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, key);
            out.push(b':');
            let _ = serde_json::to_writer(&mut *out, value);
        }
        out.push(b'}');
    }

    /// When the session was created, from [`CREATED_AT_KEY`], in ms since the epoch.
    pub(crate) fn created_at_ms(&self) -> Option<i64> {
        self.data.get(CREATED_AT_KEY).and_then(Value::as_i64)
    }

    /// When the session's current ID was issued, from [`ISSUED_AT_KEY`], in ms since the
    /// epoch.
    pub(crate) fn issued_at_ms(&self) -> Option<i64> {
        self.data.get(ISSUED_AT_KEY).and_then(Value::as_i64)
    }

    /// Whether this is a tombstone (it has [`REISSUED_TO_KEY`]), whatever else it holds.
    pub(crate) fn is_tombstone(&self) -> bool {
        self.data.contains_key(REISSUED_TO_KEY)
    }

    /// The ID a tombstone points to (`None`: not a tombstone, or one pointing nowhere).
    pub(crate) fn reissued_to(&self) -> Option<&str> {
        self.data.get(REISSUED_TO_KEY).and_then(Value::as_str)
    }

    /// Whether `key` is one of the middleware's own (see [`MIDDLEWARE_KEYS`]).
    pub(crate) fn is_middleware_key(key: &str) -> bool {
        MIDDLEWARE_KEYS.contains(&key)
    }

    /// The fingerprint of the user data (the `cookie` field left out).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.data)
    }
}

impl Serialize for SessionRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.data.len() + 1))?;
        map.serialize_entry("cookie", &self.cookie)?;
        // `cookie` is the cookie's own: a `cookie` key in `data` is never written.
        for (key, value) in self.data.iter().filter(|(key, _)| *key != "cookie") {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SessionRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = SessionRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session object with a `cookie` object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<SessionRecord, A::Error> {
        let mut cookie = None;
        let mut data = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if key == "cookie" {
                if cookie.is_some() {
                    return Err(de::Error::duplicate_field("cookie"));
                }
                cookie = Some(access.next_value::<CookieObject>()?.0);
            } else {
                data.insert(key, access.next_value()?);
            }
        }
        let cookie = cookie.ok_or_else(|| de::Error::missing_field("cookie"))?;
        Ok(SessionRecord { cookie, data })
    }
}

/// The record's `cookie`, which must be a JSON object: serde's derived struct reader
/// would also take an array (fields by position), and `"cookie": []` is not a cookie.
struct CookieObject(SessionCookie);

impl<'de> Deserialize<'de> for CookieObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly;

        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = SessionCookie;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a `cookie` object")
            }

            fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<SessionCookie, A::Error> {
                SessionCookie::deserialize(de::value::MapAccessDeserializer::new(access))
            }
        }

        d.deserialize_map(ObjectOnly).map(CookieObject)
    }
}

/// `bytes` with every `\uXXXX` escape of an unpaired UTF-16 surrogate replaced by
/// `\ufffd`; `None` when there is none.
fn repair_lone_surrogates(bytes: &[u8]) -> Option<Vec<u8>> {
    let unit = |i: usize| -> Option<u16> {
        let hex = bytes.get(i..i + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let (mut out, mut i, mut repaired) = (Vec::with_capacity(bytes.len()), 0, false);
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let Some(u) = unit(i) else {
            out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
            i += 2;
            continue;
        };
        let paired = (0xD800..0xDC00).contains(&u)
            && unit(i + 6).is_some_and(|l| (0xDC00..0xE000).contains(&l));
        if paired {
            out.extend_from_slice(&bytes[i..i + 12]);
            i += 12;
        } else if (0xD800..0xE000).contains(&u) {
            out.extend_from_slice(b"\\ufffd");
            repaired = true;
            i += 6;
        } else {
            out.extend_from_slice(&bytes[i..i + 6]);
            i += 6;
        }
    }
    repaired.then_some(out)
}

/// A session's change-detection fingerprint: the crc32 of the canonical JSON of its data
/// (keys sorted at every level, the top-level `cookie` left out), together with that JSON.
///
/// Two fingerprints are equal only when the canonical bytes are equal: the crc32 is a
/// quick filter, never trusted alone, so a crafted collision cannot hide a change.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    crc: u32,
    canonical: Vec<u8>,
}

impl Fingerprint {
    /// Fingerprints session data.
    pub fn of(data: &Map<String, Value>) -> Self {
        if data.is_empty() {
            // A new session's, at its first change: `{}`, kept as no bytes (no allocation).
            return Fingerprint {
                crc: EMPTY_CRC,
                canonical: Vec::new(),
            };
        }
        let mut canonical = Vec::with_capacity(64);
        // Writing JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut canonical, data);
        Fingerprint {
            crc: crc32fast::hash(&canonical),
            canonical,
        }
    }

    /// Whether `data` has this fingerprint: its canonical JSON is compared with this one's
    /// as it is written, and no copy is kept (cheaper than `Fingerprint::of(data) == *self`,
    /// and it stops at the first difference).
    pub fn matches(&self, data: &Map<String, Value>) -> bool {
        if self.canonical.is_empty() {
            return data.is_empty();
        }
        let mut rest = Unwritten {
            rest: &self.canonical,
            differs: false,
            drain: DRAIN_BYTES,
        };
        serde_json::to_writer(&mut rest, data).is_ok() && !rest.differs && rest.rest.is_empty()
    }

    /// The crc32 of the canonical JSON.
    pub fn crc32(&self) -> u32 {
        self.crc
    }

    /// The canonical JSON the fingerprint was taken of.
    pub fn canonical_json(&self) -> &[u8] {
        if self.canonical.is_empty() {
            EMPTY
        } else {
            &self.canonical
        }
    }
}

/// The canonical JSON of no data, and its crc32 (checked by a test).
const EMPTY: &[u8] = b"{}";
const EMPTY_CRC: u32 = 0xa3a6_bf43;

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Self) -> bool {
        self.crc == other.crc && self.canonical == other.canonical
    }
}

impl Eq for Fingerprint {}

/// After a difference, this much more JSON is taken and dropped before the writer fails.
/// A failed write ends the serialisation early, but `serde_json` allocates its error: for
/// the usual small session, writing out the rest costs less.
const DRAIN_BYTES: usize = 512;

/// The part of a canonical JSON not yet matched by what is written. At the first write
/// that does not continue it, the data differs; the writer then drops up to `drain`
/// bytes more, and fails after that.
struct Unwritten<'a> {
    rest: &'a [u8],
    differs: bool,
    drain: usize,
}

impl std::io::Write for Unwritten<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.differs {
            match self.rest.strip_prefix(buf) {
                Some(rest) => {
                    self.rest = rest;
                    return Ok(buf.len());
                }
                None => self.differs = true,
            }
        }
        self.drain = self
            .drain
            .checked_sub(buf.len())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPRESS: &str = r#"{"cookie":{"originalMaxAge":60000,"expires":"2026-11-23T19:26:00.852Z","httpOnly":true,"path":"/"},"b":2,"a":{"cookie":1,"c":[1,"x"]}}"#;

    #[test]
    fn a_record_written_by_express_session_loads() {
        let record = SessionRecord::from_json(EXPRESS.as_bytes()).expect("parses");
        assert_eq!(
            record.cookie.original_max_age().map(|d| d.as_millis()),
            Some(60_000)
        );
        assert_eq!(record.data["b"], 2);
        assert_eq!(
            record.data["a"]["cookie"], 1,
            "a nested `cookie` key is user data"
        );
    }

    #[test]
    fn records_round_trip_with_cookie_first() {
        let record = SessionRecord::from_json(EXPRESS.as_bytes()).expect("parses");
        let json = record.to_json();
        assert!(json.starts_with(
            r#"{"cookie":{"originalMaxAge":60000,"expires":"2026-11-23T19:26:00.852Z""#
        ));
        assert_eq!(
            SessionRecord::from_json(json.as_bytes()).expect("parses"),
            record
        );
    }

    #[test]
    fn a_lone_surrogate_written_by_javascript_loads_as_a_replacement_character() {
        let node = br#"{"cookie":{"path":"/"},"cut":"a\ud83c","pair":"\ud83c\udf6a","esc":"\\ud83c","lo":"\udc00x"}"#;
        let record = SessionRecord::from_json(node).expect("loads");
        assert_eq!(record.data["cut"], "a\u{fffd}");
        assert_eq!(record.data["pair"], "\u{1f36a}");
        assert_eq!(
            record.data["esc"], "\\ud83c",
            "an escaped backslash is not an escape"
        );
        assert_eq!(record.data["lo"], "\u{fffd}x");
        assert!(SessionRecord::from_json(br#"{"cookie":{},"x":"\ud83c"#).is_err());
    }

    #[test]
    fn malformed_records_are_errors() {
        for bad in [
            "",
            "[]",
            "1",
            "{}",
            r#"{"cookie":1}"#,
            r#"{"cookie":{"expires":"x"}}"#,
            "{\"cookie\":{}",
        ] {
            assert!(SessionRecord::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    /// Regression (found by the hostile-input catalogue): serde's derived reader took an
    /// array as a `cookie` (fields by position), so `{"cookie":[]}` loaded as a session.
    #[test]
    fn a_cookie_that_is_not_an_object_is_an_error() {
        for bad in [
            r#"{"cookie":[]}"#,
            r#"{"cookie":[null,true,"high"],"n":1}"#,
            r#"{"cookie":"x"}"#,
            r#"{"cookie":null}"#,
            r#"{"cookie":true}"#,
        ] {
            let e = SessionRecord::from_json(bad.as_bytes()).expect_err(bad);
            assert!(e.to_string().contains("cookie"), "{bad}: {e}");
        }
        let ok = SessionRecord::from_json(br#"{"cookie":{"path":"/x"},"n":1}"#).expect("an object");
        assert_eq!(ok.cookie.path(), "/x");
    }

    #[test]
    fn a_tombstone_is_told_by_its_key_and_names_its_new_id() {
        let live = SessionRecord::from_json(EXPRESS.as_bytes()).expect("parses");
        assert!(!live.is_tombstone() && live.reissued_to().is_none());
        let json = br#"{"cookie":{},"__sessionReissuedTo":"new-id"}"#;
        let tombstone = SessionRecord::from_json(json).expect("parses");
        assert!(tombstone.is_tombstone());
        assert_eq!(tombstone.reissued_to(), Some("new-id"));
        let nowhere =
            SessionRecord::from_json(br#"{"cookie":{},"__sessionReissuedTo":1}"#).expect("parses");
        assert!(nowhere.is_tombstone() && nowhere.reissued_to().is_none());
        assert!(MIDDLEWARE_KEYS
            .iter()
            .all(|k| SessionRecord::is_middleware_key(k)));
        assert!(!SessionRecord::is_middleware_key("cookie"));
    }

    #[test]
    fn fingerprints_ignore_key_order_and_see_every_change() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"x":1,"y":{"p":1,"q":2}}"#).expect("json");
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"y":{"q":2,"p":1},"x":1}"#).expect("json");
        let c: Map<String, Value> =
            serde_json::from_str(r#"{"y":{"q":2,"p":1},"x":2}"#).expect("json");
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&c));
        assert!(Fingerprint::of(&a).matches(&b));
        assert!(!Fingerprint::of(&a).matches(&c));
    }

    #[test]
    fn matching_needs_the_whole_json_neither_a_prefix_nor_more() {
        let parse = |json: &str| serde_json::from_str::<Map<String, Value>>(json).expect("json");
        let fp = Fingerprint::of(&parse(r#"{"a":"xy","b":[1,2]}"#));
        assert!(fp.matches(&parse(r#"{"b":[1,2],"a":"xy"}"#)));
        assert!(!fp.matches(&parse(r#"{"a":"xy"}"#)), "a prefix");
        assert!(!fp.matches(&parse(r#"{"a":"xy","b":[1,2],"c":0}"#)), "more");
        assert!(!fp.matches(&parse(r#"{"a":"xz","b":[1,2]}"#)));
        assert!(Fingerprint::of(&Map::new()).matches(&Map::new()));
        // A difference early in a long record: more to write than the writer drops.
        let long = |a: &str| parse(&format!(r#"{{"a":"{a}","b":"{}"}}"#, "y".repeat(4096)));
        let fp = Fingerprint::of(&long("xy"));
        assert!(fp.matches(&long("xy")));
        assert!(!fp.matches(&long("xz")));
    }

    #[test]
    fn no_data_fingerprints_as_its_json() {
        let empty = Fingerprint::of(&Map::new());
        assert_eq!(empty.canonical_json(), b"{}");
        assert_eq!(empty.crc32(), crc32fast::hash(b"{}"));
        let one = serde_json::from_str::<Map<String, Value>>(r#"{"n":1}"#).expect("json");
        assert!(!empty.matches(&one));
        assert!(!Fingerprint::of(&one).matches(&Map::new()));
    }

    #[test]
    fn a_crc_collision_is_not_mistaken_for_equality() {
        let forged = Fingerprint {
            crc: Fingerprint::of(&Map::new()).crc32(),
            canonical: b"{\"x\":1}".to_vec(),
        };
        assert_ne!(forged, Fingerprint::of(&Map::new()));
    }

    /// Regression (found by fuzzing): without serde_json's `float_roundtrip` feature a
    /// stored float could read back one ulp off (`1.2345678901234499e26` became
    /// `1.23456789012345e26`), so loading and saving a session changed its data.
    #[test]
    fn floats_survive_a_load_and_save_exactly() {
        let stored = r#"{"cookie":{},"big":123456789012345001865425556,"f":1.2345678901234499e+26,"g":5e-324,"h":-0.0}"#;
        let record = SessionRecord::from_json(stored.as_bytes()).expect("parses");
        assert_eq!(record.data["f"].as_f64(), Some(1.2345678901234499e26));
        assert_eq!(
            record.data["big"].as_f64(),
            Some(123456789012345001865425556.0)
        );
        let json = record.to_json();
        assert_eq!(
            SessionRecord::from_json(json.as_bytes()).expect("parses"),
            record,
            "{json}"
        );
    }
}
