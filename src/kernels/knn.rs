//! k-nearest-neighbour graph of int8 points (the graph of PyG
//! `DynamicEdgeConv`, i.e. `torch_cluster.knn(x, x, k, batch, batch)`).
//!
//! For every query node `i`, the candidates are the nodes `j` of the same
//! graph of the batch (`batch[j] == batch[i]`; all nodes without a batch
//! vector), **including `i` itself** (distance 0), ordered by
//! `(d(i, j), j)`: the squared Euclidean distance
//! `d(i, j) = Σ_c (x_ic − x_jc)²` on the int8 values (the zero point cancels),
//! ties broken by the **smaller index first**. The first `min(k, n_g)` of them
//! (`n_g`: nodes of `i`'s graph) are `i`'s neighbours: like PyG, a graph with
//! fewer than `k` points gives each of its points all of them, no error.
//!
//! `d` is exact in `u32`: `255² · MAX_CHANNELS = 65025 · 4096 < 2^31`.
//!
//! Output: `idx[i·k .. i·k + cnt[i]]` are the neighbours of `i` in that
//! order, `cnt[i] = min(k, n_g)`; slots past `cnt[i]` are set to `i`
//! (never read by the ops). Two versions, proptested equal:
//! [`knn_ref`] selects the next smallest `(d, j)` `k` times per query
//! (`O(k·n)` per query, no buffer), [`knn`] scans the candidates once and
//! keeps a bounded insertion-sorted top-`k` list (`k` distances of scratch).

/// Squared Euclidean distance of two int8 rows (over the shorter length).
#[inline]
pub fn dist2(a: &[i8], b: &[i8]) -> u32 {
    let mut d = 0u32;
    for (&x, &y) in a.iter().zip(b) {
        let t = (i32::from(x) - i32::from(y)).unsigned_abs();
        d = d.wrapping_add(t * t);
    }
    d
}

/// Row `i` of `x` (`ch` values; empty if out of range).
#[inline]
fn row(x: &[i8], ch: usize, i: usize) -> &[i8] {
    let start = i.saturating_mul(ch);
    x.get(start..start.saturating_add(ch)).unwrap_or(&[])
}

/// Graph id of node `i` (0 without a batch vector or past its end).
#[inline]
fn graph_of(batch: Option<&[u16]>, i: usize) -> u16 {
    batch.and_then(|b| b.get(i)).copied().unwrap_or(0)
}

/// Reference kNN (see the module docs): `x` is `[n, ch]`, `idx` `[n, k]`,
/// `cnt` `[n]`. Nodes past `idx`/`cnt` are skipped; `n` is at most `2^16`.
pub fn knn_ref(
    x: &[i8],
    ch: usize,
    n: usize,
    batch: Option<&[u16]>,
    k: usize,
    idx: &mut [u16],
    cnt: &mut [u16],
) {
    for i in 0..n {
        let g = graph_of(batch, i);
        let xi = row(x, ch, i);
        let start = i.saturating_mul(k);
        let Some(out) = idx.get_mut(start..start.saturating_add(k)) else {
            continue;
        };
        out.iter_mut().for_each(|o| *o = i as u16);
        // The previous pick, as (distance, index); the next pick is the
        // smallest candidate strictly after it in (d, j) order.
        let mut prev: Option<(u32, usize)> = None;
        let mut m = 0usize;
        for slot in out.iter_mut() {
            let mut best: Option<(u32, usize)> = None;
            for j in 0..n {
                if graph_of(batch, j) != g {
                    continue;
                }
                let c = (dist2(xi, row(x, ch, j)), j);
                if prev.is_some_and(|p| c <= p) {
                    continue;
                }
                if best.is_none_or(|b| c < b) {
                    best = Some(c);
                }
            }
            match best {
                Some(b) => {
                    *slot = b.1 as u16;
                    prev = Some(b);
                    m += 1;
                }
                None => break,
            }
        }
        if let Some(c) = cnt.get_mut(i) {
            *c = m as u16;
        }
    }
}

