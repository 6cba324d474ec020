//! `Propagate` — decoupled propagation over the GCN-normalised adjacency
//! `Â = D^-½ (A + I) D^-½` (PyG `gcn_norm`):
//!
//! * PyG `APPNP(K, alpha)`: `h⁰ = x`, `h^{k+1} = (1 − α)·Â·h^k + α·h⁰`, `K`
//!   times (no weights, no bias);
//! * PyG `SGConv(K)`: `lin(Â^K x)`, computed as `Â^K (W x) + b` (the two
//!   linear maps commute: `W` acts on channels, `Â` on nodes), so the
//!   propagation runs on `out_ch` channels instead of `in_ch`; `alpha = 0`;
//! * PyG `GCN2Conv`: `((1 − α)·Â·x + α·x⁰)·M` with `M = (1 − β)·I + β·W`,
//!   computed as `(1 − α)·Â·(x M) + α·(x⁰ M₀)` (`K = 1`), `M` and `M₀`
//!   (`= M` with shared weights) folded on the host, quantized with one
//!   accumulator scale per channel for both;
//! * PyG `TAGConv(K)`: `Σ_{k=0..K} W_k Â^k x + b` (gcn_norm without
//!   self-loops), by Horner's rule `h = W_K x`, then `K` times
//!   `h = Â h + W_{k} x` for `k = K−1 … 0` (`hops`); `W_k x` is recomputed
//!   per node and step from the input instead of stored.
//!
//! Exact integer semantics on [`crate::format::Op::Propagate`]; the
//! normalisation (self-loops, degrees, Q24 `dinv`, Q24 coefficients) is
//! [`crate::ops::gcn`]'s, shared, so `Â` is bit-identical to the one of
//! `GcnConv`.
//!
//! **Precision of the intermediate `h^k`.** The `K` intermediate values never
//! go back to int8: they stay in i32 in the arena (two `nodes × out_ch` i32
//! buffers used in turn, plus `h⁰` for SGConv-style ops with `α ≠ 0`), with
//! [`PROPAGATE_FRAC_BITS`] extra fractional bits when there are no weights
//! (an int8 value `x − zp` becomes `(x − zp)·2^16`). One requantization at the
//! end, as for every other op. Requantizing to int8 after every step (what a
//! chain of `K` GCN-like int8 ops would do) adds `K` rounding errors and
//! `K` calibrated ranges; `docs/propagation.md` has the measured numbers.
//!
//! Sums of `coef · h` saturate in i64 (in CSR order), each step's result
//! saturates to i32: defined results on every input, no overflow panics.

use super::gcn::{self, GcnFlags};
use serde::{Deserialize, Serialize};

use super::{
    is_i2, is_i4, region_bytes, rows_mut, Check, Ctx, Env, OpDef, Out, Scratch, Shapes, Src,
    Tensors,
};
use crate::error::{Error, Result};
use crate::format::{
    Activation, ChannelParams, Section, TensorKind, PROPAGATE_ALPHA_ONE, PROPAGATE_FRAC_BITS,
};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;
use crate::quant::round_shift_i64_to_i32;

/// The op's parameters besides its main input.
#[derive(Debug, Clone, Copy)]
pub struct PropParams<'a> {
    /// Steps `K`.
    pub k: u8,
    /// `α` in Q30.
    pub alpha_q30: i32,
    /// Weights (`None`: identity, APPNP).
    pub w: Option<Matrix<'a>>,
    /// GCN2Conv's `h⁰ = W0·(x0 − zp)`: the weights and `x0` (`None`: `h⁰` is
    /// the propagated input itself).
    pub w0: Option<(Matrix<'a>, Src<'a>)>,
    /// [`crate::format::ChannelParams`] bytes.
    pub params: &'a [u8],
    /// Fused activation.
    pub act: Activation,
    /// TAGConv: `w` holds `K + 1` stacked matrices (Horner steps).
    pub hops: bool,
    /// `Â`'s flags.
    pub flags: GcnFlags,
    /// ChebConv ([`crate::ops::cheb`]): `Â = D^-½ A D^-½` of the graph
    /// without its self-loops (dropped from degrees and sums), degrees
    /// summed over the *source* index (PyG `get_laplacian`) instead of
    /// `gcn_norm`'s target index; then `add_self_loops` and `improved` must
    /// be false and `normalize` true.
    pub laplacian: bool,
}

