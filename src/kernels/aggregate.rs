//! Neighbourhood reductions over a target-sorted CSR graph.
//!
//! [`Csr`] holds, for every target node `i`, the sources of its in-edges
//! `sources[row_ptr[i]..row_ptr[i+1]]` in input order (the counting sort that
//! builds it is stable), and their Q16 weights when the model uses edge
//! weights. Every function tolerates inconsistent slices (it stops at the
//! shortest) and never panics.

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

    /// In-degree of `i` (edge count).
    pub fn degree(&self, i: usize) -> usize {
        self.range(i).len()
    }
}

/// `acc[c] += Σ_{j→i} h[j·ch + c]` for i32 rows `h` (`ch = acc.len()`), in i64, saturating.
pub fn sum_rows_i32(csr: &Csr<'_>, i: usize, h: &[i32], acc: &mut [i64]) {
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

/// `acc[c] += Σ_{j→i} (x[j·ch + c] − zp)` for int8 rows `x` (`ch = acc.len()`).
pub fn sum_rows_i8(csr: &Csr<'_>, i: usize, x: &[i8], zp: i8, acc: &mut [i64]) {
    let ch = acc.len();
    let zp = i64::from(zp);
    for &j in csr.neighbors(i) {
        let start = usize::from(j).saturating_mul(ch);
        if let Some(row) = x.get(start..start.saturating_add(ch)) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += i64::from(v) - zp;
            }
        }
    }
}

/// `out[c] = max_{j→i} x[j·ch + c]` (`ch = out.len()`), or `empty` without in-edges.
pub fn max_rows_i8(csr: &Csr<'_>, i: usize, x: &[i8], empty: i8, out: &mut [i8]) {
    let ch = out.len();
    let nbrs = csr.neighbors(i);
    if nbrs.is_empty() {
        out.iter_mut().for_each(|o| *o = empty);
        return;
    }
    out.iter_mut().for_each(|o| *o = i8::MIN);
    for &j in nbrs {
        let start = usize::from(j).saturating_mul(ch);
        if let Some(row) = x.get(start..start.saturating_add(ch)) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = (*o).max(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
