//! [`Verified`]: the session cookies one worker has already verified, so that a
//! returning browser's cookie costs a table lookup instead of decoding and an HMAC.
//!
//! Only cookies that verified are kept, under their exact raw value; a hit compares the
//! whole value in constant time, so the table answers nothing about a value that is not
//! in it (a forged or tampered cookie always takes the full, constant-time HMAC check).
//! The table is per worker (no lock, no allocation on a hit) and bounded: when full it
//! starts over.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Entries a worker keeps (about 150 bytes each).
const CAPACITY: usize = 4096;

/// A cookie that verified: its exact raw value, the session ID it carries, and whether
/// an older secret signed it.
struct Entry {
    raw: Box<[u8]>,
    id: String,
    resign: bool,
}

/// The verified cookies of one worker, by a hash of the raw value (one entry per hash:
/// a collision replaces, as a cache may).
#[derive(Default)]
pub(crate) struct Verified(HashMap<u64, Entry, BuildHasherDefault<Passthrough>>);

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verified({} cookies)", self.0.len())
    }
}

impl Verified {
    /// The ID `raw` was verified to carry, or `verify(raw)` (kept when it succeeds).
    pub(crate) fn get_or_verify(
        &mut self,
        raw: &[u8],
        verify: impl FnOnce(&[u8]) -> Option<(String, bool)>,
    ) -> Option<(String, bool)> {
        let hash = fold(raw);
        if let Some(entry) = self.0.get(&hash).filter(|e| same(&e.raw, raw)) {
            return Some((entry.id.clone(), entry.resign));
        }
        let (id, resign) = verify(raw)?;
        if self.0.len() >= CAPACITY {
            self.0.clear();
        }
        let entry = Entry {
            raw: raw.into(),
            id: id.clone(),
            resign,
        };
        self.0.insert(hash, entry);
        Some((id, resign))
    }
}

/// Equality that takes the same time whatever the bytes (the lengths are not secret),
/// eight bytes at a time.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a8.remainder().iter().zip(b8.remainder());
    let diff = a8.zip(b8).fold(0, |acc, (x, y)| acc | (word(x) ^ word(y)));
    tail.fold(diff, |acc, (x, y)| acc | u64::from(x ^ y)) == 0
}

/// Eight bytes as one word.
fn word(chunk: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(chunk);
    u64::from_le_bytes(bytes)
}

/// A fast hash of the raw value. No key is needed against flooding: only cookies that
/// verified are stored, and their signatures are HMAC outputs nobody can choose.
fn fold(raw: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut chunks = raw.chunks_exact(8);
    let mut h = raw.len() as u64;
    for chunk in &mut chunks {
        h = (h.rotate_left(5) ^ word(chunk)).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h
}

/// The map's keys are hashes already.
#[derive(Default)]
pub(crate) struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fold(bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
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
        let good = Some(("id".to_owned(), false));
        assert_eq!(table.get_or_verify(b"good", &mut check), good);
        assert_eq!(table.get_or_verify(b"good", &mut check), good);
        assert_eq!(table.get_or_verify(b"bad", &mut check), None);
        assert_eq!(table.get_or_verify(b"bad", &mut check), None);
        assert_eq!(table.get_or_verify(b"goo", &mut check), None);
        assert_eq!(
            checks, 4,
            "one check for the good value, one per bad attempt"
        );
    }

    #[test]
    fn the_table_is_bounded_and_equality_is_exact() {
        let mut table = Verified::default();
        for i in 0..CAPACITY + 10 {
            let raw = format!("cookie-{i}");
            table.get_or_verify(raw.as_bytes(), |_| Some((i.to_string(), false)));
        }
        assert!(table.0.len() <= CAPACITY);
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab"));
        let long = b"s%3Aabcdefghijklmnopqrstuvwxyz012345.signature";
        for at in 0..long.len() {
            let mut other = *long;
            other[at] ^= 1;
            assert!(!same(long, &other), "a change at byte {at}");
        }
        assert!(same(long, &long.clone()));
        assert_ne!(fold(b"abcdefgh1"), fold(b"abcdefgh2"));
    }
}
