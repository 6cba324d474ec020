//! Element-wise functions of one value that the device runs as a 256-entry
//! int8 lookup table (`lut`), built from the input and output quantization:
//! `elu` (`x > 0 ? x : α·(exp(x) − 1)`), `sigmoid` (`1 / (1 + exp(−x))`) and
//! `tanh`, and `rsub` (`c − x`, the `1 − z` of a GRU gate). Any such function is exact up to the output's rounding: the table
//! holds `quantize_out(f(dequantize_in(q)))` for every input byte `q`.

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

/// A function of one value, run as a lookup table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lut {
    /// ELU with this α.
    Elu(f64),
    /// The logistic sigmoid.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// `c − x` for a constant `c` (`1 − z` of a GRU gate; spec `rsub`).
    Rsub(f64),
}

impl Lut {
    /// The function.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Lut::Elu(alpha) => elu(x, alpha),
            Lut::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Lut::Tanh => x.tanh(),
            Lut::Rsub(c) => c - x,
        }
    }
}

/// ELU: `x > 0 ? x : alpha·(exp(x) − 1)`.
pub fn elu(x: f64, alpha: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        alpha * x.exp_m1()
    }
}

impl HostOp for Lut {
    const TYPES: &'static [&'static str] = &["elu", "sigmoid", "tanh", "rsub"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, super::common::Rows, usize)> {
        let f = match cx.ty {
            "elu" => Lut::Elu(cx.f64_attr("alpha", 1.0)?),
            "sigmoid" => Lut::Sigmoid,
            "rsub" => {
                let c = cx.f64_attr("value", 1.0)?;
                if !c.is_finite() {
                    anyhow::bail!("{}: value {c} is not finite", cx.who());
                }
                Lut::Rsub(c)
            }
            _ => Lut::Tanh,
        };
        Ok((f, cx.rows(), cx.channels()))
    }

    fn type_name(&self) -> &'static str {
        match self {
            Lut::Elu(_) => "elu",
            Lut::Sigmoid => "sigmoid",
            Lut::Tanh => "tanh",
            Lut::Rsub(_) => "rsub",
        }
    }

    fn device_name(&self) -> &'static str {
        "lut"
    }

    fn reference(&self, ins: &[&Tensor], _g: &Graphs) -> Tensor {
        ins[0].map(|v| self.apply(v))
    }

    /// `out = quantize_out(f(dequantize_in(q)))` for every int8 `q`.
    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (i, o) = (cx.in_desc[0], cx.out_desc);
        let table: Vec<u8> = (-128i32..=127)
            .map(|q| {
                let x = dequantize_value(q as i8, i.scale, i.zero_point);
                quantize_value(self.apply(x), o.scale, o.zero_point) as u8
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
