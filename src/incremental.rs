//! Incremental runs ([`crate::Session::update`]): when only some nodes'
//! features change, only the rows that can depend on them are recomputed.
//!
//! Every tensor keeps its own slot between runs (the session's retained
//! plan), so the rows an op does not recompute still hold the previous
//! run's values. Which rows an op must recompute follows from
//! [`crate::ops::OpDef::hops`]: a tensor's *level* is how many edges its
//! rows reach back towards the input (0 for the input, an op's own hops
//! added to the largest level of its inputs, [`ALL`] after an op whose rows
//! depend on every row or for rows that are not nodes), and node `i`'s row
//! of a tensor of level `L` must be recomputed when `i` is at most `L`
//! edges downstream of a changed node. Every other row reads only
//! unchanged rows, so its previous value is still exact: the output bytes
//! equal a full run's.

use crate::format::TensorKind;
use crate::kernels::aggregate::Csr;
use crate::model::Model;
use crate::ops;

/// The level of a tensor every row of which may have changed.
pub const ALL: u8 = u8::MAX;

/// Writes the level of every tensor into `level` (one byte per tensor id,
/// [`crate::MAX_TENSORS`] of them: in the arena, not on the stack) and returns the
/// largest level below [`ALL`] (how far [`fill_dist`] must look). The model
/// input, the edge features and the carried states are level 0 (the edge
/// features and states are not node rows that change: they keep level 0 so
/// that they never widen their readers' levels).
pub fn levels(model: &Model<'_>, level: &mut [u8]) -> u8 {
    level.fill(0);
    let mut reach = 0u8;
    for op in model.ops() {
        let mut input = 0u8;
        ops::inputs(&op, &mut |t| {
            input = input.max(level.get(usize::from(t)).copied().unwrap_or(ALL));
        });
        let node_rows = model
            .tensors()
            .get(usize::from(op.output()))
            .is_some_and(|d| d.kind == TensorKind::Node);
        let out = match ops::hops(&op) {
            Some(h) if node_rows && input < ALL => input.saturating_add(h),
            _ => ALL,
        };
        if out < ALL {
            reach = reach.max(out);
        }
        if let Some(l) = level.get_mut(usize::from(op.output())) {
            *l = out;
        }
    }
    reach
}

/// `dist[i]`: the number of edges (source → target) from the nearest node
/// of `changed` to node `i`, exact up to `reach`; [`ALL`] for nodes farther
/// than that. `changed` holds node indices below `dist.len()` (checked by
/// the caller).
pub fn fill_dist(csr: &Csr<'_>, changed: &[u16], dist: &mut [u8], reach: u8) {
    dist.fill(ALL);
    for &v in changed {
        if let Some(d) = dist.get_mut(usize::from(v)) {
            *d = 0;
        }
    }
    // Rounds of relaxation in place: after round r every node within r
    // edges has its exact distance (in-place updates only find paths
    // sooner, never shorter ones than exist).
    for _ in 0..reach {
        let mut moved = false;
        for i in 0..dist.len() {
            let mut best = dist.get(i).copied().unwrap_or(ALL);
            for &j in csr.neighbors(i) {
                let dj = dist.get(usize::from(j)).copied().unwrap_or(ALL);
                best = best.min(dj.saturating_add(1));
            }
            if let Some(d) = dist.get_mut(i) {
                if best < *d {
                    *d = best;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
}

/// The number of rows to compute at `level` (`dist ≤ level`).
pub fn count_rows(dist: &[u8], level: u8) -> usize {
    dist.iter().filter(|&&d| d <= level).count()
}

/// `need[j]` nonzero: node `j` is a row to compute at `level`
/// (`dist[j] ≤ level`) or an in-neighbour of one. Returns how many.
pub fn fill_need(csr: &Csr<'_>, dist: &[u8], level: u8, need: &mut [u8]) -> usize {
    need.fill(0);
    let mut count = 0usize;
    let mut mark = |m: Option<&mut u8>| {
        if let Some(m) = m {
            count += usize::from(*m == 0);
            *m = 1;
        }
    };
    for (i, &d) in dist.iter().enumerate() {
        if d > level {
            continue;
        }
        mark(need.get_mut(i));
        for &j in csr.neighbors(i) {
            mark(need.get_mut(usize::from(j)));
        }
    }
    count
}
