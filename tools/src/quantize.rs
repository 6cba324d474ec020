//! Quantization and lowering of a spec to the `.tgnn` file: fusion
//! ([`crate::fuse`]), then for every fused op its output tensor and its
//! device op, lowered by its family ([`crate::ops::HostOp::lower`]) with the
//! weight step of [`crate::weights`], written with
//! [`tinygnn::format::writer::ModelWriter`]. The scheme and every op's
//! rescale are described in `docs/quantization.md`.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use tinygnn::format::writer::ModelWriter;
use tinygnn::format::{TensorDesc, TensorKind};

use crate::lower::{Bytes, Lower};
use crate::ops::common::Tensor;
use crate::reference::Values;
use crate::spec::{Rows, Spec};
use crate::st::Graphs;
use crate::weights::{channel_spread, Fixed, Hook, WeightStep};

pub use crate::calibrate::{activation_quant, dequantize_value, quantize_value, Range};
pub use crate::fuse::{fuse, layer_name, Act, FOp, Fused};
pub use crate::weights::{
    bits_name, gpfq_fb_row, gpfq_fb_row_err, gpfq_matrix, gpfq_row, mse_scale, parse_bits, qmax,
    quantize_weights, quantize_weights_bits, quantize_weights_floored, quantize_weights_scaled,
    scale_floor, Columns, Prec, QRange, WeightPlan, WeightScales, BIAS_ACC_LIMIT, MIN_RESCALE,
};

/// Capacity declared in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Nodes.
    pub max_nodes: u32,
    /// Edges.
    pub max_edges: u32,
    /// Graphs.
    pub max_graphs: u32,
    /// Node pairs (link prediction; 0 for a model without a pair head).
    pub max_pairs: u32,
}

/// Result of a conversion.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The `.tgnn` bytes.
    pub bytes: Vec<u8>,
    /// The fused ops, in file order (one device op each).
    pub ops: Vec<FOp>,
    /// int8 weight bytes.
    pub weight_bytes: usize,
    /// Channel-parameter bytes as written (full or compact form).
    pub param_bytes: usize,
    /// Bias bytes alone (4 per output channel).
    pub bias_bytes: usize,
    /// Precision problems found while quantizing (saturated biases, vanishing rescales).
    pub warnings: Vec<String>,
    /// Names of the fused ops given one weight scale for all channels.
    pub per_tensor_layers: Vec<String>,
    /// Every layer with weights (fused op name) and its weight precision, in file order.
    pub layer_bits: Vec<(String, Prec)>,
    /// Every layer with weights and its number of weights (all its
    /// matrices), in file order (as [`Converted::layer_bits`]).
    pub layer_weights: Vec<(String, usize)>,
}

impl Converted {
    /// The average weight bits: `Σ bits·n / Σ n` over the layers with
    /// weights (`n` their weight counts; row padding not counted), 8 when
    /// there are none.
    pub fn avg_weight_bits(&self) -> f64 {
        let (mut bits, mut n) = (0.0, 0.0);
        for ((_, p), (_, c)) in self.layer_bits.iter().zip(&self.layer_weights) {
            bits += f64::from(p.bits()) * *c as f64;
            n += *c as f64;
        }
        if n > 0.0 {
            bits / n
        } else {
            8.0
        }
    }
}

/// The size goal: `(int8 weights + int32 biases) · 1.01 + 512` bytes.
pub fn size_goal(c: &Converted) -> f64 {
    (c.weight_bytes + c.bias_bytes) as f64 * 1.01 + 512.0
}

/// Whether the file meets [`size_goal`].
pub fn meets_size_goal(c: &Converted) -> bool {
    c.bytes.len() as f64 <= size_goal(c)
}

/// Quantizes and writes the model with per-channel weight scales.
pub fn convert(spec: &Spec, ranges: &HashMap<String, Range>, cap: Capacity) -> Result<Converted> {
    convert_with(spec, ranges, cap, WeightScales::PerChannel)
}

