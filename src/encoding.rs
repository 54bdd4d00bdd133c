//! Small byte-level codecs shared by the cookie, signature and ID code: base64 without
//! padding, Node's `encodeURIComponent`/`decodeURIComponent`, and the two date formats
//! express-session uses (ISO 8601 in records, IMF-fixdate in `Expires`).

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 with the standard alphabet, `=` padding stripped (as cookie-signature writes it).
pub(crate) fn base64_standard(input: &[u8], out: &mut String) {
    encode(input, STANDARD, out)
}

/// Base64url without padding (as uid-safe writes session IDs).
pub(crate) fn base64_url(input: &[u8], out: &mut String) {
    encode(input, URL_SAFE, out)
}

/// Base64 with the standard alphabet, no padding, of at most 48 bytes, written into
/// `buf`: no allocation.
pub(crate) fn base64_standard_block<'b>(input: &[u8], buf: &'b mut [u8; 64]) -> &'b str {
    encode_block(input, STANDARD, buf)
}

fn encode(input: &[u8], alphabet: &[u8; 64], out: &mut String) {
    // Blocks of 48 bytes go through a stack buffer into `out` with one `push_str`:
    // pushing char by char checked capacity and encoded UTF-8 for every character.
    let mut buf = [0u8; 64];
    for block in input.chunks(48) {
        out.push_str(encode_block(block, alphabet, &mut buf));
    }
}

/// One block of at most 48 bytes (64 characters).
fn encode_block<'b>(block: &[u8], alphabet: &[u8; 64], buf: &'b mut [u8; 64]) -> &'b str {
    debug_assert!(block.len() <= 48, "a block is at most 48 bytes");
    let mut groups = block.chunks_exact(3);
    let mut len = 0;
    for (g, text) in (&mut groups).zip(buf.chunks_exact_mut(4)) {
        let n = u32::from(g[0]) << 16 | u32::from(g[1]) << 8 | u32::from(g[2]);
        text.copy_from_slice(&[18, 12, 6, 0].map(|s| alphabet[(n >> s & 63) as usize]));
        len += 4;
    }
    let tail = groups.remainder();
    if !tail.is_empty() {
        let n = tail
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for (i, slot) in buf[len..=len + tail.len()].iter_mut().enumerate() {
            *slot = alphabet[(n >> (18 - 6 * i) & 63) as usize];
        }
        len += tail.len() + 1;
    }
    // Always ASCII: both alphabets are.
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

const INVALID: u8 = 0xFF;

/// Byte -> 6-bit value of the standard alphabet, [`INVALID`] elsewhere.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[STANDARD[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Strict decoding of unpadded standard base64: any character outside the alphabet, a
/// padding character or non-zero trailing bits is rejected, so that exactly one text
/// decodes to a given byte string.
pub(crate) fn decode_base64_standard(input: &[u8], out: &mut Vec<u8>) -> bool {
    if input.len() % 4 == 1 {
        return false;
    }
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &c in input {
        let v = DECODE[usize::from(c)];
        if v == INVALID {
            return false;
        }
        acc = (acc << 6 | u32::from(v)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    acc & ((1 << bits) - 1) == 0
}

/// Percent-encodes like JavaScript's `encodeURIComponent` (what Node's `cookie` package
/// applies to cookie values).
pub(crate) fn encode_uri_component(input: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = input.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if KEPT_BY_URI_COMPONENT[usize::from(b)] {
            continue;
        }
        // Runs of kept characters go in whole. A run is ASCII, so its ends are char
        // boundaries; an empty one may sit inside a multi-byte character (`get` skips it).
        if let Some(run) = input.get(start..i) {
            out.push_str(run);
        }
        let escaped = [b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]];
        out.extend(escaped.map(char::from));
        start = i + 1;
    }
    if let Some(rest) = input.get(start..) {
        out.push_str(rest);
    }
}

/// The bytes `encodeURIComponent` leaves as they are: ASCII letters, digits and
/// `-_.!~*'()`.
const KEPT_BY_URI_COMPONENT: [bool; 256] = {
    let mut kept = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        kept[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        b += 1;
    }
    kept
};

/// Percent-decodes a cookie value into text. Like Node's `cookie.parse`, a value that
/// does not decode (a bad escape, or bytes that are not UTF-8 once decoded) is kept as it
/// was; `None` when even that is not UTF-8. Validates UTF-8 once.
pub(crate) fn decode_uri_component(input: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let raw = || std::str::from_utf8(input).ok().map(Into::into);
    if !input.contains(&b'%') {
        return raw();
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = |j: usize| input.get(j).and_then(|&c| char::from(c).to_digit(16));
            match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return raw(),
            }
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Into::into).or_else(raw)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    system_time_ms(std::time::SystemTime::now())
}

