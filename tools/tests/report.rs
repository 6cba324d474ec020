//! Machine-readable output: `convert --json` (the text output's facts),
//! `run --json`'s output values, and the runtime cargo features `inspect`
//! and `convert` list for a model.

mod common;

use std::path::Path;

use common::{graph_model, node_model, ok, tinygnn, GraphsBuilder};
use serde_json::{json, Value};

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The runtime's cargo features, from its Cargo.toml.
fn runtime_features() -> Vec<String> {
    let toml = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
        .unwrap();
    let feats = toml.split("[features]").nth(1).unwrap();
    let feats = feats.split("\n[").next().unwrap();
    feats
        .lines()
        .filter_map(|l| l.split_once(" = ["))
        .map(|(k, _)| k.trim().to_string())
        .collect()
}

#[test]
fn convert_json_says_what_the_text_says() {
    let d = tempfile::tempdir().unwrap();
    let (m, g) = (
        d.path().join("m.safetensors"),
        d.path().join("g.safetensors"),
    );
    node_model(5, 3).write(&m);
    GraphsBuilder::random(1, 30, 3, 5, 3, 1).write(&g);
    let (t1, t2) = (d.path().join("a.tgnn"), d.path().join("b.tgnn"));
    let text = ok(&tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &t1]));
    let v = json_of(&ok(&tinygnn(&[
        &"convert", &m, &"--calib", &g, &"-o", &t2, &"--json",
    ])));
    // The same file either way.
    assert_eq!(std::fs::read(&t1).unwrap(), std::fs::read(&t2).unwrap());
    let bytes = std::fs::metadata(&t2).unwrap().len();
    assert_eq!(v["file"], t2.display().to_string());
    assert_eq!(v["bytes"], bytes);
    assert!(
        text.contains(&format!("({bytes} bytes): 3 device ops from 7 spec ops")),
        "{text}"
    );
    assert_eq!(v["spec_ops"], 7);
    let ops: Vec<&str> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["gcn_conv", "sage_conv", "linear"]);
    assert_eq!(v["ops"][0]["spec_ops"], json!(["conv1", "bn1", "act1"]));
    assert_eq!(v["weights"]["precision"], "int8");
    let w = &v["weights"];
    assert!(
        text.contains(&format!(
            "weights: {} bytes int8, {} bytes channel params ({} bytes int32 bias)",
            w["bytes"], w["channel_param_bytes"], w["int32_bias_bytes"]
        )),
        "{text}"
    );
    let layers: Vec<(&str, &str)> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["layer"].as_str().unwrap(), l["weights"].as_str().unwrap()))
        .collect();
    assert_eq!(layers.len(), 3, "{v}");
    assert!(layers.iter().all(|(_, b)| *b == "int8"));
    assert_eq!(v["warnings"], json!([]));
    assert_eq!(v["capacity"]["max_nodes"], 30);
    let arena = v["arena_bytes_at_capacity"].as_u64().unwrap();
    assert!(
        text.contains(&format!("arena at capacity: {arena} bytes")),
        "{text}"
    );
    // The cargo features: the ops' families, all real features of the runtime.
    assert_eq!(v["features"], json!(["op-gcn", "op-linear", "op-sage"]));
    assert!(text.contains(
        "cargo features: op-gcn, op-linear, op-sage (tinygnn with default-features = false, features = [\"op-gcn\", \"op-linear\", \"op-sage\"])"
    ), "{text}");
    let inspect = json_of(&ok(&tinygnn(&[&"inspect", &t2, &"--json"])));
    assert_eq!(inspect["features"], v["features"]);
    assert_eq!(inspect["arena_bytes_at_capacity"], arena);
    let itext = ok(&tinygnn(&[&"inspect", &t2]));
    assert!(
        itext.contains("cargo features: op-gcn, op-linear, op-sage ("),
        "{itext}"
    );

    // int4 weights need `weights-i4`; a warning is listed too.
    let mut huge = GraphsBuilder::random(1, 30, 3, 5, 3, 1);
    huge.x.iter_mut().for_each(|x| *x *= 1e30);
    let hg = d.path().join("huge.safetensors");
    huge.write(&hg);
    let v = json_of(&ok(&tinygnn(&[
        &"convert",
        &m,
        &"--calib",
        &hg,
        &"-o",
        &t2,
        &"--json",
        &"--weights",
        &"int4",
    ])));
    assert_eq!(
        v["features"],
        json!(["op-gcn", "op-linear", "op-sage", "weights-i4"])
    );
    assert_eq!(v["weights"]["precision"], "int8/int4");
    assert!(
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["weights"] == "int4"),
        "{v}"
    );
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("calibration:")),
        "{v}"
    );
    let known = runtime_features();
    for f in v["features"].as_array().unwrap() {
        assert!(
            known.iter().any(|k| k == f.as_str().unwrap()),
            "{f} not in {known:?}"
        );
    }

    // --flash-budget: what the search measured.
    let v = json_of(&ok(&tinygnn(&[
        &"convert",
        &m,
        &"--calib",
        &g,
        &"-o",
        &t2,
        &"--json",
        &"--flash-budget",
        &"100000",
    ])));
    assert_eq!(v["flash_budget"]["budget"], 100000);
    assert!(
        v["flash_budget"]["all_int8_bytes"].as_u64().unwrap() > 0,
        "{v}"
    );
}

