//! HypergraphConv: the documented integer semantics (an independent i128
//! reference), the hyperedge rules of the input validation, and the
//! `weighted` flag.

mod common;
use common::*;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{Activation, Op};
use tinygnn::ops::HypergraphConv;
use tinygnn::{Error, Features, GraphInput, Hyperedges};

/// One HypergraphConv `in_ch → out_ch`; returns the model bytes, the weights
/// and the channel records.
fn model(
    rng: &mut Rng,
    in_ch: usize,
    out_ch: usize,
    act: Activation,
    weighted: bool,
    zp: (i8, i8),
    max_edges: u32,
) -> (Vec<u8>, Vec<i8>, Vec<ChannelRecord>) {
    let mut w = writer();
    let x = w.add_tensor(node(in_ch as u16, 0.05, zp.0));
    let y = w.add_tensor(node(out_ch as u16, 0.1, zp.1));
    let wt = rng.weights(in_ch * out_ch);
    let recs = records(rng, out_ch, 300, 1.0 / 600.0);
    let weights = w.add_i8(&wt);
    let params = w.add_channel_params(&recs);
    w.add_op(Op::HypergraphConv(HypergraphConv {
        input: x,
        output: y,
        weights,
        params,
        act,
        weighted,
    }));
    (w.finish(x, &[y], 64, max_edges, 1).unwrap(), wt, recs)
}

/// The integer semantics of `HypergraphConv`, written from its doc comment.
#[allow(clippy::too_many_arguments)]
fn reference(
    x: &[i8],
    zp: i8,
    in_ch: usize,
    w: &[i8],
    recs: &[ChannelRecord],
    act: Activation,
    zp_out: i8,
    nodes: &[u16],
    edges: &[u16],
    weight: Option<&[f32]>,
) -> Vec<i8> {
    let out_ch = recs.len();
    let n = x.len() / in_ch;
    let h: Vec<Vec<i64>> = (0..n)
        .map(|v| dense(w, in_ch, &x[v * in_ch..(v + 1) * in_ch], zp))
        .collect();
    let mut t = vec![vec![0i128; out_ch]; n];
    let mut d = vec![0u128; n];
    let m = edges.iter().map(|&e| e as usize + 1).max().unwrap_or(0);
    for e in 0..m {
        let ks: Vec<usize> = (0..edges.len())
            .filter(|&k| edges[k] as usize == e)
            .collect();
        if ks.is_empty() {
            continue;
        }
        let we = weight.map_or(1 << 16, |w| {
            tinygnn::graph::edge_weight_q16(w[e]).unwrap() as u128
        });
        for c in 0..out_ch {
            let s: i128 = ks.iter().map(|&k| h[nodes[k] as usize][c] as i128).sum();
            let mean = round_div(s, ks.len() as i128);
            for &k in &ks {
                let v = nodes[k] as usize;
                t[v][c] = (t[v][c] + mean).clamp(i32::MIN as i128, i32::MAX as i128);
            }
        }
        for &k in &ks {
            d[nodes[k] as usize] += we;
        }
    }
    let mut out = Vec::new();
    for v in 0..n {
        for c in 0..out_ch {
            let acc = if d[v] == 0 {
                0
            } else {
                round_div(t[v][c] << 16, d[v] as i128)
            };
            out.push(finish(acc as i64, &recs[c], act, zp_out));
        }
    }
    out
}

/// A random hypergraph on `n` nodes (the last in no hyperedge): `m`
/// hyperedge ids, one of them empty, one incidence listed twice.
fn hypergraph(rng: &mut Rng, n: usize, m: usize) -> (Vec<u16>, Vec<u16>, Vec<f32>) {
    let (mut nodes, mut edges) = (Vec::new(), Vec::new());
    for e in 0..m {
        if e == m / 2 {
            continue;
        }
        let k = 1 + (rng.next() % 4) as usize;
        for _ in 0..k {
            nodes.push((rng.next() % (n as u64 - 1)) as u16);
            edges.push(e as u16);
        }
    }
    nodes.push(nodes[0]);
    edges.push(edges[0]);
    let weights = (0..m)
        .map(|_| 0.25 + (rng.next() % 700) as f32 / 400.0)
        .collect();
    (nodes, edges, weights)
}

