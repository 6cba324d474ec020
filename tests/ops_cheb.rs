//! `ChebConv` through the whole runtime (model bytes → Session), against a
//! reference written here from the documented integer semantics (COO edge
//! lists, self-loops dropped, degrees over the source index, i128 products,
//! its own `dinv` and rounding), plus: on a symmetric graph without
//! self-loops it is bit-identical to `Propagate`'s TAGConv form (in- and
//! out-degrees agree there); sparse input equals dense; arena exactness;
//! malformed ops are typed errors.

mod common;
use common::*;
use proptest::prelude::{any, proptest, ProptestConfig};
use tinygnn::format::writer::{ChannelRecord, ModelWriter, WriteError};
use tinygnn::format::{Activation, Op, Section};
use tinygnn::graph::edge_weight_q16;
use tinygnn::ops::{ChebConv, Propagate};
use tinygnn::{Error, Features, Model};

#[derive(Clone, Debug)]
struct Cheb {
    /// Number of matrices `K`.
    k: u8,
    in_ch: usize,
    out_ch: usize,
    /// `K` stacked `[out_ch, in_ch]` matrices `M_0 … M_{K−1}`.
    w: Vec<i8>,
    recs: Vec<ChannelRecord>,
    act: Activation,
    edge_weight: bool,
    zp_x: i8,
    zp_out: i8,
}

impl Cheb {
    fn random(rng: &mut Rng) -> Cheb {
        let in_ch = rng.range(1, 6) as usize;
        let out_ch = rng.range(1, 5) as usize;
        let k = rng.range(1, 5) as u8;
        Cheb {
            k,
            in_ch,
            out_ch,
            w: rng.weights(k as usize * in_ch * out_ch),
            recs: records(rng, out_ch, 2000, 1.0 / 300.0),
            act: [
                Activation::None,
                Activation::Relu,
                Activation::LeakyRelu { alpha_q16: 13107 },
            ][(rng.next() % 3) as usize],
            edge_weight: rng.next() % 2 == 0,
            zp_x: rng.range(-20, 20) as i8,
            zp_out: rng.range(-10, 10) as i8,
        }
    }

    fn op(&self, w: &mut ModelWriter, x: u8, y: u8) -> Op {
        let weights = w.add_i8(&self.w);
        let params = w.add_channel_params(&self.recs);
        Op::ChebConv(ChebConv {
            input: x,
            output: y,
            k: self.k,
            weights,
            params,
            act: self.act,
            edge_weight: self.edge_weight,
        })
    }

