//! GATConv / GATv2Conv through the `tinygnn` binary: convert → inspect → verify
//! on a model written from Rust, and the converter's errors for what it
//! cannot represent (edge features, residual, inconsistent shapes).

mod common;

use common::{convert, ok, tinygnn, GraphsBuilder, ModelBuilder, Tolerance};
use serde_json::{json, Value};

/// GAT(4 heads × 3, concat) → ReLU → GATv2(2 heads × 3, mean) → linear.
fn gat_model(f: usize, classes: usize) -> ModelBuilder {
    let mut m = ModelBuilder::new("node", f, 23);
    let (w, a_s, a_d, b) = (
        m.tensor("g1.lin.weight", vec![12, f], 0.5),
        m.tensor("g1.att_src", vec![1, 4, 3], 0.5),
        m.tensor("g1.att_dst", vec![1, 4, 3], 0.5),
        m.tensor("g1.bias", vec![12], 0.2),
    );
    m.op(
        "g1",
        "gat_conv",
        &["x"],
        json!({"in_channels": f, "out_channels": 3, "heads": 4, "concat": true,
               "negative_slope": 0.2, "add_self_loops": true}),
        json!({"weight": w, "att_src": a_s, "att_dst": a_d, "bias": b}),
    );
    m.act("r1", "relu", "g1");
    let (wl, bl, wr, br, att, b2) = (
        m.tensor("g2.lin_l.weight", vec![6, 12], 0.4),
        m.tensor("g2.lin_l.bias", vec![6], 0.2),
        m.tensor("g2.lin_r.weight", vec![6, 12], 0.4),
        m.tensor("g2.lin_r.bias", vec![6], 0.2),
        m.tensor("g2.att", vec![1, 2, 3], 0.5),
        m.tensor("g2.bias", vec![3], 0.2),
    );
    m.op(
        "g2",
        "gatv2_conv",
        &["r1"],
        json!({"in_channels": 12, "out_channels": 3, "heads": 2, "concat": false,
               "negative_slope": 0.2}),
        json!({"weight_l": wl, "bias_l": bl, "weight_r": wr, "bias_r": br, "att": att, "bias": b2}),
    );
    let out = m.linear("out", "g2", 3, classes);
    m.outputs = vec![out];
    m
}

#[test]
fn gat_model_converts_runs_and_verifies() {
    let c = convert(
        &gat_model(5, 3),
        &GraphsBuilder::random(1, 40, 3, 5, 3, 1),
        &["gat_conv", "gatv2_conv", "linear"],
    );
    assert_eq!(c.inspect["ops"][0]["attrs"]["heads"], 4);
    assert_eq!(c.inspect["ops"][0]["activation"], "relu");
    c.verify(Tolerance {
        range_frac: 0.03,
        top1: 0.9,
        per_op_steps: Some(4.0),
    });
}

fn convert_fails(edit: impl FnOnce(&mut Value), needles: &[&str]) {
    common::convert_fails(
        &gat_model(5, 3),
        &GraphsBuilder::random(1, 10, 2, 5, 3, 1),
        edit,
        needles,
    );
}

#[test]
fn unsupported_gat_configurations_are_named() {
    convert_fails(
        |s| s["ops"][0]["attrs"]["edge_dim"] = json!(4),
        &["op 'g1' (gat_conv)", "edge_dim"],
    );
    // GATv2Conv takes edge_dim now, but only with the spec's edge input.
    convert_fails(
        |s| s["ops"][2]["attrs"]["edge_dim"] = json!(4),
        &["op 'g2' (gatv2_conv)", "edge_dim", "'edge_input'"],
    );
    convert_fails(
        |s| s["ops"][2]["attrs"]["residual"] = json!(true),
        &["op 'g2' (gatv2_conv)", "residual"],
    );
    convert_fails(
        |s| s["ops"][0]["attrs"]["heads"] = json!(2),
        &["op 'g1' (gat_conv)", "'bias'", "[12]", "expected [6]"],
    );
    convert_fails(
        |s| s["ops"][0]["attrs"]["negative_slope"] = json!(-0.5),
        &["op 'g1' (gat_conv)", "negative_slope"],
    );
    convert_fails(
        |s| s["ops"][0]["attrs"]["heads"] = json!(0),
        &["op 'g1' (gat_conv)", "heads 0"],
    );
    convert_fails(
        |s| {
            s["ops"][2]["params"].as_object_mut().unwrap().remove("att");
        },
        &["op 'g2' (gatv2_conv)", "parameter 'att' is missing"],
    );
}

#[test]
fn int4_request_makes_gat_weights_int4() {
    let dir = tempfile::tempdir().unwrap();
    let (mp, gp, t8, t4) = (
        dir.path().join("m.safetensors"),
        dir.path().join("g.safetensors"),
        dir.path().join("m8.tgnn"),
        dir.path().join("m4.tgnn"),
    );
    gat_model(5, 3).write(&mp);
    GraphsBuilder::random(1, 40, 3, 5, 3, 1).write(&gp);
    ok(&tinygnn(&[&"convert", &mp, &"--calib", &gp, &"-o", &t8]));
    let out = ok(&tinygnn(&[
        &"convert",
        &mp,
        &"--calib",
        &gp,
        &"-o",
        &t4,
        &"--weights",
        &"int4",
    ]));
    // Both attention layers and the final linear layer become int4; no note.
    assert!(
        out.contains("weight precision: g1=int4, g2=int4, out=int4"),
        "{out}"
    );
    assert!(!out.contains("keeps int8 weights"), "{out}");
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &t4, &"--json"]))).unwrap();
    assert!(j["flash"]["int4_weights"].as_u64().unwrap() > 0, "{j}");
    assert!(std::fs::metadata(&t4).unwrap().len() < std::fs::metadata(&t8).unwrap().len());
}
