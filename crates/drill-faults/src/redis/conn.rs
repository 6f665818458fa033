//! A connection to Redis (bounded: 5 s to connect, 60 s per answer) and one command on it,
//! its error kept as the source: what the faults, probes and job writers share.

use std::time::Duration;

use crate::contract::FaultError;

pub(crate) async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection, FaultError> {
    let client = redis::Client::open(url)
        .map_err(|e| FaultError::context("redis", drill_spec::redact::url(url), e))?;
    // redis-rs gives up on a reply after 500 ms by default; FLUSHALL on a large dataset takes
    // longer, and a failed-looking flush that did happen would be worse than a slow one.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| FaultError::context("redis", "cannot connect", e))
}

pub(crate) async fn query<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
) -> Result<T, FaultError> {
    cmd.query_async(con)
        .await
        .map_err(|e| FaultError::client("redis", e))
}
