//! Dense products with **int2** weights, unpacked inside the kernel (no
//! scratch copy of the weights): `out[c] = Σ_k W[c,k]·(x_k − zp)` with `W`
//! row-major `[out_ch, in_ch]`, four 2-bit two's-complement weights per byte,
//! each row padded to `ceil(in_ch / 4)` bytes, and `x` int8 with zero point
//! `zp`, accumulated exactly in `i32` ([`crate::format::WeightBits::I2`]):
//!
//! ```text
//! row c, in_ch = 5:   byte 0                     byte 1
//!                     [W3 | W2 | W1 | W0]        [0 | 0 | 0 | W4]
//!                      7..6 5..4 3..2 1..0
//! ```
//!
//! A field `f` is the value `f < 2 ? f : f − 4` (−2..=1; sign extension from
//! its high bit, which [`field`] computes with one shift pair, a single
//! `SBFX` on Cortex-M). Ternary weights (−1..=1) use the same layout. The
//! padding fields of a row are never read. No overflow is possible:
//! `|W| ≤ 2`, `|x − zp| ≤ 255`, `in_ch ≤ MAX_CHANNELS`.
//!
//! * [`matvec_ref`]: the reference, one weight at a time through [`weight_at`].
//! * [`matvec_opt`] (what [`matvec`] runs by default): `Σ W·x − zp·Σ W` with
//!   the per-row sums from [`weight_sums`], four rows per pass over `x`, one
//!   packed byte (four weights, four inputs) per step.
//!
//! Both are bit-exact with each other and with the int8 kernels of
//! [`super::dense`] run on the sign-extended weights (proptests below).

use super::packed;

/// The weight in field `j` (0..4, bits `2j..2j+2`) of `b`, sign-extended.
#[inline(always)]
pub fn field(b: u8, j: u32) -> i32 {
    (i32::from(b) << (30 - 2 * (j & 3))) >> 30
}

/// Bytes of one packed row of `in_ch` weights.
#[inline]
pub fn row_bytes(in_ch: usize) -> usize {
    in_ch.div_ceil(4)
}

/// Weight `W[c,k]` of a packed matrix (0 when out of range or `k ≥ in_ch`).
#[inline]
pub fn weight_at(w: &[u8], in_ch: usize, c: usize, k: usize) -> i32 {
    if k >= in_ch {
        return 0;
    }
    let at = c
        .checked_mul(row_bytes(in_ch))
        .and_then(|r| r.checked_add(k / 4));
    at.and_then(|i| w.get(i))
        .map_or(0, |&b| field(b, (k % 4) as u32))
}

/// Reference: `out[c] = Σ_{k<in_ch} W[c,k]·(x[k] − zp)` for `c < out.len()`.
/// Missing weights or inputs count as zero.
pub fn matvec_ref(w: &[u8], in_ch: usize, x: &[i8], zp: i8, out: &mut [i32]) {
    for (c, o) in out.iter_mut().enumerate() {
        let mut acc = 0i32;
        for (k, &xk) in x.iter().enumerate().take(in_ch) {
            let wk = weight_at(w, in_ch, c, k);
            acc = acc.wrapping_add(wk * (i32::from(xk) - i32::from(zp)));
        }
        *o = acc;
    }
}

/// `sums[c] = Σ_{k<in_ch} W[c,k]` for every row (padding excluded).
pub fn weight_sums(w: &[u8], in_ch: usize, sums: &mut [i32]) {
    sums.iter_mut().for_each(|s| *s = 0);
    let rb = row_bytes(in_ch);
    if rb == 0 {
        return;
    }
    let mut rows = w.chunks_exact(rb);
    for s in sums.iter_mut() {
        let Some(row) = rows.next() else { break };
        let mut acc = 0i32;
        let mut left = in_ch;
        for &b in row {
            for j in 0..4u32 {
                if left > 0 {
                    acc = acc.wrapping_add(field(b, j));
                    left -= 1;
                }
            }
        }
        *s = acc;
    }
}

/// `x[..in_ch]` (or all of a shorter `x`) as quads `[x_4i .. x_4i+3]` and the
/// 0..=3 elements left over (a zero-copy cast, no division: see
/// `dense_i4::split_pairs`).
#[inline]
fn split_quads(x: &[i8], in_ch: usize) -> (&[[i8; 4]], &[i8]) {
    let x = x.get(..in_ch).unwrap_or(x);
    let (even, tail) = x.split_at_checked(x.len() & !3).unwrap_or((&[], x));
    (bytemuck::try_cast_slice(even).unwrap_or(&[]), tail)
}

/// `Σ_j field(b, j)·x_j` over one packed byte and its inputs.
#[inline(always)]
fn dot_byte(b: u8, x: [i32; 4]) -> i32 {
    (field(b, 0) * x[0])
        .wrapping_add(field(b, 1) * x[1])
        .wrapping_add(field(b, 2) * x[2])
        .wrapping_add(field(b, 3) * x[3])
}