/// Quantizes and writes the model with int8 weights, choosing weight scales by `mode`.
pub fn convert_with(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
) -> Result<Converted> {
    convert_plan(spec, ranges, cap, mode, &WeightPlan::default())
}

/// Quantizes and writes the model, choosing weight scales by `mode` and each
/// layer's weight precision by `plan`.
pub fn convert_plan(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    plan: &WeightPlan,
) -> Result<Converted> {
    convert_plan_data(spec, ranges, cap, mode, plan, None)
}

/// [`convert_plan`] with the float activations of the calibration graphs
/// (for [`WeightPlan::int4_gpfq`]).
pub fn convert_plan_data(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    plan: &WeightPlan,
    acts: Option<&Values>,
) -> Result<Converted> {
    convert_plan_graphs(spec, ranges, cap, mode, plan, acts, None)
}

/// [`convert_plan_data`] with the calibration graphs themselves (for
/// [`WeightPlan::int4_feedback`], which runs the partly quantized model on them).
pub fn convert_plan_graphs(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    mode: WeightScales,
    plan: &WeightPlan,
    acts: Option<&Values>,
    graphs: Option<&Graphs>,
) -> Result<Converted> {
    if (plan.int4_gpfq || plan.int4_feedback) && plan.any_int4() && acts.is_none() {
        bail!("GPFQ rounding needs the calibration activations");
    }
    let feedback = match (plan.int4_feedback && plan.any_int4(), acts, graphs) {
        (false, _, _) => None,
        (true, Some(a), Some(g)) => Some((a, g)),
        _ => bail!("sequential int4 rounding needs the calibration graphs"),
    };
    let layers =
        |spec: &Spec, ranges: &HashMap<String, Range>, cap: Capacity, pt: &dyn Fn(&str) -> bool| {
            match feedback {
                Some((a, g)) => convert_layers_seq(spec, ranges, cap, pt, plan, a, g),
                None => convert_layers(spec, ranges, cap, pt, plan, acts, &Hook::default()),
            }
        };
    match mode {
        WeightScales::PerChannel => layers(spec, ranges, cap, &|_| false),
        WeightScales::PerTensor => layers(spec, ranges, cap, &|_| true),
        WeightScales::Auto => {
            let fused = fuse(spec)?;
            let mut order: Vec<(f64, String)> = fused
                .ops
                .iter()
                .filter_map(|f| {
                    f.kind
                        .scaled_mats()
                        .map(|m| (channel_spread(&m), f.name.clone()))
                })
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut chosen: Vec<String> = Vec::new();
            let mut conv = layers(spec, ranges, cap, &|_| false)?;
            for (_, name) in order {
                if meets_size_goal(&conv) {
                    break;
                }
                chosen.push(name);
                conv = layers(spec, ranges, cap, &|n| chosen.iter().any(|c| c == n))?;
            }
            Ok(conv)
        }
    }
}

/// The row kind of a tensor as the format stores it.
fn kind_of(r: Rows) -> TensorKind {
    match r {
        Rows::Node => TensorKind::Node,
        Rows::Graph => TensorKind::Graph,
        Rows::Pair => TensorKind::Pair,
    }
}

/// Adds the model's input tensor (`name`, `channels`, of `kind`) quantized
/// by its calibrated range.
fn add_input(
    w: &mut ModelWriter,
    (name, channels, kind): (&str, usize, TensorKind),
    range: &dyn Fn(&str) -> Result<Range>,
) -> Result<u8> {
    add_input_bits(w, (name, channels, kind), range, None)
}

