//! The C API called as C would call it (through the exported functions), checked
//! against the Rust runtime it wraps and against the bundled models' goldens.
//! (Unit tests rather than integration tests: the crate is only a staticlib, so
//! that its `libtinygnn.*` never collides with the runtime's `libtinygnn.rlib`.)

use rt::ops::{GcnConv, GineConv, GlobalPool, InnerProduct};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use crate::*;
use proptest::prelude::*;
use rt::format::writer::{ChannelRecord, ModelWriter};
use rt::format::{Activation, Op, TensorDesc, TensorKind};
use rt::{Error, Features, GraphInput};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn karate() -> (Vec<u8>, tinygnn_cli::st::Graphs, Vec<u8>) {
    let d = root().join("models/karate-gcn");
    let model = std::fs::read(d.join("karate-gcn.tgnn")).unwrap();
    let g = tinygnn_cli::st::read_graphs(&d.join("graphs.safetensors")).unwrap();
    let expected = std::fs::read(d.join("expected_int8.bin")).unwrap();
    (model, g, expected)
}

fn new_model() -> Box<tgnn_model> {
    // SAFETY: all-zero bytes are a valid `[u64; N]` (and read as "not initialised").
    Box::new(unsafe { std::mem::zeroed() })
}

/// A model handle initialised from `bytes`, which must outlive every use of it.
fn init_model(bytes: &[u8]) -> Box<tgnn_model> {
    let mut m = new_model();
    // SAFETY: valid storage; the caller keeps `bytes` alive while it uses the handle.
    let st = unsafe { tgnn_model_init(&mut *m, bytes.as_ptr(), bytes.len()) };
    assert_eq!(st, TGNN_OK);
    m
}

fn new_session() -> Box<tgnn_session> {
    // SAFETY: as for `new_model`.
    Box::new(unsafe { std::mem::zeroed() })
}

/// A `tgnn_graph` over Rust slices (what a C caller fills in).
fn graph_f32(n: usize, x: &[f32], s: &[u16], t: &[u16], w: Option<&[f32]>) -> tgnn_graph {
    assert_eq!(s.len(), t.len());
    tgnn_graph {
        num_nodes: n,
        features_kind: TGNN_FEATURES_F32,
        features_f32: x.as_ptr(),
        features_i8: null(),
        features_len: x.len(),
        sparse_row_ptr: null(),
        sparse_cols: null(),
        sources: s.as_ptr(),
        targets: t.as_ptr(),
        num_edges: s.len(),
        edge_weight: w.map_or(null(), |w| w.as_ptr()),
        batch: null(),
        edge_attr_f32: null(),
        edge_attr_i8: null(),
        edge_attr_len: 0,
        pair_sources: null(),
        pair_targets: null(),
        num_pairs: 0,
        hyperedge_nodes: null(),
        hyperedge_ids: null(),
        num_incidences: 0,
        hyperedge_weight: null(),
        num_hyperedge_weights: 0,
    }
}

fn last_error(s: &mut tgnn_session) -> tgnn_error_info {
    let mut info = tgnn_error_info::default();
    // SAFETY: valid handle and out-pointer.
    assert_eq!(unsafe { tgnn_session_last_error(s, &mut info) }, TGNN_OK);
    info
}

/// Output 0 of the last run, copied.
fn output_bytes(s: &mut tgnn_session) -> Result<(Vec<i8>, usize, usize), tgnn_status> {
    let mut o = tgnn_output {
        data: null(),
        rows: 0,
        channels: 0,
        scale: 0.0,
        zero_point: 0,
    };
    // SAFETY: valid handle and out-pointer.
    let st = unsafe { tgnn_session_output(s, 0, &mut o) };
    if st != TGNN_OK {
        return Err(st);
    }
    // SAFETY: the API documents `data` as `rows × channels` values, valid until the next run.
    let data = unsafe { std::slice::from_raw_parts(o.data, o.rows * o.channels) }.to_vec();
    Ok((data, o.rows, o.channels))
}

#[test]
fn karate_through_the_c_api_equals_the_golden_and_the_runtime() {
    let (bytes, g, expected) = karate();
    let m = init_model(&bytes);
    let model = rt::Model::from_bytes(&bytes).unwrap();

    let (mut n, mut e, mut gr) = (0u32, 0u32, 0u32);
    let (mut ch, mut uses_w, mut outs, mut need) = (0usize, true, 0usize, 0usize);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(tgnn_model_capacity(&*m, &mut n, &mut e, &mut gr), TGNN_OK);
        assert_eq!(tgnn_model_input(&*m, &mut ch, &mut uses_w), TGNN_OK);
        assert_eq!(tgnn_model_num_outputs(&*m, &mut outs), TGNN_OK);
        assert_eq!(
            tgnn_model_arena_bytes(&*m, g.num_nodes, g.num_edges(), 1, &mut need),
            TGNN_OK
        );
        // NULL out-pointers are allowed where documented.
        assert_eq!(
            tgnn_model_capacity(&*m, null_mut(), null_mut(), null_mut()),
            TGNN_OK
        );
    }
    assert_eq!((n, e, gr), model.capacity());
    assert_eq!(ch, g.channels);
    assert!(!uses_w);
    assert_eq!(outs, model.outputs().len());
    assert_eq!(need, model.arena_bytes(g.num_nodes, g.num_edges(), 1));
    // The wide arena: more than the least where a GCN layer narrows (5000 nodes).
    let (mut wide, mut least) = (0usize, 0usize);
    // SAFETY: valid handle and out-pointers (and NULL ones where checked).
    unsafe {
        assert_eq!(
            tgnn_model_wide_arena_bytes(&*m, 5000, 20000, 1, false, &mut wide),
            TGNN_OK
        );
        assert_eq!(
            tgnn_model_arena_bytes(&*m, 5000, 20000, 1, &mut least),
            TGNN_OK
        );
        assert_eq!(
            tgnn_model_wide_arena_bytes(&*m, 5000, 20000, 1, true, null_mut()),
            TGNN_ERR_NULL_POINTER
        );
    }
    assert_eq!(wide, model.wide_arena_bytes(5000, 20000, 1, false));
    assert!(wide > least, "{wide} {least}");

    // Exactly `need` bytes, 8-aligned: enough.
    let mut arena = vec![0u64; need.div_ceil(8)];
    let mut s = new_session();
    // SAFETY: valid storage; the model handle and the arena outlive the session's use.
    unsafe {
        assert_eq!(
            tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), need),
            TGNN_OK
        );
    }
    let cg = graph_f32(g.num_nodes, &g.x, &g.sources, &g.targets, None);
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &cg) }, TGNN_OK);
    let (data, rows, channels) = output_bytes(&mut s).unwrap();
    let as_u8: Vec<u8> = data.iter().map(|&v| v as u8).collect();
    assert_eq!(
        as_u8, expected,
        "C API output differs from models/karate-gcn/expected_int8.bin"
    );

    // The same run through the Rust API: same argmax and dequantized values.
    let mut rarena = vec![0u8; need + 8];
    let mut rs = rt::Session::new(&model, &mut rarena);
    let out = rs
        .run(&GraphInput::new(
            g.num_nodes,
            Features::F32(&g.x),
            &g.sources,
            &g.targets,
        ))
        .unwrap();
    assert_eq!((out.rows, out.channels), (rows, channels));
    for r in 0..rows {
        let mut c = usize::MAX;
        // SAFETY: valid session and out-pointer.
        let st = unsafe { tgnn_session_argmax(&mut *s, 0, r, &mut c) };
        assert_eq!(st, TGNN_OK);
        assert_eq!(Some(c), out.argmax(r));
        for k in 0..channels {
            let mut v = f32::NAN;
            // SAFETY: valid session and out-pointer.
            let st = unsafe { tgnn_session_dequantize(&mut *s, 0, r, k, &mut v) };
            assert_eq!(st, TGNN_OK);
            assert_eq!(Some(v), out.dequantize(r, k));
        }
    }
    let mut c = 0usize;
    let mut v = 0f32;
    // SAFETY: valid session and out-pointers.
    unsafe {
        assert_eq!(
            tgnn_session_argmax(&mut *s, 0, rows, &mut c),
            TGNN_ERR_OUT_OF_RANGE
        );
        assert_eq!(
            tgnn_session_dequantize(&mut *s, 0, 0, channels, &mut v),
            TGNN_ERR_OUT_OF_RANGE
        );
        assert_eq!(
            tgnn_session_argmax(&mut *s, outs, 0, &mut c),
            TGNN_ERR_NO_OUTPUT
        );
    }

    // Int8 and sparse int8 features quantized on the host give the same bytes.
    let inp = model.input_desc();
    let q: Vec<i8> =
        g.x.iter()
            .map(|&v| rt::graph::quantize_value(v, inp.scale, inp.zero_point))
            .collect();
    let mut gi = cg;
    gi.features_kind = TGNN_FEATURES_I8;
    gi.features_f32 = null();
    gi.features_i8 = q.as_ptr();
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &gi) }, TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap().0, data);

    let (mut row_ptr, mut cols, mut vals) = (vec![0u32], Vec::new(), Vec::new());
    for r in 0..g.num_nodes {
        for c in 0..g.channels {
            let v = q[r * g.channels + c];
            if v != inp.zero_point {
                cols.push(c as u16);
                vals.push(v);
            }
        }
        row_ptr.push(cols.len() as u32);
    }
    let mut gs = gi;
    gs.features_kind = TGNN_FEATURES_SPARSE_I8;
    gs.features_i8 = vals.as_ptr();
    gs.features_len = vals.len();
    gs.sparse_row_ptr = row_ptr.as_ptr();
    gs.sparse_cols = cols.as_ptr();
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &gs) }, TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap().0, data);
    assert_eq!(last_error(&mut s), tgnn_error_info::default());
}

