//! `ChebConv` — PyG `ChebConv(K, normalization='sym')` with `λmax = 2`:
//! `out = Σ_{k<K} T_k(L̂)·x·Θ_kᵀ + bias`, `L̂ = 2L/λmax − I = −P`,
//! `P = D^-½ A D^-½` over the graph without its self-loops (PyG's
//! `get_laplacian` removes them), `deg_j = Σ_{j→i} w_ji` summed over the
//! *source* index `j` (PyG's `row`), `0^-½ = 0`; `T_0 = I`, `T_1 = L̂`,
//! `T_k = 2·L̂·T_{k−1} − T_{k−2}`.
//!
//! The Chebyshev polynomials are a polynomial in `P`: the converter folds
//! `Θ` into the monomial coefficients `M_m = (−1)^m Σ_k c_{k,m} Θ_k`
//! (`c_{k,m}` the coefficient of `L̂^m` in `T_k`; for `K = 3`:
//! `M_0 = Θ_0 − Θ_2`, `M_1 = −Θ_1`, `M_2 = 2·Θ_2`), so the device computes
//! `Σ_m P^m M_m x` by Horner's rule with
//! [`crate::ops::propagate`]'s TAGConv kernel (`hops`), only the
//! normalisation differing (`PropParams::laplacian`). The intermediate
//! values stay in i32; one requantization per output value.

use serde::{Deserialize, Serialize};

use super::propagate::{self, PropParams};
use super::{is_i2, is_i4, Check, Env, OpDef, Out, Scratch, Shapes, Tensors};
use crate::error::Result;
use crate::format::{Activation, ChannelParams, Section, TensorKind};

/// The largest `K` (number of matrices) the op accepts.
pub const CHEB_MAX_K: u8 = 16;

/// ChebConv (PyG, `normalization='sym'`, `λmax = 2`), node tensors only.
///
/// With `P_ij = dinv_j · w_ji · dinv_i` over the in-edges `j → i`, `j ≠ i`
/// (self-loops are skipped everywhere), Q16 weights `w` (the graph's with
/// `edge_weight`, else 1.0), `dinv_j = dinv_q24(deg_j)` and
/// `deg_j = Σ_{j→i, i ≠ j} w_ji` (Q16, over the **source** index), Q24
/// coefficients as [`crate::ops::Op::GcnConv`]'s:
///
/// 1. `h_i[c] = Σ_l M_{K−1}[c,l]·(x_il − zp_x)` (i32; `weights` holds `K`
///    matrices `M_0 … M_{K−1}` of `[out_ch, in_ch]`, stacked
///    `[K·out_ch, in_ch]`, one scale per output channel for all).
/// 2. For `s = 1 … K−1`, every node from the previous `h`:
///    `h_i[c] = sat_i32(t_i[c] + Σ_l M_{K−1−s}[c,l]·(x_il − zp_x))` with
///    `t_i[c] = round_shift_i64_to_i32(Σ_{j→i, j≠i} coef_ji·h_j[c], 24)` (the
///    sum saturating in i64, in CSR order). A coefficient above `i32::MAX` is
///    [`crate::Error::Overflow`].
/// 3. `acc = h + bias` (saturating), activation, requantization with
///    `params` (accumulator scale `s_x·s_w[c]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChebConv {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// Number of matrices `K` (PyG's `K`), `1..=CHEB_MAX_K`.
    pub k: u8,
    /// Weights: `K` stacked `[out_ch, in_ch]` matrices `M_0 … M_{K−1}`
    /// (the monomial form above), int8, int4 or int2.
    pub weights: Section,
    /// [`ChannelParams`] for `out_ch` channels.
    pub params: ChannelParams,
    /// Fused activation.
    pub act: Activation,
    /// Use the graph's edge weights.
    pub edge_weight: bool,
}

impl OpDef for ChebConv {
    /// `K − 1` rounds (`T_{K−1}(L̂)` reaches `K − 1` edges).
    fn hops(&self) -> Option<u8> {
        Some(self.k.saturating_sub(1))
    }
    fn name(&self) -> &'static str {
        "cheb_conv"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input);
    }
    fn has_i4_weights(&self) -> bool {
        is_i4(&self.weights)
    }
    fn has_i2_weights(&self) -> bool {
        is_i2(&self.weights)
    }
    fn uses_edge_weight(&self) -> bool {
        self.edge_weight
    }
    fn takes_sparse_input(&self) -> bool {
        true
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        let (ci, co) = (usize::from(i.channels), usize::from(o.channels));
        Check::ok(
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && (1..=CHEB_MAX_K).contains(&self.k)
                && c.weights_ok(self.weights, co.saturating_mul(usize::from(self.k)), ci)
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        propagate::scratch_bytes(s.nodes, s.ch(self.output), true, false, true)
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        scratch: Scratch<'_>,
    ) -> Result<()> {
        let p = PropParams::laplacian(
            self.k,
            env.data.matrix_opt(self.weights),
            env.data.bytes(self.params),
            self.act,
            self.edge_weight,
        );
        if p.w.is_none() || self.k == 0 {
            return Err(crate::Error::InvalidOp { op: env.ctx.op });
        }
        propagate::run(env.ctx, p, env.src(self.input)?, out, scratch)
    }
}
