//! Fixed-point arithmetic shared by every kernel.
//!
//! The scheme is the TensorFlow Lite Micro int8 one: `real = scale · (q − zero_point)`,
//! a rescale factor `s` stored as a Q31 multiplier `m` and a power-of-two
//! exponent `e` with `s ≈ m · 2^(e − 31)`, applied with a saturating rounding
//! doubling high multiply followed by a rounding arithmetic right shift.
//! Everything here is integer-only, so the result is the same on every target.
//!
//! The host computes multipliers with [`quantize_multiplier`] (feature `std`
//! not required: it only uses `f64` arithmetic, never on the inference path).

/// Saturating rounding doubling high multiply: `round(a · b / 2^31)`, saturating
/// the single overflowing case `a = b = i32::MIN`.
#[inline]
pub fn sat_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // (ab + nudge) / 2^31 with truncation toward zero, as the reference does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// Rounding arithmetic right shift of `x` by `exponent` (0..=31), rounding half away from zero.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    if exponent == 0 {
        return x;
    }
    let exponent = exponent.min(31);
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// `round(x · m · 2^(shift − 31))`: TFLM's `MultiplyByQuantizedMultiplier`.
/// `shift` is clamped to `-31..=30`.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, m: i32, shift: i32) -> i32 {
    let shift = shift.clamp(-31, 30);
    let left = if shift > 0 { shift as u32 } else { 0 };
    let right = if shift > 0 { 0 } else { (-shift) as u32 };
    let xl = x.saturating_mul(1i32 << left);
    rounding_divide_by_pot(sat_rounding_doubling_high_mul(xl, m), right)
}

/// A rescale `(m, shift)` prepared once for many values: [`Rescale::apply`]
/// equals [`multiply_by_quantized_multiplier`]`(x, m, shift)` for every `x`
/// (proptested below), without its per-value shift clamping and splitting,
/// and with the doubling high multiply as one 64-bit product, add and shift:
/// for `ab < 0`, truncating `(ab + 1 − 2^30) / 2^31` toward zero is
/// `⌈(ab + 1 − 2^30) / 2^31⌉ = ⌊(ab + 2^30) / 2^31⌋`, the same expression as
/// for `ab ≥ 0`; only `a = b = i32::MIN` (`2^31` after the shift) needs the
/// saturation, done by one `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescale {
    m: i64,
    left: u32,
    right: u32,
    mask: i32,
    half: i32,
}

impl Rescale {
    /// Prepares `(m, shift)` (`shift` clamped to `-31..=30` as
    /// [`multiply_by_quantized_multiplier`] does).
    #[inline]
    pub fn new(m: i32, shift: i32) -> Self {
        let shift = shift.clamp(-31, 30);
        let left = if shift > 0 { shift as u32 } else { 0 };
        let right = if shift > 0 { 0 } else { (-shift) as u32 };
        Self::from_parts(m, left, right)
    }

    /// From the multiplier and the shift already split as [`Rescale::new`]
    /// splits it (`left ≤ 30`, `right ≤ 31`; larger values are clamped).
    #[inline]
    pub fn from_parts(m: i32, left: u32, right: u32) -> Self {
        let (left, right) = (left.min(30), right.min(31));
        let mask = ((1i64 << right) - 1) as i32;
        Rescale {
            m: i64::from(m),
            left,
            right,
            mask,
            half: mask >> 1,
        }
    }

    /// `multiply_by_quantized_multiplier(x, m, shift)`.
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        let xl = if self.left == 0 {
            x
        } else {
            x.saturating_mul(1i32 << self.left)
        };
        let ab = i64::from(xl) * self.m;
        // |ab| ≤ 2^62: no overflow; the one result above i32::MAX is 2^31.
        let hm = ((ab + (1i64 << 30)) >> 31).min(i64::from(i32::MAX)) as i32;
        // rounding_divide_by_pot(hm, right), branch-free (mask = 0 for right = 0).
        let remainder = hm & self.mask;
        let threshold = self.half + i32::from(hm < 0);
        (hm >> self.right) + i32::from(remainder > threshold)
    }
}

