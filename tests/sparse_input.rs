//! Sparse features read in place by the first layer (`Model::reads_sparse_input`):
//! the same output bytes as the dense input for every op that can read them
//! (Linear, GcnConv, SageConv sum/mean, GatConv and GATv2) and for the models that fall back to
//! expanding them (GIN first, SAGE max, input also an output, concat of the
//! input), an exact `Model::arena_bytes_sparse` (one byte less is
//! `ArenaTooSmall`) that drops exactly the input slot when read in place, and
//! every bundled model.

mod common;

use common::*;
use tinygnn::format::{Activation, Aggr, ConcatPart, Op};
use tinygnn::ops::{Add, Concat, GatConv, GcnConv, GinAggregate, Linear, SageConv};
use tinygnn::{Error, Features, GraphInput, Model, Session};

const F: u16 = 40;
const ZP: i8 = -20;

fn r8(x: usize) -> usize {
    x.div_ceil(8) * 8
}

/// Sparse CSR of the entries of `dense` that differ from `zp`.
fn to_sparse(dense: &[i8], f: usize, zp: i8) -> (Vec<u32>, Vec<u16>, Vec<i8>) {
    let (mut row_ptr, mut cols, mut values) = (vec![0u32], vec![], vec![]);
    for row in dense.chunks(f) {
        for (c, &v) in row.iter().enumerate() {
            if v != zp {
                cols.push(c as u16);
                values.push(v);
            }
        }
        row_ptr.push(cols.len() as u32);
    }
    (row_ptr, cols, values)
}

/// Like `common::run` for sparse features: runs with exactly
/// `arena_bytes_sparse` bytes, checks one byte less is `ArenaTooSmall` with
/// the exact need, and returns every output.
/// One step of a recurrent model from the zero state, in its exact arena
/// (sparse or dense): every output, then the next state.
fn step(model: &Model<'_>, input: &GraphInput) -> Vec<(usize, usize, Vec<i8>)> {
    let (n, e, g) = (input.num_nodes, input.sources.len(), input.num_graphs());
    let need = match input.features {
        Features::SparseI8 { .. } => model.arena_bytes_sparse(n, e, g),
        _ => model.arena_bytes(n, e, g),
    };
    let zp = model.state_desc().unwrap().zero_point;
    let mut state = vec![zp; model.state_bytes(n)];
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, need);
    let mut s = Session::new(model, arena);
    s.run_step(input, &mut state).unwrap();
    let mut outs: Vec<_> = (0..model.outputs().len())
        .map(|i| {
            let o = s.output(i).unwrap();
            (o.rows, o.channels, o.data.to_vec())
        })
        .collect();
    outs.push((n, state.len() / n.max(1), state));
    outs
}

fn run_sparse(bytes: &[u8], input: &GraphInput) -> Vec<(usize, usize, Vec<i8>)> {
    let model = Model::from_bytes(bytes).unwrap();
    let need = model.arena_bytes_sparse(input.num_nodes, input.sources.len(), input.num_graphs());
    let mut buf = Vec::new();
    let outs = {
        let arena = aligned(&mut buf, need);
        let mut s = Session::new(&model, arena);
        s.run(input).unwrap();
        (0..model.outputs().len())
            .map(|i| {
                let o = s.output(i).unwrap();
                (o.rows, o.channels, o.data.to_vec())
            })
            .collect::<Vec<_>>()
    };
    let arena = aligned(&mut buf, need - 1);
    let mut s = Session::new(&model, arena);
    match s.run(input) {
        Err(Error::ArenaTooSmall { needed, actual }) => {
            assert_eq!((needed as usize, actual as usize), (need, need - 1));
        }
        other => panic!("expected ArenaTooSmall, got {:?}", other.map(|o| o.rows)),
    }
    outs
}

/// A random graph of `n` nodes with features ~`pct` % different from the zero point.
struct Case {
    n: usize,
    dense: Vec<i8>,
    src: Vec<u16>,
    dst: Vec<u16>,
    sparse: (Vec<u32>, Vec<u16>, Vec<i8>),
}

