//! Average weight bits with a precision per group of output channels
//! (`tinygnn convert --avg-weight-bits B --precision-grain channel|best`).
//!
//! The per-layer search ([`crate::precision::choose_avg`]) must give a whole
//! layer one precision, so a model whose weights sit mostly in one layer
//! (Cora's GCN: 99.5 % in the first) either keeps that layer at a rung above
//! the target or drops it below, leaving bits unspent. Here the search unit
//! is a group of a layer's output channels (made with [`crate::split`]):
//!
//! 1. Each layer that can be split is cut into at most [`GROUPS`] groups of
//!    channels of near-equal size, ranked by a cheap proxy of their
//!    sensitivity: the energy of the rounding error a 2-bit nearest rounding
//!    of the channel's weight row leaves on the layer's own calibration input
//!    (the input its weights multiply), times the squared norm of the
//!    channel's column in the weights of the ops that read the layer. Layers
//!    that cannot be split are one unit.
//! 2. Every unit is measured alone at int4 and at int2 (every other weight
//!    int8) by converting the model and running it with the runtime on the
//!    calibration graphs, exactly as the per-layer search measures a layer.
//! 3. The same greedy as per layer: lower, one rung at a time, the unit whose
//!    next rung is least harmful until the average meets the target, then
//!    raise back every unit, most harmful step first, that the target allows.

use std::collections::HashMap;

use anyhow::{bail, Result};

use crate::calibrate::Range;
use crate::prec::Prec;
use crate::precision::{float_output, greedy, harm, score, Unit, UnitStep};
use crate::quantize::{self, Capacity, Converted, WeightPlan, WeightScales};
use crate::reference::{self, Tensor};
use crate::spec::Spec;
use crate::split::{self, ChannelPlan};
use crate::st::Graphs;

/// Most channel groups one layer is cut into for the search.
pub const GROUPS: usize = 4;

/// The outcome of [`choose_avg_channels`].
#[derive(Debug, Clone)]
pub struct ChannelChoice {
    /// The converted model.
    pub converted: Converted,
    /// The units searched.
    pub units: Vec<Unit>,
    /// Each unit's chosen precision.
    pub chosen: Vec<Prec>,
    /// The per-layer channel groups of the chosen model.
    pub plans: Vec<ChannelPlan>,
    /// Every measured step, least harmful first.
    pub steps: Vec<UnitStep>,
    /// Average weight bits of the chosen model.
    pub avg_bits: f64,
    /// Its top-1 agreement and relative mean error on the calibration graphs.
    pub score: (f64, f64),
    /// The same for the per-layer model it is compared with.
    pub layer_score: (f64, f64),
    /// That model's average weight bits.
    pub layer_avg_bits: f64,
}

impl ChannelChoice {
    /// Whether the per-channel model measures better than the per-layer
    /// one: higher top-1 agreement with float on the calibration graphs,
    /// or equal agreement and a lower output error.
    pub fn is_better(&self) -> bool {
        let (a, b) = (self.score, self.layer_score);
        a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
    }
}

/// The search's fixed inputs.
struct Cx<'a> {
    spec: &'a Spec,
    ranges: &'a HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    calib: &'a Graphs,
    base: &'a WeightPlan,
}

impl Cx<'_> {
    /// Converts the model with the channel groups `plans`.
    fn convert(&self, plans: &[ChannelPlan]) -> Result<Converted> {
        let split::Split {
            spec,
            ranges,
            layers,
        } = split::apply(self.spec, self.ranges, plans)?;
        let vals = reference::run(&spec, self.calib, |_| {})?;
        let plan = WeightPlan {
            default: Some(Prec::I8),
            layers,
            ..self.base.clone()
        };
        quantize::convert_plan_graphs(
            &spec,
            &ranges,
            self.cap,
            self.mode,
            &plan,
            Some(&vals),
            Some(self.calib),
        )
    }
}

/// The per-layer channel groups that give each unit its precision.
fn plans_of(units: &[Unit], precs: &[Prec], layers: &[(String, usize)]) -> Vec<ChannelPlan> {
    let mut plans = Vec::new();
    for (layer, channels) in layers {
        let mut groups: Vec<(Prec, Vec<usize>)> = Vec::new();
        for (u, p) in units.iter().zip(precs).filter(|(u, _)| u.layer == *layer) {
            let chans = u
                .channels
                .clone()
                .unwrap_or_else(|| (0..*channels).collect());
            match groups.iter_mut().find(|(q, _)| q == p) {
                Some((_, g)) => g.extend(chans),
                None => groups.push((*p, chans)),
            }
        }
        groups.iter_mut().for_each(|(_, g)| g.sort_unstable());
        groups.sort_by_key(|(p, _)| std::cmp::Reverse(p.bits()));
        plans.push(ChannelPlan {
            layer: layer.clone(),
            groups,
        });
    }
    plans
}

