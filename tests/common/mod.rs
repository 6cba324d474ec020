//! Shared helpers of the integration tests: a deterministic RNG, model
//! building shortcuts, an aligned arena, and a runner that also checks that
//! `Model::arena_bytes` is exact.
#![allow(dead_code)]

use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Activation, TensorDesc, TensorKind};
use tinygnn::ops::GcnConv;
use tinygnn::{Error, GraphInput, Model, Session};

/// xorshift64*: deterministic test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.i8()).collect()
    }
    /// Weights in [-127, 127].
    pub fn weights(&mut self, n: usize) -> Vec<i8> {
        (0..n)
            .map(|_| ((self.next() % 255) as i64 - 127) as i8)
            .collect()
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

pub fn node(channels: u16, scale: f32, zero_point: i8) -> TensorDesc {
    TensorDesc {
        kind: TensorKind::Node,
        channels,
        scale,
        zero_point,
    }
}

pub fn graph(channels: u16, scale: f32, zero_point: i8) -> TensorDesc {
    TensorDesc {
        kind: TensorKind::Graph,
        channels,
        scale,
        zero_point,
    }
}

/// Random channel records with small biases and a rescale of about `scale`.
pub fn records(rng: &mut Rng, n: usize, bias: i64, scale: f64) -> Vec<ChannelRecord> {
    (0..n)
        .map(|_| {
            let s = scale * (0.5 + (rng.next() % 1000) as f64 / 1000.0);
            let (mult, shift) = tinygnn::quant::quantize_multiplier(s);
            ChannelRecord {
                bias: rng.range(-bias, bias) as i32,
                mult,
                shift,
            }
        })
        .collect()
}

/// `out = saturate_i8(requant(act(acc + bias)) + zp)` — the documented convention.
pub fn finish(acc: i64, r: &ChannelRecord, act: Activation, zp: i8) -> i8 {
    let acc = (acc.clamp(i32::MIN as i64, i32::MAX as i64) as i32).saturating_add(r.bias);
    let acc = act_i32(acc, act);
    requant(acc, r.mult, r.shift, zp)
}

pub fn act_i32(acc: i32, act: Activation) -> i32 {
    match act {
        Activation::None => acc,
        Activation::Relu => acc.max(0),
        Activation::LeakyRelu { alpha_q16 } => {
            if acc < 0 {
                round_shift(acc as i128 * alpha_q16 as i128, 16) as i32
            } else {
                acc
            }
        }
    }
}

pub fn requant(acc: i32, mult: i32, shift: i32, zp: i8) -> i8 {
    let v = tinygnn::quant::multiply_by_quantized_multiplier(acc, mult, shift) as i64 + zp as i64;
    v.clamp(-128, 127) as i8
}

/// Round half away from zero of `x / 2^s`, written independently of the crate.
pub fn round_shift(x: i128, s: u32) -> i128 {
    let d = 1i128 << s;
    let q = (x.abs() + d / 2) / d;
    if x < 0 {
        -q
    } else {
        q
    }
}

/// Round half away from zero of `n / d`, `d > 0`.
pub fn round_div(n: i128, d: i128) -> i128 {
    let q = (n.abs() + d / 2) / d;
    if n < 0 {
        -q
    } else {
        q
    }
}

/// Floor square root via f64 then exact correction.
pub fn isqrt(n: u128) -> u128 {
    let mut r = (n as f64).sqrt() as u128;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

/// `Σ_k W[c,k]·(x_k − zp)` for one row.
pub fn dense(w: &[i8], in_ch: usize, x: &[i8], zp: i8) -> Vec<i64> {
    w.chunks(in_ch)
        .map(|row| {
            row.iter()
                .zip(x)
                .map(|(&a, &b)| a as i64 * (b as i64 - zp as i64))
                .sum()
        })
        .collect()
}

/// An 8-aligned arena of exactly `len` bytes inside `buf`.
pub fn aligned(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    buf.clear();
    buf.resize(len + 16, 0xA5);
    let off = buf.as_ptr().align_offset(8);
    &mut buf[off..off + len]
}

/// Runs `bytes` on `input` and returns every output as `(rows, channels, data)`.
/// Also checks that exactly `arena_bytes` (`arena_bytes_sparse` for sparse
/// features) suffice and one byte less fails
/// with `ArenaTooSmall` carrying the exact need.
pub fn run(bytes: &[u8], input: &GraphInput) -> Result<Vec<(usize, usize, Vec<i8>)>, Error> {
    let model = Model::from_bytes(bytes)?;
    let (n, e, g) = (input.num_nodes, input.sources.len(), input.num_graphs());
    let need = match input.features {
        tinygnn::Features::SparseI8 { .. } => model.arena_bytes_sparse(n, e, g),
        _ => model.arena_bytes(n, e, g),
    };
    let mut buf = Vec::new();
    let outs = {
        let arena = aligned(&mut buf, need);
        let mut s = Session::new(&model, arena);
        s.run(input)?;
        let outs = (0..model.outputs().len())
            .map(|i| {
                let o = s.output(i).unwrap();
                (o.rows, o.channels, o.data.to_vec())
            })
            .collect::<Vec<_>>();
        // A prepared graph in the same (exact) arena gives the same bytes,
        // twice in a row, and the prepared region is within the arena.
        assert!(model.prepared_bytes(n, e, g) <= need);
        let p = s.prepare(input).expect("prepare after a successful run");
        for _ in 0..2 {
            s.run_prepared(&p, input.features)
                .expect("prepared run after a successful run");
            let again = (0..model.outputs().len())
                .map(|i| {
                    let o = s.output(i).unwrap();
                    (o.rows, o.channels, o.data.to_vec())
                })
                .collect::<Vec<_>>();
            assert_eq!(again, outs, "prepared run differs from the run");
        }
        outs
    };
    if need > 0 {
        let arena = aligned(&mut buf, need - 1);
        let mut s = Session::new(&model, arena);
        match s.run(input) {
            Err(Error::ArenaTooSmall { needed, actual }) => {
                assert_eq!(needed as usize, need);
                assert_eq!(actual as usize, need - 1);
            }
            other => panic!(
                "expected ArenaTooSmall with {} bytes, got {:?}",
                need - 1,
                other.map(|o| o.rows)
            ),
        }
    }
    #[cfg(feature = "incremental")]
    check_incremental(&model, input, &outs);
    Ok(outs)
}

/// Every output of the session's last run.
#[cfg(feature = "incremental")]
fn outputs(s: &Session<'_, '_>, count: usize) -> Vec<(usize, usize, Vec<i8>)> {
    (0..count)
        .map(|i| {
            let o = s.output(i).unwrap();
            (o.rows, o.channels, o.data.to_vec())
        })
        .collect()
}

#[cfg(feature = "incremental")]
/// `input`'s dense features with the rows of `nodes` changed (f32: +0.37
/// on every other value; int8: +37, wrapping); `None` for sparse features.
fn changed_features(input: &GraphInput, nodes: &[u16]) -> Option<(Vec<f32>, Vec<i8>)> {
    let n = input.num_nodes.max(1);
    match input.features {
        tinygnn::Features::F32(x) => {
            let f = x.len() / n;
            let mut y = x.to_vec();
            for &v in nodes {
                for (k, val) in y[v as usize * f..(v as usize + 1) * f]
                    .iter_mut()
                    .enumerate()
                {
                    if k % 2 == 0 {
                        *val += 0.37;
                    }
                }
            }
            Some((y, vec![]))
        }
        tinygnn::Features::I8(x) => {
            let f = x.len() / n;
            let mut y = x.to_vec();
            for &v in nodes {
                for val in &mut y[v as usize * f..(v as usize + 1) * f] {
                    *val = val.wrapping_add(37);
                }
            }
            Some((vec![], y))
        }
        tinygnn::Features::SparseI8 { .. } => None,
    }
}

#[cfg(feature = "incremental")]
/// Incremental runs ([`Session::update`]) against full runs: after
/// `prepare_incremental` (exactly `incremental_arena_bytes` of arena; one
/// byte less is `ArenaTooSmall`) the outputs are `full`'s; after changing
/// the rows of one node, then of two others (and listing a node twice),
/// and after an update that changes nothing, every output equals a fresh
/// full run's on the same features.
fn check_incremental(model: &Model<'_>, input: &GraphInput, full: &[(usize, usize, Vec<i8>)]) {
    if model.num_states() > 0 {
        return;
    }
    let (n, e, g) = (input.num_nodes, input.sources.len(), input.num_graphs());
    let sparse = matches!(input.features, tinygnn::Features::SparseI8 { .. });
    let need = model.incremental_arena_bytes(n, e, g, sparse);
    let count = model.outputs().len();
    let mut buf = Vec::new();
    if need > 0 {
        let arena = aligned(&mut buf, need - 1);
        let mut s = Session::new(model, arena);
        assert_eq!(
            s.prepare_incremental(input).map(|p| p.num_nodes()),
            Err(Error::ArenaTooSmall {
                needed: need as u32,
                actual: need as u32 - 1
            })
        );
    }
    let arena = aligned(&mut buf, need);
    let mut s = Session::new(model, arena);
    let p = s
        .prepare_incremental(input)
        .expect("prepare_incremental after a successful run");
    assert_eq!(outputs(&s, count), full, "prepare_incremental's run");
    s.update(&p, input.features, &[]).unwrap();
    assert_eq!(outputs(&s, count), full, "an update without changes");
    if n == 0 {
        return;
    }
    let steps: [&[u16]; 2] = [&[0], &[(n / 2) as u16, (n - 1) as u16, (n / 2) as u16]];
    let mut changed_so_far: Vec<u16> = Vec::new();
    for nodes in steps {
        changed_so_far.extend_from_slice(nodes);
        let Some((xf, xi)) = changed_features(input, &changed_so_far) else {
            // Sparse features: the same rows, listed as changed.
            s.update(&p, input.features, nodes).unwrap();
            assert_eq!(outputs(&s, count), full, "sparse update of unchanged rows");
            continue;
        };
        let mut next = *input;
        next.features = if xf.is_empty() {
            tinygnn::Features::I8(&xi)
        } else {
            tinygnn::Features::F32(&xf)
        };
        let want = {
            let mut b2 = Vec::new();
            let a2 = aligned(&mut b2, model.arena_bytes(n, e, g));
            let mut fresh = Session::new(model, a2);
            match fresh.run(&next) {
                Ok(_) => outputs(&fresh, count),
                Err(_) => return, // (an overflow on the new features: nothing to compare)
            }
        };
        s.update(&p, next.features, nodes)
            .expect("update of a run that succeeded");
        assert_eq!(outputs(&s, count), want, "update of nodes {nodes:?}");
    }
}

/// Shortcut: a graph input with int8 features.
pub fn input<'a>(n: usize, x: &'a [i8], src: &'a [u16], dst: &'a [u16]) -> GraphInput<'a> {
    GraphInput::new(n, tinygnn::Features::I8(x), src, dst)
}

