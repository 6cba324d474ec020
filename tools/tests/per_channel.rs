//! Per-output-channel weight precision: the spec rewrite of `split` (same
//! float function, ranges carried to the parts, refusals), the integer
//! values of a split layer's int8 channels (equal to the whole layer's), and
//! `convert --avg-weight-bits --precision-grain` end to end.

mod common;

use std::collections::HashMap;

use common::{node_model, ok, tinygnn, GraphsBuilder, ModelBuilder};
use serde_json::{json, Value};
use tinygnn_cli::calibrate::{calibrate, Method, Range};
use tinygnn_cli::prec::Prec;
use tinygnn_cli::quantize::{convert_plan, Capacity, WeightScales};
use tinygnn_cli::reference;
use tinygnn_cli::rt::{run_traced, RunOutput};
use tinygnn_cli::spec::{self, Spec};
use tinygnn_cli::split::{self, ChannelPlan};
use tinygnn_cli::st::{parse_graphs_bytes, parse_model_bytes, Graphs};
use tinygnn_cli::weights::WeightPlan;

fn load(m: &ModelBuilder) -> Spec {
    spec::parse(&parse_model_bytes(&m.bytes()).unwrap()).unwrap()
}

fn graphs() -> Graphs {
    parse_graphs_bytes(&GraphsBuilder::random(1, 40, 3, 5, 3, 5).bytes()).unwrap()
}

fn plan(layer: &str, groups: &[(Prec, &[usize])]) -> ChannelPlan {
    ChannelPlan {
        layer: layer.into(),
        groups: groups.iter().map(|(p, c)| (*p, c.to_vec())).collect(),
    }
}

/// conv1 (8 channels, reads through bn → relu → dropout) in three groups,
/// conv2 (6 channels, read by `out`) in two.
fn plans() -> Vec<ChannelPlan> {
    vec![
        plan(
            "conv1",
            &[
                (Prec::I8, &[6, 1]),
                (Prec::I4, &[0, 3, 7]),
                (Prec::I2, &[2, 4, 5]),
            ],
        ),
        plan("conv2", &[(Prec::I4, &[5, 0, 2]), (Prec::I2, &[1, 3, 4])]),
    ]
}

#[test]
fn split_computes_the_same_function() {
    let (s, g) = (load(&node_model(5, 3)), graphs());
    let ranges = calibrate(&s, &g, Method::MinMax, |_| {}).unwrap();
    let found: Vec<String> = split::splittable_layers(&s)
        .into_iter()
        .map(|l| l.layer)
        .collect();
    assert_eq!(found, ["conv1", "conv2"], "the output layer stays whole");
    let split::Split {
        spec: s2,
        ranges: r2,
        layers,
    } = split::apply(&s, &ranges, &plans()).unwrap();
    assert_eq!(
        layers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [
            "conv1.int8",
            "conv1.int4",
            "conv1.int2",
            "conv2.int4",
            "conv2.int2"
        ]
    );
    // Each part's chain copies the bn/relu/dropout and takes the ranges.
    for p in ["int8", "int4", "int2"] {
        for op in ["conv1", "bn1", "act1", "drop1"] {
            let name = format!("{op}.{p}");
            assert!(s2.shape_of(&name).is_some(), "{name}");
            assert_eq!(r2.get(&name), ranges.get(op), "{name}");
        }
    }
    assert_eq!(s2.shape_of("drop1"), s.shape_of("drop1"));
    let (a, b) = (
        reference::run(&s, &g, |_| {}).unwrap(),
        reference::run(&s2, &g, |_| {}).unwrap(),
    );
    let (fa, fb) = (&a["out"], &b["out"]);
    assert_eq!((fa.rows, fa.channels), (fb.rows, fb.channels));
    let worst = fa
        .data
        .iter()
        .zip(&fb.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-9, "outputs differ by {worst}");
    // The concat holds conv1's channels grouped: [6, 1, 0, 3, 7, 2, 4, 5].
    let perm = [6, 1, 0, 3, 7, 2, 4, 5];
    let (da, db) = (&a["drop1"], &b["drop1"]);
    for r in 0..da.rows {
        for (j, &c) in perm.iter().enumerate() {
            assert_eq!(db.row(r)[j], da.row(r)[c]);
        }
    }
}

