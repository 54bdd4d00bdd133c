//! How [`SessionCookie`](super::SessionCookie) fields look in a stored record:
//! `expires` as an ISO 8601 string, `originalMaxAge` as milliseconds, and `sameSite` /
//! `priority` in any of the spellings express-session accepts.

use serde::{Deserialize, Deserializer, Serializer};

use super::{Priority, SameSite};
use crate::encoding::{format_iso, parse_iso};

pub(super) fn ser_date<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&format_iso(*ms)),
        None => s.serialize_none(),
    }
}

pub(super) fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_iso(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("cookie.expires is not an ISO 8601 date")),
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
        let text = match v {
            Some(SameSite::Strict) => "strict",
            Some(SameSite::Lax) => "lax",
            Some(SameSite::None) => "none",
            None => return s.serialize_none(),
        };
        s.serialize_str(text)
    }

    /// Node accepts `true` (strict), `false` (no attribute) or a string in any case.
    pub(in crate::cookie) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SameSite>, D::Error> {
        match Option::<serde_json::Value>::deserialize(d)? {
            None | Some(serde_json::Value::Bool(false)) => Ok(None),
            Some(serde_json::Value::Bool(true)) => Ok(Some(SameSite::Strict)),
            Some(serde_json::Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "strict" => Ok(Some(SameSite::Strict)),
                "lax" => Ok(Some(SameSite::Lax)),
                "none" => Ok(Some(SameSite::None)),
                _ => Err(serde::de::Error::custom(
                    "cookie.sameSite is not strict, lax or none",
                )),
            },
            Some(_) => Err(serde::de::Error::custom(
                "cookie.sameSite is not a string or boolean",
            )),
        }
    }
}

pub(super) mod priority {
    use super::*;

    pub(in crate::cookie) fn serialize<S: Serializer>(
        v: &Option<Priority>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(p) => s.serialize_str(["low", "medium", "high"][*p as usize]),
            None => s.serialize_none(),
        }
    }

    pub(in crate::cookie) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Priority>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        match text.to_ascii_lowercase().as_str() {
            "low" => Ok(Some(Priority::Low)),
            "medium" => Ok(Some(Priority::Medium)),
            "high" => Ok(Some(Priority::High)),
            _ => Err(serde::de::Error::custom(
                "cookie.priority is not low, medium or high",
            )),
        }
    }
}
