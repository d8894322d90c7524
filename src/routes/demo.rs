//! The demo page at `/`: a person enters a number, gets a code by SMS, call or
//! (when the server sends on it) WhatsApp,
//! types it and sees it verified. The page holds no API key: it calls
//! same-origin endpoints under `/demo/api/` that run the app API's own parsing
//! and verifier calls, guarded by a per-session CSRF token (a double-submit
//! cookie, compared in constant time) and per-IP limits. In sandbox mode it also
//! shows what the simulator delivered, so the flow can be finished with no phone.
//! The page is rendered with what the server allows: the countries of
//! `ALLOWED_COUNTRIES` (each with an example number the guard accepts), the
//! languages of the voice templates, and `WEBOTP_DOMAIN`.
//! Registered only when `DEMO_PAGE` is on.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use actix_web::middleware::DefaultHeaders;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::AppState;
use super::api::{
    CheckRequest, StartRequest, check_verification, parse_id, start_verification,
    unknown_verification,
};
use super::error::{ApiError, retry_secs};
use super::one_method;
use crate::abuse::{Requester, SendGuard};
use crate::apps::App;
use crate::domain::phone::{numbering_plan, regions};
use crate::domain::{Channel, Status, Verification};
use crate::limits::{Decision, Limit};
use crate::sandbox::numbers;
use crate::view::VerificationView;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_CSS: &str = include_str!("../../web/app.css");
const APP_JS: &str = include_str!("../../web/app.js");
const ICON_SVG: &str = include_str!("../../web/icon.svg");

/// The cookie holding the session's CSRF token (HttpOnly: the page reads its
/// copy from a meta tag, so script never needs the cookie).
pub const CSRF_COOKIE: &str = "p2fa_demo_csrf";
/// The header the page echoes the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Random bytes per token (64 hex characters).
const CSRF_TOKEN_BYTES: usize = 32;

/// Starts (each sends an SMS or places a call) per client address.
pub const START_LIMIT: Limit = Limit::new(10, Duration::from_secs(15 * 60));
/// Code checks per client address (each verification also caps its own attempts).
pub const CHECK_LIMIT: Limit = Limit::new(30, Duration::from_secs(15 * 60));
/// Status and sandbox reads per client address: the page polls every two
/// seconds while a code is pending, twice per poll.
pub const READ_LIMIT: Limit = Limit::new(600, Duration::from_secs(5 * 60));
/// IPv6 clients are limited per /64, the block one subscriber usually holds.
const IPV6_LIMIT_PREFIX: u8 = 64;
/// Sandbox deliveries shown per kind, newest first.
const SANDBOX_SHOWN: usize = 5;

/// No inline script or style, nothing from another origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=(), otp-credentials=(self)",
        ))
        .add((CACHE_CONTROL, "no-store"))
}

/// Registers the page, its assets and its endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(one_method("/", "GET", web::get().to(page)).wrap(security_headers()))
        .service(
            web::scope("/demo")
                .wrap(security_headers())
                .service(one_method("/app.css", "GET", web::get().to(css)))
                .service(one_method("/app.js", "GET", web::get().to(js)))
                .service(one_method("/icon.svg", "GET", web::get().to(icon)))
                .service(one_method("/api/start", "POST", web::post().to(start)))
                .service(one_method("/api/check", "POST", web::post().to(check)))
                .service(one_method(
                    "/api/verifications/{id}",
                    "GET",
                    web::get().to(status),
                ))
                .service(one_method(
                    "/api/verifications/{id}/sandbox",
                    "GET",
                    web::get().to(sandbox),
                )),
        );
}

// ---------------------------------------------------------------------------
// The page and its assets

/// What the demo page offers beyond the app API's settings (startup fills it).
#[derive(Debug, Default)]
pub struct DemoSettings {
    /// ISO regions the server sends to (`ALLOWED_COUNTRIES`); `None`: all.
    allowed_countries: Option<Vec<String>>,
    /// `WEBOTP_DOMAIN`: set, the page asks the browser for the code (WebOTP).
    webotp_domain: Option<String>,
    /// Worked out on the first page view: parsing the examples waits for the
    /// phone metadata, which start-up loads off its path.
    countries: OnceLock<Vec<CountryOption>>,
}

