//! The integer ops approximate the PyG layers they stand for: float weights
//! are quantized the usual way (per-channel symmetric weights, asymmetric
//! activations, bias in the accumulator scale), and the dequantized output is
//! compared with a float64 implementation of the PyG formula on a *directed*
//! graph with edge weights, so source/target or degree-index mix-ups show.

mod common;
use common::*;
use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Activation, Aggr, Op, Pool};
use tinygnn::graph::quantize_value;
use tinygnn::ops::{GcnConv, GinAggregate, GlobalPool, SageConv};
use tinygnn::quant::quantize_multiplier;
use tinygnn::{Features, GraphInput};

struct Lin {
    w: Vec<f64>, // [out, in]
    b: Vec<f64>,
    ic: usize,
    oc: usize,
}

fn rand_lin(rng: &mut Rng, ic: usize, oc: usize) -> Lin {
    let mut f = || (rng.range(-1000, 1000) as f64) / 1000.0;
    Lin {
        w: (0..ic * oc).map(|_| f()).collect(),
        b: (0..oc).map(|_| f() * 0.3).collect(),
        ic,
        oc,
    }
}

/// Quantizes `lin` for input scale `sx` and output scale `so`: returns int8 weights and records.
fn quant_lin(lin: &Lin, sx: f64, so: f64, extra: f64) -> (Vec<i8>, Vec<ChannelRecord>) {
    let mut wq = Vec::new();
    let mut recs = Vec::new();
    for c in 0..lin.oc {
        let row = &lin.w[c * lin.ic..(c + 1) * lin.ic];
        let sw = row.iter().fold(0f64, |m, v| m.max(v.abs())) / 127.0;
        wq.extend(row.iter().map(|v| (v / sw).round() as i8));
        let (mult, shift) = quantize_multiplier(sx * sw * extra / so);
        recs.push(ChannelRecord {
            bias: (lin.b[c] / (sx * sw)).round() as i32,
            mult,
            shift,
        });
    }
    (wq, recs)
}

fn apply(lin: &Lin, x: &[f64]) -> Vec<f64> {
    (0..lin.oc)
        .map(|c| {
            (0..lin.ic)
                .map(|k| lin.w[c * lin.ic + k] * x[k])
                .sum::<f64>()
        })
        .collect()
}

const N: usize = 7;
// A directed graph: every node has a different in- and out-degree; 3 has a self-loop, 6 is isolated.
const SRC: [u16; 10] = [0, 0, 0, 1, 2, 2, 3, 4, 5, 3];
const DST: [u16; 10] = [1, 2, 3, 2, 3, 4, 4, 5, 1, 3];
const EW: [f32; 10] = [0.5, 1.5, 2.0, 1.0, 0.25, 3.0, 1.0, 0.75, 2.5, 1.25];

fn features(rng: &mut Rng, f: usize) -> Vec<f32> {
    (0..N * f)
        .map(|_| rng.range(-1000, 1000) as f32 / 500.0)
        .collect()
}

fn run_f32(bytes: &[u8], x: &[f32], batch: Option<&[u16]>, ew: bool) -> (Vec<i8>, f32, i8) {
    let mut inp = GraphInput::new(N, Features::F32(x), &SRC, &DST);
    inp.edge_weight = if ew { Some(&EW) } else { None };
    inp.batch = batch;
    let model = tinygnn::Model::from_bytes(bytes).unwrap();
    let o = model.tensors()[model.outputs()[0] as usize];
    (run(bytes, &inp).unwrap().remove(0).2, o.scale, o.zero_point)
}

fn check(got: &[i8], scale: f32, zp: i8, want: &[f64], tol_steps: f64) {
    assert_eq!(got.len(), want.len());
    let mut worst = 0f64;
    for (&q, &w) in got.iter().zip(want) {
        let real = scale as f64 * (q as f64 - zp as f64);
        worst = worst.max((real - w).abs() / scale as f64);
    }
    assert!(
        worst <= tol_steps,
        "worst error {worst} quantization steps\n got {got:?}\nwant {want:?}"
    );
}

