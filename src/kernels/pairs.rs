//! Dense int8 products on 16-bit pairs: the Cortex-M DSP-extension kernels
//! (`SXTB16` + `SMLAD`), and a portable emulation of the same instructions
//! that runs the same driver code on any target (for host tests).
//!
//! Same results as [`super::dense::matvec_ref`]:
//! `out[c] = Σ_k W[c,k]·(x_k − zp)`, exact in `i32`.
//!
//! # How the DSP kernels work
//!
//! A word of four int8 values `(v0, v1, v2, v3)` unpacks with `SXTB16`
//! into the 16-bit pairs `(v0, v2)` and, with `ROR #8`, `(v1, v3)`. One
//! `SMLAD` multiplies two such pairs lane by lane and adds both products to
//! an accumulator: two multiply-accumulates per instruction. Unpacking the
//! weights the same way gives matching lanes, so
//! `Σ_{k<4} w_k·x_k = smlad(sxtb16(w), sxtb16(x)) + smlad(sxtb16(w ror 8), sxtb16(x ror 8))`.
//!
//! The input rows are unpacked **once**, with the zero point subtracted
//! (`SSUB16`; `x − zp` fits 16 bits), into a stack buffer of pairs (a tile
//! of [`TILE`] columns), so only the weights are unpacked in the inner loop,
//! and each unpacked weight word serves several products:
//!
//! * [`matmul_with`] (whole-graph products: GCN, SAGE sum/mean): **four nodes
//!   per pass**. The buffer holds, per group of four columns, the even pairs
//!   of nodes 0..3 then their odd pairs, so one `LDM` loads the four pairs
//!   one unpacked weight half meets. Per 16 MACs: 1 `LDR` + 2 `SXTB16`
//!   (weights) + 2 `LDM` + 8 `SMLAD` = 13 instructions (0.81 per MAC), plus
//!   the loop branch every 16 columns; the loop over output channels
//!   (accumulators loaded from and stored to the four output rows) is in
//!   the same assembly block.
//! * [`matvec_with`] (one node: linear layers, SAGE root and max paths):
//!   **two output channels per pass** over one node's pairs (1.25 + ε per MAC).
//!
//! Columns past the last full group of eight of a tile, and nodes past the
//! last full block of four, take plain paths (scalar columns, the one-node
//! kernel).
//!
//! Every function here is safe to call with inconsistent slices: the
//! assembly is entered only after the lengths it will touch were checked
//! against the slices, and nothing panics.

/// Columns per tile of the unpacked-input buffer (a multiple of 8). The
/// four-node buffer takes `TILE · 4 · 2` bytes of stack, the one-node buffer
/// `TILE · 2`.
pub const TILE: usize = 128;

/// The primitive operations the drivers are written in.
pub trait Pairs {
    /// `SXTB16 x`: `(sext(x[7:0]), sext(x[23:16]))` as a low/high 16-bit pair.
    fn sxtb16(x: u32) -> u32;
    /// `SXTB16 x, ROR #8`: `(sext(x[15:8]), sext(x[31:24]))`.
    fn sxtb16_ror8(x: u32) -> u32;
    /// `SSUB16 a, b`: lane-wise 16-bit wrapping subtraction.
    fn ssub16(a: u32, b: u32) -> u32;
    /// Four nodes, channels `c < n`: for each node `j < 4`,
    /// `out[j·out_ch + c] += Σ_{k < 8·g8} w[c·in_ch + k]·x_j[k]` with the
    /// pairs `xb` in the four-node layout (`16·g8` words). Does nothing
    /// unless all of it is within the slices.
    fn block4(
        out: &mut [i32],
        out_ch: usize,
        n: usize,
        w: &[i8],
        in_ch: usize,
        g8: usize,
        xb: &[u32],
    );
    /// One node, two channels: `acc[0] += Σ_k w0[k]·x[k]`,
    /// `acc[1] += Σ_k w1[k]·x[k]` for
    /// `k < 8·min(w0.len()/8, w1.len()/8, xb.len()/4)`, `xb` in the one-node
    /// layout (per four columns: even pair, odd pair).
    fn row2(acc: &mut [i32; 2], w0: &[i8], w1: &[i8], xb: &[u32]);
}

