//! The one place that builds concrete things: the store, the keyring, the Plivo
//! client (pointed at Plivo or at the sandbox simulator), the applications,
//! the use cases, the job worker, and the actix App bound to its listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, web};
use secrecy::SecretString;
use url::Url;

use crate::abuse::SendGuard;
use crate::apps::{self, Apps};
use crate::config::{ConfigError, ConfigErrors, CredentialCheck, PlivoMode, Settings};
use crate::connections::{self, Conn, Gate, Limits, LimitsError};
use crate::delivery::Deliverer;
use crate::domain::{Clock, Keyring, random};
use crate::drain::Drain;
use crate::events::{Outbox, Webhook};
use crate::jobs::Jobs;
use crate::limits::Limiter;
use crate::plivo::PlivoClient;
use crate::plivo::client::PlivoClientConfig;
use crate::plivo::xml::Templates;
use crate::routes::{self, AppState, UseCases};
use crate::sandbox::Simulator;
use crate::service::{
    CheckCode, Dispatcher, Expiry, Factors, Fallback, ReadVerification, Receipts,
    StartVerification, VoiceCall,
};
use crate::store::redis::Persistence;
use crate::store::{MemoryStore, RedisStore, Store, StoreError};

/// How long a client may take to send its request head (slowloris guard).
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection is kept (short, so a draining
/// shutdown is not held up by idle proxy connections).
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long a client that closes its half of the connection gets to close
/// the rest after the last answer.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long in-flight requests get to finish on shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// After the last response was handed over, time for it to leave the socket.
const FLUSH_GRACE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error("REDIS_URL: cannot use Redis: {0}")]
    Store(#[from] StoreError),
    #[error("LISTEN_ADDR: cannot listen: {0}")]
    Listen(std::io::Error),
    #[error("sandbox: cannot start the Plivo simulator: {0}")]
    Sandbox(std::io::Error),
    #[error("PLIVO_API_BASE_URL: cannot build the Plivo client: {0}")]
    Plivo(String),
    #[error(
        "PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN: Plivo refused them ({0}); PLIVO_CHECK_CREDENTIALS=strict stops here"
    )]
    CredentialsRefused(crate::plivo::PlivoError),
    #[error("METRICS_ADDR: cannot listen: {0}")]
    MetricsListen(std::io::Error),
    #[error("XML_TEMPLATES_DIR: {0}")]
    Templates(#[from] crate::plivo::xml::TemplateError),
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    base_url: Url,
    server: Server,
    /// `/metrics` apart from the app's routes (`METRICS_ADDR`), and its port.
    metrics: Option<(Server, u16)>,
    /// The key generated in sandbox mode when `API_KEYS` is unset.
    pub generated_api_key: Option<SecretString>,
    pub store_kind: &'static str,
    /// Whether `/` serves the demo page.
    pub demo_page: bool,
    simulator: Option<Simulator>,
    worker: tokio::task::JoinHandle<()>,
    use_cases: UseCases,
    apps: Arc<Apps>,
    drain: Arc<Drain>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let fds = connections::raise_fd_limit();
        let limits = Limits::sized(
            fds,
            settings.max_connections,
            settings.max_connections_per_ip,
        )
        .map_err(|e| {
            let var = match e {
                LimitsError::AboveFdLimit { .. } => "MAX_CONNECTIONS",
                LimitsError::PerClientAboveTotal { .. } => "MAX_CONNECTIONS_PER_IP",
            };
            StartupError::Config(
                ConfigError {
                    var: var.into(),
                    reason: e.to_string(),
                }
                .into(),
            )
        })?;
        let listener = TcpListener::bind(settings.listen_addr).map_err(StartupError::Listen)?;
        let local = listener.local_addr().map_err(StartupError::Listen)?;
        let metrics_listener = settings
            .metrics_addr
            .map(TcpListener::bind)
            .transpose()
            .map_err(StartupError::MetricsListen)?;
        let base_url = match &settings.public_base_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{local}")).map_err(|e| {
                StartupError::Config(
                    ConfigError {
                        var: "LISTEN_ADDR".into(),
                        reason: e.to_string(),
                    }
                    .into(),
                )
            })?,
        };

        // Off the start-up path: see `phone::warm_up`.
        if let Err(e) = std::thread::Builder::new()
            .name("phone-metadata".into())
            .spawn(crate::domain::phone::warm_up)
        {
            tracing::warn!(error = %e, "cannot preload the phone number metadata");
        }
        let templates = match &settings.templates_dir {
            Some(dir) => Templates::load(dir)?,
            None => Templates::built_in()?,
        };
        crate::telemetry::metrics();
        let keyring = Arc::new(if settings.otp_secrets.is_empty() {
            Keyring::random()
        } else {
            Keyring::new(&settings.otp_secrets)
        });
        let store = match &settings.redis {
            Some(target) => Store::Redis(
                RedisStore::connect(
                    target,
                    &settings.redis_key_prefix,
                    settings.redis_timeout,
                    Arc::clone(&keyring),
                )
                .await?,
            ),
            None => Store::Memory(MemoryStore::new()),
        };
        match &store {
            Store::Redis(redis) => warn_without_persistence(redis).await,
            Store::Memory(_) if !settings.is_sandbox() => tracing::warn!(
                "live mode with the in-memory store (no REDIS_URL): pending verifications, locks and limits live in this process only, are lost on restart and are not shared with other instances; set REDIS_URL"
            ),
            Store::Memory(_) => {}
        }

        let mut plivo_tokens = Vec::new();
        let (simulator, client_config) = match &settings.plivo {
            PlivoMode::Live {
                auth_id,
                auth_tokens,
            } => (
                {
                    plivo_tokens.clone_from(auth_tokens);
                    None
                },
                PlivoClientConfig {
                    auth_id: auth_id.clone(),
                    auth_token: auth_tokens
                        .first()
                        .cloned()
                        .unwrap_or_else(|| SecretString::from("")),
                    api_base_url: settings.plivo_api_base_url.clone(),
                    phlo_base_url: settings.plivo_phlo_base_url.clone(),
                    timeout: settings.plivo_timeout,
                    connect_timeout: settings.plivo_connect_timeout,
                },
            ),
            PlivoMode::Sandbox => {
                let sim = Simulator::start(base_url.as_str()).map_err(StartupError::Sandbox)?;
                plivo_tokens.push(sim.auth_token.clone());
                let config = PlivoClientConfig {
                    auth_id: sim.auth_id.clone(),
                    auth_token: sim.auth_token.clone(),
                    api_base_url: sim.base_url.clone(),
                    phlo_base_url: sim.base_url.clone(),
                    timeout: settings.plivo_timeout,
                    connect_timeout: settings.plivo_connect_timeout,
                };
                (Some(sim), config)
            }
        };
        let client = PlivoClient::new(client_config).map_err(StartupError::Plivo)?;
        if simulator.is_none() {
            check_credentials(&client, settings.plivo_check).await?;
        }
        if settings.delivery.voice_from.is_none() {
            tracing::warn!(
                "no PLIVO_FROM_NUMBER: SMS go through the Powerpack; voice calls and the voice fallback are off"
            );
        }
        let deliverer = Deliverer::new(client, base_url.clone(), settings.delivery.clone());
        let capabilities = routes::Capabilities {
            voice: deliverer.voice_available(),
            own_sms_text: deliverer.writes_sms_text(),
        };
        let store_kind = store.describe();
        let limiter = Limiter::new(store.clone(), clock.clone());
        let (apps, generated_api_key) = applications(&settings, &limiter, &store)?;
        let apps = Arc::new(apps);
        crate::telemetry::start_at_zero(apps.iter().map(|a| a.id.as_str()));
        let outbox = Outbox::new(store.clone(), clock.clone(), Arc::clone(&keyring));
        let dispatcher = Dispatcher::new(store.clone(), deliverer);
        let fallback = Fallback::new(
            store.clone(),
            Arc::clone(&keyring),
            clock.clone(),
            dispatcher.clone(),
            outbox.clone(),
            Arc::clone(&apps),
        );
        let use_cases = UseCases {
            start: StartVerification::new(
                store.clone(),
                Arc::clone(&keyring),
                clock.clone(),
                dispatcher,
                outbox.clone(),
            ),
            check: CheckCode::new(
                store.clone(),
                Arc::clone(&keyring),
                clock.clone(),
                outbox.clone(),
            ),
            read: ReadVerification::new(store.clone(), clock.clone(), outbox.clone()),
            receipts: Receipts::new(
                store.clone(),
                Arc::clone(&keyring),
                clock.clone(),
                outbox.clone(),
                fallback.clone(),
                Arc::clone(&apps),
            ),
            voice: VoiceCall::new(store.clone(), Arc::clone(&keyring), clock.clone()),
            factors: Factors::new(
                store.clone(),
                Arc::clone(&keyring),
                clock.clone(),
                outbox.clone(),
            ),
        };
        let jobs = Jobs::new(
            store.clone(),
            clock.clone(),
            fallback,
            Expiry::new(
                store.clone(),
                clock.clone(),
                outbox.clone(),
                Arc::clone(&apps),
            ),
            outbox,
            Arc::clone(&apps),
        );
        let worker = tokio::spawn(jobs.run(settings.scheduler_poll));

        let sandbox_on = simulator.is_some();
        let features = routes::Features {
            sandbox: sandbox_on,
            demo_page: settings.demo_page,
            metrics: metrics_listener.is_none(),
        };
        let drain = Drain::new();
        let default_abuse = apps.default_app().map(|a| a.guard.settings().clone());
        let state = web::Data::new(AppState {
            apps: Arc::clone(&apps),
            use_cases: use_cases.clone(),
            capabilities,
            clock: clock.clone(),
            replay: routes::signed::ReplayGuard::new(
                store.clone(),
                clock.clone(),
                apps.longest_lifetime(),
            ),
            readiness: store,
            sandbox: simulator.as_ref().map(|s| s.state.clone()),
            plivo_tokens,
            accept_v2: settings.plivo_accept_v2,
            public_base: AppState::base_without_slash(&base_url),
            templates,
            limiter,
            trusted_proxies: settings.trusted_proxies.clone(),
            drain: Arc::clone(&drain),
            demo: routes::demo::DemoSettings::new(
                default_abuse.and_then(|a| a.allowed_countries),
                apps.default_app().and_then(|a| a.webotp_domain.clone()),
            ),
        });
        let metrics = match metrics_listener {
            Some(listener) => {
                let port = listener
                    .local_addr()
                    .map_err(StartupError::MetricsListen)?
                    .port();
                let state = state.clone();
                // An operator's scraper, not the public: one worker, only /metrics.
                let server = actix_web::HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .service(routes::metrics_route())
                        .default_service(web::to(routes::error::not_found))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .map_err(StartupError::MetricsListen)?
                .run();
                Some((server, port))
            }
            None => None,
        };
        let gate = Gate::new(limits.per_client, settings.trusted_proxies.clone());
        let server = serve(listener, local, limits, gate, move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(routes::middleware::around))
                .app_data(state.clone())
                .configure(|cfg| routes::configure(cfg, features))
                .default_service(web::to(routes::error::not_found))
        })
        .map_err(StartupError::Listen)?;

        tracing::info!(
            listen = %local,
            public_base_url = %base_url,
            store = store_kind,
            plivo = if sandbox_on { "sandbox" } else { "live" },
            demo_page = features.demo_page,
            file_descriptors = fds,
            max_connections = limits.total,
            max_connections_per_ip = limits.per_client,
            metrics_port = metrics.as_ref().map(|(_, port)| *port),
            "plivo-2fa ready"
        );
        Ok(Self {
            port: local.port(),
            base_url,
            server,
            metrics,
            generated_api_key,
            store_kind,
            demo_page: features.demo_page,
            simulator,
            worker,
            use_cases,
            apps,
            drain,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on apart from the app (`METRICS_ADDR`).
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The use cases behind the routes, for in-process drivers (tests, benches).
    pub fn use_cases(&self) -> UseCases {
        self.use_cases.clone()
    }

    /// The applications it serves.
    pub fn apps(&self) -> Arc<Apps> {
        Arc::clone(&self.apps)
    }

    /// Serves until SIGINT/SIGTERM: then stops accepting, lets the requests
    /// in flight finish (see [`crate::drain`]), and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let drain = Arc::clone(&self.drain);
        let stopper = tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!(
                in_flight = drain.in_flight(),
                "shutting down: no new connections, finishing requests in flight"
            );
            handle.pause().await;
            let left = drain.drained(SHUTDOWN_TIMEOUT).await;
            if left > 0 {
                tracing::warn!(
                    in_flight = left,
                    "shutdown: requests still running after the limit are cut"
                );
            }
            // Every request has been answered; idle keep-alive connections
            // need not be waited for.
            tokio::time::sleep(FLUSH_GRACE).await;
            handle.stop(false).await;
        });
        let result = self.server.await;
        if let Some((task, handle)) = metrics {
            handle.stop(false).await;
            let _ = task.await;
        }
        stopper.abort();
        self.worker.abort();
        if let Some(sim) = &self.simulator {
            sim.stop().await;
        }
        result
    }
}

