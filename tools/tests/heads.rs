//! Norms and heads through the `tinygnn` binary: sigmoid and tanh (int8
//! lookup tables on the device) and layer normalization converted,
//! inspected and verified against the float reference.

mod common;

use common::{convert, GraphsBuilder, ModelBuilder, Tolerance};
use serde_json::json;

/// gcn(5→8) → sigmoid → linear(8→6) → tanh → linear(6→3) → sigmoid.
fn squash_model() -> ModelBuilder {
    let mut m = ModelBuilder::new("node", 5, 7);
    let g = m.gcn("g", "x", 5, 8, json!({}));
    let s = m.act("s", "sigmoid", &g);
    let l = m.linear("l", &s, 8, 6);
    let t = m.act("t", "tanh", &l);
    let o = m.linear("o", &t, 6, 3);
    let p = m.act("p", "sigmoid", &o);
    m.outputs = vec![p];
    m
}

#[test]
fn sigmoid_and_tanh_run_as_lookup_tables() {
    let c = convert(
        &squash_model(),
        &GraphsBuilder::random(2, 30, 3, 5, 3, 1),
        &["gcn_conv", "lut", "linear", "lut", "linear", "lut"],
    );
    // The tables take the input's and the output's quantization: the
    // sigmoid head's output range lies within (0, 1).
    let tensors = c.inspect["tensors"].as_array().unwrap();
    let out = &tensors[c.inspect["outputs"][0].as_u64().unwrap() as usize];
    let (s, z) = (
        out["scale"].as_f64().unwrap(),
        out["zero_point"].as_f64().unwrap(),
    );
    let (lo, hi) = (s * (-128.0 - z), s * (127.0 - z));
    assert!(
        lo >= -s && hi <= 1.0 + s,
        "sigmoid output range [{lo}, {hi}]"
    );
    c.verify(Tolerance {
        range_frac: 0.02,
        top1: 0.95,
        per_op_steps: Some(3.0),
    });
}

/// gcn(5→8) → layer_norm(8) → relu → linear(8→6) → layer_norm(6) (no
/// affine) → linear(6→3): a transformer-style block.
fn norm_model(eps: f64) -> ModelBuilder {
    let mut m = ModelBuilder::new("node", 5, 11);
    let g = m.gcn("g", "x", 5, 8, json!({}));
    let (w, b) = (
        m.tensor("ln1.weight", vec![8], 0.5),
        m.tensor("ln1.bias", vec![8], 0.5),
    );
    m.op(
        "ln1",
        "layer_norm",
        &[&g],
        json!({"channels": 8, "eps": eps}),
        json!({"weight": w, "bias": b}),
    );
    let r = m.act("r", "relu", "ln1");
    let l = m.linear("l", &r, 8, 6);
    m.op("ln2", "layer_norm", &[&l], json!({}), json!({}));
    let o = m.linear("o", "ln2", 6, 3);
    m.outputs = vec![o];
    m
}

#[test]
fn layer_norm_converts_and_verifies() {
    for eps in [1e-5, 0.5] {
        let c = convert(
            &norm_model(eps),
            &GraphsBuilder::random(2, 30, 3, 5, 3, 1),
            &[
                "gcn_conv",
                "layer_norm",
                "act",
                "linear",
                "layer_norm",
                "linear",
            ],
        );
        c.verify(Tolerance {
            range_frac: 0.03,
            top1: 0.9,
            per_op_steps: Some(4.0),
        });
    }
}