/// Optimized kNN, equal to [`knn_ref`]: one scan of the candidates per query
/// in index order, keeping the best `k` sorted by `(d, j)` in `idx` and
/// `dist` (`dist` must hold `k` values; with fewer, the list is that short).
/// A candidate enters only if strictly closer than the current `k`-th (on
/// equal distance the earlier, smaller index stays), and is inserted after
/// every kept entry of equal distance.
#[allow(clippy::too_many_arguments)] // the same slices as `knn_ref`, plus the buffer
pub fn knn(
    x: &[i8],
    ch: usize,
    n: usize,
    batch: Option<&[u16]>,
    k: usize,
    idx: &mut [u16],
    cnt: &mut [u16],
    dist: &mut [u32],
) {
    let cap = k.min(dist.len());
    let dist = dist.get_mut(..cap).unwrap_or(&mut []);
    for i in 0..n {
        let g = graph_of(batch, i);
        let xi = row(x, ch, i);
        let start = i.saturating_mul(k);
        let Some(out) = idx.get_mut(start..start.saturating_add(k)) else {
            continue;
        };
        out.iter_mut().for_each(|o| *o = i as u16);
        let list = out.get_mut(..cap).unwrap_or(&mut []);
        let mut m = 0usize;
        for j in 0..n {
            if graph_of(batch, j) != g {
                continue;
            }
            let d = dist2(xi, row(x, ch, j));
            if m == cap {
                match dist.last() {
                    Some(&worst) if d < worst => m -= 1,
                    _ => continue,
                }
            }
            // Insertion position: after every kept entry with distance ≤ d
            // (kept entries have smaller indices).
            let mut p = m;
            while p > 0 {
                let Some(&dp) = dist.get(p - 1) else { break };
                if dp <= d {
                    break;
                }
                if let (Some(&dv), Some(&iv)) = (dist.get(p - 1), list.get(p - 1)) {
                    if let Some(s) = dist.get_mut(p) {
                        *s = dv;
                    }
                    if let Some(s) = list.get_mut(p) {
                        *s = iv;
                    }
                }
                p -= 1;
            }
            if let Some(s) = dist.get_mut(p) {
                *s = d;
            }
            if let Some(s) = list.get_mut(p) {
                *s = j as u16;
            }
            m += 1;
        }
        if let Some(c) = cnt.get_mut(i) {
            *c = m as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn includes_self_and_breaks_ties_by_index() {
        // Points on a line: 0, 2, 4, 2 (node 3 duplicates node 1).
        let x: [i8; 4] = [0, 2, 4, 2];
        let (mut idx, mut cnt) = ([0u16; 12], [0u16; 4]);
        knn_ref(&x, 1, 4, None, 3, &mut idx, &mut cnt);
        assert_eq!(cnt, [3, 3, 3, 3]);
        // Node 0: itself (0), then 1 and 3 at distance 4 (smaller index first).
        assert_eq!(&idx[0..3], &[0, 1, 3]);
        // Node 1: 1 and 3 at distance 0, then 0 and 2 at 4: 0 first.
        assert_eq!(&idx[3..6], &[1, 3, 0]);
        assert_eq!(&idx[9..12], &[1, 3, 0]);
        let (mut idx2, mut cnt2, mut d) = ([0u16; 12], [0u16; 4], [0u32; 3]);
        knn(&x, 1, 4, None, 3, &mut idx2, &mut cnt2, &mut d);
        assert_eq!((idx, cnt), (idx2, cnt2));
    }

    #[test]
    fn graphs_of_a_batch_stay_apart_and_small_graphs_give_all_points() {
        let x: [i8; 5] = [0, 100, 1, 2, 101];
        let batch = [0u16, 1, 0, 0, 1];
        let (mut idx, mut cnt) = ([0u16; 15], [0u16; 5]);
        knn_ref(&x, 1, 5, Some(&batch), 3, &mut idx, &mut cnt);
        assert_eq!(cnt, [3, 2, 3, 3, 2]);
        assert_eq!(&idx[3..5], &[1, 4]);
        assert_eq!(idx[5], 1, "unused slot holds the node itself");
        assert_eq!(&idx[0..3], &[0, 2, 3]);
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn optimized_equals_reference(
            n in 0usize..40,
            ch in 1usize..5,
            k in 1usize..12,
            vals in proptest::collection::vec(-3i8..=3, 200),
            graphs in proptest::collection::vec(0u16..3, 40),
            use_batch in any::<bool>(),
        ) {
            let x = &vals[..(n * ch).min(vals.len())];
            let n = x.len() / ch;
            let batch = use_batch.then(|| &graphs[..n]);
            let (mut a, mut ca) = (vec![0u16; n * k], vec![0u16; n]);
            let (mut b, mut cb) = (vec![7u16; n * k], vec![9u16; n]);
            let mut d = vec![0u32; k];
            knn_ref(x, ch, n, batch, k, &mut a, &mut ca);
            knn(x, ch, n, batch, k, &mut b, &mut cb, &mut d);
            prop_assert_eq!(a, b);
            prop_assert_eq!(ca, cb);
        }

        #[test]
        #[cfg_attr(miri, ignore = "integer arithmetic only, no unsafe or dependency code: run natively")]
        fn full_range_values(
            vals in proptest::collection::vec(any::<i8>(), 0..96),
            k in 1usize..20,
        ) {
            let ch = 3;
            let n = vals.len() / ch;
            let (mut a, mut ca) = (vec![0u16; n * k], vec![0u16; n]);
            let (mut b, mut cb) = (vec![0u16; n * k], vec![0u16; n]);
            let mut d = vec![0u32; k];
            knn_ref(&vals, ch, n, None, k, &mut a, &mut ca);
            knn(&vals, ch, n, None, k, &mut b, &mut cb, &mut d);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(ca, cb);
            // Every node's first neighbour is at distance 0 (itself or a duplicate).
            for i in 0..n {
                let j = a[i * k] as usize;
                prop_assert_eq!(dist2(&vals[i*ch..i*ch+ch], &vals[j*ch..j*ch+ch]), 0);
            }
        }
    }
}
