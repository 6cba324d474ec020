//! `tinygnn bench`: its inferences produce the same output as `tinygnn run`,
//! it reports the exact arena, and bad arguments are errors.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, tinygnn};
use serde_json::Value;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn bench_json(model: &Path, graphs: &Path, features: &str) -> Value {
    let out = ok(&tinygnn(&[
        &"bench",
        &model,
        &graphs,
        &"--iters",
        &"3",
        &"--features",
        &features,
        &"--json",
    ]));
    serde_json::from_str(&out).expect("bench --json prints JSON")
}

#[test]
fn bench_output_equals_run_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = models().join("karate-gcn/karate-gcn.tgnn");
    let graphs = models().join("karate-gcn/graphs.safetensors");
    let bytes_file = dir.path().join("out.bin");
    let run: Value = serde_json::from_str(&ok(&tinygnn(&[
        &"run",
        &model,
        &graphs,
        &"--json",
        &"--output-bytes",
        &bytes_file,
    ])))
    .unwrap();
    let raw = std::fs::read(&bytes_file).unwrap();
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&raw);
    for features in ["f32", "i8"] {
        let b = bench_json(&model, &graphs, features);
        assert_eq!(b["output_crc32"], format!("{crc:08x}"), "{features}");
        assert_eq!(b["argmax"], run["argmax"], "{features}");
        assert_eq!(b["accuracy"], run["accuracy"], "{features}");
        assert_eq!(b["rows"], run["rows"]);
        assert_eq!(b["nodes"], 34);
        assert_eq!(b["edges"], 156);
        assert_eq!(b["iters"], 3);
        assert!(b["median_ns"].as_f64().unwrap() > 0.0);
        assert!(b["min_ns"].as_f64().unwrap() <= b["median_ns"].as_f64().unwrap());
    }
}

#[test]
fn bench_reports_the_arena_inspect_reports() {
    let model = models().join("karate-gcn/karate-gcn.tgnn");
    let graphs = models().join("karate-gcn/graphs.safetensors");
    let b = bench_json(&model, &graphs, "i8");
    // The same number from the runtime directly.
    let bytes = std::fs::read(&model).unwrap();
    let m = tinygnn::Model::from_bytes(&bytes).unwrap();
    assert_eq!(b["arena_bytes"], m.arena_bytes(34, 156, 1));
    assert_eq!(b["model_bytes"], bytes.len());
    let text = ok(&tinygnn(&[&"bench", &model, &graphs, &"--iters", &"2"]));
    assert!(
        text.contains(&format!("arena_bytes {}", m.arena_bytes(34, 156, 1))),
        "{text}"
    );
    assert!(text.contains("per inference"), "{text}");
}

#[test]
fn bench_errors() {
    let karate = models().join("karate-gcn/karate-gcn.tgnn");
    let graphs = models().join("karate-gcn/graphs.safetensors");
    // Zero iterations and an unknown feature form are usage errors.
    assert_eq!(
        tinygnn(&[&"bench", &karate, &graphs, &"--iters", &"0"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        tinygnn(&[&"bench", &karate, &graphs, &"--features", &"f16"])
            .status
            .code(),
        Some(2)
    );
    // More graphs than the model's capacity: one inference cannot run them.
    let digits = models().join("digits-gin/digits-gin.tgnn");
    let many = models().join("digits-gin/graphs.safetensors");
    let o = tinygnn(&[&"bench", &digits, &many, &"--iters", &"1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exceed the model's capacity"), "{err}");
    // Another model's graphs (wrong feature count): a typed runtime error.
    let o = tinygnn(&[&"bench", &karate, &many, &"--iters", &"1"]);
    assert_eq!(o.status.code(), Some(1));
    // A corrupt model.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&karate).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    let bad = dir.path().join("bad.tgnn");
    std::fs::write(&bad, bytes).unwrap();
    let o = tinygnn(&[&"bench", &bad, &graphs]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid model"));
}
