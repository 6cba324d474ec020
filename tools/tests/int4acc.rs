//! int4 accuracy: sequential GPFQ with error feedback
//! (`--int4-rounding gpfq-seq`, the default), its bias correction, and what
//! `verify` says about an int4 model's weight precision.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::ok;
use serde_json::Value;
use tinygnn_cli::quantize::{gpfq_fb_row, gpfq_row, Columns};
use tinygnn_cli::reference::Tensor;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tinygnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(args)
        .output()
        .expect("run tinygnn")
}

/// A small deterministic generator (xorshift), values in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

fn tensor(rows: usize, channels: usize, f: impl FnMut(usize) -> f64) -> Tensor {
    Tensor {
        rows,
        channels,
        data: (0..rows * channels).map(f).collect(),
    }
}

/// ‖X·w − X̃·(s·q)‖² over the rows.
fn out_err(x: &Tensor, xq: &Tensor, w: &[f64], s: f64, q: &[i8]) -> f64 {
    (0..x.rows)
        .map(|r| {
            let f: f64 = x.row(r).iter().zip(w).map(|(a, b)| a * b).sum();
            let g: f64 = xq
                .row(r)
                .iter()
                .zip(q)
                .map(|(a, &b)| a * s * b as f64)
                .sum();
            (f - g).powi(2)
        })
        .sum()
}

#[test]
fn feedback_rounding_follows_the_quantized_input() {
    // X̃ = 2·X: the quantized model doubles this input, so w = 1.0 (scale 0.1)
    // should become 5 steps, not the nearest 10.
    let x = tensor(3, 1, |i| [1.0, 2.0, -1.0][i]);
    let xq = tensor(3, 1, |i| 2.0 * [1.0, 2.0, -1.0][i]);
    let (q, mean) = gpfq_fb_row(&[1.0], 0.1, 7.0, &Columns::of(&x), &Columns::of(&xq));
    assert_eq!(q, [5]);
    assert!(mean.abs() < 1e-12, "exact: no mean error, got {mean}");
    // The clamp still holds (±qm).
    let (q, _) = gpfq_fb_row(&[1.0], 0.01, 7.0, &Columns::of(&x), &Columns::of(&xq));
    assert_eq!(q, [7]);
    // The mean error left is the bias shift: 0.35 rounds to 0 on two rows of 1.
    let x = tensor(2, 1, |_| 1.0);
    let (q, mean) = gpfq_fb_row(&[0.35], 1.0, 7.0, &Columns::of(&x), &Columns::of(&x));
    assert_eq!(q, [0]);
    assert!((mean - 0.35).abs() < 1e-12, "{mean}");
}

#[test]
fn feedback_rounding_equals_gpfq_when_the_input_is_exact() {
    let mut rng = Rng(0x5eed);
    let x = tensor(40, 12, |_| rng.next());
    let xc = Columns::of(&x);
    for _ in 0..20 {
        let w: Vec<f64> = (0..12).map(|_| rng.next()).collect();
        assert_eq!(
            gpfq_fb_row(&w, 0.13, 7.0, &xc, &xc).0,
            gpfq_row(&w, 0.13, 7.0, &xc)
        );
    }
}

#[test]
fn feedback_rounding_reconstructs_better_than_nearest_and_plain_gpfq() {
    // A seeded layer: 64 rows, 16 correlated input channels; the quantized
    // input X̃ is X with an int8-like error and a channel-wise gain error (what
    // earlier int4 layers leave). Summed over 32 weight rows, the output error
    // of feedback rounding is below round-to-nearest's and below GPFQ's on the
    // float input alone.
    let mut rng = Rng(42);
    let base: Vec<f64> = (0..64).map(|_| rng.next()).collect();
    let x = tensor(64, 16, |i| base[i / 16] + 0.5 * rng.next());
    let gain: Vec<f64> = (0..16).map(|_| 1.0 + 0.2 * rng.next()).collect();
    let xq = tensor(64, 16, |i| {
        ((x.data[i] * gain[i % 16]) * 64.0).round() / 64.0
    });
    let (xc, xqc) = (Columns::of(&x), Columns::of(&xq));
    let (mut e_fb, mut e_near, mut e_gpfq) = (0.0, 0.0, 0.0);
    for _ in 0..32 {
        let w: Vec<f64> = (0..16).map(|_| rng.next()).collect();
        let s = w.iter().fold(0.0f64, |a, v| a.max(v.abs())) / 7.0;
        let near: Vec<i8> = w.iter().map(|v| (v / s).round() as i8).collect();
        e_near += out_err(&x, &xq, &w, s, &near);
        e_gpfq += out_err(&x, &xq, &w, s, &gpfq_row(&w, s, 7.0, &xc));
        e_fb += out_err(&x, &xq, &w, s, &gpfq_fb_row(&w, s, 7.0, &xc, &xqc).0);
    }
    assert!(
        e_fb < e_near && e_fb < e_gpfq,
        "feedback {e_fb:.4}, nearest {e_near:.4}, gpfq {e_gpfq:.4}"
    );
}