/// Variant names of `rt::Error`, read from its source (so a new variant fails
/// the test below until it gets its own code).
fn error_variants_in_source() -> BTreeSet<String> {
    let src = std::fs::read_to_string(root().join("src/error.rs")).unwrap();
    let start = src.find("pub enum Error {").unwrap();
    let body = &src[start..];
    let end = body.find("\n}").unwrap();
    body[..end]
        .lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.strip_prefix("    ")?;
            let name: String = l
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            (name.starts_with(|c: char| c.is_ascii_uppercase())).then_some(name)
        })
        .collect()
}

fn every_error() -> Vec<Error> {
    vec![
        Error::Truncated,
        Error::BadMagic,
        Error::UnsupportedVersion { found: 7 },
        Error::LengthMismatch {
            declared: 3,
            actual: 4,
        },
        Error::ChecksumMismatch,
        Error::BadSection,
        Error::UnsupportedFlags,
        Error::BadMetadata,
        Error::TooManyEntries,
        Error::UnknownOp { op: 2, tag: 99 },
        Error::InvalidTensor { tensor: 5 },
        Error::InvalidOp { op: 6 },
        Error::InvalidOutputs,
        Error::OpNotCompiled { op: 25, tag: 26 },
        Error::TooManyNodes { nodes: 10, max: 9 },
        Error::TooManyEdges { edges: 11, max: 8 },
        Error::TooManyGraphs { graphs: 12, max: 7 },
        Error::EdgeListMismatch,
        Error::NodeIndexOutOfRange {
            edge: 13,
            index: 14,
        },
        Error::FeatureShape {
            expected: 15,
            actual: 16,
        },
        Error::InvalidSparseFeatures { node: 17 },
        Error::NonFiniteFeature {
            node: 18,
            channel: 19,
        },
        Error::InvalidEdgeWeight { edge: 20 },
        Error::MissingInput,
        Error::BatchOutOfRange { node: 21 },
        Error::ArenaTooSmall {
            needed: 22,
            actual: 23,
        },
        Error::Overflow { op: 24 },
        Error::MissingEdgeAttr,
        Error::EdgeAttrShape {
            expected: 27,
            actual: 28,
        },
        Error::NonFiniteEdgeAttr {
            edge: 29,
            channel: 30,
        },
        Error::MissingPairs,
        Error::PairListMismatch,
        Error::TooManyPairs { pairs: 31, max: 32 },
        Error::PairIndexOutOfRange {
            pair: 33,
            index: 34,
        },
        Error::NotPrepared,
        Error::NotIncremental,
        Error::ChangedNodeOutOfRange {
            position: 42,
            index: 43,
        },
        Error::MissingHyperedges,
        Error::HyperedgeListMismatch,
        Error::TooManyIncidences {
            incidences: 35,
            max: 36,
        },
        Error::HyperedgeNodeOutOfRange {
            incidence: 37,
            index: 38,
        },
        Error::HyperedgeWeightShape {
            expected: 39,
            actual: 40,
        },
        Error::InvalidHyperedgeWeight { hyperedge: 41 },
        Error::InvalidState,
        Error::StateSize {
            expected: 35,
            actual: 36,
        },
        Error::NotRecurrent,
        Error::StateRequired,
    ]
}

#[test]
fn every_runtime_error_has_its_own_code_and_name() {
    let errors = every_error();
    let names: BTreeSet<String> = errors
        .iter()
        .map(|e| {
            format!("{e:?}")
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect()
        })
        .collect();
    assert_eq!(
        names,
        error_variants_in_source(),
        "update status.rs and this list"
    );
    let mut codes = BTreeSet::new();
    for e in errors {
        let i = error_info(e);
        assert!(i.code > 0 && i.code < 60, "{e:?} → {}", i.code);
        assert!(codes.insert(i.code), "{e:?}: code {} used twice", i.code);
        // SAFETY: the returned pointer is a static NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(tgnn_status_name(i.code)) };
        let name = name.to_str().unwrap();
        assert!(
            name.starts_with("TGNN_ERR_") && name != "TGNN_ERR_UNKNOWN",
            "{name}"
        );
        // The details are the variant's numbers, in declaration order.
        let dbg = format!("{e:?}");
        let nums: Vec<u32> = dbg
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<u32> = [i.a, i.b].into_iter().take(nums.len()).collect();
        assert_eq!(got, nums, "{dbg}");
    }
    // SAFETY: static strings.
    let unknown = unsafe { std::ffi::CStr::from_ptr(tgnn_status_name(12345)) };
    assert_eq!(unknown.to_str().unwrap(), "TGNN_ERR_UNKNOWN");
    // SAFETY: static strings.
    let ok = unsafe { std::ffi::CStr::from_ptr(tgnn_status_name(TGNN_OK)) };
    assert_eq!(ok.to_str().unwrap(), "TGNN_OK");
}

#[test]
fn status_names_are_the_constant_names() {
    // Every `pub const TGNN_*: tgnn_status` in status.rs maps to its own name.
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/status.rs"))
        .unwrap();
    let mut n = 0;
    for l in src.lines() {
        let Some(rest) = l.strip_prefix("pub const ") else {
            continue;
        };
        let Some((name, value)) = rest.split_once(": tgnn_status = ") else {
            continue;
        };
        let code: tgnn_status = value.trim_end_matches(';').parse().unwrap();
        // SAFETY: static strings.
        let got = unsafe { std::ffi::CStr::from_ptr(tgnn_status_name(code)) };
        assert_eq!(got.to_str().unwrap(), name);
        n += 1;
    }
    assert!(n >= 34, "found only {n} codes");
}

