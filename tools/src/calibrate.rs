//! Calibration: run the float reference on calibration graphs and record the
//! range of every spec tensor (the input included).
//!
//! * `minmax`: `[min, max]` of all values.
//! * `percentile:P` (0 < P ≤ 100): `[q(1 − P/100), q(P/100)]` where `q` is the
//!   linearly interpolated quantile of the tensor's values; clips the rare
//!   extreme values (high-degree nodes) that would otherwise set the range.
//! * `mse`: the clipping range `[lo, hi]` that minimises the mean squared
//!   error between the tensor's values and their int8 quantize–dequantize
//!   round trip (the device's own scheme, [`crate::quantize::activation_quant`]),
//!   found by a search over clipping ranges, see [`mse_range`]. The default of
//!   `tinygnn convert`, chosen by measurement (`scripts/calibration-report.py`,
//!   docs/quantization.md).
//!
//! Ranges are always widened to include 0 (so zero is exactly representable)
//! by [`crate::quantize`].

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};

use crate::reference::{self, Values};
use crate::spec::Spec;
use crate::st::Graphs;

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

/// A calibrated real range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Low end.
    pub lo: f64,
    /// High end.
    pub hi: f64,
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

/// Sum of squared quantization errors of `pts` with the int8 parameters the
/// device derives from range `r`.
fn quant_sse(pts: &[(f64, f64)], r: Range) -> f64 {
    let (scale, zp) = activation_quant(r);
    pts.iter()
        .map(|&(x, n)| {
            let q = quantize_value(x, scale, zp);
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
    let full = range_of(values, Method::MinMax);
    if values.is_empty() || (full.lo >= 0.0 && full.hi <= 0.0) {
        return full;
    }
    let pts = mse_points(values, full.lo, full.hi);
    let mut best = full;
    let mut best_sse = quant_sse(&pts, best);
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
                let sse = quant_sse(&pts, cand);
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
pub fn argmax_range(t: &reference::Tensor, method: Method, top2_only: bool) -> Range {
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

/// Calibrated ranges, plus notes on how the output ranges were chosen.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Range of every spec tensor.
    pub ranges: HashMap<String, Range>,
    /// Human-readable notes (one per output with `OutputRange::Argmax`).
    pub notes: Vec<String>,
}

/// Runs the reference on the calibration batch and returns every tensor's range.
pub fn calibrate(
    spec: &Spec,
    g: &Graphs,
    method: Method,
    progress: impl FnMut(usize),
) -> Result<HashMap<String, Range>> {
    Ok(calibrate_outputs(spec, g, method, OutputRange::Full, progress)?.ranges)
}

/// Like [`calibrate`], choosing the ranges of the model outputs by `output`.
/// With [`OutputRange::Argmax`] an output keeps its full range when it has
/// fewer than 2 channels, is read by another op, or its device op cannot take
/// its own output scale (standalone activation, max pool, normalized SAGE).
pub fn calibrate_outputs(
    spec: &Spec,
    g: &Graphs,
    method: Method,
    output: OutputRange,
    progress: impl FnMut(usize),
) -> Result<Calibration> {
    let values = calibrate_values(spec, g, progress)?;
    let mut ranges = ranges(&values, method);
    let mut notes = Vec::new();
    if output != OutputRange::Full {
        let fused = crate::fuse::fuse(spec)?;
        for name in &fused.outputs {
            let Some(f) = fused.ops.iter().find(|f| &f.name == name) else {
                continue;
            };
            let consumed = fused.ops.iter().any(|o| o.inputs.contains(name));
            let own_scale = !matches!(
                f.kind,
                crate::fuse::FKind::Act
                    | crate::fuse::FKind::Pool(crate::spec::PoolKind::Max)
                    | crate::fuse::FKind::Sage {
                        normalize: true,
                        ..
                    }
                    | crate::fuse::FKind::Softmax { log: false }
            );
            let t = &values[name];
            let full = ranges[name];
            if t.channels < 2 || consumed || !own_scale {
                notes.push(format!(
                    "output '{name}': full range [{:.4}, {:.4}] kept ({})",
                    full.lo,
                    full.hi,
                    if t.channels < 2 {
                        "fewer than 2 channels"
                    } else if consumed {
                        "it is read by another op"
                    } else {
                        "its device op inherits the input's scale"
                    }
                ));
                continue;
            }
            let r = argmax_range(t, method, output == OutputRange::Top2);
            // Quantization widens the range to include 0.
            let below = t.data.iter().filter(|&&v| v < r.lo.min(0.0)).count();
            let above = t.data.iter().filter(|&&v| v > r.hi.max(0.0)).count();
            notes.push(format!(
                "output '{name}': {} range [{:.4}, {:.4}] instead of [{:.4}, {:.4}]; \
                 {below} of {n} values (losing classes) lie below it and dequantize clipped to {:.4}; \
                 {above} of {n} (winning classes) lie above it and dequantize clipped to {:.4}",
                if output == OutputRange::Top2 {
                    "top2"
                } else {
                    "argmax"
                },
                r.lo,
                r.hi,
                full.lo,
                full.hi,
                r.lo.min(0.0),
                r.hi.max(0.0),
                n = t.data.len(),
            ));
            ranges.insert(name.clone(), r);
        }
    }
    Ok(Calibration { ranges, notes })
}

/// Runs the reference and checks every value is finite.
fn calibrate_values(spec: &Spec, g: &Graphs, progress: impl FnMut(usize)) -> Result<Values> {
    let values = reference::run(spec, g, progress)?;
    for (name, t) in &values {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            bail!(
                "calibration: tensor '{name}' has a non-finite value at row {}, channel {}",
                i / t.channels,
                i % t.channels
            );
        }
    }
    Ok(values)
}

/// Per-tensor asymmetric int8 parameters for a real range (widened to include 0).
pub fn activation_quant(r: Range) -> (f32, i8) {
    let lo = r.lo.min(0.0);
    let hi = r.hi.max(0.0);
    let mut scale = ((hi - lo) / 255.0) as f32;
    if !scale.is_finite() || scale < f32::MIN_POSITIVE * 256.0 {
        scale = 1.0 / 255.0;
    }
    let zp = (-128.0 - lo / scale as f64).round().clamp(-128.0, 127.0) as i8;
    (scale, zp)
}

/// `round(x / scale) + zp`, saturated (host-side quantization).
pub fn quantize_value(x: f64, scale: f32, zp: i8) -> i8 {
    ((x / scale as f64).round() + zp as f64).clamp(-128.0, 127.0) as i8
}

/// `scale · (q − zp)`.
pub fn dequantize_value(q: i8, scale: f32, zp: i8) -> f64 {
    scale as f64 * (q as i32 - zp as i32) as f64
}
