//! `GineConv` and the edge-feature input (`edgefeat`): the runtime against an
//! independent implementation of the documented integer semantics (edge list
//! walked in input order, no CSR, so a wrong edge-feature permutation shows),
//! the exact arena, bad inputs and model validation.

mod common;
use common::*;
use tinygnn::format::writer::{ChannelRecord, WriteError};
use tinygnn::format::{Activation, Op, Section, TensorDesc, TensorKind};
use tinygnn::ops::{Act, GineConv, Lut};
use tinygnn::{EdgeAttr, Error, GraphInput, Model, Session};

fn edge(channels: u16, scale: f32, zero_point: i8) -> TensorDesc {
    TensorDesc {
        kind: TensorKind::Edge,
        channels,
        scale,
        zero_point,
    }
}

/// One GineConv (then a ReLU, so the edge tensor's slot is freed and reused).
struct Case {
    c: usize,
    d: usize,
    zp_x: i8,
    zp_e: i8,
    zp_y: i8,
    eps_q16: i32,
    lin: Option<Vec<i8>>,
    recs: Vec<ChannelRecord>,
    mult: i32,
    shift: i32,
}

impl Case {
    fn random(rng: &mut Rng, lin: bool) -> Case {
        let c = rng.range(1, 9) as usize;
        let d = if lin { rng.range(1, 7) as usize } else { c };
        let edge_scale = if lin { 2.0 / (d as f64).sqrt() } else { 150.0 };
        let (mult, shift) =
            tinygnn::quant::quantize_multiplier(0.0005 + 0.0003 * rng.range(0, 10) as f64);
        Case {
            c,
            d,
            zp_x: rng.range(-40, 40) as i8,
            zp_e: rng.range(-40, 40) as i8,
            zp_y: rng.range(-20, 20) as i8,
            eps_q16: rng.range(-40_000, 160_000) as i32,
            lin: lin.then(|| rng.weights(c * d)),
            recs: records(rng, c, if lin { 3000 } else { 0 }, edge_scale),
            mult,
            shift,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut w = writer();
        let x = w.add_tensor(node(self.c as u16, 0.1, self.zp_x));
        let e = w.add_tensor(edge(self.d as u16, 0.05, self.zp_e));
        let y = w.add_tensor(node(self.c as u16, 0.1, self.zp_y));
        let z = w.add_tensor(node(self.c as u16, 0.1, self.zp_y));
        let edge_weights = match &self.lin {
            Some(m) => w.add_i8(m),
            None => Section::default(),
        };
        let edge_params = w.add_channel_params(&self.recs);
        w.add_op(Op::GineConv(GineConv {
            input: x,
            edge_attr: e,
            output: y,
            one_plus_eps_q16: self.eps_q16,
            edge_weights,
            edge_params,
            mult: self.mult,
            shift: self.shift,
        }));
        w.add_op(Op::Act(Act {
            input: y,
            output: z,
            act: Activation::Relu,
        }));
        w.finish(x, &[y, z], 64, 256, 1).unwrap()
    }

    /// The documented semantics, over the COO edges in input order.
    fn expected(&self, n: usize, x: &[i8], src: &[u16], dst: &[u16], ea: &[i8]) -> Vec<i8> {
        let (c, d) = (self.c, self.d);
        let mut sum = vec![0i64; n * c];
        for k in 0..src.len() {
            let (j, i) = (src[k] as usize, dst[k] as usize);
            let er = &ea[k * d..(k + 1) * d];
            let a: Vec<i64> = match &self.lin {
                Some(m) => dense(m, d, er, self.zp_e),
                None => er.iter().map(|&v| v as i64 - self.zp_e as i64).collect(),
            };
            for ch in 0..c {
                let r = &self.recs[ch];
                let acc = (a[ch] + r.bias as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                let e_term =
                    tinygnn::quant::multiply_by_quantized_multiplier(acc, r.mult, r.shift) as i64;
                let msg = (x[j * c + ch] as i64 - self.zp_x as i64) * 256 + e_term;
                sum[i * c + ch] += msg.max(0);
            }
        }
        (0..n * c)
            .map(|q| {
                let total = sum[q] as i128 * 256
                    + self.eps_q16 as i128 * (x[q] as i128 - self.zp_x as i128);
                let v = round_shift(total, 8).clamp(i32::MIN as i128, i32::MAX as i128) as i32;
                requant(v, self.mult, self.shift, self.zp_y)
            })
            .collect()
    }
}

fn graph_input<'a>(
    n: usize,
    x: &'a [i8],
    src: &'a [u16],
    dst: &'a [u16],
    ea: EdgeAttr<'a>,
) -> GraphInput<'a> {
    input(n, x, src, dst).with_edge_attr(ea)
}

