//! The drivers shared by the packed-weight kernels ([`super::dense_i4`],
//! [`super::dense_i2`]): the row loop of the optimized matrix-vector
//! product, the choice between reference and optimized kernel, and the
//! matrix product over rows of `x`. Each kernel module brings only what
//! differs: how one packed byte unpacks and multiplies.

/// The optimized matrix-vector product over rows of `rb` bytes: four rows
/// at a time through `dot4` and the rest through `dot1`, each dot product
/// less `zp·sums[c]`. `out` is zeroed first; rows without a sum or past the
/// end of `w` stay 0.
#[inline(always)]
pub(crate) fn matvec_rows(
    w: &[u8],
    rb: usize,
    zp: i8,
    sums: &[i32],
    out: &mut [i32],
    dot4: impl Fn([&[u8]; 4]) -> [i32; 4],
    dot1: impl Fn(&[u8]) -> i32,
) {
    out.iter_mut().for_each(|o| *o = 0);
    if rb == 0 {
        return;
    }
    let zp = i32::from(zp);
    let n = out.len().min(sums.len()).min(w.len() / rb);
    let (out, _) = out.split_at_mut(n);
    let mut rows = w.chunks_exact(rb);
    let mut o4 = out.chunks_exact_mut(4);
    let mut s4 = sums.chunks_exact(4);
    let mut done = 0usize;
    while let (Some(o), Some(s)) = (o4.next(), s4.next()) {
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            break;
        };
        let d = dot4([r0, r1, r2, r3]);
        for ((o, &dv), &sv) in o.iter_mut().zip(&d).zip(s) {
            *o = dv.wrapping_sub(zp.wrapping_mul(sv));
        }
        done += 4;
    }
    let rest_out = out.get_mut(done..).unwrap_or(&mut []);
    let rest_s = sums.get(done..).unwrap_or(&[]);
    for (o, &sv) in rest_out.iter_mut().zip(rest_s) {
        let Some(row) = rows.next() else { break };
        *o = dot1(row).wrapping_sub(zp.wrapping_mul(sv));
    }
}

/// The default kernel: `opt`, or `reference` (which does not read `sums`)
/// with the `reference-kernels` or `kernels-small` feature. Either way
/// `out[c]` is written for `c < min(sums.len(), out.len())`.
#[inline(always)]
pub(crate) fn matvec_default(
    sums: &[i32],
    out: &mut [i32],
    reference: impl FnOnce(&mut [i32]),
    opt: impl FnOnce(&[i32], &mut [i32]),
) {
    if cfg!(any(
        feature = "reference-kernels",
        feature = "kernels-small"
    )) {
        let n = sums.len().min(out.len());
        if let Some(out) = out.get_mut(..n) {
            out.fill(0);
            reference(out);
        }
    } else {
        opt(sums, out);
    }
}

/// `matvec` applied to every row: `x` is `[rows, in_ch]`, `out` is
/// `[rows, out_ch]` with `out_ch = sums.len()`; with no input or output
/// channels `out` is zeroed.
#[inline(always)]
pub(crate) fn matmul_rows(
    in_ch: usize,
    x: &[i8],
    sums: &[i32],
    out: &mut [i32],
    matvec: impl Fn(&[i8], &mut [i32]),
) {
    let out_ch = sums.len();
    if in_ch == 0 || out_ch == 0 {
        out.iter_mut().for_each(|o| *o = 0);
        return;
    }
    // No `Zip` of two `ChunksExact`: its length computation divides by the
    // chunk sizes out of line, a panic path at some optimisation levels.
    let mut xs = x.chunks_exact(in_ch);
    let mut os = out.chunks_exact_mut(out_ch);
    while let (Some(xr), Some(or)) = (xs.next(), os.next()) {
        matvec(xr, or);
    }
}
