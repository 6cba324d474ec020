//! `Features::SparseI8`: the same bytes as the equivalent dense int8 input,
//! and typed errors for broken CSR invariants.

mod common;

use common::*;
use tinygnn::format::{Activation, Op};
use tinygnn::ops::GcnConv;
use tinygnn::{Error, Features};

/// A GCN layer (F = 12 → 5) whose input zero point is not 0, so that
/// "missing entry = zero point" is visible in the output.
fn model() -> Vec<u8> {
    let mut rng = Rng(7);
    let mut w = writer();
    let x = w.add_tensor(node(12, 0.05, -20));
    let y = w.add_tensor(node(5, 0.1, 3));
    let weights = w.add_i8(&rng.weights(12 * 5));
    let params = w.add_channel_params(&records(&mut rng, 5, 500, 0.002));
    w.add_op(Op::GcnConv(GcnConv {
        input: x,
        output: y,
        weights,
        params,
        act: Activation::None,
        improved: false,
        add_self_loops: true,
        normalize: true,
        edge_weight: false,
    }));
    w.finish(x, &[y], 16, 64, 1).unwrap()
}

/// Sparse CSR of the entries of `dense` that differ from `zp`.
fn to_sparse(dense: &[i8], f: usize, zp: i8) -> (Vec<u32>, Vec<u16>, Vec<i8>) {
    let (mut row_ptr, mut cols, mut values) = (vec![0u32], vec![], vec![]);
    for row in dense.chunks(f) {
        for (c, &v) in row.iter().enumerate() {
            if v != zp {
                cols.push(c as u16);
                values.push(v);
            }
        }
        row_ptr.push(cols.len() as u32);
    }
    (row_ptr, cols, values)
}

#[test]
fn sparse_equals_dense() {
    let bytes = model();
    let mut rng = Rng(99);
    let n = 9;
    // ~25 % of entries differ from the zero point.
    let dense: Vec<i8> = (0..n * 12)
        .map(|_| if rng.next() % 4 == 0 { rng.i8() } else { -20 })
        .collect();
    let src = [0u16, 1, 2, 3, 4, 5, 6, 7, 8, 0, 3];
    let dst = [1u16, 2, 3, 4, 5, 6, 7, 8, 0, 5, 3];
    let want = run(&bytes, &input(n, &dense, &src, &dst)).unwrap();
    let (row_ptr, cols, values) = to_sparse(&dense, 12, -20);
    assert!(values.len() < dense.len() / 2);
    let mut sparse = input(n, &dense, &src, &dst);
    sparse.features = Features::SparseI8 {
        row_ptr: &row_ptr,
        cols: &cols,
        values: &values,
    };
    let got = run(&bytes, &sparse).unwrap();
    assert_eq!(got, want);
    assert_spread(&got[0].2);
}

#[test]
fn broken_sparse_features_are_rejected() {
    let bytes = model();
    let src = [0u16];
    let dst = [1u16];
    let case = |row_ptr: &[u32], cols: &[u16], values: &[i8]| {
        let mut g = input(2, &[], &src, &dst);
        g.features = Features::SparseI8 {
            row_ptr,
            cols,
            values,
        };
        run(&bytes, &g).unwrap_err()
    };
    // Wrong number of row offsets.
    assert!(matches!(
        case(&[0, 1], &[0], &[1]),
        Error::FeatureShape { .. }
    ));
    // cols and values differ in length.
    assert!(matches!(
        case(&[0, 1, 1], &[0], &[1, 2]),
        Error::FeatureShape { .. }
    ));
    // Does not end at the entry count.
    assert_eq!(
        case(&[0, 1, 1], &[0, 1], &[1, 2]),
        Error::InvalidSparseFeatures { node: 0 }
    );
    // Decreasing offsets (row 0 claims entries 2..1).
    assert_eq!(
        case(&[0, 2, 1], &[0], &[1]),
        Error::InvalidSparseFeatures { node: 0 }
    );
    // Column out of range (F = 12).
    assert_eq!(
        case(&[0, 1, 2], &[0, 12], &[1, 2]),
        Error::InvalidSparseFeatures { node: 1 }
    );
    // Columns not increasing within a row.
    assert_eq!(
        case(&[0, 2, 2], &[3, 3], &[1, 2]),
        Error::InvalidSparseFeatures { node: 0 }
    );
}
