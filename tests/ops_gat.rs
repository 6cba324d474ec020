//! GatConv / GATv2Conv through the whole runtime (model bytes → Session),
//! against a reference written from the documented integer semantics with
//! per-edge buffers (the runtime keeps none), plus semantic checks that need
//! no reference (equal logits give the neighbourhood mean, a dominant logit
//! selects one neighbour), arena exactness and malformed-op errors.

mod common;
use common::*;
use proptest::prelude::{any, proptest, ProptestConfig};
use tinygnn::format::writer::{ChannelRecord, WriteError};
use tinygnn::format::{Activation, GatEdge, Op, Section, TensorDesc, TensorKind, WeightBits};
use tinygnn::ops::gat::exp_q30;
use tinygnn::ops::{Act, GatConv};
use tinygnn::{EdgeAttr, Error, Model};

/// Edge features of a GAT layer (`edge_dim`): the model's edge tensor is
/// tensor 2 (`D` channels, zero point `zp`).
#[derive(Clone, Debug)]
struct EdgeCfg {
    d: usize,
    zp: i8,
    /// GAT: `V[H, D]` (i16); GATv2: `We[HC, D]` (int8 values).
    att: Vec<i16>,
    /// `(m, s)` per head (GAT) or per channel of `HC` (GATv2).
    logit: Vec<i32>,
}

#[derive(Clone, Debug)]
struct Gat {
    heads: usize,
    c: usize,
    concat: bool,
    v2: bool,
    loops: bool,
    slope_q16: i32,
    in_ch: usize,
    zp_x: i8,
    zp_out: i8,
    w: Vec<i8>,
    wr: Vec<i8>,
    bl: Vec<i32>,
    br: Vec<i32>,
    att: Vec<i16>,   // v1: src then dst (2·HC); v2: HC
    logit: Vec<i32>, // v1: (m_s, s_s, m_d, s_d) per head; v2: (m, s)
    recs: Vec<ChannelRecord>,
    act: Activation,
    edge: Option<EdgeCfg>,
    /// Write `w` / `wr` as int4 sections (values must be in −8..=7).
    i4: bool,
}

impl Gat {
    fn hc(&self) -> usize {
        self.heads * self.c
    }
    fn out_ch(&self) -> usize {
        if self.concat {
            self.hc()
        } else {
            self.c
        }
    }

    fn random(rng: &mut Rng, heads: usize, c: usize, concat: bool, v2: bool) -> Gat {
        let in_ch = rng.range(1, 6) as usize;
        let hc = heads * c;
        let natt = if v2 { hc } else { 2 * hc };
        let logit = (0..heads * if v2 { 1 } else { 2 })
            .flat_map(|_| {
                // Logit ≈ Σ att·h · s, h up to ~2^14·in, att up to 2^10.
                let s = 2f64.powi(-(rng.range(10, 16) as i32))
                    * (1.0 + (rng.next() % 100) as f64 / 100.0);
                let (m, sh) = tinygnn::quant::quantize_multiplier(s);
                [m, sh]
            })
            .collect();
        let out_ch = if concat { hc } else { c };
        let mut recs = records(rng, out_ch, 2000, 1.0 / 300.0);
        if !concat {
            for r in &mut recs {
                let (m, s) = tinygnn::quant::quantize_multiplier(1.0 / (300.0 * heads as f64));
                r.mult = m;
                r.shift = s;
            }
        }
        Gat {
            heads,
            c,
            concat,
            v2,
            loops: rng.next() % 4 != 0,
            slope_q16: [0, 13107, 65536 / 10, 65536][(rng.next() % 4) as usize],
            in_ch,
            zp_x: rng.range(-20, 20) as i8,
            zp_out: rng.range(-10, 10) as i8,
            w: rng.weights(hc * in_ch),
            wr: if v2 { rng.weights(hc * in_ch) } else { vec![] },
            bl: if v2 {
                (0..hc).map(|_| rng.range(-3000, 3000) as i32).collect()
            } else {
                vec![]
            },
            br: if v2 {
                (0..hc).map(|_| rng.range(-3000, 3000) as i32).collect()
            } else {
                vec![]
            },
            att: (0..natt).map(|_| rng.range(-1024, 1024) as i16).collect(),
            logit,
            recs,
            act: [
                Activation::None,
                Activation::Relu,
                Activation::LeakyRelu { alpha_q16: 13107 },
            ][(rng.next() % 3) as usize],
            edge: None,
            i4: false,
        }
    }

