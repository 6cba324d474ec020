//! Linear and GcnConv against straightforward computations of their documented
//! integer formulas (COO loops, i128 math), independent of the runtime's CSR.

mod common;
use common::*;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{Activation, Op, TensorKind};
use tinygnn::graph::edge_weight_q16;
use tinygnn::ops::{Act, GcnConv, GlobalPool, Linear};
use tinygnn::{Features, GraphInput, Model, Session};

fn linear_case(seed: u64, kind: TensorKind, act: Activation) {
    let mut rng = Rng(seed);
    let (ic, oc, rows) = (7usize, 5usize, 6usize);
    let mut w = writer();
    let x = w.add_tensor(node(ic as u16, 0.1, 3));
    let w_ = rng.weights(ic * oc);
    let recs = records(&mut rng, oc, 2000, 0.0012);
    let ws = w.add_i8(&w_);
    let ps = w.add_channel_params(&recs);
    let (mid, out);
    if kind == TensorKind::Graph {
        // Pool first so the linear layer runs on graph rows.
        mid = w.add_tensor(graph(ic as u16, 0.1, 3));
        w.add_op(Op::GlobalPool(GlobalPool {
            input: x,
            output: mid,
            pool: tinygnn::format::Pool::Max,
            mult: 0,
            shift: 0,
        }));
        out = w.add_tensor(graph(oc as u16, 0.05, -4));
    } else {
        mid = x;
        out = w.add_tensor(node(oc as u16, 0.05, -4));
    }
    w.add_op(Op::Linear(Linear {
        input: mid,
        output: out,
        weights: ws,
        params: ps,
        act,
    }));
    let bytes = w.finish(x, &[out, mid], 64, 64, 8).unwrap();

    let xs = rng.i8s(rows * ic);
    let batch: Vec<u16> = (0..rows as u16).map(|i| i % 3).collect();
    let mut inp = input(rows, &xs, &[], &[]);
    if kind == TensorKind::Graph {
        inp.batch = Some(&batch);
    }
    let outs = run(&bytes, &inp).unwrap();
    // Rows the linear layer sees.
    let in_rows: Vec<Vec<i8>> = if kind == TensorKind::Graph {
        (0..3)
            .map(|g| {
                (0..ic)
                    .map(|c| {
                        (0..rows)
                            .filter(|&i| batch[i] == g)
                            .map(|i| xs[i * ic + c])
                            .max()
                            .unwrap()
                    })
                    .collect()
            })
            .collect()
    } else {
        xs.chunks(ic).map(|r| r.to_vec()).collect()
    };
    let mut want = Vec::new();
    for r in &in_rows {
        let acc = dense(&w_, ic, r, 3);
        for c in 0..oc {
            want.push(finish(acc[c], &recs[c], act, -4));
        }
    }
    assert_eq!(outs[0].0, in_rows.len());
    assert_eq!(outs[0].1, oc);
    assert_eq!(outs[0].2, want);
    assert_spread(&want);
    assert_eq!(outs[1].2, in_rows.concat());
}

#[test]
fn linear_node_rows() {
    for seed in 1..20 {
        linear_case(seed, TensorKind::Node, Activation::None);
        linear_case(seed, TensorKind::Node, Activation::Relu);
        linear_case(
            seed,
            TensorKind::Node,
            Activation::LeakyRelu { alpha_q16: 6554 },
        );
    }
}

#[test]
fn linear_graph_rows() {
    for seed in 1..10 {
        linear_case(seed, TensorKind::Graph, Activation::Relu);
    }
}

