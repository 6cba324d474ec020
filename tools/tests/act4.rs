//! `tinygnn convert --activations int4` end to end on the binary: which
//! tensors become int4 (and why the others stay int8), the file's bit-width
//! table, the smaller arena, and that the int4 model runs and agrees with
//! float far above chance.

mod common;

use common::{graph_model, node_model, ok, tinygnn, GraphsBuilder, ModelBuilder};
use serde_json::{json, Value};

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(m: &ModelBuilder, g: &GraphsBuilder) -> Case {
        let dir = tempfile::tempdir().unwrap();
        m.write(&dir.path().join("model.safetensors"));
        g.write(&dir.path().join("graphs.safetensors"));
        Case { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn convert(&self, out: &str, extra: &[&str]) -> Value {
        let (m, g, o) = (
            self.path("model.safetensors"),
            self.path("graphs.safetensors"),
            self.path(out),
        );
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"convert", &m, &"--calib", &g, &"-o", &o, &"--json"];
        for e in extra {
            args.push(e);
        }
        serde_json::from_str(&ok(&tinygnn(&args))).unwrap()
    }

    fn verify(&self, out: &str) -> Value {
        let (m, g, o) = (
            self.path("model.safetensors"),
            self.path("graphs.safetensors"),
            self.path(out),
        );
        serde_json::from_str(&ok(&tinygnn(&[&"verify", &m, &o, &g, &"--json"]))).unwrap()
    }

    fn bytes(&self, out: &str) -> Vec<u8> {
        std::fs::read(self.path(out)).unwrap()
    }
}

/// The reasons `convert --json` gives for the tensors kept int8.
fn reasons(activations: &Value) -> Vec<&str> {
    activations["int8_tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["why"].as_str().unwrap())
        .collect()
}

/// gcn → relu → linear → relu → linear: every tensor but the output int4.
fn chain() -> ModelBuilder {
    let mut m = ModelBuilder::new("node", 12, 5);
    m.gcn("conv1", "x", 12, 16, json!({}));
    m.act("act1", "relu", "conv1");
    m.linear("lin1", "act1", 16, 8);
    m.act("act2", "relu", "lin1");
    let out = m.linear("out", "act2", 8, 3);
    m.outputs = vec![out];
    m
}

fn graphs(f: usize, seed: u64) -> GraphsBuilder {
    let mut g = GraphsBuilder::random(1, 80, 3, f, 3, seed);
    g.test_mask = Some((0..80).map(|i| i64::from(i % 2 == 0)).collect());
    g
}

#[test]
fn int4_activations_on_a_gcn_linear_chain() {
    let c = Case::new(&chain(), &graphs(12, 3));
    let j8 = c.convert("int8.tgnn", &[]);
    let j4 = c.convert("a4.tgnn", &["--activations", "int4"]);
    assert_eq!(j8["activations"]["bits"], "int8");
    let a = &j4["activations"];
    assert_eq!(a["bits"], "int4");
    assert_eq!(a["int4_tensors"], json!(["x", "act1", "act2"]));
    let kept = a["int8_tensors"].as_array().unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0]["why"].as_str().unwrap().contains("model output"));
    // The arena shrinks, and the all-int8 one is reported for comparison.
    let (ar4, ar8) = (
        j4["arena_bytes_at_capacity"].as_u64().unwrap(),
        j8["arena_bytes_at_capacity"].as_u64().unwrap(),
    );
    assert_eq!(a["arena_bytes_int8_at_capacity"].as_u64(), Some(ar8));
    assert!(ar4 < ar8, "A4 arena {ar4}, int8 {ar8}");
    assert!(j4["features"]
        .as_array()
        .unwrap()
        .contains(&json!("act-i4")));
    // The file: flag bit 0, and a table of 4, 4, 4, 8 ending the metadata.
    let b = c.bytes("a4.tgnn");
    assert_eq!(u16::from_le_bytes([b[6], b[7]]), 1);
    let meta_end = (u32::from_le_bytes(b[16..20].try_into().unwrap())
        + u32::from_le_bytes(b[20..24].try_into().unwrap())) as usize;
    assert_eq!(&b[meta_end - 4..meta_end], &[4, 4, 4, 8]);
    assert_eq!(u16::from_le_bytes([c.bytes("int8.tgnn")[6], 0]), 0);
    // The default is int8 (same bytes as without the flag).
    c.convert("int8b.tgnn", &["--activations", "int8"]);
    assert_eq!(c.bytes("int8.tgnn"), c.bytes("int8b.tgnn"));
    // It runs and agrees with float far above chance (1/3) on this random
    // model; garbled packing would not.
    let v = c.verify("a4.tgnn");
    assert!(
        v["top1_agreement"].as_f64().unwrap() >= 0.7,
        "A4 agreement {}",
        v["top1_agreement"]
    );
    // The minmax range method is there too, and differs.
    c.convert(
        "a4mm.tgnn",
        &["--activations", "int4", "--int4-act-calibration", "minmax"],
    );
    assert_ne!(c.bytes("a4.tgnn"), c.bytes("a4mm.tgnn"));
}