    /// The same layer with int4 weights: every weight clamped to −7..=7.
    fn int4(mut self) -> Gat {
        for v in self.w.iter_mut().chain(self.wr.iter_mut()) {
            *v = (*v).clamp(-7, 7);
        }
        self.i4 = true;
        self
    }

    /// The same layer with random edge features of `d` channels.
    fn with_edge(mut self, rng: &mut Rng, d: usize) -> Gat {
        let rows = if self.v2 { self.hc() } else { self.heads };
        let att = (0..rows * d)
            .map(|_| {
                if self.v2 {
                    rng.i8() as i16
                } else {
                    rng.range(-1024, 1024) as i16
                }
            })
            .collect();
        let logit = (0..rows)
            .flat_map(|_| {
                // GAT: into Q16 logits; GATv2: into the projections' accumulator units.
                let s = if self.v2 {
                    2f64.powi(-(rng.range(0, 3) as i32))
                } else {
                    2f64.powi(-(rng.range(2, 6) as i32))
                } * (1.0 + (rng.next() % 100) as f64 / 100.0);
                let (m, sh) = tinygnn::quant::quantize_multiplier(s);
                [m, sh]
            })
            .collect();
        self.edge = Some(EdgeCfg {
            d,
            zp: rng.range(-20, 20) as i8,
            att,
            logit,
        });
        self
    }

    fn op(&self, w: &mut tinygnn::format::writer::ModelWriter, x: u8, y: u8) -> Op {
        let bytes = |v: Vec<u8>, w: &mut tinygnn::format::writer::ModelWriter| {
            if v.is_empty() {
                Section::default()
            } else {
                w.add_bytes(&v)
            }
        };
        let bits = if self.i4 {
            WeightBits::I4
        } else {
            WeightBits::I8
        };
        let weights = w.add_weights(bits, &self.w, self.in_ch).unwrap();
        let weights_r = if self.wr.is_empty() {
            Section::default()
        } else {
            w.add_weights(bits, &self.wr, self.in_ch).unwrap()
        };
        let lb: Vec<u8> = self
            .bl
            .iter()
            .chain(&self.br)
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let lin_bias = bytes(lb, w);
        let att = bytes(self.att.iter().flat_map(|v| v.to_le_bytes()).collect(), w);
        let logit = bytes(self.logit.iter().flat_map(|v| v.to_le_bytes()).collect(), w);
        let params = w.add_channel_params(&self.recs);
        Op::GatConv(GatConv {
            input: x,
            output: y,
            heads: self.heads as u8,
            concat: self.concat,
            v2: self.v2,
            add_self_loops: self.loops,
            negative_slope_q16: self.slope_q16,
            weights,
            weights_r,
            lin_bias,
            att,
            logit,
            params,
            act: self.act,
            edge: self.edge.as_ref().map(|e| GatEdge {
                edge_attr: 2,
                att: if self.v2 {
                    let v: Vec<i8> = e.att.iter().map(|&a| a as i8).collect();
                    w.add_i8(&v)
                } else {
                    w.add_bytes(
                        &e.att
                            .iter()
                            .flat_map(|v| v.to_le_bytes())
                            .collect::<Vec<u8>>(),
                    )
                },
                logit: w.add_bytes(
                    &e.logit
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect::<Vec<u8>>(),
                ),
            }),
        })
    }

    fn model(&self) -> Vec<u8> {
        let mut w = writer();
        let x = w.add_tensor(node(self.in_ch as u16, 0.1, self.zp_x));
        let y = w.add_tensor(node(self.out_ch() as u16, 0.05, self.zp_out));
        if let Some(e) = &self.edge {
            let t = w.add_tensor(TensorDesc {
                kind: TensorKind::Edge,
                channels: e.d as u16,
                scale: 0.1,
                zero_point: e.zp,
            });
            assert_eq!(t, 2);
        }
        let op = self.op(&mut w, x, y);
        w.add_op(op);
        w.finish(x, &[y], 64, 256, 1).unwrap()
    }

    /// The documented semantics, with explicit per-edge lists.
    fn reference(&self, n: usize, x: &[i8], src: &[u16], dst: &[u16]) -> Vec<i8> {
        self.reference_e(n, x, src, dst, &[])
    }

