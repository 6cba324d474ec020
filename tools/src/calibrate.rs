//! Calibration: run the float reference on calibration graphs and record the
//! range of every spec tensor (the input included).
//!
//! * `minmax` (default): `[min, max]` of all values.
//! * `percentile:P` (0 < P ≤ 100): `[q(1 − P/100), q(P/100)]` where `q` is the
//!   linearly interpolated quantile of the tensor's values; clips the rare
//!   extreme values (high-degree nodes) that would otherwise set the range.
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
}

impl FromStr for Method {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Method> {
        if s == "minmax" {
            return Ok(Method::MinMax);
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
        bail!("unknown calibration '{s}' (use 'minmax' or 'percentile:P', e.g. percentile:99.99)")
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
    }
}

/// Ranges of every tensor of `values`.
pub fn ranges(values: &Values, method: Method) -> HashMap<String, Range> {
    values
        .iter()
        .map(|(k, t)| (k.clone(), range_of(&t.data, method)))
        .collect()
}

/// Runs the reference on the calibration batch and returns every tensor's range.
pub fn calibrate(
    spec: &Spec,
    g: &Graphs,
    method: Method,
    progress: impl FnMut(usize),
) -> Result<HashMap<String, Range>> {
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
    Ok(ranges(&values, method))
}
