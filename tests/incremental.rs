//! Incremental runs (`Session::prepare_incremental`, `Session::update`):
//! random changes of a few nodes' features, dense and sparse (read in
//! place), on directed and undirected random graphs, give the bytes of a
//! full run; misuse is a typed error. (Every op's tests also check one
//! incremental run against a full one: `common::run`.)
#![cfg(feature = "incremental")]

mod common;
use common::*;
use proptest::prelude::*;
use tinygnn::format::{Activation, Op, TensorKind};
use tinygnn::ops::{GcnConv, Linear};
use tinygnn::{Error, Features, GraphInput, Model, Session};

const F: usize = 10;

/// GCN(F → 6, ReLU) → Linear(6 → 6, ReLU) → GCN(6 → 5) → GCN(5 → 3): the
/// first layer reads sparse features in place; three hops in all.
fn chain_model(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut w = writer();
    let x = w.add_tensor(node(F as u16, 0.05, -3));
    let mut cur = (x, F);
    for (k, oc) in [6usize, 6, 5, 3].into_iter().enumerate() {
        let o = w.add_tensor(node(oc as u16, 0.04 + 0.01 * k as f32, rng.i8() / 8));
        let weights = w.add_i8(&rng.weights(cur.1 * oc));
        let recs = records(&mut rng, oc, 500, 0.002);
        let params = w.add_channel_params(&recs);
        let act = if k < 2 {
            Activation::Relu
        } else {
            Activation::None
        };
        let op = if k == 1 {
            Op::Linear(Linear {
                input: cur.0,
                output: o,
                weights,
                params,
                act,
            })
        } else {
            Op::GcnConv(GcnConv {
                input: cur.0,
                output: o,
                weights,
                params,
                act,
                improved: k == 3,
                add_self_loops: true,
                normalize: true,
                edge_weight: false,
            })
        };
        w.add_op(op);
        cur = (o, oc);
    }
    let _ = TensorKind::Node;
    w.finish(x, &[cur.0], 200, 2000, 1).unwrap()
}

/// Sparse rows of `x` (`[n, F]`): the entries not equal to `zp`.
fn sparse(x: &[i8], zp: i8) -> (Vec<u32>, Vec<u16>, Vec<i8>) {
    let (mut rp, mut cols, mut vals) = (vec![0u32], vec![], vec![]);
    for row in x.chunks(F) {
        for (c, &v) in row.iter().enumerate() {
            if v != zp {
                cols.push(c as u16);
                vals.push(v);
            }
        }
        rp.push(cols.len() as u32);
    }
    (rp, cols, vals)
}

fn full_run(model: &Model<'_>, input: &GraphInput) -> Vec<i8> {
    let (n, e) = (input.num_nodes, input.sources.len());
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, model.arena_bytes(n, e, 1));
    let mut s = Session::new(model, arena);
    s.run(input).unwrap().data.to_vec()
}

fn sparse_features(sp: &(Vec<u32>, Vec<u16>, Vec<i8>)) -> Features<'_> {
    Features::SparseI8 {
        row_ptr: &sp.0,
        cols: &sp.1,
        values: &sp.2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 2 } else { 64 }))]

    /// Several updates in a row, each changing the features of a random set
    /// of nodes (none to a few, repeats allowed), dense int8 or sparse
    /// features read in place, on a random directed graph or its symmetric
    /// closure: every update equals a full run on the new features.
    #[test]
    fn updates_equal_full_runs(
        seed in any::<u64>(),
        n in 1usize..60,
        edges in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..150),
        undirected in any::<bool>(),
        use_sparse in any::<bool>(),
        steps in proptest::collection::vec(proptest::collection::vec(any::<u16>(), 0..8), 1..5),
    ) {
        let bytes = chain_model(seed);
        let model = Model::from_bytes(&bytes).unwrap();
        let (mut src, mut dst): (Vec<u16>, Vec<u16>) =
            edges.iter().map(|e| (e.0 % n as u16, e.1 % n as u16)).unzip();
        if undirected {
            let (s2, d2) = (dst.clone(), src.clone());
            src.extend(s2);
            dst.extend(d2);
        }
        let mut rng = Rng(seed ^ 0x5eed);
        // Mostly the zero point (-3), so that sparse rows are sparse.
        let x0: Vec<i8> = (0..n * F)
            .map(|_| if rng.next() % 3 == 0 { rng.i8() } else { -3 })
            .collect();
        let sp0 = sparse(&x0, -3);
        let need = model.incremental_arena_bytes(n, src.len(), 1, use_sparse);
        let mut buf = Vec::new();
        let arena = aligned(&mut buf, need);
        let mut s = Session::new(&model, arena);
        let g0 = GraphInput::new(
            n,
            if use_sparse { sparse_features(&sp0) } else { Features::I8(&x0) },
            &src,
            &dst,
        );
        let p = s.prepare_incremental(&g0).unwrap();
        let dense0 = GraphInput::new(n, Features::I8(&x0), &src, &dst);
        prop_assert_eq!(s.output(0).unwrap().data, &full_run(&model, &dense0)[..]);
        let mut x = x0.clone();
        for nodes in steps {
            let nodes: Vec<u16> = nodes.iter().map(|&v| v % n as u16).collect();
            for &v in &nodes {
                for c in 0..F {
                    if rng.next() % 2 == 0 {
                        x[v as usize * F + c] = if rng.next() % 2 == 0 { -3 } else { rng.i8() };
                    }
                }
            }
            let want = full_run(&model, &GraphInput::new(n, Features::I8(&x), &src, &dst));
            let sp = sparse(&x, -3);
            let features = if use_sparse { sparse_features(&sp) } else { Features::I8(&x) };
            let got = s.update(&p, features, &nodes).unwrap().data.to_vec();
            prop_assert_eq!(got, want, "update of {:?}", nodes);
        }
    }
}

