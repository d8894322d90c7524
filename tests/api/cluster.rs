//! The end-to-end SMS and voice flows on a 3-master Redis Cluster.

use crate::common::{API_KEY, random_number};

async fn cluster_app(extra: &[(&str, &str)]) -> crate::common::TestApp {
    let url = crate::common::redis_cluster_url();
    let prefix = crate::common::unique_prefix();
    let mut vars = vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("API_KEYS", API_KEY),
        ("SCHEDULER_POLL_MS", "20"),
    ];
    vars.extend_from_slice(extra);
    crate::common::spawn_with(&vars).await
}

#[tokio::test]
async fn the_sms_flow_runs_on_redis_cluster() {
    let app = cluster_app(&[]).await;
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Numbers land in different slots; each flow touches one slot per script.
    for _ in 0..6 {
        let to = random_number();
        let started = app.start(&to, "sms").await;
        assert_eq!(started.status, 201, "{:?}", started.body);
        let id = started.body["id"].as_str().unwrap().to_owned();
        app.wait_for(&id, |v| v["deliveries"][0]["status"] == "delivered")
            .await;
        let code = app.last_sms_code(&to).await;
        assert_eq!(
            app.check(&to, &crate::common::wrong(&code)).await.body["attempts_remaining"],
            4
        );
        assert_eq!(app.check(&to, &code).await.body["status"], "approved");
        assert_eq!(
            app.get(&format!("/v1/verifications/{id}")).await.body["status"],
            "approved"
        );
    }
}

#[tokio::test]
async fn the_voice_flow_and_the_fallback_run_on_redis_cluster() {
    let app = cluster_app(&[]).await;
    let to = random_number();
    let id = app.start(&to, "voice").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.spoken_code(&to, 6).await;
    app.wait_for(&id, |v| v["deliveries"][0]["status"] == "completed")
        .await;
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");

    let undelivered = plivo_2fa::sandbox::numbers::SMS_UNDELIVERED;
    let id = app.start(undelivered, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_completed_call(&id).await;
}
