//! Fused activation and requantization of `i32` accumulators, as defined in
//! [`crate::format`]'s conventions:
//! `out = saturate_i8(requant(act(acc + bias), mult, shift) + zp_out)`.

use serde::{Deserialize, Serialize};

use crate::quant::{
    multiply_by_quantized_multiplier, round_shift_i64_to_i32, saturate_i8, Rescale,
};

/// Activation fused into the op that produces a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `x < 0 ? alpha·x : x` with `alpha = alpha_q16 / 65536`.
    LeakyRelu {
        /// Negative slope in Q16.
        alpha_q16: i32,
    },
}

/// The layout of a [`crate::format::ChannelParams`] section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsForm {
    /// `12·C` bytes: `(bias, mult, shift)` per channel.
    Full,
    /// `4·C + 8` bytes: `bias` per channel, then one shared `(mult, shift)`.
    Compact,
}

/// Which form a [`crate::format::ChannelParams`] section of `len` bytes has for `channels`
/// output channels; `None` if the length fits neither. For one channel the
/// two forms coincide and this says [`ParamsForm::Full`].
#[inline]
pub fn params_form(len: usize, channels: usize) -> Option<ParamsForm> {
    if channels == 0 {
        None
    } else if channels.checked_mul(12) == Some(len) {
        Some(ParamsForm::Full)
    } else if channels.checked_mul(4).and_then(|n| n.checked_add(8)) == Some(len) {
        Some(ParamsForm::Compact)
    } else {
        None
    }
}

/// Reads channel `c`'s `(bias, mult, shift)` record from a [`crate::format::ChannelParams`]
/// section in the **full** form (12-byte records); zeros past the end.
///
/// A section's length alone does not tell the two forms apart without the
/// channel count (`12·C` full equals `4·C′ + 8` compact for `C′ = 3·C − 2`),
/// so for a section that may be compact use [`channel_record_of`].
#[inline]
pub fn channel_record(params: &[u8], c: usize) -> (i32, i32, i32) {
    let rec = |k: usize| read_i32(params, c * 12 + k * 4);
    (rec(0), rec(1), rec(2))
}

/// Reads channel `c`'s `(bias, mult, shift)` from a [`crate::format::ChannelParams`]
/// section of a layer with `channels` output channels, in either form: the
/// full form (`params.len() == 12·channels`, same as [`channel_record`]) or the
/// compact form (`4·channels + 8`: `bias[c]` and the shared `mult`, `shift`).
/// For one channel both forms are the same 12 bytes and both readings agree.
/// Any other length is read as the full form (zeros past the end).
#[inline]
pub fn channel_record_of(params: &[u8], channels: usize, c: usize) -> (i32, i32, i32) {
    match params_form(params.len(), channels) {
        Some(ParamsForm::Compact) => (
            read_i32(params, c * 4),
            read_i32(params, channels * 4),
            read_i32(params, channels * 4 + 4),
        ),
        _ => channel_record(params, c),
    }
}

/// The little-endian `i32` at byte `at` (0 if out of range).
#[inline]
fn read_i32(bytes: &[u8], at: usize) -> i32 {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|s| s.try_into().ok())
        .map(i32::from_le_bytes)
        .unwrap_or(0)
}

/// The activation on an accumulator: ReLU `max(acc, 0)`, LeakyReLU
/// `acc < 0 ? round_shift(acc · alpha_q16, 16) : acc`.
#[inline]
pub fn activate(acc: i32, act: Activation) -> i32 {
    match act {
        Activation::None => acc,
        Activation::Relu => acc.max(0),
        Activation::LeakyRelu { alpha_q16 } => {
            if acc < 0 {
                round_shift_i64_to_i32(i64::from(acc) * i64::from(alpha_q16), 16)
            } else {
                acc
            }
        }
    }
}

/// `saturate_i8(multiply_by_quantized_multiplier(acc, mult, shift) + zp_out)`.
#[inline]
pub fn requantize(acc: i32, mult: i32, shift: i32, zp_out: i8) -> i8 {
    saturate_i8(
        multiply_by_quantized_multiplier(acc, mult, shift).saturating_add(i32::from(zp_out)),
    )
}

