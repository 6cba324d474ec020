//! Element-wise ops: `Add` (residual `x + y`), `Concat` (jumping-knowledge
//! `torch.cat(xs, dim=-1)`) and `Act` (standalone `relu` / `leaky_relu`), all
//! on tensors of one kind. Integer forms in [`crate::format::Op`]: inputs
//! are rescaled to the output's scale with Q16 multipliers and
//! `round_shift(·, 16)` (half away from zero), then saturated to int8.
//! Any input or output may be int4 (cargo feature `act-i4`): values are read
//! from and written to their nibbles one by one, with the int8 formulas
//! (an int4 output saturated to −8..=7).

use serde::{Deserialize, Serialize};

use super::{zip_rows, Check, Env, In, OpDef, Out, Scratch, Src, Tensors};
use crate::error::Result;
use crate::format::{Activation, ConcatPart, MAX_CONCAT};
#[cfg(feature = "act-i4")]
use crate::kernels::act_i4::{row_bytes, set_value, value_at};
use crate::kernels::requant;
use crate::quant::{round_shift_i64_to_i32, saturate_i8};

/// `out = saturate_i8(zp_out + act(round_shift((a − zp_a)·ma + (b − zp_b)·mb, 16)))`.
pub fn add(
    a: In<'_>,
    b: In<'_>,
    mult_a_q16: i32,
    mult_b_q16: i32,
    act: Activation,
    out: Out<'_>,
) -> Result<()> {
    let (za, zb) = (i64::from(a.zp), i64::from(b.zp));
    let (ma, mb) = (i64::from(mult_a_q16), i64::from(mult_b_q16));
    let zo = i32::from(out.zp);
    for ((o, &va), &vb) in out.data.iter_mut().zip(a.data).zip(b.data) {
        *o = add_value(i64::from(va) - za, i64::from(vb) - zb, (ma, mb), act, zo);
    }
    Ok(())
}

/// One value of [`add`] from the centred inputs `ca = a − zp_a`, `cb = b − zp_b`.
#[inline(always)]
fn add_value(ca: i64, cb: i64, (ma, mb): (i64, i64), act: Activation, zo: i32) -> i8 {
    let v = requant::activate(round_shift_i64_to_i32(ca * ma + cb * mb, 16), act);
    saturate_i8(v.saturating_add(zo))
}

/// One value of [`concat_part`] from the centred input `c = x − zp_p`.
#[inline(always)]
fn rescale_value(c: i64, m: i64, zo: i32) -> i8 {
    saturate_i8(round_shift_i64_to_i32(c * m, 16).saturating_add(zo))
}

/// One value of [`act`]: `v` with the tensor's zero point `zp`.
#[inline(always)]
fn act_value(v: i32, zp: i32, act: Activation) -> i8 {
    match act {
        Activation::None => saturate_i8(v),
        Activation::Relu => saturate_i8(v.max(zp)),
        Activation::LeakyRelu { alpha_q16 } if v < zp => {
            let d = round_shift_i64_to_i32(i64::from(v - zp) * i64::from(alpha_q16), 16);
            saturate_i8(zp.saturating_add(d))
        }
        Activation::LeakyRelu { .. } => saturate_i8(v),
    }
}

/// Writes `part` into channels `offset..offset + part.channels` of every row of `out`:
/// `saturate_i8(zp_out + round_shift((x − zp_p)·mult_q16, 16))`.
pub fn concat_part(part: In<'_>, mult_q16: i32, offset: usize, out: &mut Out<'_>) -> Result<()> {
    let zp = i64::from(part.zp);
    let m = i64::from(mult_q16);
    let zo = i32::from(out.zp);
    let pc = part.channels;
    for (xr, or) in zip_rows(part.data, pc, out.data, out.channels) {
        if let Some(dst) = or.get_mut(offset..offset.saturating_add(pc)) {
            for (o, &v) in dst.iter_mut().zip(xr) {
                *o = rescale_value(i64::from(v) - zp, m, zo);
            }
        }
    }
    Ok(())
}

/// Standalone activation with the input's quantization: ReLU `max(x, zp)`,
/// LeakyReLU `x < zp ? zp + round_shift((x − zp)·alpha_q16, 16) : x`.
pub fn act(x: In<'_>, act: Activation, out: Out<'_>) -> Result<()> {
    let zp = i32::from(x.zp);
    for (o, &v) in out.data.iter_mut().zip(x.data) {
        *o = act_value(i32::from(v), zp, act);
    }
    Ok(())
}

