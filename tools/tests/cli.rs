//! End-to-end tests of the `tinygnn` binary on tiny models written from Rust:
//! convert → inspect → run → verify, and the exit codes and messages of errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{
    convert_bytes, fails, graph_model, node_model, ok, op_names, tinygnn, with_spec_edit,
    GraphsBuilder, ModelBuilder,
};
use serde_json::{json, Value};

struct Case {
    _dir: tempfile::TempDir,
    model: PathBuf,
    graphs: PathBuf,
    tgnn: PathBuf,
}

fn case(m: &ModelBuilder, g: &GraphsBuilder) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.safetensors");
    let graphs = dir.path().join("graphs.safetensors");
    m.write(&model);
    g.write(&graphs);
    let tgnn = dir.path().join("model.tgnn");
    Case {
        model,
        graphs,
        tgnn,
        _dir: dir,
    }
}

fn convert(c: &Case, extra: &[&str]) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"convert", &c.model, &"--calib", &c.graphs, &"-o", &c.tgnn];
    for e in extra {
        args.push(e);
    }
    tinygnn(&args)
}

fn runtime_available() -> bool {
    tinygnn_cli::rt::AVAILABLE
}

fn full_pipeline(c: &Case, rows: usize) {
    let out = ok(&convert(c, &[]));
    assert!(out.contains("device ops"), "{out}");
    let text = ok(&tinygnn(&[&"inspect", &c.tgnn]));
    assert!(
        text.contains("ops:") && text.contains("tensors:") && text.contains("flash:"),
        "{text}"
    );
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &c.tgnn, &"--json"]))).unwrap();
    assert!(j["ops"].as_array().unwrap().len() >= 3);
    assert_eq!(
        j["flash"]["file"].as_u64().unwrap() as usize,
        std::fs::metadata(&c.tgnn).unwrap().len() as usize
    );
    if !runtime_available() {
        eprintln!("runtime execution engine not available: skipping run/verify");
        return;
    }
    let bytes_path = c.tgnn.with_extension("out");
    let r: Value = serde_json::from_str(&ok(&tinygnn(&[
        &"run",
        &c.tgnn,
        &c.graphs,
        &"--json",
        &"--output-bytes",
        &bytes_path,
    ])))
    .unwrap();
    assert_eq!(r["rows"].as_u64().unwrap() as usize, rows);
    let raw = std::fs::read(&bytes_path).unwrap();
    assert_eq!(raw.len(), rows * r["channels"].as_u64().unwrap() as usize);
    let text = ok(&tinygnn(&[&"run", &c.tgnn, &c.graphs]));
    assert!(text.contains("argmax"), "{text}");
    let v: Value = serde_json::from_str(&ok(&tinygnn(&[
        &"verify", &c.model, &c.tgnn, &c.graphs, &"--json",
    ])))
    .unwrap();
    eprintln!("verify: {v}");
    let range = v["float_output_range"].as_f64().unwrap();
    let step = v["output_step"].as_f64().unwrap();
    let err = v["max_abs_err"].as_f64().unwrap();
    assert!(
        err <= 4.0 * step + 0.03 * range,
        "max abs err {err} (step {step}, range {range})"
    );
    assert!(v["top1_agreement"].as_f64().unwrap() >= 0.8, "{v}");
    assert!(v["float_accuracy"].is_number() && v["int8_accuracy"].is_number());
    let text = ok(&tinygnn(&[&"verify", &c.model, &c.tgnn, &c.graphs]));
    assert!(text.contains("top-1 agreement"), "{text}");
    // Every op's int8 output stays within a few steps of its float tensor.
    let v: Value = serde_json::from_str(&ok(&tinygnn(&[
        &"verify",
        &c.model,
        &c.tgnn,
        &c.graphs,
        &"--json",
        &"--per-op",
    ])))
    .unwrap();
    let per_op = v["per_op"].as_array().unwrap();
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &c.tgnn, &"--json"]))).unwrap();
    assert_eq!(per_op.len(), j["ops"].as_array().unwrap().len());
    for p in per_op {
        let steps = p["err_in_steps"].as_f64().unwrap();
        let rel = p["max_abs_err"].as_f64().unwrap() / p["float_range"].as_f64().unwrap().max(1e-9);
        assert!(steps <= 4.0 || rel <= 0.03, "{p}");
    }
}