/// Milliseconds since the epoch (0 before it).
pub(crate) fn system_time_ms(t: std::time::SystemTime) -> i64 {
    let since = t.duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time `ms` milliseconds after the epoch (the epoch for negative values).
pub(crate) fn ms_system_time(ms: i64) -> std::time::SystemTime {
    let after = std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    std::time::UNIX_EPOCH + after
}

/// Civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Day count since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    secs_of_day: i64,
    millis: i64,
    weekday: usize,
}

fn split(ms: i64) -> Parts {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        secs_of_day: rest / 1000,
        millis: rest % 1000,
        weekday: (days + 4).rem_euclid(7) as usize,
    }
}

/// The range of a JavaScript `Date`: 100,000,000 days either side of the epoch.
pub(crate) const MAX_DATE_MS: i64 = 8_640_000_000_000_000;

/// `ms` moved into the range of a JavaScript `Date`, the range that [`format_iso`] and
/// [`parse_iso`] agree on (an expiry computed from a huge max age lands on its edge).
pub(crate) fn clamp_date(ms: i64) -> i64 {
    ms.clamp(-MAX_DATE_MS, MAX_DATE_MS)
}

/// `2026-11-23T19:25:00.852Z`, as JavaScript's `Date#toISOString`, including its
/// six-digit signed years (`+275760-09-13T00:00:00.000Z`) outside 0000-9999. Instants
/// outside a JavaScript `Date`'s range are clamped to it.
pub(crate) fn format_iso(ms: i64) -> String {
    let p = split(clamp_date(ms));
    let s = p.secs_of_day;
    let year = if (0..=9999).contains(&p.year) {
        format!("{:04}", p.year)
    } else {
        format!("{}{:06}", if p.year < 0 { '-' } else { '+' }, p.year.abs())
    };
    format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.month,
        p.day,
        s / 3600,
        s / 60 % 60,
        s % 60,
        p.millis
    )
}

