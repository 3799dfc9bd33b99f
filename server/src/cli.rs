//! The `keyport` command line.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Config, Server, telemetry};

#[derive(Parser, Debug)]
#[command(
    name = "keyport",
    version,
    about = "Keyport: a self-hosted developer portal for API keys"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply database migrations, then serve the portal and the API.
    Serve(Config),
    /// Apply database migrations and exit.
    Migrate(Config),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => {
            let server = Server::bind(&config).await?;
            tracing::info!(
                addr = %server.local_addr(),
                database = %domain::db::redact_url(&config.database_url()),
                "Keyport is listening on http://{}",
                server.local_addr()
            );
            server.run(shutdown_signal()).await
        }
        Command::Migrate(config) => {
            let db = crate::http::open_database(&config).await?;
            let applied = db.applied_migrations().await?;
            tracing::info!(
                database = %domain::db::redact_url(&config.database_url()),
                migrations = applied.len(),
                "database schema is up to date"
            );
            db.close().await?;
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
