//! How [`SessionCookie`](super::SessionCookie) fields look in a stored record:
//! `expires` as an ISO 8601 string, `originalMaxAge` as milliseconds, and `sameSite` /
//! `priority` in any of the spellings express-session accepts.

use std::borrow::Cow;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

use super::{Priority, SameSite};
use crate::encoding::{format_iso, parse_iso};

impl super::SessionCookie {
    /// Appends the cookie's JSON, byte for byte what its `Serialize` writes, without
    /// serde's per-field work: the field names are written as they are (they need no
    /// escaping), and only `domain` and `path` go through the JSON string writer.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"originalMaxAge\":");
        write_value(out, &self.original_max_age);
        if let Some(partitioned) = self.partitioned {
            out.extend_from_slice(b",\"partitioned\":");
            write_value(out, &partitioned);
        }
        if let Some(priority) = self.priority {
            out.extend_from_slice(b",\"priority\":");
            write_word(out, priority::NAMES[priority as usize]);
        }
        out.extend_from_slice(b",\"expires\":");
        match self.expires {
            Some(ms) => write_word(out, &format_iso(ms)),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(secure) = self.secure {
            out.extend_from_slice(b",\"secure\":");
            write_value(out, &secure);
        }
        out.extend_from_slice(b",\"httpOnly\":");
        write_value(out, &self.http_only);
        if let Some(domain) = &self.domain {
            out.extend_from_slice(b",\"domain\":");
            write_value(out, domain);
        }
        out.extend_from_slice(b",\"path\":");
        write_value(out, &self.path);
        if let Some(same_site) = self.same_site {
            out.extend_from_slice(b",\"sameSite\":");
            write_word(out, same_site::name(same_site));
        }
        out.push(b'}');
    }
}

/// Appends `value` as JSON (a number, a boolean, an escaped string or `null`).
fn write_value(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// Appends a string that needs no escaping (a date, a keyword), quoted.
fn write_word(out: &mut Vec<u8>, word: &str) {
    out.push(b'"');
    out.extend_from_slice(word.as_bytes());
    out.push(b'"');
}

pub(super) fn ser_date<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_iso(*ms)),
        None => s.serialize_none(),
    }
}

pub(super) fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let date = |text: Option<&str>| match text {
        None => Ok(None),
        Some(text) => parse_iso(text)
            .map(Some)
            .ok_or("cookie.expires is not an ISO 8601 date"),
    };
    d.deserialize_any(Text(date, "an ISO 8601 date or null"))
}

/// The path, shared when it is `/` (see [`shared_path`]).
pub(super) fn de_path<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    let path = |text: Option<&str>| match text {
        Some(text) => Ok(shared_path(text)),
        None => Err("cookie.path is null"),
    };
    d.deserialize_any(Text(path, "a cookie path"))
}

/// A cookie path, without an allocation of its own when it is `/`.
pub(crate) fn shared_path(path: impl AsRef<str> + Into<String>) -> Cow<'static, str> {
    match path.as_ref() {
        "/" => super::root(),
        _ => Cow::Owned(path.into()),
    }
}

/// A string (or JSON's null: `None`) handed to a function as the deserializer holds it,
/// borrowed from the input or in its scratch buffer: never copied.
struct Text<F>(F, &'static str);

impl<'de, T, F> Visitor<'de> for Text<F>
where
    F: FnOnce(Option<&str>) -> Result<T, &'static str>,
{
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(Some(v)).map_err(E::custom)
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        (self.0)(None).map_err(E::custom)
    }
}

pub(super) fn de_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<f64>::deserialize(d)?;
    Ok(n.filter(|n| n.is_finite()).map(|n| n.round() as i64))
}

pub(super) mod same_site {
    use super::*;

    pub(in crate::cookie) fn serialize<S: Serializer>(
        v: &Option<SameSite>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(same_site) => s.serialize_str(name(*same_site)),
            None => s.serialize_none(),
        }
    }

    /// How a stored record spells it.
    pub(super) fn name(same_site: SameSite) -> &'static str {
        match same_site {
            SameSite::Strict => "strict",
            SameSite::Lax => "lax",
            SameSite::None => "none",
        }
    }

    /// Node accepts `true` (strict), `false` (no attribute) or a string in any case.
    pub(in crate::cookie) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SameSite>, D::Error> {
        d.deserialize_any(Words {
            what: "cookie.sameSite: strict, lax, none or a boolean",
            words: &[
                ("strict", SameSite::Strict),
                ("lax", SameSite::Lax),
                ("none", SameSite::None),
            ],
            on_true: Some(SameSite::Strict),
        })
    }
}

pub(super) mod priority {
    use super::*;

    /// How a stored record spells each priority, by its discriminant.
    pub(super) const NAMES: [&str; 3] = ["low", "medium", "high"];

    pub(in crate::cookie) fn serialize<S: Serializer>(
        v: &Option<Priority>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(p) => s.serialize_str(NAMES[*p as usize]),
            None => s.serialize_none(),
        }
    }

    pub(in crate::cookie) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Priority>, D::Error> {
        d.deserialize_any(Words {
            what: "cookie.priority: low, medium or high",
            words: &[
                ("low", Priority::Low),
                ("medium", Priority::Medium),
                ("high", Priority::High),
            ],
            on_true: None,
        })
    }
}

/// Reads one of a few words (any case), `null`, or (where `on_true` says) a boolean,
/// without building an intermediate JSON value.
struct Words<T: 'static> {
    what: &'static str,
    words: &'static [(&'static str, T)],
    on_true: Option<T>,
}

impl<'de, T: Copy> Visitor<'de> for Words<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<T>, E> {
        match (v, self.on_true) {
            (false, Some(_)) => Ok(None),
            (true, Some(t)) => Ok(Some(t)),
            _ => Err(E::invalid_type(de::Unexpected::Bool(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
        let found = self.words.iter().find(|(w, _)| w.eq_ignore_ascii_case(v));
        found
            .map(|&(_, t)| Some(t))
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}
