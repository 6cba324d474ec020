//! `GcnConv` — PyG `GCNConv` with `gcn_norm`:
//! `out_i = bias + Σ_{j ∈ N(i) ∪ {i}} deg_i^-½ · w_ji · deg_j^-½ · (W x_j)`,
//! self-loops added as `add_remaining_self_loops` (an input loop `i→i` is
//! replaced by one loop carrying the weight of the *last* input loop of `i`;
//! nodes without one get the fill weight 1, or 2 when `improved`), degrees
//! summed over the target index, `deg^-½ = 0` where `deg = 0`.
//!
//! Integer form (see [`crate::format::Op::GcnConv`]): `h = W x` in i32, Q16
//! edge weights, Q24 `dinv = isqrt(2^64 / deg)`, Q24 coefficients
//! `(dinv_j · w_ji · dinv_i) >> 40` (or `w << 8` without normalisation),
//! `acc = round_shift(Σ coef·h_j, 24) + bias`, activation, requantization.
//! A coefficient above `i32::MAX` is [`Error::Overflow`].
//!
//! Self-loops follow `add_self_loops` whether or not `normalize` is set, as
//! the contract says (PyG itself refuses `add_self_loops` without `normalize`).
//!
//! The normalisation helpers (`in_edges`, `fill_w`, `degree`, [`dinv_q24`],
//! [`coef`]) are shared with the decoupled propagation ops
//! ([`crate::ops::propagate`]), which is why this module is also compiled
//! with the `op-propagate` feature.

use serde::{Deserialize, Serialize};

use super::{
    is_i2, is_i4, out_row_bytes, region_bytes, requant_rows, Check, Ctx, Env, OpDef, Out, Scratch,
    Shapes, Src, Tensors,
};
use crate::error::{Error, Result};
use crate::format::small::Reader;
use crate::format::{Activation, ChannelParams, Section, TensorKind};
use crate::kernels::aggregate::{self, Terms};
use crate::kernels::dense_i4::Matrix;
use crate::kernels::requant;

/// Q16 weight 1.0.
const ONE_Q16: u32 = 1 << 16;

/// The op's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcnFlags {
    /// Self-loop fill weight 2 instead of 1.
    pub improved: bool,
    /// Add remaining self-loops.
    pub add_self_loops: bool,
    /// Symmetric normalisation.
    pub normalize: bool,
    /// Use the graph's edge weights.
    pub edge_weight: bool,
}

impl GcnFlags {
    /// A non-zero byte naming the flags that decide the degrees (`improved`,
    /// `add_self_loops`, `edge_weight`), for [`Ctx::dinv_key`].
    pub fn key(self) -> u8 {
        0x80 | u8::from(self.improved)
            | u8::from(self.add_self_loops) << 1
            | u8::from(self.edge_weight) << 2
    }

    /// The normalising flags named by [`GcnFlags::key`].
    pub fn from_key(key: u8) -> GcnFlags {
        GcnFlags {
            improved: key & 1 != 0,
            add_self_loops: key & 2 != 0,
            normalize: true,
            edge_weight: key & 4 != 0,
        }
    }
}

/// `dinv[i] = dinv_store(dinv_q24(degree(i)))` for every node.
pub(crate) fn fill_dinv(ctx: &Ctx<'_>, flags: GcnFlags, dinv: &mut [u32]) {
    for (i, d) in dinv.iter_mut().enumerate() {
        *d = dinv_store(dinv_q24(degree(ctx, i, flags)));
    }
}

/// Bytes of [`run`]'s own `dinv` table, which it does not take when the
/// session shares one for its flags ([`Ctx::dinv`]).
pub fn dinv_scratch_bytes(nodes: usize) -> usize {
    region_bytes::<u32>(nodes)
}

/// The `dinv` table for `flags`: the session's ([`Ctx::dinv`]) when it is for
/// these flags, else computed into `scratch`.
fn dinv_table<'r, 's: 'r>(
    ctx: &Ctx<'r>,
    flags: GcnFlags,
    scratch: &mut Scratch<'s>,
) -> Result<&'r [u32]> {
    if shares_dinv(ctx, flags) {
        return Ok(ctx.dinv);
    }
    let dinv = scratch.take::<u32>(ctx.nodes())?;
    fill_dinv(ctx, flags, dinv);
    Ok(dinv)
}

pub use super::common::{block_channels, H_BLOCK_BYTES};

/// The `i32` values of the row block GCN requantizes at once
/// ([`requant::RowRequant::rows`]) for `out_ch` channels: up to 16 rows, at
/// most 128 values (a 512-byte block), at least one row. The same with
/// `kernels-small` (which requantizes row by row, in the block's first
/// row), so that `Model::arena_bytes` does not depend on the features.
fn block_values(out_ch: usize) -> usize {
    out_ch.saturating_mul(16).min(out_ch.max(128))
}

/// The `i32` values of [`run`]'s row block, and the bytes of its
/// requantized copy, for passes of `b` of `out_ch` channels: whole rows
/// ([`block_values`]`(out_ch)`, no copy), or for a narrower block 128
/// values, at least one row (as many bytes).
fn pass_block(b: usize, out_ch: usize) -> (usize, usize) {
    if b < out_ch {
        let v = b.max(128);
        (v, v)
    } else {
        (block_values(out_ch), 0)
    }
}

/// Scratch bytes [`run`] takes for passes of `b` of `out_ch` channels:
/// weight sums (`b`), `h` (`nodes × b` i32), `dinv` (`nodes` u32,
/// [`dinv_store`]) when `own_dinv` (not the session's), an i64 accumulator
/// row (`b`), a row block and its requantized copy ([`pass_block`]), the
/// prepared channel records ([`requant::prepare`], 20 bytes per channel).
#[inline(always)]
fn pass_scratch(nodes: usize, out_ch: usize, b: usize, own_dinv: bool) -> usize {
    let (block, tmp) = pass_block(b, out_ch);
    region_bytes::<i32>(b)
        .saturating_add(region_bytes::<requant::Prepared>(out_ch))
        .saturating_add(region_bytes::<i32>(nodes.saturating_mul(b)))
        .saturating_add(if own_dinv {
            region_bytes::<u32>(nodes)
        } else {
            0
        })
        .saturating_add(region_bytes::<i64>(b))
        .saturating_add(region_bytes::<i32>(block))
        .saturating_add(region_bytes::<i8>(tmp))
}

/// The least scratch [`run`] takes (its own `dinv` table included): passes
/// of [`block_channels`].
pub fn scratch_bytes(nodes: usize, _in_ch: usize, out_ch: usize) -> usize {
    pass_scratch(nodes, out_ch, block_channels(nodes, out_ch), true)
}

/// The scratch [`run`] takes for one pass over all `out_ch` channels (its
/// own `dinv` table included): the fastest run.
pub fn wide_scratch_bytes(nodes: usize, out_ch: usize) -> usize {
    pass_scratch(nodes, out_ch, out_ch, true)
}

/// Channels per pass of [`run`] with `avail` bytes of scratch: the widest
/// block whose scratch fits, from all `out_ch` down to
/// [`block_channels`] (whose scratch the arena always has).
fn pass_channels(nodes: usize, out_ch: usize, avail: usize, own_dinv: bool) -> usize {
    let lean = block_channels(nodes, out_ch);
    let mut b = out_ch;
    while b > lean && pass_scratch(nodes, out_ch, b, own_dinv) > avail {
        b -= 1;
    }
    b
}

