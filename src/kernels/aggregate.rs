//! Neighbourhood reductions over a target-sorted CSR graph.
//!
//! [`Csr`] holds, for every target node `i`, the sources of its in-edges
//! `sources[row_ptr[i]..row_ptr[i+1]]` in input order (the counting sort that
//! builds it is stable), and their Q16 weights when the model uses edge
//! weights. Every function tolerates inconsistent slices (it stops at the
//! shortest) and never panics.
//!
//! The reductions stream each node's in-edges once: `row_ptr` is read once
//! per node ([`Csr::edges`] gives the sources and weights together), there
//! is no division per edge, and the per-element work is one load and one
//! add: [`sum_rows_i8`] sums the raw values and subtracts `deg·zp` once per
//! channel, [`sum_rows_i32`] uses plain (wrapping) 64-bit adds, which equal
//! the saturating sums of the reference versions ([`sum_rows_i8_ref`],
//! [`sum_rows_i32_ref`]) because a CSR row has fewer than `2^32` edges
//! (`u32` offsets), so `|Σ| < 2^32 · 2^31 = 2^63`. Both are tested equal
//! to their references with proptest.

/// A target-sorted compressed sparse row graph, built by the session in the arena.
#[derive(Debug, Clone, Copy)]
pub struct Csr<'a> {
    /// `n + 1` non-decreasing offsets into `sources`; `row_ptr[0] = 0`.
    pub row_ptr: &'a [u32],
    /// Source node of every edge, grouped by target.
    pub sources: &'a [u16],
    /// Q16 weight of every edge (same order), if the model uses edge weights.
    pub weights: Option<&'a [u32]>,
}

impl<'a> Csr<'a> {
    /// Number of nodes.
    pub fn num_nodes(&self) -> usize {
        self.row_ptr.len().saturating_sub(1)
    }

    /// Edge index range of the in-edges of `i` (empty if out of range).
    pub fn range(&self, i: usize) -> core::ops::Range<usize> {
        let lo = self.row_ptr.get(i).copied().unwrap_or(0) as usize;
        let hi = self.row_ptr.get(i.saturating_add(1)).copied().unwrap_or(0) as usize;
        lo..hi.max(lo)
    }

    /// Sources of the in-edges of `i`, in input order.
    pub fn neighbors(&self, i: usize) -> &'a [u16] {
        self.sources.get(self.range(i)).unwrap_or(&[])
    }

    /// Q16 weights of the in-edges of `i` (empty without weights).
    pub fn neighbor_weights(&self, i: usize) -> &'a [u32] {
        self.weights
            .and_then(|w| w.get(self.range(i)))
            .unwrap_or(&[])
    }

    /// Sources and Q16 weights (empty without weights) of the in-edges of
    /// `i`, from one read of `row_ptr`.
    pub fn edges(&self, i: usize) -> (&'a [u16], &'a [u32]) {
        let r = self.range(i);
        let w = self.weights.and_then(|w| w.get(r.clone())).unwrap_or(&[]);
        (self.sources.get(r).unwrap_or(&[]), w)
    }

    /// In-degree of `i` (edge count).
    pub fn degree(&self, i: usize) -> usize {
        self.range(i).len()
    }
}

/// Builds the CSR of a COO edge list by a stable counting sort on the target:
/// `row_ptr` (`n + 1` entries) gets the offsets, `out_sources` the sources
/// grouped by target in input order, and `out_weights` (if given) the Q16
/// weights ([`crate::quant::edge_weight_q16`] of `edge_weight`, 0 where
/// invalid or missing). Edges whose target is out of range are skipped (the
/// session validates the graph first, so there are none).
pub fn build_csr(
    sources: &[u16],
    targets: &[u16],
    edge_weight: &[f32],
    row_ptr: &mut [u32],
    out_sources: &mut [u16],
    out_weights: Option<&mut [u32]>,
) {
    build_csr_with(
        sources,
        targets,
        edge_weight,
        row_ptr,
        out_sources,
        out_weights,
        |_, _| {},
    );
}

