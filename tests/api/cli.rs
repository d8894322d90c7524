//! The `plivo-2fa` binary: `sign`, `check-templates`, and start-up refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plivo-2fa"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

pub(crate) fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of xml-templates/ that a test may break.
fn template_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("p2fa-tpl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("xml-templates");
    for locale in std::fs::read_dir(&src).unwrap() {
        let locale = locale.unwrap();
        let target = dir.join(locale.file_name());
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(locale.path()).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), target.join(file.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn sign_prints_the_signature_plivos_docs_give() {
    let out = bin()
        .env("PLIVO_AUTH_TOKEN", "my_auth_token")
        .args([
            "sign",
            "--url",
            "https://example.com/abcd?foo=bar",
            "--nonce",
            "kjsdhfsd87sd7yisud2",
            "CallUUID=4vbcpem8-0u46-x1ha-9af1-438vc92bf374",
            "Digits=1234",
            "From=+15551111111",
            "To=+15555555555",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        text(&out).0.trim(),
        "Nlb1ZrTN1nl3nKqEi/MmVAeWDsZ4P5YMSLcK1/yOU6o="
    );
}

#[test]
fn sign_without_a_token_says_what_to_set() {
    let out = bin()
        .args(["sign", "--url", "https://x/y", "--nonce", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("PLIVO_AUTH_TOKEN"));
}

#[test]
fn check_templates_passes_on_the_shipped_templates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("xml-templates");
    let out = bin()
        .args(["check-templates", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn a_malformed_template_fails_with_its_file_and_line() {
    let dir = template_copy("malformed");
    let file = dir.join("fr-FR").join("answer.xml");
    let broken = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("</Speak>", "", 1);
    std::fs::write(&file, broken).unwrap();
    let out = bin()
        .args(["check-templates", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out).1;
    assert!(err.contains("fr-FR/answer.xml:"), "{err}");
    let line: String = err
        .split("answer.xml:")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(line.parse::<u32>().unwrap() >= 1, "{err}");
}

#[test]
fn an_unknown_placeholder_stops_the_server_at_start_up_with_file_and_line() {
    let dir = template_copy("placeholder");
    let file = dir.join("de-DE").join("repeat.xml");
    let broken = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("{{code}}", "{{pin}}", 1);
    std::fs::write(&file, broken).unwrap();
    let out = bin()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("XML_TEMPLATES_DIR", &dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out).1;
    assert!(err.contains("de-DE/repeat.xml:"), "{err}");
    assert!(err.contains("pin"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    for (var, value) in [
        ("OTP_LENGTH", "3"),
        ("REDIS_URL", "http://nope"),
        ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
        // Open-ended keys are read from the environment too.
        ("SMS_TEXT_ES_ES", "{code} {nombre}"),
    ] {
        let out = bin().env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out).1;
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(var) || err.contains("PLIVO_AUTH_TOKEN"),
            "{var}: {err}"
        );
        assert!(!err.contains("panicked"));
    }
}