/// Whether [`run`] reads the session's `dinv` table ([`Ctx::dinv`]) rather
/// than computing its own (never with `kernels-small`, see
/// `ops::shared_norm_key`).
fn shares_dinv(ctx: &Ctx<'_>, flags: GcnFlags) -> bool {
    flags.normalize
        && !cfg!(feature = "kernels-small")
        && ctx.dinv_key == flags.key()
        && ctx.dinv.len() == ctx.nodes()
}

/// The in-edges of `i` as `(source, Q16 weight)`: the graph's weights with
/// `edge_weight`, else 1.0 (`row_ptr` read once per node, see
/// [`crate::kernels::aggregate::Csr::edges`]).
pub(crate) fn in_edges<'a>(
    ctx: &Ctx<'a>,
    i: usize,
    flags: GcnFlags,
) -> impl Iterator<Item = (usize, u32)> + 'a {
    let (nb, ws) = ctx.csr.edges(i);
    let ws = if flags.edge_weight { ws } else { &[] };
    nb.iter()
        .enumerate()
        .map(move |(k, &j)| (usize::from(j), ws.get(k).copied().unwrap_or(ONE_Q16)))
}

/// The self-loop fill weight (used when `i` has no input loop).
pub(crate) fn fill_w(flags: GcnFlags) -> u32 {
    if flags.improved {
        2 * ONE_Q16
    } else {
        ONE_Q16
    }
}

/// `deg_i = Σ_{j→i} w_ji` (Q16, loop included as the op's rules say: with
/// `add_self_loops`, input loops are dropped and one loop of the last input
/// loop's weight, or the fill, is counted). One pass over the in-edges.
pub(crate) fn degree(ctx: &Ctx<'_>, i: usize, flags: GcnFlags) -> u64 {
    // (`kernels-small` keeps only the general path below: same values.)
    if !flags.edge_weight && !cfg!(feature = "kernels-small") {
        // Every weight is 1.0: the in-edges, less the input loops when they
        // are replaced, plus the loop (1.0 if an input loop, else the fill).
        let nb = ctx.csr.neighbors(i);
        let n = nb.len() as u64;
        if !flags.add_self_loops {
            return n << 16;
        }
        let loops = nb.iter().filter(|&&j| usize::from(j) == i).count() as u64;
        let loop_w = if loops > 0 {
            u64::from(ONE_Q16)
        } else {
            u64::from(fill_w(flags))
        };
        return ((n - loops) << 16) + loop_w;
    }
    let mut deg = 0u64;
    let mut loop_w = fill_w(flags);
    for (j, w) in in_edges(ctx, i, flags) {
        if flags.add_self_loops && j == i {
            loop_w = w;
            continue;
        }
        deg += u64::from(w);
    }
    if flags.add_self_loops {
        deg += u64::from(loop_w);
    }
    deg
}

/// `dinv = deg = 0 ? 0 : isqrt(2^64 / deg)` (Q24; at most `2^32`), with
/// integer division and floor square root, computed in 64-bit arithmetic:
/// `2^64 / deg` needs 65 bits only for `deg = 1` (result `2^32`); otherwise
/// it is `(2^64 − 1) / deg`, plus one when `deg` divides `2^64` (a power of two).
pub fn dinv_q24(deg: u64) -> u64 {
    // Size over speed: the same values without u64 division (no builtins).
    if cfg!(feature = "kernels-small") {
        return crate::quant::isqrt_pow2_64_div(deg);
    }
    // Whole degrees below DINV_TABLE_LEN (every unweighted graph's nodes but
    // the hubs): a table of the same values, computed by the compiler.
    if deg & 0xFFFF == 0 {
        if let Some(&d) = DINV_TABLE.get((deg >> 16) as usize) {
            return u64::from(d);
        }
    }
    dinv_q24_ref(deg)
}

/// Entries of [`DINV_TABLE`].
const DINV_TABLE_LEN: usize = 64;

/// `DINV_TABLE[k] = dinv_q24_ref(k · 2^16)` (`k` whole unit weights), at most
/// `2^24`: `isqrt(2^64 / (k·2^16)) = isqrt(⌊2^48 / k⌋)`.
static DINV_TABLE: [u32; DINV_TABLE_LEN] = {
    let mut t = [0u32; DINV_TABLE_LEN];
    let mut k = 1;
    while k < DINV_TABLE_LEN {
        t[k] = ((1u64 << 48) / k as u64).isqrt() as u32;
        k += 1;
    }
    t
};

/// The definition of [`dinv_q24`] (without its table): 64-bit division and
/// floor square root.
pub fn dinv_q24_ref(deg: u64) -> u64 {
    match deg {
        0 => 0,
        1 => 1 << 32,
        _ => {
            let q = u64::MAX / deg + u64::from(deg.is_power_of_two());
            q.isqrt()
        }
    }
}

/// A [`dinv_q24`] value (at most `2^32`) in 32 bits for [`run`]'s table:
/// itself, except `2^32` (the value for `deg = 1` only) stored as `u32::MAX`,
/// which no degree gives (`deg ≥ 2` gives at most `isqrt(2^63) < u32::MAX`;
/// tested). [`dinv_load`] undoes it.
#[inline]
pub fn dinv_store(d: u64) -> u32 {
    u32::try_from(d).unwrap_or(u32::MAX)
}

/// The [`dinv_q24`] value stored by [`dinv_store`].
#[inline]
pub fn dinv_load(x: u32) -> u64 {
    u64::from(x) + u64::from(x == u32::MAX)
}

/// Edge coefficient (Q24) or `None` if above `i32::MAX`:
/// `(dinv_j · w · dinv_i) >> 40` if normalising, else `w << 8`.
///
/// The 96-bit product is formed from two 64-bit ones (`dinv ≤ 2^32` and
/// `w < 2^32`, so `p = dinv_j · w` fits `u64`): with `p = ph·2^32 + pl`,
/// `(p · dinv_i) >> 40 = (ph·dinv_i + (pl·dinv_i >> 32)) >> 8` exactly, which
/// avoids 128-bit multiplication on 32-bit targets.
#[cfg_attr(feature = "kernels-small", inline(never))]
pub fn coef(normalize: bool, dinv_j: u64, w: u32, dinv_i: u64) -> Option<i32> {
    let c: u64 = if normalize {
        let p = dinv_j.checked_mul(u64::from(w))?;
        let (ph, pl) = (p >> 32, p & 0xFFFF_FFFF);
        let hi = ph.checked_mul(dinv_i)?;
        let lo = pl.checked_mul(dinv_i)?;
        hi.checked_add(lo >> 32)? >> 8
    } else {
        u64::from(w) << 8
    };
    i32::try_from(c).ok()
}

/// [`coef`]`(true, dinv_j, 1.0, dinv_i)` (weight `2^16`): `(dinv_j · dinv_i) >> 24`,
/// one 64-bit product (`None` where the product or the result overflows,
/// exactly where [`coef`] gives `None` for `dinv ≤ 2^32`; proptested).
#[inline]
pub fn unit_coef(dinv_j: u64, dinv_i: u64) -> Option<i32> {
    i32::try_from(dinv_j.checked_mul(dinv_i)? >> 24).ok()
}

