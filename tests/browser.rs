//! The demo page in a real headless browser: Debian's Chromium driven through
//! chromedriver (WebDriver) with fantoccini, against the real server in
//! sandbox mode on real Redis. A person's flows end to end, each state saved as
//! a screenshot under `target/screenshots/` for a person to look at.
//!
//! These tests fail, never skip, when the browser is missing:
//! `./scripts/test.sh` installs `chromium` and `chromium-driver`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestApp, random_number, spawn_app, spoken_digits, wrong};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=en-US",
];
/// Where a page is looked at.
#[derive(Debug, Clone, Copy)]
enum Screen {
    /// A laptop's window.
    Desktop,
    /// A phone's screen (390 × 844 CSS pixels, touch), emulated by Chromium:
    /// a desktop window cannot be made that narrow.
    Phone,
}
const DESKTOP: Screen = Screen::Desktop;
const PHONE: Screen = Screen::Phone;
/// How long any one thing may take to appear (two cores, a cold browser).
const WAIT: Duration = Duration::from_secs(20);
const DRIVER_START: Duration = Duration::from_secs(20);

/// A chromedriver and the headless Chromium session it runs, both ours alone.
struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
    base: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshot_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| manifest.join("target"), |t| manifest.join(t));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium with a
    /// fresh profile, on `screen`.
    async fn open(app: &TestApp, screen: Screen) -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: run ./scripts/test.sh, which installs chromium and chromium-driver"
            );
        }
        let port = free_port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so teardown ends chromedriver and every
        // Chromium process it started, and nothing else.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("p2fa-chromium-{}", driver.id()));
        let mut browser = Self {
            client: None,
            driver,
            profile,
            base: app.base.clone(),
        };

        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < DRIVER_START,
                "chromedriver did not listen on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", browser.profile.display()));
        let mut options = json!({"binary": CHROMIUM});
        match screen {
            Screen::Desktop => args.push("--window-size=1280,900".to_owned()),
            Screen::Phone => {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2, "touch": true, "mobile": true},
                });
            }
        }
        options["args"] = json!(args);
        let capabilities = json!({"browserName": "chrome", "goog:chromeOptions": options});
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("chromedriver opens a Chromium session");
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Ends the session (Chromium quits), then chromedriver.
    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.unwrap();
        }
    }

    async fn open_page(&self) {
        self.client()
            .goto(&format!("{}/", self.base))
            .await
            .unwrap();
        self.find("#phone").await;
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.send_keys(text).await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits for the page to reach `state` (`phone`, `code`, `verified`, `expired`, `locked`…).
    async fn wait_for_state(&self, state: &str) {
        let css = format!("main[data-state=\"{state}\"]");
        let found = self
            .client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&css))
            .await;
        if found.is_err() {
            let now = self.find("main").await.attr("data-state").await.unwrap();
            let message = self.text("#message").await;
            panic!("the page never reached {state:?}: it is {now:?}, saying {message:?}");
        }
    }

    /// Waits until the element's text contains `needle`, and returns the text.
    async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Ok(el) = self.client().find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
                && text.contains(needle)
            {
                return text;
            }
            if started.elapsed() > WAIT {
                let text = self.text(css).await;
                panic!("{css} never said {needle:?}; it says {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The id of the focused element.
    async fn focused(&self) -> String {
        let id = self
            .client()
            .execute("return document.activeElement.id;", vec![])
            .await
            .unwrap();
        id.as_str().unwrap_or_default().to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client().screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Enters a US number in national form and sends a code by SMS.
    async fn send_code_to(&self, number: &str) {
        self.find("#country")
            .await
            .select_by_value("US")
            .await
            .unwrap();
        self.type_into("#phone", national(number)).await;
        self.click("#send-button").await;
        self.wait_for_state("code").await;
    }

    /// The code in the newest SMS the sandbox panel shows.
    async fn code_from_sandbox_sms(&self) -> String {
        self.text("#sandbox-feed article[data-kind=\"sms\"].delivered-latest mark.code")
            .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After a failed test the session was not closed: end the whole group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `+14155550123` → `4155550123`.
fn national(number: &str) -> &str {
    number.strip_prefix("+1").unwrap()
}

async fn verification(app: &TestApp, id: &str) -> serde_json::Value {
    app.get(&format!("/v1/verifications/{id}")).await.body
}

#[tokio::test]
async fn a_person_verifies_a_number_by_sms_reading_the_code_in_the_sandbox_panel() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, DESKTOP).await;
    let number = random_number();

    browser.open_page().await;
    assert_eq!(
        browser.focused().await,
        "phone",
        "the number field has focus"
    );
    browser
        .find("#country")
        .await
        .select_by_value("US")
        .await
        .unwrap();
    browser.type_into("#phone", national(&number)).await;
    browser.screenshot("sms-1-number-entered").await;

    // The keyboard alone sends the form.
    browser
        .type_into("#phone", &char::from(Key::Enter).to_string())
        .await;
    browser.wait_for_state("code").await;
    assert_eq!(browser.focused().await, "code", "focus moves to the code");
    assert!(browser.text("#code-number").await.contains("+1 415"));
    let countdown = browser.wait_for_text("#countdown", "Expires in").await;
    assert!(
        countdown.contains("10:00") || countdown.contains("9:5"),
        "{countdown}"
    );
    let code = browser.code_from_sandbox_sms().await;
    assert_eq!(code.len(), 6);
    assert_eq!(code, app.last_sms_code(&number).await);
    browser.wait_for_text("#delivery", "Text message").await;
    browser.screenshot("sms-2-code-sent").await;

    browser.type_into("#code", &code).await;
    browser.wait_for_state("verified").await;
    assert_eq!(browser.focused().await, "verified-title");
    assert!(browser.text("#verified-number").await.contains("+1 415"));
    browser.screenshot("sms-3-verified").await;

    let id = browser.text("#verified-id").await;
    assert_eq!(verification(&app, &id).await["status"], "approved");
    browser.close().await;
}

#[tokio::test]
async fn a_wrong_code_shows_the_attempts_left_and_the_right_code_then_verifies() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, PHONE).await;
    let number = random_number();

    browser.open_page().await;
    browser.send_code_to(&number).await;
    let code = browser.code_from_sandbox_sms().await;

    browser.type_into("#code", &wrong(&code)).await;
    browser.wait_for_text("#message", "4 attempts left").await;
    assert_eq!(browser.focused().await, "code", "focus returns to the code");
    let field = browser.find("#code").await;
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(field.prop("value").await.unwrap().as_deref(), Some(""));
    assert_eq!(
        browser
            .find("#message")
            .await
            .attr("role")
            .await
            .unwrap()
            .as_deref(),
        Some("status"),
        "the message is announced"
    );
    browser.screenshot("wrong-1-attempts-left-phone").await;

    browser.type_into("#code", &code).await;
    browser.wait_for_state("verified").await;
    browser.screenshot("wrong-2-verified-phone").await;
    browser.close().await;
}