impl<'a> PropParams<'a> {
    /// ChebConv's parameters ([`crate::ops::cheb`]): Horner over `K` stacked
    /// matrices `w` (`K − 1` steps, `k_mats ≥ 1`), over `Â` of the graph
    /// without self-loops with degrees over the source index.
    pub fn laplacian(
        k_mats: u8,
        w: Option<Matrix<'a>>,
        params: &'a [u8],
        act: Activation,
        edge_weight: bool,
    ) -> Self {
        PropParams {
            k: k_mats.saturating_sub(1),
            alpha_q30: 0,
            w,
            w0: None,
            params,
            act,
            hops: true,
            flags: GcnFlags {
                improved: false,
                add_self_loops: false,
                normalize: true,
                edge_weight,
            },
            laplacian: true,
        }
    }
}

/// Scratch taken by [`run`]: weight sums (`out_ch` i32), two `h` buffers
/// (`nodes × out_ch` i32 each), `h⁰` (`nodes × out_ch` i32, only with weights
/// and `α ≠ 0`: without weights `h⁰` is recomputed from the input), `dinv`
/// (`nodes` u64), an i64 accumulator row, and with `hops` one i32 row for
/// `W_k x_i`.
pub fn scratch_bytes(nodes: usize, out_ch: usize, weights: bool, alpha: bool, hops: bool) -> usize {
    let plane = region_bytes::<i32>(nodes.saturating_mul(out_ch));
    let planes = if weights && alpha { 3 } else { 2 };
    let hop_row = if hops { region_bytes::<i32>(out_ch) } else { 0 };
    region_bytes::<i32>(out_ch)
        .saturating_add(plane.saturating_mul(planes))
        .saturating_add(region_bytes::<u64>(nodes))
        .saturating_add(region_bytes::<i64>(out_ch))
        .saturating_add(hop_row)
}

/// Rows `k·out_ch .. (k+1)·out_ch` of a stacked `[(K+1)·out_ch, in_ch]`
/// matrix (empty if out of range).
fn block(w: Matrix<'_>, in_ch: usize, out_ch: usize, k: usize) -> Matrix<'_> {
    let rows = |rb: usize| {
        let len = out_ch.saturating_mul(rb);
        let start = k.saturating_mul(len);
        start..start.saturating_add(len)
    };
    match w {
        Matrix::I8(w) => Matrix::I8(w.get(rows(in_ch)).unwrap_or(&[])),
        Matrix::I4(w) => Matrix::I4(w.get(rows(in_ch.div_ceil(2))).unwrap_or(&[])),
        #[cfg(feature = "weights-i2")]
        Matrix::I2(w) => Matrix::I2(w.get(rows(in_ch.div_ceil(4))).unwrap_or(&[])),
    }
}

/// TAGConv's per-step addend `W_k x_i`: the matrix block, its weight sums,
/// the input, a row buffer.
struct Hop<'s, 'w> {
    w: Matrix<'w>,
    sums: &'s [i32],
    x: Src<'w>,
    row: &'s mut [i32],
}

/// `acc[c] = sat(acc[c] + coef · h_j[c])` over row `j` of `h` (`acc.len()`
/// channels; a missing row adds nothing).
fn accumulate(acc: &mut [i64], coef: i32, h: &[i32], j: usize) {
    let ch = acc.len();
    let start = j.saturating_mul(ch);
    let coef = i64::from(coef);
    if let Some(row) = h.get(start..start.saturating_add(ch)) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a = a.saturating_add(coef * i64::from(v));
        }
    }
}

