//! ChebConv through the `tinygnn` binary: convert → inspect → run → verify
//! on a model written from Rust (K = 3 with edge weights, K = 2, K = 1), and
//! the converter's refusals of the forms it does not support, each naming
//! the supported one.

mod common;

use common::{convert, GraphsBuilder, ModelBuilder, Tolerance};
use serde_json::{json, Value};

/// linear(f→8) → ReLU → ChebConv(8→6, K=3, edge weights) → ReLU →
/// ChebConv(6→5, K=2) → ChebConv(5→4, K=1).
fn cheb_model(f: usize) -> ModelBuilder {
    let mut m = ModelBuilder::new("node", f, 43);
    let l0 = m.linear("l0", "x", f, 8);
    let r0 = m.act("r0", "relu", &l0);
    let mut input = r0;
    for (name, k, i, o, ew, relu) in [
        ("c3", 3usize, 8usize, 6usize, true, true),
        ("c2", 2, 6, 5, false, false),
        ("c1", 1, 5, 4, false, false),
    ] {
        let mut params = serde_json::Map::new();
        for h in 0..k {
            let t = m.tensor(&format!("{name}.lins.{h}.weight"), vec![o, i], 0.4);
            params.insert(format!("weight_{h}"), json!(t));
        }
        let b = m.tensor(&format!("{name}.bias"), vec![o], 0.2);
        params.insert("bias".into(), json!(b));
        m.op(
            name,
            "cheb_conv",
            &[&input],
            json!({"in_channels": i, "out_channels": o, "K": k, "normalization": "sym",
                   "lambda_max": 2.0, "edge_weight": ew}),
            Value::Object(params),
        );
        input = if relu {
            m.act(&format!("{name}_relu"), "relu", name)
        } else {
            name.to_string()
        };
    }
    m.outputs = vec![input];
    m
}

fn graphs(seed: u64) -> GraphsBuilder {
    let mut g = GraphsBuilder::random(1, 40, 3, 5, 4, seed);
    let e = g.src.len();
    g.edge_weight = Some((0..e).map(|k| 0.2 + (k % 7) as f32 * 0.3).collect());
    g
}

#[test]
fn cheb_model_converts_runs_and_verifies() {
    let c = convert(
        &cheb_model(5),
        &graphs(1),
        &["linear", "cheb_conv", "cheb_conv", "cheb_conv"],
    );
    let j = &c.inspect;
    assert_eq!(j["ops"][1]["activation"], "relu");
    assert_eq!(j["ops"][1]["attrs"]["K"], 3);
    assert_eq!(j["ops"][1]["attrs"]["edge_weight"], true);
    assert_eq!(j["ops"][2]["attrs"]["K"], 2);
    assert_eq!(j["ops"][3]["attrs"]["K"], 1);
    c.verify(Tolerance {
        range_frac: 0.03,
        top1: 0.85,
        per_op_steps: Some(4.0),
    });
}

fn at(s: &Value, name: &str) -> usize {
    s["ops"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o["name"] == name)
        .unwrap()
}

fn convert_fails(edit: impl FnOnce(&mut Value), needles: &[&str]) {
    common::convert_fails(&cheb_model(5), &graphs(2), edit, needles);
}

#[test]
fn unsupported_forms_are_refused_naming_the_supported_one() {
    let supported = "ChebConv(normalization='sym') with lambda_max 2";
    convert_fails(
        |s| {
            let i = at(s, "c3");
            s["ops"][i]["attrs"]["normalization"] = json!("rw");
        },
        &["op 'c3' (cheb_conv)", "normalization \"rw\"", supported],
    );
    convert_fails(
        |s| {
            let i = at(s, "c3");
            s["ops"][i]["attrs"]["normalization"] = Value::Null;
        },
        &["op 'c3' (cheb_conv)", "normalization None", supported],
    );
    convert_fails(
        |s| {
            let i = at(s, "c2");
            s["ops"][i]["attrs"]["lambda_max"] = json!(1.5);
        },
        &["op 'c2' (cheb_conv)", "lambda_max 1.5", supported],
    );
    convert_fails(
        |s| {
            let i = at(s, "c2");
            s["ops"][i]["attrs"]["K"] = json!(4);
        },
        &["op 'c2' (cheb_conv)", "K = 4", "K = 1..=3"],
    );
    convert_fails(
        |s| {
            let i = at(s, "c2");
            s["ops"][i]["attrs"]["K"] = json!(3);
        },
        &["op 'c2' (cheb_conv)", "parameter 'weight_2' is missing"],
    );
}
