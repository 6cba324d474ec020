//! Dense int8 products: `out[c] = Σ_k W[c,k]·(x_k − zp)` with `W` row-major
//! `[out_ch, in_ch]` int8 (symmetric, zero point 0) and `x` int8 with zero
//! point `zp`, accumulated exactly in `i32`.
//!
//! No overflow is possible: `|W| ≤ 128`, `|x − zp| ≤ 255` and
//! `in_ch ≤ MAX_CHANNELS = 4096` bound every sum by `2^27`. (Sums use
//! wrapping adds so that even absurd slice lengths cannot panic in debug
//! builds; both kernels then still agree.)
//!
//! * [`matvec_ref`]: the reference, one multiply-accumulate of `(x − zp)` at a time.
//! * [`matvec_opt`]: `Σ W·x − zp·Σ W`, with the per-channel weight sums
//!   `Σ_k W[c,k]` precomputed once per op by [`weight_sums`] (as CMSIS-NN
//!   does), and four output channels per pass over `x` ([`dot4_i8`]) so each
//!   input value is loaded once per four multiply-accumulates. Exact integer
//!   arithmetic makes both orders give identical results.
//! * [`matvec_narrow`]: the same with one channel per pass, for targets with
//!   few registers (ARMv6-M).
//! * The DSP-extension kernels (`SXTB16` + `SMLAD`) are in
//!   [`super::pairs`].
//!
//! [`matvec`] and [`matmul`] pick one at compile time (see their docs and
//! `docs/kernels.md`): the `SMLAD` kernels on Cortex-M4/M7/M33
//! (`cfg(tinygnn_dsp)`), [`matvec_narrow`] on Cortex-M0/M0+/M23
//! (`cfg(tinygnn_thumb1)`), [`matvec_opt`] elsewhere.
//!
//! Measured with `scripts/kernel-bench.sh m4 m0` (QEMU `-icount`, 64×128
//! weights, 16 nodes, shapes not known at compile time; instructions per
//! MAC; table in `docs/kernels.md`): Cortex-M4 — reference 6.09,
//! [`matvec_opt`] 3.28, DSP one node 1.68, DSP four nodes per pass
//! ([`matmul`]) **0.985**; Cortex-M0 — reference 9.26, [`matvec_opt`] 9.43,
//! [`matvec_narrow`] **6.79**.

/// Reference: `out[c] = Σ_k w[c·in_ch + k]·(x[k] − zp)` for `c < out.len()`.
/// Missing weights or inputs count as zero.
pub fn matvec_ref(w: &[i8], in_ch: usize, x: &[i8], zp: i8, out: &mut [i32]) {
    for (c, o) in out.iter_mut().enumerate() {
        let start = c.saturating_mul(in_ch);
        let row = w.get(start..start.saturating_add(in_ch)).unwrap_or(&[]);
        let mut acc = 0i32;
        for (&wk, &xk) in row.iter().zip(x) {
            acc = acc.wrapping_add(i32::from(wk) * (i32::from(xk) - i32::from(zp)));
        }
        *o = acc;
    }
}

/// `sums[c] = Σ_k w[c·in_ch + k]` for every row of `w`.
pub fn weight_sums(w: &[i8], in_ch: usize, sums: &mut [i32]) {
    if in_ch == 0 {
        sums.iter_mut().for_each(|s| *s = 0);
        return;
    }
    sums.iter_mut().for_each(|s| *s = 0);
    for (s, row) in sums.iter_mut().zip(w.chunks_exact(in_ch)) {
        *s = row.iter().fold(0i32, |a, &v| a.wrapping_add(i32::from(v)));
    }
}

