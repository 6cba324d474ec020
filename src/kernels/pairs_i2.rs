//! Dense products with int2 weights ([`super::dense_i2`] layout) on 16-bit
//! pairs: the Cortex-M DSP kernel of [`super::pairs`] with the weights
//! unpacked through a table instead of `SXTB16`.
//!
//! Same results as [`super::dense_i2::matvec_ref`]:
//! `out[c] = Σ_k W[c,k]·(x_k − zp)`, exact in `i32`.
//!
//! # How it works
//!
//! [`super::pairs`] unpacks a word of four int8 weights `(w0, w1, w2, w3)`
//! with two `SXTB16` into the pairs `(w0, w2)` and `(w1, w3)`, which meet
//! the even and odd input pairs of four columns in two `SMLAD` per node.
//! An int2 row holds the same four weights in one byte, so a 256-entry
//! table ([`PAIRS`], 2 KB of flash) gives both pairs for every byte: per
//! four columns `LDRB` + `LDR` + `ADD` + `LDR` replace `LDR` + 2 `SXTB16`,
//! and everything else is [`super::pairs`]'s: the input rows unpacked
//! once per tile with the zero point subtracted ([`super::pairs`]'s
//! buffer), four nodes per pass, 14 instructions per 16 MACs in the
//! assembly loop. The fields are read in place; nothing is unpacked into a
//! copy of the weights.
//!
//! Columns past the last full group of eight take a plain loop; nodes past
//! the last full block of four take [`super::dense_i2::matvec_opt`].
//! [`matmul_with`] runs with [`super::pairs::Emulated`] (portable, for host
//! tests) or, on `cfg(tinygnn_dsp)`, `pairs::Dsp` (the assembly), tested
//! bit-exact with each other and the reference by proptest and on the
//! emulated boards (`scripts/kernel-bench.sh`).

use super::dense_i2::{field, matvec_opt, row_bytes};
use super::pairs::{self, Emulated, Pairs, TILE};

/// For every byte `b` of four int2 weights `(w0, w1, w2, w3)` (field `j` =
/// bits `2j..2j+2`): `PAIRS[b]` = the 16-bit pair `(w0, w2)`,
/// `PAIRS[256 + b]` = `(w1, w3)`, each lane sign-extended.
pub static PAIRS: [u32; 512] = pairs_table();

const fn lane(b: u32, j: u32) -> u32 {
    // Field j sign-extended to 16 bits.
    let f = ((b >> (2 * j)) & 3) as i32;
    let v = if f >= 2 { f - 4 } else { f };
    (v as i16 as u16) as u32
}

const fn pairs_table() -> [u32; 512] {
    let mut t = [0u32; 512];
    let mut b = 0;
    while b < 256 {
        t[b] = lane(b as u32, 0) | (lane(b as u32, 2) << 16);
        t[256 + b] = lane(b as u32, 1) | (lane(b as u32, 3) << 16);
        b += 1;
    }
    t
}

/// The four-node block loop over int2 weight rows.
pub trait PairsI2: Pairs {
    /// Four nodes, channels `c < n`: for each node `j < 4`,
    /// `out[j·out_ch + c] += Σ_{k < 8·g8} W[c,k]·x_j[k]`, the weights in rows
    /// of `rb` bytes from `w` (field `k % 4` of byte `k / 4`), the pairs
    /// `xb` in [`super::pairs`]'s four-node layout (`16·g8` words). Does
    /// nothing unless all of it is within the slices.
    fn block4_i2(
        out: &mut [i32],
        out_ch: usize,
        n: usize,
        w: &[u8],
        rb: usize,
        g8: usize,
        xb: &[u32],
    );
}

/// Whether [`PairsI2::block4_i2`]'s arguments describe memory within the slices.
#[inline]
fn block4_fits(
    out: &[i32],
    out_ch: usize,
    n: usize,
    w: &[u8],
    rb: usize,
    g8: usize,
    xb: &[u32],
) -> bool {
    // A group of eight int2 columns is two bytes.
    pairs::block4_fits_in(out, out_ch, n, w.len(), rb, 2, g8, xb)
}

