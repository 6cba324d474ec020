//! Link prediction (helper `link`): the pair decoders `InnerProduct` and
//! `PairFeatures` (Hadamard, concat) followed by `Linear` on pair rows,
//! checked against references written here from the documented semantics;
//! pair validation (typed errors) and the exactness of
//! `Model::arena_bytes_with_pairs`.

mod common;
use common::*;
use tinygnn::format::writer::{ModelWriter, WriteError};
use tinygnn::format::{Activation, Op, PairMode, TensorDesc, TensorKind};
use tinygnn::ops::{Act, InnerProduct, Linear, PairFeatures};
use tinygnn::{Error, GraphInput, Model, NodePairs, Session};

fn pair(channels: u16, scale: f32, zero_point: i8) -> TensorDesc {
    TensorDesc {
        kind: TensorKind::Pair,
        channels,
        scale,
        zero_point,
    }
}

/// A fixture model under construction: a writer and its node input `x`.
struct Fixture {
    w: ModelWriter,
    x: u8,
}

impl Fixture {
    /// A model whose input is a node tensor of `c` channels (scale 0.1, zero point 0).
    fn new(c: u16) -> Self {
        let mut w = ModelWriter::new();
        let x = w.add_tensor(node(c, 0.1, 0));
        Fixture { w, x }
    }

    /// `input` → ReLU → a new tensor `out`.
    fn relu(&mut self, input: u8, out: TensorDesc) -> u8 {
        let output = self.w.add_tensor(out);
        self.w.add_op(Op::Act(Act {
            input,
            output,
            act: Activation::Relu,
        }));
        output
    }

    /// `input` → InnerProduct (rescale 1/2) → a new tensor `out`.
    fn inner_product(&mut self, input: u8, out: TensorDesc) -> u8 {
        let output = self.w.add_tensor(out);
        self.w.add_op(Op::InnerProduct(InnerProduct {
            input,
            output,
            mult: 1 << 30,
            shift: 0,
        }));
        output
    }

    /// `input` → PairFeatures(`mode`) → a new tensor `out`.
    fn pair_features(&mut self, input: u8, out: TensorDesc, mode: PairMode) -> u8 {
        let output = self.w.add_tensor(out);
        self.w.add_op(Op::PairFeatures(PairFeatures {
            input,
            output,
            mode,
        }));
        output
    }

    /// The model bytes with `outputs`, for 10 nodes, 10 edges, 1 graph.
    fn finish(&self, outputs: &[u8]) -> Result<Vec<u8>, WriteError> {
        self.w.finish(self.x, outputs, 10, 10, 1)
    }
}

/// x(2, node) → ReLU → y(2, node): a model without a pair head, and y.
fn relu_model() -> (Fixture, u8) {
    let mut f = Fixture::new(2);
    let y = f.relu(f.x, node(2, 0.1, 0));
    (f, y)
}

fn r8(x: usize) -> usize {
    x.div_ceil(8) * 8
}

/// Runs `bytes` on `input`; checks that exactly `arena_bytes_with_pairs`
/// suffice and one byte less is `ArenaTooSmall` with the exact need.
fn run_pairs(bytes: &[u8], input: &GraphInput) -> Result<Vec<(usize, usize, Vec<i8>)>, Error> {
    let model = Model::from_bytes(bytes)?;
    let p = input.pairs.map_or(0, |p| p.sources.len());
    let (n, e, g) = (input.num_nodes, input.sources.len(), input.num_graphs());
    let need = model.arena_bytes_with_pairs(n, e, g, p);
    let mut buf = Vec::new();
    let outs = {
        let arena = aligned(&mut buf, need);
        let mut s = Session::new(&model, arena);
        s.run(input)?;
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
    Ok(outs)
}

fn with_pairs<'a>(mut g: GraphInput<'a>, s: &'a [u16], t: &'a [u16]) -> GraphInput<'a> {
    g.pairs = Some(NodePairs {
        sources: s,
        targets: t,
    });
    g
}

/// Random pairs over `n` nodes (self-pairs and duplicates included).
fn random_pairs(rng: &mut Rng, n: usize, p: usize) -> (Vec<u16>, Vec<u16>) {
    (0..p)
        .map(|_| {
            (
                (rng.next() % n as u64) as u16,
                (rng.next() % n as u64) as u16,
            )
        })
        .unzip()
}

