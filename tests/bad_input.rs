//! Malformed models and inputs: each must give its specific `Error` variant,
//! and nothing may panic on arbitrary bytes or graphs.

mod common;
use common::*;
use proptest::prelude::*;
use tinygnn::format::writer::{fix_crc, ChannelRecord};
use tinygnn::format::{Activation, Op, Pool};
use tinygnn::ops::{Act, GcnConv, GlobalPool};
use tinygnn::{Error, Features, GraphInput, Model, Session};

/// x (2 ch) → GCN (edge weights) → y (2 ch); y → mean pool → p. Capacity 8 nodes, 10 edges, 3 graphs.
fn model() -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(2, 0.1, 0));
    let y = w.add_tensor(node(2, 0.1, 0));
    let p = w.add_tensor(graph(2, 0.1, 0));
    let ws = w.add_i8(&[1, 2, 3, 4]);
    let ps = w.add_channel_params(
        &[ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 0,
        }; 2],
    );
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: y,
        weights: ws,
        params: ps,
        act: Activation::Relu,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: true,
    }));
    w.add_op(Op::GlobalPool(GlobalPool {
        input: y,
        output: p,
        pool: Pool::Mean,
        mult: 1 << 30,
        shift: -7,
    }));
    w.finish(x, &[p, y], 8, 10, 3).unwrap()
}

const X: [f32; 8] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
const SRC: [u16; 3] = [0, 1, 2];
const DST: [u16; 3] = [1, 2, 3];
const EW: [f32; 3] = [1.0, 0.5, 2.0];

fn good() -> GraphInput<'static> {
    GraphInput::new(4, Features::F32(&X), &SRC, &DST).with_edge_weight(&EW)
}

fn run_err(bytes: &[u8], input: &GraphInput) -> Error {
    let model = Model::from_bytes(bytes).unwrap();
    let mut arena = vec![0u8; 1 << 16];
    let mut s = Session::new(&model, &mut arena);
    let e = s.run(input).map(|_| ()).unwrap_err();
    assert!(s.output(0).is_none(), "no output after a failed run");
    e
}

#[test]
fn good_input_runs() {
    let bytes = model();
    let outs = run(&bytes, &good()).unwrap();
    assert_eq!((outs[0].0, outs[0].1), (1, 2));
    assert_eq!((outs[1].0, outs[1].1), (4, 2));
}

#[test]
fn truncated_model() {
    let bytes = model();
    assert_eq!(
        Model::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err(),
        Error::Truncated
    );
    assert_eq!(
        Model::from_bytes(&bytes[..20]).unwrap_err(),
        Error::Truncated
    );
    assert_eq!(Model::from_bytes(&[]).unwrap_err(), Error::Truncated);
}

#[test]
fn corrupted_model_fails_crc() {
    let mut bytes = model();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    assert_eq!(
        Model::from_bytes(&bytes).unwrap_err(),
        Error::ChecksumMismatch
    );
    let mut bytes = model();
    bytes[40] ^= 1;
    assert_eq!(
        Model::from_bytes(&bytes).unwrap_err(),
        Error::ChecksumMismatch
    );
}

#[test]
fn wrong_magic_and_version() {
    let mut bytes = model();
    bytes[0] = b'X';
    assert_eq!(Model::from_bytes(&bytes).unwrap_err(), Error::BadMagic);
    let mut bytes = model();
    bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
    fix_crc(&mut bytes);
    assert_eq!(
        Model::from_bytes(&bytes).unwrap_err(),
        Error::UnsupportedVersion { found: 2 }
    );
}

#[test]
fn unknown_op_tag() {
    // Two models identical except that the first has one op (writing an
    // unused tensor): its op bytes start where the second's metadata ends.
    let build = |with_op: bool| {
        let mut w = writer();
        let x = w.add_tensor(node(2, 0.1, 0));
        let y = w.add_tensor(node(2, 0.1, 0));
        if with_op {
            w.add_op(Op::Act(Act {
                input: x,
                output: y,
                act: Activation::Relu,
            }));
        }
        w.finish(x, &[x], 8, 8, 1).unwrap()
    };
    let (mut a, b) = (build(true), build(false));
    let meta_off = u32::from_le_bytes(a[16..20].try_into().unwrap()) as usize;
    let meta_len_b = u32::from_le_bytes(b[20..24].try_into().unwrap()) as usize;
    assert!(Model::from_bytes(&a).is_ok());
    a[meta_off + meta_len_b] = tinygnn::format::OP_TAGS as u8; // first unknown tag
    fix_crc(&mut a);
    assert_eq!(
        Model::from_bytes(&a).unwrap_err(),
        Error::UnknownOp {
            op: 0,
            tag: tinygnn::format::OP_TAGS
        }
    );
    a[meta_off + meta_len_b] = 0x7f;
    fix_crc(&mut a);
    assert_eq!(
        Model::from_bytes(&a).unwrap_err(),
        Error::UnknownOp { op: 0, tag: 127 }
    );
}