#[test]
fn gcn_sage_linear_are_int4_up_to_the_output() {
    // gcn (+bn, relu) → sage (mean) → linear: every tensor but the output.
    let c = Case::new(&node_model(5, 3), &graphs(5, 4));
    let j = c.convert("a4.tgnn", &["--activations", "int4"]);
    let a = &j["activations"];
    assert_eq!(a["int4_tensors"].as_array().unwrap().len(), 3, "{a}");
    let kept = a["int8_tensors"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{a}");
    assert!(kept[0]["why"].as_str().unwrap().contains("model output"));
    c.verify("a4.tgnn");
}

#[test]
fn tensors_around_other_ops_stay_int8_with_the_reason() {
    // A normalising SAGE writes int8 rows of scale 1/127: its output stays
    // int8, and says why.
    let mut m = ModelBuilder::new("node", 5, 7);
    m.gcn("conv1", "x", 5, 8, json!({}));
    m.act("act1", "relu", "conv1");
    m.sage("conv2", "act1", 8, 6, "max", true);
    let out = m.linear("out", "conv2", 6, 3);
    m.outputs = vec![out];
    let c = Case::new(&m, &graphs(5, 4));
    let j = c.convert("a4.tgnn", &["--activations", "int4"]);
    let a = &j["activations"];
    assert_eq!(a["int4_tensors"], json!(["x"]), "{a}");
    let why = reasons(a);
    assert!(why.iter().any(|w| w.contains("sage_conv")), "{why:?}");
    c.verify("a4.tgnn");
}

#[test]
fn an_act_over_an_int8_tensor_stays_int8() {
    // A normalising SAGE's output (int8) through a standalone ReLU (not
    // fused into a normalising SAGE): the act keeps its input's int8
    // quantization, so its output stays int8 too, and says why.
    let mut m = ModelBuilder::new("node", 5, 7);
    m.sage("conv1", "x", 5, 6, "mean", true);
    m.act("act1", "relu", "conv1");
    let out = m.linear("out", "act1", 6, 3);
    m.outputs = vec![out];
    let c = Case::new(&m, &graphs(5, 4));
    let j = c.convert("a4.tgnn", &["--activations", "int4"]);
    let a = &j["activations"];
    assert_eq!(a["int4_tensors"], json!([]), "{a}");
    let why = reasons(a);
    assert!(why.iter().any(|w| w.contains("an act keeps")), "{why:?}");
    c.verify("a4.tgnn");
}

#[test]
fn every_model_converts_with_int4_activations() {
    // GIN, pooling, add, concat: whatever cannot be int4 stays int8.
    let mut g = GraphsBuilder::random(6, 10, 3, 6, 4, 9);
    g.test_mask = None;
    let c = Case::new(&graph_model(6, 4), &g);
    let j = c.convert("a4.tgnn", &["--activations", "int4"]);
    assert!(!j["activations"]["int8_tensors"]
        .as_array()
        .unwrap()
        .is_empty());
    c.verify("a4.tgnn");
}

#[test]
fn mixed_weight_precision_combines_with_int4_activations() {
    let c = Case::new(&chain(), &graphs(12, 3));
    let plain = c.convert("a4.tgnn", &["--activations", "int4"]);
    let int4_tensors = &plain["activations"]["int4_tensors"];
    // The midpoint of the int8 and int4 weight files.
    c.convert("w4only.tgnn", &["--weights", "int4"]);
    let mid = ((c.bytes("a4.tgnn").len() + c.bytes("w4only.tgnn").len()) / 2).to_string();
    for (out, extra) in [
        ("avg.tgnn", vec!["--avg-weight-bits", "3"]),
        ("budget.tgnn", vec!["--flash-budget", mid.as_str()]),
        // Sequential rounding (the default) on int4 layer inputs.
        ("w4.tgnn", vec!["--weights", "int4"]),
    ] {
        let mut args = vec!["--activations", "int4"];
        args.extend(extra);
        let j = c.convert(out, &args);
        assert_eq!(&j["activations"]["int4_tensors"], int4_tensors, "{out}");
        assert!(
            c.bytes(out) != c.bytes("a4.tgnn"),
            "{out}: weights unchanged"
        );
        if out == "budget.tgnn" {
            assert!(c.bytes(out).len() <= mid.parse().unwrap());
        }
        let v = c.verify(out);
        assert!(v["top1_agreement"].as_f64().unwrap() > 0.5, "{out}: {v}");
    }
}

/// The arena at capacity `convert --json` reports.
fn arena(j: &Value) -> u64 {
    j["arena_bytes_at_capacity"]
        .as_u64()
        .unwrap_or_else(|| panic!("no arena in {j}"))
}

#[test]
fn arena_budget_makes_tensors_int4_until_the_arena_fits() {
    let c = Case::new(&chain(), &graphs(12, 3));
    let a8 = arena(&c.convert("a8.tgnn", &[]));
    let a4 = arena(&c.convert("a4.tgnn", &["--activations", "int4"]));
    assert!(a4 < a8);
    // The int8 arena fits: nothing changes.
    let j = c.convert("b8.tgnn", &["--arena-budget", &a8.to_string()]);
    assert_eq!(j["activations"]["int4_tensors"], json!([]));
    assert_eq!(c.bytes("b8.tgnn"), c.bytes("a8.tgnn"));
    // In between: some tensors int4, the arena within the budget.
    let mid = (a4 + a8) / 2;
    let j = c.convert("mid.tgnn", &["--arena-budget", &mid.to_string()]);
    let act = &j["activations"];
    let n = act["int4_tensors"].as_array().unwrap().len();
    assert!(n >= 1, "{act}");
    assert!(arena(&j) <= mid, "{j}");
    assert_eq!(act["arena_budget"]["arena_bytes"].as_u64(), Some(arena(&j)));
    assert_eq!(
        act["arena_budget"]["candidates"].as_array().unwrap().len(),
        3
    );
    assert!(c.verify("mid.tgnn")["top1_agreement"].as_f64().unwrap() > 0.5);
    // The all-int4 arena: reached, with int4 tensors among those of
    // --activations int4 (not necessarily all: an op's scratch may sit
    // over slots another int4 tensor would free).
    let j = c.convert("b4.tgnn", &["--arena-budget", &a4.to_string()]);
    assert!(arena(&j) <= a4, "{j}");
    let all = c.convert("a4.tgnn", &["--activations", "int4"]);
    let all = all["activations"]["int4_tensors"].as_array().unwrap();
    let some = j["activations"]["int4_tensors"].as_array().unwrap();
    assert!(
        !some.is_empty() && some.iter().all(|t| all.contains(t)),
        "{j}"
    );
    assert!(c.verify("b4.tgnn")["top1_agreement"].as_f64().unwrap() > 0.5);
}

#[test]
fn unreachable_or_conflicting_arena_budgets_are_refused() {
    let c = Case::new(&chain(), &graphs(12, 3));
    let a4 = arena(&c.convert("a4.tgnn", &["--activations", "int4"]));
    let (m, g, o) = (
        c.path("model.safetensors"),
        c.path("graphs.safetensors"),
        c.path("x.tgnn"),
    );
    let too_small = (a4 - 1).to_string();
    for (extra, want) in [
        (
            vec!["--arena-budget", too_small.as_str()],
            "even with every eligible tensor int4",
        ),
        (
            vec!["--arena-budget", "1000000", "--activations", "int4"],
            "cannot be used with",
        ),
    ] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"convert", &m, &"--calib", &g, &"-o", &o];
        for e in &extra {
            args.push(e);
        }
        let r = tinygnn(&args);
        assert!(!r.status.success());
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(want), "{err}");
        assert!(!std::path::Path::new(&o).exists());
    }
}
