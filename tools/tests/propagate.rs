//! APPNP, SGConv, GCN2Conv and TAGConv through the `tinygnn` binary: convert →
//! inspect → run → verify on a model written from Rust, and the converter's
//! errors for specs it cannot represent (missing alpha, bad K, wrong x_0).

mod common;

use common::{convert, ok, tinygnn, GraphsBuilder, ModelBuilder, Tolerance};
use serde_json::{json, Value};

/// linear(f→8) → ReLU = x0 → SGConv(8→6, K=2) → ReLU → GCN2Conv(6, x0 via a
/// linear 8→6) → TAGConv(6→4, K=2) → APPNP(K=5, 0.2).
fn prop_model(f: usize) -> ModelBuilder {
    let mut m = ModelBuilder::new("node", f, 41);
    let l0 = m.linear("l0", "x", f, 8);
    let r0 = m.act("r0", "relu", &l0);
    let (w, b) = (
        m.tensor("sg.lin.weight", vec![6, 8], 0.5),
        m.tensor("sg.lin.bias", vec![6], 0.2),
    );
    m.op(
        "sg",
        "sg_conv",
        &[&r0],
        json!({"in_channels": 8, "out_channels": 6, "K": 2}),
        json!({"weight": w, "bias": b}),
    );
    let r1 = m.act("r1", "relu", "sg");
    let x0 = m.linear("x0", &r0, 8, 6);
    let w1 = m.tensor("g2.weight1", vec![6, 6], 0.4);
    m.op(
        "g2",
        "gcn2_conv",
        &[&r1, &x0],
        json!({"channels": 6, "alpha": 0.1, "beta": 0.4, "shared_weights": true}),
        json!({"weight1": w1}),
    );
    let ws: Vec<String> = (0..3)
        .map(|k| m.tensor(&format!("tag.lins.{k}.weight"), vec![4, 6], 0.4))
        .collect();
    let tb = m.tensor("tag.bias", vec![4], 0.2);
    m.op(
        "tag",
        "tag_conv",
        &["g2"],
        json!({"in_channels": 6, "out_channels": 4, "K": 2}),
        json!({"weight_0": ws[0], "weight_1": ws[1], "weight_2": ws[2], "bias": tb}),
    );
    m.op(
        "ap",
        "appnp",
        &["tag"],
        json!({"K": 5, "alpha": 0.2}),
        json!({}),
    );
    m.outputs = vec!["ap".into()];
    m
}

#[test]
fn propagation_model_converts_runs_and_verifies() {
    let c = convert(
        &prop_model(5),
        &GraphsBuilder::random(1, 40, 3, 5, 4, 1),
        &[
            "linear",
            "sg_conv",
            "linear",
            "gcn2_conv",
            "tag_conv",
            "appnp",
        ],
    );
    let j = &c.inspect;
    assert_eq!(j["ops"][1]["activation"], "relu");
    assert_eq!(j["ops"][3]["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(j["ops"][5]["attrs"]["K"], 5);
    assert!((j["ops"][5]["attrs"]["alpha"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(j["ops"][4]["attrs"]["add_self_loops"], false);
    c.verify(Tolerance {
        range_frac: 0.03,
        top1: 0.9,
        per_op_steps: Some(4.0),
    });
}

/// GCN2Conv's two matrices share one accumulator scale, which only int8
/// has: asked for int4, that layer keeps int8 and `convert` says so, naming
/// only it.
#[test]
fn int4_request_keeps_gcn2_int8_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (mp, gp, out) = (
        dir.path().join("m.safetensors"),
        dir.path().join("g.safetensors"),
        dir.path().join("m4.tgnn"),
    );
    prop_model(5).write(&mp);
    GraphsBuilder::random(1, 40, 3, 5, 4, 1).write(&gp);
    let text = ok(&tinygnn(&[
        &"convert",
        &mp,
        &"--calib",
        &gp,
        &"-o",
        &out,
        &"--weights",
        &"int4",
    ]));
    let notes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("keeps int8 weights"))
        .collect();
    assert_eq!(notes.len(), 1, "{text}");
    assert!(notes[0].contains("(gcn2_conv)"), "{text}");
    assert!(text.contains("g2=int8"), "{text}");
    assert!(text.contains("sg=int4"), "{text}");
}

fn convert_fails(edit: impl FnOnce(&mut Value), needles: &[&str]) {
    common::convert_fails(
        &prop_model(5),
        &GraphsBuilder::random(1, 10, 2, 5, 4, 1),
        edit,
        needles,
    );
}

/// Op index of `name` in the spec.
fn at(s: &Value, name: &str) -> usize {
    s["ops"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["name"] == name)
        .unwrap()
}

#[test]
fn bad_propagation_specs_are_named() {
    convert_fails(
        |s| {
            let i = at(s, "ap");
            s["ops"][i]["attrs"]
                .as_object_mut()
                .unwrap()
                .remove("alpha");
        },
        &["op 'ap' (appnp)", "'alpha' is missing"],
    );
    convert_fails(
        |s| {
            let i = at(s, "ap");
            s["ops"][i]["attrs"]["alpha"] = json!(1.5);
        },
        &["op 'ap' (appnp)", "alpha 1.5"],
    );
    convert_fails(
        |s| {
            let i = at(s, "sg");
            s["ops"][i]["attrs"]["K"] = json!(300);
        },
        &["op 'sg' (sg_conv)", "K = 300"],
    );
    convert_fails(
        |s| {
            let i = at(s, "sg");
            s["ops"][i]["attrs"]["K"] = json!(-1);
        },
        &["op 'sg' (sg_conv)", "'K'"],
    );
    convert_fails(
        |s| {
            let i = at(s, "g2");
            s["ops"][i]["inputs"] = json!(["r1"]);
        },
        &["op 'g2' (gcn2_conv)", "takes 2 input(s)"],
    );
    convert_fails(
        |s| {
            let i = at(s, "g2");
            s["ops"][i]["inputs"] = json!(["r1", "r0"]);
        },
        &["op 'g2' (gcn2_conv)", "x_0 input 'r0'"],
    );
    convert_fails(
        |s| {
            let i = at(s, "g2");
            s["ops"][i]["attrs"]["shared_weights"] = json!(false);
        },
        &["op 'g2' (gcn2_conv)", "parameter 'weight2' is missing"],
    );
    convert_fails(
        |s| {
            let i = at(s, "tag");
            s["ops"][i]["attrs"]["K"] = json!(3);
        },
        &["op 'tag' (tag_conv)", "parameter 'weight_3' is missing"],
    );
}
