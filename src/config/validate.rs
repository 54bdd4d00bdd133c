//! [`ConfigError`] and the checks behind it: what `build` rejects, naming the option.

use std::fmt;
use std::time::Duration;

use super::WritePolicy;
use crate::breaker::CircuitBreaker;
use crate::cookie::{CookieOptions, SameSite, Secure};

/// An invalid configuration, naming the option to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `secret`: the list of secrets is empty.
    NoSecret,
    /// `secret`: one of the secrets is the empty string.
    EmptySecret,
    /// `name`: not a valid cookie name (RFC 6265 token).
    InvalidCookieName(String),
    /// `cookie.path`: empty, or contains characters a cookie attribute cannot hold.
    InvalidCookiePath(String),
    /// `cookie.domain`: contains characters a cookie attribute cannot hold.
    InvalidCookieDomain(String),
    /// `cookie.same_site(SameSite::None)` needs `cookie.secure(Secure::Always)`.
    SameSiteNoneWithoutSecure,
    /// `name`: a `__Host-` cookie needs `Secure::Always`, path `/` and no domain.
    HostPrefix(&'static str),
    /// `name`: a `__Secure-` cookie needs `Secure::Always`.
    SecurePrefixWithoutSecure,
    /// `reissue_after`: a zero interval or grace, or a grace not shorter than the
    /// interval.
    InvalidReissue(&'static str),
    /// `reissue_after` needs conditional writes: `write_policy(WritePolicy::Merge)`.
    ReissueWithoutMerge,
    /// `cookie.partitioned(true)` needs `cookie.secure(Secure::Always)`: browsers drop a
    /// `Partitioned` cookie without `Secure`.
    PartitionedWithoutSecure,
    /// `circuit_breaker`: zero failures or a zero cool-down.
    InvalidCircuitBreaker(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoSecret => f.write_str("`secret`: at least one secret is required"),
            ConfigError::EmptySecret => f.write_str("`secret`: a secret must not be empty"),
            ConfigError::InvalidCookieName(n) => {
                write!(f, "`name`: {n:?} is not a valid cookie name")
            }
            ConfigError::InvalidCookiePath(p) => {
                write!(f, "`cookie.path`: {p:?} is not a valid cookie path")
            }
            ConfigError::InvalidCookieDomain(d) => {
                write!(f, "`cookie.domain`: {d:?} is not a valid cookie domain")
            }
            ConfigError::SameSiteNoneWithoutSecure => f.write_str(
                "`cookie.same_site`: SameSite=None requires `cookie.secure(Secure::Always)`",
            ),
            ConfigError::HostPrefix(why) => write!(f, "`name`: a `__Host-` cookie {why}"),
            ConfigError::SecurePrefixWithoutSecure => {
                f.write_str("`name`: a `__Secure-` cookie requires `cookie.secure(Secure::Always)`")
            }
            ConfigError::InvalidReissue(why) => write!(f, "`reissue_after`: {why}"),
            ConfigError::ReissueWithoutMerge => f.write_str(
                "`reissue_after` requires `write_policy(WritePolicy::Merge)` (conditional writes)",
            ),
            ConfigError::PartitionedWithoutSecure => {
                f.write_str("`cookie.partitioned(true)` requires `cookie.secure(Secure::Always)`")
            }
            ConfigError::InvalidCircuitBreaker(why) => write!(f, "`circuit_breaker`: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn validate_breaker(breaker: CircuitBreaker) -> Result<(), ConfigError> {
    if breaker.failures == 0 {
        return Err(ConfigError::InvalidCircuitBreaker(
            "`failures` must be at least 1",
        ));
    }
    if breaker.cool_down.is_zero() {
        return Err(ConfigError::InvalidCircuitBreaker(
            "`cool_down` must not be zero",
        ));
    }
    Ok(())
}

pub(super) fn validate_reissue(
    (every, grace): (Duration, Duration),
    policy: WritePolicy,
) -> Result<(), ConfigError> {
    if every.is_zero() {
        return Err(ConfigError::InvalidReissue("the interval must not be zero"));
    }
    if grace.is_zero() {
        return Err(ConfigError::InvalidReissue("the grace must not be zero"));
    }
    if grace >= every {
        return Err(ConfigError::InvalidReissue(
            "the grace must be shorter than the interval",
        ));
    }
    if policy != WritePolicy::Merge {
        return Err(ConfigError::ReissueWithoutMerge);
    }
    Ok(())
}

/// The checks `build` makes of the cookie options, for those `cookie_for` gives.
pub(super) fn validate_cookie(name: &str, cookie: &CookieOptions) -> Result<(), ConfigError> {
    validate_attributes(cookie)?;
    validate_prefixes(name, cookie)
}

pub(super) fn validate_attributes(cookie: &CookieOptions) -> Result<(), ConfigError> {
    if !cookie.path.starts_with('/') || !cookie.path.bytes().all(is_attribute_byte) {
        return Err(ConfigError::InvalidCookiePath(cookie.path.to_string()));
    }
    if let Some(domain) = cookie
        .domain
        .as_ref()
        .filter(|d| d.is_empty() || !d.bytes().all(is_attribute_byte))
    {
        return Err(ConfigError::InvalidCookieDomain(domain.clone()));
    }
    let secure = cookie.secure == Secure::Always;
    if cookie.same_site == Some(SameSite::None) && !secure {
        return Err(ConfigError::SameSiteNoneWithoutSecure);
    }
    if cookie.partitioned && !secure {
        return Err(ConfigError::PartitionedWithoutSecure);
    }
    Ok(())
}

pub(super) fn validate_prefixes(name: &str, cookie: &CookieOptions) -> Result<(), ConfigError> {
    let secure = cookie.secure == Secure::Always;
    if name.starts_with("__Host-") {
        if !secure {
            return Err(ConfigError::HostPrefix(
                "requires `cookie.secure(Secure::Always)`",
            ));
        }
        if cookie.domain.is_some() {
            return Err(ConfigError::HostPrefix("must not set `cookie.domain`"));
        }
        if cookie.path != "/" {
            return Err(ConfigError::HostPrefix("requires `cookie.path(\"/\")`"));
        }
    }
    if name.starts_with("__Secure-") && !secure {
        return Err(ConfigError::SecurePrefixWithoutSecure);
    }
    Ok(())
}

/// RFC 6265 / RFC 7230 `token` characters.
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Characters a cookie attribute value may hold: visible ASCII except `;`.
pub(super) fn is_attribute_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b';'
}