impl DemoSettings {
    pub fn new(allowed_countries: Option<Vec<String>>, webotp_domain: Option<String>) -> Self {
        Self {
            allowed_countries,
            webotp_domain,
            countries: OnceLock::new(),
        }
    }

    /// The countries the page's picker offers: exactly those the server sends to.
    pub fn countries(&self, guard: &SendGuard) -> &[CountryOption] {
        self.countries
            .get_or_init(|| country_options(self.allowed_countries.as_deref(), guard))
    }
}

/// One country in the page's picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryOption {
    pub region: &'static str,
    pub calling_code: u16,
    /// The trunk prefix the page drops from a national number (`0` in the UK).
    pub national_prefix: Option<&'static str>,
    /// A number for the hint, as people there write it; only one this server
    /// would send an SMS to (libphonenumber's example mobile, through the guard).
    pub example: Option<String>,
}

/// The picker's countries: the allowed regions (every region when all are
/// allowed) that have a numbering plan, sorted by ISO code.
pub fn country_options(allowed: Option<&[String]>, guard: &SendGuard) -> Vec<CountryOption> {
    let mut wanted: Vec<&str> = match allowed {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => regions(),
    };
    wanted.sort_unstable();
    wanted.dedup();
    wanted
        .into_iter()
        .filter_map(numbering_plan)
        .map(|plan| CountryOption {
            region: plan.region,
            calling_code: plan.calling_code,
            national_prefix: plan.national_prefix,
            example: plan
                .example_mobile
                .filter(|n| guard.check_number(n, Channel::Sms).is_ok())
                .map(|n| n.national_format()),
        })
        .collect()
}

/// What the page template is filled with.
#[derive(Debug)]
pub struct PageVars<'a> {
    pub brand: &'a str,
    pub csrf_token: &'a str,
    pub code_length: u8,
    /// Test numbers and what they do; `None` outside the sandbox (the panel goes).
    pub sandbox: Option<&'a [(&'a str, &'a str)]>,
    pub countries: &'a [CountryOption],
    /// The voice (and SMS) languages the server has templates for.
    pub locales: &'a [&'a str],
    pub webotp_domain: Option<&'a str>,
    /// Whether the page offers WhatsApp (the demo's application sends on it).
    pub whatsapp: bool,
}

const SANDBOX_START: &str = "<!-- sandbox -->";
const SANDBOX_END: &str = "<!-- /sandbox -->";
const WHATSAPP_START: &str = "<!-- whatsapp -->";
const WHATSAPP_END: &str = "<!-- /whatsapp -->";

/// Drops every part of `html` between the markers `start` and `end`.
fn drop_sections(html: &mut String, start: &str, end: &str) {
    while let (Some(from), Some(to)) = (html.find(start), html.find(end)) {
        if to < from {
            break;
        }
        html.replace_range(from..to + end.len(), "");
    }
}