/// Converts a bundled model with all-int4 weights (its own flags plus
/// `extra`) and verifies it on its evaluation graphs.
fn int4_verify(name: &str, calib: &str, flags: &[&str], extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let m = root().join("models").join(name);
    let out = dir.path().join("m.tgnn").display().to_string();
    let (model, calib, graphs) = (
        m.join("model.safetensors").display().to_string(),
        m.join(calib).display().to_string(),
        m.join("graphs.safetensors").display().to_string(),
    );
    let mut args = vec![
        "convert",
        &model,
        "--calib",
        &calib,
        "-o",
        &out,
        "--weights",
        "int4",
    ];
    args.extend_from_slice(flags);
    args.extend_from_slice(extra);
    let conv = ok(&tinygnn(&args));
    assert!(conv.contains("weight precision:"), "{conv}");
    let text = ok(&tinygnn(&["verify", &model, &out, &graphs, "--per-layer"]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("weights: int4 (per op: #")),
        "{text}"
    );
    assert!(
        text.contains(", int4 "),
        "accuracy line labels int4: {text}"
    );
    assert!(!text.contains(", int8 "), "{text}");
    let v: Value = serde_json::from_str(&ok(&tinygnn(&[
        "verify",
        &model,
        &out,
        &graphs,
        "--json",
        "--per-layer",
    ])))
    .unwrap();
    assert_eq!(v["weights"], "int4");
    let per_op = v["per_op"].as_array().unwrap();
    assert!(per_op.iter().any(|o| o["weights"] == "int4"));
    assert!(per_op.iter().all(|o| o["weights"] != "int8"));
    v
}

fn drop_pp(v: &Value) -> f64 {
    100.0 * (v["float_accuracy"].as_f64().unwrap() - v["int8_accuracy"].as_f64().unwrap())
}

#[test]
fn karate_int4_meets_the_goal_with_the_default() {
    // The goal: int4 within 3 pp of float. Default rounding (gpfq-seq): the
    // same accuracy as float (73.33 %) when this test was written; the bound is
    // the goal. The old default (plain gpfq) loses one of the 30 nodes (3.33 pp).
    let v = int4_verify("karate-gcn", "graphs.safetensors", &[], &[]);
    assert!(drop_pp(&v) <= 3.0, "drop {} pp", drop_pp(&v));
    let old = int4_verify(
        "karate-gcn",
        "graphs.safetensors",
        &[],
        &["--int4-rounding", "gpfq"],
    );
    assert!(
        v["top1_agreement"].as_f64() >= old["top1_agreement"].as_f64(),
        "gpfq-seq agreement {} vs gpfq {}",
        v["top1_agreement"],
        old["top1_agreement"]
    );
}

#[test]
fn digits_int4_meets_the_goal_with_the_default() {
    // 94.99 % float; gpfq-seq measured 94.15 % (plain gpfq 90.25 %).
    let flags = ["--output-range", "argmax", "--weight-scales", "auto"];
    let v = int4_verify("digits-gin", "calib.safetensors", &flags, &[]);
    assert!(drop_pp(&v) <= 3.0, "drop {} pp", drop_pp(&v));
}