#[test]
fn matches_the_integer_semantics() {
    let mut rng = Rng(0x4859_5045);
    let mut spread = Vec::new();
    for seed in 0..12 {
        let (in_ch, out_ch) = (2 + seed % 5, 1 + seed % 6);
        let n = 5 + seed;
        let weighted = seed % 2 == 1;
        let act = [Activation::None, Activation::Relu][seed % 2];
        let zp = (rng.i8() / 4, rng.i8() / 4);
        let (bytes, w, recs) = model(&mut rng, in_ch, out_ch, act, weighted, zp, 64);
        let x = rng.i8s(n * in_ch);
        let (nodes, edges, wts) = hypergraph(&mut rng, n, 3 + seed % 4);
        let h = Hyperedges {
            nodes: &nodes,
            edges: &edges,
            weight: Some(&wts),
        };
        let input = GraphInput::new(n, Features::I8(&x), &[], &[]).with_hyperedges(&h);
        let got = run(&bytes, &input).unwrap();
        let want = reference(
            &x,
            zp.0,
            in_ch,
            &w,
            &recs,
            act,
            zp.1,
            &nodes,
            &edges,
            weighted.then_some(&wts[..]),
        );
        assert_eq!(got[0].2, want, "seed {seed}");
        // The node in no hyperedge gets the bias only (D = 0).
        let last = &want[(n - 1) * out_ch..];
        for (c, &v) in last.iter().enumerate() {
            assert_eq!(v, finish(0, &recs[c], act, zp.1));
        }
        spread.extend(want);
    }
    assert_spread(&spread);
}

#[test]
fn weights_are_read_only_when_weighted() {
    let mut rng = Rng(77);
    let n = 8;
    let (nodes, edges, wts) = hypergraph(&mut rng, n, 5);
    let x = rng.i8s(n * 3);
    let h = Hyperedges {
        nodes: &nodes,
        edges: &edges,
        weight: Some(&wts),
    };
    let plain = Hyperedges { weight: None, ..h };
    let outs = |weighted: bool| {
        let mut r = Rng(5);
        let (bytes, ..) = model(&mut r, 3, 4, Activation::None, weighted, (0, 0), 64);
        let with = GraphInput::new(n, Features::I8(&x), &[], &[]).with_hyperedges(&h);
        let without = GraphInput::new(n, Features::I8(&x), &[], &[]).with_hyperedges(&plain);
        (
            run(&bytes, &with).unwrap()[0].2.clone(),
            run(&bytes, &without).unwrap()[0].2.clone(),
        )
    };
    let (a, b) = outs(false);
    assert_eq!(a, b, "an unweighted layer ignores hyperedge_weight");
    let (a, b) = outs(true);
    assert_ne!(a, b, "a weighted layer reads hyperedge_weight");
}

#[test]
fn hyperedge_input_errors() {
    let mut rng = Rng(9);
    let (bytes, ..) = model(&mut rng, 2, 2, Activation::None, true, (0, 0), 4);
    let x = [1i8; 3 * 2];
    let run1 = |h: Option<&Hyperedges>| {
        let mut input = GraphInput::new(3, Features::I8(&x), &[], &[]);
        input.hyperedges = h.copied();
        run(&bytes, &input).map(|_| ())
    };
    assert_eq!(run1(None), Err(Error::MissingHyperedges));
    let h =
        |nodes: &'static [u16], edges: &'static [u16], weight: Option<&'static [f32]>| Hyperedges {
            nodes,
            edges,
            weight,
        };
    assert_eq!(
        run1(Some(&h(&[0, 1], &[0], None))),
        Err(Error::HyperedgeListMismatch)
    );
    assert_eq!(
        run1(Some(&h(&[0, 1, 2, 0, 1], &[0, 0, 0, 1, 1], None))),
        Err(Error::TooManyIncidences {
            incidences: 5,
            max: 4
        })
    );
    assert_eq!(
        run1(Some(&h(&[0, 3], &[0, 0], None))),
        Err(Error::HyperedgeNodeOutOfRange {
            incidence: 1,
            index: 3
        })
    );
    assert_eq!(
        run1(Some(&h(&[0, 1], &[0, 2], Some(&[1.0, 1.0])))),
        Err(Error::HyperedgeWeightShape {
            expected: 3,
            actual: 2
        })
    );
    for bad in [-1.0f32, f32::NAN, f32::INFINITY, 1.0e6] {
        let w: &'static [f32] = Box::leak(Box::new([1.0, bad]));
        assert_eq!(
            run1(Some(&h(&[0, 1], &[0, 1], Some(w)))),
            Err(Error::InvalidHyperedgeWeight { hyperedge: 1 })
        );
    }
    // Longer weights, a hyperedge id gap and no incidence at all are valid.
    assert!(run1(Some(&h(&[0, 1], &[0, 3], Some(&[1.0, 2.0, 3.0, 4.0, 5.0])))).is_ok());
    assert!(run1(Some(&h(&[], &[], None))).is_ok());
}

#[test]
fn models_without_the_op_ignore_hyperedges() {
    let bytes = one_channel_gcn(
        0.1,
        1,
        GcnFlags {
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        },
        4,
        4,
    );
    let x = [1i8, 2, 3];
    let bad = Hyperedges {
        nodes: &[9, 9],
        edges: &[0],
        weight: Some(&[-1.0]),
    };
    let plain = input(3, &x, &[0, 1], &[1, 2]);
    let with = plain.with_hyperedges(&bad);
    assert_eq!(run(&bytes, &plain).unwrap(), run(&bytes, &with).unwrap());
}
