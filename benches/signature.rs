//! Cost of proving a Plivo callback genuine: the V3 signature of a realistic
//! answer callback (the SDK's known-answer vector: a POST with a query string
//! and thirteen form parameters), with and without decoding its form body.
#![allow(clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use plivo_2fa::plivo::signature::{Method, parse_form, verify_v3};
use serde_json::Value;

const VECTORS: &str = include_str!("../tests/conformance/plivo-signature-vectors.json");
/// The vector that looks most like a voice answer callback.
const VECTOR: &str = "sdk-post-with-query";

struct Callback {
    url: String,
    params: Vec<(String, String)>,
    nonce: String,
    token: String,
    signature: String,
}

fn callback() -> Callback {
    let all: Value = serde_json::from_str(VECTORS).expect("the vectors are JSON");
    let v = all["v3"]
        .as_array()
        .and_then(|list| list.iter().find(|v| v["name"] == VECTOR))
        .expect("the SDK vector is present");
    let text = |key: &str| v[key].as_str().expect("a string field").to_owned();
    let params = v["params"]
        .as_object()
        .expect("params is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string value").to_owned()))
        .collect();
    Callback {
        url: text("url"),
        params,
        nonce: text("nonce"),
        token: text("auth_token"),
        signature: text("signature"),
    }
}

fn signature(c: &mut Criterion) {
    let cb = callback();
    let tokens: [&[u8]; 1] = [cb.token.as_bytes()];
    assert!(
        verify_v3(
            &tokens,
            Method::Post,
            &cb.url,
            &cb.params,
            &cb.nonce,
            &cb.signature
        )
        .is_ok(),
        "the vector verifies"
    );
    let body = serde_urlencoded::to_string(&cb.params).expect("the params encode");

    let mut group = c.benchmark_group("signature");
    group.bench_function("verify_v3 (SDK answer callback)", |b| {
        b.iter(|| {
            verify_v3(
                black_box(&tokens),
                Method::Post,
                black_box(&cb.url),
                black_box(&cb.params),
                black_box(&cb.nonce),
                black_box(&cb.signature),
            )
        })
    });
    group.bench_function("parse_form + verify_v3", |b| {
        b.iter(|| {
            let params = parse_form(black_box(body.as_bytes())).expect("a small form");
            verify_v3(
                &tokens,
                Method::Post,
                &cb.url,
                &params,
                &cb.nonce,
                &cb.signature,
            )
        })
    });
    let rotated: [&[u8]; 2] = [
        b"an-older-auth-token-that-no-longer-signs",
        cb.token.as_bytes(),
    ];
    group.bench_function("verify_v3, second of two tokens", |b| {
        b.iter(|| {
            verify_v3(
                black_box(&rotated),
                Method::Post,
                &cb.url,
                &cb.params,
                &cb.nonce,
                &cb.signature,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, signature);
criterion_main!(benches);
