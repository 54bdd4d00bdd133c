//! The connection under a [`RedisStore`](super::RedisStore): one server or a cluster,
//! behind one `run` that bounds every command by the response timeout and retries only
//! what is safe to send twice.
//!
//! # Settings, and why (redis 1.x)
//!
//! - A plain `redis://` URL gets a lean connection of our own per worker thread (see
//!   `lean.rs`: no driver task, no channels, our own RESP2 parser; redis-rs still encodes
//!   the commands and decodes the values). TLS, Unix-socket and RESP3 URLs, a manager the
//!   user hands in, and the primary behind sentinels stay on redis-rs's
//!   `ConnectionManager`, with the settings below. Only the lean connection keeps a
//!   client cache (`client_cache`): every command says what it does to it (`Effect`),
//!   which the other connections ignore.
//! - One timer per call: the store wraps every call in its own `tokio::time::timeout`
//!   (it also bounds the wait for a reconnection), so the connections it opens itself
//!   have no response timeout of their own (the manager's would be a second timer on
//!   every command, and the cluster's overall timeout a third). A reconnection is still
//!   bounded by the connection timeout, which covers the handshake.
//! - `pipeline_buffer_size` 1024 instead of 50: under a burst of concurrent requests on
//!   the one multiplexed connection, callers queue their command and wait for its reply
//!   instead of first waiting for room in the queue (the tokio channel allocates its
//!   slots lazily, so an idle store holds no more memory).
//! - Commands that carry a session (`SET`, the compare-and-set script) are routed to
//!   their key's slot with an owned `Cmd` on a cluster, so the driver does not copy the
//!   JSON again (`query_async` on a cluster clones the command).
//! - Left at their defaults, worth measuring: `write_backpressure_boundary` (8 KiB
//!   before a flush; larger batches fewer writes under load), `concurrency_limit` (none).

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr,
};
use redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisConnectionInfo, RedisError, RedisResult, Value,
};

use super::lean::{Effect, Hit, Lean, Server};
use super::local::{PerThread, PerThreadLean};
pub(super) use super::retry::Idempotent;
use super::retry::{manager_config, retried, within, worth_retrying};
use super::sentinel::{replica_refusal, Failover};
use crate::record::SessionRecord;

