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

/// A directory of its own outside the checkout, for a binary run from there.
fn elsewhere(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("p2fa-away-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(!dir.starts_with(env!("CARGO_MANIFEST_DIR")));
    dir
}

#[test]
fn check_templates_checks_the_built_in_set_or_the_directory_the_configuration_names() {
    let away = elsewhere("check");
    // No XML_TEMPLATES_DIR: the templates built into the binary.
    let out = bin()
        .current_dir(&away)
        .arg("check-templates")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0.trim(), "built-in templates: 45 templates OK");
    // XML_TEMPLATES_DIR in the --config file is the set checked.
    let broken = template_copy("config");
    let file = broken.join("it-IT").join("goodbye.xml");
    std::fs::write(&file, "<Response><Speak>").unwrap();
    let config = away.join("plivo-2fa.toml");
    std::fs::write(
        &config,
        format!("XML_TEMPLATES_DIR = {:?}\n", broken.to_str().unwrap()),
    )
    .unwrap();
    let out = bin()
        .current_dir(&away)
        .args(["--config"])
        .arg(&config)
        .arg("check-templates")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("it-IT/goodbye.xml"),
        "{:?}",
        text(&out)
    );
    // And from the environment, which wins over the file.
    let good = template_copy("env");
    let out = bin()
        .current_dir(&away)
        .env("XML_TEMPLATES_DIR", &good)
        .args(["--config"])
        .arg(&config)
        .arg("check-templates")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        text(&out).0.contains(good.to_str().unwrap()),
        "{:?}",
        text(&out)
    );
}

#[test]
fn the_binary_serves_the_demo_page_and_voice_calls_from_a_directory_outside_the_checkout() {
    use std::io::{BufRead, BufReader};
    let away = elsewhere("serve");
    let mut child = bin()
        .current_dir(&away)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut key, mut base) = (None, None);
    for line in lines.by_ref().take(10) {
        let line = line.unwrap();
        if let Some(k) = line.strip_prefix("API key for this run: ") {
            key = Some(k.to_owned());
        }
        if let Some(b) = line.strip_prefix("listening on ") {
            base = Some(b.trim_end_matches('/').to_owned());
            break;
        }
    }
    let (key, base) = (key.expect("a key"), base.expect("an address"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let http = reqwest::Client::new();
        let page = http.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("<html"));
        let js = http
            .get(format!("{base}/demo/app.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(js.status(), 200);
        // A voice verification: the simulator fetches the answer XML, which
        // the built-in templates write, and the call reads the code out.
        let to = crate::common::random_number();
        let r = http
            .post(format!("{base}/v1/verifications"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"to": to, "channel": "voice"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        for _ in 0..200 {
            let calls: Vec<serde_json::Value> = http
                .get(format!("{base}/sandbox/calls"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(call) = calls
                .into_iter()
                .find(|c| c["to"] == to.as_str() && c["status"] == "completed")
            {
                return call;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the call did not end");
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        result["answer_xml"].as_str().unwrap().contains("<Speak"),
        "{result}"
    );
    let spoken = crate::common::spoken_digits(&result["spoken"].to_string());
    assert!(spoken.len() >= 6, "the code was read out: {result}");
}
