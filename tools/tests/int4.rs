//! `tinygnn convert --weights` / `--flash-budget` / `--int4-scale` and what
//! `inspect` reports about weight precision, end to end on the binary.

mod common;

use std::process::{Command, Output};

use common::{node_model, ok, GraphsBuilder};
use serde_json::Value;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        // conv1 has 5 input channels: odd rows exercise the int4 row padding.
        node_model(5, 3).write(&dir.path().join("model.safetensors"));
        let mut g = GraphsBuilder::random(1, 60, 3, 5, 3, 11);
        g.test_mask = Some((0..60).map(|i| i64::from(i % 2 == 0)).collect());
        g.write(&dir.path().join("graphs.safetensors"));
        Case { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `convert` to `out` with `extra` flags.
    fn convert(&self, out: &str, extra: &[&str]) -> Output {
        let (m, g, o) = (
            self.path("model.safetensors"),
            self.path("graphs.safetensors"),
            self.path(out),
        );
        let mut args = vec!["convert", &m, "--calib", &g, "-o", &o];
        args.extend_from_slice(extra);
        tinygnn(&args)
    }

    fn bytes(&self, out: &str) -> Vec<u8> {
        std::fs::read(self.path(out)).unwrap()
    }

    /// Weight precision of every op with weights, from `inspect --json`.
    fn precisions(&self, out: &str) -> Vec<String> {
        let j: Value =
            serde_json::from_str(&ok(&tinygnn(&["inspect", &self.path(out), "--json"]))).unwrap();
        j["ops"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["attrs"]["weights"].as_str().map(str::to_string))
            .collect()
    }

    fn verify(&self, out: &str) -> Value {
        let o = tinygnn(&[
            "verify",
            &self.path("model.safetensors"),
            &self.path(out),
            &self.path("graphs.safetensors"),
            "--json",
        ]);
        serde_json::from_str(&ok(&o)).unwrap()
    }
}

fn tinygnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(args)
        .output()
        .expect("run tinygnn")
}