impl PairsI2 for Emulated {
    fn block4_i2(
        out: &mut [i32],
        out_ch: usize,
        n: usize,
        w: &[u8],
        rb: usize,
        g8: usize,
        xb: &[u32],
    ) {
        if !block4_fits(out, out_ch, n, w, rb, g8, xb) {
            return;
        }
        for c in 0..n {
            let mut acc = [0i32; 4];
            for (j, a) in acc.iter_mut().enumerate() {
                *a = out.get(j * out_ch + c).copied().unwrap_or(0);
            }
            let row = w.get(c * rb..c * rb + 2 * g8).unwrap_or(&[]);
            for (&b, x4) in row.iter().zip(xb.chunks_exact(8)) {
                let we = PAIRS.get(usize::from(b)).copied().unwrap_or(0);
                let wo = PAIRS.get(256 + usize::from(b)).copied().unwrap_or(0);
                if let [e0, e1, e2, e3, o0, o1, o2, o3] = x4 {
                    acc[0] = pairs::smlad(wo, *o0, pairs::smlad(we, *e0, acc[0]));
                    acc[1] = pairs::smlad(wo, *o1, pairs::smlad(we, *e1, acc[1]));
                    acc[2] = pairs::smlad(wo, *o2, pairs::smlad(we, *e2, acc[2]));
                    acc[3] = pairs::smlad(wo, *o3, pairs::smlad(we, *e3, acc[3]));
                }
            }
            for (j, a) in acc.iter().enumerate() {
                if let Some(o) = out.get_mut(j * out_ch + c) {
                    *o = *a;
                }
            }
        }
    }
}

#[cfg(tinygnn_dsp)]
#[allow(unsafe_code)]
mod asm {
    use super::{block4_fits, PairsI2, PAIRS};
    use crate::kernels::pairs::Dsp;
    use core::arch::asm;

    /// What the channel loop of [`Dsp::block4_i2`] reads (and updates)
    /// through the address kept on the stack.
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
        /// Bytes from the end of one weight row's `2·g8` bytes to the next row: `rb − 2·g8`.
        wskip: usize,
        /// Channels left.
        count: usize,
        /// Groups of eight columns.
        g8: usize,
        /// [`PAIRS`].
        table: *const u32,
    }

    /// One byte of weights (four columns) for four nodes: the byte in r6
    /// (post-incremented load from r12), its pairs from the table at r7
    /// into r4 (even lanes, then odd); input pairs through r0-r3 from r11
    /// (incremented); accumulators r5, r8, r9, r10.
    macro_rules! group4 {
        () => {
            concat!(
                "ldrb r6, [r12], #1\n",
                "ldr r4, [r7, r6, lsl #2]\n",
                "ldm r11!, {{r0-r3}}\n",
                "smlad r5, r4, r0, r5\n",
                "smlad r8, r4, r1, r8\n",
                "smlad r9, r4, r2, r9\n",
                "smlad r10, r4, r3, r10\n",
                "add r6, r6, #256\n",
                "ldr r4, [r7, r6, lsl #2]\n",
                "ldm r11!, {{r0-r3}}\n",
                "smlad r5, r4, r0, r5\n",
                "smlad r8, r4, r1, r8\n",
                "smlad r9, r4, r2, r9\n",
                "smlad r10, r4, r3, r10\n",
            )
        };
    }

    impl PairsI2 for Dsp {
        fn block4_i2(
            out: &mut [i32],
            out_ch: usize,
            n: usize,
            w: &[u8],
            rb: usize,
            g8: usize,
            xb: &[u32],
        ) {
            if !block4_fits(out, out_ch, n, w, rb, g8, xb) {
                return;
            }
            let mut args = Block4Args {
                out: out.as_mut_ptr(),
                ostride: 4 * out_ch,
                xb: xb.as_ptr(),
                xend: xb.as_ptr().wrapping_add(16 * g8),
                wskip: rb - 2 * g8,
                count: n,
                g8,
                table: PAIRS.as_ptr(),
            };
            // SAFETY: `block4_fits` checked, before this point, everything
            // the loop touches: for each of the n ≥ 1 channels c, it reads
            // and writes out[j·out_ch + c] for j < 4 (≤ 3·out_ch + n − 1 <
            // out.len()), reads the 2·g8 weight bytes at c·rb (the last
            // ends at (n−1)·rb + 2·g8 ≤ w.len()), the 16·g8 words of `xb`
            // (word-aligned, as `LDM` needs) and table entries b and
            // 256 + b for bytes b ≤ 255 (within the 512 of `PAIRS`).
            // `args` is a live local that only this block uses while it
            // runs; its address is kept in a stack slot so that r7 can hold
            // the table in the column loop. Registers: all operands are
            // declared clobbered; r6 and r7 (which LLVM reserves and cannot
            // be operands) are saved on the stack and restored, and the
            // stack pointer is back where it was at the end.
            unsafe {
                asm!(
                    "push {{r6, r7}}",
                    "push {{r0}}",
                    // Channel loop: accumulators from the four output rows.
                    "5:",
                    "ldr r7, [sp]",
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
                    "ldr r7, [r7, #28]",
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
                    "ldr r7, [sp]",
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
                    "add sp, sp, #4",
                    "pop {{r6, r7}}",
                    inout("r0") &raw mut args => _, inout("r12") w.as_ptr() => _,
                    out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
                    out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("lr") _,
                );
            }
        }
    }
}

