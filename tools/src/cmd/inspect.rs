//! `tinygnn inspect`: header, ops, tensors and memory of a `.tgnn` model.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use tinygnn::format::{TensorDesc, TensorKind};
use tinygnn::Model;

use crate::{ops, rt};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .tgnn model.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn kind_str(k: TensorKind) -> &'static str {
    match k {
        TensorKind::Node => "node",
        TensorKind::Graph => "graph",
        TensorKind::Edge => "edge",
        TensorKind::Pair => "pair",
        // `TensorKind` is non-exhaustive; this tool and the runtime are
        // one version, so a new kind is added here with it.
        _ => "unknown",
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
            _ => "?",
        },
        t.channels
    )
}

/// Structured description of a model (the `--json` output).
pub fn describe(model: &Model<'_>, file_len: usize) -> Value {
    let tensors = model.tensors();
    let mut cx = ops::describe::Inspect::new(model);
    let mut list = Vec::new();
    for (i, op) in model.ops().enumerate() {
        let mut inputs = Vec::new();
        op.for_each_input(|t| inputs.push(t));
        let out = op.output();
        let d = ops::describe(&op, &mut cx);
        let (act, params, extra) = (d.act, d.quant, d.attrs);
        list.push(json!({
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
        "state": model.state().map(|(i, o)| json!({"input": i, "next": o})),
        "states": model.states().map(|(i, o)| json!({"input": i, "next": o})).collect::<Vec<_>>(),
        "ops": list,
        "tensors": tensors.iter().enumerate().map(|(i, t)| json!({
            "id": i, "kind": kind_str(t.kind), "channels": t.channels,
            "scale": t.scale, "zero_point": t.zero_point,
        })).collect::<Vec<_>>(),
        "flash": {"file": file_len, "weights": cx.weight_bytes, "int8_weights": cx.weight_bytes - cx.int4_bytes, "int4_weights": cx.int4_bytes, "int32_params": cx.param_bytes, "int32_bias": cx.bias_bytes},
        "arena_bytes_at_capacity": rt::arena_bytes(model, n as usize, e as usize, g as usize),
        "arena_bytes_sparse_at_capacity": rt::arena_bytes_sparse(model, n as usize, e as usize, g as usize),
        "wide_arena_bytes_at_capacity": model.wide_arena_bytes(n as usize, e as usize, g as usize, false),
        "wide_arena_bytes_sparse_at_capacity": model.wide_arena_bytes(n as usize, e as usize, g as usize, true),
        "reads_sparse_input": model.reads_sparse_input(),
        "features": super::cargo_features(model),
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
        outln!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    outln!(
        "{}: tgnn v{}, {} bytes (metadata {}, data {}), crc32 {}",
        a.model.display(),
        d["format_version"],
        d["file_bytes"],
        d["metadata_bytes"],
        d["data_bytes"],
        d["crc32"].as_str().unwrap_or("")
    );
    let c = &d["capacity"];
    outln!(
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
    outln!("\nops:");
    outln!(
        "  {:>2}  {:<14} {:<18} {:<16} {:<18} quant",
        "#",
        "op",
        "in → out",
        "shape",
        "activation"
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
        outln!(
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
    outln!("\ntensors:");
    outln!(
        "  {:<4} {:<5} {:>8} {:>14} {:>5}",
        "id",
        "kind",
        "channels",
        "scale",
        "zp"
    );
    for t in d["tensors"].as_array().into_iter().flatten() {
        outln!(
            "  {:<4} {:<5} {:>8} {:>14.6e} {:>5}",
            format!("t{}", t["id"]),
            t["kind"].as_str().unwrap_or(""),
            t["channels"].as_u64().unwrap_or(0),
            t["scale"].as_f64().unwrap_or(0.0),
            t["zero_point"].as_i64().unwrap_or(0)
        );
    }
    let f = &d["flash"];
    outln!(
        "\nflash: {} bytes file = {} weights ({} int8 + {} int4) + {} int32 channel params + {} metadata/header/padding",
        f["file"],
        f["weights"],
        f["int8_weights"],
        f["int4_weights"],
        f["int32_params"],
        f["file"].as_u64().unwrap_or(0) - f["weights"].as_u64().unwrap_or(0) - f["int32_params"].as_u64().unwrap_or(0)
    );
    match d["arena_bytes_at_capacity"].as_u64() {
        Some(b) => outln!("arena at capacity: {b} bytes"),
        None => outln!("arena at capacity: unknown (runtime without Session)"),
    }
    if let Some(b) = d["arena_bytes_sparse_at_capacity"].as_u64() {
        outln!("{}", super::sparse_arena_line(&model, b as usize));
    }
    let (wide, least) = (
        &d["wide_arena_bytes_sparse_at_capacity"],
        &d["arena_bytes_sparse_at_capacity"],
    );
    if let (Some(w), Some(l)) = (wide.as_u64(), least.as_u64()) {
        if w > l {
            outln!(
                "wide arena at capacity: {} bytes ({} with sparse input): every GCN and SAGE layer in one pass over its channels, the fastest (the least arena runs them in passes over channel blocks)",
                d["wide_arena_bytes_at_capacity"],
                w
            );
        }
    }
    outln!("{}", super::features_line(&super::cargo_features(&model)));
    Ok(())
}