    /// [`Gat::reference`] with edge features `ea` (`[E, D]` in input order).
    fn reference_e(&self, n: usize, x: &[i8], src: &[u16], dst: &[u16], ea: &[i8]) -> Vec<i8> {
        let (hc, c, heads) = (self.hc(), self.c, self.heads);
        let rows: Vec<&[i8]> = x.chunks(self.in_ch).collect();
        let proj = |w: &[i8], b: &[i32]| -> Vec<Vec<i64>> {
            rows.iter()
                .map(|r| {
                    let mut v = dense(w, self.in_ch, r, self.zp_x);
                    for (k, e) in v.iter_mut().enumerate() {
                        *e += b.get(k).copied().unwrap_or(0) as i64;
                    }
                    v
                })
                .collect()
        };
        let h = proj(&self.w, &self.bl);
        let xr = if self.v2 {
            proj(&self.wr, &self.br)
        } else {
            vec![]
        };
        let lrelu = |v: i128| -> i128 {
            if v < 0 {
                (v * self.slope_q16 as i128 + (1 << 15)).div_euclid(1 << 16)
            } else {
                v
            }
        };
        let rq = |v: i128, m: i32, s: i32| -> i128 {
            let r = 31 - s;
            let p = v * m as i128;
            let q = if r == 0 {
                p
            } else {
                (p + (1i128 << (r - 1))).div_euclid(1i128 << r)
            };
            q.clamp(i32::MIN as i128, i32::MAX as i128)
        };
        let dotp = |att: &[i16], v: &[i64]| -> i128 {
            att.iter()
                .zip(v)
                .map(|(&a, &b)| a as i128 * b as i128)
                .sum()
        };
        // Edge accumulators: per input edge and row (head for GAT, channel of
        // HC for GATv2); the added loop of node i gets the rounded mean over
        // its non-loop in-edges.
        let rows = if self.v2 { hc } else { heads };
        let eacc = |ei: usize, r: usize| -> i128 {
            let e = self.edge.as_ref().unwrap();
            (0..e.d)
                .map(|q| e.att[r * e.d + q] as i128 * (ea[ei * e.d + q] as i128 - e.zp as i128))
                .sum()
        };
        let loop_acc: Vec<Vec<i128>> = (0..n)
            .map(|i| {
                (0..rows)
                    .map(|r| {
                        if self.edge.is_none() {
                            return 0;
                        }
                        let ins: Vec<usize> = (0..src.len())
                            .filter(|&ei| dst[ei] as usize == i && src[ei] != dst[ei])
                            .collect();
                        if ins.is_empty() {
                            0
                        } else {
                            round_div(ins.iter().map(|&ei| eacc(ei, r)).sum(), ins.len() as i128)
                        }
                    })
                    .collect()
            })
            .collect();
        let eterm = |ei: Option<usize>, i: usize, r: usize| -> i128 {
            match &self.edge {
                None => 0,
                Some(e) => {
                    let a = match ei {
                        Some(ei) => eacc(ei, r),
                        None => loop_acc[i][r],
                    };
                    rq(a, e.logit[2 * r], e.logit[2 * r + 1])
                }
            }
        };
        let logit = |j: usize, i: usize, k: usize, ei: Option<usize>| -> i128 {
            let s = k * c..(k + 1) * c;
            if self.v2 {
                let z: Vec<i64> = (s.clone())
                    .map(|q| lrelu(h[j][q] as i128 + xr[i][q] as i128 + eterm(ei, i, q)) as i64)
                    .collect();
                rq(
                    dotp(&self.att[s], &z),
                    self.logit[2 * k],
                    self.logit[2 * k + 1],
                )
            } else {
                let a = rq(
                    dotp(&self.att[s.clone()], &h[j][s.clone()]),
                    self.logit[4 * k],
                    self.logit[4 * k + 1],
                );
                let s2 = hc + k * c..hc + (k + 1) * c;
                let b = rq(
                    dotp(&self.att[s2], &h[i][s]),
                    self.logit[4 * k + 2],
                    self.logit[4 * k + 3],
                );
                lrelu(a + b + eterm(ei, i, k))
            }
        };
        let mut out = vec![];
        for i in 0..n {
            let mut srcs: Vec<(usize, Option<usize>)> = (0..src.len())
                .filter(|&ei| dst[ei] as usize == i && !(self.loops && src[ei] == dst[ei]))
                .map(|ei| (src[ei] as usize, Some(ei)))
                .collect();
            if self.loops {
                srcs.push((i, None));
            }
            let mut agg = vec![0i128; hc];
            for k in 0..heads {
                let e: Vec<i128> = srcs.iter().map(|&(j, ei)| logit(j, i, k, ei)).collect();
                let Some(&m) = e.iter().max() else { continue };
                let w: Vec<u64> = e.iter().map(|&v| exp_q30((v - m) as i64) as u64).collect();
                let sum: u64 = w.iter().sum();
                let r = ((1u128 << 61) + sum as u128 / 2) / sum as u128;
                for (&(j, _), &wj) in srcs.iter().zip(&w) {
                    let alpha = (wj as u128 * r + (1 << 30)) >> 31;
                    for q in k * c..(k + 1) * c {
                        agg[q] += alpha as i128 * h[j][q] as i128;
                    }
                }
            }
            let acc: Vec<i128> = if self.concat {
                agg.iter().map(|&a| round_shift(a, 30)).collect()
            } else {
                (0..c)
                    .map(|q| round_shift((0..heads).map(|k| agg[k * c + q]).sum(), 30))
                    .collect()
            };
            for (a, r) in acc.iter().zip(&self.recs) {
                out.push(finish(*a as i64, r, self.act, self.zp_out));
            }
        }
        out
    }
}