#[test]
fn gcn_matches_pyg_float() {
    for (improved, ew) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut rng = Rng(42);
        let (f, oc) = (4, 3);
        let lin = rand_lin(&mut rng, f, oc);
        let x = features(&mut rng, f);
        let (sx, so) = (4.0 / 255.0, 8.0 / 255.0);
        // Float PyG gcn_norm: add_remaining_self_loops, deg over targets.
        let fill = if improved { 2.0 } else { 1.0 };
        let mut edges: Vec<(usize, usize, f64)> = Vec::new();
        let mut loop_w = [fill; N];
        for k in 0..SRC.len() {
            let w = if ew { EW[k] as f64 } else { 1.0 };
            if SRC[k] == DST[k] {
                loop_w[SRC[k] as usize] = w;
            } else {
                edges.push((SRC[k] as usize, DST[k] as usize, w));
            }
        }
        edges.extend(loop_w.iter().enumerate().map(|(i, &w)| (i, i, w)));
        let mut deg = [0f64; N];
        for &(_, t, w) in &edges {
            deg[t] += w;
        }
        let xq: Vec<f64> = x
            .iter()
            .map(|&v| sx * quantize_value(v, sx as f32, 0) as f64)
            .collect();
        let h: Vec<Vec<f64>> = xq.chunks(f).map(|r| apply(&lin, r)).collect();
        let mut want = vec![0f64; N * oc];
        for &(s, t, w) in &edges {
            let coef = w / (deg[s] * deg[t]).sqrt();
            for c in 0..oc {
                want[t * oc + c] += coef * h[s][c];
            }
        }
        for i in 0..N {
            for c in 0..oc {
                want[i * oc + c] += lin.b[c];
            }
        }

        let mut w = ModelWriter::new();
        let xt = w.add_tensor(node(f as u16, sx as f32, 0));
        let yt = w.add_tensor(node(oc as u16, so as f32, 0));
        let (wq, recs) = quant_lin(&lin, sx, so, 1.0);
        let ws = w.add_i8(&wq);
        let ps = w.add_channel_params(&recs);
        w.add_op(Op::GcnConv(GcnConv {
            input: xt,
            output: yt,
            weights: ws,
            params: ps,
            act: Activation::None,
            improved,
            add_self_loops: true,
            normalize: true,
            edge_weight: ew,
        }));
        let bytes = w.finish(xt, &[yt], 16, 16, 1).unwrap();
        let (got, scale, zp) = run_f32(&bytes, &x, None, ew);
        // Weight quantization error dominates: allow 3 output steps.
        check(&got, scale, zp, &want, 3.0);
    }
}