/// Largest number of `coef · h` terms whose sum cannot overflow `i64`:
/// `|coef| < 2^31` and `|h| ≤ MAX_CHANNELS · 128 · 255 < 2^27`, so each term
/// is below `2^58` and 32 of them below `2^63`.
const EXACT_TERMS: usize = 32;

/// `acc[c] += coef · h_j[c]`: plain adds when `exact` (no overflow possible,
/// see [`EXACT_TERMS`]), saturating adds otherwise.
fn accumulate(acc: &mut [i64], coef: i32, h: &[i32], j: usize, exact: bool) {
    let ch = acc.len();
    // j < 2^16 and ch ≤ MAX_CHANNELS: no overflow.
    let start = j * ch;
    let coef = i64::from(coef);
    if let Some(row) = h.get(start..start.saturating_add(ch)) {
        if exact && !cfg!(feature = "kernels-small") {
            // Four channels per step in scalar code: the compiler's
            // vectorisation of a 64-bit multiply-add (no packed 64-bit
            // multiply on baseline x86-64) cost more than it saved here.
            let mut a4 = acc.chunks_exact_mut(4);
            let mut r4 = row.chunks_exact(4);
            for (a, r) in (&mut a4).zip(&mut r4) {
                if let ([a0, a1, a2, a3], [r0, r1, r2, r3]) = (a, r) {
                    *a0 = a0.wrapping_add(coef * i64::from(*r0));
                    *a1 = a1.wrapping_add(coef * i64::from(*r1));
                    *a2 = a2.wrapping_add(coef * i64::from(*r2));
                    *a3 = a3.wrapping_add(coef * i64::from(*r3));
                }
            }
            for (a, &v) in a4.into_remainder().iter_mut().zip(r4.remainder()) {
                *a = a.wrapping_add(coef * i64::from(v));
            }
        } else {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = a.saturating_add(coef * i64::from(v));
            }
        }
    }
}

/// One output row of the unit-weight normalised op with fewer than
/// [`EXACT_TERMS`] in-edges: `row[c] = round_shift(Σ_j unit_coef(dinv_j, di)·h_j[c]
/// + loop, 24)`, the terms of the general loop of [`run`] (an input loop
/// skipped and replaced by the self-loop term after the edges). The
/// terms (row index, coefficient) are computed once per row (an input loop's
/// coefficient as 0, which adds an exact 0) into `cs`, then the channels are
/// summed `B` at a time in local `i64` accumulators (registers, also on
/// 32-bit targets: `SMLAL` on Cortex-M),
/// the channels past the last whole block in a block of 4 (when `B = 8`),
/// then, with at least four channels, one block of the last four (which
/// writes up to three channels again, with the same values), else blocks
/// of 2 and 1. Exact: no
/// overflow below `EXACT_TERMS` terms, so the order of the terms does not
/// matter. `None` where a coefficient overflows, as there.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn unit_row<const B: usize>(
    nb: &[u16],
    i: usize,
    di: u64,
    dinv: &[u32],
    h: &[i32],
    flags: GcnFlags,
    row: &mut [i32],
    cs: &mut [[i32; 2]; EXACT_TERMS],
) -> Option<()> {
    let oc = row.len();
    let skip = if flags.add_self_loops { i } else { usize::MAX };
    let self_row = i.checked_mul(oc)?;
    let cs = cs.get_mut(..nb.len())?;
    let mut has_loop = false;
    for (t, &j) in cs.iter_mut().zip(nb) {
        let j = usize::from(j);
        let c = if j == skip {
            has_loop = true;
            0
        } else {
            narrow_coef(*dinv.get(j)?, di)?
        };
        // j < 2^16, oc ≤ MAX_CHANNELS: the row index fits i32.
        *t = [i32::try_from(j * oc).ok()?, c];
    }
    let c_loop = if flags.add_self_loops {
        let loop_w = if has_loop { ONE_Q16 } else { fill_w(flags) };
        loop_coef(di, loop_w)?
    } else {
        0
    };
    let terms = Terms::new(cs);
    let whole = oc - oc % B;
    let (head, tail) = row.split_at_mut(whole);
    for (b, out) in head.chunks_exact_mut(B).enumerate() {
        unit_block::<B>(terms, c_loop, self_row, b * B, h, out)?;
    }
    let mut off = whole;
    let mut tail = tail;
    if B > 4 && tail.len() >= 4 {
        let (four, rest) = tail.split_at_mut(4);
        unit_block::<4>(terms, c_loop, self_row, off, h, four)?;
        tail = rest;
        off += 4;
    }
    if !tail.is_empty() && oc >= 4 {
        // The last four channels in one block of four, overlapping up to
        // three already written: each channel's value depends on its own
        // column only, so they are written again with the same value (one
        // four-channel pass instead of a pass of two and one of one).
        let last4 = row.get_mut(oc - 4..).unwrap_or(&mut []);
        return unit_block::<4>(terms, c_loop, self_row, oc - 4, h, last4);
    }
    if tail.len() >= 2 {
        let (two, rest) = tail.split_at_mut(2);
        unit_block::<2>(terms, c_loop, self_row, off, h, two)?;
        tail = rest;
        off += 2;
    }
    for (k, out) in tail.chunks_exact_mut(1).enumerate() {
        unit_block::<1>(terms, c_loop, self_row, off + k, h, out)?;
    }
    Some(())
}

/// The neighbour sums of rows `first..` for `B ≤ 4` channels per node (a
/// pass over a narrow block of channels, or a narrow layer) with unit
/// weights, normalised, into `out` (`B` values a row, as many rows as it
/// holds): [`unit_row`]'s terms, each coefficient computed as it is added
/// (no term buffer), the rows walked along `row_ptr` in one call. Stops
/// before a row of [`EXACT_TERMS`] in-edges or more (the general sum's,
/// [`aggregate_row`]) and returns the rows done; `None` where a
/// coefficient overflows, as there.
///
/// The coefficients through [`fast_coef`] (one 32×32→64-bit multiply):
/// `dinv` holds no stored `2^32` (the caller checks).
/// The input loop is skipped and the self-loop term added after the
/// edges, as in [`unit_row`]; the sums are exact (fewer than
/// [`EXACT_TERMS`] terms), so the values are the same (proptested).
#[inline(never)]
fn unit_rows_narrow<const B: usize>(
    csr: &aggregate::Csr<'_>,
    first: usize,
    dinv: &[u32],
    h: &[i32],
    flags: GcnFlags,
    out: &mut [i32],
) -> Option<usize> {
    let ptr = csr.row_ptr.get(first..).unwrap_or_default();
    let mut done = 0;
    for (o, w) in out.chunks_exact_mut(B).zip(ptr.windows(2)) {
        let nb = csr
            .sources
            .get(w[0] as usize..w[1] as usize)
            .unwrap_or_default();
        if nb.len() >= EXACT_TERMS {
            break;
        }
        let i = first + done;
        let skip = if flags.add_self_loops { i } else { usize::MAX };
        let di = u64::from(*dinv.get(i)?);
        let mut a = [0i64; B];
        let mut has_loop = false;
        for &j in nb {
            let j = usize::from(j);
            if j == skip {
                has_loop = true;
                continue;
            }
            let c = fast_coef(*dinv.get(j)?, di)?;
            let hr: &[i32; B] = h.get(j * B..)?.first_chunk()?;
            for (ak, &v) in a.iter_mut().zip(hr) {
                *ak += i64::from(c) * i64::from(v);
            }
        }
        let c_loop = if flags.add_self_loops {
            let loop_w = if has_loop { ONE_Q16 } else { fill_w(flags) };
            i64::from(loop_coef(di, loop_w)?)
        } else {
            0
        };
        let hr: &[i32; B] = h.get(i * B..)?.first_chunk()?;
        for ((ok, ak), &v) in o.iter_mut().zip(a).zip(hr) {
            *ok = round_q24(ak + c_loop * i64::from(v));
        }
        done += 1;
    }
    Some(done)
}