/// The tail inputs (fewer than four) widened, missing ones 0.
#[inline(always)]
fn tail4(tail: &[i8]) -> [i32; 4] {
    let mut t = [0i32; 4];
    for (d, &v) in t.iter_mut().zip(tail) {
        *d = i32::from(v);
    }
    t
}

/// `Σ_k W[k]·x[k]` of one packed row with `x` (a shorter `x` stops early).
#[inline]
fn dot_row(row: &[u8], x: &[i8], in_ch: usize) -> i32 {
    let (quads, tail) = split_quads(x, in_ch);
    let mut s = 0i32;
    for (&b, q) in row.iter().zip(quads) {
        s = s.wrapping_add(dot_byte(b, q.map(i32::from)));
    }
    if let (false, Some(&b)) = (tail.is_empty(), row.get(quads.len())) {
        s = s.wrapping_add(dot_byte(b, tail4(tail)));
    }
    s
}

/// Four packed rows against `x` in one pass: every quad of `x` values is
/// loaded once per sixteen multiply-accumulates.
#[inline]
fn dot4_rows(r: [&[u8]; 4], x: &[i8], in_ch: usize) -> [i32; 4] {
    let (quads, tail) = split_quads(x, in_ch);
    let mut s = [0i32; 4];
    for ((((&a, &b), &c), &d), q) in r[0].iter().zip(r[1]).zip(r[2]).zip(r[3]).zip(quads) {
        let q = q.map(i32::from);
        for (acc, byte) in s.iter_mut().zip([a, b, c, d]) {
            *acc = acc.wrapping_add(dot_byte(byte, q));
        }
    }
    if !tail.is_empty() {
        let t = tail4(tail);
        for (acc, row) in s.iter_mut().zip(r) {
            if let Some(&b) = row.get(quads.len()) {
                *acc = acc.wrapping_add(dot_byte(b, t));
            }
        }
    }
    s
}

