//! Fixed-point arithmetic of the attention ops (GAT, TransformerConv): the
//! `exp` of a Q16 logit difference in Q30, the softmax reciprocal and
//! weights, the Q16 logit rescale, and the heads' channel split. Integer
//! only: the same results on every target.

/// `round(2^(k/64) · 2^30)` for `k = 0..64`.
pub(crate) const EXP2_Q30: [u32; 64] = [
    1073741824, 1085434106, 1097253708, 1109202018, 1121280436, 1133490379, 1145833280, 1158310587,
    1170923762, 1183674286, 1196563654, 1209593378, 1222764986, 1236080024, 1249540052, 1263146652,
    1276901417, 1290805962, 1304861917, 1319070932, 1333434672, 1347954824, 1362633090, 1377471191,
    1392470869, 1407633882, 1422962010, 1438457051, 1454120821, 1469955159, 1485961921, 1502142985,
    1518500250, 1535035634, 1551751076, 1568648537, 1585730000, 1602997467, 1620452965, 1638098541,
    1655936265, 1673968228, 1692196547, 1710623359, 1729250827, 1748081133, 1767116489, 1786359126,
    1805811301, 1825475297, 1845353420, 1865448001, 1885761398, 1906295993, 1927054196, 1948038440,
    1969251188, 1990694927, 2012372174, 2034285470, 2056437387, 2078830522, 2101467502, 2124350982,
];
/// `round(log2(e) · 2^30)`.
pub(crate) const LOG2E_Q30: i64 = 1549082005;
/// `round(ln(2) · 2^30)`.
pub(crate) const LN2_Q30: i64 = 744261118;

/// `exp(d / 2^16)` in Q30 (`2^30 = 1.0`) for a Q16 logit difference `d ≤ 0`
/// (positive `d` is taken as 0). Integer only:
/// 1. `t = floor((max(d, −2^23) · LOG2E_Q30 + 2^15) / 2^16)` (Q30 base-2 exponent, ≤ 0);
/// 2. `n = floor(t / 2^30)`, `r = t − n·2^30` (`0 ≤ r < 2^30`), `k = r >> 24`,
///    `δ = r & (2^24 − 1)`;
/// 3. `u = floor((δ · LN2_Q30 + 2^29) / 2^30)` (Q30, `u < ln2/64`),
///    `p = 2^30 + u + floor(u² / 2^31) + floor(floor(u² / 2^30)·u / (3·2^31))` (Q30 `e^u`);
/// 4. `m = floor((EXP2_Q30[k] · p + 2^29) / 2^30)` (Q30 `2^(r/2^30)`);
/// 5. result `floor((m + 2^(−n−1)) / 2^(−n))`, 0 when `−n > 62`; at most `2^30`.
///
/// `exp_q30(0) = 2^30`, non-decreasing in `d`, relative error below `2^−25`
/// (while the result is above a few units).
pub fn exp_q30(d: i64) -> u32 {
    let d = d.clamp(-(1i64 << 23), 0);
    let t = (d * LOG2E_Q30 + (1 << 15)) >> 16;
    let n = t >> 30;
    let r = t - (n << 30);
    let k = (r >> 24) as usize;
    let delta = r & ((1 << 24) - 1);
    let u = (delta * LN2_Q30 + (1 << 29)) >> 30;
    let u2 = (u * u) >> 31;
    let u3 = ((u * u) >> 30).saturating_mul(u) / (3i64 << 31);
    let p = (1i64 << 30) + u + u2 + u3;
    let base = i64::from(EXP2_Q30.get(k).copied().unwrap_or(1 << 30));
    let m = (base * p + (1 << 29)) >> 30;
    let sh = -n;
    if sh > 62 {
        return 0;
    }
    let v = if sh <= 0 {
        m
    } else {
        (m + (1i64 << (sh - 1))) >> sh
    };
    v.clamp(0, 1 << 30) as u32
}

/// The softmax reciprocal: `floor((2^61 + S/2) / S)` for `S ≥ 1` (0 for `S = 0`).
pub fn softmax_recip(sum: u64) -> u64 {
    ((1u64 << 61) + sum / 2).checked_div(sum).unwrap_or(0)
}

/// The normalised Q30 weight `floor((w · R + 2^30) / 2^31)` of an edge.
pub fn softmax_alpha(w: u32, recip: u64) -> i64 {
    let v = (u128::from(w) * u128::from(recip) + (1u128 << 30)) >> 31;
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The logistic function of a Q16 logit `l` in Q30 (`2^30 = 1.0`), through
/// [`exp_q30`] of `−|l|`, `e`: `floor((2^60 + (2^30 + e)/2) / (2^30 + e))` for
/// `l ≥ 0`, `floor((e·2^30 + (2^30 + e)/2) / (2^30 + e))` for `l < 0`.
/// Within `0..=2^30`, non-decreasing, `sigmoid_q30(0) = 2^29`.
pub fn sigmoid_q30(l: i64) -> i64 {
    let e = i64::from(exp_q30(l.saturating_abs().saturating_neg()));
    let den = (1i64 << 30) + e;
    let num = if l >= 0 { 1i64 << 60 } else { e << 30 };
    (num + den / 2).checked_div(den).unwrap_or(0)
}

/// Channels per head for an op with `heads` heads, `out_ch` output channels:
/// `out_ch / heads` with concat, `out_ch` without (`None` if not a whole number or `heads = 0`).
pub fn per_head(heads: usize, concat: bool, out_ch: usize) -> Option<usize> {
    if heads == 0 {
        None
    } else if concat {
        (out_ch % heads == 0).then_some(out_ch / heads)
    } else {
        Some(out_ch)
    }
}

/// The logit rescale `clamp_i32(floor((v·m + 2^(r−1)) / 2^r))`, `r = 31 − s`
/// (`s` clamped to `−32..=31`).
pub fn rescale_logit(v: i64, mult: i32, shift: i32) -> i32 {
    let r = 31 - shift.clamp(-32, 31);
    let p = i128::from(v) * i128::from(mult);
    let q = if r == 0 {
        p
    } else {
        (p + (1i128 << (r - 1))) >> r
    };
    q.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// The little-endian `i32` number `i` of `b` (0 past its end): the tables of
/// the attention ops (biases, logit rescales).
pub fn read_i32(b: &[u8], i: usize) -> i32 {
    match b.get(4 * i..4 * i + 4) {
        Some(&[a, c, d, e]) => i32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_accurate_monotone_and_bounded() {
        assert_eq!(sigmoid_q30(0), 1 << 29);
        let mut last = 0;
        for l in (-(40i64 << 16)..=(40i64 << 16)).step_by(9973) {
            let v = sigmoid_q30(l);
            assert!((0..=1 << 30).contains(&v), "{l}: {v}");
            assert!(v >= last, "not monotone at {l}");
            last = v;
            let want = 1.0 / (1.0 + (-(l as f64) / 65536.0).exp());
            let got = v as f64 / f64::from(1u32 << 30);
            assert!((got - want).abs() < 1e-6, "{l}: {got} vs {want}");
        }
        assert_eq!(sigmoid_q30(i64::MAX), 1 << 30);
        assert_eq!(sigmoid_q30(i64::MIN), 0);
    }
}