fn centered(a: i8, zp: i8) -> i64 {
    a as i64 - zp as i64
}

/// x (node, C) → InnerProduct → y (pair, 1).
fn inner_model(c: u16, zp: i8, zp_out: i8, mult: i32, shift: i32, max_pairs: u32) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let x = w.add_tensor(node(c, 0.05, zp));
    let y = w.add_tensor(pair(1, 0.1, zp_out));
    w.add_op(Op::InnerProduct(InnerProduct {
        input: x,
        output: y,
        mult,
        shift,
    }));
    w.set_max_pairs(max_pairs);
    w.finish(x, &[y], 64, 64, 1).unwrap()
}

#[test]
fn inner_product_matches_reference() {
    let mut rng = Rng(41);
    for seed in 0..40 {
        let n = 1 + (rng.next() % 20) as usize;
        let c = 1 + (rng.next() % 40) as u16;
        let p = (rng.next() % 30) as usize;
        let zp = rng.i8();
        let zp_out = rng.i8();
        let (mult, shift) = tinygnn::quant::quantize_multiplier(
            (0.2 + (rng.next() % 1000) as f64 / 1000.0) / (c as f64 * 300.0),
        );
        let bytes = inner_model(c, zp, zp_out, mult, shift, 32);
        let x = rng.i8s(n * c as usize);
        let (s, t) = random_pairs(&mut rng, n, p);
        let outs = run_pairs(&bytes, &with_pairs(input(n, &x, &[], &[]), &s, &t)).unwrap();
        let expect: Vec<i8> = s
            .iter()
            .zip(&t)
            .map(|(&a, &b)| {
                let (a, b) = (a as usize * c as usize, b as usize * c as usize);
                let acc: i64 = (0..c as usize)
                    .map(|k| centered(x[a + k], zp) * centered(x[b + k], zp))
                    .sum();
                requant(acc as i32, mult, shift, zp_out)
            })
            .collect();
        assert_eq!(outs[0], (p, 1, expect), "seed {seed}");
    }
}

#[test]
fn inner_product_extremes_do_not_overflow() {
    // Largest channel count, every value at the far end from the zero point:
    // |acc| = 4096 · 255² must come out exact (then saturate in requant).
    let c = tinygnn::MAX_CHANNELS as u16;
    let (mult, shift) = tinygnn::quant::quantize_multiplier(1.0 / (4096.0 * 65025.0 / 100.0));
    let bytes = inner_model(c, -128, 0, mult, shift, 4);
    let x: Vec<i8> = [vec![127i8; c as usize], vec![-128i8; c as usize]].concat();
    let s = [0u16, 0, 1];
    let t = [0u16, 1, 1];
    let outs = run_pairs(&bytes, &with_pairs(input(2, &x, &[], &[]), &s, &t)).unwrap();
    let acc = 4096i64 * 255 * 255;
    assert!(acc < i32::MAX as i64);
    let full = requant(acc as i32, mult, shift, 0);
    assert_eq!(outs[0].2, vec![full, 0, 0]);
    assert_eq!(full, 100);
}

/// x (node, C) → PairFeatures(mode) → h (pair) → Linear+ReLU → u (pair, 4)
/// → Linear → y (pair, 1).
fn mlp_model(rng: &mut Rng, c: u16, zp: i8, hadamard: bool) -> (Vec<u8>, MlpParams) {
    let mut w = ModelWriter::new();
    let x = w.add_tensor(node(c, 0.05, zp));
    let (hc, mode, hzp) = if hadamard {
        let (mult, shift) = tinygnn::quant::quantize_multiplier(1.0 / 150.0);
        (c, PairMode::Hadamard { mult, shift }, rng.i8() / 2)
    } else {
        (2 * c, PairMode::Concat, zp)
    };
    let h = w.add_tensor(pair(hc, 0.05, hzp));
    let u = w.add_tensor(pair(4, 0.1, -20));
    let y = w.add_tensor(pair(1, 0.2, 3));
    w.add_op(Op::PairFeatures(PairFeatures {
        input: x,
        output: h,
        mode,
    }));
    let w1 = rng.weights(4 * hc as usize);
    let r1 = records(rng, 4, 500, 1.0 / (hc as f64 * 100.0));
    let w2 = rng.weights(4);
    let r2 = records(rng, 1, 500, 1.0 / 400.0);
    let (ws1, ps1) = (w.add_i8(&w1), w.add_channel_params(&r1));
    let (ws2, ps2) = (w.add_i8(&w2), w.add_channel_params(&r2));
    w.add_op(Op::Linear(Linear {
        input: h,
        output: u,
        weights: ws1,
        params: ps1,
        act: Activation::Relu,
    }));
    w.add_op(Op::Linear(Linear {
        input: u,
        output: y,
        weights: ws2,
        params: ps2,
        act: Activation::None,
    }));
    w.set_max_pairs(50);
    let bytes = w.finish(x, &[y, h], 64, 64, 1).unwrap();
    (
        bytes,
        MlpParams {
            mode,
            hc: hc as usize,
            hzp,
            w1,
            r1,
            w2,
            r2,
        },
    )
}