/// [`unit_coef`]`(dinv_load(dj), di)` for `di ≤ 2^32`: `(dj·di) >> 24` as
/// `i32` (`None` above `i32::MAX`) from the halves of one 32×32→64-bit
/// product (the stored `2^32`, `u32::MAX`, which only a degree of one
/// 2^-16th gives, through `unit_coef`), so that the compiler keeps the
/// result 32-bit and its products with `h` single `SMLAL`s (proptested
/// equal).
#[inline(always)]
fn narrow_coef(dj: u32, di: u64) -> Option<i32> {
    // (64-bit hosts multiply 64-bit values in one instruction.)
    if dj == u32::MAX || cfg!(target_pointer_width = "64") {
        return unit_coef(dinv_load(dj), di);
    }
    fast_coef(dj, di)
}

/// [`narrow_coef`] for `dj` other than the stored `2^32` (`u32::MAX`),
/// without its test: the `dinv` table of [`unit_rows_narrow`] has no such
/// value (checked once per op by [`run`]).
#[inline(always)]
fn fast_coef(dj: u32, di: u64) -> Option<i32> {
    let p = u64::from(dj) * di;
    let (hi, lo) = ((p >> 32) as u32, p as u32);
    if hi >> 23 != 0 {
        return None;
    }
    Some(((hi << 8) | (lo >> 24)) as i32)
}

/// The self-loop's coefficient [`coef`]`(true, di, loop_w, di)`: for the
/// unit weight through [`narrow_coef`] ([`unit_coef`]`(di, di)`, the same
/// value, proptested), otherwise (the `improved` fill) through `coef`.
#[inline(always)]
fn loop_coef(di: u64, loop_w: u32) -> Option<i32> {
    if loop_w == ONE_Q16 {
        narrow_coef(dinv_store(di), di)
    } else {
        coef(true, di, loop_w, di)
    }
}

/// [`unit_rows_narrow`] for `b` channels per node (1 to 4; `None` otherwise).
fn narrow_rows(
    b: usize,
    csr: &aggregate::Csr<'_>,
    first: usize,
    dinv: &[u32],
    h: &[i32],
    flags: GcnFlags,
    out: &mut [i32],
) -> Option<usize> {
    match b {
        1 => unit_rows_narrow::<1>(csr, first, dinv, h, flags, out),
        2 => unit_rows_narrow::<2>(csr, first, dinv, h, flags, out),
        3 => unit_rows_narrow::<3>(csr, first, dinv, h, flags, out),
        4 => unit_rows_narrow::<4>(csr, first, dinv, h, flags, out),
        _ => None,
    }
}

/// Channels `off..off + B` of [`unit_row`]: `out[k] = round_shift(Σ_t c_t·h[index_t + off + k]
/// + c_loop·h[self_row + off + k], 24)`; four channels through
/// [`aggregate::sum4_i64`] (assembly on Cortex-M4/M7/M33).
#[inline(always)]
fn unit_block<const B: usize>(
    terms: Terms<'_>,
    c_loop: i32,
    self_row: usize,
    off: usize,
    h: &[i32],
    out: &mut [i32],
) -> Option<()> {
    let mut a = [0i64; B];
    match a.first_chunk_mut::<4>() {
        Some(a4) if B == 4 => aggregate::sum4_i64(terms, h, off, a4),
        _ => {
            for &[j, c] in terms.terms() {
                let c = i64::from(c);
                let hr: &[i32; B] = h.get(j as u32 as usize + off..)?.first_chunk()?;
                for (ak, &v) in a.iter_mut().zip(hr) {
                    *ak += c * i64::from(v);
                }
            }
        }
    }
    let c_loop = i64::from(c_loop);
    let hr: &[i32; B] = h.get(self_row + off..)?.first_chunk()?;
    for ((o, ak), &v) in out.iter_mut().zip(a).zip(hr) {
        *o = round_q24(ak + c_loop * i64::from(v));
    }
    Some(())
}

/// [`crate::quant::round_shift_i64_to_i32`]`(x, 24)` in fewer steps: with `x = q·2^24 + r`
/// (`q = x >> 24`, `0 ≤ r < 2^24`), rounding half away from zero is
/// `q + (r ≥ 2^23)` for `x ≥ 0` and `q + (r ≥ 2^23 + 1)` for `x < 0` (the
/// floor of `(x + 2^23 − 1) / 2^24`), with no intermediate overflow; then
/// saturated to `i32`. (The reference saturates `x ± 2^23` near `i64::MIN`/`MAX`,
/// where both give a value far outside `i32` and the same saturated result;
/// proptested.)
#[inline(always)]
fn round_q24(x: i64) -> i32 {
    // In 32-bit halves (the Cortex-M form): `q`'s low word and the rest.
    let (hi, lo) = ((x >> 32) as i32, x as u32);
    let q_lo = ((lo >> 24) | ((hi as u32) << 8)) as i32;
    let q_hi = hi >> 24;
    let up = (lo & 0x00FF_FFFF) >= (1 << 23) + u32::from(hi < 0);
    if q_hi == q_lo >> 31 {
        // `q` fits `i32`; `q + up` saturates at most at `i32::MAX`.
        q_lo.saturating_add(i32::from(up))
    } else if hi < 0 {
        i32::MIN
    } else {
        i32::MAX
    }
}

/// Where a pass of [`run`] writes: channels `c0..c0 + b` of every output
/// row (`oc` channels, `orb` bytes; int4 when `packed`).
#[derive(Debug, Clone, Copy)]
struct Cols {
    c0: usize,
    b: usize,
    oc: usize,
    orb: usize,
    packed: bool,
    /// No `dinv` entry is the stored `2^32` ([`unit_rows_narrow`] may run).
    plain_dinv: bool,
}

impl Cols {
    /// Every channel of the output.
    fn whole(&self) -> bool {
        self.b == self.oc
    }
}

