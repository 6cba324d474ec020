//! One module per CLI command.

pub mod bench;
pub mod convert;
pub mod inspect;
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
        format!("arena at capacity with sparse input: {bytes} bytes (sparse features are expanded: an op other than Linear/GCN/SAGE-sum/mean reads the input)")
    }
}
