//! GlobalPool (multi-graph batches with an empty graph), Add, Concat, Act,
//! and a multi-op model whose every intermediate tensor is checked (this also
//! exercises the slot reuse of the memory planner).

mod common;
use common::*;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{Activation, ConcatPart, Op, Pool};
use tinygnn::ops::{Act, Add, Concat, GcnConv, GlobalPool, Linear};
use tinygnn::{Model, Session};

#[allow(clippy::too_many_arguments)]
fn pool_reference(
    pool: Pool,
    x: &[i8],
    zp: i8,
    ch: usize,
    batch: &[u16],
    g: usize,
    mult: i32,
    shift: i32,
    zp_out: i8,
) -> Vec<i8> {
    let mut out = Vec::new();
    for gi in 0..g {
        let members: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i] as usize == gi)
            .collect();
        for c in 0..ch {
            let vals: Vec<i8> = members.iter().map(|&i| x[i * ch + c]).collect();
            let sum: i128 = vals.iter().map(|&v| v as i128 - zp as i128).sum();
            out.push(match pool {
                Pool::Max => vals.iter().copied().max().unwrap_or(zp),
                Pool::Add => requant(sum as i32, mult, shift, zp_out),
                Pool::Mean => {
                    let acc = if vals.is_empty() {
                        0
                    } else {
                        round_div(sum * 256, vals.len() as i128)
                    };
                    requant(acc as i32, mult, shift, zp_out)
                }
            });
        }
    }
    out
}

#[test]
fn global_pools_multi_graph_with_empty_graph() {
    let mut rng = Rng(3);
    // Graph 1 and 4 are empty; batch is not sorted.
    let batch = [0u16, 0, 2, 3, 2, 0, 3, 5, 2];
    let n = batch.len();
    let g = 6;
    for (k, pool) in [Pool::Add, Pool::Mean, Pool::Max].into_iter().enumerate() {
        for seed in 0..5 {
            let ch = 3 + seed;
            let zp = rng.i8();
            let (zp_out, (mult, shift)) = match pool {
                Pool::Max => (zp, (0, 0)),
                Pool::Add => (-2, tinygnn::quant::quantize_multiplier(0.3)),
                Pool::Mean => (5, tinygnn::quant::quantize_multiplier(0.9 / 256.0)),
            };
            let mut w = writer();
            let x = w.add_tensor(node(ch as u16, 0.1, zp));
            let y = w.add_tensor(graph(ch as u16, 0.1, zp_out));
            w.add_op(Op::GlobalPool(GlobalPool {
                input: x,
                output: y,
                pool,
                mult,
                shift,
            }));
            let bytes = w.finish(x, &[y], 16, 16, 8).unwrap();
            let xs = rng.i8s(n * ch);
            let mut inp = input(n, &xs, &[], &[]);
            inp.batch = Some(&batch);
            let outs = run(&bytes, &inp).unwrap();
            assert_eq!(outs[0].0, g);
            let want = pool_reference(pool, &xs, zp, ch, &batch, g, mult, shift, zp_out);
            assert_eq!(outs[0].2, want, "{pool:?} seed {seed} k {k}");
            // An empty graph gives real 0.
            assert!(outs[0].2[ch..2 * ch].iter().all(|&v| v == zp_out));
        }
    }
}

#[test]
fn pool_without_batch_is_one_graph() {
    let mut w = writer();
    let x = w.add_tensor(node(2, 1.0, 0));
    let y = w.add_tensor(graph(2, 1.0, 0));
    w.add_op(Op::GlobalPool(GlobalPool {
        input: x,
        output: y,
        pool: Pool::Mean,
        mult: 1 << 30,
        shift: -7,
    }));
    let bytes = w.finish(x, &[y], 8, 8, 1).unwrap();
    // mean of [1, 2, 4] = 2.33 → 2; of [-1, -2, -2] = -1.67 → -2.
    let outs = run(&bytes, &input(3, &[1, -1, 2, -2, 4, -2], &[], &[])).unwrap();
    assert_eq!(outs[0], (1, 2, vec![2, -2]));
}

fn sat8(v: i128) -> i8 {
    v.clamp(-128, 127) as i8
}