#[test]
fn linear_hand_computed() {
    // W = [[1, -2]], x = [[5, 7]], zp_x = 1 → acc = 4 - 12 = -8; bias 3 → -5;
    // scale 1 (mult 2^30, shift 1) → -5; zp_out 10 → 5.
    let mut w = writer();
    let x = w.add_tensor(node(2, 1.0, 1));
    let y = w.add_tensor(node(1, 1.0, 10));
    let ws = w.add_i8(&[1, -2]);
    let ps = w.add_channel_params(&[ChannelRecord {
        bias: 3,
        mult: 1 << 30,
        shift: 1,
    }]);
    w.add_op(Op::Linear(Linear {
        input: x,
        output: y,
        weights: ws,
        params: ps,
        act: Activation::None,
    }));
    let bytes = w.finish(x, &[y], 4, 4, 1).unwrap();
    let outs = run(&bytes, &input(1, &[5, 7], &[], &[])).unwrap();
    assert_eq!(outs[0].2, vec![5]);
    // With ReLU: max(-5, 0) = 0 → 10.
    let mut w2 = writer();
    let x = w2.add_tensor(node(2, 1.0, 1));
    let y = w2.add_tensor(node(1, 1.0, 10));
    let ws = w2.add_i8(&[1, -2]);
    let ps = w2.add_channel_params(&[ChannelRecord {
        bias: 3,
        mult: 1 << 30,
        shift: 1,
    }]);
    w2.add_op(Op::Linear(Linear {
        input: x,
        output: y,
        weights: ws,
        params: ps,
        act: Activation::Relu,
    }));
    let bytes = w2.finish(x, &[y], 4, 4, 1).unwrap();
    assert_eq!(
        run(&bytes, &input(1, &[5, 7], &[], &[])).unwrap()[0].2,
        vec![10]
    );
}

#[derive(Clone, Copy)]
struct GcnCfg {
    improved: bool,
    add_self_loops: bool,
    normalize: bool,
    edge_weight: bool,
}

/// The documented GCN integer formula over a COO edge list.
#[allow(clippy::too_many_arguments)]
fn gcn_reference(
    cfg: GcnCfg,
    n: usize,
    x: &[i8],
    zp: i8,
    ic: usize,
    w: &[i8],
    recs: &[ChannelRecord],
    src: &[u16],
    dst: &[u16],
    ew: Option<&[f32]>,
    act: Activation,
    zp_out: i8,
) -> Vec<i8> {
    let oc = recs.len();
    let h: Vec<Vec<i64>> = x.chunks(ic).map(|r| dense(w, ic, r, zp)).collect();
    let wq = |k: usize| -> u128 {
        match (cfg.edge_weight, ew) {
            (true, Some(ew)) => edge_weight_q16(ew[k]).unwrap() as u128,
            _ => 65536,
        }
    };
    let mut edges: Vec<(usize, usize, u128)> = Vec::new();
    if cfg.add_self_loops {
        let fill = if cfg.improved { 131072 } else { 65536 };
        let mut loop_w = vec![fill; n];
        for k in 0..src.len() {
            if src[k] == dst[k] {
                loop_w[src[k] as usize] = wq(k);
            } else {
                edges.push((src[k] as usize, dst[k] as usize, wq(k)));
            }
        }
        for (i, &lw) in loop_w.iter().enumerate() {
            edges.push((i, i, lw));
        }
    } else {
        for k in 0..src.len() {
            edges.push((src[k] as usize, dst[k] as usize, wq(k)));
        }
    }
    let mut deg = vec![0u128; n];
    for &(_, t, w) in &edges {
        deg[t] += w;
    }
    let dinv: Vec<u128> = deg
        .iter()
        .map(|&d| (1u128 << 64).checked_div(d).map_or(0, isqrt))
        .collect();
    let mut acc = vec![vec![0i128; oc]; n];
    for &(s, t, w) in &edges {
        let coef = if cfg.normalize {
            (dinv[s] * w * dinv[t]) >> 40
        } else {
            w << 8
        };
        assert!(coef <= i32::MAX as u128);
        for c in 0..oc {
            acc[t][c] += coef as i128 * h[s][c] as i128;
        }
    }
    let mut out = Vec::new();
    for row in &acc {
        for c in 0..oc {
            out.push(finish(
                round_shift(row[c], 24) as i64,
                &recs[c],
                act,
                zp_out,
            ));
        }
    }
    out
}

fn gcn_case(seed: u64, cfg: GcnCfg, n: usize, src: &[u16], dst: &[u16], ew: Option<&[f32]>) {
    gcn_case_oc(seed, cfg, n, src, dst, ew, 4);
}

