//! Random valid models (every op kind, random shapes and parameters) on
//! random graphs: a run never panics, the result is deterministic, and
//! `arena_bytes` is exact (the shared runner checks that exactly that many
//! bytes suffice and one byte less gives `ArenaTooSmall`).

mod common;
use common::{records, run, writer, Rng};
use proptest::prelude::*;
use tinygnn::format::{Activation, Aggr, ConcatPart, Op, Pool, Section, TensorDesc, TensorKind};
use tinygnn::ops::{Act, Add, Concat, GcnConv, GinAggregate, GlobalPool, Linear, SageConv};
use tinygnn::{Error, GraphInput};

/// Builds a random model from a seed; returns its bytes.
fn random_model(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut w = writer();
    let mut live: Vec<(u8, TensorDesc)> = Vec::new();
    let desc = |kind, channels: u16, rng: &mut Rng| TensorDesc {
        kind,
        channels,
        scale: 0.01 + (rng.next() % 100) as f32 / 100.0,
        zero_point: rng.i8() / 4,
    };
    let x_desc = desc(TensorKind::Node, rng.range(1, 6) as u16, &mut rng);
    let x = w.add_tensor(x_desc);
    live.push((x, x_desc));
    let act = |rng: &mut Rng| match rng.next() % 3 {
        0 => Activation::None,
        1 => Activation::Relu,
        _ => Activation::LeakyRelu {
            alpha_q16: rng.range(0, 65536) as i32,
        },
    };
    let n_ops = rng.range(1, 7);
    for _ in 0..n_ops {
        let (src, sd) = live[rng.range(0, live.len() as i64 - 1) as usize];
        let ic = sd.channels as usize;
        let oc = rng.range(1, 6) as usize;
        let is_node = sd.kind == TensorKind::Node;
        let choice = rng.next() % 8;
        let recs = |rng: &mut Rng, n: usize| {
            let s = 0.001 + (rng.next() % 100) as f64 / 5000.0;
            records(rng, n, 1000, s)
        };
        match choice {
            0 | 1 if is_node => {
                let o_desc = desc(TensorKind::Node, oc as u16, &mut rng);
                let o = w.add_tensor(o_desc);
                let ws = w.add_i8(&rng.weights(ic * oc));
                let r = recs(&mut rng, oc);
                let ps = w.add_channel_params(&r);
                if choice == 0 {
                    w.add_op(Op::GcnConv(GcnConv {
                        input: src,
                        output: o,
                        weights: ws,
                        params: ps,
                        act: act(&mut rng),
                        improved: rng.next() % 2 == 0,
                        add_self_loops: rng.next() % 2 == 0,
                        normalize: rng.next() % 2 == 0,
                        edge_weight: rng.next() % 2 == 0,
                    }));
                } else {
                    let normalize = rng.next() % 3 == 0;
                    let o_desc = TensorDesc {
                        zero_point: if normalize { 0 } else { o_desc.zero_point },
                        ..o_desc
                    };
                    let o2 = w.add_tensor(o_desc);
                    let wr = if rng.next() % 2 == 0 {
                        w.add_i8(&rng.weights(ic * oc))
                    } else {
                        Section::default()
                    };
                    let aggr = [Aggr::Sum, Aggr::Mean, Aggr::Max][(rng.next() % 3) as usize];
                    w.add_op(Op::SageConv(SageConv {
                        input: src,
                        output: o2,
                        aggr,
                        weights_l: ws,
                        weights_r: wr,
                        params: ps,
                        act: act(&mut rng),
                        normalize,
                    }));
                    live.push((o2, o_desc));
                    // `o` stays an unused tensor: allowed, never planned.
                    let _ = o;
                    continue;
                }
                live.push((o, o_desc));
            }
            2 if is_node => {
                let o_desc = desc(TensorKind::Node, ic as u16, &mut rng);
                let o = w.add_tensor(o_desc);
                let (m, s) =
                    tinygnn::quant::quantize_multiplier(0.001 + (rng.next() % 100) as f64 / 3000.0);
                w.add_op(Op::GinAggregate(GinAggregate {
                    input: src,
                    output: o,
                    one_plus_eps_q16: rng.range(0, 3 << 16) as i32,
                    mult: m,
                    shift: s,
                }));
                live.push((o, o_desc));
            }
            3 if is_node => {
                let pool = [Pool::Add, Pool::Mean, Pool::Max][(rng.next() % 3) as usize];
                let mut o_desc = desc(TensorKind::Graph, ic as u16, &mut rng);
                if pool == Pool::Max {
                    o_desc.zero_point = sd.zero_point;
                }
                let o = w.add_tensor(o_desc);
                let (m, s) =
                    tinygnn::quant::quantize_multiplier(0.001 + (rng.next() % 100) as f64 / 300.0);
                w.add_op(Op::GlobalPool(GlobalPool {
                    input: src,
                    output: o,
                    pool,
                    mult: m,
                    shift: s,
                }));
                live.push((o, o_desc));
            }
            4 => {
                // Add with another tensor of the same kind and channels, else with itself.
                let other = live
                    .iter()
                    .filter(|(_, d)| d.kind == sd.kind && d.channels == sd.channels)
                    .map(|p| p.0)
                    .next_back()
                    .unwrap_or(src);
                let o_desc = desc(sd.kind, sd.channels, &mut rng);
                let o = w.add_tensor(o_desc);
                w.add_op(Op::Add(Add {
                    a: src,
                    b: other,
                    output: o,
                    mult_a_q16: rng.range(0, 1 << 17) as i32,
                    mult_b_q16: rng.range(0, 1 << 17) as i32,
                    act: act(&mut rng),
                }));
                live.push((o, o_desc));
            }
            5 => {
                let parts: Vec<(u8, TensorDesc)> = live
                    .iter()
                    .filter(|(_, d)| d.kind == sd.kind)
                    .copied()
                    .take(3)
                    .collect();
                let ch: u16 = parts.iter().map(|p| p.1.channels).sum();
                let o_desc = desc(sd.kind, ch, &mut rng);
                let o = w.add_tensor(o_desc);
                let parts = parts
                    .iter()
                    .map(|p| ConcatPart {
                        input: p.0,
                        mult_q16: rng.range(1 << 14, 1 << 17) as i32,
                    })
                    .collect::<Vec<_>>();
                w.add_op(Op::Concat(Concat {
                    parts: heapless::Vec::from_slice(&parts).unwrap(),
                    output: o,
                }));
                live.push((o, o_desc));
            }
            6 => {
                let o_desc = TensorDesc {
                    scale: sd.scale * 2.0,
                    ..sd
                };
                let o = w.add_tensor(o_desc);
                let a = if rng.next() % 2 == 0 {
                    Activation::Relu
                } else {
                    Activation::LeakyRelu { alpha_q16: 6000 }
                };
                w.add_op(Op::Act(Act {
                    input: src,
                    output: o,
                    act: a,
                }));
                live.push((o, o_desc));
            }
            _ => {
                let o_desc = desc(sd.kind, oc as u16, &mut rng);
                let o = w.add_tensor(o_desc);
                let ws = w.add_i8(&rng.weights(ic * oc));
                let r = recs(&mut rng, oc);
                let ps = w.add_channel_params(&r);
                w.add_op(Op::Linear(Linear {
                    input: src,
                    output: o,
                    weights: ws,
                    params: ps,
                    act: act(&mut rng),
                }));
                live.push((o, o_desc));
            }
        }
    }
    // Up to 3 outputs, the last tensor first.
    let mut outs: Vec<u8> = vec![live.last().unwrap().0];
    for &(t, _) in live.iter().rev().skip(1).step_by(2).take(2) {
        outs.push(t);
    }
    w.finish(x, &outs, 24, 64, 5).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 300 }))]

    #[test]
    fn arena_bytes_is_monotonic(seed in any::<u64>(), n in 0usize..100, e in 0usize..300, g in 1usize..10, which in 0usize..3) {
        let bytes = random_model(seed);
        let m = tinygnn::Model::from_bytes(&bytes).unwrap();
        let base = m.arena_bytes(n, e, g);
        let (n2, e2, g2) = match which { 0 => (n + 1, e, g), 1 => (n, e + 1, g), _ => (n, e, g + 1) };
        prop_assert!(m.arena_bytes(n2, e2, g2) >= base);
        let (cn, ce, cg) = m.capacity();
        prop_assert!(m.arena_bytes(cn as usize, ce as usize, cg as usize) >= m.arena_bytes(n.min(cn as usize), e.min(ce as usize), g.min(cg as usize)));
    }

    #[test]
    fn random_models_run_exactly_in_arena_bytes(
        seed in any::<u64>(),
        n in 0usize..20,
        edges in proptest::collection::vec((any::<u16>(), any::<u16>(), 0.0f32..4.0), 0..50),
        batch_seed in any::<u64>(),
    ) {
        let bytes = random_model(seed);
        let model = tinygnn::Model::from_bytes(&bytes).unwrap();
        let f = model.input_desc().channels as usize;
        let mut rng = Rng(batch_seed | 1);
        let x = rng.i8s(n * f);
        let (src, dst): (Vec<u16>, Vec<u16>) = if n == 0 {
            (vec![], vec![])
        } else {
            edges.iter().map(|e| (e.0 % n as u16, e.1 % n as u16)).unzip()
        };
        let ew: Vec<f32> = edges.iter().take(src.len()).map(|e| e.2).collect();
        let batch: Vec<u16> = (0..n).map(|_| (rng.next() % 5) as u16).collect();
        let mut g = GraphInput::new(n, tinygnn::Features::I8(&x), &src, &dst).with_edge_weight(&ew);
        g.batch = if batch_seed % 2 == 0 { Some(&batch) } else { None };
        match run(&bytes, &g) {
            Ok(first) => {
                // Deterministic: a second run gives the same bytes.
                prop_assert_eq!(run(&bytes, &g).unwrap(), first);
            }
            Err(Error::Overflow { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
    }
}

#[test]
fn random_models_cover_every_op() {
    let mut seen = std::collections::BTreeMap::new();
    for seed in 0..200u64 {
        let bytes = random_model(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let m = tinygnn::Model::from_bytes(&bytes).unwrap();
        for op in m.ops() {
            *seen.entry(op.name()).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(seen.values().all(|&c| c >= 10), "{seen:?}");
}