#[test]
fn node_index_out_of_range() {
    let bytes = model();
    let mut g = good();
    g.targets = &[1, 4, 3];
    assert_eq!(
        run_err(&bytes, &g),
        Error::NodeIndexOutOfRange { edge: 1, index: 4 }
    );
    let mut g = good();
    g.sources = &[0, 1, 9];
    assert_eq!(
        run_err(&bytes, &g),
        Error::NodeIndexOutOfRange { edge: 2, index: 9 }
    );
}

#[test]
fn too_many_nodes_edges_graphs() {
    let bytes = model();
    let x = [0.0f32; 18];
    let mut g = good();
    g.num_nodes = 9;
    g.features = Features::F32(&x);
    assert_eq!(
        run_err(&bytes, &g),
        Error::TooManyNodes { nodes: 9, max: 8 }
    );
    let src = [0u16; 11];
    let w = [1.0f32; 11];
    let mut g = good();
    g.sources = &src;
    g.targets = &src;
    g.edge_weight = Some(&w);
    assert_eq!(
        run_err(&bytes, &g),
        Error::TooManyEdges { edges: 11, max: 10 }
    );
    let g = good().with_batch(&[0, 1, 2, 3]);
    assert_eq!(
        run_err(&bytes, &g),
        Error::TooManyGraphs { graphs: 4, max: 3 }
    );
}

#[test]
fn edge_list_and_weight_errors() {
    let bytes = model();
    let mut g = good();
    g.targets = &[1, 2];
    assert_eq!(run_err(&bytes, &g), Error::EdgeListMismatch);
    let g = good().with_edge_weight(&[1.0, 1.0]);
    assert_eq!(run_err(&bytes, &g), Error::EdgeListMismatch);
    let mut g = good();
    g.edge_weight = None;
    assert_eq!(run_err(&bytes, &g), Error::MissingInput);
    for bad in [f32::NAN, f32::INFINITY, -1.0, 70000.0] {
        let w = [1.0, bad, 1.0];
        let g = good().with_edge_weight(&w);
        assert_eq!(run_err(&bytes, &g), Error::InvalidEdgeWeight { edge: 1 });
    }
}

#[test]
fn feature_errors() {
    let bytes = model();
    let mut g = good();
    g.features = Features::F32(&X[..7]);
    assert_eq!(
        run_err(&bytes, &g),
        Error::FeatureShape {
            expected: 8,
            actual: 7
        }
    );
    let mut g = good();
    g.features = Features::I8(&[0; 9]);
    assert_eq!(
        run_err(&bytes, &g),
        Error::FeatureShape {
            expected: 8,
            actual: 9
        }
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = X;
        x[5] = bad;
        let mut g = good();
        g.features = Features::F32(&x);
        assert_eq!(
            run_err(&bytes, &g),
            Error::NonFiniteFeature {
                node: 2,
                channel: 1
            }
        );
    }
}

#[test]
fn batch_errors() {
    let bytes = model();
    let g = good().with_batch(&[0, 0, 1]);
    assert_eq!(run_err(&bytes, &g), Error::MissingInput);
    // A valid batch with an empty graph 1.
    let g = good().with_batch(&[0, 0, 2, 2]);
    let outs = run(&bytes, &g).unwrap();
    assert_eq!(outs[0].0, 3);
    assert_eq!(&outs[0].2[2..4], &[0, 0]);
}

#[test]
fn arena_too_small_reports_exact_need() {
    let bytes = model();
    let model = Model::from_bytes(&bytes).unwrap();
    let need = model.arena_bytes(4, 3, 1);
    let mut buf = Vec::new();
    // Exactly enough, 8-aligned.
    assert!(Session::new(&model, aligned(&mut buf, need))
        .run(&good())
        .is_ok());
    // One byte less.
    let e = Session::new(&model, aligned(&mut buf, need - 1))
        .run(&good())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        e,
        Error::ArenaTooSmall {
            needed: need as u32,
            actual: need as u32 - 1
        }
    );
    // Misaligned by 1: 7 bytes of slack are counted.
    buf.clear();
    buf.resize(need + 32, 0);
    let off = buf.as_ptr().align_offset(8) + 1;
    let e = Session::new(&model, &mut buf[off..off + need])
        .run(&good())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        e,
        Error::ArenaTooSmall {
            needed: need as u32 + 7,
            actual: need as u32
        }
    );
    assert!(Session::new(&model, &mut buf[off..off + need + 7])
        .run(&good())
        .is_ok());
    // Empty arena.
    let e = Session::new(&model, &mut [])
        .run(&good())
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, Error::ArenaTooSmall { actual: 0, .. }));
}

