//! Sparse int8 rows times sub-byte weights, int4 ([`crate::kernels::dense_i4`]
//! layout: two weights per byte, field `k % 2` of byte `k / 2` of a row of
//! `⌈in_ch / 2⌉` bytes) or int2 ([`crate::kernels::dense_i2`]: four per byte,
//! field `k % 4` of byte `k / 4`, rows of `⌈in_ch / 4⌉` bytes): the input
//! layer of a model with `--weights int4` or `int2` fed with
//! [`crate::Features::SparseI8`].
//!
//! The arithmetic is [`crate::kernels::sparse`]'s: `out[c] = Σ_{stored (k, v)}
//! W[c,k]·(v − zp)`, one weight column per stored entry, exact in `i32`
//! (`|W| ≤ 8`), with wrapping adds. Every weight is read in place, one
//! field at a time (no unpacked copy). The kernels are generic over the
//! field width `B` (4 or 2 bits; [`matvec_i4`], [`matvec_i2`] and their
//! `matmul` forms are what the ops run):
//!
//! * [`matvec_entries`]: stored entries outermost, every output channel per
//!   entry; the default on every target but Cortex-M4/M7/M33.
//! * [`matvec_packed`]: the entries of a row are first packed, up to
//!   [`PACKED_CHUNK`] at a time, into one bucket per field position (`k %
//!   (8 / B)`), one word each holding the byte of the column and `v − zp`;
//!   then four output channels at a time take every packed entry with four
//!   register sums. On `cfg(tinygnn_dsp)` that loop is assembly (per entry
//!   and channel `LDRB`, `SBFX` with the bucket's field position, `SMLABB`);
//!   elsewhere its portable form runs (on hosts only in the tests).
//!
//! Both are tested bit-exact against the dense references
//! ([`crate::kernels::dense_i4::matvec_ref`],
//! [`crate::kernels::dense_i2::matvec_ref`]) on the densified row
//! (proptest), and the assembly on the emulated Cortex-M4
//! (`scripts/kernel-bench.sh`).

use crate::kernels::sparse::SparseRows;

/// Entries packed per chunk by [`matvec_packed`] (a stack buffer of 128 bytes).
pub const PACKED_CHUNK: usize = 32;

/// Weights per byte for fields of `b` bits (4 or 2).
const fn per_byte(b: u32) -> usize {
    (8 / b) as usize
}

/// Bytes of one packed row of `in_ch` weights of `b` bits.
#[inline(always)]
fn row_bytes(b: u32, in_ch: usize) -> usize {
    in_ch.div_ceil(per_byte(b))
}

/// Field `j` (bits `b·j..b·(j+1)`) of `byte`, sign-extended.
#[inline(always)]
fn field(b: u32, byte: u8, j: u32) -> i32 {
    (i32::from(byte) << (32 - b * (j + 1))) >> (32 - b)
}

/// `out[c] = Σ_e W[c, cols[e]]·(values[e] − zp)` with `B`-bit weights,
/// stored entries outermost. Columns `≥ in_ch` and missing weights count as
/// zero; output channels beyond the weight rows are 0.
pub fn matvec_entries<const B: u32>(
    w: &[u8],
    in_ch: usize,
    cols: &[u16],
    values: &[i8],
    zp: i8,
    out: &mut [i32],
) {
    out.iter_mut().for_each(|o| *o = 0);
    let rb = row_bytes(B, in_ch);
    if rb == 0 {
        return;
    }
    let n = out.len().min(w.len() / rb);
    let out = out.get_mut(..n).unwrap_or(&mut []);
    let zp = i32::from(zp);
    let per = per_byte(B);
    for (&k, &v) in cols.iter().zip(values) {
        let k = usize::from(k);
        let d = i32::from(v) - zp;
        if k >= in_ch || d == 0 {
            continue;
        }
        let (mut at, j) = (k / per, (k % per) as u32);
        for o in out.iter_mut() {
            let b = w.get(at).copied().unwrap_or(0);
            *o = o.wrapping_add(field(B, b, j) * d);
            at = at.wrapping_add(rb);
        }
    }
}

/// One packed entry of bucket `j` (its field position): the byte of the
/// column in the high half (`k < MAX_CHANNELS = 4096`, so at most 2047),
/// `d = v − zp` (`|d| ≤ 255`) as the signed low half.
#[inline(always)]
fn pack(byte: usize, d: i32) -> u32 {
    ((byte as u32) << 16) | u32::from(d as u16)
}