#[test]
fn node_model_pipeline() {
    let mut g = GraphsBuilder::random(1, 40, 3, 5, 3, 1);
    g.test_mask = Some((0..40).map(|i| i64::from(i % 2 == 0)).collect());
    full_pipeline(&case(&node_model(5, 3), &g), 40);
}

#[test]
fn graph_model_pipeline() {
    let mut g = GraphsBuilder::random(6, 9, 2, 5, 2, 2);
    g.y = vec![0, 1, 1, 0, 1, 0];
    full_pipeline(&case(&graph_model(5, 2), &g), 6);
}

#[test]
fn weighted_improved_gcn_and_sage_variants() {
    let mut m = ModelBuilder::new("node", 4, 3);
    m.gcn(
        "c1",
        "x",
        4,
        6,
        json!({"improved": true, "edge_weight": true}),
    );
    m.act("a1", "leaky_relu", "c1");
    m.sage("c2", "a1", 6, 6, "max", false);
    m.sage("c3", "c2", 6, 5, "sum", true);
    m.act("a3", "relu", "c3");
    let o = m.linear("out", "a3", 5, 3);
    m.outputs = vec![o];
    let mut g = GraphsBuilder::random(1, 30, 3, 4, 3, 5);
    let mut r = common::Rng(9);
    g.edge_weight = Some((0..g.src.len()).map(|_| 0.5 + r.next().abs()).collect());
    // A couple of explicit self-loops.
    g.src.push(3);
    g.dst.push(3);
    g.edge_weight.as_mut().unwrap().push(0.7);
    let c = case(&m, &g);
    full_pipeline(&c, 30);
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &c.tgnn, &"--json"]))).unwrap();
    assert_eq!(j["uses_edge_weight"], true);
    // sage normalize cannot take the relu fused: a standalone act follows.
    assert_eq!(
        op_names(&j),
        ["gcn_conv", "sage_conv", "sage_conv", "act", "linear"]
    );
}

#[test]
fn percentile_calibration_and_capacity_flags() {
    let c = case(&node_model(5, 3), &GraphsBuilder::random(1, 40, 3, 5, 3, 1));
    ok(&convert(
        &c,
        &[
            "--calibration",
            "percentile:99.9",
            "--max-nodes",
            "100",
            "--max-edges",
            "500",
            "--max-graphs",
            "2",
        ],
    ));
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &c.tgnn, &"--json"]))).unwrap();
    assert_eq!(
        j["capacity"],
        json!({"max_nodes": 100, "max_edges": 500, "max_graphs": 2})
    );
    fails(
        &convert(&c, &["--calibration", "kl"]),
        &["unknown calibration 'kl'"],
    );
    fails(
        &convert(&c, &["--max-nodes", "70000"]),
        &["--max-nodes 70000"],
    );
}

#[test]
fn error_unknown_op() {
    let m = node_model(5, 3);
    let bytes = with_spec_edit(&m, |s| s["ops"][1]["op"] = json!("pna_conv"));
    fails(
        &convert_bytes(&bytes, &GraphsBuilder::random(1, 10, 2, 5, 3, 1)),
        &["op 'bn1'", "unknown op type 'pna_conv'", "transformer_conv"],
    );
}

#[test]
fn error_missing_tensor() {
    let m = node_model(5, 3);
    let bytes = with_spec_edit(&m, |s| {
        s["ops"][0]["params"]["weight"] = json!("conv1.lin.weigth")
    });
    fails(
        &convert_bytes(&bytes, &GraphsBuilder::random(1, 10, 2, 5, 3, 1)),
        &[
            "op 'conv1' (gcn_conv)",
            "'weight'",
            "'conv1.lin.weigth'",
            "not in the model file",
        ],
    );
    let bytes = with_spec_edit(&m, |s| {
        s["ops"][0]["params"]
            .as_object_mut()
            .unwrap()
            .remove("weight");
    });
    fails(
        &convert_bytes(&bytes, &GraphsBuilder::random(1, 10, 2, 5, 3, 1)),
        &["op 'conv1' (gcn_conv)", "parameter 'weight' is missing"],
    );
}

