//! Unit tests of the host tool's pieces: reference ops on hand-computed
//! graphs, BatchNorm folding, quantization round trips, calibration.

mod common;

use tinygnn_cli::calibrate::{range_of, Method, Range};
use tinygnn_cli::ops::common::{Act, BatchNorm, Norm};
use tinygnn_cli::ops::elementwise::{Activation, Add, Concat};
use tinygnn_cli::ops::{gcn::Gcn, gin::Gin, lut::Lut, pool::Pool, sage::Sage};
use tinygnn_cli::quantize::{activation_quant, dequantize_value, quantize_value, quantize_weights};
use tinygnn_cli::reference::{exec_op, linear, Tensor};
use tinygnn_cli::spec::{Aggr, Mat, OpKind};
use tinygnn_cli::st::Graphs;

fn graph(
    n: usize,
    edges: &[(u16, u16)],
    weights: Option<Vec<f32>>,
    batch: Option<Vec<u16>>,
) -> Graphs {
    let has_batch = batch.is_some();
    let batch = batch.unwrap_or(vec![0; n]);
    Graphs {
        num_nodes: n,
        channels: 1,
        x: vec![0.0; n],
        sources: edges.iter().map(|e| e.0).collect(),
        targets: edges.iter().map(|e| e.1).collect(),
        edge_weight: weights,
        edge_attr: None,
        edge_dim: 0,
        num_graphs: batch.iter().map(|&b| b as usize + 1).max().unwrap_or(1),
        batch,
        has_batch,
        y: None,
        test_mask: None,
        pairs: None,
        hyperedges: None,
    }
}

fn col(v: &[f64]) -> Tensor {
    Tensor {
        rows: v.len(),
        channels: 1,
        data: v.to_vec(),
    }
}

fn eye1() -> Mat {
    Mat {
        rows: 1,
        cols: 1,
        data: vec![1.0],
    }
}

