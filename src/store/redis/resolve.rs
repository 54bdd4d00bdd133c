//! Finding the primary: every sentinel is asked at once (`SENTINEL
//! GET-MASTER-ADDR-BY-NAME`), and the first address whose node answers `ROLE` as a
//! primary wins, so a sentinel that still names the old primary is passed over. Each
//! step is bounded by the builder's connection and response timeouts.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::aio::ConnectionManager;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, RedisResult, Role,
};

use super::{manager_config, within, Addr, PerThread, Primary};

/// How to find the primary: the sentinels, the service name, how to log in to the
/// primary, and the timeouts.
pub(super) struct Resolver {
    pub(super) sentinels: Vec<Client>,
    pub(super) service: String,
    primary: RedisConnectionInfo,
    pub(super) connect: Duration,
    pub(super) respond: Duration,
}

impl Resolver {
    /// The sentinels at `urls` (each URL with that sentinel's own login, if any), the
    /// service they monitor, and the database and login for its primary.
    pub(super) fn new(
        urls: &[String],
        service: &str,
        primary: RedisConnectionInfo,
        connect: Duration,
        respond: Duration,
    ) -> RedisResult<Self> {
        if urls.is_empty() {
            let what = "connect_sentinel needs at least one sentinel address";
            return Err(RedisError::from((ErrorKind::EmptySentinelList, what)));
        }
        Ok(Resolver {
            sentinels: urls
                .iter()
                .map(|u| sentinel_client(u))
                .collect::<Result<_, _>>()?,
            service: service.to_owned(),
            primary,
            connect,
            respond,
        })
    }

    /// The primary: `hint` if it answers `ROLE` as a primary, else the first address a
    /// sentinel names that does; `current` itself if that is where it still is. Bounded
    /// by two connection attempts and two replies (`2 × (connect + respond)`).
    pub(super) async fn locate(
        &self,
        current: Option<&Arc<Primary>>,
        hint: Option<Addr>,
    ) -> RedisResult<Arc<Primary>> {
        let find = async {
            if let Some(addr) = hint {
                if let Ok(primary) = self.check(addr, current).await {
                    return Ok(primary);
                }
            }
            self.first_primary(current).await
        };
        within((self.connect + self.respond) * 2, find).await
    }

    async fn first_primary(&self, current: Option<&Arc<Primary>>) -> RedisResult<Arc<Primary>> {
        let mut answers: FuturesUnordered<_> = self.sentinels.iter().map(|s| self.ask(s)).collect();
        let mut tried = Vec::new();
        let mut last = None;
        while let Some(answer) = answers.next().await {
            let addr = match answer {
                Ok(addr) if !tried.contains(&addr) => addr,
                Ok(_) => continue,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            tried.push(addr.clone());
            match self.check(addr, current).await {
                Ok(primary) => return Ok(primary),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| not_found("no sentinel answered")))
    }

    /// The address one sentinel gives for the service.
    async fn ask(&self, sentinel: &Client) -> RedisResult<Addr> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect))
            .set_response_timeout(Some(self.respond));
        let mut conn = sentinel
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(&self.service);
        let addr: Option<Addr> = cmd.query_async(&mut conn).await?;
        addr.ok_or_else(|| not_found("a sentinel does not monitor this service name"))
    }

    /// The node at `addr`, connected, if it is a primary (on the current connection when
    /// it is the current primary).
    async fn check(&self, addr: Addr, current: Option<&Arc<Primary>>) -> RedisResult<Arc<Primary>> {
        if let Some(current) = current.filter(|c| c.addr == addr) {
            self.is_primary(current.conns.get().await?, &addr).await?;
            return Ok(current.clone());
        }
        let info = ConnectionAddr::Tcp(addr.0.clone(), addr.1).into_connection_info()?;
        let client = Client::open(info.set_redis_settings(self.primary.clone()))?;
        let config = manager_config(self.connect);
        let first = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        self.is_primary(first.clone(), &addr).await?;
        let conns = PerThread::new(first, Some((client, config)));
        Ok(Arc::new(Primary { addr, conns }))
    }

    async fn is_primary(&self, mut conn: ConnectionManager, addr: &Addr) -> RedisResult<()> {
        let role: Role = within(self.respond, redis::cmd("ROLE").query_async(&mut conn)).await?;
        match role {
            Role::Primary { .. } => Ok(()),
            _ => Err(RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "the node a sentinel names is not a primary",
                format!("{}:{}", addr.0, addr.1),
            ))),
        }
    }
}

/// A client for one sentinel. A sentinel has no databases (no `SELECT`): a URL that
/// names one is a mistake, told now rather than as an unknown command later.
fn sentinel_client(url: &str) -> RedisResult<Client> {
    let client = Client::open(url)?;
    if client.get_connection_info().redis_settings().db() != 0 {
        return Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "a sentinel URL names a database; give the primary's with primary_settings",
        )));
    }
    Ok(client)
}

fn not_found(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::MasterNameNotFoundBySentinel, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_with_a_database_is_refused() {
        assert!(sentinel_client("redis://127.0.0.1:26379").is_ok());
        let e = sentinel_client("redis://127.0.0.1:26379/2").expect_err("a database");
        assert_eq!(e.kind(), ErrorKind::InvalidClientConfig);
    }
}