#[test]
fn model_errors_and_bad_handles() {
    let (bytes, _, _) = karate();
    let mut m = new_model();
    let mut info = tgnn_error_info::default();
    let mut cap = 0u32;
    // SAFETY: valid storage, pointers and lengths throughout (or NULL where tested).
    unsafe {
        // A zeroed handle is "not initialised".
        assert_eq!(
            tgnn_model_capacity(&*m, &mut cap, null_mut(), null_mut()),
            TGNN_ERR_UNINITIALIZED
        );
        assert_eq!(
            tgnn_model_last_error(&*m, &mut info),
            TGNN_ERR_UNINITIALIZED
        );
        assert_eq!(
            tgnn_model_init(null_mut(), bytes.as_ptr(), bytes.len()),
            TGNN_ERR_NULL_POINTER
        );
        assert_eq!(
            tgnn_model_init(&mut *m, null(), bytes.len()),
            TGNN_ERR_NULL_POINTER
        );
        assert_eq!(tgnn_model_init(&mut *m, null(), 0), TGNN_ERR_TRUNCATED);

        let mut bad = bytes.clone();
        bad[bytes.len() / 2] ^= 0x40;
        assert_eq!(
            tgnn_model_init(&mut *m, bad.as_ptr(), bad.len()),
            TGNN_ERR_CHECKSUM_MISMATCH
        );
        assert_eq!(tgnn_model_last_error(&*m, &mut info), TGNN_OK);
        assert_eq!(info.code, TGNN_ERR_CHECKSUM_MISMATCH);
        // A failed handle is unusable.
        assert_eq!(
            tgnn_model_capacity(&*m, &mut cap, null_mut(), null_mut()),
            TGNN_ERR_UNINITIALIZED
        );

        assert_eq!(
            tgnn_model_init(&mut *m, bytes.as_ptr(), bytes.len() - 1),
            TGNN_ERR_TRUNCATED
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            tgnn_model_init(&mut *m, longer.as_ptr(), longer.len()),
            TGNN_ERR_LENGTH_MISMATCH
        );
        assert_eq!(tgnn_model_last_error(&*m, &mut info), TGNN_OK);
        assert_eq!(
            (info.a, info.b),
            (bytes.len() as u32, bytes.len() as u32 + 1)
        );
        let mut magic = bytes.clone();
        magic[0] = b'X';
        assert_eq!(
            tgnn_model_init(&mut *m, magic.as_ptr(), magic.len()),
            TGNN_ERR_BAD_MAGIC
        );

        // The model bytes may have any alignment.
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        assert_eq!(
            tgnn_model_init(&mut *m, shifted.as_ptr().add(1), bytes.len()),
            TGNN_OK
        );
        assert_eq!(tgnn_model_last_error(&*m, &mut info), TGNN_OK);
        assert_eq!(info, tgnn_error_info::default());

        // A misaligned handle is refused (never written).
        let mut raw = vec![0u64; TGNN_MODEL_STORAGE_WORDS + 1];
        let odd = raw.as_mut_ptr().cast::<u8>().add(4).cast::<tgnn_model>();
        assert_eq!(
            tgnn_model_init(odd, bytes.as_ptr(), bytes.len()),
            TGNN_ERR_MISALIGNED
        );
        assert!(raw.iter().all(|&w| w == 0));

        // Session on a zeroed or failed model.
        let mut s = new_session();
        let zero = new_model();
        let mut arena = [0u8; 64];
        assert_eq!(
            tgnn_session_init(&mut *s, &*zero, arena.as_mut_ptr(), 64),
            TGNN_ERR_UNINITIALIZED
        );
        assert_eq!(
            tgnn_session_init(null_mut(), &*m, arena.as_mut_ptr(), 64),
            TGNN_ERR_NULL_POINTER
        );
        assert_eq!(
            tgnn_session_init(&mut *s, &*m, null_mut(), 64),
            TGNN_ERR_NULL_POINTER
        );
        // A zeroed session handle.
        let g = graph_f32(0, &[], &[], &[], None);
        assert_eq!(tgnn_session_run(&mut *s, &g), TGNN_ERR_UNINITIALIZED);
        assert_eq!(tgnn_session_run(null_mut(), &g), TGNN_ERR_NULL_POINTER);
    }
}

#[test]
fn run_errors_carry_their_details() {
    let (bytes, g, _) = karate();
    let model = rt::Model::from_bytes(&bytes).unwrap();
    let mut m = new_model();
    let mut s = new_session();
    let need = model.arena_bytes(g.num_nodes, g.num_edges(), 1);
    let mut arena = vec![0u64; need.div_ceil(8) + 1];
    let ok = graph_f32(g.num_nodes, &g.x, &g.sources, &g.targets, None);
    // SAFETY: valid handles, storage and graphs (or NULL / bad values where tested).
    unsafe {
        assert_eq!(
            tgnn_model_init(&mut *m, bytes.as_ptr(), bytes.len()),
            TGNN_OK
        );
        // Too small by one byte: the exact need is reported, nothing runs.
        assert_eq!(
            tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), need - 1),
            TGNN_OK
        );
        assert_eq!(tgnn_session_run(&mut *s, &ok), TGNN_ERR_ARENA_TOO_SMALL);
        let i = last_error(&mut s);
        assert_eq!(
            (i.code, i.a, i.b),
            (TGNN_ERR_ARENA_TOO_SMALL, need as u32, need as u32 - 1)
        );
        assert_eq!(output_bytes(&mut s), Err(TGNN_ERR_NO_OUTPUT));

        // An arena starting 1 byte off alignment needs 7 bytes of slack.
        let off = arena.as_mut_ptr().cast::<u8>().add(1);
        assert_eq!(tgnn_session_init(&mut *s, &*m, off, need), TGNN_OK);
        assert_eq!(tgnn_session_run(&mut *s, &ok), TGNN_ERR_ARENA_TOO_SMALL);
        assert_eq!(last_error(&mut s).a, need as u32 + 7);
        assert_eq!(tgnn_session_init(&mut *s, &*m, off, need + 7), TGNN_OK);
        assert_eq!(tgnn_session_run(&mut *s, &ok), TGNN_OK);
        assert!(output_bytes(&mut s).is_ok());

        // Edge to a node that does not exist.
        let mut t = g.targets.clone();
        t[5] = g.num_nodes as u16;
        let bad = graph_f32(g.num_nodes, &g.x, &g.sources, &t, None);
        assert_eq!(
            tgnn_session_run(&mut *s, &bad),
            TGNN_ERR_NODE_INDEX_OUT_OF_RANGE
        );
        let i = last_error(&mut s);
        assert_eq!((i.a, i.b), (5, g.num_nodes as u32));
        // A failed run leaves no output.
        assert_eq!(output_bytes(&mut s), Err(TGNN_ERR_NO_OUTPUT));

        // NaN feature: node and channel.
        let mut x = g.x.clone();
        x[3 * g.channels + 2] = f32::NAN;
        let bad = graph_f32(g.num_nodes, &x, &g.sources, &g.targets, None);
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_NON_FINITE_FEATURE);
        let i = last_error(&mut s);
        assert_eq!((i.a, i.b), (3, 2));

        // Wrong feature count.
        let bad = graph_f32(g.num_nodes, &g.x[1..], &g.sources, &g.targets, None);
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_FEATURE_SHAPE);

        // Too many nodes for the model's capacity.
        let (max_n, _, _) = model.capacity();
        let big = vec![0f32; (max_n as usize + 1) * g.channels];
        let bad = graph_f32(max_n as usize + 1, &big, &[], &[], None);
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_TOO_MANY_NODES);
        assert_eq!(last_error(&mut s).b, max_n);

        // C API argument errors; they too clear the outputs of the last good run.
        assert_eq!(tgnn_session_run(&mut *s, &ok), TGNN_OK);
        assert!(output_bytes(&mut s).is_ok());
        assert_eq!(tgnn_session_run(&mut *s, null()), TGNN_ERR_NULL_POINTER);
        assert_eq!(last_error(&mut s).code, TGNN_ERR_NULL_POINTER);
        assert_eq!(output_bytes(&mut s), Err(TGNN_ERR_NO_OUTPUT));
        let mut bad = ok;
        bad.features_f32 = null();
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_NULL_POINTER);
        let mut bad = ok;
        bad.features_kind = 7;
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_INVALID_ARGUMENT);
        let mut bad = ok;
        bad.features_f32 = g.x.as_ptr().cast::<u8>().add(1).cast();
        bad.features_len = g.x.len() - 1;
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_MISALIGNED);
        let mut bad = ok;
        bad.num_edges = usize::MAX;
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_INVALID_ARGUMENT);
        let mut bad = ok;
        bad.features_kind = TGNN_FEATURES_SPARSE_I8;
        bad.num_nodes = usize::MAX;
        assert_eq!(tgnn_session_run(&mut *s, &bad), TGNN_ERR_INVALID_ARGUMENT);
        // Zero nodes and edges with all-NULL arrays is a valid (empty) graph.
        let empty = graph_f32(0, &[], &[], &[], None);
        let empty = tgnn_graph {
            features_f32: null(),
            sources: null(),
            targets: null(),
            ..empty
        };
        assert_eq!(tgnn_session_run(&mut *s, &empty), TGNN_OK);
        assert_eq!(output_bytes(&mut s).map(|o| o.1), Ok(0));
    }
}

