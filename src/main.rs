//! The `sfwa` command line: thin on purpose; the work lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sfwa::sim::sandbox::{Sandbox, SandboxOptions};

#[derive(Parser)]
#[command(
    name = "sfwa",
    version,
    about = "Salesforce ↔ WhatsApp Business Cloud API daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a simulated Salesforce org and WhatsApp Cloud API until Ctrl-C (tests, demos, sandbox).
    Sim {
        /// Where the Salesforce org simulator listens (port 0 = any free port).
        #[arg(long, default_value = "127.0.0.1:7701")]
        salesforce_addr: SocketAddr,
        /// Where the WhatsApp Cloud API simulator listens (port 0 = any free port).
        #[arg(long, default_value = "127.0.0.1:7702")]
        whatsapp_addr: SocketAddr,
        /// Where the WhatsApp simulator delivers webhooks (sfwa's webhook URL).
        #[arg(long)]
        webhook_url: Option<String>,
        /// Keeps the JWT key pair and credentials across restarts.
        #[arg(long, default_value = ".sfwa-sim")]
        state_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Sim {
            salesforce_addr,
            whatsapp_addr,
            webhook_url,
            state_dir,
        } => {
            let options = SandboxOptions {
                salesforce_addr,
                whatsapp_addr,
                webhook_url,
                state_dir,
            };
            let sandbox = Sandbox::start(&options).await?;
            // Machines read the first stdout line; people read stderr.
            println!("{}", sandbox.connection_info());
            eprintln!("{}", sandbox.summary());
            shutdown_signal().await.context("waiting for Ctrl-C")?;
            eprintln!("stopping simulators");
            sandbox.stop().await;
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