fn random_graph(rng: &mut Rng, n: usize, e: usize) -> (Vec<u16>, Vec<u16>) {
    let src = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
    let dst = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
    (src, dst)
}

fn check(g: &Gat, rng: &mut Rng, n: usize, e: usize) -> Vec<i8> {
    let (src, dst) = random_graph(rng, n, e);
    let x = rng.i8s(n * g.in_ch);
    let bytes = g.model();
    let got = run(&bytes, &input(n, &x, &src, &dst)).unwrap();
    let want = g.reference(n, &x, &src, &dst);
    assert_eq!(got[0].2, want, "{g:?}");
    want
}

#[test]
fn matches_reference_for_heads_concat_and_v2() {
    let mut rng = Rng(0x9a7);
    let mut all = vec![];
    for heads in [1, 2, 4, 8] {
        for concat in [true, false] {
            for v2 in [false, true] {
                for _ in 0..3 {
                    let c = rng.range(1, 4) as usize;
                    let g = Gat::random(&mut rng, heads, c, concat, v2);
                    all.extend(check(&g, &mut rng, 12, 30));
                }
            }
        }
    }
    assert_spread(&all);
}

/// A model whose attention logits are all 0 (zero attention vectors): the
/// softmax is uniform, so every output is the mean of the messages over the
/// node's in-edges (self-loop included), which we compute directly here.
#[test]
fn equal_logits_average_the_neighbourhood() {
    for v2 in [false, true] {
        let mut rng = Rng(11);
        let mut g = Gat::random(&mut rng, 2, 2, true, v2);
        g.loops = true;
        g.att.iter_mut().for_each(|a| *a = 0);
        g.act = Activation::None;
        g.bl.iter_mut().for_each(|b| *b = 0);
        for r in &mut g.recs {
            r.bias = 0;
            let (m, s) = tinygnn::quant::quantize_multiplier(1.0 / 64.0);
            (r.mult, r.shift) = (m, s);
        }
        let n = 5;
        let (src, dst) = (vec![0u16, 1, 2, 3, 3, 4, 2], vec![1u16, 2, 2, 2, 0, 4, 4]);
        let x = rng.i8s(n * g.in_ch);
        let got = &run(&g.model(), &input(n, &x, &src, &dst)).unwrap()[0].2;
        for i in 0..n {
            let mut srcs: Vec<usize> = src
                .iter()
                .zip(&dst)
                .filter(|&(&s, &d)| d as usize == i && s != d)
                .map(|(&s, _)| s as usize)
                .collect();
            srcs.push(i);
            for q in 0..g.hc() {
                let mean: f64 = srcs
                    .iter()
                    .map(|&j| {
                        dense(&g.w, g.in_ch, &x[j * g.in_ch..(j + 1) * g.in_ch], g.zp_x)[q] as f64
                    })
                    .sum::<f64>()
                    / srcs.len() as f64;
                let want = (mean / 64.0)
                    .round()
                    .clamp(-128.0 - g.zp_out as f64, 127.0 - g.zp_out as f64);
                let got_v = got[i * g.hc() + q] as f64 - g.zp_out as f64;
                assert!(
                    (got_v - want).abs() <= 1.0,
                    "v2={v2} node {i} ch {q}: {got_v} vs {want}"
                );
            }
        }
    }
}