/// A two-op model with edge weights and a graph-level output (GCN with edge
/// weights → add pool), capacity 12 nodes, 24 edges, 3 graphs.
fn weighted_pool_model() -> Vec<u8> {
    let mut w = ModelWriter::new();
    let t = |kind, channels| TensorDesc {
        kind,
        channels,
        scale: 0.05,
        zero_point: -3,
    };
    let x = w.add_tensor(t(TensorKind::Node, 3));
    let h = w.add_tensor(t(TensorKind::Node, 2));
    let y = w.add_tensor(t(TensorKind::Graph, 2));
    let weights = w.add_i8(&[5, -7, 9, 2, -4, 6]);
    let params = w.add_channel_params(&[
        ChannelRecord {
            bias: 30,
            mult: 1 << 30,
            shift: -2,
        },
        ChannelRecord {
            bias: -12,
            mult: 3 << 28,
            shift: -1,
        },
    ]);
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: h,
        weights,
        params,
        act: Activation::Relu,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: true,
    }));
    w.add_op(Op::GlobalPool(GlobalPool {
        input: h,
        output: y,
        pool: rt::format::Pool::Add,
        mult: 3 << 29,
        shift: -1,
    }));
    w.finish(x, &[y], 12, 24, 3).unwrap()
}

#[derive(Debug, Clone)]
struct Input {
    n: usize,
    x: Vec<f32>,
    s: Vec<u16>,
    t: Vec<u16>,
    w: Option<Vec<f32>>,
    batch: Option<Vec<u16>>,
    arena: usize,
}

/// A valid graph (up to 13 nodes: sometimes above the capacity of 12), then
/// with some probability one defect: a NaN feature, an edge index out of
/// range, a negative weight, missing weights, or a small arena.
fn input() -> impl Strategy<Value = Input> {
    (1usize..14, 0usize..26).prop_flat_map(|(n, e)| {
        let idx = 0u16..n as u16;
        (
            prop::collection::vec(-2.0f32..2.0, n * 3),
            prop::collection::vec(idx.clone(), e),
            prop::collection::vec(idx, e),
            prop::collection::vec(0.0f32..3.0, e),
            prop::option::of(prop::collection::vec(0u16..3, n)),
            (0usize..6, any::<prop::sample::Index>(), 0usize..2048),
        )
            .prop_map(move |(mut x, mut s, t, w, batch, (defect, at, small))| {
                let mut w = Some(w);
                let mut arena = 8192;
                match defect {
                    1 => {
                        let k = at.index(x.len());
                        x[k] = f32::NAN;
                    }
                    2 if e > 0 => s[at.index(e)] = n as u16 + at.index(3) as u16,
                    3 if e > 0 => {
                        if let Some(w) = w.as_mut() {
                            w[at.index(e)] = -0.5;
                        }
                    }
                    4 => w = None,
                    5 => arena = small,
                    _ => {}
                }
                Input {
                    n,
                    x,
                    s,
                    t,
                    w,
                    batch: batch.map(|mut b| {
                        b.sort();
                        b
                    }),
                    arena,
                }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any input, valid or not, any arena size: the C API returns the code of
    /// the runtime's error with its details, or the runtime's exact bytes.
    #[test]
    fn c_api_equals_runtime(inp in input()) {
        let bytes = weighted_pool_model();
        let model = rt::Model::from_bytes(&bytes).unwrap();
        let mut rarena = vec![0u64; inp.arena.div_ceil(8)];
        let mut carena = vec![0u64; inp.arena.div_ceil(8)];
        let want = {
            let arena: &mut [u8] = &mut bytemuck_bytes(&mut rarena)[..inp.arena];
            let mut rs = rt::Session::new(&model, arena);
            let mut input = GraphInput::new(inp.n, Features::F32(&inp.x), &inp.s, &inp.t);
            input.edge_weight = inp.w.as_deref();
            input.batch = inp.batch.as_deref();
            rs.run(&input)
            .map(|o| o.data.to_vec())
            .map_err(error_info)
        };
        let mut m = new_model();
        let mut s = new_session();
        let mut g = graph_f32(inp.n, &inp.x, &inp.s, &inp.t, inp.w.as_deref());
        g.batch = inp.batch.as_ref().map_or(null(), |b| b.as_ptr());
        // SAFETY: valid storage, handles and graph.
        let got = unsafe {
            prop_assert_eq!(tgnn_model_init(&mut *m, bytes.as_ptr(), bytes.len()), TGNN_OK);
            prop_assert_eq!(
                tgnn_session_init(&mut *s, &*m, carena.as_mut_ptr().cast(), inp.arena),
                TGNN_OK
            );
            let st = tgnn_session_run(&mut *s, &g);
            let info = last_error(&mut s);
            prop_assert_eq!(st, info.code);
            if st == TGNN_OK { Ok(output_bytes(&mut s).unwrap().0) } else { Err(info) }
        };
        prop_assert_eq!(got, want);
    }
}

fn bytemuck_bytes(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u8 has no alignment or validity requirements; the length is the same memory.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}

/// Edge features (edgefeat): a one-op GINE model (no edge `lin`, 2 channels)
/// run with float and with int8 edge features, which must agree with the Rust
/// API, and without them (`TGNN_ERR_MISSING_EDGE_ATTR`).
#[test]
fn edge_attr_through_the_c_api() {
    let mut w = ModelWriter::new();
    let t = |kind, channels| TensorDesc {
        kind,
        channels,
        scale: 0.5,
        zero_point: 0,
    };
    let x = w.add_tensor(t(TensorKind::Node, 2));
    let e = w.add_tensor(t(TensorKind::Edge, 2));
    let y = w.add_tensor(t(TensorKind::Node, 2));
    let rec = ChannelRecord {
        bias: 0,
        mult: 1 << 30,
        shift: 9,
    };
    let edge_params = w.add_channel_params(&[rec; 2]);
    w.add_op(Op::GineConv(GineConv {
        input: x,
        edge_attr: e,
        output: y,
        one_plus_eps_q16: 1 << 16,
        edge_weights: rt::format::Section::default(),
        edge_params,
        mult: 1 << 30,
        shift: -7,
    }));
    let bytes = w.finish(x, &[y], 8, 8, 1).unwrap();
    let m = init_model(&bytes);
    let mut arena = vec![0u64; 128];
    let mut s = new_session();
    // SAFETY: valid storage; the model handle and the arena outlive the session's use.
    unsafe {
        assert_eq!(
            tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), 1024),
            TGNN_OK
        );
    }
    let xs = [1.0f32, -1.0, 2.0, 0.5, 0.0, 1.5];
    let (src, dst) = ([0u16, 2, 1], [1u16, 1, 0]);
    let ef = [0.5f32, -2.0, 1.0, 1.0, -0.5, 3.0];
    let eq: Vec<i8> = ef.iter().map(|&v| (v / 0.5) as i8).collect();
    let g = graph_f32(3, &xs, &src, &dst, None);
    // SAFETY: valid session and graph (no edge features).
    let st = unsafe { tgnn_session_run(&mut *s, &g) };
    assert_eq!(st, TGNN_ERR_MISSING_EDGE_ATTR);
    let gf = tgnn_graph {
        edge_attr_f32: ef.as_ptr(),
        edge_attr_len: ef.len(),
        ..g
    };
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &gf) }, TGNN_OK);
    let from_f32 = output_bytes(&mut s).unwrap();
    let gq = tgnn_graph {
        edge_attr_i8: eq.as_ptr(),
        edge_attr_len: eq.len(),
        ..g
    };
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &gq) }, TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap(), from_f32);
    let both = tgnn_graph {
        edge_attr_i8: eq.as_ptr(),
        ..gf
    };
    // SAFETY: valid session and graph.
    let st = unsafe { tgnn_session_run(&mut *s, &both) };
    assert_eq!(st, TGNN_ERR_INVALID_ARGUMENT);
    let short = tgnn_graph {
        edge_attr_len: 5,
        ..gf
    };
    // SAFETY: valid session and graph (5 of the 6 values).
    let st = unsafe { tgnn_session_run(&mut *s, &short) };
    assert_eq!(st, TGNN_ERR_EDGE_ATTR_SHAPE);
    // The Rust API gives the same bytes.
    let model = rt::Model::from_bytes(&bytes).unwrap();
    let mut rarena = vec![0u8; 2048];
    let mut rs = rt::Session::new(&model, &mut rarena);
    let out = rs
        .run(
            &GraphInput::new(3, Features::F32(&xs), &src, &dst)
                .with_edge_attr(rt::EdgeAttr::F32(&ef)),
        )
        .unwrap();
    assert_eq!(out.data.to_vec(), from_f32.0);
    assert!(from_f32.0.iter().any(|&v| v != 0));
}

