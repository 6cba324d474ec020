//! Embeds the model and its input graph, and the output bytes the host
//! runtime gives for them (the firmware checks its own against these).
//!
//! `TINYGNN_SIZE_MODEL` / `TINYGNN_SIZE_GRAPHS` (defaults: the bundled
//! `models/karate-gcn`) name a `.tgnn` and an interchange graphs
//! safetensors file (`x` F32 `[N, F]`, `edge_index` I64 `[2, E]`). The
//! features are quantized with the runtime's own `quantize_value` and stored
//! sparse (entries ≠ the input zero point), as `Features::SparseI8`.
use std::path::PathBuf;
use std::{env, fs};

use tinygnn::{Features, GraphInput, Model, Session};

fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

/// The named tensor of a safetensors file: (dtype, shape, bytes).
fn tensor<'a>(file: &'a [u8], name: &str) -> (String, Vec<usize>, &'a [u8]) {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + n])
        .unwrap_or_else(|e| fail(format!("safetensors header: {e}")));
    let t = &header[name];
    let dtype = t["dtype"]
        .as_str()
        .unwrap_or_else(|| fail(format!("no tensor {name}")));
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let off = &t["data_offsets"];
    let (a, b) = (
        off[0].as_u64().unwrap() as usize,
        off[1].as_u64().unwrap() as usize,
    );
    (dtype.to_string(), shape, &file[8 + n + a..8 + n + b])
}

fn array<T: std::fmt::Debug>(name: &str, ty: &str, v: &[T]) -> String {
    format!("pub static {name}: &[{ty}] = &{v:?};\n")
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let karate = manifest.join("../../models/karate-gcn");
    let path = |var: &str, default: PathBuf| {
        println!("cargo:rerun-if-env-changed={var}");
        env::var_os(var).map(PathBuf::from).unwrap_or(default)
    };
    let model_path = path("TINYGNN_SIZE_MODEL", karate.join("karate-gcn.tgnn"));
    let graphs_path = path("TINYGNN_SIZE_GRAPHS", karate.join("graphs.safetensors"));
    println!("cargo:rerun-if-changed={}", model_path.display());
    println!("cargo:rerun-if-changed={}", graphs_path.display());
    println!("cargo:rerun-if-changed=memory.x");

    let model_bytes =
        fs::read(&model_path).unwrap_or_else(|e| fail(format!("{}: {e}", model_path.display())));
    let file =
        fs::read(&graphs_path).unwrap_or_else(|e| fail(format!("{}: {e}", graphs_path.display())));
    let model = Model::from_bytes(&model_bytes)
        .unwrap_or_else(|e| fail(format!("{}: {e}", model_path.display())));

    let (xt, xs, xb) = tensor(&file, "x");
    let (et, es, eb) = tensor(&file, "edge_index");
    if xt != "F32" || xs.len() != 2 || et != "I64" || es.len() != 2 || es[0] != 2 {
        fail("expected x F32 [N, F] and edge_index I64 [2, E]".into());
    }
    let (n, f, e) = (xs[0], xs[1], es[1]);
    let x: Vec<f32> = xb
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let idx: Vec<u16> = eb
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u16)
        .collect();
    let (sources, targets) = idx.split_at(e);
    let d = model.input_desc();
    let (mut row_ptr, mut cols, mut values) = (vec![0u32], vec![], vec![]);
    for row in x.chunks_exact(f) {
        for (c, &v) in row.iter().enumerate() {
            let q = tinygnn::graph::quantize_value(v, d.scale, d.zero_point);
            if q != d.zero_point {
                cols.push(c as u16);
                values.push(q);
            }
        }
        row_ptr.push(cols.len() as u32);
    }
    let input = GraphInput::new(
        n,
        Features::SparseI8 {
            row_ptr: &row_ptr,
            cols: &cols,
            values: &values,
        },
        sources,
        targets,
    );
    let arena_bytes = model.arena_bytes_sparse(n, e, 1);
    let mut arena = vec![0u8; arena_bytes + 8];
    let mut session = Session::new(&model, &mut arena);
    let expected = session
        .run(&input)
        .unwrap_or_else(|e| fail(format!("host run: {e}")))
        .data
        .to_vec();

    fs::write(out.join("model.tgnn"), &model_bytes).unwrap();
    let mut code =
        format!("pub const NODES: usize = {n};\npub const ARENA_BYTES: usize = {arena_bytes};\n");
    code += &array("ROW_PTR", "u32", &row_ptr);
    code += &array("COLS", "u16", &cols);
    code += &array("VALUES", "i8", &values);
    code += &array("SOURCES", "u16", sources);
    code += &array("TARGETS", "u16", targets);
    code += &array("EXPECTED", "i8", &expected);
    fs::write(out.join("data.rs"), code).unwrap();
    fs::copy(manifest.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-Tlink.x");
}