/// Four nodes at once: `x` is `[4, in_ch]`, `out` is `[4, out_ch]`;
/// columns `0..in_ch & !7` (the rest: [`tails4`]).
#[inline(never)]
fn block_of_4<P: PairsI2>(
    w: &[u8],
    in_ch: usize,
    x: &[i8],
    zp: i8,
    out_ch: usize,
    out: &mut [i32],
) {
    out.fill(0);
    let rb = row_bytes(in_ch);
    if rb == 0 {
        return;
    }
    let n = out_ch.min(w.len() / rb);
    let w = w.get(..n * rb).unwrap_or(&[]);
    // As in `pairs`: the only large local, the unpacking out of line.
    let mut buf = [0u32; TILE * 2];
    let mut t0 = 0;
    while t0 < in_ch {
        let len = TILE.min(in_ch - t0);
        let len8 = len & !7;
        pairs::unpack4::<P>(x, in_ch, t0, len8, zp, &mut buf);
        // TILE is a multiple of 8: every tile starts on a byte.
        if let Some(wt) = w.get(t0 / 4..) {
            P::block4_i2(out, out_ch, n, wt, rb, len8 / 8, &buf);
        }
        t0 += len;
    }
}

/// Columns `from..in_ch` for the four nodes of a block, added to `out`.
#[inline(never)]
fn tails4(w: &[u8], in_ch: usize, x: &[i8], zp: i8, out_ch: usize, out: &mut [i32], from: usize) {
    let rb = row_bytes(in_ch).max(1);
    let zp = i32::from(zp);
    for (xj, orow) in x
        .chunks_exact(in_ch.max(1))
        .zip(out.chunks_exact_mut(out_ch.max(1)))
    {
        for (o, row) in orow.iter_mut().zip(w.chunks_exact(rb)) {
            for (k, &xk) in xj.iter().enumerate().skip(from) {
                let b = row.get(k / 4).copied().unwrap_or(0);
                *o = o.wrapping_add(field(b, (k % 4) as u32) * (i32::from(xk) - zp));
            }
        }
    }
}

