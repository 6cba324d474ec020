//! Calibration methods: `minmax`, `percentile:P`, `mse` (range search), and
//! `tinygnn convert --calibration`.

mod common;

use common::{fails, node_model, ok, tinygnn, GraphsBuilder, Rng};
use tinygnn_cli::calibrate::{check_ranges, mse_range, range_of, Method, Range};
use tinygnn_cli::quantize::{activation_quant, dequantize_value, quantize_value};

/// Quantization SSE of `values` with range `r`, computed value by value.
fn sse(values: &[f64], r: Range) -> f64 {
    let (s, z) = activation_quant(r);
    values
        .iter()
        .map(|&x| {
            let e = x - dequantize_value(quantize_value(x, s, z), s, z);
            e * e
        })
        .sum()
}

/// Laplace-like values (many small, a long tail) plus one far outlier.
fn heavy_tail(n: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| {
            let u = (r.next() as f64 + 1.0) / 2.0 * 0.999 + 0.0005;
            let s = if r.next() > 0.0 { 1.0 } else { -1.0 };
            -s * u.ln()
        })
        .collect()
}

#[test]
fn parses_every_method() {
    assert_eq!("minmax".parse::<Method>().unwrap(), Method::MinMax);
    assert_eq!("mse".parse::<Method>().unwrap(), Method::Mse);
    assert_eq!(
        "percentile:99.9".parse::<Method>().unwrap(),
        Method::Percentile(99.9)
    );
    let e = "kl".parse::<Method>().unwrap_err().to_string();
    assert!(e.contains("mse"), "{e}");
    assert!("percentile:40".parse::<Method>().is_err());
}

/// Many Laplace values: the last stretch of the tail costs less to clip than
/// the resolution it wastes (at 8 bits only a little: the optimum is near the
/// sample extremes).
#[test]
fn mse_clips_a_long_tail_and_beats_minmax_and_percentile() {
    let v = heavy_tail(60_000, 3);
    let mse = mse_range(&v);
    let mm = range_of(&v, Method::MinMax);
    let p = range_of(&v, Method::Percentile(99.99));
    eprintln!("minmax {mm:?}, percentile {p:?}, mse {mse:?}");
    assert!(mse.hi < mm.hi || mse.lo > mm.lo, "{mse:?}");
    let (e_mse, e_mm, e_p) = (sse(&v, mse), sse(&v, mm), sse(&v, p));
    eprintln!("sse: mse {e_mse:.4}, minmax {e_mm:.4}, percentile {e_p:.4}");
    assert!(e_mse < e_mm, "{e_mse} vs minmax {e_mm}");
    assert!(e_mse <= 1.01 * e_p, "{e_mse} vs percentile {e_p}");
}

/// One far outlier among 5000 values: clipping it would cost (60 − hi)², more
/// than the finer step saves on the rest, so mse keeps it (unlike a percentile).
#[test]
fn mse_keeps_a_single_outlier_that_costs_more_to_clip() {
    let mut v = heavy_tail(5000, 3);
    v.push(60.0);
    let mse = mse_range(&v);
    assert!(mse.hi > 59.0, "{mse:?}");
    let p = range_of(&v, Method::Percentile(99.99));
    assert!(sse(&v, mse) < sse(&v, p));
}

/// For non-negative values the search is one-dimensional: no candidate
/// `hi = max·k/256` may beat the chosen one.
#[test]
fn mse_is_the_best_candidate_for_one_sided_values() {
    let v: Vec<f64> = heavy_tail(3000, 9).into_iter().map(f64::abs).collect();
    let got = mse_range(&v);
    let max = v.iter().copied().fold(0.0, f64::max);
    let e = sse(&v, got);
    for k in 1..=256 {
        let r = Range {
            lo: got.lo,
            hi: max * k as f64 / 256.0,
        };
        assert!(sse(&v, r) >= e - 1e-12, "k={k}: {} < {e}", sse(&v, r));
    }
}

