//! Conformance against PyTorch Geometric golden files.
//!
//! For every case directory `<repo>/tests/conformance/<case>/` (generated from
//! PyG 2.8.1 by `tests/conformance/gen_golden.py`), holding
//! `model.safetensors`, `graphs.safetensors` and `expected.safetensors` (tensor
//! `out`, computed by PyG in eval mode), checks:
//! (a) the float reference: max |ref − PyG| ≤ 1e-4 · max(1, |ref|) element-wise;
//! (b) the int8 model converted with the case's graphs as calibration and run by
//!     the runtime: max |dequantized − ref| ≤ 4 output steps + 3% of the float
//!     output range. The measured error of every case is printed.
//! Cases are found at run time, so new goldens need no code change;
//! `TINYGNN_CONFORMANCE_DIR=<dir>` points the test at another directory of cases.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use safetensors::SafeTensors;
use tinygnn_cli::calibrate::{self, Method};
use tinygnn_cli::compare::compare;
use tinygnn_cli::quantize::{self, Capacity};
use tinygnn_cli::{reference, rt, spec, st};

fn cases() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let roots = match std::env::var_os("TINYGNN_CONFORMANCE_DIR") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![here.join("../tests/conformance")],
    };
    let mut v: Vec<PathBuf> = Vec::new();
    for root in roots {
        if let Ok(d) = std::fs::read_dir(&root) {
            v.extend(
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("model.safetensors").exists()),
            );
        }
    }
    v.sort();
    v
}

fn expected(dir: &Path) -> Result<(Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(dir.join("expected.safetensors"))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| anyhow!("{e:?}"))?;
    let t = st
        .tensor("out")
        .map_err(|_| anyhow!("expected.safetensors has no 'out'"))?;
    let data = match t.dtype() {
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        safetensors::Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        d => anyhow::bail!("'out' has dtype {d:?}"),
    };
    Ok((t.shape().to_vec(), data))
}

fn check(dir: &Path) -> Result<String> {
    let file = st::read_model_file(&dir.join("model.safetensors"))?;
    let spec = spec::parse(&file)?;
    let g = st::read_graphs(&dir.join("graphs.safetensors"))?;
    if !spec.states.is_empty() {
        return check_sequence(dir, &spec, &g);
    }
    let vals = reference::run(&spec, &g, |_| {})?;
    let f = &vals[&spec.outputs[0]];
    let (shape, want) = expected(dir)?;
    anyhow::ensure!(
        shape.iter().product::<usize>() == f.data.len(),
        "expected 'out' has shape {shape:?}, the reference gives {}×{}",
        f.rows,
        f.channels
    );
    let mut ref_err = 0.0f64;
    for (i, (a, b)) in f.data.iter().zip(&want).enumerate() {
        let e = (a - b).abs();
        ref_err = ref_err.max(e);
        anyhow::ensure!(
            e <= 1e-4 * a.abs().max(1.0),
            "float reference differs from PyG at row {}, channel {}: {a} vs {b}",
            i / f.channels,
            i % f.channels
        );
    }
    let mut msg = format!("float max abs err {ref_err:.2e}");
    if !rt::AVAILABLE {
        return Ok(msg + "; int8 skipped (no runtime execution engine)");
    }
    let ranges = calibrate::calibrate(&spec, &g, Method::MinMax, |_| {})?;
    let cap = Capacity {
        max_nodes: g.num_nodes as u32,
        max_edges: g.num_edges().max(g.num_incidences()) as u32,
        max_graphs: g.num_graphs as u32,
        max_pairs: g.pairs.as_ref().map_or(0, |p| p.sources.len() as u32),
    };
    let conv = quantize::convert(&spec, &ranges, cap)?;
    let model = tinygnn::Model::from_bytes(&conv.bytes).map_err(|e| anyhow!("{e}"))?;
    let q = rt::run(&model, &g)?;
    let c = compare(f, &q)?;
    let tol = 4.0 * c.step + 0.03 * c.float_range;
    msg += &format!(
        "; int8 max abs err {:.4} (tolerance {:.4} = 4 steps of {:.4} + 3% of range {:.3}), top-1 agreement {:.1}%",
        c.max_abs_err,
        tol,
        c.step,
        c.float_range,
        c.top1_agreement * 100.0
    );
    anyhow::ensure!(c.max_abs_err <= tol, "int8 error too large: {msg}");
    Ok(msg)
}