#[test]
fn sage_mean_max_sum_match_pyg_float() {
    for aggr in [Aggr::Mean, Aggr::Max, Aggr::Sum] {
        let mut rng = Rng(43);
        let (f, oc) = (4, 3);
        let ll = rand_lin(&mut rng, f, oc);
        let lr = rand_lin(&mut rng, f, oc);
        let x = features(&mut rng, f);
        let (sx, so) = (4.0 / 255.0, 16.0 / 255.0);
        let xq: Vec<f64> = x
            .iter()
            .map(|&v| sx * quantize_value(v, sx as f32, 0) as f64)
            .collect();
        let mut want = Vec::new();
        for i in 0..N {
            let nb: Vec<usize> = (0..SRC.len())
                .filter(|&k| DST[k] as usize == i)
                .map(|k| SRC[k] as usize)
                .collect();
            let agg: Vec<f64> = (0..f)
                .map(|k| {
                    let vals = nb.iter().map(|&j| xq[j * f + k]);
                    match aggr {
                        Aggr::Sum => vals.sum(),
                        Aggr::Mean => vals.sum::<f64>() / (nb.len().max(1) as f64),
                        Aggr::Max => vals
                            .fold(f64::NEG_INFINITY, f64::max)
                            .max(if nb.is_empty() {
                                0.0
                            } else {
                                f64::NEG_INFINITY
                            }),
                    }
                })
                .collect();
            let a = apply(&ll, &agg);
            let r = apply(&lr, &xq[i * f..(i + 1) * f]);
            want.extend((0..oc).map(|c| a[c] + ll.b[c] + r[c]));
        }
        // lin_l and lin_r must share one scale per channel: use the max of both.
        let mut wl = Vec::new();
        let mut wr = Vec::new();
        let mut recs = Vec::new();
        for c in 0..oc {
            let rl = &ll.w[c * f..(c + 1) * f];
            let rr = &lr.w[c * f..(c + 1) * f];
            let sw = rl.iter().chain(rr).fold(0f64, |m, v| m.max(v.abs())) / 127.0;
            wl.extend(rl.iter().map(|v| (v / sw).round() as i8));
            wr.extend(rr.iter().map(|v| (v / sw).round() as i8));
            let (mult, shift) = quantize_multiplier(sx * sw / so);
            recs.push(ChannelRecord {
                bias: (ll.b[c] / (sx * sw)).round() as i32,
                mult,
                shift,
            });
        }
        let mut w = ModelWriter::new();
        let xt = w.add_tensor(node(f as u16, sx as f32, 0));
        let yt = w.add_tensor(node(oc as u16, so as f32, 0));
        let wls = w.add_i8(&wl);
        let wrs = w.add_i8(&wr);
        let ps = w.add_channel_params(&recs);
        w.add_op(Op::SageConv(SageConv {
            input: xt,
            output: yt,
            aggr,
            weights_l: wls,
            weights_r: wrs,
            params: ps,
            act: Activation::None,
            normalize: false,
        }));
        let bytes = w.finish(xt, &[yt], 16, 16, 1).unwrap();
        let (got, scale, zp) = run_f32(&bytes, &x, None, false);
        check(&got, scale, zp, &want, 3.0);
    }
}

#[test]
fn gin_and_mean_pool_match_pyg_float() {
    let mut rng = Rng(44);
    let f = 3;
    let x = features(&mut rng, f);
    let (sx, sa, sp) = (4.0 / 255.0, 24.0 / 255.0, 12.0 / 255.0);
    let eps = 0.3;
    let xq: Vec<f64> = x
        .iter()
        .map(|&v| sx * quantize_value(v, sx as f32, 0) as f64)
        .collect();
    let mut agg = vec![0f64; N * f];
    for i in 0..N {
        for c in 0..f {
            agg[i * f + c] = (1.0 + eps) * xq[i * f + c];
        }
    }
    for k in 0..SRC.len() {
        for c in 0..f {
            agg[DST[k] as usize * f + c] += xq[SRC[k] as usize * f + c];
        }
    }
    let batch = [0u16, 0, 1, 1, 1, 3, 3]; // graph 2 empty
    let mut pooled = vec![0f64; 4 * f];
    for g in 0..4 {
        let members: Vec<usize> = (0..N).filter(|&i| batch[i] as usize == g).collect();
        for c in 0..f {
            let s: f64 = members.iter().map(|&i| agg[i * f + c]).sum();
            pooled[g * f + c] = if members.is_empty() {
                0.0
            } else {
                s / members.len() as f64
            };
        }
    }
    let mut w = ModelWriter::new();
    let xt = w.add_tensor(node(f as u16, sx as f32, 0));
    let at = w.add_tensor(node(f as u16, sa as f32, -20));
    let pt = w.add_tensor(graph(f as u16, sp as f32, 10));
    let (m1, s1) = quantize_multiplier(sx / (sa * 256.0));
    w.add_op(Op::GinAggregate(GinAggregate {
        input: xt,
        output: at,
        one_plus_eps_q16: ((1.0 + eps) * 65536.0f64).round() as i32,
        mult: m1,
        shift: s1,
    }));
    let (m2, s2) = quantize_multiplier(sa / (sp * 256.0));
    w.add_op(Op::GlobalPool(GlobalPool {
        input: at,
        output: pt,
        pool: Pool::Mean,
        mult: m2,
        shift: s2,
    }));
    let bytes = w.finish(xt, &[pt], 16, 16, 4).unwrap();
    let (got, scale, zp) = run_f32(&bytes, &x, Some(&batch), false);
    check(&got, scale, zp, &pooled, 1.0);
}
