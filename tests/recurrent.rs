//! Recurrent models (`op-recurrent`): the `Mul` op, the state record of the
//! format, `Session::run_step` carrying the state between steps, and its
//! typed errors (wrong state size, stateless runs, bad state records).

mod common;
use common::*;
use tinygnn::format::writer::WriteError;
use tinygnn::format::{Activation, Op};
use tinygnn::ops::{Add, Mul};
use tinygnn::{Error, Model, Session};

/// The testkit's cell: x [N,2], h [N,2]; p = x ⊙ h; h' = x + p.
fn cell(mult: i32, shift: i32) -> Vec<u8> {
    tinygnn_testkit::recurrent_cell(mult, shift)
}

fn step_reference(x: &[i8], h: &[i8], mult: i32, shift: i32) -> (Vec<i8>, Vec<i8>) {
    let p: Vec<i8> = x
        .iter()
        .zip(h)
        .map(|(&a, &b)| requant(a as i32 * (b as i32 - 3), mult, shift, -1))
        .collect();
    let hn = p
        .iter()
        .zip(x)
        .map(|(&a, &b)| {
            let s = (a as i128 + 1) * (1 << 15) + (b as i128) * (1 << 17);
            (round_shift(s, 16) + 3).clamp(-128, 127) as i8
        })
        .collect();
    (p, hn)
}

#[test]
fn run_step_carries_the_state() {
    // s_x·s_h/s_p = 0.5·0.25/0.125 = 1: mult 2^30, shift 1.
    let (mult, shift) = tinygnn::quant::quantize_multiplier(1.0);
    let bytes = cell(mult, shift);
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.state(), Some((1, 3)));
    assert_eq!(model.state_bytes(3), 6);
    let n = 3;
    let need = model.arena_bytes(n, 0, 1);
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, need);
    let mut s = Session::new(&model, arena);
    let mut rng = Rng(7);
    let mut state = vec![3i8; 6]; // zero state: the zero point
    let mut want = state.clone();
    for _ in 0..10 {
        let x: Vec<i8> = (0..6).map(|_| rng.i8() / 32).collect();
        let (p, hn) = step_reference(&x, &want, mult, shift);
        let out = s.run_step(&input(n, &x, &[], &[]), &mut state).unwrap();
        assert_eq!(out.data, &p[..]);
        assert_eq!(state, hn);
        want = hn;
    }
    assert!(want.iter().any(|&v| v != 3), "the state moved: {want:?}");
}

#[test]
fn state_errors_are_typed() {
    let (mult, shift) = tinygnn::quant::quantize_multiplier(1.0);
    let bytes = cell(mult, shift);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, model.arena_bytes(3, 0, 1));
    let mut s = Session::new(&model, arena);
    let x = [1i8; 6];
    let inp = input(3, &x, &[], &[]);
    for len in [0usize, 5, 7, 60] {
        let mut state = vec![9i8; len];
        assert_eq!(
            s.run_step(&inp, &mut state).map(|o| o.rows),
            Err(Error::StateSize {
                expected: 6,
                actual: len as u32
            })
        );
        assert!(state.iter().all(|&v| v == 9), "untouched after an error");
    }
    assert_eq!(s.run(&inp).map(|o| o.rows), Err(Error::StateRequired));
    // A model without state has no run_step.
    let plain = one_channel_gcn(
        1.0,
        1,
        GcnFlags {
            add_self_loops: true,
            normalize: true,
            edge_weight: false,
        },
        8,
        8,
    );
    let m2 = Model::from_bytes(&plain).unwrap();
    assert_eq!(m2.state(), None);
    assert_eq!(m2.state_bytes(10), 0);
    let mut buf2 = Vec::new();
    let arena2 = aligned(&mut buf2, m2.arena_bytes(1, 0, 1));
    let mut s2 = Session::new(&m2, arena2);
    let x1 = [1i8];
    assert_eq!(
        s2.run_step(&input(1, &x1, &[], &[]), &mut [])
            .map(|o| o.rows),
        Err(Error::NotRecurrent)
    );
}

