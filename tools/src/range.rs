//! Range estimation: the real range a tensor's int8 parameters cover,
//! chosen from its calibration values by min/max, a percentile or the
//! quantization MSE, and the argmax-aware ranges of model outputs. The
//! calibration run itself is [`crate::calibrate`].

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};

use crate::ops::common::{
    activation_quant, activation_quant4, dequantize_value, quantize_value, Range, Tensor, Values,
};

/// How ranges are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Observed minimum and maximum.
    MinMax,
    /// Percentile `P` of the values (and `100 − P` for the low end).
    Percentile(f64),
    /// The clipping range with the smallest quantization mean squared error.
    Mse,
}

impl FromStr for Method {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Method> {
        if s == "minmax" {
            return Ok(Method::MinMax);
        }
        if s == "mse" {
            return Ok(Method::Mse);
        }
        if let Some(p) = s.strip_prefix("percentile:") {
            let p: f64 = p
                .parse()
                .map_err(|_| anyhow!("calibration '{s}': '{p}' is not a number"))?;
            if !(p > 50.0 && p <= 100.0) {
                bail!("calibration '{s}': the percentile must be in (50, 100]");
            }
            return Ok(Method::Percentile(p));
        }
        bail!("unknown calibration '{s}' (use 'minmax', 'percentile:P', e.g. percentile:99.99, or 'mse')")
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] + (sorted[j] - sorted[i]) * frac
}

/// The range of `values` under `method`.
pub fn range_of(values: &[f64], method: Method) -> Range {
    match method {
        Method::MinMax => {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if values.is_empty() {
                Range { lo: 0.0, hi: 0.0 }
            } else {
                Range { lo, hi }
            }
        }
        Method::Percentile(p) => {
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            Range {
                lo: quantile(&v, 1.0 - p / 100.0),
                hi: quantile(&v, p / 100.0),
            }
        }
        Method::Mse => mse_range(values),
    }
}

/// Candidates per end of the range in [`mse_range`]'s search.
pub const MSE_STEPS: usize = 256;

/// Distinct values kept exactly by [`mse_range`]; above this the values are
/// summarised by a histogram of this many bins (each represented by the mean
/// of its values; the bin width is 1/32 of the finest step searched).
pub const MSE_MAX_POINTS: usize = 8192;

/// Values as `(value, count)` points: exact when there are few distinct
/// values, else a histogram with bin means.
fn mse_points(values: &[f64], lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for x in v {
        match pts.last_mut() {
            Some(p) if p.0 == x => p.1 += 1.0,
            _ => pts.push((x, 1.0)),
        }
        if pts.len() > MSE_MAX_POINTS {
            break;
        }
    }
    if pts.len() <= MSE_MAX_POINTS {
        return pts;
    }
    let bins = MSE_MAX_POINTS;
    let width = (hi - lo) / bins as f64;
    let mut sum = vec![0.0f64; bins];
    let mut cnt = vec![0.0f64; bins];
    for &x in values {
        let b = (((x - lo) / width) as usize).min(bins - 1);
        sum[b] += x;
        cnt[b] += 1.0;
    }
    sum.iter()
        .zip(&cnt)
        .filter(|(_, &c)| c > 0.0)
        .map(|(&s, &c)| (s / c, c))
        .collect()
}

/// Sum of squared quantization errors of `pts` with the int8 (`bits` 8) or
/// int4 (`bits` 4) parameters the device derives from range `r`.
fn quant_sse(pts: &[(f64, f64)], r: Range, bits: u32) -> f64 {
    let (scale, zp) = if bits == 4 {
        activation_quant4(r)
    } else {
        activation_quant(r)
    };
    pts.iter()
        .map(|&(x, n)| {
            let mut q = quantize_value(x, scale, zp);
            if bits == 4 {
                q = q.clamp(-8, 7);
            }
            let e = x - dequantize_value(q, scale, zp);
            n * e * e
        })
        .sum()
}

/// The range minimising the quantization MSE of `values`. Candidates are
/// `hi = max·k/MSE_STEPS` and `lo = min·j/MSE_STEPS` (`k, j = 1..=MSE_STEPS`;
/// an end on the other side of 0 stays where it is, as quantization widens the
/// range to 0 anyway). The search is a coordinate descent from `[min, max]`:
/// the best `hi` for the current `lo`, then the best `lo` for that `hi`,
/// repeated until neither moves (at most 8 rounds). Each candidate is scored
/// exactly with the device's quantization (`activation_quant`, round half
/// away from zero, saturation); a narrower range must be strictly better, so
/// ties keep the wider one.
pub fn mse_range(values: &[f64]) -> Range {
    mse_range_bits(values, 8)
}