/// Every configured application, ready to serve, and the key generated for
/// the sandbox's default application when it has none.
fn applications(
    settings: &Settings,
    limiter: &Limiter,
    store: &Store,
) -> Result<(Apps, Option<SecretString>), StartupError> {
    let mut generated = None;
    let mut apps = Vec::with_capacity(settings.applications.len());
    for app in &settings.applications {
        let mut keys = app.api_keys.clone();
        if keys.is_empty() {
            let key = SecretString::from(format!("sandbox_{}", random::hex(16)));
            keys.push(key.clone());
            generated = Some(key);
        }
        let webhook = app
            .webhook
            .clone()
            .map(Webhook::new)
            .transpose()
            .map_err(StartupError::Plivo)?
            .map(Arc::new);
        let ready = apps::App {
            id: app.id.clone(),
            brand: app.brand.clone(),
            policy: app.policy,
            channels: app.channels,
            default_locale: app.default_locale.clone(),
            wording: app.wording.clone(),
            guard: SendGuard::new(
                app.id.clone(),
                limiter.clone(),
                store.clone(),
                app.abuse.clone(),
            ),
            webhook,
            webotp_domain: app.webotp_domain.clone(),
            totp_digits: app.totp_digits,
            max_factors_per_identity: app.max_factors_per_identity,
            whatsapp: app.whatsapp.clone(),
        };
        apps.push((ready, keys));
    }
    Ok((Apps::new(apps), generated))
}

