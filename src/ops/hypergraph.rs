//! `HypergraphConv` — PyG `HypergraphConv` without attention:
//! `X' = D^-1 · H · B^-1 · Hᵀ · (X Θᵀ) + bias`, `H` the node × hyperedge
//! incidence given by `hyperedge_index` (`[2, nnz]`, row 0 nodes, row 1
//! hyperedges; [`crate::Hyperedges`]), `B_e` the number of incidences of
//! hyperedge `e`, `D_v = Σ_{(v,e)} w_e` the node degree weighted by the
//! hyperedge weights `w` (all 1.0 without `hyperedge_weight`), and
//! `1/0 = 0` for both. As in PyG the hyperedge weights enter `D` only (the
//! messages are not multiplied by them), and an incidence listed twice
//! counts twice everywhere.
//!
//! Integer form (exact semantics on [`HypergraphConv`]): `h = Θ x` in i32,
//! each hyperedge's mean `round(Σ h / B_e)` in i32, summed per node,
//! divided by the Q16 degree `D_v`, then bias, activation and one
//! requantization per value. Time `O(U·nnz + nnz·C)` for `U` distinct
//! hyperedges (each hyperedge is gathered by one pass over the incidences,
//! so no table of hyperedges is kept and the arena does not depend on their
//! number); scratch `O(N·C)`.

use serde::{Deserialize, Serialize};

use super::{is_i4, rows_mut, Check, Ctx, Env, OpDef, Out, Scratch, Shapes, Src, Tensors};
use crate::error::Result;
use crate::format::{Activation, ChannelParams, Section, TensorKind};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;
use crate::quant::round_div_i64;

/// Q16 weight 1.0 (the weight of every hyperedge without `hyperedge_weight`).
const ONE_Q16: u32 = 1 << 16;

/// HypergraphConv (PyG, `use_attention=False`), node tensors only.
///
/// With the incidences `(v_k, e_k)`, `k < nnz`, of the input's
/// [`crate::Hyperedges`] and the Q16 hyperedge weights `w_e`
/// ([`crate::graph::edge_weight_q16`] of `hyperedge_weight[e]` when
/// `weighted` and the input has weights, else 1.0):
///
/// 1. `h_v[c] = Σ_i W[c,i]·(x_vi − zp_x)` (i32) for every node.
/// 2. For every hyperedge `e` with incidences (in increasing `e`):
///    `b_e = #{k : e_k = e}`, `S_e[c] = Σ_{k: e_k = e} h_{v_k}[c]` (i64),
///    `m_e[c] = round_div(S_e[c], b_e)` (half away from zero; fits i32);
///    then for every `k` with `e_k = e`: `T_{v_k}[c] += m_e[c]` (i32,
///    saturating) and `D_{v_k} += w_e` (u64, Q16).
/// 3. For every node `v`: `acc_v[c] = D_v = 0 ? 0 :
///    saturate_i32(round_div(T_v[c] · 2^16, D_v))`; then
///    `out = saturate_i8(requant(act(acc + bias), mult, shift) + zp_out)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HypergraphConv {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// Weights `[out_ch, in_ch]` of `lin` (Θ).
    pub weights: Section,
    /// [`ChannelParams`] (bias is PyG's conv bias).
    pub params: ChannelParams,
    /// Fused activation.
    pub act: Activation,
    /// Read the input's `hyperedge_weight` (PyG: the layer is called with
    /// it); otherwise, or when the input has none, every weight is 1.0.
    pub weighted: bool,
}

/// Scratch taken by [`run`]: weight sums, `h` and `T` (`nodes × out_ch` i32
/// each), `D` (`nodes` u64), the i64 hyperedge row, the i32 output row and
/// the prepared channel records (20 bytes per channel).
pub fn scratch_bytes(nodes: usize, out_ch: usize) -> usize {
    let mut t = super::ScratchSize::default();
    t.add::<i32>(out_ch)
        .add::<i32>(nodes.saturating_mul(out_ch))
        .add::<i32>(nodes.saturating_mul(out_ch))
        .add::<u64>(nodes)
        .add::<i64>(out_ch)
        .add::<i32>(out_ch)
        .add::<requant::Prepared>(out_ch);
    t.0
}