struct MlpParams {
    mode: PairMode,
    hc: usize,
    hzp: i8,
    w1: Vec<i8>,
    r1: Vec<tinygnn::format::writer::ChannelRecord>,
    w2: Vec<i8>,
    r2: Vec<tinygnn::format::writer::ChannelRecord>,
}

fn mlp_case(hadamard: bool) {
    let mut rng = Rng(if hadamard { 7 } else { 8 });
    for seed in 0..30 {
        let n = 1 + (rng.next() % 12) as usize;
        let c = 1 + (rng.next() % 16) as u16;
        let zp = rng.i8() / 4;
        let p = (rng.next() % 40) as usize;
        let (bytes, m) = mlp_model(&mut rng, c, zp, hadamard);
        let x = rng.i8s(n * c as usize);
        let (s, t) = random_pairs(&mut rng, n, p);
        let outs = run_pairs(&bytes, &with_pairs(input(n, &x, &[], &[]), &s, &t)).unwrap();
        let c = c as usize;
        let mut hs = Vec::new();
        let mut ys = Vec::new();
        for (&a, &b) in s.iter().zip(&t) {
            let (za, zb) = (&x[a as usize * c..][..c], &x[b as usize * c..][..c]);
            let h: Vec<i8> = match m.mode {
                PairMode::Hadamard { mult, shift } => za
                    .iter()
                    .zip(zb)
                    .map(|(&u, &v)| {
                        requant(
                            (centered(u, zp) * centered(v, zp)) as i32,
                            mult,
                            shift,
                            m.hzp,
                        )
                    })
                    .collect(),
                PairMode::Concat => [za, zb].concat(),
            };
            let u: Vec<i8> = dense(&m.w1, m.hc, &h, m.hzp)
                .into_iter()
                .zip(&m.r1)
                .map(|(acc, r)| finish(acc, r, Activation::Relu, -20))
                .collect();
            let y = finish(dense(&m.w2, 4, &u, -20)[0], &m.r2[0], Activation::None, 3);
            hs.extend(h);
            ys.push(y);
        }
        assert_eq!(outs[0], (p, 1, ys), "seed {seed}");
        assert_eq!(outs[1], (p, m.hc, hs), "seed {seed}");
    }
}

#[test]
fn hadamard_mlp_matches_reference() {
    mlp_case(true);
}

#[test]
fn concat_mlp_matches_reference() {
    mlp_case(false);
}

#[test]
fn arena_bytes_with_pairs_is_exact_and_by_hand() {
    // x(4, node) kept; y(1, pair) kept.
    let bytes = inner_model(4, 0, 0, 1 << 30, 0, 40);
    let m = Model::from_bytes(&bytes).unwrap();
    assert!(m.has_pairs());
    assert_eq!(m.max_pairs(), 40);
    let graph = |n: usize, e: usize| r8(4 * (n + 1)) + r8(2 * e) + r8(4);
    for (n, e, p) in [(5, 3, 7), (0, 0, 0), (17, 40, 40), (3, 1, 1)] {
        assert_eq!(
            m.arena_bytes_with_pairs(n, e, 1, p),
            graph(n, e) + r8(4 * n) + r8(p),
            "n={n} e={e} p={p}"
        );
    }
    // arena_bytes sizes for the full pair capacity.
    assert_eq!(
        m.arena_bytes(5, 3, 1),
        m.arena_bytes_with_pairs(5, 3, 1, 40)
    );
    // A model without a pair head ignores the pair count.
    let (f, y) = relu_model();
    let plain = f.finish(&[y]).unwrap();
    let pm = Model::from_bytes(&plain).unwrap();
    assert!(!pm.has_pairs());
    assert_eq!(
        pm.arena_bytes_with_pairs(5, 3, 1, 1000),
        pm.arena_bytes(5, 3, 1)
    );
}

