//! The OpenAPI document is generated from the code and matches the real routes.

use serde_json::Value;

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_app_api_routes() {
    let app = crate::common::spawn_app(&[]).await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    assert_eq!(
        documented,
        [
            ("delete", "/v1/factors/{id}"),
            ("get", "/v1/factors/{id}"),
            ("get", "/v1/verifications/{id}"),
            ("post", "/v1/factors"),
            ("post", "/v1/factors/{id}/check"),
            ("post", "/v1/factors/{id}/verify"),
            ("post", "/v1/verifications"),
            ("post", "/v1/verifications/check"),
            ("post", "/v1/verifications/{id}/cancel"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
    );
    // Each documented operation exists on the real server: without a key it is
    // a 401 from the route, not a 404 or a 405 from the router.
    for (method, path) in &documented {
        let url = app.url(&path.replace("{id}", "VE00000000000000000000000000000000"));
        let r = app
            .http
            .request(method.to_uppercase().parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        // And it documents its 401, its bearer security and the error shape.
        let op = &paths[path][method];
        assert!(op["responses"]["401"].is_object(), "{method} {path}");
        assert!(op["security"][0]["bearer"].is_array());
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "VerificationView",
        "DeliveryView",
        "ErrorBody",
        "StartRequest",
        "CheckRequest",
        "Status",
        "Channel",
        "CreateFactorRequest",
        "FactorCodeRequest",
        "FactorView",
        "EnrolledFactorView",
        "FactorVerifyView",
        "FactorCheckView",
        "FactorStatus",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    let view = &schemas["VerificationView"];
    assert_eq!(view["properties"]["valid"]["type"], "boolean");
    assert!(
        view["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "valid"),
        "every verification answer carries `valid`"
    );
    let enrolled = doc["paths"]["/v1/factors"]["post"]["responses"]["201"].to_string();
    assert!(enrolled.contains("EnrolledFactorView"), "{enrolled}");
    let status = &schemas["Status"]["enum"];
    assert_eq!(status.as_array().unwrap().len(), 6);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // An undocumented /v1 path is not a route.
    let r = app
        .http
        .post(app.url("/v1/verifications/VE00000000000000000000000000000000/approve"))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// The document, as the server serves it.
async fn document(app: &crate::common::TestApp) -> Value {
    app.http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const E164: &str = r"^\+[1-9][0-9]{6,14}$";

#[tokio::test]
async fn the_document_is_as_strict_as_the_server_about_numbers_codes_channels_and_times() {
    let app = crate::common::spawn_app(&[]).await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let start = &schemas["StartRequest"]["properties"];
    assert_eq!(start["to"]["pattern"], E164);
    assert!(
        start["channel"]
            .to_string()
            .contains("#/components/schemas/Channel"),
        "{}",
        start["channel"]
    );
    assert_eq!(
        schemas["Channel"]["enum"],
        serde_json::json!(["sms", "voice", "whatsapp"])
    );
    let check = &schemas["CheckRequest"]["allOf"];
    let fields = &check[0]["properties"];
    assert_eq!(fields["to"]["pattern"], E164);
    assert_eq!(fields["code"]["pattern"], "^[0-9]{4,10}$");
    assert_eq!(check[0]["required"], serde_json::json!(["code"]));
    let one_of: Vec<&Value> = check[1]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["required"])
        .collect();
    assert_eq!(
        one_of,
        [&serde_json::json!(["to"]), &serde_json::json!(["id"])]
    );
    let view = &schemas["VerificationView"]["properties"];
    for time in ["created_at", "expires_at"] {
        assert_eq!(view[time]["format"], "date-time", "{time}");
    }
    assert_eq!(view["to"]["pattern"], E164);
    let delivery = &schemas["DeliveryView"]["properties"];
    assert_eq!(delivery["updated_at"]["format"], "date-time");
    assert!(
        delivery["created_at"].to_string().contains("date-time"),
        "{}",
        delivery["created_at"]
    );

    // And the server refuses what the document refuses.
    for (body, what) in [
        (
            serde_json::json!({"to": "+1 415 555 0100"}),
            "a spaced number",
        ),
        (
            serde_json::json!({"to": "14155550100"}),
            "a number without +",
        ),
        (
            serde_json::json!({"to": "+14155550100", "channel": "fax"}),
            "a channel not in the enum",
        ),
        (
            serde_json::json!({"to": "+14155550100", "locale": "english"}),
            "a locale not a tag",
        ),
    ] {
        let r = app.post_json("/v1/verifications", body).await;
        assert_eq!(r.status, 400, "{what}: {:?}", r.body);
    }
    let id = "VE00000000000000000000000000000000";
    for (body, what) in [
        (
            serde_json::json!({"to": "+14155550100", "code": "12a456"}),
            "a code with a letter",
        ),
        (
            serde_json::json!({"to": "+14155550100", "id": id, "code": "123456"}),
            "both to and id",
        ),
        (serde_json::json!({"code": "123456"}), "neither to nor id"),
    ] {
        let r = app.post_json("/v1/verifications/check", body).await;
        assert_eq!(r.status, 400, "{what}: {:?}", r.body);
    }
}

#[tokio::test]
async fn errors_the_server_gives_are_documented_and_405s_name_the_allowed_method() {
    let app = crate::common::spawn_app(&[]).await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            assert_eq!(
                responses["405"]["headers"]["Allow"]["schema"]["type"], "string",
                "{method} {path}"
            );
            for status in ["429", "503"] {
                if responses[status].is_object() {
                    assert_eq!(
                        responses[status]["headers"]["Retry-After"]["schema"]["type"], "integer",
                        "{status} of {method} {path}"
                    );
                }
            }
            assert!(responses["503"].is_object(), "{method} {path}");
            // Every error answer is the one error shape.
            for (status, response) in responses.as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{status} of {method} {path}"
                    );
                }
            }
            for status in ["401", "405"] {
                assert!(responses[status].is_object(), "{status} of {method} {path}");
            }
            if op["requestBody"].is_object() {
                for status in ["400", "413", "415"] {
                    assert!(responses[status].is_object(), "{status} of {method} {path}");
                }
                // Every request with a body can be refused with a 429 but an
                // authenticator's enrolment, which nothing limits but its key.
                if !(method == "post" && path == "/v1/factors") {
                    assert!(responses["429"].is_object(), "429 of {method} {path}");
                }
            }
            // The server's 405 carries the Allow header the document promises.
            let url = app.url(&path.replace("{id}", "VE00000000000000000000000000000000"));
            let r = app
                .http
                .request(reqwest::Method::PATCH, url)
                .bearer_auth(&app.api_key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "PATCH {path}");
            // Allow names every method the path answers (GET and DELETE of a factor).
            let allowed: std::collections::BTreeSet<String> = r.headers()["allow"]
                .to_str()
                .unwrap()
                .split(", ")
                .map(str::to_owned)
                .collect();
            let documented: std::collections::BTreeSet<String> = item
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            assert_eq!(allowed, documented, "{path}");
        }
    }
    // The operator routes: an unknown method is a 405 with Allow, not a 404.
    for (path, allow) in [
        ("/metrics", "GET"),
        ("/openapi.json", "GET"),
        ("/healthz", "GET, HEAD"),
        ("/readyz", "GET, HEAD"),
        ("/sandbox/messages", "GET"),
    ] {
        for method in ["POST", "DELETE", "BREW"] {
            let r = app
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(path),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(r.headers()["allow"], allow, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "method_not_allowed");
        }
    }
    // Over 16 KiB and not JSON: the 413 and the 415 the document lists.
    let big = serde_json::json!({"to": "x".repeat(17 * 1024)});
    assert_eq!(app.post_json("/v1/verifications", big).await.status, 413);
    let r = app
        .http
        .post(app.url("/v1/verifications"))
        .bearer_auth(&app.api_key)
        .header("content-type", "text/plain")
        .body("to=+14155550100")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}
