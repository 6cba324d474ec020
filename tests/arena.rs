//! The memory plan and `Model::arena_bytes`, checked against layouts worked
//! out by hand from the documented plan (see `tinygnn::session`).

mod common;
use common::*;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{Activation, Op, Pool};
use tinygnn::ops::{Act, GcnConv, GlobalPool, Linear};
use tinygnn::Model;

fn r8(x: usize) -> usize {
    x.div_ceil(8) * 8
}

/// Graph region: row_ptr u32 × (n+1), sources u16 × e, counts u32 × g.
fn graph_bytes(n: usize, e: usize, g: usize) -> usize {
    r8(4 * (n + 1)) + r8(2 * e) + r8(4 * g)
}

fn chain(outputs_a: bool) -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(4, 0.1, 0));
    let a = w.add_tensor(node(4, 0.1, 0));
    let b = w.add_tensor(node(4, 0.1, 0));
    let c = w.add_tensor(node(4, 0.1, 0));
    let d = w.add_tensor(node(4, 0.1, 0));
    for (i, o) in [(x, a), (a, b), (b, c), (c, d)] {
        w.add_op(Op::Act(Act {
            input: i,
            output: o,
            act: Activation::Relu,
        }));
    }
    let outs: &[u8] = if outputs_a { &[d, a] } else { &[d] };
    w.finish(x, outs, 100, 100, 10).unwrap()
}

#[test]
fn chain_reuses_two_slots() {
    // x keeps slot 0; a→1, b→2, c reuses 1 (a is dead), d reuses 2.
    let bytes = chain(false);
    let m = Model::from_bytes(&bytes).unwrap();
    for (n, e) in [(5, 3), (0, 0), (17, 40), (1, 1)] {
        assert_eq!(
            m.arena_bytes(n, e, 1),
            graph_bytes(n, e, 1) + 3 * r8(4 * n),
            "n={n} e={e}"
        );
    }
    // Results are right despite the reuse.
    let x: Vec<i8> = (0..20).map(|i| i as i8 - 10).collect();
    let outs = run(&bytes, &input(5, &x, &[0], &[1])).unwrap();
    assert_eq!(outs[0].2, x.iter().map(|&v| v.max(0)).collect::<Vec<_>>());
}

#[test]
fn outputs_are_never_reused() {
    // a is an output: x 0, a 1 (kept), b 2, c 3, d reuses 2.
    let bytes = chain(true);
    let m = Model::from_bytes(&bytes).unwrap();
    assert_eq!(m.arena_bytes(5, 3, 1), graph_bytes(5, 3, 1) + 4 * r8(20));
    let x: Vec<i8> = (0..20).map(|i| i as i8 - 10).collect();
    let outs = run(&bytes, &input(5, &x, &[], &[])).unwrap();
    assert_eq!(outs[1].2, x.iter().map(|&v| v.max(0)).collect::<Vec<_>>());
}

#[test]
fn node_and_graph_tensors_share_slots_by_max_size() {
    // x(3) → GCN → h(5) → mean pool → p(5, graph) → linear → y(2, graph).
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let h = w.add_tensor(node(5, 0.1, 0));
    let p = w.add_tensor(graph(5, 0.1, 0));
    let y = w.add_tensor(graph(2, 0.1, 0));
    let ws = w.add_i8(&[1; 15]);
    let ps = w.add_channel_params(
        &[ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 0,
        }; 5],
    );
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: h,
        weights: ws,
        params: ps,
        act: Activation::Relu,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));
    w.add_op(Op::GlobalPool(GlobalPool {
        input: h,
        output: p,
        pool: Pool::Mean,
        mult: 1 << 30,
        shift: -7,
    }));
    let lw = w.add_i8(&[1; 10]);
    let lp = w.add_channel_params(
        &[ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 0,
        }; 2],
    );
    w.add_op(Op::Linear(Linear {
        input: p,
        output: y,
        weights: lw,
        params: lp,
        act: Activation::None,
    }));
    let bytes = w.finish(x, &[y], 64, 64, 8).unwrap();
    let m = Model::from_bytes(&bytes).unwrap();
    for (n, e, g) in [(10, 20, 3), (2, 0, 2), (7, 5, 7), (0, 0, 1)] {
        // Slots: x → 0 (kept); h → 1; p → 2 (h is its input); y → 1 (h dead; p is its input),
        // so slot 1 = max(5n, 2g).
        let slots = r8(3 * n) + r8((5 * n).max(2 * g)) + r8(5 * g);
        // Largest scratch: GCN = sums i32×5, h i32×5n, dinv u32×n, acc i64×5, a block of
        // 16 rows i32×5×16, prepared channel records 20×5;
        // pool = i32 × 5g; linear = sums i32×2 + a [4, 2] i32 accumulator block + records 20×2.
        let gcn = r8(20) + r8(20 * n) + r8(4 * n) + r8(40) + r8(320) + r8(100);
        // Each op's scratch starts after the slots live while it runs: the
        // GCN's after slots 0 and 1 (slot 2 is not written yet), the pool's
        // and the linear's after all three.
        let work = (r8(3 * n) + r8((5 * n).max(2 * g)) + gcn)
            .max(slots + r8(20 * g))
            .max(slots + r8(8) + r8(32) + r8(40));
        assert_eq!(
            m.arena_bytes(n, e, g),
            graph_bytes(n, e, g) + work,
            "n={n} e={e} g={g}"
        );
    }
    let x = [1i8; 30];
    let src: Vec<u16> = (0..20).map(|i| i % 10).collect();
    let dst: Vec<u16> = (0..20).map(|i| (i * 7) % 10).collect();
    let batch = [0u16, 0, 0, 1, 1, 1, 2, 2, 2, 2];
    let mut inp = input(10, &x, &src, &dst);
    inp.batch = Some(&batch);
    let outs = run(&bytes, &inp).unwrap();
    assert_eq!(outs[0].0, 3);
}