/// Every row: `x` is `[rows, in_ch]`, `out` is `[rows, out_ch]` with
/// `out_ch = sums.len()` ([`super::dense_i2::weight_sums`], used by the
/// rows past the last block of four); bit-exact with
/// [`super::dense_i2::matmul`].
pub fn matmul_with<P: PairsI2>(
    w: &[u8],
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
    let in8 = in_ch & !7;
    let mut xs = x4.chunks_exact(in_ch.saturating_mul(4));
    let mut os = o4.chunks_exact_mut(out_ch.saturating_mul(4));
    while let (Some(xb), Some(ob)) = (xs.next(), os.next()) {
        block_of_4::<P>(w, in_ch, xb, zp, out_ch, ob);
        if in8 < in_ch {
            tails4(w, in_ch, xb, zp, out_ch, ob, in8);
        }
    }
    let mut xs = x1.chunks_exact(in_ch);
    let mut os = o1.chunks_exact_mut(out_ch);
    while let (Some(xr), Some(or)) = (xs.next(), os.next()) {
        matvec_opt(w, in_ch, xr, zp, sums, or);
    }
}

/// The default int2 matrix product (what the ops run): [`matmul_with`] with
/// the assembly on Cortex-M4/M7/M33 (`cfg(tinygnn_dsp)`, without
/// `reference-kernels` or `kernels-small`), else
/// [`super::dense_i2::matmul`].
pub fn matmul(w: &[u8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    if cfg!(all(
        tinygnn_dsp,
        not(any(
            feature = "reference-kernels",
            feature = "kernels-small"
        ))
    )) {
        matmul_with::<pairs::Native>(w, in_ch, x, zp, sums, out);
    } else {
        super::dense_i2::matmul(w, in_ch, x, zp, sums, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dense_i2::{matvec_ref, weight_sums};
    use proptest::prelude::*;

    fn pack(v: &[i8], in_ch: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for row in v.chunks_exact(in_ch) {
            for quad in row.chunks(4) {
                let mut b = 0u8;
                for (j, &q) in quad.iter().enumerate() {
                    b |= ((q as u8) & 3) << (2 * j);
                }
                out.push(b);
            }
        }
        out
    }

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
                    proptest::collection::vec(-2i8..=1, i * o),
                    proptest::collection::vec(any::<i8>(), i * n),
                    any::<i8>(),
                )
            })
    }

    #[test]
    fn the_table_holds_the_lanes() {
        // 0b11_10_01_00: fields 0, 1, −2, −1 → even (0, −2), odd (1, −1).
        let b = 0b1110_0100usize;
        assert_eq!(PAIRS[b], 0xFFFE_0000);
        assert_eq!(PAIRS[256 + b], 0xFFFF_0001);
        for b in 0..256u32 {
            for j in 0..4 {
                let pair = PAIRS[(j as usize % 2) * 256 + b as usize];
                let lane = if j < 2 {
                    pair as u16
                } else {
                    (pair >> 16) as u16
                };
                assert_eq!(i32::from(lane as i16), field(b as u8, j), "b={b} j={j}");
            }
        }
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn emulated_matmul_is_bit_exact((i, o, n, w, x, zp) in case()) {
            let packed = pack(&w, i);
            let mut sums = vec![0i32; o];
            weight_sums(&packed, i, &mut sums);
            let mut want = vec![0i32; n * o];
            for (xr, wr) in x.chunks(i).zip(want.chunks_mut(o)) {
                matvec_ref(&packed, i, xr, zp, wr);
            }
            let mut got = vec![7i32; n * o];
            matmul_with::<Emulated>(&packed, i, &x, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
        }

        #[test]
        fn never_panics_on_inconsistent_slices(
            w in proptest::collection::vec(any::<u8>(), 0..80),
            x in proptest::collection::vec(any::<i8>(), 0..300),
            sums in proptest::collection::vec(any::<i32>(), 0..10),
            out_len in 0usize..60,
            in_ch in 0usize..70,
        ) {
            let mut out = vec![0i32; out_len];
            matmul_with::<Emulated>(&w, in_ch, &x, 3, &sums, &mut out);
        }
    }
}
