//! TransformerConv and GPS through the `tinygnn` binary: the conformance
//! goldens `tests/conformance/transformer_*` and `gps_*` converted, inspected
//! and verified, the
//! int4 request (the op keeps int8 weights and says so) and the converter's
//! errors for the forms it cannot run.

mod common;

use std::path::{Path, PathBuf};

use common::{fails, ok, tinygnn};
use serde_json::Value;

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/conformance")
        .join(name)
}

/// Converts golden `name`, returns its `inspect --json`, and checks
/// `verify`: error within 4 output steps + 3 % of the range, top-1 ≥ `top1`.
fn convert_and_verify(dir: &Path, name: &str, top1: f64) -> Value {
    let c = case(name);
    let (mp, gp) = (c.join("model.safetensors"), c.join("graphs.safetensors"));
    let tp = dir.join(format!("{name}.tgnn"));
    ok(&tinygnn(&[&"convert", &mp, &"--calib", &gp, &"-o", &tp]));
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &tp, &"--json"]))).unwrap();
    let v: Value =
        serde_json::from_str(&ok(&tinygnn(&[&"verify", &mp, &tp, &gp, &"--json"]))).unwrap();
    let (err, step, range) = (
        v["max_abs_err"].as_f64().unwrap(),
        v["output_step"].as_f64().unwrap(),
        v["float_output_range"].as_f64().unwrap(),
    );
    assert!(err <= 4.0 * step + 0.03 * range, "{name}: {v}");
    assert!(v["top1_agreement"].as_f64().unwrap() >= top1, "{name}: {v}");
    j
}

#[test]
fn transformer_goldens_convert_inspect_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    for (name, heads, concat, root, gated, edges) in [
        ("transformer_h1", 1, true, true, false, false),
        ("transformer_h4_mean", 4, false, true, false, false),
        ("transformer_h2_no_root", 2, true, false, false, false),
        ("transformer_edge_beta", 2, true, true, true, true),
        ("transformer_edge_mean", 2, true, true, true, true),
    ] {
        let j = convert_and_verify(dir.path(), name, 0.97);
        let ops: Vec<&Value> = j["ops"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "transformer_conv")
            .collect();
        assert_eq!(ops.len(), 2, "{name}: {j}");
        let a = &ops[0]["attrs"];
        assert_eq!(a["heads"], heads, "{name}: {a}");
        assert_eq!(a["concat"], concat, "{name}: {a}");
        assert_eq!(a["root_weight"], root, "{name}: {a}");
        assert_eq!(a["beta"], gated, "{name}: {a}");
        assert_eq!(a["edge_attr"].is_null(), !edges, "{name}: {a}");
    }
}

/// GPS (local GCN, GINE or TransformerConv with edge features, global multi-head attention
/// over each graph's nodes, BatchNorm after the residual sums run as
/// diagonal linear layers, or LayerNorm) against PyG's output.
#[test]
fn gps_goldens_convert_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["gps_gcn", "gps_gine_layer_norm", "gps_transformer_large"] {
        let j = convert_and_verify(dir.path(), name, 0.95);
        let global: Vec<&Value> = j["ops"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "transformer_conv" && o["attrs"]["global"] == true)
            .collect();
        assert_eq!(global.len(), 2, "{name}: {j}");
    }
}

#[test]
fn int4_request_keeps_transformer_int8_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("transformer_h1");
    let tp = dir.path().join("m.tgnn");
    let out = ok(&tinygnn(&[
        &"convert",
        &c.join("model.safetensors"),
        &"--calib",
        &c.join("graphs.safetensors"),
        &"-o",
        &tp,
        &"--weights",
        &"int4",
    ]));
    assert_eq!(
        out.matches("(transformer_conv) keeps int8 weights").count(),
        2,
        "{out}"
    );
}

#[test]
fn unsupported_transformer_forms_are_named() {
    let c = case("transformer_h1");
    let st = tinygnn_cli::st::read_model_file(&c.join("model.safetensors")).unwrap();
    let tensors: Vec<(&str, Vec<usize>, Vec<f32>)> = st
        .tensors
        .iter()
        .map(|(k, a)| {
            (
                k.as_str(),
                a.shape.clone(),
                a.data.iter().map(|&v| v as f32).collect(),
            )
        })
        .collect();
    for (key, value, needle) in [
        ("beta", Value::Bool(true), "beta_weight"),
        (
            "edge_dim",
            Value::from(3),
            "edge_dim is set but the spec has no 'edge_input'",
        ),
        ("heads", Value::from(0), "heads 0 is not in 1..=255"),
    ] {
        let mut spec: Value = serde_json::from_str(&st.spec_json).unwrap();
        spec["ops"][0]["attrs"][key] = value;
        let meta = [("tinygnn_spec".to_string(), spec.to_string())].into();
        let bytes = tinygnn_cli::st::write_safetensors(&tensors, &[], Some(meta)).unwrap();
        let o = common::convert_bytes(&bytes, &common::GraphsBuilder::random(1, 20, 3, 6, 3, 1));
        fails(&o, &["op 'conv1' (transformer_conv)", needle]);
    }
}