#[test]
fn pair_tensor_shares_slots_by_max_size() {
    // x(3,node) → Act → a(3,node) → InnerProduct → y(1,pair): a is dead after
    // the inner product but y cannot take a's slot (an op's output never
    // shares an input's slot), so three slots.
    // x → Act → a → Hadamard h(3,pair) → Act → k(3,pair): k reuses a's slot,
    // sized max(N·3, P·3).
    let mut f = Fixture::new(3);
    let a = f.relu(f.x, node(3, 0.1, 0));
    let had = PairMode::Hadamard {
        mult: 1 << 30,
        shift: 1,
    };
    let h = f.pair_features(a, pair(3, 0.1, 0), had);
    let k = f.relu(h, pair(3, 0.1, 0));
    f.w.set_max_pairs(100);
    let bytes = f.w.finish(f.x, &[k], 100, 100, 1).unwrap();
    let m = Model::from_bytes(&bytes).unwrap();
    let graph = |n: usize, e: usize| r8(4 * (n + 1)) + r8(2 * e) + r8(4);
    for (n, e, p) in [(5, 2, 9), (9, 2, 5), (4, 0, 4)] {
        let shared = r8((3 * n).max(3 * p));
        assert_eq!(
            m.arena_bytes_with_pairs(n, e, 1, p),
            graph(n, e) + r8(3 * n) + shared + r8(3 * p),
            "n={n} p={p}"
        );
    }
    let x: Vec<i8> = (0..15).map(|i| i as i8 - 7).collect();
    let s = [0u16, 1, 2, 3, 4, 4, 0, 2, 1];
    let t = [4u16, 3, 2, 1, 0, 4, 0, 1, 1];
    let outs = run_pairs(&bytes, &with_pairs(input(5, &x, &[], &[]), &s, &t)).unwrap();
    let expect: Vec<i8> = s
        .iter()
        .zip(&t)
        .flat_map(|(&a, &b)| {
            let x = &x;
            (0..3).map(move |c| {
                let (u, v) = (x[a as usize * 3 + c].max(0), x[b as usize * 3 + c].max(0));
                requant(u as i32 * v as i32, 1 << 30, 1, 0).max(0)
            })
        })
        .collect();
    assert_eq!(outs[0], (9, 3, expect));
}

#[test]
fn bad_pairs_get_typed_errors() {
    let bytes = inner_model(2, 0, 0, 1 << 30, 0, 3);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0u8; 4096];
    let x = [1i8, 2, 3, 4, 5, 6];
    let g = input(3, &x, &[0], &[1]);
    let mut run = |g: &GraphInput| Session::new(&model, &mut arena).run(g).map(|o| o.rows);
    assert_eq!(run(&g), Err(Error::MissingPairs));
    assert_eq!(
        run(&with_pairs(g, &[0, 1], &[1])),
        Err(Error::PairListMismatch)
    );
    assert_eq!(
        run(&with_pairs(g, &[0, 1, 2, 0], &[1, 1, 1, 1])),
        Err(Error::TooManyPairs { pairs: 4, max: 3 })
    );
    assert_eq!(
        run(&with_pairs(g, &[0, 3], &[1, 1])),
        Err(Error::PairIndexOutOfRange { pair: 1, index: 3 })
    );
    assert_eq!(
        run(&with_pairs(g, &[0, 1, 2], &[1, 1, 65535])),
        Err(Error::PairIndexOutOfRange {
            pair: 2,
            index: 65535
        })
    );
    // Zero pairs is valid: zero rows.
    assert_eq!(run(&with_pairs(g, &[], &[])), Ok(0));
    assert_eq!(run(&with_pairs(g, &[2, 2, 0], &[0, 2, 1])), Ok(3));
    // Zero nodes and zero pairs.
    assert_eq!(run(&with_pairs(input(0, &[], &[], &[]), &[], &[])), Ok(0));
    // Any pair on an empty graph is out of range.
    assert_eq!(
        run(&with_pairs(input(0, &[], &[], &[]), &[0], &[0])),
        Err(Error::PairIndexOutOfRange { pair: 0, index: 0 })
    );
}