fn gcn_case_oc(
    seed: u64,
    cfg: GcnCfg,
    n: usize,
    src: &[u16],
    dst: &[u16],
    ew: Option<&[f32]>,
    oc: usize,
) {
    let mut rng = Rng(seed);
    let ic = 6usize;
    let act = if seed % 2 == 0 {
        Activation::Relu
    } else {
        Activation::None
    };
    let mut w = writer();
    let x = w.add_tensor(node(ic as u16, 0.1, -5));
    let y = w.add_tensor(node(oc as u16, 0.05, 7));
    let wv = rng.weights(ic * oc);
    let recs = records(&mut rng, oc, 500, 0.0012);
    let ws = w.add_i8(&wv);
    let ps = w.add_channel_params(&recs);
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: y,
        weights: ws,
        params: ps,
        act,
        improved: cfg.improved,
        add_self_loops: cfg.add_self_loops,
        normalize: cfg.normalize,
        edge_weight: cfg.edge_weight,
    }));
    let cap = n.max(32) as u32;
    let bytes = w.finish(x, &[y], cap, src.len().max(64) as u32, 1).unwrap();
    let xs = rng.i8s(n * ic);
    let mut inp = input(n, &xs, src, dst);
    inp.edge_weight = ew;
    let outs = run(&bytes, &inp).unwrap();
    let want = gcn_reference(cfg, n, &xs, -5, ic, &wv, &recs, src, dst, ew, act, 7);
    assert_eq!(outs[0].2, want, "seed {seed}");
    // Any arena from the least to the wide one gives the same bytes: wider
    // passes where it has room (all channels at once from the wide size).
    let model = Model::from_bytes(&bytes).unwrap();
    let (e, least) = (src.len(), model.arena_bytes(n, src.len(), 1));
    let wide = model.wide_arena_bytes(n, e, 1, false);
    assert!(wide >= least);
    if tinygnn::ops::gcn::block_channels(n, oc) < oc {
        assert!(wide > least, "{n} nodes: no wider form");
    } else {
        assert_eq!(wide, least);
    }
    for arena in [
        wide,
        least + (wide - least) / 3,
        least + (wide - least) / 2 + 8,
    ] {
        let mut buf = Vec::new();
        let mut s = Session::new(&model, aligned(&mut buf, arena));
        s.run(&inp).unwrap();
        assert_eq!(
            s.output(0).unwrap().data,
            &want[..],
            "seed {seed}, arena {arena}"
        );
    }
    // Random graphs may be degenerate (no edges, no loops): check spread on the fixed ones.
    if seed < 100 {
        assert_spread(&want);
    }
}

const ALL: [GcnCfg; 6] = [
    GcnCfg {
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    },
    GcnCfg {
        improved: true,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    },
    GcnCfg {
        improved: false,
        add_self_loops: false,
        normalize: true,
        edge_weight: false,
    },
    GcnCfg {
        improved: false,
        add_self_loops: true,
        normalize: false,
        edge_weight: false,
    },
    GcnCfg {
        improved: false,
        add_self_loops: false,
        normalize: false,
        edge_weight: false,
    },
    GcnCfg {
        improved: true,
        add_self_loops: true,
        normalize: false,
        edge_weight: false,
    },
];

#[test]
fn gcn_plain_graph() {
    // A path 0-1-2-3 (both directions) plus isolated node 4.
    let src = [0u16, 1, 1, 2, 2, 3];
    let dst = [1u16, 0, 2, 1, 3, 2];
    for (k, cfg) in ALL.iter().enumerate() {
        gcn_case(k as u64 + 1, *cfg, 5, &src, &dst, None);
    }
}

#[test]
fn gcn_self_loops_duplicates_isolated() {
    // Input self-loops on 1 (twice) and 3, a duplicated edge 0→2, isolated 4 and 5.
    let src = [1u16, 0, 0, 2, 1, 3, 2, 1];
    let dst = [1u16, 2, 2, 0, 1, 3, 1, 0];
    for (k, cfg) in ALL.iter().enumerate() {
        gcn_case(k as u64 + 11, *cfg, 6, &src, &dst, None);
    }
}

#[test]
fn gcn_edge_weights() {
    let src = [1u16, 0, 0, 2, 1, 3, 2, 1, 4];
    let dst = [1u16, 2, 2, 0, 1, 3, 1, 0, 4];
    let ew = [0.5f32, 2.0, 0.25, 1.5, 3.0, 0.0, 0.75, 1.0, 0.1];
    for (k, cfg) in ALL.iter().enumerate() {
        let cfg = GcnCfg {
            edge_weight: true,
            ..*cfg
        };
        gcn_case(k as u64 + 21, cfg, 6, &src, &dst, Some(&ew));
    }
}

