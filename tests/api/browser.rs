//! The demo page in a real headless browser: Debian's Chromium driven through
//! chromedriver (WebDriver) with fantoccini, against the real server in
//! sandbox mode on real Redis. A person's flows end to end, each state saved as
//! a screenshot under `target/screenshots/` for a person to look at.
//!
//! These tests fail, never skip, when the browser is missing:
//! `./scripts/test.sh` installs `chromium` and `chromium-driver`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestApp, random_number, spawn_app, spoken_digits, wrong};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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
    /// A small phone's screen: 375 × 667 CSS pixels (an iPhone SE), emulated.
    SmallPhone,
}
const DESKTOP: Screen = Screen::Desktop;
const PHONE: Screen = Screen::Phone;
const SMALL_PHONE: Screen = Screen::SmallPhone;
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
            Screen::Phone | Screen::SmallPhone => {
                let (width, height) = match screen {
                    Screen::SmallPhone => (375, 667),
                    _ => (390, 844),
                };
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": true, "mobile": true},
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
        let url = format!("{}/", self.base);
        self.open_url(&url).await;
    }

    /// Opens the page at `url` (another host name for the same server).
    async fn open_url(&self, url: &str) {
        self.client().goto(url).await.unwrap();
        self.find("#phone").await;
    }

    /// Runs `script` in the page and returns what it returns.
    async fn js(&self, script: &str) -> serde_json::Value {
        self.client()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Pastes `text` into the field as a person does: the text goes on the
    /// clipboard, then Ctrl+V in the focused field (the browser's own paste,
    /// `maxlength` and all, not an event made up by the test).
    async fn paste_into(&self, css: &str, text: &str) {
        let written = self
            .client()
            .execute_async(
                "const [text, done] = arguments; \
                 navigator.clipboard.writeText(text).then(() => done('ok'), e => done(String(e)));",
                vec![json!(text)],
            )
            .await
            .unwrap();
        assert_eq!(written, "ok", "the clipboard takes the text");
        let field = self.find(css).await;
        field.click().await.unwrap();
        field
            .send_keys(&format!("{}v", char::from(Key::Control)))
            .await
            .unwrap();
    }

    /// Presses a key in whatever has the focus.
    async fn press(&self, key: Key) {
        self.client()
            .active_element()
            .await
            .unwrap()
            .send_keys(&char::from(key).to_string())
            .await
            .unwrap();
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
        self.wait_for_any_text(css, &[needle]).await
    }

    /// Waits until the element's text contains one of `needles`, and returns
    /// the text: for a state the page may pass through faster than a poll
    /// sees it on a loaded machine, and the state it then settles in.
    async fn wait_for_any_text(&self, css: &str, needles: &[&str]) -> String {
        let started = Instant::now();
        loop {
            if let Ok(el) = self.client().find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
                && needles.iter().any(|n| text.contains(n))
            {
                return text;
            }
            if started.elapsed() > WAIT {
                let text = self.text(css).await;
                panic!("{css} never said any of {needles:?}; it says {text:?}");
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

    /// Picks the US and types a US number in national form.
    async fn enter_us_number(&self, number: &str) {
        self.find("#country")
            .await
            .select_by_value("US")
            .await
            .unwrap();
        self.type_into("#phone", national(number)).await;
    }

    /// Enters a US number in national form and sends a code by SMS.
    async fn send_code_to(&self, number: &str) {
        self.enter_us_number(number).await;
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
    browser.wait_for_text("#resend-wait", "available in").await;
    // During the cooldown "Call me" stays in the tab order and says why it
    // waits, rather than being disabled.
    assert!(call_me.is_enabled().await.unwrap(), "reachable by keyboard");
    assert_eq!(
        call_me.attr("aria-disabled").await.unwrap().as_deref(),
        Some("true")
    );
    browser
        .js("document.getElementById('verify-button').focus();")
        .await;
    browser.press(Key::Tab).await;
    assert_eq!(browser.focused().await, "call-me", "Tab reaches Call me");
    browser.press(Key::Enter).await;
    let said = browser
        .wait_for_text("#message", "You can ask for a call in")
        .await;
    assert!(said.contains(" s:"), "{said}");
    assert_eq!(browser.focused().await, "call-me", "the focus stays");
    assert!(app.sandbox_calls().await.is_empty(), "no call yet");
    browser.screenshot("call-0-cooldown-explained").await;

    // The server's cooldown runs on its clock; the page's on the browser's.
    app.advance(Duration::from_secs(3));
    let started = Instant::now();
    while call_me.attr("aria-disabled").await.unwrap().is_some() {
        assert!(started.elapsed() < WAIT, "Call me never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.click("#call-me").await;
    browser.wait_for_text("#message", "Calling +1 415").await;
    // The lead follows the call: "calling" while it rings, "We called" once
    // it ended (a sandbox call can end before a loaded machine's poll).
    let lead = browser
        .wait_for_any_text("#code-lead", &["calling", "We called +1 415"])
        .await;
    assert!(!lead.contains("sent"), "the lead is about the call: {lead}");

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
    browser.wait_for_text("#delivery", "Call ended").await;
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
    assert_eq!(
        browser
            .find("#call-me")
            .await
            .attr("aria-disabled")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
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
    browser
        .wait_for_text("#message", "You can ask for another in")
        .await;
    let send = browser.find("#send-button").await;
    assert!(
        !send.is_enabled().await.unwrap(),
        "Send waits out Retry-After"
    );
    // The message and the button count down to one deadline, in one form:
    // read at the same moment, they say the same wait.
    let both = browser
        .js(
            "return [document.querySelector('#message .wait').textContent, \
                     document.getElementById('send-button').textContent];",
        )
        .await;
    let (said, button) = (both[0].as_str().unwrap(), both[1].as_str().unwrap());
    assert!(said.ends_with(" s"), "{said}");
    assert_eq!(button, format!("Send code ({said})"));
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
    // A code to another number first: the inbox shows its SMS.
    browser.send_code_to(&random_number()).await;
    browser.code_from_sandbox_sms().await;
    browser.click("#change-number").await;
    browser.wait_for_state("phone").await;
    browser.find("#phone").await.clear().await.unwrap();
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
    // Nothing was delivered to this number: the previous number's SMS is gone.
    assert!(
        browser
            .find("#sandbox-empty")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    let shown = browser
        .js("return document.querySelectorAll('#sandbox-feed article').length;")
        .await;
    assert_eq!(shown, 0);
    browser.screenshot("error-1-plivo-failure").await;
    browser.close().await;
}

#[tokio::test]
async fn a_pasted_code_with_a_space_or_a_dash_is_checked_whole_and_the_field_is_above_the_fold() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, SMALL_PHONE).await;
    let number = random_number();

    browser.open_page().await;
    browser.send_code_to(&number).await;
    // On a 375 × 667 screen the code field, and the code the sandbox inbox
    // (below the form on one column) got, are in view without scrolling.
    let code = browser.code_from_sandbox_sms().await;
    browser.wait_for_text("#sandbox-peek", &code).await;
    // (Clicking "Send code" let WebDriver scroll; a person sees the step from its top.)
    let fold = browser
        .js("window.scrollTo(0, 0); \
             const box = id => document.getElementById(id).getBoundingClientRect(); \
             return [box('code').top, box('code').bottom, box('sandbox-peek-code').bottom, window.innerHeight];")
        .await;
    let [top, bottom, peek, height] = [0, 1, 2, 3].map(|i| fold[i].as_f64().unwrap());
    assert!(
        top >= 0.0 && bottom <= height && peek <= height,
        "the code field and the inbox's code are above the fold: {fold}"
    );
    browser.screenshot("paste-0-code-step-375x667").await;

    // `maxlength` once cut "859 258" to "859 25": all six digits count now.
    let bad = wrong(&code);
    browser
        .paste_into("#code", &format!("{} {}", &bad[..3], &bad[3..]))
        .await;
    browser.wait_for_text("#message", "4 attempts left").await;
    browser
        .paste_into("#code", &format!(" {}-{}", &code[..3], &code[3..]))
        .await;
    browser.wait_for_state("verified").await;
    browser.screenshot("paste-1-verified").await;
    browser.close().await;
}

/// Every option of the country picker, as `value|text`.
async fn country_options(browser: &Browser) -> Vec<String> {
    let all = browser
        .js("return Array.from(document.querySelectorAll('#country option'), o => o.value + '|' + o.textContent);")
        .await;
    all.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_country_picker_offers_only_the_servers_countries_with_search_and_its_hint_verifies() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, DESKTOP).await;
    browser.open_page().await;

    let all = country_options(&browser).await;
    assert_eq!(
        all.len(),
        plivo_2fa::abuse::DEFAULT_ALLOWED_COUNTRIES
            .split(',')
            .count(),
        "{all:?}"
    );
    assert!(
        all.contains(&"GB|United Kingdom (+44)".to_owned()),
        "{all:?}"
    );
    assert!(all.contains(&"US|United States (+1)".to_owned()), "{all:?}");
    let names: Vec<&str> = all.iter().map(|o| o.split('|').nth(1).unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "sorted by name");

    browser.type_into("#country-search", "king").await;
    assert_eq!(country_options(&browser).await, ["GB|United Kingdom (+44)"]);
    assert_eq!(browser.text("#dial-code").await, "+44");
    browser.find("#country-search").await.clear().await.unwrap();
    browser.type_into("#country-search", "+4").await;
    let by_code = country_options(&browser).await;
    assert!(by_code.len() > 3, "{by_code:?}");
    assert!(by_code.iter().all(|o| o.contains("(+4")), "{by_code:?}");
    browser.find("#country-search").await.clear().await.unwrap();
    browser.type_into("#country-search", "atlantis").await;
    assert!(country_options(&browser).await.is_empty());
    assert!(
        browser
            .find("#country-none")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    browser.screenshot("countries-1-no-match").await;

    // Back to the UK: the number in the hint, typed as shown, verifies.
    browser.find("#country-search").await.clear().await.unwrap();
    browser.type_into("#country-search", "united k").await;
    let example = browser.text("#phone-example").await;
    assert!(
        example.starts_with('0'),
        "a UK number as written there: {example}"
    );
    assert_ne!(example, "7700 900123");
    browser.type_into("#phone", &example).await;
    browser
        .find("#locale")
        .await
        .select_by_value("de-DE")
        .await
        .unwrap();
    browser.screenshot("countries-2-uk-example").await;
    browser.click("#send-button").await;
    browser.wait_for_state("code").await;
    let sms = browser
        .text("#sandbox-feed article[data-kind=\"sms\"].delivered-latest")
        .await;
    assert!(
        sms.contains("Bestätigungscode"),
        "the SMS is in German: {sms}"
    );
    let code = browser.code_from_sandbox_sms().await;
    browser.type_into("#code", &code).await;
    browser.wait_for_state("verified").await;
    let id = browser.text("#verified-id").await;
    let v = verification(&app, &id).await;
    assert!(v["to"].as_str().unwrap().starts_with("+447"), "{v}");
    assert_eq!(v["locale"], "de-DE");
    browser.close().await;
}

const AUTH_ID: &str = "MAZDQ1ZJIYMDRKNMFHOT";
const AUTH_TOKEN: &str = "live-token-for-the-browser";
const MESSAGE_UUID: &str = "db3ce55a-7f1d-11e1-8ea7-1231380bc196";
const REQUEST_UUID: &str = "9834029e-58b6-11e1-b8b7-a5bd0e4e126f";

/// The JSON body of the first request Plivo (wiremock) got at `path`.
async fn plivo_request(plivo: &MockServer, path: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let requests = plivo.received_requests().await.unwrap();
        if let Some(r) = requests.iter().find(|r| r.url.path() == path) {
            return serde_json::from_slice(&r.body).unwrap();
        }
        assert!(started.elapsed() < WAIT, "Plivo never got {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where a callback URL the server gave Plivo reaches this test's server.
fn local(app: &TestApp, public_url: &str) -> String {
    let path = public_url.strip_prefix("https://otp.example.com").unwrap();
    app.url(path)
}

#[tokio::test]
async fn when_the_sms_fails_the_page_says_it_is_calling_follows_the_call_and_stops_when_it_ends() {
    // Plivo as its docs answer; the test posts the signed receipt and hangup
    // Plivo would, so each moment of the call is seen (the sandbox's calls end
    // within milliseconds, before the page's next poll).
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Account/{AUTH_ID}/Message/")))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "api_id": "db342550-7f1d-11e1-8ea7-1231380bc196",
            "message": "message(s) queued",
            "message_uuid": [MESSAGE_UUID]
        })))
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Account/{AUTH_ID}/Call/")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "api_id": "97ceeb52-58b6-11e1-86da-77300b68f8bb",
            "message": "call fired",
            "request_uuid": REQUEST_UUID
        })))
        .mount(&plivo)
        .await;
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let uri = plivo.uri();
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("API_KEYS", crate::common::API_KEY),
        ("OTP_SECRET", crate::common::OTP_SECRET),
        ("PLIVO_AUTH_ID", AUTH_ID),
        ("PLIVO_AUTH_TOKEN", AUTH_TOKEN),
        ("PLIVO_FROM_NUMBER", "+14155550199"),
        ("PLIVO_API_BASE_URL", uri.as_str()),
        ("PUBLIC_BASE_URL", "https://otp.example.com"),
        ("DEMO_PAGE", "true"),
        ("SCHEDULER_POLL_MS", "20"),
    ])
    .await;
    let browser = Browser::open(&app, DESKTOP).await;
    let number = random_number();

    browser.open_page().await;
    browser.send_code_to(&number).await;
    let sms = plivo_request(&plivo, &format!("/v1/Account/{AUTH_ID}/Message/")).await;
    let code = crate::common::code_in(sms["text"].as_str().unwrap());
    browser
        .wait_for_text("#delivery", "Text message queued")
        .await;

    // Plivo reports the SMS undelivered: the server calls by itself.
    let status_url = sms["url"].as_str().unwrap();
    let r = app
        .post_signed(
            &local(&app, status_url),
            status_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &[
                ("MessageUUID", MESSAGE_UUID),
                ("Status", "undelivered"),
                ("ErrorCode", "30"),
                ("To", number.trim_start_matches('+')),
                ("From", "14155550199"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let call = plivo_request(&plivo, &format!("/v1/Account/{AUTH_ID}/Call/")).await;
    browser
        .wait_for_text("#delivery", "We’re calling you now")
        .await;
    let said = browser.wait_for_text("#message", "so we’re calling").await;
    assert!(said.contains("wasn’t delivered"), "{said}");
    browser.wait_for_text("#code-lead", "We’re calling").await;
    browser.screenshot("fallback-1-calling").await;

    // The call ends: nothing on the page says "calling" any more.
    let hangup_url = call["hangup_url"].as_str().unwrap();
    let r = app
        .post_signed(
            &local(&app, hangup_url),
            hangup_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &[
                ("CallUUID", "e4fd7e8a-8b47-4b5c-b3a4-25a8bc2bcf5d"),
                ("RequestUUID", REQUEST_UUID),
                ("CallStatus", "completed"),
                ("Direction", "outbound"),
                ("HangupCause", "NORMAL_CLEARING"),
                ("HangupCauseCode", "4000"),
                ("Duration", "21"),
                ("BillDuration", "60"),
                ("To", number.trim_start_matches('+')),
                ("From", "14155550199"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    browser.wait_for_text("#delivery", "Call ended").await;
    browser.wait_for_text("#code-lead", "We called").await;
    browser
        .wait_for_text("#message", "The call has ended")
        .await;
    for css in ["#delivery", "#code-lead", "#message"] {
        let text = browser.text(css).await;
        assert!(!text.to_lowercase().contains("calling"), "{css}: {text}");
    }
    browser.screenshot("fallback-2-call-ended").await;

    browser.type_into("#code", &code).await;
    browser.wait_for_state("verified").await;
    browser.close().await;
}

/// Wraps the browser's own `navigator.credentials.get`: records what the page
/// asks, lets the real request run (and be aborted), and lets the test stand
/// in for the SMS arriving with `__otp.arrive(code)`.
const WEBOTP_SPY: &str = "
    const real = navigator.credentials.get.bind(navigator.credentials);
    window.__otp = { requests: [], native: 'none', arrive: null };
    navigator.credentials.get = function (options) {
        window.__otp.requests.push({ otp: options.otp, signal: options.signal instanceof AbortSignal });
        const native = real(options);
        window.__otp.native = 'pending';
        native.then(() => { window.__otp.native = 'resolved'; }, e => { window.__otp.native = e.name; });
        const arrived = new Promise(resolve => {
            window.__otp.arrive = code => resolve({ id: 'otp', type: 'otp', code: code });
        });
        return Promise.race([native, arrived]);
    };";

#[tokio::test]
async fn with_webotp_the_page_asks_the_browser_for_the_code_verifies_what_it_gives_and_aborts_when_left()
 {
    let app = spawn_app(&[("WEBOTP_DOMAIN", "localhost")]).await;
    let browser = Browser::open(&app, PHONE).await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let on_domain = format!("http://localhost:{port}/");

    // Headless Chromium has the WebOTP API (OTPCredential, and a request that
    // stays pending), but no SMS ever reaches a desktop browser.
    browser.open_url(&on_domain).await;
    assert_eq!(browser.js("return 'OTPCredential' in window;").await, true);
    browser.js(WEBOTP_SPY).await;
    browser.send_code_to(&random_number()).await;
    assert_eq!(
        browser.js("return window.__otp.requests;").await,
        json!([{"otp": {"transport": ["sms"]}, "signal": true}])
    );
    assert_eq!(browser.js("return window.__otp.native;").await, "pending");
    let code = browser.code_from_sandbox_sms().await;
    browser.js(&format!("window.__otp.arrive('{code}');")).await;
    browser.wait_for_state("verified").await;
    browser.screenshot("webotp-1-verified").await;

    // Leaving the code step aborts the browser's request.
    browser.click("#verify-another").await;
    browser.wait_for_state("phone").await;
    browser.send_code_to(&random_number()).await;
    assert_eq!(browser.js("return window.__otp.requests.length;").await, 2);
    browser.click("#change-number").await;
    browser.wait_for_state("phone").await;
    let started = Instant::now();
    while browser.js("return window.__otp.native;").await != "AbortError" {
        assert!(started.elapsed() < WAIT, "the request was never aborted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // On another host name (the server's own address) the browser would never
    // match the SMS's @localhost, so the page does not ask.
    browser.open_page().await;
    browser.js(WEBOTP_SPY).await;
    browser.send_code_to(&random_number()).await;
    assert_eq!(browser.js("return window.__otp.requests.length;").await, 0);
    browser.close().await;
}

#[tokio::test]
async fn without_webotp_the_page_never_asks_the_browser_for_a_code() {
    let app = spawn_app(&[]).await;
    let browser = Browser::open(&app, PHONE).await;
    browser.open_page().await;
    browser.js(WEBOTP_SPY).await;
    browser.send_code_to(&random_number()).await;
    let code = browser.code_from_sandbox_sms().await;
    assert_eq!(browser.js("return window.__otp.requests.length;").await, 0);
    browser.type_into("#code", &code).await;
    browser.wait_for_state("verified").await;
    browser.close().await;
}

#[tokio::test]
async fn the_page_offers_whatsapp_only_when_it_is_on_and_a_whatsapp_code_verifies() {
    let off = spawn_app(&[]).await;
    let browser = Browser::open(&off, DESKTOP).await;
    browser.open_page().await;
    let buttons = browser
        .client()
        .find_all(Locator::Css("#send-whatsapp"))
        .await
        .unwrap();
    assert!(
        buttons.is_empty(),
        "no WhatsApp without its sender and template"
    );
    browser.close().await;

    let app = spawn_app(&[
        ("PLIVO_WHATSAPP_FROM", "+14155550197"),
        ("WHATSAPP_TEMPLATE", "otp_copy_code"),
    ])
    .await;
    let browser = Browser::open(&app, DESKTOP).await;
    let number = random_number();
    browser.open_page().await;
    browser.enter_us_number(&number).await;
    browser.screenshot("whatsapp-1-offered").await;
    browser.click("#send-whatsapp").await;
    browser.wait_for_state("code").await;
    browser.wait_for_text("#delivery", "WhatsApp message").await;
    let code = browser
        .text("#sandbox-feed article[data-kind=\"whatsapp\"].delivered-latest mark.code")
        .await;
    assert_eq!(code.len(), 6);
    let sent = app.sandbox_messages().await;
    let message = sent.iter().find(|m| m["to"] == number.as_str()).unwrap();
    assert_eq!(message["type"], "whatsapp");
    assert_eq!(
        message["template"]["components"][0]["parameters"][0]["text"],
        code.as_str()
    );
    browser.screenshot("whatsapp-2-code-sent").await;
    browser.type_into("#code", &code).await;
    browser.wait_for_state("verified").await;
    assert_eq!(browser.text("#verified-channel").await, "WhatsApp");
    let id = browser.text("#verified-id").await;
    assert_eq!(verification(&app, &id).await["status"], "approved");
    browser.close().await;
}
