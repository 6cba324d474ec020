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
    /// Input graphs (GRAPHS.safetensors), run as one batch (with
    /// `--sequence`: the steps of a sequence).
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
    /// Read the graphs as a sequence (a recurrent model): graph `t` of the
    /// file is step `t` (all steps share edge_index); the steps run in
    /// order from the zero state, carrying the int8 state. `--output-bytes`
    /// then writes every step's first output, concatenated in step order;
    /// `--json` gives per-step outputs and argmax.
    #[arg(long, conflicts_with = "sparse")]
    pub sequence: bool,
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
    if a.sequence {
        return run_sequence(a, &model, &g);
    }
    if model.num_states() > 0 {
        anyhow::bail!(
            "{}: the model is a recurrent cell (it carries a state); run it with --sequence",
            a.model.display()
        );
    }
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

/// `run --sequence`: the steps of `g` in order from the zero state.
fn run_sequence(a: &Args, model: &Model<'_>, g: &st::Graphs) -> Result<()> {
    let steps = g.sequence_steps()?;
    let (outs, arena) = rt::run_sequence(model, &steps, |_, _, _| {})?;
    if let Some(path) = &a.output_bytes {
        let bytes: Vec<u8> = outs
            .iter()
            .flat_map(|s| s.outputs[0].data.iter().map(|&v| v as u8))
            .collect();
        crate::fsio::write(path, &bytes)?;
    }
    let argmax = |o: &rt::RunOutput| -> Vec<usize> { (0..o.rows).map(|r| o.argmax(r)).collect() };
    if a.json {
        let steps_json: Vec<_> = outs
            .iter()
            .enumerate()
            .map(|(t, s)| {
                let values: Vec<_> = s
                    .outputs
                    .iter()
                    .zip(model.outputs())
                    .map(|(o, &tensor)| super::output_json(Some(tensor), o))
                    .collect();
                json!({"step": t, "outputs": values, "argmax": argmax(&s.outputs[0])})
            })
            .collect();
        let (s_in, s_out) = model.state().unwrap_or((0, 0));
        let v = json!({
            "sequence": true, "steps": steps_json.len(), "nodes": steps.first().map_or(0, |s| s.num_nodes),
            "arena_bytes": arena, "state_bytes": model.state_bytes(steps.first().map_or(0, |s| s.num_nodes)),
            "state": {"input": s_in, "next": s_out},
            "states": model.states().map(|(i, o)| json!({"input": i, "next": o})).collect::<Vec<_>>(),
            "per_step": steps_json,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let n = steps.first().map_or(0, |s| s.num_nodes);
    outln!(
        "sequence: {} steps of {} nodes, {} edges; state {} bytes; arena: {arena} bytes",
        steps.len(),
        n,
        steps.first().map_or(0, |s| s.num_edges()),
        model.state_bytes(n)
    );
    for (t, s) in outs.iter().enumerate() {
        let am = argmax(&s.outputs[0]);
        let shown: Vec<String> = am.iter().take(16).map(|c| c.to_string()).collect();
        outln!(
            "step {t}: argmax {}{}",
            shown.join(" "),
            if am.len() > 16 { " …" } else { "" }
        );
    }
    Ok(())
}
