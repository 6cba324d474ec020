//! Element-wise ops: `Add` (residual `x + y`), `Concat` (jumping-knowledge
//! `torch.cat(xs, dim=-1)`) and `Act` (standalone `relu` / `leaky_relu`), all
//! on int8 tensors of one kind. Integer forms in [`crate::format::Op`]: inputs
//! are rescaled to the output's scale with Q16 multipliers and
//! `round_shift(·, 16)` (half away from zero), then saturated to int8.

use super::{rows, rows_mut, In, Out};
use crate::error::Result;
use crate::format::Activation;
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
    for (xr, or) in rows(part.data, pc).zip(rows_mut(out.data, out.channels)) {
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
