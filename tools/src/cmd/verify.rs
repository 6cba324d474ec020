//! `tinygnn verify`: float reference vs the int8 model run by the runtime.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use tinygnn::Model;

pub use crate::compare::{auc, compare, Comparison};
use crate::{debug, reference, rt, st};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The float model (MODEL.safetensors).
    pub float_model: PathBuf,
    /// The int8 model (MODEL.tgnn).
    pub model: PathBuf,
    /// Graphs to compare on (GRAPHS.safetensors), run as one batch.
    pub graphs: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// The quantization debugger: compare every op's int8 output with the
    /// float tensor it stands for (SQNR, max and mean abs error per op).
    /// `--per-op` is the same flag.
    #[arg(long = "per-layer", visible_alias = "per-op")]
    pub per_layer: bool,
    /// Graphs of the per-layer comparison: `test` (GRAPHS) or `calib` (the
    /// file given with `--calib`). Accuracy and agreement stay on GRAPHS.
    #[arg(long, default_value = "test", value_parser = ["test", "calib"])]
    pub on: String,
    /// Calibration graphs, for `--on calib`.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Also split every node op's error by the nodes' in-degree (buckets 0, 1,
    /// 2-3, 4-7, …, 64+). Implies --per-layer.
    #[arg(long)]
    pub by_degree: bool,
    /// Write an SVG bar chart of the SQNR per op (lowest in red). Implies --per-layer.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
    /// Read the graphs as a sequence (a recurrent model; see `run
    /// --sequence`): report per-step agreement of the int8 model (its own
    /// int8 state carried) with the float one (its float state), and the
    /// state's drift (dequantized int8 state vs float state, per step).
    #[arg(long, conflicts_with_all = ["per_layer", "by_degree", "plot", "calib"])]
    pub sequence: bool,
}

/// Float and int8 AUC of a one-channel pair output against `edge_label`
/// (`None` unless the graphs carry labelled pairs and the output is one
/// channel of one row per pair).
fn pair_auc(f: &reference::Tensor, q: &rt::RunOutput, g: &st::Graphs) -> Option<(f64, f64, usize)> {
    let label = g.pairs.as_ref()?.label.as_ref()?;
    if f.channels != 1 || q.channels != 1 || f.rows != label.len() || q.rows != label.len() {
        return None;
    }
    let qs: Vec<f64> = (0..q.rows).map(|r| q.dequantize(r, 0)).collect();
    Some((auc(&f.data, label)?, auc(&qs, label)?, label.len()))
}

/// Argmax of every row of a float tensor.
pub fn argmax_rows(t: &reference::Tensor) -> Vec<usize> {
    (0..t.rows)
        .map(|r| {
            let row = t.row(r);
            (0..row.len()).fold(0, |b, c| if row[c] > row[b] { c } else { b })
        })
        .collect()
}

