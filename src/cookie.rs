//! Cookie configuration ([`CookieOptions`], fixed at build time) and the per-session
//! cookie state ([`SessionCookie`], stored with each record and rendered into
//! `Set-Cookie` the way Node's `cookie` package serializes it).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::encoding::{clamp_date, format_http};

mod wire;

/// When the `Secure` attribute is set on the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secure {
    /// Always mark the cookie `Secure`; it is never sent over plain HTTP.
    Always,
    /// Never mark the cookie `Secure`.
    ///
    /// # Warning: session hijacking risk
    /// Without `Secure` the browser sends the session ID over plain HTTP, where anyone on
    /// the network path can read it. Use this for local development only.
    Never,
    /// `Secure` when the request that created the session came over HTTPS (directly, or
    /// through a trusted proxy's `X-Forwarded-Proto`). Resolved once per session.
    Auto,
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Sent on same-site requests and top-level cross-site navigations (the default).
    Lax,
    /// Sent on all requests; requires [`Secure::Always`].
    None,
}

/// The cookie's `Priority` attribute (a Chrome extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `Priority=Low`.
    Low,
    /// `Priority=Medium`.
    Medium,
    /// `Priority=High`.
    High,
}

/// How long a new session's cookie lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    /// A browser-session cookie: no `Expires`.
    Session,
    /// `Expires` = now + this, renewed on every response that carries the cookie.
    MaxAge(Duration),
    /// `Expires` at this instant for new sessions (express-session turns it into a max age).
    Expires(SystemTime),
}

/// Options for the session cookie, applied to new (and regenerated) sessions.
///
/// A loaded session keeps the attributes it was created with, as express-session does:
/// browsers may reject an update whose attributes differ from the original.
///
/// Defaults: path `/`, `HttpOnly`, [`Secure::Auto`], [`SameSite::Lax`], no domain, no
/// expiry (a browser-session cookie).
///
/// ```
/// use std::time::Duration;
/// use actix_express_session::{CookieOptions, SameSite, Secure};
///
/// let options = CookieOptions::default()
///     .max_age(Duration::from_secs(3600))
///     .secure(Secure::Always)
///     .same_site(SameSite::Strict);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CookieOptions {
    pub(crate) domain: Option<String>,
    pub(crate) path: Cow<'static, str>,
    lifetime: Lifetime,
    http_only: bool,
    pub(crate) secure: Secure,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) partitioned: bool,
    priority: Option<Priority>,
}

impl Default for CookieOptions {
    fn default() -> Self {
        CookieOptions {
            domain: None,
            path: root(),
            lifetime: Lifetime::Session,
            http_only: true,
            secure: Secure::Auto,
            same_site: Some(SameSite::Lax),
            partitioned: false,
            priority: None,
        }
    }
}

impl CookieOptions {
    /// `Domain` attribute. Default: none (host-only cookie).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// `Path` attribute; requests outside this path prefix get no session. Default `/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = wire::shared_path(path.into());
        self
    }

    /// Lifetime of the cookie, renewed on each response that sends it. Replaces an
    /// earlier [`expires`](Self::expires). Default: none, a browser-session cookie.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.lifetime = Lifetime::MaxAge(max_age);
        self
    }

    /// An absolute expiry for new sessions. As in express-session it becomes the
    /// session's `originalMaxAge` (the time left when the session is created), so later
    /// responses move it forward by that offset. Replaces an earlier
    /// [`max_age`](Self::max_age).
    pub fn expires(mut self, at: SystemTime) -> Self {
        self.lifetime = Lifetime::Expires(at);
        self
    }

    /// `HttpOnly` attribute. Default `true`.
    ///
    /// # Warning: cross-site scripting risk
    /// With `false`, any script on the page can read the session cookie.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// `Secure` attribute. Default [`Secure::Auto`].
    pub fn secure(mut self, secure: Secure) -> Self {
        self.secure = secure;
        self
    }

    /// `SameSite` attribute. Default [`SameSite::Lax`].
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// `Partitioned` attribute (CHIPS). Default `false`.
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// `Priority` attribute. Default: none.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The cookie of a session created now, over a connection that is (or is not) secure.
    pub(crate) fn new_cookie(&self, secure_connection: bool, now_ms: i64) -> SessionCookie {
        let original_max_age = match self.lifetime {
            Lifetime::Session => None,
            Lifetime::MaxAge(d) => Some(duration_ms(d)),
            Lifetime::Expires(at) => Some(unix_ms(at).saturating_sub(now_ms).max(0)),
        };
        SessionCookie {
            original_max_age,
            partitioned: self.partitioned.then_some(true),
            priority: self.priority,
            expires: original_max_age.map(|ms| clamp_date(now_ms.saturating_add(ms))),
            secure: match self.secure {
                Secure::Always => Some(true),
                Secure::Never => None,
                Secure::Auto => Some(secure_connection),
            },
            http_only: self.http_only,
            domain: self.domain.clone(),
            path: self.path.clone(),
            same_site: self.same_site,
        }
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn unix_ms(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(e) => -duration_ms(e.duration()),
    }
}

