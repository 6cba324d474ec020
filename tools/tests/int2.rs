//! `tinygnn convert --weights int2|ternary` and `--avg-weight-bits`, end to
//! end on the binary: the file's sections, the levels written, what
//! `inspect` reports, the chosen plans, and the refusals.

mod common;

use std::process::{Command, Output};

use common::{node_model, ok, GraphsBuilder};
use serde_json::Value;
use tinygnn::format::Op;
use tinygnn::kernels::dense_i2::field;
use tinygnn::kernels::dense_i4::Matrix;
use tinygnn::Model;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        // conv1 has 5 input channels: rows of 2 bytes with 3 padding fields.
        node_model(5, 3).write(&dir.path().join("model.safetensors"));
        let mut g = GraphsBuilder::random(1, 60, 3, 5, 3, 11);
        g.test_mask = Some((0..60).map(|i| i64::from(i % 2 == 0)).collect());
        g.write(&dir.path().join("graphs.safetensors"));
        Case { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

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

    /// Every int2 weight value of the model (padding fields excluded).
    fn int2_values(&self, out: &str) -> Vec<i32> {
        let bytes = self.bytes(out);
        let m = Model::from_bytes(&bytes).unwrap();
        let mut vals = Vec::new();
        for op in m.ops() {
            let (secs, in_ch) = match &op {
                Op::GcnConv(o) => (vec![o.weights], m.tensors()[usize::from(o.input)].channels),
                Op::SageConv(o) => (
                    vec![o.weights_l, o.weights_r],
                    m.tensors()[usize::from(o.input)].channels,
                ),
                Op::Linear(o) => (vec![o.weights], m.tensors()[usize::from(o.input)].channels),
                _ => continue,
            };
            let in_ch = usize::from(in_ch);
            for s in secs {
                if let Matrix::I2(b) = m.matrix(s) {
                    for row in b.chunks(in_ch.div_ceil(4)) {
                        vals.extend((0..in_ch).map(|k| field(row[k / 4], (k % 4) as u32)));
                    }
                }
            }
        }
        vals
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
fn weights_int2_and_ternary() {
    let c = Case::new();
    ok(&c.convert("int4.tgnn", &["--weights", "int4"]));
    let out = ok(&c.convert("int2.tgnn", &["--weights", "int2"]));
    assert!(
        out.contains("weight precision: conv1=int2, conv2=int2, out=int2"),
        "{out}"
    );
    assert!(
        out.contains("weights-i2"),
        "the cargo feature is named: {out}"
    );
    assert_eq!(c.precisions("int2.tgnn"), ["int2", "int2", "int2"]);
    let m = c.bytes("int2.tgnn");
    let model = Model::from_bytes(&m).unwrap();
    assert!(model.ops().any(|op| op.has_i2_weights()));
    // Rows of ceil(in_ch / 4) bytes: conv1 8×5, SAGE 2 × 6×8, out 3×6.
    let j: Value =
        serde_json::from_str(&ok(&tinygnn(&["inspect", &c.path("int2.tgnn"), "--json"]))).unwrap();
    assert_eq!(j["flash"]["weights"], 8 * 2 + 2 * 6 * 2 + 3 * 2);
    assert!(c.bytes("int2.tgnn").len() < c.bytes("int4.tgnn").len());
    let vals = c.int2_values("int2.tgnn");
    assert_eq!(vals.len(), 8 * 5 + 2 * 6 * 8 + 3 * 6);
    assert!(vals.iter().all(|v| (-2..=1).contains(v)));
    // The int2 model runs and stays above chance (1/3) on its calibration graphs.
    let v = c.verify("int2.tgnn");
    assert!(v["top1_agreement"].as_f64().unwrap() > 0.5, "{v}");

    let out = ok(&c.convert("ter.tgnn", &["--weights", "ternary"]));
    assert!(
        out.contains("weight precision: conv1=ternary, conv2=ternary, out=ternary"),
        "{out}"
    );
    // Stored as int2, with the levels −1..=1 only.
    assert_eq!(c.precisions("ter.tgnn"), ["int2", "int2", "int2"]);
    let vals = c.int2_values("ter.tgnn");
    assert!(vals.iter().all(|v| (-1..=1).contains(v)), "{vals:?}");
    assert!(vals.iter().any(|&v| v != 0));
    assert!(c.verify("ter.tgnn")["top1_agreement"].as_f64().unwrap() > 0.5);

    // Per layer, mixed with every other precision.
    ok(&c.convert("mix.tgnn", &["--weights", "int2,conv1=int8,out=int4"]));
    assert_eq!(c.precisions("mix.tgnn"), ["int8", "int2", "int4"]);
    ok(&c.convert("mix2.tgnn", &["--weights", "conv2=ternary"]));
    assert_eq!(c.precisions("mix2.tgnn"), ["int8", "int2", "int8"]);
    // Every rounding option applies to 2-bit layers.
    for extra in [
        ["--int4-rounding", "nearest"],
        ["--int4-rounding", "gpfq"],
        ["--int4-scale", "output"],
        ["--int4-bias-correction", "on"],
    ] {
        let mut args = vec!["--weights", "int2"];
        args.extend_from_slice(&extra);
        ok(&c.convert("opt.tgnn", &args));
        assert!(c
            .int2_values("opt.tgnn")
            .iter()
            .all(|v| (-2..=1).contains(v)));
    }
}

#[test]
fn avg_weight_bits_meets_the_target() {
    let c = Case::new();
    // Weights: conv1 40, conv2 96, out 18 (154). All int2: 2.0 bits.
    let out = ok(&c.convert("a2.tgnn", &["--avg-weight-bits", "2"]));
    assert!(
        out.contains("average weight bits: target 2, chosen plan 2.000"),
        "{out}"
    );
    assert!(
        out.contains(
            "plan: conv1=int2 (40 weights), conv2=int2 (96 weights), out=int2 (18 weights)"
        ),
        "{out}"
    );
    assert_eq!(c.precisions("a2.tgnn"), ["int2", "int2", "int2"]);
    // 8 bits: nothing lowered, no measurements.
    let out = ok(&c.convert("a8.tgnn", &["--avg-weight-bits", "8"]));
    assert!(out.contains("chosen plan 8.000"), "{out}");
    assert_eq!(c.bytes("a8.tgnn"), {
        ok(&c.convert("i8.tgnn", &[]));
        c.bytes("i8.tgnn")
    });
    // In between: the plan meets the target and is not all of one precision.
    for target in [3.0f64, 4.5, 6.0] {
        let t = target.to_string();
        let o = c.convert("mid.tgnn", &["--avg-weight-bits", &t, "--json"]);
        let j: Value = serde_json::from_str(&ok(&o)).unwrap();
        let a = &j["avg_weight_bits"];
        let got = a["chosen"].as_f64().unwrap();
        assert!(got <= target + 1e-9, "{a}");
        let plan = a["plan"].as_array().unwrap();
        let (mut bits, mut n) = (0.0, 0.0);
        for l in plan {
            let b = match l["weights"].as_str().unwrap() {
                "int8" => 8.0,
                "int4" => 4.0,
                "int2" => 2.0,
                p => panic!("{p}"),
            };
            let k = l["count"].as_f64().unwrap();
            bits += b * k;
            n += k;
        }
        assert!((bits / n - got).abs() < 1e-9);
        assert_eq!(n, 154.0);
        // Least sensitive first: the sensitivity list is sorted by agreement.
        let s: Vec<f64> = a["sensitivity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["top1_agreement"].as_f64().unwrap())
            .collect();
        assert_eq!(s.len(), 6);
        assert!(s.windows(2).all(|w| w[0] >= w[1]), "{s:?}");
        let precs = c.precisions("mid.tgnn");
        assert!(precs.iter().any(|p| p != "int2"), "{target}: {precs:?}");
    }
    // Below 2 bits nothing fits; bad values and --weights are refused.
    fails(
        &c.convert("no.tgnn", &["--avg-weight-bits", "1.5"]),
        1,
        &["even all-int2 weights average 2.000 bits"],
    );
    fails(
        &c.convert("no.tgnn", &["--avg-weight-bits", "0"]),
        1,
        &["positive number"],
    );
    fails(
        &c.convert("no.tgnn", &["--avg-weight-bits", "3", "--weights", "int2"]),
        2,
        &["--weights"],
    );
    fails(
        &c.convert(
            "no.tgnn",
            &["--avg-weight-bits", "3", "--flash-budget", "9999"],
        ),
        2,
        &["--flash-budget"],
    );
    assert!(!c.dir.path().join("no.tgnn").exists());
}
