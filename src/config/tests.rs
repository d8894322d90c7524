//! Reading settings: every rule names its variable; applications' tables.
#![allow(clippy::unwrap_used)]

use super::vars::{Problems, Vars, parse_limit};
use super::*;
use crate::domain::CodeLength;
use crate::limits::Limit;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The first bad setting `from_vars` names for these values.
fn first_error(v: &BTreeMap<String, String>) -> ConfigError {
    Settings::from_vars(v).unwrap_err().first().clone()
}

/// The default application's settings.
fn default(s: &Settings) -> &apps::Settings {
    s.default_app().unwrap()
}

const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[test]
fn no_configuration_at_all_means_sandbox_with_memory_store() {
    let s = Settings::from_vars(&BTreeMap::new()).unwrap();
    assert!(s.is_sandbox());
    assert!(s.redis.is_none());
    assert_eq!(s.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
    assert_eq!(default(&s).policy.lifetime, Duration::from_secs(600));
    assert_eq!(default(&s).policy.code_length.get(), 6);
}

#[test]
fn live_mode_names_each_missing_variable() {
    let base = [
        ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
        ("PLIVO_AUTH_TOKEN", "tok"),
    ];
    let e = first_error(&vars(&base));
    assert_eq!(e.var, "PUBLIC_BASE_URL");
    let mut v = vars(&base);
    v.insert("PUBLIC_BASE_URL".into(), "https://otp.example.com".into());
    assert_eq!(first_error(&v).var, "PLIVO_FROM_NUMBER");
    v.insert("PLIVO_FROM_NUMBER".into(), "+14155550100".into());
    assert_eq!(first_error(&v).var, "API_KEYS");
    v.insert("API_KEYS".into(), "0123456789abcdef".into());
    assert_eq!(first_error(&v).var, "OTP_SECRET");
    v.insert("OTP_SECRET".into(), SECRET.into());
    assert!(!Settings::from_vars(&v).unwrap().is_sandbox());
}

#[test]
fn bad_values_are_refused_with_their_variable_named() {
    for (k, v) in [
        ("OTP_SECRET", "c2hvcnQ="),
        ("OTP_SECRET", "***"),
        ("OTP_LENGTH", "3"),
        ("OTP_LENGTH", "six"),
        ("VERIFICATION_LIFETIME_MINUTES", "61"),
        ("VERIFICATION_LIFETIME_MINUTES", "0"),
        ("LISTEN_ADDR", "nowhere"),
        ("PUBLIC_BASE_URL", "ftp://x"),
        ("REDIS_URL", "http://localhost"),
        ("API_KEYS", "short"),
        ("REDIS_KEY_PREFIX", "a{b}"),
        ("PLIVO_ACCEPT_V2", "sometimes"),
        ("PLIVO_ACCEPT_V2", "1"),
        ("DEMO_PAGE", "yes"),
        ("DEMO_PAGE", "on"),
        ("PLIVO_CHECK_CREDENTIALS", "sometimes"),
        ("RUST_LOG", "plivo_2fa=loud"),
        ("PUBLIC_BASE_URL", "otp.example.com"),
        ("MAX_CONNECTIONS", "8"),
        ("MAX_CONNECTIONS_PER_IP", "0"),
        ("TOTP_DIGITS", "5"),
        ("TOTP_DIGITS", "9"),
        ("TOTP_DIGITS", "six"),
        ("MAX_FACTORS_PER_IDENTITY", "0"),
        ("MAX_FACTORS_PER_IDENTITY", "101"),
        ("MAX_FACTORS_PER_IDENTITY", "many"),
    ] {
        let e = Settings::from_vars(&vars(&[(k, v)])).unwrap_err();
        assert_eq!(e.first().var, k, "{k}={v}");
        assert!(e.to_string().starts_with(k));
    }
}

#[test]
fn the_demo_page_is_on_in_the_sandbox_and_off_with_plivo_credentials_unless_set() {
    assert!(Settings::from_vars(&BTreeMap::new()).unwrap().demo_page);
    assert!(
        !Settings::from_vars(&vars(&[("DEMO_PAGE", "false")]))
            .unwrap()
            .demo_page
    );
    let live = [
        ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
        ("PLIVO_AUTH_TOKEN", "tok"),
        ("PLIVO_FROM_NUMBER", "+14155550100"),
        ("API_KEYS", "0123456789abcdef"),
        ("OTP_SECRET", SECRET),
        ("PUBLIC_BASE_URL", "https://otp.example.com"),
    ];
    assert!(!Settings::from_vars(&vars(&live)).unwrap().demo_page);
    let mut on = vars(&live);
    on.insert("DEMO_PAGE".into(), "true".into());
    assert!(Settings::from_vars(&on).unwrap().demo_page);
    let e = first_error(&vars(&[("DEMO_PAGE", "maybe")]));
    assert_eq!(e.var, "DEMO_PAGE");
}

#[test]
fn webotp_domain_is_a_bare_host_name() {
    let s = Settings::from_vars(&vars(&[("WEBOTP_DOMAIN", "Otp.Example.com")])).unwrap();
    assert_eq!(
        default(&s).webotp_domain.as_deref(),
        Some("otp.example.com")
    );
    assert!(
        default(&Settings::from_vars(&BTreeMap::new()).unwrap())
            .webotp_domain
            .is_none()
    );
    for bad in [
        "https://example.com",
        "example.com:443",
        "example.com/otp",
        "-example.com",
        "exa mple.com",
        "example..com",
    ] {
        let e = first_error(&vars(&[("WEBOTP_DOMAIN", bad)]));
        assert_eq!(e.var, "WEBOTP_DOMAIN", "{bad}");
    }
}

#[test]
fn several_redis_seeds_or_the_cluster_scheme_mean_a_cluster() {
    let s = Settings::from_vars(&vars(&[("REDIS_URL", "redis://a:1,redis://b:2")])).unwrap();
    assert!(matches!(s.redis, Some(RedisTarget::Cluster(ref n)) if n.len() == 2));
    let s = Settings::from_vars(&vars(&[("REDIS_URL", "redis+cluster://a:1,b:2")])).unwrap();
    assert_eq!(
        s.redis,
        Some(RedisTarget::Cluster(vec![
            "redis://a:1".into(),
            "redis://b:2".into()
        ]))
    );
    let s = Settings::from_vars(&vars(&[("REDIS_URL", "unix:///tmp/r.sock")])).unwrap();
    assert!(matches!(s.redis, Some(RedisTarget::Single(_))));
}

#[test]
fn limits_read_as_count_per_window() {
    let limit = |raw: &str| -> Result<Limit, ConfigErrors> {
        let values = vars(&[("X", raw)]);
        let mut p = Problems::default();
        let limit = Vars::top(&values).limit(&mut p, "X", Limit::new(1, Duration::from_secs(1)));
        p.finish(limit)
    };
    assert_eq!(
        limit("5/10m").unwrap(),
        Limit::new(5, Duration::from_secs(600))
    );
    assert_eq!(
        limit("100/d").unwrap(),
        Limit::new(100, Duration::from_secs(86_400))
    );
    for bad in ["5", "0/1m", "5/10", "5/10x", "x/1m", "5/0s"] {
        assert_eq!(limit(bad).unwrap_err().first().var, "X", "{bad}");
        assert!(parse_limit(bad).is_err());
    }
}

#[test]
fn a_toml_file_gives_the_same_keys_and_refuses_unknown_ones() {
    let dir = std::env::temp_dir().join(format!("p2fa-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, "listen_addr = \"127.0.0.1:9999\"\nOTP_LENGTH = 8\nAPI_KEYS = [\"0123456789abcdef\", \"fedcba9876543210\"]\n").unwrap();
    let (v, _) = file::read(&good).unwrap();
    let s = Settings::from_vars(&v).unwrap();
    assert_eq!(s.listen_addr.port(), 9999);
    assert_eq!(default(&s).policy.code_length.get(), 8);
    assert_eq!(default(&s).api_keys.len(), 2);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "LISTEN_ADR = \"x\"\n").unwrap();
    assert_eq!(file::read(&bad).unwrap_err().first().var, "--config");
}

#[test]
fn sms_text_keys_for_any_locale_come_from_a_toml_file_and_are_checked() {
    let dir = std::env::temp_dir().join(format!("p2fa-sms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("sms.toml");
    std::fs::write(
        &good,
        "sms_text = \"{code} is your code\"\nSMS_TEXT_ES_ES = \"{code} es tu código\"\nWEBOTP_DOMAIN = \"Example.COM\"\n",
    )
    .unwrap();
    let (v, _) = file::read(&good).unwrap();
    assert!(v.contains_key("SMS_TEXT_ES_ES"));
    let s = Settings::from_vars(&v).unwrap();
    let code = crate::domain::OtpCode::parse("123456", CodeLength::default()).unwrap();
    let es = crate::domain::Locale::parse("es-ES").unwrap();
    let text = default(&s).wording.render(&es, &code, 10, None, false);
    assert_eq!(text, "123456 es tu código\n@example.com #123456");
    let bad = dir.join("bad-sms.toml");
    std::fs::write(&bad, "SMS_TEXT_ES_ES = \"no code\"\n").unwrap();
    assert_eq!(
        Settings::from_vars(&file::read(&bad).unwrap().0)
            .unwrap_err()
            .first()
            .var,
        "SMS_TEXT_ES_ES"
    );
}

#[test]
fn a_powerpack_makes_the_from_number_optional_and_dlt_needs_both_ids_and_sms_text() {
    let live = [
        ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
        ("PLIVO_AUTH_TOKEN", "tok"),
        ("API_KEYS", "0123456789abcdef"),
        ("OTP_SECRET", SECRET),
        ("PUBLIC_BASE_URL", "https://otp.example.com"),
    ];
    let mut v = vars(&live);
    assert_eq!(first_error(&v).var, "PLIVO_FROM_NUMBER");
    v.insert(
        "PLIVO_POWERPACK_UUID".into(),
        "D35F2E82-D387-427F-8DB7-4E1F8A5E8A8B".into(),
    );
    let s = Settings::from_vars(&v).unwrap();
    assert!(s.delivery.voice_from.is_none());
    assert_eq!(
        s.delivery.sender,
        crate::delivery::SmsSender::Powerpack("d35f2e82-d387-427f-8db7-4e1f8a5e8a8b".into())
    );
    v.insert("PLIVO_DLT_TEMPLATE_ID".into(), "1207161234567890123".into());
    assert_eq!(first_error(&v).var, "PLIVO_DLT_ENTITY_ID");
    v.insert("PLIVO_DLT_ENTITY_ID".into(), "1201159543060917386".into());
    assert_eq!(first_error(&v).var, "SMS_TEXT");
    v.insert("SMS_TEXT".into(), "{code} is your code".into());
    let dlt = Settings::from_vars(&v).unwrap().delivery.dlt.unwrap();
    assert_eq!(dlt.dlt_template_category, "service_implicit");
    v.insert("PLIVO_PHLO_ID".into(), "abc".into());
    assert!(
        Settings::from_vars(&v).is_err(),
        "a Powerpack does not apply to a PHLO"
    );
}

#[test]
fn a_base_url_without_a_scheme_says_what_it_must_start_with() {
    let e = first_error(&vars(&[("PUBLIC_BASE_URL", "otp.example.com")]));
    assert_eq!(e.var, "PUBLIC_BASE_URL");
    assert!(
        e.reason
            .contains("must start with https:// (or http:// for a loopback address)"),
        "{e}"
    );
    let e = first_error(&vars(&[("PUBLIC_BASE_URL", "ftp://otp.example.com")]));
    assert!(e.reason.contains("must start with https://"), "{e}");
}

#[test]
fn credentials_are_checked_with_a_warning_unless_told_otherwise() {
    let check = |v: &[(&str, &str)]| Settings::from_vars(&vars(v)).unwrap().plivo_check;
    assert_eq!(check(&[]), CredentialCheck::Warn);
    assert_eq!(
        check(&[("PLIVO_CHECK_CREDENTIALS", "strict")]),
        CredentialCheck::Strict
    );
    assert_eq!(
        check(&[("PLIVO_CHECK_CREDENTIALS", "off")]),
        CredentialCheck::Off
    );
    assert!(
        Settings::from_vars(&vars(&[("RUST_LOG", "info,plivo_2fa=debug")])).is_ok(),
        "a good filter passes"
    );
}

#[test]
fn fallback_channels_errors_name_the_variable_in_one_line() {
    for (bad, says) in [
        ("sms,fax", "not a channel"),
        ("sms,sms", "twice"),
        ("sms,whatsapp", "whatsapp cannot be a fallback"),
        ("voice,sms", "voice must come last"),
        (",", "at least one"),
    ] {
        let e = first_error(&vars(&[("FALLBACK_CHANNELS", bad)]));
        assert_eq!(e.var, "FALLBACK_CHANNELS", "{bad:?}");
        assert!(e.reason.contains(says), "{bad:?}: {}", e.reason);
        assert!(!e.to_string().contains('\n'));
    }
    let s = Settings::from_vars(&vars(&[("FALLBACK_CHANNELS", "voice")])).unwrap();
    assert_eq!(default(&s).policy.fallback_channels.to_list(), "voice");
    let s = Settings::from_vars(&BTreeMap::new()).unwrap();
    assert_eq!(default(&s).policy.fallback_channels.to_list(), "sms,voice");
}

#[test]
fn whatsapp_needs_both_its_sender_and_its_template_and_checks_each() {
    let e = first_error(&vars(&[("WHATSAPP_TEMPLATE", "otp_copy_code")]));
    assert_eq!(e.var, "PLIVO_WHATSAPP_FROM");
    let e = first_error(&vars(&[("PLIVO_WHATSAPP_FROM", "+14155550197")]));
    assert_eq!(e.var, "WHATSAPP_TEMPLATE");
    let e = first_error(&vars(&[
        ("PLIVO_WHATSAPP_FROM", "4155550197"),
        ("WHATSAPP_TEMPLATE", "otp_copy_code"),
    ]));
    assert_eq!(e.var, "PLIVO_WHATSAPP_FROM");
    let e = first_error(&vars(&[
        ("PLIVO_WHATSAPP_FROM", "+14155550197"),
        ("WHATSAPP_TEMPLATE", "OTP Copy Code"),
    ]));
    assert_eq!(e.var, "WHATSAPP_TEMPLATE");
    let e = first_error(&vars(&[("CHANNELS", "sms,whatsapp")]));
    assert_eq!(e.var, "CHANNELS");
    assert!(e.reason.contains("PLIVO_WHATSAPP_FROM"), "{}", e.reason);

    let none = Settings::from_vars(&BTreeMap::new()).unwrap();
    assert!(default(&none).whatsapp.is_none());
    assert!(
        !default(&none)
            .channels
            .allows(crate::domain::Channel::WhatsApp)
    );
    let on = Settings::from_vars(&vars(&[
        ("PLIVO_WHATSAPP_FROM", "+14155550197"),
        ("WHATSAPP_TEMPLATE", "otp_copy_code"),
    ]))
    .unwrap();
    let sender = default(&on).whatsapp.clone().unwrap();
    assert_eq!(
        (sender.from.as_str(), sender.template.as_str()),
        ("+14155550197", "otp_copy_code")
    );
    assert!(
        default(&on)
            .channels
            .allows(crate::domain::Channel::WhatsApp)
    );
    let off = Settings::from_vars(&vars(&[
        ("PLIVO_WHATSAPP_FROM", "+14155550197"),
        ("WHATSAPP_TEMPLATE", "otp_copy_code"),
        ("CHANNELS", "sms,voice"),
    ]))
    .unwrap();
    assert!(
        !default(&off)
            .channels
            .allows(crate::domain::Channel::WhatsApp)
    );
}

#[test]
fn an_application_table_sets_its_own_whatsapp_sender_and_fallback_order() {
    let tables = [Table {
        id: crate::domain::ApplicationId::parse("shop").unwrap(),
        values: vars(&[
            ("API_KEYS", "shop-key-0123456789"),
            ("PLIVO_WHATSAPP_FROM", "+14155550196"),
            ("WHATSAPP_TEMPLATE", "shop_otp"),
            ("FALLBACK_CHANNELS", "sms"),
        ]),
    }];
    let s = Settings::from_sources(&BTreeMap::new(), &tables).unwrap();
    let shop = s
        .applications
        .iter()
        .find(|a| a.id.as_str() == "shop")
        .unwrap();
    assert_eq!(shop.whatsapp.as_ref().unwrap().template, "shop_otp");
    assert_eq!(shop.policy.fallback_channels.to_list(), "sms");
    assert!(default(&s).whatsapp.is_none());
}