/// `h⁰` of row `i`, channel `c`: from `h0` when stored, else
/// `(x_ic − zp)·2^PROPAGATE_FRAC_BITS` from the dense input.
#[inline]
fn h0_at(h0: Option<&[i32]>, x: Option<&super::In<'_>>, ch: usize, i: usize, c: usize) -> i32 {
    let at = i.saturating_mul(ch).saturating_add(c);
    match (h0, x) {
        (Some(h0), _) => h0.get(at).copied().unwrap_or(0),
        (None, Some(x)) => x.data.get(at).map_or(0, |&v| {
            (i32::from(v) - i32::from(x.zp)) << PROPAGATE_FRAC_BITS
        }),
        (None, None) => 0,
    }
}

/// One propagation step: `next = round((1 − α)·Â·cur) + α·h⁰` (see the op's
/// semantics), `dinv` from [`gcn::dinv_q24`].
#[allow(clippy::too_many_arguments)]
fn step(
    ctx: &Ctx<'_>,
    flags: GcnFlags,
    alpha_q30: i32,
    dinv: &[u64],
    cur: &[i32],
    next: &mut [i32],
    h0: Option<&[i32]>,
    x: Option<&super::In<'_>>,
    acc: &mut [i64],
    mut hop: Option<Hop<'_, '_>>,
    laplacian: bool,
) -> Result<()> {
    let ch = acc.len();
    let overflow = Error::Overflow { op: ctx.op };
    let keep = i64::from(PROPAGATE_ALPHA_ONE - alpha_q30);
    let alpha = i64::from(alpha_q30);
    for (i, nr) in next
        .chunks_exact_mut(ch.max(1))
        .enumerate()
        .take(ctx.nodes())
    {
        acc.fill(0);
        let di = dinv.get(i).copied().unwrap_or(0);
        let mut loop_w = gcn::fill_w(flags);
        for (j, w) in gcn::in_edges(ctx, i, flags) {
            if flags.add_self_loops && j == i {
                loop_w = w;
                continue;
            }
            if laplacian && j == i {
                continue;
            }
            let dj = dinv.get(j).copied().unwrap_or(0);
            let c = gcn::coef(flags.normalize, dj, w, di).ok_or(overflow)?;
            accumulate(acc, c, cur, j);
        }
        if flags.add_self_loops {
            let c = gcn::coef(flags.normalize, di, loop_w, di).ok_or(overflow)?;
            accumulate(acc, c, cur, i);
        }
        if let Some(h) = hop.as_mut() {
            h.x.matvec_row(h.w, i, h.sums, h.row);
            for (n, (&a, &r)) in nr.iter_mut().zip(acc.iter().zip(h.row.iter())) {
                *n = round_shift_i64_to_i32(a, 24).saturating_add(r);
            }
            continue;
        }
        for (c, (n, &a)) in nr.iter_mut().zip(acc.iter()).enumerate() {
            let t = i64::from(round_shift_i64_to_i32(a, 24));
            let v = if alpha == 0 {
                t * keep
            } else {
                t * keep + i64::from(h0_at(h0, x, ch, i, c)) * alpha
            };
            *n = round_shift_i64_to_i32(v, 30);
        }
    }
    Ok(())
}

/// ChebConv's `dinv`: `deg_j = Σ_{j→i, i ≠ j} w_ji` (Q16, u64, summed over
/// the source of every edge that is not a self-loop, one pass over the
/// in-edges of all nodes), then `dinv_j = dinv_q24(deg_j)`.
fn source_degrees(ctx: &Ctx<'_>, flags: GcnFlags, dinv: &mut [u64]) {
    dinv.fill(0);
    for i in 0..ctx.nodes() {
        for (j, w) in gcn::in_edges(ctx, i, flags) {
            if j == i {
                continue;
            }
            if let Some(d) = dinv.get_mut(j) {
                *d = d.saturating_add(u64::from(w));
            }
        }
    }
    for d in dinv.iter_mut() {
        *d = gcn::dinv_q24(*d);
    }
}