/// A node-pair model (link prediction): `z` (3 channels) → `InnerProduct` →
/// one logit per pair, pair capacity 40 (its pair rows outgrow the node rows).
fn inner_product_model() -> Vec<u8> {
    let mut w = ModelWriter::new();
    let x = w.add_tensor(TensorDesc {
        kind: TensorKind::Node,
        channels: 3,
        scale: 0.05,
        zero_point: -3,
    });
    let y = w.add_tensor(TensorDesc {
        kind: TensorKind::Pair,
        channels: 1,
        scale: 0.1,
        zero_point: 2,
    });
    w.add_op(Op::InnerProduct(InnerProduct {
        input: x,
        output: y,
        mult: 1 << 30,
        shift: -4,
    }));
    w.set_max_pairs(40);
    w.finish(x, &[y], 8, 16, 1).unwrap()
}

/// `g` with the pair lists `s`, `t` (either may be NULL) and `num_pairs`.
fn with_pairs(g: tgnn_graph, s: *const u16, t: *const u16, num_pairs: usize) -> tgnn_graph {
    tgnn_graph {
        pair_sources: s,
        pair_targets: t,
        num_pairs,
        ..g
    }
}

/// Pair input (capipairs): the pair queries of the C API, a valid run equal to
/// the Rust API's, and every pair error with its code and details.
#[test]
fn pairs_through_the_c_api() {
    let bytes = inner_product_model();
    let m = init_model(&bytes);
    let (mut has, mut max) = (false, 0u32);
    // SAFETY: valid handle and out-pointers.
    let st = unsafe { tgnn_model_pairs(&*m, &mut has, &mut max) };
    assert_eq!(st, TGNN_OK);
    assert!(has);
    assert_eq!(max, 40);
    // NULL out-pointers are allowed; a NULL handle is not.
    // SAFETY: valid handle, NULL out-pointers.
    let st = unsafe { tgnn_model_pairs(&*m, null_mut(), null_mut()) };
    assert_eq!(st, TGNN_OK);
    // SAFETY: NULL handle.
    let st = unsafe { tgnn_model_pairs(null(), &mut has, &mut max) };
    assert_eq!(st, TGNN_ERR_NULL_POINTER);

    let n = 4usize;
    let xs = [
        1.0f32, -0.5, 0.25, 0.5, 0.5, -1.0, -0.75, 1.0, 0.1, 0.3, -0.2, 0.6,
    ];
    let (src, dst) = ([0u16, 1, 2, 3], [1u16, 2, 3, 0]);
    let (ps, pt) = ([0u16, 1, 3], [2u16, 3, 3]);
    let rmodel = rt::Model::from_bytes(&bytes).unwrap();

    // The arena queries: exact for 3 pairs, and at the capacity without pairs.
    let (mut need3, mut need_max, mut need) = (0usize, 0usize, 0usize);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(
            tgnn_model_arena_bytes_with_pairs(&*m, n, 4, 1, 3, &mut need3),
            TGNN_OK
        );
        assert_eq!(
            tgnn_model_arena_bytes_with_pairs(&*m, n, 4, 1, 40, &mut need_max),
            TGNN_OK
        );
        assert_eq!(tgnn_model_arena_bytes(&*m, n, 4, 1, &mut need), TGNN_OK);
        assert_eq!(
            tgnn_model_arena_bytes_with_pairs(&*m, n, 4, 1, 3, null_mut()),
            TGNN_ERR_NULL_POINTER
        );
    }
    assert_eq!(need3, rmodel.arena_bytes_with_pairs(n, 4, 1, 3));
    assert_eq!(need, need_max);
    assert!(need3 < need_max, "{need3} {need_max}");

    // An arena of exactly `need3` bytes runs 3 pairs; one byte less does not.
    let mut arena = vec![0u64; need_max.div_ceil(8)];
    let mut s = new_session();
    let g = graph_f32(n, &xs, &src, &dst, None);
    let gp = with_pairs(g, ps.as_ptr(), pt.as_ptr(), 3);
    for (len, want) in [(need3 - 1, TGNN_ERR_ARENA_TOO_SMALL), (need3, TGNN_OK)] {
        // SAFETY: valid storage; the model handle and the arena outlive the session's use.
        unsafe {
            assert_eq!(
                tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), len),
                TGNN_OK
            );
            assert_eq!(tgnn_session_run(&mut *s, &gp), want, "arena {len}");
        }
    }
    let (got, rows, channels) = output_bytes(&mut s).unwrap();
    assert_eq!((rows, channels), (3, 1));
    let mut rarena = vec![0u8; need_max + 8];
    let mut rs = rt::Session::new(&rmodel, &mut rarena);
    let (xr, sr, dr) = (&xs[..], &src[..], &dst[..]);
    let input = move |ps: &'static [u16], pt: &'static [u16]| {
        GraphInput::new(n, Features::F32(xr), sr, dr).with_pairs(rt::NodePairs {
            sources: ps,
            targets: pt,
        })
    };
    let want = rs
        .run(&input(&[0, 1, 3], &[2, 3, 3]))
        .unwrap()
        .data
        .to_vec();
    assert_eq!(got, want);
    // The scores differ between these pairs, so a dropped, swapped or
    // repeated pair would show; reversing the pairs reverses the output, and
    // swapping the two lists changes nothing (the inner product is symmetric).
    assert!(
        got[0] != got[1] && got[1] != got[2] && got[0] != got[2],
        "{got:?}"
    );
    let swapped = with_pairs(g, pt.as_ptr(), ps.as_ptr(), 3);
    let rev_s = [3u16, 1, 0];
    let rev_t = [3u16, 3, 2];
    let reversed = with_pairs(g, rev_s.as_ptr(), rev_t.as_ptr(), 3);
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &reversed) }, TGNN_OK);
    let rev = output_bytes(&mut s).unwrap().0;
    assert_eq!(rev, vec![got[2], got[1], got[0]]);
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &swapped) }, TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap().0, got);

    // Zero pairs (non-NULL lists, count 0) is a valid run with no rows.
    let zero = with_pairs(g, ps.as_ptr(), pt.as_ptr(), 0);
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &zero) }, TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap().1, 0);

    // Every failure: its code, its details, and no output afterwards.
    let too_s = [1u16; 41];
    let too_t = [2u16; 41];
    let bad_t = [2u16, n as u16, 0];
    let odd = [0u16; 8];
    let odd_ptr = odd.as_ptr().cast::<u8>().wrapping_add(1).cast::<u16>();
    let cases: [(tgnn_graph, tgnn_status, u32, u32); 8] = [
        (g, TGNN_ERR_MISSING_PAIRS, 0, 0),
        (
            with_pairs(g, null(), null(), 3),
            TGNN_ERR_NULL_POINTER,
            0,
            0,
        ),
        (
            with_pairs(g, ps.as_ptr(), null(), 3),
            TGNN_ERR_PAIR_LIST_MISMATCH,
            0,
            0,
        ),
        (
            with_pairs(g, null(), pt.as_ptr(), 0),
            TGNN_ERR_PAIR_LIST_MISMATCH,
            0,
            0,
        ),
        (
            with_pairs(g, too_s.as_ptr(), too_t.as_ptr(), 41),
            TGNN_ERR_TOO_MANY_PAIRS,
            41,
            40,
        ),
        (
            with_pairs(g, ps.as_ptr(), bad_t.as_ptr(), 3),
            TGNN_ERR_PAIR_INDEX_OUT_OF_RANGE,
            1,
            n as u32,
        ),
        (
            with_pairs(g, odd_ptr, pt.as_ptr(), 3),
            TGNN_ERR_MISALIGNED,
            0,
            0,
        ),
        (
            with_pairs(g, ps.as_ptr(), pt.as_ptr(), usize::MAX / 2 + 1),
            TGNN_ERR_INVALID_ARGUMENT,
            0,
            0,
        ),
    ];
    for (k, (bad, code, a, b)) in cases.iter().enumerate() {
        // SAFETY: valid session; every array read holds the lengths given
        // (the failing cases are rejected before reading any pair value,
        // the misaligned and oversized ones before any slice is built).
        assert_eq!(unsafe { tgnn_session_run(&mut *s, bad) }, *code, "case {k}");
        let info = last_error(&mut s);
        assert_eq!((info.code, info.a, info.b), (*code, *a, *b), "case {k}");
        assert_eq!(output_bytes(&mut s), Err(TGNN_ERR_NO_OUTPUT), "case {k}");
    }
    // The Rust API agrees on the runtime's pair errors.
    let mut no_pairs = input(&[], &[]);
    no_pairs.pairs = None;
    assert_eq!(rs.run(&no_pairs).unwrap_err(), Error::MissingPairs);
    assert_eq!(
        rs.run(&input(&[1; 41], &[2; 41])).unwrap_err(),
        Error::TooManyPairs { pairs: 41, max: 40 }
    );
}

