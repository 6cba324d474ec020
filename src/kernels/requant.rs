//! Fused activation and requantization of `i32` accumulators, as defined in
//! [`crate::format`]'s conventions:
//! `out = saturate_i8(requant(act(acc + bias), mult, shift) + zp_out)`.

use crate::format::Activation;
use crate::quant::{multiply_by_quantized_multiplier, round_shift_i64_to_i32, saturate_i8};

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
    match crate::format::params_form(params.len(), out.len()) {
        Some(crate::format::ParamsForm::Compact) => {
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
            assert_eq!(record(&params[c * 12..]), crate::channel_record(&params, c));
        }
        assert_eq!(record(&params[..11]), (0, 0, 0));
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