/// The cookie state of one session, as express-session stores it in the record's
/// `cookie` field: `originalMaxAge`, `expires` and the attributes resolved when the
/// session was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCookie {
    #[serde(default, deserialize_with = "wire::de_millis")]
    original_max_age: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partitioned: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "wire::priority"
    )]
    priority: Option<Priority>,
    #[serde(
        default,
        serialize_with = "wire::ser_date",
        deserialize_with = "wire::de_date"
    )]
    expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secure: Option<bool>,
    #[serde(default = "yes")]
    http_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[serde(default = "root", deserialize_with = "wire::de_path")]
    path: Cow<'static, str>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "wire::same_site"
    )]
    same_site: Option<SameSite>,
}

fn yes() -> bool {
    true
}

/// The path `/`, which nearly every session has: shared, not allocated per cookie.
fn root() -> Cow<'static, str> {
    Cow::Borrowed("/")
}

impl SessionCookie {
    /// Time left until the cookie expires (zero once past); `None` for a browser-session
    /// cookie.
    pub fn max_age(&self) -> Option<Duration> {
        let left = self.expires? - crate::encoding::now_ms();
        Some(Duration::from_millis(left.max(0) as u64))
    }

    /// The lifetime the cookie was given (`originalMaxAge`); `None` for a browser-session
    /// cookie.
    pub fn original_max_age(&self) -> Option<Duration> {
        self.original_max_age
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
    }

    /// When the cookie expires; `None` for a browser-session cookie.
    pub fn expires(&self) -> Option<SystemTime> {
        let ms = self.expires?;
        let d = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 {
            UNIX_EPOCH.checked_add(d)
        } else {
            UNIX_EPOCH.checked_sub(d)
        }
    }

    /// Expiry in milliseconds since the Unix epoch, for stores computing a TTL.
    pub fn expires_unix_ms(&self) -> Option<i64> {
        self.expires
    }

    /// Whether the cookie carries `Secure`.
    pub fn secure(&self) -> bool {
        self.secure == Some(true)
    }

    /// Whether the cookie carries `HttpOnly`.
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// The `Domain` attribute.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The `Path` attribute.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `SameSite` attribute.
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// The `Priority` attribute.
    pub fn priority(&self) -> Option<Priority> {
        self.priority
    }

    /// Whether the cookie carries `Partitioned`.
    pub fn partitioned(&self) -> bool {
        self.partitioned == Some(true)
    }

    /// An allocation-free stand-in, for unit tests.
    #[cfg(test)]
    pub(crate) fn placeholder() -> Self {
        SessionCookie {
            original_max_age: None,
            partitioned: None,
            priority: None,
            expires: None,
            secure: None,
            http_only: true,
            domain: None,
            path: Cow::Borrowed(""),
            same_site: None,
        }
    }

    /// `originalMaxAge` in milliseconds.
    pub(crate) fn original_max_age_ms(&self) -> Option<i64> {
        self.original_max_age
    }

    /// Whether the cookie outlives the browser session (it has an expiry).
    pub(crate) fn is_persistent(&self) -> bool {
        self.expires.is_some()
    }

    /// express-session's `touch()`/`resetMaxAge()`: expires = now + originalMaxAge, kept
    /// within a JavaScript `Date`'s range so that the stored record reads back.
    pub(crate) fn reset_expiry(&mut self, now_ms: i64) {
        self.expires = self
            .original_max_age
            .map(|ms| clamp_date(now_ms.saturating_add(ms)));
    }

    /// express-session's `cookie.maxAge = ms` (or `null`): sets both the lifetime and the
    /// expiry.
    pub(crate) fn set_max_age(&mut self, max_age: Option<Duration>, now_ms: i64) {
        self.original_max_age = max_age.map(duration_ms);
        self.reset_expiry(now_ms);
    }

