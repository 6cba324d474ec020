//! Link-prediction pair decoders (helper `link`): PyG's
//! `InnerProductDecoder` (GAE/VGAE, `z_s · z_t`, without the sigmoid) as
//! [`inner_product`], and the pair representation of an MLP decoder
//! (`z_s ⊙ z_t` or `[z_s, z_t]`, as in PyG's `link_pred` examples) as
//! [`pair_features`]. Both read a node tensor and write a pair tensor, one row
//! per pair of [`Ctx::pairs`]; the exact integer semantics are documented on
//! [`crate::format::Op::InnerProduct`] and [`crate::format::Op::PairFeatures`].
//! Neither takes scratch.

use super::{rows_mut, Ctx, In, Out};
use crate::error::{Error, Result};
use crate::format::PairMode;
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