#[test]
fn graph_model_features() {
    let d = tempfile::tempdir().unwrap();
    let (m, g, t) = (
        d.path().join("m.safetensors"),
        d.path().join("g.safetensors"),
        d.path().join("m.tgnn"),
    );
    graph_model(5, 2).write(&m);
    GraphsBuilder::random(6, 9, 2, 5, 2, 2).write(&g);
    ok(&tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &t]));
    let v = json_of(&ok(&tinygnn(&[&"inspect", &t, &"--json"])));
    assert_eq!(
        v["features"],
        json!(["op-elementwise", "op-gin", "op-linear", "op-pool"])
    );
}

#[test]
fn run_json_has_every_output_tensor() {
    let d = tempfile::tempdir().unwrap();
    let (m, g, t, bin) = (
        d.path().join("m.safetensors"),
        d.path().join("g.safetensors"),
        d.path().join("m.tgnn"),
        d.path().join("out.bin"),
    );
    // Two outputs: the logits and a ReLU of them.
    let mut model = node_model(5, 3);
    let h = model.outputs[0].clone();
    model.act("o2", "relu", &h);
    model.outputs = vec![h, "o2".into()];
    model.write(&m);
    GraphsBuilder::random(1, 30, 3, 5, 3, 1).write(&g);
    ok(&tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &t]));
    let inspect = json_of(&ok(&tinygnn(&[&"inspect", &t, &"--json"])));
    let v = json_of(&ok(&tinygnn(&[
        &"run",
        &t,
        &g,
        &"--json",
        &"--output-bytes",
        &bin,
    ])));
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 2, "{v}");
    let ids: Vec<&Value> = outs.iter().map(|o| &o["tensor"]).collect();
    let want: Vec<&Value> = inspect["outputs"].as_array().unwrap().iter().collect();
    assert_eq!(ids, want);
    // The first is the output `run` reports: its int8 values are the
    // --output-bytes, its argmax the argmax list.
    let first = &outs[0];
    assert_eq!(
        (first["rows"].clone(), first["channels"].clone()),
        (json!(30), json!(3))
    );
    assert_eq!(first["scale"], v["scale"]);
    let int8: Vec<i64> = first["int8"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
        .collect();
    let raw: Vec<i64> = std::fs::read(&bin)
        .unwrap()
        .iter()
        .map(|&b| i64::from(b as i8))
        .collect();
    assert_eq!(int8, raw);
    let (scale, zp) = (
        first["scale"].as_f64().unwrap(),
        first["zero_point"].as_i64().unwrap(),
    );
    for (r, row) in first["dequantized"].as_array().unwrap().iter().enumerate() {
        let row: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for (c, &x) in row.iter().enumerate() {
            let q = int8[r * 3 + c];
            assert!((x - (scale as f32 as f64) * (q - zp) as f64).abs() < 1e-9);
        }
        let best = (0..3).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        assert_eq!(v["argmax"][r], best);
    }
    // The second: a ReLU, so no negative dequantized value.
    let second = &outs[1];
    assert_eq!(second["rows"], 30);
    assert!(second["dequantized"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .all(|x| x.as_f64().unwrap() >= -1e-9));
}