#[test]
fn gcn_edge_weights_given_but_unused_by_op() {
    // The model uses edge weights in one op only; a second GCN with
    // edge_weight = false must ignore them.
    let src = [0u16, 1, 2];
    let dst = [1u16, 2, 0];
    let ew = [5.0f32, 0.5, 2.0];
    gcn_case(31, ALL[0], 3, &src, &dst, Some(&ew));
}

/// Graphs large enough that GCN computes its output in several passes over
/// blocks of channels (`gcn::block_channels` below the output's width:
/// blocks of 12 and 4, 3 and 1, 2, one channel, and on a small graph with
/// a wide output 256, 256 and 8: more than a row block's 128 values), with
/// hubs of more in-edges than the unit-weight path takes, under every flag
/// set.
#[test]
fn gcn_large_graphs_in_channel_blocks() {
    let mut rng = Rng(7);
    let shapes = [
        (300usize, 16usize),
        (1100, 4),
        (1500, 7),
        (5000, 3),
        (16, 520),
    ];
    for (k, &(n, oc)) in shapes.iter().enumerate() {
        let b = tinygnn::ops::gcn::block_channels(n, oc);
        assert!(b < oc, "{n} nodes, {oc} channels: one pass of {b}");
        let e = 3 * n;
        let mut src: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let mut dst: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        // Node 0 a hub of 40 in-edges; a few input self-loops.
        dst[..40].fill(0);
        src[40..44].copy_from_slice(&[5, 6, 7, 5]);
        dst[40..44].copy_from_slice(&[5, 6, 7, 5]);
        let ew: Vec<f32> = (0..e).map(|_| rng.range(0, 400) as f32 / 100.0).collect();
        for (c, cfg) in ALL.iter().enumerate() {
            let cfg = GcnCfg {
                edge_weight: c % 2 == 1,
                ..*cfg
            };
            gcn_case_oc(200 + (k * 6 + c) as u64, cfg, n, &src, &dst, Some(&ew), oc);
        }
    }
}

#[test]
fn gcn_random_graphs() {
    let mut rng = Rng(99);
    for seed in 0..30u64 {
        let n = rng.range(1, 12) as usize;
        let e = rng.range(0, 30) as usize;
        let src: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let ew: Vec<f32> = (0..e).map(|_| rng.range(0, 400) as f32 / 100.0).collect();
        let cfg = GcnCfg {
            edge_weight: seed % 2 == 0,
            ..ALL[(seed % 6) as usize]
        };
        gcn_case(seed + 100, cfg, n, &src, &dst, Some(&ew));
    }
}

#[test]
fn gcn_hand_computed() {
    // 2 nodes, edge 0→1, 1 channel, W = [1], zp 0, bias 0, identity rescale.
    // Loops added: deg_0 = 1, deg_1 = 2. dinv_0 = 2^24, dinv_1 = isqrt(2^63) = 3037000499.
    // out_0 = h_0 · 1 = x_0; out_1 = x_1 · dinv_1² >> 40 (→ 1/2) + x_0 · dinv_0·dinv_1 >> 40 (→ 1/√2).
    let flags = GcnFlags {
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    };
    let bytes = one_channel_gcn(1.0, 1, flags, 4, 4);
    let outs = run(&bytes, &input(2, &[100, 40], &[0], &[1])).unwrap();
    // 40/2 + 100/√2 = 20 + 70.71 = 90.7 → 91 (coefficients are truncated to Q24 first).
    assert_eq!(outs[0].2, vec![100, 91]);
}

#[test]
fn float_features_are_quantized_like_quantize_value() {
    let mut w = writer();
    let x = w.add_tensor(node(2, 0.5, 3));
    let y = w.add_tensor(node(2, 0.5, 3));
    w.add_op(Op::Act(Act {
        input: x,
        output: y,
        act: Activation::Relu,
    }));
    let bytes = w.finish(x, &[y, x], 4, 4, 1).unwrap();
    let f = [0.25f32, -0.75, 100.0, -2.0];
    let inp = GraphInput::new(2, Features::F32(&f), &[], &[]);
    let outs = run(&bytes, &inp).unwrap();
    // 0.25/0.5 = 0.5 → 1 (+3 = 4); -1.5 → -2 (+3 = 1); 200 → 127 saturated; -4 → -1.
    assert_eq!(outs[1].2, vec![4, 1, 127, -1]);
    assert_eq!(outs[0].2, vec![4, 3, 127, 3]);
}