/// Field `j` of the byte a packed entry `e` selects in `row` (0 past its
/// end) times the entry's `d`.
#[inline(always)]
fn term<const B: u32>(row: &[u8], e: u32, j: u32) -> i32 {
    let b = row.get((e >> 16) as usize).copied().unwrap_or(0);
    field(B, b, j) * i32::from(e as u16 as i16)
}

/// The rows' entries packed into one bucket per field position (see
/// `pack`), up to `PACKED_CHUNK / 4` each, then four output channels per
/// pass: bit-exact with [`matvec_entries`] (the sums are exact, so their
/// order does not matter).
pub fn matvec_packed<const B: u32>(
    w: &[u8],
    in_ch: usize,
    cols: &[u16],
    values: &[i8],
    zp: i8,
    out: &mut [i32],
) {
    let mut buf = [0u32; PACKED_CHUNK];
    matvec_packed_buf::<B>(w, in_ch, cols, values, zp, out, &mut buf);
}

/// Entries per bucket of the packing buffer (four buckets, of which int4
/// uses two).
const BUCKET: usize = PACKED_CHUNK / 4;

/// [`matvec_packed`] with the packing buffer given (one per layer).
#[inline(never)]
fn matvec_packed_buf<const B: u32>(
    w: &[u8],
    in_ch: usize,
    cols: &[u16],
    values: &[i8],
    zp: i8,
    out: &mut [i32],
    buf: &mut [u32; PACKED_CHUNK],
) {
    out.iter_mut().for_each(|o| *o = 0);
    let rb = row_bytes(B, in_ch);
    if rb == 0 {
        return;
    }
    let zp = i32::from(zp);
    let n = out.len().min(w.len() / rb);
    let out = out.get_mut(..n).unwrap_or(&mut []);
    let whole = n - n % 4;
    let per = per_byte(B);
    let mut entries = cols.iter().zip(values);
    loop {
        // Fill the buckets until one is full or the row ends.
        let mut fill = [0usize; 4];
        let mut more = false;
        for (&k, &v) in entries.by_ref() {
            let (k, d) = (usize::from(k), i32::from(v) - zp);
            if k >= in_ch || d == 0 {
                continue;
            }
            let j = k % per;
            let Some(c) = fill.get_mut(j) else { break };
            let Some(slot) = buf.get_mut(j * BUCKET + *c) else {
                break;
            };
            *slot = pack(k / per, d);
            *c += 1;
            if *c == BUCKET {
                more = true;
                break;
            }
        }
        let es = core::array::from_fn(|j| buf.get(j * BUCKET..j * BUCKET + fill[j]).unwrap_or(&[]));
        let (head, tail) = out.split_at_mut(whole);
        Blocks::<B>::run(head, w, rb, es);
        for (o, row) in tail.iter_mut().zip(w.chunks_exact(rb).skip(whole)) {
            for (j, es) in (0u32..).zip(es) {
                for &e in es {
                    *o = o.wrapping_add(term::<B>(row, e, j));
                }
            }
        }
        if !more {
            break;
        }
    }
}

/// The four-channel block loop for `B`-bit fields.
struct Blocks<const B: u32>;

impl<const B: u32> Blocks<B> {
    /// `out[c] +=` the terms of every packed entry of the buckets `es`
    /// (bucket `j`: field `j`) for every channel `c < out.len()` (a multiple
    /// of 4; rows of `rb` bytes), four channels at a time: the assembly on
    /// `cfg(tinygnn_dsp)`, else [`Blocks::portable`]. `matvec_packed_buf`,
    /// the only caller, packs only columns `k < in_ch`, so every entry's byte
    /// is `< rb`.
    #[inline(always)]
    fn run(out: &mut [i32], w: &[u8], rb: usize, es: [&[u32]; 4]) {
        #[cfg(tinygnn_dsp)]
        if asm::blocks4::<B>(out, w, rb, es) {
            return;
        }
        Self::portable(out, w, rb, es);
    }