fn fails(o: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

#[test]
fn weights_int4_everywhere_and_per_layer() {
    let c = Case::new();
    ok(&c.convert("default.tgnn", &[]));
    ok(&c.convert("int8.tgnn", &["--weights", "int8"]));
    assert_eq!(
        c.bytes("default.tgnn"),
        c.bytes("int8.tgnn"),
        "int8 is the default"
    );
    assert_eq!(c.precisions("int8.tgnn"), ["int8", "int8", "int8"]);

    let out = ok(&c.convert("int4.tgnn", &["--weights", "int4"]));
    assert!(
        out.contains("weight precision: conv1=int4, conv2=int4, out=int4"),
        "{out}"
    );
    assert_eq!(c.precisions("int4.tgnn"), ["int4", "int4", "int4"]);
    // Weights: conv1 5→8, conv2 (lin_l + lin_r) 8→6, out 6→3.
    let j: Value =
        serde_json::from_str(&ok(&tinygnn(&["inspect", &c.path("int4.tgnn"), "--json"]))).unwrap();
    assert_eq!(j["flash"]["int4_weights"], 8 * 3 + 2 * 6 * 4 + 3 * 3);
    assert_eq!(j["flash"]["int8_weights"], 0);
    let (b8, b4) = (c.bytes("int8.tgnn").len(), c.bytes("int4.tgnn").len());
    assert!(b4 < b8, "int4 {b4} bytes, int8 {b8}");
    let text = ok(&tinygnn(&["inspect", &c.path("int4.tgnn")]));
    assert!(text.contains("weights=\"int4\""), "{text}");

    // The int4 model runs and stays far above chance (1/3) on this random
    // model (measured: 73 % agreement); garbled weights would not.
    let v = c.verify("int4.tgnn");
    let v8 = c.verify("int8.tgnn");
    assert!(
        v["top1_agreement"].as_f64().unwrap() >= 0.6,
        "int4 agreement {}",
        v["top1_agreement"]
    );
    assert!(v["mean_abs_err"].as_f64().unwrap() >= v8["mean_abs_err"].as_f64().unwrap());

    ok(&c.convert("mixed.tgnn", &["--weights", "int4,conv1=int8"]));
    assert_eq!(c.precisions("mixed.tgnn"), ["int8", "int4", "int4"]);
    ok(&c.convert("one.tgnn", &["--weights", "conv2=int4"]));
    assert_eq!(c.precisions("one.tgnn"), ["int8", "int4", "int8"]);
    // A layer may be named by any spec op fused into it (conv1 + bn1 + act1).
    ok(&c.convert("bn.tgnn", &["--weights", "act1=int4"]));
    assert_eq!(c.precisions("bn.tgnn"), ["int4", "int8", "int8"]);
}

#[test]
fn int4_scale_and_rounding_options() {
    let c = Case::new();
    ok(&c.convert("gpfq.tgnn", &["--weights", "int4"]));
    ok(&c.convert(
        "gpfq2.tgnn",
        &[
            "--weights",
            "int4",
            "--int4-rounding",
            "gpfq-seq",
            "--int4-scale",
            "mse",
        ],
    ));
    assert_eq!(c.bytes("gpfq.tgnn"), c.bytes("gpfq2.tgnn"), "the defaults");
    ok(&c.convert(
        "mse.tgnn",
        &["--weights", "int4", "--int4-rounding", "nearest"],
    ));
    ok(&c.convert(
        "max.tgnn",
        &[
            "--weights",
            "int4",
            "--int4-rounding",
            "nearest",
            "--int4-scale",
            "max",
        ],
    ));
    let n = c.bytes("mse.tgnn").len();
    assert_eq!(c.bytes("max.tgnn").len(), n);
    assert_eq!(c.bytes("gpfq.tgnn").len(), n);
    assert_ne!(
        c.bytes("mse.tgnn"),
        c.bytes("max.tgnn"),
        "the scale search changes something"
    );
    assert_ne!(
        c.bytes("gpfq.tgnn"),
        c.bytes("mse.tgnn"),
        "GPFQ rounds some weights differently"
    );
    // GPFQ minimises each layer's output error on the calibration graphs,
    // which verify uses here too: the final output error is not larger.
    let (g, m) = (c.verify("gpfq.tgnn"), c.verify("mse.tgnn"));
    assert!(
        g["mean_abs_err"].as_f64().unwrap() <= m["mean_abs_err"].as_f64().unwrap(),
        "gpfq {} vs nearest {}",
        g["mean_abs_err"],
        m["mean_abs_err"]
    );
    // int8 conversions are not affected by the int4 options.
    ok(&c.convert("a.tgnn", &[]));
    ok(&c.convert(
        "b.tgnn",
        &["--int4-rounding", "nearest", "--int4-scale", "max"],
    ));
    assert_eq!(c.bytes("a.tgnn"), c.bytes("b.tgnn"));
    // A typed option: a bad value is a usage error (exit 2), as clap's own.
    fails(
        &c.convert("x.tgnn", &["--weights", "int4", "--int4-rounding", "up"]),
        2,
        &["--int4-rounding must be nearest, gpfq or gpfq-seq"],
    );
    fails(
        &c.convert("x.tgnn", &["--int4-bias-correction", "yes"]),
        2,
        &["possible values: on, off"],
    );
    fails(
        &c.convert("x.tgnn", &["--weights", "int4", "--int4-scale", "min"]),
        1,
        &["--int4-scale must be mse, max or output"],
    );
}

#[test]
fn bad_weights_flags() {
    let c = Case::new();
    fails(
        &c.convert("x.tgnn", &["--weights", "int3"]),
        1,
        &["int8, int4, int2 or ternary", "int3"],
    );
    fails(
        &c.convert("x.tgnn", &["--weights", "int4,nope=int8"]),
        1,
        &["no layer with weights named 'nope'", "conv1, conv2, out"],
    );
    fails(
        &c.convert("x.tgnn", &["--weights", "int4,int8"]),
        1,
        &["more than one default"],
    );
    fails(&c.convert("x.tgnn", &["--weights", ""]), 1, &["empty"]);
    fails(
        &c.convert("x.tgnn", &["--weights", "=int4"]),
        1,
        &["no layer name"],
    );
    // --weights and --flash-budget exclude each other (usage error).
    fails(
        &c.convert("x.tgnn", &["--weights", "int4", "--flash-budget", "999"]),
        2,
        &["--flash-budget"],
    );
    assert!(!c.dir.path().join("x.tgnn").exists());
}

#[test]
fn flash_budget_picks_precision_per_layer() {
    let c = Case::new();
    ok(&c.convert("int8.tgnn", &[]));
    ok(&c.convert("int4.tgnn", &["--weights", "int4"]));
    let (b8, b4) = (c.bytes("int8.tgnn").len(), c.bytes("int4.tgnn").len());

    // A budget that int8 meets: all int8, the same file as without the flag.
    ok(&c.convert("fit.tgnn", &["--flash-budget", &b8.to_string()]));
    assert_eq!(c.bytes("fit.tgnn"), c.bytes("int8.tgnn"));

    // Exactly the all-int4 size: every layer int4.
    let out = ok(&c.convert("tight.tgnn", &["--flash-budget", &b4.to_string()]));
    assert!(out.contains("int4 sensitivity"), "{out}");
    assert_eq!(c.bytes("tight.tgnn"), c.bytes("int4.tgnn"));

    // Midway: some layers int4, some int8, within the budget.
    let mid = (b8 + b4) / 2;
    let out = ok(&c.convert("mid.tgnn", &["--flash-budget", &mid.to_string()]));
    let n = c.bytes("mid.tgnn").len();
    assert!(
        n <= mid && n > b4,
        "{n} bytes for budget {mid} (int4 {b4})\n{out}"
    );
    let p = c.precisions("mid.tgnn");
    assert!(
        p.contains(&"int4".to_string()) && p.contains(&"int8".to_string()),
        "{p:?}"
    );
    // Every layer's sensitivity line is printed, least sensitive first.
    for layer in ["conv1", "conv2", "out"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(layer) && l.contains("top-1 agreement")),
            "{layer} missing:\n{out}"
        );
    }

    // Below the all-int4 size: a clear error, no file.
    fails(
        &c.convert("no.tgnn", &["--flash-budget", &(b4 - 1).to_string()]),
        1,
        &["even all-int4", &format!("{b4} bytes")],
    );
    assert!(!c.dir.path().join("no.tgnn").exists());
}