#[test]
fn gcn_coefficient_overflow() {
    // Without normalisation coef = w << 8: a weight of 128.0 gives 2^31 > i32::MAX.
    let flags = GcnFlags {
        add_self_loops: false,
        normalize: false,
        edge_weight: true,
    };
    let bytes = one_channel_gcn(0.1, 0, flags, 4, 4);
    let g = GraphInput::new(2, Features::I8(&[1, 2]), &[0], &[1]).with_edge_weight(&[128.0]);
    assert_eq!(run_err(&bytes, &g), Error::Overflow { op: 0 });
    let g = g.with_edge_weight(&[127.99]);
    assert!(run(&bytes, &g).is_ok());
}

#[test]
fn zero_nodes_is_valid() {
    let bytes = model();
    let g = GraphInput::new(0, Features::F32(&[]), &[], &[]).with_edge_weight(&[]);
    let outs = run(&bytes, &g).unwrap();
    // One (empty) graph: the pooled row is the zero point; no node rows.
    assert_eq!(outs[0], (1, 2, vec![0, 0]));
    assert_eq!(outs[1], (0, 2, vec![]));
    let g = g.with_batch(&[]);
    assert_eq!(run(&bytes, &g).unwrap()[0].0, 1);
}

#[test]
fn output_accessors() {
    let bytes = model();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes(4, 3, 1) + 8];
    let mut s = Session::new(&model, &mut arena);
    assert!(s.output(0).is_none());
    let o = s.run(&good()).unwrap();
    assert_eq!(o.row(0).map(|r| r.len()), Some(2));
    assert!(o.row(1).is_none());
    assert!(o.dequantize(0, 2).is_none());
    assert_eq!(o.dequantize(0, 1), Some(0.1 * (o.data[1] as f32 - 0.0)));
    assert!(s.output(1).is_some());
    assert!(s.output(2).is_none());
    let o = tinygnn::Output {
        data: &[3, 7, 7, -1, 5, 5],
        rows: 2,
        channels: 3,
        scale: 0.5,
        zero_point: 1,
    };
    assert_eq!(o.argmax(0), Some(1));
    assert_eq!(o.argmax(1), Some(1));
    assert_eq!(o.argmax(2), None);
    assert_eq!(o.dequantize(1, 0), Some(-1.0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 2000 }))]

    #[test]
    fn from_bytes_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Model::from_bytes(&bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_random_metadata(
        meta in proptest::collection::vec(any::<u8>(), 0..200),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // A valid header (magic, version, length, CRC) around random sections,
        // so decoding and validation of the metadata itself are exercised.
        let meta_off = 32usize;
        let data_off = (meta_off + meta.len()).div_ceil(16) * 16;
        let len = data_off + data.len();
        let mut b = vec![0u8; len];
        b[0..4].copy_from_slice(b"TGNN");
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        b[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        b[16..20].copy_from_slice(&(meta_off as u32).to_le_bytes());
        b[20..24].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        b[24..28].copy_from_slice(&(data_off as u32).to_le_bytes());
        b[28..32].copy_from_slice(&(data.len() as u32).to_le_bytes());
        b[meta_off..meta_off + meta.len()].copy_from_slice(&meta);
        b[data_off..].copy_from_slice(&data);
        fix_crc(&mut b);
        if let Ok(m) = Model::from_bytes(&b) {
            let mut arena = vec![0u8; 1 << 12];
            let _ = Session::new(&m, &mut arena).run(&good());
        }
    }

    #[test]
    fn from_bytes_never_panics_on_mutated_models(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
        recrc in any::<bool>(),
    ) {
        let mut bytes = model();
        for (at, v) in edits {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        if recrc {
            fix_crc(&mut bytes);
        }
        let _ = Model::from_bytes(&bytes);
        let cut = cut % (bytes.len() + 1);
        let _ = Model::from_bytes(&bytes[..cut]);
        if let Ok(m) = Model::from_bytes(&bytes) {
            // A model that still validates must run without panicking.
            let mut arena = vec![0u8; 1 << 15];
            let _ = Session::new(&m, &mut arena).run(&good());
        }
    }

    #[test]
    fn run_never_panics_on_random_graphs(
        n in 0usize..12,
        edges in proptest::collection::vec((0u16..14, 0u16..14, -1.0f32..300.0), 0..14),
        batch in proptest::collection::vec(0u16..4, 0..12),
        feats in proptest::collection::vec(any::<i8>(), 0..26),
        arena_len in 0usize..4096,
    ) {
        let bytes = model();
        let m = Model::from_bytes(&bytes).unwrap();
        let src: Vec<u16> = edges.iter().map(|e| e.0).collect();
        let dst: Vec<u16> = edges.iter().map(|e| e.1).collect();
        let w: Vec<f32> = edges.iter().map(|e| e.2).collect();
        let mut g = GraphInput::new(n, Features::I8(&feats), &src, &dst).with_edge_weight(&w);
        g.batch = if n % 2 == 0 { Some(&batch) } else { None };
        let mut arena = vec![0u8; arena_len];
        let mut s = Session::new(&m, &mut arena);
        if s.run(&g).is_ok() {
            let need = m.arena_bytes(n, src.len(), g.num_graphs());
            prop_assert!(need <= arena_len);
        }
    }
}
