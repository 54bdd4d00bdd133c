//! The connection under a [`RedisStore`](super::RedisStore): one server or a cluster,
//! behind one `run` that bounds every command by the response timeout.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, Value};

/// The live connection: one server (its manager reconnects by itself) or a whole cluster.
#[derive(Clone)]
pub(super) enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects to one server.
    pub(super) async fn standalone(
        url: &str,
        connect: Duration,
        respond: Duration,
    ) -> RedisResult<Self> {
        let client = redis::Client::open(url)?;
        // No backoff retries inside the manager: its first retry sleeps at least a
        // second, which would stall every request during an outage. A failed attempt is
        // retried by the next command instead (see `run`).
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(connect)
            .set_response_timeout(respond);
        Ok(Conn::Standalone(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    /// Connects to a cluster through any of its nodes.
    pub(super) async fn cluster(
        urls: Vec<String>,
        connect: Duration,
        respond: Duration,
    ) -> RedisResult<Self> {
        // Few, short retries (they also carry MOVED/ASK redirects): the default waits
        // start at 1.28 s each.
        let client = ClusterClient::builder(urls)
            .connection_timeout(connect)
            .response_timeout(respond)
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(500)
            .build()?;
        Ok(Conn::Cluster(client.get_async_connection().await?))
    }

    pub(super) fn mode(&self) -> &'static str {
        match self {
            Conn::Standalone(_) => "standalone",
            Conn::Cluster(_) => "cluster",
        }
    }

    /// Runs one command (on `node` when given, else wherever its keys live), retrying once
    /// where that is safe, and failing once `timeout` has passed.
    pub(super) async fn run<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        node: Option<&RoutingInfo>,
        timeout: Duration,
    ) -> RedisResult<T> {
        let attempts = async {
            match self.exec(cmd, node).await {
                Err(e) if worth_retrying(&e) => self.exec(cmd, node).await,
                done => done,
            }
        };
        within(timeout, attempts).await
    }

    async fn exec<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        node: Option<&RoutingInfo>,
    ) -> RedisResult<T> {
        match (self, node) {
            (Conn::Cluster(c), Some(route)) => {
                let value = c.clone().route_command(cmd, route.clone()).await?;
                T::from_owned_redis_value(value.extract_error()?)
            }
            (Conn::Cluster(c), None) => cmd.query_async(&mut c.clone()).await,
            (Conn::Standalone(c), _) => cmd.query_async(&mut c.clone()).await,
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
        let reply = within(timeout, c.route_command(&redis::cmd("PING"), primaries)).await?;
        let Value::Map(per_node) = reply else {
            return Err(unexpected("PING to every primary did not answer per node"));
        };
        per_node
            .iter()
            .map(|(addr, _)| by_address(addr).map(Some))
            .collect()
    }
}

/// A command that failed before reaching a working connection (refused, dropped, or the
/// stale error of a failed reconnection) is worth one more try: the connection manager
/// has started a fresh reconnection by then. Every command the store sends is idempotent.
fn worth_retrying(e: &RedisError) -> bool {
    (e.is_io_error() || e.is_connection_dropped()) && !e.is_timeout()
}

/// Bounds a call: a dead or stalled Redis gives a prompt error, never a hung request.
async fn within<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            let e =
                std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer in time");
            Err(RedisError::from(e))
        })
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

fn unexpected(what: &'static str) -> RedisError {
    RedisError::from((
        ErrorKind::ClientError,
        "unexpected cluster reply",
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
    fn only_connection_failures_are_retried() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let timed_out = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let server = RedisError::from((ErrorKind::ResponseError, "WRONGTYPE"));
        assert!(worth_retrying(&refused));
        assert!(!worth_retrying(&timed_out) && !worth_retrying(&server));
    }
}
