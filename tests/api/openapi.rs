//! The OpenAPI document is generated from the code and matches the real routes.

use serde_json::Value;

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_app_api_routes() {
    let app = crate::common::spawn_app(&[]).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
            ("get", "/v1/verifications/{id}"),
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
