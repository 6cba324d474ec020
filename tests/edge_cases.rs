//! Graph edge cases with defined behaviour (documented in docs/guarantees.md,
//! "Graph edge cases"): empty graphs, one node, isolated nodes, self-loops,
//! duplicate edges, the declared capacity and one beyond it, the largest
//! index `u16` allows. Each case is checked exactly, either against a value
//! computed from the op's documented integer semantics or against an
//! equivalent graph that PyG treats identically (a duplicate edge is a second
//! neighbour with the same features, a GCN self-loop replaces the added one,
//! …). `tools/python/tests/test_edge_cases.py` compares the same cases with
//! PyG itself through the CLI.

mod common;
use common::*;
use tinygnn::format::writer::{ChannelRecord, ModelWriter};
use tinygnn::format::{Activation, Aggr, Op, Pool, Section};
use tinygnn::ops::{Act, GcnConv, GinAggregate, GlobalPool, SageConv};
use tinygnn::{Error, Features, GraphInput, Model};

const UNIT: ChannelRecord = ChannelRecord {
    bias: 0,
    mult: 1 << 30,
    shift: 1, // rescale 1.0
};

fn flags(add_self_loops: bool, normalize: bool, edge_weight: bool) -> GcnFlags {
    GcnFlags {
        add_self_loops,
        normalize,
        edge_weight,
    }
}

/// Output 0 of `bytes` on `input` (arena exactness is checked by `run`).
fn out0(bytes: &[u8], input: &GraphInput) -> (usize, usize, Vec<i8>) {
    run(bytes, input).unwrap().swap_remove(0)
}

fn weighted<'a>(
    n: usize,
    x: &'a [i8],
    src: &'a [u16],
    dst: &'a [u16],
    w: &'a [f32],
) -> GraphInput<'a> {
    input(n, x, src, dst).with_edge_weight(w)
}

/// GCN 1 → 1 channel, W = [1], bias 0, rescale 1, with the given flags and `improved`.
fn gcn(improved: bool, add_self_loops: bool, normalize: bool, edge_weight: bool) -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(1, 1.0, 0));
    let y = w.add_tensor(node(1, 1.0, 0));
    let weights = w.add_i8(&[1]);
    let params = w.add_channel_params(&[UNIT]);
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: y,
        weights,
        params,
        act: Activation::None,
        improved,
        add_self_loops,
        normalize,
        edge_weight,
    }));
    w.finish(x, &[y], 16, 32, 1).unwrap()
}

/// SAGE 2 → 2 channels (identity `lin_l`, optional identity `lin_r`), bias `b`, rescale 1.
fn sage(aggr: Aggr, root: bool, bias: i32) -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(2, 1.0, 3));
    let y = w.add_tensor(node(2, 1.0, -2));
    let wl = w.add_i8(&[1, 0, 0, 1]);
    let wr = if root {
        w.add_i8(&[1, 0, 0, 1])
    } else {
        Section::default()
    };
    let params = w.add_channel_params(&[ChannelRecord { bias, ..UNIT }; 2]);
    w.add_op(Op::SageConv(SageConv {
        input: x,
        output: y,
        aggr,
        weights_l: wl,
        weights_r: wr,
        params,
        act: Activation::None,
        normalize: false,
    }));
    w.finish(x, &[y], 16, 32, 1).unwrap()
}

/// GIN aggregation on 2 channels, 1 + eps = 1.5, rescale 1/256 (so out = acc / 2^16).
fn gin() -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(2, 1.0, 1));
    let y = w.add_tensor(node(2, 1.0, 0));
    w.add_op(Op::GinAggregate(GinAggregate {
        input: x,
        output: y,
        one_plus_eps_q16: 3 << 15,
        mult: 1 << 30,
        shift: -7, // 2^-8: undoes the 8 fractional bits kept
    }));
    w.finish(x, &[y], 16, 32, 1).unwrap()
}