/// Uniform values: clipping only hurts, so mse keeps (nearly) the full range.
#[test]
fn mse_keeps_the_range_of_uniform_values() {
    let mut r = Rng(5);
    let v: Vec<f64> = (0..4000).map(|_| r.next() as f64 * 3.0).collect();
    let got = mse_range(&v);
    let mm = range_of(&v, Method::MinMax);
    assert!(
        got.hi >= 0.97 * mm.hi && got.lo <= 0.97 * mm.lo,
        "{got:?} vs {mm:?}"
    );
}

/// More distinct values than `MSE_MAX_POINTS`: the histogram path still
/// chooses a range whose exact SSE is within 1 % of the best grid candidate.
#[test]
fn mse_histogram_path_is_accurate() {
    let v = heavy_tail(40_000, 11);
    let got = mse_range(&v);
    let e = sse(&v, got);
    let mm = range_of(&v, Method::MinMax);
    let mut best = f64::INFINITY;
    for k in (4..=256).step_by(4) {
        for j in (4..=256).step_by(4) {
            let r = Range {
                lo: mm.lo * j as f64 / 256.0,
                hi: mm.hi * k as f64 / 256.0,
            };
            best = best.min(sse(&v, r));
        }
    }
    eprintln!("mse {got:?}: sse {e:.4}; best of a 64×64 grid {best:.4}");
    assert!(e <= 1.01 * best, "{e} vs grid best {best}");
}

#[test]
fn mse_degenerate_inputs() {
    assert_eq!(mse_range(&[]), Range { lo: 0.0, hi: 0.0 });
    assert_eq!(mse_range(&[0.0; 5]), Range { lo: 0.0, hi: 0.0 });
    let r = mse_range(&[2.5; 7]);
    // A constant is represented exactly by its own range.
    assert!(sse(&[2.5; 7], r) < 1e-12, "{r:?}");
}

#[test]
fn convert_with_each_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let (m, g) = (
        dir.path().join("m.safetensors"),
        dir.path().join("g.safetensors"),
    );
    node_model(5, 3).write(&m);
    GraphsBuilder::random(1, 80, 4, 5, 3, 12).write(&g);
    let mut files = Vec::new();
    for (i, cal) in ["minmax", "percentile:99", "mse"].iter().enumerate() {
        let t = dir.path().join(format!("m{i}.tgnn"));
        let o = tinygnn(&[
            &"convert",
            &m,
            &"--calib",
            &g,
            &"-o",
            &t,
            &"--calibration",
            cal,
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains(&format!("calibration: {cal}")), "{out}");
        let v = tinygnn(&[&"verify", &m, &t, &g, &"--json"]);
        assert!(v.status.success());
        let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
        assert!(j["top1_agreement"].as_f64().unwrap() >= 0.9, "{cal}: {j}");
        files.push(std::fs::read(&t).unwrap());
    }
    // The methods choose different ranges, hence different files.
    assert_ne!(files[0], files[2]);
    // The default is mse.
    let t = dir.path().join("default.tgnn");
    let o = tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &t]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("calibration: mse"));
    assert_eq!(std::fs::read(&t).unwrap(), files[2]);
    let o = tinygnn(&[
        &"convert",
        &m,
        &"--calib",
        &g,
        &"-o",
        &dir.path().join("x.tgnn"),
        &"--calibration",
        &"msee",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown calibration 'msee'"));
}

/// Ranges whose int8 step does not fit an f32 are refused (they used to be
/// replaced by a default step silently); huge ones draw one warning.
#[test]
fn absurd_ranges_are_refused_or_warned() {
    let mut r = std::collections::HashMap::new();
    r.insert("x".to_string(), Range { lo: -1.0, hi: 2.0 });
    assert!(check_ranges(&r).unwrap().is_empty());
    r.insert(
        "conv1".to_string(),
        Range {
            lo: -1e30,
            hi: 1e30,
        },
    );
    let w = check_ranges(&r).unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("'conv1' [-1.000e30, 1.000e30]"), "{w:?}");
    r.insert("conv2".to_string(), Range { lo: 0.0, hi: 1e300 });
    let e = check_ranges(&r).unwrap_err().to_string();
    assert!(
        e.contains("tensor 'conv2'") && e.contains("does not fit an f32"),
        "{e}"
    );
    r.insert(
        "conv2".to_string(),
        Range {
            lo: f64::NEG_INFINITY,
            hi: 0.0,
        },
    );
    assert!(check_ranges(&r).is_err());
}

