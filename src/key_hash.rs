//! [`KeyHash`]: a seeded hash for the in-process tables that session traffic fills (the
//! memory store's IDs, the parsed-record cache's stored bytes): one multiply per eight
//! bytes, where std's SipHash costs about five times as much per lookup. The seed is
//! random per table, so stored values chosen to collide cannot be computed ahead.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds the seeded [`KeyHasher`]s of one table (the seed is random per table).
#[derive(Clone, Copy)]
pub(crate) struct KeyHash {
    seed: u64,
}

impl KeyHash {
    pub(crate) fn random() -> Self {
        KeyHash {
            seed: RandomState::new().build_hasher().finish(),
        }
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.seed)
    }
}

/// A hash state: each word folds in with a 64×64→128-bit multiply whose halves are
/// xored, which mixes every input bit into the low bits the table's buckets use.
pub(crate) struct KeyHasher(u64);

fn mix(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        mix(self.0, K)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ bytes.len() as u64;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0; 8];
            w.copy_from_slice(word);
            h = mix(h ^ u64::from_le_bytes(w), K);
        }
        let mut rest = [0; 8];
        rest[..words.remainder().len()].copy_from_slice(words.remainder());
        self.0 = mix(h ^ u64::from_le_bytes(rest), K);
    }

    fn write_u8(&mut self, b: u8) {
        self.0 = mix(self.0 ^ u64::from(b), K);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_ids_hash_alike_and_near_ones_apart() {
        let hash = KeyHash::random();
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(hash.hash_one(id), hash.hash_one(id.to_owned()));
        let near = "0123456789abcdef0123456789abcdeg";
        assert_ne!(hash.hash_one(id), hash.hash_one(near));
        assert_ne!(hash.hash_one("ab"), hash.hash_one("ab\0"), "length counts");
        // The bucket bits (the low ones) differ for IDs that differ in one byte.
        let buckets: std::collections::HashSet<u64> = (0..64u8)
            .map(|i| hash.hash_one(format!("{id}{}", char::from(b'0' + i % 64))) & 0xff)
            .collect();
        assert!(buckets.len() > 32, "{} distinct low bytes", buckets.len());
    }

    #[test]
    fn stores_do_not_share_a_seed() {
        let (a, b) = (KeyHash::random(), KeyHash::random());
        assert_ne!(a.hash_one("same id"), b.hash_one("same id"));
    }
}
