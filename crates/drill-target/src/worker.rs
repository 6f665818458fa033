//! Horizon-like queue workers: pop jobs (Laravel's payloads) from `queues:NAME` and process
//! them. Run as a process or as the command of a Docker container.

use std::path::Path;
use std::time::Duration;

use redis::AsyncCommands;

use crate::Broken;

/// Works the queue until SIGTERM/SIGINT. With a pid file, writes its pid there once it is
/// connected (so whoever started it can wait for that) and removes it on the way out.
pub async fn work(
    redis_url: &str,
    queue: &str,
    name: &str,
    pid_file: Option<&Path>,
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
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    if let Some(f) = pid_file {
        std::fs::write(f, format!("{}\n", std::process::id()))?;
    }
    eprintln!("drill-target worker {name}: working {key} (start {boots})");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            () = tick(&mut con, &key, broken, boots) => {}
        }
    }
    if let Some(f) = pid_file {
        // Only our own: a successor may have written its pid already.
        if std::fs::read_to_string(f).is_ok_and(|t| t.trim() == std::process::id().to_string()) {
            let _ = std::fs::remove_file(f);
        }
    }
    Ok(())
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
