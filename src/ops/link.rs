//! Link-prediction pair decoders (helper `link`): PyG's
//! `InnerProductDecoder` (GAE/VGAE, `z_s · z_t`, without the sigmoid) as
//! [`inner_product`], and the pair representation of an MLP decoder
//! (`z_s ⊙ z_t` or `[z_s, z_t]`, as in PyG's `link_pred` examples) as
//! [`pair_features`]. Both read a node tensor and write a pair tensor, one row
//! per pair of [`Ctx::pairs`]; the exact integer semantics are documented on
//! [`crate::format::Op::InnerProduct`] and [`crate::format::Op::PairFeatures`].
//! Neither takes scratch.

use serde::{Deserialize, Serialize};

use super::{rows_mut, Check, Ctx, Env, In, OpDef, Out, Scratch, Tensors};
use crate::error::{Error, Result};
use crate::format::TensorKind;
use crate::kernels::requant::requantize;

/// Row `i` of `x` (`None` if out of range: the pairs were validated, so this
/// only guards against an internal mismatch).
fn row<'a>(x: &In<'a>, i: u16) -> Option<&'a [i8]> {
    let c = x.channels;
    let start = usize::from(i).checked_mul(c)?;
    x.data.get(start..start.checked_add(c)?)
}

/// `Σ_c (a_c − zp)·(b_c − zp)`. At most `MAX_CHANNELS · 255² < 2^31` in
/// magnitude, so the `i32` sum is exact; `wrapping_add` only keeps the
/// optimiser from keeping an overflow-panic path.
#[inline]
pub fn dot_centered(a: &[i8], b: &[i8], zp: i8) -> i32 {
    let zp = i32::from(zp);
    a.iter().zip(b).fold(0i32, |acc, (&x, &y)| {
        acc.wrapping_add((i32::from(x) - zp) * (i32::from(y) - zp))
    })
}

/// [`crate::format::Op::InnerProduct`]: one channel per pair.
pub fn inner_product(ctx: &Ctx<'_>, z: In<'_>, mult: i32, shift: i32, out: Out<'_>) -> Result<()> {
    let internal = Error::InvalidOp { op: ctx.op };
    let (src, dst) = ctx.pairs;
    for ((o, &s), &t) in out.data.iter_mut().zip(src).zip(dst) {
        let (a, b) = (row(&z, s).ok_or(internal)?, row(&z, t).ok_or(internal)?);
        *o = requantize(dot_centered(a, b, z.zp), mult, shift, out.zp);
    }
    Ok(())
}

/// [`crate::format::Op::PairFeatures`]: `z_s ⊙ z_t` requantized, or `[z_s, z_t]`.
pub fn pair_features(ctx: &Ctx<'_>, z: In<'_>, mode: PairMode, out: Out<'_>) -> Result<()> {
    let internal = Error::InvalidOp { op: ctx.op };
    let (src, dst) = ctx.pairs;
    let zp = i32::from(z.zp);
    let c = z.channels;
    for ((o, &s), &t) in rows_mut(out.data, out.channels).zip(src).zip(dst) {
        let (a, b) = (row(&z, s).ok_or(internal)?, row(&z, t).ok_or(internal)?);
        match mode {
            PairMode::Hadamard { mult, shift } => {
                for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                    let p = (i32::from(x) - zp) * (i32::from(y) - zp);
                    *o = requantize(p, mult, shift, out.zp);
                }
            }
            PairMode::Concat => {
                let (lo, hi) = o.split_at_mut_checked(c).ok_or(internal)?;
                lo.copy_from_slice_checked(a).ok_or(internal)?;
                hi.copy_from_slice_checked(b).ok_or(internal)?;
            }
        }
    }
    Ok(())
}

/// `copy_from_slice` without its length-mismatch panic.
trait CopyChecked {
    fn copy_from_slice_checked(&mut self, src: &[i8]) -> Option<()>;
}

impl CopyChecked for [i8] {
    fn copy_from_slice_checked(&mut self, src: &[i8]) -> Option<()> {
        if self.len() != src.len() {
            return None;
        }
        for (d, &s) in self.iter_mut().zip(src) {
            *d = s;
        }
        Some(())
    }
}

/// Inner-product pair decoder (VGAE/GAE `InnerProductDecoder` without the
/// sigmoid), node tensor `z` in, pair tensor with **one** channel out. For
/// pair `k = (s, t)` of [`crate::GraphInput::pairs`]:
/// `acc_k = Σ_c (z_sc − zp_z)·(z_tc − zp_z)` (i32: at most
/// `4096 · 255² < 2^31` in magnitude, so it never overflows),
/// `out_k = saturate_i8(requant(acc_k, mult, shift) + zp_out)` with the Q31
/// rescale `s_z² / s_out`. The output is the logit `z_s · z_t`; the sigmoid
/// (a probability) is left to the host: it is monotone, so ranking metrics
/// such as AUC and any threshold test work on the logit directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InnerProduct {
    /// Input node tensor (the node embeddings `z`).
    pub input: u8,
    /// Output pair tensor (1 channel).
    pub output: u8,
    /// Q31 rescale `s_z² / s_out`.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

/// Pair representation for an MLP pair decoder, node tensor `z` (`C`
/// channels) in, pair tensor out; the MLP follows as `Linear`/`Act` ops on
/// pair rows. For pair `k = (s, t)`:
/// * [`PairMode::Hadamard`]: `C` channels,
///   `out_kc = saturate_i8(requant((z_sc − zp_z)·(z_tc − zp_z), mult, shift) + zp_out)`
///   with the Q31 rescale `s_z² / s_out`;
/// * [`PairMode::Concat`]: `2C` channels, `out_k = [z_s, z_t]` copied
///   byte for byte (the output must have the input's scale and zero point).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PairFeatures {
    /// Input node tensor.
    pub input: u8,
    /// Output pair tensor.
    pub output: u8,
    /// How a pair's two rows are combined.
    pub mode: PairMode,
}

/// How [`PairFeatures`] combines the rows of a pair (helper `link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PairMode {
    /// `z_s ⊙ z_t`, requantized.
    Hadamard {
        /// Q31 rescale `s_z² / s_out`.
        mult: i32,
        /// Its exponent.
        shift: i32,
    },
    /// `[z_s, z_t]`.
    Concat,
}

impl OpDef for InnerProduct {
    fn name(&self) -> &'static str {
        "inner_product"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        Check::ok(i.kind == TensorKind::Node && o.kind == TensorKind::Pair && o.channels == 1)
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        inner_product(env.ctx, env.view(self.input)?, self.mult, self.shift, out)
    }
}

impl OpDef for PairFeatures {
    fn name(&self) -> &'static str {
        match self.mode {
            PairMode::Hadamard { .. } => "pair_hadamard",
            PairMode::Concat => "pair_concat",
        }
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let shapes = match self.mode {
            PairMode::Hadamard { .. } => o.channels == i.channels,
            PairMode::Concat => {
                usize::from(o.channels) == 2 * usize::from(i.channels)
                    && o.zero_point == i.zero_point
                    && o.scale == i.scale
            }
        };
        Check::ok(i.kind == TensorKind::Node && o.kind == TensorKind::Pair && shapes)
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        pair_features(env.ctx, env.view(self.input)?, self.mode, out)
    }
}