/// x (2 ch, zp 4) → pool → graph rows (zp −3, rescale 1; mean keeps 8 fraction bits).
fn pool(kind: Pool) -> Vec<u8> {
    let mut w = writer();
    let zp_out = if kind == Pool::Max { 4 } else { -3 };
    let x = w.add_tensor(node(2, 1.0, 4));
    let p = w.add_tensor(graph(2, 1.0, zp_out));
    let shift = if kind == Pool::Mean { -7 } else { 1 };
    w.add_op(Op::GlobalPool(GlobalPool {
        input: x,
        output: p,
        pool: kind,
        mult: 1 << 30,
        shift,
    }));
    w.finish(x, &[p], 16, 32, 4).unwrap()
}

// ------------------------------------------------------------ empty graphs

#[test]
fn empty_graph_gives_no_node_rows_and_one_empty_graph_row() {
    // Node-level models: zero rows.
    for bytes in [
        gcn(false, true, true, false),
        sage(Aggr::Mean, true, 5),
        gin(),
    ] {
        let o = out0(&bytes, &input(0, &[], &[], &[]));
        assert_eq!((o.0, o.2.len()), (0, 0));
    }
    // Graph-level: one graph (no batch vector, or an empty one) holding the
    // empty-graph value: add and mean give real 0 (zero point), max real 0.
    for (kind, zp) in [(Pool::Add, -3), (Pool::Mean, -3), (Pool::Max, 4)] {
        let bytes = pool(kind);
        for batch in [None, Some(&[][..])] {
            let mut g = input(0, &[], &[], &[]);
            g.batch = batch;
            assert_eq!(out0(&bytes, &g), (1, 2, vec![zp, zp]), "{kind:?}");
        }
    }
}

#[test]
fn empty_graph_inside_a_batch_pools_to_zero() {
    // Graphs 0 and 2 have nodes, graph 1 none (PyG: scatter over size 3).
    let x = [6i8, 10, 8, 2, 1, 9];
    let batch = [0u16, 0, 2];
    for kind in [Pool::Add, Pool::Mean, Pool::Max] {
        let bytes = pool(kind);
        let g = input(3, &x, &[], &[]).with_batch(&batch);
        let (rows, ch, v) = out0(&bytes, &g);
        assert_eq!((rows, ch), (3, 2));
        let want: [i8; 6] = match kind {
            // Σ(x − 4) + (−3)
            Pool::Add => [(2 + 4) - 3, (6 - 2) - 3, -3, -3, -3 - 3, 5 - 3],
            // mean(x − 4) + (−3): graph 0 (2+4)/2, (6−2)/2
            Pool::Mean => [3 - 3, 2 - 3, -3, -3, -3 - 3, 5 - 3],
            Pool::Max => [8, 10, 4, 4, 1, 9],
        };
        assert_eq!(v, want, "{kind:?}");
    }
}

#[test]
fn nodes_without_edges() {
    let x = [5i8, -7, 20];
    // GCN with self-loops: deg 1, out = W x = x.
    assert_eq!(
        out0(&gcn(false, true, true, false), &input(3, &x, &[], &[])).2,
        x
    );
    // The op with `improved` (fill weight 2): deg 2, coefficient 2/2 = 1: still x.
    assert_eq!(
        out0(&gcn(true, true, true, false), &input(3, &x, &[], &[])).2,
        x
    );
    // Without self-loops: no message at all, deg 0 → deg^-1/2 = 0: out = bias = 0.
    assert_eq!(
        out0(&gcn(false, false, true, false), &input(3, &x, &[], &[])).2,
        [0, 0, 0]
    );
}

// ------------------------------------------------------------ one node, isolated nodes

