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

/// Optimized for 32-bit targets: bit-exact with [`matvec_ref`]. Output
/// channels in blocks of four, each block's weight rows taken once as
/// `in_ch`-long slices (`chunks_exact`, so one `k < in_ch` test covers the
/// four loads) and its four sums kept in registers over the row's stored
/// entries; the channels past the last whole block one at a time. Output
/// channels beyond the weight rows (`w.len() / in_ch`) are 0.
#[inline(never)]
pub fn matvec_blocked(
    w: &[i8],
    in_ch: usize,
    cols: &[u16],
    values: &[i8],
    zp: i8,
    out: &mut [i32],
) {
    out.iter_mut().for_each(|o| *o = 0);
    if in_ch == 0 {
        return;
    }
    let zp = i32::from(zp);
    // Channels past the weight rows stay 0.
    let n = out.len().min(w.len() / in_ch);
    let out = out.get_mut(..n).unwrap_or(&mut []);
    let mut rows = w.chunks_exact(in_ch);
    let mut o4 = out.chunks_exact_mut(4);
    for o in &mut o4 {
        // (Always four rows: `n ≤ w.len() / in_ch`.)
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            break;
        };
        let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
        for (&k, &v) in cols.iter().zip(values) {
            let k = usize::from(k);
            let d = i32::from(v) - zp;
            if let (Some(&w0), Some(&w1), Some(&w2), Some(&w3)) =
                (r0.get(k), r1.get(k), r2.get(k), r3.get(k))
            {
                a0 = a0.wrapping_add(i32::from(w0) * d);
                a1 = a1.wrapping_add(i32::from(w1) * d);
                a2 = a2.wrapping_add(i32::from(w2) * d);
                a3 = a3.wrapping_add(i32::from(w3) * d);
            }
        }
        if let [o0, o1, o2, o3] = o {
            (*o0, *o1, *o2, *o3) = (a0, a1, a2, a3);
        }
    }
    for (o, row) in o4.into_remainder().iter_mut().zip(rows) {
        *o = column_sum(row, cols, values, zp);
    }
}

/// Entries packed per chunk by [`matvec_packed`] (a stack buffer of 128 bytes).
pub const PACKED_CHUNK: usize = 32;

/// Packed entries `k << 16 | d as u16` and a bound above every `k`, computed
/// from them by [`Packed::new`] (the only constructor), so that a row of at
/// least `bound` weights covers every column.
#[derive(Clone, Copy)]
struct Packed<'a> {
    es: &'a [u32],
    // (Read by the assembly `blocks4` only.)
    #[cfg_attr(not(tinygnn_dsp), allow(dead_code))]
    bound: usize,
}

impl<'a> Packed<'a> {
    #[inline(always)]
    fn new(es: &'a [u32]) -> Self {
        let mut top = 0u32;
        for &e in es {
            top = top.max(e);
        }
        // The largest packed word has the largest column (its high half).
        let bound = if es.is_empty() {
            0
        } else {
            (top >> 16) as usize + 1
        };
        Packed { es, bound }
    }
}