/// The writer refuses inconsistent state records (the runtime's checks).
#[test]
fn bad_state_records_are_rejected() {
    let build = |hn_desc: tinygnn::format::TensorDesc, set: (u8, u8), outputs: &[u8]| {
        let mut w = writer();
        let x = w.add_tensor(node(2, 0.5, 0));
        let h = w.add_tensor(node(2, 0.25, 3));
        let hn = w.add_tensor(hn_desc);
        w.add_op(Op::Add(Add {
            a: x,
            b: h,
            output: hn,
            mult_a_q16: 1 << 16,
            mult_b_q16: 1 << 16,
            act: Activation::None,
        }));
        w.set_state(set.0, set.1);
        w.finish(x, outputs, 8, 8, 1)
    };
    let ok = node(2, 0.25, 3);
    assert!(build(ok, (1, 2), &[2]).is_ok());
    let invalid = Err(WriteError::Invalid(Error::InvalidState));
    assert_eq!(build(node(2, 0.26, 3), (1, 2), &[2]), invalid); // other scale
    assert_eq!(build(node(2, 0.25, 4), (1, 2), &[2]), invalid); // other zero point
    assert!(build(ok, (1, 2), &[0, 1]).is_err()); // not an output
    assert_eq!(build(ok, (0, 2), &[2]), invalid); // the model input
                                                  // Written by an op: the op breaks single assignment.
    assert_eq!(
        build(ok, (2, 2), &[2]),
        Err(WriteError::Invalid(Error::InvalidOp { op: 0 }))
    );
    assert_eq!(build(ok, (9, 2), &[2]), invalid); // no such tensor
                                                  // Truncated or overlong state records are BadMetadata.
    let good = build(ok, (1, 2), &[2]).unwrap();
    let meta_len = u32::from_le_bytes(good[20..24].try_into().unwrap()) as usize;
    for cut in [1usize, 2] {
        let mut b = good.clone();
        // Shorten the metadata by `cut` bytes (drops the state ids).
        let ml = (meta_len - cut) as u32;
        b[20..24].copy_from_slice(&ml.to_le_bytes());
        tinygnn::format::writer::fix_crc(&mut b);
        assert!(matches!(
            Model::from_bytes(&b).map(|_| ()),
            Err(Error::BadMetadata)
        ));
    }
}

#[test]
fn mul_saturates_and_rounds() {
    // p = requant((a − za)(b − zb)) against the independent formula.
    let mut rng = Rng(11);
    for _ in 0..20 {
        let s = 0.001 + (rng.range(1, 1000) as f64) / 200.0;
        let (mult, shift) = tinygnn::quant::quantize_multiplier(s);
        let za = rng.i8();
        let zo = rng.i8();
        // One input read as both factors: the square.
        let mut w2 = writer();
        let a2 = w2.add_tensor(node(4, 0.1, za));
        let o2 = w2.add_tensor(node(4, 0.1, zo));
        w2.add_op(Op::Mul(Mul {
            a: a2,
            b: a2,
            output: o2,
            mult,
            shift,
        }));
        let bytes = w2.finish(a2, &[o2], 8, 8, 1).unwrap();
        let xs = rng.i8s(8);
        let outs = run(&bytes, &input(2, &xs, &[], &[])).unwrap();
        let want: Vec<i8> = xs
            .iter()
            .map(|&v| {
                let d = v as i32 - za as i32;
                requant(d * d, mult, shift, zo)
            })
            .collect();
        assert_eq!(outs[0].2, want);
    }
}

/// The testkit's two-state cell (an LSTM's `h` and `c`): x [N,2];
/// p = x ⊙ h; h' = x + p; c' = c + x/2 (c: scale 0.5, zero point −2).
fn two_state_cell(mult: i32, shift: i32, states: &[(u8, u8)]) -> Result<Vec<u8>, WriteError> {
    tinygnn_testkit::two_state_cell(mult, shift, states)
}