/// Asks Plivo once whether it takes the credentials (an account read) and
/// logs its answer. Only a refusal (401 or 403) under
/// [`CredentialCheck::Strict`] stops start-up: Plivo being unreachable for
/// a moment must not keep the server from (re)starting.
async fn check_credentials(
    client: &PlivoClient,
    check: CredentialCheck,
) -> Result<(), StartupError> {
    use crate::plivo::PlivoError;
    if check == CredentialCheck::Off {
        return Ok(());
    }
    match client.read_account().await {
        Ok(account) => tracing::info!(
            account_type = account.account_type.as_deref().unwrap_or("unknown"),
            billing_mode = account.billing_mode.as_deref().unwrap_or("unknown"),
            "Plivo accepts the credentials (account read)"
        ),
        Err(
            e @ PlivoError::Rejected {
                status: 401 | 403, ..
            },
        ) => {
            if check == CredentialCheck::Strict {
                return Err(StartupError::CredentialsRefused(e));
            }
            tracing::error!(
                error = %e,
                "Plivo refuses PLIVO_AUTH_ID / PLIVO_AUTH_TOKEN: every send will fail until they are fixed (PLIVO_CHECK_CREDENTIALS=strict makes this fatal)"
            );
        }
        Err(e) => tracing::warn!(
            error = %e,
            "cannot check the Plivo credentials at start-up (account read); starting anyway"
        ),
    }
    Ok(())
}