/// The flags of a [`one_channel_gcn`] model.
#[derive(Clone, Copy)]
pub struct GcnFlags {
    pub add_self_loops: bool,
    pub normalize: bool,
    pub edge_weight: bool,
}

/// A model of one GcnConv with one input and one output channel, `W = [1]`,
/// zero points 0, bias 0 and rescale `2^(shift - 1)` (mult `2^30`).
pub fn one_channel_gcn(
    scale: f32,
    shift: i32,
    flags: GcnFlags,
    max_nodes: u32,
    max_edges: u32,
) -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(1, scale, 0));
    let y = w.add_tensor(node(1, scale, 0));
    let weights = w.add_i8(&[1]);
    let params = w.add_channel_params(&[ChannelRecord {
        bias: 0,
        mult: 1 << 30,
        shift,
    }]);
    w.add_op(tinygnn::format::Op::GcnConv(GcnConv {
        input: x,
        output: y,
        weights,
        params,
        act: Activation::None,
        improved: false,
        add_self_loops: flags.add_self_loops,
        normalize: flags.normalize,
        edge_weight: flags.edge_weight,
    }));
    w.finish(x, &[y], max_nodes, max_edges, 1).unwrap()
}

pub fn writer() -> ModelWriter {
    ModelWriter::new()
}

/// Guards test strength: outputs must not be mostly saturated or constant.
pub fn assert_spread(v: &[i8]) {
    if v.len() < 8 {
        return;
    }
    let sat = v.iter().filter(|&&q| q == 127 || q == -128).count();
    let mut distinct: Vec<i8> = v.to_vec();
    distinct.sort();
    distinct.dedup();
    assert!(
        sat * 3 <= v.len(),
        "too many saturated outputs: {sat}/{}",
        v.len()
    );
    assert!(distinct.len() >= 4, "outputs nearly constant: {v:?}");
}