/// [`build_csr`], calling `place(k, pos)` for every input edge `k` placed at
/// CSR position `pos` (the permutation of the stable sort, so that per-edge
/// data such as edge features can follow their edge without storing it).
pub fn build_csr_with(
    sources: &[u16],
    targets: &[u16],
    edge_weight: &[f32],
    row_ptr: &mut [u32],
    out_sources: &mut [u16],
    mut out_weights: Option<&mut [u32]>,
    mut place: impl FnMut(usize, usize),
) {
    row_ptr.fill(0);
    // Count the in-degree of t at row_ptr[t + 1].
    for &t in targets {
        if let Some(c) = row_ptr.get_mut(usize::from(t) + 1) {
            *c = c.saturating_add(1);
        }
    }
    // Exclusive prefix sum shifted by one: row_ptr[t + 1] = start of t.
    let mut sum = 0u32;
    for c in row_ptr.iter_mut().skip(1) {
        let count = *c;
        *c = sum;
        sum = sum.saturating_add(count);
    }
    // Place edges in input order; afterwards row_ptr[t + 1] is the end of t.
    for (k, (&s, &t)) in sources.iter().zip(targets).enumerate() {
        if let Some(cursor) = row_ptr.get_mut(usize::from(t) + 1) {
            let pos = *cursor as usize;
            *cursor = cursor.saturating_add(1);
            if let Some(slot) = out_sources.get_mut(pos) {
                *slot = s;
            }
            place(k, pos);
            if let Some(w) = out_weights.as_deref_mut().and_then(|w| w.get_mut(pos)) {
                *w = edge_weight
                    .get(k)
                    .and_then(|&x| crate::quant::edge_weight_q16(x))
                    .unwrap_or(0);
            }
        }
    }
}

/// Reference: `acc[c] += Σ_{j→i} h[j·ch + c]` for i32 rows `h` (`ch = acc.len()`), in i64, saturating.
pub fn sum_rows_i32_ref(csr: &Csr<'_>, i: usize, h: &[i32], acc: &mut [i64]) {
    let ch = acc.len();
    for &j in csr.neighbors(i) {
        let start = usize::from(j).saturating_mul(ch);
        if let Some(row) = h.get(start..start.saturating_add(ch)) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = a.saturating_add(i64::from(v));
            }
        }
    }
}

/// `acc[c] += Σ_{j→i} h[j·ch + c]` for i32 rows `h` (`ch = acc.len()`), in
/// i64: equal to [`sum_rows_i32_ref`] (plain adds cannot overflow, see the
/// module docs) when `acc` starts at 0, as the ops use it.
pub fn sum_rows_i32(csr: &Csr<'_>, i: usize, h: &[i32], acc: &mut [i64]) {
    let ch = acc.len();
    for &j in csr.neighbors(i) {
        // j < 2^16 and ch ≤ h.len() for any row that exists: no overflow
        // (saturating only so that absurd slice lengths cannot wrap).
        let start = usize::from(j).saturating_mul(ch);
        if let Some(row) = h.get(start..start.saturating_add(ch)) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i64::from(v));
            }
        }
    }
}

/// The rows `x[j·len .. (j + 1)·len]` of the in-neighbours `j` of a node
/// (`nbrs`, from [`Csr::neighbors`]), in edge order; a row past the end of
/// `x` is skipped.
#[inline(always)]
fn neighbour_rows<'a, T>(nbrs: &'a [u16], x: &'a [T], len: usize) -> impl Iterator<Item = &'a [T]> {
    nbrs.iter().filter_map(move |&j| {
        let start = usize::from(j).saturating_mul(len);
        x.get(start..start.saturating_add(len))
    })
}

/// Reference: `acc[c] += Σ_{j→i} (x[j·ch + c] − zp)` for int8 rows `x` (`ch = acc.len()`).
pub fn sum_rows_i8_ref(csr: &Csr<'_>, i: usize, x: &[i8], zp: i8, acc: &mut [i64]) {
    let zp = i64::from(zp);
    for row in neighbour_rows(csr.neighbors(i), x, acc.len()) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += i64::from(v) - zp;
        }
    }
}