/// With one source's logit far above the others, the output is that
/// source's message alone.
#[test]
fn dominant_logit_selects_one_neighbour() {
    let mut rng = Rng(5);
    let mut g = Gat::random(&mut rng, 1, 2, true, false);
    g.in_ch = 2;
    // h = x (identity weights); att_src = (1, 0), att_dst = 0; logit scale 1.0 (Q16 units: huge).
    g.w = vec![1, 0, 0, 1];
    g.att = vec![1, 0, 0, 0];
    g.logit = vec![1 << 30, 17, 1 << 30, 17];
    g.slope_q16 = 13107;
    g.zp_x = 0;
    g.zp_out = 0;
    g.act = Activation::None;
    g.loops = true;
    g.recs = vec![
        ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 1
        };
        2
    ];
    // Node 0 receives from 1 (x = 100), 2 (x = 10) and itself (x = 0).
    let x = [0i8, 5, 100, -7, 10, 9];
    let got = &run(&g.model(), &input(3, &x, &[1, 2], &[0, 0])).unwrap()[0].2;
    assert_eq!(&got[0..2], &[100, -7]);
    // Nodes 1 and 2 only have their self-loop: output = own features.
    assert_eq!(&got[2..6], &[100, -7, 10, 9]);
}

#[test]
fn node_without_edges_and_no_self_loops_gets_bias_only() {
    let mut rng = Rng(77);
    let mut g = Gat::random(&mut rng, 2, 3, false, false);
    g.loops = false;
    let x = rng.i8s(3 * g.in_ch);
    let got = &run(&g.model(), &input(3, &x, &[0], &[1])).unwrap()[0].2;
    for (q, r) in g.recs.iter().enumerate() {
        assert_eq!(got[q], finish(0, r, g.act, g.zp_out));
        assert_eq!(got[2 * g.c + q], finish(0, r, g.act, g.zp_out));
    }
    assert_eq!(got, &g.reference(3, &x, &[0], &[1]));
}

#[test]
fn arena_bytes_counts_gat_scratch_exactly() {
    let mut rng = Rng(3);
    for v2 in [false, true] {
        let g = Gat::random(&mut rng, 4, 3, true, v2);
        let bytes = g.model();
        let m = Model::from_bytes(&bytes).unwrap();
        let r8 = |x: usize| x.div_ceil(8) * 8;
        let (n, e) = (10, 20);
        let hc = g.hc();
        let graph = r8(4 * (n + 1)) + r8(2 * e) + r8(4);
        let slots = r8(n * g.in_ch) + r8(n * hc);
        // Weight sums (two for GATv2), the target's and a source's rows, GAT's
        // per-node logit terms (H = 4), maxima, sums, the aggregation and output
        // rows, the logit cache (min(64, E + 1) edges × H) and the source-row
        // cache (as many rows, at most 4096 values): nothing per node.
        let sums = if v2 { 2 * r8(4 * hc) } else { r8(4 * hc) };
        let terms = if v2 { 0 } else { 2 * r8(4 * 4) };
        let k = (e + 1).min(tinygnn::ops::gat::LOGIT_CACHE_EDGES);
        let cache = r8(8 * k * 4) + r8(4 * k.min(4096 / hc) * hc);
        let scratch =
            sums + 2 * r8(4 * hc) + terms + r8(8 * 4) + r8(8 * 4) + r8(8 * hc) + r8(4 * hc) + cache;
        assert_eq!(m.arena_bytes(n, e, 1), graph + slots + scratch, "v2={v2}");
    }
}