/// [`add_input`], int4 when `act4` holds the tensor it adds (quantized by
/// its int4 range).
fn add_input_bits(
    w: &mut ModelWriter,
    (name, channels, kind): (&str, usize, TensorKind),
    range: &dyn Fn(&str) -> Result<Range>,
    act4: Option<&crate::act4::Act4Plan>,
) -> Result<u8> {
    if channels > tinygnn::MAX_CHANNELS {
        bail!(
            "{} input '{name}' has {channels} channels; the runtime allows {}",
            if kind == TensorKind::Edge {
                "edge"
            } else {
                "model"
            },
            tinygnn::MAX_CHANNELS
        );
    }
    let q4 = match act4 {
        Some(a) => int4_quant(a, w.tensors().len(), name)?,
        None => None,
    };
    let (scale, zero_point) = match q4 {
        Some(q) => q,
        None => activation_quant(range(name)?),
    };
    let id = w.add_tensor(TensorDesc {
        kind,
        channels: channels as u16,
        scale,
        zero_point,
    });
    if q4.is_some() {
        w.set_i4(id);
    }
    Ok(id)
}

/// The quantization of the output of fused op `f` (input `input`), the
/// tensor about to get id `next`, and whether it is int4: the op's fixed
/// one, else its calibrated range; the next state's joint one; or its int4
/// range when the plan makes it int4 (an int4 output with a fixed
/// quantization, an act over an int4 input, `act4::select`, keeps the
/// input's int4 parameters).
fn output_quant(
    f: &FOp,
    input: &TensorDesc,
    states: &[(u8, String, TensorDesc)],
    plan: &WeightPlan,
    next: usize,
    range: &dyn Fn(&str) -> Result<Range>,
) -> Result<((f32, i8), bool)> {
    let fixed = f.kind.fixed_output(input);
    let mut q = match fixed {
        Some(q) => q,
        None => activation_quant(range(&f.name)?),
    };
    if let Some(s) = next_state_quant(states, f, input)? {
        q = s;
    }
    let q4 = int4_quant(&plan.act4, next, &f.name)?;
    if let (Some(q4), None) = (q4, fixed) {
        q = q4;
    }
    Ok((q, q4.is_some()))
}

/// The int4 quantization of the tensor about to get id `next` (named
/// `name`) when the plan makes it int4, else `None`.
fn int4_quant(act4: &crate::act4::Act4Plan, next: usize, name: &str) -> Result<Option<(f32, i8)>> {
    let Ok(id) = u8::try_from(next) else {
        return Ok(None);
    };
    if !act4.tensors.contains(&id) {
        return Ok(None);
    }
    let r = act4
        .ranges
        .get(name)
        .ok_or_else(|| anyhow!("no int4 range for tensor '{name}'"))?;
    Ok(Some(crate::ops::common::activation_quant4(*r)))
}

/// The carried states of a recurrent spec (`spec.states`): adds each state
/// input tensor (quantized by its joint range) and returns, per state, its
/// id, the fused name of the output holding the next state and its
/// descriptor (which the next state gets exactly); empty without a state.
fn add_states(
    spec: &Spec,
    fused_outputs: &[String],
    w: &mut ModelWriter,
    ids: &mut HashMap<String, u8>,
    range: &dyn Fn(&str) -> Result<Range>,
) -> Result<Vec<(u8, String, TensorDesc)>> {
    let mut out = Vec::with_capacity(spec.states.len());
    for st in &spec.states {
        let h = add_input(w, (&st.name, st.channels, TensorKind::Node), range)?;
        ids.insert(st.name.clone(), h);
        let k = spec
            .outputs
            .iter()
            .position(|o| *o == st.next)
            .ok_or_else(|| anyhow!("state '{}': '{}' is not an output", st.name, st.next))?;
        let next = fused_outputs
            .get(k)
            .cloned()
            .ok_or_else(|| anyhow!("state '{}': output {k} is missing after fusion", st.name))?;
        if next == st.name || next == spec.input || spec.states.iter().any(|o| o.name == next) {
            bail!(
                "state '{}': the next state is an input itself, not computed by an op",
                st.name
            );
        }
        if out.iter().any(|(_, n, _)| *n == next) {
            bail!(
                "state '{}': its next value is computed by the same op as another state's",
                st.name
            );
        }
        out.push((h, next, w.tensors()[h as usize]));
    }
    Ok(out)
}

