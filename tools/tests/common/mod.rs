//! Builders for tiny models and graphs written from Rust (no Python needed),
//! and the shared CLI test steps: run the `tinygnn` binary, convert → inspect →
//! verify a built model, and check that a bad spec is refused by name.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use tinygnn_cli::st::write_safetensors;

/// Runs the `tinygnn` binary built for these tests.
pub fn tinygnn(args: &[&dyn AsRef<OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run tinygnn")
}

/// Asserts that the command succeeded and returns its stdout.
pub fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{out}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The op names of a converted model, from `tinygnn inspect --json`.
pub fn op_names(inspect: &Value) -> Vec<&str> {
    inspect["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect()
}

/// A model and its graphs written to a temporary directory and converted
/// with `--calib` on those graphs; `inspect` is `tinygnn inspect --json`.
pub struct Converted {
    pub dir: tempfile::TempDir,
    pub model: PathBuf,
    pub graphs: PathBuf,
    pub tgnn: PathBuf,
    pub inspect: Value,
}

/// Writes `m` and `g`, converts, inspects, and asserts that the converted
/// model's ops are `names` in order.
pub fn convert(m: &ModelBuilder, g: &GraphsBuilder, names: &[&str]) -> Converted {
    let dir = tempfile::tempdir().unwrap();
    let (model, graphs, tgnn) = (
        dir.path().join("m.safetensors"),
        dir.path().join("g.safetensors"),
        dir.path().join("m.tgnn"),
    );
    m.write(&model);
    g.write(&graphs);
    ok(&tinygnn(&[
        &"convert", &model, &"--calib", &graphs, &"-o", &tgnn,
    ]));
    let inspect: Value =
        serde_json::from_str(&ok(&tinygnn(&[&"inspect", &tgnn, &"--json"]))).unwrap();
    assert_eq!(op_names(&inspect), names);
    Converted {
        dir,
        model,
        graphs,
        tgnn,
        inspect,
    }
}

/// What `tinygnn verify` must show: max error ≤ 4 output steps +
/// `range_frac` × the float output range, top-1 agreement ≥ `top1`, and,
/// if given, every op's error ≤ `per_op_steps` steps.
pub struct Tolerance {
    pub range_frac: f64,
    pub top1: f64,
    pub per_op_steps: Option<f64>,
}

impl Converted {
    /// Runs `tinygnn verify --json --per-op` (skipped where the runtime is
    /// not available) and checks it against `tol`.
    pub fn verify(&self, tol: Tolerance) {
        if !tinygnn_cli::rt::AVAILABLE {
            return;
        }
        let v: Value = serde_json::from_str(&ok(&tinygnn(&[
            &"verify",
            &self.model,
            &self.tgnn,
            &self.graphs,
            &"--json",
            &"--per-op",
        ])))
        .unwrap();
        eprintln!("verify: {v}");
        let (range, step, err) = (
            v["float_output_range"].as_f64().unwrap(),
            v["output_step"].as_f64().unwrap(),
            v["max_abs_err"].as_f64().unwrap(),
        );
        assert!(err <= 4.0 * step + tol.range_frac * range, "{v}");
        assert!(v["top1_agreement"].as_f64().unwrap() >= tol.top1, "{v}");
        if let Some(max) = tol.per_op_steps {
            for p in v["per_op"].as_array().unwrap() {
                assert!(p["err_in_steps"].as_f64().unwrap() <= max, "{p}");
            }
        }
    }
}

/// Asserts exit code 1 and that stderr mentions every needle.
pub fn fails(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

/// `m`'s safetensors bytes with its spec edited by `edit`.
pub fn with_spec_edit(m: &ModelBuilder, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut spec: Value = serde_json::from_str(&m.spec_json()).unwrap();
    edit(&mut spec);
    m.bytes_with_spec(&spec.to_string())
}

/// `tinygnn convert` of the model file bytes `model`, calibrated on `graphs`.
pub fn convert_bytes(model: &[u8], graphs: &GraphsBuilder) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("m.safetensors");
    let gp = dir.path().join("g.safetensors");
    std::fs::write(&mp, model).unwrap();
    graphs.write(&gp);
    tinygnn(&[
        &"convert",
        &mp,
        &"--calib",
        &gp,
        &"-o",
        &dir.path().join("m.tgnn"),
    ])
}

/// Converts `m` with its spec edited by `edit` (calibrating on `g`) and
/// asserts that the converter exits with 1 and its stderr names every needle.
pub fn convert_fails(
    m: &ModelBuilder,
    g: &GraphsBuilder,
    edit: impl FnOnce(&mut Value),
    needles: &[&str],
) {
    fails(&convert_bytes(&with_spec_edit(m, edit), g), needles);
}

/// Deterministic pseudo-random numbers in [-1, 1).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// A model under construction: spec ops and named f32 tensors.
pub struct ModelBuilder {
    pub task: &'static str,
    pub in_channels: usize,
    pub ops: Vec<Value>,
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub outputs: Vec<String>,
    pub rng: Rng,
}

impl ModelBuilder {
    pub fn new(task: &'static str, in_channels: usize, seed: u64) -> Self {
        ModelBuilder {
            task,
            in_channels,
            ops: vec![],
            tensors: vec![],
            outputs: vec![],
            rng: Rng(seed),
        }
    }

    pub fn tensor(&mut self, name: &str, shape: Vec<usize>, scale: f32) -> String {
        let n = shape.iter().product();
        let v = self.rng.vec(n, scale);
        self.tensors.push((name.to_string(), shape, v));
        name.to_string()
    }

    pub fn op(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        attrs: Value,
        params: Value,
    ) -> String {
        self.ops.push(
            json!({"name": name, "op": op, "inputs": inputs, "attrs": attrs, "params": params}),
        );
        name.to_string()
    }

    pub fn linear(&mut self, name: &str, input: &str, i: usize, o: usize) -> String {
        let w = self.tensor(
            &format!("{name}.weight"),
            vec![o, i],
            1.0 / (i as f32).sqrt(),
        );
        let b = self.tensor(&format!("{name}.bias"), vec![o], 0.1);
        self.op(
            name,
            "linear",
            &[input],
            json!({"in_channels": i, "out_channels": o}),
            json!({"weight": w, "bias": b}),
        )
    }

    pub fn gcn(&mut self, name: &str, input: &str, i: usize, o: usize, extra: Value) -> String {
        let w = self.tensor(
            &format!("{name}.lin.weight"),
            vec![o, i],
            1.0 / (i as f32).sqrt(),
        );
        let b = self.tensor(&format!("{name}.bias"), vec![o], 0.1);
        let mut attrs = json!({"in_channels": i, "out_channels": o, "improved": false, "add_self_loops": true, "normalize": true, "edge_weight": false});
        if let (Some(a), Some(e)) = (attrs.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        self.op(
            name,
            "gcn_conv",
            &[input],
            attrs,
            json!({"weight": w, "bias": b}),
        )
    }

    pub fn sage(
        &mut self,
        name: &str,
        input: &str,
        i: usize,
        o: usize,
        aggr: &str,
        normalize: bool,
    ) -> String {
        let wl = self.tensor(
            &format!("{name}.lin_l.weight"),
            vec![o, i],
            1.0 / (i as f32).sqrt(),
        );
        let b = self.tensor(&format!("{name}.lin_l.bias"), vec![o], 0.1);
        let wr = self.tensor(
            &format!("{name}.lin_r.weight"),
            vec![o, i],
            1.0 / (i as f32).sqrt(),
        );
        self.op(
            name,
            "sage_conv",
            &[input],
            json!({"in_channels": i, "out_channels": o, "aggr": aggr, "normalize": normalize, "root_weight": true}),
            json!({"weight_l": wl, "bias_l": b, "weight_r": wr}),
        )
    }

    pub fn bn(&mut self, name: &str, input: &str, c: usize) -> String {
        let g = format!("{name}.weight");
        let v: Vec<f32> = self.rng.vec(c, 0.3).iter().map(|x| 1.0 + x).collect();
        self.tensors.push((g.clone(), vec![c], v));
        let b = self.tensor(&format!("{name}.bias"), vec![c], 0.2);
        let m = self.tensor(&format!("{name}.running_mean"), vec![c], 0.3);
        let var: Vec<f32> = self.rng.vec(c, 0.4).iter().map(|x| 1.0 + x).collect();
        self.tensors
            .push((format!("{name}.running_var"), vec![c], var));
        self.op(
            name,
            "batch_norm",
            &[input],
            json!({"channels": c, "eps": 1e-5}),
            json!({"weight": g, "bias": b, "running_mean": m, "running_var": format!("{name}.running_var")}),
        )
    }

    pub fn act(&mut self, name: &str, op: &str, input: &str) -> String {
        self.op(name, op, &[input], json!({}), json!({}))
    }

    pub fn spec_json(&self) -> String {
        json!({
            "tinygnn_spec": 1, "task": self.task,
            "input": {"name": "x", "channels": self.in_channels},
            "ops": self.ops, "outputs": self.outputs,
        })
        .to_string()
    }

    pub fn bytes_with_spec(&self, spec: &str) -> Vec<u8> {
        let mut meta = HashMap::new();
        meta.insert("tinygnn_spec".to_string(), spec.to_string());
        meta.insert(
            "tinygnn_exporter".to_string(),
            "rust test builder".to_string(),
        );
        let f32s: Vec<(&str, Vec<usize>, Vec<f32>)> = self
            .tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.clone(), v.clone()))
            .collect();
        write_safetensors(&f32s, &[], Some(meta)).unwrap()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.bytes_with_spec(&self.spec_json())
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.bytes()).unwrap();
    }
}