#[test]
fn gpfq_corrects_the_error_of_earlier_weights() {
    use tinygnn_cli::quantize::{gpfq_row, Columns};
    use tinygnn_cli::reference::Tensor;
    // Two identical input channels: rounding 0.3 and 0.3 to nearest gives 0, 0
    // (output error 0.6 per unit input); GPFQ carries the first weight's error
    // into the second and gives 0, 1 (error 0.4).
    let x = Tensor {
        rows: 2,
        channels: 2,
        data: vec![1.0, 1.0, 2.0, 2.0],
    };
    assert_eq!(gpfq_row(&[0.3, 0.3], 1.0, 7.0, &Columns::of(&x)), [0, 1]);
    // Orthogonal channels: nothing to correct, round to nearest (clamped to ±qm).
    let x = Tensor {
        rows: 2,
        channels: 2,
        data: vec![1.0, 0.0, 0.0, 1.0],
    };
    assert_eq!(gpfq_row(&[0.3, -9.6], 1.0, 7.0, &Columns::of(&x)), [0, -7]);
    // A channel without data (all zero) rounds to nearest as well.
    let x = Tensor {
        rows: 1,
        channels: 2,
        data: vec![0.0, 1.0],
    };
    assert_eq!(gpfq_row(&[2.6, 0.4], 1.0, 7.0, &Columns::of(&x)), [3, 0]);
}
