//! int4 activation tensors (feature `act-i4`): models whose input and
//! hidden tensors are int4 (two layers, each a Linear, GcnConv or, with
//! `op-sage`, `op-gin` and `op-elementwise`, SageConv of every aggregation,
//! GinAggregate, Act, Add (of the input with itself) or Concat (of two
//! copies)) give exactly what the int8
//! reference gives on the unpacked values (each int4 tensor computed as int8 with the same scale and
//! zero point, then saturated to −8..=7), with an exact arena; and the
//! bit-width table is validated with typed errors. Also run with only
//! `op-gcn`, `op-linear`, `act-i4` (the hand-written metadata reader of
//! `format::small`) and `kernels-small`.
#![cfg(all(feature = "act-i4", feature = "op-gcn", feature = "op-linear"))]

mod common;
use common::Rng;
use common::*;
use proptest::prelude::*;
use tinygnn::format::writer::{fix_crc, ModelWriter};
#[cfg(feature = "op-sage")]
use tinygnn::format::Aggr;
#[cfg(feature = "op-elementwise")]
use tinygnn::format::ConcatPart;
use tinygnn::format::{Activation, Op, ACT_BITS_FLAG};
#[cfg(feature = "op-gin")]
use tinygnn::ops::GinAggregate;
#[cfg(feature = "op-sage")]
use tinygnn::ops::SageConv;
#[cfg(feature = "op-elementwise")]
use tinygnn::ops::{Act, Add, Concat};
use tinygnn::ops::{GcnConv, Linear};
use tinygnn::{Error, Features, GraphInput, Model};

/// A layer's op.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Linear,
    Gcn,
    /// SageConv: aggregation (0 sum, 1 mean, 2 max) and root weight.
    #[cfg_attr(not(feature = "op-sage"), allow(dead_code))]
    Sage(u8, bool),
    /// GinAggregate (as many channels out as in).
    #[cfg_attr(not(feature = "op-gin"), allow(dead_code))]
    Gin,
    /// Act: ReLU or LeakyReLU (output zero point = input's).
    #[cfg_attr(not(feature = "op-elementwise"), allow(dead_code))]
    Act(bool),
    /// Add of the input with itself.
    #[cfg_attr(not(feature = "op-elementwise"), allow(dead_code))]
    Add,
    /// Concat of two copies of the input (twice its channels).
    #[cfg_attr(not(feature = "op-elementwise"), allow(dead_code))]
    Concat,
}

impl Kind {
    /// Output channels for `ic` input channels (`oc` for the layers with weights).
    fn out_ch(self, ic: usize, oc: usize) -> usize {
        match self {
            Kind::Gin | Kind::Act(_) | Kind::Add => ic,
            Kind::Concat => 2 * ic,
            _ => oc,
        }
    }
}

/// The layer kinds the build has.
fn kind() -> impl Strategy<Value = Kind> {
    let mut kinds = vec![Kind::Linear, Kind::Gcn];
    if cfg!(feature = "op-sage") {
        for a in 0..3 {
            kinds.extend([Kind::Sage(a, false), Kind::Sage(a, true)]);
        }
    }
    if cfg!(feature = "op-gin") {
        kinds.push(Kind::Gin);
    }
    if cfg!(feature = "op-elementwise") {
        kinds.extend([Kind::Act(false), Kind::Act(true), Kind::Add, Kind::Concat]);
    }
    proptest::sample::select(kinds)
}

