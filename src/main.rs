//! The `plivo-2fa` binary: parse the command line, load settings, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use plivo_2fa::config::Settings;
use plivo_2fa::domain::SystemClock;
use plivo_2fa::startup::Application;
use secrecy::ExposeSecret;

#[derive(Debug, Parser)]
#[command(
    name = "plivo-2fa",
    version,
    about = "Self-hosted OTP verification server for Plivo"
)]
struct Cli {
    /// A TOML file with the same keys as the environment (the environment wins).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    plivo_2fa::telemetry::init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config.as_deref()),
    }
}

fn serve(config: Option<&std::path::Path>) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(e) => return fail(&format!("configuration: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let app = match Application::build(settings, Arc::new(SystemClock)).await {
            Ok(app) => app,
            Err(e) => return fail(&e.to_string()),
        };
        if let Some(key) = &app.generated_api_key {
            // Printed once, on purpose, so a newcomer can call the API; never logged.
            #[allow(clippy::print_stdout)]
            {
                println!("sandbox mode: no Plivo credentials, codes go to the built-in simulator");
                println!("API key for this run: {}", key.expose_secret());
                println!("listening on {}", app.base_url());
            }
        }
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("server error: {e}")),
        }
    })
}

fn fail(message: &str) -> ExitCode {
    eprintln!("plivo-2fa: {message}");
    ExitCode::from(2)
}
