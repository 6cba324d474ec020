//! The quantization debugger: `tinygnn verify --per-layer` (table, `--json`,
//! `--plot`, `--by-degree`, `--on calib`) and its library functions.

mod common;

use std::path::Path;

use common::{graph_model, node_model, ok, tinygnn, GraphsBuilder, ModelBuilder};
use serde_json::Value;
use tinygnn_cli::calibrate::{self, Method};
use tinygnn_cli::debug::{self, degree_bucket, degree_label, ErrStats};
use tinygnn_cli::quantize::{self, Capacity};
use tinygnn_cli::{spec, st};

/// Writes model, graphs and a converted `.tgnn` (ranges from `calib_graphs`,
/// then `edit` may spoil some of them) into `dir`.
fn setup(
    dir: &Path,
    m: &ModelBuilder,
    g: &GraphsBuilder,
    edit: impl FnOnce(&mut std::collections::HashMap<String, calibrate::Range>),
) {
    m.write(&dir.join("model.safetensors"));
    g.write(&dir.join("graphs.safetensors"));
    let spec = spec::parse(&st::parse_model_bytes(&m.bytes()).unwrap()).unwrap();
    let gr = st::parse_graphs_bytes(&g.bytes()).unwrap();
    let mut ranges = calibrate::calibrate(&spec, &gr, Method::MinMax, |_| {}).unwrap();
    edit(&mut ranges);
    let cap = Capacity {
        max_nodes: gr.num_nodes as u32,
        max_edges: gr.num_edges() as u32,
        max_graphs: gr.num_graphs as u32,
        max_pairs: 0,
    };
    let conv = quantize::convert(&spec, &ranges, cap).unwrap();
    std::fs::write(dir.join("model.tgnn"), conv.bytes).unwrap();
}

fn verify_json(dir: &Path, extra: &[&str]) -> Value {
    let (m, t, g) = (
        dir.join("model.safetensors"),
        dir.join("model.tgnn"),
        dir.join("graphs.safetensors"),
    );
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"verify", &m, &t, &g, &"--json"];
    for e in extra {
        args.push(e);
    }
    serde_json::from_str(&ok(&tinygnn(&args))).unwrap()
}

fn num_ops(dir: &Path) -> usize {
    let j: Value = serde_json::from_str(&ok(&tinygnn(&[
        &"inspect",
        &dir.join("model.tgnn"),
        &"--json",
    ])))
    .unwrap();
    j["ops"].as_array().unwrap().len()
}

#[test]
fn sqnr_of_known_values() {
    let mut s = ErrStats::default();
    s.add(1.0, 1.1);
    s.add(2.0, 2.0);
    // signal 5, noise 0.01 → 10·log10(500).
    assert!((s.sqnr_db() - 26.9897).abs() < 1e-3, "{}", s.sqnr_db());
    assert!((s.max_abs_err - 0.1).abs() < 1e-12);
    assert!((s.mean_abs_err() - 0.05).abs() < 1e-12);
    let mut exact = ErrStats::default();
    exact.add(3.0, 3.0);
    assert_eq!(exact.sqnr_db(), f64::INFINITY);
}

#[test]
fn degree_buckets_are_powers_of_two() {
    let got: Vec<usize> = [0, 1, 2, 3, 4, 7, 8, 63, 64, 1000]
        .iter()
        .map(|&d| degree_bucket(d))
        .collect();
    assert_eq!(got, [0, 1, 2, 2, 3, 3, 4, 6, 7, 7]);
    let labels: Vec<String> = (0..debug::DEGREE_BUCKETS).map(degree_label).collect();
    assert_eq!(
        labels,
        ["0", "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64+"]
    );
}