/// The op of a layer of `kind` from tensor `i` to tensor `o`.
fn layer(
    w: &mut ModelWriter,
    rng: &mut Rng,
    kind: Kind,
    (i, o): (u8, u8),
    (ic, oc): (usize, usize),
    scale: f64,
) -> Op {
    let weights = w.add_i8(&rng.weights(ic * oc));
    let params = w.add_channel_params(&records(rng, oc, 300, scale));
    let act = if rng.next() % 2 == 0 {
        Activation::Relu
    } else {
        Activation::None
    };
    match kind {
        #[cfg(feature = "op-elementwise")]
        Kind::Act(leaky) => Op::Act(Act {
            input: i,
            output: o,
            act: if leaky {
                Activation::LeakyRelu {
                    alpha_q16: rng.range(0, 40000) as i32,
                }
            } else {
                Activation::Relu
            },
        }),
        #[cfg(feature = "op-elementwise")]
        Kind::Add => Op::Add(Add {
            a: i,
            b: i,
            output: o,
            mult_a_q16: rng.range(10000, 90000) as i32,
            mult_b_q16: rng.range(-40000, 40000) as i32,
            act,
        }),
        #[cfg(feature = "op-elementwise")]
        Kind::Concat => {
            let mut parts = heapless::Vec::new();
            for _ in 0..2 {
                let mult_q16 = rng.range(10000, 90000) as i32;
                parts.push(ConcatPart { input: i, mult_q16 }).unwrap();
            }
            Op::Concat(Concat { parts, output: o })
        }
        #[cfg(feature = "op-gin")]
        Kind::Gin => Op::GinAggregate(GinAggregate {
            input: i,
            output: o,
            one_plus_eps_q16: (1 << 16) + rng.range(-30000, 30000) as i32,
            mult: 1 << 30,
            shift: -7 - rng.range(0, 3) as i32,
        }),
        Kind::Linear => Op::Linear(Linear {
            input: i,
            output: o,
            weights,
            params,
            act,
        }),
        #[cfg(feature = "op-sage")]
        Kind::Sage(aggr, root) => {
            let weights_r = if root {
                w.add_i8(&rng.weights(ic * oc))
            } else {
                Default::default()
            };
            Op::SageConv(SageConv {
                input: i,
                output: o,
                aggr: [Aggr::Sum, Aggr::Mean, Aggr::Max][usize::from(aggr.min(2))],
                weights_l: weights,
                weights_r,
                params,
                act,
                normalize: false,
            })
        }
        _ => Op::GcnConv(GcnConv {
            input: i,
            output: o,
            weights,
            params,
            act,
            improved: false,
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        }),
    }
}

/// Shapes and quantization of one test case.
#[derive(Debug, Clone, Copy)]
struct Case {
    seed: u64,
    n: usize,
    ic: usize,
    hc: usize,
    oc: usize,
    zx: i8,
    zh: i8,
    zy: i8,
    /// The two layers.
    first: Kind,
    second: Kind,
}

/// `x → first → h → second → y` with `x` and `h` int4 when `int4`, else three
/// int8 models' worth of the same ops: returns (the model, the int8 model of
/// the first layer alone, the int8 model of the second layer alone).
fn models(c: Case) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let rng = Rng(c.seed | 1);
    let s1 = 2.0 / (8.0 * 60.0 * (c.ic as f64).sqrt());
    let hc = c.first.out_ch(c.ic, c.hc);
    let oc = c.second.out_ch(hc, c.oc);
    // Act keeps its input's zero point.
    let zh = if let Kind::Act(_) = c.first {
        c.zx
    } else {
        c.zh
    };
    let zy = if let Kind::Act(_) = c.second {
        zh
    } else {
        c.zy
    };
    let s2 = 30.0 / (4.0 * 60.0 * (hc as f64).sqrt());
    let (first, second) = (c.first, c.second);
    let ops = |w: &mut ModelWriter, rng: &mut Rng, x: u8, h: u8, y: u8| {
        let a = layer(w, rng, first, (x, h), (c.ic, hc), s1);
        let b = layer(w, rng, second, (h, y), (hc, oc), s2);
        (a, b)
    };
    // The int4 model.
    let mut w = writer();
    let x = w.add_tensor(node(c.ic as u16, 0.25, c.zx));
    let h = w.add_tensor(node(hc as u16, 0.5, zh));
    let y = w.add_tensor(node(oc as u16, 0.125, zy));
    let (a, b) = ops(&mut w, &mut rng.clone_state(), x, h, y);
    w.add_op(a);
    w.add_op(b);
    w.set_i4(x);
    w.set_i4(h);
    let (cap_n, cap_e) = (c.n.max(64) as u32, (c.n + 1).max(256) as u32);
    let full = w.finish(x, &[y], cap_n, cap_e, 1).unwrap();
    // The same ops as two int8 models (same weights: same RNG stream).
    let (mut w1, mut w2) = (writer(), writer());
    let x1 = w1.add_tensor(node(c.ic as u16, 0.25, c.zx));
    let h1 = w1.add_tensor(node(hc as u16, 0.5, zh));
    let h2 = w2.add_tensor(node(hc as u16, 0.5, zh));
    let y2 = w2.add_tensor(node(oc as u16, 0.125, zy));
    let mut r = rng.clone_state();
    let a = layer(&mut w1, &mut r, first, (x1, h1), (c.ic, hc), s1);
    let b = layer(&mut w2, &mut r, second, (h2, y2), (hc, oc), s2);
    w1.add_op(a);
    w2.add_op(b);
    (
        full,
        w1.finish(x1, &[h1], cap_n, cap_e, 1).unwrap(),
        w2.finish(h2, &[y2], cap_n, cap_e, 1).unwrap(),
    )
}

