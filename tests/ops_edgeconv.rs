//! EdgeConv / DynamicEdgeConv through the whole runtime (model bytes →
//! Session), against a reference written from the documented semantics with
//! the **unsplit** first layer `W·[x_i, x_j − x_i]` (so the split identity is
//! checked in integers), explicit per-edge message lists and a sort-based kNN;
//! plus kNN semantics (self included, batches apart, small graphs), arena
//! exactness (checked by `common::run`) and malformed-op errors.

mod common;
use common::*;
use proptest::prelude::{any, proptest, ProptestConfig};
use tinygnn::format::writer::{ChannelRecord, WriteError};
use tinygnn::format::{Activation, Aggr, Op, Section};
use tinygnn::ops::EdgeConv;
use tinygnn::{Error, Model};

#[derive(Clone, Debug)]
struct Ec {
    in_ch: usize,
    hidden: usize,
    out_ch: usize,
    k: usize,
    aggr: Aggr,
    zp_x: i8,
    zp_h: i8,
    zp_out: i8,
    /// `W_a` and `W_b` (`[H, in_ch]` each), small enough that `W_a − W_b` fits int8.
    wa: Vec<i8>,
    wb: Vec<i8>,
    recs1: Vec<ChannelRecord>,
    act1: Activation,
    /// Second layer (empty: one layer).
    w2: Vec<i8>,
    recs2: Vec<ChannelRecord>,
    act2: Activation,
}

const ACTS: [Activation; 3] = [
    Activation::None,
    Activation::Relu,
    Activation::LeakyRelu { alpha_q16: 13107 },
];

impl Ec {
    fn random(rng: &mut Rng, aggr: Aggr, k: usize, two: bool) -> Ec {
        let in_ch = rng.range(1, 5) as usize;
        let hidden = rng.range(1, 6) as usize;
        let out_ch = if two {
            rng.range(1, 5) as usize
        } else {
            hidden
        };
        let small = |rng: &mut Rng, n: usize| -> Vec<i8> {
            (0..n).map(|_| rng.range(-63, 63) as i8).collect()
        };
        let sc = if aggr == Aggr::Sum {
            1.0 / 3000.0
        } else {
            1.0 / 800.0
        };
        Ec {
            in_ch,
            hidden,
            out_ch,
            k,
            aggr,
            zp_x: rng.range(-20, 20) as i8,
            zp_h: if two { rng.range(-30, 30) as i8 } else { 0 },
            zp_out: rng.range(-10, 10) as i8,
            wa: small(rng, hidden * in_ch),
            wb: small(rng, hidden * in_ch),
            recs1: records(rng, hidden, 2000, if two { 1.0 / 400.0 } else { sc }),
            act1: ACTS[(rng.next() % 3) as usize],
            w2: if two {
                rng.weights(out_ch * hidden)
            } else {
                vec![]
            },
            recs2: if two {
                records(rng, out_ch, 2000, sc / 2.0)
            } else {
                vec![]
            },
            act2: if two {
                ACTS[(rng.next() % 3) as usize]
            } else {
                Activation::None
            },
        }
    }

    fn op(&self, w: &mut tinygnn::format::writer::ModelWriter, x: u8, y: u8) -> Op {
        let ws: Vec<i8> = self.wa.iter().zip(&self.wb).map(|(a, b)| a - b).collect();
        let w_self = w.add_i8(&ws);
        let w_nbr = w.add_i8(&self.wb);
        let params1 = w.add_channel_params(&self.recs1);
        let (w2, params2) = if self.w2.is_empty() {
            (Section::default(), Section::default())
        } else {
            (w.add_i8(&self.w2), w.add_channel_params(&self.recs2))
        };
        Op::EdgeConv(EdgeConv {
            input: x,
            output: y,
            aggr: self.aggr,
            k: self.k as u16,
            hidden: self.hidden as u16,
            w_self,
            w_nbr,
            params1,
            act1: self.act1,
            hidden_zp: self.zp_h,
            w2,
            params2,
            act2: self.act2,
        })
    }

    fn model(&self) -> Vec<u8> {
        let mut w = writer();
        let x = w.add_tensor(node(self.in_ch as u16, 0.1, self.zp_x));
        let y = w.add_tensor(node(self.out_ch as u16, 0.05, self.zp_out));
        let op = self.op(&mut w, x, y);
        w.add_op(op);
        w.finish(x, &[y], 64, 256, 4).unwrap()
    }

