//! Dense products with **int4** weights, unpacked inside the kernel (no
//! scratch copy of the weights): `out[c] = Σ_k W[c,k]·(x_k − zp)` with `W`
//! row-major `[out_ch, in_ch]`, two 4-bit two's-complement weights per byte,
//! each row padded to `ceil(in_ch / 2)` bytes, and `x` int8 with zero point
//! `zp`, accumulated exactly in `i32` ([`crate::format::WeightBits::I4`]):
//!
//! ```text
//! row c, in_ch = 5:   byte 0        byte 1        byte 2
//!                     [hi:W1|lo:W0] [hi:W3|lo:W2] [hi:pad 0|lo:W4]
//! ```
//!
//! A nibble `n` is the value `n < 8 ? n : n − 16` (sign extension from bit
//! 3, as the arithmetic shifts `((b << 4) as i8) >> 4` and `(b as i8) >> 4`
//! compute it on every target). The padding nibble of an odd row is never
//! read. No overflow is possible: `|W| ≤ 8`, `|x − zp| ≤ 255`,
//! `in_ch ≤ MAX_CHANNELS`.
//!
//! * [`matvec_ref`]: the reference, one weight at a time through [`weight_at`].
//! * [`matvec_opt`] (what [`matvec`] runs by default): `Σ W·x − zp·Σ W` with the
//!   per-row sums from [`weight_sums`], four rows per pass over `x`, one
//!   packed byte (two weights, two inputs) per step.
//!
//! Measured on the emulated Cortex-M4 (QEMU mps2-an386, instructions per
//! inference, `scripts/areas/models.sh`): whole models with every layer int4 run
//! 2.4 % (karate-gcn) and 7.8 % (digits-gin) more instructions than with
//! int8 weights — each packed byte needs two sign extensions.
//!
//! Both are bit-exact with each other and with the int8 kernels of
//! [`super::dense`] run on the sign-extended weights (proptests below).
//! [`Matrix`] lets an op take either precision and dispatches to the int8 or
//! int4 kernels.

use super::{dense, packed};

/// The weight value of nibble `hi` (false: bits 0..4, true: bits 4..8) of `b`.
#[inline(always)]
pub fn nibble(b: u8, hi: bool) -> i8 {
    if hi {
        (b as i8) >> 4
    } else {
        ((b << 4) as i8) >> 4
    }
}

/// Bytes of one packed row of `in_ch` weights.
#[inline]
pub fn row_bytes(in_ch: usize) -> usize {
    in_ch.div_ceil(2)
}

/// Weight `W[c,k]` of a packed matrix (0 when out of range or `k ≥ in_ch`).
#[inline]
pub fn weight_at(w: &[u8], in_ch: usize, c: usize, k: usize) -> i8 {
    if k >= in_ch {
        return 0;
    }
    let at = c
        .checked_mul(row_bytes(in_ch))
        .and_then(|r| r.checked_add(k / 2));
    at.and_then(|i| w.get(i))
        .map_or(0, |&b| nibble(b, k % 2 == 1))
}

