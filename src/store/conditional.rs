//! The conditional half of the store contract: what a load returns ([`Loaded`], with its
//! [`Version`]), what a conditional save answers ([`SaveOutcome`]), and the non-atomic
//! fallbacks that [`SessionStore`]'s default methods use.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::{SessionStore, StoreError};
use crate::record::SessionRecord;

/// Identifies one stored state of a session, for compare-and-set.
///
/// A store hands one out with every [`Loaded`] record and after every write, and
/// [`SessionStore::save_if`] writes only while the stored record still has it. What it
/// holds is the store's choice: the stored bytes themselves (Redis, PostgreSQL: exact,
/// no hash collisions), or a counter bumped on every write (the memory store).
#[derive(Clone, PartialEq, Eq)]
pub struct Version(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Number(u64),
    Bytes(Box<[u8]>),
}

impl Version {
    /// A version that is a counter (or any number a store bumps on every write).
    pub fn from_number(n: u64) -> Self {
        Version(Repr::Number(n))
    }

    /// A version that is the stored bytes themselves (or a digest of them).
    pub fn from_bytes(bytes: impl Into<Box<[u8]>>) -> Self {
        Version(Repr::Bytes(bytes.into()))
    }

    /// The version the default methods give a record: its JSON text.
    pub fn of_record(rec: &SessionRecord) -> Self {
        Version::from_bytes(rec.to_json().into_bytes())
    }

    /// The number, for a version made by [`from_number`](Self::from_number).
    pub fn as_number(&self) -> Option<u64> {
        match &self.0 {
            Repr::Number(n) => Some(*n),
            Repr::Bytes(_) => None,
        }
    }

    /// The bytes, for a version made by [`from_bytes`](Self::from_bytes).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Number(_) => None,
            Repr::Bytes(b) => Some(b),
        }
    }
}

/// Never prints the bytes: they may be a whole session.
impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Number(n) => write!(f, "Version({n})"),
            Repr::Bytes(b) => write!(f, "Version(<{} bytes>)", b.len()),
        }
    }
}

/// A record as [`SessionStore::load`] found it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The record, shared: the middleware copies it only if the request changes it.
    pub record: Arc<SessionRecord>,
    /// The stored state it was read from, for [`SessionStore::save_if`].
    pub version: Version,
    /// When the store last wrote the record or extended its life, if the store knows
    /// (from its TTL or expiry column). The middleware skips the end-of-request touch
    /// while this is more recent than its
    /// [`touch_after`](crate::SessionMiddlewareBuilder::touch_after); `None` means
    /// "unknown" and the touch always happens, as in express-session.
    pub extended_at: Option<SystemTime>,
}

impl Loaded {
    /// A loaded record with nothing known about its expiry.
    pub fn new(record: impl Into<Arc<SessionRecord>>, version: Version) -> Self {
        Loaded {
            record: record.into(),
            version,
            extended_at: None,
        }
    }
}

/// What [`SessionStore::save_if`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SaveOutcome {
    /// The record was written; this is its new version.
    Saved(Version),
    /// The stored record has another version: nothing was written. Carries the record as
    /// it is now when the store learnt it on the way (saving the middleware a load).
    Conflict(Option<Loaded>),
    /// There is no record under this ID (destroyed or expired): nothing was written.
    Gone,
}

/// `load` for stores that only have `get`: the version is the record's JSON.
pub(super) async fn load_by_get<S: SessionStore + ?Sized>(
    store: &S,
    sid: &str,
) -> Result<Option<Loaded>, StoreError> {
    let Some(record) = store.get(sid).await? else {
        return Ok(None);
    };
    let version = Version::of_record(&record);
    Ok(Some(Loaded::new(record, version)))
}

/// `create` for stores without an atomic one: `get`, then `set` if absent.
pub(super) async fn create_by_get<S: SessionStore + ?Sized>(
    store: &S,
    sid: &str,
    rec: &SessionRecord,
) -> Result<Option<Version>, StoreError> {
    if store.get(sid).await?.is_some() {
        return Ok(None);
    }
    store.set(sid, rec).await?;
    Ok(Some(Version::of_record(rec)))
}

/// `save_if` for stores without an atomic one: `load`, compare, then `set`.
pub(super) async fn save_if_by_load<S: SessionStore + ?Sized>(
    store: &S,
    sid: &str,
    rec: &SessionRecord,
    expected: &Version,
) -> Result<SaveOutcome, StoreError> {
    let Some(current) = store.load(sid).await? else {
        return Ok(SaveOutcome::Gone);
    };
    if current.version != *expected {
        return Ok(SaveOutcome::Conflict(Some(current)));
    }
    store.set(sid, rec).await?;
    Ok(SaveOutcome::Saved(Version::of_record(rec)))
}
