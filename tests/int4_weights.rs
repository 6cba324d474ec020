//! int4 weight sections: the format round trip (writer → reader), rejection of
//! malformed int4 sections with a typed error, and whole models whose int4
//! layers give exactly the bytes of the same model written with the same
//! (sign-extended) weights as int8 — for Linear, GcnConv and SageConv (all
//! aggregations, with and without root weight), odd and even `in_ch`.

mod common;
use common::{input, node, records, run, writer, Rng};
use proptest::prelude::*;
use tinygnn::format::writer::{fix_crc, pack_i4, WriteError};
use tinygnn::format::{Activation, Aggr, Op, Section, WeightBits, WEIGHTS_I4_FLAG};
use tinygnn::kernels::dense_i4::Matrix;
use tinygnn::ops::{GcnConv, Linear, SageConv};
use tinygnn::{Error, Model};

/// Random weights in −7..=7 (what the tool writes) plus an occasional −8.
fn w4(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n)
        .map(|_| {
            let v = (rng.next() % 16) as i8 - 8;
            if v == -8 && rng.next() % 4 != 0 {
                0
            } else {
                v
            }
        })
        .collect()
}

/// A 4-op model: GCN (in→h1), SAGE (h1→h2), SAGE max without root (h2→h3),
/// Linear (h3→out); every layer's precision from `bits`.
fn model(seed: u64, ic: usize, h: [usize; 4], bits: [WeightBits; 4], aggr: Aggr) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut w = writer();
    let x = w.add_tensor(node(ic as u16, 0.05, -3));
    let t1 = w.add_tensor(node(h[0] as u16, 0.1, 5));
    let t2 = w.add_tensor(node(h[1] as u16, 0.1, -7));
    let t3 = w.add_tensor(node(h[2] as u16, 0.1, 2));
    let t4 = w.add_tensor(node(h[3] as u16, 0.2, 0));
    let act = Activation::LeakyRelu { alpha_q16: 6554 };
    let weights = w
        .add_weights(bits[0], &w4(&mut rng, ic * h[0]), ic)
        .unwrap();
    let params = w.add_channel_params(&records(&mut rng, h[0], 200, 0.02));
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: t1,
        weights,
        params,
        act,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));
    let weights_l = w
        .add_weights(bits[1], &w4(&mut rng, h[0] * h[1]), h[0])
        .unwrap();
    let weights_r = w
        .add_weights(bits[1], &w4(&mut rng, h[0] * h[1]), h[0])
        .unwrap();
    let params = w.add_channel_params(&records(&mut rng, h[1], 200, 0.02));
    w.add_op(Op::SageConv(SageConv {
        input: t1,
        output: t2,
        aggr,
        weights_l,
        weights_r,
        params,
        act: Activation::Relu,
        normalize: false,
    }));
    let weights_l = w
        .add_weights(bits[2], &w4(&mut rng, h[1] * h[2]), h[1])
        .unwrap();
    let params = w.add_channel_params(&records(&mut rng, h[2], 200, 0.02));
    w.add_op(Op::SageConv(SageConv {
        input: t2,
        output: t3,
        aggr: Aggr::Max,
        weights_l,
        weights_r: Section::default(),
        params,
        act: Activation::None,
        normalize: false,
    }));
    let weights = w
        .add_weights(bits[3], &w4(&mut rng, h[2] * h[3]), h[2])
        .unwrap();
    let params = w.add_channel_params(&records(&mut rng, h[3], 200, 0.05));
    w.add_op(Op::Linear(Linear {
        input: t3,
        output: t4,
        weights,
        params,
        act: Activation::None,
    }));
    w.finish(x, &[t4], 64, 512, 1).unwrap()
}

