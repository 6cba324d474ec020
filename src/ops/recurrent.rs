//! Recurrent cells (`op-recurrent`): the element-wise product `Mul` that the
//! gates of a GRU-style cell need (`z ⊙ h`, `r ⊙ h`, `(1 − z) ⊙ h̃`), plus
//! the model's carried state (see [`crate::Model::state`] and
//! [`crate::Session::run_step`]).
//!
//! PyG semantics reproduced: the TGCN cell of torch-geometric-temporal
//! (`nn/recurrent/temporalgcn.py`): `Z = σ(W_z [GCN_z(X), H] + b_z)`,
//! `R = σ(W_r [GCN_r(X), H] + b_r)`, `H̃ = tanh(W_h [GCN_h(X), R ⊙ H] + b_h)`,
//! `H' = Z ⊙ H + (1 − Z) ⊙ H̃`, and `torch.nn.GRUCell`. The convolutions,
//! linear layers, concatenations and sums are the ordinary ops; sigmoid,
//! tanh and `1 − z` are `Lut` tables; this module adds the product.

use serde::{Deserialize, Serialize};

use super::{Check, Env, In, OpDef, Out, Scratch, Tensors};
use crate::error::Result;
use crate::quant::{multiply_by_quantized_multiplier, saturate_i8};

/// `out = saturate_i8(zp_out + requant((a − zp_a)·(b − zp_b)))` element by
/// element, `requant(p) = multiply_by_quantized_multiplier(p, mult, shift)`.
pub fn mul(a: In<'_>, b: In<'_>, mult: i32, shift: i32, out: Out<'_>) -> Result<()> {
    let (za, zb) = (i32::from(a.zp), i32::from(b.zp));
    let zo = i32::from(out.zp);
    for ((o, &va), &vb) in out.data.iter_mut().zip(a.data).zip(b.data) {
        // |p| ≤ 255² : no overflow.
        let p = (i32::from(va) - za) * (i32::from(vb) - zb);
        let v = multiply_by_quantized_multiplier(p, mult, shift);
        *o = saturate_i8(v.saturating_add(zo));
    }
    Ok(())
}

/// Element-wise product of two tensors of the same kind and shape:
/// `out = saturate_i8(zp_out + multiply_by_quantized_multiplier((a − zp_a)·(b − zp_b), mult, shift))`
/// with `(mult, shift)` the Q31 form of `s_a·s_b/s_out` (`shift` in −31..=30).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mul {
    /// First input.
    pub a: u8,
    /// Second input.
    pub b: u8,
    /// Output.
    pub output: u8,
    /// Q31 multiplier of `s_a·s_b/s_out`.
    pub mult: i32,
    /// Its exponent.
    pub shift: i32,
}

impl OpDef for Mul {
    /// Row `i` from input rows `i` only.
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        "mul"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.a);
        f(self.b);
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (a, b, o) = (c.tensor(self.a)?, c.tensor(self.b)?, c.tensor(self.output)?);
        Check::ok(
            a.kind == o.kind
                && b.kind == o.kind
                && a.channels == o.channels
                && b.channels == o.channels
                && self.mult >= 0
                && (-31..=30).contains(&self.shift),
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        let (a, b) = (env.view(self.a)?, env.view(self.b)?);
        mul(a, b, self.mult, self.shift, out)
    }
}