#[test]
fn gine_matches_the_documented_semantics() {
    let mut rng = Rng(0x6e1e_0001);
    let mut all = Vec::new();
    for round in 0..300 {
        let case = Case::random(&mut rng, round % 3 != 0);
        let bytes = case.bytes();
        let n = rng.range(1, 24) as usize;
        let e = rng.range(0, 80) as usize;
        // Unsorted targets, duplicates and self-loops included.
        let src: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let x = rng.i8s(n * case.c);
        let ea = rng.i8s(e * case.d);
        let want = case.expected(n, &x, &src, &dst, &ea);
        let outs = run(&bytes, &graph_input(n, &x, &src, &dst, EdgeAttr::I8(&ea))).unwrap();
        assert_eq!(outs[0].2, want, "round {round}");
        let relu: Vec<i8> = want.iter().map(|&v| v.max(case.zp_y)).collect();
        assert_eq!(outs[1].2, relu, "round {round}");
        // Float edge features that quantize to the same values give the same output.
        let ef: Vec<f32> = ea
            .iter()
            .map(|&q| 0.05 * (q as i32 - case.zp_e as i32) as f32)
            .collect();
        let outs_f = run(&bytes, &graph_input(n, &x, &src, &dst, EdgeAttr::F32(&ef))).unwrap();
        assert_eq!(outs_f[0].2, want, "round {round} (f32 edge features)");
        all.extend(want);
    }
    assert_spread(&all);
}

#[test]
fn edge_features_follow_their_edge() {
    // Node 0 gets two edges from node 1 whose features differ; swapping the
    // edge order (and the features with them) keeps the output, swapping only
    // the features changes it.
    let case = Case {
        c: 1,
        d: 1,
        zp_x: 0,
        zp_e: 0,
        zp_y: 0,
        eps_q16: 0,
        lin: None,
        recs: vec![ChannelRecord {
            bias: 0,
            mult: 1 << 30,
            shift: 9, // ×256: edge values in x units
        }],
        mult: 1 << 30,
        shift: -7, // /256
    };
    let bytes = case.bytes();
    let x = [0i8, 10, 0];
    let out = |src: &[u16], dst: &[u16], ea: &[i8]| {
        run(&bytes, &graph_input(3, &x, src, dst, EdgeAttr::I8(ea))).unwrap()[0]
            .2
            .clone()
    };
    // Edges: 1→0 (feature −20: message relu(10 − 20) = 0), 2→1 (5), 1→0 (3: 13).
    let a = out(&[1, 2, 1], &[0, 1, 0], &[-20, 5, 3]);
    assert_eq!(a, vec![13, 5, 0]);
    assert_eq!(out(&[1, 1, 2], &[0, 0, 1], &[3, -20, 5]), a);
    assert_ne!(out(&[1, 2, 1], &[0, 1, 0], &[5, -20, 3]), a);
}

#[test]
fn bad_edge_inputs_get_typed_errors() {
    let mut rng = Rng(7);
    let case = Case::random(&mut rng, true);
    let bytes = case.bytes();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.edge_input(), Some(1));
    let mut arena = vec![0u8; model.arena_bytes(64, 256, 1) + 8];
    let x = vec![0i8; 3 * case.c];
    let (src, dst) = ([0u16, 1], [1u16, 2]);
    let mut s = Session::new(&model, &mut arena);
    assert_eq!(
        s.run(&input(3, &x, &src, &dst)).err(),
        Some(Error::MissingEdgeAttr)
    );
    let short = vec![0i8; 2 * case.d - 1];
    assert_eq!(
        s.run(&graph_input(3, &x, &src, &dst, EdgeAttr::I8(&short)))
            .err(),
        Some(Error::EdgeAttrShape {
            expected: 2 * case.d as u32,
            actual: 2 * case.d as u32 - 1
        })
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut f = vec![0.5f32; 2 * case.d];
        let at = 2 * case.d - 1;
        f[at] = bad;
        assert_eq!(
            s.run(&graph_input(3, &x, &src, &dst, EdgeAttr::F32(&f)))
                .err(),
            Some(Error::NonFiniteEdgeAttr {
                edge: (at / case.d) as u32,
                channel: (at % case.d) as u32
            })
        );
    }
    // Huge float features saturate like node features, no error.
    let f = vec![1e30f32; 2 * case.d];
    assert!(s
        .run(&graph_input(3, &x, &src, &dst, EdgeAttr::F32(&f)))
        .is_ok());
}