    /// The in-neighbours of every node: the edges as given, or the kNN
    /// lists by sorting all same-graph candidates by (distance, index).
    fn neighbours(
        &self,
        n: usize,
        x: &[i8],
        src: &[u16],
        dst: &[u16],
        batch: Option<&[u16]>,
    ) -> Vec<Vec<usize>> {
        let ic = self.in_ch;
        (0..n)
            .map(|i| {
                if self.k == 0 {
                    return src
                        .iter()
                        .zip(dst)
                        .filter(|&(_, &d)| d as usize == i)
                        .map(|(&s, _)| s as usize)
                        .collect();
                }
                let g = |j: usize| batch.map_or(0, |b| b[j]);
                let mut c: Vec<(i64, usize)> = (0..n)
                    .filter(|&j| g(j) == g(i))
                    .map(|j| {
                        let d = (0..ic)
                            .map(|q| {
                                let t = x[i * ic + q] as i64 - x[j * ic + q] as i64;
                                t * t
                            })
                            .sum();
                        (d, j)
                    })
                    .collect();
                c.sort();
                c.into_iter().take(self.k).map(|(_, j)| j).collect()
            })
            .collect()
    }

    fn reference(
        &self,
        n: usize,
        x: &[i8],
        src: &[u16],
        dst: &[u16],
        batch: Option<&[u16]>,
    ) -> Vec<i8> {
        let (ic, hc) = (self.in_ch, self.hidden);
        let zp = self.zp_x as i64;
        let nbrs = self.neighbours(n, x, src, dst, batch);
        let mut out = vec![];
        for (i, js) in nbrs.iter().enumerate() {
            let msgs: Vec<Vec<i64>> = js
                .iter()
                .map(|&j| {
                    // Unsplit: W_a·x_i + W_b·(x_j − x_i), all minus zp.
                    let a: Vec<i32> = (0..hc)
                        .map(|c| {
                            let v: i64 = (0..ic)
                                .map(|q| {
                                    let xi = x[i * ic + q] as i64 - zp;
                                    let xj = x[j * ic + q] as i64 - zp;
                                    self.wa[c * ic + q] as i64 * xi
                                        + self.wb[c * ic + q] as i64 * (xj - xi)
                                })
                                .sum();
                            act_i32((v as i32).saturating_add(self.recs1[c].bias), self.act1)
                        })
                        .collect();
                    if self.w2.is_empty() {
                        return a.iter().map(|&v| v as i64).collect();
                    }
                    let h: Vec<i8> = a
                        .iter()
                        .zip(&self.recs1)
                        .map(|(&v, r)| requant(v, r.mult, r.shift, self.zp_h))
                        .collect();
                    dense(&self.w2, hc, &h, self.zp_h)
                        .iter()
                        .zip(&self.recs2)
                        .map(|(&v, r)| act_i32((v as i32).saturating_add(r.bias), self.act2) as i64)
                        .collect()
                })
                .collect();
            let last = if self.w2.is_empty() {
                &self.recs1
            } else {
                &self.recs2
            };
            for (c, r) in last.iter().enumerate() {
                let col = msgs.iter().map(|m| m[c] as i128);
                let v: i128 = if msgs.is_empty() {
                    0
                } else {
                    match self.aggr {
                        Aggr::Max => col.max().unwrap(),
                        Aggr::Sum => col.sum(),
                        Aggr::Mean => round_div(col.sum(), msgs.len() as i128),
                    }
                };
                let v = v.clamp(i32::MIN as i128, i32::MAX as i128) as i32;
                out.push(requant(v, r.mult, r.shift, self.zp_out));
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

fn check(g: &Ec, rng: &mut Rng, n: usize, e: usize, graphs: usize) -> Vec<i8> {
    let (src, dst) = random_graph(rng, n, e);
    // Few distinct values so that kNN ties occur.
    let x: Vec<i8> = (0..n * g.in_ch)
        .map(|_| rng.range(-6, 6) as i8 * 9)
        .collect();
    let batch: Vec<u16> = (0..n).map(|i| (i * graphs / n.max(1)) as u16).collect();
    let batch = (graphs > 1).then_some(&batch[..]);
    let mut inp = input(n, &x, &src, &dst);
    inp.batch = batch;
    let got = run(&g.model(), &inp).unwrap();
    let want = g.reference(n, &x, &src, &dst, batch);
    assert_eq!(got[0].2, want, "{g:?}");
    want
}

#[test]
fn edge_conv_matches_reference_for_every_aggregation() {
    let mut rng = Rng(0xec);
    for aggr in [Aggr::Max, Aggr::Mean, Aggr::Sum] {
        let mut all = vec![];
        for two in [false, true] {
            for _ in 0..6 {
                let g = Ec::random(&mut rng, aggr, 0, two);
                all.extend(check(&g, &mut rng, 14, 40, 1));
            }
        }
        assert_spread(&all);
    }
}

#[test]
fn dynamic_edge_conv_matches_reference_with_batches() {
    let mut rng = Rng(0xd9);
    for k in [1, 4, 8] {
        let mut all = vec![];
        for aggr in [Aggr::Max, Aggr::Mean, Aggr::Sum] {
            for two in [false, true] {
                let g = Ec::random(&mut rng, aggr, k, two);
                all.extend(check(&g, &mut rng, 20, 10, 2));
                all.extend(check(&g, &mut rng, 9, 0, 3));
            }
        }
        assert_spread(&all);
    }
}

/// With `W_a = 0`, one layer, identity `W_b` on one channel, max
/// aggregation and unit rescale, the output is `max_j (x_j − x_i)` over the
/// kNN of `i` — worked out here by hand for points on a line: the point
/// itself is a neighbour (so the max is ≥ 0), a graph of fewer than `k`
/// points gives all of them, and the two graphs of the batch stay apart.
#[test]
fn knn_includes_self_and_keeps_graphs_apart() {
    let g = Ec {
        in_ch: 1,
        hidden: 1,
        out_ch: 1,
        k: 2,
        aggr: Aggr::Max,
        zp_x: 0,
        zp_h: 0,
        zp_out: 0,
        wa: vec![0],
        wb: vec![1],
        recs1: vec![ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 1,
        }],
        act1: Activation::None,
        w2: vec![],
        recs2: vec![],
        act2: Activation::None,
    };
    // Graph 0: points 0, 10, 30; graph 1: 11 alone.
    let x = [0i8, 10, 30, 11];
    let batch = [0u16, 0, 0, 1];
    let inp = input(4, &x, &[], &[]).with_batch(&batch);
    let got = &run(&g.model(), &inp).unwrap()[0].2;
    // Node 0: {0, 10} → 10. Node 1: {10, 0} (|0−10| = 10 < 20) → max(0, −10) = 0.
    // Node 2: {30, 10} → max(0, −20) = 0. Node 3: only itself → 0 (not 11 − 10).
    assert_eq!(got, &[10, 0, 0, 0]);
    // With k = 3 node 1 also sees 30: 20.
    let g3 = Ec { k: 3, ..g.clone() };
    let got = &run(&g3.model(), &inp).unwrap()[0].2;
    assert_eq!(got, &[30, 20, 0, 0]);
}

#[test]
fn node_without_in_edges_gets_zero() {
    let mut rng = Rng(4);
    for aggr in [Aggr::Max, Aggr::Mean, Aggr::Sum] {
        let g = Ec::random(&mut rng, aggr, 0, true);
        let x = rng.i8s(3 * g.in_ch);
        let got = &run(&g.model(), &input(3, &x, &[0], &[1])).unwrap()[0].2;
        for (o, r) in got.iter().zip(&g.recs2) {
            assert_eq!(*o, requant(0, r.mult, r.shift, g.zp_out));
        }
        assert_eq!(got, &g.reference(3, &x, &[0], &[1], None));
    }
}

#[test]
fn arena_bytes_counts_edge_conv_scratch_exactly() {
    let mut rng = Rng(3);
    for k in [0usize, 5] {
        let g = Ec::random(&mut rng, Aggr::Max, k, true);
        let bytes = g.model();
        let m = Model::from_bytes(&bytes).unwrap();
        let r8 = |x: usize| x.div_ceil(8) * 8;
        let (n, e) = (10, 20);
        let (h, o) = (g.hidden, g.out_ch);
        let graph = r8(4 * (n + 1)) + r8(2 * e) + r8(4);
        let slots = r8(n * g.in_ch) + r8(n * o);
        // Biases (H, out), weight sums (H, H, out).
        let mut scratch = 3 * r8(4 * h) + 2 * r8(4 * o);
        // p, a (H), h (H i8), m (out), agg (out i64); no per-node table
        // (q_j is recomputed per edge), so nothing grows with N·H.
        scratch += 2 * r8(4 * h) + r8(h) + r8(4 * o) + r8(8 * o);
        if k > 0 {
            scratch += r8(2 * n * k) + r8(2 * n) + r8(4 * k);
        }
        assert_eq!(m.arena_bytes(n, e, 1), graph + slots + scratch, "k={k}");
    }
}

fn malformed(f: impl Fn(&mut Op)) -> Result<(), Error> {
    let mut rng = Rng(9);
    let g = Ec::random(&mut rng, Aggr::Max, 4, true);
    let mut w = writer();
    let x = w.add_tensor(node(g.in_ch as u16, 0.1, 0));
    let y = w.add_tensor(node(g.out_ch as u16, 0.1, 0));
    let mut op = g.op(&mut w, x, y);
    f(&mut op);
    w.add_op(op);
    match w.finish(x, &[y], 8, 8, 1) {
        Ok(bytes) => Model::from_bytes(&bytes).map(|_| ()),
        Err(WriteError::Invalid(e)) => Err(e),
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn malformed_edge_conv_ops_are_invalid_op_errors() {
    assert!(malformed(|_| {}).is_ok());
    let bad = Err(Error::InvalidOp { op: 0 });
    let set = |f: fn(&mut Op)| malformed(f);
    assert_eq!(
        set(|op| if let Op::EdgeConv(EdgeConv { hidden, .. }) = op {
            *hidden = 0
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::EdgeConv(EdgeConv { hidden, .. }) = op {
            *hidden += 1
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::EdgeConv(EdgeConv { w_nbr, .. }) = op {
            w_nbr.len -= 1
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::EdgeConv(EdgeConv { w_self, .. }) = op {
            w_self.offset = 1 << 30
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::EdgeConv(EdgeConv { params1, .. }) = op {
            params1.len += 4
        }),
        bad
    );
    assert_eq!(
        set(|op| if let Op::EdgeConv(EdgeConv { params2, .. }) = op {
            *params2 = Section::default()
        }),
        bad
    );
    // One layer whose hidden width differs from the output.
    assert_eq!(
        set(
            |op| if let Op::EdgeConv(EdgeConv { w2, params2, .. }) = op {
                *w2 = Section::default();
                *params2 = Section::default();
            }
        ),
        bad
    );
    assert_eq!(
        set(|op| if let Op::EdgeConv(EdgeConv { act1, .. }) = op {
            *act1 = Activation::LeakyRelu { alpha_q16: -1 }
        }),
        bad
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn runtime_equals_reference(seed in any::<u64>(), k in 0usize..10, aggr in 0usize..3,
                                two in any::<bool>(), n in 1usize..24, e in 0usize..48,
                                graphs in 1usize..4) {
        let mut rng = Rng(seed | 1);
        let g = Ec::random(&mut rng, [Aggr::Max, Aggr::Mean, Aggr::Sum][aggr], k, two);
        check(&g, &mut rng, n, e, graphs.min(n));
    }
}

/// Regression: `shapes-dgcnn` must fit the emulated Cortex-M0's
/// 16 KiB of RAM with its stack. With an `N·H` i32 table per EdgeConv the
/// arena was 15,520 B for a 64-point cloud, the stack (≈ 3.9 KB) grew into
/// it, the scratch writes clobbered a return address and the firmware
/// hard-faulted (QEMU then spun in the default handler, looking like a hang).
/// `boards/qemu-m0/memory.x` reserves 4.5 KiB of stack; its other `.bss` is
/// 12 B.
/// The emulated M0's stack reserve, read from its linker script (the one place it is set).
fn m0_stack_reserve() -> usize {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/qemu-m0/memory.x");
    let text = std::fs::read_to_string(&p).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("STACK_RESERVE ="))
        .expect("STACK_RESERVE in boards/qemu-m0/memory.x");
    let value = line
        .trim_end_matches(';')
        .rsplit(':')
        .next()
        .unwrap()
        .trim();
    value.parse().unwrap()
}

#[test]
fn shapes_dgcnn_arena_leaves_the_m0_stack_reserve() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/shapes-dgcnn/shapes-dgcnn.tgnn");
    let Ok(bytes) = std::fs::read(&p) else {
        eprintln!("skip: {} is not built", p.display());
        return;
    };
    let m = Model::from_bytes(&bytes).unwrap();
    let arena = m.arena_bytes(64, 1, 1);
    let (ram, reserve, other_bss) = (16 * 1024, m0_stack_reserve(), 16);
    assert!(
        arena + reserve + other_bss <= ram,
        "arena {arena} B + {reserve} B stack reserve + {other_bss} B > {ram} B of M0 RAM"
    );
    // Doubling the points must not add per-node i32 rows of the hidden
    // width (32 channels: 4·32 B per point and layer); the kNN lists
    // (k = 10 u16 + a count per point) and the int8 tensors do grow.
    let growth = m.arena_bytes(128, 1, 1) - arena;
    assert!(
        growth < 64 * 4 * 32,
        "arena grows by {growth} B from 64 to 128 points"
    );
}
