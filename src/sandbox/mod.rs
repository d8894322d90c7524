//! The sandbox: a Plivo-compatible HTTP server on a loopback port that the
//! ordinary Plivo client talks to when no credentials are configured, so the
//! sandbox and production share every line of client code. It checks Basic auth
//! and request shape like Plivo, records what it delivered, and fails on
//! purpose for the documented test numbers.
//!
//! Its parts depend on each other in one direction only: `state` (the
//! records and the signed callbacks) underlies everything; `receipts` and
//! `call` play a message's receipts and a call; `phlo` runs the 2FA PHLO
//! with both; `api` answers Plivo's endpoints with all of them.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use secrecy::SecretString;
use url::Url;

use crate::domain::random;

mod api;
pub mod call;
pub mod numbers;
pub mod phlo;
mod receipts;
mod state;

pub use state::{SandboxCall, SandboxMessage, SandboxPhloRun, SandboxState};

/// The running simulator.
#[derive(Debug)]
pub struct Simulator {
    pub base_url: Url,
    pub auth_id: String,
    pub auth_token: SecretString,
    pub state: Arc<SandboxState>,
    handle: ServerHandle,
}

impl Simulator {
    /// Starts the simulator on a free loopback port with fresh random credentials.
    pub fn start(public_base: &str) -> std::io::Result<Self> {
        let auth_id = format!("MA{}", random::hex(9).to_ascii_uppercase());
        let auth_token = SecretString::from(random::hex(20));
        let state = Arc::new(SandboxState::new(
            auth_id.clone(),
            auth_token.clone(),
            public_base,
        )?);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(64 * 1024)
                        .error_handler(api::json_error),
                )
                .configure(api::configure)
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let base_url = Url::parse(&format!("http://127.0.0.1:{port}/"))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        tracing::info!(sandbox.url = %base_url, "Plivo sandbox simulator listening");
        Ok(Self {
            base_url,
            auth_id,
            auth_token,
            state,
            handle,
        })
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// Until the server's own callers stop asking the simulator for random hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    random::hex(bytes)
}