/// Finishes one output row: for every channel `c`,
/// `out[c] = requantize(activate(acc[c] + bias[c]), mult[c], shift[c])`, with
/// `(bias, mult, shift)` read from the [`crate::format::ChannelParams`]
/// section of `out.len()` channels: 12-byte records (full form), or `bias`
/// per channel then one shared `(mult, shift)` (compact form, `4·C + 8`
/// bytes). The bias is added with `i32` saturation. Channels without a record
/// (a short `params`) are left untouched.
pub fn requantize_row(acc: &[i32], params: &[u8], act: Activation, zp_out: i8, out: &mut [i8]) {
    // The same results as `requantize_row_ref` (proptested below), with the
    // activation chosen once per row and the rescale prepared once per row
    // (compact form) or per record ([`Rescale`]: no division, no per-value
    // shift clamping).
    match act {
        Activation::None => requantize_row_with(acc, params, zp_out, out, |a| a),
        Activation::Relu => requantize_row_with(acc, params, zp_out, out, |a| a.max(0)),
        Activation::LeakyRelu { .. } => {
            requantize_row_with(acc, params, zp_out, out, |a| activate(a, act))
        }
    }
}

/// [`requantize_row`] with the activation `act`.
#[inline(always)]
fn requantize_row_with(
    acc: &[i32],
    params: &[u8],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i32) -> i32,
) {
    let zp = i32::from(zp_out);
    match params_form(params.len(), out.len()) {
        Some(ParamsForm::Compact) => {
            let split = params.len().saturating_sub(8);
            let biases = params.get(..split).unwrap_or(&[]);
            let (mult, shift) = shared_rescale(params.get(split..).unwrap_or(&[]));
            let r = Rescale::new(mult, shift);
            for ((o, &a), b) in out.iter_mut().zip(acc).zip(biases.chunks_exact(4)) {
                let bias = match b {
                    [b0, b1, b2, b3] => i32::from_le_bytes([*b0, *b1, *b2, *b3]),
                    _ => 0,
                };
                *o = saturate_i8(r.apply(act(a.saturating_add(bias))).saturating_add(zp));
            }
        }
        _ => {
            for ((o, &a), rec) in out.iter_mut().zip(acc).zip(params.chunks_exact(12)) {
                let (bias, mult, shift) = record(rec);
                let r = Rescale::new(mult, shift);
                *o = saturate_i8(r.apply(act(a.saturating_add(bias))).saturating_add(zp));
            }
        }
    }
}

/// One channel's `(bias, mult, shift)` prepared once per op for
/// [`requantize_row_prepared`]: `[bias, mult, left | right << 8, 2^right / 2]`
/// (the last word, the rounding nudge, is 0 with `kernels-small`, which
/// derives it per value),
/// where `left`/`right` are the shift's parts as [`Rescale::new`] splits them.
pub type Prepared = [i32; 4];

/// Prepares the channel records of `params` (as [`requantize_row`] reads them
/// for `channels` output channels) into `prep`; returns how many channels
/// have a record (the rest are left untouched by [`requantize_row_prepared`],
/// as by [`requantize_row`]).
pub fn prepare(params: &[u8], channels: usize, prep: &mut [Prepared]) -> usize {
    // One loop for both forms (indexed records, no `ChunksExact` and no
    // closure instantiated per form: the smallest code at opt-level "z",
    // docs/size.md).
    let compact = matches!(
        params_form(params.len(), channels),
        Some(ParamsForm::Compact)
    );
    let split = params.len().saturating_sub(8);
    let (shared_mult, shared_shift) = shared_rescale(params.get(split..).unwrap_or(&[]));
    let (size, records) = if compact {
        (4, params.get(..split).unwrap_or(&[]))
    } else {
        (12, params)
    };
    let mut n = 0usize;
    for (c, p) in prep.iter_mut().take(channels).enumerate() {
        let start = c.saturating_mul(size);
        let Some(rec) = records.get(start..start.saturating_add(size)) else {
            break;
        };
        let (bias, mult, shift) = match rec {
            [b0, b1, b2, b3] => (
                i32::from_le_bytes([*b0, *b1, *b2, *b3]),
                shared_mult,
                shared_shift,
            ),
            _ => record(rec),
        };
        let shift = shift.clamp(-31, 30);
        let (left, right) = if shift > 0 { (shift, 0) } else { (0, -shift) };
        *p = [
            bias,
            mult,
            left | (right << 8),
            // (`kernels-small` derives its mask per value, see `prepared_small`.)
            if cfg!(feature = "kernels-small") {
                0
            } else if I64_STEPS {
                ((1u32 << right as u32) >> 1) as i32
            } else {
                (1u32 << right as u32).wrapping_sub(1) as i32
            },
        ];
        n += 1;
    }
    n
}