/// Runs the op on `x` (dense, or the sparse model input when there are weights).
pub fn run(
    ctx: &Ctx<'_>,
    p: PropParams<'_>,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let n = ctx.nodes();
    let oc = out.channels;
    let bad = Error::InvalidOp { op: ctx.op };
    if !(0..=PROPAGATE_ALPHA_ONE).contains(&p.alpha_q30) {
        return Err(bad);
    }
    let plane = n.saturating_mul(oc);
    let sums = scratch.take::<i32>(oc)?;
    let mut cur = scratch.take::<i32>(plane)?;
    let mut next = scratch.take::<i32>(plane)?;
    let mut stored_h0 = if p.w.is_some() && p.alpha_q30 != 0 {
        Some(scratch.take::<i32>(plane)?)
    } else {
        None
    };
    let dinv = scratch.take::<u64>(n)?;
    let acc = scratch.take::<i64>(oc)?;
    let hop_row = if p.hops {
        Some(scratch.take::<i32>(oc)?)
    } else {
        None
    };
    let k = usize::from(p.k);
    // With `hops`, `p = W_K x` (the last block).
    let w_start = match p.w {
        Some(w) if p.hops => {
            if p.alpha_q30 != 0 || p.w0.is_some() {
                return Err(bad);
            }
            Some(block(w, x.channels(), oc, k))
        }
        w => w,
    };

    // p (in `cur`) and h⁰.
    let dense = match (w_start, x) {
        (Some(w), x) => {
            x.weight_sums(w, sums);
            x.matmul(w, sums, cur);
            if let Some(h0) = stored_h0.as_deref_mut() {
                match p.w0 {
                    Some((w0, x0)) => {
                        x0.weight_sums(w0, sums);
                        x0.matmul(w0, sums, h0);
                    }
                    // Not `copy_from_slice` (its length-mismatch panic path
                    // survives optimisation; both are `plane` long).
                    None => h0.iter_mut().zip(cur.iter()).for_each(|(d, &s)| *d = s),
                }
            }
            None
        }
        (None, Src::Dense(x)) => {
            if x.channels != oc || p.w0.is_some() {
                return Err(bad);
            }
            for (h, &v) in cur.iter_mut().zip(x.data) {
                *h = (i32::from(v) - i32::from(x.zp)) << PROPAGATE_FRAC_BITS;
            }
            Some(x)
        }
        // (Never int4: `Propagate` does not take int4 tensors.)
        (None, _) => return Err(bad),
    };
    if p.laplacian && k > 0 {
        if p.flags.add_self_loops || p.flags.improved || !p.flags.normalize {
            return Err(bad);
        }
        source_degrees(ctx, p.flags, dinv);
    } else if p.flags.normalize && k > 0 {
        for (i, d) in dinv.iter_mut().enumerate() {
            *d = gcn::dinv_q24(gcn::degree(ctx, i, p.flags));
        }
    }
    let mut hop_row = hop_row;
    for s in 1..=k {
        let hop = match (p.w, hop_row.as_deref_mut()) {
            (Some(w), Some(row)) => {
                let wk = block(w, x.channels(), oc, k - s);
                x.weight_sums(wk, sums);
                Some(Hop {
                    w: wk,
                    sums,
                    x,
                    row,
                })
            }
            _ => None,
        };
        step(
            ctx,
            p.flags,
            p.alpha_q30,
            dinv,
            cur,
            next,
            stored_h0.as_deref(),
            dense.as_ref(),
            acc,
            hop,
            p.laplacian,
        )?;
        core::mem::swap(&mut cur, &mut next);
    }
    // Not `zip`: see [`super::zip_rows`] on `Zip`'s length computation.
    let mut hs = cur.chunks_exact(oc.max(1));
    for or in rows_mut(out.data, oc) {
        let Some(hr) = hs.next() else { break };
        requant::requantize_row(hr, p.params, p.act, out.zp, or);
    }
    Ok(())
}

