//! int4 activation rows (cargo feature `act-i4`): packing, unpacking and the
//! matrix-vector product over a packed input row.
//!
//! An int4 tensor stores each row of `C` channels in `ceil(C / 2)` bytes,
//! every row starting on a byte; channel `2k` is the low nibble of byte `k`,
//! channel `2k + 1` the high nibble (the same nibble order as int4 weights,
//! [`super::dense_i4`]). A nibble is a 4-bit two's-complement value −8..=7;
//! for odd `C` the high nibble of a row's last byte is 0.
//!
//! ```text
//! row i, C = 5:   byte i·3+0          byte i·3+1          byte i·3+2
//!                 [hi x1 | lo x0]     [hi x3 | lo x2]     [hi 0 | lo x4]
//! ```
//!
//! The kernels read packed rows where they lie: [`matvec`] unpacks
//! [`CHUNK`] values at a time into a buffer on its stack (never a whole row
//! or tensor) and multiplies them with the matching weight columns. Writing
//! goes through [`pack_row`] after the int8 requantization of a few
//! channels at a time (`requant::RowRequant::row_i4`). The reference for
//! all of it is the int8 kernel on the unpacked values
//! ([`unpack_row`]), which the tests compare against.

use super::dense_i4::{nibble, Matrix};

/// Values unpacked at a time by [`matvec`] (a stack buffer of this many
/// bytes; even, so a chunk starts on a whole byte).
pub const CHUNK: usize = 32;

/// Bytes of one packed row of `channels` values.
#[inline]
pub fn row_bytes(channels: usize) -> usize {
    channels.div_ceil(2)
}

/// Value `k` of a packed row (0 past its end).
#[inline]
pub fn value_at(row: &[u8], k: usize) -> i8 {
    row.get(k / 2).map_or(0, |&b| nibble(b, k % 2 == 1))
}

/// `v` saturated to −8..=7.
#[inline]
pub fn clamp_i4(v: i8) -> i8 {
    v.clamp(-8, 7)
}

/// Packs `vals` (each saturated to −8..=7) into `out`: value `k` into the
/// low (even `k`) or high (odd `k`) nibble of byte `k / 2`; a lone last
/// value leaves the high nibble 0. Writes `min(out.len(), ceil(vals.len()/2))`
/// bytes.
#[inline]
pub fn pack_row(vals: &[i8], out: &mut [u8]) {
    let mut pairs = vals.chunks(2);
    for o in out.iter_mut() {
        let Some(p) = pairs.next() else { break };
        let lo = p.first().map_or(0, |&v| clamp_i4(v) as u8 & 0x0f);
        let hi = p.get(1).map_or(0, |&v| (clamp_i4(v) as u8) << 4);
        *o = lo | hi;
    }
}

/// Writes value `k` of a packed row (saturated to −8..=7; nothing past the
/// row's end), leaving the other nibble of its byte as it is.
#[inline]
pub fn set_value(row: &mut [u8], k: usize, v: i8) {
    if let Some(b) = row.get_mut(k / 2) {
        let v = clamp_i4(v) as u8 & 0x0f;
        *b = if k % 2 == 0 {
            (*b & 0xf0) | v
        } else {
            (*b & 0x0f) | (v << 4)
        };
    }
}

/// Unpacks the first `out.len()` values of a packed row into `out`.
#[inline]
pub fn unpack_row(row: &[u8], out: &mut [i8]) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = value_at(row, k);
    }
}

/// `W[c, k]` of a weight matrix of either precision (0 out of range).
#[inline]
fn weight(w: Matrix<'_>, in_ch: usize, c: usize, k: usize) -> i32 {
    match w {
        Matrix::I8(w) => c
            .checked_mul(in_ch)
            .and_then(|r| r.checked_add(k))
            .and_then(|i| w.get(i))
            .map_or(0, |&v| i32::from(v)),
        Matrix::I4(w) => i32::from(super::dense_i4::weight_at(w, in_ch, c, k)),
        #[cfg(feature = "weights-i2")]
        Matrix::I2(w) => super::dense_i2::weight_at(w, in_ch, c, k),
    }
}

/// `out[c] = Σ_{k<in_ch} W[c,k]·(x_k − zp)` for `c < out.len()`, `x` one
/// packed row of `in_ch` int4 values (missing bytes count as zero). The row
/// is unpacked [`CHUNK`] values at a time (as `x_k − zp`, in −15..=15) into a
/// stack buffer; an int8 matrix multiplies each chunk with a contiguous
/// slice of each weight row, an int4/int2 one reads its weights one by one.
/// Not inlined: its buffer stays out of the frames of the callers that
/// dispatch to every kernel (`Src::matvec_row`), on every op's stack path.
#[inline(never)]
pub fn matvec(w: Matrix<'_>, in_ch: usize, x: &[u8], zp: i8, out: &mut [i32]) {
    out.iter_mut().for_each(|o| *o = 0);
    let mut buf = [0i8; CHUNK];
    let mut k0 = 0usize;
    while k0 < in_ch {
        let len = (in_ch - k0).min(CHUNK);
        let (xb, _) = buf.split_at_mut(len);
        let bytes = x.get(k0 / 2..).unwrap_or(&[]);
        for (k, v) in xb.iter_mut().enumerate() {
            *v = value_at(bytes, k).wrapping_sub(zp);
        }
        for (c, o) in out.iter_mut().enumerate() {
            let mut acc = 0i32;
            match w {
                Matrix::I8(wm) => {
                    let start = c.saturating_mul(in_ch).saturating_add(k0);
                    let row = wm.get(start..start.saturating_add(len)).unwrap_or(&[]);
                    for (&a, &b) in row.iter().zip(xb.iter()) {
                        acc = acc.wrapping_add(i32::from(a) * i32::from(b));
                    }
                }
                _ => {
                    for (k, &b) in xb.iter().enumerate() {
                        acc = acc.wrapping_add(weight(w, in_ch, c, k0 + k) * i32::from(b));
                    }
                }
            }
            *o = o.wrapping_add(acc);
        }
        k0 += len;
    }
}