/// [`requantize_row`] with the records prepared by [`prepare`] (the same
/// results, proptested): `out[c]` for the channels of `prep`. Each record
/// carries the rounding nudge `2^right / 2` of its shift (`prepare` fills the
/// fourth word), so a value costs one 64-bit product and a few branch-free
/// 64-bit operations (every saturation a clamp, see `prepared_with`).
pub fn requantize_row_prepared(
    acc: &[i32],
    prep: &[Prepared],
    act: Activation,
    zp_out: i8,
    out: &mut [i8],
) {
    // `kernels-small`: one loop for every activation (code size, docs/size.md).
    #[cfg(feature = "kernels-small")]
    prepared_i32(acc, prep, zp_out, out, |a| activate(a, act));
    #[cfg(all(not(feature = "kernels-small"), not(target_pointer_width = "64")))]
    // (A per-row scan for records with a left shift cost more than the
    // branch it saves per value.)
    match act {
        Activation::None => prepared_i32_fast::<true>(acc, prep, zp_out, out, |a| a),
        Activation::Relu => prepared_i32_fast::<true>(acc, prep, zp_out, out, |a| a.max(0)),
        Activation::LeakyRelu { .. } => prepared_i32(acc, prep, zp_out, out, |a| activate(a, act)),
    }
    #[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
    {
        // Records without a left shift (every multiplier below 1.0, the
        // usual case) skip that step.
        let left = prep.iter().any(|p| p[2] & 0x1F != 0);
        match (act, left) {
            (Activation::None, true) => {
                prepared_with::<true>(acc, prep, zp_out, out, |s| s.clamp(I32_MIN, I32_MAX))
            }
            (Activation::None, false) => {
                prepared_with::<false>(acc, prep, zp_out, out, |s| s.clamp(I32_MIN, I32_MAX))
            }
            (Activation::Relu, true) => {
                prepared_with::<true>(acc, prep, zp_out, out, |s| s.clamp(0, I32_MAX))
            }
            (Activation::Relu, false) => {
                prepared_with::<false>(acc, prep, zp_out, out, |s| s.clamp(0, I32_MAX))
            }
            (Activation::LeakyRelu { .. }, _) => {
                prepared_with::<true>(acc, prep, zp_out, out, |s| {
                    i64::from(activate(clamp_i32(s), act))
                })
            }
        }
    }
}

/// Whether [`requantize_row_prepared`] runs [`prepared_with`] (64-bit hosts
/// without `kernels-small`), whose records carry `2^right / 2`, or
/// [`prepared_i32`], whose records carry the mask `2^right − 1` (0 with
/// `kernels-small`, which derives it per value).
const I64_STEPS: bool = cfg!(all(
    not(feature = "kernels-small"),
    target_pointer_width = "64"
));

/// [`requantize_row_prepared`] on 32-bit targets and with `kernels-small`:
/// `i32` saturating steps and TFLite's remainder-against-threshold rounding,
/// fewer instructions than 64-bit steps there (the emulated Cortex-M4); the
/// same values as [`prepared_with`] (both proptested against
/// [`requantize_row_ref`]).
#[cfg(any(feature = "kernels-small", not(target_pointer_width = "64")))]
#[inline(always)]
fn prepared_i32(
    acc: &[i32],
    prep: &[Prepared],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i32) -> i32,
) {
    let zp = i32::from(zp_out);
    for ((o, &a), p) in out.iter_mut().zip(acc).zip(prep) {
        let [bias, mult, lr, mask] = *p;
        // `prepare` keeps left ≤ 30 and right ≤ 31; the masks keep the
        // shifts in range for any record.
        let (left, right) = ((lr & 0x1F) as u32, ((lr >> 8) & 0x1F) as u32);
        let mask = if cfg!(feature = "kernels-small") {
            (1u32 << right).wrapping_sub(1) as i32
        } else {
            mask
        };
        let x = act(a.saturating_add(bias));
        let xl = if left == 0 {
            x
        } else {
            x.saturating_mul(1i32 << left.min(30))
        };
        let ab = i64::from(xl) * i64::from(mult);
        // |ab| ≤ 2^62; the one high half above i32::MAX is 2^31.
        let hm = ((ab + (1i64 << 30)) >> 31).min(i64::from(i32::MAX)) as i32;
        let threshold = (mask >> 1) + i32::from(hm < 0);
        let v = (hm >> right) + i32::from((hm & mask) > threshold);
        *o = saturate_i8(v.saturating_add(zp));
    }
}

