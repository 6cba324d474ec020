//! Mixed weight precision under a flash budget (`tinygnn convert --flash-budget`).
//!
//! Sensitivity of a layer = how much the model's output moves away from the
//! float reference, on the calibration graphs, when **only that layer** has
//! int4 weights and every other layer int8: first the fraction of rows whose
//! top-1 class differs from the float model's, then (ties) the mean absolute
//! error of the dequantized output divided by the float output's range. Both
//! are measured by running the converted model with the runtime itself.
//!
//! The search is greedy: start with every layer int8; while the file is larger
//! than the budget, switch the least sensitive remaining layer to int4; once
//! it fits, switch back to int8 every earlier choice (most sensitive first)
//! that the file can afford (a small layer switched early may save little).
//! If even all layers int4 do not fit, it fails and says by how much.

use std::collections::HashMap;

use crate::prec::Prec;
use anyhow::{anyhow, bail, Result};

use crate::calibrate::Range;
use crate::compare::compare;
use crate::quantize::{self, Capacity, Converted, WeightPlan, WeightScales};
use crate::reference::Tensor;
use crate::spec::Spec;
use crate::st::Graphs;
use crate::{reference, rt};

/// One layer's measured sensitivity to int4 weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    /// Fused op name.
    pub layer: String,
    /// Top-1 agreement with the float model when only this layer is int4.
    pub top1_agreement: f64,
    /// Mean |float − dequantized| of the output over the float output range.
    pub rel_mean_err: f64,
    /// File size with only this layer int4.
    pub bytes: usize,
}

/// The outcome of [`choose`].
#[derive(Debug, Clone)]
pub struct Choice {
    /// The converted model that fits.
    pub converted: Converted,
    /// The plan that produced it.
    pub plan: WeightPlan,
    /// Every layer's sensitivity, least sensitive first (empty when all-int8 fits).
    pub sensitivity: Vec<Sensitivity>,
    /// File size with every layer int8 and every layer int4.
    pub all_int8_bytes: usize,
    /// File size with every layer int4.
    pub all_int4_bytes: usize,
}

/// The float reference's first model output in `vals`, which the searches
/// score against.
pub fn float_output<'v>(spec: &Spec, vals: &'v reference::Values) -> Result<&'v Tensor> {
    let out = spec
        .outputs
        .first()
        .ok_or_else(|| anyhow!("the model has no output"))?;
    vals.get(out)
        .ok_or_else(|| anyhow!("the float reference did not produce '{out}'"))
}

/// Top-1 agreement and relative mean error of `c` against the float output `f` on `g`.
pub fn score(c: &Converted, f: &Tensor, g: &Graphs) -> Result<(f64, f64)> {
    let model = tinygnn::Model::from_bytes(&c.bytes).map_err(|e| anyhow!("{e}"))?;
    let q = rt::run_traced(&model, g, |_, _| {})?;
    let cmp = compare(f, &q)?;
    let rel = if cmp.float_range > 0.0 {
        cmp.mean_abs_err / cmp.float_range
    } else {
        cmp.mean_abs_err
    };
    Ok((cmp.top1_agreement, rel))
}

