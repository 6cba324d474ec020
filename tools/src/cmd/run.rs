//! `tinygnn run`: host simulation of a `.tgnn` model with the runtime.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use tinygnn::Model;

use super::object;
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
    let outputs: Vec<&std::path::Path> = a.output_bytes.iter().map(|p| p.as_path()).collect();
    crate::fsio::check_outputs(&outputs, &[&a.model, &a.graphs])?;
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let model = Model::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: invalid model: {e}", a.model.display()))?;
    let g = st::read_graphs(&a.graphs)?;
    // Every output tensor, from the op that writes it.
    let writers: Vec<u8> = model.ops().map(|op| op.output()).collect();
    let mut outputs: Vec<Option<rt::RunOutput>> = vec![None; model.outputs().len()];
    let (out, runs, arena) = rt::run_batched_opts(&model, &g, a.sparse, |i, t| {
        for (slot, &tensor) in outputs.iter_mut().zip(model.outputs()) {
            if writers.get(i) == Some(&tensor) {
                *slot = Some(t.clone());
            }
        }
    })?;
    let report = super::Report::new(&out, &g, a.output_bytes.as_deref())?;
    if a.json {
        let values: Vec<_> = outputs
            .iter()
            .zip(model.outputs())
            .filter_map(|(o, &t)| o.as_ref().map(|o| super::output_json(Some(t), o)))
            .collect();
        let extra = json!({
            "arena_bytes": arena, "sparse_input": a.sparse,
            "sparse_in_place": a.sparse && model.reads_sparse_input(),
            "outputs": values,
        });
        return report.print_json(("runs", runs), object(extra));
    }
    report.print_shape();
    let how = match (a.sparse, model.reads_sparse_input()) {
        (false, _) => "dense input",
        (true, true) => "sparse input, read in place by the first layer",
        (true, false) => {
            "sparse input, expanded: an op other than Linear/GCN/SAGE-sum/mean/GAT reads it"
        }
    };
    outln!("arena: {arena} bytes ({how})");
    if runs > 1 {
        outln!("(the batch exceeds the model's capacity: ran {runs} runs of whole graphs)");
    }
    report.print_rows();
    Ok(())
}