fn graph(rng: &mut Rng, n: usize, ic: usize) -> (Vec<i8>, Vec<u16>, Vec<u16>) {
    let e = n * 3;
    let x = rng.i8s(n * ic);
    let src = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
    let dst = (0..e).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
    (x, src, dst)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn int4_model_equals_int8_model_on_the_same_weights(
        seed in any::<u64>(),
        ic in 1usize..12,
        h in proptest::array::uniform4(1usize..10),
        mask in 1u8..16,
        aggr in prop_oneof![Just(Aggr::Sum), Just(Aggr::Mean), Just(Aggr::Max)],
        n in 1usize..30,
    ) {
        let bits = |on: bool| if on { WeightBits::I4 } else { WeightBits::I8 };
        let mixed = [0, 1, 2, 3].map(|i| bits(mask & (1 << i) != 0));
        let m8 = model(seed, ic, h, [WeightBits::I8; 4], aggr);
        let m4 = model(seed, ic, h, mixed, aggr);
        let model4 = Model::from_bytes(&m4).unwrap();
        let found: Vec<WeightBits> = model4
            .ops()
            .filter_map(|op| match op {
                Op::Linear(Linear { weights, .. }) | Op::GcnConv(GcnConv { weights, .. }) => Some(weights.weight_bits()),
                Op::SageConv(SageConv { weights_l, .. }) => Some(weights_l.weight_bits()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(&found[..], &mixed[..]);
        let mut rng = Rng(seed ^ 0x5555);
        let (x, src, dst) = graph(&mut rng, n, ic);
        let g = input(n, &x, &src, &dst);
        let want = run(&m8, &g).unwrap();
        let got = run(&m4, &g).unwrap();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn round_trip_of_an_int4_section() {
    let vals: Vec<i8> = vec![1, -2, 3, -8, 7, -1]; // 2 rows × 3
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let y = w.add_tensor(node(2, 0.1, 0));
    let weights = w.add_i4(&vals, 3).unwrap();
    assert_eq!(weights.len, 4 | WEIGHTS_I4_FLAG);
    assert_eq!(weights.weight_bits(), WeightBits::I4);
    assert_eq!(weights.weight_bytes().len, 4);
    let params = w.add_channel_params(&records(&mut Rng(3), 2, 10, 0.1));
    w.add_op(Op::Linear(Linear {
        input: x,
        output: y,
        weights,
        params,
        act: Activation::None,
    }));
    let bytes = w.finish(x, &[y], 4, 4, 1).unwrap();
    let m = Model::from_bytes(&bytes).unwrap();
    let Some(Op::Linear(Linear { weights: got, .. })) = m.ops().next() else {
        panic!("linear expected")
    };
    assert_eq!(got, weights);
    match m.matrix(got) {
        Matrix::I4(b) => assert_eq!(b, &[0xE1, 0x03, 0x78, 0x0F]),
        Matrix::I8(_) | Matrix::I2(_) => panic!("int4 expected"),
    }
    assert!(
        m.weights(got).is_empty(),
        "the int8 accessor never misreads int4"
    );
}

#[test]
fn writer_rejects_out_of_range_int4() {
    assert_eq!(pack_i4(&[8], 1), Err(WriteError::Int4Range));
    assert_eq!(pack_i4(&[-9], 1), Err(WriteError::Int4Range));
    assert_eq!(pack_i4(&[1, 2, 3], 2), Err(WriteError::Int4Range));
    assert_eq!(pack_i4(&[1], 0), Err(WriteError::Int4Range));
    assert_eq!(pack_i4(&[-8, 7, 0], 3), Ok(vec![0x78, 0x00]));
}

/// Builds a one-Linear model (`ic` → 2) whose weight section is `raw` with
/// `len` as stored, bypassing the writer's packing.
fn raw_linear(ic: u16, raw: &[u8], len: u32) -> Vec<u8> {
    let mut w = writer();
    let x = w.add_tensor(node(ic, 0.1, 0));
    let y = w.add_tensor(node(2, 0.1, 0));
    let s = w.add_bytes(raw);
    let params = w.add_channel_params(&records(&mut Rng(5), 2, 10, 0.1));
    w.add_op(Op::Linear(Linear {
        input: x,
        output: y,
        weights: Section {
            offset: s.offset,
            len,
        },
        params,
        act: Activation::None,
    }));
    w.finish(x, &[y], 4, 4, 1).unwrap()
}

#[test]
fn reader_rejects_malformed_int4_sections() {
    // Valid: in_ch 3, 2 rows of 2 bytes, padding nibbles 0.
    let ok = raw_linear(3, &[0xE1, 0x03, 0x78, 0x0F], 4 | WEIGHTS_I4_FLAG);
    Model::from_bytes(&ok).unwrap();
    // The same valid file, patched: a non-zero padding nibble in row 1.
    let pos = find(&ok, &[0xE1, 0x03, 0x78, 0x0F]);
    let mut bad = ok.clone();
    bad[pos + 3] = 0x1F;
    fix_crc(&mut bad);
    assert_eq!(
        Model::from_bytes(&bad).err(),
        Some(Error::InvalidOp { op: 0 })
    );
    // Wrong lengths: the int8 length with the int4 flag, one byte short, and
    // an int4 length without the flag.
    for len in [6 | WEIGHTS_I4_FLAG, 3 | WEIGHTS_I4_FLAG, 4] {
        let mut w = writer();
        let x = w.add_tensor(node(3, 0.1, 0));
        let y = w.add_tensor(node(2, 0.1, 0));
        let s = w.add_bytes(&[0u8; 8]);
        let params = w.add_channel_params(&records(&mut Rng(5), 2, 10, 0.1));
        w.add_op(Op::Linear(Linear {
            input: x,
            output: y,
            weights: Section {
                offset: s.offset,
                len,
            },
            params,
            act: Activation::None,
        }));
        assert_eq!(
            w.finish(x, &[y], 4, 4, 1).err(),
            Some(WriteError::Invalid(Error::InvalidOp { op: 0 })),
            "len {len:#x}"
        );
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}