#[test]
fn split_refusals() {
    let (s, g) = (load(&node_model(5, 3)), graphs());
    let ranges = calibrate(&s, &g, Method::MinMax, |_| {}).unwrap();
    let err = |p: ChannelPlan| split::apply(&s, &ranges, &[p]).unwrap_err().to_string();
    let e = err(plan("out", &[(Prec::I8, &[0]), (Prec::I2, &[1, 2])]));
    assert!(
        e.contains("'out' cannot take a precision per channel"),
        "{e}"
    );
    let e = err(plan(
        "conv2",
        &[(Prec::I8, &[0, 1, 2]), (Prec::I2, &[2, 3, 4, 5])],
    ));
    assert!(
        e.contains("channel 2 is out of range or in two groups"),
        "{e}"
    );
    let e = err(plan(
        "conv2",
        &[(Prec::I8, &[0, 1, 2]), (Prec::I2, &[3, 4, 6])],
    ));
    assert!(e.contains("channel 6 is out of range"), "{e}");
    let e = err(plan(
        "conv2",
        &[(Prec::I8, &[0, 1, 2]), (Prec::I2, &[3, 4])],
    ));
    assert!(e.contains("leave a channel out"), "{e}");
    // One group: the layer stays whole at that precision.
    let split::Split {
        spec: s1, layers, ..
    } = split::apply(
        &s,
        &ranges,
        &[plan("conv2", &[(Prec::I4, &[0, 1, 2, 3, 4, 5])])],
    )
    .unwrap();
    assert_eq!(s1, s);
    assert_eq!(layers, [("conv2".to_string(), Prec::I4)]);
    // SAGE with `normalize` mixes its channels; a layer read by a model
    // output directly, or by an op that cannot permute, stays whole.
    let mut m = ModelBuilder::new("node", 5, 3);
    m.sage("s1", "x", 5, 4, "mean", true);
    m.linear("l1", "s1", 4, 4);
    m.act("a1", "relu", "l1");
    let g1 = m.op("g1", "global_mean_pool", &["a1"], json!({}), json!({}));
    let o = m.linear("o", "a1", 4, 3);
    let bn = m.bn("bn", "x", 5);
    let l2 = m.linear("l2", &bn, 5, 3);
    m.outputs = vec![o, l2];
    let s = load(&m);
    assert!(split::splittable(&s, "s1").is_none());
    assert!(
        split::splittable(&s, "bn").is_none(),
        "a BatchNorm alone reads its channels"
    );
    assert!(split::splittable(&s, "l1").is_none(), "read by a pool");
    assert!(split::splittable(&s, &g1).is_none());
    // A layer whose parts' names are taken stays whole.
    let mut m = ModelBuilder::new("node", 5, 3);
    m.linear("l1", "x", 5, 4);
    m.act("l1.int2", "relu", "l1");
    let o = m.linear("o", "l1.int2", 4, 3);
    m.outputs = vec![o];
    let s = load(&m);
    assert!(split::splittable(&s, "l1").is_none());
}

/// The output of the op that produced tensor index `id`, by op index.
fn traced(bytes: &[u8], g: &Graphs) -> Vec<RunOutput> {
    let m = tinygnn::Model::from_bytes(bytes).unwrap();
    let mut outs = Vec::new();
    run_traced(&m, g, |_, o| outs.push(o.clone())).unwrap();
    outs
}

#[test]
fn int8_channels_of_a_split_layer_equal_the_whole_layer() {
    let (s, g) = (load(&node_model(5, 3)), graphs());
    let ranges: HashMap<String, Range> = calibrate(&s, &g, Method::MinMax, |_| {}).unwrap();
    let cap = Capacity {
        max_nodes: 40,
        max_edges: 200,
        max_graphs: 1,
        max_pairs: 0,
    };
    let whole = convert_plan(
        &s,
        &ranges,
        cap,
        WeightScales::PerChannel,
        &WeightPlan::all(Prec::I8),
    )
    .unwrap();
    let p = [plan(
        "conv1",
        &[(Prec::I8, &[6, 1, 4]), (Prec::I4, &[0, 2, 3, 5, 7])],
    )];
    let split::Split {
        spec: s2,
        ranges: r2,
        layers,
    } = split::apply(&s, &ranges, &p).unwrap();
    let wp = WeightPlan {
        layers,
        ..WeightPlan::all(Prec::I8)
    };
    let parts = convert_plan(&s2, &r2, cap, WeightScales::PerChannel, &wp).unwrap();
    let ops: Vec<&str> = parts.ops.iter().map(|o| o.device_name()).collect();
    assert_eq!(
        ops,
        ["gcn_conv", "gcn_conv", "concat", "sage_conv", "linear"]
    );
    let (a, b) = (traced(&whole.bytes, &g), traced(&parts.bytes, &g));
    // Whole op 0 (gcn + bn + relu) against the concat (op 2): the int8 group
    // comes first, same quantization, same integers.
    let (w, c) = (&a[0], &b[2]);
    assert_eq!((w.scale, w.zero_point), (c.scale, c.zero_point));
    for r in 0..w.rows {
        for (j, &ch) in [6usize, 1, 4].iter().enumerate() {
            assert_eq!(
                c.data[r * 8 + j],
                w.data[r * 8 + ch],
                "row {r} channel {ch}"
            );
        }
    }
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        node_model(8, 3).write(&dir.path().join("model.safetensors"));
        let g = GraphsBuilder::random(1, 80, 3, 8, 3, 13);
        g.write(&dir.path().join("graphs.safetensors"));
        Case { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn convert(&self, out: &str, extra: &[&str]) -> std::process::Output {
        let (m, g, o) = (
            self.path("model.safetensors"),
            self.path("graphs.safetensors"),
            self.path(out),
        );
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"convert", &m, &"--calib", &g, &"-o", &o];
        for e in extra {
            args.push(e);
        }
        tinygnn(&args)
    }

    fn json(&self, out: &str, extra: &[&str]) -> Value {
        let mut e = extra.to_vec();
        e.push("--json");
        serde_json::from_str(&ok(&self.convert(out, &e))).unwrap()
    }
}

