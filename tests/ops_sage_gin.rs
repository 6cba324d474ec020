//! SageConv and GinAggregate against straightforward computations of their
//! documented integer formulas over the COO edge list.

mod common;
use common::*;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{Activation, Aggr, Op, Section};
use tinygnn::ops::{GinAggregate, SageConv};
use tinygnn::{Model, Session};

fn sat32(v: i128) -> i128 {
    v.clamp(i32::MIN as i128, i32::MAX as i128)
}

#[allow(clippy::too_many_arguments)]
fn sage_reference(
    aggr: Aggr,
    n: usize,
    x: &[i8],
    zp: i8,
    ic: usize,
    wl: &[i8],
    wr: Option<&[i8]>,
    recs: &[ChannelRecord],
    src: &[u16],
    dst: &[u16],
    act: Activation,
    normalize: bool,
    zp_out: i8,
) -> Vec<i8> {
    let oc = recs.len();
    let row = |j: usize| &x[j * ic..(j + 1) * ic];
    let mut out = Vec::new();
    for i in 0..n {
        let nbrs: Vec<usize> = (0..src.len())
            .filter(|&k| dst[k] as usize == i)
            .map(|k| src[k] as usize)
            .collect();
        let agg: Vec<i128> = match aggr {
            Aggr::Sum | Aggr::Mean => {
                let mut s = vec![0i128; oc];
                for &j in &nbrs {
                    for (c, v) in dense(wl, ic, row(j), zp).into_iter().enumerate() {
                        s[c] += v as i128;
                    }
                }
                if aggr == Aggr::Mean {
                    s.iter()
                        .map(|&v| {
                            if nbrs.is_empty() {
                                0
                            } else {
                                round_div(v, nbrs.len() as i128)
                            }
                        })
                        .collect()
                } else {
                    s
                }
            }
            Aggr::Max => {
                let m: Vec<i8> = (0..ic)
                    .map(|k| nbrs.iter().map(|&j| row(j)[k]).max().unwrap_or(zp))
                    .collect();
                dense(wl, ic, &m, zp)
                    .into_iter()
                    .map(|v| v as i128)
                    .collect()
            }
        };
        let root = wr
            .map(|wr| dense(wr, ic, row(i), zp))
            .unwrap_or(vec![0; oc]);
        let acc: Vec<i32> = (0..oc)
            .map(|c| sat32(sat32(sat32(agg[c]) + root[c] as i128) + recs[c].bias as i128) as i32)
            .map(|a| act_i32(a, act))
            .collect();
        if normalize {
            let sq: u128 = acc.iter().map(|&a| (a as i128 * a as i128) as u128).sum();
            let nrm = isqrt(sq) as i128;
            for &a in &acc {
                let v = if nrm == 0 {
                    0
                } else {
                    round_div(127 * a as i128, nrm)
                };
                out.push((v + zp_out as i128).clamp(-128, 127) as i8);
            }
        } else {
            for c in 0..oc {
                out.push(requant(acc[c], recs[c].mult, recs[c].shift, zp_out));
            }
        }
    }
    out
}

fn sage_case(
    seed: u64,
    aggr: Aggr,
    root: bool,
    normalize: bool,
    n: usize,
    src: &[u16],
    dst: &[u16],
) {
    sage_case_oc(seed, (aggr, root, normalize), n, src, dst, 6);
}

