//! `tinygnn inspect`: header, ops, tensors and memory of a `.tgnn` model.

use std::path::PathBuf;
use tinygnn::ops;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use tinygnn::format::{Activation, Op, TensorDesc, TensorKind, WeightBits};
use tinygnn::Model;

use crate::rt;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .tgnn model.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn act_str(a: &Activation) -> String {
    match a {
        Activation::None => "-".into(),
        Activation::Relu => "relu".into(),
        Activation::LeakyRelu { alpha_q16 } => {
            format!("leaky_relu({:.4})", *alpha_q16 as f64 / 65536.0)
        }
    }
}

fn kind_str(k: TensorKind) -> &'static str {
    match k {
        TensorKind::Node => "node",
        TensorKind::Graph => "graph",
        TensorKind::Edge => "edge",
        TensorKind::Pair => "pair",
    }
}

fn shape_str(t: &TensorDesc) -> String {
    format!(
        "[{}, {}]",
        match t.kind {
            TensorKind::Node => "N",
            TensorKind::Graph => "G",
            TensorKind::Edge => "E",
            TensorKind::Pair => "P",
        },
        t.channels
    )
}

/// Summary of the (mult, shift) records of a params section.
fn mult_summary(model: &Model<'_>, params: tinygnn::format::Section, out: u8) -> String {
    let bytes = model.data(params);
    let n = model
        .tensors()
        .get(out as usize)
        .map_or(0, |t| t.channels as usize);
    let mut shifts = (i32::MAX, i32::MIN);
    for c in 0..n {
        let (_, _, s) = tinygnn::channel_record_of(bytes, n, c);
        shifts = (shifts.0.min(s), shifts.1.max(s));
    }
    if n == 0 {
        return String::new();
    }
    let form = match tinygnn::format::params_form(bytes.len(), n) {
        Some(tinygnn::format::ParamsForm::Compact) => ", compact",
        _ => "",
    };
    format!("{n} ch, shift {}..{}{form}", shifts.0, shifts.1)
}