/// Element-wise sum of two tensors of the same kind and shape:
/// `out = saturate_i8(zp_out + act(round_shift_i64_to_i32((a − zp_a)·ma + (b − zp_b)·mb, 16)))`,
/// with `ma = round(s_a/s_out · 2^16)`, `mb` likewise (ReLU clamps at 0 before adding `zp_out`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Add {
    /// First input.
    pub a: u8,
    /// Second input.
    pub b: u8,
    /// Output.
    pub output: u8,
    /// Q16 rescale of `a`.
    pub mult_a_q16: i32,
    /// Q16 rescale of `b`.
    pub mult_b_q16: i32,
    /// Fused activation.
    pub act: Activation,
}

/// Channel concatenation (jumping knowledge `cat`) of tensors of one kind:
/// each part `p` is written as `saturate_i8(zp_out + round_shift((x − zp_p)·mult_q16, 16))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Concat {
    /// Inputs, in channel order.
    pub parts: heapless::Vec<ConcatPart, MAX_CONCAT>,
    /// Output (sum of the parts' channels).
    pub output: u8,
}

/// Standalone activation; output has the input's quantization:
/// ReLU `max(x, zp)`, LeakyReLU `x < zp ? zp + round_shift((x − zp)·alpha_q16, 16) : x`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Act {
    /// Input.
    pub input: u8,
    /// Output.
    pub output: u8,
    /// Activation (not `None`).
    pub act: Activation,
}

impl OpDef for Add {
    /// Row `i` from input rows `i` only.
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        "add"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.a);
        f(self.b);
    }
    fn takes_i4(&self) -> bool {
        cfg!(feature = "act-i4")
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (a, b, o) = (c.tensor(self.a)?, c.tensor(self.b)?, c.tensor(self.output)?);
        Check::ok(
            a.kind == o.kind
                && b.kind == o.kind
                && a.channels == o.channels
                && b.channels == o.channels
                && Check::act_ok(&self.act),
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        match (env.src(self.a)?, env.src(self.b)?) {
            (Src::Dense(a), Src::Dense(b)) if !out.is_packed() => {
                add(a, b, self.mult_a_q16, self.mult_b_q16, self.act, out)
            }
            #[cfg(feature = "act-i4")]
            (a, b) => add_i4(a, b, self, out).ok_or(env.invalid()),
            #[cfg(not(feature = "act-i4"))]
            _ => Err(env.invalid()),
        }
    }
}

impl OpDef for Concat {
    /// Row `i` from input rows `i` only.
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        "concat"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        self.parts.iter().for_each(|p| f(p.input))
    }
    fn takes_i4(&self) -> bool {
        cfg!(feature = "act-i4")
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let o = c.tensor(self.output)?;
        let mut sum = 0usize;
        for p in &self.parts {
            let pt = c.tensor(p.input)?;
            if pt.kind != o.kind {
                return None;
            }
            sum += usize::from(pt.channels);
        }
        Check::ok(!self.parts.is_empty() && sum == usize::from(o.channels))
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        mut out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        #[cfg(feature = "act-i4")]
        if out.is_packed()
            || self
                .parts
                .iter()
                .any(|p| matches!(env.src(p.input), Ok(Src::Packed(_))))
        {
            return concat_i4(env, self, out);
        }
        let mut offset = 0usize;
        for p in &self.parts {
            let v = env.view(p.input)?;
            let c = v.channels;
            concat_part(v, p.mult_q16, offset, &mut out)?;
            offset += c;
        }
        Ok(())
    }
}

impl OpDef for Act {
    /// Row `i` from input rows `i` only.
    fn hops(&self) -> Option<u8> {
        Some(0)
    }
    fn name(&self) -> &'static str {
        "act"
    }
    fn output(&self) -> u8 {
        self.output
    }
    fn for_each_input(&self, f: &mut dyn FnMut(u8)) {
        f(self.input)
    }
    fn takes_i4(&self) -> bool {
        cfg!(feature = "act-i4")
    }
    fn check(&self, c: &Check<'_>) -> Option<()> {
        let (i, o) = (c.tensor(self.input)?, c.tensor(self.output)?);
        Check::ok(
            i.kind == o.kind
                && i.channels == o.channels
                && i.zero_point == o.zero_point
                && self.act != Activation::None
                && Check::act_ok(&self.act),
        )
    }
    fn run<'v, T: Tensors<'v>>(
        &self,
        env: &Env<'_, T>,
        out: Out<'_>,
        _scratch: Scratch<'_>,
    ) -> Result<()> {
        match env.src(self.input)? {
            Src::Dense(x) if !out.is_packed() => act(x, self.act, out),
            #[cfg(feature = "act-i4")]
            x => act_i4(x, self.act, out).ok_or(env.invalid()),
            #[cfg(not(feature = "act-i4"))]
            _ => Err(env.invalid()),
        }
    }
}