/// `SMLAD a, b, acc`: `acc + a.lo·b.lo + a.hi·b.hi` (wrapping).
#[inline]
pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let lo = i32::from(a as u16 as i16) * i32::from(b as u16 as i16);
    let hi = i32::from((a >> 16) as u16 as i16) * i32::from((b >> 16) as u16 as i16);
    acc.wrapping_add(lo).wrapping_add(hi)
}

#[inline]
fn word(b: &[i8]) -> u32 {
    match b {
        [a, b, c, d, ..] => u32::from_le_bytes([*a as u8, *b as u8, *c as u8, *d as u8]),
        _ => 0,
    }
}

/// Whether [`Pairs::block4`]'s arguments describe memory within the slices.
#[inline]
fn block4_fits(
    out: &[i32],
    out_ch: usize,
    n: usize,
    w: &[i8],
    in_ch: usize,
    g8: usize,
    xb: &[u32],
) -> bool {
    block4_fits_in(out, out_ch, n, w.len(), in_ch, 8, g8, xb)
}

/// The check of [`block4_fits`] for weight rows of `row` bytes of which a
/// group of eight columns takes `group` bytes (8 for int8, 2 for int2): for
/// `n` channels, four output rows of `out_ch`, `g8` groups of each of the
/// `n` weight rows in `w_len` bytes, and `16·g8` pair words.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn block4_fits_in(
    out: &[i32],
    out_ch: usize,
    n: usize,
    w_len: usize,
    row: usize,
    group: usize,
    g8: usize,
    xb: &[u32],
) -> bool {
    let out_need = out_ch.checked_mul(3).and_then(|v| v.checked_add(n));
    let w_need = n
        .checked_sub(1)
        .and_then(|c| c.checked_mul(row))
        .and_then(|v| v.checked_add(g8.checked_mul(group)?));
    let x_need = g8.checked_mul(16);
    n > 0
        && g8 > 0
        && n <= out_ch
        && g8.saturating_mul(group) <= row
        && matches!(out_need, Some(v) if v <= out.len())
        && matches!(w_need, Some(v) if v <= w_len)
        && matches!(x_need, Some(v) if v <= xb.len())
}

/// Portable emulation of the DSP instructions (bit-exact model of `SXTB16`,
/// `SSUB16` and `SMLAD`), so the drivers run and are tested on any target.
#[derive(Debug, Clone, Copy)]
pub struct Emulated;

impl Pairs for Emulated {
    #[inline]
    fn sxtb16(x: u32) -> u32 {
        let lo = x as u8 as i8 as i16 as u16;
        let hi = (x >> 16) as u8 as i8 as i16 as u16;
        u32::from(lo) | (u32::from(hi) << 16)
    }

    #[inline]
    fn sxtb16_ror8(x: u32) -> u32 {
        Self::sxtb16(x.rotate_right(8))
    }

    #[inline]
    fn ssub16(a: u32, b: u32) -> u32 {
        let lo = (a as u16).wrapping_sub(b as u16);
        let hi = ((a >> 16) as u16).wrapping_sub((b >> 16) as u16);
        u32::from(lo) | (u32::from(hi) << 16)
    }

    fn block4(
        out: &mut [i32],
        out_ch: usize,
        n: usize,
        w: &[i8],
        in_ch: usize,
        g8: usize,
        xb: &[u32],
    ) {
        if !block4_fits(out, out_ch, n, w, in_ch, g8, xb) {
            return;
        }
        for c in 0..n {
            let mut acc = [0i32; 4];
            for (j, a) in acc.iter_mut().enumerate() {
                *a = out.get(j * out_ch + c).copied().unwrap_or(0);
            }
            let row = w.get(c * in_ch..c * in_ch + 8 * g8).unwrap_or(&[]);
            for (w4, x4) in row.chunks_exact(4).zip(xb.chunks_exact(8)) {
                let raw = word(w4);
                let (we, wo) = (Self::sxtb16(raw), Self::sxtb16_ror8(raw));
                if let [e0, e1, e2, e3, o0, o1, o2, o3] = x4 {
                    acc[0] = smlad(wo, *o0, smlad(we, *e0, acc[0]));
                    acc[1] = smlad(wo, *o1, smlad(we, *e1, acc[1]));
                    acc[2] = smlad(wo, *o2, smlad(we, *e2, acc[2]));
                    acc[3] = smlad(wo, *o3, smlad(we, *e3, acc[3]));
                }
            }
            for (j, a) in acc.iter().enumerate() {
                if let Some(o) = out.get_mut(j * out_ch + c) {
                    *o = *a;
                }
            }
        }
    }