#[test]
fn models_without_pair_head_ignore_pairs() {
    let (f, y) = relu_model();
    let bytes = f.finish(&[y]).unwrap();
    let xs = [1i8, -2, 3, -4];
    // Mismatched, out-of-range pairs: ignored.
    let g = with_pairs(input(2, &xs, &[], &[]), &[9, 9, 9], &[1]);
    let outs = run(&bytes, &g).unwrap();
    assert_eq!(outs[0].2, vec![1, 0, 3, 0]);
}

#[test]
fn invalid_pair_models_are_rejected() {
    let build = |op: &dyn Fn(&mut Fixture) -> u8, max_pairs: u32| {
        let mut f = Fixture::new(3);
        let y = op(&mut f);
        f.w.set_max_pairs(max_pairs);
        f.finish(&[y])
    };
    let ip = |out: TensorDesc| move |f: &mut Fixture| f.inner_product(f.x, out);
    let pf =
        |out: TensorDesc, mode: PairMode| move |f: &mut Fixture| f.pair_features(f.x, out, mode);
    let had = PairMode::Hadamard {
        mult: 1 << 30,
        shift: 0,
    };
    // Good ones build (the writer checks with Model::from_bytes).
    assert!(build(&ip(pair(1, 0.1, 0)), 1).is_ok());
    assert!(build(&pf(pair(3, 0.3, 5), had), 1).is_ok());
    assert!(build(&pf(pair(6, 0.1, 0), PairMode::Concat), 1).is_ok());
    let rejected = |bytes: Result<Vec<u8>, _>| bytes.is_err();
    // A pair tensor with no pair capacity.
    assert!(rejected(build(&ip(pair(1, 0.1, 0)), 0)));
    // Inner product: one channel, pair output.
    assert!(rejected(build(&ip(pair(2, 0.1, 0)), 1)));
    assert!(rejected(build(&ip(node(1, 0.1, 0)), 1)));
    // Hadamard keeps the channel count; concat doubles it and keeps the quantization.
    assert!(rejected(build(&pf(pair(4, 0.1, 0), had), 1)));
    assert!(rejected(build(&pf(node(3, 0.1, 0), had), 1)));
    assert!(rejected(build(&pf(pair(5, 0.1, 0), PairMode::Concat), 1)));
    assert!(rejected(build(&pf(pair(6, 0.1, 1), PairMode::Concat), 1)));
    assert!(rejected(build(&pf(pair(6, 0.2, 0), PairMode::Concat), 1)));
    // A pair tensor cannot feed a node-level op or become a node tensor.
    let pair_to_node = |f: &mut Fixture| {
        let h = f.inner_product(f.x, pair(1, 0.1, 0));
        f.inner_product(h, node(3, 0.1, 0))
    };
    assert!(rejected(build(&pair_to_node, 1)));
    // max_pairs above MAX_EDGES is bad metadata.
    assert!(rejected(build(
        &ip(pair(1, 0.1, 0)),
        tinygnn::MAX_EDGES + 1
    )));
}

#[test]
fn linear_on_pairs_cannot_change_kind() {
    let mut f = Fixture::new(2);
    let h = f.inner_product(f.x, pair(1, 0.1, 0));
    let y = f.w.add_tensor(node(1, 0.1, 0));
    let ws = f.w.add_i8(&[1]);
    let ps =
        f.w.add_channel_params(&[tinygnn::format::writer::ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 0,
        }]);
    f.w.add_op(Op::Linear(Linear {
        input: h,
        output: y,
        weights: ws,
        params: ps,
        act: Activation::None,
    }));
    f.w.set_max_pairs(4);
    assert!(f.finish(&[y]).is_err());
}