/// Runs `verify`.
pub fn run(a: &Args) -> Result<()> {
    let per_layer = a.per_layer || a.by_degree || a.plot.is_some();
    let layer_graphs = match (a.on.as_str(), &a.calib) {
        ("calib", Some(p)) => Some(p),
        ("calib", None) => bail!("--on calib needs --calib CALIB.safetensors"),
        (_, Some(_)) => bail!("--calib is only used with --on calib"),
        _ => None,
    };
    let outputs: Vec<&std::path::Path> = a.plot.iter().map(|p| p.as_path()).collect();
    let mut inputs = vec![a.float_model.as_path(), &a.model, &a.graphs];
    inputs.extend(a.calib.as_deref());
    crate::fsio::check_outputs(&outputs, &inputs)?;
    let spec = crate::spec::load(&a.float_model)?;
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let model = Model::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: invalid model: {e}", a.model.display()))?;
    let g = st::read_graphs(&a.graphs)?;
    if a.sequence {
        return verify_sequence(a, &spec, &model, &g);
    }
    if model.num_states() > 0 {
        bail!(
            "{}: the model is a recurrent cell (it carries a state); verify it with --sequence",
            a.model.display()
        );
    }
    let vals = reference::run(&spec, &g, |_| {})?;
    let f = &vals[&spec.outputs[0]];
    let (layers, q) = if !per_layer {
        (Vec::new(), rt::run(&model, &g)?)
    } else if let Some(p) = layer_graphs {
        let cg = st::read_graphs(p)?;
        let cvals = reference::run(&spec, &cg, |_| {})?;
        let (l, _) = debug::layer_stats(&spec, &model, &cg, &cvals, a.by_degree)?;
        (l, rt::run(&model, &g)?)
    } else {
        debug::layer_stats(&spec, &model, &g, &vals, a.by_degree)?
    };
    if let Some(path) = &a.plot {
        let name = a
            .model
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let title = format!("{name}: SQNR per op ({} graphs)", a.on);
        crate::fsio::write(path, debug::svg(&layers, &title).as_bytes())?;
    }
    let c = compare(f, &q)?;
    let facc = super::accuracy(&argmax_rows(f), &g);
    let qpred: Vec<usize> = (0..q.rows).map(|r| q.argmax(r)).collect();
    let qacc = super::accuracy(&qpred, &g);
    let bits = debug::weight_bits(&model);
    let label = debug::precision_label(&bits);
    let op_bits = |i: usize| {
        bits.iter()
            .find(|(k, _)| *k == i)
            .map(|(_, b)| crate::quantize::bits_name(*b))
    };
    let aucs = pair_auc(f, &q, &g);
    if a.json {
        let mut per_op = debug::to_json(&layers);
        if let Some(list) = per_op.as_array_mut() {
            for o in list {
                let i = o["index"].as_u64().map_or(usize::MAX, |i| i as usize);
                o["weights"] = json!(op_bits(i));
            }
        }
        let v = json!({
            "weights": label,
            "rows": c.rows, "top1_agreement": c.top1_agreement, "max_abs_err": c.max_abs_err,
            "mean_abs_err": c.mean_abs_err, "float_output_range": c.float_range, "output_step": c.step,
            "float_accuracy": facc.map(|x| x.0), "int8_accuracy": qacc.map(|x| x.0),
            "accuracy_rows": facc.map(|x| x.1),
            "per_op": per_op,
            "float_auc": aucs.map(|x| x.0), "int8_auc": aucs.map(|x| x.1),
            "auc_pairs": aucs.map(|x| x.2),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if per_layer {
        if layer_graphs.is_some() {
            outln!("per-layer comparison on the calibration graphs:");
        }
        out!("{}", debug::table(&layers));
        if let Some(p) = &a.plot {
            outln!("plot: {}", p.display());
        }
    }
    outln!("rows compared: {}", c.rows);
    let per_op: Vec<String> = layers
        .iter()
        .filter_map(|l| op_bits(l.index).map(|b| format!("#{} {b}", l.index)))
        .collect();
    if per_op.is_empty() {
        outln!("weights: {label}");
    } else {
        outln!("weights: {label} (per op: {})", per_op.join(", "));
    }
    outln!("top-1 agreement: {:.2}%", c.top1_agreement * 100.0);
    outln!(
        "max abs error: {:.6} (mean {:.6}; output step {:.6}, float output range {:.4})",
        c.max_abs_err,
        c.mean_abs_err,
        c.step,
        c.float_range
    );
    if let (Some((fa, n)), Some((qa, _))) = (facc, qacc) {
        outln!(
            "accuracy over {n} {}: float {:.2}%, {label} {:.2}%",
            super::accuracy_scope(&g, c.rows),
            fa * 100.0,
            qa * 100.0
        );
    }
    if let Some((fa, qa, n)) = aucs {
        outln!(
            "link AUC over {n} labelled pairs (edge_label): float {:.2}%, int8 {:.2}%",
            fa * 100.0,
            qa * 100.0
        );
    }
    Ok(())
}

/// `verify --sequence`: per-step agreement and state drift.
fn verify_sequence(
    a: &Args,
    spec: &crate::spec::Spec,
    model: &Model<'_>,
    g: &st::Graphs,
) -> Result<()> {
    if spec.states.is_empty() {
        bail!(
            "{}: the float model is not a recurrent cell",
            a.float_model.display()
        );
    }
    let steps = g.sequence_steps()?;
    let fsteps = reference::run_sequence(spec, &steps)?;
    let (qsteps, _) = rt::run_sequence(model, &steps, |_, _, _| {})?;
    let descs: Vec<_> = (0..model.num_states())
        .filter_map(|k| model.state_desc_at(k))
        .collect();
    if descs.len() != spec.states.len() {
        bail!(
            "{} carries {} states, the float model {}",
            a.model.display(),
            descs.len(),
            spec.states.len()
        );
    }
    let mut rows = Vec::new();
    for (t, (fv, q)) in fsteps.iter().zip(&qsteps).enumerate() {
        let c =
            compare(&fv[&spec.outputs[0]], &q.outputs[0]).with_context(|| format!("step {t}"))?;
        // The int8 state buffer holds the states one after the other.
        let (mut max_e, mut sum_e, mut count) = (0f64, 0f64, 0usize);
        let mut qrest = q.state.as_slice();
        for (st, d) in spec.states.iter().zip(&descs) {
            let fh = &fv[&st.next];
            let (qh, tail) = qrest.split_at(fh.data.len().min(qrest.len()));
            qrest = tail;
            for (&qv, &fv) in qh.iter().zip(&fh.data) {
                let e =
                    (crate::ops::common::dequantize_value(qv, d.scale, d.zero_point) - fv).abs();
                max_e = max_e.max(e);
                sum_e += e;
                count += 1;
            }
        }
        let mean_e = sum_e / (count.max(1) as f64);
        rows.push((t, c, max_e, mean_e));
    }
    let sd = descs[0];
    let min_agree = rows
        .iter()
        .map(|r| r.1.top1_agreement)
        .fold(f64::INFINITY, f64::min);
    let mean_agree =
        rows.iter().map(|r| r.1.top1_agreement).sum::<f64>() / (rows.len().max(1) as f64);
    let worst = rows
        .iter()
        .min_by(|x, y| x.1.top1_agreement.total_cmp(&y.1.top1_agreement))
        .map_or(0, |r| r.0);
    if a.json {
        let per_step: Vec<_> = rows
            .iter()
            .map(|(t, c, me, ae)| {
                json!({"step": t, "rows": c.rows, "top1_agreement": c.top1_agreement,
                       "max_abs_err": c.max_abs_err, "mean_abs_err": c.mean_abs_err,
                       "state_max_abs_err": me, "state_mean_abs_err": ae})
            })
            .collect();
        let v = json!({
            "sequence": true, "steps": rows.len(),
            "min_top1_agreement": if rows.is_empty() { None } else { Some(min_agree) },
            "mean_top1_agreement": mean_agree, "worst_step": worst,
            "state_scale": sd.scale, "state_zero_point": sd.zero_point,
            "states": spec.states.iter().zip(&descs).map(|(st, d)| json!({
                "name": st.name, "channels": st.channels, "scale": d.scale,
                "zero_point": d.zero_point})).collect::<Vec<_>>(),
            "per_step": per_step,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!("sequence: {} steps", rows.len());
    for (st, d) in spec.states.iter().zip(&descs) {
        outln!(
            "state '{}' ({} channels): step {:.6} (scale), zero point {}",
            st.name,
            st.channels,
            d.scale,
            d.zero_point
        );
    }
    outln!("step  top-1 agreement  max abs err  state max err  state mean err");
    for (t, c, me, ae) in &rows {
        outln!(
            "{t:>4}  {:>14.2}%  {:>11.6}  {:>13.6}  {:>14.6}",
            c.top1_agreement * 100.0,
            c.max_abs_err,
            me,
            ae
        );
    }
    outln!(
        "top-1 agreement: min {:.2}% (step {worst}), mean {:.2}%",
        min_agree * 100.0,
        mean_agree * 100.0
    );
    Ok(())
}
