//! The `plivo-2fa` binary: parse the command line, load settings, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use plivo_2fa::config::Settings;
use plivo_2fa::domain::SystemClock;
use plivo_2fa::startup::{Application, StartupError};
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
    /// Compute a Plivo V3 signature with PLIVO_AUTH_TOKEN (for curl tests through ngrok).
    Sign {
        /// The full URL Plivo would call (your PUBLIC_BASE_URL plus the path).
        #[arg(long)]
        url: String,
        /// The nonce to sign with (send it as X-Plivo-Signature-V3-Nonce).
        #[arg(long)]
        nonce: String,
        /// GET or POST.
        #[arg(long, default_value = "POST")]
        method: String,
        /// Form parameters, as key=value.
        #[arg(value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
    /// Validate xml-templates/ and exit non-zero on the first error.
    CheckTemplates {
        /// The templates directory.
        #[arg(long, env = "XML_TEMPLATES_DIR", default_value = "xml-templates")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    plivo_2fa::telemetry::init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config.as_deref()),
        Command::Sign {
            url,
            nonce,
            method,
            params,
        } => sign(&url, &nonce, &method, &params),
        Command::CheckTemplates { dir } => check_templates(&dir),
    }
}

#[allow(clippy::print_stdout)]
fn sign(url: &str, nonce: &str, method: &str, params: &[String]) -> ExitCode {
    use plivo_2fa::plivo::signature::{Method, sign_v3};
    let Some(method) = Method::parse(method) else {
        return fail("sign: --method must be GET or POST");
    };
    let token = match std::env::var("PLIVO_AUTH_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t,
        _ => return fail("sign: set PLIVO_AUTH_TOKEN to the auth token to sign with"),
    };
    // With several tokens configured (rotation), the first signs.
    let token = token
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut pairs = Vec::with_capacity(params.len());
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            return fail(&format!("sign: {p:?} is not KEY=VALUE"));
        };
        pairs.push((k.to_owned(), v.to_owned()));
    }
    match sign_v3(token.as_bytes(), method, url, &pairs, nonce) {
        Ok(signature) => {
            println!("{signature}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("sign: {e}")),
    }
}

#[allow(clippy::print_stdout)]
fn check_templates(dir: &std::path::Path) -> ExitCode {
    match plivo_2fa::plivo::xml::validate_dir(dir) {
        Ok(n) => {
            println!("{}: {n} templates OK", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn serve(config: Option<&std::path::Path>) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        // Every bad setting, one line each.
        Err(errors) => {
            for e in errors.errors() {
                eprintln!("plivo-2fa: configuration: {e}");
            }
            return ExitCode::from(2);
        }
    };
    // actix serves HTTP on worker threads of its own (one per core); this
    // runtime only drives the store's connection, the job worker and start-up,
    // so one thread does, and a second only added wake-ups and context
    // switches on a small machine (see BENCHMARKS.md).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async move {
        let app = match Application::build(settings, Arc::new(SystemClock)).await {
            Ok(app) => app,
            Err(StartupError::Config(errors)) => {
                for e in errors.errors() {
                    eprintln!("plivo-2fa: {e}");
                }
                return ExitCode::from(2);
            }
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
        if app.demo_page {
            #[allow(clippy::print_stdout)]
            {
                println!("demo page: {}", app.base_url());
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
