//! `tinygnn run`: host simulation of a `.tgnn` model with the runtime.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use tinygnn::Model;

use crate::{rt, st};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The .tgnn model.
    pub model: PathBuf,
    /// Input graphs (GRAPHS.safetensors), run as one batch.
    pub graphs: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the raw int8 output (row-major) to this file.
    #[arg(long)]
    pub output_bytes: Option<PathBuf>,
    /// Give the runtime the features as sparse int8 (`Features::SparseI8`:
    /// quantized on the host, only entries ≠ the input zero point), as a
    /// device with bag-of-words inputs would; same output bytes.
    #[arg(long)]
    pub sparse: bool,
}

/// Runs `run`.
pub fn run(a: &Args) -> Result<()> {
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let model = Model::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: invalid model: {e}", a.model.display()))?;
    let g = st::read_graphs(&a.graphs)?;
    let (out, runs, arena) = rt::run_batched_opts(&model, &g, a.sparse, |_, _| {})?;
    if let Some(p) = &a.output_bytes {
        let raw: Vec<u8> = out.data.iter().map(|&v| v as u8).collect();
        std::fs::write(p, raw).with_context(|| format!("cannot write {}", p.display()))?;
    }
    let pred: Vec<usize> = (0..out.rows).map(|r| out.argmax(r)).collect();
    let acc = super::accuracy(&pred, &g);
    // Link prediction: AUC of a one-channel pair output against edge_label.
    let auc = g
        .pairs
        .as_ref()
        .and_then(|p| p.label.as_ref())
        .filter(|l| out.channels == 1 && l.len() == out.rows)
        .and_then(|l| {
            let s: Vec<f64> = (0..out.rows).map(|r| out.dequantize(r, 0)).collect();
            super::verify::auc(&s, l)
        });
    if a.json {
        let v = json!({
            "rows": out.rows, "channels": out.channels, "runs": runs, "scale": out.scale, "zero_point": out.zero_point,
            "argmax": pred,
            "accuracy": acc.map(|a| a.0), "accuracy_rows": acc.map(|a| a.1),
            "arena_bytes": arena, "sparse_input": a.sparse,
            "sparse_in_place": a.sparse && model.reads_sparse_input(),
            "auc": auc,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "output: {} rows × {} channels, scale {:.6e}, zero point {}",
        out.rows, out.channels, out.scale, out.zero_point
    );
    let how = match (a.sparse, model.reads_sparse_input()) {
        (false, _) => "dense input",
        (true, true) => "sparse input, read in place by the first layer",
        (true, false) => {
            "sparse input, expanded: an op other than Linear/GCN/SAGE-sum/mean reads it"
        }
    };
    println!("arena: {arena} bytes ({how})");
    if runs > 1 {
        println!("(the batch exceeds the model's capacity: ran {runs} runs of whole graphs)");
    }
    let show = out.rows.min(10);
    for (r, p) in pred.iter().enumerate().take(show) {
        let row: Vec<String> = out.data[r * out.channels..(r + 1) * out.channels]
            .iter()
            .take(8)
            .map(|v| v.to_string())
            .collect();
        println!(
            "  row {r:>5}: argmax {p:>3}   int8 [{}{}]",
            row.join(", "),
            if out.channels > 8 { ", …" } else { "" }
        );
    }
    if out.rows > show {
        println!("  … {} more rows", out.rows - show);
    }
    let mut hist = vec![0usize; out.channels];
    pred.iter().for_each(|&p| hist[p] += 1);
    println!("argmax histogram: {hist:?}");
    if let Some((acc, n)) = acc {
        println!(
            "accuracy: {:.2}% over {n} {}",
            acc * 100.0,
            super::accuracy_scope(&g, out.rows)
        );
    }
    if let Some(auc) = auc {
        println!(
            "link AUC: {:.2}% over {} labelled pairs (edge_label)",
            auc * 100.0,
            out.rows
        );
    }
    if let Some(p) = &a.output_bytes {
        println!("wrote {} output bytes to {}", out.data.len(), p.display());
    }
    Ok(())
}