/// The quantization of fused op `f`'s output when it is the next state
/// ([`add_state`]): the state's own, so it is carried without a rescale.
fn next_state_quant(
    states: &[(u8, String, TensorDesc)],
    f: &FOp,
    input: &TensorDesc,
) -> Result<Option<(f32, i8)>> {
    let Some((_, next, h)) = states.iter().find(|s| s.1 == f.name) else {
        return Ok(None);
    };
    if f.kind
        .fixed_output(input)
        .is_some_and(|q| q != (h.scale, h.zero_point))
    {
        bail!("op '{}': computes the next state '{next}' but its device op fixes another quantization than the state's", f.name);
    }
    Ok(Some((h.scale, h.zero_point)))
}

/// Quantizes and writes the model; `per_tensor_layer(name)` says whether the
/// fused op `name` gets one weight scale for all its channels.
fn convert_layers(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    per_tensor_layer: &dyn Fn(&str) -> bool,
    plan: &WeightPlan,
    acts: Option<&Values>,
    hook: &Hook<'_>,
) -> Result<Converted> {
    let fused = fuse(spec)?;
    let layers: Vec<_> = fused
        .ops
        .iter()
        .filter(|f| f.has_weights())
        .map(FOp::layer)
        .collect();
    plan.check_names(&layers)?;
    let mut step = WeightStep {
        plan,
        per_tensor_layer,
        acts,
        per_tensor_layers: Vec::new(),
        layer_bits: Vec::new(),
        layer_weights: Vec::new(),
    };
    let range = |name: &str| -> Result<Range> {
        ranges
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("no calibration range for tensor '{name}'"))
    };
    let mut w = ModelWriter::new();
    let mut ids: HashMap<String, u8> = HashMap::new();
    let input = add_input_bits(
        &mut w,
        (&spec.input, spec.in_channels, TensorKind::Node),
        &range,
        Some(&plan.act4),
    )?;
    ids.insert(spec.input.clone(), input);
    let states = add_states(spec, &fused.outputs, &mut w, &mut ids, &range)?;
    // The edge-feature input: one Edge tensor, quantized like the node input.
    let mut edge_attr = None;
    if let Some((name, d)) = &spec.edge_input {
        let e = add_input(&mut w, (name, *d, TensorKind::Edge), &range)?;
        ids.insert(name.clone(), e);
        edge_attr = Some(e);
    }
    if fused.ops.len() > tinygnn::MAX_OPS {
        bail!(
            "model has {} ops after fusion; the format allows {}",
            fused.ops.len(),
            tinygnn::MAX_OPS
        );
    }
    let mut bytes = Bytes::default();
    let mut warnings = Vec::new();
    for f in &fused.ops {
        let who = format!("op '{}' ({})", f.name, f.merged.join(" → "));
        if f.channels > tinygnn::MAX_CHANNELS {
            bail!(
                "{who}: {} channels exceed the runtime's maximum {}",
                f.channels,
                tinygnn::MAX_CHANNELS
            );
        }
        if w.tensors().len() >= tinygnn::MAX_TENSORS {
            bail!("{who}: more than {} tensors", tinygnn::MAX_TENSORS);
        }
        let in_ids: Vec<u8> = f.inputs.iter().map(|i| ids[i]).collect();
        let in_desc: Vec<TensorDesc> = in_ids.iter().map(|&i| w.tensors()[i as usize]).collect();
        let ((scale, zero_point), int4) =
            output_quant(f, &in_desc[0], &states, plan, w.tensors().len(), &range)?;
        let out_desc = TensorDesc {
            kind: kind_of(f.rows),
            channels: f.channels as u16,
            scale,
            zero_point,
        };
        let output = w.add_tensor(out_desc);
        if int4 {
            w.set_i4(output);
        }
        ids.insert(f.name.clone(), output);
        let mut cx = Lower {
            who,
            layer: f.layer(),
            channels: f.channels,
            s_in: in_desc[0].scale as f64,
            s_out: out_desc.scale as f64,
            in_ids,
            in_desc,
            output,
            out_desc,
            act: f.act.device(),
            edge_attr,
            range: &range,
            hook,
            w: &mut w,
            step: &mut step,
            bytes: &mut bytes,
            warnings: &mut warnings,
        };
        let op = f.kind.lower(&mut cx)?;
        w.add_op(op);
    }
    if w.tensors().iter().any(|t| t.kind == TensorKind::Pair) {
        if cap.max_pairs == 0 {
            bail!("the model scores node pairs but its pair capacity is 0 (give --max-pairs, or calibration graphs with edge_label_index)");
        }
        w.set_max_pairs(cap.max_pairs);
    }
    let outputs: Vec<u8> = fused.outputs.iter().map(|o| ids[o]).collect();
    if !states.is_empty() {
        let pairs: Vec<(u8, u8)> = states.iter().map(|(h, next, _)| (*h, ids[next])).collect();
        w.set_states(&pairs);
    }
    if outputs.len() > 4 {
        bail!("model has {} outputs; the format allows 4", outputs.len());
    }
    let bytes_out = w
        .finish(
            input,
            &outputs,
            cap.max_nodes,
            cap.max_edges,
            cap.max_graphs,
        )
        .map_err(|e| anyhow!("writing the model failed: {e}"))?;
    Ok(Converted {
        bytes: bytes_out,
        ops: fused.ops,
        weight_bytes: bytes.weight,
        bias_bytes: bytes.bias,
        param_bytes: bytes.param,
        warnings,
        per_tensor_layers: step.per_tensor_layers,
        layer_bits: step.layer_bits,
        layer_weights: step.layer_weights,
    })
}