/// Decoupled propagation over the GCN-normalised adjacency `Â` (PyG
/// `gcn_norm`), node tensors only: PyG `APPNP(K, alpha)` (no weights),
/// `SGConv(K)` (weights, `alpha_q30 = 0`), `GCN2Conv` (`K = 1`,
/// weights and `weights_0`, initial representation `x0`) and `TAGConv(K)`
/// (`hops`). See [`crate::ops::propagate`] and `docs/propagation.md`.
///
/// 1. `p_i[c]` (i32), the values propagated: without weights (`weights`
///    empty, `in_ch = out_ch`) `(x_ic − zp_x) · 2^PROPAGATE_FRAC_BITS`;
///    with weights `Σ_k W[c,k]·(x_ik − zp_x)`. The teleport term `h⁰`:
///    `p` itself when `weights_0` is empty (then `x0 = input`), else
///    `h⁰_i[c] = Σ_k W0[c,k]·(x0_ik − zp_x0)` (then `weights` is not empty;
///    the converter gives `W` and `W0` per-channel scales with
///    `s_x·s_w[c] = s_x0·s_w0[c]`, so the two add directly). Start `h = p`.
/// 2. `Â` is [`Op::GcnConv`](crate::ops::Op::GcnConv)'s: the same self-loop rules (`improved`,
///    `add_self_loops`), Q16 edge weights (`edge_weight`), Q24 `dinv` and
///    Q24 coefficients `coef_ji` (or `w << 8` without `normalize`). A
///    coefficient above `i32::MAX` is [`crate::Error::Overflow`].
/// 3. `k` times, for every node `i` (all from the previous step's `h`):
///    `t_i[c] = round_shift_i64_to_i32(Σ_{j→i} coef_ji · h_j[c], 24)` (the
///    sum saturating in i64, in CSR order: the in-edges of `i` as given,
///    then the self-loop), then
///    `h_i[c] = round_shift_i64_to_i32(t_i[c]·(2^30 − alpha_q30) + h⁰_i[c]·alpha_q30, 30)`
///    (i64 arithmetic, exact). With `hops` (TAGConv; then `alpha_q30 = 0`,
///    `weights_0` empty, `weights` holds `K + 1` matrices `W_0 … W_K` of
///    `[out_ch, in_ch]` stacked as `[(K+1)·out_ch, in_ch]`, one scale per
///    output channel for all): `p = W_K·(x − zp_x)` in step 1, and step
///    `s = 1 … K` computes `h_i[c] = sat_i32(t_i[c] + Σ_k W_{K−s}[c,k]·(x_ik − zp_x))`
///    instead (Horner: `h = Σ_k Â^k W_k x`).
/// 4. `acc_i[c] = h_i[c] + bias[c]` (saturating); activation; requantization
///    with `params` (the accumulator scale is `s_x / 2^PROPAGATE_FRAC_BITS`
///    without weights, `s_x · s_w[c]` with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Propagate {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// Number of propagation steps `K` (0 allowed: no propagation).
    pub k: u8,
    /// Teleport (restart) probability `α` in Q30, `0..=2^30`.
    pub alpha_q30: i32,
    /// int8/int4 weights `[out_ch, in_ch]` (SGConv's `lin`; GCN2Conv's
    /// `((1 − β)·I + β·W1)ᵀ`), or an empty section for none (APPNP; then
    /// `in_ch = out_ch`).
    pub weights: Section,
    /// The initial-representation node tensor of `h⁰` (GCN2Conv's `x_0`;
    /// `input` itself when `weights_0` is empty).
    pub x0: u8,
    /// int8/int4 weights `[out_ch, x0_ch]` applied to `x0` (GCN2Conv's
    /// `((1 − β)·I + β·W2)ᵀ`, `W2 = W1` with shared weights), or empty.
    pub weights_0: Section,
    /// [`ChannelParams`] for `out_ch` channels.
    pub params: ChannelParams,
    /// Fused activation.
    pub act: Activation,
    /// Self-loop fill weight 2 instead of 1.
    pub improved: bool,
    /// Add remaining self-loops.
    pub add_self_loops: bool,
    /// Symmetric degree normalisation.
    pub normalize: bool,
    /// Use the graph's edge weights.
    pub edge_weight: bool,
    /// TAGConv: `weights` holds `K + 1` stacked matrices (step 3′).
    pub hops: bool,
}