#[test]
fn error_shape_mismatch() {
    let m = node_model(5, 3);
    let bytes = with_spec_edit(&m, |s| s["ops"][6]["attrs"]["out_channels"] = json!(4));
    fails(
        &convert_bytes(&bytes, &GraphsBuilder::random(1, 10, 2, 5, 3, 1)),
        &[
            "op 'out' (linear)",
            "'out.weight'",
            "[3, 6]",
            "expected [4, 6]",
        ],
    );
    let bytes = with_spec_edit(&m, |s| s["ops"][4]["attrs"]["in_channels"] = json!(7));
    fails(
        &convert_bytes(&bytes, &GraphsBuilder::random(1, 10, 2, 5, 3, 1)),
        &[
            "op 'conv2' (sage_conv)",
            "in_channels is 7",
            "'drop1' has 8 channels",
        ],
    );
    // Graph features that do not match the model input.
    fails(
        &convert_bytes(&m.bytes(), &GraphsBuilder::random(1, 10, 2, 4, 3, 1)),
        &["4 feature channels", "expects 5"],
    );
}

#[test]
fn error_bad_input_reference() {
    let m = node_model(5, 3);
    let bytes = with_spec_edit(&m, |s| s["ops"][2]["inputs"] = json!(["bn9"]));
    fails(
        &convert_bytes(&bytes, &GraphsBuilder::random(1, 10, 2, 5, 3, 1)),
        &["op 'act1' (relu)", "input 'bn9'"],
    );
}

#[test]
fn batch_norm_without_a_linear_map_runs_as_a_diagonal_linear() {
    // After an aggregation (and after a fused activation) there are no
    // weights to fold into: the norm runs on its own, as a linear layer
    // with a diagonal weight.
    let mut m = ModelBuilder::new("node", 3, 1);
    m.op(
        "gin",
        "gin_aggregate",
        &["x"],
        json!({"eps": 0.0}),
        json!({}),
    );
    m.bn("bn", "gin", 3);
    let l = m.linear("l", "bn", 3, 4);
    let r = m.act("r", "relu", &l);
    m.bn("bn2", &r, 4);
    let o = m.linear("out", "bn2", 4, 2);
    m.outputs = vec![o];
    let c = common::convert(
        &m,
        &GraphsBuilder::random(1, 10, 2, 3, 2, 1),
        &["gin_aggregate", "linear", "linear", "linear", "linear"],
    );
    let ops = c.inspect["ops"].as_array().unwrap();
    assert_eq!(ops[2]["activation"], "relu", "{}", c.inspect);
    c.verify(common::Tolerance {
        range_frac: 0.02,
        top1: 0.9,
        per_op_steps: Some(3.0),
    });
}