fn case(seed: u64, n: usize, f: usize, zp: i8, pct: u64, e: usize) -> Case {
    let mut rng = Rng(seed);
    let dense: Vec<i8> = (0..n * f)
        .map(|_| if rng.next() % 100 < pct { rng.i8() } else { zp })
        .collect();
    let (src, dst): (Vec<u16>, Vec<u16>) = (0..e)
        .map(|_| {
            (
                (rng.next() % n as u64) as u16,
                (rng.next() % n as u64) as u16,
            )
        })
        .unzip();
    let sparse = to_sparse(&dense, f, zp);
    Case {
        n,
        dense,
        src,
        dst,
        sparse,
    }
}

impl Case {
    fn dense_input(&self) -> GraphInput<'_> {
        input(self.n, &self.dense, &self.src, &self.dst)
    }
    fn sparse_input(&self) -> GraphInput<'_> {
        let mut input = self.dense_input();
        input.features = Features::SparseI8 {
            row_ptr: &self.sparse.0,
            cols: &self.sparse.1,
            values: &self.sparse.2,
        };
        input
    }
}

fn gcn(
    input: u8,
    output: u8,
    weights: tinygnn::format::Section,
    params: tinygnn::format::ChannelParams,
) -> Op {
    Op::GcnConv(GcnConv {
        input,
        output,
        weights,
        params,
        act: Activation::Relu,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    })
}