    /// Appends `name=s%3A`, the signed ID percent-encoded (`signed` appends it), and
    /// the attributes, in Node's order.
    pub(crate) fn render(&self, name: &str, signed: impl FnOnce(&mut String), out: &mut String) {
        out.push_str(name);
        out.push_str("=s%3A");
        signed(out);
        self.render_attributes(self.expires, out);
    }

    /// A `Set-Cookie` value that makes the browser drop the cookie.
    pub(crate) fn render_removal(&self, name: &str, out: &mut String) {
        out.push_str(name);
        out.push('=');
        self.render_attributes(Some(0), out);
    }

    fn render_attributes(&self, expires: Option<i64>, out: &mut String) {
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        out.push_str("; Path=");
        out.push_str(&self.path);
        if let Some(ms) = expires {
            out.push_str("; Expires=");
            format_http(ms, out);
        }
        let flags = [
            (self.http_only, "; HttpOnly"),
            (self.secure(), "; Secure"),
            (self.partitioned(), "; Partitioned"),
        ];
        flags
            .iter()
            .filter(|(on, _)| *on)
            .for_each(|(_, text)| out.push_str(text));
        if let Some(p) = self.priority {
            out.push_str(["; Priority=Low", "; Priority=Medium", "; Priority=High"][p as usize]);
        }
        if let Some(s) = self.same_site {
            out.push_str(["; SameSite=Strict", "; SameSite=Lax", "; SameSite=None"][s as usize]);
        }
    }
}

/// The value of the first cookie called `name` in a `Cookie` header, as Node's `cookie`
/// package reads it: pairs split on `;`, names and values trimmed, one pair of
/// surrounding double quotes removed, the first occurrence winning.
pub(crate) fn find_cookie<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut rest = Some(header);
    let pairs = std::iter::from_fn(|| {
        let text = rest?;
        let end = find_semicolon(text);
        rest = end.map(|at| &text[at + 1..]);
        Some(&text[..end.unwrap_or(text.len())])
    });
    pairs.into_iter().find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        if pair[..eq].trim_ascii() != name.as_bytes() {
            return None;
        }
        let value = pair[eq + 1..].trim_ascii();
        let unquoted = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""));
        Some(unquoted.unwrap_or(value))
    })
}