/// Picks per-layer weight precision so that the file has at most `budget`
/// bytes, switching the least sensitive layers (measured on `calib`) to int4;
/// `base` gives the int4 options (scales, rounding), its layer map is ignored.
pub fn choose(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    calib: &Graphs,
    budget: usize,
    base: &WeightPlan,
) -> Result<Choice> {
    let vals = reference::run(spec, calib, |_| {})?;
    let conv = |plan: &WeightPlan| {
        let plan = WeightPlan {
            int4_max_scale: base.int4_max_scale,
            int4_gpfq: base.int4_gpfq,
            int4_feedback: base.int4_feedback,
            int4_bias_correction: base.int4_bias_correction,
            int4_output_scale: base.int4_output_scale,
            int4_recalibrate: base.int4_recalibrate,
            act4: base.act4.clone(),
            ..plan.clone()
        };
        quantize::convert_plan_graphs(spec, ranges, cap, mode, &plan, Some(&vals), Some(calib))
    };
    let all8 = conv(&WeightPlan::all(Prec::I8))?;
    let all4 = conv(&WeightPlan::all(Prec::I4))?;
    let (b8, b4) = (all8.bytes.len(), all4.bytes.len());
    if b8 <= budget {
        return Ok(Choice {
            converted: all8,
            plan: WeightPlan::all(Prec::I8),
            sensitivity: Vec::new(),
            all_int8_bytes: b8,
            all_int4_bytes: b4,
        });
    }
    if b4 > budget {
        bail!(
            "--flash-budget {budget}: even all-int4 weights give {b4} bytes ({} over; all-int8: {b8} bytes)",
            b4 - budget
        );
    }
    let f = float_output(spec, &vals)?;
    let mut sens = Vec::new();
    for (layer, _) in &all8.layer_bits {
        let plan = WeightPlan {
            default: Some(Prec::I8),
            layers: vec![(layer.clone(), Prec::I4)],
            ..WeightPlan::default()
        };
        let c = conv(&plan)?;
        let (top1_agreement, rel_mean_err) = score(&c, f, calib)?;
        sens.push(Sensitivity {
            layer: layer.clone(),
            top1_agreement,
            rel_mean_err,
            bytes: c.bytes.len(),
        });
    }
    // Least sensitive first: highest agreement, then lowest error; ties by
    // the larger size saving (more bytes saved per unit of harm).
    sens.sort_by(|a, b| {
        b.top1_agreement
            .total_cmp(&a.top1_agreement)
            .then(a.rel_mean_err.total_cmp(&b.rel_mean_err))
            .then(a.bytes.cmp(&b.bytes))
    });
    let mut plan = WeightPlan::all(Prec::I8);
    for s in &sens {
        plan.layers.push((s.layer.clone(), Prec::I4));
        let mut c = conv(&plan)?;
        if c.bytes.len() <= budget {
            // Undo switches that the last one made unnecessary (a small layer
            // switched early saves little), most sensitive first.
            for i in (0..plan.layers.len().saturating_sub(1)).rev() {
                let mut trial = plan.clone();
                trial.layers.remove(i);
                let t = conv(&trial)?;
                if t.bytes.len() <= budget {
                    plan = trial;
                    c = t;
                }
            }
            return Ok(Choice {
                converted: c,
                plan,
                sensitivity: sens,
                all_int8_bytes: b8,
                all_int4_bytes: b4,
            });
        }
    }
    // Unreachable in practice (all layers int4 fit, checked above); converge anyway.
    Ok(Choice {
        converted: all4,
        plan: WeightPlan::all(Prec::I4),
        sensitivity: sens,
        all_int8_bytes: b8,
        all_int4_bytes: b4,
    })
}

/// One measured step of [`choose_avg`]: a layer at a lower precision alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Layer name (as `--weights` names it).
    pub layer: String,
    /// The precision it was measured at (every other layer int8).
    pub prec: Prec,
    /// Top-1 agreement with the float model on the calibration graphs.
    pub top1_agreement: f64,
    /// Mean |float − dequantized| of the output over the float output range.
    pub rel_mean_err: f64,
}

/// The outcome of [`choose_avg`].
#[derive(Debug, Clone)]
pub struct AvgChoice {
    /// The converted model that meets the target.
    pub converted: Converted,
    /// The plan that produced it (one entry per layer).
    pub plan: WeightPlan,
    /// Every measured step, least harmful first.
    pub steps: Vec<Step>,
    /// Average weight bits of the chosen model.
    pub avg_bits: f64,
}

/// One unit of an average-bits search: a whole layer, or some output
/// channels of one (the per-channel search, [`crate::channel_search`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Layer name (as `--weights` names it).
    pub layer: String,
    /// The channels (`None`: the whole layer).
    pub channels: Option<Vec<usize>>,
    /// Weights in the unit.
    pub weights: usize,
}

/// One unit lowered alone, as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitStep {
    /// Index of the unit.
    pub unit: usize,
    /// The precision it was measured at.
    pub prec: Prec,
    /// Bits per weight the converter stored for it at that precision (8 when
    /// the layer has no form at `prec`).
    pub bits: u32,
    /// Top-1 agreement with the float model on the calibration graphs.
    pub top1_agreement: f64,
    /// Mean |float − dequantized| of the output over the float output range.
    pub rel_mean_err: f64,
}

/// The precisions a unit may be lowered to, in order: int8 → int4 → int2.
const LADDER: [Prec; 3] = [Prec::I8, Prec::I4, Prec::I2];

fn rung(p: Prec) -> usize {
    LADDER.iter().position(|&x| x == p).unwrap_or(0)
}

/// Least harmful first: higher agreement, then lower error.
pub fn harm(a: &UnitStep, b: &UnitStep) -> std::cmp::Ordering {
    b.top1_agreement
        .total_cmp(&a.top1_agreement)
        .then(a.rel_mean_err.total_cmp(&b.rel_mean_err))
}

/// Average stored bits of the units at `precs` (weighted by weight count),
/// each unit's bits at a precision as its measured step stored them.
pub fn avg_bits(units: &[Unit], precs: &[Prec], steps: &[UnitStep]) -> f64 {
    let (mut bits, mut n) = (0.0, 0.0);
    for (i, (u, p)) in units.iter().zip(precs).enumerate() {
        let b = steps
            .iter()
            .find(|s| s.unit == i && s.prec == *p)
            .map_or(p.bits(), |s| s.bits);
        bits += f64::from(b) * u.weights as f64;
        n += u.weights as f64;
    }
    if n > 0.0 {
        bits / n
    } else {
        8.0
    }
}

