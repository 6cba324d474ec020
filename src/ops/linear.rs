//! `Linear` — PyG/PyTorch `nn.Linear` (`y = x Wᵀ + b`, BatchNorm folded in by
//! the host tool) on node or graph rows:
//! `acc[c] = Σ_k W[c,k]·(x_k − zp_x) + bias[c]`, then the fused activation and
//! requantization to the output tensor.

use super::{region_bytes, rows_mut, Out, Scratch, Src};
use crate::error::Result;
use crate::format::Activation;
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;

/// Scratch taken by [`run`]: the weight sums and one accumulator row.
pub fn scratch_bytes(_in_ch: usize, out_ch: usize) -> usize {
    region_bytes::<i32>(out_ch).saturating_mul(2)
}

/// Runs the layer on every row of `x` (dense, or the sparse model input).
/// `w` is `[out_ch, in_ch]` (int8 or int4), `params` the channel records.
pub fn run(
    w: Matrix<'_>,
    params: &[u8],
    act: Activation,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let sums = scratch.take::<i32>(out.channels)?;
    let acc = scratch.take::<i32>(out.channels)?;
    x.weight_sums(w, sums);
    for (i, or) in rows_mut(out.data, out.channels).enumerate().take(x.rows()) {
        x.matvec_row(w, i, sums, acc);
        requant::requantize_row(acc, params, act, out.zp, or);
    }
    Ok(())
}