/// Requantizes the rows of `vals` (`cols.b` values each; records of those
/// channels in `rq`) into channels `cols.c0..` of output rows `first..`:
/// whole rows straight into `out` ([`requant::RowRequant::rows`]), a block
/// of channels through `tmp` (as many bytes as `vals` has values), then
/// copied, or written nibble by nibble into int4 rows. `None` if `out` or
/// `tmp` is short (a sizing bug: the callers report it as `InvalidOp`).
fn flush(
    rq: &requant::RowRequant<'_>,
    vals: &[i32],
    tmp: &mut [i8],
    out: &mut [i8],
    first: usize,
    cols: Cols,
) -> Option<()> {
    let rows = vals.len() / cols.b.max(1);
    let start = first.saturating_mul(cols.orb);
    let o = out.get_mut(start..start.saturating_add(rows.saturating_mul(cols.orb)))?;
    if cols.whole() {
        if cfg!(feature = "act-i4") && cols.packed {
            requant_rows(rq, vals, o, cols.oc, true);
        } else {
            rq.rows(vals, o);
        }
        return Some(());
    }
    let t = tmp.get_mut(..vals.len())?;
    rq.rows(vals, t);
    for (v, or) in t
        .chunks_exact(cols.b.max(1))
        .zip(o.chunks_exact_mut(cols.orb.max(1)))
    {
        #[cfg(feature = "act-i4")]
        if cols.packed {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(or);
            for (k, &x) in v.iter().enumerate() {
                crate::kernels::act_i4::set_value(bytes, cols.c0 + k, x);
            }
            continue;
        }
        // (By value, not `copy_from_slice`: a call to `memcpy` per row
        // costs more than the few bytes of a narrow block.)
        for (d, &x) in or.iter_mut().skip(cols.c0).zip(v) {
            *d = x;
        }
    }
    Some(())
}

/// Runs the convolution on `x` (dense, or the sparse model input), in
/// passes over blocks of [`block_channels`] output channels: `h = W·x` for
/// the block's weight rows, then every row's neighbour sum of those
/// channels, requantized into them. Not
/// inlined: its frame holds `unit_row`'s 256-byte term buffer, which would
/// otherwise enlarge the frame of the op dispatch on every op's stack path
/// (`kernels-small` has no `unit_row`, and inlines it for code size).
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(feature = "kernels-small"), inline(never))]
pub fn run(
    ctx: &Ctx<'_>,
    w: Matrix<'_>,
    params: &[u8],
    act: Activation,
    flags: GcnFlags,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let n = ctx.nodes();
    let oc = out.channels;
    // `kernels-small`: one channel per pass, whatever the width, its
    // one-value buffers on the stack (less scratch than [`scratch_bytes`]
    // gives, and the smallest code).
    let small = cfg!(feature = "kernels-small");
    let avail = scratch.available();
    let bw = if small {
        1
    } else {
        pass_channels(n, oc, avail, !shares_dinv(ctx, flags))
    };
    let (mut sum1, mut acc1, mut row1) = ([0i32], [0i64], [0i32]);
    let sums = if small {
        &mut sum1[..]
    } else {
        scratch.take::<i32>(bw)?
    };
    let h = scratch.take::<i32>(n.saturating_mul(bw))?;
    let dinv: &[u32] = if flags.normalize {
        dinv_table(ctx, flags, &mut scratch)?
    } else {
        scratch.take::<u32>(n)?
    };
    let acc = if small {
        &mut acc1[..]
    } else {
        scratch.take::<i64>(bw)?
    };
    let (bv, tv) = pass_block(bw, oc);
    let block = if small {
        &mut row1[..]
    } else {
        scratch.take::<i32>(bv)?
    };
    // (`kernels-small` takes its one-value copy only for an int4 output.)
    let tv = if small {
        4 * usize::from(out.is_packed())
    } else {
        tv
    };
    let tmp: &mut [i8] = if tv == 0 {
        &mut []
    } else {
        // (As words, the same bytes: no byte-wise zeroing routine.)
        bytemuck::try_cast_slice_mut(scratch.take::<i32>(tv.div_ceil(4))?).unwrap_or_default()
    };
    let prep = scratch.take_records(oc)?;
    let rq = requant::prepare(params, oc, act, out.zp, prep);
    let packed = out.is_packed();
    let orb = out_row_bytes(oc, packed);
    // (Once per op: the narrow sums' coefficients skip the test per term.)
    let plain_dinv = !small && dinv.iter().all(|&d| d != u32::MAX);
    let mut c0 = 0;
    while c0 < oc {
        let b = bw.min(oc - c0);
        let wb = w.rows(c0, b, x.channels());
        let (Some(sums), Some(h), Some(acc)) = (
            sums.get_mut(..b),
            h.get_mut(..n.saturating_mul(b)),
            acc.get_mut(..b),
        ) else {
            // (Sized by `scratch_bytes`: a short buffer is a bug, not a graph.)
            return Err(Error::InvalidOp { op: ctx.op });
        };
        x.weight_sums(wb, sums);
        x.matmul(wb, sums, h);
        let cols = Cols {
            c0,
            b,
            oc,
            orb,
            packed,
            plain_dinv,
        };
        let rq = rq.part(c0, b);
        let bufs = (&mut *block, &mut *tmp);
        if cfg!(feature = "kernels-small") {
            pass_small(ctx, flags, dinv, h, &rq, bufs, out.data, cols)?;
        } else {
            pass(ctx, flags, dinv, h, acc, &rq, bufs, out.data, cols)?;
        }
        c0 += b;
    }
    Ok(())
}

/// One pass of [`run`] with `kernels-small` (one channel): the general sum
/// ([`aggregate_one`]), row by row, each value requantized straight into
/// its channel (the smallest code).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pass_small(
    ctx: &Ctx<'_>,
    flags: GcnFlags,
    dinv: &[u32],
    h: &[i32],
    rq: &requant::RowRequant<'_>,
    (block, tmp): (&mut [i32], &mut [i8]),
    out: &mut [i8],
    cols: Cols,
) -> Result<()> {
    let overflow = Error::Overflow { op: ctx.op };
    let row = block.get_mut(..cols.b).unwrap_or_default();
    for (i, or) in out
        .chunks_exact_mut(cols.orb.max(1))
        .enumerate()
        .take(ctx.nodes())
    {
        if let Some(r) = row.first_mut() {
            *r = aggregate_one(ctx, i, flags, dinv, h).ok_or(overflow)?;
        }
        if cfg!(feature = "act-i4") && cols.packed {
            flush(rq, row, tmp, or, 0, cols).ok_or(Error::InvalidOp { op: ctx.op })?;
        } else {
            // (`row` writes the part's channels only.)
            rq.row(row, or.get_mut(cols.c0..).unwrap_or_default());
        }
    }
    Ok(())
}

/// [`aggregate_row`] for one channel (`h` holds one value per node), the
/// `kernels-small` form: the same terms, in one `i64`, saturating adds
/// (the same sum: [`accumulate`]'s plain adds never overflow); `None` on
/// a coefficient overflow.
#[inline(never)]
fn aggregate_one(ctx: &Ctx<'_>, i: usize, flags: GcnFlags, dinv: &[u32], h: &[i32]) -> Option<i32> {
    let d = |j: usize| dinv_load(dinv.get(j).copied().unwrap_or(0));
    let di = d(i);
    let (nb, ws) = ctx.csr.edges(i);
    let ws = if flags.edge_weight { ws } else { &[] };
    let mut loop_w = fill_w(flags);
    let mut acc = 0i64;
    // The in-edges, then (index `nb.len()`) the self-loop: one term site.
    let mut k = 0;
    loop {
        let (j, w) = match nb.get(k) {
            Some(&j) => (usize::from(j), ws.get(k).copied().unwrap_or(ONE_Q16)),
            None if k == nb.len() && flags.add_self_loops => (i, loop_w),
            None => break,
        };
        k += 1;
        if k <= nb.len() && flags.add_self_loops && j == i {
            loop_w = w;
            continue;
        }
        let c = coef(flags.normalize, d(j), w, di)?;
        acc = acc.saturating_add(i64::from(c) * i64::from(h.get(j).copied().unwrap_or(0)));
    }
    Some(round_q24(acc))
}

