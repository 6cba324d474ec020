//! `softmax` / `log_softmax` over the channels of each row. On the device:
//! an exp table in Q15 over the differences to the row maximum; softmax
//! outputs probabilities in steps of 1/256, log-softmax is rescaled from a
//! Q16 log of the row sum.

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::{Op, TensorDesc};
use tinygnn::ops;
use tinygnn::ops::softmax::{EXP_ONE, PROB_SCALE, PROB_ZERO_POINT};
use tinygnn::quant::quantize_multiplier;

use super::common::{Parse, Rows, Tensor};
use super::describe::{Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// Softmax, or with `log`, log-softmax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Softmax {
    /// Log-softmax.
    pub log: bool,
}

impl HostOp for Softmax {
    const TYPES: &'static [&'static str] = &["softmax", "log_softmax"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        let log = cx.ty == "log_softmax";
        Ok((Softmax { log }, cx.rows(), cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }

    fn device_name(&self) -> &'static str {
        self.type_name()
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        let x = ins[0];
        let c = x.channels.max(1);
        let mut data = x.data.clone();
        for row in data.chunks_mut(c) {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            for v in row.iter_mut() {
                *v = if self.log { *v - lse } else { (*v - lse).exp() };
            }
        }
        Tensor { data, ..x.clone() }
    }

    /// Probabilities in steps of 1/256, 0 at −128 (the runtime's fixed head).
    fn fixed_output(&self, _input: &TensorDesc) -> Option<(f32, i8)> {
        (!self.log).then_some((PROB_SCALE, PROB_ZERO_POINT))
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let s_in = cx.s_in;
        // exp(−s_x·d) in Q15 for every difference d to the row maximum.
        let table: Vec<u8> = (0..256)
            .flat_map(|d| {
                let e = (-(s_in * d as f64)).exp() * f64::from(EXP_ONE);
                (e.round() as u16).to_le_bytes()
            })
            .collect();
        let table = cx.add_table(&table);
        let (ln2_q16, (mult, shift)) = if self.log {
            let k = (std::f64::consts::LN_2 / s_in * 65536.0).round();
            if !(0.0..=f64::from(i32::MAX)).contains(&k) {
                bail!(
                    "{}: input scale {s_in} is too small for log_softmax",
                    cx.who
                );
            }
            (k as i32, quantize_multiplier(s_in / (65536.0 * cx.s_out)))
        } else {
            (0, (0, 0))
        };
        Ok(Op::Softmax(ops::Softmax {
            input: cx.input(),
            output: cx.output,
            log: self.log,
            table,
            ln2_q16,
            mult,
            shift,
        }))
    }
}

impl Describe for ops::Softmax {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        cx.params(self.table.len);
        let p = if self.log {
            format!(
                "256-entry exp table, ln2/s_x {:.4}",
                self.ln2_q16 as f64 / 65536.0
            )
        } else {
            "256-entry exp table, output 1/256".into()
        };
        Described::new("-".into(), p, json!({ "log": self.log }))
    }
}
