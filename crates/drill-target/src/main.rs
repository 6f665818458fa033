//! `drill-target`: the reference target's server, its queue workers and its dataset.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drill_target::{Broken, prepare, serve, worker};

/// The reference target for drill: an activity API (Redis cache, replicated PostgreSQL behind a
/// switchable route) and queue workers, with broken variants.
#[derive(Debug, Parser)]
#[command(name = "drill-target", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: String,
        /// The database route: postgres://user@primary:port,replica:port/db (the writable
        /// host is used).
        #[arg(long)]
        db: String,
        #[arg(long, default_value = "redis://127.0.0.1:6390")]
        redis: String,
        /// A broken variant.
        #[arg(long, value_enum, env = "DRILL_TARGET_BROKEN")]
        broken: Option<Broken>,
    },
    /// Work the notifications queue.
    Worker {
        #[arg(long, default_value = "redis://127.0.0.1:6390")]
        redis: String,
        #[arg(long, default_value = "notifications")]
        queue: String,
        /// The worker's name (its restart count is kept under it); default: the host name.
        #[arg(long)]
        name: Option<String>,
        /// Write this process's pid here once it works the queue (a `process` target's
        /// `pid_file`); removed when it stops.
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        #[arg(long, value_enum, env = "DRILL_TARGET_BROKEN")]
        broken: Option<Broken>,
    },
    /// Create the schema and the dataset; write the credentials file.
    Prepare {
        /// The primary: postgres://user@host:port/db.
        #[arg(long)]
        db: String,
        #[command(flatten)]
        counts: prepare::Counts,
        /// Where the credentials (community_id, member_id, token) go.
        #[arg(long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("drill-target: {e}");
            return ExitCode::from(1);
        }
    };
    let r = rt.block_on(async {
        match cli.command {
            Command::Serve {
                listen,
                db,
                redis,
                broken,
            } => serve::serve(serve::App::new(&db, &redis, broken).await?, &listen).await,
            Command::Worker {
                redis,
                queue,
                name,
                pid_file,
                broken,
            } => {
                let name = name.unwrap_or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .map(|h| h.trim().to_owned())
                        .unwrap_or_else(|_| format!("pid{}", std::process::id()))
                });
                worker::work(&redis, &queue, &name, pid_file.as_deref(), broken).await
            }
            Command::Prepare { db, counts, output } => {
                let (written, creds) = prepare::prepare(&db, &counts).await?;
                if let Some(dir) = output.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&output, serde_json::to_string_pretty(&creds)?)?;
                println!(
                    "prepared: {} communities, {} members, {} posts, {} comments, {} reactions, {} point events, {} tokens → {}",
                    written.communities,
                    written.members,
                    written.posts,
                    written.comments,
                    written.reactions,
                    written.points,
                    written.tokens,
                    output.display()
                );
                Ok(())
            }
        }
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drill-target: {e:#}");
            ExitCode::from(1)
        }
    }
}