    fn row2(acc: &mut [i32; 2], w0: &[i8], w1: &[i8], xb: &[u32]) {
        for ((a, b), x) in w0
            .chunks_exact(8)
            .zip(w1.chunks_exact(8))
            .zip(xb.chunks_exact(4))
        {
            for ((a4, b4), x2) in a
                .chunks_exact(4)
                .zip(b.chunks_exact(4))
                .zip(x.chunks_exact(2))
            {
                if let [e, o] = x2 {
                    let (ra, rb) = (word(a4), word(b4));
                    acc[0] = smlad(
                        Self::sxtb16_ror8(ra),
                        *o,
                        smlad(Self::sxtb16(ra), *e, acc[0]),
                    );
                    acc[1] = smlad(
                        Self::sxtb16_ror8(rb),
                        *o,
                        smlad(Self::sxtb16(rb), *e, acc[1]),
                    );
                }
            }
        }
    }
}

#[cfg(tinygnn_dsp)]
pub use asm::Dsp;

/// Whether this build has the assembly kernels (`Dsp`): `cfg(tinygnn_dsp)`,
/// set by the crate's build script for targets with the Arm DSP extension
/// (thumbv7em; thumbv8m.main with `+dsp`).
pub const HAS_DSP: bool = cfg!(tinygnn_dsp);

/// The pair instructions of this build: `Dsp` where [`HAS_DSP`], else [`Emulated`].
#[cfg(tinygnn_dsp)]
pub type Native = Dsp;
/// The pair instructions of this build: `Dsp` where [`HAS_DSP`], else [`Emulated`].
#[cfg(not(tinygnn_dsp))]
pub type Native = Emulated;

/// The real instructions, through stable inline assembly (the
/// `core::arch::arm` DSP intrinsics are unstable).
#[cfg(tinygnn_dsp)]
#[allow(unsafe_code)]
mod asm {
    use super::{block4_fits, Pairs};
    use core::arch::asm;

    /// The Cortex-M DSP extension (`SXTB16`, `SSUB16`, `SMLAD`).
    #[derive(Debug, Clone, Copy)]
    pub struct Dsp;

    /// What the channel loop of [`Dsp::block4`] reads (and updates) through r7.
    #[repr(C)]
    struct Block4Args {
        /// `&out[c]` of node 0 for the current channel `c` (advanced by 4 per channel).
        out: *mut i32,
        /// Bytes from one node's output row to the next: `4·out_ch`.
        ostride: usize,
        /// Start of the pair buffer.
        xb: *const u32,
        /// End of the pairs one channel reads: `xb + 16·g8` words.
        xend: *const u32,
        /// Bytes from the end of one weight row's `8·g8` columns to the next row: `in_ch − 8·g8`.
        wskip: usize,
        /// Channels left.
        count: usize,
        /// Groups of eight columns.
        g8: usize,
    }

    /// One group of four columns for four nodes: raw weights in r6
    /// (post-incremented load from r12), unpacked into r4 (even lanes,
    /// then odd); pairs through r0-r3 from r11 (incremented);
    /// accumulators r5, r8, r9, r10.
    macro_rules! group4 {
        () => {
            concat!(
                "ldr r6, [r12], #4\n",
                "sxtb16 r4, r6\n",
                "ldm r11!, {{r0-r3}}\n",
                "smlad r5, r4, r0, r5\n",
                "smlad r8, r4, r1, r8\n",
                "smlad r9, r4, r2, r9\n",
                "smlad r10, r4, r3, r10\n",
                "sxtb16 r4, r6, ror #8\n",
                "ldm r11!, {{r0-r3}}\n",
                "smlad r5, r4, r0, r5\n",
                "smlad r8, r4, r1, r8\n",
                "smlad r9, r4, r2, r9\n",
                "smlad r10, r4, r3, r10\n",
            )
        };
    }