/// `acc[c] += Σ_{j→i} (x[j·ch + c] − zp)` for int8 rows `x` (`ch = acc.len()`):
/// the raw values are summed and `zp` times the number of rows summed is
/// subtracted once per channel. Equal to [`sum_rows_i8_ref`].
pub fn sum_rows_i8(csr: &Csr<'_>, i: usize, x: &[i8], zp: i8, acc: &mut [i64]) {
    let ch = acc.len();
    let mut rows = 0i64;
    for &j in csr.neighbors(i) {
        let start = usize::from(j).saturating_mul(ch);
        if let Some(row) = x.get(start..start.saturating_add(ch)) {
            rows += 1;
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i64::from(v));
            }
        }
    }
    // Rows shorter than `acc` do not occur (`get` returns whole rows only).
    let z = rows.wrapping_mul(i64::from(zp));
    acc.iter_mut().for_each(|a| *a = a.wrapping_sub(z));
}

/// `out[c] = max_{j→i} x[j·ch + c]` (`ch = out.len()`), or `empty` without in-edges.
pub fn max_rows_i8(csr: &Csr<'_>, i: usize, x: &[i8], empty: i8, out: &mut [i8]) {
    let nbrs = csr.neighbors(i);
    let fill = if nbrs.is_empty() { empty } else { i8::MIN };
    out.iter_mut().for_each(|o| *o = fill);
    for row in neighbour_rows(nbrs, x, out.len()) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o = (*o).max(v);
        }
    }
}

/// [`sum_rows_i8_ref`] over the packed rows of an int4 tensor (cargo feature
/// `act-i4`; `super::act_i4::row_bytes(acc.len())` bytes per row).
#[cfg(feature = "act-i4")]
pub fn sum_rows_i4(csr: &Csr<'_>, i: usize, x: &[u8], zp: i8, acc: &mut [i64]) {
    use super::act_i4::{row_bytes, value_at};
    let zp = i64::from(zp);
    for row in neighbour_rows(csr.neighbors(i), x, row_bytes(acc.len())) {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += i64::from(value_at(row, k)) - zp;
        }
    }
}

/// [`max_rows_i8`] over the packed rows of an int4 tensor (cargo feature
/// `act-i4`; `super::act_i4::row_bytes(out.len())` bytes per row): the
/// element-wise max of the unpacked values, or `empty` without in-edges.
#[cfg(feature = "act-i4")]
pub fn max_rows_i4(csr: &Csr<'_>, i: usize, x: &[u8], empty: i8, out: &mut [i8]) {
    use super::act_i4::{row_bytes, value_at};
    let nbrs = csr.neighbors(i);
    let fill = if nbrs.is_empty() { empty } else { i8::MIN };
    out.iter_mut().for_each(|o| *o = fill);
    for row in neighbour_rows(nbrs, x, row_bytes(out.len())) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = (*o).max(value_at(row, k));
        }
    }
}

/// Weighted row terms `(index, coefficient)` of a neighbour sum and a bound
/// above every index, computed from them by [`Terms::new`] (the only
/// constructor): `h[index + c]` exists for every channel `c < h.len() − bound`.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    ts: &'a [[i32; 2]],
    // (Read by the assembly `sum4_i64` only.)
    #[cfg_attr(not(tinygnn_dsp), allow(dead_code))]
    top: usize,
}

impl<'a> Terms<'a> {
    /// The terms `ts` (`[index as i32, coefficient]`; a negative index is
    /// read as `u32`).
    #[inline]
    pub fn new(ts: &'a [[i32; 2]]) -> Self {
        let mut top = 0u32;
        for t in ts {
            top = top.max(t[0] as u32);
        }
        Terms {
            ts,
            top: top as usize,
        }
    }