fn write_graph_file(dir: &Path, x: Vec<f32>, n: usize, f: usize, ei: Vec<i64>) -> PathBuf {
    let p = dir.join("g.safetensors");
    let e = ei.len() / 2;
    let bytes = tinygnn_cli::st::write_safetensors(
        &[("x", vec![n, f], x)],
        &[("edge_index", vec![2, e], ei)],
        None,
    )
    .unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn error_node_index_too_large_and_nan_features() {
    let c = case(&node_model(5, 3), &GraphsBuilder::random(1, 10, 2, 5, 3, 1));
    ok(&convert(&c, &[]));
    let dir = tempfile::tempdir().unwrap();
    let bad = write_graph_file(dir.path(), vec![0.5; 15], 3, 5, vec![0, 1, 70000, 2]);
    let msg = ["edge_index[1, 0]", "70000", "65536"];
    fails(
        &tinygnn(&[
            &"convert",
            &c.model,
            &"--calib",
            &bad,
            &"-o",
            &dir.path().join("m.tgnn"),
        ]),
        &msg,
    );
    fails(&tinygnn(&[&"run", &c.tgnn, &bad]), &msg);
    fails(&tinygnn(&[&"verify", &c.model, &c.tgnn, &bad]), &msg);
    let neg = write_graph_file(dir.path(), vec![0.5; 15], 3, 5, vec![0, -1, 1, 2]);
    fails(
        &tinygnn(&[&"run", &c.tgnn, &neg]),
        &["edge_index[0, 1]", "negative"],
    );
    let mut x = vec![0.5; 15];
    x[7] = f32::NAN;
    let nan = write_graph_file(dir.path(), x, 3, 5, vec![0, 1, 1, 2]);
    let msg = ["x[1, 2]", "NaN", "finite"];
    fails(
        &tinygnn(&[
            &"convert",
            &c.model,
            &"--calib",
            &nan,
            &"-o",
            &dir.path().join("m.tgnn"),
        ]),
        &msg,
    );
    fails(&tinygnn(&[&"run", &c.tgnn, &nan]), &msg);
}

#[test]
fn error_corrupt_model_and_usage() {
    let c = case(&node_model(5, 3), &GraphsBuilder::random(1, 10, 2, 5, 3, 1));
    ok(&convert(&c, &[]));
    let mut bytes = std::fs::read(&c.tgnn).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&c.tgnn, bytes).unwrap();
    fails(
        &tinygnn(&[&"inspect", &c.tgnn]),
        &["invalid model", "checksum"],
    );
    assert_eq!(tinygnn(&[&"convert"]).status.code(), Some(2));
    fails(
        &tinygnn(&[&"inspect", &"/nonexistent.tgnn"]),
        &["cannot read /nonexistent.tgnn"],
    );
}

/// Size goal: file ≤ (int8 weights + int32 bias) × 1.01 + 512 bytes. Reported
/// for a Cora-sized GCN and for narrow/deep models where the 8 extra bytes of
/// mult+shift per output channel weigh more.
#[test]
fn size_goal() {
    let mut report = Vec::new();
    let mut cora_ok = false;
    for (label, dims) in [
        ("cora gcn 1433-16-7", vec![1433usize, 16, 7]),
        ("karate gcn 34-4-4-2", vec![34, 4, 4, 2]),
        (
            "deep 9 gcn layers, width 64",
            vec![16, 64, 64, 64, 64, 64, 64, 64, 64, 4],
        ),
    ] {
        let mut m = ModelBuilder::new("node", dims[0], 1);
        let mut prev = "x".to_string();
        for (k, w) in dims.windows(2).enumerate() {
            prev = m.gcn(&format!("c{k}"), &prev, w[0], w[1], json!({}));
        }
        m.outputs = vec![prev];
        let c = case(&m, &GraphsBuilder::random(1, 20, 2, dims[0], 2, 3));
        ok(&convert(&c, &[]));
        let j: Value =
            serde_json::from_str(&ok(&tinygnn(&[&"inspect", &c.tgnn, &"--json"]))).unwrap();
        let file = j["flash"]["file"].as_u64().unwrap() as f64;
        let weights = j["flash"]["int8_weights"].as_u64().unwrap() as f64;
        let bias = j["flash"]["int32_bias"].as_u64().unwrap() as f64;
        let goal = (weights + bias) * 1.01 + 512.0;
        let met = file <= goal;
        if label.starts_with("cora") {
            cora_ok = met;
        }
        report.push(format!(
            "{label}: file {file} B, int8 weights {weights} B, int32 bias {bias} B, goal {goal:.0} B: {}",
            if met { "met" } else { "NOT met" }
        ));
    }
    for r in &report {
        eprintln!("size goal: {r}");
    }
    assert!(cora_ok, "{report:?}");
}