impl OpDef for Propagate {
    /// `k` rounds of propagation (the teleport input `x0` is read row by row).
    fn hops(&self) -> Option<u8> {
        Some(self.k)
    }
    fn name(&self) -> &'static str {
        if self.hops {
            "tag_conv"
        } else if self.weights_0.len != 0 {
            "gcn2_conv"
        } else if self.weights.len != 0 {
            "sg_conv"
        } else {
            "appnp"
        }
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input);
        if self.x0 != self.input {
            f(self.x0);
        }
    }
    fn has_i4_weights(&self) -> bool {
        is_i4(&self.weights) || is_i4(&self.weights_0)
    }
    fn has_i2_weights(&self) -> bool {
        is_i2(&self.weights) || is_i2(&self.weights_0)
    }
    fn uses_edge_weight(&self) -> bool {
        self.edge_weight
    }
    fn takes_sparse_input(&self) -> bool {
        // With a weight matrix (SGConv) the first step is a linear map.
        self.weights.len != 0
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let i0 = c.tensor(self.x0)?;
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        // TAGConv: K + 1 stacked matrices, no teleport, no x0.
        let rows = if self.hops {
            co.saturating_mul(usize::from(self.k) + 1)
        } else {
            co
        };
        let hops_ok =
            !self.hops || (self.alpha_q30 == 0 && self.weights.len != 0 && self.weights_0.len == 0);
        let x0_ok = if self.weights_0.len == 0 {
            self.x0 == self.input
        } else {
            self.weights.len != 0
                && i0.kind == TensorKind::Node
                && c.weights_ok(self.weights_0, co, usize::from(i0.channels))
        };
        let weights_ok = if self.weights.len == 0 {
            ci == co
        } else {
            c.weights_ok(self.weights, rows, ci)
        };
        Check::ok(
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && (0..=PROPAGATE_ALPHA_ONE).contains(&self.alpha_q30)
                && weights_ok
                && x0_ok
                && hops_ok
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        scratch_bytes(
            s.nodes,
            s.ch(self.output),
            self.weights.len != 0,
            self.alpha_q30 != 0,
            self.hops,
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let w0 = match env.data.matrix_opt(self.weights_0) {
            Some(w0) => Some((w0, env.src(self.x0)?)),
            None => None,
        };
        let p = PropParams {
            k: self.k,
            alpha_q30: self.alpha_q30,
            w: env.data.matrix_opt(self.weights),
            w0,
            params: env.data.bytes(self.params),
            act: self.act,
            hops: self.hops,
            flags: GcnFlags {
                improved: self.improved,
                add_self_loops: self.add_self_loops,
                normalize: self.normalize,
                edge_weight: self.edge_weight,
            },
            laplacian: false,
        };
        run(env.ctx, p, env.src(self.input)?, out, scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulate_saturates() {
        let mut acc = [i64::MAX - 1, i64::MIN + 1];
        accumulate(&mut acc, i32::MAX, &[i32::MAX, i32::MIN], 0);
        assert_eq!(acc, [i64::MAX, i64::MIN]);
        // A missing row adds nothing.
        let mut acc = [5i64, 6];
        accumulate(&mut acc, 3, &[1, 2], 1);
        assert_eq!(acc, [5, 6]);
    }

    #[test]
    fn h0_from_input() {
        let x = super::super::In {
            data: &[-128, 127, 0, 3],
            rows: 2,
            channels: 2,
            zp: -1,
        };
        assert_eq!(h0_at(None, Some(&x), 2, 0, 0), -127 << 16);
        assert_eq!(h0_at(None, Some(&x), 2, 0, 1), 128 << 16);
        assert_eq!(h0_at(None, Some(&x), 2, 1, 1), 4 << 16);
        assert_eq!(h0_at(Some(&[7, 8, 9, 10]), Some(&x), 2, 1, 0), 9);
        assert_eq!(h0_at(None, Some(&x), 2, 5, 0), 0);
    }
}