/// A recurrent case: the graphs file is a sequence; `out` holds the first
/// output of every step (from the zero state), in step order. The float
/// reference must match PyG; the int8 model (run step by step with its own
/// int8 state) must stay within the tolerance at every step.
fn check_sequence(dir: &Path, spec: &spec::Spec, g: &st::Graphs) -> Result<String> {
    let steps = g.sequence_steps()?;
    let fsteps = reference::run_sequence(spec, &steps)?;
    let (shape, want) = expected(dir)?;
    let f: Vec<f64> = fsteps
        .iter()
        .flat_map(|v| v[&spec.outputs[0]].data.iter().copied())
        .collect();
    anyhow::ensure!(
        shape.iter().product::<usize>() == f.len(),
        "expected 'out' has shape {shape:?}, the reference gives {} values",
        f.len()
    );
    let mut ref_err = 0.0f64;
    for (i, (a, b)) in f.iter().zip(&want).enumerate() {
        let e = (a - b).abs();
        ref_err = ref_err.max(e);
        anyhow::ensure!(
            e <= 1e-4 * a.abs().max(1.0),
            "float reference differs from PyG at value {i}: {a} vs {b}"
        );
    }
    let mut msg = format!("float max abs err {ref_err:.2e} over {} steps", steps.len());
    if !rt::AVAILABLE {
        return Ok(msg + "; int8 skipped (no runtime execution engine)");
    }
    let cal = calibrate::calibrate_sequence(spec, &steps, Method::MinMax)?;
    let s0 = &steps[0];
    let cap = Capacity {
        max_nodes: s0.num_nodes as u32,
        max_edges: s0.num_edges() as u32,
        max_graphs: 1,
        max_pairs: 0,
    };
    let conv = quantize::convert(spec, &cal.ranges, cap)?;
    let model = tinygnn::Model::from_bytes(&conv.bytes).map_err(|e| anyhow!("{e}"))?;
    let (q, _) = rt::run_sequence(&model, &steps, |_, _, _| {})?;
    let (mut worst, mut min_agree) = (0.0f64, 1.0f64);
    for (t, (fv, qs)) in fsteps.iter().zip(&q).enumerate() {
        let c = compare(&fv[&spec.outputs[0]], &qs.outputs[0])?;
        let tol = 4.0 * c.step + 0.03 * c.float_range;
        anyhow::ensure!(
            c.max_abs_err <= tol,
            "step {t}: int8 max abs err {:.4} above tolerance {tol:.4}",
            c.max_abs_err
        );
        worst = worst.max(c.max_abs_err / tol);
        min_agree = min_agree.min(c.top1_agreement);
    }
    msg += &format!(
        "; int8 max abs err at most {:.0}% of the tolerance at every step, top-1 agreement min {:.1}%",
        worst * 100.0,
        min_agree * 100.0
    );
    Ok(msg)
}

#[test]
fn conformance_cases() {
    let cases = cases();
    if cases.is_empty() {
        eprintln!("conformance: no cases found");
        return;
    }
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        match check(dir).with_context(|| name.clone()) {
            Ok(m) => eprintln!("conformance {name}: ok: {m}"),
            Err(e) => {
                eprintln!("conformance {name}: FAILED: {e:#}");
                failures.push(name);
            }
        }
    }
    assert!(failures.is_empty(), "failed cases: {failures:?}");
}