/// Degenerate calibration files: no nodes, features of ±1e30, labels and
/// masks of the wrong length.
#[test]
fn degenerate_calibration_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = d.join("m.safetensors");
    node_model(5, 3).write(&m);
    let out = d.join("m.tgnn");
    let convert = |g: &std::path::Path| tinygnn(&[&"convert", &m, &"--calib", &g, &"-o", &out]);
    let write = |name: &str,
                 f32s: &[(&str, Vec<usize>, Vec<f32>)],
                 i64s: &[(&str, Vec<usize>, Vec<i64>)]| {
        let p = d.join(name);
        std::fs::write(
            &p,
            tinygnn_cli::st::write_safetensors(f32s, i64s, None).unwrap(),
        )
        .unwrap();
        p
    };
    // No nodes at all.
    let empty = write(
        "empty.safetensors",
        &[("x", vec![0, 5], vec![])],
        &[("edge_index", vec![2, 0], vec![])],
    );
    fails(
        &convert(&empty),
        &[
            "empty.safetensors: the calibration graphs have no nodes",
            "at least one node",
        ],
    );
    assert!(!out.exists());

    // Features of ±1e30: converted, with a warning naming the tensors and why.
    let mut g = GraphsBuilder::random(1, 20, 3, 5, 3, 4);
    g.x.iter_mut().for_each(|v| *v *= 1e30);
    let huge = d.join("huge.safetensors");
    g.write(&huge);
    let o = convert(&huge);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning: calibration:"), "{err}");
    assert!(
        err.contains("'x' [") && err.contains("not normalized"),
        "{err}"
    );
    // Normal features: no such warning.
    let fine = d.join("fine.safetensors");
    GraphsBuilder::random(1, 20, 3, 5, 3, 4).write(&fine);
    let o = convert(&fine);
    ok(&o);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("warning: calibration"));

    // y and test_mask of the wrong length: an error naming the tensor.
    let g = GraphsBuilder::random(1, 20, 3, 5, 3, 4);
    let ei: Vec<i64> = g.src.iter().chain(&g.dst).copied().collect();
    let e = g.src.len();
    let x = ("x", vec![20, 5], g.x.clone());
    let short_y = write(
        "y.safetensors",
        std::slice::from_ref(&x),
        &[
            ("edge_index", vec![2, e], ei.clone()),
            ("y", vec![7], vec![0; 7]),
        ],
    );
    fails(
        &convert(&short_y),
        &["y has 7 labels for 20 nodes in 1 graphs"],
    );
    let short_mask = write(
        "mask.safetensors",
        std::slice::from_ref(&x),
        &[
            ("edge_index", vec![2, e], ei),
            ("y", vec![20], vec![0; 20]),
            ("test_mask", vec![19], vec![1; 19]),
        ],
    );
    fails(
        &convert(&short_mask),
        &["test_mask has 19 entries for 20 nodes"],
    );
    // run names them too.
    ok(&convert(&fine));
    fails(&tinygnn(&[&"run", &out, &short_mask]), &["test_mask"]);
    // An empty graph is still fine to run (zero rows), only not to calibrate on.
    let o = ok(&tinygnn(&[&"run", &out, &empty]));
    assert!(o.contains("output: 0 rows × 3 channels"), "{o}");
}
