//! The `charla` binary: configuration, logging, bind `CHARLA_HOST:PORT`,
//! build, run until SIGTERM or SIGINT.

use charla_server::{Application, Config, telemetry};
use clap::Parser;
use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    let config = Config::parse().with_platform_fallbacks();
    if let Err(error) = config.validate() {
        eprintln!("charla: {error}");
        return ExitCode::from(2);
    }
    telemetry::init(&config);
    let (host, port) = (config.host, config.port);
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%host, port, "charla cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        %host,
        port = application.port(),
        "charla is listening on http://{host}:{}",
        application.port()
    );
    match application.run_until_stopped(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = %error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Completes on the first SIGTERM (what a PaaS sends on restart) or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
