//! How the memory store holds one session's record: as its JSON text until a request
//! loads it, then parsed, shared with the requests that load it.
//!
//! A parsed record's data is a `serde_json` map, whose first node holds room for 11
//! entries (about 600 bytes) even for one key. A session that is created and never read
//! again (a crawler's, a one-off visit's) would keep that for its whole life, so a
//! created session is kept as its JSON text, one allocation of its own length. Its
//! first load parses it, once; a saved session was just loaded, so it is kept as the
//! shared record it was saved as.

use std::sync::Arc;

use crate::cookie::SessionCookie;
use crate::record::SessionRecord;

/// One stored record, in either form; both hold the same session.
pub(super) enum Stored {
    /// As written by a `create` or `set`, not loaded since: the record's JSON text.
    Packed(Box<[u8]>),
    /// Shared read-only with the requests that load it: a request that changes its
    /// session copies it first, so nothing reaches the store without a save.
    Shared(Arc<SessionRecord>),
}

impl Stored {
    /// `rec`, packed.
    pub(super) fn packed(rec: &SessionRecord) -> Self {
        let mut text = Vec::with_capacity(128);
        rec.write_json(&mut text);
        Stored::Packed(text.into_boxed_slice())
    }

    /// The shared record, if it is unpacked.
    pub(super) fn shared(&self) -> Option<&Arc<SessionRecord>> {
        match self {
            Stored::Shared(rec) => Some(rec),
            Stored::Packed(_) => None,
        }
    }

    /// The shared record, parsing it first if need be.
    ///
    /// # Errors
    /// Only if the text this store wrote no longer parses.
    pub(super) fn unpack(&mut self) -> Result<Arc<SessionRecord>, serde_json::Error> {
        let record = match self {
            Stored::Shared(rec) => return Ok(Arc::clone(rec)),
            Stored::Packed(text) => Arc::new(SessionRecord::from_json(text)?),
        };
        *self = Stored::Shared(Arc::clone(&record));
        Ok(record)
    }

    /// A copy of the record.
    ///
    /// # Errors
    /// As [`unpack`](Self::unpack).
    pub(super) fn to_record(&self) -> Result<SessionRecord, serde_json::Error> {
        match self {
            Stored::Shared(rec) => Ok(SessionRecord::clone(rec)),
            Stored::Packed(text) => SessionRecord::from_json(text),
        }
    }

    /// Replaces the stored cookie, keeping the data; the record is unpacked.
    ///
    /// # Errors
    /// As [`unpack`](Self::unpack).
    pub(super) fn set_cookie(&mut self, cookie: &SessionCookie) -> Result<(), serde_json::Error> {
        let rec = self.unpack()?;
        if rec.cookie != *cookie {
            let data = rec.data.clone();
            let cookie = cookie.clone();
            *self = Stored::Shared(Arc::new(SessionRecord { cookie, data }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> SessionRecord {
        let json = br#"{"cookie":{"originalMaxAge":60000,"expires":"2030-01-01T00:00:00.000Z","path":"/","httpOnly":true},"user":{"id":7},"cart":[1,2.5],"n":1}"#;
        SessionRecord::from_json(json).unwrap()
    }

    #[test]
    fn packing_and_unpacking_keep_the_record() {
        let rec = record();
        let mut stored = Stored::packed(&rec);
        let Stored::Packed(text) = &stored else {
            panic!("packed")
        };
        assert_eq!(&**text, rec.to_json().as_bytes(), "the text, at its length");
        assert_eq!(stored.to_record().unwrap(), rec);
        let first = stored.unpack().unwrap();
        assert_eq!(*first, rec);
        assert!(Arc::ptr_eq(&first, stored.shared().unwrap()));
        assert!(
            Arc::ptr_eq(&first, &stored.unpack().unwrap()),
            "parsed once"
        );
    }

    #[test]
    fn a_new_cookie_keeps_the_data_in_either_form() {
        let rec = record();
        let mut other = SessionRecord::new(SessionCookie::placeholder());
        other.data.insert("x".into(), json!(1));
        for mut stored in [Stored::packed(&rec), Stored::Shared(Arc::new(rec.clone()))] {
            stored.set_cookie(&other.cookie).unwrap();
            let now = stored.to_record().unwrap();
            assert_eq!(now.cookie, other.cookie);
            assert_eq!(now.data, rec.data);
        }
    }
}
