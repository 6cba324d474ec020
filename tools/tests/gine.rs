//! GINEConv and edge features through the `tinygnn` binary (edgefeat): the
//! conformance goldens `tests/conformance/gine_*` converted, inspected, run and
//! verified, and the CLI's errors for graphs whose edge features are missing
//! or of the wrong width.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ok, tinygnn};
use serde_json::Value;
use tinygnn_cli::st;

fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/conformance")
        .join(name)
}

#[test]
fn gine_goldens_convert_inspect_run_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["gine_edge_lin", "gine_no_lin", "gine_graph"] {
        let c = case(name);
        let (mp, gp) = (c.join("model.safetensors"), c.join("graphs.safetensors"));
        let tp = dir.path().join(format!("{name}.tgnn"));
        ok(&tinygnn(&[&"convert", &mp, &"--calib", &gp, &"-o", &tp]));
        let j: Value = serde_json::from_str(&ok(&tinygnn(&[&"inspect", &tp, &"--json"]))).unwrap();
        let ops = j["ops"].as_array().unwrap();
        let gine: Vec<&Value> = ops.iter().filter(|o| o["op"] == "gine_conv").collect();
        assert!(!gine.is_empty(), "{name}: no gine_conv op in {j}");
        let edge_tensors = j["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "edge")
            .count();
        assert_eq!(edge_tensors, 1, "{name}: {j}");
        // Every GINE op reads a node tensor and the edge tensor.
        for g in &gine {
            assert_eq!(g["inputs"].as_array().unwrap().len(), 2, "{g}");
        }
        // The no-lin golden's first layer has no edge weights, its second has.
        if name == "gine_no_lin" {
            assert_eq!(gine[0]["attrs"]["edge_lin"], false);
            assert_eq!(gine[1]["attrs"]["edge_lin"], true);
        }
        let v: Value =
            serde_json::from_str(&ok(&tinygnn(&[&"verify", &mp, &tp, &gp, &"--json"]))).unwrap();
        let (err, step, range) = (
            v["max_abs_err"].as_f64().unwrap(),
            v["output_step"].as_f64().unwrap(),
            v["float_output_range"].as_f64().unwrap(),
        );
        eprintln!(
            "{name}: int8 max abs err {err:.4} = {:.2} steps, top-1 {}",
            err / step,
            v["top1_agreement"]
        );
        assert!(err <= 4.0 * step + 0.03 * range, "{name}: {v}");
        // `run` writes the runtime's output bytes.
        let out = dir.path().join(format!("{name}.bin"));
        ok(&tinygnn(&[&"run", &tp, &gp, &"--output-bytes", &out]));
        let bytes = std::fs::read(&out).unwrap();
        let g = st::read_graphs(&gp).unwrap();
        let rows = if name == "gine_graph" {
            g.num_graphs
        } else {
            g.num_nodes
        };
        assert_eq!(bytes.len() % rows, 0);
        assert!(
            bytes
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 4
        );
    }
}

/// The golden's graphs rewritten with `edge_attr` dropped or narrowed.
fn write_graphs(src: &Path, dst: &Path, edge_dim: Option<usize>) {
    let g = st::read_graphs(src).unwrap();
    let e = g.num_edges();
    let idx: Vec<i64> = g
        .sources
        .iter()
        .chain(&g.targets)
        .map(|&v| v as i64)
        .collect();
    let mut f32s = vec![("x", vec![g.num_nodes, g.channels], g.x.clone())];
    if let Some(d) = edge_dim {
        let a = g.edge_attr.as_ref().unwrap();
        let old = g.edge_dim;
        let narrowed: Vec<f32> = (0..e)
            .flat_map(|k| a[k * old..k * old + d].iter().copied())
            .collect();
        f32s.push(("edge_attr", vec![e, d], narrowed));
    }
    let bytes = st::write_safetensors(&f32s, &[("edge_index", vec![2, e], idx)], None).unwrap();
    std::fs::write(dst, bytes).unwrap();
}

#[test]
fn graphs_without_matching_edge_features_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("gine_edge_lin");
    let (mp, gp) = (c.join("model.safetensors"), c.join("graphs.safetensors"));
    let tp = dir.path().join("m.tgnn");
    ok(&tinygnn(&[&"convert", &mp, &"--calib", &gp, &"-o", &tp]));
    let none = dir.path().join("none.safetensors");
    write_graphs(&gp, &none, None);
    let narrow = dir.path().join("narrow.safetensors");
    write_graphs(&gp, &narrow, Some(2));
    let e = fails(&tinygnn(&[&"run", &tp, &none]));
    assert!(e.contains("edge_attr"), "{e}");
    let e = fails(&tinygnn(&[&"run", &tp, &narrow]));
    assert!(e.contains("edge feature values"), "{e}");
    let e = fails(&tinygnn(&[&"convert", &mp, &"--calib", &none, &"-o", &tp]));
    assert!(e.contains("edge_attr"), "{e}");
    let e = fails(&tinygnn(&[&"verify", &mp, &tp, &narrow]));
    assert!(e.contains("edge feature channels"), "{e}");
}
