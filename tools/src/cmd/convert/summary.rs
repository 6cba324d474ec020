//! What `tinygnn convert` reports once the model is written: the text
//! summary, and the same facts as one JSON object (`--json`).

use std::path::PathBuf;

use crate::prec::Prec;
use serde_json::{json, Value};

use super::{Args, Grain};
use crate::calibrate::OutputRange;
use crate::channel_search::{ChannelChoice, GROUPS};
use crate::cmd::{cargo_features, features_line, sparse_arena_line};
use crate::precision::Sensitivity;
use crate::quantize::{self, Capacity, Converted, WeightPlan};
use crate::rt;
use crate::split::ChannelPlan;

/// What `--flash-budget` measured.
pub struct Budget {
    /// The budget in bytes.
    pub budget: usize,
    /// File size with every layer int8.
    pub all_int8: usize,
    /// File size with every layer int4.
    pub all_int4: usize,
    /// Every layer's int4 sensitivity, least sensitive first.
    pub sensitivity: Vec<Sensitivity>,
}

impl Budget {
    /// The budget lines (printed before the model is written).
    pub fn print(&self) {
        outln!(
            "flash budget {} bytes: all-int8 {} bytes, all-int4 {} bytes",
            self.budget,
            self.all_int8,
            self.all_int4
        );
        if !self.sensitivity.is_empty() {
            outln!("  int4 sensitivity on the calibration graphs (this layer alone int4), least sensitive first:");
            for s in &self.sensitivity {
                outln!(
                    "    {:<16} top-1 agreement {:>7.3}%  mean err/range {:.5}  file {} bytes",
                    s.layer,
                    100.0 * s.top1_agreement,
                    s.rel_mean_err,
                    s.bytes
                );
            }
        }
    }