#[test]
fn precision_grain_end_to_end() {
    let c = Case::new();
    let j = c.json(
        "ch.tgnn",
        &["--avg-weight-bits", "3", "--precision-grain", "channel"],
    );
    let a = &j["avg_weight_bits"];
    assert_eq!(a["grain"], "channel");
    let pc = &a["per_channel"];
    assert!(a["chosen"].as_f64().unwrap() <= 3.0 + 1e-9, "{a}");
    assert_eq!(a["chosen"], pc["avg_bits"]);
    // Every channel of a split layer in exactly one group; the plan names
    // the parts, and their weights add up to the layer's.
    let channels: HashMap<&str, usize> = [("conv1", 8), ("conv2", 6), ("out", 3)].into();
    for l in pc["groups"].as_array().unwrap() {
        let layer = l["layer"].as_str().unwrap();
        let mut seen: Vec<u64> = l["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| {
                g["channels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..channels[layer] as u64).collect::<Vec<_>>(),
            "{layer}"
        );
    }
    let count: u64 = a["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, 8 * 8 + 8 * 6 * 2 + 6 * 3);
    // 4 groups of each split layer, the output layer whole, each at 2 precisions.
    assert_eq!(pc["sensitivity"].as_array().unwrap().len(), 2 * (4 + 4 + 1));
    // The file runs and agrees with float as convert measured it.
    let v: Value = serde_json::from_str(&ok(&tinygnn(&[
        &"verify",
        &c.path("model.safetensors"),
        &c.path("ch.tgnn"),
        &c.path("graphs.safetensors"),
        &"--json",
    ])))
    .unwrap();
    assert_eq!(v["top1_agreement"], pc["top1_agreement"]);
    // Per layer: no channel search; best: the per-channel model only if it
    // measured better, else the per-layer file byte for byte.
    let l = c.json(
        "l.tgnn",
        &["--avg-weight-bits", "3", "--precision-grain", "layer"],
    );
    assert_eq!(l["avg_weight_bits"]["per_channel"], Value::Null);
    let b = c.json("b.tgnn", &["--avg-weight-bits", "3"]);
    let bp = &b["avg_weight_bits"]["per_channel"];
    let better = bp["top1_agreement"].as_f64() > bp["per_layer_top1_agreement"].as_f64()
        || (bp["top1_agreement"] == bp["per_layer_top1_agreement"]
            && bp["rel_mean_err"].as_f64() < bp["per_layer_rel_mean_err"].as_f64());
    assert_eq!(bp["better"], better);
    let read = |n: &str| std::fs::read(c.path(n)).unwrap();
    assert_eq!(read("b.tgnn") == read("ch.tgnn"), better);
    assert_eq!(read("b.tgnn") == read("l.tgnn"), !better);
    // All int2 leaves nothing to share out, all int8 needs nothing lowered:
    // no channel search.
    for bits in ["2", "8"] {
        let j = c.json("u.tgnn", &["--avg-weight-bits", bits]);
        assert_eq!(j["avg_weight_bits"]["per_channel"], Value::Null, "{bits}");
    }
    // The grain needs a bit budget.
    let o = c.convert("x.tgnn", &["--precision-grain", "channel"]);
    assert_eq!(o.status.code(), Some(2));
}