/// The greedy of [`choose_avg`] over `units`, with `steps` sorted least
/// harmful first: from all int8, lower by one rung the unit whose next rung
/// harms least (ties: more weights) until [`avg_bits`] meets `target`; then
/// raise back by one rung every unit, most harmful step first, whose raise
/// still meets it. Fails when every unit is int2 and the target is missed.
pub fn greedy(units: &[Unit], steps: &[UnitStep], target: f64) -> Result<Vec<Prec>> {
    let mut now = vec![Prec::I8; units.len()];
    while avg_bits(units, &now, steps) > target {
        let next = steps
            .iter()
            .filter(|s| rung(s.prec) == rung(now[s.unit]) + 1)
            .min_by(|a, b| harm(a, b).then(units[b.unit].weights.cmp(&units[a.unit].weights)));
        let Some(s) = next else {
            bail!(
                "--avg-weight-bits {target}: even all-int2 weights average {:.3} bits (layers that have no 2-bit form keep 8)",
                avg_bits(units, &now, steps)
            );
        };
        now[s.unit] = s.prec;
    }
    for s in steps.iter().rev() {
        if now[s.unit] != s.prec {
            continue;
        }
        let mut trial = now.clone();
        trial[s.unit] = LADDER[rung(s.prec) - 1];
        if avg_bits(units, &trial, steps) <= target {
            now = trial;
        }
    }
    Ok(now)
}

/// Picks 8, 4 or 2 bits per layer so that the average weight bits
/// ([`Converted::avg_weight_bits`], weighted by weight count) is at most
/// `target`. Sensitivity of a layer at a precision = the harm to the output
/// on `calib` when only that layer is lowered (as [`choose`] measures it);
/// the plan is [`greedy`]'s over whole layers, converted once. `base` gives
/// the sub-byte options (scales, rounding); its layer map is ignored. Fails
/// when even all-int2 misses the target.
pub fn choose_avg(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    calib: &Graphs,
    target: f64,
    base: &WeightPlan,
) -> Result<AvgChoice> {
    if !(target.is_finite() && target > 0.0) {
        bail!("--avg-weight-bits must be a positive number, not {target}");
    }
    let vals = reference::run(spec, calib, |_| {})?;
    let conv = |layers: &[(String, Prec)]| {
        let plan = WeightPlan {
            default: Some(Prec::I8),
            layers: layers.to_vec(),
            ..base.clone()
        };
        quantize::convert_plan_graphs(spec, ranges, cap, mode, &plan, Some(&vals), Some(calib))
            .map(|c| (c, plan))
    };
    let (all8, plan8) = conv(&[])?;
    if all8.avg_weight_bits() <= target {
        let avg_bits = all8.avg_weight_bits();
        return Ok(AvgChoice {
            converted: all8,
            plan: plan8,
            steps: Vec::new(),
            avg_bits,
        });
    }
    let names: Vec<String> = all8.layer_bits.iter().map(|(n, _)| n.clone()).collect();
    let all2: Vec<(String, Prec)> = names.iter().map(|n| (n.clone(), Prec::I2)).collect();
    let (c2, _) = conv(&all2)?;
    if c2.avg_weight_bits() > target {
        bail!(
            "--avg-weight-bits {target}: even all-int2 weights average {:.3} bits (layers that have no 2-bit form keep 8)",
            c2.avg_weight_bits()
        );
    }
    let f = float_output(spec, &vals)?;
    let mut measured = Vec::new();
    for (i, n) in names.iter().enumerate() {
        for p in [Prec::I4, Prec::I2] {
            let (c, _) = conv(&[(n.clone(), p)])?;
            let bits = c
                .layer_bits
                .iter()
                .find(|(m, _)| m == n)
                .map_or(8, |(_, q)| q.bits());
            let (top1_agreement, rel_mean_err) = score(&c, f, calib)?;
            measured.push(UnitStep {
                unit: i,
                prec: p,
                bits,
                top1_agreement,
                rel_mean_err,
            });
        }
    }
    measured.sort_by(harm);
    let units: Vec<Unit> = all8
        .layer_weights
        .iter()
        .map(|(n, w)| Unit {
            layer: n.clone(),
            channels: None,
            weights: *w,
        })
        .collect();
    let now = greedy(&units, &measured, target)?;
    let layers: Vec<(String, Prec)> = names.iter().cloned().zip(now).collect();
    let (c, plan) = conv(&layers)?;
    let steps = measured
        .iter()
        .map(|s| Step {
            layer: names[s.unit].clone(),
            prec: s.prec,
            top1_agreement: s.top1_agreement,
            rel_mean_err: s.rel_mean_err,
        })
        .collect();
    let avg_bits = c.avg_weight_bits();
    Ok(AvgChoice {
        converted: c,
        plan,
        steps,
        avg_bits,
    })
}