trait CloneState {
    fn clone_state(&self) -> Rng;
}
impl CloneState for Rng {
    fn clone_state(&self) -> Rng {
        Rng(self.0)
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        1usize..12,
        (1usize..40, 1usize..20, 1usize..6),
        (-8i8..=7, -8i8..=7, any::<i8>()),
        (kind(), kind()),
    )
        .prop_map(
            |(seed, n, (ic, hc, oc), (zx, zh, zy), (first, second))| Case {
                seed,
                n,
                ic,
                hc,
                oc,
                zx,
                zh,
                zy,
                first,
                second,
            },
        )
}

/// A ring with a chord, on `n` nodes; from 4 nodes on, a path (node 0 has
/// no in-edge: empty neighbourhoods of `Max` and `Mean`).
fn edges(n: usize) -> (Vec<u16>, Vec<u16>) {
    let last = if n > 3 { n - 1 } else { n };
    let mut src: Vec<u16> = (0..last as u16).collect();
    let mut dst: Vec<u16> = (0..last as u16).map(|i| (i + 1) % n as u16).collect();
    if n > 2 {
        src.push(0);
        dst.push((n / 2) as u16);
    }
    (src, dst)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The int4 model equals the int8 layers run one after the other with
    /// the hidden tensor saturated to −8..=7 in between; f32, int8 and
    /// sparse features give the same bytes; the arena is exact (`run`).
    #[test]
    fn int4_model_matches_int8_reference(c in case()) {
        check_case(c)?;
    }
}

/// GCN layers on graphs large enough to run in passes over channel blocks
/// (`gcn::block_channels` below the output's width: one channel per pass
/// into int4 rows, nibble by nibble, and blocks of 4 and 3), as
/// `int4_model_matches_int8_reference` checks them.
#[test]
fn int4_gcn_in_channel_blocks() {
    for (seed, n, hc, oc) in [
        (3u64, 2100usize, 5usize, 3usize),
        (4, 1100, 7, 4),
        (5, 300, 16, 16),
    ] {
        assert!(tinygnn::ops::gcn::block_channels(n, hc) < hc);
        let c = Case {
            seed,
            n,
            ic: 9,
            hc,
            oc,
            zx: -3,
            zh: 2,
            zy: 5,
            first: Kind::Gcn,
            second: Kind::Gcn,
        };
        check_case(c).unwrap();
    }
}

/// The checks of `int4_model_matches_int8_reference` for one case.
fn check_case(c: Case) -> Result<(), TestCaseError> {
    {
        let (full, m1, m2) = models(c);
        let mut rng = Rng(c.seed ^ 0x5555);
        let xv: Vec<i8> = (0..c.n * c.ic).map(|_| rng.range(-8, 7) as i8).collect();
        let (src, dst) = edges(c.n);
        // Reference: layer 1 in int8, saturate to int4, layer 2 in int8.
        let h = run(&m1, &input(c.n, &xv, &src, &dst)).unwrap().remove(0).2;
        let h4: Vec<i8> = h.iter().map(|&v| v.clamp(-8, 7)).collect();
        let want = run(&m2, &input(c.n, &h4, &src, &dst)).unwrap().remove(0).2;
        // int8 features (already quantized: in range here).
        let got = run(&full, &input(c.n, &xv, &src, &dst))
            .unwrap()
            .remove(0)
            .2;
        prop_assert_eq!(&got, &want);
        // f32 features that quantize to the same values.
        let xf: Vec<f32> = xv
            .iter()
            .map(|&q| 0.25 * (f32::from(q) - f32::from(c.zx)))
            .collect();
        let gf = run(&full, &GraphInput::new(c.n, Features::F32(&xf), &src, &dst))
            .unwrap()
            .remove(0)
            .2;
        prop_assert_eq!(&gf, &want);
        // Sparse features: the entries that differ from the zero point.
        let mut row_ptr = vec![0u32];
        let (mut cols, mut vals) = (Vec::new(), Vec::new());
        for row in xv.chunks(c.ic) {
            for (k, &v) in row.iter().enumerate() {
                if v != c.zx {
                    cols.push(k as u16);
                    vals.push(v);
                }
            }
            row_ptr.push(cols.len() as u32);
        }
        let sparse = Features::SparseI8 {
            row_ptr: &row_ptr,
            cols: &cols,
            values: &vals,
        };
        let gs = run(&full, &GraphInput::new(c.n, sparse, &src, &dst))
            .unwrap()
            .remove(0)
            .2;
        prop_assert_eq!(&gs, &want);
    }
    Ok(())
}