/// Fills the page template. Every value is HTML-escaped; outside the sandbox
/// the part between the sandbox markers is dropped, and without WhatsApp the
/// part between the WhatsApp markers.
pub fn render_page(template: &str, vars: &PageVars<'_>) -> String {
    let mut html = template.to_owned();
    if vars.sandbox.is_none() {
        drop_sections(&mut html, SANDBOX_START, SANDBOX_END);
    }
    if !vars.whatsapp {
        drop_sections(&mut html, WHATSAPP_START, WHATSAPP_END);
    }
    let test_numbers: String = vars
        .sandbox
        .unwrap_or_default()
        .iter()
        .map(|(number, what)| {
            format!(
                "<li><button type=\"button\" class=\"link test-number\" data-number=\"{n}\">{n}</button> <span>{w}</span></li>",
                n = escape_html(number),
                w = escape_html(what)
            )
        })
        .collect();
    let countries: String = vars
        .countries
        .iter()
        .map(|c| {
            let prefix = c
                .national_prefix
                .map(|p| format!(" data-prefix=\"{}\"", escape_html(p)))
                .unwrap_or_default();
            let example = c
                .example
                .as_deref()
                .map(|e| format!(" data-example=\"{}\"", escape_html(e)))
                .unwrap_or_default();
            format!(
                "<option value=\"{r}\" data-dial=\"{d}\"{prefix}{example}>{r} (+{d})</option>",
                r = escape_html(c.region),
                d = c.calling_code,
            )
        })
        .collect();
    let locales: String = vars
        .locales
        .iter()
        .map(|l| format!("<option value=\"{l}\">{l}</option>", l = escape_html(l)))
        .collect();
    html.replace("{{brand}}", &escape_html(vars.brand))
        .replace("{{csrf_token}}", &escape_html(vars.csrf_token))
        .replace("{{code_length}}", &vars.code_length.to_string())
        .replace(
            "{{sandbox}}",
            if vars.sandbox.is_some() {
                "true"
            } else {
                "false"
            },
        )
        .replace("{{test_numbers}}", &test_numbers)
        .replace("{{countries}}", &countries)
        .replace("{{locales}}", &locales)
        .replace(
            "{{webotp_domain}}",
            &escape_html(vars.webotp_domain.unwrap_or_default()),
        )
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /`: the page, with the session's CSRF token in a cookie and a meta tag.
pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // A tab opened beside another keeps the session's token, so both keep working.
    let token = cookie_value(&req, CSRF_COOKIE)
        .filter(|t| is_token(t))
        .map_or_else(new_token, str::to_owned);
    let Ok(app) = demo_app(&state) else {
        return ApiError::not_found("not_found", "The demo page is off.").error_response();
    };
    let locales: Vec<&str> = state.templates.locales().collect();
    let html = render_page(
        INDEX_HTML,
        &PageVars {
            brand: &app.brand,
            csrf_token: &token,
            code_length: app.policy.code_length.get(),
            sandbox: state.sandbox.as_ref().map(|_| numbers::ALL),
            countries: state.demo.countries(&app.guard),
            locales: &locales,
            webotp_domain: state.demo.webotp_domain.as_deref(),
            whatsapp: app.channels.allows(Channel::WhatsApp) && app.whatsapp.is_some(),
        },
    );
    let secure = if state.public_base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            SET_COOKIE,
            format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        ))
        .body(html)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        // Overrides the default no-store: the assets hold no secret, but are
        // revalidated so a new binary's page never runs an old script.
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// `GET /demo/app.css`
pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// `GET /demo/app.js`
pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /demo/icon.svg`
pub async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON_SVG)
}

// ---------------------------------------------------------------------------
// CSRF

fn new_token() -> String {
    let mut bytes = [0u8; CSRF_TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    crate::domain::lower_hex(&bytes)
}

fn is_token(s: &str) -> bool {
    s.len() == CSRF_TOKEN_BYTES * 2 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The value of cookie `name`, from any `Cookie` header.
fn cookie_value<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(COOKIE)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A demo request whose `X-CSRF-Token` header matches the session cookie.
/// Another site's page can make a browser send the cookie (though SameSite
/// stops most) but cannot read it to fill the header.
#[derive(Debug, Clone, Copy)]
pub struct CsrfChecked;

impl FromRequest for CsrfChecked {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_csrf(req))
    }
}

fn check_csrf(req: &HttpRequest) -> Result<CsrfChecked, ApiError> {
    let cookie = cookie_value(req, CSRF_COOKIE).filter(|t| is_token(t));
    let header = req.headers().get(CSRF_HEADER).and_then(|h| h.to_str().ok());
    match (cookie, header) {
        (Some(cookie), Some(header)) if bool::from(cookie.as_bytes().ct_eq(header.as_bytes())) => {
            Ok(CsrfChecked)
        }
        _ => Err(ApiError::Forbidden {
            code: "csrf_token_invalid",
            message:
                "This request lacks the demo page's security token; reload the page and try again."
                    .to_owned(),
        }),
    }
}

// ---------------------------------------------------------------------------
// Limits