// The ops above with int4 inputs or outputs (cargo feature `act-i4`), value
// by value with the int8 formulas.

/// A dense int8 or packed int4 tensor, read value by value.
#[cfg(feature = "act-i4")]
#[derive(Clone, Copy)]
struct Vals<'a> {
    bytes: &'a [u8],
    row_bytes: usize,
    packed: bool,
    zp: i64,
    channels: usize,
}

#[cfg(feature = "act-i4")]
impl<'a> Vals<'a> {
    /// `None` for the sparse input (no element-wise op reads it).
    fn of(s: Src<'a>) -> Option<Self> {
        let (x, packed) = match s {
            Src::Dense(x) => (x, false),
            Src::Packed(x) => (x, true),
            Src::Sparse(_) => return None,
        };
        Some(Vals {
            bytes: bytemuck::cast_slice(x.data),
            row_bytes: if packed {
                row_bytes(x.channels)
            } else {
                x.channels
            },
            packed,
            zp: i64::from(x.zp),
            channels: x.channels,
        })
    }

    /// Row `i` (empty past the end).
    fn row(&self, i: usize) -> &'a [u8] {
        let at = i.saturating_mul(self.row_bytes);
        self.bytes
            .get(at..at.saturating_add(self.row_bytes))
            .unwrap_or(&[])
    }

    /// Value `c` of a row of this tensor minus the zero point (0 past
    /// the end).
    fn centred(&self, row: &[u8], c: usize) -> i64 {
        let v = if self.packed {
            value_at(row, c)
        } else {
            row.get(c).map_or(0, |&b| b as i8)
        };
        if c < self.channels {
            i64::from(v) - self.zp
        } else {
            0
        }
    }
}

/// Writes channels `offset..offset + width` of every row of `out` with
/// `f(row, channel)` (int4 rows: into the nibbles, saturated).
#[cfg(feature = "act-i4")]
fn write(out: &mut Out<'_>, offset: usize, width: usize, mut f: impl FnMut(usize, usize) -> i8) {
    let packed = out.is_packed();
    let rb = if packed {
        row_bytes(out.channels)
    } else {
        out.channels
    };
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(out.data);
    for (i, or) in bytes.chunks_exact_mut(rb.max(1)).enumerate().take(out.rows) {
        for c in 0..width {
            let v = f(i, c);
            if packed {
                set_value(or, offset + c, v);
            } else if let Some(o) = or.get_mut(offset + c) {
                *o = v as u8;
            }
        }
    }
}

/// An int4 output starts zeroed (the high nibble of an odd row's last
/// byte stays 0).
#[cfg(feature = "act-i4")]
fn clear(out: &mut Out<'_>) {
    if out.is_packed() {
        out.data.fill(0);
    }
}

#[cfg(feature = "act-i4")]
fn add_i4(a: Src<'_>, b: Src<'_>, op: &Add, mut out: Out<'_>) -> Option<()> {
    let (a, b) = (Vals::of(a)?, Vals::of(b)?);
    let (ma, mb) = (i64::from(op.mult_a_q16), i64::from(op.mult_b_q16));
    let zo = i32::from(out.zp);
    clear(&mut out);
    let ch = out.channels;
    write(&mut out, 0, ch, |i, c| {
        let (ca, cb) = (a.centred(a.row(i), c), b.centred(b.row(i), c));
        add_value(ca, cb, (ma, mb), op.act, zo)
    });
    Some(())
}

#[cfg(feature = "act-i4")]
fn concat_i4<'v, T: Tensors<'v>>(env: &Env<'_, T>, op: &Concat, mut out: Out<'_>) -> Result<()> {
    clear(&mut out);
    let zo = i32::from(out.zp);
    let mut offset = 0usize;
    for p in &op.parts {
        let x = Vals::of(env.src(p.input)?).ok_or(env.invalid())?;
        let m = i64::from(p.mult_q16);
        write(&mut out, offset, x.channels, |i, c| {
            rescale_value(x.centred(x.row(i), c), m, zo)
        });
        offset = offset.saturating_add(x.channels);
    }
    Ok(())
}

#[cfg(feature = "act-i4")]
fn act_i4(x: Src<'_>, a: Activation, mut out: Out<'_>) -> Option<()> {
    let x = Vals::of(x)?;
    clear(&mut out);
    let zp = x.zp as i32;
    let ch = out.channels;
    write(&mut out, 0, ch, |i, c| {
        act_value(x.centred(x.row(i), c) as i32 + zp, zp, a)
    });
    Some(())
}
