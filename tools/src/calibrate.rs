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
//!
//! Degenerate calibration data is caught here ([`check_ranges`]): a value
//! that is not finite, or a range so wide that its int8 step does not fit an
//! `f32` (the model would silently saturate), is an error naming the tensor;
//! values beyond ±[`LARGE`] are a warning (they work, but usually mean
//! calibration graphs that are not normalized as the training data was).

use std::collections::HashMap;

use anyhow::{bail, Result};

pub use crate::ops::common::{activation_quant, dequantize_value, quantize_value, Range};
pub use crate::range::{
    argmax_range, mse_range, range_of, ranges, Method, OutputRange, MSE_MAX_POINTS, MSE_STEPS,
};
use crate::reference::{self, Values};
use crate::spec::Spec;
use crate::st::Graphs;

/// Calibrated ranges, plus notes on how the output ranges were chosen.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Range of every spec tensor.
    pub ranges: HashMap<String, Range>,
    /// Human-readable notes (one per output with `OutputRange::Argmax`).
    pub notes: Vec<String>,
    /// Suspicious ranges ([`check_ranges`]).
    pub warnings: Vec<String>,
}

/// Values beyond ±`LARGE` in a calibrated range draw a warning.
pub const LARGE: f64 = 1e9;

/// Checks calibrated ranges: an error for a range whose int8 step is not a
/// finite `f32` (or a non-finite end), a warning (returned) listing the
/// tensors whose range reaches beyond ±[`LARGE`].
pub fn check_ranges(ranges: &HashMap<String, Range>) -> Result<Vec<String>> {
    let mut names: Vec<&String> = ranges.keys().collect();
    names.sort();
    let mut large = Vec::new();
    for name in names {
        let r = ranges[name];
        let (lo, hi) = (r.lo.min(0.0), r.hi.max(0.0));
        let step = (hi - lo) / 255.0;
        if !lo.is_finite() || !hi.is_finite() || !(step as f32).is_finite() {
            bail!(
                "calibration: tensor '{name}' has range [{:e}, {:e}], whose int8 step {step:e} does not fit an f32; \
                 the calibration graphs hold values far beyond what a trained model sees (check that their features are normalized as in training)",
                r.lo,
                r.hi
            );
        }
        if lo < -LARGE || hi > LARGE {
            large.push(format!("'{name}' [{:.3e}, {:.3e}]", r.lo, r.hi));
        }
    }
    Ok(if large.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "calibration: {} tensor(s) reach beyond ±{LARGE:e}: {}; values this large usually mean calibration graphs that are not normalized as the training data was (the model is quantized to these ranges, so typical inputs may all round to a few int8 steps)",
            large.len(),
            large.join(", ")
        )]
    })
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
            // An op that fixes its output quantization (an activation, max
            // pooling, a normalised SAGE, softmax, pair concatenation) keeps it.
            let probe = tinygnn::format::TensorDesc {
                kind: tinygnn::format::TensorKind::Node,
                channels: 1,
                scale: 1.0,
                zero_point: 0,
            };
            let own_scale = f.kind.fixed_output(&probe).is_none();
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
    let warnings = check_ranges(&ranges)?;
    Ok(Calibration {
        ranges,
        notes,
        warnings,
    })
}

/// Runs the reference and checks every value is finite (on at least one node).
fn calibrate_values(spec: &Spec, g: &Graphs, progress: impl FnMut(usize)) -> Result<Values> {
    if g.num_nodes == 0 {
        bail!("calibration: the calibration graphs have no nodes; calibration needs at least one node to choose the int8 ranges");
    }
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

/// Calibration of a recurrent spec on a sequence (`steps`, from the zero
/// state, [`reference::run_sequence`]): every tensor's range over all steps'
/// values; the state input and its next value get one joint range (the
/// union of their values), so both are quantized alike and the device
/// carries the int8 state from step to step without a rescale.
pub fn calibrate_sequence(spec: &Spec, steps: &[Graphs], method: Method) -> Result<Calibration> {
    if spec.states.is_empty() {
        bail!("the model has no state: it is not a recurrent cell");
    }
    if steps.iter().all(|g| g.num_nodes == 0) {
        bail!("calibration: the calibration sequence has no nodes; calibration needs at least one node to choose the int8 ranges");
    }
    let per_step = reference::run_sequence(spec, steps)?;
    let mut all: Values = HashMap::new();
    for vals in per_step {
        for (name, t) in vals {
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                bail!(
                    "calibration: tensor '{name}' has a non-finite value at row {}, channel {}",
                    i / t.channels.max(1),
                    i % t.channels.max(1)
                );
            }
            match all.get_mut(&name) {
                Some(acc) => {
                    acc.data.extend_from_slice(&t.data);
                    acc.rows += t.rows;
                }
                None => {
                    all.insert(name, t);
                }
            }
        }
    }
    let mut ranges = ranges(&all, method);
    let mut notes = Vec::new();
    for st in &spec.states {
        let mut joint = all[&st.name].data.clone();
        joint.extend_from_slice(&all[&st.next].data);
        let r = range_of(&joint, method);
        ranges.insert(st.name.clone(), r);
        ranges.insert(st.next.clone(), r);
        notes.push(format!(
            "state '{}' and its next value '{}': one range [{:.4}, {:.4}] over {} steps",
            st.name,
            st.next,
            r.lo,
            r.hi,
            steps.len()
        ));
    }
    let warnings = check_ranges(&ranges)?;
    Ok(Calibration {
        ranges,
        notes,
        warnings,
    })
}
