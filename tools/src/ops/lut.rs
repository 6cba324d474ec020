//! `elu`: `x > 0 ? x : α·(exp(x) − 1)`, a 256-entry int8 lookup table on the
//! device (`lut`), built from the input and output quantization.

use anyhow::Result;
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;

use super::common::{dequantize_value, quantize_value};
use super::common::{Parse, Tensor};
use super::describe::{Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// ELU.
#[derive(Debug, Clone, PartialEq)]
pub struct Elu {
    /// α.
    pub alpha: f64,
}

/// ELU: `x > 0 ? x : alpha·(exp(x) − 1)`.
pub fn elu(x: f64, alpha: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        alpha * x.exp_m1()
    }
}

impl HostOp for Elu {
    const TYPES: &'static [&'static str] = &["elu"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, super::common::Rows, usize)> {
        let alpha = cx.f64_attr("alpha", 1.0)?;
        Ok((Elu { alpha }, cx.rows(), cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        "elu"
    }

    fn device_name(&self) -> &'static str {
        "lut"
    }

    fn plain_name(&self) -> &'static str {
        "elu"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        ins[0].map(|v| elu(v, self.alpha))
    }

    /// `out = quantize_out(elu(dequantize_in(q)))` for every int8 `q`.
    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (i, o) = (cx.in_desc[0], cx.out_desc);
        let table: Vec<u8> = (-128i32..=127)
            .map(|q| {
                let x = dequantize_value(q as i8, i.scale, i.zero_point);
                quantize_value(elu(x, self.alpha), o.scale, o.zero_point) as u8
            })
            .collect();
        let table = cx.add_table(&table);
        Ok(Op::Lut(ops::Lut {
            input: cx.input(),
            output: cx.output,
            table,
        }))
    }
}

impl Describe for ops::Lut {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        cx.params(self.table.len);
        Described::new("-".into(), "256-entry table", json!({}))
    }
}