    fn model(&self) -> Vec<u8> {
        let mut w = writer();
        let x = w.add_tensor(node(self.in_ch as u16, 0.1, self.zp_x));
        let y = w.add_tensor(node(self.out_ch as u16, 0.05, self.zp_out));
        let op = self.op(&mut w, x, y);
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
        let (ic, oc) = (self.in_ch, self.out_ch);
        let wx = |m: usize, i: usize| -> Vec<i128> {
            dense(
                &self.w[m * oc * ic..(m + 1) * oc * ic],
                ic,
                &x[i * ic..(i + 1) * ic],
                self.zp_x,
            )
            .into_iter()
            .map(i128::from)
            .collect()
        };
        let wq = |k: usize| -> u128 {
            match (self.edge_weight, ew) {
                (true, Some(ew)) => edge_weight_q16(ew[k]).unwrap() as u128,
                _ => 65536,
            }
        };
        // In-edges of every target, in input order, without self-loops;
        // degrees summed over the source.
        let mut into: Vec<Vec<(usize, u128)>> = vec![vec![]; n];
        let mut deg = vec![0u128; n];
        for k in 0..src.len() {
            let (s, t) = (src[k] as usize, dst[k] as usize);
            if s != t {
                into[t].push((s, wq(k)));
                deg[s] += wq(k);
            }
        }
        let dinv: Vec<u128> = deg
            .iter()
            .map(|&d| (1u128 << 64).checked_div(d).map_or(0, isqrt))
            .collect();
        let clamp32 = |v: i128| v.clamp(i32::MIN as i128, i32::MAX as i128);
        let kk = self.k as usize;
        let mut h: Vec<Vec<i128>> = (0..n).map(|i| wx(kk - 1, i)).collect();
        for s in 1..kk {
            let mut next = vec![vec![0i128; oc]; n];
            for (i, list) in into.iter().enumerate() {
                let add = wx(kk - 1 - s, i);
                for c in 0..oc {
                    let mut acc: i64 = 0;
                    for &(j, w) in list {
                        let coef = (dinv[j] * w * dinv[i]) >> 40;
                        assert!(coef <= i32::MAX as u128, "test model overflows");
                        acc = acc.saturating_add((coef as i128 * h[j][c]) as i64);
                    }
                    next[i][c] = clamp32(clamp32(round_shift(acc as i128, 24)) + add[c]);
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

fn check(p: &Cheb, rng: &mut Rng, n: usize, e: usize) -> Vec<i8> {
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

/// Directed random graphs with self-loops and duplicates: the degree over
/// the source index and the dropped loops both matter.
#[test]
fn matches_reference() {
    let mut rng = Rng(0xc4eb);
    let mut all = vec![];
    for _ in 0..60 {
        let p = Cheb::random(&mut rng);
        all.extend(check(&p, &mut rng, 14, 36));
    }
    assert_spread(&all);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn runtime_equals_reference(seed in any::<u64>(), n in 1usize..20, e in 0usize..60) {
        let mut rng = Rng(seed);
        let p = Cheb::random(&mut rng);
        check(&p, &mut rng, n, e);
    }
}

/// On a symmetric graph without self-loops (in-degree = out-degree), the op
/// equals `Propagate`'s TAGConv form (no self-loops) with the same matrices.
#[test]
fn symmetric_graph_equals_tag_form() {
    let mut rng = Rng(0x5e7);
    for _ in 0..20 {
        let p = Cheb::random(&mut rng);
        let n = 12;
        let (mut src, mut dst, mut ew) = (vec![], vec![], vec![]);
        for _ in 0..20 {
            let (a, b) = (rng.range(0, n - 1) as u16, rng.range(0, n - 1) as u16);
            if a == b {
                continue;
            }
            let w = rng.range(1, 40) as f32 / 16.0;
            src.extend([a, b]);
            dst.extend([b, a]);
            ew.extend([w, w]);
        }
        let x = rng.i8s(n as usize * p.in_ch);
        let mut inp = input(n as usize, &x, &src, &dst);
        inp.edge_weight = Some(&ew);
        let got = run(&p.model(), &inp).unwrap();
        let mut w = writer();
        let xt = w.add_tensor(node(p.in_ch as u16, 0.1, p.zp_x));
        let yt = w.add_tensor(node(p.out_ch as u16, 0.05, p.zp_out));
        let weights = w.add_i8(&p.w);
        let params = w.add_channel_params(&p.recs);
        w.add_op(Op::Propagate(Propagate {
            input: xt,
            output: yt,
            k: p.k - 1,
            alpha_q30: 0,
            weights,
            x0: xt,
            weights_0: Section::default(),
            params,
            act: p.act,
            improved: false,
            add_self_loops: false,
            normalize: true,
            edge_weight: p.edge_weight,
            hops: true,
        }));
        let tag = w.finish(xt, &[yt], 64, 256, 1).unwrap();
        let want = run(&tag, &inp).unwrap();
        assert_eq!(got[0].2, want[0].2, "{p:?}");
    }
}

#[test]
fn sparse_input_equals_dense() {
    let mut rng = Rng(0x5a);
    for _ in 0..10 {
        let p = Cheb::random(&mut rng);
        let n = 9;
        let (src, dst, ew) = random_graph(&mut rng, n, 24);
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
        let mut dense = input(n, &x, &src, &dst);
        dense.edge_weight = p.edge_weight.then_some(&ew[..]);
        let dense_out = run(&bytes, &dense).unwrap();
        let mut sparse = dense;
        sparse.features = Features::SparseI8 {
            row_ptr: &row_ptr,
            cols: &cols,
            values: &vals,
        };
        assert_eq!(run(&bytes, &sparse).unwrap(), dense_out, "{p:?}");
    }
}

#[test]
fn arena_bytes_counts_cheb_scratch_exactly() {
    let mut rng = Rng(3);
    let r8 = |x: usize| x.div_ceil(8) * 8;
    let (n, e) = (10, 20);
    for _ in 0..6 {
        let mut p = Cheb::random(&mut rng);
        p.edge_weight = false;
        let bytes = p.model();
        let m = Model::from_bytes(&bytes).unwrap();
        let (ic, oc) = (p.in_ch, p.out_ch);
        let graph = r8(4 * (n + 1)) + r8(2 * e) + r8(4);
        let slots = r8(n * ic) + r8(n * oc);
        let scratch = r8(4 * oc) + 2 * r8(4 * n * oc) + r8(8 * n) + r8(8 * oc) + r8(4 * oc);
        assert_eq!(m.arena_bytes(n, e, 1), graph + slots + scratch, "{p:?}");
    }
}

fn build(p: &Cheb, f: impl Fn(&mut Op), graph_out: bool) -> Result<(), Error> {
    let mut w = writer();
    let x = w.add_tensor(node(p.in_ch as u16, 0.1, 0));
    let y = w.add_tensor(if graph_out {
        graph(p.out_ch as u16, 0.1, 0)
    } else {
        node(p.out_ch as u16, 0.1, 0)
    });
    let mut op = p.op(&mut w, x, y);
    f(&mut op);
    w.add_op(op);
    match w.finish(x, &[y], 8, 8, 1) {
        Ok(bytes) => Model::from_bytes(&bytes).map(|_| ()),
        Err(WriteError::Invalid(e)) => Err(e),
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn malformed_cheb_ops_are_invalid_op_errors() {
    let mut rng = Rng(9);
    let mut p = Cheb::random(&mut rng);
    p.k = 3;
    p.w = rng.weights(3 * p.in_ch * p.out_ch);
    let bad = Err(Error::InvalidOp { op: 0 });
    assert!(build(&p, |_| {}, false).is_ok());
    let set_k = |k: u8| {
        move |op: &mut Op| {
            if let Op::ChebConv(c) = op {
                c.k = k;
            }
        }
    };
    assert_eq!(build(&p, set_k(0), false), bad); // K = 0
    assert_eq!(build(&p, set_k(2), false), bad); // 3 matrices for K = 2
    assert_eq!(build(&p, set_k(4), false), bad); // too few matrices
    assert_eq!(build(&p, set_k(200), false), bad); // above CHEB_MAX_K
    assert_eq!(build(&p, |_| {}, true), bad); // graph-level output
    let no_weights = |op: &mut Op| {
        if let Op::ChebConv(c) = op {
            c.weights = Section::default();
        }
    };
    assert_eq!(build(&p, no_weights, false), bad);
}
