//! [`Verified`]: the session cookies one worker has already verified, so that a
//! returning browser's cookie costs a table lookup instead of decoding and an HMAC.
//!
//! Only cookies that verified are kept, under their exact raw value; a hit compares the
//! whole value in constant time, so the table answers nothing about a value that is not
//! in it (a forged or tampered cookie always takes the full, constant-time HMAC check).
//! The table is per worker (no lock) and bounded: when full it starts over.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Entries a worker keeps (about 150 bytes each).
const CAPACITY: usize = 4096;

/// A raw cookie value whose equality takes the same time whatever the bytes.
struct RawCookie(Box<[u8]>);

impl PartialEq for RawCookie {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.len() == b.len() && a.iter().zip(b.iter()).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for RawCookie {}

impl Hash for RawCookie {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// The session ID a raw cookie value carries, and whether an older secret signed it.
#[derive(Debug, Default)]
pub(crate) struct Verified(HashMap<RawCookie, (String, bool)>);

impl std::fmt::Debug for RawCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawCookie(..)")
    }
}

impl Verified {
    /// The ID `raw` was verified to carry, or `verify(raw)` (kept when it succeeds).
    pub(crate) fn get_or_verify(
        &mut self,
        raw: &[u8],
        verify: impl FnOnce(&[u8]) -> Option<(String, bool)>,
    ) -> Option<(String, bool)> {
        let key = RawCookie(raw.into());
        if let Some(found) = self.0.get(&key) {
            return Some(found.clone());
        }
        let verified = verify(raw)?;
        if self.0.len() >= CAPACITY {
            self.0.clear();
        }
        self.0.insert(key, verified.clone());
        Some(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_value_is_not_checked_again_and_a_failed_one_always_is() {
        let mut table = Verified::default();
        let mut checks = 0;
        let mut check = |raw: &[u8]| {
            checks += 1;
            (raw == b"good").then(|| ("id".to_owned(), false))
        };
        assert_eq!(
            table.get_or_verify(b"good", &mut check),
            Some(("id".to_owned(), false))
        );
        assert_eq!(
            table.get_or_verify(b"good", &mut check),
            Some(("id".to_owned(), false))
        );
        assert_eq!(table.get_or_verify(b"bad", &mut check), None);
        assert_eq!(table.get_or_verify(b"bad", &mut check), None);
        assert_eq!(table.get_or_verify(b"goo", &mut check), None);
        assert_eq!(
            checks, 4,
            "one check for the good value, one per bad attempt"
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = Verified::default();
        for i in 0..CAPACITY + 10 {
            let raw = format!("cookie-{i}");
            table.get_or_verify(raw.as_bytes(), |_| Some((i.to_string(), false)));
        }
        assert!(table.0.len() <= CAPACITY);
    }
}