/// Who a limit counts: the client's address, IPv6 by its /64.
fn limit_subject(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            ipnet::Ipv6Net::new(v6, IPV6_LIMIT_PREFIX)
                .map_or_else(|_| v6.to_string(), |net| net.trunc().to_string())
        }
        Some(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        Some(ip) => ip.to_string(),
        None => "unknown".to_owned(),
    }
}

async fn enforce(
    state: &AppState,
    req: &HttpRequest,
    scope: &str,
    limit: Limit,
) -> Result<(), ApiError> {
    let subject = limit_subject(state.client_ip(req));
    match state.limiter.hit(scope, &subject, limit).await? {
        Decision::Allowed { .. } => Ok(()),
        Decision::Limited { retry_after_ms } => {
            let secs = retry_secs(retry_after_ms);
            Err(ApiError::TooManyRequests {
                code: "demo_rate_limited",
                message: format!(
                    "Too many requests from your network; try again in {secs} seconds."
                ),
                retry_after_secs: secs,
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Endpoints

/// A verification as the page needs it: the API's view, plus the server's
/// clock (so the countdown runs on the server's time, not the browser's) and
/// when the code may be sent again.
#[derive(Debug, Serialize)]
struct DemoReply<'a> {
    verification: VerificationView<'a>,
    server_time: String,
    /// Seconds until another send is allowed; `None` when no sends are left.
    resend_in_secs: Option<u64>,
}

/// The application the demo page runs as: the default one (configuration
/// turns the page on only when there is one).
fn demo_app(state: &AppState) -> Result<&Arc<App>, ApiError> {
    state
        .apps
        .default_app()
        .ok_or_else(|| ApiError::not_found("not_found", "The demo page is off."))
}

fn reply(state: &AppState, app: &App, status: StatusCode, v: &Verification) -> HttpResponse {
    let now = state.now();
    let policy = &app.policy;
    let cooldown = Duration::from_millis(policy.send.cooldown_ms);
    let resend_in_secs = (v.status_at(now) == Status::Pending && v.sends < policy.send.max_sends)
        .then(|| {
            now.millis_until(v.last_sent_at.plus(cooldown))
                .div_ceil(1000)
        });
    HttpResponse::build(status).json(DemoReply {
        verification: VerificationView::new(v),
        server_time: now.to_rfc3339(),
        resend_in_secs,
    })
}

/// `POST /demo/api/start` `{"to", "channel"}`
pub async fn start(
    _csrf: CsrfChecked,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<StartRequest>,
) -> Result<HttpResponse, ApiError> {
    enforce(&state, &req, "demo_start", START_LIMIT).await?;
    let who = Requester {
        ip: state.client_ip(&req),
        api_key: None,
    };
    let app = demo_app(&state)?;
    let (status, v) = start_verification(&state, app, body.into_inner(), &who).await?;
    Ok(reply(&state, app, status, &v))
}

/// `POST /demo/api/check` `{"id" | "to", "code"}`
pub async fn check(
    _csrf: CsrfChecked,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    enforce(&state, &req, "demo_check", CHECK_LIMIT).await?;
    let app = demo_app(&state)?;
    let v = check_verification(&state, app, body.into_inner()).await?;
    Ok(reply(&state, app, StatusCode::OK, &v))
}

async fn load(state: &AppState, raw_id: &str) -> Result<Verification, ApiError> {
    let id = parse_id(raw_id)?;
    state
        .use_cases
        .read
        .get(demo_app(state)?, &id)
        .await?
        .ok_or_else(unknown_verification)
}

/// `GET /demo/api/verifications/{id}`: the page polls this while a code is
/// pending, to follow deliveries and to learn when the server says expired.
pub async fn status(
    _csrf: CsrfChecked,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    enforce(&state, &req, "demo_read", READ_LIMIT).await?;
    let v = load(&state, &path).await?;
    Ok(reply(&state, demo_app(&state)?, StatusCode::OK, &v))
}

#[derive(Debug, Serialize)]
struct SandboxMessageView {
    text: String,
    status: String,
    /// `sms` or `whatsapp`.
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Serialize)]
struct SandboxCallView {
    /// What the call said, one utterance per line.
    transcript: String,
    status: String,
}

#[derive(Debug, Serialize)]
struct SandboxView {
    messages: Vec<SandboxMessageView>,
    calls: Vec<SandboxCallView>,
}

/// `GET /demo/api/verifications/{id}/sandbox`: what the simulator delivered to
/// this verification's number, newest first. Sandbox mode only.
pub async fn sandbox(
    _csrf: CsrfChecked,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(sandbox) = state.sandbox.as_deref() else {
        return Err(ApiError::not_found("not_found", "The sandbox is off."));
    };
    enforce(&state, &req, "demo_read", READ_LIMIT).await?;
    let v = load(&state, &path).await?;
    let to = v.to.as_e164();
    let messages = sandbox
        .messages()
        .into_iter()
        .rev()
        .filter(|m| m.to == to)
        .take(SANDBOX_SHOWN)
        .map(|m| SandboxMessageView {
            text: m.text,
            status: m.status,
            kind: m.kind,
        })
        .collect();
    let calls = sandbox
        .calls()
        .into_iter()
        .rev()
        .filter(|c| c.to == to)
        .take(SANDBOX_SHOWN)
        .map(|c| SandboxCallView {
            transcript: c.spoken.join("\n"),
            status: c.status,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SandboxView { messages, calls }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    const NUMBERS: &[(&str, &str)] = &[("+12025550150", "fails <on purpose> & loudly")];

    static COUNTRIES: std::sync::LazyLock<Vec<CountryOption>> = std::sync::LazyLock::new(|| {
        vec![CountryOption {
            region: "GB",
            calling_code: 44,
            national_prefix: Some("0"),
            example: Some("07400 <123456>".to_owned()),
        }]
    });

    fn vars<'a>(sandbox: Option<&'a [(&'a str, &'a str)]>) -> PageVars<'a> {
        PageVars {
            brand: "Acme \"Bank\"",
            csrf_token: "ab12",
            code_length: 6,
            sandbox,
            countries: &COUNTRIES,
            locales: &["en-US", "de-DE"],
            webotp_domain: Some("otp.example.com"),
            whatsapp: false,
        }
    }

    #[test]
    fn the_whatsapp_button_is_kept_only_when_whatsapp_is_on() {
        let template = "<form><!-- whatsapp --><button id=\"send-whatsapp\"></button><!-- /whatsapp --></form>";
        let off = render_page(template, &vars(None));
        assert_eq!(off, "<form></form>");
        let on = render_page(
            template,
            &PageVars {
                whatsapp: true,
                ..vars(None)
            },
        );
        assert!(on.contains("id=\"send-whatsapp\""), "{on}");
    }

    #[test]
    fn the_page_template_escapes_every_value_it_fills_in() {
        let template = "<title>{{brand}}</title><meta content=\"{{csrf_token}}\">{{code_length}}<!-- sandbox --><ul>{{test_numbers}}</ul><!-- /sandbox -->";
        let html = render_page(template, &vars(Some(NUMBERS)));
        assert!(
            html.contains("<title>Acme &quot;Bank&quot;</title>"),
            "{html}"
        );
        assert!(html.contains("content=\"ab12\""));
        assert!(html.contains(">6<"));
        assert!(
            html.contains("fails &lt;on purpose&gt; &amp; loudly"),
            "{html}"
        );
        assert!(html.contains("data-number=\"+12025550150\""));
    }

    #[test]
    fn the_page_template_fills_in_the_countries_locales_and_webotp_domain_escaped() {
        let template = "<select>{{countries}}</select><select>{{locales}}</select><meta content=\"{{webotp_domain}}\">";
        let html = render_page(template, &vars(None));
        assert!(
            html.contains("<option value=\"GB\" data-dial=\"44\" data-prefix=\"0\" data-example=\"07400 &lt;123456&gt;\">GB (+44)</option>"),
            "{html}"
        );
        assert!(html.contains("<option value=\"de-DE\">de-DE</option>"));
        assert!(html.contains("content=\"otp.example.com\""));
        let mut off = vars(None);
        off.webotp_domain = None;
        assert!(render_page(template, &off).contains("content=\"\""));
    }

    fn guard(allowed: &str) -> SendGuard {
        let settings = crate::abuse::Settings {
            allowed_countries: (allowed != "*")
                .then(|| allowed.split(',').map(str::to_owned).collect()),
            ..crate::abuse::Settings::default()
        };
        let store = crate::store::Store::Memory(crate::store::MemoryStore::new());
        let clock = std::sync::Arc::new(crate::domain::SystemClock);
        let limiter = crate::limits::Limiter::new(store.clone(), clock);
        SendGuard::new(
            crate::domain::ApplicationId::default(),
            limiter,
            store,
            settings,
        )
    }

    #[test]
    fn the_picker_offers_exactly_the_allowed_countries_with_examples_the_guard_accepts() {
        let allowed: Vec<String> = crate::abuse::DEFAULT_ALLOWED_COUNTRIES
            .split(',')
            .map(str::to_owned)
            .collect();
        let g = guard(crate::abuse::DEFAULT_ALLOWED_COUNTRIES);
        let options = country_options(Some(&allowed), &g);
        let mut offered: Vec<&str> = options.iter().map(|c| c.region).collect();
        let mut expected: Vec<&str> = allowed.iter().map(String::as_str).collect();
        offered.sort_unstable();
        expected.sort_unstable();
        assert_eq!(offered, expected);
        for c in &options {
            assert!(c.example.is_some(), "{} has an example", c.region);
        }
        let gb = options.iter().find(|c| c.region == "GB").unwrap();
        assert_eq!((gb.calling_code, gb.national_prefix), (44, Some("0")));
        // Every region when all are allowed; an unknown code is left out.
        let all = country_options(None, &guard("*"));
        assert!(all.len() > 200, "{}", all.len());
        let odd = vec!["US".to_owned(), "ZZ".to_owned()];
        assert_eq!(country_options(Some(&odd), &guard("US")).len(), 1);
    }

    #[test]
    fn outside_the_sandbox_the_page_has_no_sandbox_panel() {
        let template = "a<!-- sandbox -->panel {{test_numbers}}<!-- /sandbox -->b{{sandbox}}";
        assert_eq!(render_page(template, &vars(None)), "abfalse");
        assert!(render_page(template, &vars(Some(NUMBERS))).ends_with("btrue"));
    }

    #[test]
    fn the_shipped_page_has_no_inline_script_or_style() {
        let html = render_page(INDEX_HTML, &vars(Some(NUMBERS)));
        assert!(!html.contains("<script>"), "scripts come from app.js only");
        assert!(!html.contains("style="), "styles come from app.css only");
        assert!(!html.contains("<style"));
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn a_csrf_token_must_be_in_both_the_cookie_and_the_header_and_match() {
        let token = new_token();
        let cookie = format!("other=1; {CSRF_COOKIE}={token}");
        let ok = TestRequest::default()
            .insert_header((COOKIE, cookie.as_str()))
            .insert_header((CSRF_HEADER, token.as_str()))
            .to_http_request();
        assert!(check_csrf(&ok).is_ok());
        let no_header = TestRequest::default()
            .insert_header((COOKIE, cookie.as_str()))
            .to_http_request();
        assert!(check_csrf(&no_header).is_err());
        let no_cookie = TestRequest::default()
            .insert_header((CSRF_HEADER, token.as_str()))
            .to_http_request();
        assert!(check_csrf(&no_cookie).is_err());
        let other = new_token();
        let wrong = TestRequest::default()
            .insert_header((COOKIE, cookie.as_str()))
            .insert_header((CSRF_HEADER, other.as_str()))
            .to_http_request();
        assert!(check_csrf(&wrong).is_err());
        let empty = TestRequest::default()
            .insert_header((COOKIE, format!("{CSRF_COOKIE}=")))
            .insert_header((CSRF_HEADER, ""))
            .to_http_request();
        assert!(check_csrf(&empty).is_err());
    }

    #[test]
    fn limits_count_ipv6_clients_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(limit_subject(Some(a)), limit_subject(Some(b)));
        assert_eq!(limit_subject(Some(a)), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(limit_subject(Some(mapped)), "198.51.100.7");
        assert_eq!(limit_subject(None), "unknown");
    }
}