#[test]
fn misuse_is_a_typed_error() {
    let bytes = chain_model(7);
    let model = Model::from_bytes(&bytes).unwrap();
    let n = 12;
    let src: Vec<u16> = (0..n as u16).collect();
    let dst: Vec<u16> = (0..n as u16).map(|i| (i + 1) % n as u16).collect();
    let x = vec![1i8; n * F];
    let g = GraphInput::new(n, Features::I8(&x), &src, &dst);
    let need = model.incremental_arena_bytes(n, n, 1, false);
    assert!(need > model.arena_bytes(n, n, 1));
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, need);
    let mut s = Session::new(&model, arena);
    // A plain prepared graph: no update.
    let p = s.prepare(&g).unwrap();
    assert_eq!(
        s.update(&p, g.features, &[0]).map(|o| o.rows),
        Err(Error::NotIncremental)
    );
    let p = s.prepare_incremental(&g).unwrap();
    let before = s.output(0).unwrap().data.to_vec();
    // A node outside the graph; wrong feature shapes: nothing written, the
    // graph stays ready for updates.
    assert_eq!(
        s.update(&p, g.features, &[3, n as u16]).map(|o| o.rows),
        Err(Error::ChangedNodeOutOfRange {
            position: 1,
            index: n as u32
        })
    );
    assert!(matches!(
        s.update(&p, Features::I8(&x[1..]), &[0]).map(|o| o.rows),
        Err(Error::FeatureShape { .. })
    ));
    assert_eq!(s.update(&p, g.features, &[2]).unwrap().data, &before[..]);
    // f32 features after int8 ones, both dense: an update.
    let xf: Vec<f32> = x.iter().map(|&v| (v as f32 + 3.0) * 0.05).collect();
    assert_eq!(
        s.update(&p, Features::F32(&xf), &[]).unwrap().data,
        &before[..]
    );
    // After a plain run the token is stale.
    s.run(&g).unwrap();
    assert_eq!(
        s.update(&p, g.features, &[0]).map(|o| o.rows),
        Err(Error::NotIncremental)
    );
    // Sparse features after dense ones (another input layout): a full run.
    let p = s.prepare_incremental(&g).unwrap();
    let sp = sparse(&x, -3);
    assert_eq!(
        s.update(&p, sparse_features(&sp), &[]).unwrap().data,
        &before[..]
    );
    let mut x2 = x.clone();
    x2[5 * F] = 90;
    let want = full_run(&model, &GraphInput::new(n, Features::I8(&x2), &src, &dst));
    assert_eq!(
        s.update(&p, Features::I8(&x2), &[5]).unwrap().data,
        &want[..]
    );
    // A recurrent model has no incremental runs.
    let (mult, shift) = tinygnn::quant::quantize_multiplier(1.0);
    let cell = tinygnn_testkit::recurrent_cell(mult, shift);
    let m2 = Model::from_bytes(&cell).unwrap();
    let mut buf2 = Vec::new();
    let arena2 = aligned(&mut buf2, m2.incremental_arena_bytes(3, 0, 1, false));
    let mut s2 = Session::new(&m2, arena2);
    let xs = [1i8; 6];
    assert_eq!(
        s2.prepare_incremental(&input(3, &xs, &[], &[]))
            .map(|p| p.num_nodes()),
        Err(Error::StateRequired)
    );
}