/// int8 features outside −8..=7 saturate like quantization does.
#[test]
fn int8_features_saturate_to_int4() {
    let c = Case {
        seed: 7,
        n: 5,
        ic: 9,
        hc: 5,
        oc: 3,
        zx: -2,
        zh: -8,
        zy: 0,
        first: Kind::Linear,
        second: Kind::Gcn,
    };
    let (full, m1, m2) = models(c);
    let mut rng = Rng(99);
    let xv = rng.i8s(c.n * c.ic);
    let x4: Vec<i8> = xv.iter().map(|&v| v.clamp(-8, 7)).collect();
    let (src, dst) = edges(c.n);
    let h = run(&m1, &input(c.n, &x4, &src, &dst)).unwrap().remove(0).2;
    let h4: Vec<i8> = h.iter().map(|&v| v.clamp(-8, 7)).collect();
    let want = run(&m2, &input(c.n, &h4, &src, &dst)).unwrap().remove(0).2;
    let got = run(&full, &input(c.n, &xv, &src, &dst))
        .unwrap()
        .remove(0)
        .2;
    assert_eq!(got, want);
}

/// Sparse int8 features of an int4 input must hold int4 values (they are
/// read in place by the first layer).
#[test]
fn sparse_features_of_an_int4_input_are_int4() {
    let c = Case {
        seed: 11,
        n: 3,
        ic: 4,
        hc: 2,
        oc: 2,
        zx: 0,
        zh: 0,
        zy: 0,
        first: Kind::Gcn,
        second: Kind::Linear,
    };
    let (full, _, _) = models(c);
    let model = Model::from_bytes(&full).unwrap();
    assert!(model.reads_sparse_input());
    let (src, dst) = edges(c.n);
    let row_ptr = [0u32, 1, 1, 3];
    let cols = [2u16, 0, 3];
    for (vals, ok) in [([7i8, -8, 3], true), ([7, 9, 3], false)] {
        let f = Features::SparseI8 {
            row_ptr: &row_ptr,
            cols: &cols,
            values: &vals,
        };
        let got = run(&full, &GraphInput::new(c.n, f, &src, &dst));
        if ok {
            assert!(got.is_ok());
        } else {
            assert_eq!(got.unwrap_err(), Error::InvalidSparseFeatures { node: 2 });
        }
    }
    assert_eq!(tinygnn::graph::quantize_input(&model, 100.0), 7);
    assert_eq!(tinygnn::graph::quantize_input(&model, -100.0), -8);
}

/// `x → Linear → h → Linear → y` with `ch` = the channels of `x`, `h`, `y`
/// (weights from `Rng(seed)`), `x` and `h` int4 when `i4`, for at most
/// `nodes` nodes.
fn two_linear(ch: [u16; 3], seed: u64, i4: bool, nodes: u32) -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(ch[0], 0.1, 0));
    let h = w.add_tensor(node(ch[1], 0.1, 0));
    let y = w.add_tensor(node(ch[2], 0.1, 0));
    let mut rng = Rng(seed);
    let (c0, c1, c2) = (usize::from(ch[0]), usize::from(ch[1]), usize::from(ch[2]));
    let a = layer(&mut w, &mut rng, Kind::Linear, (x, h), (c0, c1), 0.01);
    let b = layer(&mut w, &mut rng, Kind::Linear, (h, y), (c1, c2), 0.01);
    w.add_op(a);
    w.add_op(b);
    if i4 {
        w.set_i4(x);
        w.set_i4(h);
    }
    w.finish(x, &[y], nodes, 10, 1).unwrap()
}

