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
/// `(bias, mult, shift)` read from the 12-byte [`crate::format::ChannelParams`] records.
/// The bias is added with `i32` saturation.
pub fn requantize_row(acc: &[i32], params: &[u8], act: Activation, zp_out: i8, out: &mut [i8]) {
    for (c, (o, &a)) in out.iter_mut().zip(acc).enumerate() {
        let (bias, mult, shift) = crate::channel_record(params, c);
        *o = requantize(activate(a.saturating_add(bias), act), mult, shift, zp_out);
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
    fn requantize_scales_and_saturates() {
        let (m, s) = crate::quant::quantize_multiplier(0.5);
        assert_eq!(requantize(7, m, s, 0), 4);
        assert_eq!(requantize(-6, m, s, 0), -3);
        assert_eq!(requantize(-6, m, s, -2), -5);
        assert_eq!(requantize(1000, m, s, 3), 127);
        assert_eq!(requantize(-1000, m, s, 3), -128);
    }
}