/// The Q16 weight of hyperedge `e` (validated by the session: 0 for an entry
/// that is not there, which validation rules out).
fn weight_q16(w: Option<&[f32]>, e: u16) -> u32 {
    match w {
        None => ONE_Q16,
        Some(w) => w
            .get(usize::from(e))
            .and_then(|&x| crate::quant::edge_weight_q16(x))
            .unwrap_or(0),
    }
}

/// Row `v` of a row-major `[_, ch]` i32 table (empty if out of range).
fn row_of(t: &[i32], v: usize, ch: usize) -> &[i32] {
    let start = v.saturating_mul(ch);
    t.get(start..start.saturating_add(ch)).unwrap_or(&[])
}

/// Runs the convolution (see [`HypergraphConv`]).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn run(
    ctx: &Ctx<'_>,
    w: Matrix<'_>,
    params: &[u8],
    act: Activation,
    weighted: bool,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let n = ctx.nodes();
    let oc = out.channels;
    let sums = scratch.take::<i32>(oc)?;
    let h = scratch.take::<i32>(n.saturating_mul(oc))?;
    let t = scratch.take::<i32>(n.saturating_mul(oc))?;
    let deg = scratch.take::<u64>(n)?;
    let s = scratch.take::<i64>(oc)?;
    let row = scratch.take::<i32>(oc)?;
    let prep = scratch.take_records(oc)?;
    let rq = requant::prepare(params, oc, act, out.zp, prep);

    x.weight_sums(w, sums);
    x.matmul(w, sums, h);

    let hg = ctx.hyperedges();
    let (nodes, edges) = (hg.nodes, hg.edges);
    // The hyperedges in increasing id, each found by one pass that also
    // finds the next id: `U` passes for `U` distinct hyperedges.
    let mut next = edges.iter().copied().min();
    while let Some(e) = next {
        next = None;
        s.fill(0);
        let mut b = 0i64;
        for (&v, &ek) in nodes.iter().zip(edges) {
            if ek == e {
                // At most 2^24 incidences of |h| < 2^28: no overflow.
                b = b.wrapping_add(1);
                for (a, &hv) in s.iter_mut().zip(row_of(h, usize::from(v), oc)) {
                    *a = a.wrapping_add(i64::from(hv));
                }
            } else if ek > e && next.is_none_or(|m| ek < m) {
                next = Some(ek);
            }
        }
        for a in s.iter_mut() {
            *a = round_div_i64(*a, b);
        }
        let we = u64::from(weight_q16(if weighted { hg.weight } else { None }, e));
        for (&v, &ek) in nodes.iter().zip(edges) {
            if ek != e {
                continue;
            }
            let v = usize::from(v);
            if let Some(d) = deg.get_mut(v) {
                *d = d.saturating_add(we);
            }
            let start = v.saturating_mul(oc);
            if let Some(tr) = t.get_mut(start..start.saturating_add(oc)) {
                for (a, &m) in tr.iter_mut().zip(s.iter()) {
                    // |m| ≤ max |h|: the mean fits i32.
                    let m = i32::try_from(m).unwrap_or(if m < 0 { i32::MIN } else { i32::MAX });
                    *a = a.saturating_add(m);
                }
            }
        }
    }

    for (v, or) in rows_mut(out.data, oc).enumerate().take(n) {
        let d = deg.get(v).copied().unwrap_or(0);
        let d = i64::try_from(d).unwrap_or(i64::MAX);
        for (r, &tv) in row.iter_mut().zip(row_of(t, v, oc)) {
            // |T| < 2^31, so T·2^16 < 2^47 and the rounding cannot overflow.
            let q = if d == 0 {
                0
            } else {
                round_div_i64(i64::from(tv) << 16, d)
            };
            *r = q.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        }
        rq.row(row, or);
    }
    Ok(())
}

impl OpDef for HypergraphConv {
    fn name(&self) -> &'static str {
        "hypergraph_conv"
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
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        Check::ok(
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && c.weights_ok(self.weights, co, ci)
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        scratch_bytes(s.nodes, s.ch(self.output))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        run(
            env.ctx,
            env.data.matrix(self.weights),
            env.data.bytes(self.params),
            self.act,
            self.weighted,
            env.src(self.input)?,
            out,
            scratch,
        )
    }
}