fn malformed(f: impl Fn(&mut Gat, &mut Op)) -> Result<(), Error> {
    let mut rng = Rng(9);
    let mut g = Gat::random(&mut rng, 2, 2, true, false);
    let mut w = writer();
    let x = w.add_tensor(node(g.in_ch as u16, 0.1, 0));
    let y = w.add_tensor(node(4, 0.1, 0));
    let mut op = Op::Act(Act {
        input: x,
        output: y,
        act: Activation::Relu,
    });
    f(&mut g, &mut op); // edits of `g` (before its sections are written)
    let mut op2 = g.op(&mut w, x, y);
    f(&mut g, &mut op2); // edits of the op
    let op = op2;
    w.add_op(op);
    // The writer checks its output with `Model::from_bytes` and passes on its error.
    match w.finish(x, &[y], 8, 8, 1) {
        Ok(bytes) => Model::from_bytes(&bytes).map(|_| ()),
        Err(WriteError::Invalid(e)) => Err(e),
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn malformed_gat_ops_are_invalid_op_errors() {
    assert!(malformed(|_, _| {}).is_ok());
    let bad = Err(Error::InvalidOp { op: 0 });
    let set = |f: fn(&mut Op)| malformed(move |_, op| f(op));
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { heads, .. }) = op {
            *heads = 0
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { heads, .. }) = op {
            *heads = 3
        }),
        bad
    );
    assert_eq!(
        set(|op| {
            if let Op::GatConv(GatConv {
                negative_slope_q16, ..
            }) = op
            {
                *negative_slope_q16 = -1
            }
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { att, .. }) = op {
            att.len -= 2
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { logit, .. }) = op {
            logit.len -= 4
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { weights, .. }) = op {
            weights.len += 1
        }),
        bad
    );
    assert_eq!(
        set(|op| {
            if let Op::GatConv(GatConv {
                weights_r, weights, ..
            }) = op
            {
                *weights_r = *weights
            }
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { v2, .. }) = op {
            *v2 = true
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { params, .. }) = op {
            params.len = 12
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::GatConv(GatConv { att, .. }) = op {
            att.offset = 1 << 30
        }),
        bad
    );
    // A logit shift outside −32..=31.
    for (shift, want) in [
        (40, bad),
        (32, bad),
        (-33, bad),
        (31, Ok(())),
        (-32, Ok(())),
    ] {
        assert_eq!(
            malformed(move |g, _| g.logit[1] = shift),
            want,
            "shift {shift}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn runtime_equals_reference(seed in any::<u64>(), heads in 1usize..5, c in 1usize..4,
                                concat in any::<bool>(), v2 in any::<bool>(),
                                n in 1usize..16, e in 0usize..48) {
        let mut rng = Rng(seed | 1);
        let g = Gat::random(&mut rng, heads, c, concat, v2);
        check(&g, &mut rng, n, e);
    }
}

/// Two in-edges whose logits differ by ln 3: the softmax gives them 3/4 and 1/4,
/// so the output is `0.75·x_1 + 0.25·x_2` (an end-to-end check of the fixed-point exp
/// and normalisation against a value worked out by hand).
#[test]
fn logit_difference_ln3_weighs_three_to_one() {
    let mut rng = Rng(8);
    let mut g = Gat::random(&mut rng, 1, 2, true, false);
    g.in_ch = 2;
    g.w = vec![1, 0, 0, 1]; // h = x
    g.att = vec![1, 0, 0, 0]; // logit_j = x_j[0] · s
    let s = 3f64.ln() / 100.0;
    let (m, sh) = tinygnn::quant::quantize_multiplier(s * 65536.0);
    g.logit = vec![m, sh, m, sh];
    (g.zp_x, g.zp_out, g.act, g.loops) = (0, 0, Activation::None, false);
    g.recs = vec![
        ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 1
        };
        2
    ];
    // Node 0 receives from 1 (x = [100, 100]) and 2 (x = [0, -40]).
    let x = [0i8, 0, 100, 100, 0, -40];
    let got = &run(&g.model(), &input(3, &x, &[1, 2], &[0, 0])).unwrap()[0].2;
    assert_eq!(&got[0..2], &[75, 65]);
}

/// Runs a GAT layer with edge features on a random graph (duplicates and
/// self-loops included, targets unsorted) against [`Gat::reference_e`].
fn check_edge(g: &Gat, rng: &mut Rng, n: usize, e: usize) -> Vec<i8> {
    let (src, dst) = random_graph(rng, n, e);
    let x = rng.i8s(n * g.in_ch);
    let d = g.edge.as_ref().unwrap().d;
    let ea = rng.i8s(e * d);
    let bytes = g.model();
    let inp = input(n, &x, &src, &dst).with_edge_attr(EdgeAttr::I8(&ea));
    let got = run(&bytes, &inp).unwrap();
    let want = g.reference_e(n, &x, &src, &dst, &ea);
    assert_eq!(got[0].2, want, "{g:?}");
    want
}

#[test]
fn edge_features_match_reference_for_gat_and_gatv2() {
    let mut rng = Rng(0xed6e);
    let mut all = vec![];
    for heads in [1, 2, 4] {
        for concat in [true, false] {
            for v2 in [false, true] {
                for _ in 0..3 {
                    let c = rng.range(1, 4) as usize;
                    let d = rng.range(1, 5) as usize;
                    let g = Gat::random(&mut rng, heads, c, concat, v2).with_edge(&mut rng, d);
                    all.extend(check_edge(&g, &mut rng, 12, 30));
                }
            }
        }
    }
    assert_spread(&all);
}

