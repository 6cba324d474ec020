//! Element-wise ops: `Add` (residual `x + y`), `Concat` (jumping-knowledge
//! `torch.cat(xs, dim=-1)`) and `Act` (standalone `relu` / `leaky_relu`), all
//! on int8 tensors of one kind. Integer forms in [`crate::format::Op`]: inputs
//! are rescaled to the output's scale with Q16 multipliers and
//! `round_shift(·, 16)` (half away from zero), then saturated to int8.

use serde::{Deserialize, Serialize};

use super::{zip_rows, Check, Env, In, OpDef, Out, Scratch, Tensors};
use crate::error::Result;
use crate::format::{Activation, ConcatPart, MAX_CONCAT};
use crate::kernels::requant;
use crate::quant::{round_shift_i64_to_i32, saturate_i8};

/// `out = saturate_i8(zp_out + act(round_shift((a − zp_a)·ma + (b − zp_b)·mb, 16)))`.
pub fn add(
    a: In<'_>,
    b: In<'_>,
    mult_a_q16: i32,
    mult_b_q16: i32,
    act: Activation,
    out: Out<'_>,
) -> Result<()> {
    let (za, zb) = (i64::from(a.zp), i64::from(b.zp));
    let (ma, mb) = (i64::from(mult_a_q16), i64::from(mult_b_q16));
    for ((o, &va), &vb) in out.data.iter_mut().zip(a.data).zip(b.data) {
        let sum = (i64::from(va) - za) * ma + (i64::from(vb) - zb) * mb;
        let v = requant::activate(round_shift_i64_to_i32(sum, 16), act);
        *o = saturate_i8(v.saturating_add(i32::from(out.zp)));
    }
    Ok(())
}

/// Writes `part` into channels `offset..offset + part.channels` of every row of `out`:
/// `saturate_i8(zp_out + round_shift((x − zp_p)·mult_q16, 16))`.
pub fn concat_part(part: In<'_>, mult_q16: i32, offset: usize, out: &mut Out<'_>) -> Result<()> {
    let zp = i64::from(part.zp);
    let m = i64::from(mult_q16);
    let zo = i32::from(out.zp);
    let pc = part.channels;
    for (xr, or) in zip_rows(part.data, pc, out.data, out.channels) {
        if let Some(dst) = or.get_mut(offset..offset.saturating_add(pc)) {
            for (o, &v) in dst.iter_mut().zip(xr) {
                let q = round_shift_i64_to_i32((i64::from(v) - zp) * m, 16);
                *o = saturate_i8(q.saturating_add(zo));
            }
        }
    }
    Ok(())
}

/// Standalone activation with the input's quantization: ReLU `max(x, zp)`,
/// LeakyReLU `x < zp ? zp + round_shift((x − zp)·alpha_q16, 16) : x`.
pub fn act(x: In<'_>, act: Activation, out: Out<'_>) -> Result<()> {
    let zp = i32::from(x.zp);
    for (o, &v) in out.data.iter_mut().zip(x.data) {
        let v = i32::from(v);
        *o = match act {
            Activation::None => saturate_i8(v),
            Activation::Relu => saturate_i8(v.max(zp)),
            Activation::LeakyRelu { alpha_q16 } => {
                if v < zp {
                    let d = round_shift_i64_to_i32(i64::from(v - zp) * i64::from(alpha_q16), 16);
                    saturate_i8(zp.saturating_add(d))
                } else {
                    saturate_i8(v)
                }
            }
        };
    }
    Ok(())
}

/// Element-wise sum of two tensors of the same kind and shape:
/// `out = saturate_i8(zp_out + act(round_shift_i64_to_i32((a − zp_a)·ma + (b − zp_b)·mb, 16)))`,
/// with `ma = round(s_a/s_out · 2^16)`, `mb` likewise (ReLU clamps at 0 before adding `zp_out`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Add {
    /// First input.
    pub a: u8,
    /// Second input.
    pub b: u8,
    /// Output.
    pub output: u8,
    /// Q16 rescale of `a`.
    pub mult_a_q16: i32,
    /// Q16 rescale of `b`.
    pub mult_b_q16: i32,
    /// Fused activation.
    pub act: Activation,
}

/// Channel concatenation (jumping knowledge `cat`) of tensors of one kind:
/// each part `p` is written as `saturate_i8(zp_out + round_shift((x − zp_p)·mult_q16, 16))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Concat {
    /// Inputs, in channel order.
    pub parts: heapless::Vec<ConcatPart, MAX_CONCAT>,
    /// Output (sum of the parts' channels).
    pub output: u8,
}

/// Standalone activation; output has the input's quantization:
/// ReLU `max(x, zp)`, LeakyReLU `x < zp ? zp + round_shift((x − zp)·alpha_q16, 16) : x`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Act {
    /// Input.
    pub input: u8,
    /// Output.
    pub output: u8,
    /// Activation (not `None`).
    pub act: Activation,
}

impl OpDef for Add {
    fn name(&self) -> &'static str {
        "add"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.a);
        f(self.b);
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (a, b, o) = (c.tensor(self.a)?, c.tensor(self.b)?, c.tensor(self.output)?);
        Check::ok(
            a.kind == o.kind
                && b.kind == o.kind
                && a.channels == o.channels
                && b.channels == o.channels
                && Check::act_ok(&self.act),
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        let (a, b) = (env.view(self.a)?, env.view(self.b)?);
        add(a, b, self.mult_a_q16, self.mult_b_q16, self.act, out)
    }
}

impl OpDef for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        self.parts.iter().for_each(|p| f(p.input))
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let o = c.tensor(self.output)?;
        let mut sum = 0usize;
        for p in &self.parts {
            let pt = c.tensor(p.input)?;
            if pt.kind != o.kind {
                return None;
            }
            sum += usize::from(pt.channels);
        }
        Check::ok(!self.parts.is_empty() && sum == usize::from(o.channels))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        mut out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        let mut offset = 0usize;
        for p in &self.parts {
            let v = env.view(p.input)?;
            let c = v.channels;
            concat_part(v, p.mult_q16, offset, &mut out)?;
            offset += c;
        }
        Ok(())
    }
}

impl OpDef for Act {
    fn name(&self) -> &'static str {
        "act"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        Check::ok(
            i.kind == o.kind
                && i.channels == o.channels
                && i.zero_point == o.zero_point
                && self.act != Activation::None
                && Check::act_ok(&self.act),
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        act(env.view(self.input)?, self.act, out)
    }
}
