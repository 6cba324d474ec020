//! `tinygnn pack`: the input bundles of the board firmware, the host
//! reference report, the demo and synthetic models, and the bundle the
//! board crates embed by default (`models/karate-gcn/inputs.tgib`).

mod common;

use std::path::{Path, PathBuf};

use common::{fails, ok, tinygnn};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn karate() -> PathBuf {
    root().join("models/karate-gcn")
}

/// `hex` lines of a report, as the bytes they print.
fn hex_bytes(report: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in report.lines().filter(|l| l.starts_with("hex 0 ")) {
        let h = line.rsplit(' ').next().unwrap();
        for i in (0..h.len()).step_by(2) {
            out.push(u8::from_str_radix(&h[i..i + 2], 16).unwrap());
        }
    }
    out
}

#[test]
fn help_lists_the_commands_and_exits_0() {
    let text = ok(&tinygnn(&[&"pack", &"--help"]));
    for c in ["inputs", "expect", "arena", "demo", "synth"] {
        assert!(text.contains(c), "{text}");
    }
    let text = ok(&tinygnn(&[&"pack", &"inputs", &"--help"]));
    for o in ["--split", "--mask", "--max", "--quantize", "--sparse"] {
        assert!(text.contains(o), "{text}");
    }
    assert!(ok(&tinygnn(&[&"--help"])).contains("pack"));
}

/// The board crates embed `models/karate-gcn/inputs.tgib` when no
/// `TINYGNN_INPUTS` is given (boards/app/src/build.rs): it must be exactly
/// what `tinygnn pack inputs` makes of the bundled graphs today. If this
/// fails after an intended change of the bundle format or of `pack inputs`,
/// rewrite it with
/// `tinygnn pack inputs models/karate-gcn/graphs.safetensors models/karate-gcn/inputs.tgib`.
#[test]
fn bundled_default_inputs_equal_a_fresh_pack() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("inputs.tgib");
    ok(&tinygnn(&[
        &"pack",
        &"inputs",
        &karate().join("graphs.safetensors"),
        &fresh,
    ]));
    let committed = std::fs::read(karate().join("inputs.tgib")).unwrap();
    assert!(
        std::fs::read(&fresh).unwrap() == committed,
        "models/karate-gcn/inputs.tgib differs from a fresh `tinygnn pack inputs` (see this test's docs)"
    );
}

/// The host reference report of the default firmware: the output bytes
/// equal `tinygnn run`'s, and the accuracy is counted over the test mask.
#[test]
fn expect_on_the_default_bundle_matches_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = karate().join("karate-gcn.tgnn");
    let report = ok(&tinygnn(&[
        &"pack",
        &"expect",
        &model,
        &karate().join("inputs.tgib"),
    ]));
    let first = report.lines().next().unwrap();
    assert!(
        first.starts_with("tinygnn board=host model_bytes=720 "),
        "{report}"
    );
    assert!(
        report.contains("sample 0 nodes=34 edges=156 graphs=1"),
        "{report}"
    );
    assert!(report
        .lines()
        .last()
        .unwrap()
        .starts_with("summary samples=1 "));
    let raw = dir.path().join("out.bin");
    let run: serde_json::Value = serde_json::from_str(&ok(&tinygnn(&[
        &"run",
        &model,
        &karate().join("graphs.safetensors"),
        &"--json",
        &"--output-bytes",
        &raw,
    ])))
    .unwrap();
    assert_eq!(hex_bytes(&report), std::fs::read(&raw).unwrap());
    // The firmware's `acc` counts the test-mask rows, as `run` does (22/30 today).
    let rows = run["accuracy_rows"].as_u64().unwrap();
    let correct = (run["accuracy"].as_f64().unwrap() * rows as f64).round() as u64;
    assert_eq!(rows, 30);
    assert!(
        report.contains(&format!("acc 0 {correct}/{rows}")),
        "{report}"
    );
    let arena = ok(&tinygnn(&[
        &"pack",
        &"arena",
        &model,
        &karate().join("inputs.tgib"),
    ]));
    assert!(
        report.contains(&format!("arena_used={}", arena.trim())),
        "{arena} / {report}"
    );
}

/// A recurrent model (models/sensor-tgcn) runs its bundle as a sequence:
/// one sample per step, the state carried between them in front of the
/// arena; every step's bytes equal `run --sequence`'s, and the arena of the
/// report is the state (rounded to 16) plus the session's arena.
#[test]
fn expect_steps_a_recurrent_bundle_like_run_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let d = root().join("models/sensor-tgcn");
    let (model, graphs) = (d.join("sensor-tgcn.tgnn"), d.join("graphs.safetensors"));
    let bundle = dir.path().join("inputs.tgib");
    ok(&tinygnn(&[
        &"pack", &"inputs", &graphs, &bundle, &"--split",
    ]));
    let report = ok(&tinygnn(&[&"pack", &"expect", &model, &bundle]));
    let raw = dir.path().join("out.bin");
    let run: serde_json::Value = serde_json::from_str(&ok(&tinygnn(&[
        &"run",
        &model,
        &graphs,
        &"--sequence",
        &"--json",
        &"--output-bytes",
        &raw,
    ])))
    .unwrap();
    let steps = run["steps"].as_u64().unwrap();
    let state = run["state_bytes"].as_u64().unwrap();
    let nodes = run["nodes"].as_u64().unwrap();
    assert!(steps >= 100 && state > 0, "{run}");
    assert!(
        report.contains(&format!("\nstate bytes={state} nodes={nodes} channels=")),
        "{report}"
    );
    let mut all = Vec::new();
    for line in report.lines().filter(|l| l.starts_with("hex ")) {
        let h = line.rsplit(' ').next().unwrap();
        for i in (0..h.len()).step_by(2) {
            all.push(u8::from_str_radix(&h[i..i + 2], 16).unwrap());
        }
    }
    assert_eq!(all, std::fs::read(&raw).unwrap());
    assert!(
        report.contains(&format!("summary samples={steps} ")),
        "{report}"
    );
    // `pack arena` (the firmware's ARENA_BYTES before rounding) = state region + arena_used.
    let arena: u64 = ok(&tinygnn(&[&"pack", &"arena", &model, &bundle]))
        .trim()
        .parse()
        .unwrap();
    let used: u64 = report
        .split("arena_used=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(arena, state.div_ceil(16) * 16 + used, "{report}");
    assert_eq!(used, run["arena_bytes"].as_u64().unwrap(), "{run}");
}