/// Without AOF or RDB, a Redis restart loses every pending verification,
/// lock and rate-limit counter: worth a warning at start-up.
async fn warn_without_persistence(redis: &RedisStore) {
    match redis.persistence().await {
        Persistence::On => {}
        Persistence::Off => tracing::warn!(
            "Redis keeps nothing on disk (neither AOF nor RDB snapshots): a Redis restart loses every pending verification and lock; turn on appendonly (see docs/DEPLOYMENT.md)"
        ),
        Persistence::NoneSeen => tracing::warn!(
            "Redis shows no AOF and no RDB snapshot since it started (CONFIG GET is not allowed, so its snapshot schedule is unknown): if it keeps nothing on disk, a Redis restart loses every pending verification and lock"
        ),
        Persistence::Unknown => {
            tracing::info!(
                "cannot tell whether Redis keeps its data on disk (CONFIG GET and INFO refused)"
            );
        }
    }
}

/// The HTTP server, assembled as actix-web's `HttpServer` assembles it, with
/// two additions: the global connection limit is spread over the workers, and
/// every connection passes the per-address [`Gate`] and is carried by a
/// [`Conn`] (see [`crate::connections`]).
fn serve<F, I>(
    listener: TcpListener,
    local: std::net::SocketAddr,
    limits: Limits,
    gate: Arc<Gate>,
    app: F,
) -> std::io::Result<Server>
where
    F: Fn() -> App<I> + Send + Clone + 'static,
    I: actix_service::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
{
    use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};

    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let per_worker = usize::try_from(limits.total)
        .unwrap_or(usize::MAX)
        .div_ceil(workers)
        .max(1);
    Ok(Server::build()
        .workers(workers)
        .max_concurrent_connections(per_worker)
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
        .disable_signals()
        .listen("plivo-2fa", listener, move || {
            // Runs on each worker's thread: its Redis commands go on a
            // connection of its own, driven on its own runtime.
            crate::store::redis::use_own_connections();
            let gate = Arc::clone(&gate);
            let http = actix_http::HttpService::build()
                .keep_alive(KEEP_ALIVE)
                .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
                .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                .local_addr(local)
                .finish(map_config(
                    app()
                        .into_factory()
                        .map_err(|e: actix_web::Error| e.error_response()),
                    |()| actix_web::dev::AppConfig::default(),
                ));
            fn_service(move |io: tokio::net::TcpStream| {
                let peer = io.peer_addr().ok();
                let slot = peer.and_then(|p| gate.admit(p.ip()));
                async move {
                    match slot {
                        Some(slot) => Ok((
                            Conn::new(io, slot, CLIENT_REQUEST_TIMEOUT),
                            actix_http::Protocol::Http1,
                            peer,
                        )),
                        None => {
                            connections::refuse(io).await;
                            Err(actix_http::error::DispatchError::Io(std::io::Error::other(
                                "too many connections from this address",
                            )))
                        }
                    }
                }
            })
            .and_then(http)
        })?
        .run())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT still stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