/// Where a command goes on a cluster (a single server takes everything).
#[derive(Debug, Clone, Copy)]
pub(super) enum Target<'a> {
    /// The node serving this key's slot (the command then travels without a copy).
    Key(&'a [u8]),
    /// This node (`SCAN` on each primary).
    Node(&'a RoutingInfo),
    /// Wherever the driver routes it (`MGET`/`DEL` of many keys are split by slot).
    Keys,
}

/// The live connection: one server (one lean connection or manager per worker thread,
/// each reconnecting by itself; see `local.rs`), a whole cluster, or the primary of a
/// service that sentinels monitor (connected as one server, and followed across
/// failovers; see `sentinel.rs`).
#[derive(Clone)]
pub(super) enum Conn {
    /// One server through our own connections (a plain `redis://` URL).
    Lean(PerThreadLean),
    /// One server through redis-rs's managers (other URLs, or the user's manager).
    Standalone(PerThread),
    Cluster(ClusterConnection),
    /// The primary the sentinels name, found again when it fails over.
    Sentinel(Failover),
}

impl Conn {
    /// Whether `url` is served by the lean connection (the only one that caches).
    ///
    /// # Errors
    /// When the URL is invalid.
    pub(super) fn is_lean(url: &str) -> RedisResult<bool> {
        Ok(Server::from_url(url, Duration::ZERO)?.is_some())
    }

    /// Connects to one server: lean for a plain `redis://` URL (caching up to `cache`
    /// sessions per thread), else through a manager.
    pub(super) async fn standalone(
        url: &str,
        connect: Duration,
        cache: usize,
    ) -> RedisResult<Self> {
        if let Some(server) = Server::from_url(url, connect)? {
            let server = server.client_cache(cache);
            return Ok(Conn::Lean(PerThreadLean::connect(server).await?));
        }
        let client = redis::Client::open(url)?;
        let config = manager_config(connect);
        let first = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        Ok(Conn::Standalone(PerThread::new(
            first,
            Some((client, config)),
        )))
    }

    /// A connection the user opened: used as it is, from every thread.
    pub(super) fn from_manager(manager: ConnectionManager) -> Self {
        Conn::Standalone(PerThread::new(manager, None))
    }

    /// Connects to the primary that the sentinels at `urls` name for `service`.
    pub(super) async fn sentinel(
        urls: Vec<String>,
        service: &str,
        primary: RedisConnectionInfo,
        connect: Duration,
        respond: Duration,
    ) -> RedisResult<Self> {
        let failover = Failover::connect(urls, service, primary, connect, respond).await?;
        Ok(Conn::Sentinel(failover))
    }

    /// Connects to a cluster through any of its nodes.
    pub(super) async fn cluster(
        urls: Vec<String>,
        connect: Duration,
        respond: Duration,
    ) -> RedisResult<Self> {
        // Few, short retries (they also carry MOVED/ASK redirects): the default waits
        // start at 1.28 s each. Each attempt is bounded by `respond`; the whole call by
        // the store's own timer.
        let client = ClusterClient::builder(urls)
            .connection_timeout(connect)
            .response_timeout(respond)
            .overall_response_timeout(None)
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(500)
            .build()?;
        Ok(Conn::Cluster(client.get_async_connection().await?))
    }

    pub(super) fn mode(&self) -> &'static str {
        match self {
            Conn::Lean(_) | Conn::Standalone(_) => "standalone",
            Conn::Cluster(_) => "cluster",
            Conn::Sentinel(_) => "sentinel",
        }
    }

    /// Whether the store keeps a client cache (a lean connection with `client_cache`).
    pub(super) fn caching(&self) -> bool {
        matches!(self, Conn::Lean(l) if l.caching())
    }

    /// The session cached under `key` on this thread's connection, if there is a cache
    /// and it holds a live entry (see `lean.rs`).
    pub(super) fn cached(&self, key: &[u8]) -> Option<Hit> {
        match self {
            Conn::Lean(l) if l.caching() => l.get().lookup(key),
            _ => None,
        }
    }

    /// Keeps `record`, parsed from `value`, on the cache entry of `key`, if the entry
    /// still holds `value`.
    pub(super) fn remember(
        &self,
        key: &[u8],
        value: &[u8],
        record: &std::sync::Arc<SessionRecord>,
    ) {
        if let Conn::Lean(l) = self {
            if l.caching() {
                l.get().remember(key, value, record);
            }
        }
    }

    /// Runs one command, failing once `timeout` has passed. The other connection kinds'
    /// calls are boxed, so that their large futures are not part of the lean
    /// connection's (the default).
    ///
    /// On one server a connection failure is retried once when [`worth_retrying`] says
    /// so (the manager has started a reconnection by then). A cluster connection retries
    /// by itself (reconnections and redirects, `retries(3)`), whatever the command; that
    /// is the driver's behaviour, which the store's commands are written to tolerate.
    /// Through sentinels, a failure that may mean a failover finds the primary again
    /// first (see `sentinel.rs`).
    pub(super) async fn run<T: FromRedisValue>(
        &self,
        cmd: Cmd,
        target: Target<'_>,
        effect: Effect<'_>,
        idempotent: Idempotent,
        timeout: Duration,
    ) -> RedisResult<T> {
        match self {
            Conn::Lean(l) => {
                let deadline = Instant::now() + timeout;
                lean_command(l.get(), &cmd, effect, idempotent, deadline).await
            }
            Conn::Standalone(m) => {
                let call = async {
                    let mut m = m.get().await?;
                    match cmd.query_async(&mut m).await {
                        Err(e) if worth_retrying(&e, idempotent) => cmd.query_async(&mut m).await,
                        done => done,
                    }
                };
                Box::pin(within(timeout, call)).await
            }
            Conn::Cluster(c) => Box::pin(within(timeout, on_cluster(c.clone(), cmd, target))).await,
            Conn::Sentinel(f) => {
                let send = |mut m: ConnectionManager| {
                    let cmd = &cmd;
                    async move { cmd.query_async(&mut m).await }
                };
                Box::pin(f.run(idempotent, timeout, send)).await
            }
        }
    }

    /// [`run`](Self::run) for a command of plain arguments: the lean connection writes
    /// it straight into its buffer, without building a `Cmd`.
    pub(super) async fn run_args<T: FromRedisValue>(
        &self,
        args: &[&[u8]],
        target: Target<'_>,
        effect: Effect<'_>,
        idempotent: Idempotent,
        timeout: Duration,
    ) -> RedisResult<T> {
        let Conn::Lean(l) = self else {
            let cmd = cmd_of(args);
            return Box::pin(self.run(cmd, target, effect, idempotent, timeout)).await;
        };
        let (lean, deadline) = (l.get(), Instant::now() + timeout);
        let value = retried(idempotent, || lean.query_args(args, effect, deadline)).await?;
        Ok(T::from_redis_value(value.extract_error()?)?)
    }

    /// `GET` and `PTTL` of `key` in one round trip: a session's load.
    pub(super) async fn run_load(&self, key: &[u8], timeout: Duration) -> RedisResult<Vec<Value>> {
        let cmds: [&[&[u8]]; 2] = [&[b"GET", key], &[b"PTTL", key]];
        let effect = Effect::Load(key);
        self.run_commands(&cmds, key, effect, Idempotent::Yes, timeout)
            .await
    }

    /// Commands of plain arguments, which all touch `key`, in one round trip, as
    /// [`run_pipeline`](Self::run_pipeline) runs them; the lean connection writes them
    /// straight into its buffer, without building a pipeline.
    pub(super) async fn run_commands(
        &self,
        cmds: &[&[&[u8]]],
        key: &[u8],
        effect: Effect<'_>,
        idempotent: Idempotent,
        timeout: Duration,
    ) -> RedisResult<Vec<Value>> {
        let Conn::Lean(l) = self else {
            let mut pipe = Pipeline::with_capacity(cmds.len());
            // Server errors stay among the replies, as the lean connection leaves them
            // (an old server's syntax error for `SET … IFEQ` is an answer, not a failure).
            pipe.ignore_errors();
            for args in cmds {
                pipe.add_command(cmd_of(args));
            }
            let run = self.run_pipeline(pipe, key, effect, idempotent, timeout);
            return Box::pin(run).await;
        };
        let (lean, deadline) = (l.get(), Instant::now() + timeout);
        retried(idempotent, || lean.query_commands(cmds, effect, deadline)).await
    }

    /// Runs the commands of `pipe`, which all touch `key`, in one round trip; the replies
    /// in order (server errors among them are left for the caller to extract).
    pub(super) async fn run_pipeline(
        &self,
        pipe: Pipeline,
        key: &[u8],
        effect: Effect<'_>,
        idempotent: Idempotent,
        timeout: Duration,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Lean(l) => {
                let (lean, deadline) = (l.get(), Instant::now() + timeout);
                retried(idempotent, || lean.query_pipeline(&pipe, effect, deadline)).await
            }
            Conn::Standalone(m) => {
                let call = async {
                    let mut m = m.get().await?;
                    match pipe.query_async(&mut m).await {
                        Err(e) if worth_retrying(&e, idempotent) => pipe.query_async(&mut m).await,
                        done => done,
                    }
                };
                Box::pin(within(timeout, call)).await
            }
            Conn::Cluster(c) => {
                let route = SingleNodeRoutingInfo::SpecificNode(key_route(key));
                let count = pipe.len();
                let mut c = c.clone();
                Box::pin(within(timeout, c.route_pipeline(pipe, 0, count, route))).await
            }
            Conn::Sentinel(f) => {
                let send = |mut m: ConnectionManager| {
                    let pipe = &pipe;
                    async move { replica_refusal(pipe.query_async(&mut m).await?) }
                };
                Box::pin(f.run(idempotent, timeout, send)).await
            }
        }
    }

    /// Where `SCAN` must run to see every key: the one server (`None`), or each primary.
    pub(super) async fn scan_targets(
        &self,
        timeout: Duration,
    ) -> RedisResult<Vec<Option<RoutingInfo>>> {
        let Conn::Cluster(c) = self else {
            return Ok(vec![None]);
        };
        let primaries = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let mut c = c.clone();
        let reply = within(timeout, c.route_command(redis::cmd("PING"), primaries)).await?;
        let Value::Map(per_node) = reply else {
            return Err(unexpected("PING to every primary did not answer per node"));
        };
        per_node
            .iter()
            .map(|(addr, _)| by_address(addr).map(Some))
            .collect()
    }
}