#[test]
fn models_without_edge_input_ignore_edge_attr() {
    let bytes = one_channel_gcn(
        0.1,
        1,
        GcnFlags {
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        },
        8,
        8,
    );
    let x = [1i8, 2, 3];
    let plain = run(&bytes, &input(3, &x, &[0, 1], &[1, 2])).unwrap();
    let with = run(
        &bytes,
        &graph_input(3, &x, &[0, 1], &[1, 2], EdgeAttr::F32(&[f32::NAN])),
    )
    .unwrap();
    assert_eq!(plain, with);
    assert_eq!(Model::from_bytes(&bytes).unwrap().edge_input(), None);
}

/// A model edited by `f` after the standard GINE layout `x, e, y`.
fn gine_model(
    f: impl FnOnce(&mut tinygnn::format::writer::ModelWriter, [u8; 3]) -> Op,
) -> Result<Vec<u8>, Error> {
    let mut w = writer();
    let x = w.add_tensor(node(4, 0.1, 0));
    let e = w.add_tensor(edge(3, 0.1, 0));
    let y = w.add_tensor(node(4, 0.1, 0));
    let op = f(&mut w, [x, e, y]);
    w.add_op(op);
    load(w.finish(x, &[y], 16, 16, 1))
}

/// The writer's result, validated by `Model::from_bytes` (the writer runs the
/// same validation and reports its error as `WriteError::Invalid`).
fn load(r: Result<Vec<u8>, WriteError>) -> Result<Vec<u8>, Error> {
    match r {
        Ok(b) => Model::from_bytes(&b).map(|_| b.clone()),
        Err(WriteError::Invalid(e)) => Err(e),
        Err(other) => panic!("writer failed: {other:?}"),
    }
}

fn gine_op(w: &mut tinygnn::format::writer::ModelWriter, t: [u8; 3], lin: bool) -> Op {
    let edge_weights = if lin {
        w.add_i8(&[1; 12])
    } else {
        Section::default()
    };
    let rec = ChannelRecord {
        bias: 0,
        mult: 1 << 30,
        shift: 1,
    };
    Op::GineConv(GineConv {
        input: t[0],
        edge_attr: t[1],
        output: t[2],
        one_plus_eps_q16: 65536,
        edge_weights,
        edge_params: w.add_channel_params(&[rec; 4]),
        mult: 1 << 30,
        shift: 1,
    })
}