    /// The portable form of the block loop (also the assembly's fallback).
    #[inline(always)]
    fn portable(out: &mut [i32], w: &[u8], rb: usize, es: [&[u32]; 4]) {
        let mut rows = w.chunks_exact(rb.max(1));
        for o in out.chunks_exact_mut(4) {
            let (Some(r0), Some(r1), Some(r2), Some(r3)) =
                (rows.next(), rows.next(), rows.next(), rows.next())
            else {
                break;
            };
            let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
            for (j, es) in (0u32..).zip(es) {
                for &e in es {
                    a0 = a0.wrapping_add(term::<B>(r0, e, j));
                    a1 = a1.wrapping_add(term::<B>(r1, e, j));
                    a2 = a2.wrapping_add(term::<B>(r2, e, j));
                    a3 = a3.wrapping_add(term::<B>(r3, e, j));
                }
            }
            if let [o0, o1, o2, o3] = o {
                *o0 = o0.wrapping_add(a0);
                *o1 = o1.wrapping_add(a1);
                *o2 = o2.wrapping_add(a2);
                *o3 = o3.wrapping_add(a3);
            }
        }
    }
}

#[cfg(tinygnn_dsp)]
#[allow(unsafe_code)]
mod asm {
    /// What the block loop of the assembly reads and updates through r7.
    #[repr(C)]
    struct Args {
        /// Row 0 of the current block (advanced by `4·rb` per block).
        w: *const u8,
        /// Bytes from one weight row to the next.
        rb: usize,
        /// The current block's four sums (advanced by 16 bytes per block).
        out: *mut i32,
        /// Blocks left (at least 1 on entry).
        blocks: usize,
        /// Bucket `j`'s first entry and one past its last, for j = 0..4
        /// (`start == end` for an empty bucket).
        es: [(*const u32, *const u32); 4],
    }

    /// The entry loop of one bucket: `lsb`, `width` = the field's position
    /// and width; `off` = the offset of the bucket's range in [`Args`];
    /// `top`, `end` = the loop's local labels.
    macro_rules! bucket {
        ($lsb:literal, $width:literal, $off:literal, $top:literal, $end:literal) => {
            concat!(
                "ldr r10, [r7, #",
                $off,
                "]\n",
                "ldr r6, [r7, #",
                $off,
                " + 4]\n",
                "cmp r10, r6\n",
                "beq ",
                $end,
                "f\n",
                $top,
                ":\n",
                "ldr r12, [r10], #4\n",
                "lsr lr, r12, #16\n",
                "ldrb r11, [r4, lr]\n",
                "sbfx r11, r11, #",
                $lsb,
                ", #",
                $width,
                "\n",
                "smlabb r0, r11, r12, r0\n",
                "ldrb r11, [r5, lr]\n",
                "sbfx r11, r11, #",
                $lsb,
                ", #",
                $width,
                "\n",
                "smlabb r1, r11, r12, r1\n",
                "ldrb r11, [r8, lr]\n",
                "sbfx r11, r11, #",
                $lsb,
                ", #",
                $width,
                "\n",
                "smlabb r2, r11, r12, r2\n",
                "ldrb r11, [r9, lr]\n",
                "sbfx r11, r11, #",
                $lsb,
                ", #",
                $width,
                "\n",
                "smlabb r3, r11, r12, r3\n",
                "cmp r10, r6\n",
                "bne ",
                $top,
                "b\n",
                $end,
                ":",
            )
        };
    }

    /// The block loop around the buckets' entry loops (one `bucket!` per
    /// field position).
    macro_rules! blocks_asm {
        ($args:expr, $($bucket:expr),+) => {
            core::arch::asm!(
                "push {{r6, r7}}",
                "mov r7, r0",
                // Block loop: four row pointers, four sums.
                "5:",
                "ldr r4, [r7, #0]",
                "ldr r6, [r7, #4]",
                "add r5, r4, r6",
                "add r8, r5, r6",
                "add r9, r8, r6",
                "add lr, r9, r6",
                "str lr, [r7, #0]",
                "ldr lr, [r7, #8]",
                "ldm lr, {{r0-r3}}",
                $($bucket,)+
                // Store the sums, next block.
                "ldr lr, [r7, #8]",
                "stm lr!, {{r0-r3}}",
                "str lr, [r7, #8]",
                "ldr lr, [r7, #12]",
                "subs lr, lr, #1",
                "str lr, [r7, #12]",
                "bne 5b",
                "pop {{r6, r7}}",
                inout("r0") $args => _,
                out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
            )
        };
    }