/// The first `;` in `text`, eight bytes at a time: a session cookie's value is long, and
/// scanning it byte by byte was the largest part of reading the cookie.
fn find_semicolon(text: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SEMIS: u64 = u64::from_ne_bytes([b';'; 8]);
    let mut chunks = text.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word) ^ SEMIS;
        // A zero byte in `x` (a `;` in the chunk) sets its high bit here.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        offset += 8;
    }
    text[offset..]
        .iter()
        .position(|&b| b == b';')
        .map(|at| offset + at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::encode_uri_component;

    const NOW: i64 = 1_795_461_900_852;

    #[test]
    fn default_cookie_renders_like_express_session() {
        let cookie = CookieOptions::default().new_cookie(false, NOW);
        let mut out = String::new();
        let signed = |out: &mut String| encode_uri_component("abc+/.sig=", out);
        cookie.render("connect.sid", signed, &mut out);
        assert_eq!(
            out,
            "connect.sid=s%3Aabc%2B%2F.sig%3D; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn every_attribute_renders_in_node_order() {
        let cookie = CookieOptions::default()
            .domain("example.com")
            .path("/app")
            .max_age(Duration::from_secs(60))
            .secure(Secure::Always)
            .partitioned(true)
            .priority(Priority::High)
            .same_site(SameSite::Strict)
            .new_cookie(false, NOW);
        let mut out = String::new();
        cookie.render("sid", |out| out.push_str("v.s"), &mut out);
        assert_eq!(
            out,
            "sid=s%3Av.s; Domain=example.com; Path=/app; Expires=Mon, 23 Nov 2026 19:26:00 GMT; \
             HttpOnly; Secure; Partitioned; Priority=High; SameSite=Strict"
        );
    }

    #[test]
    fn stored_form_matches_express_session_field_order() {
        let cookie = CookieOptions::default()
            .max_age(Duration::from_secs(60))
            .partitioned(true)
            .priority(Priority::High)
            .domain("example.com")
            .new_cookie(true, NOW);
        let json = serde_json::to_string(&cookie).expect("serializes");
        assert_eq!(
            json,
            r#"{"originalMaxAge":60000,"partitioned":true,"priority":"high","expires":"2026-11-23T19:26:00.852Z","secure":true,"httpOnly":true,"domain":"example.com","path":"/","sameSite":"lax"}"#
        );
        assert_eq!(
            serde_json::from_str::<SessionCookie>(&json).expect("parses"),
            cookie
        );
    }

    #[test]
    fn express_defaults_parse() {
        let c: SessionCookie = serde_json::from_str(
            r#"{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}"#,
        )
        .expect("parses");
        assert_eq!(
            (c.max_age(), c.secure(), c.same_site(), c.path()),
            (None, false, None, "/")
        );
        let c: SessionCookie = serde_json::from_str(r#"{"sameSite":true}"#).expect("parses");
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        assert!(serde_json::from_str::<SessionCookie>(r#"{"expires":"soon"}"#).is_err());
    }

    #[test]
    fn paths_and_dates_parse_without_a_copy_and_root_is_shared() {
        let parse = |json: &str| serde_json::from_str::<SessionCookie>(json);
        let root = parse(r#"{"path":"/","expires":"2026-11-23T19:25:00.852Z"}"#).expect("parses");
        assert!(matches!(root.path, Cow::Borrowed("/")), "{:?}", root.path);
        assert_eq!(root.expires, Some(NOW));
        // An escaped string comes through the parser's scratch buffer.
        let app = parse(r#"{"path":"\/app","expires":null}"#).expect("parses");
        assert_eq!((app.path(), app.expires), ("/app", None));
        assert_eq!(parse(r#"{"path":"/app"}"#).expect("parses").path(), "/app");
        for bad in [r#"{"path":null}"#, r#"{"path":7}"#, r#"{"expires":7}"#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let options = CookieOptions::default().path("/".to_owned());
        assert!(matches!(options.path, Cow::Borrowed("/")));
    }

    #[test]
    fn the_first_cookie_of_that_name_wins() {
        let header = b"a=1; connect.sid = \"s%3Afirst\" ;connect.sid=s%3Asecond; b";
        assert_eq!(find_cookie(header, "connect.sid"), Some(&b"s%3Afirst"[..]));
        assert_eq!(find_cookie(header, "a"), Some(&b"1"[..]));
        assert_eq!(find_cookie(header, "b"), None);
        assert_eq!(find_cookie(b"", "a"), None);
        assert_eq!(find_cookie(b";;a=1;", "a"), Some(&b"1"[..]));
    }

    #[test]
    fn semicolons_are_found_at_every_position() {
        for len in 0..40 {
            let mut text = vec![b'x'; len];
            assert_eq!(find_semicolon(&text), None, "{len}");
            for at in (0..len).rev() {
                text[at] = b';';
                assert_eq!(find_semicolon(&text), Some(at), "{len} {at}");
            }
            // Bytes next to `;` in value (`:` and `<`) and high bytes are not taken for it.
            let near: Vec<u8> = (0..len).map(|i| [b':', b'<', 0xBB, 0][i % 4]).collect();
            assert_eq!(find_semicolon(&near), None, "{len}");
        }
    }

    #[test]
    fn touch_moves_expiry_by_the_original_max_age() {
        let mut cookie = CookieOptions::default()
            .max_age(Duration::from_secs(10))
            .new_cookie(false, 0);
        cookie.reset_expiry(5_000);
        assert_eq!(cookie.expires_unix_ms(), Some(15_000));
        cookie.set_max_age(None, 6_000);
        assert_eq!(
            (cookie.expires_unix_ms(), cookie.original_max_age()),
            (None, None)
        );
    }

    /// Regression (found by fuzzing): `set_max_age(Duration::MAX)` stored an expiry in
    /// the year 292278994 that no record parser reads back, so the session was lost on
    /// the next request.
    #[test]
    fn a_huge_max_age_still_stores_a_readable_expiry() {
        let huge = [Duration::MAX, Duration::from_millis(i64::MAX as u64)];
        for max_age in huge {
            let mut cookie = CookieOptions::default()
                .max_age(max_age)
                .new_cookie(false, NOW);
            assert_eq!(cookie.expires_unix_ms(), Some(crate::encoding::MAX_DATE_MS));
            cookie.set_max_age(Some(max_age), NOW);
            cookie.reset_expiry(NOW);
            let json = serde_json::to_string(&cookie).expect("serializes");
            let back: SessionCookie = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, cookie, "{json}");
        }
        let long_ago = UNIX_EPOCH.checked_sub(Duration::from_secs(i64::MAX as u64 / 2));
        if let Some(at) = long_ago {
            let cookie = CookieOptions::default().expires(at).new_cookie(false, NOW);
            assert_eq!(cookie.original_max_age(), Some(Duration::ZERO));
        }
    }
}