#[test]
fn one_node() {
    let x = [9i8, -4];
    let one = input(1, &x, &[], &[]);
    // SAGE: the empty neighbourhood aggregates to 0 (sum, mean and max alike);
    // with root weight out = lin_r(x − zp) + bias + zp_out, without it bias + zp_out.
    for aggr in [Aggr::Sum, Aggr::Mean, Aggr::Max] {
        assert_eq!(
            out0(&sage(aggr, true, 5), &one).2,
            [9 - 3 + 5 - 2, -4 - 3 + 5 - 2]
        );
        assert_eq!(out0(&sage(aggr, false, 5), &one).2, [5 - 2, 5 - 2]);
    }
    // GIN: (1 + eps)(x − zp) = 1.5 · (8, −5) = (12, −7.5 → −8, half away from zero).
    assert_eq!(out0(&gin(), &one).2, [12, -8]);
    // GCN on one node (1 channel): its own loop only.
    assert_eq!(
        out0(&gcn(false, true, true, false), &input(1, &[33], &[], &[])).2,
        [33]
    );
}

#[test]
fn isolated_nodes_behave_like_one_node_graphs() {
    // Nodes 0 → 1 connected, node 2 isolated: its output equals that of a
    // one-node graph with its features, for every op kind.
    let x = [10i8, 20, -30, 40, 50, -60];
    let models = [
        sage(Aggr::Sum, true, 1),
        sage(Aggr::Mean, false, -4),
        sage(Aggr::Max, true, 2),
        gin(),
    ];
    for bytes in &models {
        let (_, _, v) = out0(bytes, &input(3, &x, &[0], &[1]));
        let (_, _, alone) = out0(bytes, &input(1, &x[4..], &[], &[]));
        assert_eq!(&v[4..], &alone[..]);
    }
    let x1 = [10i8, 20, -30];
    for (loops, norm) in [(true, true), (false, true), (true, false)] {
        let bytes = gcn(false, loops, norm, false);
        let (_, _, v) = out0(&bytes, &input(3, &x1, &[0], &[1]));
        let (_, _, alone) = out0(&bytes, &input(1, &x1[2..], &[], &[]));
        assert_eq!(v[2], alone[0]);
    }
}

// ------------------------------------------------------------ duplicate edges

#[test]
fn duplicate_edges_count_as_separate_neighbours() {
    // 0 → 2 twice  ≡  0 → 2 and 1 → 2 where node 1 is a copy of node 0
    // (PyG sums messages per edge: duplicates are not merged).
    let x2 = [7i8, -9, 7, -9, 1, 2];
    let dup = (vec![0u16, 0], vec![2u16, 2]);
    let copy = (vec![0u16, 1], vec![2u16, 2]);
    for bytes in [
        sage(Aggr::Sum, true, 0),
        sage(Aggr::Mean, true, 3),
        sage(Aggr::Max, false, 1),
        gin(),
    ] {
        let a = out0(&bytes, &input(3, &x2, &dup.0, &dup.1)).2;
        let b = out0(&bytes, &input(3, &x2, &copy.0, &copy.1)).2;
        assert_eq!(a[4..], b[4..]);
    }
    // Mean over a duplicate and a distinct neighbour: (2·a + b) / 3, not (a + b) / 2.
    let x = [30i8, 0, 0, 0, 3, 3];
    let s = sage(Aggr::Mean, false, 0);
    let v = out0(&s, &input(3, &x, &[0, 0, 1], &[2, 2, 2])).2;
    // ((30−3)·2 + (0−3)) / 3 = 17; (−3·2 −3)/3 = −3; then + zp_out (−2).
    assert_eq!(v[4..], [17 - 2, -3 - 2]);
    // GCN with edge weights: the degree counts both copies too.
    let x1 = [40i8, 40, 0];
    for improved in [false, true] {
        let bytes = gcn(improved, true, true, true);
        let a = out0(&bytes, &weighted(3, &x1, &[0, 0], &[2, 2], &[0.5, 1.5])).2;
        let b = out0(&bytes, &weighted(3, &x1, &[0, 1], &[2, 2], &[0.5, 1.5])).2;
        assert_eq!(a[2], b[2]);
    }
}

// ------------------------------------------------------------ self-loops