#[test]
fn add_concat_act() {
    let mut rng = Rng(11);
    for seed in 0..12 {
        let (n, ch) = (5usize, 3usize);
        let (za, zo, zc) = (rng.i8(), rng.i8(), rng.i8());
        let (ma, mb) = (
            rng.range(1000, 200_000) as i32,
            rng.range(1000, 200_000) as i32,
        );
        let act = [
            Activation::None,
            Activation::Relu,
            Activation::LeakyRelu { alpha_q16: 9000 },
        ][seed % 3];
        let mut w = writer();
        let x = w.add_tensor(node(ch as u16, 0.1, za));
        let bx = w.add_tensor(node(ch as u16, 0.1, za));
        let s = w.add_tensor(node(ch as u16, 0.1, zo));
        let r = w.add_tensor(node(ch as u16, 0.1, zo));
        let c = w.add_tensor(node(3 * ch as u16, 0.1, zc));
        w.add_op(Op::Act(Act {
            input: x,
            output: bx,
            act: Activation::LeakyRelu { alpha_q16: 20000 },
        }));
        w.add_op(Op::Add(Add {
            a: x,
            b: bx,
            output: s,
            mult_a_q16: ma,
            mult_b_q16: mb,
            act,
        }));
        w.add_op(Op::Act(Act {
            input: s,
            output: r,
            act: Activation::Relu,
        }));
        w.add_op(Op::Concat(Concat {
            parts: heapless::Vec::from_slice(&[
                ConcatPart {
                    input: s,
                    mult_q16: mb,
                },
                ConcatPart {
                    input: x,
                    mult_q16: 65536,
                },
                ConcatPart {
                    input: r,
                    mult_q16: ma,
                },
            ])
            .unwrap(),
            output: c,
        }));
        let bytes = w.finish(x, &[c, s, bx, r], 8, 8, 1).unwrap();
        let xs = rng.i8s(n * ch);
        let outs = run(&bytes, &input(n, &xs, &[], &[])).unwrap();

        let bx_ref: Vec<i8> = xs
            .iter()
            .map(|&v| {
                if v < za {
                    sat8(za as i128 + round_shift((v as i128 - za as i128) * 20000, 16))
                } else {
                    v
                }
            })
            .collect();
        let s_ref: Vec<i8> = xs
            .iter()
            .zip(&bx_ref)
            .map(|(&a, &b)| {
                let sum =
                    (a as i128 - za as i128) * ma as i128 + (b as i128 - za as i128) * mb as i128;
                let v = act_i32(
                    round_shift(sum, 16).clamp(i32::MIN as i128, i32::MAX as i128) as i32,
                    act,
                );
                sat8(zo as i128 + v as i128)
            })
            .collect();
        let r_ref: Vec<i8> = s_ref.iter().map(|&v| v.max(zo)).collect();
        let part = |v: &[i8], zp: i8, m: i32| -> Vec<i8> {
            v.iter()
                .map(|&q| sat8(zc as i128 + round_shift((q as i128 - zp as i128) * m as i128, 16)))
                .collect()
        };
        let (ps, px, pr) = (
            part(&s_ref, zo, mb),
            part(&xs, za, 65536),
            part(&r_ref, zo, ma),
        );
        let mut c_ref = Vec::new();
        for i in 0..n {
            c_ref.extend_from_slice(&ps[i * ch..(i + 1) * ch]);
            c_ref.extend_from_slice(&px[i * ch..(i + 1) * ch]);
            c_ref.extend_from_slice(&pr[i * ch..(i + 1) * ch]);
        }
        assert_eq!(outs[2].2, bx_ref, "act, seed {seed}");
        assert_eq!(outs[1].2, s_ref, "add, seed {seed}");
        assert_eq!(outs[3].2, r_ref, "relu, seed {seed}");
        assert_eq!(outs[0].2, c_ref, "concat, seed {seed}");
    }
}

#[test]
fn act_hand_computed() {
    // zp 10; ReLU: max(x, 10). LeakyRelu alpha 0.5: 4 → 10 + round(-6 · 0.5) = 7; 7 → 10 - 1.5 → 8 (half away: -2).
    let mut w = writer();
    let x = w.add_tensor(node(1, 1.0, 10));
    let a = w.add_tensor(node(1, 1.0, 10));
    let b = w.add_tensor(node(1, 1.0, 10));
    w.add_op(Op::Act(Act {
        input: x,
        output: a,
        act: Activation::Relu,
    }));
    w.add_op(Op::Act(Act {
        input: x,
        output: b,
        act: Activation::LeakyRelu { alpha_q16: 32768 },
    }));
    let bytes = w.finish(x, &[a, b], 8, 8, 1).unwrap();
    let outs = run(&bytes, &input(4, &[4, 7, 10, 50], &[], &[])).unwrap();
    assert_eq!(outs[0].2, vec![10, 10, 10, 50]);
    assert_eq!(outs[1].2, vec![7, 8, 10, 50]);
}