/// A batch larger than the model's capacity runs as several runs of whole
/// graphs, with exactly the bytes of one big run.
#[test]
fn batches_beyond_capacity_are_split_into_whole_graphs() {
    let mut g = GraphsBuilder::random(6, 9, 2, 5, 2, 2);
    g.y = vec![0, 1, 1, 0, 1, 0];
    let c = case(&graph_model(5, 2), &g);
    ok(&convert(&c, &[]));
    let big = c.tgnn.with_extension("big.out");
    ok(&tinygnn(&[
        &"run",
        &c.tgnn,
        &c.graphs,
        &"--output-bytes",
        &big,
    ]));
    let small_model = c.tgnn.with_extension("small.tgnn");
    ok(&tinygnn(&[
        &"convert",
        &c.model,
        &"--calib",
        &c.graphs,
        &"-o",
        &small_model,
        &"--max-nodes",
        &"20",
        &"--max-edges",
        &"40",
        &"--max-graphs",
        &"2",
    ]));
    let small = c.tgnn.with_extension("small.out");
    let text = ok(&tinygnn(&[
        &"run",
        &small_model,
        &c.graphs,
        &"--output-bytes",
        &small,
    ]));
    assert!(text.contains("ran 3 runs of whole graphs"), "{text}");
    assert_eq!(std::fs::read(big).unwrap(), std::fs::read(small).unwrap());
    // A single graph above capacity is an error naming the limits.
    let tiny_model = c.tgnn.with_extension("tiny.tgnn");
    ok(&tinygnn(&[
        &"convert",
        &c.model,
        &"--calib",
        &c.graphs,
        &"-o",
        &tiny_model,
        &"--max-nodes",
        &"5",
        &"--max-graphs",
        &"1",
    ]));
    fails(
        &tinygnn(&[&"run", &tiny_model, &c.graphs]),
        &["graph 0 alone (9 nodes", "capacity (5 nodes"],
    );
}

#[test]
fn error_malformed_model_files() {
    let g = GraphsBuilder::random(1, 10, 2, 5, 3, 1);
    let m = node_model(5, 3);
    fails(
        &convert_bytes(&m.bytes_with_spec("{not json"), &g),
        &["spec JSON is malformed"],
    );
    fails(
        &convert_bytes(b"definitely not safetensors", &g),
        &["not a valid tinygnn model file"],
    );
    let no_spec =
        tinygnn_cli::st::write_safetensors(&[("w", vec![1], vec![1.0])], &[], None).unwrap();
    fails(&convert_bytes(&no_spec, &g), &["'tinygnn_spec' is missing"]);
    let bytes = with_spec_edit(&m, |s| s["ops"][4]["attrs"]["aggr"] = json!("lstm"));
    fails(
        &convert_bytes(&bytes, &g),
        &["op 'conv2' (sage_conv)", "aggr", "lstm"],
    );
    let bytes = with_spec_edit(&m, |s| s["outputs"] = json!(["nope"]));
    fails(&convert_bytes(&bytes, &g), &["spec output 'nope'"]);
    let bytes = with_spec_edit(&m, |s| s["task"] = json!("graph"));
    fails(
        &convert_bytes(&bytes, &g),
        &["spec output 'out' is Node-level but the task is Graph"],
    );
}

#[test]
fn error_verify_with_another_models_tgnn() {
    let g = GraphsBuilder::random(1, 12, 2, 5, 3, 1);
    let a = case(&node_model(5, 3), &g);
    ok(&convert(&a, &[]));
    let other = tempfile::tempdir().unwrap();
    let mut m = ModelBuilder::new("node", 5, 3);
    let o = m.linear("out", "x", 5, 4);
    m.outputs = vec![o];
    let mp = other.path().join("m.safetensors");
    m.write(&mp);
    fails(
        &tinygnn(&[&"verify", &mp, &a.tgnn, &a.graphs]),
        &["float output is 12×4 but the int8 output is 12×3"],
    );
    fails(
        &tinygnn(&[&"verify", &mp, &a.tgnn, &a.graphs, &"--per-op"]),
        &["--per-op: the model has 3 ops but this spec fuses to 1"],
    );
}
