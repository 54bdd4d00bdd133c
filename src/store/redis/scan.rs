//! `all`, `len` and `clear`: every key under the prefix, walked with `SCAN` (on every
//! primary of a cluster), then read with `MGET` or removed with `DEL` in chunks. Never
//! `KEYS` or `FLUSHDB`.

use std::collections::{HashMap, HashSet};

use redis::Cmd;

use super::conn::{Idempotent, Target};
use super::lean::Effect;
use super::RedisStore;
use crate::record::SessionRecord;
use crate::store::StoreError;

impl RedisStore {
    /// Every key under the prefix, deduplicated (`SCAN` may repeat keys).
    pub(super) async fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let timeout = self.settings.response_timeout;
        let nodes = self
            .conn
            .scan_targets(timeout)
            .await
            .map_err(StoreError::backend)?;
        let pattern = glob_pattern(&self.settings.prefix);
        let mut keys = HashSet::new();
        for node in &nodes {
            let mut cursor = 0_u64;
            let target = node.as_ref().map_or(Target::Keys, Target::Node);
            loop {
                let (next, page): (u64, Vec<Vec<u8>>) = self
                    .run(
                        self.scan(cursor, &pattern),
                        target,
                        Effect::None,
                        Idempotent::Yes,
                    )
                    .await?;
                keys.extend(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    fn scan(&self, cursor: u64, pattern: &[u8]) -> Cmd {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor).arg("MATCH").arg(pattern);
        cmd.arg("COUNT").arg(self.settings.scan_count);
        cmd
    }

    pub(super) async fn all_records(&self) -> Result<HashMap<String, SessionRecord>, StoreError> {
        let keys = self.keys().await?;
        let mut out = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(self.settings.scan_count) {
            let mut mget = redis::cmd("MGET");
            mget.arg(chunk);
            let values: Vec<Option<Vec<u8>>> = self
                .run(mget, Target::Keys, Effect::None, Idempotent::Yes)
                .await?;
            // A value is missing when its key expired between SCAN and MGET.
            for (key, json) in chunk.iter().zip(values).filter_map(|(k, v)| Some((k, v?))) {
                let sid = key
                    .strip_prefix(self.settings.prefix.as_bytes())
                    .unwrap_or(key);
                let rec = SessionRecord::from_json(&json).map_err(StoreError::Serialization)?;
                out.insert(String::from_utf8_lossy(sid).into_owned(), rec);
            }
        }
        Ok(out)
    }

    pub(super) async fn clear_all(&self) -> Result<(), StoreError> {
        for chunk in self.keys().await?.chunks(self.settings.scan_count) {
            let mut del = redis::cmd("DEL");
            del.arg(chunk);
            // Our own deletions are not pushed back to us (NOLOOP): the cache goes.
            self.run::<i64>(del, Target::Keys, Effect::Flush, Idempotent::Yes)
                .await?;
        }
        Ok(())
    }
}

/// A `SCAN MATCH` pattern for every key starting with `prefix`: glob metacharacters in
/// the prefix are escaped so that they match only themselves.
fn glob_pattern(prefix: &str) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 2);
    for &b in prefix.as_bytes() {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(b);
    }
    pattern.push(b'*');
    pattern
}

#[cfg(test)]
mod tests {
    use super::glob_pattern;

    #[test]
    fn glob_metacharacters_in_the_prefix_match_only_themselves() {
        assert_eq!(glob_pattern("sess:"), b"sess:*");
        assert_eq!(glob_pattern(""), b"*");
        assert_eq!(glob_pattern(r"a*b?[c]\"), br"a\*b\?\[c\]\\*");
    }
}
