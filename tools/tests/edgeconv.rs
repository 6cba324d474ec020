//! EdgeConv / DynamicEdgeConv through the `tinygnn` binary: convert →
//! inspect → verify on models written from Rust (a DGCNN-style point-cloud
//! classifier and a static EdgeConv node model), and the converter's errors
//! for `nn`s it cannot represent.

mod common;

use common::{convert, GraphsBuilder, ModelBuilder, Tolerance};
use serde_json::{json, Value};

/// Adds an EdgeConv op whose `nn` is `linear(2f→h) → bn → relu [→ linear(h→o) → relu]`.
fn edge_conv(
    m: &mut ModelBuilder,
    name: &str,
    input: &str,
    (f, h, o): (usize, usize, usize),
    k: Option<usize>,
    aggr: &str,
    two: bool,
) -> String {
    let w0 = m.tensor(&format!("{name}.nn.0.weight"), vec![h, 2 * f], 0.5);
    let b0 = m.tensor(&format!("{name}.nn.0.bias"), vec![h], 0.2);
    let g = m.tensor(&format!("{name}.nn.1.weight"), vec![h], 0.2);
    let bb = m.tensor(&format!("{name}.nn.1.bias"), vec![h], 0.2);
    let mean = m.tensor(&format!("{name}.nn.1.running_mean"), vec![h], 0.2);
    let var: Vec<f32> = m.rng.vec(h, 0.3).iter().map(|x| 1.0 + x).collect();
    let varn = format!("{name}.nn.1.running_var");
    m.tensors.push((varn.clone(), vec![h], var));
    let mut nn = vec![
        json!({"op": "linear", "in_channels": 2 * f, "out_channels": h}),
        json!({"op": "batch_norm", "eps": 1e-5}),
        json!({"op": "relu"}),
    ];
    let mut params = json!({"nn.0.weight": w0, "nn.0.bias": b0, "nn.1.weight": g,
                            "nn.1.bias": bb, "nn.1.running_mean": mean, "nn.1.running_var": varn});
    if two {
        nn.push(json!({"op": "linear", "in_channels": h, "out_channels": o}));
        nn.push(json!({"op": "relu"}));
        params["nn.3.weight"] = json!(m.tensor(&format!("{name}.nn.3.weight"), vec![o, h], 0.5));
        params["nn.3.bias"] = json!(m.tensor(&format!("{name}.nn.3.bias"), vec![o], 0.2));
    }
    let mut attrs = json!({"in_channels": f, "aggr": aggr, "nn": nn});
    let op = match k {
        Some(k) => {
            attrs["k"] = json!(k);
            "dynamic_edge_conv"
        }
        None => "edge_conv",
    };
    m.op(name, op, &[input], attrs, params)
}

/// DGCNN-style: DynamicEdgeConv(k=4, 2 layers) → DynamicEdgeConv(k=6, 1 layer,
/// mean) → global max pool → linear.
fn dgcnn_model(f: usize, classes: usize) -> ModelBuilder {
    let mut m = ModelBuilder::new("graph", f, 31);
    edge_conv(&mut m, "c1", "x", (f, 8, 8), Some(4), "max", true);
    edge_conv(&mut m, "c2", "c1", (8, 8, 8), Some(6), "mean", false);
    m.op("pool", "global_max_pool", &["c2"], json!({}), json!({}));
    let out = m.linear("out", "pool", 8, classes);
    m.outputs = vec![out];
    m
}

fn convert_verify(m: &ModelBuilder, g: &GraphsBuilder, names: &[&str]) {
    convert(m, g, names).verify(Tolerance {
        range_frac: 0.05,
        top1: 0.85,
        per_op_steps: None,
    });
}

#[test]
fn dgcnn_model_converts_runs_and_verifies() {
    convert_verify(
        &dgcnn_model(3, 4),
        &GraphsBuilder::random(6, 24, 1, 3, 4, 5),
        &[
            "dynamic_edge_conv",
            "dynamic_edge_conv",
            "global_pool",
            "linear",
        ],
    );
}

#[test]
fn static_edge_conv_model_converts_runs_and_verifies() {
    for aggr in ["max", "mean", "sum"] {
        let mut m = ModelBuilder::new("node", 4, 7);
        edge_conv(&mut m, "c1", "x", (4, 6, 5), None, aggr, true);
        let out = m.linear("out", "c1", 5, 3);
        m.outputs = vec![out];
        convert_verify(
            &m,
            &GraphsBuilder::random(1, 40, 3, 4, 3, 2),
            &["edge_conv", "linear"],
        );
    }
}

fn convert_fails(edit: impl FnOnce(&mut Value), needles: &[&str]) {
    common::convert_fails(
        &dgcnn_model(3, 4),
        &GraphsBuilder::random(2, 10, 1, 3, 4, 1),
        edit,
        needles,
    );
}

#[test]
fn unsupported_edge_conv_configurations_are_named() {
    convert_fails(
        |s| s["ops"][0]["attrs"]["k"] = json!(0),
        &["op 'c1' (dynamic_edge_conv)", "k = 0"],
    );
    convert_fails(
        |s| s["ops"][0]["attrs"]["aggr"] = json!("min"),
        &["op 'c1' (dynamic_edge_conv)", "aggr"],
    );
    convert_fails(
        |s| {
            s["ops"][0]["attrs"]["nn"]
                .as_array_mut()
                .unwrap()
                .push(json!({"op": "tanh"}))
        },
        &["op 'c1' (dynamic_edge_conv)", "'tanh'"],
    );
    convert_fails(
        |s| s["ops"][0]["attrs"]["nn"][0]["in_channels"] = json!(3),
        &["op 'c1' (dynamic_edge_conv)", "in_channels 3, expected 6"],
    );
    convert_fails(
        |s| {
            s["ops"][0]["attrs"].as_object_mut().unwrap().remove("nn");
        },
        &["op 'c1' (dynamic_edge_conv)", "'nn'"],
    );
    convert_fails(
        |s| {
            s["ops"][0]["params"]
                .as_object_mut()
                .unwrap()
                .remove("nn.3.weight");
        },
        &["op 'c1' (dynamic_edge_conv)", "'nn.3.weight' is missing"],
    );
}