/// `demo` writes a model, a bundle and the same graphs as a safetensors
/// batch; packing that batch graph by graph gives the demo's bundle back.
#[test]
fn demo_round_trips_through_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    ok(&tinygnn(&[&"pack", &"demo", &d]));
    let again = dir.path().join("again.tgib");
    ok(&tinygnn(&[
        &"pack",
        &"inputs",
        &d.join("graphs.safetensors"),
        &again,
        &"--split",
    ]));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(d.join("inputs.tgib")).unwrap()
    );
    let report = ok(&tinygnn(&[
        &"pack",
        &"expect",
        &d.join("model.tgnn"),
        &again,
    ]));
    assert_eq!(report.lines().filter(|l| l.starts_with("out ")).count(), 3);
    // The same files on every run (seeded).
    let d2 = dir.path().join("demo2");
    ok(&tinygnn(&[&"pack", &"demo", &d2]));
    for f in ["model.tgnn", "inputs.tgib", "graphs.safetensors"] {
        assert_eq!(
            std::fs::read(d.join(f)).unwrap(),
            std::fs::read(d2.join(f)).unwrap()
        );
    }
}

#[test]
fn synth_makes_a_model_of_the_asked_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("s");
    let o = tinygnn(&[
        &"pack",
        &"synth",
        &d,
        &"--nodes",
        &"50",
        &"--edges",
        &"200",
        &"--features",
        &"12",
        &"--hidden",
        &"6",
        &"--classes",
        &"3",
    ]);
    ok(&o);
    let j: serde_json::Value = serde_json::from_str(&ok(&tinygnn(&[
        &"inspect",
        &d.join("model.tgnn"),
        &"--json",
    ])))
    .unwrap();
    assert_eq!(j["capacity"]["max_nodes"], 50);
    assert_eq!(j["capacity"]["max_edges"], 200);
    let run = ok(&tinygnn(&[
        &"run",
        &d.join("model.tgnn"),
        &d.join("graphs.safetensors"),
        &"--json",
    ]));
    let r: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(
        (r["rows"].as_u64(), r["channels"].as_u64()),
        (Some(50), Some(3))
    );
    fails(
        &tinygnn(&[&"pack", &"synth", &d, &"--edges", &"3"]),
        &["even edge count"],
    );
}

/// int8 and sparse int8 features give the same outputs as f32 ones (the
/// runtime quantizes f32 features with the same function).
#[test]
fn quantized_and_sparse_bundles_give_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = karate().join("karate-gcn.tgnn");
    let graphs = karate().join("graphs.safetensors");
    let mut reports = Vec::new();
    for (name, extra) in [
        ("f32", vec![]),
        ("i8", vec!["--quantize"]),
        ("sparse", vec!["--quantize", "--sparse"]),
    ] {
        let out = dir.path().join(format!("{name}.tgib"));
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"pack", &"inputs", &graphs, &out];
        for e in &extra {
            args.push(e);
            if *e == "--quantize" {
                args.push(&model);
            }
        }
        ok(&tinygnn(&args));
        reports.push(hex_bytes(&ok(&tinygnn(&[
            &"pack", &"expect", &model, &out,
        ]))));
    }
    assert!(!reports[0].is_empty());
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[0], reports[2]);
}

#[test]
fn bad_arguments_and_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tgib");
    let graphs = karate().join("graphs.safetensors");
    // --sparse needs --quantize: a usage error.
    let o = tinygnn(&[&"pack", &"inputs", &graphs, &out, &"--sparse"]);
    assert_eq!(o.status.code(), Some(2));
    // Node pairs cannot be split per graph.
    let link = root().join("tests/conformance/link_inner/graphs.safetensors");
    fails(
        &tinygnn(&[&"pack", &"inputs", &link, &out, &"--split"]),
        &["edge_label_index"],
    );
    // The output may not be the input.
    fails(
        &tinygnn(&[&"pack", &"inputs", &graphs, &graphs]),
        &["refusing to write"],
    );
    // A bundle that is not one.
    fails(
        &tinygnn(&[
            &"pack",
            &"expect",
            &karate().join("karate-gcn.tgnn"),
            &graphs,
        ]),
        &["inputs"],
    );
    assert!(!out.exists());
}