    /// The terms.
    pub fn terms(&self) -> &'a [[i32; 2]] {
        self.ts
    }
}

/// Reference: `acc[k] += Σ_t coef_t · h[index_t + off + k]` for `k < 4`, in
/// `i64` (wrapping; exact when the sums fit, as the GCN op guarantees).
/// Terms whose rows are out of range add nothing.
pub fn sum4_i64_ref(terms: Terms<'_>, h: &[i32], off: usize, acc: &mut [i64; 4]) {
    for &[j, c] in terms.ts {
        let start = (j as u32 as usize).saturating_add(off);
        if let Some(hr) = h.get(start..).and_then(|r| r.first_chunk::<4>()) {
            for (a, &v) in acc.iter_mut().zip(hr) {
                *a = a.wrapping_add(i64::from(c) * i64::from(v));
            }
        }
    }
}

/// [`sum4_i64_ref`], fast: on Cortex-M4/M7/M33 (`cfg(tinygnn_dsp)`) an
/// assembly loop of one `LDRD` (index, coefficient), one `ADD` and four
/// `LDR` + `SMLAL` per term (3 instructions per MAC, the eight accumulator
/// words in registers) when every term's row is in range (checked once
/// from the terms' bound); elsewhere, and otherwise, the reference.
#[inline(always)]
pub fn sum4_i64(terms: Terms<'_>, h: &[i32], off: usize, acc: &mut [i64; 4]) {
    #[cfg(tinygnn_dsp)]
    if sum4_i64_dsp(terms, h, off, acc) {
        return;
    }
    sum4_i64_ref(terms, h, off, acc);
}

