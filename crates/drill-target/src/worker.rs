//! Horizon-like queue workers: pop jobs (Laravel's payloads) from `queues:NAME` and process
//! them. Run as a process or as the command of a Docker container.

use std::time::Duration;

use redis::AsyncCommands;

use crate::Broken;

/// Works the queue until SIGTERM/SIGINT.
pub async fn work(
    redis_url: &str,
    queue: &str,
    name: &str,
    broken: Option<Broken>,
) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut con = loop {
        match client.get_multiplexed_async_connection().await {
            Ok(c) => break c,
            Err(e) => {
                eprintln!("drill-target worker {name}: waiting for Redis: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let boots: u64 = con
        .incr(format!("drill-target:worker-boots:{name}"), 1)
        .await?;
    let key = format!("queues:{queue}");
    eprintln!("drill-target worker {name}: working {key} (start {boots})");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tick(&mut con, &key, broken, boots) => {}
        }
    }
}

async fn tick(
    con: &mut redis::aio::MultiplexedConnection,
    key: &str,
    broken: Option<Broken>,
    boots: u64,
) {
    if broken == Some(Broken::NoWorkerRestart) && boots > 1 {
        // Restarted after a stop: waits for a supervisor that never comes, like a Horizon
        // master left paused.
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    }
    let jobs: Vec<String> = redis::cmd("LPOP")
        .arg(key)
        .arg(100)
        .query_async::<Option<Vec<String>>>(con)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    if jobs.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return;
    }
    let mut done = 0u64;
    for j in &jobs {
        // Processing a notification: decode the payload, then a millisecond of "sending".
        if serde_json::from_str::<serde_json::Value>(j).is_ok() {
            done += 1;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let _: Result<u64, _> = con.incr("drill-target:jobs-processed", done).await;
}