    fn json(&self) -> Value {
        json!({
            "budget": self.budget, "all_int8_bytes": self.all_int8, "all_int4_bytes": self.all_int4,
            "sensitivity": self.sensitivity.iter().map(|s| json!({
                "layer": s.layer, "top1_agreement": s.top1_agreement,
                "rel_mean_err": s.rel_mean_err, "bytes": s.bytes,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What `--avg-weight-bits` measured and chose.
pub struct AvgBits {
    /// The target average.
    pub target: f64,
    /// The chosen model's average.
    pub got: f64,
    /// The chosen precision per layer.
    pub plan: Vec<(String, Prec)>,
    /// Weights per layer.
    pub weights: Vec<(String, usize)>,
    /// Every measured step (one layer lowered alone), least harmful first.
    pub steps: Vec<crate::precision::Step>,
    /// The per-channel search, when it ran.
    pub channels: Option<ChannelChoice>,
    /// `--precision-grain`.
    pub grain: Grain,
}

impl AvgBits {
    /// The plan lines (printed before the model is written).
    pub fn print(&self) {
        outln!(
            "average weight bits: target {}, chosen plan {:.3} (bits weighted by weight count, row padding excluded)",
            self.target,
            self.got
        );
        if !self.steps.is_empty() {
            outln!("  sensitivity on the calibration graphs (this layer alone lowered), least sensitive first:");
            for s in &self.steps {
                outln!(
                    "    {:<16} {:<5} top-1 agreement {:>7.3}%  mean err/range {:.5}",
                    s.layer,
                    s.prec.name(),
                    100.0 * s.top1_agreement,
                    s.rel_mean_err
                );
            }
        }
        if let Some(ch) = &self.channels {
            print_channels(ch, self.grain);
        }
        let list: Vec<String> = self
            .plan
            .iter()
            .zip(&self.weights)
            .map(|((n, p), (_, c))| format!("{n}={} ({c} weights)", p.name()))
            .collect();
        outln!("  plan: {}", list.join(", "));
    }

    fn json(&self) -> Value {
        json!({
            "target": self.target, "chosen": self.got,
            "plan": self.plan.iter().zip(&self.weights).map(|((n, p), (_, c))| json!({
                "layer": n, "weights": p.name(), "count": c,
            })).collect::<Vec<_>>(),
            "sensitivity": self.steps.iter().map(|s| json!({
                "layer": s.layer, "weights": s.prec.name(), "top1_agreement": s.top1_agreement,
                "rel_mean_err": s.rel_mean_err,
            })).collect::<Vec<_>>(),
            "grain": format!("{:?}", self.grain).to_lowercase(),
            "per_channel": self.channels.as_ref().map(channels_json),
        })
    }
}

/// Channel groups as `conv1: int4 [0, 3, …], int2 [1, …]`.
fn groups_str(plans: &[ChannelPlan]) -> String {
    let one: Vec<String> = plans
        .iter()
        .filter(|p| p.groups.len() > 1)
        .map(|p| {
            let g: Vec<String> = p
                .groups
                .iter()
                .map(|(q, c)| format!("{} {:?}", q.name(), c))
                .collect();
            format!("{}: {}", p.layer, g.join(", "))
        })
        .collect();
    if one.is_empty() {
        "no layer split".into()
    } else {
        one.join("; ")
    }
}

fn print_channels(ch: &ChannelChoice, grain: Grain) {
    outln!("  per channel group (at most {GROUPS} groups a layer), least sensitive first:");
    for s in &ch.steps {
        let u = &ch.units[s.unit];
        let what = match &u.channels {
            Some(c) => format!("{} {:?}", u.layer, c),
            None => u.layer.clone(),
        };
        outln!(
            "    {:<5} top-1 agreement {:>7.3}%  mean err/range {:.5}  {what}",
            s.prec.name(),
            100.0 * s.top1_agreement,
            s.rel_mean_err
        );
    }
    let kept = if grain == Grain::Channel || ch.is_better() {
        "per channel"
    } else {
        "per layer"
    };
    outln!(
        "  per layer {:.3} bits, top-1 agreement {:.3}%; per channel {:.3} bits, {:.3}% ({}): kept {kept}",
        ch.layer_avg_bits,
        100.0 * ch.layer_score.0,
        ch.avg_bits,
        100.0 * ch.score.0,
        groups_str(&ch.plans)
    );
}

fn channels_json(ch: &ChannelChoice) -> Value {
    json!({
        "avg_bits": ch.avg_bits,
        "top1_agreement": ch.score.0, "rel_mean_err": ch.score.1,
        "per_layer_top1_agreement": ch.layer_score.0, "per_layer_rel_mean_err": ch.layer_score.1,
        "better": ch.is_better(),
        "groups": ch.plans.iter().map(|p| json!({
            "layer": p.layer,
            "groups": p.groups.iter().map(|(q, c)| json!({"weights": q.name(), "channels": c})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "sensitivity": ch.steps.iter().map(|s| {
            let u = &ch.units[s.unit];
            json!({"layer": u.layer, "channels": u.channels, "weights": s.prec.name(),
                   "top1_agreement": s.top1_agreement, "rel_mean_err": s.rel_mean_err})
        }).collect::<Vec<_>>(),
    })
}

/// Everything `convert` reports.
pub struct Summary<'a> {
    /// The command's arguments.
    pub a: &'a Args,
    /// Ops of the spec.
    pub spec_ops: usize,
    /// The converted model.
    pub conv: &'a Converted,
    /// The weight precision plan.
    pub plan: &'a WeightPlan,
    /// The declared capacity.
    pub cap: Capacity,
    /// `--output-range`.
    pub output_range: OutputRange,
    /// Calibration notes (output ranges).
    pub notes: &'a [String],
    /// Calibration and conversion warnings (also printed on stderr).
    pub warnings: Vec<String>,
    /// What `--flash-budget` measured.
    pub budget: Option<Budget>,
    /// What `--avg-weight-bits` measured and chose.
    pub avg: Option<AvgBits>,
    /// The written model.
    pub model: &'a tinygnn::Model<'a>,
    /// The `--emit` files written.
    pub emitted: Vec<PathBuf>,
    /// What `--activations int4` chose.
    pub act4: Option<Act4Report>,
}

/// What `--activations int4` chose: the int4 tensors, the tensors kept int8
/// and why, and the arena of the all-int8 conversion for comparison.
#[derive(Debug, Clone)]
pub struct Act4Report {
    /// Names of the int4 tensors.
    pub int4: Vec<String>,
    /// The tensors kept int8.
    pub kept: Vec<crate::act4::Kept>,
    /// Arena bytes at capacity of the same model with int8 activations.
    pub arena_int8: Option<usize>,
    /// With `--arena-budget`: what it measured and chose.
    pub budget: Option<Act4Budget>,
}

/// What `--arena-budget` measured: the budget, the arena met, and each
/// candidate tensor alone (name, top-1 agreement with float on the
/// calibration graphs, arena), least harmful first.
#[derive(Debug, Clone)]
pub struct Act4Budget {
    /// The budget in bytes.
    pub budget: usize,
    /// The arena at capacity of the chosen plan.
    pub arena: usize,
    /// Each candidate alone: (name, top-1 agreement, arena bytes).
    pub harms: Vec<(String, f64, usize)>,
}

impl Act4Report {
    /// The text lines.
    pub fn print(&self) {
        outln!(
            "activations: int4 for {} tensor(s): {}",
            self.int4.len(),
            self.int4.join(", ")
        );
        for k in &self.kept {
            outln!("  kept int8: {} ({})", k.name, k.why);
        }
        if let Some(b) = self.arena_int8 {
            outln!("arena at capacity with int8 activations: {b} bytes");
        }
        if let Some(b) = &self.budget {
            outln!("arena budget {}: met, arena {} bytes", b.budget, b.arena);
            for (name, top1, arena) in &b.harms {
                outln!(
                    "  {name} alone int4: top-1 agreement {:.2} %, arena {arena} bytes",
                    top1 * 100.0
                );
            }
        }
    }

    /// The JSON object.
    pub fn json(&self) -> Value {
        json!({
            "bits": "int4",
            "int4_tensors": self.int4,
            "int8_tensors": self.kept.iter().map(|k| json!({
                "tensor": k.tensor, "name": k.name, "why": k.why,
            })).collect::<Vec<_>>(),
            "arena_bytes_int8_at_capacity": self.arena_int8,
            "arena_budget": self.budget.as_ref().map(|b| json!({
                "budget": b.budget,
                "arena_bytes": b.arena,
                "candidates": b.harms.iter().map(|(n, t, a)| json!({
                    "name": n, "top1_agreement": t, "arena_bytes": a,
                })).collect::<Vec<_>>(),
            })),
        })
    }
}

impl Summary<'_> {
    fn all_int8(&self) -> bool {
        self.conv.layer_bits.iter().all(|(_, b)| *b == Prec::I8)
    }

    /// The precisions of the layers: `int8`, `int8/int4` (int8 and int4
    /// layers only), or the distinct precisions joined by `/` in `int8`,
    /// `int4`, `int2`, `ternary` order.
    fn label(&self) -> String {
        let has = |p: Prec| self.conv.layer_bits.iter().any(|(_, b)| *b == p);
        if self.all_int8() {
            return "int8".into();
        }
        if !has(Prec::I2) && !has(Prec::Ternary) {
            return "int8/int4".into();
        }
        let names: Vec<&str> = Prec::ALL
            .into_iter()
            .filter(|p| has(*p))
            .map(Prec::name)
            .collect();
        names.join("/")
    }

    /// Layers the plan asks int4 of but whose device op has no int4 form.
    fn kept_int8(&self) -> Vec<String> {
        if !self.plan.any_int4() {
            return Vec::new();
        }
        let conv = self.conv;
        let mut out = Vec::new();
        for (i, f) in conv.ops.iter().enumerate() {
            let layer = f.layer();
            let want = self.plan.bits(&layer);
            let asked = f.has_weights() && want.is_sub_byte();
            let got = conv
                .layer_bits
                .iter()
                .find(|(n, _)| n == layer.report_name())
                .map(|(_, b)| *b);
            if asked && got != Some(want) {
                out.push(format!(
                    "op {i} ({}) keeps int8 weights: {} is not implemented for it",
                    f.device_name(),
                    want.name()
                ));
            }
        }
        out
    }

    fn output_range_note(&self) -> Option<&'static str> {
        match self.output_range {
            OutputRange::Full => None,
            OutputRange::Argmax => Some("--output-range argmax keeps argmax decisions; dequantized values of losing classes are clipped (not usable as logits/probabilities)"),
            OutputRange::Top2 => Some("--output-range top2 keeps argmax decisions only; dequantized values of losing and of winning classes are clipped (not usable as logits/probabilities)"),
        }
    }

    fn weighted_layers(&self) -> usize {
        self.conv.ops.iter().filter(|f| f.has_weights()).count()
    }

    fn arena(&self) -> (Option<usize>, Option<usize>) {
        let c = self.cap;
        let (n, e, g) = (
            c.max_nodes as usize,
            c.max_edges as usize,
            c.max_graphs as usize,
        );
        (
            rt::arena_bytes(self.model, n, e, g),
            rt::arena_bytes_sparse(self.model, n, e, g),
        )
    }

    /// The weight bytes, the precision of every layer, the layers that
    /// keep int8 weights although the plan asks int4, the weight scales.
    fn print_weights(&self) {
        let (a, conv) = (self.a, self.conv);
        outln!(
            "weights: {} bytes {}, {} bytes channel params ({} bytes int32 bias)",
            conv.weight_bytes,
            self.label(),
            conv.param_bytes,
            conv.bias_bytes
        );
        if !self.all_int8() {
            let list: Vec<String> = conv
                .layer_bits
                .iter()
                .map(|(n, b)| format!("{n}={}", b.name()))
                .collect();
            outln!("weight precision: {}", list.join(", "));
        }
        for n in self.kept_int8() {
            outln!("note: {n}");
        }
        outln!(
            "weight scales: {} ({} of {} layers per-tensor{}{})",
            a.weight_scales,
            conv.per_tensor_layers.len(),
            self.weighted_layers(),
            if conv.per_tensor_layers.is_empty() {
                ""
            } else {
                ": "
            },
            conv.per_tensor_layers.join(", ")
        );
    }

    /// The text summary.
    pub fn print(&self) {
        let (a, conv, cap) = (self.a, self.conv, self.cap);
        outln!(
            "wrote {} ({} bytes): {} device ops from {} spec ops",
            a.output.display(),
            conv.bytes.len(),
            conv.ops.len(),
            self.spec_ops
        );
        for (i, f) in conv.ops.iter().enumerate() {
            outln!(
                "  {i:>2}  {:<14} ← {}",
                f.device_name(),
                f.merged.join(" + ")
            );
        }
        self.print_weights();
        outln!(
            "size goal (int8 weights + int32 bias)·1.01 + 512 = {:.0} bytes: {}",
            quantize::size_goal(conv),
            if quantize::meets_size_goal(conv) {
                "met"
            } else {
                "NOT met (per-channel mult/shift records; try --weight-scales per-tensor or auto)"
            }
        );
        outln!(
            "capacity: {} nodes, {} edges, {} graphs; calibration: {}; output range: {}; weight scales: {}",
            cap.max_nodes, cap.max_edges, cap.max_graphs, a.calibration, a.output_range, a.weight_scales
        );
        for n in self.notes {
            outln!("{n}");
        }
        if let Some(n) = self.output_range_note() {
            outln!("note: {n}");
        }
        let (arena, sparse) = self.arena();
        match arena {
            Some(b) => outln!("arena at capacity: {b} bytes"),
            None => outln!("arena at capacity: unknown (runtime without Session)"),
        }
        if let Some(b) = sparse {
            outln!("{}", sparse_arena_line(self.model, b));
        }
        if let Some(r) = &self.act4 {
            r.print();
        }
        outln!("{}", features_line(&cargo_features(self.model)));
        for p in &self.emitted {
            outln!("wrote {}", p.display());
        }
    }

    /// The same facts as one JSON object.
    pub fn json(&self) -> Value {
        let (a, conv, cap) = (self.a, self.conv, self.cap);
        let (arena, sparse) = self.arena();
        let mut notes: Vec<String> = self.notes.to_vec();
        notes.extend(self.kept_int8());
        notes.extend(self.output_range_note().map(String::from));
        json!({
            "file": a.output.display().to_string(),
            "bytes": conv.bytes.len(),
            "spec_ops": self.spec_ops,
            "ops": conv.ops.iter().enumerate().map(|(i, f)| json!({
                "index": i, "op": f.device_name(), "spec_ops": f.merged,
            })).collect::<Vec<_>>(),
            "weights": {
                "bytes": conv.weight_bytes,
                "precision": self.label(),
                "channel_param_bytes": conv.param_bytes,
                "int32_bias_bytes": conv.bias_bytes,
            },
            "layers": conv.layer_bits.iter().map(|(n, b)| json!({
                "layer": n, "weights": b.name(),
                "per_tensor": conv.per_tensor_layers.contains(n),
            })).collect::<Vec<_>>(),
            "weight_scales": {
                "mode": a.weight_scales,
                "per_tensor_layers": conv.per_tensor_layers,
                "weighted_layers": self.weighted_layers(),
            },
            "size_goal": {
                "bytes": quantize::size_goal(conv),
                "met": quantize::meets_size_goal(conv),
            },
            "capacity": {
                "max_nodes": cap.max_nodes, "max_edges": cap.max_edges,
                "max_graphs": cap.max_graphs, "max_pairs": cap.max_pairs,
            },
            "calibration": a.calibration,
            "output_range": a.output_range,
            "notes": notes,
            "warnings": self.warnings,
            "arena_bytes_at_capacity": arena,
            "arena_bytes_sparse_at_capacity": sparse,
            "features": cargo_features(self.model),
            "flash_budget": self.budget.as_ref().map(Budget::json),
            "avg_weight_bits": self.avg.as_ref().map(AvgBits::json),
            "emitted": self.emitted.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "activations": self.act4.as_ref().map_or(json!({"bits": "int8"}), Act4Report::json),
        })
    }
}
