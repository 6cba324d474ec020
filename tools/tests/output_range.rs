//! `--output-range argmax|top2` (classification-head output calibration) and
//! the weight-scale floor that keeps channel records representable.

mod common;

use common::{GraphsBuilder, ModelBuilder};
use serde_json::json;
use tinygnn_cli::calibrate::{self, Method, OutputRange};
use tinygnn_cli::compare::compare;
use tinygnn_cli::quantize::{self, scale_floor, Capacity, BIAS_ACC_LIMIT};
use tinygnn_cli::{reference, rt, spec, st};

fn cap(g: &st::Graphs) -> Capacity {
    Capacity {
        max_nodes: g.num_nodes as u32,
        max_edges: g.num_edges() as u32,
        max_graphs: g.num_graphs as u32,
        max_pairs: 0,
    }
}

/// Converts with `output` and returns (top-1 agreement, output scale, notes).
fn run_with(m: &ModelBuilder, g: &st::Graphs, output: OutputRange) -> (f64, f64, Vec<String>) {
    let file = st::parse_model_bytes(&m.bytes()).unwrap();
    let spec = spec::parse(&file).unwrap();
    let cal = calibrate::calibrate_outputs(&spec, g, Method::MinMax, output, |_| {}).unwrap();
    let conv = quantize::convert(&spec, &cal.ranges, cap(g)).unwrap();
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
    let model = tinygnn::Model::from_bytes(&conv.bytes).unwrap();
    let q = rt::run(&model, g).unwrap();
    let vals = reference::run(&spec, g, |_| {}).unwrap();
    let c = compare(&vals[&spec.outputs[0]], &q).unwrap();
    (c.top1_agreement, c.step, cal.notes)
}

/// A GCN classifier with 12 classes whose losing logits reach far below the
/// winners (a scaled-up head), like a trained model's.
fn classifier() -> (ModelBuilder, st::Graphs) {
    let mut m = ModelBuilder::new("node", 6, 5);
    m.gcn("conv1", "x", 6, 16, json!({}));
    m.act("act1", "relu", "conv1");
    let out = m.linear("out", "act1", 16, 12);
    for t in &mut m.tensors {
        if t.0 == "out.weight" {
            t.2.iter_mut().for_each(|v| *v *= 6.0);
        }
    }
    m.outputs = vec![out];
    let g = st::parse_graphs_bytes(&GraphsBuilder::random(1, 400, 3, 6, 12, 9).bytes()).unwrap();
    (m, g)
}

#[test]
fn argmax_output_range_narrows_the_step_and_keeps_agreement() {
    let (m, g) = classifier();
    let (a_full, s_full, notes_full) = run_with(&m, &g, OutputRange::Full);
    let (a_arg, s_arg, notes_arg) = run_with(&m, &g, OutputRange::Argmax);
    let (a_top2, s_top2, notes_top2) = run_with(&m, &g, OutputRange::Top2);
    eprintln!("full:   agreement {a_full:.4}, step {s_full:.5}");
    eprintln!("argmax: agreement {a_arg:.4}, step {s_arg:.5} {notes_arg:?}");
    eprintln!("top2:   agreement {a_top2:.4}, step {s_top2:.5} {notes_top2:?}");
    assert!(notes_full.is_empty());
    assert!(
        s_arg < 0.8 * s_full,
        "argmax step {s_arg} not narrower than full {s_full}"
    );
    assert!(
        s_top2 <= s_arg,
        "top2 step {s_top2} wider than argmax {s_arg}"
    );
    assert!(a_arg >= a_full, "argmax agreement {a_arg} < full {a_full}");
    assert!(a_top2 >= a_full, "top2 agreement {a_top2} < full {a_full}");
    assert!(notes_arg[0].contains("losing classes"), "{notes_arg:?}");
}

#[test]
fn argmax_range_keeps_runner_up_values() {
    // Rows (best, second, rest): [5, 1, -9], [2, 0.5, -3], [-1, -2, -8].
    let t = reference::Tensor {
        rows: 3,
        channels: 3,
        data: vec![5.0, 1.0, -9.0, 0.5, 2.0, -3.0, -2.0, -8.0, -1.0],
    };
    let r = calibrate::argmax_range(&t, Method::MinMax, false);
    let step = (5.0 + 2.0) / 255.0;
    assert!((r.hi - 5.0).abs() < 1e-12, "{r:?}");
    assert!((r.lo - (-2.0 - step)).abs() < 1e-12, "{r:?}");
    let r = calibrate::argmax_range(&t, Method::MinMax, true);
    let step = (1.0 + 2.0) / 255.0;
    assert!((r.hi - (1.0 + step)).abs() < 1e-12, "{r:?}");
    assert!((r.lo - (-2.0 - step)).abs() < 1e-12, "{r:?}");
    assert!("top2".parse::<OutputRange>().is_ok());
    assert!("logits".parse::<OutputRange>().is_err());
}

#[test]
fn output_read_by_another_op_keeps_full_range() {
    let (mut m, g) = classifier();
    let h = m.outputs[0].clone();
    m.op("o2", "relu", &[&h], json!({}), json!({}));
    m.outputs = vec![h, "o2".into()];
    let file = st::parse_model_bytes(&m.bytes()).unwrap();
    let spec = spec::parse(&file).unwrap();
    let full = calibrate::calibrate(&spec, &g, Method::MinMax, |_| {}).unwrap();
    let cal = calibrate::calibrate_outputs(&spec, &g, Method::MinMax, OutputRange::Argmax, |_| {})
        .unwrap();
    assert_eq!(cal.ranges["out"], full["out"]);
    assert!(cal.notes.iter().any(|n| n.contains("read by another op")));
}

#[test]
fn near_zero_weight_channel_keeps_its_bias() {
    // Channel 1 of the head has weights ~1e-12 and bias 0.5: without a floor
    // on its weight scale, bias/(s_in·s_w) overflows i32 and the rescale
    // underflows, so the channel would output its zero point instead of 0.5.
    let mut m = ModelBuilder::new("node", 4, 3);
    let out = m.linear("out", "x", 4, 3);
    for t in &mut m.tensors {
        if t.0 == "out.weight" {
            t.2[4..8].iter_mut().for_each(|v| *v = 1e-12);
        }
        if t.0 == "out.bias" {
            t.2[1] = 0.5;
        }
    }
    m.outputs = vec![out];
    let g = st::parse_graphs_bytes(&GraphsBuilder::random(1, 30, 2, 4, 3, 4).bytes()).unwrap();
    let file = st::parse_model_bytes(&m.bytes()).unwrap();
    let spec = spec::parse(&file).unwrap();
    let ranges = calibrate::calibrate(&spec, &g, Method::MinMax, |_| {}).unwrap();
    let conv = quantize::convert(&spec, &ranges, cap(&g)).unwrap();
    let model = tinygnn::Model::from_bytes(&conv.bytes).unwrap();
    let q = rt::run(&model, &g).unwrap();
    for r in 0..q.rows {
        let v = q.dequantize(r, 1);
        assert!((v - 0.5).abs() <= q.scale as f64, "row {r}: {v} ≠ 0.5");
    }
    assert!(conv.warnings.is_empty(), "{:?}", conv.warnings);
    // The floor itself.
    let f = scale_floor(0.5, 1e-3, Some(1e-2));
    assert!(0.5 / (1e-3 * f) <= BIAS_ACC_LIMIT * (1.0 + 1e-12));
    assert!(1e-3 * f / 1e-2 >= quantize::MIN_RESCALE * (1.0 - 1e-12));
}
