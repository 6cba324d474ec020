//! Link prediction in the host tool (helper `link`): GRAPHS files with
//! `edge_label_index` / `edge_label`, the pair decoders in the spec, the float
//! reference, calibration and conversion (pair capacity), the runtime run,
//! and the AUC of `run` / `verify`.

mod common;

use common::{GraphsBuilder, ModelBuilder};
use serde_json::json;
use tinygnn_cli::calibrate::{self, Method};
use tinygnn_cli::cmd::verify::{auc, compare};
use tinygnn_cli::quantize::{self, Capacity};
use tinygnn_cli::{reference, rt, spec, st};

/// `g`'s bytes plus `edge_label_index` (`pairs`) and `edge_label`.
fn graphs_with_pairs(g: &GraphsBuilder, pairs: &[(i64, i64)], label: Option<&[f32]>) -> Vec<u8> {
    let n = g.batch.len();
    let e = g.src.len();
    let mut ei = g.src.clone();
    ei.extend(&g.dst);
    let mut eli: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    eli.extend(pairs.iter().map(|p| p.1));
    let mut f32s = vec![("x", vec![n, g.f], g.x.clone())];
    if let Some(l) = label {
        f32s.push(("edge_label", vec![l.len()], l.to_vec()));
    }
    let i64s = vec![
        ("edge_index", vec![2, e], ei),
        ("edge_label_index", vec![2, pairs.len()], eli),
    ];
    st::write_safetensors(&f32s, &i64s, None).unwrap()
}

/// GCN(f→8)+ReLU → GCN(8→6) encoder, then the decoder `decoder`.
fn link_model(f: usize, decoder: &str, seed: u64) -> ModelBuilder {
    let mut m = ModelBuilder::new("link", f, seed);
    let h = m.gcn("conv1", "x", f, 8, json!({}));
    let h = m.act("relu1", "relu", &h);
    let z = m.gcn("conv2", &h, 8, 6, json!({}));
    let out = match decoder {
        "inner_product" => m.op("score", "inner_product", &[&z], json!({}), json!({})),
        d => {
            let p = m.op("pair", d, &[&z], json!({}), json!({}));
            let c = if d == "pair_concat" { 12 } else { 6 };
            let u = m.linear("dec1", &p, c, 5);
            let u = m.act("dec_relu", "relu", &u);
            m.linear("dec2", &u, 5, 1)
        }
    };
    m.outputs = vec![out];
    m
}

fn random_pairs(n: usize, p: usize, seed: u64) -> (Vec<(i64, i64)>, Vec<f32>) {
    let mut r = common::Rng(seed);
    let mut idx = || (((r.next() + 1.0) / 2.0 * n as f32) as i64).min(n as i64 - 1);
    let pairs: Vec<(i64, i64)> = (0..p).map(|_| (idx(), idx())).collect();
    let label = (0..p).map(|k| (k % 2) as f32).collect();
    (pairs, label)
}

