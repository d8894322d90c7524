//! Abuse and fraud defences over HTTP against real Redis: every limit and block.

use std::time::Duration;

use crate::common::{TestApp, random_number, spawn_app};
use plivo_2fa::domain::{OtpCode, PhoneNumber};
use plivo_2fa::service::CheckBy;
use serde_json::json;

fn refused(r: &crate::common::Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{:?}", r.body);
    if status == 429 {
        let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(secs >= 1);
    }
}

async fn exhaust(app: &TestApp, to: &str) {
    let r = app.start(to, "sms").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let code = app.last_sms_code(to).await;
    for _ in 0..5 {
        app.check(to, &crate::common::wrong(&code)).await;
    }
}

#[tokio::test]
async fn a_number_gets_at_most_its_starts_per_window() {
    let app = spawn_app(&[
        ("RATE_LIMIT_NUMBER", "3/10m"),
        ("RESEND_COOLDOWN_SECS", "0"),
    ])
    .await;
    let to = random_number();
    for _ in 0..3 {
        assert!(app.start(&to, "sms").await.status < 300);
    }
    refused(&app.start(&to, "sms").await, 429, "number_rate_limited");
    assert_eq!(
        app.start(&random_number(), "sms").await.status,
        201,
        "other numbers are unaffected"
    );
    app.advance(Duration::from_secs(600));
    assert!(
        app.start(&to, "sms").await.status < 300,
        "the window passes"
    );
}