/// Optimized for Cortex-M4/M7/M33 (`cfg(tinygnn_dsp)`: the loop of
/// `blocks4` in assembly): bit-exact with [`matvec_ref`]. The row's entries
/// with a column `< in_ch` are packed [`PACKED_CHUNK`] at a time as
/// `k << 16 | (v − zp) as u16` into `buf`; then for every block of four
/// output channels `blocks4`
/// adds `W[c, k]·(v − zp)` to four register accumulators per entry
/// (`SMLABB` takes the low half of the packed word as the 16-bit `v − zp`);
/// the channels past the last whole block one at a time. Output channels
/// beyond the weight rows (`w.len() / in_ch`) are 0.
pub fn matvec_packed(w: &[i8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    let mut buf = [0u32; PACKED_CHUNK];
    matvec_packed_buf(w, in_ch, cols, values, zp, out, &mut buf);
}

/// [`matvec_packed`] with the packing buffer given (so that [`matmul`] zeroes
/// one buffer per layer, not per row).
#[inline(never)]
fn matvec_packed_buf(
    w: &[i8],
    in_ch: usize,
    cols: &[u16],
    values: &[i8],
    zp: i8,
    out: &mut [i32],
    buf: &mut [u32; PACKED_CHUNK],
) {
    out.iter_mut().for_each(|o| *o = 0);
    if in_ch == 0 {
        return;
    }
    let zp = i32::from(zp);
    let n = out.len().min(w.len() / in_ch);
    let out = out.get_mut(..n).unwrap_or(&mut []);
    let whole = n - n % 4;
    // k < in_ch ≤ MAX_CHANNELS < 2^16 and |v − zp| ≤ 255: both fit their half.
    let (cols, values) = (
        cols.get(..values.len()).unwrap_or(cols),
        values.get(..cols.len()).unwrap_or(values),
    );
    let mut at = 0usize;
    loop {
        let mut m = 0usize;
        while m < PACKED_CHUNK {
            let (Some(&k), Some(&v), Some(slot)) = (cols.get(at), values.get(at), buf.get_mut(m))
            else {
                break;
            };
            at += 1;
            if usize::from(k) < in_ch {
                *slot = (u32::from(k) << 16) | u32::from((i32::from(v) - zp) as u16);
                m += 1;
            }
        }
        let Some(es) = buf.get(..m).filter(|es| !es.is_empty()) else {
            break;
        };
        let packed = Packed::new(es);
        let (head, tail) = out.split_at_mut(whole);
        blocks4(head, w, in_ch, packed);
        let rows = w.chunks_exact(in_ch).skip(whole);
        for (o, row) in tail.iter_mut().zip(rows) {
            for &e in es {
                if let Some(&wk) = row.get((e >> 16) as usize) {
                    *o = o.wrapping_add(i32::from(wk) * i32::from(e as u16 as i16));
                }
            }
        }
        if m < PACKED_CHUNK {
            break;
        }
    }
}

/// `out[c] += W[c, k]·d` for every packed entry `k << 16 | d as u16` and
/// every channel `c < out.len()` (a multiple of 4; the rows of `w`, `in_ch`
/// weights each), four channels at a time: the portable form of the
/// assembly loop.
#[cfg(not(tinygnn_dsp))]
#[inline(always)]
fn blocks4(out: &mut [i32], w: &[i8], in_ch: usize, packed: Packed<'_>) {
    blocks4_portable(out, w, in_ch, packed.es);
}

/// The portable form of [`blocks4`] (also its fallback).
#[inline(always)]
fn blocks4_portable(out: &mut [i32], w: &[i8], in_ch: usize, es: &[u32]) {
    let mut rows = w.chunks_exact(in_ch.max(1));
    for o in out.chunks_exact_mut(4) {
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            break;
        };
        let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
        for &e in es {
            let k = (e >> 16) as usize;
            let d = i32::from(e as u16 as i16);
            if let (Some(&w0), Some(&w1), Some(&w2), Some(&w3)) =
                (r0.get(k), r1.get(k), r2.get(k), r3.get(k))
            {
                a0 = a0.wrapping_add(i32::from(w0) * d);
                a1 = a1.wrapping_add(i32::from(w1) * d);
                a2 = a2.wrapping_add(i32::from(w2) * d);
                a3 = a3.wrapping_add(i32::from(w3) * d);
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

/// What the block loop of the assembly [`blocks4`] reads and updates through r7.
#[cfg(tinygnn_dsp)]
#[repr(C)]
struct Blocks4Args {
    /// Row 0 of the current block (advanced by `4·in_ch` per block).
    w: *const i8,
    /// Bytes from one weight row to the next.
    in_ch: usize,
    /// The current block's four sums (advanced by 16 bytes per block).
    out: *mut i32,
    /// First packed entry.
    es: *const u32,
    /// One past the last packed entry.
    es_end: *const u32,
    /// Blocks left (at least 1 on entry).
    blocks: usize,
}

/// The assembly form of [`blocks4`]: per block, the four row pointers are
/// set up and the four sums loaded; per entry one `LDR`, one `LSR` and per
/// channel `LDRSB` + `SMLABB` (`d` is the packed word's signed low half; the
/// sums wrap like `wrapping_add`), 12 instructions per four MACs.
#[cfg(tinygnn_dsp)]
#[allow(unsafe_code)]
#[inline(always)]
fn blocks4(out: &mut [i32], w: &[i8], in_ch: usize, packed: Packed<'_>) {
    let blocks = out.len() / 4;
    let es = packed.es;
    // Every load inside `w`: block b reads row 4b + j at column k for
    // j < 4, k < bound ≤ in_ch, so everything lies below 4·blocks·in_ch.
    let fits = blocks
        .checked_mul(4)
        .and_then(|r| r.checked_mul(in_ch))
        .is_some_and(|len| len <= w.len());
    if blocks == 0 || es.is_empty() || packed.bound > in_ch || !fits {
        blocks4_portable(out, w, in_ch, es);
        return;
    }
    let mut args = Blocks4Args {
        w: w.as_ptr(),
        in_ch,
        out: out.as_mut_ptr(),
        es: es.as_ptr(),
        // SAFETY: one past the end of `es`.
        es_end: unsafe { es.as_ptr().add(es.len()) },
        blocks,
    };
    // SAFETY: checked above: `blocks ≥ 1` blocks of four sums lie in `out`
    // (4·blocks ≤ out.len()), read and written once each; every weight
    // load `w + (4b + j)·in_ch + k` is below `w + 4·blocks·in_ch ≤ w.len()`;
    // `es` is not empty, so the entry loop (a do-while ending at `es_end`)
    // reads only `es`. `args` is a live local only this block uses. All
    // operand registers are clobbered; r6 and r7 (which LLVM reserves) are
    // saved on the stack and restored.
    unsafe {
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
            "ldr r10, [r7, #12]",
            "ldr r6, [r7, #16]",
            // Entry loop.
            "2:",
            "ldr r12, [r10], #4",
            "lsr lr, r12, #16",
            "ldrsb r11, [r4, lr]",
            "smlabb r0, r11, r12, r0",
            "ldrsb r11, [r5, lr]",
            "smlabb r1, r11, r12, r1",
            "ldrsb r11, [r8, lr]",
            "smlabb r2, r11, r12, r2",
            "ldrsb r11, [r9, lr]",
            "smlabb r3, r11, r12, r3",
            "cmp r10, r6",
            "bne 2b",
            // Store the sums, next block.
            "ldr lr, [r7, #8]",
            "stm lr!, {{r0-r3}}",
            "str lr, [r7, #8]",
            "ldr lr, [r7, #20]",
            "subs lr, lr, #1",
            "str lr, [r7, #20]",
            "bne 5b",
            "pop {{r6, r7}}",
            inout("r0") &raw mut args => _,
            out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
        );
    }
}

/// `Σ_e row[cols[e]]·(values[e] − zp)` over the entries with `cols[e] < row.len()`.
#[inline]
fn column_sum(row: &[i8], cols: &[u16], values: &[i8], zp: i32) -> i32 {
    let mut a = 0i32;
    for (&k, &v) in cols.iter().zip(values) {
        if let Some(&wk) = row.get(usize::from(k)) {
            a = a.wrapping_add(i32::from(wk) * (i32::from(v) - zp));
        }
    }
    a
}

/// The default kernel: [`matvec_packed`] on Cortex-M4/M7/M33
/// (`cfg(tinygnn_dsp)`), [`matvec_blocked`] on other 32-bit targets,
/// [`matvec_opt`] on 64-bit hosts, or [`matvec_ref`] with the
/// `reference-kernels` or `kernels-small` feature.
#[inline]
pub fn matvec(w: &[i8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    if cfg!(any(
        feature = "reference-kernels",
        feature = "kernels-small"
    )) {
        matvec_ref(w, in_ch, cols, values, zp, out);
    } else if out.len() < 4 {
        matvec_narrow(w, in_ch, cols, values, zp, out);
    } else if cfg!(tinygnn_dsp) {
        matvec_packed(w, in_ch, cols, values, zp, out);
    } else if cfg!(target_pointer_width = "64") {
        matvec_opt(w, in_ch, cols, values, zp, out);
    } else {
        matvec_blocked(w, in_ch, cols, values, zp, out);
    }
}

/// [`matmul`] for fewer than four output channels (a pass over a narrow
/// block of channels, or a narrow layer): one pass over the rows of `x`
/// per channel, each row's stored entries read straight from `x` into one
/// register sum (`column_sum`), with no packing (which costs more than
/// it saves below one block of four). Bit-exact with [`matvec_ref`] per
/// row: columns `≥ in_ch` and missing weight rows add nothing.
#[inline(never)]
pub fn matmul_narrow(
    w: &[i8],
    in_ch: usize,
    x: SparseRows<'_>,
    zp: i8,
    out_ch: usize,
    out: &mut [i32],
) {
    let zp = i32::from(zp);
    let ends = x.row_ptr.get(1..).unwrap_or_default();
    // (No weight rows without input channels: every channel 0.)
    let mut rows = w
        .chunks_exact(in_ch.max(1))
        .take(usize::from(in_ch > 0) * out_ch);
    for c in 0..out_ch {
        let row = rows.next().unwrap_or_default();
        let mut start = x.row_ptr.first().map_or(0, |&a| a as usize);
        for (o, &end) in out.iter_mut().skip(c).step_by(out_ch.max(1)).zip(ends) {
            let end = end as usize;
            let cols = x.cols.get(start..end).unwrap_or_default();
            let values = x.values.get(start..end).unwrap_or_default();
            start = end;
            *o = column_sum(row, cols, values, zp);
        }
    }
}

/// [`matvec`] for fewer than four output channels: one `column_sum` per
/// channel over the row's stored entries, with no packing. Bit-exact with
/// [`matvec_ref`]; channels past the weight rows are 0.
pub fn matvec_narrow(w: &[i8], in_ch: usize, cols: &[u16], values: &[i8], zp: i8, out: &mut [i32]) {
    // (No weight rows without input channels: every channel 0.)
    let mut rows = w
        .chunks_exact(in_ch.max(1))
        .take(usize::from(in_ch > 0) * out.len());
    for o in out.iter_mut() {
        *o = rows
            .next()
            .map_or(0, |r| column_sum(r, cols, values, i32::from(zp)));
    }
}

/// Applies [`matvec`] to every row of `x`: `out` is `[rows, out_ch]`.
pub fn matmul(w: &[i8], in_ch: usize, x: SparseRows<'_>, zp: i8, out_ch: usize, out: &mut [i32]) {
    if out_ch == 0 {
        return;
    }
    let fast = !cfg!(any(
        feature = "reference-kernels",
        feature = "kernels-small"
    ));
    if fast && out_ch < 4 {
        return matmul_narrow(w, in_ch, x, zp, out_ch, out);
    }
    if fast && cfg!(tinygnn_dsp) {
        let mut buf = [0u32; PACKED_CHUNK];
        for (i, or) in out.chunks_exact_mut(out_ch).enumerate().take(x.rows()) {
            let (cols, values) = x.row(i);
            matvec_packed_buf(w, in_ch, cols, values, zp, or, &mut buf);
        }
        return;
    }
    for (i, or) in out.chunks_exact_mut(out_ch).enumerate().take(x.rows()) {
        let (cols, values) = x.row(i);
        matvec(w, in_ch, cols, values, zp, or);
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

    proptest! {
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
            matvec_blocked(&w, i, &cols, &vals, zp, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec_packed(&w, i, &cols, &vals, zp, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = vec![7i32; o];
            matvec_narrow(&w, i, &cols, &vals, zp, &mut got);
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
            // A weight row cut short (never in a validated model): the fast
            // kernels give its channel 0, as matvec_opt does (the reference
            // sums the weights that exist).
            let mut blocked = vec![0i32; out_len];
            matvec_blocked(&w, in_ch, &cols, &values, 3, &mut blocked);
            prop_assert_eq!(&blocked, &out);
            matvec_packed(&w, in_ch, &cols, &values, 3, &mut blocked);
            prop_assert_eq!(&blocked, &out);
            matvec_narrow(&w, in_ch, &cols, &values, 3, &mut blocked);
            prop_assert_eq!(&blocked, &out);
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
