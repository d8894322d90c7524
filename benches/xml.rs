//! Cost of the voice answer XML: rendering the real `xml-templates/` (loaded
//! once, as at start-up) for a six-digit code.
#![allow(clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use plivo_2fa::plivo::xml::{SpokenCode, TemplateKind, Templates, Vars};

const TEMPLATES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/xml-templates");
const ACTION_URL: &str =
    "https://abc123.ngrok-free.app/plivo/voice/again/CR7f3a9c0e2b4d6f8a1c3e5b7d9f0a2c4e?n=1";

fn xml(c: &mut Criterion) {
    let templates = Templates::load(Path::new(TEMPLATES_DIR)).expect("the templates load");
    let vars = Vars {
        brand: "plivo-2fa",
        code: SpokenCode::new("042917").expect("digits"),
        action_url: ACTION_URL,
        minutes: 10,
    };

    let mut group = c.benchmark_group("xml");
    group.bench_function("render answer en-US", |b| {
        b.iter(|| templates.render(black_box("en-US"), TemplateKind::Answer, black_box(&vars)))
    });
    group.bench_function("render answer es (language fallback)", |b| {
        b.iter(|| templates.render(black_box("es"), TemplateKind::Answer, black_box(&vars)))
    });
    group.bench_function("render apology en-US", |b| {
        b.iter(|| templates.render(black_box("en-US"), TemplateKind::Apology, black_box(&vars)))
    });
    let mut buffer = String::new();
    group.bench_function("render_into a reused buffer", |b| {
        b.iter(|| {
            buffer.clear();
            templates.render_into(
                black_box("en-US"),
                TemplateKind::Answer,
                black_box(&vars),
                &mut buffer,
            );
            buffer.len()
        })
    });
    group.finish();
}

criterion_group!(benches, xml);
criterion_main!(benches);
