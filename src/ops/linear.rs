//! `Linear` — PyG/PyTorch `nn.Linear` (`y = x Wᵀ + b`, BatchNorm folded in by
//! the host tool) on node or graph rows:
//! `acc[c] = Σ_k W[c,k]·(x_k − zp_x) + bias[c]`, then the fused activation and
//! requantization to the output tensor.

use serde::{Deserialize, Serialize};

use super::{
    is_i2, is_i4, out_row_bytes, region_bytes, requant_rows, rows_mut, Check, Dirty, Env, In,
    OpDef, Out, Scratch, Shapes, Src, Tensors,
};
use crate::error::Result;
use crate::format::small::Reader;
use crate::format::{Activation, ChannelParams, Section};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;

/// Rows per block of the dense path: [`run`] hands [`BLOCK`] rows at a time
/// to the all-nodes kernel ([`Matrix::matmul`]; four nodes per pass on
/// Cortex-M with DSP), so its accumulators are `[BLOCK, out_ch]`.
pub const BLOCK: usize = 4;

/// Scratch taken by [`run`]: the weight sums, a `[BLOCK, out_ch]`
/// accumulator block and the prepared channel records
/// ([`requant::prepare`], 20 bytes per channel).
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
    let prep = scratch.take_records(oc)?;
    let rq = requant::prepare(params, oc, act, out.zp, prep);
    x.weight_sums(w, sums);
    let rows = x.rows();
    // Bytes of an output row (int4 output: packed, `act-i4`).
    let packed = out.is_packed();
    let orb = out_row_bytes(oc, packed);
    let mut blocks = out.data.chunks_mut(orb.saturating_mul(BLOCK).max(1));
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
        if cfg!(feature = "act-i4") && packed {
            let n = k.saturating_mul(oc);
            requant_rows(&rq, acc.get(..n).unwrap_or(&[]), ob, oc, true);
        } else if cfg!(feature = "kernels-small") {
            // Row by row (the smallest code). Paired by `next()`, not `zip`:
            // Zip's length computation divides by the chunk sizes out of line
            // (a panic path at opt-level "s").
            let (mut os, mut accs) = (rows_mut(ob, oc), acc.chunks_exact(oc.max(1)));
            for _ in 0..k {
                let (Some(or), Some(a)) = (os.next(), accs.next()) else {
                    break;
                };
                rq.row(a, or);
            }
        } else {
            let n = k.saturating_mul(oc);
            if let (Some(o), Some(a)) = (ob.get_mut(..n), acc.get(..n)) {
                rq.rows(a, o);
            }
        }
        i += k;
    }
    Ok(())
}

/// [`run`] for the rows `dirty` asks for only (an incremental run,
/// `crate::Session::update`), row by row: the same kernels' results, the
/// other output rows untouched. Takes the same scratch as [`run`].
// Not inlined into `ops::run`: only incremental runs take this path, and
// its frame stays out of every other run's (docs/guarantees.md, the stack bound).
#[inline(never)]
pub fn run_rows(
    w: Matrix<'_>,
    params: &[u8],
    act: Activation,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
    dirty: Dirty<'_>,
) -> Result<()> {
    let oc = out.channels;
    let sums = scratch.take::<i32>(oc)?;
    let acc = scratch.take::<i32>(oc.saturating_mul(BLOCK))?;
    let prep = scratch.take_records(oc)?;
    let rq = requant::prepare(params, oc, act, out.zp, prep);
    x.weight_sums(w, sums);
    let packed = out.is_packed();
    let orb = out_row_bytes(oc, packed).max(1);
    let a = acc.get_mut(..oc).unwrap_or(&mut []);
    for (i, or) in out.data.chunks_exact_mut(orb).enumerate().take(x.rows()) {
        if dirty.row(i) {
            x.matvec_row(w, i, sums, a);
            requant_rows(&rq, a, or, oc, packed);
        }
    }
    Ok(())
}

/// Rows `i..i + k` of a dense tensor, if all present.
fn dense_block<'a>(x: In<'a>, i: usize, k: usize) -> Option<&'a [i8]> {
    let start = i.checked_mul(x.channels)?;
    let end = i.checked_add(k)?.checked_mul(x.channels)?;
    x.data.get(start..end)
}

/// Fully connected layer (BatchNorm folded in) on node or graph rows:
/// `acc[c] = Σ_k W[c,k]·(x_k − zp_x) + bias[c]`, then activation and
/// requantization. Input and output have the same [`TensorKind`](crate::format::TensorKind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Linear {
    /// Input tensor.
    pub input: u8,
    /// Output tensor (`out_ch` channels).
    pub output: u8,
    /// int8 weights `[out_ch, in_ch]`.
    pub weights: Section,
    /// [`ChannelParams`] for `out_ch` channels.
    pub params: ChannelParams,
    /// Fused activation.
    pub act: Activation,
}

impl Linear {
    /// Decodes the fields (after the tag) with the small metadata reader.
    pub(crate) fn read_small(r: &mut Reader<'_>) -> Option<Self> {
        Some(Linear {
            input: r.byte()?,
            output: r.byte()?,
            weights: r.section()?,
            params: r.section()?,
            act: r.activation()?,
        })
    }
}

impl OpDef for Linear {
    /// Row `i` from input rows `i` only.
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        "linear"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn has_i4_weights(&self) -> bool {
        is_i4(&self.weights)
    }
    fn has_i2_weights(&self) -> bool {
        is_i2(&self.weights)
    }
    fn takes_sparse_input(&self) -> bool {
        true
    }
    fn takes_i4(&self) -> bool {
        cfg!(feature = "act-i4")
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        Check::ok(
            i.kind == o.kind
                && c.weights_ok(self.weights, co, ci)
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        scratch_bytes(s.ch(self.input), s.ch(self.output))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let (w, params, x) = (
            env.data.matrix(self.weights),
            env.data.bytes(self.params),
            env.src(self.input)?,
        );
        let d = env.ctx.dirty();
        if d.by_rows(d.rows, out.rows) {
            run_rows(w, params, self.act, x, out, scratch, d)
        } else {
            run(w, params, self.act, x, out, scratch)
        }
    }
}