/// The assembly form of [`sum4_i64`]; `false` (nothing done) when it does
/// not apply (no terms, or a row out of range).
#[cfg(tinygnn_dsp)]
#[allow(unsafe_code)]
#[inline(always)]
fn sum4_i64_dsp(terms: Terms<'_>, h: &[i32], off: usize, acc: &mut [i64; 4]) -> bool {
    let ts = terms.ts;
    // Every load h[index + off + k], k < 4, is in range: index ≤ top.
    let fits = terms
        .top
        .checked_add(off)
        .and_then(|e| e.checked_add(4))
        .is_some_and(|e| e <= h.len());
    if ts.is_empty() || !fits {
        return false;
    }
    let split = |a: i64| (a as u32, (a >> 32) as u32);
    let ((mut l0, mut h0), (mut l1, mut h1)) = (split(acc[0]), split(acc[1]));
    let ((mut l2, mut h2), (mut l3, mut h3)) = (split(acc[2]), split(acc[3]));
    // SAFETY: `ts` is not empty (the loop, a do-while, reads its 8-byte
    // terms up to its end) and every row read, `h[index + off .. index + off + 4]`,
    // is in `h` (index ≤ top, checked above). Only the named registers are
    // written; r6 and r7 (which LLVM reserves) are saved and restored.
    unsafe {
        let base = h.as_ptr().add(off);
        let end = ts.as_ptr().add(ts.len());
        core::arch::asm!(
            "push {{r6, r7}}",
            "mov r6, r11",
            "mov r7, r12",
            "2:",
            "ldrd r12, lr, [r10], #8",
            "add r12, r7, r12, lsl #2",
            "ldr r11, [r12]",
            "smlal r0, r1, r11, lr",
            "ldr r11, [r12, #4]",
            "smlal r2, r3, r11, lr",
            "ldr r11, [r12, #8]",
            "smlal r4, r5, r11, lr",
            "ldr r11, [r12, #12]",
            "smlal r8, r9, r11, lr",
            "cmp r10, r6",
            "bne 2b",
            "pop {{r6, r7}}",
            inout("r0") l0, inout("r1") h0, inout("r2") l1, inout("r3") h1,
            inout("r4") l2, inout("r5") h2, inout("r8") l3, inout("r9") h3,
            inout("r10") ts.as_ptr() => _, inout("r11") end => _, inout("r12") base => _,
            out("lr") _,
        );
    }
    let join = |l: u32, h: u32| ((u64::from(h) << 32) | u64::from(l)) as i64;
    *acc = [join(l0, h0), join(l1, h1), join(l2, h2), join(l3, h3)];
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn csr_is_a_stable_grouping_by_target(
            n in 1usize..20,
            edges in proptest::collection::vec((0u16..20, 0u16..20, 0.0f32..10.0), 0..60),
        ) {
            let edges: Vec<_> = edges.into_iter().filter(|e| (e.0 as usize) < n && (e.1 as usize) < n).collect();
            let src: Vec<u16> = edges.iter().map(|e| e.0).collect();
            let dst: Vec<u16> = edges.iter().map(|e| e.1).collect();
            let w: Vec<f32> = edges.iter().map(|e| e.2).collect();
            let mut row_ptr = vec![0u32; n + 1];
            let mut s = vec![0u16; src.len()];
            let mut q = vec![0u32; src.len()];
            build_csr(&src, &dst, &w, &mut row_ptr, &mut s, Some(&mut q));
            prop_assert_eq!(row_ptr[0], 0);
            prop_assert_eq!(row_ptr[n] as usize, src.len());
            let csr = Csr { row_ptr: &row_ptr, sources: &s, weights: Some(&q) };
            for i in 0..n {
                let want: Vec<u16> = edges.iter().filter(|e| e.1 as usize == i).map(|e| e.0).collect();
                let want_w: Vec<u32> = edges
                    .iter()
                    .filter(|e| e.1 as usize == i)
                    .map(|e| crate::quant::edge_weight_q16(e.2).unwrap())
                    .collect();
                prop_assert_eq!(csr.neighbors(i), &want[..]);
                prop_assert_eq!(csr.neighbor_weights(i), &want_w[..]);
            }
        }
    }

    proptest! {
        #[test]
        fn streamed_sums_equal_the_references(
            n in 1usize..12,
            ch in 0usize..7,
            edges in proptest::collection::vec((0u16..14, 0u16..12), 0..50),
            x in proptest::collection::vec(any::<i8>(), 0..90),
            h in proptest::collection::vec(any::<i32>(), 0..90),
            zp in any::<i8>(),
        ) {
            let src: Vec<u16> = edges.iter().map(|e| e.0).collect();
            let dst: Vec<u16> = edges.iter().map(|e| e.1).collect();
            let mut row_ptr = vec![0u32; n + 1];
            let mut s = vec![0u16; src.len()];
            build_csr(&src, &dst, &[], &mut row_ptr, &mut s, None);
            let csr = Csr { row_ptr: &row_ptr, sources: &s, weights: None };
            for i in 0..n + 1 {
                let (mut a, mut b) = (vec![0i64; ch], vec![0i64; ch]);
                sum_rows_i8_ref(&csr, i, &x, zp, &mut a);
                sum_rows_i8(&csr, i, &x, zp, &mut b);
                prop_assert_eq!(&a, &b);
                let (mut a, mut b) = (vec![0i64; ch], vec![0i64; ch]);
                sum_rows_i32_ref(&csr, i, &h, &mut a);
                sum_rows_i32(&csr, i, &h, &mut b);
                prop_assert_eq!(&a, &b);
                let (nb, w) = csr.edges(i);
                prop_assert_eq!(nb, csr.neighbors(i));
                prop_assert!(w.is_empty());
            }
        }
    }

    #[cfg(feature = "act-i4")]
    proptest! {
        /// The int4 sum and max over packed rows equal the int8 ones over
        /// the unpacked rows (rows past the end of `x` are skipped by both).
        #[test]
        fn packed_sums_and_maxima_equal_the_int8_ones(
            n in 1usize..12,
            ch in 0usize..7,
            edges in proptest::collection::vec((0u16..14, 0u16..12), 0..50),
            x in proptest::collection::vec(-8i8..=7, 0..90),
            zp in -8i8..=7,
        ) {
            use crate::kernels::act_i4::{pack_row, row_bytes};
            let src: Vec<u16> = edges.iter().map(|e| e.0).collect();
            let dst: Vec<u16> = edges.iter().map(|e| e.1).collect();
            let mut row_ptr = vec![0u32; n + 1];
            let mut s = vec![0u16; src.len()];
            build_csr(&src, &dst, &[], &mut row_ptr, &mut s, None);
            let csr = Csr { row_ptr: &row_ptr, sources: &s, weights: None };
            // Whole rows only, packed row by row.
            let rows = x.len().checked_div(ch).unwrap_or(0);
            let x = &x[..rows * ch];
            let mut packed = vec![0u8; rows * row_bytes(ch)];
            for (r, o) in x.chunks(ch.max(1)).zip(packed.chunks_mut(row_bytes(ch).max(1))) {
                pack_row(r, o);
            }
            for i in 0..n + 1 {
                let (mut a, mut b) = (vec![0i64; ch], vec![0i64; ch]);
                sum_rows_i8_ref(&csr, i, x, zp, &mut a);
                sum_rows_i4(&csr, i, &packed, zp, &mut b);
                prop_assert_eq!(&a, &b);
                let (mut a, mut b) = (vec![0i8; ch], vec![0i8; ch]);
                max_rows_i8(&csr, i, x, zp, &mut a);
                max_rows_i4(&csr, i, &packed, zp, &mut b);
                prop_assert_eq!(&a, &b);
            }
        }
    }

    proptest! {
        #[test]
        fn sum4_equals_the_reference(
            ts in proptest::collection::vec((0i32..40, any::<i32>()), 0..32),
            h in proptest::collection::vec(-(1i32 << 26)..(1 << 26), 0..48),
            off in 0usize..6,
            init in any::<[i64; 4]>(),
        ) {
            let ts: Vec<[i32; 2]> = ts.into_iter().map(|(j, c)| [j, c]).collect();
            let terms = Terms::new(&ts);
            let (mut a, mut b) = (init, init);
            sum4_i64_ref(terms, &h, off, &mut a);
            sum4_i64(terms, &h, off, &mut b);
            prop_assert_eq!(a, b);
            // The reference term by term.
            let mut want = init;
            for &[j, c] in &ts {
                let s = j as usize + off;
                if s + 4 <= h.len() {
                    for k in 0..4 {
                        want[k] = want[k].wrapping_add(i64::from(c) * i64::from(h[s + k]));
                    }
                }
            }
            prop_assert_eq!(a, want);
        }
    }

    #[test]
    fn csr_access_and_reductions() {
        // 3 nodes; in-edges of 0: from 1, 2; of 1: none; of 2: from 2.
        let row_ptr = [0u32, 2, 2, 3];
        let sources = [1u16, 2, 2];
        let csr = Csr {
            row_ptr: &row_ptr,
            sources: &sources,
            weights: None,
        };
        assert_eq!(csr.num_nodes(), 3);
        assert_eq!(csr.neighbors(0), &[1, 2]);
        assert_eq!(csr.degree(1), 0);
        assert_eq!(csr.neighbors(7), &[] as &[u16]);
        let x = [1i8, 2, 3, 4, -5, 6];
        let mut acc = [0i64; 2];
        sum_rows_i8(&csr, 0, &x, 1, &mut acc);
        assert_eq!(acc, [3 - 1 + -5 - 1, 4 - 1 + 6 - 1]);
        let h = [10i32, 20, 30, 40, 50, 60];
        let mut acc = [0i64; 2];
        sum_rows_i32(&csr, 0, &h, &mut acc);
        assert_eq!(acc, [80, 100]);
        let mut m = [0i8; 2];
        max_rows_i8(&csr, 0, &x, 9, &mut m);
        assert_eq!(m, [3, 6]);
        max_rows_i8(&csr, 1, &x, 9, &mut m);
        assert_eq!(m, [9, 9]);
    }
}