/// [`mse_range`] for `bits`-bit activations (8, or 4: int4 activations,
/// scored with the int4 parameters and saturation to −8..=7).
pub fn mse_range_bits(values: &[f64], bits: u32) -> Range {
    let full = range_of(values, Method::MinMax);
    if values.is_empty() || (full.lo >= 0.0 && full.hi <= 0.0) {
        return full;
    }
    let pts = mse_points(values, full.lo, full.hi);
    let mut best = full;
    let mut best_sse = quant_sse(&pts, best, bits);
    for _ in 0..8 {
        let before = best;
        for side in [true, false] {
            let end = if side { full.hi } else { full.lo };
            if (side && end <= 0.0) || (!side && end >= 0.0) {
                continue;
            }
            for k in (1..=MSE_STEPS).rev() {
                let v = end * k as f64 / MSE_STEPS as f64;
                let cand = if side {
                    Range { lo: best.lo, hi: v }
                } else {
                    Range { lo: v, hi: best.hi }
                };
                let sse = quant_sse(&pts, cand, bits);
                if sse < best_sse {
                    best_sse = sse;
                    best = cand;
                }
            }
        }
        if best == before {
            break;
        }
    }
    best
}

/// The range of `values` under `method` for an int4 activation tensor:
/// [`Method::Mse`] scores the clipping with int4 quantization
/// ([`mse_range_bits`]); min/max and percentiles do not depend on the width.
pub fn range_of4(values: &[f64], method: Method) -> Range {
    match method {
        Method::Mse => mse_range_bits(values, 4),
        m => range_of(values, m),
    }
}

/// Ranges of every tensor of `values`.
pub fn ranges(values: &Values, method: Method) -> HashMap<String, Range> {
    values
        .iter()
        .map(|(k, t)| (k.clone(), range_of(&t.data, method)))
        .collect()
}

/// How the range of a model output tensor is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputRange {
    /// Like every other tensor: the range of all its values.
    #[default]
    Full,
    /// For classification heads: only the values that can decide a row's
    /// argmax are kept in range, see [`argmax_range`]; losing values below
    /// every row's runner-up saturate at −128.
    Argmax,
    /// Narrower still: the range of the rows' second-largest values (plus one
    /// step each side); winning values above it saturate at 127 too.
    Top2,
}

impl FromStr for OutputRange {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<OutputRange> {
        match s {
            "full" => Ok(OutputRange::Full),
            "argmax" => Ok(OutputRange::Argmax),
            "top2" => Ok(OutputRange::Top2),
            _ => bail!("unknown output range '{s}' (use 'full', 'argmax' or 'top2')"),
        }
    }
}

/// The largest and second-largest value of a row (the second is the largest
/// when the row has one channel).
fn top2(row: &[f64]) -> (f64, f64) {
    let (mut a, mut b) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &v in row {
        if v > a {
            b = a;
            a = v;
        } else if v > b {
            b = v;
        }
    }
    if b == f64::NEG_INFINITY {
        b = a;
    }
    (a, b)
}

/// Output range for argmax classification. `lo` is the smallest value of any
/// row's second-best channel minus one quantization step of the resulting range
/// (the step is taken over `[min(lo, 0), max(hi, 0)]`, as quantization widens
/// to 0). `hi` is the largest value of any row's best channel, or, with `top2`,
/// the largest second-best value plus one step: a row's best value above it
/// saturates at 127 but still wins, since its second value stays at least a step
/// below. With `percentile:P` the `P`-quantile (and the `(100 − P)`-quantile for
/// `lo`) of those per-row values is used instead of the extremes (`mse` uses
/// the extremes, like `minmax`). Values outside
/// the range saturate, so their dequantized values are clipped.
pub fn argmax_range(t: &Tensor, method: Method, top2_only: bool) -> Range {
    if t.rows == 0 || t.channels == 0 {
        return Range { lo: 0.0, hi: 0.0 };
    }
    // `mse` targets the round-trip error of all values; the per-row extremes
    // used here are already the values that decide the argmax, so keep them.
    let method = if method == Method::Mse {
        Method::MinMax
    } else {
        method
    };
    let (firsts, seconds): (Vec<f64>, Vec<f64>) = (0..t.rows).map(|r| top2(t.row(r))).unzip();
    let second = range_of(&seconds, method);
    let lo = second.lo;
    let hi = if top2_only {
        second.hi
    } else {
        range_of(&firsts, method).hi
    };
    let step = (hi.max(0.0) - lo.min(0.0)) / 255.0;
    Range {
        lo: lo - step,
        hi: if top2_only { hi + step } else { hi },
    }
}