/// The edge term is not dropped: with the edge weights zeroed the output of
/// a GATv2 layer changes on some graph (and equals the layer without edges).
#[test]
fn gatv2_edge_term_changes_the_output() {
    let mut rng = Rng(0x5eed);
    let mut changed = 0;
    for _ in 0..20 {
        let g = Gat::random(&mut rng, 2, 3, true, true).with_edge(&mut rng, 3);
        let (src, dst) = random_graph(&mut rng, 10, 25);
        let x = rng.i8s(10 * g.in_ch);
        let ea = rng.i8s(25 * 3);
        let with = g.reference_e(10, &x, &src, &dst, &ea);
        let mut z = g.clone();
        z.edge.as_mut().unwrap().att.iter_mut().for_each(|a| *a = 0);
        let without = z.reference_e(10, &x, &src, &dst, &ea);
        let inp = input(10, &x, &src, &dst).with_edge_attr(EdgeAttr::I8(&ea));
        assert_eq!(run(&z.model(), &inp).unwrap()[0].2, without);
        let mut plain = g.clone();
        plain.edge = None;
        assert_eq!(plain.reference(10, &x, &src, &dst), without);
        assert_eq!(run(&g.model(), &inp).unwrap()[0].2, with);
        changed += usize::from(with != without);
    }
    assert!(
        changed >= 10,
        "edge term changed only {changed} of 20 outputs"
    );
}

/// Malformed edge parts of a GAT / GATv2 op are `InvalidOp`.
#[test]
fn malformed_gat_edge_parts_are_invalid_op_errors() {
    let build = |v2: bool, f: &dyn Fn(&mut Op)| -> Result<(), Error> {
        let mut rng = Rng(21);
        let g = Gat::random(&mut rng, 2, 3, true, v2).with_edge(&mut rng, 2);
        let mut w = writer();
        let x = w.add_tensor(node(g.in_ch as u16, 0.1, 0));
        let y = w.add_tensor(node(g.out_ch() as u16, 0.1, 0));
        w.add_tensor(TensorDesc {
            kind: TensorKind::Edge,
            channels: 2,
            scale: 0.1,
            zero_point: 0,
        });
        let mut op = g.op(&mut w, x, y);
        f(&mut op);
        w.add_op(op);
        match w.finish(x, &[y], 8, 8, 1) {
            Ok(bytes) => Model::from_bytes(&bytes).map(|_| ()),
            Err(WriteError::Invalid(e)) => Err(e),
            Err(other) => panic!("{other:?}"),
        }
    };
    let bad = Err(Error::InvalidOp { op: 0 });
    let edge = |f: fn(&mut GatEdge)| {
        move |op: &mut Op| {
            if let Op::GatConv(GatConv { edge: Some(e), .. }) = op {
                f(e)
            }
        }
    };
    for v2 in [false, true] {
        assert_eq!(build(v2, &|_| {}), Ok(()), "v2={v2}");
        assert_eq!(build(v2, &edge(|e| e.att.len -= 1)), bad, "v2={v2}");
        assert_eq!(build(v2, &edge(|e| e.logit.len -= 8)), bad, "v2={v2}");
        assert_eq!(build(v2, &edge(|e| e.edge_attr = 0)), bad, "v2={v2}");
        assert_eq!(
            build(v2, &edge(|e| e.logit.offset = 1 << 30)),
            bad,
            "v2={v2}"
        );
    }
    // GATv2's edge logit records are per channel (HC = 6), not per head (H = 2).
    assert_eq!(build(true, &edge(|e| e.logit.len = 16)), bad);
    // A GATv2 edge part in GAT's layout (i16 V [H, D]) does not validate.
    assert_eq!(build(true, &edge(|e| e.att.len = 2 * 2 * 2)), bad);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn runtime_equals_reference_with_edges(seed in any::<u64>(), heads in 1usize..4, c in 1usize..4,
                                concat in any::<bool>(), v2 in any::<bool>(), d in 1usize..4,
                                n in 1usize..14, e in 0usize..40) {
        let mut rng = Rng(seed | 1);
        let g = Gat::random(&mut rng, heads, c, concat, v2).with_edge(&mut rng, d);
        check_edge(&g, &mut rng, n, e);
    }
}

