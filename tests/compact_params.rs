//! The compact form of `ChannelParams` (`bias × C`, then one shared
//! `mult, shift`: `4·C + 8` bytes) runs to the same bytes as the same model
//! written in the full form (`12·C` bytes), and any other length is rejected.

mod common;
use common::*;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{self, Activation, Aggr, Op, ParamsForm, Section};
use tinygnn::kernels::requant::{channel_record, channel_record_of};
use tinygnn::ops::{GcnConv, Linear, SageConv};
use tinygnn::{Error, Model};

/// `n` records with random biases and one shared rescale.
fn shared_records(rng: &mut Rng, n: usize, scale: f64) -> Vec<ChannelRecord> {
    let (mult, shift) = tinygnn::quant::quantize_multiplier(scale);
    (0..n)
        .map(|_| ChannelRecord {
            bias: rng.range(-3000, 3000) as i32,
            mult,
            shift,
        })
        .collect()
}

/// Linear → GcnConv → SageConv (root weight) → SageConv (normalize), every
/// layer's records sharing one rescale; `compact` picks the params form.
fn model(seed: u64, compact: bool) -> (Vec<u8>, Vec<Section>) {
    let mut rng = Rng(seed);
    let (ic, h1, h2, h3, h4) = (6usize, 5usize, 4usize, 7usize, 3usize);
    let mut w = writer();
    let add = |w: &mut tinygnn::format::writer::ModelWriter, r: &[ChannelRecord]| {
        if compact {
            w.add_channel_params(r)
        } else {
            w.add_channel_params_full(r)
        }
    };
    let x = w.add_tensor(node(ic as u16, 0.1, 3));
    let t1 = w.add_tensor(node(h1 as u16, 0.05, -4));
    let t2 = w.add_tensor(node(h2 as u16, 0.07, 2));
    let t3 = w.add_tensor(node(h3 as u16, 0.06, -1));
    let t4 = w.add_tensor(node(h4 as u16, 1.0 / 127.0, 0));
    let mut params = Vec::new();

    let ws = w.add_i8(&rng.weights(ic * h1));
    let r = shared_records(&mut rng, h1, 0.0013);
    let ps = add(&mut w, &r);
    params.push(ps);
    w.add_op(Op::Linear(Linear {
        input: x,
        output: t1,
        weights: ws,
        params: ps,
        act: Activation::Relu,
    }));

    let ws = w.add_i8(&rng.weights(h1 * h2));
    let r = shared_records(&mut rng, h2, 0.0021);
    let ps = add(&mut w, &r);
    params.push(ps);
    w.add_op(Op::GcnConv(GcnConv {
        input: t1,
        output: t2,
        weights: ws,
        params: ps,
        act: Activation::LeakyRelu { alpha_q16: 6554 },
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));

    let wl = w.add_i8(&rng.weights(h2 * h3));
    let wr = w.add_i8(&rng.weights(h2 * h3));
    let r = shared_records(&mut rng, h3, 0.0017);
    let ps = add(&mut w, &r);
    params.push(ps);
    w.add_op(Op::SageConv(SageConv {
        input: t2,
        output: t3,
        aggr: Aggr::Mean,
        weights_l: wl,
        weights_r: wr,
        params: ps,
        act: Activation::None,
        normalize: false,
    }));

    let wl = w.add_i8(&rng.weights(h3 * h4));
    let mut r = shared_records(&mut rng, h4, 1.0);
    for rec in &mut r {
        (rec.mult, rec.shift) = (0, 0);
    }
    let ps = add(&mut w, &r);
    params.push(ps);
    w.add_op(Op::SageConv(SageConv {
        input: t3,
        output: t4,
        aggr: Aggr::Max,
        weights_l: wl,
        weights_r: Section::default(),
        params: ps,
        act: Activation::Relu,
        normalize: true,
    }));
    (w.finish(x, &[t4, t3, t2, t1], 32, 64, 1).unwrap(), params)
}

#[test]
fn compact_runs_like_full() {
    let channels = [5usize, 4, 7, 3];
    for seed in 1..40u64 {
        let (full, pf) = model(seed, false);
        let (compact, pc) = model(seed, true);
        for ((f, c), &n) in pf.iter().zip(&pc).zip(&channels) {
            assert_eq!(f.len as usize, 12 * n);
            assert_eq!(c.len as usize, 4 * n + 8);
        }
        assert!(
            compact.len() < full.len(),
            "{} vs {}",
            compact.len(),
            full.len()
        );
        // Same records read back from both forms.
        let (mf, mc) = (
            Model::from_bytes(&full).unwrap(),
            Model::from_bytes(&compact).unwrap(),
        );
        for ((f, c), &n) in pf.iter().zip(&pc).zip(&channels) {
            let (bf, bc) = (mf.data(*f), mc.data(*c));
            assert_eq!(format::params_form(bf.len(), n), Some(ParamsForm::Full));
            assert_eq!(format::params_form(bc.len(), n), Some(ParamsForm::Compact));
            for ch in 0..n {
                assert_eq!(channel_record_of(bf, n, ch), channel_record(bf, ch));
                assert_eq!(channel_record_of(bc, n, ch), channel_record(bf, ch));
            }
        }
        let mut rng = Rng(seed ^ 0x9e37);
        let n = 9;
        let xs = rng.i8s(n * 6);
        let src: Vec<u16> = (0..20).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let dst: Vec<u16> = (0..20).map(|_| rng.range(0, n as i64 - 1) as u16).collect();
        let a = run(&full, &input(n, &xs, &src, &dst)).unwrap();
        let b = run(&compact, &input(n, &xs, &src, &dst)).unwrap();
        assert_eq!(a, b, "seed {seed}");
        for (_, _, v) in &a[1..] {
            assert_spread(v);
        }
    }
}

#[test]
fn one_channel_forms_coincide() {
    let rec = [ChannelRecord {
        bias: -77,
        mult: 1 << 30,
        shift: -3,
    }];
    let mut a = writer();
    let mut b = writer();
    let sa = a.add_channel_params(&rec);
    let sb = b.add_channel_params_full(&rec);
    assert_eq!(sa.len, 12);
    assert_eq!(sb.len, 12);
    let bytes: Vec<u8> = [-77i32, 1 << 30, -3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(format::params_form(12, 1), Some(ParamsForm::Full));
    assert_eq!(channel_record(&bytes, 0), (-77, 1 << 30, -3));
    assert_eq!(channel_record_of(&bytes, 1, 0), (-77, 1 << 30, -3));
}

#[test]
fn writer_keeps_full_form_when_rescales_differ() {
    let mut w = writer();
    let mut recs = vec![
        ChannelRecord {
            bias: 1,
            mult: 1 << 30,
            shift: 0,
        };
        4
    ];
    assert_eq!(w.add_channel_params(&recs).len, 4 * 4 + 8);
    recs[3].shift = 1;
    assert_eq!(w.add_channel_params(&recs).len, 4 * 12);
    recs[3].shift = 0;
    recs[2].mult += 1;
    assert_eq!(w.add_channel_params(&recs).len, 4 * 12);
}

/// A Linear 3 → 4 whose params section holds `len` bytes.
fn linear_with_params_len(len: usize) -> Result<(), Error> {
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let y = w.add_tensor(node(4, 0.1, 0));
    let ws = w.add_i8(&[1; 12]);
    let ps = w.add_bytes(&vec![0u8; len]);
    w.add_op(Op::Linear(Linear {
        input: x,
        output: y,
        weights: ws,
        params: ps,
        act: Activation::None,
    }));
    match w.finish(x, &[y], 4, 4, 1) {
        Ok(_) => Ok(()),
        Err(tinygnn::format::writer::WriteError::Invalid(e)) => Err(e),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn wrong_params_lengths_rejected() {
    // 4 channels: full 48, compact 24; everything else is InvalidOp.
    assert_eq!(linear_with_params_len(48), Ok(()));
    assert_eq!(linear_with_params_len(24), Ok(()));
    for len in [0, 4, 8, 12, 16, 20, 23, 25, 28, 36, 44, 47, 49, 60] {
        assert_eq!(
            linear_with_params_len(len),
            Err(Error::InvalidOp { op: 0 }),
            "len {len}"
        );
    }
    assert_eq!(format::params_form(24, 4), Some(ParamsForm::Compact));
    assert_eq!(format::params_form(48, 4), Some(ParamsForm::Full));
    assert_eq!(format::params_form(36, 4), None);
    assert_eq!(format::params_form(8, 0), None);
}
