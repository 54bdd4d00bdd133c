//! Session ID generation: 24 bytes from the operating system's CSPRNG, base64url, 32
//! characters (192 bits), as express-session's `uid-safe` makes them.

use ring::rand::{SecureRandom, SystemRandom};

use crate::encoding::base64_url;

/// Number of random bytes in a generated session ID.
const ID_BYTES: usize = 24;

/// A new random session ID: 32 base64url characters carrying 192 bits of entropy.
///
/// This is the default generator; [`SessionMiddlewareBuilder::genid`] replaces it.
/// Returns `None` only if the operating system's random source fails.
///
/// [`SessionMiddlewareBuilder::genid`]: crate::SessionMiddlewareBuilder::genid
pub fn generate_id() -> Option<String> {
    let mut bytes = [0u8; ID_BYTES];
    SystemRandom::new().fill(&mut bytes).ok()?;
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
