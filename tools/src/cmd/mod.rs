//! One module per CLI command.

pub mod bench;
pub mod convert;
pub mod inspect;
pub mod pack;
pub mod run;
pub mod stream;
pub mod verify;

use crate::st::Graphs;

/// Accuracy of `pred` against the graphs' labels `y`, over `test_mask` rows
/// when a mask of the right length exists. Returns `(accuracy, rows counted)`.
pub fn accuracy(pred: &[usize], g: &Graphs) -> Option<(f64, usize)> {
    let y = g.y.as_ref()?;
    if y.len() != pred.len() {
        return None;
    }
    let mask = g.test_mask.as_ref().filter(|m| m.len() == pred.len());
    let mut n = 0usize;
    let mut ok = 0usize;
    for (i, (&p, &t)) in pred.iter().zip(y).enumerate() {
        if mask.is_some_and(|m| !m[i]) {
            continue;
        }
        n += 1;
        ok += usize::from(p as i64 == t);
    }
    (n > 0).then(|| (ok as f64 / n as f64, n))
}

/// Where accuracy is counted, for messages.
pub fn accuracy_scope(g: &Graphs, rows: usize) -> &'static str {
    if g.test_mask.as_ref().is_some_and(|m| m.len() == rows) {
        "test_mask rows"
    } else {
        "all rows"
    }
}

/// The `arena at capacity with sparse input` line of `convert` and `inspect`.
pub fn sparse_arena_line(model: &tinygnn::Model<'_>, bytes: usize) -> String {
    if model.reads_sparse_input() {
        format!("arena at capacity with sparse input: {bytes} bytes (the first layer reads the sparse features in place)")
    } else {
        format!("arena at capacity with sparse input: {bytes} bytes (sparse features are expanded: an op other than Linear/GCN/SAGE-sum/mean/GAT reads the input)")
    }
}

/// The runtime's cargo features a firmware running `model` needs: each
/// op's family (`op-gcn`, …, from the runtime's op table) and
/// `weights-i4` / `weights-i2` when an op has int4 / int2 weights; sorted.
pub fn cargo_features(model: &tinygnn::Model<'_>) -> Vec<&'static str> {
    let mut f: std::collections::BTreeSet<&'static str> =
        model.ops().map(|op| op.feature()).collect();
    if model.ops().any(|op| op.has_i4_weights()) {
        f.insert(tinygnn::ops::WEIGHTS_I4_FEATURE);
    }
    if model.ops().any(|op| op.has_i2_weights()) {
        f.insert(tinygnn::ops::WEIGHTS_I2_FEATURE);
    }
    if (0..model.tensors().len()).any(|t| model.is_i4(t as u8)) {
        f.insert(tinygnn::ops::ACT_I4_FEATURE);
    }
    f.into_iter().collect()
}

/// The `cargo features:` line of `convert` and `inspect`.
pub fn features_line(features: &[&str]) -> String {
    let quoted: Vec<String> = features.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "cargo features: {} (tinygnn with default-features = false, features = [{}])",
        features.join(", "),
        quoted.join(", ")
    )
}

/// One output tensor's values for `--json`: its id (`None` when not
/// known), shape, quantization, and per row the int8 values and the
/// dequantized ones (`scale · (q − zero_point)`).
pub fn output_json(tensor: Option<u8>, o: &crate::rt::RunOutput) -> serde_json::Value {
    let rows = o.data.chunks(o.channels.max(1)).take(o.rows);
    let int8: Vec<&[i8]> = rows.clone().collect();
    let deq: Vec<Vec<f64>> = rows
        .map(|r| {
            r.iter()
                .map(|&q| crate::ops::common::dequantize_value(q, o.scale, o.zero_point))
                .collect()
        })
        .collect();
    serde_json::json!({
        "tensor": tensor, "rows": o.rows, "channels": o.channels,
        "scale": o.scale, "zero_point": o.zero_point,
        "int8": int8, "dequantized": deq,
    })
}