/// Arena: an int4 tensor's slot holds `ceil(C / 2)` bytes per row.
#[test]
fn int4_slots_take_half_rows() {
    let mk = |i4: bool| two_linear([33, 16, 2], 3, i4, 100);
    let (b8, b4) = (mk(false), mk(true));
    let (m8, m4) = (
        Model::from_bytes(&b8).unwrap(),
        Model::from_bytes(&b4).unwrap(),
    );
    let r8 = |x: usize| x.div_ceil(8) * 8;
    for n in [1usize, 7, 100] {
        let slots8 = r8(33 * n) + r8(16 * n) + r8(2 * n);
        let slots4 = r8(17 * n) + r8(8 * n) + r8(2 * n);
        assert_eq!(
            m8.arena_bytes(n, 3, 1) - m4.arena_bytes(n, 3, 1),
            slots8 - slots4,
            "n={n}"
        );
    }
    assert!(m4.is_i4(0) && m4.is_i4(1) && !m4.is_i4(2));
    assert_eq!(m4.row_bytes(0, 33), 17);
}

/// A two-Linear model with `x`, `h` int4, as bytes, and the offset of its
/// bit-width table (the last three metadata bytes).
fn small() -> (Vec<u8>, usize) {
    let bytes = two_linear([3, 2, 2], 5, true, 10);
    let meta_off = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let meta_len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    (bytes, meta_off + meta_len - 3)
}

#[test]
fn bit_width_table_layout() {
    let (bytes, at) = small();
    assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), ACT_BITS_FLAG);
    assert_eq!(&bytes[at..at + 3], &[4, 4, 8]);
}

#[test]
fn bad_bit_width_tables_are_typed_errors() {
    let (good, at) = small();
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        fix_crc(&mut b);
        Model::from_bytes(&b).map(|_| ()).unwrap_err()
    };
    // A width other than 8 or 4.
    assert_eq!(edit(&|b| b[at + 1] = 2), Error::InvalidTensor { tensor: 1 });
    assert_eq!(edit(&|b| b[at] = 0), Error::InvalidTensor { tensor: 0 });
    // The output made int4.
    assert_eq!(edit(&|b| b[at + 2] = 4), Error::InvalidTensor { tensor: 2 });
    // A table of all 8 (the flag would be redundant).
    assert_eq!(
        edit(&|b| b[at..at + 2].copy_from_slice(&[8, 8])),
        Error::BadMetadata
    );
    // Other flag bits stay reserved.
    assert_eq!(edit(&|b| b[6] = 3), Error::UnsupportedFlags);
    assert_eq!(edit(&|b| b[7] = 0x80), Error::UnsupportedFlags);
    // The flag cleared: the table reads as trailing metadata (here a
    // state record naming tensors that do not exist).
    assert!(matches!(
        edit(&|b| b[6] = 0),
        Error::BadMetadata | Error::InvalidState
    ));
}

#[cfg(feature = "op-elementwise")]
#[test]
fn flag_on_a_file_without_table_is_rejected() {
    // An int8 file with the flag set: its last metadata bytes (op fields)
    // do not decode as a table, or the metadata no longer decodes.
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let y = w.add_tensor(node(3, 0.1, 0));
    w.add_op(Op::Act(Act {
        input: x,
        output: y,
        act: Activation::Relu,
    }));
    let mut b = w.finish(x, &[y], 10, 10, 1).unwrap();
    b[6] = 1;
    fix_crc(&mut b);
    assert!(matches!(
        Model::from_bytes(&b),
        Err(Error::InvalidTensor { .. } | Error::BadMetadata)
    ));
}

#[cfg(feature = "op-pool")]
#[test]
fn ops_without_int4_support_reject_int4_tensors() {
    // A global pool reading an int4 tensor.
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let y = w.add_tensor(graph(3, 0.1, 0));
    w.add_op(Op::GlobalPool(tinygnn::ops::GlobalPool {
        input: x,
        output: y,
        pool: tinygnn::format::Pool::Mean,
        mult: 1 << 30,
        shift: 0,
    }));
    w.set_i4(x);
    assert_eq!(
        w.finish(x, &[y], 10, 10, 1).unwrap_err(),
        tinygnn::format::writer::WriteError::Invalid(Error::InvalidOp { op: 0 })
    );
}

#[test]
fn int4_zero_point_must_fit() {
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 9));
    let y = w.add_tensor(node(2, 0.1, 0));
    let mut rng = Rng(5);
    let a = layer(&mut w, &mut rng, Kind::Linear, (x, y), (3, 2), 0.01);
    w.add_op(a);
    w.set_i4(x);
    assert_eq!(
        w.finish(x, &[y], 10, 10, 1).unwrap_err(),
        tinygnn::format::writer::WriteError::Invalid(Error::InvalidTensor { tensor: 0 })
    );
}