/// A model without a pair head: no pairs, capacity 0, and given pairs are
/// ignored (even out-of-range ones), as in the Rust API; the two lists must
/// still come together.
#[test]
fn models_without_pairs_ignore_them_through_the_c_api() {
    let (bytes, gr, expected) = karate();
    let m = init_model(&bytes);
    let (mut has, mut max) = (true, 7u32);
    // SAFETY: valid handle and out-pointers.
    let st = unsafe { tgnn_model_pairs(&*m, &mut has, &mut max) };
    assert_eq!(st, TGNN_OK);
    assert_eq!((has, max), (false, 0));
    let (n, e) = (gr.num_nodes, gr.num_edges());
    let (mut a, mut b) = (0usize, 1usize);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(tgnn_model_arena_bytes(&*m, n, e, 1, &mut a), TGNN_OK);
        assert_eq!(
            tgnn_model_arena_bytes_with_pairs(&*m, n, e, 1, 1000, &mut b),
            TGNN_OK
        );
    }
    assert_eq!(a, b);
    let mut arena = vec![0u64; a.div_ceil(8)];
    let mut s = new_session();
    // SAFETY: valid storage; the model handle and the arena outlive the session's use.
    unsafe {
        assert_eq!(
            tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), a),
            TGNN_OK
        );
    }
    let g = graph_f32(
        n,
        &gr.x,
        &gr.sources,
        &gr.targets,
        gr.edge_weight.as_deref(),
    );
    let far = [u16::MAX; 2];
    // SAFETY: valid session and graph.
    let st = unsafe { tgnn_session_run(&mut *s, &with_pairs(g, far.as_ptr(), far.as_ptr(), 2)) };
    assert_eq!(st, TGNN_OK);
    let got: Vec<u8> = output_bytes(&mut s)
        .unwrap()
        .0
        .iter()
        .map(|&v| v as u8)
        .collect();
    assert_eq!(got, expected);
    // SAFETY: valid session and graph.
    let st = unsafe { tgnn_session_run(&mut *s, &with_pairs(g, far.as_ptr(), null(), 2)) };
    assert_eq!(st, TGNN_ERR_PAIR_LIST_MISMATCH);
}

/// The input quantization query matches the model and, applied as documented
/// (`roundf(x / scale) + zero_point`, saturated), gives the int8 features that
/// produce the same output bytes as the float features.
#[test]
fn input_quantization_through_the_c_api() {
    let (bytes, g, expected) = karate();
    let m = init_model(&bytes);
    let (mut scale, mut zp) = (0f32, 0i8);
    // SAFETY: valid handle and out-pointers.
    let st = unsafe { tgnn_model_input_quantization(&*m, &mut scale, &mut zp) };
    assert_eq!(st, TGNN_OK);
    let d = rt::Model::from_bytes(&bytes).unwrap().input_desc();
    assert_eq!((scale.to_bits(), zp), (d.scale.to_bits(), d.zero_point));
    // SAFETY: valid handle, NULL out-pointers; then a NULL handle.
    unsafe {
        assert_eq!(
            tgnn_model_input_quantization(&*m, null_mut(), null_mut()),
            TGNN_OK
        );
        assert_eq!(
            tgnn_model_input_quantization(null(), &mut scale, &mut zp),
            TGNN_ERR_NULL_POINTER
        );
    }
    let q: Vec<i8> =
        g.x.iter()
            .map(|&x| ((x / scale).round() as i32 + i32::from(zp)).clamp(-128, 127) as i8)
            .collect();
    let mut need = 0usize;
    // SAFETY: valid handle and out-pointer.
    let st = unsafe { tgnn_model_arena_bytes(&*m, g.num_nodes, g.num_edges(), 1, &mut need) };
    assert_eq!(st, TGNN_OK);
    let mut arena = vec![0u64; need.div_ceil(8)];
    let mut s = new_session();
    // SAFETY: valid storage; the model handle and the arena outlive the session's use.
    let st = unsafe { tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), need) };
    assert_eq!(st, TGNN_OK);
    let gq = tgnn_graph {
        features_kind: TGNN_FEATURES_I8,
        features_f32: null(),
        features_i8: q.as_ptr(),
        ..graph_f32(g.num_nodes, &g.x, &g.sources, &g.targets, None)
    };
    // SAFETY: valid session and graph.
    assert_eq!(unsafe { tgnn_session_run(&mut *s, &gq) }, TGNN_OK);
    let got: Vec<u8> = output_bytes(&mut s)
        .unwrap()
        .0
        .iter()
        .map(|&v| v as u8)
        .collect();
    assert_eq!(got, expected);
}

/// `tgnn_session_prepare` on a valid session and graph.
fn prepare(s: &mut tgnn_session, g: &tgnn_graph) -> tgnn_status {
    // SAFETY: a valid session; the graph's arrays outlive its use (the tests keep them).
    unsafe { tgnn_session_prepare(s, g) }
}

/// `tgnn_session_run_prepared` on a valid session and features.
fn run_prepared(s: &mut tgnn_session, g: &tgnn_graph) -> tgnn_status {
    // SAFETY: a valid session and feature arrays.
    unsafe { tgnn_session_run_prepared(s, g) }
}

/// `tgnn_session_run` on a valid session and graph.
fn run(s: &mut tgnn_session, g: &tgnn_graph) -> tgnn_status {
    // SAFETY: a valid session and graph.
    unsafe { tgnn_session_run(s, g) }
}

#[test]
fn prepared_graph_through_the_c_api() {
    let (bytes, g, expected) = karate();
    let m = init_model(&bytes);
    let model = rt::Model::from_bytes(&bytes).unwrap();
    let (mut need, mut prep) = (0usize, 0usize);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(
            tgnn_model_arena_bytes(&*m, g.num_nodes, g.num_edges(), 1, &mut need),
            TGNN_OK
        );
        assert_eq!(
            tgnn_model_prepared_bytes(&*m, g.num_nodes, g.num_edges(), 1, &mut prep),
            TGNN_OK
        );
    }
    assert_eq!(prep, model.prepared_bytes(g.num_nodes, g.num_edges(), 1));
    assert!(prep > 0 && prep < need);
    let mut arena = vec![0u64; need.div_ceil(8)];
    let mut s = new_session();
    // SAFETY: valid storage; the model handle and the arena outlive the session's use.
    unsafe {
        assert_eq!(
            tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), need),
            TGNN_OK
        );
    }
    let cg = graph_f32(g.num_nodes, &g.x, &g.sources, &g.targets, None);
    // Nothing prepared yet.
    assert_eq!(run_prepared(&mut s, &cg), TGNN_ERR_NOT_PREPARED);
    assert_eq!(last_error(&mut s).code, TGNN_ERR_NOT_PREPARED);
    assert_eq!(prepare(&mut s, &cg), TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap_err(), TGNN_ERR_NO_OUTPUT);
    // Features only: every other field is ignored.
    let mut f = graph_f32(0, &g.x, &[], &[], None);
    for _ in 0..2 {
        assert_eq!(run_prepared(&mut s, &f), TGNN_OK);
        let (data, _, _) = output_bytes(&mut s).unwrap();
        let as_u8: Vec<u8> = data.iter().map(|&v| v as u8).collect();
        assert_eq!(as_u8, expected);
    }
    // Other features: the bytes of a plain run on them.
    let x2: Vec<f32> = g.x.iter().map(|v| 1.0 - v).collect();
    f.features_f32 = x2.as_ptr();
    assert_eq!(run_prepared(&mut s, &f), TGNN_OK);
    let (prepared_out, _, _) = output_bytes(&mut s).unwrap();
    // Wrong shape: typed error, no output, the graph stays prepared.
    f.features_len -= 1;
    assert_eq!(run_prepared(&mut s, &f), TGNN_ERR_FEATURE_SHAPE);
    assert_eq!(output_bytes(&mut s).unwrap_err(), TGNN_ERR_NO_OUTPUT);
    f.features_len += 1;
    assert_eq!(run_prepared(&mut s, &f), TGNN_OK);
    let c2 = graph_f32(g.num_nodes, &x2, &g.sources, &g.targets, None);
    assert_eq!(run(&mut s, &c2), TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap().0, prepared_out);
    // A plain run overwrote the prepared graph.
    assert_eq!(run_prepared(&mut s, &f), TGNN_ERR_NOT_PREPARED);
    // A failed prepare leaves nothing prepared.
    assert_eq!(prepare(&mut s, &cg), TGNN_OK);
    let bad = graph_f32(g.num_nodes, &g.x[1..], &g.sources, &g.targets, None);
    assert_eq!(prepare(&mut s, &bad), TGNN_ERR_FEATURE_SHAPE);
    assert_eq!(run_prepared(&mut s, &f), TGNN_ERR_NOT_PREPARED);
    // SAFETY: a NULL session is allowed (and refused).
    let st = unsafe { tgnn_session_prepare(null_mut(), &cg) };
    assert_eq!(st, TGNN_ERR_NULL_POINTER);
}

