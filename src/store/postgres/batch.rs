//! Loads that meet a busy moment share one statement.
//!
//! A load runs alone while its thread runs few other load statements (see `gather.rs`).
//! When all their turns are taken, the first load to find so waits for the next turn,
//! and the loads that arrive while it waits go with it: one
//! `SELECT ... WHERE sid = ANY($3)` answers them all, each ID asked once. PostgreSQL
//! then runs one statement where it ran many, and the connections beyond the loads'
//! turns stay free for writes. A load never joins a statement already sent, so it reads
//! the rows as they were when it arrived, or newer: a client's request sees what its
//! earlier ones wrote.
//!
//! A load whose leader is dropped before it answers (timeout, client gone) runs alone.

use std::sync::Arc;

use sqlx::postgres::PgConnection;
use sqlx::Arguments;
use tokio::sync::oneshot;

use super::gather::{Follower, Leader, Reply, Turn};
use super::local::{Idempotent, Lent};
use super::sql::{ceil_s, or_lend};
use super::{Inner, Row};
use crate::encoding::now_ms;
use crate::store::StoreError;

/// A live row of a load of many: `sid`, `sess` text, `expire`.
type Found = (String, String, f64);

impl Inner {
    /// The live row of `sid`: alone when a turn is free, else in one statement with the
    /// loads that meet it.
    pub(super) async fn load_row(&self, sid: &str) -> Result<Option<Row>, StoreError> {
        match self.conns.loads()?.turn(sid) {
            Turn::Run(running) => {
                let row = self.conns.run(Idempotent::Yes, |c| self.load(c, sid)).await;
                drop(running);
                row
            }
            Turn::Follow(reply) => Box::pin(self.follow(sid, reply)).await,
            Turn::Lead(leader) => Box::pin(self.lead(sid, leader)).await,
        }
    }

    /// Waits for the row the leading load's statement found.
    async fn follow(
        &self,
        sid: &str,
        reply: oneshot::Receiver<Reply>,
    ) -> Result<Option<Row>, StoreError> {
        match reply.await {
            Ok(answer) => answer.map_err(StoreError::backend),
            Err(_) => self.conns.run(Idempotent::Yes, |c| self.load(c, sid)).await,
        }
    }

    /// Waits for a turn, then loads `sid` and every load gathered meanwhile in one
    /// statement, and answers each.
    async fn lead(&self, sid: &str, leader: Leader) -> Result<Option<Row>, StoreError> {
        let (running, followers) = leader.turn().await;
        if followers.is_empty() {
            let row = self.conns.run(Idempotent::Yes, |c| self.load(c, sid)).await;
            drop(running);
            return row;
        }
        let mut sids: Vec<&str> = followers.iter().map(|f| f.sid.as_str()).collect();
        sids.push(sid);
        sids.sort_unstable();
        sids.dedup();
        let rows = self
            .conns
            .run(Idempotent::Yes, |c| self.load_many(c, &sids))
            .await;
        drop(running);
        match rows {
            Ok(mut rows) => {
                rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                answer(followers, |sid| Ok(find(&rows, sid)));
                Ok(find(&rows, sid))
            }
            Err(e) => {
                let e = Arc::new(e);
                answer(followers, |_| Err(Arc::clone(&e)));
                Err(StoreError::backend(e))
            }
        }
    }

    /// The live rows of `sids`.
    async fn load_many(&self, mut c: PgConnection, sids: &[&str]) -> Lent<Vec<Found>> {
        let args = or_lend!(c, self.args(3, ceil_s(now_ms()), |a| a.add(sids)));
        let q = sqlx::query_as_with::<_, Found, _>(self.sql.load_many.clone(), args);
        let rows = q.fetch_all(&mut c).await;
        (c, rows)
    }
}

/// Tells each follower its answer; one that gave up meanwhile is skipped.
fn answer(followers: Vec<Follower>, mut reply: impl FnMut(&str) -> Reply) {
    for f in followers {
        let answer = reply(&f.sid);
        let _ = f.reply.send(answer);
    }
}

/// The row of `sid` among `rows`, sorted by sid.
fn find(rows: &[Found], sid: &str) -> Option<Row> {
    let at = rows.binary_search_by(|r| r.0.as_str().cmp(sid)).ok()?;
    let (_, sess, expire) = &rows[at];
    Some((sess.clone(), *expire))
}