#[test]
fn table_and_json_have_one_row_per_op() {
    let dir = tempfile::tempdir().unwrap();
    let g = GraphsBuilder::random(3, 10, 3, 5, 4, 2);
    setup(dir.path(), &graph_model(5, 4), &g, |_| {});
    let n = num_ops(dir.path());
    assert!(n >= 10, "{n} ops");
    let (m, t, gp) = (
        dir.path().join("model.safetensors"),
        dir.path().join("model.tgnn"),
        dir.path().join("graphs.safetensors"),
    );
    for flag in ["--per-layer", "--per-op"] {
        let text = ok(&tinygnn(&[&"verify", &m, &t, &gp, &flag]));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("SQNR dB"), "{text}");
        // Rows are numbered 0..n right after the header.
        for (i, l) in lines[1..=n].iter().enumerate() {
            let first = l.split_whitespace().next().unwrap();
            assert_eq!(first, i.to_string(), "{text}");
        }
        assert!(
            lines[n + 1].starts_with("SQNR: int8 model vs float"),
            "{text}"
        );
        assert!(lines[n + 2].starts_with("rows compared"), "{text}");
        assert_eq!(text.matches("← lowest own SQNR").count(), 1, "{text}");
    }
    let v = verify_json(dir.path(), &["--per-layer"]);
    let ops = v["per_op"].as_array().unwrap();
    assert_eq!(ops.len(), n);
    for p in ops {
        let s = p["sqnr_db"].as_f64().unwrap();
        // A healthy int8 model: every op well above 10 dB.
        assert!(s > 10.0, "{p}");
        assert!(p["max_abs_err"].as_f64().unwrap() >= p["mean_abs_err"].as_f64().unwrap());
    }
    assert_eq!(ops.iter().filter(|p| p["worst"] == true).count(), 1);
    // Without the flag the list is empty.
    let v = verify_json(dir.path(), &[]);
    assert!(v["per_op"].as_array().unwrap().is_empty());
}

/// The op converted with a 100× too wide output range is the one the
/// debugger flags, in the table, the JSON and the plot: it has the lowest own
/// SQNR, and the int8 model's SQNR falls by more than 20 dB there (later ops
/// inherit its error, so theirs is low too).
#[test]
fn a_broken_layer_has_the_lowest_sqnr() {
    let dir = tempfile::tempdir().unwrap();
    let g = GraphsBuilder::random(1, 60, 3, 5, 3, 4);
    let m = node_model(5, 3);
    // Healthy model first: the op fused from `conv2 + act2` (SAGE) is op 1.
    setup(dir.path(), &m, &g, |_| {});
    let healthy = verify_json(dir.path(), &["--per-layer"]);
    let h = healthy["per_op"].as_array().unwrap();
    assert_eq!(h[1]["spec"], "conv2 + act2");
    let h1 = h[1]["sqnr_db"].as_f64().unwrap();
    setup(dir.path(), &m, &g, |r| {
        let x = r.get_mut("act2").unwrap();
        x.lo *= 100.0;
        x.hi *= 100.0;
    });
    let v = verify_json(dir.path(), &["--per-layer"]);
    let ops = v["per_op"].as_array().unwrap();
    let sq: Vec<f64> = ops.iter().map(|p| p["sqnr_db"].as_f64().unwrap()).collect();
    let own: Vec<f64> = ops
        .iter()
        .map(|p| p["own_sqnr_db"].as_f64().unwrap())
        .collect();
    eprintln!("healthy {h1:.2} dB; broken: {sq:?}, own {own:?}");
    assert!(sq[1] < h1 - 20.0, "{sq:?} vs healthy {h1}");
    assert!(sq[0] > h1 - 3.0, "{sq:?}: op 0 comes before the broken op");
    let worst = ops.iter().position(|p| p["worst"] == true).unwrap();
    assert_eq!(worst, 1, "{own:?}");
    for (i, s) in own.iter().enumerate() {
        if i != 1 {
            assert!(*s > own[1] + 20.0, "{own:?}");
        }
    }
    // The plot: well-formed XML, one bar per op, the broken one highlighted.
    let svg = dir.path().join("plot.svg");
    let (mp, t, gp) = (
        dir.path().join("model.safetensors"),
        dir.path().join("model.tgnn"),
        dir.path().join("graphs.safetensors"),
    );
    let text = ok(&tinygnn(&[&"verify", &mp, &t, &gp, &"--plot", &svg]));
    assert!(text.contains("← lowest own SQNR"), "{text}");
    let src = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&src).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let bars: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split(' ').any(|w| w == "bar"))
        })
        .collect();
    assert_eq!(bars.len(), ops.len());
    let worst_bars: Vec<_> = bars
        .iter()
        .filter(|n| n.attribute("class").unwrap().contains("worst"))
        .collect();
    assert_eq!(worst_bars.len(), 1);
    assert_eq!(worst_bars[0].attribute("data-op"), Some("1"));
    // One own-SQNR marker per op; the broken op's sits lowest (largest y).
    let marks: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("own"))
        .collect();
    assert_eq!(marks.len(), ops.len());
    let my = |n: &roxmltree::Node| {
        let d = n.attribute("d").unwrap();
        d[1..].split(' ').nth(1).unwrap().parse::<f64>().unwrap()
    };
    let lowest = marks.iter().max_by(|a, b| my(a).total_cmp(&my(b))).unwrap();
    assert_eq!(lowest.attribute("data-op"), Some("1"));
    // Bar heights follow the int8 model's SQNR.
    let h = |n: &roxmltree::Node| n.attribute("height").unwrap().parse::<f64>().unwrap();
    assert!(h(&bars[0]) > h(&bars[1]), "{src}");
}