/// Plain int8 dot product `Σ a_k·b_k`, 4-way unrolled.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let (mut s0, mut s1, mut s2, mut s3) = (0i32, 0i32, 0i32, 0i32);
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let full = ca.len().min(cb.len());
    for (qa, qb) in ca.zip(cb) {
        if let ([a0, a1, a2, a3], [b0, b1, b2, b3]) = (qa, qb) {
            s0 = s0.wrapping_add(i32::from(*a0) * i32::from(*b0));
            s1 = s1.wrapping_add(i32::from(*a1) * i32::from(*b1));
            s2 = s2.wrapping_add(i32::from(*a2) * i32::from(*b2));
            s3 = s3.wrapping_add(i32::from(*a3) * i32::from(*b3));
        }
    }
    // Tail: when the lengths differ, continue pairing element by element.
    let tail_a = a.get(full * 4..).unwrap_or(ra);
    let tail_b = b.get(full * 4..).unwrap_or(rb);
    let tail = tail_a.iter().zip(tail_b).fold(0i32, |acc, (&p, &q)| {
        acc.wrapping_add(i32::from(p) * i32::from(q))
    });
    s0.wrapping_add(s1)
        .wrapping_add(s2.wrapping_add(s3))
        .wrapping_add(tail)
}

/// The default kernel: on Cortex-M with the DSP extension
/// (`cfg(tinygnn_dsp)`: thumbv7em, thumbv8m.main with `+dsp`) the `SMLAD` kernel
/// [`super::pairs::matvec_with`]`::<Dsp>`; on ARMv6-M / ARMv8-M Baseline
/// (`cfg(tinygnn_thumb1)`: Cortex-M0/M0+/M23) [`matvec_narrow`]; elsewhere
/// (RISC-V, Cortex-M3, hosts) [`matvec_opt`]; or
/// [`matvec_ref`] with the `reference-kernels` or `kernels-small` feature
/// (then `sums` is unused).
#[inline]
pub fn matvec(w: &[i8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    if cfg!(any(
        feature = "reference-kernels",
        feature = "kernels-small"
    )) {
        let n = sums.len().min(out.len());
        if let Some(out) = out.get_mut(..n) {
            out.fill(0);
            matvec_ref(w, in_ch, x, zp, out);
        }
    } else {
        #[cfg(tinygnn_dsp)]
        super::pairs::matvec_with::<super::pairs::Dsp>(w, in_ch, x, zp, sums, out);
        #[cfg(all(tinygnn_thumb1, not(tinygnn_dsp)))]
        matvec_narrow(w, in_ch, x, zp, sums, out);
        #[cfg(not(any(tinygnn_dsp, tinygnn_thumb1)))]
        matvec_opt(w, in_ch, x, zp, sums, out);
    }
}

/// Four dot products of the rows `w0..w3` with `x` in one pass, so every
/// `x` value is loaded once per four multiply-accumulates.
#[inline]
pub fn dot4_i8(w0: &[i8], w1: &[i8], w2: &[i8], w3: &[i8], x: &[i8]) -> [i32; 4] {
    let (mut s0, mut s1, mut s2, mut s3) = (0i32, 0i32, 0i32, 0i32);
    for ((((&xk, &a), &b), &c), &d) in x.iter().zip(w0).zip(w1).zip(w2).zip(w3) {
        let xk = i32::from(xk);
        s0 = s0.wrapping_add(i32::from(a) * xk);
        s1 = s1.wrapping_add(i32::from(b) * xk);
        s2 = s2.wrapping_add(i32::from(c) * xk);
        s3 = s3.wrapping_add(i32::from(d) * xk);
    }
    [s0, s1, s2, s3]
}

/// Optimized: `out[c] = dot(W[c], x) − zp·sums[c]`, bit-exact with [`matvec_ref`]
/// when `sums` comes from [`weight_sums`] and `x.len() ≥ in_ch`. Output
/// channels are processed four at a time ([`dot4_i8`]), the rest one by one
/// ([`dot_i8`]).
pub fn matvec_opt(w: &[i8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    out.iter_mut().for_each(|o| *o = 0);
    if in_ch == 0 {
        return;
    }
    let x = x.get(..in_ch).unwrap_or(x);
    let zp = i32::from(zp);
    let n = out.len().min(sums.len()).min(w.len() / in_ch);
    let (out, _) = out.split_at_mut(n);
    let quads = out.chunks_exact_mut(4);
    // Never 0 (in_ch ≥ 1); saturating, so an absurd in_ch gives no quads
    // instead of a zero chunk size (which would panic).
    let w_quads = w.chunks_exact(in_ch.saturating_mul(4).max(1));
    let s_quads = sums.chunks_exact(4);
    let done = quads.len().min(w_quads.len()) * 4;
    for ((o4, w4), s4) in quads.zip(w_quads).zip(s_quads) {
        let (w0, r) = w4.split_at_checked(in_ch).unwrap_or((&[], &[]));
        let (w1, r) = r.split_at_checked(in_ch).unwrap_or((&[], &[]));
        let (w2, w3) = r.split_at_checked(in_ch).unwrap_or((&[], &[]));
        let d = dot4_i8(w0, w1, w2, w3, x);
        for ((o, &dv), &s) in o4.iter_mut().zip(&d).zip(s4) {
            *o = dv.wrapping_sub(zp.wrapping_mul(s));
        }
    }
    let rest_w = w.get(done * in_ch..).unwrap_or(&[]);
    let rest_out = out.get_mut(done..).unwrap_or(&mut []);
    let rest_s = sums.get(done..).unwrap_or(&[]);
    for ((o, row), &s) in rest_out
        .iter_mut()
        .zip(rest_w.chunks_exact(in_ch))
        .zip(rest_s)
    {
        *o = dot_i8(row, x).wrapping_sub(zp.wrapping_mul(s));
    }
}

/// Dot product of `w` and `x` (over the shorter), one accumulator.
#[inline(always)]
fn dot1(w: &[i8], x: &[i8]) -> i32 {
    let n = w.len().min(x.len());
    let (w, _) = w.split_at(n);
    let (x, _) = x.split_at(n);
    let mut a = 0i32;
    for (&wk, &xk) in w.iter().zip(x) {
        a = a.wrapping_add(i32::from(wk) * i32::from(xk));
    }
    a
}

/// Portable, one output channel per pass (`dot1`: a zip over slices cut to
/// one length, which the compiler unrolls without bounds checks): the
/// default on ARMv6-M / ARMv8-M Baseline (`cfg(tinygnn_thumb1)`), whose
/// eight low registers cannot hold the four accumulators and five pointers
/// of [`matvec_opt`] (measured on the emulated Cortex-M0: 6.79 instructions
/// per MAC against 9.43 for [`matvec_opt`]). Bit-exact with [`matvec_ref`]
/// when `sums` comes from [`weight_sums`] and `x.len() ≥ in_ch`.
pub fn matvec_narrow(w: &[i8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    out.fill(0);
    if in_ch == 0 {
        return;
    }
    let x = x.get(..in_ch).unwrap_or(x);
    let zp = i32::from(zp);
    // (A zip over `chunks_exact` gives the best inner loop here; its length
    // computation is inlined at the opt-levels scripts/panic-check.sh checks.)
    for ((o, row), &s) in out.iter_mut().zip(w.chunks_exact(in_ch)).zip(sums) {
        *o = dot1(row, x).wrapping_sub(zp.wrapping_mul(s));
    }
}

/// [`matvec_narrow`] on every row of `x` (`[rows, in_ch]`; `out` is
/// `[rows, sums.len()]`): what [`matmul`] runs for fewer than four output
/// channels, where the blocked kernels' set-up per row (tile buffers, four
/// rows at a time) costs more than the few multiply-accumulates it serves.
/// Bit-exact with [`matvec_ref`] per row when `sums` comes from
/// [`weight_sums`].
#[inline(never)]
pub fn matmul_narrow(w: &[i8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    let oc = sums.len();
    if in_ch == 0 || oc == 0 {
        out.fill(0);
        return;
    }
    let zp = i32::from(zp);
    // Paired by `next()`, as in [`matmul_rows`].
    let mut xs = x.chunks_exact(in_ch);
    let mut os = out.chunks_exact_mut(oc);
    while let (Some(xr), Some(o)) = (xs.next(), os.next()) {
        let mut rows = w.chunks_exact(in_ch);
        for (ok, &s) in o.iter_mut().zip(sums) {
            *ok = rows
                .next()
                .map_or(0, |r| dot1(r, xr).wrapping_sub(zp.wrapping_mul(s)));
        }
    }
}

/// Applies [`matvec`] to every row: `x` is `[rows, in_ch]`, `out` is `[rows, out_ch]`
/// with `out_ch = sums.len()`. With the DSP extension (and without
/// `reference-kernels` or `kernels-small`), four rows at a time:
/// [`super::pairs::matmul_with`]`::<Dsp>`.
pub fn matmul(w: &[i8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    // Fewer than four output channels (a pass over a narrow block of
    // channels): one dot product per row and channel, no tile buffers.
    if sums.len() < 4
        && !cfg!(any(
            feature = "reference-kernels",
            feature = "kernels-small"
        ))
    {
        return matmul_narrow(w, in_ch, x, zp, sums, out);
    }
    #[cfg(all(tinygnn_dsp, not(feature = "kernels-small")))]
    if !cfg!(feature = "reference-kernels") {
        super::pairs::matmul_with::<super::pairs::Dsp>(w, in_ch, x, zp, sums, out);
        return;
    }
    // Hosts only: on the small cores without the DSP extension (Cortex-M3,
    // RISC-V) its sixteen accumulators are unmeasured; they keep `matmul_rows`.
    #[cfg(all(
        not(any(tinygnn_dsp, tinygnn_thumb1)),
        any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")
    ))]
    if !cfg!(any(
        feature = "reference-kernels",
        feature = "kernels-small"
    )) {
        // Mostly zero-point inputs (one-hot or bag-of-words features given
        // densely): one weight column per other entry.
        // (A sum of 0/1 bytes per block of 64, which the compiler vectorises.)
        let others: usize = x
            .chunks(64)
            .map(|b| usize::from(b.iter().map(|&v| u8::from(v != zp)).sum::<u8>()))
            .sum();
        if others.saturating_mul(SKIP_DENSITY) <= x.len() {
            matmul_skip(w, in_ch, x, zp, sums.len(), out);
        } else {
            matmul_block4(w, in_ch, x, zp, sums, out);
        }
        return;
    }
    matmul_rows(w, in_ch, x, zp, sums, out);
}

/// Blocked product for hosts (x86, x86-64, AArch64: what [`matmul`] runs
/// there without `reference-kernels` or `kernels-small`): four rows of `x` (nodes)
/// against four output channels per pass, sixteen `i32` accumulators, so
/// each loaded input and weight value serves four multiply-accumulates (one
/// row at a time, [`matvec_opt`], reloads every input value per group of four
/// channels and pays the per-row set-up once per node). The same sums in
/// another order: bit-exact with [`matmul_rows`] (proptested), itself
/// bit-exact with [`matvec_ref`] per row. Remaining rows (fewer than four) go
/// through [`matvec_opt`], remaining channels one at a time over the four rows.
pub fn matmul_block4(w: &[i8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    let out_ch = sums.len();
    if in_ch == 0 || out_ch == 0 {
        out.fill(0);
        return;
    }
    let rows = (x.len() / in_ch).min(out.len() / out_ch);
    let split = rows / 4 * 4;
    let (x4, x1) = x.split_at(split.saturating_mul(in_ch).min(x.len()));
    let (o4, o1) = out.split_at_mut(split.saturating_mul(out_ch).min(out.len()));
    // Channels with a full weight row.
    let chans = out_ch.min(w.len() / in_ch);
    let zp = i32::from(zp);
    let mut xbs = x4.chunks_exact(in_ch.saturating_mul(4));
    let mut obs = o4.chunks_exact_mut(out_ch.saturating_mul(4));
    while let (Some(xb), Some(ob)) = (xbs.next(), obs.next()) {
        ob.fill(0);
        let (xa, r) = xb.split_at(in_ch.min(xb.len()));
        let (xb_, r) = r.split_at(in_ch.min(r.len()));
        let (xc, xd) = r.split_at(in_ch.min(r.len()));
        let xs = xa.iter().zip(xb_).zip(xc.iter().zip(xd));
        let mut c = 0usize;
        while c + 4 <= chans {
            let wq = w.get(c * in_ch..(c + 4) * in_ch).unwrap_or(&[]);
            let (w0, r) = wq.split_at(in_ch.min(wq.len()));
            let (w1, r) = r.split_at(in_ch.min(r.len()));
            let (w2, w3) = r.split_at(in_ch.min(r.len()));
            let ws = w0.iter().zip(w1).zip(w2.iter().zip(w3));
            let mut a = [[0i32; 4]; 4];
            for (((&p, &q), (&r, &s)), ((&w0, &w1), (&w2, &w3))) in xs.clone().zip(ws) {
                let xv = [i32::from(p), i32::from(q), i32::from(r), i32::from(s)];
                let wv = [i32::from(w0), i32::from(w1), i32::from(w2), i32::from(w3)];
                for (ar, &xk) in a.iter_mut().zip(&xv) {
                    for (acc, &wk) in ar.iter_mut().zip(&wv) {
                        *acc = acc.wrapping_add(wk * xk);
                    }
                }
            }
            let s4 = sums.get(c..c + 4).unwrap_or(&[]);
            for (orow, ar) in ob.chunks_exact_mut(out_ch).zip(&a) {
                if let Some(o) = orow.get_mut(c..c + 4) {
                    for ((o, &v), &s) in o.iter_mut().zip(ar).zip(s4) {
                        *o = v.wrapping_sub(zp.wrapping_mul(s));
                    }
                }
            }
            c += 4;
        }
        while c < chans {
            let wr = w.get(c * in_ch..(c + 1) * in_ch).unwrap_or(&[]);
            let mut a = [0i32; 4];
            for (((&p, &q), (&r, &s)), &wk) in xs.clone().zip(wr) {
                let wk = i32::from(wk);
                a[0] = a[0].wrapping_add(wk * i32::from(p));
                a[1] = a[1].wrapping_add(wk * i32::from(q));
                a[2] = a[2].wrapping_add(wk * i32::from(r));
                a[3] = a[3].wrapping_add(wk * i32::from(s));
            }
            let s = sums.get(c).copied().unwrap_or(0);
            for (orow, &v) in ob.chunks_exact_mut(out_ch).zip(&a) {
                if let Some(o) = orow.get_mut(c) {
                    *o = v.wrapping_sub(zp.wrapping_mul(s));
                }
            }
            c += 1;
        }
    }
    let zp = zp as i8;
    let mut xs = x1.chunks_exact(in_ch);
    let mut os = o1.chunks_exact_mut(out_ch);
    while let (Some(xr), Some(or)) = (xs.next(), os.next()) {
        matvec_opt(w, in_ch, xr, zp, sums, or);
    }
}

/// [`matmul`] on hosts runs [`matmul_skip`] when at most one input value in
/// `SKIP_DENSITY` differs from the zero point.
#[allow(dead_code)] // (hosts only)
const SKIP_DENSITY: usize = 4;

/// Hosts, inputs mostly at their zero point: `out[r][c] = Σ_{k: x_rk ≠ zp}
/// W[c,k]·(x_rk − zp)` for `c < out_ch`, one weight column (stride `in_ch`)
/// per entry that differs from `zp` (an entry equal to `zp` adds
/// `W[c,k]·0`), as [`crate::kernels::sparse`] does for inputs given sparse.
/// Equal to [`matmul_rows`]'s `Σ_k W[c,k]·x_k − zp·Σ_k W[c,k]` with wrapping
/// `i32` arithmetic (proptested); channels without a full weight row are 0,
/// as there.
pub fn matmul_skip(w: &[i8], in_ch: usize, x: &[i8], zp: i8, out_ch: usize, out: &mut [i32]) {
    if in_ch == 0 || out_ch == 0 {
        out.fill(0);
        return;
    }
    // Whole weight rows only, at most `out_ch` of them.
    let chans = out_ch.min(w.len() / in_ch);
    let w = w.get(..chans * in_ch).unwrap_or(&[]);
    let mut xs = x.chunks_exact(in_ch);
    let mut os = out.chunks_exact_mut(out_ch);
    while let (Some(xr), Some(or)) = (xs.next(), os.next()) {
        or.fill(0);
        // Eight entries at a time: a block all at `zp` is one comparison.
        let mut blocks = xr.chunks_exact(8);
        let all_zp = u64::from_ne_bytes([zp as u8; 8]);
        for (b, blk) in (&mut blocks).enumerate() {
            if let [a0, a1, a2, a3, a4, a5, a6, a7] = *blk {
                let word = [a0, a1, a2, a3, a4, a5, a6, a7].map(|v| v as u8);
                if u64::from_ne_bytes(word) == all_zp {
                    continue;
                }
            }
            for (k, &v) in blk.iter().enumerate() {
                skip_column(w, in_ch, b * 8 + k, v, zp, or);
            }
        }
        let done = xr.len() - blocks.remainder().len();
        for (k, &v) in blocks.remainder().iter().enumerate() {
            skip_column(w, in_ch, done + k, v, zp, or);
        }
    }
}

/// `or[c] += W[c,k]·(v − zp)` for the channels of `w` (whole rows), nothing
/// if `v = zp`.
#[inline(always)]
fn skip_column(w: &[i8], in_ch: usize, k: usize, v: i8, zp: i8, or: &mut [i32]) {
    if v == zp {
        return;
    }
    let d = i32::from(v) - i32::from(zp);
    let mut at = k;
    for o in or.iter_mut() {
        let Some(&wk) = w.get(at) else {
            break;
        };
        *o = o.wrapping_add(i32::from(wk) * d);
        let Some(next) = at.checked_add(in_ch) else {
            break;
        };
        at = next;
    }
}

/// [`matvec`] on every row, one row at a time (what [`matmul`] does without
/// the DSP extension).
pub fn matmul_rows(w: &[i8], in_ch: usize, x: &[i8], zp: i8, sums: &[i32], out: &mut [i32]) {
    let out_ch = sums.len();
    if in_ch == 0 || out_ch == 0 {
        out.iter_mut().for_each(|o| *o = 0);
        return;
    }
    // Paired by `next()`, not `zip`: Zip's length computation divides by
    // the chunk sizes out of line (a panic path at opt-level "s").
    let mut xs = x.chunks_exact(in_ch);
    let mut os = out.chunks_exact_mut(out_ch);
    while let (Some(xr), Some(or)) = (xs.next(), os.next()) {
        matvec(w, in_ch, xr, zp, sums, or);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn case() -> impl Strategy<Value = (usize, usize, Vec<i8>, Vec<i8>, i8)> {
        (1usize..40, 1usize..12).prop_flat_map(|(i, o)| {
            (
                Just(i),
                Just(o),
                proptest::collection::vec(any::<i8>(), i * o),
                proptest::collection::vec(any::<i8>(), i),
                any::<i8>(),
            )
        })
    }

    proptest! {
        #[test]
        fn block4_matmul_is_bit_exact((i, o, w, x, zp) in case(), rows in 0usize..11, extra in 0usize..3) {
            let xs: Vec<i8> = (0..rows * i + extra).map(|k| x[k % i].wrapping_mul(k as i8 | 1)).collect();
            let mut sums = vec![0i32; o];
            weight_sums(&w, i, &mut sums);
            let mut want = vec![7i32; rows * o + extra];
            super::matmul_rows(&w, i, &xs, zp, &sums, &mut want);
            let mut got = vec![7i32; rows * o + extra];
            matmul_block4(&w, i, &xs, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
            for r in 0..rows {
                let mut one = vec![0i32; o];
                matvec_ref(&w, i, &xs[r * i..(r + 1) * i], zp, &mut one);
                prop_assert_eq!(&got[r * o..(r + 1) * o], &one[..]);
            }
        }

        #[test]
        fn skip_matmul_is_bit_exact((i, o, w, x, zp) in case(), rows in 0usize..11, extra in 0usize..3,
                                    keep in 0u8..=255, short in 0usize..3) {
            // Mostly zero-point inputs (the case it is chosen for) and denser ones.
            let xs: Vec<i8> = (0..rows * i + extra)
                .map(|k| if (k as u8).wrapping_mul(37) < keep { x[k % i].wrapping_mul(k as i8 | 1) } else { zp })
                .collect();
            // Sometimes a weight matrix short of whole rows.
            let w = &w[..w.len().saturating_sub(short * 3)];
            let mut sums = vec![0i32; o];
            weight_sums(w, i, &mut sums);
            let mut want = vec![7i32; rows * o + extra];
            super::matmul_rows(w, i, &xs, zp, &sums, &mut want);
            let mut got = vec![7i32; rows * o + extra];
            matmul_skip(w, i, &xs, zp, o, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; rows * o + extra];
            matmul(w, i, &xs, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
        }

        #[test]
        fn skip_matmul_never_panics(w in proptest::collection::vec(any::<i8>(), 0..40), x in proptest::collection::vec(any::<i8>(), 0..40),
                                    out_ch in 0usize..10, out_len in 0usize..40, in_ch in 0usize..12) {
            let mut out = vec![0i32; out_len];
            matmul_skip(&w, in_ch, &x, 3, out_ch, &mut out);
        }

        #[test]
        fn block4_matmul_never_panics(w in proptest::collection::vec(any::<i8>(), 0..40), x in proptest::collection::vec(any::<i8>(), 0..40),
                                      sums in proptest::collection::vec(any::<i32>(), 0..10), out_len in 0usize..40, in_ch in 0usize..12) {
            let mut out = vec![0i32; out_len];
            matmul_block4(&w, in_ch, &x, 3, &sums, &mut out);
        }

        #[test]
        fn optimized_matvec_is_bit_exact((i, o, w, x, zp) in case()) {
            let mut want = vec![0i32; o];
            matvec_ref(&w, i, &x, zp, &mut want);
            let mut sums = vec![0i32; o];
            weight_sums(&w, i, &mut sums);
            let mut got = vec![7i32; o];
            matvec_opt(&w, i, &x, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec_narrow(&w, i, &x, zp, &sums, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec(&w, i, &x, zp, &sums, &mut got);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn kernels_never_panic_on_inconsistent_slices(
            w in proptest::collection::vec(any::<i8>(), 0..40),
            x in proptest::collection::vec(any::<i8>(), 0..10),
            sums in proptest::collection::vec(any::<i32>(), 0..10),
            out_len in 0usize..10,
            in_ch in 0usize..12,
        ) {
            let mut out = vec![0i32; out_len];
            matvec_opt(&w, in_ch, &x, 3, &sums, &mut out);
            matvec_narrow(&w, in_ch, &x, 3, &sums, &mut out);
            matvec_ref(&w, in_ch, &x, 3, &mut out);
            matvec(&w, in_ch, &x, 3, &sums, &mut out);
            let mut s2 = vec![0i32; out_len];
            weight_sums(&w, in_ch, &mut s2);
            let mut big = vec![0i32; out_len * 3];
            matmul(&w, in_ch, &x, 3, &sums, &mut big);
        }

        #[test]
        fn dot_matches_naive(a in proptest::collection::vec(any::<i8>(), 0..50),
                             b in proptest::collection::vec(any::<i8>(), 0..50)) {
            let want: i32 = a.iter().zip(&b).map(|(&p, &q)| p as i32 * q as i32).sum();
            prop_assert_eq!(dot_i8(&a, &b), want);
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let i = crate::MAX_CHANNELS;
        let w = vec![-128i8; i * 2];
        let x = vec![127i8; i];
        let mut want = vec![0; 2];
        matvec_ref(&w, i, &x, -128, &mut want);
        assert_eq!(want[0], -128 * 255 * i as i32);
        let mut sums = vec![0; 2];
        weight_sums(&w, i, &mut sums);
        let mut got = vec![0; 2];
        matvec(&w, i, &x, -128, &sums, &mut got);
        assert_eq!(got, want);
    }

    #[test]
    fn matmul_rows() {
        // W = [[1, 2], [-3, 4]], x rows [5, 6], [0, -1], zp = 1.
        let w = [1i8, 2, -3, 4];
        let x = [5i8, 6, 0, -1];
        let mut sums = [0; 2];
        weight_sums(&w, 2, &mut sums);
        assert_eq!(sums, [3, 1]);
        let mut out = [0i32; 4];
        matmul(&w, 2, &x, 1, &sums, &mut out);
        assert_eq!(out, [4 + 10, -12 + 20, -1 - 4, 3 - 8]);
    }
}