/// Like [`crate::precision::choose_avg`], with groups of output channels as
/// the units (see the module docs). `per_layer` is the per-layer search's
/// model: it names the layers and their weight counts, and its score on the
/// calibration graphs is reported beside the per-channel model's.
#[allow(clippy::too_many_arguments)]
pub fn choose_avg_channels(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    calib: &Graphs,
    target: f64,
    base: &WeightPlan,
    per_layer: &Converted,
) -> Result<ChannelChoice> {
    let cx = Cx {
        spec,
        ranges,
        cap,
        mode,
        calib,
        base,
    };
    let vals = reference::run(spec, calib, |_| {})?;
    let f = float_output(spec, &vals)?;
    let units = make_units(spec, &vals, calib, per_layer);
    let layers: Vec<(String, usize)> = per_layer
        .layer_bits
        .iter()
        .map(|(n, _)| {
            let c = spec
                .ops
                .iter()
                .find(|o| o.name == *n)
                .map_or(0, |o| o.channels);
            (n.clone(), c)
        })
        .collect();
    let mut steps = Vec::new();
    for (i, u) in units.iter().enumerate() {
        for p in [Prec::I4, Prec::I2] {
            let mut precs = vec![Prec::I8; units.len()];
            precs[i] = p;
            let c = cx.convert(&plans_of(&units, &precs, &layers))?;
            let bits = stored_bits(&c, u, p);
            let (top1_agreement, rel_mean_err) = score(&c, f, calib)?;
            steps.push(UnitStep {
                unit: i,
                prec: p,
                bits,
                top1_agreement,
                rel_mean_err,
            });
        }
    }
    steps.sort_by(harm);
    let now = greedy(&units, &steps, target)?;
    let plans = plans_of(&units, &now, &layers);
    let converted = cx.convert(&plans)?;
    let avg = converted.avg_weight_bits();
    if avg > target + 1e-9 {
        bail!("--avg-weight-bits {target}: the per-channel plan averages {avg:.3} bits");
    }
    let layer_score = score(per_layer, f, calib)?;
    let score = score(&converted, f, calib)?;
    Ok(ChannelChoice {
        layer_score,
        layer_avg_bits: per_layer.avg_weight_bits(),
        converted,
        units,
        chosen: now,
        plans,
        steps,
        avg_bits: avg,
        score,
    })
}

/// The bits the converter stored for unit `u` lowered to `p` in `c`.
fn stored_bits(c: &Converted, u: &Unit, p: Prec) -> u32 {
    let name = match u.channels {
        Some(_) => split::part_name(&u.layer, p),
        None => u.layer.clone(),
    };
    c.layer_bits
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(8, |(_, q)| q.bits())
}

/// The search units: each splittable layer's channels in at most
/// [`GROUPS`] groups by rising proxy sensitivity; other layers whole.
fn make_units(spec: &Spec, vals: &reference::Values, g: &Graphs, all8: &Converted) -> Vec<Unit> {
    let mut units = Vec::new();
    for (layer, w) in &all8.layer_weights {
        let Some(s) = split::splittable(spec, layer) else {
            units.push(Unit {
                layer: layer.clone(),
                channels: None,
                weights: *w,
            });
            continue;
        };
        let proxy = channel_proxy(spec, &s, vals, g);
        let mut order: Vec<usize> = (0..s.channels).collect();
        order.sort_by(|&a, &b| proxy[a].total_cmp(&proxy[b]));
        let k = GROUPS.min(s.channels);
        for j in 0..k {
            let chans = order[j * s.channels / k..(j + 1) * s.channels / k].to_vec();
            units.push(Unit {
                layer: layer.clone(),
                weights: w * chans.len() / s.channels,
                channels: Some(chans),
            });
        }
    }
    units
}

/// The proxy sensitivity of each output channel of `s` (see the module
/// docs); all zeros when the layer's input is not at hand.
fn channel_proxy(
    spec: &Spec,
    s: &split::Splittable,
    vals: &reference::Values,
    g: &Graphs,
) -> Vec<f64> {
    let mut proxy = vec![0.0; s.channels];
    let Some(op) = spec.ops.iter().find(|o| o.name == s.layer) else {
        return proxy;
    };
    let (Some(x), Some(mats)) = (
        op.inputs.first().and_then(|n| vals.get(n)),
        op.kind.scaled_mats(),
    ) else {
        return proxy;
    };
    let Some(fx) = op.kind.feedback_input(x, g) else {
        return proxy;
    };
    let downstream = split::reader_column_energy(spec, s);
    for (c, p) in proxy.iter_mut().enumerate() {
        let row: Vec<f64> = mats.iter().flat_map(|m| m.row(c).iter().copied()).collect();
        if row.len() != fx.channels {
            return vec![0.0; s.channels];
        }
        *p = rounding_energy(&row, &fx) * downstream.get(c).copied().unwrap_or(1.0);
    }
    proxy
}

/// `Σ_rows (x_row · (w − q(w)))²` for `q` the 2-bit nearest rounding with
/// scale `max|w| / 2`.
fn rounding_energy(w: &[f64], x: &Tensor) -> f64 {
    let levels = Prec::I2.levels();
    let s = w.iter().fold(0.0f64, |m, v| m.max(v.abs())) / levels.span();
    if s == 0.0 {
        return 0.0;
    }
    let err: Vec<f64> = w.iter().map(|v| v - levels.round(v / s) * s).collect();
    (0..x.rows)
        .map(|r| {
            let d: f64 = x.row(r).iter().zip(&err).map(|(a, b)| a * b).sum();
            d * d
        })
        .sum()
}
