//! Float against int8 outputs: top-1 agreement and errors, shared by
//! `verify`, the precision search and the tests.

use anyhow::{bail, Result};

use crate::{reference, rt};

/// Comparison of a float and an int8 output.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Rows.
    pub rows: usize,
    /// Fraction of rows whose argmax agrees.
    pub top1_agreement: f64,
    /// Largest |float − dequantized int8|.
    pub max_abs_err: f64,
    /// Mean |float − dequantized int8|.
    pub mean_abs_err: f64,
    /// max − min of the float output.
    pub float_range: f64,
    /// Output quantization step.
    pub step: f64,
}

/// Compares the float output `f` with the int8 output `q`.
pub fn compare(f: &reference::Tensor, q: &rt::RunOutput) -> Result<Comparison> {
    if f.rows != q.rows || f.channels != q.channels {
        bail!(
            "float output is {}×{} but the int8 output is {}×{}",
            f.rows,
            f.channels,
            q.rows,
            q.channels
        );
    }
    let mut max_err = 0.0f64;
    let mut sum = 0.0;
    let mut agree = 0usize;
    for r in 0..f.rows {
        let row = f.row(r);
        let mut best = 0;
        for (c, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = c;
            }
            let e = (v - q.dequantize(r, c)).abs();
            max_err = max_err.max(e);
            sum += e;
        }
        agree += usize::from(best == q.argmax(r));
    }
    let lo = f.data.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = f.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ok(Comparison {
        rows: f.rows,
        top1_agreement: agree as f64 / f.rows.max(1) as f64,
        max_abs_err: max_err,
        mean_abs_err: sum / f.data.len().max(1) as f64,
        float_range: if f.data.is_empty() { 0.0 } else { hi - lo },
        step: q.scale as f64,
    })
}

/// ROC AUC of `scores` against binary `labels` (> 0.5 is positive): the
/// Mann–Whitney statistic with tied scores counted half (average ranks), so
/// the many ties of int8 scores are scored fairly. `None` without both a
/// positive and a negative.
pub fn auc(scores: &[f64], labels: &[f32]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let pos = idx.iter().filter(|&&i| labels[i] > 0.5).count();
    let neg = idx.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    // Sum of the (average, 1-based) ranks of the positives.
    let mut rank_sum = 0.0f64;
    let mut k = 0;
    while k < idx.len() {
        let mut e = k;
        while e + 1 < idx.len() && scores[idx[e + 1]] == scores[idx[k]] {
            e += 1;
        }
        let avg = (k + e) as f64 / 2.0 + 1.0;
        rank_sum += avg * idx[k..=e].iter().filter(|&&i| labels[i] > 0.5).count() as f64;
        k = e + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}