#[test]
fn gcn_self_loops_follow_add_remaining_self_loops() {
    let x = [50i8, 20, -10];
    let (s, t) = ([0u16, 1], [1u16, 2]);
    // Without edge weights, explicit loops change nothing: PyG replaces them
    // by the one it adds (weight 1). (PyG 2.8.1 ignores `improved` without
    // edge weights; the converter then writes `improved: false`.)
    let bytes = gcn(false, true, true, false);
    let plain = out0(&bytes, &input(3, &x, &s, &t)).2;
    let looped = out0(&bytes, &input(3, &x, &[0, 1, 1, 1], &[1, 2, 1, 1])).2;
    assert_eq!(plain, looped);
    // With edge weights: the existing loop keeps its weight; improved fills 2 elsewhere.
    let bytes = gcn(true, true, true, true);
    let w_plain = [1.0f32, 1.0];
    let plain = out0(&bytes, &weighted(3, &x, &s, &t, &w_plain)).2;
    // A loop on node 1 with weight 2.0 = the improved fill: same result.
    let same = out0(
        &bytes,
        &weighted(3, &x, &[0, 1, 1], &[1, 2, 1], &[1.0, 1.0, 2.0]),
    )
    .2;
    assert_eq!(plain, same);
    // Weight 0.25 instead: node 1's result changes (its loop is weaker).
    let weak = out0(
        &bytes,
        &weighted(3, &x, &[0, 1, 1], &[1, 2, 1], &[1.0, 1.0, 0.25]),
    )
    .2;
    assert_ne!(plain[1], weak[1]);
    // Two loops on node 1: the last one's weight counts (PyG's index assignment).
    let two = out0(
        &bytes,
        &weighted(3, &x, &[1, 0, 1, 1], &[1, 1, 2, 1], &[7.0, 1.0, 1.0, 0.25]),
    )
    .2;
    assert_eq!(two[1], weak[1]);
    // Without add_self_loops, a loop is an ordinary edge: node 2 with a loop
    // from itself ≡ an edge from a copy of node 2 (both without in-edges).
    let bytes = gcn(false, false, false, false);
    let a = out0(&bytes, &input(2, &[0, 25], &[1], &[1])).2;
    let b = out0(&bytes, &input(2, &[25, 25], &[0], &[1])).2;
    assert_eq!(a[1], b[1]);
    assert_eq!(a[1], 25);
}

#[test]
fn sage_and_gin_count_self_loops_as_edges() {
    // A loop i → i ≡ an edge from a copy of i (PyG adds no loops, removes none).
    let x = [12i8, -5, 12, -5];
    for bytes in [
        sage(Aggr::Sum, true, 0),
        sage(Aggr::Mean, false, 0),
        sage(Aggr::Max, true, 0),
        gin(),
    ] {
        let looped = out0(&bytes, &input(2, &x, &[1], &[1])).2;
        let copy = out0(&bytes, &input(2, &x, &[0], &[1])).2;
        assert_eq!(looped[2..], copy[2..]);
    }
    // GIN: (1.5 + 1)·(x − zp) for a node with one self-loop.
    let v = out0(&gin(), &input(1, &[5, 3], &[0], &[0])).2;
    assert_eq!(v, [10, 5]);
}

// ------------------------------------------------------------ capacity

#[test]
fn exactly_the_capacity_runs_and_one_more_is_an_error() {
    let bytes = one_channel_gcn(1.0, 1, flags(true, true, false), 5, 7);
    let pool = {
        let mut w = writer();
        let x = w.add_tensor(node(1, 1.0, 0));
        let p = w.add_tensor(graph(1, 1.0, 0));
        w.add_op(Op::GlobalPool(GlobalPool {
            input: x,
            output: p,
            pool: Pool::Add,
            mult: 1 << 30,
            shift: 1,
        }));
        w.finish(x, &[p], 5, 7, 2).unwrap()
    };
    let x = [1i8, 2, 3, 4, 5, 6];
    let s = [0u16, 1, 2, 3, 4, 0, 1, 2];
    let t = [1u16, 2, 3, 4, 0, 0, 1, 2];
    let ok = out0(&bytes, &input(5, &x[..5], &s[..7], &t[..7]));
    assert_eq!((ok.0, ok.2.len()), (5, 5));
    assert_eq!(
        run(&bytes, &input(6, &x, &s[..7], &t[..7])).unwrap_err(),
        Error::TooManyNodes { nodes: 6, max: 5 }
    );
    assert_eq!(
        run(&bytes, &input(5, &x[..5], &s, &t)).unwrap_err(),
        Error::TooManyEdges { edges: 8, max: 7 }
    );
    let two = input(5, &x[..5], &[], &[]).with_batch(&[0, 0, 1, 1, 1]);
    assert_eq!(out0(&pool, &two).2, [3, 12]);
    let three = two.with_batch(&[0, 0, 1, 1, 2]);
    assert_eq!(
        run(&pool, &three).unwrap_err(),
        Error::TooManyGraphs { graphs: 3, max: 2 }
    );
}