/// Structured description of a model (the `--json` output).
pub fn describe(model: &Model<'_>, file_len: usize) -> Value {
    let tensors = model.tensors();
    let mut weight_bytes = 0usize;
    let mut int4_bytes = 0usize;
    let mut add_weights = |s: &tinygnn::format::Section| {
        let n = s.weight_bytes().len as usize;
        weight_bytes += n;
        if s.weight_bits() == WeightBits::I4 {
            int4_bytes += n;
        }
        crate::quantize::bits_name(s.weight_bits())
    };
    let mut param_bytes = 0usize;
    let mut bias_bytes = 0usize;
    let mut ops = Vec::new();
    for (i, op) in model.ops().enumerate() {
        let mut inputs = Vec::new();
        op.for_each_input(|t| inputs.push(t));
        let out = op.output();
        let (act, params, extra): (String, String, Value) = match &op {
            Op::Linear(ops::Linear {
                weights,
                params,
                act,
                ..
            }) => {
                let wb = add_weights(weights);
                param_bytes += params.len as usize;
                bias_bytes += 4 * tensors.get(out as usize).map_or(0, |t| t.channels as usize);
                (
                    act_str(act),
                    mult_summary(model, *params, out),
                    json!({"weights": wb}),
                )
            }
            Op::GcnConv(ops::GcnConv {
                weights,
                params,
                act,
                improved,
                add_self_loops,
                normalize,
                edge_weight,
                ..
            }) => {
                let wb = add_weights(weights);
                param_bytes += params.len as usize;
                bias_bytes += 4 * tensors.get(out as usize).map_or(0, |t| t.channels as usize);
                (
                    act_str(act),
                    mult_summary(model, *params, out),
                    json!({"weights": wb, "improved": improved, "add_self_loops": add_self_loops, "normalize": normalize, "edge_weight": edge_weight}),
                )
            }
            Op::SageConv(ops::SageConv {
                aggr,
                weights_l,
                weights_r,
                params,
                act,
                normalize,
                ..
            }) => {
                let wb = add_weights(weights_l);
                add_weights(weights_r);
                param_bytes += params.len as usize;
                bias_bytes += 4 * tensors.get(out as usize).map_or(0, |t| t.channels as usize);
                (
                    act_str(act),
                    mult_summary(model, *params, out),
                    json!({"weights": wb, "aggr": format!("{aggr:?}").to_lowercase(), "root_weight": weights_r.len > 0, "normalize": normalize}),
                )
            }
            Op::GinAggregate(ops::GinAggregate {
                one_plus_eps_q16,
                mult,
                shift,
                ..
            }) => (
                "-".into(),
                format!("mult {mult} shift {shift}"),
                json!({"one_plus_eps": *one_plus_eps_q16 as f64 / 65536.0}),
            ),
            Op::GlobalPool(ops::GlobalPool {
                pool, mult, shift, ..
            }) => (
                "-".into(),
                format!("mult {mult} shift {shift}"),
                json!({"pool": format!("{pool:?}").to_lowercase()}),
            ),
            Op::Add(ops::Add {
                mult_a_q16,
                mult_b_q16,
                act,
                ..
            }) => (
                act_str(act),
                format!("q16 {mult_a_q16}, {mult_b_q16}"),
                json!({}),
            ),
            Op::Concat(ops::Concat { parts, .. }) => (
                "-".into(),
                format!(
                    "q16 {}",
                    parts
                        .iter()
                        .map(|p| p.mult_q16.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                json!({}),
            ),
            Op::Act(ops::Act { act, .. }) => {
                (act_str(act), "same quant as input".into(), json!({}))
            }
            Op::GatConv(ops::GatConv {
                heads,
                concat,
                add_self_loops,
                negative_slope_q16,
                weights,
                weights_r,
                lin_bias,
                att,
                logit,
                params,
                act,
                ..
            }) => {
                add_weights(weights);
                add_weights(weights_r);
                param_bytes += (params.len + lin_bias.len + att.len + logit.len) as usize;
                bias_bytes += 4 * tensors.get(out as usize).map_or(0, |t| t.channels as usize);
                (
                    act_str(act),
                    mult_summary(model, *params, out),
                    json!({"heads": heads, "concat": concat, "add_self_loops": add_self_loops,
                           "negative_slope": *negative_slope_q16 as f64 / 65536.0}),
                )
            }
            Op::Propagate(ops::Propagate {
                k,
                alpha_q30,
                weights,
                weights_0,
                params,
                act,
                add_self_loops,
                normalize,
                edge_weight,
                ..
            }) => {
                add_weights(weights);
                add_weights(weights_0);
                param_bytes += params.len as usize;
                bias_bytes += 4 * tensors.get(out as usize).map_or(0, |t| t.channels as usize);
                (
                    act_str(act),
                    mult_summary(model, *params, out),
                    json!({"K": k, "alpha": *alpha_q30 as f64 / (1u64 << 30) as f64,
                           "add_self_loops": add_self_loops, "normalize": normalize,
                           "edge_weight": edge_weight}),
                )
            }
            Op::Lut(ops::Lut { table, .. }) => {
                param_bytes += table.len as usize;
                ("-".into(), "256-entry table".into(), json!({}))
            }
            Op::Softmax(ops::Softmax {
                table,
                log,
                ln2_q16,
                ..
            }) => {
                param_bytes += table.len as usize;
                let p = if *log {
                    format!(
                        "256-entry exp table, ln2/s_x {:.4}",
                        *ln2_q16 as f64 / 65536.0
                    )
                } else {
                    "256-entry exp table, output 1/256".into()
                };
                ("-".into(), p, json!({ "log": log }))
            }
            Op::GineConv(ops::GineConv {
                one_plus_eps_q16,
                edge_weights,
                edge_params,
                mult,
                shift,
                ..
            }) => {
                let wb = add_weights(edge_weights);
                param_bytes += edge_params.len as usize;
                bias_bytes += 4 * tensors.get(out as usize).map_or(0, |t| t.channels as usize);
                (
                    "-".into(),
                    format!("mult {mult} shift {shift}"),
                    json!({"one_plus_eps": *one_plus_eps_q16 as f64 / 65536.0,
                           "edge_lin": edge_weights.len > 0, "edge_weights": wb}),
                )
            }
            Op::EdgeConv(ops::EdgeConv {
                aggr,
                k,
                hidden,
                w_self,
                w_nbr,
                params1,
                act1,
                w2,
                params2,
                act2,
                ..
            }) => {
                let wb = add_weights(w_self);
                add_weights(w_nbr);
                add_weights(w2);
                param_bytes += (params1.len + params2.len) as usize;
                bias_bytes += 4 * (*hidden as usize);
                if w2.len > 0 {
                    bias_bytes += 4 * tensors.get(out as usize).map_or(0, |t| t.channels as usize);
                }
                let last = if w2.len > 0 { *params2 } else { *params1 };
                (
                    format!("{} / {}", act_str(act1), act_str(act2)),
                    mult_summary(model, last, out),
                    json!({"weights": wb, "aggr": format!("{aggr:?}").to_lowercase(), "k": k,
                           "hidden": hidden, "layers": if w2.len > 0 { 2 } else { 1 }}),
                )
            }
            Op::InnerProduct(ops::InnerProduct { mult, shift, .. }) => {
                ("-".into(), format!("mult {mult} shift {shift}"), json!({}))
            }
            Op::PairFeatures(ops::PairFeatures { mode, .. }) => match mode {
                tinygnn::format::PairMode::Hadamard { mult, shift } => (
                    "-".into(),
                    format!("mult {mult} shift {shift}"),
                    json!({"mode": "hadamard"}),
                ),
                tinygnn::format::PairMode::Concat => (
                    "-".into(),
                    "same quant as input".into(),
                    json!({"mode": "concat"}),
                ),
            },
        };
        ops.push(json!({
            "index": i,
            "op": op.name(),
            "inputs": inputs,
            "output": out,
            "in_shapes": inputs.iter().map(|&t| shape_str(&tensors[t as usize])).collect::<Vec<_>>(),
            "out_shape": shape_str(&tensors[out as usize]),
            "activation": act,
            "quant": params,
            "attrs": extra,
        }));
    }
    let (n, e, g) = model.capacity();
    let h = model.header();
    json!({
        "format_version": h.version,
        "file_bytes": file_len,
        "crc32": format!("{:08x}", h.crc),
        "metadata_bytes": h.meta.len,
        "data_bytes": h.data.len,
        "capacity": {"max_nodes": n, "max_edges": e, "max_graphs": g},
        "input": model.input(),
        "outputs": model.outputs(),
        "uses_edge_weight": model.uses_edge_weight(),
        "ops": ops,
        "tensors": tensors.iter().enumerate().map(|(i, t)| json!({
            "id": i, "kind": kind_str(t.kind), "channels": t.channels,
            "scale": t.scale, "zero_point": t.zero_point,
        })).collect::<Vec<_>>(),
        "flash": {"file": file_len, "weights": weight_bytes, "int8_weights": weight_bytes - int4_bytes, "int4_weights": int4_bytes, "int32_params": param_bytes, "int32_bias": bias_bytes},
        "arena_bytes_at_capacity": rt::arena_bytes(model, n as usize, e as usize, g as usize),
        "arena_bytes_sparse_at_capacity": rt::arena_bytes_sparse(model, n as usize, e as usize, g as usize),
        "reads_sparse_input": model.reads_sparse_input(),
    })
}

/// Runs `inspect`.
pub fn run(a: &Args) -> Result<()> {
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let model = Model::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: invalid model: {e}", a.model.display()))?;
    let d = describe(&model, bytes.len());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    println!(
        "{}: tgnn v{}, {} bytes (metadata {}, data {}), crc32 {}",
        a.model.display(),
        d["format_version"],
        d["file_bytes"],
        d["metadata_bytes"],
        d["data_bytes"],
        d["crc32"].as_str().unwrap_or("")
    );
    let c = &d["capacity"];
    println!(
        "capacity: {} nodes, {} edges, {} graphs; input t{}; outputs {}; edge weights: {}",
        c["max_nodes"],
        c["max_edges"],
        c["max_graphs"],
        d["input"],
        d["outputs"],
        if model.uses_edge_weight() {
            "required"
        } else {
            "unused"
        }
    );
    println!("\nops:");
    println!(
        "  {:>2}  {:<14} {:<18} {:<16} {:<18} quant",
        "#", "op", "in → out", "shape", "activation"
    );
    for o in d["ops"].as_array().into_iter().flatten() {
        let ins: Vec<String> = o["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| format!("t{t}"))
            .collect();
        let shapes: Vec<String> = o["in_shapes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or("").to_string())
            .collect();
        let attrs = o["attrs"].as_object().filter(|m| !m.is_empty()).map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        println!(
            "  {:>2}  {:<14} {:<18} {:<16} {:<18} {}{}",
            o["index"].as_u64().unwrap_or(0),
            o["op"].as_str().unwrap_or(""),
            format!("{} → t{}", ins.join(","), o["output"]),
            format!(
                "{}→{}",
                shapes.join(","),
                o["out_shape"].as_str().unwrap_or("")
            ),
            o["activation"].as_str().unwrap_or(""),
            o["quant"].as_str().unwrap_or(""),
            attrs.map(|s| format!("  [{s}]")).unwrap_or_default()
        );
    }
    println!("\ntensors:");
    println!(
        "  {:<4} {:<5} {:>8} {:>14} {:>5}",
        "id", "kind", "channels", "scale", "zp"
    );
    for t in d["tensors"].as_array().into_iter().flatten() {
        println!(
            "  {:<4} {:<5} {:>8} {:>14.6e} {:>5}",
            format!("t{}", t["id"]),
            t["kind"].as_str().unwrap_or(""),
            t["channels"].as_u64().unwrap_or(0),
            t["scale"].as_f64().unwrap_or(0.0),
            t["zero_point"].as_i64().unwrap_or(0)
        );
    }
    let f = &d["flash"];
    println!(
        "\nflash: {} bytes file = {} weights ({} int8 + {} int4) + {} int32 channel params + {} metadata/header/padding",
        f["file"],
        f["weights"],
        f["int8_weights"],
        f["int4_weights"],
        f["int32_params"],
        f["file"].as_u64().unwrap_or(0) - f["weights"].as_u64().unwrap_or(0) - f["int32_params"].as_u64().unwrap_or(0)
    );
    match d["arena_bytes_at_capacity"].as_u64() {
        Some(b) => println!("arena at capacity: {b} bytes"),
        None => println!("arena at capacity: unknown (runtime without Session)"),
    }
    if let Some(b) = d["arena_bytes_sparse_at_capacity"].as_u64() {
        println!("{}", super::sparse_arena_line(&model, b as usize));
    }
    Ok(())
}
