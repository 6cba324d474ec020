//! `Propagate` (APPNP, SGConv) through the whole runtime (model bytes →
//! Session), against a reference written here from the documented integer
//! semantics (COO edge lists, i128 products, its own `dinv` and rounding),
//! plus checks that need no reference: `K = 1, α = 0` with weights is
//! bit-identical to `GcnConv`; `α = 1` and `K = 0` give `h⁰`; a graph of
//! isolated nodes is a fixed point; sparse input equals dense; arena
//! exactness; saturation instead of overflow; malformed ops.

mod common;
use common::*;
use proptest::prelude::{any, proptest, ProptestConfig};
use tinygnn::format::writer::{ChannelRecord, ModelWriter, WriteError};
use tinygnn::format::{Activation, Op, Section, PROPAGATE_ALPHA_ONE};
use tinygnn::graph::edge_weight_q16;
use tinygnn::ops::{Act, GcnConv, GlobalPool, Propagate};
use tinygnn::{Error, Features, Model};

#[derive(Clone, Debug)]
struct Prop {
    k: u8,
    alpha_q30: i32,
    in_ch: usize,
    out_ch: usize,
    /// Empty: no weights (APPNP, `in_ch = out_ch`).
    w: Vec<i8>,
    /// GCN2Conv: weights `[out_ch, in_ch]` on `x0 = relu(x)` (an `Act` op
    /// before), or empty.
    w0: Vec<i8>,
    /// TAGConv: `w` holds `K + 1` stacked `[out_ch, in_ch]` matrices.
    hops: bool,
    recs: Vec<ChannelRecord>,
    act: Activation,
    improved: bool,
    add_self_loops: bool,
    normalize: bool,
    edge_weight: bool,
    zp_x: i8,
    zp_out: i8,
}

impl Prop {
    fn random(rng: &mut Rng, weights: bool) -> Prop {
        let in_ch = rng.range(1, 6) as usize;
        let out_ch = if weights {
            rng.range(1, 5) as usize
        } else {
            in_ch
        };
        // Accumulator scale: s_x/2^16 without weights, ~s_x·s_w with; outputs ~1 step per 2^16 or ~300.
        let (bias, scale) = if weights {
            (2000, 1.0 / 300.0)
        } else {
            (1 << 18, 1.0 / 65536.0)
        };
        let alpha_q30 = match rng.next() % 5 {
            0 => 0,
            1 => PROPAGATE_ALPHA_ONE,
            _ => rng.range(1, PROPAGATE_ALPHA_ONE as i64 - 1) as i32,
        };
        Prop {
            k: rng.range(0, 12) as u8,
            alpha_q30,
            in_ch,
            out_ch,
            w: if weights {
                rng.weights(in_ch * out_ch)
            } else {
                vec![]
            },
            w0: if weights && rng.next() % 3 == 0 {
                rng.weights(in_ch * out_ch)
            } else {
                vec![]
            },
            hops: false,
            recs: records(rng, out_ch, bias, scale),
            act: [
                Activation::None,
                Activation::Relu,
                Activation::LeakyRelu { alpha_q16: 13107 },
            ][(rng.next() % 3) as usize],
            improved: rng.next() % 4 == 0,
            add_self_loops: rng.next() % 4 != 0,
            normalize: rng.next() % 5 != 0,
            edge_weight: rng.next() % 2 == 0,
            zp_x: rng.range(-20, 20) as i8,
            zp_out: rng.range(-10, 10) as i8,
        }
    }

    fn op(&self, w: &mut ModelWriter, x: u8, x0: u8, y: u8) -> Op {
        let weights = if self.w.is_empty() {
            Section::default()
        } else {
            w.add_i8(&self.w)
        };
        let weights_0 = if self.w0.is_empty() {
            Section::default()
        } else {
            w.add_i8(&self.w0)
        };
        let params = w.add_channel_params(&self.recs);
        Op::Propagate(Propagate {
            input: x,
            output: y,
            k: self.k,
            alpha_q30: self.alpha_q30,
            weights,
            x0,
            weights_0,
            params,
            act: self.act,
            improved: self.improved,
            add_self_loops: self.add_self_loops,
            normalize: self.normalize,
            edge_weight: self.edge_weight,
            hops: self.hops,
        })
    }

