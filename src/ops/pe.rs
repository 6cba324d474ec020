//! `RandomWalkPe` — the random-walk structural encoding of graph
//! transformers (RWSE; PyG's `AddRandomWalkPE(walk_length)`), computed on the
//! device from the graph alone: for every node `s` and `k = 1..=K` the
//! probability that a random walk from `s` is back at `s` after `k` steps,
//! with the walk matrix `P[i, j] = 1/outdeg(i)` for an edge `i → j`.
//!
//! Integer form (exact semantics on [`RandomWalkPe`]): probabilities in Q30,
//! one walk per start node over two node vectors, `K` passes over the edges
//! per start, one requantization per value. Time `O(N·K·E)`: meant for the
//! graphs of a few hundred nodes a microcontroller holds.

use serde::{Deserialize, Serialize};

use super::{rows_mut, Check, Ctx, Env, OpDef, Out, Scratch, Shapes, Tensors};
use crate::error::Result;
use crate::format::TensorKind;
use crate::kernels::requant;

/// `1.0` in the Q30 probabilities.
pub const ONE_Q30: u32 = 1 << 30;

/// Random-walk return probabilities of every node (node rows, `K = steps`
/// channels; `input` only fixes the node count, its values are not read).
///
/// 1. `d_i` = the number of edges leaving `i` (at least 1), `r_i =
///    floor((2^30 + d_i/2) / d_i)`.
/// 2. For every start `s`: `p = e_s` in Q30 (`p_s = 2^30`); for `k = 1..=K`:
///    `p'_j = Σ_{i→j} floor((p_i·r_i + 2^29) / 2^30)` (u64, saturated to u32;
///    a duplicated edge counts once here, as in PyG's dense matrix, but
///    every copy counts in `d_i`), `p = p'`,
///    `out[s, k−1] = saturate_i8(requant(p_s, mult, shift) + zp_out)` with the
///    Q31 rescale `1 / (2^30·s_out)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RandomWalkPe {
    /// A node tensor (only its row count is used).
    pub input: u8,
    /// Output: node rows, `steps` channels.
    pub output: u8,
    /// Walk length `K` (≥ 1).
    pub steps: u8,
    /// Q31 rescale of a Q30 probability to the output scale.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

/// Runs the walks.
#[inline(never)]
fn run(ctx: &Ctx<'_>, p: &RandomWalkPe, out: Out<'_>, mut sc: Scratch<'_>) -> Result<()> {
    let n = ctx.nodes();
    let k = usize::from(p.steps);
    let inv = sc.take::<u32>(n)?;
    let cur = sc.take::<u32>(n)?;
    let next = sc.take::<u32>(n)?;
    // Whether node j has a duplicated in-edge (then each source counts once).
    let dup = sc.take::<u8>(n)?;
    for (j, d) in dup.iter_mut().enumerate() {
        let srcs = ctx.csr.neighbors(j);
        let twice = srcs
            .iter()
            .enumerate()
            .any(|(at, i)| srcs.get(..at).is_some_and(|b| b.contains(i)));
        *d = u8::from(twice);
    }
    inv.fill(0);
    for &i in ctx.csr.sources {
        if let Some(d) = inv.get_mut(usize::from(i)) {
            *d = d.saturating_add(1);
        }
    }
    for d in inv.iter_mut() {
        let deg = (*d).max(1);
        *d = (ONE_Q30 + deg / 2).checked_div(deg).unwrap_or(ONE_Q30);
    }
    for (s, orow) in rows_mut(out.data, k).enumerate() {
        cur.fill(0);
        if let Some(c) = cur.get_mut(s) {
            *c = ONE_Q30;
        }
        for o in orow.iter_mut() {
            next.fill(0);
            for (j, (nj, &dj)) in next.iter_mut().zip(dup.iter()).enumerate() {
                let mut acc = 0u64;
                let srcs = ctx.csr.neighbors(j);
                for (at, &i) in srcs.iter().enumerate() {
                    let pi = cur.get(usize::from(i)).copied().unwrap_or(0);
                    // A node the walk has not reached adds exactly 0: skipped
                    // (most nodes of a batch, and before the walk spreads).
                    // One matrix entry per distinct edge, as PyG's dense path.
                    if pi == 0
                        || (dj != 0 && srcs.get(..at).is_some_and(|before| before.contains(&i)))
                    {
                        continue;
                    }
                    let ri = inv.get(usize::from(i)).copied().unwrap_or(0);
                    let step = u64::from(pi) * u64::from(ri);
                    acc = acc.saturating_add((step + (1 << 29)) >> 30);
                }
                *nj = u32::try_from(acc).unwrap_or(u32::MAX);
            }
            for (c, &v) in cur.iter_mut().zip(next.iter()) {
                *c = v;
            }
            let ps = cur.get(s).copied().unwrap_or(0);
            let v = i32::try_from(ps).unwrap_or(i32::MAX);
            *o = requant::requantize(v, p.mult, p.shift, out.zp);
        }
    }
    Ok(())
}

impl OpDef for RandomWalkPe {
    fn name(&self) -> &'static str {
        "random_walk_pe"
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
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && self.steps >= 1
                && usize::from(o.channels) == usize::from(self.steps)
                && (-32..=31).contains(&self.shift),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        let mut t = super::ScratchSize::default();
        t.add::<u32>(s.nodes)
            .add::<u32>(s.nodes)
            .add::<u32>(s.nodes)
            .add::<u8>(s.nodes);
        t.0
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        run(env.ctx, self, out, scratch)
    }
}