    /// The assembly form of the block loop for `B`-bit fields (4 or 2):
    /// per block, the four row pointers are set up and the four sums
    /// loaded; then per bucket `j` and entry `LDR`, `LSR` (the byte), and per
    /// channel `LDRB`, `SBFX #B·j, #B` (the field, sign-extended) and
    /// `SMLABB` (times `d`, the packed word's signed low half; the sums wrap
    /// like `wrapping_add`): 16 instructions per four MACs. Returns false
    /// (and touches nothing) when it does not run: no whole block, weights
    /// short of `4·blocks` rows, or another `B`.
    #[inline(always)]
    pub(super) fn blocks4<const B: u32>(
        out: &mut [i32],
        w: &[u8],
        rb: usize,
        es: [&[u32]; 4],
    ) -> bool {
        let blocks = out.len() / 4;
        // Every load inside `w`: block b reads row 4b + i at byte c for i < 4
        // and c < rb (the caller packs only columns k < in_ch, whose byte is
        // < rb = ⌈in_ch·B / 8⌉), so everything lies below 4·blocks·rb.
        let fits = blocks
            .checked_mul(4)
            .and_then(|r| r.checked_mul(rb))
            .is_some_and(|len| len <= w.len());
        if blocks == 0 || !fits || !(B == 2 || B == 4) {
            return false;
        }
        let mut args = Args {
            w: w.as_ptr(),
            rb,
            out: out.as_mut_ptr(),
            blocks,
            es: es.map(|b| {
                let r = b.as_ptr_range();
                (r.start, r.end)
            }),
        };
        let args = &raw mut args;
        // SAFETY: checked above: `blocks ≥ 1` blocks of four sums lie in
        // `out` (4·blocks ≤ out.len()), read and written once each; every
        // weight load `w + (4b + i)·rb + c` (c < rb, see above) is below
        // `w + 4·blocks·rb ≤ w.len()`; each bucket's entry loop runs only
        // when its range is not empty (a do-while ending at its end) and
        // reads only that range of the packing buffer; with B = 4 the
        // buckets 2 and 3 are not read (their fields do not exist). `args`
        // is a live local only this block uses. All operand registers are
        // clobbered; r6 and r7 (which LLVM reserves) are saved on the stack
        // and restored.
        unsafe {
            if B == 2 {
                blocks_asm!(
                    args,
                    bucket!(0, 2, 16, 20, 40),
                    bucket!(2, 2, 24, 21, 41),
                    bucket!(4, 2, 32, 22, 42),
                    bucket!(6, 2, 40, 23, 43)
                );
            } else {
                blocks_asm!(args, bucket!(0, 4, 16, 20, 40), bucket!(4, 4, 24, 21, 41));
            }
        }
        true
    }
}