#[test]
fn decoders_convert_and_track_float() {
    for (k, decoder) in ["inner_product", "pair_hadamard", "pair_concat"]
        .into_iter()
        .enumerate()
    {
        for seed in 1..=6u64 {
            let f = 5;
            let m = link_model(f, decoder, seed * 13 + k as u64);
            let file = st::parse_model_bytes(&m.bytes()).unwrap();
            let spec = spec::parse(&file).unwrap_or_else(|e| panic!("{decoder}: {e:#}"));
            let gb = GraphsBuilder::random(1, 30, 3, f, 2, seed);
            let (pairs, label) = random_pairs(30, 40, seed);
            let g = st::parse_graphs_bytes(&graphs_with_pairs(&gb, &pairs, Some(&label))).unwrap();
            assert_eq!(g.pairs.as_ref().unwrap().sources.len(), 40);
            let ranges = calibrate::calibrate(&spec, &g, Method::MinMax, |_| {}).unwrap();
            let cap = Capacity {
                max_nodes: 30,
                max_edges: g.num_edges() as u32,
                max_graphs: 1,
                max_pairs: 40,
            };
            let conv = quantize::convert(&spec, &ranges, cap).unwrap();
            let model = tinygnn::Model::from_bytes(&conv.bytes).unwrap();
            assert!(model.has_pairs());
            assert_eq!(model.max_pairs(), 40);
            let q = rt::run(&model, &g).unwrap();
            let vals = reference::run(&spec, &g, |_| {}).unwrap();
            let fo = &vals[&spec.outputs[0]];
            assert_eq!((fo.rows, fo.channels), (40, 1));
            let c = compare(fo, &q).unwrap();
            // Every op, the pair op included, stays close to its float tensor.
            let (layers, _) =
                tinygnn_cli::debug::layer_stats(&spec, &model, &g, &vals, false).unwrap();
            for l in &layers {
                assert_eq!(l.rows, if l.index < 2 { 30 } else { 40 }, "{}", l.spec);
                assert!(
                    l.all.sqnr_db() >= 30.0,
                    "{decoder} seed {seed}: op {} SQNR {} dB",
                    l.spec,
                    l.all.sqnr_db()
                );
            }
            let steps = c.max_abs_err / c.step;
            let rel = c.max_abs_err / c.float_range.max(1e-9);
            eprintln!(
                "{decoder} seed {seed}: max err {steps:.2} steps ({:.1}% of range)",
                rel * 100.0
            );
            // (The last layer of a random MLP may have a tiny output range,
            // hence the per-op SQNR check above as well.)
            assert!(
                steps <= 4.0 || rel <= 0.1,
                "{decoder} seed {seed}: int8 error {steps:.2} steps / {:.1}% of range",
                rel * 100.0
            );
            // The float AUC and the int8 AUC of the same labels stay close.
            let qs: Vec<f64> = (0..q.rows).map(|r| q.dequantize(r, 0)).collect();
            let (fa, qa) = (auc(&fo.data, &label).unwrap(), auc(&qs, &label).unwrap());
            assert!(
                (fa - qa).abs() <= 0.05,
                "{decoder} seed {seed}: AUC {fa} vs {qa}"
            );
        }
    }
}

#[test]
fn reference_inner_product_is_the_dot_product() {
    let f = 4;
    let m = link_model(f, "inner_product", 3);
    let spec = spec::parse(&st::parse_model_bytes(&m.bytes()).unwrap()).unwrap();
    let gb = GraphsBuilder::random(1, 10, 2, f, 2, 3);
    let pairs = [(0, 9), (3, 3), (9, 0)];
    let g = st::parse_graphs_bytes(&graphs_with_pairs(&gb, &pairs, None)).unwrap();
    let vals = reference::run(&spec, &g, |_| {}).unwrap();
    let z = &vals["conv2"];
    let s = &vals["score"];
    for (k, &(a, b)) in pairs.iter().enumerate() {
        let dot: f64 = z
            .row(a as usize)
            .iter()
            .zip(z.row(b as usize))
            .map(|(x, y)| x * y)
            .sum();
        assert!((s.data[k] - dot).abs() < 1e-12);
    }
    // Symmetric in the pair.
    assert!((s.data[0] - s.data[2]).abs() < 1e-12);
}

#[test]
fn auc_counts_ties_half() {
    assert_eq!(
        auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]),
        Some(0.75)
    );
    assert_eq!(auc(&[1.0, 2.0], &[0.0, 1.0]), Some(1.0));
    assert_eq!(auc(&[2.0, 1.0], &[0.0, 1.0]), Some(0.0));
    assert_eq!(auc(&[3.0; 6], &[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]), Some(0.5));
    // One tie across classes: 3 of 4 pairs ordered, one tied (½).
    assert_eq!(
        auc(&[0.0, 1.0, 1.0, 2.0], &[0.0, 0.0, 1.0, 1.0]),
        Some(0.875)
    );
    assert_eq!(auc(&[1.0, 2.0], &[1.0, 1.0]), None);
    assert_eq!(auc(&[], &[]), None);
}

