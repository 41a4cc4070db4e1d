//! The `confab` binary: read the configuration, set up logging, serve until Ctrl-C or
//! SIGTERM (or, with `confab migrate`, apply the database's migrations and stop; with
//! `confab admin …`, administer users: `cli`).
//!
//! A failure to start is one line on stderr and a non-zero exit, for whoever reads a
//! service manager's status.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use confab::config::{Command, Config, Settings};

/// glibc's allocator keeps the large blocks that password hashing (19 MiB per hash) and
/// picture decoding free, in an arena per thread, so the server's memory only ever grows;
/// mimalloc returns them to the system. The `system-allocator` feature leaves it out, for
/// heap profilers that watch `malloc` (bench/heap.sh).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Some(Command::Admin { command }) = &config.command {
        return admin(&config, command.clone()).await;
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes, each already saying what it is about.
            eprintln!("confab: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `confab admin`: its own exit codes (docs/operations.md), its logs on stderr.
async fn admin(config: &Config, command: confab::cli::AdminCli) -> ExitCode {
    let settings = confab::telemetry::init(&config.log, config.log_format, true)
        .map_err(anyhow::Error::msg)
        .and_then(|()| Ok(Settings::from_config(config)?));
    match settings {
        Ok(settings) => confab::cli::admin(&settings, command).await,
        Err(error) => {
            eprintln!("confab: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    confab::telemetry::init(&config.log, config.log_format, false).map_err(anyhow::Error::msg)?;
    let settings = Settings::from_config(&config)?;
    if config.command == Some(Command::Migrate) {
        let database = settings.database.redacted();
        confab::store::migrate(&settings.database, &settings.data_dir, settings.database_wait)
            .await
            .with_context(|| format!("could not migrate {database}"))?;
        tracing::info!(%database, "migrations applied");
        return Ok(());
    }
    raise_open_files_limit();
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("could not listen on {}", config.addr))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    confab::server::run(listener, settings, shutdown).await?;
    Ok(())
}

/// Every client holds a socket, and the usual soft limit of 1,024 open files would cap
/// the server far below what it can serve: raise it to the hard limit.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open files limit"),
    }
}

/// Cancels `shutdown` on Ctrl-C or, on Unix, SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