/// int4 weights (`lin`, `lin_l`, `lin_r` packed two per byte, unpacked in the
/// kernel): the runtime equals the reference on the same integer weights, and
/// the int4 file gives the same bytes as the int8 file of those weights.
#[test]
fn int4_weights_match_reference_and_int8_encoding() {
    let mut rng = Rng(0x1a4);
    let mut all = vec![];
    for heads in [1, 2, 4] {
        for concat in [true, false] {
            for v2 in [false, true] {
                for edge in [false, true] {
                    let c = rng.range(1, 4) as usize;
                    let mut g = Gat::random(&mut rng, heads, c, concat, v2).int4();
                    if edge {
                        g = g.with_edge(&mut rng, 2);
                    }
                    let (src, dst) = random_graph(&mut rng, 12, 30);
                    let x = rng.i8s(12 * g.in_ch);
                    let ea = rng.i8s(30 * 2);
                    let mut inp = input(12, &x, &src, &dst);
                    inp.edge_attr = edge.then_some(EdgeAttr::I8(&ea));
                    let bytes = g.model();
                    let m = Model::from_bytes(&bytes).unwrap();
                    assert!(m.ops().all(|op| op.has_i4_weights()));
                    let got = run(&bytes, &inp).unwrap();
                    assert_eq!(got[0].2, g.reference_e(12, &x, &src, &dst, &ea), "{g:?}");
                    let mut g8 = g.clone();
                    g8.i4 = false;
                    let b8 = g8.model();
                    assert!(!Model::from_bytes(&b8)
                        .unwrap()
                        .ops()
                        .any(|op| op.has_i4_weights()));
                    assert_eq!(run(&b8, &inp).unwrap()[0].2, got[0].2);
                    all.extend(got[0].2.iter().copied());
                }
            }
        }
    }
    assert_spread(&all);
}

/// A malformed int4 weight section (wrong packed length, padding nibble set)
/// is `InvalidOp`.
#[test]
fn malformed_int4_gat_weights_are_invalid_op() {
    let mut rng = Rng(77);
    let mut g = Gat::random(&mut rng, 2, 2, true, true).int4();
    g.in_ch = 3;
    g.w = (0..12).map(|i| (i % 15 - 7) as i8).collect();
    g.wr = g.w.clone();
    assert!(Model::from_bytes(&g.model()).is_ok());
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let y = w.add_tensor(node(4, 0.1, 0));
    let mut op = g.op(&mut w, x, y);
    if let Op::GatConv(GatConv { weights_r, .. }) = &mut op {
        weights_r.len -= 1;
    }
    w.add_op(op);
    match w.finish(x, &[y], 8, 8, 1) {
        Err(WriteError::Invalid(e)) => assert_eq!(e, Error::InvalidOp { op: 0 }),
        other => panic!("{:?}", other.map(|b| b.len())),
    }
}

/// Nodes with more in-edges than the runtime's logit cache
/// (`ops::gat::LOGIT_CACHE_EDGES`): the logits of the edges beyond it are
/// recomputed in the second walk; the output must still equal the
/// reference (GAT and GATv2, with and without edge features, self-loops and
/// duplicates among the edges).
#[test]
fn in_degree_beyond_the_logit_cache_matches_reference() {
    let cache = tinygnn::ops::gat::LOGIT_CACHE_EDGES;
    let mut rng = Rng(0xcac4e);
    let n = 40;
    // Node 0 gets 2·cache + 5 in-edges (node 0 itself among them), node 1
    // exactly `cache` (cache − 1 with its added loop when loops are added),
    // plus random edges.
    let mut src: Vec<u16> = (0..2 * cache + 5).map(|k| (k % n) as u16).collect();
    let mut dst: Vec<u16> = vec![0; src.len()];
    src.extend((0..cache).map(|k| ((3 * k + 2) % n) as u16));
    dst.extend(std::iter::repeat_n(1u16, cache));
    let (rs, rd) = random_graph(&mut rng, n, 40);
    src.extend(rs);
    dst.extend(rd);
    assert!(src.len() <= 256);
    let mut all = vec![];
    for v2 in [false, true] {
        for concat in [true, false] {
            for edge in [false, true] {
                let heads = rng.range(1, 4) as usize;
                let c = rng.range(1, 4) as usize;
                let mut g = Gat::random(&mut rng, heads, c, concat, v2);
                g.loops = rng.next() % 4 != 0;
                let x = rng.i8s(n * g.in_ch);
                let (got, want) = if edge {
                    let g = g.with_edge(&mut rng, 2);
                    let ea = rng.i8s(src.len() * 2);
                    let inp = input(n, &x, &src, &dst).with_edge_attr(EdgeAttr::I8(&ea));
                    let got = run(&g.model(), &inp).unwrap();
                    (got, g.reference_e(n, &x, &src, &dst, &ea))
                } else {
                    let got = run(&g.model(), &input(n, &x, &src, &dst)).unwrap();
                    (got, g.reference(n, &x, &src, &dst))
                };
                assert_eq!(got[0].2, want, "v2={v2} concat={concat} edge={edge}");
                all.extend(want);
            }
        }
    }
    assert_spread(&all);
}
