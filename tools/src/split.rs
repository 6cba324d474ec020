//! Per-output-channel weight precision, as a rewrite of the spec.
//!
//! A layer whose output channels take different precisions becomes one op
//! per precision, each computing its own channels (its weight rows), and a
//! `concat` of them under the layer's output name. The ops that follow the
//! layer channel by channel (activation, BatchNorm, dropout) are copied into
//! each part, so fusion treats the parts as it treated the layer. The concat
//! holds the channels grouped by precision, so every op that reads it gets
//! its input columns permuted to match; the model computes the same function.
//! The parts take the layer's calibrated output range, so the concat copies
//! (its rescale is 1) and the device runs the same integer arithmetic per
//! channel as it would for the whole layer.
//!
//! A layer can be split when its op has a per-channel form
//! ([`crate::ops::HostOp::take_channels`]: Linear, GCNConv, SAGEConv without
//! `normalize`) and every op that reads it (after the per-channel chain) can
//! read its channels permuted ([`crate::ops::HostOp::permute_input`]). A
//! model output, a recurrent state or any other reader keeps the layer whole.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};

use crate::calibrate::Range;
use crate::ops::elementwise::Concat;
use crate::ops::OpKind;
use crate::prec::Prec;
use crate::spec::{Spec, SpecOp};

/// A layer that can take a precision per output channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splittable {
    /// The layer (spec name of its op).
    pub layer: String,
    /// Its output channels.
    pub channels: usize,
    /// Spec op indices: the layer, then the per-channel ops that follow it.
    chain: Vec<usize>,
    /// Spec op indices of the ops reading the chain's last output.
    readers: Vec<usize>,
}

/// The output channels of one layer at each precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPlan {
    /// Layer name (spec name of its op).
    pub layer: String,
    /// Channels at each precision; together every channel once.
    pub groups: Vec<(Prec, Vec<usize>)>,
}

/// The name of the part of spec op `op` that holds the channels at `p`.
pub fn part_name(op: &str, p: Prec) -> String {
    format!("{op}.{}", p.name())
}

fn is_per_channel(k: &OpKind) -> bool {
    matches!(
        k,
        OpKind::Act(_) | OpKind::Identity(_) | OpKind::BatchNorm(_)
    )
}

/// The ops that read tensor `name`, by index.
fn readers_of(spec: &Spec, name: &str) -> Vec<usize> {
    (0..spec.ops.len())
        .filter(|&i| spec.ops[i].inputs.iter().any(|n| n == name))
        .collect()
}

/// Whether tensor `name` is a model output or the recurrent state's next value.
fn is_exposed(spec: &Spec, name: &str) -> bool {
    spec.outputs.iter().any(|o| o == name) || spec.states.iter().any(|s| s.next == name)
}

/// Layer `layer` as a [`Splittable`], or `None` when its channels cannot
/// take different precisions.
pub fn splittable(spec: &Spec, layer: &str) -> Option<Splittable> {
    let first = spec.ops.iter().position(|o| o.name == layer)?;
    let op = &spec.ops[first];
    let channels = op.channels;
    // A per-channel op (a BatchNorm run alone) reads the same channels it
    // writes: its parts would still read every input channel.
    if channels < 2 || is_per_channel(&op.kind) || op.kind.take_channels(&[0]).is_none() {
        return None;
    }
    let mut chain = vec![first];
    loop {
        let end = &spec.ops[*chain.last()?].name;
        if is_exposed(spec, end) {
            return None;
        }
        let readers = readers_of(spec, end);
        match readers.as_slice() {
            [] => return None,
            [r] if is_per_channel(&spec.ops[*r].kind) => chain.push(*r),
            _ => {
                // The parts' names must be free.
                let taken = chain.iter().any(|&i| {
                    [Prec::I8, Prec::I4, Prec::I2]
                        .iter()
                        .any(|&p| spec.shape_of(&part_name(&spec.ops[i].name, p)).is_some())
                });
                if taken {
                    return None;
                }
                let perm: Vec<usize> = (0..channels).collect();
                let ok = readers.iter().all(|&r| {
                    spec.ops[r].inputs.len() == 1 && spec.ops[r].kind.permute_input(&perm).is_some()
                });
                return ok.then(|| Splittable {
                    layer: layer.to_string(),
                    channels,
                    chain,
                    readers,
                });
            }
        }
    }
}

/// Every layer of `spec` that can take a precision per output channel.
pub fn splittable_layers(spec: &Spec) -> Vec<Splittable> {
    spec.ops
        .iter()
        .filter(|o| o.kind.has_weights())
        .filter_map(|o| splittable(spec, &o.name))
        .collect()
}