/// One pass of [`run`]: each row's neighbour sum of the pass's channels
/// ([`row_sum`]) into `block`, requantized `block.len() / b` rows at a time
/// ([`flush`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pass(
    ctx: &Ctx<'_>,
    flags: GcnFlags,
    dinv: &[u32],
    h: &[i32],
    acc: &mut [i64],
    rq: &requant::RowRequant<'_>,
    (block, tmp): (&mut [i32], &mut [i8]),
    out: &mut [i8],
    cols: Cols,
) -> Result<()> {
    let (n, b) = (ctx.nodes(), cols.b);
    let overflow = Error::Overflow { op: ctx.op };
    // `unit_row`'s coefficients (one buffer for the whole op, not per row).
    let mut cs = [[0i32; 2]; EXACT_TERMS];
    let narrow = b <= 4 && !flags.edge_weight && flags.normalize && cols.plain_dinv;
    let block_rows = (block.len() / b.max(1)).max(1);
    let rows_out = (out.len() / cols.orb.max(1)).min(n);
    let mut i = 0;
    while i < rows_out {
        let len = block_rows.min(rows_out - i);
        let Some(vals) = block.get_mut(..len.saturating_mul(b)) else {
            return Err(Error::InvalidOp { op: ctx.op });
        };
        let mut k = 0;
        while k < len {
            if narrow {
                let rest = vals.get_mut(k * b..).unwrap_or_default();
                k += narrow_rows(b, &ctx.csr, i + k, dinv, h, flags, rest).ok_or(overflow)?;
                if k == len {
                    break;
                }
            }
            let Some(row) = vals.get_mut(k * b..(k + 1) * b) else {
                return Err(Error::InvalidOp { op: ctx.op });
            };
            row_sum(ctx, i + k, flags, dinv, h, acc, row, &mut cs)?;
            k += 1;
        }
        flush(rq, vals, tmp, out, i, cols).ok_or(Error::InvalidOp { op: ctx.op })?;
        i += len;
    }
    Ok(())
}

/// Row `i`'s neighbour sum of the channels of `h` (`row.len()` of them per
/// node) into `row`: unit weights, normalised, fewer than [`EXACT_TERMS`]
/// in-edges: [`unit_row`], the channels in blocks of 8 (64-bit hosts) or 4
/// (32-bit targets: eight `i64` accumulators take the registers);
/// otherwise the general sum ([`aggregate_row`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn row_sum(
    ctx: &Ctx<'_>,
    i: usize,
    flags: GcnFlags,
    dinv: &[u32],
    h: &[i32],
    acc: &mut [i64],
    row: &mut [i32],
    cs: &mut [[i32; 2]; EXACT_TERMS],
) -> Result<()> {
    let overflow = Error::Overflow { op: ctx.op };
    if !flags.edge_weight && flags.normalize && ctx.csr.degree(i) < EXACT_TERMS {
        let nb = ctx.csr.neighbors(i);
        let di = dinv_load(dinv.get(i).copied().unwrap_or(0));
        let done = if cfg!(target_pointer_width = "64") {
            unit_row::<8>(nb, i, di, dinv, h, flags, row, cs)
        } else {
            unit_row::<4>(nb, i, di, dinv, h, flags, row, cs)
        };
        return done.ok_or(overflow);
    }
    aggregate_row(ctx, i, flags, dinv, h, acc, row, overflow)
}

/// [`run`] for the rows `ctx.dirty()` asks for only (an incremental run,
/// `crate::Session::update`), in the same passes over channel blocks: the
/// per-node products `h_j = W·x_j` of the rows those read
/// ([`super::Dirty::needs`]) and the general neighbour sum of each
/// row to compute — the same values as [`run`]'s (its unit-weight rows are
/// proptested equal to the general sum), the other output rows untouched.
/// Takes the same scratch as [`run`].
#[allow(clippy::too_many_arguments)]
// Not inlined into `ops::run`: only incremental runs take this path, and
// its frame stays out of every other run's (docs/guarantees.md, the stack bound).
#[inline(never)]
pub fn run_rows(
    ctx: &Ctx<'_>,
    w: Matrix<'_>,
    params: &[u8],
    act: Activation,
    flags: GcnFlags,
    x: Src<'_>,
    out: Out<'_>,
    mut scratch: Scratch<'_>,
) -> Result<()> {
    let n = ctx.nodes();
    let oc = out.channels;
    let bw = pass_channels(n, oc, scratch.available(), !shares_dinv(ctx, flags));
    let sums = scratch.take::<i32>(bw)?;
    let h = scratch.take::<i32>(n.saturating_mul(bw))?;
    let dinv: &[u32] = if flags.normalize {
        dinv_table(ctx, flags, &mut scratch)?
    } else {
        scratch.take::<u32>(n)?
    };
    let acc = scratch.take::<i64>(bw)?;
    let (bv, tv) = pass_block(bw, oc);
    let block = scratch.take::<i32>(bv)?;
    // (As words, the same bytes: no byte-wise zeroing routine in a
    // code-size build.)
    let tmp: &mut [i8] =
        bytemuck::try_cast_slice_mut(scratch.take::<i32>(tv.div_ceil(4))?).unwrap_or_default();
    let prep = scratch.take_records(oc)?;
    let rq = requant::prepare(params, oc, act, out.zp, prep);
    let mut cs = [[0i32; 2]; EXACT_TERMS];
    let dirty = ctx.dirty();
    let packed = out.is_packed();
    let orb = out_row_bytes(oc, packed);
    let mut c0 = 0;
    while c0 < oc {
        let b = bw.min(oc - c0);
        let wb = w.rows(c0, b, x.channels());
        let (Some(sums), Some(h), Some(acc), Some(row)) = (
            sums.get_mut(..b),
            h.get_mut(..n.saturating_mul(b)),
            acc.get_mut(..b),
            block.get_mut(..b),
        ) else {
            return Err(Error::InvalidOp { op: ctx.op });
        };
        x.weight_sums(wb, sums);
        for (j, hj) in h.chunks_exact_mut(b.max(1)).enumerate() {
            if dirty.needs(j) {
                x.matvec_row(wb, j, sums, hj);
            }
        }
        let cols = Cols {
            c0,
            b,
            oc,
            orb,
            packed,
            plain_dinv: false,
        };
        let rq = rq.part(c0, b);
        for i in (0..n).filter(|&i| dirty.row(i)) {
            row_sum(ctx, i, flags, dinv, h, acc, row, &mut cs)?;
            flush(&rq, row, tmp, out.data, i, cols).ok_or(Error::InvalidOp { op: ctx.op })?;
        }
        c0 += b;
    }
    Ok(())
}