#[test]
fn verify_labels_int8_and_mixed_models() {
    let m = root().join("models/karate-gcn");
    let model = m.join("model.safetensors").display().to_string();
    let graphs = m.join("graphs.safetensors").display().to_string();
    let bundled = m.join("karate-gcn.tgnn").display().to_string();
    let text = ok(&tinygnn(&["verify", &model, &bundled, &graphs]));
    assert!(text.lines().any(|l| l == "weights: int8"), "{text}");
    assert!(text.contains(", int8 "), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mixed.tgnn").display().to_string();
    ok(&tinygnn(&[
        "convert",
        &model,
        "--calib",
        &graphs,
        "-o",
        &out,
        "--weights",
        "conv1=int4",
    ]));
    let v: Value = serde_json::from_str(&ok(&tinygnn(&[
        "verify",
        &model,
        &out,
        &graphs,
        "--json",
        "--per-layer",
    ])))
    .unwrap();
    assert_eq!(v["weights"], "int8/int4");
    let w: Vec<&str> = v["per_op"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["weights"].as_str())
        .collect();
    assert_eq!(w, ["int4", "int8", "int8"]);
}

#[test]
fn bias_correction_needs_gpfq_seq() {
    let m = root().join("models/karate-gcn");
    let model = m.join("model.safetensors").display().to_string();
    let graphs = m.join("graphs.safetensors").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n).display().to_string();
    let (a, b) = (out("a.tgnn"), out("b.tgnn"));
    let base = ["convert", &model, "--calib", &graphs, "--weights", "int4"];
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["-o", &a]);
    ok(&tinygnn(&args));
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["-o", &b, "--int4-bias-correction", "on"]);
    ok(&tinygnn(&args));
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(ba.len(), bb.len());
    assert_ne!(ba, bb, "bias correction changes some bias");
    let mut args: Vec<&str> = base.to_vec();
    args.extend([
        "-o",
        &b,
        "--int4-rounding",
        "gpfq",
        "--int4-bias-correction",
        "on",
    ]);
    let o = tinygnn(&args);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --int4-rounding gpfq-seq"));
}

#[test]
fn output_scale_search_lowers_the_output_error() {
    // `--int4-scale output` picks each channel's clipping by the layer's output
    // error under feedback rounding; on karate (verify's graphs are the
    // calibration graphs) the final output error falls: measured mean |err|
    // 0.137 → lower, max 0.717 → 0.212 when this test was written.
    let m = root().join("models/karate-gcn");
    let model = m.join("model.safetensors").display().to_string();
    let graphs = m.join("graphs.safetensors").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (a, b) = (path("mse.tgnn"), path("out.tgnn"));
    let conv = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "convert",
            &model,
            "--calib",
            &graphs,
            "-o",
            out,
            "--weights",
            "int4",
        ];
        args.extend_from_slice(extra);
        ok(&tinygnn(&args));
        let v: Value =
            serde_json::from_str(&ok(&tinygnn(&["verify", &model, out, &graphs, "--json"])))
                .unwrap();
        v
    };
    let (va, vb) = (conv(&a, &[]), conv(&b, &["--int4-scale", "output"]));
    for k in ["mean_abs_err", "max_abs_err"] {
        assert!(
            vb[k].as_f64().unwrap() < va[k].as_f64().unwrap(),
            "{k}: output {} vs mse {}",
            vb[k],
            va[k]
        );
    }
    let o = tinygnn(&[
        "convert",
        &model,
        "--calib",
        &graphs,
        "-o",
        &b,
        "--weights",
        "int4",
        "--int4-rounding",
        "gpfq",
        "--int4-scale",
        "output",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("--int4-scale output needs --int4-rounding gpfq-seq"));
}

#[test]
fn recalibration_moves_hidden_ranges_only() {
    // `--int4-recalibrate on` re-measures each int4 layer's output range on
    // what the int4 model computes: karate's hidden tensors (ids 1, 2) get
    // other scales, the input (0) and the model output (3) keep theirs.
    let m = root().join("models/karate-gcn");
    let model = m.join("model.safetensors").display().to_string();
    let graphs = m.join("graphs.safetensors").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (a, b) = (path("a.tgnn"), path("b.tgnn"));
    let base = ["convert", &model, "--calib", &graphs, "--weights", "int4"];
    let scales = |out: &str, extra: &[&str]| -> Vec<f64> {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["-o", out]);
        args.extend_from_slice(extra);
        ok(&tinygnn(&args));
        let j: Value = serde_json::from_str(&ok(&tinygnn(&["inspect", out, "--json"]))).unwrap();
        j["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["scale"].as_f64().unwrap())
            .collect()
    };
    let (sa, sb) = (scales(&a, &[]), scales(&b, &["--int4-recalibrate", "on"]));
    assert_eq!(sa.len(), 4);
    assert_eq!(sa[0], sb[0], "input range");
    assert_eq!(sa[3], sb[3], "output range");
    assert!(sa[1] != sb[1] || sa[2] != sb[2], "{sa:?} vs {sb:?}");
    let mut args: Vec<&str> = base.to_vec();
    args.extend([
        "-o",
        &b,
        "--int4-rounding",
        "nearest",
        "--int4-recalibrate",
        "on",
    ]);
    let o = tinygnn(&args);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --int4-rounding gpfq-seq"));
}