#[test]
fn by_degree_splits_node_ops() {
    let dir = tempfile::tempdir().unwrap();
    // Node i gets i % 9 in-edges: degrees 0..8.
    let mut g = GraphsBuilder::random(1, 45, 0, 5, 3, 5);
    for i in 0..45usize {
        for k in 0..(i % 9) {
            g.src.push(((i + 7 * k + 1) % 45) as i64);
            g.dst.push(i as i64);
        }
    }
    setup(dir.path(), &node_model(5, 3), &g, |_| {});
    let v = verify_json(dir.path(), &["--by-degree"]);
    let ops = v["per_op"].as_array().unwrap();
    assert!(!ops.is_empty());
    for p in ops {
        let b = p["by_degree"].as_array().unwrap();
        let labels: Vec<&str> = b.iter().map(|x| x["in_degree"].as_str().unwrap()).collect();
        assert_eq!(labels, ["0", "1", "2-3", "4-7", "8-15"], "{p}");
        let values: u64 = b.iter().map(|x| x["values"].as_u64().unwrap()).sum();
        let channels = values / 45;
        assert_eq!(values, 45 * channels);
        // 5 nodes of degree 0, 5 of degree 1, 10 of 2-3, 20 of 4-7, 5 of 8.
        let nodes: Vec<u64> = b
            .iter()
            .map(|x| x["values"].as_u64().unwrap() / channels)
            .collect();
        assert_eq!(nodes, [5, 5, 10, 20, 5]);
    }
    let (mp, t, gp) = (
        dir.path().join("model.safetensors"),
        dir.path().join("model.tgnn"),
        dir.path().join("graphs.safetensors"),
    );
    let text = ok(&tinygnn(&[&"verify", &mp, &t, &gp, &"--by-degree"]));
    assert!(text.contains("SQNR dB by in-degree"), "{text}");
    assert!(text.contains("4-7:20"), "{text}");
}

#[test]
fn on_calib_uses_the_calibration_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let g = GraphsBuilder::random(1, 30, 3, 5, 3, 6);
    setup(dir.path(), &node_model(5, 3), &g, |_| {});
    let calib = dir.path().join("calib.safetensors");
    GraphsBuilder::random(1, 20, 2, 5, 3, 8).write(&calib);
    let c = calib.to_str().unwrap();
    let on_test = verify_json(dir.path(), &["--per-layer"]);
    let on_calib = verify_json(dir.path(), &["--per-layer", "--on", "calib", "--calib", c]);
    assert_eq!(on_test["per_op"][0]["rows"], 30);
    assert_eq!(on_calib["per_op"][0]["rows"], 20);
    // The summary stays on GRAPHS.
    assert_eq!(on_calib["rows"], 30);
    let (mp, t, gp) = (
        dir.path().join("model.safetensors"),
        dir.path().join("model.tgnn"),
        dir.path().join("graphs.safetensors"),
    );
    let o = tinygnn(&[&"verify", &mp, &t, &gp, &"--per-layer", &"--on", &"calib"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--on calib needs --calib"));
}

#[test]
fn svg_escapes_names_and_handles_exact_ops() {
    let mut exact = ErrStats::default();
    exact.add(1.0, 1.0);
    let mut bad = ErrStats::default();
    bad.add(1.0, 0.5);
    let l = |i, s: ErrStats| debug::LayerStat {
        index: i,
        op: "linear".into(),
        spec: "a<b & \"c\"".into(),
        rows: 1,
        all: s,
        own: s,
        step: 0.1,
        float_range: 1.0,
        by_degree: vec![],
        own_by_degree: vec![],
    };
    let svg = debug::svg(&[l(0, exact), l(1, bad)], "t & <t>");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed");
    let bars: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("data-op").is_some())
        .collect();
    assert_eq!(bars.len(), 2);
    assert_eq!(bars[1].attribute("class"), Some("bar worst"));
    assert!(svg.contains("exact"));
    assert_eq!(debug::worst(&[l(0, exact), l(1, bad)]), Some(1));
}
