//! `Linear` — PyG/PyTorch `nn.Linear` (`y = x Wᵀ + b`, BatchNorm folded in by
//! the host tool) on node or graph rows:
//! `acc[c] = Σ_k W[c,k]·(x_k − zp_x) + bias[c]`, then the fused activation and
//! requantization to the output tensor.

use super::{region_bytes, rows_mut, In, Out, Scratch, Src};
use crate::error::Result;
use crate::format::Activation;
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;

/// Rows per block of the dense path: [`run`] hands [`BLOCK`] rows at a time
/// to the all-nodes kernel ([`Matrix::matmul`]; four nodes per pass on
/// Cortex-M with DSP), so its accumulators are `[BLOCK, out_ch]`.
pub const BLOCK: usize = 4;

/// Scratch taken by [`run`]: the weight sums, a `[BLOCK, out_ch]`
/// accumulator block and the prepared channel records
/// ([`requant::prepare`], 16 bytes per channel).
pub fn scratch_bytes(_in_ch: usize, out_ch: usize) -> usize {
    region_bytes::<i32>(out_ch)
        .saturating_add(region_bytes::<requant::Prepared>(out_ch))
        .saturating_add(region_bytes::<i32>(out_ch.saturating_mul(BLOCK)))
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
    let oc = out.channels;
    let sums = scratch.take::<i32>(oc)?;
    let acc = scratch.take::<i32>(oc.saturating_mul(BLOCK))?;
    let prep = scratch.take::<requant::Prepared>(oc)?;
    let np = requant::prepare(params, oc, prep);
    let prep = prep.get(..np).unwrap_or(&[]);
    x.weight_sums(w, sums);
    let rows = x.rows();
    let mut blocks = out.data.chunks_mut(oc.saturating_mul(BLOCK).max(1));
    let mut i = 0usize;
    while i < rows {
        let Some(ob) = blocks.next() else { break };
        let k = (rows - i).min(BLOCK);
        let block = match x {
            // `kernels-small`: row by row (the same kernel results, less code).
            Src::Dense(d) if !cfg!(feature = "kernels-small") => {
                dense_block(d, i, k).map(|xb| (d, xb))
            }
            _ => None,
        };
        if let Some((d, xb)) = block {
            // Whole dense rows present: one all-nodes kernel call per block.
            let accb = acc.get_mut(..k.saturating_mul(oc)).unwrap_or(&mut []);
            w.matmul(d.channels, xb, d.zp, sums, accb);
        } else {
            // The sparse input (and rows missing from a short dense tensor):
            // row by row.
            for (r, a) in acc.chunks_exact_mut(oc.max(1)).take(k).enumerate() {
                x.matvec_row(w, i + r, sums, a);
            }
        }
        // Paired by `next()`, not `zip`: Zip's length computation divides by
        // the chunk sizes out of line (a panic path at opt-level "s").
        let (mut os, mut accs) = (rows_mut(ob, oc), acc.chunks_exact(oc.max(1)));
        for _ in 0..k {
            let (Some(or), Some(a)) = (os.next(), accs.next()) else {
                break;
            };
            requant::requantize_row_prepared(a, prep, act, out.zp, or);
        }
        i += k;
    }
    Ok(())
}

/// Rows `i..i + k` of a dense tensor, if all present.
fn dense_block<'a>(x: In<'a>, i: usize, k: usize) -> Option<&'a [i8]> {
    let start = i.checked_mul(x.channels)?;
    let end = i.checked_add(k)?.checked_mul(x.channels)?;
    x.data.get(start..end)
}