/// Reference: `out[c] = Σ_{k<in_ch} W[c,k]·(x[k] − zp)` for `c < out.len()`.
/// Missing weights or inputs count as zero.
pub fn matvec_ref(w: &[u8], in_ch: usize, x: &[i8], zp: i8, out: &mut [i32]) {
    for (c, o) in out.iter_mut().enumerate() {
        let mut acc = 0i32;
        for (k, &xk) in x.iter().enumerate().take(in_ch) {
            let wk = i32::from(weight_at(w, in_ch, c, k));
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
    let odd = in_ch % 2 == 1;
    let mut rows = w.chunks_exact(rb);
    for s in sums.iter_mut() {
        let Some(row) = rows.next() else { break };
        let mut acc = 0i32;
        for (i, &b) in row.iter().enumerate() {
            acc = acc.wrapping_add(i32::from(nibble(b, false)));
            if !(odd && i + 1 == rb) {
                acc = acc.wrapping_add(i32::from(nibble(b, true)));
            }
        }
        *s = acc;
    }
}

/// `Σ_k W[k]·x[k]` of one packed row with `x` (`x.len() ≥ in_ch` expected;
/// a shorter `x` stops the sum early).
#[inline]
fn dot_row(row: &[u8], x: &[i8], in_ch: usize) -> i32 {
    let (pairs, tail) = split_pairs(x, in_ch);
    let mut s0 = 0i32;
    let mut s1 = 0i32;
    for (&b, &[x0, x1]) in row.iter().zip(pairs) {
        s0 = s0.wrapping_add(i32::from(nibble(b, false)) * i32::from(x0));
        s1 = s1.wrapping_add(i32::from(nibble(b, true)) * i32::from(x1));
    }
    if let (Some(&xl), Some(&b)) = (tail.first(), row.get(in_ch / 2)) {
        s0 = s0.wrapping_add(i32::from(nibble(b, false)) * i32::from(xl));
    }
    s0.wrapping_add(s1)
}

/// `x[..in_ch]` (or all of a shorter `x`) as pairs `[x_2i, x_2i+1]` and the
/// odd element left over. The pairs are a slice of arrays (a zero-copy cast),
/// so zipping them with slices needs no division (unlike `ChunksExact`, whose
/// `Zip` length divides by the chunk size out of line: a panic path).
#[inline]
fn split_pairs(x: &[i8], in_ch: usize) -> (&[[i8; 2]], &[i8]) {
    let x = x.get(..in_ch).unwrap_or(x);
    let (even, tail) = x.split_at_checked(x.len() & !1).unwrap_or((&[], x));
    (bytemuck::try_cast_slice(even).unwrap_or(&[]), tail)
}

/// Four packed rows against `x` in one pass: every pair of `x` values is
/// loaded once per eight multiply-accumulates.
#[inline]
fn dot4_rows(r: [&[u8]; 4], x: &[i8], in_ch: usize) -> [i32; 4] {
    let (pairs, tail) = split_pairs(x, in_ch);
    let mut s = [0i32; 4];
    for ((((&a, &b), &c), &d), &[x0, x1]) in r[0].iter().zip(r[1]).zip(r[2]).zip(r[3]).zip(pairs) {
        let (x0, x1) = (i32::from(x0), i32::from(x1));
        for (acc, byte) in s.iter_mut().zip([a, b, c, d]) {
            *acc = acc
                .wrapping_add(i32::from(nibble(byte, false)) * x0)
                .wrapping_add(i32::from(nibble(byte, true)) * x1);
        }
    }
    if let Some(&xl) = tail.first() {
        let xl = i32::from(xl);
        for (acc, row) in s.iter_mut().zip(r) {
            if let Some(&b) = row.get(in_ch / 2) {
                *acc = acc.wrapping_add(i32::from(nibble(b, false)) * xl);
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
/// `[rows, out_ch]` with `out_ch = sums.len()`.
pub fn matmul(w: &[u8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    packed::matmul_rows(in_ch, x, sums, out, |xr, or| {
        matvec(w, in_ch, xr, zp, sums, or)
    });
}

/// A weight matrix of any precision (int8, int4, int2), as read from a
/// validated model.
///
/// Without the cargo feature `weights-i4` the int4 kernels are not compiled
/// in: `Model::from_bytes` rejects int4 weights (`Error::OpNotCompiled`), so
/// no `I4` matrix reaches the kernels, and the methods below give zeros for
/// one should it (no panic, nothing linked).
#[derive(Debug, Clone, Copy)]
pub enum Matrix<'a> {
    /// int8 weights, `in_ch` bytes per row.
    I8(&'a [i8]),
    /// Packed int4 weights, `ceil(in_ch / 2)` bytes per row.
    I4(&'a [u8]),
    /// Packed int2 weights, `ceil(in_ch / 4)` bytes per row
    /// ([`super::dense_i2`]). Only with the cargo feature `weights-i2`
    /// (left out of minimal builds entirely: no match arm anywhere; without
    /// it no section decodes as int2).
    #[cfg(feature = "weights-i2")]
    I2(&'a [u8]),
}

impl Matrix<'_> {
    /// No weights at all (e.g. SAGE without root weight).
    pub fn is_empty(&self) -> bool {
        match self {
            Matrix::I8(w) => w.is_empty(),
            Matrix::I4(w) => w.is_empty(),
            #[cfg(feature = "weights-i2")]
            Matrix::I2(w) => w.is_empty(),
        }
    }

    /// Rows `c0..c0 + count` of the matrix (output channels; fewer, or
    /// none, where it has fewer rows), `in_ch` weights per row.
    pub fn rows(&self, c0: usize, count: usize, in_ch: usize) -> Self {
        fn part<T>(w: &[T], row: usize, c0: usize, count: usize) -> &[T] {
            let a = c0.saturating_mul(row).min(w.len());
            let b = c0.saturating_add(count).saturating_mul(row).min(w.len());
            w.get(a..b).unwrap_or_default()
        }
        match *self {
            Matrix::I8(w) => Matrix::I8(part(w, in_ch, c0, count)),
            Matrix::I4(w) => Matrix::I4(part(w, row_bytes(in_ch), c0, count)),
            #[cfg(feature = "weights-i2")]
            Matrix::I2(w) => Matrix::I2(part(w, super::dense_i2::row_bytes(in_ch), c0, count)),
        }
    }

    /// Per-row weight sums ([`dense::weight_sums`] or [`weight_sums`]).
    pub fn weight_sums(&self, in_ch: usize, sums: &mut [i32]) {
        // With `kernels-small` the ops run the reference kernels, which do
        // not read the sums ([`Matrix::matvec`], [`Matrix::matmul`]).
        if cfg!(feature = "kernels-small") {
            return;
        }
        match self {
            Matrix::I8(w) => dense::weight_sums(w, in_ch, sums),
            #[cfg(feature = "weights-i4")]
            Matrix::I4(w) => weight_sums(w, in_ch, sums),
            #[cfg(not(feature = "weights-i4"))]
            Matrix::I4(_) => sums.fill(0),
            #[cfg(feature = "weights-i2")]
            Matrix::I2(w) => super::dense_i2::weight_sums(w, in_ch, sums),
        }
    }

    /// One matrix-vector product ([`dense::matvec`] or [`matvec`]).
    pub fn matvec(&self, in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
        match self {
            Matrix::I8(w) => dense::matvec(w, in_ch, x, zp, sums, out),
            #[cfg(feature = "weights-i4")]
            Matrix::I4(w) => matvec(w, in_ch, x, zp, sums, out),
            #[cfg(not(feature = "weights-i4"))]
            Matrix::I4(_) => out.fill(0),
            #[cfg(feature = "weights-i2")]
            Matrix::I2(w) => super::dense_i2::matvec(w, in_ch, x, zp, sums, out),
        }
    }

    /// Every row of `x` ([`dense::matmul`] or [`matmul`]).
    pub fn matmul(&self, in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
        match self {
            Matrix::I8(w) => dense::matmul(w, in_ch, x, zp, sums, out),
            #[cfg(feature = "weights-i4")]
            Matrix::I4(w) => matmul(w, in_ch, x, zp, sums, out),
            #[cfg(not(feature = "weights-i4"))]
            Matrix::I4(_) => out.fill(0),
            #[cfg(feature = "weights-i2")]
            Matrix::I2(w) => super::pairs_i2::matmul(w, in_ch, x, zp, sums, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Packs `[out_ch, in_ch]` values in −8..=7 (test-local; the writer has its own).
    fn pack(v: &[i8], in_ch: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for row in v.chunks_exact(in_ch) {
            for pair in row.chunks(2) {
                let lo = (pair[0] as u8) & 0xF;
                let hi = pair.get(1).map_or(0, |&h| (h as u8) & 0xF);
                out.push(lo | (hi << 4));
            }
        }
        out
    }

    fn case() -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (1usize..41, 1usize..13).prop_flat_map(cases_of)
    }

    /// Odd row lengths (a padding nibble in every row), drawn directly: a
    /// `prop_assume!` would reject half the cases and exceed proptest's
    /// global reject limit at high case counts.
    fn odd_case() -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (0usize..20, 1usize..13).prop_flat_map(|(h, o)| cases_of((2 * h + 1, o)))
    }

    fn cases_of(
        (i, o): (usize, usize),
    ) -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (
            Just(i),
            Just(o),
            proptest::collection::vec(-8i8..=7, i * o),
            proptest::collection::vec(any::<i8>(), i),
            any::<i8>(),
        )
    }

    #[test]
    fn nibbles_sign_extend() {
        for b in 0u16..256 {
            let b = b as u8;
            let lo = (b & 0xF) as i8;
            let hi = (b >> 4) as i8;
            let ext = |n: i8| if n < 8 { n } else { n - 16 };
            assert_eq!(nibble(b, false), ext(lo));
            assert_eq!(nibble(b, true), ext(hi));
        }
        // Byte 0x9F: low nibble 0xF = −1, high nibble 0x9 = −7.
        assert_eq!((nibble(0x9F, false), nibble(0x9F, true)), (-1, -7));
    }

    #[test]
    fn layout_of_an_odd_row() {
        // 2 rows × 3: [1, -2, 3], [-8, 7, -1] → [0xE1, 0x03, 0x78, 0x0F].
        let w = pack(&[1, -2, 3, -8, 7, -1], 3);
        assert_eq!(w, [0xE1, 0x03, 0x78, 0x0F]);
        let mut sums = [0; 2];
        weight_sums(&w, 3, &mut sums);
        assert_eq!(sums, [2, -2]);
        let mut out = [0; 2];
        matvec_ref(&w, 3, &[10, 20, 30], 0, &mut out);
        assert_eq!(out, [10 - 40 + 90, -80 + 140 - 30]);
    }

    proptest! {
        #[test]
        fn optimized_is_bit_exact_with_reference_and_int8((i, o, w, x, zp) in case()) {
            let p = pack(&w, i);
            let mut want = vec![0i32; o];
            matvec_ref(&p, i, &x, zp, &mut want);
            // Same as the int8 reference on the sign-extended weights.
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
            // The int4 arm of `Matrix` exists with the feature `weights-i4`.
            if cfg!(feature = "weights-i4") {
                let mut got = vec![7i32; o];
                Matrix::I4(&p).matvec(i, &x, zp, &sums, &mut got);
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn matmul_is_rowwise_int8((i, o, w, x, zp) in case(), rows in 1usize..4) {
            if !cfg!(feature = "weights-i4") {
                return Ok(()); // the int4 arm of `Matrix` is compiled out
            }
            let p = pack(&w, i);
            let xs: Vec<i8> = (0..rows).flat_map(|r| x.iter().map(move |&v| v.wrapping_add(r as i8))).collect();
            let mut sums = vec![0i32; o];
            Matrix::I4(&p).weight_sums(i, &mut sums);
            let mut got = vec![0i32; rows * o];
            Matrix::I4(&p).matmul(i, &xs, zp, &sums, &mut got);
            let mut sums8 = vec![0i32; o];
            Matrix::I8(&w).weight_sums(i, &mut sums8);
            let mut want = vec![0i32; rows * o];
            Matrix::I8(&w).matmul(i, &xs, zp, &sums8, &mut want);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn padding_nibble_is_ignored((i, o, w, x, zp) in odd_case(), junk in 1u8..16) {
            let p = pack(&w, i);
            let mut dirty = p.clone();
            for r in 0..o {
                dirty[r * row_bytes(i) + i / 2] |= junk << 4;
            }
            let (mut a, mut b) = (vec![0i32; o], vec![0i32; o]);
            matvec_ref(&p, i, &x, zp, &mut a);
            let mut sums = vec![0i32; o];
            weight_sums(&dirty, i, &mut sums);
            matvec_opt(&dirty, i, &x, zp, &sums, &mut b);
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
        let w = vec![0x88u8; row_bytes(i) * 2]; // every weight −8
        let x = vec![127i8; i];
        let mut want = vec![0; 2];
        matvec_ref(&w, i, &x, -128, &mut want);
        assert_eq!(want[0], -8 * 255 * i as i32);
        let mut sums = vec![0; 2];
        weight_sums(&w, i, &mut sums);
        let mut got = vec![0; 2];
        matvec(&w, i, &x, -128, &sums, &mut got);
        assert_eq!(got, want);
    }
}
