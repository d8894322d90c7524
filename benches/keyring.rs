//! Cost of protecting a code: the keyed digest stored and checked against
//! (under one secret, and under two while rotating), and the AEAD seal and
//! open of the copy kept for re-sends.
#![allow(clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use plivo_2fa::domain::{CodeLength, Keyring, OtpCode};
use secrecy::SecretSlice;

/// A verification id, the seal's associated data.
const CONTEXT: &str = "VE3f2a9c0e2b4d6f8a1c3e5b7d9f0a2c4e";

fn keyring(c: &mut Criterion) {
    let one = Keyring::new(&[SecretSlice::from(vec![7u8; 32])]);
    let two = Keyring::new(&[
        SecretSlice::from(vec![8u8; 32]),
        SecretSlice::from(vec![7u8; 32]),
    ]);
    let code = OtpCode::parse("042917", CodeLength::default()).expect("a code");
    let sealed = one.seal(&code, CONTEXT);

    let mut group = c.benchmark_group("keyring");
    group.bench_function("primary_digest", |b| {
        b.iter(|| one.primary_digest(black_box(&code)))
    });
    group.bench_function("digests, one secret", |b| {
        b.iter(|| one.digests(black_box(&code)))
    });
    group.bench_function("digests, two secrets", |b| {
        b.iter(|| two.digests(black_box(&code)))
    });
    group.bench_function("seal", |b| {
        b.iter(|| one.seal(black_box(&code), black_box(CONTEXT)))
    });
    group.bench_function("open", |b| {
        b.iter(|| one.open(black_box(&sealed), black_box(CONTEXT)))
    });
    group.finish();
}

criterion_group!(benches, keyring);
criterion_main!(benches);
