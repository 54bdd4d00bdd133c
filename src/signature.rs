//! Cookie signing, wire-compatible with Node's `cookie-signature`: `value.` followed by
//! the unpadded standard base64 of HMAC-SHA256(secret, value). A list of secrets signs
//! with the first and accepts any, which is how secrets are rotated.

use ring::hmac;

use crate::encoding::{
    base64_standard, base64_standard_block, decode_base64_standard, encode_uri_component,
};

/// Length of an unpadded base64 HMAC-SHA256 tag.
const SIGNATURE_LEN: usize = 43;

/// The secrets that sign and verify session cookies.
///
/// Built from a `&str`, a `String`, or a list of either; the first secret signs, every
/// secret verifies. An empty list (or an empty secret) is rejected by
/// [`SessionMiddlewareBuilder::build`](crate::SessionMiddlewareBuilder::build).
/// `Debug` never prints the secrets themselves.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// Number of secrets in the list.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets([{} redacted])", self.0.len())
    }
}

impl From<&str> for Secrets {
    fn from(s: &str) -> Self {
        Secrets(vec![s.to_owned()])
    }
}

impl From<String> for Secrets {
    fn from(s: String) -> Self {
        Secrets(vec![s])
    }
}

impl<T: Into<String>> From<Vec<T>> for Secrets {
    fn from(list: Vec<T>) -> Self {
        Secrets(list.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<String>, const N: usize> From<[T; N]> for Secrets {
    fn from(list: [T; N]) -> Self {
        Secrets(list.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<String> + Clone> From<&[T]> for Secrets {
    fn from(list: &[T]) -> Self {
        Secrets(list.iter().cloned().map(Into::into).collect())
    }
}

/// Prepared HMAC keys: the signer is the first, all of them verify.
#[derive(Clone)]
pub(crate) struct Keys(Vec<hmac::Key>);

impl Keys {
    /// Prepares one key per secret; the caller has checked the list is not empty.
    pub(crate) fn new(secrets: &Secrets) -> Self {
        Keys(
            secrets
                .iter()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()))
                .collect(),
        )
    }

    /// Appends `value.signature` percent-encoded as `encodeURIComponent` does it, as
    /// the cookie carries it, with no copy of the signed value in between.
    pub(crate) fn sign_uri_encoded(&self, value: &str, out: &mut String) {
        encode_uri_component(value, out);
        out.push('.');
        if let Some(key) = self.0.first() {
            let mut text = [0; 64];
            let tag = hmac::sign(key, value.as_bytes());
            encode_uri_component(base64_standard_block(tag.as_ref(), &mut text), out);
        }
    }

    /// Appends `value.signature` to `out`.
    pub(crate) fn sign_into(&self, value: &str, out: &mut String) {
        out.push_str(value);
        out.push('.');
        if let Some(key) = self.0.first() {
            base64_standard(hmac::sign(key, value.as_bytes()).as_ref(), out);
        }
    }

    /// Verifies `value.signature` (split at the last `.`) against every key, in constant
    /// time, and returns the value when one of them signed it.
    pub(crate) fn unsign<'a>(&self, signed: &'a str) -> Option<&'a str> {
        self.unsign_by(signed).map(|(value, _)| value)
    }

    /// As [`unsign`](Self::unsign), with the position of the secret that signed it (0:
    /// the newest, which signs).
    pub(crate) fn unsign_by<'a>(&self, signed: &'a str) -> Option<(&'a str, usize)> {
        let (value, signature) = signed.rsplit_once('.')?;
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        let mut tag = Vec::with_capacity(32);
        if !decode_base64_standard(signature.as_bytes(), &mut tag) {
            return None;
        }
        let by = self
            .0
            .iter()
            .position(|key| hmac::verify(key, value.as_bytes(), &tag).is_ok())?;
        Some((value, by))
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys([{} redacted])", self.0.len())
    }
}

/// Signs `value` with `secret` as Node's `cookie-signature.sign` does: returns
/// `value.signature`.
pub fn sign(value: &str, secret: &str) -> String {
    let mut out = String::with_capacity(value.len() + 1 + SIGNATURE_LEN);
    Keys::new(&Secrets::from(secret)).sign_into(value, &mut out);
    out
}

/// Verifies `signed` (`value.signature`) against each secret, as Node's
/// `cookie-signature.unsign` does for one. Returns the value when any secret signed it.
/// The comparison is constant-time.
pub fn unsign<'a>(signed: &'a str, secrets: &Secrets) -> Option<&'a str> {
    Keys::new(secrets).unsign(signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Produced by Node.js with `cookie-signature` and `cookie`.
    const NODE_VECTORS: [(&str, &str, &str); 3] = [
        (
            "keyboard cat",
            "hello",
            "hello.xz6khi6+oL1pnNhBgjk3Nr1CX2sxTjJiO9pKXaHZ33E",
        ),
        (
            "keyboard cat",
            "Jx7rzK1n0XqJb0mT6bUe6a5cP1X2-_aZ",
            "Jx7rzK1n0XqJb0mT6bUe6a5cP1X2-_aZ.FgPCujMLEz6ivjAood3gTjc5v2D1SA+l0/uJCv+NprA",
        ),
        (
            "tobiiscool",
            "abc+/=",
            "abc+/=.iUFBOuG0kHgD83dsc0sDIpKP/weFWqpTCXZntvf+HtQ",
        ),
    ];

    #[test]
    fn signing_matches_node_cookie_signature() {
        for (secret, value, signed) in NODE_VECTORS {
            assert_eq!(sign(value, secret), signed);
            assert_eq!(unsign(signed, &secret.into()), Some(value));
        }
    }

    #[test]
    fn any_secret_in_the_list_verifies_but_the_first_signs() {
        let secrets = Secrets::from(["new secret", "keyboard cat"]);
        assert_eq!(unsign(NODE_VECTORS[0].2, &secrets), Some("hello"));
        let keys = Keys::new(&secrets);
        let mut out = String::new();
        keys.sign_into("hello", &mut out);
        assert_eq!(out, sign("hello", "new secret"));
    }

    #[test]
    fn the_cookie_form_is_the_signed_value_percent_encoded() {
        let keys = Keys::new(&Secrets::from("keyboard cat"));
        for value in ["hello", "Vt4Xr5wB-x_2kQ9sLh3MZ0aJcNfyUoPq", "a+b/c=d é"] {
            let mut want = String::new();
            encode_uri_component(&sign(value, "keyboard cat"), &mut want);
            let mut out = String::new();
            keys.sign_uri_encoded(value, &mut out);
            assert_eq!(out, want, "{value}");
        }
    }

    #[test]
    fn tampered_values_and_signatures_are_rejected() {
        let secrets = Secrets::from("keyboard cat");
        for bad in [
            "hellO.xz6khi6+oL1pnNhBgjk3Nr1CX2sxTjJiO9pKXaHZ33E",
            "hello.xz6khi6+oL1pnNhBgjk3Nr1CX2sxTjJiO9pKXaHZ33F",
            "hello.xz6khi6+oL1pnNhBgjk3Nr1CX2sxTjJiO9pKXaHZ33E=",
            "hello.xz6khi6+oL1pnNhBgjk3Nr1CX2sxTjJiO9pKXaHZ33",
            "hello",
            "",
            ".",
            "hello.xz6khi6+oL1pnNhBgjk3Nr1CX2sxTjJiO9pKXaHZ3\u{0}3E",
        ] {
            assert_eq!(unsign(bad, &secrets), None, "{bad}");
        }
        assert_eq!(unsign(NODE_VECTORS[0].2, &"other".into()), None);
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secrets = Secrets::from("keyboard cat");
        assert!(!format!("{secrets:?}").contains("keyboard"));
    }
}