#[tokio::test]
async fn a_client_ip_is_limited_and_forwarded_for_counts_only_from_a_trusted_proxy() {
    let app = spawn_app(&[("RATE_LIMIT_IP", "2/1m")]).await;
    let start_from = |xff: &'static str| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(app.url("/v1/verifications"))
                .bearer_auth(&app.api_key)
                .header("X-Forwarded-For", xff)
                .json(&json!({"to": random_number()}))
                .send()
                .await
                .unwrap();
            TestApp::reply(r).await
        }
    };
    assert_eq!(start_from("198.51.100.1").await.status, 201);
    assert_eq!(start_from("198.51.100.2").await.status, 201);
    // The forwarded address is not believed: all three come from 127.0.0.1.
    refused(&start_from("198.51.100.3").await, 429, "ip_rate_limited");

    let proxied = spawn_app(&[("RATE_LIMIT_IP", "2/1m"), ("TRUSTED_PROXIES", "127.0.0.1")]).await;
    for xff in ["198.51.100.1", "198.51.100.1", "198.51.100.2"] {
        let r = proxied
            .http
            .post(proxied.url("/v1/verifications"))
            .bearer_auth(&proxied.api_key)
            .header("X-Forwarded-For", xff)
            .json(&json!({"to": random_number()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{xff}");
    }
    let r = proxied
        .http
        .post(proxied.url("/v1/verifications"))
        .bearer_auth(&proxied.api_key)
        .header("X-Forwarded-For", "198.51.100.1")
        .json(&json!({"to": random_number()}))
        .send()
        .await
        .unwrap();
    refused(&TestApp::reply(r).await, 429, "ip_rate_limited");
}

#[tokio::test]
async fn each_api_key_has_its_own_budget() {
    let keys = "first-key-0123456789,second-key-0123456789";
    let mut app = spawn_app(&[("API_KEYS", keys), ("RATE_LIMIT_API_KEY", "2/1m")]).await;
    app.api_key = "first-key-0123456789".into();
    for _ in 0..2 {
        assert_eq!(app.start(&random_number(), "sms").await.status, 201);
    }
    refused(
        &app.start(&random_number(), "sms").await,
        429,
        "api_key_rate_limited",
    );
    app.api_key = "second-key-0123456789".into();
    assert_eq!(app.start(&random_number(), "sms").await.status, 201);
}

#[tokio::test]
async fn a_country_budget_and_a_global_budget_cap_sends() {
    let app = spawn_app(&[("RATE_LIMIT_COUNTRY", "2/1h")]).await;
    for _ in 0..2 {
        assert_eq!(app.start(&random_number(), "sms").await.status, 201);
    }
    refused(
        &app.start(&random_number(), "sms").await,
        429,
        "country_budget_exhausted",
    );
    assert_eq!(
        app.start("+447400123456", "sms").await.status,
        201,
        "another country has its own budget"
    );

    let app = spawn_app(&[("RATE_LIMIT_GLOBAL", "2/1h")]).await;
    assert_eq!(app.start(&random_number(), "sms").await.status, 201);
    assert_eq!(app.start("+447400123456", "sms").await.status, 201);
    refused(
        &app.start("+33612345678", "sms").await,
        429,
        "global_budget_exhausted",
    );
}

#[tokio::test]
async fn countries_outside_the_allow_list_and_risky_number_types_are_refused() {
    let app = spawn_app(&[]).await;
    refused(
        &app.start("+2348031234567", "sms").await,
        403,
        "country_not_allowed",
    );
    refused(
        &app.start("+19005550100", "voice").await,
        403,
        "number_type_not_allowed",
    );
    let landline = app.start("+442079460000", "sms").await;
    refused(&landline, 403, "sms_not_supported");
    assert!(
        landline.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("voice")
    );
    assert_eq!(
        app.start("+442079460000", "voice").await.status,
        201,
        "a landline can take a call"
    );
    assert!(app.sandbox_messages().await.is_empty());

    let wide = spawn_app(&[("ALLOWED_COUNTRIES", "*")]).await;
    assert_eq!(wide.start("+2348031234567", "sms").await.status, 201);
    let narrow = spawn_app(&[("ALLOWED_COUNTRIES", "GB")]).await;
    refused(
        &narrow.start(&random_number(), "sms").await,
        403,
        "country_not_allowed",
    );
}

#[tokio::test]
async fn italian_landlines_take_a_call_and_are_told_to_use_voice_for_sms() {
    let app = spawn_app(&[]).await;
    // Milan and Rome: the leading 0 stays in the international number.
    for landline in ["+390212345678", "+390612345678"] {
        let sms = app.start(landline, "sms").await;
        refused(&sms, 403, "sms_not_supported");
        let call = app.start(landline, "voice").await;
        assert_eq!(call.status, 201, "{landline}: {:?}", call.body);
        assert_eq!(call.body["to"], landline);
    }
    assert_eq!(
        app.start("+393123456789", "sms").await.status,
        201,
        "an Italian mobile gets its SMS"
    );
}

#[tokio::test]
async fn the_pumping_detector_trips_on_a_low_conversion_burst_and_spares_safe_numbers() {
    let safe = random_number();
    let app = spawn_app(&[
        ("PUMPING_MIN_VOLUME", "8"),
        ("PUMPING_MIN_CONVERSION", "0.5"),
        ("SAFE_NUMBERS", &safe),
        ("SCHEDULER_POLL_MS", "20"),
    ])
    .await;
    for _ in 0..8 {
        assert_eq!(app.start(&random_number(), "sms").await.status, 201);
    }
    refused(
        &app.start(&random_number(), "sms").await,
        429,
        "destination_blocked",
    );
    assert_eq!(
        app.start(&safe, "sms").await.status,
        201,
        "safe-listed numbers bypass it"
    );
    assert_eq!(
        app.start("+447400123456", "sms").await.status,
        201,
        "other prefixes are unaffected"
    );
}

#[tokio::test]
async fn the_pumping_detector_does_not_trip_on_healthy_traffic() {
    let app = spawn_app(&[
        ("PUMPING_MIN_VOLUME", "8"),
        ("PUMPING_MIN_CONVERSION", "0.5"),
        ("SCHEDULER_POLL_MS", "20"),
    ])
    .await;
    for i in 0..12 {
        let to = random_number();
        assert_eq!(app.start(&to, "sms").await.status, 201, "start {i}");
        // Two in three are verified: conversion 67 % > 50 %.
        if i % 3 != 2 {
            let code = app.last_sms_code(&to).await;
            assert_eq!(app.check(&to, &code).await.body["status"], "approved");
            // Approvals are batched to the store by the job worker.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn repeated_exhausted_verifications_lock_a_number_for_a_bounded_time() {
    let app = spawn_app(&[("LOCKOUT_AFTER_EXHAUSTED", "3"), ("LOCKOUT_MINUTES", "60")]).await;
    let to = random_number();
    for _ in 0..3 {
        exhaust(&app, &to).await;
    }
    refused(&app.start(&to, "sms").await, 429, "number_locked");
    assert_eq!(app.start(&random_number(), "sms").await.status, 201);
    app.advance(Duration::from_secs(3600));
    assert_eq!(app.start(&to, "sms").await.status, 201, "the lock ends");
}

#[tokio::test]
async fn cancelling_before_the_last_attempt_does_not_dodge_the_lockout() {
    // Three verifications' worth of wrong codes (15) lock the number, however
    // the verifications end: here each is canceled after four wrong codes.
    let app = spawn_app(&[
        ("LOCKOUT_AFTER_EXHAUSTED", "3"),
        ("LOCKOUT_MINUTES", "60"),
        ("RATE_LIMIT_NUMBER", "100/1h"),
    ])
    .await;
    let to = random_number();
    let mut wrong_codes = 0;
    let locked = loop {
        let started = app.start(&to, "sms").await;
        if started.status == 429 {
            break started;
        }
        assert_eq!(started.status, 201, "{:?}", started.body);
        let id = started.body["id"].as_str().unwrap().to_owned();
        let code = app.last_sms_code(&to).await;
        for _ in 0..4 {
            let r = app.check(&to, &crate::common::wrong(&code)).await;
            assert_eq!(r.body["status"], "pending", "{:?}", r.body);
            wrong_codes += 1;
        }
        let canceled = app
            .post_json(&format!("/v1/verifications/{id}/cancel"), json!({}))
            .await;
        assert_eq!(canceled.status, 200);
        assert!(wrong_codes <= 40, "the lock never came");
    };
    refused(&locked, 429, "number_locked");
    // Four rounds of four: the lock trips on the 15th wrong code, in the fourth.
    assert_eq!(wrong_codes, 16);
    app.advance(Duration::from_secs(3600));
    assert_eq!(app.start(&to, "sms").await.status, 201, "the lock ends");
}

#[tokio::test]
async fn a_start_refused_by_the_resend_cooldown_does_not_spend_the_numbers_budget() {
    let app = spawn_app(&[
        ("RATE_LIMIT_NUMBER", "2/10m"),
        ("RESEND_COOLDOWN_SECS", "30"),
    ])
    .await;
    // The number's budget counts in fixed 10-minute windows: begin just
    // after one opens, so the minute this test spans never crosses into the
    // next (which would start a fresh budget, whenever the test happens to run).
    let window_ms = 10 * 60 * 1000;
    let into_window = u64::try_from(app.now().as_millis()).unwrap() % window_ms;
    app.advance(Duration::from_millis(window_ms - into_window + 1000));
    let to = random_number();
    assert_eq!(app.start(&to, "sms").await.status, 201);
    for _ in 0..5 {
        refused(&app.start(&to, "sms").await, 429, "resend_cooldown");
    }
    app.advance(Duration::from_secs(30));
    assert_eq!(
        app.start(&to, "sms").await.status,
        200,
        "the re-send after the cooldown is the budget's second send"
    );
    app.advance(Duration::from_secs(30));
    refused(&app.start(&to, "sms").await, 429, "number_rate_limited");
}

#[tokio::test]
async fn a_daily_ceiling_of_failed_checks_blocks_new_verifications() {
    let app = spawn_app(&[
        ("MAX_FAILED_CHECKS_PER_DAY", "7"),
        ("LOCKOUT_AFTER_EXHAUSTED", "100"),
    ])
    .await;
    // The ceiling counts in the UTC day: start at its beginning, so the
    // 30 s below never cross into the next one (the clock starts at now).
    let day_ms = 86_400_000;
    let into_day = app.now().as_millis().rem_euclid(day_ms);
    app.advance(Duration::from_millis(
        u64::try_from(day_ms - into_day).unwrap(),
    ));
    let to = random_number();
    exhaust(&app, &to).await;
    assert_eq!(app.start(&to, "sms").await.status, 201);
    let code = app.last_sms_code(&to).await;
    app.check(&to, &crate::common::wrong(&code)).await;
    app.check(&to, &crate::common::wrong(&code)).await;
    app.advance(Duration::from_secs(30));
    refused(&app.start(&to, "sms").await, 429, "number_locked");
}

#[tokio::test]
async fn a_million_guesses_against_one_number_get_at_most_the_allowed_attempts() {
    // In process, against the embedded store: a million HTTP round trips would
    // only measure the loopback. The HTTP and Redis path is the test below.
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("API_KEYS", crate::common::API_KEY),
    ])
    .await;
    let number = PhoneNumber::parse(&random_number()).unwrap();
    let use_cases = &app.use_cases;
    let default = app.default_app();
    let who = plivo_2fa::abuse::Requester::default();
    let start =
        |to: PhoneNumber, locale: plivo_2fa::domain::Locale| plivo_2fa::service::StartRequest {
            to,
            channel: plivo_2fa::domain::Channel::Sms,
            locale,
            app_hash: None,
        };
    let locale = plivo_2fa::domain::Locale::default();
    let (mut counted, mut approved, mut refused_starts) = (0u32, 0u32, 0u32);
    let mut closed = false;
    use_cases
        .start
        .run(&default, start(number.clone(), locale.clone()), &who)
        .await
        .unwrap();
    for guess in 0..1_000_000u32 {
        let code = OtpCode::parse(
            &format!("{guess:06}"),
            plivo_2fa::domain::CodeLength::default(),
        )
        .unwrap();
        match use_cases
            .check
            .run(
                &default,
                CheckBy::Number(number.as_e164().to_owned()),
                &code,
            )
            .await
            .unwrap()
        {
            Some((plivo_2fa::domain::verification::CheckResult::Approved, _)) => {
                counted += 1;
                approved += 1;
                break;
            }
            Some((
                plivo_2fa::domain::verification::CheckResult::Wrong
                | plivo_2fa::domain::verification::CheckResult::Exhausted,
                _,
            )) => {
                counted += 1;
                closed = false;
            }
            // Closed: the attacker asks for a new code (once per closed verification;
            // the clock does not move, so a refused start stays refused).
            _ if !closed => {
                closed = true;
                if use_cases
                    .start
                    .run(&default, start(number.clone(), locale.clone()), &who)
                    .await
                    .is_err()
                {
                    refused_starts += 1;
                }
            }
            _ => {}
        }
    }
    // Three verifications of five attempts each, then the number is locked.
    assert!(counted <= 15, "{counted} attempts were evaluated");
    assert!(approved <= 1);
    assert!(refused_starts > 0 || approved == 1);
}

#[tokio::test]
async fn brute_force_over_http_on_redis_is_cut_off_after_the_allowed_attempts() {
    let app = spawn_app(&[("RESEND_COOLDOWN_SECS", "0")]).await;
    let to = random_number();
    app.start(&to, "sms").await;
    let mut evaluated = 0;
    for guess in 0..2_000u32 {
        let r = app.check(&to, &format!("{guess:06}")).await;
        match r.status {
            200 => evaluated += 1,
            429 if r.body["error"]["code"] == "max_attempts_reached" => {
                app.start(&to, "sms").await;
            }
            _ => {
                app.start(&to, "sms").await;
            }
        }
        if r.status == 200 && r.body["status"] == "approved" {
            break;
        }
    }
    // The fifth wrong code of each verification answers 429, so at most 4 x 3
    // plain "pending" answers precede the lock (plus the exhausting guesses).
    assert!(evaluated <= 12, "{evaluated}");
}