fn update(s: &mut tgnn_session, f: &tgnn_graph, changed: &[u16]) -> tgnn_status {
    // SAFETY: a valid session, feature arrays and changed list.
    unsafe { tgnn_session_update(s, f, changed.as_ptr(), changed.len()) }
}

#[test]
fn incremental_runs_through_the_c_api() {
    let (bytes, g, expected) = karate();
    let m = init_model(&bytes);
    let model = rt::Model::from_bytes(&bytes).unwrap();
    let (n, e) = (g.num_nodes, g.num_edges());
    let mut need = 0usize;
    // SAFETY: valid handle and out-pointer.
    unsafe {
        assert_eq!(
            tgnn_model_incremental_arena_bytes(&*m, n, e, 1, false, &mut need),
            TGNN_OK
        );
    }
    assert_eq!(need, model.incremental_arena_bytes(n, e, 1, false));
    let mut arena = vec![0u64; need.div_ceil(8)];
    let mut s = new_session();
    // SAFETY: valid storage; the model handle and the arena outlive the session's use.
    unsafe {
        assert_eq!(
            tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr().cast(), need),
            TGNN_OK
        );
    }
    let cg = graph_f32(n, &g.x, &g.sources, &g.targets, None);
    let mut f = graph_f32(0, &g.x, &[], &[], None);
    assert_eq!(update(&mut s, &f, &[0]), TGNN_ERR_NOT_INCREMENTAL);
    // SAFETY: a valid session and graph.
    let st = unsafe { tgnn_session_prepare_incremental(&mut *s, &cg) };
    assert_eq!(st, TGNN_OK);
    let as_u8 = |d: Vec<i8>| d.into_iter().map(|v| v as u8).collect::<Vec<u8>>();
    assert_eq!(as_u8(output_bytes(&mut s).unwrap().0), expected);
    // Node 3's features change: the bytes of a full run on the new features.
    let mut x2 = g.x.clone();
    let f_in = g.x.len() / n;
    for v in &mut x2[3 * f_in..4 * f_in] {
        *v = 1.0 - *v;
    }
    f.features_f32 = x2.as_ptr();
    assert_eq!(update(&mut s, &f, &[3]), TGNN_OK);
    let got = output_bytes(&mut s).unwrap().0;
    let full = {
        let mut a = vec![0u8; model.arena_bytes(n, e, 1)];
        let mut rs = rt::Session::new(&model, &mut a);
        let mut gi = GraphInput::new(n, Features::F32(&x2), &g.sources, &g.targets);
        gi.edge_weight = None;
        rs.run(&gi).unwrap().data.to_vec()
    };
    assert_eq!(got, full);
    assert_ne!(as_u8(got), expected, "node 3's change reaches the output");
    // A node outside the graph: typed error with the position and index.
    assert_eq!(
        update(&mut s, &f, &[1, 34]),
        TGNN_ERR_CHANGED_NODE_OUT_OF_RANGE
    );
    let info = last_error(&mut s);
    assert_eq!((info.a, info.b), (1, 34));
    assert_eq!(output_bytes(&mut s).unwrap_err(), TGNN_ERR_NO_OUTPUT);
    // A plain run: no more updates.
    assert_eq!(run(&mut s, &cg), TGNN_OK);
    assert_eq!(update(&mut s, &f, &[3]), TGNN_ERR_NOT_INCREMENTAL);
}

/// A graph of `n` nodes with int8 features and no edges.
fn graph_i8(n: usize, x: &[i8]) -> tgnn_graph {
    tgnn_graph {
        features_kind: TGNN_FEATURES_I8,
        features_f32: null(),
        features_i8: x.as_ptr(),
        features_len: x.len(),
        ..graph_f32(n, &[], &[], &[], None)
    }
}

fn run_step(s: &mut tgnn_session, g: &tgnn_graph, state: &mut [i8]) -> tgnn_status {
    // SAFETY: valid handle, graph arrays and state buffer.
    unsafe { tgnn_session_run_step(s, g, state.as_mut_ptr(), state.len()) }
}

#[test]
fn two_states_through_the_c_api() {
    let (mult, shift) = rt::quant::quantize_multiplier(1.0);
    let bytes = tinygnn_testkit::two_state_cell(mult, shift, &[(1, 3), (4, 5)]).unwrap();
    let m = init_model(&bytes);
    let (mut count, mut channels, mut scale, mut zp, mut len) = (0usize, 0usize, 0f32, 0i8, 0usize);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(tgnn_model_num_states(&*m, &mut count), TGNN_OK);
        assert_eq!(
            tgnn_model_state_at(&*m, 1, &mut channels, &mut scale, &mut zp),
            TGNN_OK
        );
        assert_eq!(
            tgnn_model_state_at(&*m, 2, null_mut(), null_mut(), null_mut()),
            TGNN_ERR_INVALID_ARGUMENT
        );
        assert_eq!(tgnn_model_state_bytes(&*m, 3, &mut len), TGNN_OK);
    }
    assert_eq!((count, channels, scale, zp, len), (2, 2, 0.5, -2, 12));
    let mut state = vec![0i8; len];
    // SAFETY: valid handle; `state` holds `len` bytes.
    unsafe {
        assert_eq!(
            tgnn_model_state_init(&*m, 3, state.as_mut_ptr(), len),
            TGNN_OK
        );
        assert_eq!(
            tgnn_model_state_init(&*m, 3, state.as_mut_ptr(), len - 1),
            TGNN_ERR_STATE_SIZE
        );
    }
    assert_eq!(state, [[3i8; 6], [-2i8; 6]].concat());
    // One step through the C API equals the runtime's.
    let model = rt::Model::from_bytes(&bytes).unwrap();
    let need = model.arena_bytes(3, 0, 1);
    let mut c_arena = vec![0u8; need];
    let mut s = new_session();
    // SAFETY: valid handles; the arena outlives the session's use.
    let st = unsafe { tgnn_session_init(&mut *s, &*m, c_arena.as_mut_ptr(), need) };
    assert_eq!(st, TGNN_OK);
    let mut rust_arena = vec![0u8; need];
    let mut rust = rt::Session::new(&model, &mut rust_arena);
    let mut rust_state = state.clone();
    let x = [5i8, -7, 9, 1, -3, 4];
    let g = graph_i8(3, &x);
    assert_eq!(run_step(&mut s, &g, &mut state), TGNN_OK);
    rust.run_step(
        &GraphInput::new(3, Features::I8(&x), &[], &[]),
        &mut rust_state,
    )
    .unwrap();
    assert_eq!(state, rust_state);
    assert!(state[6..].iter().any(|&v| v != -2), "c moved: {state:?}");
    // A model without state.
    let (kbytes, _, _) = karate();
    let km = init_model(&kbytes);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(tgnn_model_num_states(&*km, &mut count), TGNN_OK);
        assert_eq!(
            tgnn_model_state_at(&*km, 0, null_mut(), null_mut(), null_mut()),
            TGNN_ERR_NOT_RECURRENT
        );
    }
    assert_eq!(count, 0);
}