#[test]
fn edge_weights_add_a_region() {
    let flags = GcnFlags {
        add_self_loops: true,
        normalize: true,
        edge_weight: true,
    };
    let bytes = one_channel_gcn(0.1, 0, flags, 64, 64);
    let m = Model::from_bytes(&bytes).unwrap();
    let (n, e) = (6, 9);
    // sums, h, dinv (u32), acc, a block of 16 one-channel rows, one prepared
    // channel record (20 bytes).
    let gcn = r8(4) + r8(4 * n) + r8(4 * n) + r8(8) + r8(64) + r8(24);
    assert_eq!(
        m.arena_bytes(n, e, 1),
        graph_bytes(n, e, 1) + r8(4 * e) + 2 * r8(n) + gcn
    );
}

#[test]
fn arena_bytes_saturates_on_absurd_sizes() {
    let bytes = chain(false);
    let m = Model::from_bytes(&bytes).unwrap();
    assert!(m.arena_bytes(usize::MAX, usize::MAX, usize::MAX) >= usize::MAX - 64);
}

/// An empty arena reports the plain need, whatever dangling pointer the
/// empty slice carries (the C API makes one aligned to 1, a `Vec<u64>` one
/// aligned to 8): there is no address to align.
#[test]
fn empty_arena_reports_the_plain_need() {
    let bytes = chain(false);
    let m = Model::from_bytes(&bytes).unwrap();
    let x: Vec<i8> = (0..20).map(|i| i as i8).collect();
    let g = input(5, &x, &[0], &[1]);
    let mut aligned: Vec<u64> = Vec::new();
    let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut aligned[..]);
    let byte_aligned: &mut [u8] = &mut [];
    let byte_aligned = &mut byte_aligned[..];
    for arena in [aligned, byte_aligned] {
        let mut s = tinygnn::Session::new(&m, arena);
        match s.run(&g) {
            Err(tinygnn::Error::ArenaTooSmall { needed, actual }) => {
                assert_eq!(needed as usize, m.arena_bytes(5, 1, 1));
                assert_eq!(actual, 0);
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}

/// The bundled Cora models at their capacity, sparse features read in place:
/// GAT (8 heads of 8 channels, softmax per target node, each op's scratch
/// over the slots not live while it runs) takes at most twice GCN's arena
/// (16 channels, in passes over channel blocks).
#[cfg(all(feature = "op-gat", feature = "op-gcn"))]
#[test]
fn cora_gat_arena_is_at_most_twice_cora_gcn() {
    let need = |name: &str| {
        let path = format!("{}/models/{name}/{name}.tgnn", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let m = Model::from_bytes(&bytes).unwrap();
        let (n, e, g) = m.capacity();
        assert!(m.reads_sparse_input(), "{name}");
        m.arena_bytes_sparse(n as usize, e as usize, g as usize)
    };
    let (gat, gcn) = (need("cora-gat"), need("cora-gcn"));
    assert!(gat <= 2 * gcn, "cora-gat {gat} B > 2 × cora-gcn {gcn} B");
}