/// int4 weights: [`matvec_packed`] on Cortex-M4/M7/M33 (`cfg(tinygnn_dsp)`),
/// [`matvec_entries`] elsewhere or with the `reference-kernels` or
/// `kernels-small` feature.
#[inline]
pub fn matvec_i4(w: &[u8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    matvec::<4>(w, in_ch, cols, values, zp, out);
}

/// int2 weights: as [`matvec_i4`].
#[inline]
pub fn matvec_i2(w: &[u8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    matvec::<2>(w, in_ch, cols, values, zp, out);
}

/// Applies [`matvec_i4`] to every row of `x`: `out` is `[rows, out_ch]`.
pub fn matmul_i4(
    w: &[u8],
    in_ch: usize,
    x: SparseRows<'_>,
    zp: i8,
    out_ch: usize,
    out: &mut [i32],
) {
    matmul::<4>(w, in_ch, x, zp, out_ch, out);
}

/// Applies [`matvec_i2`] to every row of `x`: `out` is `[rows, out_ch]`.
pub fn matmul_i2(
    w: &[u8],
    in_ch: usize,
    x: SparseRows<'_>,
    zp: i8,
    out_ch: usize,
    out: &mut [i32],
) {
    matmul::<2>(w, in_ch, x, zp, out_ch, out);
}

/// Whether the packed kernel is the default: Cortex-M4/M7/M33 without
/// `reference-kernels` or `kernels-small`.
const PACKED_DEFAULT: bool = cfg!(all(
    tinygnn_dsp,
    not(any(
        feature = "reference-kernels",
        feature = "kernels-small"
    ))
));

#[inline]
fn matvec<const B: u32>(
    w: &[u8],
    in_ch: usize,
    cols: &[u16],
    values: &[i8],
    zp: i8,
    out: &mut [i32],
) {
    if PACKED_DEFAULT {
        matvec_packed::<B>(w, in_ch, cols, values, zp, out);
    } else {
        matvec_entries::<B>(w, in_ch, cols, values, zp, out);
    }
}

fn matmul<const B: u32>(
    w: &[u8],
    in_ch: usize,
    x: SparseRows<'_>,
    zp: i8,
    out_ch: usize,
    out: &mut [i32],
) {
    if out_ch == 0 {
        return;
    }
    let mut buf = [0u32; PACKED_CHUNK];
    for (i, or) in out.chunks_exact_mut(out_ch).enumerate().take(x.rows()) {
        let (cols, values) = x.row(i);
        if PACKED_DEFAULT {
            matvec_packed_buf::<B>(w, in_ch, cols, values, zp, or, &mut buf);
        } else {
            matvec_entries::<B>(w, in_ch, cols, values, zp, or);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{dense, dense_i2, dense_i4};
    use proptest::prelude::*;

    type Kernel = fn(&[u8], usize, &[u16], &[i8], i8, &mut [i32]);

    /// A dense weight matrix of `bits`-bit values and a row with a given
    /// density of entries ≠ zp; rows longer than a packing chunk.
    fn case(bits: u32) -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        let lo = -(1i8 << (bits - 1));
        let hi = (1i8 << (bits - 1)) - 1;
        (1usize..80, 1usize..20, any::<i8>(), 0u32..=100).prop_flat_map(move |(i, o, zp, pct)| {
            (
                Just(i),
                Just(o),
                proptest::collection::vec(lo..=hi, i * o),
                proptest::collection::vec(
                    (0u32..100, any::<i8>()).prop_map(move |(r, v)| if r < pct { v } else { zp }),
                    i,
                ),
                Just(zp),
            )
        })
    }

    fn to_sparse(x: &[i8], zp: i8) -> (Vec<u16>, Vec<i8>) {
        x.iter()
            .enumerate()
            .filter(|&(_, &v)| v != zp)
            .map(|(k, &v)| (k as u16, v))
            .unzip()
    }

    /// Packs `[out_ch, in_ch]` values of `bits` bits (field `k % per` of
    /// byte `k / per`, rows padded).
    fn pack_rows(v: &[i8], in_ch: usize, bits: u32) -> Vec<u8> {
        let per = per_byte(bits);
        let mut out = Vec::new();
        for row in v.chunks_exact(in_ch) {
            for group in row.chunks(per) {
                let mut b = 0u8;
                for (j, &q) in group.iter().enumerate() {
                    b |= ((q as u8) & ((1u8 << bits) - 1)) << (bits as usize * j);
                }
                out.push(b);
            }
        }
        out
    }

    fn dense_ref(bits: u32, w: &[u8], i: usize, x: &[i8], zp: i8, out: &mut [i32]) {
        if bits == 4 {
            dense_i4::matvec_ref(w, i, x, zp, out);
        } else {
            dense_i2::matvec_ref(w, i, x, zp, out);
        }
    }

    fn kernels(bits: u32) -> [(&'static str, Kernel); 3] {
        if bits == 4 {
            [
                ("entries", matvec_entries::<4>),
                ("packed", matvec_packed::<4>),
                ("default", matvec_i4),
            ]
        } else {
            [
                ("entries", matvec_entries::<2>),
                ("packed", matvec_packed::<2>),
                ("default", matvec_i2),
            ]
        }
    }

    fn every_kernel_equals_dense(
        bits: u32,
        (i, o, w, x, zp): (usize, usize, Vec<i8>, Vec<i8>, i8),
    ) -> Result<(), TestCaseError> {
        let packed = pack_rows(&w, i, bits);
        let mut want = vec![0i32; o];
        dense_ref(bits, &packed, i, &x, zp, &mut want);
        let mut want8 = vec![0i32; o];
        dense::matvec_ref(&w, i, &x, zp, &mut want8);
        prop_assert_eq!(&want, &want8);
        let (cols, vals) = to_sparse(&x, zp);
        for (name, f) in kernels(bits) {
            let mut got = vec![7i32; o];
            f(&packed, i, &cols, &vals, zp, &mut got);
            prop_assert_eq!(&got, &want, "{} int{}", name, bits);
        }
        Ok(())
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn int2_kernels_equal_dense_on_the_densified_row(c in case(2)) {
            every_kernel_equals_dense(2, c)?;
        }

        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn int4_kernels_equal_dense_on_the_densified_row(c in case(4)) {
            every_kernel_equals_dense(4, c)?;
        }

        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn matmul_equals_the_rows((i, o, w, _x, zp) in case(2), seeds in proptest::collection::vec(any::<u64>(), 0..5)) {
            for bits in [2, 4] {
                let w: Vec<i8> = w.iter().map(|&v| v.clamp(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)).collect();
                let packed = pack_rows(&w, i, bits);
                let mut row_ptr = vec![0u32];
                let (mut cols, mut vals, mut want) = (vec![], vec![], vec![]);
                for s in &seeds {
                    let x: Vec<i8> = (0..i).map(|k| if (s >> (k % 64)) & 1 == 1 { (k as i8).wrapping_mul(37) } else { zp }).collect();
                    let mut r = vec![0i32; o];
                    dense_ref(bits, &packed, i, &x, zp, &mut r);
                    want.extend(r);
                    let (c, v) = to_sparse(&x, zp);
                    cols.extend(c);
                    vals.extend(v);
                    row_ptr.push(cols.len() as u32);
                }
                let mut got = vec![9i32; seeds.len() * o];
                let x = SparseRows { row_ptr: &row_ptr, cols: &cols, values: &vals };
                if bits == 4 {
                    matmul_i4(&packed, i, x, zp, o, &mut got);
                } else {
                    matmul_i2(&packed, i, x, zp, o, &mut got);
                }
                prop_assert_eq!(&got, &want);
            }
        }

        #[test]
        fn kernels_agree_on_inconsistent_slices(
            w in proptest::collection::vec(any::<u8>(), 0..40),
            cols in proptest::collection::vec(any::<u16>(), 0..40),
            values in proptest::collection::vec(any::<i8>(), 0..40),
            out_len in 0usize..10,
            in_ch in 0usize..40,
        ) {
            for bits in [2, 4] {
                let [(_, entries), (_, packed), _] = kernels(bits);
                let mut want = vec![0i32; out_len];
                entries(&w, in_ch, &cols, &values, 3, &mut want);
                let mut got = vec![5i32; out_len];
                packed(&w, in_ch, &cols, &values, 3, &mut got);
                prop_assert_eq!(&got, &want);
            }
        }
    }

    #[test]
    fn the_packed_word_selects_the_field() {
        // Byte 0b11_10_01_00: int2 fields 0, 1, −2, −1; int4 fields 4, −2.
        let row = [0u8, 0b1110_0100];
        for (j, want) in [(0, 0), (1, 1), (2, -2), (3, -1)] {
            assert_eq!(term::<2>(&row, pack(1, -3), j), want * -3, "int2 j = {j}");
        }
        for (j, want) in [(0, 4), (1, -2)] {
            assert_eq!(term::<4>(&row, pack(1, 5), j), want * 5, "int4 j = {j}");
        }
        // The largest byte and d.
        let e = pack((crate::MAX_CHANNELS - 1) / 2, -255);
        assert_eq!(e >> 16, 2047);
        assert_eq!(e as u16 as i16, -255);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "integer arithmetic only, no unsafe or dependency code: run natively"
    )]
    fn extreme_values_do_not_overflow() {
        let i = crate::MAX_CHANNELS;
        let cols: Vec<u16> = (0..i as u16).collect();
        let vals = vec![127i8; i];
        for (bits, byte, weight) in [(2u32, 0b1010_1010u8, -2i32), (4, 0x88, -8)] {
            let w = vec![byte; row_bytes(bits, i) * 5];
            for (_, f) in kernels(bits) {
                let mut got = vec![0; 5];
                f(&w, i, &cols, &vals, -128, &mut got);
                assert_eq!(got, vec![weight * 255 * i as i32; 5], "int{bits}");
            }
        }
    }
}