/// The test models, each with whether it reads sparse input in place.
fn models() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut rng = Rng(5);
    let lin = |w: &mut tinygnn::format::writer::ModelWriter, i: usize, o: usize, rng: &mut Rng| {
        (
            w.add_i8(&rng.weights(i * o)),
            w.add_channel_params(&records(rng, o, 300, 0.004)),
        )
    };

    // GCN → Linear.
    let mut w = writer();
    let x = w.add_tensor(node(F, 0.05, ZP));
    let h = w.add_tensor(node(6, 0.1, -5));
    let y = w.add_tensor(node(3, 0.1, 2));
    let (wa, pa) = lin(&mut w, F as usize, 6, &mut rng);
    w.add_op(gcn(x, h, wa, pa));
    let (wb, pb) = lin(&mut w, 6, 3, &mut rng);
    w.add_op(Op::Linear(Linear {
        input: h,
        output: y,
        weights: wb,
        params: pb,
        act: Activation::None,
    }));
    out.push((
        "gcn-linear",
        w.finish(x, &[y], 4096, 16384, 1).unwrap(),
        true,
    ));

    // Linear first (node rows), then GCN.
    let mut w = writer();
    let x = w.add_tensor(node(F, 0.05, ZP));
    let h = w.add_tensor(node(7, 0.1, 4));
    let y = w.add_tensor(node(4, 0.1, 0));
    let (wa, pa) = lin(&mut w, F as usize, 7, &mut rng);
    w.add_op(Op::Linear(Linear {
        input: x,
        output: h,
        weights: wa,
        params: pa,
        act: Activation::Relu,
    }));
    let (wb, pb) = lin(&mut w, 7, 4, &mut rng);
    w.add_op(gcn(h, y, wb, pb));
    out.push((
        "linear-gcn",
        w.finish(x, &[y], 4096, 16384, 1).unwrap(),
        true,
    ));

    // SAGE with each aggregation, with and without root weight, one normalised.
    for (aggr, root, normalize, direct) in [
        (Aggr::Sum, true, false, true),
        (Aggr::Mean, true, false, true),
        (Aggr::Mean, false, false, true),
        (Aggr::Mean, true, true, true),
        (Aggr::Max, true, false, false),
    ] {
        let mut w = writer();
        let x = w.add_tensor(node(F, 0.05, ZP));
        let y = w.add_tensor(node(5, 0.1, if normalize { 0 } else { -3 }));
        let (wl, params) = lin(&mut w, F as usize, 5, &mut rng);
        let wr = if root {
            w.add_i8(&rng.weights(F as usize * 5))
        } else {
            w.add_i8(&[])
        };
        w.add_op(Op::SageConv(SageConv {
            input: x,
            output: y,
            aggr,
            weights_l: wl,
            weights_r: wr,
            params,
            act: Activation::None,
            normalize,
        }));
        let name = match (aggr, root, normalize) {
            (Aggr::Sum, _, _) => "sage-sum",
            (Aggr::Mean, true, false) => "sage-mean",
            (Aggr::Mean, false, _) => "sage-mean-noroot",
            (Aggr::Mean, true, true) => "sage-mean-normalize",
            _ => "sage-max (expanded)",
        };
        out.push((name, w.finish(x, &[y], 4096, 16384, 1).unwrap(), direct));
    }

    // GAT and GATv2 first (2 heads of 3 channels, concatenated), then a
    // Linear: the projection rows are recomputed from the sparse rows.
    for v2 in [false, true] {
        let mut w = writer();
        let x = w.add_tensor(node(F, 0.05, ZP));
        let h = w.add_tensor(node(6, 0.1, -7));
        let y = w.add_tensor(node(3, 0.1, 1));
        let (heads, hc) = (2usize, 6usize);
        let wl = w.add_i8(&rng.weights(F as usize * hc));
        let wr = if v2 {
            w.add_i8(&rng.weights(F as usize * hc))
        } else {
            w.add_i8(&[])
        };
        let lin_bias: Vec<u8> = if v2 {
            (0..2 * hc)
                .flat_map(|_| (rng.range(-3000, 3000) as i32).to_le_bytes())
                .collect()
        } else {
            vec![]
        };
        let natt = if v2 { hc } else { 2 * hc };
        let att: Vec<u8> = (0..natt)
            .flat_map(|_| (rng.range(-900, 900) as i16).to_le_bytes())
            .collect();
        let (m, sh) = tinygnn::quant::quantize_multiplier(1.0 / 4096.0);
        let logit: Vec<u8> = (0..heads * if v2 { 1 } else { 2 })
            .flat_map(|_| [m, sh])
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let params = w.add_channel_params(&records(&mut rng, hc, 300, 0.004));
        let sec = |w: &mut tinygnn::format::writer::ModelWriter, b: &[u8]| {
            if b.is_empty() {
                tinygnn::format::Section::default()
            } else {
                w.add_bytes(b)
            }
        };
        let lin_bias = sec(&mut w, &lin_bias);
        let att = sec(&mut w, &att);
        let logit = sec(&mut w, &logit);
        w.add_op(Op::GatConv(GatConv {
            input: x,
            output: h,
            heads: heads as u8,
            concat: true,
            v2,
            add_self_loops: true,
            negative_slope_q16: 13107,
            weights: wl,
            weights_r: wr,
            lin_bias,
            att,
            logit,
            params,
            act: Activation::Relu,
            edge: None,
        }));
        let (wb, pb) = lin(&mut w, hc, 3, &mut rng);
        w.add_op(Op::Linear(Linear {
            input: h,
            output: y,
            weights: wb,
            params: pb,
            act: Activation::None,
        }));
        let name = if v2 { "gatv2-linear" } else { "gat-linear" };
        out.push((name, w.finish(x, &[y], 4096, 16384, 1).unwrap(), true));
    }

    // Two readers of the input (GCN and Linear), added.
    let mut w = writer();
    let x = w.add_tensor(node(F, 0.05, ZP));
    let a = w.add_tensor(node(5, 0.1, 1));
    let b = w.add_tensor(node(5, 0.1, -1));
    let y = w.add_tensor(node(5, 0.1, 0));
    let (wa, pa) = lin(&mut w, F as usize, 5, &mut rng);
    w.add_op(gcn(x, a, wa, pa));
    let (wb, pb) = lin(&mut w, F as usize, 5, &mut rng);
    w.add_op(Op::Linear(Linear {
        input: x,
        output: b,
        weights: wb,
        params: pb,
        act: Activation::None,
    }));
    w.add_op(Op::Add(Add {
        a,
        b,
        output: y,
        mult_a_q16: 40000,
        mult_b_q16: 30000,
        act: Activation::None,
    }));
    out.push((
        "two-readers",
        w.finish(x, &[y], 4096, 16384, 1).unwrap(),
        true,
    ));

    // Fallbacks: GIN reads the input; the input is also an output; concat reads it.
    let mut w = writer();
    let x = w.add_tensor(node(F, 0.05, ZP));
    let g = w.add_tensor(node(F, 0.2, ZP));
    let y = w.add_tensor(node(4, 0.1, 0));
    w.add_op(Op::GinAggregate(GinAggregate {
        input: x,
        output: g,
        one_plus_eps_q16: 1 << 16,
        mult: 1 << 30,
        shift: -2,
    }));
    let (wa, pa) = lin(&mut w, F as usize, 4, &mut rng);
    w.add_op(Op::Linear(Linear {
        input: g,
        output: y,
        weights: wa,
        params: pa,
        act: Activation::None,
    }));
    out.push((
        "gin-first (expanded)",
        w.finish(x, &[y], 4096, 16384, 1).unwrap(),
        false,
    ));

    let mut w = writer();
    let x = w.add_tensor(node(F, 0.05, ZP));
    let y = w.add_tensor(node(4, 0.1, 0));
    let (wa, pa) = lin(&mut w, F as usize, 4, &mut rng);
    w.add_op(gcn(x, y, wa, pa));
    out.push((
        "input-is-output (expanded)",
        w.finish(x, &[y, x], 4096, 16384, 1).unwrap(),
        false,
    ));

    let mut w = writer();
    let x = w.add_tensor(node(F, 0.05, ZP));
    let h = w.add_tensor(node(4, 0.1, 0));
    let y = w.add_tensor(node(F + 4, 0.1, 0));
    let (wa, pa) = lin(&mut w, F as usize, 4, &mut rng);
    w.add_op(gcn(x, h, wa, pa));
    w.add_op(Op::Concat(Concat {
        parts: [
            ConcatPart {
                input: h,
                mult_q16: 1 << 16,
            },
            ConcatPart {
                input: x,
                mult_q16: 30000,
            },
        ]
        .into_iter()
        .collect(),
        output: y,
    }));
    out.push((
        "concat-input (expanded)",
        w.finish(x, &[y], 4096, 16384, 1).unwrap(),
        false,
    ));
    out
}