    fn model(&self) -> Vec<u8> {
        let mut w = writer();
        let x = w.add_tensor(node(self.in_ch as u16, 0.1, self.zp_x));
        let x0 = if self.w0.is_empty() {
            x
        } else {
            let x0 = w.add_tensor(node(self.in_ch as u16, 0.1, self.zp_x));
            w.add_op(Op::Act(Act {
                input: x,
                output: x0,
                act: Activation::Relu,
            }));
            x0
        };
        let y = w.add_tensor(node(self.out_ch as u16, 0.05, self.zp_out));
        let op = self.op(&mut w, x, x0, y);
        w.add_op(op);
        w.finish(x, &[y], 64, 256, 1).unwrap()
    }

    /// The documented semantics over a COO edge list.
    fn reference(
        &self,
        n: usize,
        x: &[i8],
        src: &[u16],
        dst: &[u16],
        ew: Option<&[f32]>,
    ) -> Vec<i8> {
        let oc = self.out_ch;
        let zp = self.zp_x as i128;
        let block =
            |k: usize| &self.w[k * self.out_ch * self.in_ch..(k + 1) * self.out_ch * self.in_ch];
        // W_k·(x_i − zp) for TAGConv's block k.
        let wx = |k: usize, i: usize| -> Vec<i128> {
            dense(
                block(k),
                self.in_ch,
                &x[i * self.in_ch..(i + 1) * self.in_ch],
                self.zp_x,
            )
            .into_iter()
            .map(i128::from)
            .collect()
        };
        let p: Vec<Vec<i128>> = if self.hops {
            (0..n).map(|i| wx(self.k as usize, i)).collect()
        } else {
            x.chunks(self.in_ch)
                .map(|r| {
                    if self.w.is_empty() {
                        r.iter().map(|&v| (v as i128 - zp) << 16).collect()
                    } else {
                        dense(&self.w, self.in_ch, r, self.zp_x)
                            .into_iter()
                            .map(i128::from)
                            .collect()
                    }
                })
                .collect()
        };
        // h⁰: p itself, or W0·(relu(x) − zp) for GCN2Conv.
        let h0: Vec<Vec<i128>> = if self.w0.is_empty() {
            p.clone()
        } else {
            x.chunks(self.in_ch)
                .map(|r| {
                    let r0: Vec<i8> = r.iter().map(|&v| v.max(self.zp_x)).collect();
                    dense(&self.w0, self.in_ch, &r0, self.zp_x)
                        .into_iter()
                        .map(i128::from)
                        .collect()
                })
                .collect()
        };
        let wq = |k: usize| -> u128 {
            match (self.edge_weight, ew) {
                (true, Some(ew)) => edge_weight_q16(ew[k]).unwrap() as u128,
                _ => 65536,
            }
        };
        // In-edges of every target in input order, then the self-loop (CSR order).
        let mut into: Vec<Vec<(usize, u128)>> = vec![vec![]; n];
        let mut loop_w = vec![if self.improved { 131072 } else { 65536 }; n];
        for k in 0..src.len() {
            let (s, t) = (src[k] as usize, dst[k] as usize);
            if self.add_self_loops && s == t {
                loop_w[s] = wq(k);
            } else {
                into[t].push((s, wq(k)));
            }
        }
        if self.add_self_loops {
            for (i, list) in into.iter_mut().enumerate() {
                list.push((i, loop_w[i]));
            }
        }
        let deg: Vec<u128> = into.iter().map(|l| l.iter().map(|e| e.1).sum()).collect();
        let dinv: Vec<u128> = deg
            .iter()
            .map(|&d| (1u128 << 64).checked_div(d).map_or(0, isqrt))
            .collect();
        let clamp32 = |v: i128| v.clamp(i32::MIN as i128, i32::MAX as i128);
        let (one, a) = (1i128 << 30, self.alpha_q30 as i128);
        let mut h = p;
        for s in 1..=self.k as usize {
            let mut next = vec![vec![0i128; oc]; n];
            for (i, list) in into.iter().enumerate() {
                for c in 0..oc {
                    let mut acc: i64 = 0;
                    for &(j, w) in list {
                        let coef = if self.normalize {
                            (dinv[j] * w * dinv[i]) >> 40
                        } else {
                            w << 8
                        };
                        assert!(coef <= i32::MAX as u128, "test model overflows");
                        acc = acc.saturating_add((coef as i128 * h[j][c]) as i64);
                    }
                    let t = clamp32(round_shift(acc as i128, 24));
                    next[i][c] = if self.hops {
                        clamp32(t + wx(self.k as usize - s, i)[c])
                    } else {
                        clamp32(round_shift(t * (one - a) + h0[i][c] * a, 30))
                    };
                }
            }
            h = next;
        }
        h.iter()
            .flat_map(|row| {
                row.iter()
                    .zip(&self.recs)
                    .map(|(&v, r)| finish(v as i64, r, self.act, self.zp_out))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn random_graph(rng: &mut Rng, n: usize, e: usize) -> (Vec<u16>, Vec<u16>, Vec<f32>) {
    let src = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
    let dst = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
    let ew = (0..e).map(|_| rng.range(1, 40) as f32 / 16.0).collect();
    (src, dst, ew)
}

fn check(p: &Prop, rng: &mut Rng, n: usize, e: usize) -> Vec<i8> {
    let (src, dst, ew) = random_graph(rng, n, e);
    let x = rng.i8s(n * p.in_ch);
    let bytes = p.model();
    let mut inp = input(n, &x, &src, &dst);
    if p.edge_weight {
        inp.edge_weight = Some(&ew);
    }
    let got = run(&bytes, &inp).unwrap();
    let want = p.reference(n, &x, &src, &dst, Some(&ew));
    assert_eq!(got[0].2, want, "{p:?}");
    want
}

#[test]
fn matches_reference_with_and_without_weights() {
    let mut rng = Rng(0xa99);
    let mut all = vec![];
    for weights in [false, true] {
        for _ in 0..40 {
            let p = Prop::random(&mut rng, weights);
            all.extend(check(&p, &mut rng, 14, 36));
        }
    }
    assert_spread(&all);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn runtime_equals_reference(seed in any::<u64>(), weights in any::<bool>(), n in 1usize..20, e in 0usize..60) {
        let mut rng = Rng(seed);
        let p = Prop::random(&mut rng, weights);
        check(&p, &mut rng, n, e);
    }
}

/// With weights, `K = 1` and `α = 0`, the op is GCNConv: same bytes as a
/// `GcnConv` op with the same weights and parameters (the normalisation is
/// shared, not copied).
#[test]
fn one_step_without_teleport_is_gcn_conv() {
    let mut rng = Rng(0x6c2);
    for _ in 0..30 {
        let mut p = Prop::random(&mut rng, true);
        p.k = 1;
        p.alpha_q30 = 0;
        p.w0.clear();
        let (src, dst, ew) = random_graph(&mut rng, 12, 30);
        let x = rng.i8s(12 * p.in_ch);
        let mut inp = input(12, &x, &src, &dst);
        inp.edge_weight = Some(&ew);
        let prop = run(&p.model(), &inp).unwrap();
        let mut w = writer();
        let xi = w.add_tensor(node(p.in_ch as u16, 0.1, p.zp_x));
        let yi = w.add_tensor(node(p.out_ch as u16, 0.05, p.zp_out));
        let weights = w.add_i8(&p.w);
        let params = w.add_channel_params(&p.recs);
        w.add_op(Op::GcnConv(GcnConv {
            input: xi,
            output: yi,
            weights,
            params,
            act: p.act,
            improved: p.improved,
            add_self_loops: p.add_self_loops,
            normalize: p.normalize,
            edge_weight: p.edge_weight,
        }));
        let gcn = run(&w.finish(xi, &[yi], 64, 256, 1).unwrap(), &inp).unwrap();
        assert_eq!(prop[0].2, gcn[0].2, "{p:?}");
    }
}

/// `α = 1` (any `K`) and `K = 0` (any `α`) both give the requantized `h⁰`.
#[test]
fn full_teleport_and_zero_steps_give_h0() {
    let mut rng = Rng(0x70);
    for weights in [false, true] {
        let mut p = Prop::random(&mut rng, weights);
        p.edge_weight = false;
        p.w0.clear();
        let (src, dst, _) = random_graph(&mut rng, 10, 25);
        let x = rng.i8s(10 * p.in_ch);
        p.k = 0;
        p.alpha_q30 = 12345;
        let base = run(&p.model(), &input(10, &x, &src, &dst)).unwrap()[0]
            .2
            .clone();
        p.k = 7;
        p.alpha_q30 = PROPAGATE_ALPHA_ONE;
        let full = run(&p.model(), &input(10, &x, &src, &dst)).unwrap()[0]
            .2
            .clone();
        assert_eq!(base, full);
        p.alpha_q30 = PROPAGATE_ALPHA_ONE / 2;
        let half = run(&p.model(), &input(10, &x, &src, &dst)).unwrap()[0]
            .2
            .clone();
        assert_ne!(base, half, "propagation over 25 edges changes something");
    }
}

/// Without edges, with self-loops and normalisation, `Â = I`: every step
/// gives back `h`, so the output is the same for every `K` and `α`.
#[test]
fn isolated_nodes_are_a_fixed_point() {
    let mut rng = Rng(0x15);
    let mut p = Prop::random(&mut rng, false);
    p.add_self_loops = true;
    p.normalize = true;
    p.improved = false;
    p.edge_weight = false;
    let x = rng.i8s(6 * p.in_ch);
    p.k = 0;
    let want = run(&p.model(), &input(6, &x, &[], &[])).unwrap()[0]
        .2
        .clone();
    for (k, a) in [(1, 0), (10, 1 << 29), (255, 107374182)] {
        p.k = k;
        p.alpha_q30 = a;
        assert_eq!(run(&p.model(), &input(6, &x, &[], &[])).unwrap()[0].2, want);
    }
}

/// SGConv-style ops read sparse features in place: same bytes as dense.
#[test]
fn sparse_input_equals_dense() {
    let mut rng = Rng(0x5a);
    let mut p = Prop::random(&mut rng, true);
    p.edge_weight = false;
    p.w0.clear();
    let n = 9;
    let (src, dst, _) = random_graph(&mut rng, n, 20);
    let mut x = vec![p.zp_x; n * p.in_ch];
    let (mut row_ptr, mut cols, mut vals) = (vec![0u32], vec![], vec![]);
    for i in 0..n {
        for c in 0..p.in_ch {
            if rng.next() % 3 == 0 {
                let v = rng.i8();
                if v != p.zp_x {
                    x[i * p.in_ch + c] = v;
                    cols.push(c as u16);
                    vals.push(v);
                }
            }
        }
        row_ptr.push(cols.len() as u32);
    }
    let bytes = p.model();
    assert!(Model::from_bytes(&bytes).unwrap().reads_sparse_input());
    let dense_out = run(&bytes, &input(n, &x, &src, &dst)).unwrap();
    let mut sparse = input(n, &x, &src, &dst);
    sparse.features = Features::SparseI8 {
        row_ptr: &row_ptr,
        cols: &cols,
        values: &vals,
    };
    assert_eq!(run(&bytes, &sparse).unwrap(), dense_out);
}

/// Without normalisation and with heavy edge weights the values explode:
/// they saturate (i64 sums, i32 steps) instead of overflowing, as documented.
#[test]
fn unnormalised_growth_saturates() {
    let mut rng = Rng(0x5a7);
    let mut p = Prop::random(&mut rng, false);
    p.normalize = false;
    p.edge_weight = true;
    p.k = 40;
    p.alpha_q30 = 0;
    let n = 8;
    let src: Vec<u16> = (0..n as u16).flat_map(|i| [i, i]).collect();
    let dst: Vec<u16> = (0..n as u16)
        .flat_map(|i| [(i + 1) % 8, (i + 3) % 8])
        .collect();
    // w << 8 must stay below 2^31 (else Error::Overflow, as documented): w = 100.
    let ew = vec![100.0f32; src.len()];
    let x = vec![p.zp_x.saturating_add(3); n * p.in_ch];
    let mut inp = input(n, &x, &src, &dst);
    inp.edge_weight = Some(&ew);
    let got = run(&p.model(), &inp).unwrap();
    assert_eq!(got[0].2, p.reference(n, &x, &src, &dst, Some(&ew)));
    // A weight whose coefficient exceeds i32::MAX is an error, not a wrap.
    let big = vec![200.0f32; src.len()];
    inp.edge_weight = Some(&big);
    assert_eq!(run(&p.model(), &inp), Err(Error::Overflow { op: 0 }));
}

#[test]
fn arena_bytes_counts_propagate_scratch_exactly() {
    let mut rng = Rng(3);
    let r8 = |x: usize| x.div_ceil(8) * 8;
    let (n, e) = (10, 20);
    for (weights, alpha) in [(false, 0), (false, 5), (true, 0), (true, 5)] {
        let mut p = Prop::random(&mut rng, weights);
        p.alpha_q30 = alpha;
        p.edge_weight = false;
        p.w0.clear();
        let m_bytes = p.model();
        let m = Model::from_bytes(&m_bytes).unwrap();
        let (ic, oc) = (p.in_ch, p.out_ch);
        let graph = r8(4 * (n + 1)) + r8(2 * e) + r8(4);
        let slots = r8(n * ic) + r8(n * oc);
        let planes = if weights && alpha != 0 { 3 } else { 2 };
        let scratch = r8(4 * oc) + planes * r8(4 * n * oc) + r8(8 * n) + r8(8 * oc);
        assert_eq!(m.arena_bytes(n, e, 1), graph + slots + scratch, "{p:?}");
    }
}

fn malformed(
    f: impl Fn(&mut Op),
    weights: bool,
    out_ch: u16,
    graph_out: bool,
) -> Result<(), Error> {
    let mut rng = Rng(9);
    let mut p = Prop::random(&mut rng, weights);
    p.in_ch = 3;
    p.out_ch = out_ch as usize;
    p.w0.clear();
    if weights {
        p.w = rng.weights(3 * p.out_ch);
    }
    p.recs = records(&mut rng, out_ch as usize, 100, 0.01);
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let y = w.add_tensor(if graph_out {
        graph(out_ch, 0.1, 0)
    } else {
        node(out_ch, 0.1, 0)
    });
    let mut op = p.op(&mut w, x, x, y);
    f(&mut op);
    w.add_op(op);
    match w.finish(x, &[y], 8, 8, 1) {
        Ok(bytes) => Model::from_bytes(&bytes).map(|_| ()),
        Err(WriteError::Invalid(e)) => Err(e),
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn malformed_propagate_ops_are_invalid_op_errors() {
    let bad = Err(Error::InvalidOp { op: 0 });
    assert!(malformed(|_| {}, false, 3, false).is_ok());
    assert!(malformed(|_| {}, true, 2, false).is_ok());
    let set_alpha = |a: i32| {
        move |op: &mut Op| {
            if let Op::Propagate(Propagate { alpha_q30, .. }) = op {
                *alpha_q30 = a;
            }
        }
    };
    assert_eq!(malformed(set_alpha(-1), false, 3, false), bad);
    assert_eq!(
        malformed(set_alpha(PROPAGATE_ALPHA_ONE + 1), false, 3, false),
        bad
    );
    assert_eq!(malformed(set_alpha(i32::MIN), false, 3, false), bad);
    assert!(malformed(set_alpha(PROPAGATE_ALPHA_ONE), false, 3, false).is_ok());
    // No weights: the output must have the input's channel count.
    assert_eq!(malformed(|_| {}, false, 4, false), bad);
    // Node tensors only.
    assert_eq!(malformed(|_| {}, false, 3, true), bad);
    // A weight section of the wrong size, and params of the wrong size.
    assert_eq!(
        malformed(
            |op| {
                if let Op::Propagate(Propagate { weights, .. }) = op {
                    weights.len -= 1;
                }
            },
            true,
            3,
            false
        ),
        bad
    );
    assert_eq!(
        malformed(
            |op| {
                if let Op::Propagate(Propagate { params, .. }) = op {
                    params.len += 4;
                }
            },
            false,
            3,
            false
        ),
        bad
    );
}

/// GCN2Conv form (`weights_0` on a second input `x0`) against the reference.
#[test]
fn gcn2_form_matches_reference() {
    let mut rng = Rng(0x6c22);
    let mut all = vec![];
    for _ in 0..40 {
        let mut p = Prop::random(&mut rng, true);
        p.k = 1;
        p.w0 = rng.weights(p.in_ch * p.out_ch);
        all.extend(check(&p, &mut rng, 14, 36));
    }
    assert_spread(&all);
}

/// `x0` / `weights_0` rules: `weights_0` needs weights, a node tensor `x0` of
/// its width; without `weights_0`, `x0` must be the input.
#[test]
fn malformed_gcn2_fields_are_invalid_op_errors() {
    let build = |x0_graph: bool, w0_len: usize, with_w: bool, x0_is_input: bool| {
        let mut w = writer();
        let x = w.add_tensor(node(3, 0.1, 0));
        let x0 = w.add_tensor(if x0_graph {
            graph(3, 0.1, 0)
        } else {
            node(3, 0.1, 0)
        });
        w.add_op(if x0_graph {
            Op::GlobalPool(GlobalPool {
                input: x,
                output: x0,
                pool: tinygnn::format::Pool::Max,
                mult: 0,
                shift: 0,
            })
        } else {
            Op::Act(Act {
                input: x,
                output: x0,
                act: Activation::Relu,
            })
        });
        let y = w.add_tensor(node(2, 0.1, 0));
        let weights = if with_w {
            w.add_i8(&[1; 6])
        } else {
            Section::default()
        };
        let weights_0 = if w0_len > 0 {
            w.add_i8(&vec![1; w0_len])
        } else {
            Section::default()
        };
        let params = w.add_channel_params(&records(&mut Rng(1), 2, 10, 0.01));
        w.add_op(Op::Propagate(Propagate {
            input: x,
            output: y,
            k: 1,
            alpha_q30: 1 << 27,
            weights,
            x0: if x0_is_input { x } else { x0 },
            weights_0,
            params,
            act: Activation::None,
            improved: false,
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
            hops: false,
        }));
        match w.finish(x, &[y], 8, 8, 1) {
            Ok(bytes) => Model::from_bytes(&bytes).map(|_| ()),
            Err(WriteError::Invalid(e)) => Err(e),
            Err(other) => panic!("{other:?}"),
        }
    };
    let bad = Err(Error::InvalidOp { op: 1 });
    assert_eq!(build(false, 6, true, false), Ok(()));
    assert_eq!(build(false, 6, true, true), Ok(())); // x0 = the input itself, with its own W0
    assert_eq!(build(false, 6, false, false), bad); // weights_0 without weights
    assert_eq!(build(false, 5, true, false), bad); // weights_0 of the wrong size
    assert_eq!(build(false, 0, true, false), bad); // x0 ≠ input without weights_0
    assert_eq!(build(true, 6, true, false), bad); // x0 graph-level
}

/// TAGConv form (`hops`: Horner over `K + 1` stacked matrices) against the
/// reference; and `hops` with a teleport or `weights_0`, or a weight section
/// not holding `K + 1` matrices, is invalid.
#[test]
fn tag_form_matches_reference_and_is_validated() {
    let mut rng = Rng(0x7a6);
    let mut all = vec![];
    for _ in 0..40 {
        let mut p = Prop::random(&mut rng, true);
        p.hops = true;
        p.alpha_q30 = 0;
        p.w0.clear();
        p.add_self_loops = rng.next() % 2 == 0;
        p.w = rng.weights((p.k as usize + 1) * p.out_ch * p.in_ch);
        all.extend(check(&p, &mut rng, 14, 36));
    }
    assert_spread(&all);
    let mut p = Prop::random(&mut rng, true);
    p.hops = true;
    p.w0.clear();
    p.k = 2;
    p.w = rng.weights(3 * p.out_ch * p.in_ch);
    p.alpha_q30 = 0;
    assert!(Model::from_bytes(&p.model()).is_ok());
    let bad = Err(Error::InvalidOp { op: 0 });
    let mut q = p.clone();
    q.w.truncate(2 * p.out_ch * p.in_ch); // K matrices instead of K + 1
    let mut w = writer();
    let x = w.add_tensor(node(q.in_ch as u16, 0.1, q.zp_x));
    let y = w.add_tensor(node(q.out_ch as u16, 0.05, q.zp_out));
    let op = q.op(&mut w, x, x, y);
    w.add_op(op);
    let res = match w.finish(x, &[y], 64, 256, 1) {
        Ok(b) => Model::from_bytes(&b).map(|_| ()),
        Err(WriteError::Invalid(e)) => Err(e),
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(res, bad);
    let mut w = writer();
    let x = w.add_tensor(node(p.in_ch as u16, 0.1, p.zp_x));
    let y = w.add_tensor(node(p.out_ch as u16, 0.05, p.zp_out));
    let mut op = p.op(&mut w, x, x, y);
    if let Op::Propagate(Propagate { alpha_q30, .. }) = &mut op {
        *alpha_q30 = 5;
    }
    w.add_op(op);
    let res = match w.finish(x, &[y], 64, 256, 1) {
        Ok(b) => Model::from_bytes(&b).map(|_| ()),
        Err(WriteError::Invalid(e)) => Err(e),
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(res, bad);
}