fn sage_case_oc(
    seed: u64,
    (aggr, root, normalize): (Aggr, bool, bool),
    n: usize,
    src: &[u16],
    dst: &[u16],
    oc: usize,
) {
    let mut rng = Rng(seed);
    let ic = 5usize;
    let act = match seed % 3 {
        0 => Activation::None,
        1 => Activation::Relu,
        _ => Activation::LeakyRelu { alpha_q16: 13107 },
    };
    let zp_out = if normalize { 0 } else { -3 };
    let mut w = writer();
    let x = w.add_tensor(node(ic as u16, 0.1, 4));
    let y = w.add_tensor(node(
        oc as u16,
        if normalize { 1.0 / 127.0 } else { 0.05 },
        zp_out,
    ));
    let wl = rng.weights(ic * oc);
    let wr = rng.weights(ic * oc);
    let recs = records(&mut rng, oc, 800, 0.0012);
    let wls = w.add_i8(&wl);
    let wrs = if root {
        w.add_i8(&wr)
    } else {
        Section::default()
    };
    let ps = w.add_channel_params(&recs);
    w.add_op(Op::SageConv(SageConv {
        input: x,
        output: y,
        aggr,
        weights_l: wls,
        weights_r: wrs,
        params: ps,
        act,
        normalize,
    }));
    let (cap_n, cap_e) = (n.max(32) as u32, src.len().max(64) as u32);
    let bytes = w.finish(x, &[y], cap_n, cap_e, 1).unwrap();
    let xs = rng.i8s(n * ic);
    let outs = run(&bytes, &input(n, &xs, src, dst)).unwrap();
    let want = sage_reference(
        aggr,
        n,
        &xs,
        4,
        ic,
        &wl,
        root.then_some(&wr[..]),
        &recs,
        src,
        dst,
        act,
        normalize,
        zp_out,
    );
    assert_eq!(
        outs[0].2, want,
        "seed {seed} {aggr:?} root {root} normalize {normalize}"
    );
    // Any arena from the least to the wide one: the same bytes.
    let model = Model::from_bytes(&bytes).unwrap();
    let least = model.arena_bytes(n, src.len(), 1);
    let wide = model.wide_arena_bytes(n, src.len(), 1, false);
    let narrows = tinygnn::ops::sage::block_channels(aggr, normalize, n, oc) < oc;
    assert_eq!(
        wide > least,
        narrows,
        "{n} nodes {aggr:?} normalize {normalize}"
    );
    for arena in [wide, least + (wide - least) / 2 + 8] {
        let mut buf = Vec::new();
        let mut s = Session::new(&model, aligned(&mut buf, arena));
        s.run(&input(n, &xs, src, dst)).unwrap();
        assert_eq!(
            s.output(0).unwrap().data,
            &want[..],
            "seed {seed}, arena {arena}"
        );
    }
}

/// Graphs large enough that SAGE (sum, mean) computes its output in passes
/// over blocks of channels (`sage::block_channels` below the output's
/// width: blocks of 2, then one channel); max and normalised layers stay
/// whole, on the same graphs.
#[test]
fn sage_large_graphs_in_channel_blocks() {
    let mut rng = Rng(11);
    let mut seed = 500;
    for n in [1500usize, 5000] {
        let e = 3 * n;
        let mut src: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        src[..3].copy_from_slice(&[dst[0], dst[1], dst[2]]);
        for aggr in [Aggr::Sum, Aggr::Mean, Aggr::Max] {
            for (root, normalize) in [(false, false), (true, false), (true, true)] {
                sage_case(seed, aggr, root, normalize, n, &src, &dst);
                seed += 1;
            }
        }
    }
    // A small graph with a wide output: passes of 256, 256 and 8 channels
    // at the least arena, odd widths in between.
    let src: Vec<u16> = (0..48).map(|k| (k * 7 % 16) as u16).collect();
    let dst: Vec<u16> = (0..48).map(|k| (k * 3 % 16) as u16).collect();
    for (aggr, root) in [(Aggr::Sum, true), (Aggr::Mean, false)] {
        assert!(tinygnn::ops::sage::block_channels(aggr, false, 16, 520) < 520);
        sage_case_oc(seed, (aggr, root, false), 16, &src, &dst, 520);
        seed += 1;
    }
}

#[test]
fn sage_all_variants() {
    // Self-loop on 2, duplicate 0→1, isolated node 5.
    let src = [0u16, 0, 2, 1, 3, 2, 4, 3];
    let dst = [1u16, 1, 2, 0, 1, 4, 3, 0];
    let mut seed = 1;
    for aggr in [Aggr::Sum, Aggr::Mean, Aggr::Max] {
        for root in [false, true] {
            for normalize in [false, true] {
                for _ in 0..3 {
                    sage_case(seed, aggr, root, normalize, 6, &src, &dst);
                    seed += 1;
                }
            }
        }
    }
}