/// The input the weights of `f` multiply, computed from its input tensor `x`
/// (GCN: `Â·x`; SAGE: `[agg(x), x]`; see
/// [`crate::ops::HostOp::feedback_input`]); `x` itself for any other op.
pub fn layer_input(f: &FOp, x: &Tensor, g: &Graphs) -> Tensor {
    f.kind.feedback_input(x, g).unwrap_or_else(|| x.clone())
}

/// [`convert_layers`] with sequential int4 rounding ([`WeightPlan::int4_feedback`]):
/// for every int4 layer with weights, in file order, the model with the
/// earlier layers already fixed is run on the calibration graphs `g` by the
/// runtime; the layer's quantized input from that run and its float input
/// (`acts`) fix its int4 values by [`gpfq_fb_row`].
fn convert_layers_seq(
    spec: &Spec,
    ranges: &HashMap<String, Range>,
    cap: Capacity,
    per_tensor_layer: &dyn Fn(&str) -> bool,
    plan: &WeightPlan,
    acts: &Values,
    g: &Graphs,
) -> Result<Converted> {
    let fused = fuse(spec)?;
    let mut fixed: HashMap<String, Fixed> = HashMap::new();
    let mut ranges = ranges.clone();
    let ranges_now = std::cell::RefCell::new(ranges.clone());
    let run = |fixed: &HashMap<String, Fixed>,
               pending: Option<(&str, &Tensor, &Tensor)>|
     -> Result<(Converted, Option<Fixed>)> {
        let hook = Hook {
            fixed: Some(fixed),
            pending,
            made: Default::default(),
        };
        let r = ranges_now.borrow().clone();
        let c = convert_layers(spec, &r, cap, per_tensor_layer, plan, Some(acts), &hook)?;
        Ok((c, hook.made.into_inner()))
    };
    for f in &fused.ops {
        if !f.has_weights() || !plan.bits(&f.layer()).is_sub_byte() {
            continue;
        }
        let input = &f.inputs[0];
        let xf = acts
            .get(input)
            .ok_or_else(|| anyhow!("no float activation for tensor '{input}'"))?;
        // The ops the hook rounds say so by giving the input their weights multiply.
        let Some(xa) = f.kind.feedback_input(xf, g) else {
            continue;
        };
        let xq = if *input == spec.input {
            // As the session quantizes it: int8, or int4 (saturated to
            // −8..=7) when the plan makes the input int4.
            let (s, z, lo, hi) = match plan.act4.ranges.get(input) {
                Some(r4) => {
                    let (s, z) = crate::ops::common::activation_quant4(*r4);
                    (s, z, -8, 7)
                }
                None => {
                    let r = ranges
                        .get(input)
                        .copied()
                        .ok_or_else(|| anyhow!("no calibration range for tensor '{input}'"))?;
                    let (s, z) = activation_quant(r);
                    (s, z, i8::MIN, i8::MAX)
                }
            };
            Tensor {
                data: xf
                    .data
                    .iter()
                    .map(|&v| dequantize_value(quantize_value(v, s, z).clamp(lo, hi), s, z))
                    .collect(),
                ..xf.clone()
            }
        } else {
            let idx = fused
                .ops
                .iter()
                .position(|o| o.name == *input)
                .ok_or_else(|| anyhow!("no op produces tensor '{input}'"))?;
            let (conv, _) = run(&fixed, None)?;
            let model = tinygnn::Model::from_bytes(&conv.bytes).map_err(|e| anyhow!("{e}"))?;
            let mut got = None;
            crate::rt::run_traced(&model, g, |i, t| {
                if i == idx {
                    got = Some(t.clone());
                }
            })?;
            let t = got.ok_or_else(|| anyhow!("the runtime did not trace op {idx}"))?;
            if t.rows != xf.rows || t.channels != xf.channels {
                bail!("tensor '{input}': traced shape differs from the float one");
            }
            Tensor {
                rows: t.rows,
                channels: t.channels,
                data: (0..t.rows * t.channels)
                    .map(|i| t.dequantize(i / t.channels, i % t.channels))
                    .collect(),
            }
        };
        let xqa = layer_input(f, &xq, g);
        let (_, made) = run(&fixed, Some((f.name.as_str(), &xa, &xqa)))?;
        let made = made.ok_or_else(|| anyhow!("layer '{}' was not rounded", f.name))?;
        // Output ranges are re-measured by `simulate` (a plain projection):
        // not for normalized SAGE, nor for GAT (its output is the attention-
        // weighted sum, not the projection).
        let normalized = !f.kind.output_is_projection();
        if let Some(method) = plan.int4_recalibrate {
            if !normalized && !fused.outputs.contains(&f.name) {
                let y = simulate(&xqa, &made, f.act);
                ranges.insert(f.name.clone(), crate::calibrate::range_of(&y, method));
                *ranges_now.borrow_mut() = ranges.clone();
            }
        }
        fixed.insert(f.name.clone(), made);
    }
    Ok(run(&fixed, None)?.0)
}

/// The float output `act(X̃·(s·q)ᵀ + b)` of a fixed int4 layer on its
/// (aggregated) quantized input `xq`, all values row by row.
fn simulate(xq: &Tensor, made: &Fixed, act: Act) -> Vec<f64> {
    let (q, b, scales) = made;
    let cols = xq.channels;
    let mut out = Vec::with_capacity(xq.rows * b.len());
    for r in 0..xq.rows {
        let x = xq.row(r);
        for (c, (&bc, &s)) in b.iter().zip(scales).enumerate() {
            // The row of channel c over the concatenated matrices.
            let per = q.first().map_or(0, |m| m.len() / b.len().max(1));
            let mut acc = bc;
            let mut k = 0usize;
            for m in q {
                for &w in &m[c * per..(c + 1) * per] {
                    if k < cols {
                        acc += s * w as f64 * x[k];
                    }
                    k += 1;
                }
            }
            out.push(match act {
                Act::None => acc,
                Act::Relu => acc.max(0.0),
                Act::Leaky(a) => {
                    if acc < 0.0 {
                        acc * a
                    } else {
                        acc
                    }
                }
            });
        }
    }
    out
}
