//! Session ID generation: 24 bytes from the operating system's CSPRNG, base64url, 32
//! characters (192 bits), as express-session's `uid-safe` makes them.

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

use crate::encoding::base64_url;

/// Number of random bytes in a generated session ID.
const ID_BYTES: usize = 24;
/// IDs' worth of random bytes fetched from the operating system at once.
const BATCH: usize = 64;

/// Random bytes read from the OS in one call and handed out once each, then wiped: one
/// `getrandom` system call per 64 IDs instead of one per ID.
struct Pool {
    bytes: [u8; ID_BYTES * BATCH],
    next: usize,
}

impl Pool {
    fn take(&mut self, out: &mut [u8; ID_BYTES]) -> Option<()> {
        if self.next == self.bytes.len() {
            SystemRandom::new().fill(&mut self.bytes).ok()?;
            self.next = 0;
        }
        let chunk = &mut self.bytes[self.next..self.next + ID_BYTES];
        out.copy_from_slice(chunk);
        chunk.fill(0);
        self.next += ID_BYTES;
        Some(())
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; ID_BYTES * BATCH], next: ID_BYTES * BATCH })
    };
}

/// 24 bytes from the operating system's CSPRNG (through the per-thread pool).
fn random_bytes() -> Option<[u8; ID_BYTES]> {
    let mut bytes = [0u8; ID_BYTES];
    let pooled = POOL.try_with(|pool| {
        pool.try_borrow_mut()
            .ok()
            .and_then(|mut p| p.take(&mut bytes))
    });
    match pooled {
        Ok(Some(())) => Some(bytes),
        _ => SystemRandom::new().fill(&mut bytes).ok().map(|()| bytes),
    }
}

/// A new random session ID: 32 base64url characters carrying 192 bits of entropy.
///
/// The bytes come from the operating system's CSPRNG, fetched 64 IDs' worth at a time
/// per thread and wiped once handed out. (A process that `fork`s without `exec` would
/// share the unused part with its child; servers that fork workers should use
/// [`genid`](crate::SessionMiddlewareBuilder::genid) with their own generator.)
///
/// This is the default generator; [`SessionMiddlewareBuilder::genid`] replaces it.
/// Returns `None` only if the operating system's random source fails.
///
/// [`SessionMiddlewareBuilder::genid`]: crate::SessionMiddlewareBuilder::genid
pub fn generate_id() -> Option<String> {
    let bytes = random_bytes()?;
    let mut id = String::with_capacity(32);
    base64_url(&bytes, &mut id);
    Some(id)
}

/// A random UUIDv4 in its hyphenated form, a ready [`genid`] preset for applications
/// that want UUID session IDs (122 random bits).
///
/// ```
/// let id = actix_express_session::uuid_v4_id();
/// assert_eq!(id.len(), 36);
/// ```
///
/// [`genid`]: crate::SessionMiddlewareBuilder::genid
pub fn uuid_v4_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_url_safe_characters_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| generate_id().expect("the OS random source works"))
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }
}