#[tokio::test]
async fn call_me_reads_the_code_out_and_the_spoken_code_verifies() {
    let app = spawn_app(&[("RESEND_COOLDOWN_SECS", "2")]).await;
    let browser = Browser::open(&app, DESKTOP).await;
    let number = random_number();

    browser.open_page().await;
    browser.send_code_to(&number).await;
    let call_me = browser.find("#call-me").await;
    assert!(!call_me.is_enabled().await.unwrap(), "the cooldown holds");
    browser.wait_for_text("#resend-wait", "available in").await;

    // The server's cooldown runs on its clock; the page's on the browser's.
    app.advance(Duration::from_secs(3));
    let started = Instant::now();
    while !call_me.is_enabled().await.unwrap() {
        assert!(started.elapsed() < WAIT, "Call me never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.click("#call-me").await;
    browser.wait_for_text("#message", "Calling +1 415").await;
    browser.wait_for_text("#code-lead", "calling").await;

    let call = browser
        .wait_for_text(
            "#sandbox-feed article[data-kind=\"call\"].delivered-latest",
            "completed",
        )
        .await;
    let spoken = call
        .lines()
        .map(spoken_digits)
        .find(|d| d.len() == 6)
        .unwrap_or_else(|| panic!("no code read out in {call:?}"));
    browser.wait_for_text("#delivery", "Call completed").await;
    browser.screenshot("call-1-transcript").await;

    browser.type_into("#code", &spoken).await;
    browser.wait_for_state("verified").await;
    assert_eq!(browser.text("#verified-channel").await, "Voice call");
    browser.screenshot("call-2-verified").await;
    browser.close().await;
}

#[tokio::test]
async fn the_resend_cooldown_is_shown_as_a_wait_and_a_second_send_returns_to_the_code() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, DESKTOP).await;
    let number = random_number();

    browser.open_page().await;
    browser.send_code_to(&number).await;
    assert!(!browser.find("#call-me").await.is_enabled().await.unwrap());
    let wait = browser.wait_for_text("#resend-wait", "available in").await;
    assert!(wait.contains("30 s") || wait.contains("29 s"), "{wait}");
    browser.screenshot("cooldown-1-call-me-waits").await;

    // Back to the number, and ask again at once: the server answers 429 with
    // Retry-After, and the page returns to the code already on its way.
    browser.click("#change-number").await;
    browser.wait_for_state("phone").await;
    browser.click("#send-button").await;
    browser.wait_for_state("code").await;
    let said = browser.wait_for_text("#message", "Enter it below").await;
    assert!(said.contains("moments ago"), "{said}");
    browser.screenshot("cooldown-2-back-to-the-code").await;

    // A fresh page knows of no code on its way: Send waits out Retry-After.
    browser.open_page().await;
    browser.type_into("#phone", national(&number)).await;
    browser.click("#send-button").await;
    let said = browser
        .wait_for_text("#message", "You can ask for another in")
        .await;
    assert!(said.contains("seconds"), "{said}");
    let send = browser.find("#send-button").await;
    assert!(
        !send.is_enabled().await.unwrap(),
        "Send waits out Retry-After"
    );
    assert!(send.text().await.unwrap().contains(" s)"));
    browser.screenshot("cooldown-3-send-waits").await;
    browser.close().await;
}

