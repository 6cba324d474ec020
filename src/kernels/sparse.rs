//! Sparse int8 rows times dense int8 weights: the input layer of models fed
//! with [`crate::Features::SparseI8`] (bag-of-words inputs such as Cora's,
//! ~1 % of the entries stored).
//!
//! A sparse row stores only the entries that differ from the input's zero
//! point `zp` (columns strictly increasing, `< in_ch`); every other entry is
//! `zp`, whose term `W[c,k]·(zp − zp)` is 0. So the dense product
//! `out[c] = Σ_k W[c,k]·(x_k − zp)` ([`crate::kernels::dense`]) equals
//! `Σ_{stored (k, v)} W[c,k]·(v − zp)`: one weight *column* per stored entry
//! instead of a multiply per input channel. Exact in `i32` for the same
//! reason as the dense kernel (`|W| ≤ 128`, `|v − zp| ≤ 255`, at most
//! `in_ch ≤ MAX_CHANNELS` entries per row), with wrapping adds so that no
//! input can panic.
//!
//! Weights are `[out_ch, in_ch]` row-major, so a column is read with stride
//! `in_ch`.
//!
//! * [`matvec_ref`]: the reference, one output channel at a time, written
//!   like the formula.
//! * [`matvec_opt`] (what [`matvec`] runs by default): stored entries
//!   outermost, two at a time, each pair adding two weight-column terms to
//!   every output channel in one pass (half the accumulator loads/stores);
//!   entries with `v = zp` are skipped.
//!
//! Both are tested bit-exact against each other and against
//! [`crate::kernels::dense::matvec_ref`] on the densified row (proptest).

/// Sparse int8 rows in CSR form, as given by [`crate::Features::SparseI8`]
/// (validated by [`crate::graph`] before any kernel sees them).
#[derive(Debug, Clone, Copy)]
pub struct SparseRows<'a> {
    /// Row offsets into `cols`/`values` (`rows + 1` entries).
    pub row_ptr: &'a [u32],
    /// Column of each stored entry.
    pub cols: &'a [u16],
    /// Value of each stored entry.
    pub values: &'a [i8],
}

impl<'a> SparseRows<'a> {
    /// Number of rows (`row_ptr.len() − 1`).
    pub fn rows(&self) -> usize {
        self.row_ptr.len().saturating_sub(1)
    }

    /// Columns and values of row `i` (empty if out of range or inconsistent).
    #[inline]
    pub fn row(&self, i: usize) -> (&'a [u16], &'a [i8]) {
        let a = self.row_ptr.get(i).map_or(0, |&a| a as usize);
        let b = self
            .row_ptr
            .get(i.wrapping_add(1))
            .map_or(0, |&b| b as usize);
        (
            self.cols.get(a..b).unwrap_or(&[]),
            self.values.get(a..b).unwrap_or(&[]),
        )
    }
}