/// Rounding (half away from zero) right shift of a 64-bit value, saturated to `i32`.
#[inline]
pub fn round_shift_i64_to_i32(x: i64, shift: u32) -> i32 {
    let v = if shift == 0 {
        x
    } else {
        let shift = shift.min(62);
        let half = 1i64 << (shift - 1);
        if x >= 0 {
            (x.saturating_add(half)) >> shift
        } else {
            -((x.saturating_neg().saturating_add(half)) >> shift)
        }
    };
    v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Integer division rounding half away from zero; `d` must be positive.
#[inline]
pub fn round_div_i64(n: i64, d: i64) -> i64 {
    if d <= 0 {
        return 0;
    }
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

/// Clamps to the int8 range.
#[inline]
pub fn saturate_i8(x: i32) -> i8 {
    x.clamp(-128, 127) as i8
}

/// Floor of the square root of a `u128` (bit-by-bit, exact, no floating point).
pub fn isqrt_u128(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = n;
    let mut result: u128 = 0;
    // Highest power of four not above n.
    let mut bit: u128 = 1u128 << ((127 - n.leading_zeros()) & !1);
    while bit != 0 {
        if x >= result + bit {
            x -= result + bit;
            result = (result >> 1) + bit;
        } else {
            result >>= 1;
        }
        bit >>= 2;
    }
    result
}

/// `deg = 0 ? 0 : isqrt(2^64 / deg)` (integer division, floor square root)
/// — GCN's `deg^-½` in Q24 (see [`crate::format::Op::GcnConv`]) — with no
/// division and no 64-bit multiplication: a restoring (shift-and-subtract)
/// division of `2^64` by `deg`, one quotient bit per step, then a
/// digit-by-digit square root, two bits per step. Only constant shifts of
/// `u64` values, so a 32-bit target needs no compiler-builtins helper
/// (`__aeabi_uldivmod`, `__aeabi_llsl`; `u64::isqrt` divides too). About 100
/// loop steps: slower than a hardware-assisted division, and smaller; the
/// GCN op uses it with the cargo feature `kernels-small`. Equal to the `u128`
/// formula for every `deg` (exhaustive below `2^20`, proptest above).
pub fn isqrt_pow2_64_div(deg: u64) -> u64 {
    match deg {
        0 => return 0,
        1 => return 1 << 32,
        _ => {}
    }
    // 2^64 is a 1 followed by 64 zero bits; after the leading 1 the
    // remainder is 1 (< deg). Each step doubles it (the carry out of bit 63
    // keeps the true value, which is then ≥ deg) and subtracts deg if it can.
    let (mut q, mut r) = (0u64, 1u64);
    for _ in 0..64 {
        let carry = r >> 63 != 0;
        r <<= 1;
        q <<= 1;
        if carry || r >= deg {
            r = r.wrapping_sub(deg);
            q |= 1;
        }
    }
    // Floor square root of q (< 2^64), two bits per step from the top.
    let (mut x, mut root, mut bit) = (q, 0u64, 1u64 << 62);
    while bit != 0 {
        let trial = root + bit;
        if x >= trial {
            x -= trial;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// Splits a positive real rescale factor into a Q31 multiplier and an exponent
/// so that `multiply_by_quantized_multiplier(x, m, e) ≈ x · s`.
/// Returns `(0, 0)` for `s ≤ 0` or non-finite `s`. Host-side only.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(s > 0.0)` also rejects NaN, on purpose
pub fn quantize_multiplier(s: f64) -> (i32, i32) {
    if !(s > 0.0) || !s.is_finite() {
        return (0, 0);
    }
    // frexp: s = q · 2^e with q in [0.5, 1).
    let mut e: i32 = 0;
    let mut q = s;
    while q >= 1.0 {
        q *= 0.5;
        e += 1;
    }
    while q < 0.5 {
        q *= 2.0;
        e -= 1;
    }
    let mut qf = libm::round(q * (1u64 << 31) as f64) as i64;
    if qf == 1i64 << 31 {
        qf /= 2;
        e += 1;
    }
    if e < -31 {
        // Too small to represent: the product rounds to zero anyway.
        return (0, 0);
    }
    if e > 30 {
        return (i32::MAX, 30);
    }
    (qf as i32, e)
}

/// An edge weight in Q16 (`1.0 = 65536`): `round(w · 65536)` for finite
/// `0 ≤ w ≤ 65535`, else `None`.
pub fn edge_weight_q16(w: f32) -> Option<u32> {
    if !w.is_finite() || !(0.0..=65535.0).contains(&w) {
        return None;
    }
    // w · 2^16 is exact in f32; the result is at most 0xFFFF_0000.
    Some(libm::roundf(w * 65536.0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srdhm_matches_definition() {
        for &(a, b) in &[
            (1 << 30, 1 << 30),
            (-7, 1 << 30),
            (12345, -999_999),
            (i32::MIN, i32::MIN),
        ] {
            let exact = (a as f64) * (b as f64) / 2f64.powi(31);
            let got = sat_rounding_doubling_high_mul(a, b) as f64;
            if a == i32::MIN && b == i32::MIN {
                assert_eq!(got, i32::MAX as f64);
            } else {
                assert!((got - exact).abs() <= 0.5 + 1e-9, "{a} {b} {got} {exact}");
            }
        }
    }

    fn rescale_edge_values() -> [i32; 14] {
        [
            0,
            1,
            -1,
            2,
            -2,
            i32::MAX,
            i32::MIN,
            i32::MIN + 1,
            i32::MAX - 1,
            1 << 30,
            -(1 << 30),
            (1 << 30) + 1,
            -(1 << 30) - 1,
            12345,
        ]
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "integer arithmetic only, no unsafe or dependency code: run natively"
    )]
    fn rescale_matches_reference_on_edges() {
        for x in rescale_edge_values() {
            for m in rescale_edge_values() {
                for shift in -40..=40 {
                    assert_eq!(
                        Rescale::new(m, shift).apply(x),
                        multiply_by_quantized_multiplier(x, m, shift),
                        "x={x} m={m} shift={shift}"
                    );
                }
            }
        }
    }

    #[test]
    fn fast_srdhm_formula_matches_reference_exhaustively_on_small_products() {
        // Every a in ±2^16 against b = ±2^30 ± 1 and ±1: all rounding cases of
        // the nudge (exact halves included) in both signs.
        for &b in &[
            1 << 30,
            (1 << 30) + 1,
            (1 << 30) - 1,
            -(1 << 30),
            1,
            -1,
            i32::MAX,
            i32::MIN,
        ] {
            // Miri (scripts/areas/hostile.sh) samples every 257th a.
            for a in (-(1 << 16)..=(1 << 16)).step_by(if cfg!(miri) { 257 } else { 1 }) {
                let r = Rescale::new(b, 0).apply(a);
                assert_eq!(r, sat_rounding_doubling_high_mul(a, b), "a={a} b={b}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn rescale_matches_reference(x in proptest::num::i32::ANY, m in proptest::num::i32::ANY, shift in -33i32..=33) {
            proptest::prop_assert_eq!(Rescale::new(m, shift).apply(x), multiply_by_quantized_multiplier(x, m, shift));
        }

        #[test]
        fn rescale_matches_reference_small_x(x in -70000i32..70000, m in (1i32 << 30)..=i32::MAX, shift in -31i32..=8) {
            proptest::prop_assert_eq!(Rescale::new(m, shift).apply(x), multiply_by_quantized_multiplier(x, m, shift));
        }
    }

    #[test]
    fn rounding_shift_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(round_shift_i64_to_i32(5, 1), 3);
        assert_eq!(round_shift_i64_to_i32(-5, 1), -3);
        assert_eq!(round_shift_i64_to_i32(i64::MAX, 1), i32::MAX);
        assert_eq!(round_div_i64(7, 2), 4);
        assert_eq!(round_div_i64(-7, 2), -4);
        assert_eq!(round_div_i64(-5, 3), -2);
    }

    #[test]
    fn isqrt_is_floor_sqrt() {
        for n in 0u128..5000 {
            let r = isqrt_u128(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "{n}");
        }
        let big = (1u128 << 100) + 12345;
        let r = isqrt_u128(big);
        assert!(r * r <= big && (r + 1) * (r + 1) > big);
    }

    /// `isqrt(2^64 / d)` computed in `u128` (the definition).
    fn inv_sqrt_def(d: u64) -> u64 {
        if d == 0 {
            0
        } else {
            isqrt_u128((1u128 << 64) / u128::from(d)) as u64
        }
    }

    #[test]
    fn isqrt_pow2_64_div_exhaustive_below_2_20() {
        // Miri (scripts/areas/hostile.sh) samples every 4099th value.
        let step = if cfg!(miri) { 4099 } else { 1 };
        for d in (0u64..1 << 20).step_by(step) {
            assert_eq!(isqrt_pow2_64_div(d), inv_sqrt_def(d), "deg {d}");
        }
    }

    #[test]
    fn isqrt_pow2_64_div_at_the_edges() {
        // Powers of two (2^64 / d exact), their neighbours, squares and the top.
        for k in 0..64 {
            let p = 1u64 << k;
            for d in [p, p - 1, p + 1, p.wrapping_mul(3)] {
                assert_eq!(isqrt_pow2_64_div(d), inv_sqrt_def(d), "deg {d}");
            }
        }
        for r in [2u64, 3, 255, 65535, 65536, 1 << 31, u32::MAX as u64] {
            for d in [r * r - 1, r * r, r * r + 1] {
                assert_eq!(isqrt_pow2_64_div(d), inv_sqrt_def(d), "deg {d}");
            }
        }
        assert_eq!(isqrt_pow2_64_div(u64::MAX), inv_sqrt_def(u64::MAX));
        assert_eq!(isqrt_pow2_64_div(1), 1 << 32);
    }

    proptest::proptest! {
        #[test]
        fn isqrt_pow2_64_div_matches_u128(d in proptest::prelude::any::<u64>(), shift in 0u32..64) {
            for d in [d, d >> shift, (d >> shift) | 1] {
                proptest::prop_assert_eq!(isqrt_pow2_64_div(d), inv_sqrt_def(d), "deg {}", d);
            }
        }
    }

    #[test]
    fn quantized_multiplier_approximates_scale() {
        for &s in &[1e-6, 0.0123, 0.5, 0.75, 1.0, 3.7, 1234.5] {
            let (m, e) = quantize_multiplier(s);
            for &x in &[1000i32, -1000, 77777, -3] {
                let got = multiply_by_quantized_multiplier(x, m, e) as f64;
                let want = x as f64 * s;
                assert!(
                    (got - want).abs() <= 0.5 + want.abs() * 1e-8 + 1e-9,
                    "s={s} x={x} got={got} want={want}"
                );
            }
        }
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(f64::NAN), (0, 0));
    }
}
