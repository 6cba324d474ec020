//! Copies memory.x, embeds the model and sizes every buffer from its
//! declared capacity, and passes the cortex-m-rt linker script.
//!
//! Environment: `TINYGNN_MODEL` (default `models/karate-gcn/karate-gcn.tgnn`),
//! optionally `TINYGNN_STREAM_MAX_NODES` / `TINYGNN_STREAM_MAX_EDGES` to accept
//! less than the model's capacity (smaller buffers, for boards with less RAM).
use std::path::PathBuf;
use std::{env, fs};

fn limit(var: &str, cap: u32) -> Result<usize, String> {
    println!("cargo:rerun-if-env-changed={var}");
    match env::var(var) {
        Ok(v) => {
            let n: u32 = v.parse().map_err(|e| format!("{var}={v}: {e}"))?;
            Ok(n.min(cap) as usize)
        }
        Err(_) => Ok(cap as usize),
    }
}

fn generate() -> Result<(), String> {
    tinygnn_board_app::build::memory_x()?;
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    println!("cargo:rerun-if-env-changed=TINYGNN_MODEL");
    let path = env::var_os("TINYGNN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../models/karate-gcn/karate-gcn.tgnn"));
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes =
        fs::read(&path).map_err(|e| format!("cannot read model {}: {e}", path.display()))?;
    let model =
        tinygnn::Model::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let (n, e, g) = model.capacity();
    let (n, e, g) = (
        limit("TINYGNN_STREAM_MAX_NODES", n)?,
        limit("TINYGNN_STREAM_MAX_EDGES", e)?,
        g as usize,
    );
    let c = usize::from(model.input_desc().channels);
    let o = model
        .outputs()
        .iter()
        .filter_map(|&t| model.tensors().get(usize::from(t)))
        .map(|t| usize::from(t.channels))
        .max()
        .unwrap_or(0);
    let arena = model.arena_bytes(n, e, g).div_ceil(16) * 16 + 16;
    // Largest request body: header fields (varints) + f32 features + u16 edges
    // + f32 edge weights + u16 batch (see docs/stream.md), with slack.
    let body = n * c * 4 + 8 * e + 2 * n + 64;
    let rx = tinygnn_proto::max_frame_len(body);
    let tx = tinygnn_proto::max_frame_len(n.max(g) * o + 64).max(512);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs::write(out.join("model.tgnn"), &bytes).map_err(|e| e.to_string())?;
    let code = format!(
        "/// The embedded model.\n\
         pub static MODEL: &tinygnn_board_app::Aligned<[u8]> = &tinygnn_board_app::Aligned(*include_bytes!(\"model.tgnn\"));\n\
         /// Its file name.\n\
         pub const MODEL_NAME: &str = {name:?};\n\
         /// Nodes accepted per request.\n\
         pub const MAX_NODES: usize = {n};\n\
         /// Edges accepted per request.\n\
         pub const MAX_EDGES: usize = {e};\n\
         /// Input channels.\n\
         pub const CHANNELS: usize = {c};\n\
         /// Arena bytes (enough for any graph within the limits above).\n\
         pub const ARENA_BYTES: usize = {arena};\n\
         /// Receive buffer: the largest request frame.\n\
         pub const RX_BYTES: usize = {rx};\n\
         /// Transmit buffer: the largest response frame.\n\
         pub const TX_BYTES: usize = {tx};\n"
    );
    fs::write(out.join("stream.rs"), code).map_err(|e| e.to_string())?;
    Ok(())
}

fn main() {
    if let Err(e) = generate() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
}