    /// One group of four columns for two channels of one node: pairs in
    /// `$e` (even), `$o` (odd); weights of channel 1 at [r12 + r9], of
    /// channel 0 at [r12] (post-incremented); accumulators r5 (channel 0),
    /// r8 (channel 1).
    macro_rules! row_group {
        ($e:literal, $o:literal) => {
            concat!(
                "ldr r4, [r12, r9]\n",
                "sxtb16 r10, r4\n",
                "smlad r8, r10, ",
                $e,
                ", r8\n",
                "sxtb16 r4, r4, ror #8\n",
                "smlad r8, r4, ",
                $o,
                ", r8\n",
                "ldr r4, [r12], #4\n",
                "sxtb16 r10, r4\n",
                "smlad r5, r10, ",
                $e,
                ", r5\n",
                "sxtb16 r4, r4, ror #8\n",
                "smlad r5, r4, ",
                $o,
                ", r5\n",
            )
        };
    }

    impl Pairs for Dsp {
        #[inline]
        fn sxtb16(x: u32) -> u32 {
            let r: u32;
            // SAFETY: one register-to-register instruction; no memory, stack or flags.
            unsafe {
                asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            r
        }

        #[inline]
        fn sxtb16_ror8(x: u32) -> u32 {
            let r: u32;
            // SAFETY: one register-to-register instruction; no memory, stack or flags.
            unsafe {
                asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            r
        }

        #[inline]
        fn ssub16(a: u32, b: u32) -> u32 {
            let r: u32;
            // SAFETY: one register-to-register instruction (it sets only the
            // GE flags, which no Rust code reads); no memory or stack.
            unsafe {
                asm!("ssub16 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                     options(pure, nomem, nostack));
            }
            r
        }

        fn block4(
            out: &mut [i32],
            out_ch: usize,
            n: usize,
            w: &[i8],
            in_ch: usize,
            g8: usize,
            xb: &[u32],
        ) {
            if !block4_fits(out, out_ch, n, w, in_ch, g8, xb) {
                return;
            }
            let mut args = Block4Args {
                out: out.as_mut_ptr(),
                ostride: 4 * out_ch,
                xb: xb.as_ptr(),
                xend: xb.as_ptr().wrapping_add(16 * g8),
                wskip: in_ch - 8 * g8,
                count: n,
                g8,
            };
            // SAFETY: `block4_fits` checked, before this point, everything
            // the loop touches: for each of the n ≥ 1 channels c, it reads
            // and writes out[j·out_ch + c] for j < 4 (≤ 3·out_ch + n − 1 <
            // out.len()), reads the 8·g8 weight bytes at c·in_ch (unaligned
            // word loads, allowed on ARMv7-M/v8-M Mainline; the last ends at
            // (n−1)·in_ch + 8·g8 ≤ w.len()) and the 16·g8 words of `xb`
            // (word-aligned, as `LDM` needs). `args` is a live local that
            // only this block uses while it runs. Registers: all operands
            // are declared clobbered; r6 and r7 (which LLVM reserves and
            // cannot be operands) are saved on the stack and restored.
            unsafe {
                asm!(
                    "push {{r6, r7}}",
                    "mov r7, r0",
                    // Channel loop: accumulators from the four output rows.
                    "5:",
                    "ldr r0, [r7, #0]",
                    "ldr r1, [r7, #4]",
                    "ldr r5, [r0]",
                    "ldr r8, [r0, r1]",
                    "add r2, r0, r1, lsl #1",
                    "ldr r9, [r2]",
                    "ldr r10, [r2, r1]",
                    "ldr r11, [r7, #8]",
                    "ldr lr, [r7, #12]",
                    "ldr r0, [r7, #24]",
                    // An odd group of eight columns first, then sixteen per iteration.
                    "tst r0, #1",
                    "beq 1f",
                    group4!(), group4!(),
                    "1:",
                    "cmp r11, lr",
                    "beq 3f",
                    "2:",
                    group4!(), group4!(), group4!(), group4!(),
                    "cmp r11, lr",
                    "bne 2b",
                    "3:",
                    // Store the accumulators, next channel.
                    "ldr r0, [r7, #0]",
                    "ldr r1, [r7, #4]",
                    "str r8, [r0, r1]",
                    "add r2, r0, r1, lsl #1",
                    "str r9, [r2]",
                    "str r10, [r2, r1]",
                    "str r5, [r0], #4",
                    "str r0, [r7, #0]",
                    "ldr r0, [r7, #16]",
                    "add r12, r12, r0",
                    "ldr r0, [r7, #20]",
                    "subs r0, r0, #1",
                    "str r0, [r7, #20]",
                    "bne 5b",
                    "pop {{r6, r7}}",
                    inout("r0") &raw mut args => _, inout("r12") w.as_ptr() => _,
                    out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
                    out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("lr") _,
                );
            }
        }

        fn row2(acc: &mut [i32; 2], w0: &[i8], w1: &[i8], xb: &[u32]) {
            let g8 = (w0.len() / 8).min(w1.len() / 8).min(xb.len() / 4);
            if g8 == 0 {
                return;
            }
            let [mut a0, mut a1] = *acc;
            // Distance from row 0 to row 1 (any sign; the address arithmetic wraps).
            let stride = (w1.as_ptr() as usize).wrapping_sub(w0.as_ptr() as usize);
            // SAFETY: reads 8·g8 bytes from each of `w0` (at r12) and `w1`
            // (at r12 + stride) and 4·g8 aligned words from `xb`, all within
            // the slices; writes only the named registers; r11 stops at
            // `xend`, 4·g8 words past the start.
            unsafe {
                let px = xb.as_ptr();
                let xend = px.add(4 * g8);
                asm!(
                    "2:",
                    "ldm r11!, {{r0-r3}}",
                    row_group!("r0", "r1"),
                    row_group!("r2", "r3"),
                    "cmp r11, lr",
                    "bne 2b",
                    inout("r5") a0, inout("r8") a1,
                    inout("r11") px => _, inout("r12") w0.as_ptr() => _, in("r9") stride, in("lr") xend,
                    out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r10") _,
                    options(nostack, readonly),
                );
            }
            *acc = [a0, a1];
        }
    }
}

/// Pairs the items of two iterators, stopping at the shorter: the same as
/// `a.zip(b)`, but without `Zip`'s up-front length computation, which for
/// chunk iterators divides by the chunk size in an out-of-line function
/// where the optimiser may not see it is non-zero (a panic path at
/// opt-level "s", found by `scripts/panic-check.sh`).
#[inline(always)]
fn pair<A: Iterator, B: Iterator>(mut a: A, mut b: B) -> impl Iterator<Item = (A::Item, B::Item)> {
    core::iter::from_fn(move || Some((a.next()?, b.next()?)))
}

/// `(zp, zp)` as a 16-bit pair.
#[inline]
fn zp_pair(zp: i8) -> u32 {
    u32::from(zp as i16 as u16) * 0x0001_0001
}

/// Unpacks columns `t0..t0 + len` (`len` a multiple of 4) of the four rows
/// of `x` (`[4, in_ch]`), minus the zero point, into the four-node layout:
/// per group of four columns, the even pairs of rows 0..3, then their odd
/// pairs.
#[inline(never)]
pub(crate) fn unpack4<P: Pairs>(
    x: &[i8],
    in_ch: usize,
    t0: usize,
    len: usize,
    zp: i8,
    buf: &mut [u32],
) {
    let z = zp_pair(zp);
    let row = |j: usize| tile(x.get(j * in_ch..(j + 1) * in_ch).unwrap_or(&[]), t0, len);
    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
    let cols = pair(
        pair(r0.chunks_exact(4), r1.chunks_exact(4)),
        pair(r2.chunks_exact(4), r3.chunks_exact(4)),
    );
    for (b, ((a0, a1), (a2, a3))) in pair(buf.chunks_exact_mut(8), cols) {
        let v = [word(a0), word(a1), word(a2), word(a3)];
        if let [e0, e1, e2, e3, o0, o1, o2, o3] = b {
            *e0 = P::ssub16(P::sxtb16(v[0]), z);
            *e1 = P::ssub16(P::sxtb16(v[1]), z);
            *e2 = P::ssub16(P::sxtb16(v[2]), z);
            *e3 = P::ssub16(P::sxtb16(v[3]), z);
            *o0 = P::ssub16(P::sxtb16_ror8(v[0]), z);
            *o1 = P::ssub16(P::sxtb16_ror8(v[1]), z);
            *o2 = P::ssub16(P::sxtb16_ror8(v[2]), z);
            *o3 = P::ssub16(P::sxtb16_ror8(v[3]), z);
        }
    }
}

/// Unpacks columns `t0..t0 + len` of one row, minus the zero point, into
/// the one-node layout.
fn unpack1<P: Pairs>(row: &[i8], t0: usize, len: usize, zp: i8, buf: &mut [u32]) {
    let z = zp_pair(zp);
    for (b, a) in pair(buf.chunks_exact_mut(2), tile(row, t0, len).chunks_exact(4)) {
        let v = word(a);
        if let [e, o] = b {
            (*e, *o) = (P::ssub16(P::sxtb16(v), z), P::ssub16(P::sxtb16_ror8(v), z));
        }
    }
}

#[inline]
fn mac(acc: i32, w: i8, x: i8, zp: i8) -> i32 {
    acc.wrapping_add(i32::from(w) * (i32::from(x) - i32::from(zp)))
}

/// The tile `t0..t0 + len` of a row (empty if out of range).
#[inline]
fn tile(row: &[i8], t0: usize, len: usize) -> &[i8] {
    row.get(t0..t0.saturating_add(len)).unwrap_or(&[])
}

/// Columns `from..` of one weight row against the same columns of one input
/// row: plain multiply-accumulates (the tail past the last group of eight).
#[inline(never)]
fn tail(acc: i32, w: &[i8], x: &[i8], zp: i8, from: usize) -> i32 {
    w.iter()
        .zip(x)
        .skip(from)
        .fold(acc, |a, (&wk, &xk)| mac(a, wk, xk, zp))
}

/// One node: `out[c] = Σ_k W[c,k]·(x_k − zp)` for
/// `c < min(out.len(), sums.len(), w.len() / in_ch)`, missing inputs count
/// as zero; the rest of `out` is 0. Bit-exact with
/// [`super::dense::matvec_opt`] (whose `sums` this does not need).
#[inline(never)]
pub fn matvec_with<P: Pairs>(
    w: &[i8],
    in_ch: usize,
    x: &[i8],
    zp: i8,
    sums: &[i32],
    out: &mut [i32],
) {
    out.fill(0);
    if in_ch == 0 {
        return;
    }
    let x = x.get(..in_ch).unwrap_or(x);
    let n = out.len().min(sums.len()).min(w.len() / in_ch);
    let out = out.get_mut(..n).unwrap_or(&mut []);
    let w = w.get(..n * in_ch).unwrap_or(&[]);
    let mut buf = [0u32; TILE / 2];
    let mut t0 = 0;
    while t0 < x.len() {
        let len = TILE.min(x.len() - t0);
        let len8 = len & !7;
        unpack1::<P>(x, t0, len8, zp, &mut buf);
        let xt = tile(x, t0, len);
        let mut rows = w.chunks_exact(in_ch);
        let mut outs = out.chunks_exact_mut(2);
        for o in &mut outs {
            let (Some(r0), Some(r1)) = (rows.next(), rows.next()) else {
                break;
            };
            let (w0, w1) = (tile(r0, t0, len), tile(r1, t0, len));
            if let [o0, o1] = o {
                let mut acc = [*o0, *o1];
                P::row2(&mut acc, w0, w1, &buf);
                if len8 < len {
                    acc = [
                        tail(acc[0], w0, xt, zp, len8),
                        tail(acc[1], w1, xt, zp, len8),
                    ];
                }
                (*o0, *o1) = (acc[0], acc[1]);
            }
        }
        if let ([o], Some(r0)) = (outs.into_remainder(), rows.next()) {
            let w0 = tile(r0, t0, len);
            // The single channel runs as a pair with itself; keep one result.
            let mut acc = [*o, 0];
            P::row2(&mut acc, w0, w0, &buf);
            *o = tail(acc[0], w0, xt, zp, len8);
        }
        t0 += len;
    }
}

/// Four nodes at once: `x` is `[4, in_ch]`, `out` is `[4, out_ch]`.
#[inline(never)]
fn block_of_4<P: Pairs>(w: &[i8], in_ch: usize, x: &[i8], zp: i8, out_ch: usize, out: &mut [i32]) {
    out.fill(0);
    if in_ch == 0 {
        return;
    }
    let n = out_ch.min(w.len() / in_ch);
    let w = w.get(..n * in_ch).unwrap_or(&[]);
    // The only large local (1 KB at TILE = 128): the unpacking runs out of
    // line so that its locals do not add to this frame, and the tail columns
    // are left to the caller (`tails4`, after this returns), for the stack
    // bound in docs/guarantees.md. Every tile but the last is a multiple of
    // eight columns, so the tail is `in_ch & !7 .. in_ch`.
    let mut buf = [0u32; TILE * 2];
    let mut t0 = 0;
    while t0 < in_ch {
        let len = TILE.min(in_ch - t0);
        let len8 = len & !7;
        unpack4::<P>(x, in_ch, t0, len8, zp, &mut buf);
        if let Some(wt) = w.get(t0..) {
            P::block4(out, out_ch, n, wt, in_ch, len8 / 8, &buf);
        }
        t0 += len;
    }
}

/// Columns `from..in_ch` (past the last group of eight) for the four nodes
/// of a block (`x` is `[4, in_ch]`, `out` `[4, out_ch]`): plain
/// multiply-accumulates added to `out`.
#[inline(never)]
fn tails4(w: &[i8], in_ch: usize, x: &[i8], zp: i8, out_ch: usize, out: &mut [i32], from: usize) {
    let rows = pair(
        x.chunks_exact(in_ch.max(1)),
        out.chunks_exact_mut(out_ch.max(1)),
    );
    for (xj, orow) in rows {
        for (o, row) in pair(orow.iter_mut(), w.chunks_exact(in_ch.max(1))) {
            *o = tail(*o, row, xj, zp, from);
        }
    }
}

/// Every row: `x` is `[rows, in_ch]`, `out` is `[rows, out_ch]` with
/// `out_ch = sums.len()`; rows in blocks of four nodes, the rest one by one
/// ([`matvec_with`]). Bit-exact with [`super::dense::matmul_rows`].
pub fn matmul_with<P: Pairs>(
    w: &[i8],
    in_ch: usize,
    x: &[i8],
    zp: i8,
    sums: &[i32],
    out: &mut [i32],
) {
    let out_ch = sums.len();
    if in_ch == 0 || out_ch == 0 {
        out.fill(0);
        return;
    }
    let rows = (x.len() / in_ch).min(out.len() / out_ch);
    let split = rows / 4 * 4;
    let (x4, x1) = x.split_at(split.saturating_mul(in_ch).min(x.len()));
    let (o4, o1) = out.split_at_mut(split.saturating_mul(out_ch).min(out.len()));
    let blocks = pair(
        x4.chunks_exact(in_ch.saturating_mul(4)),
        o4.chunks_exact_mut(out_ch.saturating_mul(4)),
    );
    let in8 = in_ch & !7;
    for (xb, ob) in blocks {
        block_of_4::<P>(w, in_ch, xb, zp, out_ch, ob);
        if in8 < in_ch {
            tails4(w, in_ch, xb, zp, out_ch, ob, in8);
        }
    }
    for (xr, or) in pair(x1.chunks_exact(in_ch), o1.chunks_exact_mut(out_ch)) {
        matvec_with::<P>(w, in_ch, xr, zp, sums, or);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dense::{matmul_rows, matvec_opt, matvec_ref, weight_sums};
    use proptest::prelude::*;

    /// Shapes around the group (8), loop (16) and tile boundaries, and node
    /// counts around the block of four.
    fn case() -> impl Strategy<Value = (usize, usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (
            prop_oneof![
                1usize..40,
                (TILE - 9)..(TILE + 20),
                (2 * TILE - 3)..(2 * TILE + 18)
            ],
            1usize..10,
            1usize..11,
        )
            .prop_flat_map(|(i, o, n)| {
                (
                    Just(i),
                    Just(o),
                    Just(n),
                    proptest::collection::vec(any::<i8>(), i * o),
                    proptest::collection::vec(any::<i8>(), i * n),
                    any::<i8>(),
                )
            })
    }

    proptest! {
        #[test]
        fn emulated_sxtb16_matches_definition(x in any::<u32>()) {
            let b = x.to_le_bytes().map(|v| v as i8 as i16 as u16 as u32);
            prop_assert_eq!(Emulated::sxtb16(x), b[0] | b[2] << 16);
            prop_assert_eq!(Emulated::sxtb16_ror8(x), b[1] | b[3] << 16);
        }

        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn pair_kernels_are_bit_exact((i, o, n, w, x, zp) in case()) {
            let mut sums = vec![0i32; o];
            weight_sums(&w, i, &mut sums);
            let mut want = vec![0i32; o * n];
            for (xr, wr) in x.chunks(i).zip(want.chunks_mut(o)) {
                matvec_ref(&w, i, xr, zp, wr);
            }
            let mut got = vec![7i32; o * n];
            matmul_with::<Emulated>(&w, i, &x, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec_with::<Emulated>(&w, i, &x[..i], zp, &sums, &mut got);
            prop_assert_eq!(&got[..], &want[..o]);
            let mut rows = vec![7i32; o * n];
            matmul_rows(&w, i, &x, zp, &sums, &mut rows);
            prop_assert_eq!(&rows, &want);
        }

        #[test]
        fn pair_kernels_match_portable_on_inconsistent_slices(
            w in proptest::collection::vec(any::<i8>(), 0..200),
            x in proptest::collection::vec(any::<i8>(), 0..120),
            sums_len in 0usize..10,
            out_len in 0usize..40,
            in_ch in 0usize..30,
        ) {
            // The portable kernels need true weight sums (the pair kernels do not).
            let mut sums = vec![0i32; sums_len];
            weight_sums(&w, in_ch, &mut sums);
            // Missing inputs count as zero, as in the reference (the
            // portable kernel, which subtracts zp·Σw, agrees only when x is
            // complete); channels past `sums` or the weights are 0.
            let mut want = vec![0i32; out_len];
            let n = out_len.min(sums_len);
            matvec_ref(&w, in_ch, &x, 3, &mut want[..n]);
            let mut got = vec![2i32; out_len];
            matvec_with::<Emulated>(&w, in_ch, &x, 3, &sums, &mut got);
            prop_assert_eq!(&got, &want);
            if x.len() >= in_ch {
                let mut opt = vec![1i32; out_len];
                matvec_opt(&w, in_ch, &x, 3, &sums, &mut opt);
                prop_assert_eq!(&got, &opt);
            }
            let mut want = vec![1i32; out_len];
            matmul_rows(&w, in_ch, &x, 3, &sums, &mut want);
            let mut got = vec![1i32; out_len];
            matmul_with::<Emulated>(&w, in_ch, &x, 3, &sums, &mut got);
            prop_assert_eq!(&got, &want);
        }
    }

    #[test]
    fn extreme_values() {
        let i = crate::MAX_CHANNELS;
        let w = vec![-128i8; i * 3];
        let x = vec![127i8; i * 5];
        let mut sums = vec![0; 3];
        weight_sums(&w, i, &mut sums);
        let mut got = vec![0; 15];
        matmul_with::<Emulated>(&w, i, &x, -128, &sums, &mut got);
        assert!(got.iter().all(|&v| v == -128 * 255 * i as i32));
    }
}