#[test]
fn sage_random_graphs() {
    let mut rng = Rng(7);
    for seed in 0..36u64 {
        let n = rng.range(1, 10) as usize;
        let e = rng.range(0, 25) as usize;
        let src: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let aggr = [Aggr::Sum, Aggr::Mean, Aggr::Max][(seed % 3) as usize];
        sage_case(seed + 200, aggr, seed % 2 == 0, seed % 4 < 2, n, &src, &dst);
    }
}

#[test]
fn sage_mean_hand_computed() {
    // 1 channel in and out, Wl = [2], no root, bias 1, identity rescale, zp 0.
    // Node 0 has in-neighbours 1 (x=3) and 2 (x=4): mean(6, 8) = 7, + 1 = 8.
    // Node 1 has none: 0 + 1 = 1. Node 2 has 0 (x=-5) → -10 + 1 = -9.
    let mut w = writer();
    let x = w.add_tensor(node(1, 1.0, 0));
    let y = w.add_tensor(node(1, 1.0, 0));
    let wl = w.add_i8(&[2]);
    let ps = w.add_channel_params(&[ChannelRecord {
        bias: 1,
        mult: 1 << 30,
        shift: 1,
    }]);
    w.add_op(Op::SageConv(SageConv {
        input: x,
        output: y,
        aggr: Aggr::Mean,
        weights_l: wl,
        weights_r: Section::default(),
        params: ps,
        act: Activation::None,
        normalize: false,
    }));
    let bytes = w.finish(x, &[y], 4, 4, 1).unwrap();
    let outs = run(&bytes, &input(3, &[-5, 3, 4], &[1, 2, 0], &[0, 0, 2])).unwrap();
    assert_eq!(outs[0].2, vec![8, 1, -9]);
}

#[allow(clippy::too_many_arguments)]
fn gin_reference(
    n: usize,
    x: &[i8],
    zp: i8,
    ch: usize,
    eps: i32,
    mult: i32,
    shift: i32,
    zp_out: i8,
    src: &[u16],
    dst: &[u16],
) -> Vec<i8> {
    let mut out = Vec::new();
    for i in 0..n {
        for c in 0..ch {
            let mut acc: i128 = eps as i128 * (x[i * ch + c] as i128 - zp as i128);
            for k in 0..src.len() {
                if dst[k] as usize == i {
                    acc += (x[src[k] as usize * ch + c] as i128 - zp as i128) * 65536;
                }
            }
            out.push(requant(
                sat32(round_shift(acc, 8)) as i32,
                mult,
                shift,
                zp_out,
            ));
        }
    }
    out
}

#[test]
fn gin_aggregate() {
    let mut rng = Rng(5);
    for seed in 0..30u64 {
        let n = rng.range(1, 10) as usize;
        let e = rng.range(0, 25) as usize;
        let ch = rng.range(1, 6) as usize;
        let src: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let eps = rng.range(0, 3 * 65536) as i32; // 1 + eps in [0, 3]
        let (mult, shift) =
            tinygnn::quant::quantize_multiplier(0.06 / 256.0 * (1.0 + seed as f64 / 30.0));
        let zp = rng.i8();
        let mut w = writer();
        let x = w.add_tensor(node(ch as u16, 0.1, zp));
        let y = w.add_tensor(node(ch as u16, 0.5, -7));
        w.add_op(Op::GinAggregate(GinAggregate {
            input: x,
            output: y,
            one_plus_eps_q16: eps,
            mult,
            shift,
        }));
        let bytes = w.finish(x, &[y], 16, 32, 1).unwrap();
        let xs = rng.i8s(n * ch);
        let outs = run(&bytes, &input(n, &xs, &src, &dst)).unwrap();
        let want = gin_reference(n, &xs, zp, ch, eps, mult, shift, -7, &src, &dst);
        assert_eq!(outs[0].2, want, "seed {seed}");
        assert_spread(&want);
    }
}

