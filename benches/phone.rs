//! Cost of parsing phone numbers at the boundary (libphonenumber's metadata),
//! and of the first parse, which loads that metadata.
#![allow(clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use plivo_2fa::domain::PhoneNumber;

fn phone(c: &mut Criterion) {
    // Criterion cannot time a one-off; this can, once, before anything else parses.
    let started = Instant::now();
    let first = PhoneNumber::parse("+14155550100");
    eprintln!(
        "phone: the first PhoneNumber::parse (loads the metadata) took {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    assert!(first.is_ok());

    let mut group = c.benchmark_group("phone");
    group.bench_function("parse US +14155550100", |b| {
        b.iter(|| PhoneNumber::parse(black_box("+14155550100")))
    });
    group.bench_function("parse GB mobile +447400123456", |b| {
        b.iter(|| PhoneNumber::parse(black_box("+447400123456")))
    });
    group.bench_function(
        "parse and region US +14155550100 (the allow-list asks)",
        |b| b.iter(|| PhoneNumber::parse(black_box("+14155550100")).map(|n| n.region())),
    );
    group.bench_function(
        "parse GB with a trunk prefix +4407400123456 (the full parse)",
        |b| b.iter(|| PhoneNumber::parse(black_box("+4407400123456"))),
    );
    // The crate alone, as PhoneNumber::parse did for every number before it
    // read the numbers no parse could rewrite straight from the metadata.
    group.bench_function("the crate's parse and number type, US +14155550100", |b| {
        b.iter(|| {
            phonenumber::parse(None, black_box("+14155550100"))
                .map(|p| p.number_type(&phonenumber::metadata::DATABASE))
        })
    });
    group.bench_function("parse invalid +19995550100", |b| {
        b.iter(|| PhoneNumber::parse(black_box("+19995550100")))
    });
    group.bench_function("refuse non-E.164 input", |b| {
        b.iter(|| PhoneNumber::parse(black_box("+1 415 555 0100")))
    });
    let stored = PhoneNumber::from_trusted_e164("+14155550100".to_owned());
    group.bench_function("line_kind of a stored number", |b| {
        b.iter(|| black_box(&stored).line_kind())
    });
    group.bench_function("country_code of a stored number", |b| {
        b.iter(|| black_box(&stored).country_code())
    });
    group.finish();
}

criterion_group!(benches, phone);
criterion_main!(benches);