/// [`prepared_i32`] in fewer steps on 32-bit targets (the same values,
/// proptested): the left shift left out when no record has one (`LEFT =
/// false`); the doubling high multiply's saturation (only `2^62 + 2^30 ≥ 2^62`,
/// i.e. `a = mult = i32::MIN`) read from the high word of the 64-bit sum, and
/// `hm` assembled from its two words; `sat8(sat32(v + zp))` as
/// `sat8(clamp(v, −512, 511) + zp)` (equal: beyond ±512, `v + zp` is beyond
/// the `i8` range on the same side, with or without the `i32` saturation).
#[cfg(any(
    test,
    all(not(feature = "kernels-small"), not(target_pointer_width = "64"))
))]
#[inline(always)]
fn prepared_i32_fast<const LEFT: bool>(
    acc: &[i32],
    prep: &[Prepared],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i32) -> i32,
) {
    let zp = i32::from(zp_out);
    for ((o, &a), p) in out.iter_mut().zip(acc).zip(prep) {
        let [bias, mult, lr, mask] = *p;
        let (left, right) = ((lr & 0x1F) as u32, ((lr >> 8) & 0x1F) as u32);
        let x = act(a.saturating_add(bias));
        let xl = if LEFT && left != 0 {
            x.saturating_mul(1i32 << left.min(30))
        } else {
            x
        };
        // |ab| ≤ 2^62: no overflow adding 2^30.
        let s = i64::from(xl) * i64::from(mult) + (1i64 << 30);
        let (hi, lo) = ((s >> 32) as i32, s as u32);
        // s >> 31 = 2·hi + (lo >> 31), above i32::MAX exactly when hi ≥ 2^30.
        let hm = if hi >= 1 << 30 {
            i32::MAX
        } else {
            (hi << 1) | (lo >> 31) as i32
        };
        let threshold = (mask >> 1) + i32::from(hm < 0);
        let v = (hm >> right) + i32::from((hm & mask) > threshold);
        *o = saturate_i8(v.clamp(-512, 511) + zp);
    }
}

/// `i32::MIN` and `i32::MAX` as `i64`.
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
const I32_MIN: i64 = i32::MIN as i64;
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
const I32_MAX: i64 = i32::MAX as i64;

