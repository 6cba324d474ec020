//! Randomly composed models (every op kind, random attributes, BN folding,
//! activation fusion, residuals, concatenation, pooling) converted and run by
//! the runtime: the int8 output must stay close to the float reference.

mod common;

use common::{GraphsBuilder, ModelBuilder, Rng};
use serde_json::json;
use tinygnn_cli::calibrate::{self, Method};
use tinygnn_cli::compare::compare;
use tinygnn_cli::quantize::{self, Capacity};
use tinygnn_cli::{reference, rt, spec, st};

fn pick(r: &mut Rng, n: usize) -> usize {
    ((r.next() + 1.0) / 2.0 * n as f32) as usize % n
}

/// Builds a random model; returns it and whether it is graph-level.
fn random_model(seed: u64) -> (ModelBuilder, bool) {
    let mut r = Rng(seed);
    let f = 3 + pick(&mut r, 6);
    let graph_task = pick(&mut r, 3) == 0;
    let mut m = ModelBuilder::new(if graph_task { "graph" } else { "node" }, f, seed * 7 + 1);
    let mut cur = ("x".to_string(), f);
    let mut history: Vec<(String, usize)> = vec![];
    let layers = 2 + pick(&mut r, 3);
    for l in 0..layers {
        let out_c = 4 + pick(&mut r, 8);
        let name = format!("l{l}");
        let (produced, foldable) = match pick(&mut r, 5) {
            0 => {
                let extra = json!({"improved": pick(&mut r, 2) == 0, "add_self_loops": pick(&mut r, 4) != 0});
                (m.gcn(&name, &cur.0, cur.1, out_c, extra), true)
            }
            1 => {
                let aggr = ["mean", "max", "sum"][pick(&mut r, 3)];
                let normalize = pick(&mut r, 4) == 0;
                (
                    m.sage(&name, &cur.0, cur.1, out_c, aggr, normalize),
                    !normalize,
                )
            }
            2 => {
                let eps = r.next() as f64 * 0.5;
                let agg = m.op(
                    &format!("{name}_agg"),
                    "gin_aggregate",
                    &[&cur.0],
                    json!({"eps": eps}),
                    json!({}),
                );
                (m.linear(&name, &agg, cur.1, out_c), true)
            }
            _ => (m.linear(&name, &cur.0, cur.1, out_c), true),
        };
        let mut t = produced;
        if foldable && pick(&mut r, 3) == 0 {
            t = m.bn(&format!("{name}_bn"), &t, out_c);
        }
        t = match pick(&mut r, 4) {
            0 => m.op(
                &format!("{name}_lr"),
                "leaky_relu",
                &[&t],
                json!({"negative_slope": 0.05 + (r.next().abs() as f64) * 0.3}),
                json!({}),
            ),
            1 => t,
            _ => m.act(&format!("{name}_relu"), "relu", &t),
        };
        if pick(&mut r, 3) == 0 {
            t = m.act(&format!("{name}_drop"), "dropout", &t);
        }
        // Residual with an earlier tensor of the same width, or concatenation.
        if let Some((h, _)) = history.iter().rev().find(|h| h.1 == out_c).cloned() {
            if pick(&mut r, 2) == 0 {
                t = m.op(
                    &format!("{name}_res"),
                    "add",
                    &[&t, &h],
                    json!({}),
                    json!({}),
                );
                if pick(&mut r, 2) == 0 {
                    t = m.act(&format!("{name}_resrelu"), "relu", &t);
                }
            }
        }
        let mut width = out_c;
        if let Some((h, hc)) = history.last().cloned() {
            if pick(&mut r, 4) == 0 {
                t = m.op(
                    &format!("{name}_cat"),
                    "concat",
                    &[&h, &t],
                    json!({}),
                    json!({}),
                );
                width += hc;
            }
        }
        history.push((t.clone(), width));
        cur = (t, width);
    }
    if graph_task {
        let pool = ["global_add_pool", "global_mean_pool", "global_max_pool"][pick(&mut r, 3)];
        cur.0 = m.op("pool", pool, &[&cur.0], json!({}), json!({}));
    }
    let out = m.linear("out", &cur.0, cur.1, 3);
    m.outputs = vec![out];
    (m, graph_task)
}

#[test]
fn random_models_int8_tracks_float() {
    let mut agreements = vec![];
    for seed in 1..=40u64 {
        let (m, graph_task) = random_model(seed);
        let file = st::parse_model_bytes(&m.bytes()).unwrap();
        let spec = spec::parse(&file).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        let gb = if graph_task {
            GraphsBuilder::random(8, 7, 2, spec.in_channels, 3, seed)
        } else {
            GraphsBuilder::random(1, 40, 3, spec.in_channels, 3, seed)
        };
        let g = st::parse_graphs_bytes(&gb.bytes()).unwrap();
        let ranges = calibrate::calibrate(&spec, &g, Method::MinMax, |_| {}).unwrap();
        let cap = Capacity {
            max_nodes: g.num_nodes as u32,
            max_edges: g.num_edges() as u32,
            max_graphs: g.num_graphs as u32,
            max_pairs: 0,
        };
        let conv =
            quantize::convert(&spec, &ranges, cap).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        let model = tinygnn::Model::from_bytes(&conv.bytes).unwrap();
        let q = rt::run(&model, &g).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        let vals = reference::run(&spec, &g, |_| {}).unwrap();
        let c = compare(&vals[&spec.outputs[0]], &q).unwrap();
        let rel = c.max_abs_err / c.float_range.max(1e-9);
        let steps = c.max_abs_err / c.step;
        eprintln!(
            "seed {seed:>2}: {:>2} spec ops → {:>2} device ops, max err {steps:5.2} steps ({:4.1}% of range), top-1 {:5.1}%",
            spec.ops.len(),
            conv.ops.len(),
            rel * 100.0,
            c.top1_agreement * 100.0
        );
        agreements.push(c.top1_agreement);
        assert!(
            steps <= 4.0 || rel <= 0.03,
            "seed {seed}: int8 error {steps:.2} steps / {:.1}% of range",
            rel * 100.0
        );
    }
    let mean = agreements.iter().sum::<f64>() / agreements.len() as f64;
    eprintln!("mean top-1 agreement {:.1}%", mean * 100.0);
    assert!(mean >= 0.9, "mean top-1 agreement {mean}");
}