/// Checks that `plan` names each of the layer's channels exactly once.
fn check_groups(s: &Splittable, plan: &ChannelPlan) -> Result<()> {
    let mut seen = vec![false; s.channels];
    for (_, g) in &plan.groups {
        for &c in g {
            match seen.get_mut(c) {
                Some(v) if !*v => *v = true,
                _ => bail!(
                    "layer '{}': channel {c} is out of range or in two groups",
                    plan.layer
                ),
            }
        }
    }
    if seen.iter().any(|v| !v) || plan.groups.iter().any(|(_, g)| g.is_empty()) {
        bail!(
            "layer '{}': the channel groups leave a channel out or are empty",
            plan.layer
        );
    }
    Ok(())
}

/// What [`apply`] makes.
#[derive(Debug, Clone)]
pub struct Split {
    /// The spec with the planned layers split.
    pub spec: Spec,
    /// The calibrated ranges, extended to the parts.
    pub ranges: HashMap<String, Range>,
    /// The precision of each planned layer or part (`(name, precision)`,
    /// for a `WeightPlan`).
    pub layers: Vec<(String, Prec)>,
}

/// `spec` with each planned layer split into one op per precision (see the
/// module docs). A layer planned with a single group is left whole and gets
/// that group's precision.
pub fn apply(spec: &Spec, ranges: &HashMap<String, Range>, plans: &[ChannelPlan]) -> Result<Split> {
    let mut spec = spec.clone();
    let mut ranges = ranges.clone();
    let mut precs = Vec::new();
    for plan in plans {
        if let [(p, _)] = plan.groups.as_slice() {
            precs.push((plan.layer.clone(), *p));
            continue;
        }
        let s = splittable(&spec, &plan.layer)
            .ok_or_else(|| anyhow!("layer '{}' cannot take a precision per channel", plan.layer))?;
        check_groups(&s, plan)?;
        split_one(&mut spec, &mut ranges, &s, plan)?;
        precs.extend(
            plan.groups
                .iter()
                .map(|(p, _)| (part_name(&plan.layer, *p), *p)),
        );
    }
    Ok(Split {
        spec,
        ranges,
        layers: precs,
    })
}

/// Splits one layer in place.
fn split_one(
    spec: &mut Spec,
    ranges: &mut HashMap<String, Range>,
    s: &Splittable,
    plan: &ChannelPlan,
) -> Result<()> {
    let end = spec.ops[*s.chain.last().unwrap_or(&0)].clone();
    let mut new_ops: Vec<SpecOp> = Vec::new();
    let mut part_ends = Vec::new();
    for (p, keep) in &plan.groups {
        let mut input: Option<String> = None;
        for &i in &s.chain {
            let op = &spec.ops[i];
            let name = part_name(&op.name, *p);
            if spec.shape_of(&name).is_some() || new_ops.iter().any(|o| o.name == name) {
                bail!("cannot split '{}': the name '{name}' is taken", plan.layer);
            }
            let kind = op
                .kind
                .take_channels(keep)
                .ok_or_else(|| anyhow!("op '{}' has no per-channel form", op.name))?;
            if let Some(r) = ranges.get(&op.name).cloned() {
                ranges.insert(name.clone(), r);
            }
            new_ops.push(SpecOp {
                name: name.clone(),
                inputs: input.map_or_else(|| op.inputs.clone(), |n| vec![n]),
                kind,
                channels: keep.len(),
                rows: op.rows,
            });
            input = Some(name);
        }
        part_ends.extend(input);
    }
    new_ops.push(SpecOp {
        name: end.name.clone(),
        inputs: part_ends,
        kind: OpKind::Concat(Concat),
        channels: end.channels,
        rows: end.rows,
    });
    let perm: Vec<usize> = plan
        .groups
        .iter()
        .flat_map(|(_, g)| g.iter().copied())
        .collect();
    for &r in &s.readers {
        let op = &mut spec.ops[r];
        op.kind = op
            .kind
            .permute_input(&perm)
            .ok_or_else(|| anyhow!("op '{}' cannot read permuted channels", op.name))?;
    }
    let first = s.chain[0];
    let mut ops = Vec::with_capacity(spec.ops.len() + new_ops.len());
    for (i, op) in spec.ops.drain(..).enumerate() {
        if i == first {
            ops.append(&mut new_ops);
        }
        if !s.chain.contains(&i) {
            ops.push(op);
        }
    }
    spec.ops = ops;
    Ok(())
}

/// For each output channel of `s`, the squared norm of its column in the
/// weights of the ops that read the layer (how far an error in that channel
/// travels); ones when no reader has weights.
pub fn reader_column_energy(spec: &Spec, s: &Splittable) -> Vec<f64> {
    let mut e = vec![0.0; s.channels];
    for &r in &s.readers {
        for m in spec.ops[r].kind.scaled_mats().unwrap_or_default() {
            if m.cols != s.channels {
                continue;
            }
            for row in 0..m.rows {
                for (c, v) in m.row(row).iter().enumerate() {
                    e[c] += v * v;
                }
            }
        }
    }
    if e.iter().all(|&v| v == 0.0) {
        e.iter_mut().for_each(|v| *v = 1.0);
    }
    e
}