#[tokio::test]
async fn an_expired_code_shows_the_expired_state_and_a_new_code_then_verifies() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, DESKTOP).await;
    let number = random_number();

    browser.open_page().await;
    browser.send_code_to(&number).await;
    let old = browser.code_from_sandbox_sms().await;

    // The browser's countdown still shows minutes left; the server says expired.
    app.advance(Duration::from_secs(10 * 60 + 1));
    browser.wait_for_state("expired").await;
    assert_eq!(browser.text("#ended-title").await, "This code has expired");
    assert_eq!(browser.focused().await, "ended-title");
    browser.screenshot("expired-1-expired").await;

    browser.click("#send-again").await;
    browser.wait_for_state("code").await;
    let started = Instant::now();
    let mut fresh = browser.code_from_sandbox_sms().await;
    while fresh == old {
        assert!(started.elapsed() < WAIT, "no new code arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
        fresh = browser.code_from_sandbox_sms().await;
    }
    assert_eq!(fresh, app.last_sms_code(&number).await);
    browser.type_into("#code", &fresh).await;
    browser.wait_for_state("verified").await;
    browser.screenshot("expired-2-new-code-verified").await;
    browser.close().await;
}

#[tokio::test]
async fn too_many_wrong_codes_close_the_verification_with_a_way_to_start_again() {
    let app = spawn_app(&[("MAX_ATTEMPTS", "2")]).await;
    let browser = Browser::open(&app, PHONE).await;
    let number = random_number();

    browser.open_page().await;
    browser.send_code_to(&number).await;
    let code = browser.code_from_sandbox_sms().await;
    browser.type_into("#code", &wrong(&code)).await;
    browser.wait_for_text("#message", "1 attempt left").await;
    browser.type_into("#code", &wrong(&wrong(&code))).await;
    browser.wait_for_state("locked").await;
    assert_eq!(browser.text("#ended-title").await, "Too many wrong codes");
    assert!(
        browser
            .find("#send-again")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    browser.screenshot("locked-1-too-many-attempts-phone").await;
    browser.close().await;
}

#[tokio::test]
async fn a_plivo_failure_is_told_in_plain_words_with_plivos_own_text() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, DESKTOP).await;

    browser.open_page().await;
    // The sandbox's test number whose every Plivo request fails with a 500.
    let test_number = plivo_2fa::sandbox::numbers::API_ERROR_500;
    browser
        .click(&format!(".test-number[data-number=\"{test_number}\"]"))
        .await;
    assert_eq!(browser.focused().await, "phone");
    browser.click("#send-button").await;
    let said = browser
        .wait_for_text("#message", "couldn’t send the code")
        .await;
    assert!(said.contains("Plivo said:"), "{said}");
    assert_eq!(
        browser.find("main").await.attr("data-state").await.unwrap(),
        Some("phone".to_owned())
    );
    browser.screenshot("error-1-plivo-failure").await;
    browser.close().await;
}