#[test]
fn recurrent_steps_through_the_c_api_equal_the_runtime() {
    let (mult, shift) = rt::quant::quantize_multiplier(1.0);
    let bytes = tinygnn_testkit::recurrent_cell(mult, shift);
    let m = init_model(&bytes);
    let (mut channels, mut scale, mut zp, mut len) = (0usize, 0f32, 0i8, 0usize);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(
            tgnn_model_state(&*m, &mut channels, &mut scale, &mut zp),
            TGNN_OK
        );
        assert_eq!(tgnn_model_state_bytes(&*m, 3, &mut len), TGNN_OK);
    }
    assert_eq!((channels, scale, zp, len), (2, 0.25, 3, 6));

    let n = 3;
    let model = rt::Model::from_bytes(&bytes).unwrap();
    let need = model.arena_bytes(n, 0, 1);
    let mut rust_arena = vec![0u8; need];
    let mut rust = rt::Session::new(&model, &mut rust_arena);
    let mut c_arena = vec![0u8; need];
    let mut s = new_session();
    // SAFETY: valid handles; the arena outlives the session's use.
    let st = unsafe { tgnn_session_init(&mut *s, &*m, c_arena.as_mut_ptr(), need) };
    assert_eq!(st, TGNN_OK);

    let mut c_state = vec![zp; len];
    let mut rust_state = c_state.clone();
    let mut seed = 0x2545_f491_u32;
    for step in 0..12 {
        let x: Vec<i8> = (0..n * 2)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed >> 24) as i8 / 16
            })
            .collect();
        let g = graph_i8(n, &x);
        assert_eq!(run_step(&mut s, &g, &mut c_state), TGNN_OK, "step {step}");
        let want = rust
            .run_step(
                &GraphInput::new(n, Features::I8(&x), &[], &[]),
                &mut rust_state,
            )
            .unwrap()
            .data
            .to_vec();
        assert_eq!(output_bytes(&mut s).unwrap(), (want, n, 2), "step {step}");
        assert_eq!(c_state, rust_state, "state after step {step}");
    }
    assert!(c_state.iter().any(|&v| v != zp), "the state moved");

    // A state buffer of the wrong length: typed error with both lengths,
    // the state untouched and no output.
    let x = [1i8; 6];
    let g = graph_i8(n, &x);
    let before = c_state.clone();
    assert_eq!(run_step(&mut s, &g, &mut c_state[..5]), TGNN_ERR_STATE_SIZE);
    let info = last_error(&mut s);
    assert_eq!((info.code, info.a, info.b), (TGNN_ERR_STATE_SIZE, 6, 5));
    assert_eq!(c_state, before);
    assert_eq!(output_bytes(&mut s), Err(TGNN_ERR_NO_OUTPUT));
    // NULL state with a length; a recurrent model through tgnn_session_run.
    // SAFETY: valid handle and graph; a NULL state is checked.
    let st = unsafe { tgnn_session_run_step(&mut *s, &g, std::ptr::null_mut(), 6) };
    assert_eq!(st, TGNN_ERR_NULL_POINTER);
    assert_eq!(run(&mut s, &g), TGNN_ERR_STATE_REQUIRED);

    // A model without state: no state, 0 bytes, no step.
    let (kbytes, kg, _) = karate();
    let km = init_model(&kbytes);
    // SAFETY: valid handle and out-pointers.
    unsafe {
        assert_eq!(
            tgnn_model_state(&*km, null_mut(), null_mut(), null_mut()),
            TGNN_ERR_NOT_RECURRENT
        );
        assert_eq!(tgnn_model_state_bytes(&*km, 34, &mut len), TGNN_OK);
    }
    assert_eq!(len, 0);
    let kneed =
        rt::Model::from_bytes(&kbytes)
            .unwrap()
            .arena_bytes(kg.num_nodes, kg.sources.len(), 1);
    let mut karena = vec![0u8; kneed];
    let mut ks = new_session();
    // SAFETY: valid handles; the arena outlives the session's use.
    let st = unsafe { tgnn_session_init(&mut *ks, &*km, karena.as_mut_ptr(), kneed) };
    assert_eq!(st, TGNN_OK);
    let kgraph = graph_f32(kg.num_nodes, &kg.x, &kg.sources, &kg.targets, None);
    assert_eq!(run_step(&mut ks, &kgraph, &mut []), TGNN_ERR_NOT_RECURRENT);
}

#[test]
fn hyperedges_through_the_c_api_equal_the_runtime() {
    let bytes = tinygnn_testkit::hyper_op_model();
    let m = init_model(&bytes);
    let model = rt::Model::from_bytes(&bytes).unwrap();
    // 6 nodes, 3 features; hyperedges {0,1,2}, {2,3}, {3,4,5,0}, weighted.
    let n = 6;
    // Features across the input's range (scale 0.05), as the fixture's own test.
    let x: Vec<f32> = (0..n * 3).map(|i| (i % 7) as f32 * 1.2 - 3.6).collect();
    let nodes = [0u16, 1, 2, 2, 3, 3, 4, 5, 0];
    let ids = [0u16, 0, 0, 1, 1, 2, 2, 2, 2];
    let weight = [1.0f32, 0.5, 2.0];
    let hyper = rt::Hyperedges {
        nodes: &nodes,
        edges: &ids,
        weight: Some(&weight),
    };
    let input = GraphInput::new(n, Features::F32(&x), &[], &[]).with_hyperedges(&hyper);
    let need = model.arena_bytes(n, nodes.len(), 1);
    let mut rust_arena = vec![0u8; need];
    let want = rt::Session::new(&model, &mut rust_arena)
        .run(&input)
        .unwrap()
        .data
        .to_vec();
    assert_spread_ok(&want);

    let mut arena = vec![0u8; need];
    let mut s = new_session();
    // SAFETY: valid handles; the arena outlives the session's use.
    let st = unsafe { tgnn_session_init(&mut *s, &*m, arena.as_mut_ptr(), need) };
    assert_eq!(st, TGNN_OK);
    let g = tgnn_graph {
        hyperedge_nodes: nodes.as_ptr(),
        hyperedge_ids: ids.as_ptr(),
        num_incidences: nodes.len(),
        hyperedge_weight: weight.as_ptr(),
        num_hyperedge_weights: weight.len(),
        ..graph_f32(n, &x, &[], &[], None)
    };
    assert_eq!(run(&mut s, &g), TGNN_OK);
    assert_eq!(output_bytes(&mut s).unwrap().0, want);
    // Prepared once, run with new features: the same bytes as a full run.
    assert_eq!(prepare(&mut s, &g), TGNN_OK);
    let x2: Vec<f32> = (0..n * 3)
        .map(|i| ((i * 5) % 7) as f32 * 1.2 - 3.6)
        .collect();
    let f2 = graph_f32(n, &x2, &[], &[], None);
    assert_eq!(run_prepared(&mut s, &f2), TGNN_OK);
    let want2 = rt::Session::new(&model, &mut rust_arena)
        .run(&GraphInput::new(n, Features::F32(&x2), &[], &[]).with_hyperedges(&hyper))
        .unwrap()
        .data
        .to_vec();
    assert_eq!(output_bytes(&mut s).unwrap().0, want2);
    assert_ne!(want, want2, "the features matter");

    // Missing incidences, one list without the other, a node out of range,
    // a short weight list: each its own code.
    let missing = graph_f32(n, &x, &[], &[], None);
    assert_eq!(run(&mut s, &missing), TGNN_ERR_MISSING_HYPEREDGES);
    let one_sided = tgnn_graph {
        hyperedge_ids: null(),
        ..g
    };
    assert_eq!(run(&mut s, &one_sided), TGNN_ERR_HYPEREDGE_LIST_MISMATCH);
    let null_lists = tgnn_graph {
        hyperedge_nodes: null(),
        hyperedge_ids: null(),
        ..g
    };
    assert_eq!(run(&mut s, &null_lists), TGNN_ERR_NULL_POINTER);
    let far = [0u16, 1, 2, 2, 3, 3, 4, 5, 6];
    let out_of_range = tgnn_graph {
        hyperedge_nodes: far.as_ptr(),
        ..g
    };
    assert_eq!(
        run(&mut s, &out_of_range),
        TGNN_ERR_HYPEREDGE_NODE_OUT_OF_RANGE
    );
    let short_weight = tgnn_graph {
        num_hyperedge_weights: 2,
        ..g
    };
    assert_eq!(run(&mut s, &short_weight), TGNN_ERR_HYPEREDGE_WEIGHT_SHAPE);
}

/// Outputs that are not all the same.
fn assert_spread_ok(v: &[i8]) {
    let distinct: BTreeSet<i8> = v.iter().copied().collect();
    assert!(distinct.len() >= 2, "constant outputs: {v:?}");
}