/// `s` saturated to `i32`.
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
#[inline(always)]
fn clamp_i32(s: i64) -> i32 {
    s.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// [`requantize_row_prepared`] with the activation `act`, applied to the
/// clamped sum `acc + bias` given in `i64` (`act` maps `[i32::MIN, i32::MAX]`
/// into itself).
///
/// Every step of the reference is done in `i64`, where nothing can overflow,
/// with its `i32` saturation as a clamp (`sat8(sat32(v + zp))` is
/// `clamp(v + zp, −128, 127)`), and TFLite's rounding divide by `2^right`
/// (remainder against a threshold) as `(hm + nudge) >> right`: for `hm ≥ 0`
/// it rounds half up, `nudge = 2^right / 2`; for `hm < 0` half away from
/// zero, `nudge = 2^right / 2 − 1` (`0` when `right = 0`).
///
/// `LEFT = false` only for records whose left shift is 0 (the step is then
/// the identity and is left out).
#[cfg(all(not(feature = "kernels-small"), target_pointer_width = "64"))]
#[inline(always)]
fn prepared_with<const LEFT: bool>(
    acc: &[i32],
    prep: &[Prepared],
    zp_out: i8,
    out: &mut [i8],
    act: impl Fn(i64) -> i64,
) {
    let zp = i64::from(zp_out);
    let (lo, hi) = (i64::from(i32::MIN), i64::from(i32::MAX));
    for ((o, &a), p) in out.iter_mut().zip(acc).zip(prep) {
        let [bias, mult, lr, half] = *p;
        // `prepare` keeps left ≤ 30 and right ≤ 31; the masks keep the
        // shifts in range for any record.
        let (left, right) = ((lr & 0x1F) as u32, ((lr >> 8) & 0x1F) as u32);
        let half = i64::from(half);
        let x = act(i64::from(a) + i64::from(bias));
        // |x| ≤ 2^31, left ≤ 30: no overflow before the clamp.
        let xl = if LEFT {
            (x << left.min(30)).clamp(lo, hi)
        } else {
            x
        };
        let ab = xl * i64::from(mult);
        // |ab| ≤ 2^62; the one high half above i32::MAX is 2^31.
        let hm = ((ab + (1i64 << 30)) >> 31).min(hi);
        let nudge = if hm < 0 {
            half - i64::from(half > 0)
        } else {
            half
        };
        let v = (hm + nudge) >> right;
        *o = (v + zp).clamp(-128, 127) as i8;
    }
}

/// The reference form of [`requantize_row`]: one [`requantize`] and
/// [`activate`] per channel, the definition the fast version is tested against.
pub fn requantize_row_ref(acc: &[i32], params: &[u8], act: Activation, zp_out: i8, out: &mut [i8]) {
    match params_form(params.len(), out.len()) {
        Some(ParamsForm::Compact) => {
            let split = params.len().saturating_sub(8);
            let biases = params.get(..split).unwrap_or(&[]);
            let (mult, shift) = shared_rescale(params.get(split..).unwrap_or(&[]));
            for ((o, &a), b) in out.iter_mut().zip(acc).zip(biases.chunks_exact(4)) {
                let bias = match b {
                    [b0, b1, b2, b3] => i32::from_le_bytes([*b0, *b1, *b2, *b3]),
                    _ => 0,
                };
                *o = requantize(activate(a.saturating_add(bias), act), mult, shift, zp_out);
            }
        }
        _ => {
            for ((o, &a), rec) in out.iter_mut().zip(acc).zip(params.chunks_exact(12)) {
                let (bias, mult, shift) = record(rec);
                *o = requantize(activate(a.saturating_add(bias), act), mult, shift, zp_out);
            }
        }
    }
}

/// Decodes the shared `(mult, shift)` pair (8 bytes, little endian) of a
/// compact [`crate::format::ChannelParams`] section (zeros if short).
#[inline]
pub fn shared_rescale(rec: &[u8]) -> (i32, i32) {
    match rec {
        [m0, m1, m2, m3, s0, s1, s2, s3, ..] => (
            i32::from_le_bytes([*m0, *m1, *m2, *m3]),
            i32::from_le_bytes([*s0, *s1, *s2, *s3]),
        ),
        _ => (0, 0),
    }
}

/// Decodes one 12-byte little-endian `(bias, mult, shift)` record (zeros if short).
#[inline]
pub fn record(rec: &[u8]) -> (i32, i32, i32) {
    match rec {
        [b0, b1, b2, b3, m0, m1, m2, m3, s0, s1, s2, s3, ..] => (
            i32::from_le_bytes([*b0, *b1, *b2, *b3]),
            i32::from_le_bytes([*m0, *m1, *m2, *m3]),
            i32::from_le_bytes([*s0, *s1, *s2, *s3]),
        ),
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations() {
        assert_eq!(activate(-5, Activation::Relu), 0);
        assert_eq!(activate(5, Activation::Relu), 5);
        // alpha = 0.25: -5 · 0.25 = -1.25 → -1; -6 · 0.25 = -1.5 → -2 (half away).
        let leaky = Activation::LeakyRelu { alpha_q16: 16384 };
        assert_eq!(activate(-5, leaky), -1);
        assert_eq!(activate(-6, leaky), -2);
        assert_eq!(activate(9, leaky), 9);
        assert_eq!(activate(-9, Activation::None), -9);
    }

    #[test]
    fn record_matches_channel_record() {
        let mut params = [0u8; 36];
        for (i, b) in params.iter_mut().enumerate() {
            *b = (i * 29 + 7) as u8;
        }
        for c in 0..3 {
            assert_eq!(record(&params[c * 12..]), channel_record(&params, c));
        }
        assert_eq!(record(&params[..11]), (0, 0, 0));
    }

    fn params_strategy() -> impl proptest::strategy::Strategy<Value = (Vec<i32>, Vec<u8>, bool)> {
        use proptest::prelude::*;
        (1usize..20, any::<bool>())
            .prop_flat_map(|(n, compact)| {
                let words = if compact { n + 2 } else { 3 * n };
                (
                    proptest::collection::vec(any::<i32>(), n),
                    proptest::collection::vec(
                        prop_oneof![
                            any::<i32>(),
                            -40i32..40,
                            (1i32 << 30)..=i32::MAX,
                            Just(i32::MIN),
                            Just(i32::MAX)
                        ],
                        words,
                    ),
                    Just(compact),
                )
            })
            .prop_map(|(acc, words, compact)| {
                let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                (acc, bytes, compact)
            })
    }

    proptest::proptest! {
        #[test]
        fn requantize_row_matches_reference(
            (acc, params, _compact) in params_strategy(),
            act in 0u8..4,
            alpha in proptest::num::i32::ANY,
            zp in proptest::num::i8::ANY,
            small in proptest::bool::ANY,
            cut in 0usize..3,
        ) {
            let act = match act {
                0 => Activation::None,
                1 => Activation::Relu,
                2 => Activation::LeakyRelu { alpha_q16: alpha },
                _ => Activation::LeakyRelu { alpha_q16: 6554 },
            };
            // Small accumulators (the usual case) as well as arbitrary ones.
            let acc: Vec<i32> = if small { acc.iter().map(|a| a % 100_000).collect() } else { acc };
            // A short params section too (channels without records untouched).
            let params = &params[..params.len().saturating_sub(cut * 5)];
            let mut want = vec![7i8; acc.len()];
            let mut got = vec![7i8; acc.len()];
            requantize_row_ref(&acc, params, act, zp, &mut want);
            requantize_row(&acc, params, act, zp, &mut got);
            proptest::prop_assert_eq!(&got, &want);
            let mut prep = vec![[0i32; 4]; acc.len()];
            let n = prepare(params, acc.len(), &mut prep);
            let mut got2 = vec![7i8; acc.len()];
            requantize_row_prepared(&acc, &prep[..n], act, zp, &mut got2);
            proptest::prop_assert_eq!(&got2, &want);
            // The 32-bit form, with its records' mask `2^right − 1` (this
            // host's `prepare` stores `2^right / 2`), with and without the
            // left-shift step (the latter only when no record shifts left).
            let masked: Vec<Prepared> = prep[..n]
                .iter()
                .map(|&[b, m, lr, _]| [b, m, lr, ((1u32 << ((lr >> 8) & 0x1F)) - 1) as i32])
                .collect();
            let left = masked.iter().any(|p| p[2] & 0x1F != 0);
            let fast = |act: &dyn Fn(i32) -> i32, out: &mut [i8]| {
                if left {
                    prepared_i32_fast::<true>(&acc, &masked, zp, out, act)
                } else {
                    prepared_i32_fast::<false>(&acc, &masked, zp, out, act)
                }
            };
            let mut got3 = vec![7i8; acc.len()];
            fast(&|a| activate(a, act), &mut got3);
            proptest::prop_assert_eq!(&got3, &want);
            if !left {
                let mut got4 = vec![7i8; acc.len()];
                prepared_i32_fast::<true>(&acc, &masked, zp, &mut got4, |a| activate(a, act));
                proptest::prop_assert_eq!(&got4, &want);
            }
        }
    }

    #[test]
    fn requantize_scales_and_saturates() {
        let (m, s) = crate::quant::quantize_multiplier(0.5);
        assert_eq!(requantize(7, m, s, 0), 4);
        assert_eq!(requantize(-6, m, s, 0), -3);
        assert_eq!(requantize(-6, m, s, -2), -5);
        assert_eq!(requantize(1000, m, s, 3), 127);
        assert_eq!(requantize(-1000, m, s, 3), -128);
    }
}
