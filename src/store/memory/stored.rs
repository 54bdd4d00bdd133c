//! How the memory store holds one session's record: packed until a request loads it,
//! then shared, parsed, with the requests that load it.
//!
//! A parsed record's data is a `serde_json` map, whose first node holds room for 11
//! entries (about 600 bytes) even for one key. A session that is created and never read
//! again (a crawler's, a one-off visit's) would keep that for its whole life, so a
//! created session is kept packed: its cookie and its top-level entries in one slice,
//! about a third of the memory. Its first load unpacks it in place, once; a saved
//! session was just loaded, so it is kept as the shared record it was saved as.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cookie::SessionCookie;
use crate::record::SessionRecord;

/// One stored record, in either form; both hold the same session.
pub(super) enum Stored {
    /// As written by a `create` or `set`, not loaded since.
    Packed(Box<Packed>),
    /// Shared read-only with the requests that load it: a request that changes its
    /// session copies it first, so nothing reaches the store without a save.
    Shared(Arc<SessionRecord>),
}

/// A record's cookie and its top-level data entries, in key order.
#[derive(Clone)]
pub(super) struct Packed {
    cookie: SessionCookie,
    data: Box<[(Box<str>, Value)]>,
}

impl Stored {
    /// `rec`, packed.
    pub(super) fn packed(rec: &SessionRecord) -> Self {
        let data = rec.data.iter();
        Stored::Packed(Box::new(Packed {
            cookie: rec.cookie.clone(),
            data: data.map(|(k, v)| (k.as_str().into(), v.clone())).collect(),
        }))
    }

    /// The shared record, if it is unpacked.
    pub(super) fn shared(&self) -> Option<&Arc<SessionRecord>> {
        match self {
            Stored::Shared(rec) => Some(rec),
            Stored::Packed(_) => None,
        }
    }

    /// The shared record, unpacking it first if need be (its entries are moved, not
    /// copied).
    pub(super) fn unpack(&mut self) -> Arc<SessionRecord> {
        let record = match self {
            Stored::Shared(rec) => return Arc::clone(rec),
            Stored::Packed(packed) => Arc::new(std::mem::take(&mut **packed).into_record()),
        };
        *self = Stored::Shared(Arc::clone(&record));
        record
    }

    /// A copy of the record.
    pub(super) fn to_record(&self) -> SessionRecord {
        match self {
            Stored::Shared(rec) => SessionRecord::clone(rec),
            Stored::Packed(packed) => Packed::clone(packed).into_record(),
        }
    }

    /// The stored cookie.
    pub(super) fn cookie(&self) -> &SessionCookie {
        match self {
            Stored::Shared(rec) => &rec.cookie,
            Stored::Packed(packed) => &packed.cookie,
        }
    }

    /// Replaces the stored cookie, keeping the data (and the form).
    pub(super) fn set_cookie(&mut self, cookie: &SessionCookie) {
        match self {
            Stored::Shared(rec) => {
                let data: Map<String, Value> = rec.data.clone();
                *rec = Arc::new(SessionRecord {
                    cookie: cookie.clone(),
                    data,
                });
            }
            Stored::Packed(packed) => packed.cookie = cookie.clone(),
        }
    }
}

impl Packed {
    fn into_record(self) -> SessionRecord {
        let data = Vec::from(self.data).into_iter();
        let data = data.map(|(k, v)| (k.into_string(), v));
        SessionRecord {
            cookie: self.cookie,
            data: data.collect(),
        }
    }
}

/// Allocation-free: what `unpack` leaves behind for the moment it takes the entries.
impl Default for Packed {
    fn default() -> Self {
        Packed {
            cookie: SessionCookie::placeholder(),
            data: Box::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> SessionRecord {
        let json = br#"{"cookie":{"originalMaxAge":60000,"expires":"2030-01-01T00:00:00.000Z","path":"/","httpOnly":true},"user":{"id":7},"cart":[1,2],"n":1}"#;
        SessionRecord::from_json(json).unwrap()
    }

    #[test]
    fn packing_and_unpacking_keep_the_record() {
        let rec = record();
        let mut stored = Stored::packed(&rec);
        assert!(stored.shared().is_none());
        assert_eq!(stored.to_record(), rec);
        assert_eq!(stored.cookie(), &rec.cookie);
        let first = stored.unpack();
        assert_eq!(*first, rec);
        assert!(Arc::ptr_eq(&first, stored.shared().unwrap()));
        assert!(Arc::ptr_eq(&first, &stored.unpack()), "unpacked once");
        assert_eq!(stored.to_record().to_json(), rec.to_json());
    }

    #[test]
    fn a_new_cookie_keeps_the_data_in_either_form() {
        let rec = record();
        let mut other = SessionRecord::new(SessionCookie::placeholder());
        other.data.insert("x".into(), json!(1));
        for mut stored in [Stored::packed(&rec), Stored::Shared(Arc::new(rec.clone()))] {
            stored.set_cookie(&other.cookie);
            assert_eq!(stored.cookie(), &other.cookie);
            assert_eq!(stored.to_record().data, rec.data);
        }
    }
}