/// Reference: `out[c] = Σ_e w[c·in_ch + cols[e]]·(values[e] − zp)` for
/// `c < out.len()`. Columns `≥ in_ch` and missing weights count as zero.
pub fn matvec_ref(w: &[i8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    for (c, o) in out.iter_mut().enumerate() {
        let mut acc = 0i32;
        for (&k, &v) in cols.iter().zip(values) {
            let k = usize::from(k);
            if k >= in_ch {
                continue;
            }
            let wk = c
                .checked_mul(in_ch)
                .and_then(|s| s.checked_add(k))
                .and_then(|at| w.get(at))
                .copied()
                .unwrap_or(0);
            acc = acc.wrapping_add(i32::from(wk) * (i32::from(v) - i32::from(zp)));
        }
        *o = acc;
    }
}

/// Optimized: bit-exact with [`matvec_ref`] (see the module docs). Output
/// channels beyond the weight rows (`w.len() / in_ch`) are 0.
pub fn matvec_opt(w: &[i8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    out.iter_mut().for_each(|o| *o = 0);
    if in_ch == 0 {
        return;
    }
    let n = out.len().min(w.len() / in_ch);
    let out = out.get_mut(..n).unwrap_or(&mut []);
    let zp = i32::from(zp);
    // Stored entries that contribute: column in range, value ≠ zp.
    let mut entries = cols
        .iter()
        .zip(values)
        .map(|(&k, &v)| (usize::from(k), i32::from(v) - zp))
        .filter(|&(k, d)| k < in_ch && d != 0);
    while let Some((k1, d1)) = entries.next() {
        match entries.next() {
            Some((k2, d2)) => {
                // Column k1 and k2 of row c are w[c·in_ch + k1], w[c·in_ch + k2]:
                // both below n·in_ch ≤ w.len(), so `get` always succeeds.
                let (mut i1, mut i2) = (k1, k2);
                for o in out.iter_mut() {
                    let a = w.get(i1).copied().unwrap_or(0);
                    let b = w.get(i2).copied().unwrap_or(0);
                    *o = o
                        .wrapping_add(i32::from(a) * d1)
                        .wrapping_add(i32::from(b) * d2);
                    i1 = i1.wrapping_add(in_ch);
                    i2 = i2.wrapping_add(in_ch);
                }
            }
            None => {
                let mut i1 = k1;
                for o in out.iter_mut() {
                    let a = w.get(i1).copied().unwrap_or(0);
                    *o = o.wrapping_add(i32::from(a) * d1);
                    i1 = i1.wrapping_add(in_ch);
                }
                break;
            }
        }
    }
}

/// The default kernel: [`matvec_opt`], or [`matvec_ref`] with the
/// `reference-kernels` or `kernels-small` feature.
#[inline]
pub fn matvec(w: &[i8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    if cfg!(any(
        feature = "reference-kernels",
        feature = "kernels-small"
    )) {
        matvec_ref(w, in_ch, cols, values, zp, out);
    } else {
        matvec_opt(w, in_ch, cols, values, zp, out);
    }
}

/// Applies [`matvec`] to every row of `x`: `out` is `[rows, out_ch]`.
pub fn matmul(w: &[i8], in_ch: usize, x: SparseRows<'_>, zp: i8, out_ch: usize, out: &mut [i32]) {
    if out_ch == 0 {
        return;
    }
    for (i, or) in out.chunks_exact_mut(out_ch).enumerate().take(x.rows()) {
        let (cols, values) = x.row(i);
        matvec(w, in_ch, cols, values, zp, or);
    }
}

/// int4 weights ([`crate::kernels::dense_i4`] layout): `out[c] = Σ_e
/// W[c, cols[e]]·(values[e] − zp)`, stored entries outermost, reading one
/// nibble per weight in place (no unpacked copy). Columns `≥ in_ch` and
/// missing weights count as zero. Tested bit-exact against
/// [`crate::kernels::dense_i4::matvec_ref`] on the densified row.
pub fn matvec_i4(w: &[u8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    use crate::kernels::dense_i4::{nibble, row_bytes};
    out.iter_mut().for_each(|o| *o = 0);
    let rb = row_bytes(in_ch);
    if rb == 0 {
        return;
    }
    let n = out.len().min(w.len() / rb);
    let out = out.get_mut(..n).unwrap_or(&mut []);
    let zp = i32::from(zp);
    for (&k, &v) in cols.iter().zip(values) {
        let k = usize::from(k);
        let d = i32::from(v) - zp;
        if k >= in_ch || d == 0 {
            continue;
        }
        let (mut at, hi) = (k / 2, k % 2 == 1);
        for o in out.iter_mut() {
            let b = w.get(at).copied().unwrap_or(0);
            *o = o.wrapping_add(i32::from(nibble(b, hi)) * d);
            at = at.wrapping_add(rb);
        }
    }
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
    if out_ch == 0 {
        return;
    }
    for (i, or) in out.chunks_exact_mut(out_ch).enumerate().take(x.rows()) {
        let (cols, values) = x.row(i);
        matvec_i4(w, in_ch, cols, values, zp, or);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::dense;
    use proptest::prelude::*;

    /// A dense row and its sparse form (entries ≠ zp), with a given density.
    fn case() -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (1usize..60, 1usize..20, any::<i8>(), 0u32..=100).prop_flat_map(|(i, o, zp, pct)| {
            (
                Just(i),
                Just(o),
                proptest::collection::vec(any::<i8>(), i * o),
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

    /// Packs `[out_ch, in_ch]` values (low nibble first, rows padded).
    fn pack_i4(v: &[i8], in_ch: usize) -> Vec<u8> {
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

    proptest! {
        #[test]
        fn sparse_i4_equals_dense_i4_on_the_densified_row((i, o, w, x, zp) in case()) {
            let w: Vec<i8> = w.iter().map(|&v| v >> 4).collect();
            let packed = pack_i4(&w, i);
            let mut want = vec![0i32; o];
            crate::kernels::dense_i4::matvec_ref(&packed, i, &x, zp, &mut want);
            let mut want8 = vec![0i32; o];
            dense::matvec_ref(&w, i, &x, zp, &mut want8);
            prop_assert_eq!(&want, &want8);
            let (cols, vals) = to_sparse(&x, zp);
            let mut got = vec![7i32; o];
            matvec_i4(&packed, i, &cols, &vals, zp, &mut got);
            prop_assert_eq!(&got, &want);
        }

        #[test]
        fn sparse_kernels_equal_dense_on_the_densified_row((i, o, w, x, zp) in case()) {
            let mut want = vec![0i32; o];
            dense::matvec_ref(&w, i, &x, zp, &mut want);
            let (cols, vals) = to_sparse(&x, zp);
            let mut got = vec![7i32; o];
            matvec_ref(&w, i, &cols, &vals, zp, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec_opt(&w, i, &cols, &vals, zp, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec(&w, i, &cols, &vals, zp, &mut got);
            prop_assert_eq!(&got, &want);
        }

        #[test]
        fn stored_zero_point_entries_change_nothing((i, o, w, x, zp) in case()) {
            // Storing entries equal to zp (allowed by the CSR rules) gives the same result.
            let cols: Vec<u16> = (0..i as u16).collect();
            let mut want = vec![0i32; o];
            dense::matvec_ref(&w, i, &x, zp, &mut want);
            let mut got = vec![0i32; o];
            matvec_opt(&w, i, &cols, &x, zp, &mut got);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn sparse_matmul_equals_dense_matmul(
            (i, o, w, _x, zp) in case(),
            rows in proptest::collection::vec(proptest::collection::vec(any::<i8>(), 60), 0..6),
        ) {
            let x: Vec<i8> = rows.iter().flat_map(|r| r[..i].iter().map(|&v| if v % 3 == 0 { v } else { zp })).collect();
            let mut sums = vec![0i32; o];
            dense::weight_sums(&w, i, &mut sums);
            let mut want = vec![0i32; rows.len() * o];
            dense::matmul(&w, i, &x, zp, &sums, &mut want);
            let mut row_ptr = vec![0u32];
            let (mut cols, mut vals) = (vec![], vec![]);
            for r in x.chunks(i) {
                let (c, v) = to_sparse(r, zp);
                cols.extend(c);
                vals.extend(v);
                row_ptr.push(cols.len() as u32);
            }
            let mut got = vec![9i32; rows.len() * o];
            matmul(&w, i, SparseRows { row_ptr: &row_ptr, cols: &cols, values: &vals }, zp, o, &mut got);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn kernels_never_panic_on_inconsistent_slices(
            w in proptest::collection::vec(any::<i8>(), 0..40),
            cols in proptest::collection::vec(any::<u16>(), 0..10),
            values in proptest::collection::vec(any::<i8>(), 0..10),
            row_ptr in proptest::collection::vec(0u32..12, 0..5),
            out_len in 0usize..10,
            in_ch in 0usize..12,
        ) {
            let mut out = vec![0i32; out_len];
            matvec_opt(&w, in_ch, &cols, &values, 3, &mut out);
            matvec_ref(&w, in_ch, &cols, &values, 3, &mut out);
            let x = SparseRows { row_ptr: &row_ptr, cols: &cols, values: &values };
            let mut big = vec![0i32; out_len * 3];
            matmul(&w, in_ch, x, 3, out_len, &mut big);
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let i = crate::MAX_CHANNELS;
        let w = vec![-128i8; i * 2];
        let cols: Vec<u16> = (0..i as u16).collect();
        let vals = vec![127i8; i];
        let mut got = vec![0; 2];
        matvec_opt(&w, i, &cols, &vals, -128, &mut got);
        assert_eq!(got, vec![-128 * 255 * i as i32; 2]);
    }

    #[test]
    fn worked_example() {
        // W = [[1, 2, 3], [-4, 5, -6]], x = [zp, 7, 1] with zp = 1: only column 1 counts.
        let w = [1i8, 2, 3, -4, 5, -6];
        let mut out = [0i32; 2];
        matvec_opt(&w, 3, &[1, 2], &[7, 1], 1, &mut out);
        assert_eq!(out, [12, 30]);
        matvec_ref(&w, 3, &[1, 2], &[7, 1], 1, &mut out);
        assert_eq!(out, [12, 30]);
    }
}
