//! `Softmax` (softmax and log-softmax heads): the runtime against the float
//! functions on the dequantized input (within the documented rounding), and
//! against an independent integer reading of the documented semantics
//! (bit for bit); model validation of the head's fixed quantization and table.

mod common;
use common::*;
use tinygnn::format::{Op, Section};
use tinygnn::ops::softmax::{log2_q16, EXP_ONE, PROB_SCALE, PROB_ZERO_POINT};
use tinygnn::ops::Softmax;
use tinygnn::Model;

/// `round(2^15 · exp(−s_x·d))`, `d = 0..=255`, as the host writes it.
fn table(s_x: f64) -> Vec<u8> {
    (0..256)
        .flat_map(|d| ((f64::from(EXP_ONE) * (-s_x * d as f64).exp()).round() as u16).to_le_bytes())
        .collect()
}

struct Head {
    c: u16,
    s_x: f32,
    zp_x: i8,
    log: bool,
    s_out: f32,
    zp_out: i8,
}

impl Head {
    fn bytes_with(&self, table_bytes: &[u8], out: (f32, i8)) -> Result<Vec<u8>, String> {
        let mut w = writer();
        let x = w.add_tensor(node(self.c, self.s_x, self.zp_x));
        let y = w.add_tensor(node(self.c, out.0, out.1));
        let table = w.add_bytes(table_bytes);
        let (ln2_q16, (mult, shift)) = if self.log {
            (
                (std::f64::consts::LN_2 / f64::from(self.s_x) * 65536.0).round() as i32,
                tinygnn::quant::quantize_multiplier(
                    f64::from(self.s_x) / (65536.0 * f64::from(out.0)),
                ),
            )
        } else {
            (0, (0, 0))
        };
        w.add_op(Op::Softmax(Softmax {
            input: x,
            output: y,
            log: self.log,
            table,
            ln2_q16,
            mult,
            shift,
        }));
        w.finish(x, &[y], 64, 0, 1).map_err(|e| format!("{e:?}"))
    }

    fn bytes(&self) -> Vec<u8> {
        self.bytes_with(&table(f64::from(self.s_x)), (self.s_out, self.zp_out))
            .unwrap()
    }

    /// The documented semantics, written out independently (i128, no table
    /// lookups shared with the runtime).
    fn expected(&self, x: &[i8]) -> Vec<i8> {
        let c = usize::from(self.c);
        let t = table(f64::from(self.s_x));
        let e = |d: i32| {
            i128::from(u16::from_le_bytes([
                t[2 * d as usize],
                t[2 * d as usize + 1],
            ]))
        };
        let mut out = Vec::new();
        for row in x.chunks(c) {
            let m = i32::from(*row.iter().max().unwrap());
            let s: i128 = row.iter().map(|&v| e(m - i32::from(v))).sum();
            for &v in row {
                let d = m - i32::from(v);
                if self.log {
                    let l = i128::from(log2_q16(s as u32)) - (15 << 16);
                    let k =
                        (std::f64::consts::LN_2 / f64::from(self.s_x) * 65536.0).round() as i128;
                    let norm = (l * k + (1 << 15)) >> 16;
                    let acc =
                        (-(i128::from(d) << 16) - norm).clamp(i32::MIN as i128, i32::MAX as i128);
                    let (mult, shift) = tinygnn::quant::quantize_multiplier(
                        f64::from(self.s_x) / (65536.0 * f64::from(self.s_out)),
                    );
                    out.push(requant(acc as i32, mult, shift, self.zp_out));
                } else {
                    let q = (e(d) * 256 + s / 2) / s - 128;
                    out.push(q.clamp(-128, 127) as i8);
                }
            }
        }
        out
    }
}

fn float_head(log: bool, row: &[f64]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    row.iter()
        .map(|v| if log { v - lse } else { (v - lse).exp() })
        .collect()
}

#[test]
fn heads_match_the_semantics_and_the_float_functions() {
    let mut rng = Rng(0x50f7_3a11);
    for case in 0..60 {
        let log = case % 2 == 1;
        let c = rng.range(1, 12) as u16;
        let s_x = [0.01f32, 0.05, 0.1, 0.3][case % 4];
        let h = Head {
            c,
            s_x,
            zp_x: rng.range(-30, 30) as i8,
            log,
            s_out: if log {
                0.02 + 0.01 * (case % 5) as f32
            } else {
                PROB_SCALE
            },
            zp_out: if log { 120 } else { PROB_ZERO_POINT },
        };
        let n = rng.range(1, 9) as usize;
        let x = rng.i8s(n * usize::from(c));
        let got = run(&h.bytes(), &input(n, &x, &[], &[])).unwrap();
        let y = &got[0].2;
        assert_eq!(y, &h.expected(&x), "case {case}: semantics");
        for (i, row) in x.chunks(usize::from(c)).enumerate() {
            let real: Vec<f64> = row
                .iter()
                .map(|&v| f64::from(s_x) * (f64::from(v) - f64::from(h.zp_x)))
                .collect();
            let want = float_head(log, &real);
            for (k, &w) in want.iter().enumerate() {
                let q = y[i * usize::from(c) + k];
                let v = f64::from(h.s_out) * (f64::from(q) - f64::from(h.zp_out));
                // One output step of rounding, plus the Q15 table's and the
                // Q16 logarithm's error (well below a step at these scales);
                // log-softmax values below the output range saturate.
                let lo = f64::from(h.s_out) * (-128.0 - f64::from(h.zp_out));
                if log && w < lo {
                    assert_eq!(q, -128, "case {case}: saturates");
                    continue;
                }
                assert!(
                    (v - w).abs() <= 1.05 * f64::from(h.s_out),
                    "case {case} row {i} ch {k}: {v} vs {w}"
                );
            }
            // The largest input keeps the largest output.
            let top = row
                .iter()
                .enumerate()
                .max_by_key(|(k, &v)| (v, -(*k as i32)))
                .unwrap()
                .0;
            let out_row = &y[i * usize::from(c)..(i + 1) * usize::from(c)];
            assert_eq!(*out_row.iter().max().unwrap(), out_row[top], "case {case}");
        }
    }
}

#[test]
fn model_checks_refuse_a_bad_head() {
    let h = Head {
        c: 3,
        s_x: 0.1,
        zp_x: 0,
        log: false,
        s_out: PROB_SCALE,
        zp_out: PROB_ZERO_POINT,
    };
    let good = table(0.1);
    assert!(Model::from_bytes(&h.bytes()).is_ok());
    // Softmax's output quantization is fixed.
    assert!(h.bytes_with(&good, (0.01, -128)).is_err());
    assert!(h.bytes_with(&good, (PROB_SCALE, 0)).is_err());
    // The table is 256 u16 entries and starts at exp(0) = 2^15.
    assert!(h.bytes_with(&good[..510], (PROB_SCALE, -128)).is_err());
    let mut off = good.clone();
    off[0] ^= 1;
    assert!(h.bytes_with(&off, (PROB_SCALE, -128)).is_err());
    // An empty section is no table.
    let mut w = writer();
    let x = w.add_tensor(node(3, 0.1, 0));
    let y = w.add_tensor(node(3, PROB_SCALE, PROB_ZERO_POINT));
    w.add_op(Op::Softmax(Softmax {
        input: x,
        output: y,
        log: false,
        table: Section { offset: 0, len: 0 },
        ln2_q16: 0,
        mult: 0,
        shift: 0,
    }));
    assert!(w.finish(x, &[y], 8, 0, 1).is_err());
}