#[test]
fn gin_hand_computed() {
    // eps = 0.5 → 98304; x = [2, 10, 20] zp 0, edges 1→0, 2→0.
    // node 0: 1.5·2 + 10 + 20 = 33 → Q8: 8448; rescale 1/256 (mult 2^30, shift -7) → 33.
    // node 1: 1.5·10 = 15; node 2: 1.5·20 = 30.
    let mut w = writer();
    let x = w.add_tensor(node(1, 1.0, 0));
    let y = w.add_tensor(node(1, 1.0, 0));
    w.add_op(Op::GinAggregate(GinAggregate {
        input: x,
        output: y,
        one_plus_eps_q16: 98304,
        mult: 1 << 30,
        shift: -7,
    }));
    let bytes = w.finish(x, &[y], 4, 4, 1).unwrap();
    let outs = run(&bytes, &input(3, &[2, 10, 20], &[1, 2], &[0, 0])).unwrap();
    assert_eq!(outs[0].2, vec![33, 15, 30]);
}

#[test]
fn sage_mean_rounds_half_away_from_zero() {
    // Wl = [1], no root, bias 1, identity rescale (mult 2^30, shift 1), zp 0.
    // x = [-5, 3, 4, -2, 0]; node 0 ← {3, 4}: 3.5 → 4; node 2 ← {-5}: -5;
    // node 3 ← {3, -5, -2}: -4/3 → -1; node 4 ← {-5, -2}: -3.5 → -4; node 1: none → 0.
    let mut w = writer();
    let x = w.add_tensor(node(1, 1.0, 0));
    let y = w.add_tensor(node(1, 1.0, 0));
    let wl = w.add_i8(&[1]);
    let ps = w.add_channel_params(&[ChannelRecord {
        bias: 1,
        mult: 1 << 30,
        shift: 1,
    }]);
    w.add_op(Op::SageConv(SageConv {
        input: x,
        output: y,
        aggr: Aggr::Mean,
        weights_l: wl,
        weights_r: Section::default(),
        params: ps,
        act: Activation::None,
        normalize: false,
    }));
    let bytes = w.finish(x, &[y], 8, 16, 1).unwrap();
    let src = [1u16, 2, 0, 1, 0, 3, 0, 3];
    let dst = [0u16, 0, 2, 3, 3, 3, 4, 4];
    let outs = run(&bytes, &input(5, &[-5, 3, 4, -2, 0], &src, &dst)).unwrap();
    assert_eq!(outs[0].2, vec![5, 1, -4, 0, -3]);
}

#[test]
fn sage_identity_weights_random() {
    // With 1×1 identity weights and an identity rescale the output is the
    // accumulator itself, so every rounding step is visible.
    let mut rng = Rng(1234);
    for seed in 0..60u64 {
        let n = rng.range(1, 8) as usize;
        let e = rng.range(0, 16) as usize;
        let src: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let aggr = [Aggr::Sum, Aggr::Mean, Aggr::Max][(seed % 3) as usize];
        let root = seed % 2 == 0;
        let zp = rng.range(-10, 10) as i8;
        let mut w = writer();
        let x = w.add_tensor(node(1, 1.0, zp));
        let y = w.add_tensor(node(1, 1.0, 0));
        let wl = w.add_i8(&[1]);
        let wr = if root {
            w.add_i8(&[-1])
        } else {
            Section::default()
        };
        let recs = [ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 1,
        }];
        let ps = w.add_channel_params(&recs);
        w.add_op(Op::SageConv(SageConv {
            input: x,
            output: y,
            aggr,
            weights_l: wl,
            weights_r: wr,
            params: ps,
            act: Activation::None,
            normalize: false,
        }));
        let bytes = w.finish(x, &[y], 8, 16, 1).unwrap();
        let xs: Vec<i8> = (0..n).map(|_| rng.range(-40, 40) as i8).collect();
        let outs = run(&bytes, &input(n, &xs, &src, &dst)).unwrap();
        let want = sage_reference(
            aggr,
            n,
            &xs,
            zp,
            1,
            &[1],
            root.then_some(&[-1i8][..]),
            &recs,
            &src,
            &dst,
            Activation::None,
            false,
            0,
        );
        assert_eq!(outs[0].2, want, "seed {seed}");
    }
}