/// Node-classification model: gcn → bn → relu → dropout → sage(mean) → relu → linear.
pub fn node_model(f: usize, classes: usize) -> ModelBuilder {
    let mut m = ModelBuilder::new("node", f, 7);
    m.gcn("conv1", "x", f, 8, json!({}));
    m.bn("bn1", "conv1", 8);
    m.act("act1", "relu", "bn1");
    m.act("drop1", "dropout", "act1");
    m.sage("conv2", "drop1", 8, 6, "mean", false);
    m.act("act2", "relu", "conv2");
    let out = m.linear("out", "act2", 6, classes);
    m.outputs = vec![out];
    m
}

/// Graph-classification model: gin → mlp(linear, bn, relu, linear) → leaky → add skip → concat → mean pool → linear.
pub fn graph_model(f: usize, classes: usize) -> ModelBuilder {
    let mut m = ModelBuilder::new("graph", f, 11);
    m.op(
        "gin1",
        "gin_aggregate",
        &["x"],
        json!({"eps": 0.25}),
        json!({}),
    );
    m.linear("mlp1", "gin1", f, 8);
    m.bn("mlpbn", "mlp1", 8);
    m.act("mlpact", "relu", "mlpbn");
    m.linear("mlp2", "mlpact", 8, 8);
    m.op(
        "lrelu",
        "leaky_relu",
        &["mlp2"],
        json!({"negative_slope": 0.1}),
        json!({}),
    );
    m.op(
        "gin2",
        "gin_aggregate",
        &["lrelu"],
        json!({"eps": 0.0}),
        json!({}),
    );
    m.linear("mlp3", "gin2", 8, 8);
    m.op("res", "add", &["mlp3", "lrelu"], json!({}), json!({}));
    m.act("resact", "relu", "res");
    m.op("jk", "concat", &["lrelu", "resact"], json!({}), json!({}));
    m.op("pool", "global_mean_pool", &["jk"], json!({}), json!({}));
    m.op("pmax", "global_max_pool", &["resact"], json!({}), json!({}));
    m.op("padd", "global_add_pool", &["lrelu"], json!({}), json!({}));
    m.op(
        "pcat",
        "concat",
        &["pool", "pmax", "padd"],
        json!({}),
        json!({}),
    );
    let out = m.linear("out", "pcat", 32, classes);
    m.outputs = vec![out];
    m
}