#[test]
fn sparse_input_gives_the_dense_bytes_with_an_exact_arena() {
    for (name, bytes, direct) in models() {
        let m = Model::from_bytes(&bytes).unwrap();
        assert_eq!(m.reads_sparse_input(), direct, "{name}");
        for (seed, n, pct, e) in [
            (1, 30, 3, 90),
            (2, 200, 1, 700),
            (3, 17, 40, 40),
            (4, 1, 0, 0),
            (5, 0, 0, 0),
            (6, 64, 100, 300),
            // Large enough that GCN and SAGE layers run in passes over
            // channel blocks (one channel at a time).
            (7, 3000, 2, 9000),
        ] {
            let c = case(seed, n, F as usize, ZP, pct, e);
            let want = run(&bytes, &c.dense_input()).unwrap();
            let got = run_sparse(&bytes, &c.sparse_input());
            assert_eq!(got, want, "{name} seed {seed}");
            if n >= 30 && pct < 50 {
                for o in &got {
                    assert_spread(&o.2);
                }
            }
            let (dense_need, sparse_need) = (m.arena_bytes(n, e, 1), m.arena_bytes_sparse(n, e, 1));
            if direct {
                // The input slot (kept, never shared) is the only difference.
                assert_eq!(sparse_need, dense_need - r8(n * F as usize), "{name} n={n}");
            } else {
                assert_eq!(sparse_need, dense_need, "{name} n={n}");
            }
        }
    }
}