/// Optimized: `out[c] = dot(W[c], x) − zp·sums[c]`, bit-exact with
/// [`matvec_ref`] when `sums` comes from [`weight_sums`] and `x.len() ≥ in_ch`.
pub fn matvec_opt(w: &[u8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    packed::matvec_rows(
        w,
        row_bytes(in_ch),
        zp,
        sums,
        out,
        |r| dot4_rows(r, x, in_ch),
        |r| dot_row(r, x, in_ch),
    );
}

/// The default kernel: [`matvec_opt`], or [`matvec_ref`] with the
/// `reference-kernels` or `kernels-small` feature (then `sums` is unused).
#[inline]
pub fn matvec(w: &[u8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    packed::matvec_default(
        sums,
        out,
        |o| matvec_ref(w, in_ch, x, zp, o),
        |s, o| matvec_opt(w, in_ch, x, zp, s, o),
    );
}

/// Applies [`matvec`] to every row: `x` is `[rows, in_ch]`, `out` is
/// `[rows, out_ch]` with `out_ch = sums.len()` (the portable kernel; what
/// the ops run is [`super::pairs_i2::matmul`]).
pub fn matmul(w: &[u8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    packed::matmul_rows(in_ch, x, sums, out, |xr, or| {
        matvec(w, in_ch, xr, zp, sums, or)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dense;
    use proptest::prelude::*;

    /// Packs `[out_ch, in_ch]` values in −2..=1 (test-local; the writer has its own).
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

    fn case() -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (1usize..41, 1usize..13).prop_flat_map(cases_of)
    }

    /// Rows whose last byte is partly padding (`in_ch` not a multiple of 4),
    /// drawn directly: a `prop_assume!` would reject a quarter of the cases
    /// and exceed proptest's global reject limit at the kernels area's
    /// 20,000 cases.
    fn ragged_case() -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (0usize..10, 1usize..4, 1usize..13).prop_flat_map(|(q, r, o)| cases_of((4 * q + r, o)))
    }

    fn cases_of(
        (i, o): (usize, usize),
    ) -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (
            Just(i),
            Just(o),
            proptest::collection::vec(-2i8..=1, i * o),
            proptest::collection::vec(any::<i8>(), i),
            any::<i8>(),
        )
    }

    #[test]
    fn fields_sign_extend() {
        for b in 0u16..256 {
            let b = b as u8;
            for j in 0..4u32 {
                let f = i32::from((b >> (2 * j)) & 3);
                assert_eq!(field(b, j), if f < 2 { f } else { f - 4 });
            }
        }
        // 0b11_10_01_00: W0 = 0, W1 = 1, W2 = −2, W3 = −1.
        let b = 0b1110_0100;
        assert_eq!([0, 1, 2, 3].map(|j| field(b, j)), [0, 1, -2, -1]);
    }

    #[test]
    fn layout_of_a_ragged_row() {
        // 2 rows × 5: [1, -2, -1, 0, 1], [-2, 1, 1, -1, -2].
        let w = pack(&[1, -2, -1, 0, 1, -2, 1, 1, -1, -2], 5);
        assert_eq!(w, [0b00_11_10_01, 0b01, 0b11_01_01_10, 0b10]);
        let mut sums = [0; 2];
        weight_sums(&w, 5, &mut sums);
        assert_eq!(sums, [-1, -3]);
        let mut out = [0; 2];
        matvec_ref(&w, 5, &[10, 20, 30, 40, 50], 0, &mut out);
        // Row by row, input value times weight.
        #[allow(clippy::identity_op)]
        let expected = [10 - 40 - 30 + 50, -20 + 20 + 30 - 40 - 100];
        assert_eq!(out, expected);
    }

    proptest! {
        #[test]
        fn optimized_is_bit_exact_with_reference_and_int8((i, o, w, x, zp) in case()) {
            let p = pack(&w, i);
            let mut want = vec![0i32; o];
            matvec_ref(&p, i, &x, zp, &mut want);
            let mut int8 = vec![0i32; o];
            dense::matvec_ref(&w, i, &x, zp, &mut int8);
            prop_assert_eq!(&int8, &want);
            let mut sums = vec![0i32; o];
            weight_sums(&p, i, &mut sums);
            let mut sums8 = vec![0i32; o];
            dense::weight_sums(&w, i, &mut sums8);
            prop_assert_eq!(&sums, &sums8);
            let mut got = vec![7i32; o];
            matvec_opt(&p, i, &x, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec(&p, i, &x, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
            #[cfg(feature = "weights-i2")]
            {
                let mut got = vec![7i32; o];
                super::super::dense_i4::Matrix::I2(&p).matvec(i, &x, zp, &sums, &mut got);
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        #[cfg(feature = "weights-i2")]
        fn matmul_is_rowwise_int8((i, o, w, x, zp) in case(), rows in 1usize..4) {
            use super::super::dense_i4::Matrix;
            let p = pack(&w, i);
            let xs: Vec<i8> = (0..rows).flat_map(|r| x.iter().map(move |&v| v.wrapping_add(r as i8))).collect();
            let mut sums = vec![0i32; o];
            Matrix::I2(&p).weight_sums(i, &mut sums);
            let mut got = vec![0i32; rows * o];
            Matrix::I2(&p).matmul(i, &xs, zp, &sums, &mut got);
            let mut sums8 = vec![0i32; o];
            Matrix::I8(&w).weight_sums(i, &mut sums8);
            let mut want = vec![0i32; rows * o];
            Matrix::I8(&w).matmul(i, &xs, zp, &sums8, &mut want);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn padding_fields_are_ignored((i, o, w, x, zp) in ragged_case(), junk in 1u8..64) {
            let p = pack(&w, i);
            let mut dirty = p.clone();
            let used = 2 * (i % 4);
            for r in 0..o {
                dirty[r * row_bytes(i) + i / 4] |= junk << used;
            }
            let (mut a, mut b) = (vec![0i32; o], vec![0i32; o]);
            matvec_ref(&p, i, &x, zp, &mut a);
            let mut sums = vec![0i32; o];
            weight_sums(&dirty, i, &mut sums);
            matvec_opt(&dirty, i, &x, zp, &sums, &mut b);
            prop_assert_eq!(&a, &b);
            matvec_ref(&dirty, i, &x, zp, &mut b);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn kernels_never_panic_on_inconsistent_slices(
            w in proptest::collection::vec(any::<u8>(), 0..40),
            x in proptest::collection::vec(any::<i8>(), 0..10),
            sums in proptest::collection::vec(any::<i32>(), 0..10),
            out_len in 0usize..10,
            in_ch in 0usize..12,
        ) {
            let mut out = vec![0i32; out_len];
            matvec_opt(&w, in_ch, &x, 3, &sums, &mut out);
            matvec_ref(&w, in_ch, &x, 3, &mut out);
            matvec(&w, in_ch, &x, 3, &sums, &mut out);
            let mut s2 = vec![0i32; out_len];
            weight_sums(&w, in_ch, &mut s2);
            let mut big = vec![0i32; out_len * 3];
            matmul(&w, in_ch, &x, 3, &sums, &mut big);
            let _ = weight_at(&w, in_ch, usize::MAX, usize::MAX - 1);
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let i = crate::MAX_CHANNELS;
        let w = vec![0xAAu8; row_bytes(i) * 2]; // every weight −2
        let x = vec![127i8; i];
        let mut want = vec![0; 2];
        matvec_ref(&w, i, &x, -128, &mut want);
        assert_eq!(want[0], -2 * 255 * i as i32);
        let mut sums = vec![0; 2];
        weight_sums(&w, i, &mut sums);
        let mut got = vec![0; 2];
        matvec(&w, i, &x, -128, &sums, &mut got);
        assert_eq!(got, want);
    }
}