#[test]
fn two_states_are_carried_each_in_its_own_quantization() {
    let (mult, shift) = tinygnn::quant::quantize_multiplier(1.0);
    let bytes = two_state_cell(mult, shift, &[(1, 3), (4, 5)]).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.num_states(), 2);
    assert_eq!(model.states().collect::<Vec<_>>(), [(1, 3), (4, 5)]);
    assert_eq!(model.state_desc_at(1).map(|d| d.zero_point), Some(-2));
    assert_eq!(model.state_desc_at(2), None);
    let n = 3;
    assert_eq!(model.state_bytes(n), 12);
    // The initial state: each block at its own zero point.
    let mut state = vec![0i8; 12];
    model.init_state(n, &mut state).unwrap();
    assert_eq!(state, [[3i8; 6], [-2i8; 6]].concat());
    assert_eq!(
        model.init_state(n, &mut [0i8; 11]),
        Err(Error::StateSize {
            expected: 12,
            actual: 11
        })
    );
    let mut buf = Vec::new();
    let arena = aligned(&mut buf, model.arena_bytes(n, 0, 1));
    let mut s = Session::new(&model, arena);
    let mut rng = Rng(5);
    let (mut h, mut c) = (vec![3i8; 6], vec![-2i8; 6]);
    for _ in 0..12 {
        let x: Vec<i8> = (0..6).map(|_| rng.i8() / 16).collect();
        let (p, hn) = step_reference(&x, &h, mult, shift);
        let cn: Vec<i8> = c
            .iter()
            .zip(&x)
            .map(|(&a, &b)| {
                let sum = (a as i128 + 2) * (1 << 16) + (b as i128) * (1 << 15);
                (round_shift(sum, 16) - 2).clamp(-128, 127) as i8
            })
            .collect();
        let out = s.run_step(&input(n, &x, &[], &[]), &mut state).unwrap();
        assert_eq!(out.data, &p[..]);
        assert_eq!(state, [hn.clone(), cn.clone()].concat());
        (h, c) = (hn, cn);
    }
    assert!(c.iter().any(|&v| v != -2) && h.iter().any(|&v| v != 3));
}

#[test]
fn bad_multi_state_records_are_rejected() {
    let (mult, shift) = tinygnn::quant::quantize_multiplier(1.0);
    let invalid = Err(WriteError::Invalid(Error::InvalidState));
    // The same state input twice, the same next state twice, a state
    // whose next value has another state's quantization.
    assert_eq!(two_state_cell(mult, shift, &[(1, 3), (1, 5)]), invalid);
    assert_eq!(two_state_cell(mult, shift, &[(1, 3), (4, 3)]), invalid);
    assert_eq!(two_state_cell(mult, shift, &[(1, 3), (4, 2)]), invalid);
    assert_eq!(two_state_cell(mult, shift, &[(1, 5), (4, 3)]), invalid);
    // A record of an odd length, or of more than MAX_STATES pairs, is
    // BadMetadata.
    let good = two_state_cell(mult, shift, &[(1, 3), (4, 5)]).unwrap();
    let meta_len = u32::from_le_bytes(good[20..24].try_into().unwrap()) as usize;
    for cut in [1usize, 3] {
        let mut b = good.clone();
        b[20..24].copy_from_slice(&((meta_len - cut) as u32).to_le_bytes());
        tinygnn::format::writer::fix_crc(&mut b);
        assert_eq!(Model::from_bytes(&b).map(|_| ()), Err(Error::BadMetadata));
    }
    let five = [(1, 3), (4, 5), (1, 3), (4, 5), (1, 3)];
    assert_eq!(
        two_state_cell(mult, shift, &five[..tinygnn::MAX_STATES + 1]),
        Err(WriteError::Invalid(Error::BadMetadata))
    );
}