/// Random graphs batched PyG style: `graphs` graphs of `nodes` nodes, ~`deg` in-edges each.
pub struct GraphsBuilder {
    pub x: Vec<f32>,
    pub f: usize,
    pub src: Vec<i64>,
    pub dst: Vec<i64>,
    pub batch: Vec<i64>,
    pub y: Vec<i64>,
    pub test_mask: Option<Vec<i64>>,
    pub edge_weight: Option<Vec<f32>>,
}

impl GraphsBuilder {
    pub fn random(
        graphs: usize,
        nodes: usize,
        deg: usize,
        f: usize,
        classes: usize,
        seed: u64,
    ) -> Self {
        let mut r = Rng(seed);
        let mut g = GraphsBuilder {
            x: vec![],
            f,
            src: vec![],
            dst: vec![],
            batch: vec![],
            y: vec![],
            test_mask: None,
            edge_weight: None,
        };
        for gi in 0..graphs {
            let base = gi * nodes;
            for i in 0..nodes {
                g.x.extend(r.vec(f, 1.0));
                g.batch.push(gi as i64);
                g.y.push(((r.next() + 1.0) * classes as f32 / 2.0) as i64 % classes as i64);
                for _ in 0..deg {
                    let j = ((r.next() + 1.0) / 2.0 * nodes as f32) as usize % nodes;
                    g.src.push((base + j) as i64);
                    g.dst.push((base + i) as i64);
                }
            }
        }
        g
    }

    pub fn bytes(&self) -> Vec<u8> {
        let n = self.batch.len();
        let e = self.src.len();
        let mut f32s = vec![("x", vec![n, self.f], self.x.clone())];
        if let Some(w) = &self.edge_weight {
            f32s.push(("edge_weight", vec![e], w.clone()));
        }
        let mut ei = self.src.clone();
        ei.extend(&self.dst);
        let mut i64s = vec![
            ("edge_index", vec![2, e], ei),
            ("batch", vec![n], self.batch.clone()),
        ];
        i64s.push(("y", vec![self.y.len()], self.y.clone()));
        if let Some(m) = &self.test_mask {
            i64s.push(("test_mask", vec![n], m.clone()));
        }
        write_safetensors(&f32s, &i64s, None).unwrap()
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.bytes()).unwrap();
    }
}