fn gcn(improved: bool, loops: bool, normalize: bool, ew: bool) -> OpKind {
    OpKind::Gcn(Gcn {
        w: eye1(),
        b: vec![0.0],
        norm: Norm {
            improved,
            add_self_loops: loops,
            normalize,
            edge_weight: ew,
        },
    })
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

#[test]
fn gcn_path_graph_hand_computed() {
    // 0 - 1 - 2 (both directions); self-loops added: deg = [2, 3, 2].
    let g = graph(3, &[(0, 1), (1, 0), (1, 2), (2, 1)], None, None);
    let x = col(&[1.0, 2.0, 3.0]);
    let out = exec_op(&gcn(false, true, true, false), &[&x], &g);
    let s6 = 6f64.sqrt();
    close(
        &out.data,
        &[
            1.0 / 2.0 + 2.0 / s6,
            1.0 / s6 + 2.0 / 3.0 + 3.0 / s6,
            2.0 / s6 + 3.0 / 2.0,
        ],
    );
    // improved without edge weights: no effect (PyG 2.8.1 ignores the fill value then).
    let out = exec_op(&gcn(true, true, true, false), &[&x], &g);
    close(
        &out.data,
        &[
            1.0 / 2.0 + 2.0 / s6,
            1.0 / s6 + 2.0 / 3.0 + 3.0 / s6,
            2.0 / s6 + 3.0 / 2.0,
        ],
    );
    // improved with (unit) edge weights: loops weigh 2, deg = [3, 4, 3].
    let g = graph(
        3,
        &[(0, 1), (1, 0), (1, 2), (2, 1)],
        Some(vec![1.0; 4]),
        None,
    );
    let out = exec_op(&gcn(true, true, true, true), &[&x], &g);
    let s12 = 12f64.sqrt();
    close(
        &out.data,
        &[
            2.0 / 3.0 + 2.0 / s12,
            1.0 / s12 + 2.0 * 2.0 / 4.0 + 3.0 / s12,
            2.0 / s12 + 2.0 * 3.0 / 3.0,
        ],
    );
}

#[test]
fn gcn_existing_self_loops_keep_last_weight() {
    // Loops 0→0 with weights 3 then 5 (the last one is kept), edge 1→0 weight 2.
    let g = graph(
        2,
        &[(0, 0), (0, 0), (1, 0)],
        Some(vec![3.0, 5.0, 2.0]),
        None,
    );
    let x = col(&[1.0, 10.0]);
    let out = exec_op(&gcn(false, true, true, true), &[&x], &g);
    close(
        &out.data,
        &[5.0 / 7.0 * 1.0 + 2.0 / 7f64.sqrt() * 10.0, 10.0],
    );
    let out = exec_op(&gcn(true, true, true, true), &[&x], &g);
    close(&out.data, &[5.0 / 7.0 + 2.0 / 14f64.sqrt() * 10.0, 10.0]);
    // Without the edge_weight attr the weights are ignored: all 1.
    let out = exec_op(&gcn(false, true, true, false), &[&x], &g);
    close(&out.data, &[1.0 / 2.0 + 10.0 / 2f64.sqrt(), 10.0]);
}

#[test]
fn gcn_without_loops_or_normalization() {
    // Node 2 has no in-edge: degree 0 → coefficient 0 (inf → 0).
    let g = graph(3, &[(0, 1), (1, 0)], None, None);
    let x = col(&[1.0, 2.0, 3.0]);
    let out = exec_op(&gcn(false, false, true, false), &[&x], &g);
    close(&out.data, &[2.0, 1.0, 0.0]);
    // normalize=False: plain weighted sum, no loops (PyG adds loops only in gcn_norm).
    let g = graph(
        3,
        &[(0, 1), (1, 0), (2, 1)],
        Some(vec![0.5, 1.0, 2.0]),
        None,
    );
    let out = exec_op(&gcn(false, true, false, true), &[&x], &g);
    close(&out.data, &[2.0, 0.5 + 6.0, 0.0]);
}

fn sage(aggr: Aggr, normalize: bool) -> OpKind {
    OpKind::Sage(Sage {
        wl: Mat {
            rows: 2,
            cols: 1,
            data: vec![1.0, -1.0],
        },
        b: vec![0.5, 0.0],
        wr: Some(Mat {
            rows: 2,
            cols: 1,
            data: vec![0.0, 2.0],
        }),
        aggr,
        normalize,
    })
}

#[test]
fn sage_aggregations_and_empty_neighbourhoods() {
    // Node 0 ← 1, 2; node 1 ← 2; node 2 ← nobody.
    let g = graph(3, &[(1, 0), (2, 0), (2, 1)], None, None);
    let x = col(&[1.0, -2.0, 4.0]);
    // out = [agg + 0.5, -agg + 2x]
    let mean = exec_op(&sage(Aggr::Mean, false), &[&x], &g);
    close(
        &mean.data,
        &[1.0 + 0.5, -1.0 + 2.0, 4.0 + 0.5, -4.0 - 4.0, 0.5, 8.0],
    );
    let sum = exec_op(&sage(Aggr::Sum, false), &[&x], &g);
    close(&sum.data, &[2.5, 0.0, 4.5, -8.0, 0.5, 8.0]);
    let max = exec_op(&sage(Aggr::Max, false), &[&x], &g);
    close(&max.data, &[4.5, -2.0, 4.5, -8.0, 0.5, 8.0]);
    let norm = exec_op(&sage(Aggr::Sum, true), &[&x], &g);
    let n2 = (4.5f64 * 4.5 + 64.0).sqrt();
    let n3 = (0.25f64 + 64.0).sqrt();
    close(
        &norm.data,
        &[1.0, 0.0, 4.5 / n2, -8.0 / n2, 0.5 / n3, 8.0 / n3],
    );
}

#[test]
fn gin_and_pools() {
    let g = graph(4, &[(1, 0), (2, 0), (0, 1)], None, Some(vec![0, 0, 2, 2]));
    let x = col(&[1.0, 2.0, 3.0, -4.0]);
    let gin = exec_op(&OpKind::Gin(Gin { eps: 0.5 }), &[&x], &g);
    close(&gin.data, &[1.5 + 5.0, 3.0 + 1.0, 4.5, -6.0]);
    // Graph 1 has no node: every pool gives 0 there.
    let add = exec_op(&OpKind::Pool(Pool::Add), &[&x], &g);
    close(&add.data, &[3.0, 0.0, -1.0]);
    let mean = exec_op(&OpKind::Pool(Pool::Mean), &[&x], &g);
    close(&mean.data, &[1.5, 0.0, -0.5]);
    let max = exec_op(&OpKind::Pool(Pool::Max), &[&x], &g);
    close(&max.data, &[2.0, 0.0, 3.0]);
}

#[test]
fn add_concat_activations() {
    let g = graph(2, &[], None, None);
    let a = col(&[1.0, -2.0]);
    let b = col(&[0.5, 0.25]);
    close(
        &exec_op(&OpKind::Add(Add), &[&a, &b], &g).data,
        &[1.5, -1.75],
    );
    close(
        &exec_op(&OpKind::Concat(Concat), &[&a, &b], &g).data,
        &[1.0, 0.5, -2.0, 0.25],
    );
    close(
        &exec_op(&OpKind::Act(Activation(Act::Relu)), &[&a], &g).data,
        &[1.0, 0.0],
    );
    close(
        &exec_op(&OpKind::Act(Activation(Act::Leaky(0.1))), &[&a], &g).data,
        &[1.0, -0.2],
    );
    let e = 1f64.exp();
    close(
        &exec_op(&OpKind::Lut(Lut::Sigmoid), &[&a], &g).data,
        &[e / (1.0 + e), 1.0 / (1.0 + (2f64).exp())],
    );
    close(
        &exec_op(&OpKind::Lut(Lut::Tanh), &[&a], &g).data,
        &[
            (e * e - 1.0) / (e * e + 1.0),
            -((e.powi(4) - 1.0) / (e.powi(4) + 1.0)),
        ],
    );
}

#[test]
fn bn_folding_matches_linear_then_bn() {
    let mut r = common::Rng(42);
    let (i, o, n) = (7, 5, 20);
    let w = Mat {
        rows: o,
        cols: i,
        data: r.vec(o * i, 1.0).into_iter().map(f64::from).collect(),
    };
    let b: Vec<f64> = r.vec(o, 0.5).into_iter().map(f64::from).collect();
    let gamma: Vec<f64> = r.vec(o, 0.5).into_iter().map(|v| 1.0 + v as f64).collect();
    let beta: Vec<f64> = r.vec(o, 0.5).into_iter().map(f64::from).collect();
    let mean: Vec<f64> = r.vec(o, 0.5).into_iter().map(f64::from).collect();
    let var: Vec<f64> = r.vec(o, 0.5).into_iter().map(|v| 1.0 + v as f64).collect();
    let x = Tensor {
        rows: n,
        channels: i,
        data: r.vec(n * i, 2.0).into_iter().map(f64::from).collect(),
    };
    let g = graph(n, &[], None, None);
    let bn = BatchNorm {
        gamma,
        beta,
        mean,
        var,
        eps: 1e-5,
    };
    let op = OpKind::BatchNorm(tinygnn_cli::ops::elementwise::Norm(bn.clone()));
    let want = exec_op(&op, &[&linear(&x, &w, Some(&b))], &g);
    let (mut wf, mut bf) = (w.clone(), b.clone());
    bn.fold(&mut [&mut wf], &mut bf);
    let got = linear(&x, &wf, Some(&bf));
    for (a, b) in got.data.iter().zip(&want.data) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn activation_quantization_round_trip() {
    for &(lo, hi) in &[
        (-1.0, 3.0),
        (0.0, 6.0),
        (-5.0, -1.0),
        (0.2, 0.7),
        (-1e-3, 1e-3),
    ] {
        let (s, z) = activation_quant(Range { lo, hi });
        // Zero is exact.
        assert_eq!(dequantize_value(quantize_value(0.0, s, z), s, z), 0.0);
        let (lo, hi) = (f64::min(lo, 0.0), f64::max(hi, 0.0));
        for k in 0..=100 {
            let v = lo + (hi - lo) * k as f64 / 100.0;
            let back = dequantize_value(quantize_value(v, s, z), s, z);
            assert!(
                (back - v).abs() <= s as f64 * 0.5 + 1e-9 * (hi - lo),
                "{lo} {hi} {v} {back}"
            );
        }
    }
    // Degenerate range: still a valid positive scale.
    let (s, _) = activation_quant(Range { lo: 0.0, hi: 0.0 });
    assert!(s > 0.0);
}

#[test]
fn weight_quantization_per_channel() {
    let w = Mat {
        rows: 3,
        cols: 2,
        data: vec![0.5, -0.25, 0.0, 0.0, -2.0, 1.0],
    };
    let (q, s) = quantize_weights(&[&w], false);
    assert_eq!(q[0], vec![127, -64, 0, 0, -127, 64]);
    assert_eq!(s[1], 1.0, "all-zero channel gets a positive scale");
    for c in 0..3 {
        for k in 0..2 {
            let err = (q[0][c * 2 + k] as f64 * s[c] - w.data[c * 2 + k]).abs();
            assert!(err <= s[c] / 2.0 + 1e-12);
        }
    }
    // Shared (SAGE) scales cover both matrices; per-tensor covers everything.
    let w2 = Mat {
        rows: 3,
        cols: 2,
        data: vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    };
    let (q, s) = quantize_weights(&[&w, &w2], false);
    assert_eq!(s[0], 1.0 / 127.0);
    assert_eq!(q[1][0], 127);
    let (_, s) = quantize_weights(&[&w, &w2], true);
    assert!(s.iter().all(|&v| v == 2.0 / 127.0));
}

#[test]
fn calibration_methods() {
    let v: Vec<f64> = (0..=10000).map(|i| i as f64 / 100.0 - 20.0).collect();
    assert_eq!(
        range_of(&v, Method::MinMax),
        Range {
            lo: -20.0,
            hi: 80.0
        }
    );
    let r = range_of(&v, Method::Percentile(99.0));
    assert!(
        (r.hi - 79.0).abs() < 1e-9 && (r.lo + 19.0).abs() < 1e-9,
        "{r:?}"
    );
    assert!("percentile:99.99".parse::<Method>().is_ok());
    assert!("percentile:20".parse::<Method>().is_err());
    assert!("mse".parse::<Method>().is_ok());
    assert!("kl".parse::<Method>().is_err());
}