#[test]
#[cfg_attr(miri, ignore = "65535 nodes: too slow under Miri")]
fn largest_u16_index() {
    // A model declaring the largest capacity: 65535 nodes (indices 0..=65534).
    let bytes = one_channel_gcn(1.0, 1, flags(false, false, false), 65535, 4);
    let n = 65535usize;
    let mut x = vec![0i8; n];
    x[n - 1] = 11;
    x[0] = -6;
    // Edges between node 0 and node 65534, both ways: out = the neighbour's x.
    let g = input(n, &x, &[65534, 0], &[0, 65534]);
    let (rows, _, v) = out0(&bytes, &g);
    assert_eq!(rows, n);
    assert_eq!((v[0], v[n - 1], v[1]), (11, -6, 0));
    // Index 65535 = u16::MAX is not below 65535 nodes.
    assert_eq!(
        run(&bytes, &input(n, &x, &[65535], &[0])).unwrap_err(),
        Error::NodeIndexOutOfRange {
            edge: 0,
            index: 65535
        }
    );
    // 65536 nodes cannot be indexed by u16 at all.
    let x2 = vec![0i8; n + 1];
    assert_eq!(
        run(&bytes, &input(n + 1, &x2, &[], &[])).unwrap_err(),
        Error::TooManyNodes {
            nodes: 65536,
            max: 65535
        }
    );
    // A batch id of 65535 means 65536 graphs: more than any model allows.
    let mut batch = vec![0u16; n];
    batch[n - 1] = u16::MAX;
    let g = input(n, &x, &[], &[]).with_batch(&batch);
    assert!(matches!(
        run(&bytes, &g).unwrap_err(),
        Error::TooManyGraphs { graphs: 65536, .. }
    ));
}

#[test]
fn capacity_limits_of_the_format() {
    // max_nodes 65535 and max_edges 2^24 are the largest a model may declare.
    let at = |n: u32, e: u32| {
        let mut w = ModelWriter::new();
        let x = w.add_tensor(node(1, 1.0, 0));
        let y = w.add_tensor(node(1, 1.0, 0));
        w.add_op(Op::Act(Act {
            input: x,
            output: y,
            act: Activation::Relu,
        }));
        w.finish(x, &[y], n, e, 1)
            .map(|b| Model::from_bytes(&b).map(|m| m.capacity()))
    };
    assert_eq!(at(65535, 1 << 24), Ok(Ok((65535, 1 << 24, 1))));
    assert!(at(65536, 1).is_err());
    assert!(at(1, (1 << 24) + 1).is_err());
    assert!(at(0, 1).is_err());
}

#[test]
fn float_features_of_an_empty_graph() {
    // F32 features of zero nodes are an empty slice; anything else is a shape error.
    let bytes = one_channel_gcn(1.0, 1, flags(true, true, false), 5, 7);
    let mut g = input(0, &[], &[], &[]);
    g.features = Features::F32(&[]);
    assert_eq!(out0(&bytes, &g).0, 0);
    g.features = Features::F32(&[1.0]);
    assert_eq!(
        run(&bytes, &g).unwrap_err(),
        Error::FeatureShape {
            expected: 0,
            actual: 1
        }
    );
}