#[test]
fn bad_pair_tensors_are_reported() {
    let gb = GraphsBuilder::random(1, 5, 2, 3, 2, 1);
    let err = |bytes: Vec<u8>| format!("{:#}", st::parse_graphs_bytes(&bytes).unwrap_err());
    assert!(err(graphs_with_pairs(&gb, &[(0, 5)], None)).contains("edge_label_index"));
    assert!(err(graphs_with_pairs(&gb, &[(-1, 0)], None)).contains("negative"));
    assert!(err(graphs_with_pairs(&gb, &[(0, 1)], Some(&[1.0, 0.0])))
        .contains("edge_label has 2 values for 1 pairs"));
    assert!(err(graphs_with_pairs(&gb, &[(0, 1)], Some(&[f32::NAN]))).contains("finite"));
    // edge_label without edge_label_index.
    let n = gb.batch.len();
    let mut ei = gb.src.clone();
    ei.extend(&gb.dst);
    let bytes = st::write_safetensors(
        &[
            ("x", vec![n, 3], gb.x.clone()),
            ("edge_label", vec![1], vec![1.0]),
        ],
        &[("edge_index", vec![2, gb.src.len()], ei.clone())],
        None,
    )
    .unwrap();
    assert!(err(bytes).contains("without edge_label_index"));
    // edge_label_index of the wrong shape.
    let bytes = st::write_safetensors(
        &[("x", vec![n, 3], gb.x.clone())],
        &[
            ("edge_index", vec![2, gb.src.len()], ei),
            ("edge_label_index", vec![3, 1], vec![0, 1, 2]),
        ],
        None,
    )
    .unwrap();
    assert!(err(bytes).contains("expected [2, P]"));
}

#[test]
fn pair_models_need_pair_capacity_and_pairs() {
    let f = 3;
    let m = link_model(f, "inner_product", 5);
    let spec = spec::parse(&st::parse_model_bytes(&m.bytes()).unwrap()).unwrap();
    let gb = GraphsBuilder::random(1, 8, 2, f, 2, 5);
    let g = st::parse_graphs_bytes(&graphs_with_pairs(&gb, &[(0, 1), (2, 3)], None)).unwrap();
    let ranges = calibrate::calibrate(&spec, &g, Method::MinMax, |_| {}).unwrap();
    let mut cap = Capacity {
        max_nodes: 8,
        max_edges: g.num_edges() as u32,
        max_graphs: 1,
        max_pairs: 0,
    };
    let e = quantize::convert(&spec, &ranges, cap).unwrap_err();
    assert!(format!("{e:#}").contains("pair capacity is 0"), "{e:#}");
    cap.max_pairs = 1;
    let conv = quantize::convert(&spec, &ranges, cap).unwrap();
    let model = tinygnn::Model::from_bytes(&conv.bytes).unwrap();
    // Two pairs for a capacity of one: the runtime's typed error.
    let e = rt::run(&model, &g).unwrap_err();
    assert!(
        format!("{e:#}").contains("2 node pairs, the model allows 1"),
        "{e:#}"
    );
    // No pairs at all.
    let g0 = st::parse_graphs_bytes(&gb.bytes()).unwrap();
    let e = rt::run(&model, &g0).unwrap_err();
    assert!(format!("{e:#}").contains("scores node pairs"), "{e:#}");
    // A link spec must end in pair rows.
    let mut bad = link_model(f, "inner_product", 5);
    bad.outputs = vec!["conv2".into()];
    let e = spec::parse(&st::parse_model_bytes(&bad.bytes()).unwrap()).unwrap_err();
    assert!(
        format!("{e:#}").contains("Node-level but the task is Link"),
        "{e:#}"
    );
    // Pair decoders need node rows.
    let mut bad = link_model(f, "inner_product", 5);
    bad.op("again", "inner_product", &["score"], json!({}), json!({}));
    bad.outputs = vec!["again".into()];
    let e = spec::parse(&st::parse_model_bytes(&bad.bytes()).unwrap()).unwrap_err();
    assert!(format!("{e:#}").contains("needs node-level input"), "{e:#}");
}
