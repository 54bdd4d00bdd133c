//! Parsed records by their exact stored text, per thread: a session that Redis or
//! PostgreSQL returns unchanged since this worker last parsed it costs a table lookup
//! and a comparison instead of a JSON parse (about 4 k instructions for a small record).
//!
//! A text is kept only from its second parse on: a text read just once (a session that
//! every request changes) is not worth keeping, since a kept record is shared, and a
//! request that changes its session must then copy it.
//!
//! The records are shared read-only (`Arc`): a request that changes its session copies
//! it first, as it does with the memory store's records. Equal text parses to an equal
//! record, so sharing one between sessions whose stored text is the same is safe.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::Arc;

use crate::key_hash::KeyHash;
use crate::record::SessionRecord;
use crate::verified::Passthrough;

/// Records a thread keeps, and their stored text in all: when either is reached the
/// table starts over. A thread's table then holds about 1 MiB at most (a parsed record
/// takes a few times its text).
const CAPACITY: usize = 1024;
const CAPACITY_BYTES: usize = 256 * 1024;

/// Longer texts are parsed every time: their parse is not what dominates their request.
const MAX_TEXT: usize = 4096;

/// The kept records, their texts' total length, and the hashes of the texts parsed
/// once so far.
struct Table {
    kept: HashMap<Box<[u8]>, Arc<SessionRecord>, KeyHash>,
    bytes: usize,
    seen: HashSet<u64, BuildHasherDefault<Passthrough>>,
}

thread_local! {
    static PARSED: RefCell<Table> = RefCell::new(Table {
        kept: HashMap::with_hasher(KeyHash::random()),
        bytes: 0,
        seen: HashSet::default(),
    });
}

/// The record stored as `json`: this thread's earlier parse of the same text, or a new
/// one (kept when the text is short).
pub(crate) fn parse(json: &[u8]) -> Result<Arc<SessionRecord>, serde_json::Error> {
    if json.len() > MAX_TEXT {
        return SessionRecord::from_json(json).map(Arc::new);
    }
    PARSED.with_borrow_mut(|table| {
        if let Some(record) = table.kept.get(json) {
            return Ok(Arc::clone(record));
        }
        let record = Arc::new(SessionRecord::from_json(json)?);
        if table.seen.insert(table.kept.hasher().hash_one(json)) {
            if table.seen.len() >= CAPACITY * 4 {
                table.seen.clear();
            }
            return Ok(record);
        }
        if table.kept.len() >= CAPACITY || table.bytes + json.len() > CAPACITY_BYTES {
            table.kept.clear();
            table.bytes = 0;
        }
        table.kept.insert(json.into(), Arc::clone(&record));
        table.bytes += json.len();
        Ok(record)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &[u8] = br#"{"cookie":{"originalMaxAge":null,"path":"/"},"n":1}"#;

    #[test]
    fn a_text_read_again_is_parsed_no_more_and_other_text_apart() {
        let once = parse(JSON).unwrap();
        let first = parse(JSON).unwrap();
        assert!(!Arc::ptr_eq(&once, &first), "a text read once is not kept");
        let again = parse(JSON).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the third read shares the second's parse"
        );
        let other = parse(br#"{"cookie":{"originalMaxAge":null,"path":"/"},"n":2}"#).unwrap();
        assert_eq!(other.data["n"], 2);
        assert_eq!(first.data["n"], 1);
        assert!(parse(b"{not json").is_err());
    }

    #[test]
    fn the_table_is_bounded_and_long_texts_are_not_kept() {
        for n in 0..CAPACITY + 10 {
            let json = format!(r#"{{"cookie":{{"path":"/"}},"n":{n}}}"#);
            parse(json.as_bytes()).unwrap();
            parse(json.as_bytes()).unwrap();
        }
        assert!(PARSED.with_borrow(|t| t.kept.len()) <= CAPACITY);
        for n in 0..CAPACITY_BYTES / 1000 + 10 {
            let json = format!(
                r#"{{"cookie":{{"path":"/"}},"n":{n},"s":"{}"}}"#,
                "x".repeat(1000)
            );
            parse(json.as_bytes()).unwrap();
            parse(json.as_bytes()).unwrap();
        }
        let (entries, bytes) = PARSED.with_borrow(|t| (t.kept.len(), t.bytes));
        assert!(bytes <= CAPACITY_BYTES && entries < CAPACITY_BYTES / 1000);
        let long = format!(
            r#"{{"cookie":{{"path":"/"}},"s":"{}"}}"#,
            "x".repeat(MAX_TEXT)
        );
        let reads: Vec<_> = (0..3).map(|_| parse(long.as_bytes()).unwrap()).collect();
        assert!(!Arc::ptr_eq(&reads[1], &reads[2]));
    }
}
