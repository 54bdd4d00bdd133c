//! Listening for `+switch-master`: a sentinel announces a failover the moment it is
//! done, and the store moves to the new primary then, not when the old one first fails
//! a command. That matters when the old primary is still up (a manual `SENTINEL
//! FAILOVER`, a partition): it keeps taking writes until the sentinels turn it into a
//! replica, seconds later, and every write it took meanwhile is lost.
//!
//! One task per store, on the runtime that connected it: subscribed to one sentinel at a
//! time (the next one when it fails), pinging it every [`HEARTBEAT`] so that a silent
//! sentinel is noticed, and ending when the store is dropped. It only speeds things up:
//! without it (no sentinel reachable, or no runtime), the failures still move the store.

use std::pin::pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use redis::{Client, ErrorKind, Msg, RedisError, RedisResult, Value};

use super::{within, Addr, Failover, Inner, Resolver};

/// The channel on which a sentinel announces a new primary.
const CHANNEL: &str = "+switch-master";
/// How often the sentinel listened to is pinged (and the store checked for being gone).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Starts listening for the store behind `failover`, if there is a runtime to run on.
pub(super) fn spawn(resolver: Arc<Resolver>, failover: Weak<Inner>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(watch(resolver, failover));
    }
}

async fn watch(resolver: Arc<Resolver>, failover: Weak<Inner>) {
    for sentinel in resolver.sentinels.iter().cycle() {
        if let Err(e) = listen(&resolver, sentinel, &failover).await {
            tracing::debug!(
                service = %resolver.service,
                "redis sentinel: not listening for failovers on a sentinel: {e}"
            );
        }
        if failover.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Listens on one sentinel until it fails, or (`Ok`) until the store is gone.
async fn listen(resolver: &Resolver, sentinel: &Client, failover: &Weak<Inner>) -> RedisResult<()> {
    let subscribe = async {
        let mut pubsub = sentinel.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        Ok(pubsub.split())
    };
    let (mut sink, mut stream) = within(resolver.connect + resolver.respond, subscribe).await?;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        match select(pin!(stream.next()), pin!(heartbeat.tick())).await {
            Either::Left((Some(msg), _)) => {
                let Some(inner) = failover.upgrade() else {
                    return Ok(());
                };
                if let Some(addr) = new_primary(&msg, &resolver.service) {
                    Failover(inner).switched_to(addr);
                }
            }
            Either::Left((None, _)) => {
                return Err(RedisError::from((ErrorKind::Io, "the sentinel hung up")));
            }
            Either::Right(_) if failover.strong_count() == 0 => return Ok(()),
            Either::Right(_) => {
                within(resolver.respond, sink.ping::<Value>()).await?;
            }
        }
    }
}

/// The new primary in a `+switch-master` message about `service`
/// (`<name> <old-ip> <old-port> <new-ip> <new-port>`).
fn new_primary(msg: &Msg, service: &str) -> Option<Addr> {
    let payload: String = msg.get_payload().ok()?;
    parse(&payload, service)
}

fn parse(payload: &str, service: &str) -> Option<Addr> {
    let words: Vec<&str> = payload.split(' ').collect();
    let [name, _, _, ip, port] = words[..] else {
        return None;
    };
    (name == service).then_some(())?;
    Some((ip.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_switch_names_the_new_primary_of_our_service_only() {
        let msg = "sessions 127.0.0.1 6379 127.0.0.1 6380";
        assert_eq!(parse(msg, "sessions"), Some(("127.0.0.1".to_owned(), 6380)));
        assert_eq!(parse(msg, "other"), None);
        assert_eq!(parse("sessions 127.0.0.1 6379 127.0.0.1", "sessions"), None);
        assert_eq!(parse("sessions a 1 b port", "sessions"), None);
    }
}
