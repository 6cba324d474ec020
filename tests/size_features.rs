//! The size features (docs/size.md): `weights-i4` and `kernels-small`.
//!
//! * With `weights-i4` (part of `all-ops`, so of the default) a model with
//!   int4 weights loads and gives the bytes of the same model written with
//!   the same weights as int8; without it `Model::from_bytes` rejects the
//!   model with `Error::OpNotCompiled` naming the op and its tag, whichever
//!   of its weight matrices is int4, and int8 models still load and run.
//! * `kernels-small` only changes which (bit-exact) kernels run, so every
//!   assertion here holds with and without it; `scripts/areas/size.sh` runs this
//!   file and the GCN/Linear op tests in the GCN-only size configuration
//!   (`--no-default-features --features std,op-gcn,op-linear,kernels-small`).

mod common;

use common::*;
use tinygnn::format::writer::{pack_i4, ModelWriter, WriteError};
use tinygnn::format::{Activation, Op, Section, WEIGHTS_I4_FLAG};
use tinygnn::ops::{Act, GcnConv, Linear, SageConv};
use tinygnn::Error;

/// Weights in −7..=7.
fn w4(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| (rng.next() % 15) as i8 - 7).collect()
}

/// An int4 weight section of `values` (`[out, in_ch]`), written by hand so
/// that the writer's own checks do not depend on the build's features.
fn add_i4(w: &mut ModelWriter, values: &[i8], in_ch: usize) -> Section {
    let packed = pack_i4(values, in_ch).unwrap();
    let s = w.add_bytes(&packed);
    Section {
        offset: s.offset,
        len: s.len | WEIGHTS_I4_FLAG,
    }
}

/// GcnConv (7 → 5, odd in_ch) then Linear (5 → 3); `i4[k]`: layer k's
/// weights are int4 (else int8 with the same values).
fn model(i4: [bool; 2]) -> Result<Vec<u8>, WriteError> {
    let mut rng = Rng(0x5123);
    let mut w = writer();
    let x = w.add_tensor(node(7, 0.05, -3));
    let h = w.add_tensor(node(5, 0.1, 4));
    let y = w.add_tensor(node(3, 0.2, -1));
    let (w1, w2) = (w4(&mut rng, 35), w4(&mut rng, 15));
    let s1 = if i4[0] {
        add_i4(&mut w, &w1, 7)
    } else {
        w.add_i8(&w1)
    };
    let p1 = w.add_channel_params(&records(&mut rng, 5, 300, 0.02));
    let s2 = if i4[1] {
        add_i4(&mut w, &w2, 5)
    } else {
        w.add_i8(&w2)
    };
    let p2 = w.add_channel_params(&records(&mut rng, 3, 300, 0.05));
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: h,
        weights: s1,
        params: p1,
        act: Activation::Relu,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));
    w.add_op(Op::Linear(Linear {
        input: h,
        output: y,
        weights: s2,
        params: p2,
        act: Activation::None,
    }));
    w.finish(x, &[y], 16, 64, 1)
}

fn outputs(bytes: &[u8]) -> Vec<(usize, usize, Vec<i8>)> {
    let mut rng = Rng(77);
    let x = rng.i8s(6 * 7);
    let src = [0u16, 1, 2, 3, 4, 5, 0, 2, 2];
    let dst = [1u16, 2, 3, 4, 5, 0, 3, 2, 5];
    run(bytes, &input(6, &x, &src, &dst)).unwrap()
}

#[test]
fn int8_models_load_and_run_in_every_build() {
    let out = outputs(&model([false, false]).unwrap());
    assert_eq!((out[0].0, out[0].1), (6, 3));
    assert_spread(&out[0].2);
}

#[test]
fn int4_weights_follow_the_weights_i4_feature() {
    let int8 = outputs(&model([false, false]).unwrap());
    for (i4, op, tag) in [
        ([true, false], 0u16, 1u32),
        ([false, true], 1, 0),
        ([true, true], 0, 1),
    ] {
        let r = model(i4);
        if cfg!(feature = "weights-i4") {
            let bytes = r.unwrap_or_else(|e| panic!("{i4:?}: {e}"));
            assert_eq!(outputs(&bytes), int8, "{i4:?}: int4 differs from int8");
        } else {
            match r {
                Err(WriteError::Invalid(e)) => {
                    assert_eq!(e, Error::OpNotCompiled { op, tag }, "{i4:?}")
                }
                other => panic!("{i4:?}: expected OpNotCompiled, got {:?}", other.is_ok()),
            }
        }
    }
}

#[test]
fn has_i4_weights_sees_every_weight_matrix() {
    let s = Section { offset: 0, len: 8 };
    let s4 = Section {
        offset: 0,
        len: 8 | WEIGHTS_I4_FLAG,
    };
    let gcn = |weights| {
        Op::GcnConv(GcnConv {
            input: 0,
            output: 1,
            weights,
            params: s,
            act: Activation::None,
            improved: false,
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        })
    };
    assert!(!gcn(s).has_i4_weights());
    assert!(gcn(s4).has_i4_weights());
    let sage = |weights_l, weights_r| {
        Op::SageConv(SageConv {
            input: 0,
            output: 1,
            aggr: tinygnn::format::Aggr::Mean,
            weights_l,
            weights_r,
            params: s,
            act: Activation::None,
            normalize: false,
        })
    };
    assert!(!sage(s, s).has_i4_weights());
    assert!(sage(s4, s).has_i4_weights());
    assert!(sage(s, s4).has_i4_weights());
    let lin = |weights| {
        Op::Linear(Linear {
            input: 0,
            output: 1,
            weights,
            params: s,
            act: Activation::None,
        })
    };
    assert!(!lin(s).has_i4_weights());
    assert!(lin(s4).has_i4_weights());
    // The params section never carries the flag's meaning.
    let act = Op::Act(Act {
        input: 0,
        output: 1,
        act: Activation::Relu,
    });
    assert!(!act.has_i4_weights());
}

/// int2 weights need `weights-i2`: with it the model runs (the int2 tests
/// prove it bit-exact with int8); without it the build reads the section as
/// a reader that predates int2 does and the op is `InvalidOp`.
#[test]
fn int2_weights_follow_the_weights_i2_feature() {
    use tinygnn::format::writer::ChannelRecord;
    use tinygnn::format::{TensorDesc, TensorKind};
    let mut w = ModelWriter::new();
    let t = |c| TensorDesc {
        kind: TensorKind::Node,
        channels: c,
        scale: 0.1,
        zero_point: 0,
    };
    let x = w.add_tensor(t(5));
    let y = w.add_tensor(t(2));
    let weights = w.add_i2(&[1, -2, -1, 0, 1, -2, 1, 1, -1, -2], 5).unwrap();
    let rec = ChannelRecord {
        bias: 0,
        mult: 1 << 30,
        shift: 0,
    };
    let params = w.add_channel_params(&[rec, rec]);
    w.add_op(Op::Linear(Linear {
        input: x,
        output: y,
        weights,
        params,
        act: Activation::None,
    }));
    let r = w.finish(x, &[y], 4, 4, 1);
    if cfg!(feature = "weights-i2") {
        r.unwrap();
    } else {
        assert_eq!(
            r.err(),
            Some(WriteError::Invalid(Error::InvalidOp { op: 0 }))
        );
    }
}
