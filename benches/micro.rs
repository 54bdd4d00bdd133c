//! Criterion micro benchmarks of the per-request building blocks: cookie signing and
//! verification, session-ID generation, change detection and the stored record's JSON.
//!
//! Run with `cargo bench --bench micro` (add `-- --quick` for a fast pass).
#![allow(missing_docs)] // criterion's macros generate undocumented public functions

use std::hint::black_box;

use actix_express_session::{generate_id, sign, unsign, Fingerprint, Secrets, SessionRecord};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Map, Value};

const SECRET: &str = "keyboard cat";
const ID: &str = "Jx7rzK1n0XqJb0mT6bUe6a5cP1X2-_aZ";

fn signing(c: &mut Criterion) {
    let one = Secrets::from(SECRET);
    let three = Secrets::from(["newest secret", "older secret", SECRET]);
    let signed = sign(ID, SECRET);

    c.bench_function("sign", |b| {
        b.iter(|| sign(black_box(ID), black_box(SECRET)))
    });
    c.bench_function("unsign/1 secret", |b| {
        b.iter(|| unsign(black_box(&signed), &one).is_some())
    });
    // The cookie was signed with the last of three secrets: the worst case of a rotation.
    c.bench_function("unsign/3 secrets, last matches", |b| {
        b.iter(|| unsign(black_box(&signed), &three).is_some())
    });
    c.bench_function("unsign/bad signature", |b| {
        let forged = format!("{ID}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        b.iter(|| unsign(black_box(&forged), &one).is_none())
    });
    c.bench_function("generate_id", |b| b.iter(generate_id));
}

/// Session data whose canonical JSON is about `bytes` long: a counter, a few typical
/// keys, and string values (and, past 10 KB, a list of objects) to make up the size.
fn session_data(bytes: usize) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("n".into(), json!(41));
    data.insert(
        "user".into(),
        json!({"id": 7, "name": "Ada", "roles": ["admin", "dev"]}),
    );
    data.insert("flash".into(), json!([]));
    let base = serde_json::to_vec(&data).map_or(0, |v| v.len());
    let rest = bytes.saturating_sub(base);
    if rest > 10_000 {
        // Many small items, like a large cart: exercises the structure, not just memcpy.
        let item = json!({"sku": "SKU-000000", "qty": 1, "price": 1999, "note": "gift wrap"});
        let per = serde_json::to_vec(&item).map_or(1, |v| v.len() + 1);
        data.insert("cart".into(), Value::Array(vec![item; rest / per]));
    } else {
        data.insert("payload".into(), json!("x".repeat(rest.saturating_sub(14))));
    }
    data
}

const SIZES: [(&str, usize); 3] = [("100 B", 100), ("10 KB", 10_000), ("1 MB", 1_000_000)];

fn change_detection(c: &mut Criterion) {
    let mut group = c.benchmark_group("Fingerprint::of");
    for (label, size) in SIZES {
        let data = session_data(size);
        let bytes = Fingerprint::of(&data).canonical_json().len();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &data, |b, data| {
            b.iter(|| Fingerprint::of(black_box(data)))
        });
    }
    group.finish();

    // The response-time check: fingerprint again and compare with the one from load.
    let mut group = c.benchmark_group("unchanged check");
    for (label, size) in SIZES {
        let data = session_data(size);
        let at_load = Fingerprint::of(&data);
        group.bench_with_input(BenchmarkId::from_parameter(label), &data, |b, data| {
            b.iter(|| Fingerprint::of(black_box(data)) == at_load)
        });
    }
    group.finish();
}

fn record(json_text: &str) -> SessionRecord {
    match SessionRecord::from_json(json_text.as_bytes()) {
        Ok(record) => record,
        Err(e) => panic!("benchmark record does not parse: {e}"),
    }
}

fn records(c: &mut Criterion) {
    let mut parse = c.benchmark_group("SessionRecord::from_json");
    let mut texts = Vec::new();
    for (label, size) in SIZES {
        let mut object = session_data(size);
        object.insert(
            "cookie".into(),
            json!({"originalMaxAge": 86_400_000, "expires": "2030-01-01T00:00:00.000Z",
                   "secure": false, "httpOnly": true, "path": "/", "sameSite": "lax"}),
        );
        let text = Value::Object(object).to_string();
        parse.throughput(Throughput::Bytes(text.len() as u64));
        parse.bench_with_input(BenchmarkId::from_parameter(label), &text, |b, text| {
            b.iter(|| SessionRecord::from_json(black_box(text.as_bytes())).is_ok())
        });
        texts.push((label, text));
    }
    parse.finish();

    let mut serialize = c.benchmark_group("SessionRecord::to_json");
    for (label, text) in &texts {
        let rec = record(text);
        serialize.throughput(Throughput::Bytes(text.len() as u64));
        serialize.bench_with_input(BenchmarkId::from_parameter(label), &rec, |b, rec| {
            b.iter(|| black_box(rec).to_json())
        });
    }
    serialize.finish();
}

criterion_group!(benches, signing, change_detection, records);
criterion_main!(benches);