/// One row of the general neighbour sum into `row`: `Σ_j c_ij·h_j` over
/// the in-edges of `i` and its self-loop, in `i64` (`acc`), rounded from
/// Q24.
#[allow(clippy::too_many_arguments)]
#[inline]
fn aggregate_row(
    ctx: &Ctx<'_>,
    i: usize,
    flags: GcnFlags,
    dinv: &[u32],
    h: &[i32],
    acc: &mut [i64],
    row: &mut [i32],
    overflow: Error,
) -> Result<()> {
    acc.fill(0);
    let di = dinv_load(dinv.get(i).copied().unwrap_or(0));
    let exact = ctx.csr.degree(i) < EXACT_TERMS;
    // One pass: the self-loop's weight (the last input loop's, or the
    // fill) is noted on the way and its term added after the edges.
    let mut loop_w = fill_w(flags);
    if flags.edge_weight || cfg!(feature = "kernels-small") {
        for (j, w) in in_edges(ctx, i, flags) {
            if flags.add_self_loops && j == i {
                loop_w = w;
                continue;
            }
            let dj = dinv_load(dinv.get(j).copied().unwrap_or(0));
            let c = coef(flags.normalize, dj, w, di).ok_or(overflow)?;
            accumulate(acc, c, h, j, exact);
        }
    } else {
        // Unit weights: the same terms with the weight 1.0 folded into
        // the coefficient ([`unit_coef`]) and no weight stream to read.
        let unnormalised = coef(false, 0, ONE_Q16, 0).ok_or(overflow)?;
        for &j in ctx.csr.edges(i).0 {
            let j = usize::from(j);
            if flags.add_self_loops && j == i {
                loop_w = ONE_Q16;
                continue;
            }
            let c = if flags.normalize {
                unit_coef(dinv_load(dinv.get(j).copied().unwrap_or(0)), di).ok_or(overflow)?
            } else {
                unnormalised
            };
            accumulate(acc, c, h, j, exact);
        }
    }
    if flags.add_self_loops {
        let c = coef(flags.normalize, di, loop_w, di).ok_or(overflow)?;
        accumulate(acc, c, h, i, exact);
    }
    for (r, &a) in row.iter_mut().zip(acc.iter()) {
        *r = round_q24(a);
    }
    Ok(())
}

/// GCNConv (PyG `gcn_norm` semantics), node tensors only.
///
/// 1. `h_j[c] = Σ_k W[c,k]·(x_jk − zp_x)` (i32) for every node.
/// 2. Edge weights `w` are Q16 (`1.0 = 65536`; all 1.0 unless
///    `edge_weight` and the graph has weights). Self-loops as
///    `add_remaining_self_loops` when `add_self_loops`: input loops `i→i`
///    are dropped from the neighbour sum, node `i` gets one loop with the
///    weight of its last input loop, or `fill` (1.0, or 2.0 if `improved`).
/// 3. If `normalize`: `deg_i = Σ_{j→i} w_ji` (u64, Q16, loop included),
///    `dinv_i = deg_i = 0 ? 0 : isqrt(2^64 / deg_i)` (Q24), and
///    `coef_ji = (dinv_j · w_ji · dinv_i) >> 40` (u128 product, Q24).
///    Otherwise `coef_ji = w_ji << 8` (Q24).
/// 4. `acc_i[c] = round_shift_i64_to_i32(Σ_{j→i} coef_ji · h_j[c], 24) + bias[c]`;
///    activation; requantization. A coefficient above `i32::MAX` is an
///    [`crate::Error::Overflow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GcnConv {
    /// Input node tensor.
    pub input: u8,
    /// Output node tensor.
    pub output: u8,
    /// int8 weights `[out_ch, in_ch]` of `lin`.
    pub weights: Section,
    /// [`ChannelParams`] (bias is PyG's conv bias).
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
}

impl GcnConv {
    /// Decodes the fields (after the tag) with the small metadata reader.
    pub(crate) fn read_small(r: &mut Reader<'_>) -> Option<Self> {
        Some(GcnConv {
            input: r.byte()?,
            output: r.byte()?,
            weights: r.section()?,
            params: r.section()?,
            act: r.activation()?,
            improved: r.bool()?,
            add_self_loops: r.bool()?,
            normalize: r.bool()?,
            edge_weight: r.bool()?,
        })
    }

    /// The normalisation flags.
    pub fn flags(&self) -> GcnFlags {
        GcnFlags {
            improved: self.improved,
            add_self_loops: self.add_self_loops,
            normalize: self.normalize,
            edge_weight: self.edge_weight,
        }
    }
}