/// `Thu, 01 Jan 1970 00:00:00 GMT`, as JavaScript's `Date#toUTCString`.
pub(crate) fn format_http(ms: i64, out: &mut String) {
    use std::fmt::Write;
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let p = split(clamp_date(ms));
    let s = p.secs_of_day;
    let month = MONTHS[p.month as usize - 1];
    let _ = write!(
        out,
        "{}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[p.weekday],
        p.day,
        p.year,
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]` (or a six-digit signed year, `±YYYYYY-MM-...`)
/// followed by `Z` or `±HH:MM` into Unix milliseconds. Like JavaScript's `Date.parse`,
/// it rejects `-000000` and instants outside a `Date`'s range.
pub(crate) fn parse_iso(s: &str) -> Option<i64> {
    let digits = |d: &[u8]| -> Option<i64> {
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0, |n, c| n * 10 + i64::from(c - b'0')))
    };
    let (year, s) = match s.as_bytes().first() {
        Some(&sign @ (b'+' | b'-')) => {
            let year = digits(s.as_bytes().get(1..7)?)?;
            if sign == b'-' && year == 0 {
                return None;
            }
            (if sign == b'-' { -year } else { year }, &s[7..])
        }
        _ => (digits(s.as_bytes().get(0..4)?)?, &s[4..]),
    };
    // `s` is now `-MM-DDTHH:MM:SS...`.
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| digits(b.get(r)?);
    let seps = [(0, b'-'), (3, b'-'), (6, b'T'), (9, b':'), (12, b':')];
    if seps.iter().any(|&(i, c)| b.get(i) != Some(&c)) {
        return None;
    }
    let (month, day) = (num(1..3)?, num(4..6)?);
    let (hour, min, sec) = (num(7..9)?, num(10..12)?, num(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let (millis, rest) = parse_fraction(&s[15..])?;
    let offset_min = parse_offset(rest)?;
    let days = days_from_civil(year, month as u32, day as u32);
    let ms = ((days * 86_400 + hour * 3600 + min * 60 + sec - offset_min * 60) * 1000) + millis;
    (-MAX_DATE_MS..=MAX_DATE_MS).contains(&ms).then_some(ms)
}

fn parse_fraction(s: &str) -> Option<(i64, &str)> {
    let Some(frac) = s.strip_prefix('.') else {
        return Some((0, s));
    };
    let end = frac
        .bytes()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(frac.len());
    if end == 0 {
        return None;
    }
    let digits = frac[..end].bytes().chain(std::iter::repeat(b'0')).take(3);
    Some((
        digits.fold(0, |n, c| n * 10 + i64::from(c - b'0')),
        &frac[end..],
    ))
}

fn parse_offset(s: &str) -> Option<i64> {
    if s == "Z" {
        return Some(0);
    }
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if b.len() != 6 || b[3] != b':' || !b[1..3].iter().chain(&b[4..6]).all(u8::is_ascii_digit) {
        return None;
    }
    let h = i64::from((b[1] - b'0') * 10 + (b[2] - b'0'));
    let m = i64::from((b[4] - b'0') * 10 + (b[5] - b'0'));
    Some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_rejects_non_canonical_text() {
        for len in 0..120 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut text = String::new();
            base64_standard(&bytes, &mut text);
            let mut back = Vec::new();
            assert!(decode_base64_standard(text.as_bytes(), &mut back));
            assert_eq!(back, bytes);
        }
        assert!(!decode_base64_standard(b"AB=", &mut Vec::new()));
        assert!(
            !decode_base64_standard(b"AF", &mut Vec::new()),
            "trailing bits set"
        );
        assert!(!decode_base64_standard(b"A", &mut Vec::new()));
    }

    #[test]
    fn uri_component_matches_javascript() {
        let mut out = String::new();
        encode_uri_component("s:abc+/=.x~*'()!%é", &mut out);
        assert_eq!(out, "s%3Aabc%2B%2F%3D.x~*'()!%25%C3%A9");
        // Multi-byte characters at either end and next to kept runs, against a
        // byte-by-byte reference.
        let reference = |s: &str| {
            s.bytes()
                .map(|b| match KEPT_BY_URI_COMPONENT[usize::from(b)] {
                    true => char::from(b).to_string(),
                    false => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        for text in ["é", "aé", "éa", "日本x", "x😀", "😀😀", "a b", ""] {
            let mut out = String::new();
            encode_uri_component(text, &mut out);
            assert_eq!(out, reference(text), "{text}");
        }
        let decode = |s: &str| decode_uri_component(s.as_bytes()).map(|c| c.into_owned());
        assert_eq!(decode(&out).as_deref(), Some("s:abc+/=.x~*'()!%é"));
        assert_eq!(decode("%zz%3A").as_deref(), Some("%zz%3A"));
        assert_eq!(
            decode("%FF%FE").as_deref(),
            Some("%FF%FE"),
            "invalid UTF-8 is kept raw"
        );
        assert_eq!(
            decode_uri_component(b"\xff%3A"),
            None,
            "raw bytes that are not UTF-8"
        );
    }

    #[test]
    fn dates_format_and_parse_like_javascript() {
        assert_eq!(format_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso(1_795_461_900_852), "2026-11-23T19:25:00.852Z");
        let mut http = String::new();
        format_http(0, &mut http);
        assert_eq!(http, "Thu, 01 Jan 1970 00:00:00 GMT");
        http.clear();
        format_http(1_795_461_900_852, &mut http);
        assert_eq!(http, "Mon, 23 Nov 2026 19:25:00 GMT");
        assert_eq!(
            parse_iso("2026-11-23T19:25:00.852Z"),
            Some(1_795_461_900_852)
        );
        assert_eq!(
            parse_iso("2026-11-23T20:25:00.852+01:00"),
            Some(1_795_461_900_852)
        );
        assert_eq!(parse_iso("2026-11-23T19:25:00Z"), Some(1_795_461_900_000));
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "2026-11-23T19:25:00",
            "2026-11-23T19:25:00.Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    /// Regression (found by fuzzing): an expiry past 9999 was written as
    /// `292278994-08-17T...`, which `parse_iso` rejects, so a session given a huge max
    /// age could never be read back. Years outside 0000-9999 now use JavaScript's
    /// six-digit signed form, and both sides stay within a `Date`'s range.
    #[test]
    fn years_outside_0000_to_9999_round_trip_like_javascript() {
        assert_eq!(format_iso(MAX_DATE_MS), "+275760-09-13T00:00:00.000Z");
        assert_eq!(format_iso(-MAX_DATE_MS), "-271821-04-20T00:00:00.000Z");
        assert_eq!(
            format_iso(i64::MAX),
            "+275760-09-13T00:00:00.000Z",
            "clamped"
        );
        assert_eq!(
            format_iso(i64::MIN),
            "-271821-04-20T00:00:00.000Z",
            "clamped"
        );
        let year_minus_one = parse_iso("0000-01-01T00:00:00+01:00").expect("parses");
        assert_eq!(format_iso(year_minus_one), "-000001-12-31T23:00:00.000Z");
        assert_eq!(
            parse_iso("+010000-01-01T00:00:00.000Z"),
            Some(253_402_300_800_000)
        );
        assert_eq!(
            format_iso(253_402_300_800_000),
            "+010000-01-01T00:00:00.000Z"
        );
        for bad in [
            "-000000-01-01T00:00:00Z",
            "+275760-09-13T00:00:00.001Z",
            "-271821-04-19T23:59:59.999Z",
            "+27576-09-13T00:00:00Z",
            "+",
            "-",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
        let mut ms = -MAX_DATE_MS;
        while ms <= MAX_DATE_MS {
            assert_eq!(parse_iso(&format_iso(ms)), Some(ms), "{}", format_iso(ms));
            ms += 86_399_999_999_937;
        }
        let mut http = String::new();
        format_http(i64::MAX, &mut http);
        assert_eq!(http, "Sat, 13 Sep 275760 00:00:00 GMT");
    }
}
