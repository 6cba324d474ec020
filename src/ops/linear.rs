//! `Linear` — PyG/PyTorch `nn.Linear` (`y = x Wᵀ + b`, BatchNorm folded in by
//! the host tool) on node or graph rows:
//! `acc[c] = Σ_k W[c,k]·(x_k − zp_x) + bias[c]`, then the fused activation and
//! requantization to the output tensor.

use super::{region_bytes, zip_rows, In, Out, Scratch};
use crate::error::Result;
use crate::format::Activation;
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;

/// Scratch taken by [`run`]: the weight sums and one accumulator row.
pub fn scratch_bytes(_in_ch: usize, out_ch: usize) -> usize {
    region_bytes::<i32>(out_ch).saturating_mul(2)
}

/// Runs the layer on every row of `x`. `w` is `[out_ch, in_ch]` (int8 or int4), `params` the
/// channel records.
pub fn run(
    w: Matrix<'_>,
    params: &[u8],
    act: Activation,
    x: In<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let sums = scratch.take::<i32>(out.channels)?;
    let acc = scratch.take::<i32>(out.channels)?;
    w.weight_sums(x.channels, sums);
    for (xr, or) in zip_rows(x.data, x.channels, out.data, out.channels) {
        w.matvec(x.channels, xr, x.zp, sums, acc);
        requant::requantize_row(acc, params, act, out.zp, or);
    }
    Ok(())
}
