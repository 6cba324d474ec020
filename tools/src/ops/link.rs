//! Link prediction heads, one row per node pair of `edge_label_index`:
//! `inner_product` `z_s · z_t` (the logit, PyG's `InnerProductDecoder` with
//! `sigmoid=False`), `pair_hadamard` `z_s ⊙ z_t`, `pair_concat` `[z_s, z_t]`.

use anyhow::Result;
use serde_json::json;
use tinygnn::format::{Op, PairMode, TensorDesc};
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

use super::common::{Parse, Rows, Tensor};
use super::describe::{mult_shift, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// A pair decoder or pair representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// `z_s · z_t` (one channel, the logit).
    InnerProduct,
    /// `z_s ⊙ z_t`.
    Hadamard,
    /// `[z_s, z_t]`.
    Concat,
}

impl HostOp for Pair {
    const TYPES: &'static [&'static str] = &["inner_product", "pair_hadamard", "pair_concat"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let c = cx.channels();
        Ok(match cx.ty {
            "inner_product" => (Pair::InnerProduct, Rows::Pair, 1),
            "pair_hadamard" => (Pair::Hadamard, Rows::Pair, c),
            _ => (Pair::Concat, Rows::Pair, 2 * c),
        })
    }

    fn type_name(&self) -> &'static str {
        match self {
            Pair::InnerProduct => "inner_product",
            Pair::Hadamard => "pair_hadamard",
            Pair::Concat => "pair_concat",
        }
    }

    fn device_name(&self) -> &'static str {
        self.type_name()
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let z = ins[0];
        let (src, dst): (&[u16], &[u16]) = match &g.pairs {
            Some(p) => (&p.sources, &p.targets),
            None => (&[], &[]),
        };
        let c = z.channels;
        let out_ch = match self {
            Pair::InnerProduct => 1,
            Pair::Hadamard => c,
            Pair::Concat => 2 * c,
        };
        let mut out = Tensor::zeros(src.len(), out_ch);
        for (k, (&s, &t)) in src.iter().zip(dst).enumerate() {
            let (a, b) = (z.row(s as usize), z.row(t as usize));
            let o = &mut out.data[k * out_ch..(k + 1) * out_ch];
            match self {
                Pair::InnerProduct => o[0] = a.iter().zip(b).map(|(x, y)| x * y).sum(),
                Pair::Hadamard => {
                    for ((o, x), y) in o.iter_mut().zip(a).zip(b) {
                        *o = x * y;
                    }
                }
                Pair::Concat => {
                    o[..c].copy_from_slice(a);
                    o[c..].copy_from_slice(b);
                }
            }
        }
        out
    }

    /// `[z_s, z_t]` is a byte copy: the input's quantization.
    fn fixed_output(&self, input: &TensorDesc) -> Option<(f32, i8)> {
        (*self == Pair::Concat).then_some((input.scale, input.zero_point))
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (input, output) = (cx.input(), cx.output);
        if *self == Pair::Concat {
            return Ok(Op::PairFeatures(ops::PairFeatures {
                input,
                output,
                mode: PairMode::Concat,
            }));
        }
        // Σ (z_s − zp)(z_t − zp) is in the scale s_z², rescaled to s_out.
        let r = cx.s_in * cx.s_in / cx.s_out;
        let (mult, shift) = quantize_multiplier(r);
        if mult == 0 {
            let msg = format!("{}: rescale s_z²/s_out = {r:e} underflows to 0", cx.who);
            cx.warn(msg);
        }
        Ok(if *self == Pair::InnerProduct {
            Op::InnerProduct(ops::InnerProduct {
                input,
                output,
                mult,
                shift,
            })
        } else {
            Op::PairFeatures(ops::PairFeatures {
                input,
                output,
                mode: PairMode::Hadamard { mult, shift },
            })
        })
    }
}

impl Describe for ops::InnerProduct {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        Described::new("-".into(), mult_shift(self.mult, self.shift), json!({}))
    }
}

impl Describe for ops::PairFeatures {
    fn describe(&self, _cx: &mut Inspect<'_, '_>) -> Described {
        match self.mode {
            PairMode::Hadamard { mult, shift } => Described::new(
                "-".into(),
                mult_shift(mult, shift),
                json!({"mode": "hadamard"}),
            ),
            PairMode::Concat => {
                Described::new("-".into(), "same quant as input", json!({"mode": "concat"}))
            }
        }
    }
}