/// The fields of a `json!({…})` object literal.
pub fn object(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// A model output as `run` and `stream` report it: the predictions, the
/// accuracy against the graphs' labels, and where `--output-bytes` went.
pub struct Report<'a> {
    out: &'a crate::rt::RunOutput,
    g: &'a Graphs,
    output_bytes: Option<&'a std::path::Path>,
    pred: Vec<usize>,
    acc: Option<(f64, usize)>,
    /// Link prediction: AUC of a one-channel pair output against the
    /// graphs' `edge_label`.
    auc: Option<f64>,
}

impl<'a> Report<'a> {
    /// Writes the raw int8 output (row-major) to `output_bytes` if given, and
    /// computes the argmax of each row and the accuracy.
    pub fn new(
        out: &'a crate::rt::RunOutput,
        g: &'a Graphs,
        output_bytes: Option<&'a std::path::Path>,
    ) -> anyhow::Result<Self> {
        if let Some(p) = output_bytes {
            let raw: Vec<u8> = out.data.iter().map(|&v| v as u8).collect();
            crate::fsio::write(p, &raw)?;
        }
        let pred: Vec<usize> = (0..out.rows).map(|r| out.argmax(r)).collect();
        let acc = accuracy(&pred, g);
        let auc = g
            .pairs
            .as_ref()
            .and_then(|p| p.label.as_ref())
            .filter(|l| out.channels == 1 && l.len() == out.rows)
            .and_then(|l| {
                let s: Vec<f64> = (0..out.rows).map(|r| out.dequantize(r, 0)).collect();
                crate::compare::auc(&s, l)
            });
        Ok(Report {
            out,
            g,
            output_bytes,
            pred,
            acc,
            auc,
        })
    }

    /// Prints the JSON object: the output's shape, `count` (e.g. `runs`), its
    /// quantization, argmax and accuracy, then the command's own `extra` fields.
    pub fn print_json(
        &self,
        count: (&str, usize),
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        let out = self.out;
        let acc = self.acc;
        let mut v = serde_json::Map::new();
        v.insert("rows".into(), out.rows.into());
        v.insert("channels".into(), out.channels.into());
        v.insert(count.0.into(), count.1.into());
        v.insert("scale".into(), out.scale.into());
        v.insert("zero_point".into(), out.zero_point.into());
        v.insert("argmax".into(), self.pred.clone().into());
        v.insert("accuracy".into(), acc.map(|a| a.0).into());
        v.insert("accuracy_rows".into(), acc.map(|a| a.1).into());
        v.insert("auc".into(), self.auc.into());
        v.extend(extra);
        outln!("{}", serde_json::to_string_pretty(&v)?);
        Ok(())
    }

    /// The `output: rows × channels, scale, zero point` line.
    pub fn print_shape(&self) {
        let out = self.out;
        outln!(
            "output: {} rows × {} channels, scale {:.6e}, zero point {}",
            out.rows,
            out.channels,
            out.scale,
            out.zero_point
        );
    }

    /// The first rows, the argmax histogram, the accuracy and where the
    /// output bytes went.
    pub fn print_rows(&self) {
        let out = self.out;
        let show = out.rows.min(10);
        for (r, p) in self.pred.iter().enumerate().take(show) {
            let row: Vec<String> = out.data[r * out.channels..(r + 1) * out.channels]
                .iter()
                .take(8)
                .map(|v| v.to_string())
                .collect();
            outln!(
                "  row {r:>5}: argmax {p:>3}   int8 [{}{}]",
                row.join(", "),
                if out.channels > 8 { ", …" } else { "" }
            );
        }
        if out.rows > show {
            outln!("  … {} more rows", out.rows - show);
        }
        let mut hist = vec![0usize; out.channels];
        self.pred.iter().for_each(|&p| hist[p] += 1);
        outln!("argmax histogram: {hist:?}");
        if let Some((acc, n)) = self.acc {
            outln!(
                "accuracy: {:.2}% over {n} {}",
                acc * 100.0,
                accuracy_scope(self.g, out.rows)
            );
        }
        if let Some(auc) = self.auc {
            outln!(
                "link AUC: {:.2}% over {} labelled pairs (edge_label)",
                auc * 100.0,
                out.rows
            );
        }
        if let Some(p) = self.output_bytes {
            outln!("wrote {} output bytes to {}", out.data.len(), p.display());
        }
    }
}