#[test]
fn one_session_alternates_sparse_and_dense_inputs() {
    for (name, bytes, _) in models() {
        let m = Model::from_bytes(&bytes).unwrap();
        let c = case(11, 50, F as usize, ZP, 5, 120);
        let want = run(&bytes, &c.dense_input()).unwrap();
        let mut buf = Vec::new();
        let arena = aligned(&mut buf, m.arena_bytes(50, 120, 1));
        let mut s = Session::new(&m, arena);
        for k in 0..4 {
            let inp = if k % 2 == 0 {
                c.sparse_input()
            } else {
                c.dense_input()
            };
            let out = s.run(&inp).unwrap();
            assert_eq!(out.data, &want[0].2[..], "{name} run {k}");
            for (i, w) in want.iter().enumerate() {
                assert_eq!(
                    s.output(i).unwrap().data,
                    &w.2[..],
                    "{name} run {k} output {i}"
                );
            }
        }
    }
}

#[test]
fn sparse_errors_are_still_typed() {
    let (_, bytes, _) = models().remove(0);
    let c = case(3, 10, F as usize, ZP, 10, 20);
    // Column out of range, in a model that reads sparse input in place.
    let cols: Vec<u16> = c.sparse.1.iter().map(|_| F).collect();
    let mut bad = c.dense_input();
    bad.features = Features::SparseI8 {
        row_ptr: &c.sparse.0,
        cols: &cols,
        values: &c.sparse.2,
    };
    let m = Model::from_bytes(&bytes).unwrap();
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, m.arena_bytes(10, 20, 1));
    let mut s = Session::new(&m, arena);
    assert!(matches!(
        s.run(&bad),
        Err(Error::InvalidSparseFeatures { .. })
    ));
    assert!(s.output(0).is_none());
}

/// Every bundled model (`models/*/*.tgnn`): random bag-of-words-like sparse
/// inputs give the same bytes as their dense form.
#[test]
fn every_bundled_model_sparse_equals_dense() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut seen = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let path = dir.join(format!("{name}.tgnn"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let m = Model::from_bytes(&bytes).unwrap();
        let f = m.input_desc().channels as usize;
        let zp = m.input_desc().zero_point;
        let (max_n, max_e, _) = m.capacity();
        let n = (max_n as usize).min(120);
        let e = (max_e as usize).min(4 * n);
        // ~2 % of entries set, at least one per row on average for small F.
        let pct = if f > 200 { 2 } else { 20 };
        let c = case(17 + seen, n, f, zp, pct, e);
        let mut weights = None;
        let ones = vec![1.0f32; e];
        if m.uses_edge_weight() {
            weights = Some(&ones[..]);
        }
        // A pair head (cora-link) scores its full pair capacity, where
        // `arena_bytes` and `arena_bytes_sparse` are exact.
        let p = if n > 0 { m.max_pairs() as usize } else { 0 };
        let ps: Vec<u16> = (0..p).map(|k| (k % n.max(1)) as u16).collect();
        let pt: Vec<u16> = (0..p).map(|k| ((7 * k + 3) % n.max(1)) as u16).collect();
        let pairs = Some(tinygnn::NodePairs {
            sources: &ps,
            targets: &pt,
        });
        let mut dense = c.dense_input();
        dense.edge_weight = weights;
        dense.pairs = pairs;
        let mut sparse = c.sparse_input();
        sparse.edge_weight = weights;
        sparse.pairs = pairs;
        let (want, got) = if m.state().is_some() {
            // A recurrent cell: one step from the zero state each way (the
            // next state compared too).
            (step(&m, &dense), step(&m, &sparse))
        } else {
            (run(&bytes, &dense).unwrap(), run_sparse(&bytes, &sparse))
        };
        assert_eq!(got, want, "{name}");
        eprintln!(
            "{name}: {n} nodes, {} stored of {} features: same bytes; arena {} → {} bytes (read in place: {})",
            c.sparse.2.len(),
            n * f,
            m.arena_bytes(n, e, 1),
            m.arena_bytes_sparse(n, e, 1),
            m.reads_sparse_input()
        );
        seen += 1;
    }
    assert!(seen >= 4, "expected the bundled models, found {seen}");
}