/// One command on this thread's lean connection, sent once more when
/// [`worth_retrying`] says so, both before `deadline`. The reply is converted as
/// redis-rs's `Cmd::query_async` does.
async fn lean_command<T: FromRedisValue>(
    lean: std::sync::Arc<Lean>,
    cmd: &Cmd,
    effect: Effect<'_>,
    idempotent: Idempotent,
    deadline: Instant,
) -> RedisResult<T> {
    let value = retried(idempotent, || lean.query(cmd, effect, deadline)).await?;
    Ok(T::from_redis_value(value.extract_error()?)?)
}

async fn on_cluster<T: FromRedisValue>(
    mut c: ClusterConnection,
    cmd: Cmd,
    target: Target<'_>,
) -> RedisResult<T> {
    let route = match target {
        Target::Key(key) => {
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(key_route(key)))
        }
        Target::Node(node) => node.clone(),
        Target::Keys => return cmd.query_async(&mut c).await,
    };
    let value = c.route_command(cmd, route).await?;
    Ok(T::from_redis_value(value.extract_error()?)?)
}

/// A `Cmd` of plain arguments, for the connections that take one.
fn cmd_of(args: &[&[u8]]) -> Cmd {
    let mut cmd = Cmd::with_capacity(args.len(), args.iter().map(|a| a.len()).sum());
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

/// The primary serving `key`'s slot.
fn key_route(key: &[u8]) -> Route {
    Route::with_slot(Slot::for_key(key), SlotAddr::Master)
}

/// The route to the node that answered as `host:port` in a per-node reply.
fn by_address(addr: &Value) -> RedisResult<RoutingInfo> {
    let Value::BulkString(bytes) = addr else {
        return Err(unexpected("a node address is not a string"));
    };
    let text = std::str::from_utf8(bytes).map_err(|_| unexpected("a node address is not UTF-8"))?;
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| unexpected("a node address has no port"))?;
    let port = port
        .parse()
        .map_err(|_| unexpected("a node port is not a number"))?;
    let host = host.to_owned();
    Ok(RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host,
        port,
    }))
}

pub(super) fn unexpected(what: &'static str) -> RedisError {
    RedisError::from((
        ErrorKind::UnexpectedReturnType,
        "unexpected redis reply",
        what.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_become_routes() {
        let route = by_address(&Value::BulkString(b"127.0.0.1:7001".to_vec())).expect("parses");
        let RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }) = route else {
            panic!("a route by address");
        };
        assert_eq!((host.as_str(), port), ("127.0.0.1", 7001));
        assert!(by_address(&Value::BulkString(b"no-port".to_vec())).is_err());
        assert!(by_address(&Value::Int(1)).is_err());
    }

    #[test]
    fn a_key_routes_to_its_slot() {
        // CLUSTER KEYSLOT foo = 12182; a hash tag picks the slot of the tag alone.
        assert_eq!(key_route(b"foo"), Route::new(12182, SlotAddr::Master));
        assert_eq!(key_route(b"x{foo}y"), key_route(b"foo"));
    }
}