#[test]
fn model_validation() {
    assert!(gine_model(|w, t| gine_op(w, t, true)).is_ok());
    // Without lin the edge features must have the node channels (3 ≠ 4).
    assert_eq!(
        (gine_model(|w, t| gine_op(w, t, false))).err(),
        Some(Error::InvalidOp { op: 0 })
    );
    // edge_attr must name the Edge tensor, input a node tensor.
    assert_eq!(
        (gine_model(|w, t| gine_op(w, [t[0], t[0], t[2]], true))).err(),
        Some(Error::InvalidOp { op: 0 })
    );
    assert_eq!(
        (gine_model(|w, t| gine_op(w, [t[1], t[1], t[2]], true))).err(),
        Some(Error::InvalidOp { op: 0 })
    );
    // lin of the wrong size.
    assert_eq!(
        (gine_model(|w, t| {
            let mut op = gine_op(w, t, true);
            if let Op::GineConv(GineConv { edge_weights, .. }) = &mut op {
                *edge_weights = w.add_i8(&[1; 11]);
            }
            op
        }))
        .err(),
        Some(Error::InvalidOp { op: 0 })
    );
    // No op may write an Edge tensor.
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let e = w.add_tensor(edge(3, 0.1, 0));
    let e2 = w.add_tensor(node(3, 0.1, 0));
    w.add_op(Op::Act(Act {
        input: e,
        output: e2,
        act: Activation::Relu,
    }));
    assert_eq!(
        load(w.finish(x, &[e2], 16, 16, 1)).err(),
        Some(Error::InvalidOp { op: 0 })
    );
    // Two Edge tensors.
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    w.add_tensor(edge(3, 0.1, 0));
    w.add_tensor(edge(2, 0.1, 0));
    let y = w.add_tensor(node(3, 0.1, 0));
    w.add_op(Op::Act(Act {
        input: x,
        output: y,
        act: Activation::Relu,
    }));
    assert_eq!(
        load(w.finish(x, &[y], 16, 16, 1)).err(),
        Some(Error::InvalidTensor { tensor: 2 })
    );
    // The edge input is not an output.
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let e = w.add_tensor(edge(3, 0.1, 0));
    let y = w.add_tensor(node(3, 0.1, 0));
    w.add_op(Op::Act(Act {
        input: x,
        output: y,
        act: Activation::Relu,
    }));
    assert_eq!(
        load(w.finish(x, &[y, e], 16, 16, 1)).err(),
        Some(Error::InvalidOutputs)
    );
}

#[test]
fn edge_tensor_arena_is_exact() {
    // x [N,4], e [E,3] (kept until the GINE op), y [N,4]; y is an output,
    // e is not: 3 slots. `common::run` checks the exact need on every run.
    let bytes = gine_model(|w, t| gine_op(w, t, true)).unwrap();
    let m = Model::from_bytes(&bytes).unwrap();
    let r8 = |x: usize| x.div_ceil(8) * 8;
    for (n, e) in [(0usize, 0usize), (5, 3), (7, 16), (16, 1)] {
        let graph = r8(4 * (n + 1)) + r8(2 * e) + r8(4);
        let slots = r8(4 * n) + r8(3 * e) + r8(4 * n);
        let scratch = r8(8 * 4) + 5 * r8(4 * 4);
        assert_eq!(
            m.arena_bytes(n, e, 1),
            graph + slots + scratch,
            "n={n} e={e}"
        );
    }
}

// ---------------------------------------------------------------- Lut (ELU)

fn lut_model(table_len: usize, out_kind: TensorKind) -> Result<Vec<u8>, Error> {
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.05, -7));
    let y = w.add_tensor(TensorDesc {
        kind: out_kind,
        ..node(3, 0.02, 100)
    });
    // A table that is not monotone and not the identity: out = 127 − 2·index (wrapping).
    let bytes: Vec<u8> = (0..table_len)
        .map(|i| (127i32 - 2 * i as i32) as u8)
        .collect();
    let table = w.add_bytes(&bytes);
    w.add_op(Op::Lut(Lut {
        input: x,
        output: y,
        table,
    }));
    load(w.finish(x, &[y], 300, 8, 1))
}

#[test]
fn lut_maps_every_int8_value() {
    let bytes = lut_model(256, TensorKind::Node).unwrap();
    // 256 values: every int8 once, 3 channels per node (one padding value).
    let x: Vec<i8> = (-128i32..=127).map(|v| v as i8).chain([0, 0]).collect();
    let outs = run(&bytes, &input(86, &x, &[], &[])).unwrap();
    for (k, (&xi, &o)) in x.iter().zip(&outs[0].2).enumerate() {
        let want = (127i32 - 2 * (xi as i32 + 128)) as u8 as i8;
        assert_eq!(o, want, "value {k}: input {xi}");
    }
}

#[test]
fn lut_validation() {
    assert_eq!(
        lut_model(255, TensorKind::Node).err(),
        Some(Error::InvalidOp { op: 0 })
    );
    assert_eq!(
        lut_model(257, TensorKind::Node).err(),
        Some(Error::InvalidOp { op: 0 })
    );
    assert_eq!(
        lut_model(256, TensorKind::Graph).err(),
        Some(Error::InvalidOp { op: 0 })
    );
}