/// A GCN → ReLU → GCN → residual add → JK concat → mean pool → linear model,
/// run with `run_inspect`: every op's result is recomputed from the tensors
/// captured when they were produced, so a slot reused too early would show.
#[test]
fn multi_op_model_and_run_inspect() {
    let mut rng = Rng(77);
    let ch = 4u16;
    let mut w = writer();
    let x = w.add_tensor(node(ch, 0.1, 1));
    let h1 = w.add_tensor(node(ch, 0.1, -2));
    let a1 = w.add_tensor(node(ch, 0.1, -2));
    let h2 = w.add_tensor(node(ch, 0.1, 3));
    let s = w.add_tensor(node(ch, 0.1, 0));
    let jk = w.add_tensor(node(3 * ch, 0.1, 0));
    let p = w.add_tensor(graph(3 * ch, 0.1, 0));
    let out = w.add_tensor(graph(2, 0.2, 5));
    let gcn = |w: &mut tinygnn::format::writer::ModelWriter,
               rng: &mut Rng,
               i: u8,
               o: u8,
               ic: usize,
               oc: usize| {
        let ws = w.add_i8(&rng.weights(ic * oc));
        let ps = w.add_channel_params(&records(rng, oc, 300, 0.004));
        w.add_op(Op::GcnConv(GcnConv {
            input: i,
            output: o,
            weights: ws,
            params: ps,
            act: Activation::None,
            improved: false,
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        }));
    };
    gcn(&mut w, &mut rng, x, h1, 4, 4);
    w.add_op(Op::Act(Act {
        input: h1,
        output: a1,
        act: Activation::Relu,
    }));
    gcn(&mut w, &mut rng, a1, h2, 4, 4);
    w.add_op(Op::Add(Add {
        a: h2,
        b: x,
        output: s,
        mult_a_q16: 65536,
        mult_b_q16: 65536,
        act: Activation::Relu,
    }));
    w.add_op(Op::Concat(Concat {
        parts: heapless::Vec::from_slice(&[
            ConcatPart {
                input: a1,
                mult_q16: 65536,
            },
            ConcatPart {
                input: h2,
                mult_q16: 65536,
            },
            ConcatPart {
                input: s,
                mult_q16: 65536,
            },
        ])
        .unwrap(),
        output: jk,
    }));
    let (pm, pe) = tinygnn::quant::quantize_multiplier(1.0 / 256.0);
    w.add_op(Op::GlobalPool(GlobalPool {
        input: jk,
        output: p,
        pool: Pool::Mean,
        mult: pm,
        shift: pe,
    }));
    let lw_vals = rng.weights(24);
    let lrecs = [
        ChannelRecord {
            bias: 10,
            mult: 1 << 30,
            shift: -3,
        },
        ChannelRecord {
            bias: -10,
            mult: 1 << 30,
            shift: -3,
        },
    ];
    let lw = w.add_i8(&lw_vals);
    let lp = w.add_channel_params(&lrecs);
    w.add_op(Op::Linear(Linear {
        input: p,
        output: out,
        weights: lw,
        params: lp,
        act: Activation::None,
    }));
    let bytes = w.finish(x, &[out], 32, 64, 4).unwrap();

    let n = 9usize;
    let xs = rng.i8s(n * 4);
    let src: Vec<u16> = (0..20).map(|_| rng.range(0, 8) as u16).collect();
    let dst: Vec<u16> = (0..20).map(|_| rng.range(0, 8) as u16).collect();
    let batch = [0u16, 0, 0, 1, 1, 1, 3, 3, 3];
    let mut inp = input(n, &xs, &src, &dst);
    inp.batch = Some(&batch);

    let model = Model::from_bytes(&bytes).unwrap();
    let need = model.arena_bytes(n, 20, 4);
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, need);
    let mut sess = Session::new(&model, arena);
    let mut seen: Vec<(usize, Vec<i8>)> = Vec::new();
    let first = sess
        .run_inspect(&inp, |k, o| seen.push((k, o.data.to_vec())))
        .unwrap()
        .data
        .to_vec();
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    assert_eq!(seen[6].1, first);

    // Recompute ops 1.. from the captured tensors with single-op models.
    let single = |build: &dyn Fn(&mut tinygnn::format::writer::ModelWriter) -> (u8, u8),
                  feats: &[i8],
                  batch: Option<&[u16]>| {
        let mut w = writer();
        let (i, o) = build(&mut w);
        let bytes = w.finish(i, &[o], 32, 64, 4).unwrap();
        let mut inp = input(n, feats, &src, &dst);
        inp.batch = batch;
        run(&bytes, &inp).unwrap().remove(0).2
    };
    let relu = single(
        &|w| {
            let i = w.add_tensor(node(ch, 0.1, -2));
            let o = w.add_tensor(node(ch, 0.1, -2));
            w.add_op(Op::Act(Act {
                input: i,
                output: o,
                act: Activation::Relu,
            }));
            (i, o)
        },
        &seen[0].1,
        None,
    );
    assert_eq!(relu, seen[1].1);
    // Add: s = relu(h2 - 3 + x - 1) per element.
    let s_ref: Vec<i8> = seen[2]
        .1
        .iter()
        .zip(&xs)
        .map(|(&h, &x)| ((h as i32 - 3 + x as i32 - 1).max(0)).clamp(-128, 127) as i8)
        .collect();
    assert_eq!(seen[3].1, s_ref);
    let mut jk_ref = Vec::new();
    for i in 0..n {
        // Parts are re-centred on the output zero point 0: x − zp_part.
        jk_ref.extend(
            seen[1].1[i * 4..i * 4 + 4]
                .iter()
                .map(|&v| sat8(v as i128 + 2)),
        );
        jk_ref.extend(
            seen[2].1[i * 4..i * 4 + 4]
                .iter()
                .map(|&v| sat8(v as i128 - 3)),
        );
        jk_ref.extend_from_slice(&seen[3].1[i * 4..i * 4 + 4]);
    }
    assert_eq!(seen[4].1, jk_ref);
    let pool_ref = pool_reference(Pool::Mean, &jk_ref, 0, 12, &batch, 4, pm, pe, 0);
    assert_eq!(seen[5].1, pool_ref);
    let lin_ref: Vec<i8> = pool_ref
        .chunks(12)
        .flat_map(|r| {
            let acc = dense(&lw_vals, 12, r, 0);
            (0..2)
                .map(move |c| finish(acc[c], &lrecs[c], Activation::None, 5))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(seen[6].1, lin_ref);
    // Graph 2 is empty: its pooled row is all zero points.
    assert!(seen[5].1[24..36].iter().all(|&v| v == 0));
    // Arena planning reused slots: less than one slot per tensor.
    let all_tensors: usize = n * 4 * 5 + n * 12 + 4 * 12 + 4 * 2;
    assert!(
        model.arena_bytes(n, 20, 4)
            < all_tensors + model.arena_bytes(0, 0, 0) + 9 * 8 * 4 + 20 * 2 + 200
    );
}

#[test]
fn same_tensor_twice_and_model_without_ops() {
    // Add(x, x) doubles; Concat[x, x] duplicates; the input itself as an output.
    let mut w = writer();
    let x = w.add_tensor(node(2, 1.0, 1));
    let d = w.add_tensor(node(2, 1.0, 0));
    let c = w.add_tensor(node(4, 1.0, 1));
    w.add_op(Op::Add(Add {
        a: x,
        b: x,
        output: d,
        mult_a_q16: 65536,
        mult_b_q16: 65536,
        act: Activation::None,
    }));
    w.add_op(Op::Concat(Concat {
        parts: heapless::Vec::from_slice(&[
            ConcatPart {
                input: x,
                mult_q16: 65536,
            },
            ConcatPart {
                input: x,
                mult_q16: 65536,
            },
        ])
        .unwrap(),
        output: c,
    }));
    let bytes = w.finish(x, &[d, c, x], 8, 8, 1).unwrap();
    let outs = run(&bytes, &input(2, &[5, -3, 100, 1], &[], &[])).unwrap();
    assert_eq!(outs[0].2, vec![8, -8, 127, 0]);
    assert_eq!(outs[1].2, vec![5, -3, 5, -3, 100, 1, 100, 1]);
    assert_eq!(outs[2].2, vec![5, -3, 100, 1]);

    let mut w = writer();
    let x = w.add_tensor(node(3, 1.0, 0));
    let bytes = w.finish(x, &[x], 8, 8, 1).unwrap();
    let outs = run(&bytes, &input(1, &[1, 2, 3], &[], &[])).unwrap();
    assert_eq!(outs[0], (1, 3, vec![1, 2, 3]));
}
