//! int2 weight sections: the format round trip (writer → reader), rejection of
//! malformed int2 sections with a typed error (wrong lengths, non-zero
//! padding fields, both precision flags), and whole models whose int2 layers
//! give exactly the bytes of the same model written with the same
//! (sign-extended) weights as int8 — GcnConv, SageConv, Linear, any mix of
//! int8/int4/int2 layers, `in_ch` of every residue mod 4.

mod common;
use common::{input, node, records, run, writer, Rng};
use proptest::prelude::*;
use tinygnn::format::writer::{fix_crc, pack_i2, WriteError};
use tinygnn::format::{
    Activation, Aggr, Op, Section, WeightBits, WEIGHTS_I2_FLAG, WEIGHTS_I4_FLAG,
};
use tinygnn::kernels::dense_i4::Matrix;
use tinygnn::ops::{GcnConv, Linear, SageConv};
use tinygnn::{Error, Model};

/// Random weights in −2..=1.
fn w2(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| (rng.next() % 4) as i8 - 2).collect()
}

/// GCN (in→h0), SAGE (h0→h1), Linear (h1→h2); precisions from `bits`.
fn model(seed: u64, ic: usize, h: [usize; 3], bits: [WeightBits; 3]) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut w = writer();
    let x = w.add_tensor(node(ic as u16, 0.05, -3));
    let t1 = w.add_tensor(node(h[0] as u16, 0.1, 5));
    let t2 = w.add_tensor(node(h[1] as u16, 0.1, -7));
    let t3 = w.add_tensor(node(h[2] as u16, 0.2, 0));
    let weights = w
        .add_weights(bits[0], &w2(&mut rng, ic * h[0]), ic)
        .unwrap();
    let params = w.add_channel_params(&records(&mut rng, h[0], 200, 0.05));
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: t1,
        weights,
        params,
        act: Activation::Relu,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));
    let weights_l = w
        .add_weights(bits[1], &w2(&mut rng, h[0] * h[1]), h[0])
        .unwrap();
    let weights_r = w
        .add_weights(bits[1], &w2(&mut rng, h[0] * h[1]), h[0])
        .unwrap();
    let params = w.add_channel_params(&records(&mut rng, h[1], 200, 0.05));
    w.add_op(Op::SageConv(SageConv {
        input: t1,
        output: t2,
        aggr: Aggr::Mean,
        weights_l,
        weights_r,
        params,
        act: Activation::Relu,
        normalize: false,
    }));
    let weights = w
        .add_weights(bits[2], &w2(&mut rng, h[1] * h[2]), h[1])
        .unwrap();
    let params = w.add_channel_params(&records(&mut rng, h[2], 200, 0.05));
    w.add_op(Op::Linear(Linear {
        input: t2,
        output: t3,
        weights,
        params,
        act: Activation::None,
    }));
    w.finish(x, &[t3], 64, 512, 1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn int2_model_equals_int8_model_on_the_same_weights(
        seed in any::<u64>(),
        ic in 1usize..14,
        h in proptest::array::uniform3(1usize..11),
        pick in proptest::array::uniform3(0u8..3),
        n in 1usize..30,
    ) {
        let all = [WeightBits::I8, WeightBits::I4, WeightBits::I2];
        let bits = pick.map(|p| all[usize::from(p)]);
        let m8 = model(seed, ic, h, [WeightBits::I8; 3]);
        let mx = model(seed, ic, h, bits);
        let found: Vec<WeightBits> = Model::from_bytes(&mx)
            .unwrap()
            .ops()
            .filter_map(|op| match op {
                Op::Linear(Linear { weights, .. }) | Op::GcnConv(GcnConv { weights, .. }) => Some(weights.weight_bits()),
                Op::SageConv(SageConv { weights_l, .. }) => Some(weights_l.weight_bits()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(&found[..], &bits[..]);
        let mut rng = Rng(seed ^ 0x5555);
        let x = rng.i8s(n * ic);
        let src: Vec<u16> = (0..n * 3).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..n * 3).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let g = input(n, &x, &src, &dst);
        prop_assert_eq!(run(&mx, &g).unwrap(), run(&m8, &g).unwrap());
    }
}

#[test]
fn round_trip_of_an_int2_section() {
    let vals: Vec<i8> = vec![1, -2, -1, 0, 1, -2, 1, 1, -1, -2]; // 2 rows × 5
    let mut w = writer();
    let x = w.add_tensor(node(5, 0.1, 0));
    let y = w.add_tensor(node(2, 0.1, 0));
    let weights = w.add_i2(&vals, 5).unwrap();
    assert_eq!(weights.len, 4 | WEIGHTS_I2_FLAG);
    assert_eq!(weights.weight_bits(), WeightBits::I2);
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
        Matrix::I2(b) => assert_eq!(b, &[0b0011_1001, 0b01, 0b1101_0110, 0b10]),
        Matrix::I8(_) | Matrix::I4(_) => panic!("int2 expected"),
    }
    assert!(
        m.weights(got).is_empty(),
        "the int8 accessor never misreads int2"
    );
}

#[test]
fn writer_rejects_out_of_range_int2() {
    assert_eq!(pack_i2(&[2], 1), Err(WriteError::Int2Range));
    assert_eq!(pack_i2(&[-3], 1), Err(WriteError::Int2Range));
    assert_eq!(pack_i2(&[1, 0, -1], 2), Err(WriteError::Int2Range));
    assert_eq!(pack_i2(&[1], 0), Err(WriteError::Int2Range));
    assert_eq!(
        pack_i2(&[-2, 1, -1, 0, 1], 5),
        Ok(vec![0b00_11_01_10, 0b01])
    );
}

/// A one-Linear model (`ic` → 2) whose weight section is `raw` with `len`
/// as stored, through the writer's validation.
fn raw_linear(ic: u16, raw: &[u8], len: u32) -> Result<Vec<u8>, WriteError> {
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
    w.finish(x, &[y], 4, 4, 1)
}

#[test]
fn reader_rejects_malformed_int2_sections() {
    let rows = [0b0011_1001u8, 0b01, 0b1101_0110, 0b10];
    let ok = raw_linear(5, &rows, 4 | WEIGHTS_I2_FLAG).unwrap();
    Model::from_bytes(&ok).unwrap();
    // A non-zero padding field (in_ch 5: bits 2..8 of each row's last byte).
    let pos = find(&ok, &rows);
    for junk in [0b0000_0100u8, 0b0100_0000] {
        let mut bad = ok.clone();
        bad[pos + 3] |= junk;
        fix_crc(&mut bad);
        assert_eq!(
            Model::from_bytes(&bad).err(),
            Some(Error::InvalidOp { op: 0 })
        );
    }
    // Wrong lengths: the int8 and int4 lengths with the int2 flag, one byte
    // short, the int2 length without a flag or with the int4 flag, and both
    // flags (never read as a valid section of either precision).
    let invalid = Some(WriteError::Invalid(Error::InvalidOp { op: 0 }));
    for len in [
        10 | WEIGHTS_I2_FLAG,
        6 | WEIGHTS_I2_FLAG,
        3 | WEIGHTS_I2_FLAG,
        4,
        4 | WEIGHTS_I4_FLAG,
        4 | WEIGHTS_I2_FLAG | WEIGHTS_I4_FLAG,
        6 | WEIGHTS_I2_FLAG | WEIGHTS_I4_FLAG,
    ] {
        assert_eq!(
            raw_linear(5, &[0u8; 12], len).err(),
            invalid,
            "len {len:#x}"
        );
    }
}

/// What a reader that predates int2 does with an int2 section: it reads bit
/// 30 as part of an int8 length (at least 1 GiB), which no data section
/// holds, so the op is refused, never misread.
#[test]
fn an_int2_length_is_impossible_for_an_int8_reader() {
    let s = Section {
        offset: 0,
        len: 4 | WEIGHTS_I2_FLAG,
    };
    assert!(s.len as usize >= 1 << 30);
    assert!(
        s.len & WEIGHTS_I4_FLAG == 0,
        "an int4 reader sees no int4 flag"
    );
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}