#[test]
fn inner_product_fine_scale_is_exact() {
    // Values within ±5 of the zero point and rescale 1 or 1/2: every
    // accumulator step shows in the output.
    let mut rng = Rng(99);
    for seed in 0..30 {
        let n = 1 + (rng.next() % 10) as usize;
        let c = 1 + (rng.next() % 4) as u16;
        let zp = rng.i8() / 2;
        let zp_out = rng.i8() / 4;
        let half = seed % 2 == 0;
        let (mult, shift) = tinygnn::quant::quantize_multiplier(if half { 0.5 } else { 1.0 });
        let bytes = inner_model(c, zp, zp_out, mult, shift, 32);
        let x: Vec<i8> = (0..n * c as usize)
            .map(|_| zp + rng.range(-5, 5) as i8)
            .collect();
        let (s, t) = random_pairs(&mut rng, n, 20);
        let outs = run_pairs(&bytes, &with_pairs(input(n, &x, &[], &[]), &s, &t)).unwrap();
        let expect: Vec<i8> = s
            .iter()
            .zip(&t)
            .map(|(&a, &b)| {
                let (a, b) = (a as usize * c as usize, b as usize * c as usize);
                let acc: i64 = (0..c as usize)
                    .map(|k| centered(x[a + k], zp) * centered(x[b + k], zp))
                    .sum();
                if half {
                    // The documented requantization (TFLM rounding).
                    requant(acc as i32, mult, shift, zp_out)
                } else {
                    (acc + zp_out as i64).clamp(-128, 127) as i8
                }
            })
            .collect();
        assert_eq!(outs[0], (20, 1, expect), "seed {seed}");
    }
}

/// `bytes` with `extra` appended to its metadata section (offsets, length
/// and CRC fixed up), to forge pair-capacity trailers.
fn with_meta_suffix(bytes: &[u8], extra: &[u8]) -> Vec<u8> {
    with_meta(bytes, |meta| meta.extend_from_slice(extra))
}

/// `bytes` with its metadata section changed by `edit` (the data section
/// moved after it, offsets, length and CRC fixed up).
fn with_meta(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let (mo, ml) = (u32_at(bytes, 16) as usize, u32_at(bytes, 20) as usize);
    let (d_off, dl) = (u32_at(bytes, 24) as usize, u32_at(bytes, 28) as usize);
    let mut meta = bytes[mo..mo + ml].to_vec();
    edit(&mut meta);
    let mut out = bytes[..32].to_vec();
    out.extend_from_slice(&meta);
    while out.len() % 16 != 0 {
        out.push(0);
    }
    let new_d = out.len();
    out.extend_from_slice(&bytes[d_off..d_off + dl]);
    let len = out.len() as u32;
    out[8..12].copy_from_slice(&len.to_le_bytes());
    out[20..24].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    out[24..28].copy_from_slice(&(new_d as u32).to_le_bytes());
    let crc = tinygnn::format::CRC.checksum(&out[16..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn pair_capacity_trailer_is_canonical() {
    // A model without pairs: no trailer; its bytes do not change.
    let (mut f, y) = relu_model();
    let plain = f.finish(&[y]).unwrap();
    assert_eq!(with_meta_suffix(&plain, &[]), plain);
    assert_eq!(Model::from_bytes(&plain).unwrap().max_pairs(), 0);
    // The trailer is one varint: 300 = [0xAC, 0x02].
    let m = with_meta_suffix(&plain, &[0xAC, 0x02]);
    assert_eq!(Model::from_bytes(&m).unwrap().max_pairs(), 300);
    f.w.set_max_pairs(300);
    assert_eq!(f.finish(&[y]).unwrap(), m);
    // An explicit 0, bytes after the trailer, a truncated varint, or a
    // capacity above MAX_EDGES (2^24 + 1 = [0x81, 0x80, 0x80, 0x08]).
    for bad in [&[0u8][..], &[5, 0], &[0x80], &[0x81, 0x80, 0x80, 0x08]] {
        assert_eq!(
            Model::from_bytes(&with_meta_suffix(&plain, bad)).err(),
            Some(Error::BadMetadata),
            "{bad:?}"
        );
    }
    // A pair model without its trailer: the pair tensor is invalid.
    let pm = inner_model(2, 0, 0, 1 << 30, 0, 5);
    let stripped = with_meta(&pm, |meta| assert_eq!(meta.pop(), Some(5)));
    assert_eq!(
        Model::from_bytes(&stripped).err(),
        Some(Error::InvalidTensor { tensor: 1 })
    );
}