/// [`matvec`] for every packed row of `x` (`row_bytes(in_ch)` bytes each):
/// `out` is `[rows, oc]`, up to the shorter of the two.
#[inline(never)]
pub fn matmul(w: Matrix<'_>, in_ch: usize, x: &[u8], zp: i8, oc: usize, out: &mut [i32]) {
    let rb = row_bytes(in_ch).max(1);
    let mut rows = x.chunks_exact(rb);
    for o in out.chunks_exact_mut(oc.max(1)) {
        let Some(r) = rows.next() else { break };
        matvec(w, in_ch, r, zp, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The int8 reference on the unpacked row.
    fn reference(w: Matrix<'_>, in_ch: usize, x: &[u8], zp: i8, oc: usize) -> Vec<i32> {
        let mut xs = vec![0i8; in_ch];
        unpack_row(x, &mut xs);
        let mut out = vec![0i32; oc];
        match w {
            Matrix::I8(w) => crate::kernels::dense::matvec_ref(w, in_ch, &xs, zp, &mut out),
            Matrix::I4(w) => crate::kernels::dense_i4::matvec_ref(w, in_ch, &xs, zp, &mut out),
            #[cfg(feature = "weights-i2")]
            Matrix::I2(w) => crate::kernels::dense_i2::matvec_ref(w, in_ch, &xs, zp, &mut out),
        }
        out
    }

    fn case() -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (1usize..80, 1usize..9).prop_flat_map(|(ic, oc)| {
            (
                Just(ic),
                Just(oc),
                proptest::collection::vec(-8i8..=7, ic),
                proptest::collection::vec(any::<i8>(), ic * oc),
                -8i8..=7,
            )
        })
    }

    proptest! {
        /// Writing values one by one into a zeroed row packs it as
        /// `pack_row` does, saturating each to −8..=7.
        #[test]
        fn set_value_packs_like_pack_row(vals in proptest::collection::vec(any::<i8>(), 0..70)) {
            let mut want = vec![0u8; row_bytes(vals.len())];
            pack_row(&vals, &mut want);
            let mut got = vec![0u8; row_bytes(vals.len())];
            // In reverse order: each write keeps the other nibble.
            for (k, &v) in vals.iter().enumerate().rev() {
                set_value(&mut got, k, v);
            }
            set_value(&mut got, vals.len() + 1, 7);
            prop_assert_eq!(&got, &want);
        }
    }

    proptest! {
        #[test]
        fn pack_unpack_round_trips(vals in proptest::collection::vec(-8i8..=7, 0..70)) {
            let mut p = vec![0u8; row_bytes(vals.len())];
            pack_row(&vals, &mut p);
            let mut back = vec![0i8; vals.len()];
            unpack_row(&p, &mut back);
            prop_assert_eq!(&back, &vals);
            if vals.len() % 2 == 1 {
                prop_assert_eq!(p.last().map(|b| b >> 4), Some(0));
            }
        }

        #[test]
        fn pack_saturates(vals in proptest::collection::vec(any::<i8>(), 0..40)) {
            let mut p = vec![0u8; row_bytes(vals.len())];
            pack_row(&vals, &mut p);
            for (k, &v) in vals.iter().enumerate() {
                prop_assert_eq!(value_at(&p, k), v.clamp(-8, 7));
            }
        }

        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn matvec_i8_weights_matches_reference((ic, oc, x, w, zp) in case()) {
            let mut xp = vec![0u8; row_bytes(ic)];
            pack_row(&x, &mut xp);
            let m = Matrix::I8(&w);
            let mut out = vec![0i32; oc];
            matvec(m, ic, &xp, zp, &mut out);
            prop_assert_eq!(out, reference(m, ic, &xp, zp, oc));
        }

        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn matvec_i4_weights_matches_reference((ic, oc, x, w, zp) in case()) {
            let w4: Vec<i8> = w.iter().map(|&v| v.clamp(-8, 7)).collect();
            let packed = crate::format::writer::pack_i4(&w4, ic).unwrap();
            let mut xp = vec![0u8; row_bytes(ic)];
            pack_row(&x, &mut xp);
            let m = Matrix::I4(&packed);
            let mut out = vec![0i32; oc];
            matvec(m, ic, &xp, zp, &mut out);
            prop_assert_eq!(out, reference(m, ic, &xp, zp, oc));
        }

        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn matmul_is_matvec_per_row((ic, oc, x, w, zp) in case(), rows in 0usize..4) {
            let rb = row_bytes(ic);
            let mut xs = vec![0u8; rb * rows];
            for r in xs.chunks_exact_mut(rb.max(1)) {
                pack_row(&x, r);
            }
            let m = Matrix::I8(&w);
            let mut out = vec![0i32; oc * rows];
            matmul(m, ic, &xs, zp, oc, &mut out);
            let one = reference(m, ic, &xs, zp, oc);
            for o in out.chunks_exact(oc) {
                prop_assert_eq!(o, &one[..]);
            }
        }
    }
}