impl OpDef for GcnConv {
    /// One round of message passing along the edges.
    fn hops(&self) -> Option<u8> {
        Some(1)
    }
    fn name(&self) -> &'static str {
        "gcn_conv"
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
    fn uses_edge_weight(&self) -> bool {
        self.edge_weight
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
            i.kind == TensorKind::Node
                && o.kind == TensorKind::Node
                && c.weights_ok(self.weights, co, ci)
                && c.params_ok(self.params, co)
                && Check::act_ok(&self.act),
        )
    }
    fn scratch_bytes(&self, s: &Shapes<'_>) -> usize {
        if s.wide {
            wide_scratch_bytes(s.nodes, s.ch(self.output))
        } else {
            scratch_bytes(s.nodes, s.ch(self.input), s.ch(self.output))
        }
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
        // (Two direct calls, not a function pointer: the static stack
        // bound of `scripts/panic-check.sh` follows direct calls only.)
        let d = env.ctx.dirty();
        if d.by_rows(d.needed, env.ctx.nodes()) {
            run_rows(env.ctx, w, params, self.act, self.flags(), x, out, scratch)
        } else {
            run(env.ctx, w, params, self.act, self.flags(), x, out, scratch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::round_shift_i64_to_i32;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn dinv_matches_u128_formula(deg in any::<u64>(), shift in 0u32..64) {
            for d in [deg, deg >> shift, 1u64 << shift, (1u64 << shift).wrapping_add(1)] {
                let want = if d == 0 { 0 } else { crate::quant::isqrt_u128((1u128 << 64) / u128::from(d)) as u64 };
                prop_assert_eq!(dinv_q24(d), want, "deg {}", d);
            }
        }

        #[test]
        fn coef_matches_u128_formula(dj in 0u64..=(1 << 32), w in any::<u32>(), di in 0u64..=(1 << 32), norm in any::<bool>()) {
            let want = if norm {
                (u128::from(dj) * u128::from(w) * u128::from(di)) >> 40
            } else {
                u128::from(w) << 8
            };
            let want = if want > i32::MAX as u128 { None } else { Some(want as i32) };
            prop_assert_eq!(coef(norm, dj, w, di), want);
        }
    }

    proptest! {
        #[test]
        fn narrow_coef_matches_unit_coef(dj in any::<u32>(), di in 0u64..=(1 << 32), small in any::<bool>()) {
            let (dj, di) = if small { (dj >> 8, di >> 8) } else { (dj, di) };
            for dj in [dj, u32::MAX, u32::MAX - 1, 1 << 24] {
                prop_assert_eq!(narrow_coef(dj, di), unit_coef(dinv_load(dj), di), "{} {}", dj, di);
                // (The 32-bit targets' path, on every host too.)
                if dj != u32::MAX {
                    prop_assert_eq!(fast_coef(dj, di), unit_coef(u64::from(dj), di), "{} {}", dj, di);
                }
            }
        }

        #[test]
        fn loop_coef_matches_coef(d in 0u64..=(1 << 32), improved in any::<bool>()) {
            let w = if improved { 2 * ONE_Q16 } else { ONE_Q16 };
            for d in [d, d >> 8, 1 << 32, 1 << 24, dinv_q24(3 << 16)] {
                prop_assert_eq!(loop_coef(d, w), coef(true, d, w, d), "{}", d);
            }
        }

        #[test]
        fn unit_coef_matches_coef(dj in 0u64..=(1 << 32), di in 0u64..=(1 << 32), small in any::<bool>()) {
            let (dj, di) = if small { (dj >> 8, di >> 8) } else { (dj, di) };
            prop_assert_eq!(unit_coef(dj, di), coef(true, dj, ONE_Q16, di));
        }
    }

    /// The general loop of [`run`] for one row (any flags): `coef` per edge,
    /// saturating `i64` sums, the self-loop term after the edges.
    fn general_row(
        nb: &[u16],
        i: usize,
        dinv: &[u64],
        h: &[i32],
        flags: GcnFlags,
        oc: usize,
    ) -> Option<Vec<i32>> {
        let mut acc = vec![0i64; oc];
        let di = dinv[i];
        let mut loop_w = fill_w(flags);
        for &j in nb {
            let j = usize::from(j);
            if flags.add_self_loops && j == i {
                loop_w = ONE_Q16;
                continue;
            }
            let c = coef(flags.normalize, dinv[j], ONE_Q16, di)?;
            accumulate(&mut acc, c, h, j, false);
        }
        if flags.add_self_loops {
            let c = coef(flags.normalize, di, loop_w, di)?;
            accumulate(&mut acc, c, h, i, false);
        }
        Some(acc.iter().map(|&a| round_shift_i64_to_i32(a, 24)).collect())
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn unit_row_matches_general_loop(
            n in 1usize..12,
            edges in proptest::collection::vec(any::<u16>(), 0..31),
            degs in proptest::collection::vec(0u64..70, 12),
            hs in proptest::collection::vec(-(1i32 << 26)..(1 << 26), 12 * 16),
            eight in any::<bool>(),
            oc in 1usize..=16,
            improved in any::<bool>(),
            loops in any::<bool>(),
            i in 0usize..12,
        ) {
            let i = i % n;
            let nb: Vec<u16> = edges.iter().map(|&e| e % n as u16).collect();
            let dinv: Vec<u32> = degs[..n].iter().map(|&d| dinv_store(dinv_q24(d << 16))).collect();
            let h = &hs[..n * oc];
            let flags = GcnFlags { improved, add_self_loops: loops, normalize: true, edge_weight: false };
            let wide: Vec<u64> = dinv.iter().map(|&d| dinv_load(d)).collect();
            let want = general_row(&nb, i, &wide, h, flags, oc);
            let mut row = vec![7i32; oc];
            let got = if eight {
                unit_row::<8>(&nb, i, wide[i], &dinv, h, flags, &mut row, &mut [[9; 2]; EXACT_TERMS])
            } else {
                unit_row::<4>(&nb, i, wide[i], &dinv, h, flags, &mut row, &mut [[9; 2]; EXACT_TERMS])
            };
            prop_assert_eq!(got.map(|_| row), want.clone());
            if oc <= 4 {
                // Row i holds the edges, every other row none.
                let row_ptr: Vec<u32> = (0..=n).map(|k| if k > i { nb.len() as u32 } else { 0 }).collect();
                let csr = aggregate::Csr { row_ptr: &row_ptr, sources: &nb, weights: None };
                let mut row = vec![7i32; oc];
                let got = narrow_rows(oc, &csr, i, &dinv, h, flags, &mut row);
                let want = want.map(|w| (usize::from(nb.len() < EXACT_TERMS), w));
                let want = want.map(|(k, w)| (k, if k == 1 { w } else { vec![7; oc] }));
                prop_assert_eq!(got.map(|k| (k, row)), want);
            }
        }
    }

    proptest! {
        #[test]
        fn round_q24_matches_round_shift(x in any::<i64>(), small in -(1i64 << 40)..(1 << 40), k in -3i64..3) {
            for v in [x, small, (small >> 16) << 23, ((small >> 16) << 23) + k, i64::MIN + k.abs(), i64::MAX - k.abs()] {
                prop_assert_eq!(round_q24(v), round_shift_i64_to_i32(v, 24), "x {}", v);
            }
        }
    }

    #[test]
    fn unit_coef_on_every_small_degree_pair() {
        // Under Miri (scripts/areas/hostile.sh, ~1000× slower) every 13th pair.
        let step = if cfg!(miri) { 13 } else { 1 };
        for a in (0..200u64).step_by(step) {
            for b in (0..200u64).step_by(step) {
                let (dj, di) = (dinv_q24(a << 16), dinv_q24(b << 16));
                assert_eq!(unit_coef(dj, di), coef(true, dj, ONE_Q16, di));
            }
        }
        assert_eq!(unit_coef(1 << 32, 1 << 32), None);
        assert_eq!(
            unit_coef(1 << 32, 1 << 23),
            coef(true, 1 << 32, ONE_Q16, 1 << 23)
        );
    }

    #[test]
    fn coef_edges() {
        // deg 1 on both ends, weight 1: coefficient 1.0 in Q24.
        assert_eq!(coef(true, 1 << 24, 1 << 16, 1 << 24), Some(1 << 24));
        assert_eq!(coef(true, 1 << 32, u32::MAX, 1 << 32), None);
        assert_eq!(coef(false, 0, (1 << 23) - 1, 0), Some(((1 << 23) - 1) << 8));
        assert_eq!(coef(false, 0, 1 << 23, 0), None);
    }

    /// Degrees below 2^20: every one natively; under Miri
    /// (scripts/areas/hostile.sh, ~1000× slower) every 4099th, as in
    /// `quant::tests::isqrt_pow2_64_div_exhaustive_below_2_20`.
    fn degrees_below_2_pow_20() -> core::iter::StepBy<core::ops::Range<u64>> {
        (0u64..1 << 20).step_by(if cfg!(miri) { 4099 } else { 1 })
    }

    #[test]
    fn dinv_table_matches_definition_below_2_pow_20() {
        for d in degrees_below_2_pow_20() {
            assert_eq!(dinv_q24(d), dinv_q24_ref(d), "deg {d}");
        }
        for k in 0..DINV_TABLE_LEN as u64 + 2 {
            assert_eq!(dinv_q24(k << 16), dinv_q24_ref(k << 16), "deg {k}·2^16");
        }
    }

    #[test]
    fn dinv_fits_32_bits_but_for_deg_1() {
        assert_eq!(dinv_store(dinv_q24(1)), u32::MAX);
        assert!(dinv_q24(2) < u64::from(u32::MAX));
        for d in degrees_below_2_pow_20().chain([u64::MAX, u64::MAX - 1, 1 << 40, 3, 2]) {
            let v = dinv_q24(d);
            assert_eq!(dinv_load(dinv_store(v)), v, "deg {d}");
        }
    }

    proptest! {
        #[test]
        fn dinv_store_round_trips(deg in any::<u64>()) {
            let v = dinv_q24(deg);
            prop_assert_eq!(dinv_load(dinv_store(v)), v);
        }
    }

    #[test]
    fn dinv_values() {
        assert_eq!(dinv_q24(0), 0);
        assert_eq!(dinv_q24(1 << 16), 1 << 24); // deg 1 → 1.0
        assert_eq!(dinv_q24(4 << 16), 1 << 23); // deg 4 → 0.5
        assert_eq!(dinv_q24(1), 1 << 32);
    }
}
