//! `tinygnn run --sparse` on the bundled models: the same output bytes as the
//! dense input, and the arena it reports is `Model::arena_bytes_sparse`
//! (smaller by the dense input tensor when the first layer reads the sparse
//! rows in place; equal when the model starts with an op that cannot).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_json(model: &Path, graphs: &Path, out: &Path, sparse: bool) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tinygnn"));
    cmd.arg("run")
        .arg(model)
        .arg(graphs)
        .arg("--json")
        .arg("--output-bytes")
        .arg(out);
    if sparse {
        cmd.arg("--sparse");
    }
    let o = cmd.output().expect("run tinygnn");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn sparse_run_equals_dense_on_bundled_models() {
    let dir = std::env::temp_dir().join(format!("tinygnn-sparse-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // (model, reads sparse input in place, dense input bytes at the graph size)
    for (name, in_place, input_bytes) in [("karate-gcn", true, 34 * 34), ("digits-gin", false, 0)] {
        let m = root().join("models").join(name);
        let (model, graphs) = (m.join(format!("{name}.tgnn")), m.join("graphs.safetensors"));
        let (d_out, s_out) = (dir.join(format!("{name}.d")), dir.join(format!("{name}.s")));
        let d = run_json(&model, &graphs, &d_out, false);
        let s = run_json(&model, &graphs, &s_out, true);
        let (db, sb) = (
            std::fs::read(&d_out).unwrap(),
            std::fs::read(&s_out).unwrap(),
        );
        assert!(!db.is_empty());
        assert_eq!(db, sb, "{name}: output bytes");
        assert_eq!(d["accuracy"], s["accuracy"], "{name}");
        assert_eq!(s["sparse_input"], true);
        assert_eq!(s["sparse_in_place"], in_place, "{name}");
        let (da, sa) = (
            d["arena_bytes"].as_u64().unwrap(),
            s["arena_bytes"].as_u64().unwrap(),
        );
        // The input tensor's slot is rounded up to 8 bytes.
        let saved = (input_bytes as u64).div_ceil(8) * 8;
        assert_eq!(sa, da - saved, "{name}: arena {da} → {sa}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inspect_reports_the_sparse_arena() {
    let model = root().join("models/karate-gcn/karate-gcn.tgnn");
    let o = Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(["inspect", "--json"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let dense = v["arena_bytes_at_capacity"].as_u64().unwrap();
    let sparse = v["arena_bytes_sparse_at_capacity"].as_u64().unwrap();
    assert_eq!(v["reads_sparse_input"], true);
    assert_eq!(sparse, dense - (34 * 34u64).div_ceil(8) * 8);
}
