//! Buffer sizes of a streaming firmware, for its build script (features
//! `std` and `server`): everything [`crate::server::Server`] needs to accept
//! any graph within a model's declared capacity, or within smaller limits.

use tinygnn::Model;

/// What a firmware allocates for [`crate::server::Server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwareSizes {
    /// Nodes accepted per request.
    pub max_nodes: usize,
    /// Edges accepted per request.
    pub max_edges: usize,
    /// Graphs accepted per request (the model's capacity).
    pub max_graphs: usize,
    /// Input feature channels.
    pub channels: usize,
    /// Largest output channel count of the model's outputs.
    pub out_channels: usize,
    /// Arena bytes: `Model::arena_bytes` at the limits, rounded up to 16,
    /// plus 16 bytes of alignment slack.
    pub arena_bytes: usize,
    /// Receive buffer: the largest request frame (f32 features, edge
    /// weights and a batch vector at the limits, with header slack).
    pub rx_bytes: usize,
    /// Transmit buffer: the largest response frame (at least 512 bytes,
    /// for error replies).
    pub tx_bytes: usize,
}

impl FirmwareSizes {
    /// The sizes for `model`, accepting at most `max_nodes` / `max_edges`
    /// (each capped at the model's capacity; `None`: the capacity).
    pub fn new(model: &Model<'_>, max_nodes: Option<usize>, max_edges: Option<usize>) -> Self {
        let (n, e, g) = model.capacity();
        let n = max_nodes.map_or(n as usize, |m| m.min(n as usize));
        let e = max_edges.map_or(e as usize, |m| m.min(e as usize));
        let g = g as usize;
        let c = usize::from(model.input_desc().channels);
        let o = model
            .outputs()
            .iter()
            .filter_map(|&t| model.tensors().get(usize::from(t)))
            .map(|t| usize::from(t.channels))
            .max()
            .unwrap_or(0);
        // Largest request body: header fields (varints) + f32 features + u16
        // edges + f32 edge weights + u16 batch (docs/stream.md), with slack.
        let body = n * c * 4 + 8 * e + 2 * n + 64;
        FirmwareSizes {
            max_nodes: n,
            max_edges: e,
            max_graphs: g,
            channels: c,
            out_channels: o,
            arena_bytes: model.arena_bytes(n, e, g).div_ceil(16) * 16 + 16,
            rx_bytes: crate::max_frame_len(body),
            tx_bytes: crate::max_frame_len(n.max(g) * o + 64).max(512),
        }
    }

    /// Rust source with these sizes as `pub const`s (`MAX_NODES`,
    /// `MAX_EDGES`, `CHANNELS`, `ARENA_BYTES`, `RX_BYTES`, `TX_BYTES`) and
    /// `MODEL_NAME`, for a build script to write to `OUT_DIR`.
    pub fn rust_consts(&self, model_name: &str) -> String {
        format!(
            "/// The embedded model's file name.\n\
             pub const MODEL_NAME: &str = {model_name:?};\n\
             /// Nodes accepted per request.\n\
             pub const MAX_NODES: usize = {};\n\
             /// Edges accepted per request.\n\
             pub const MAX_EDGES: usize = {};\n\
             /// Input channels.\n\
             pub const CHANNELS: usize = {};\n\
             /// Arena bytes (enough for any graph within the limits above).\n\
             pub const ARENA_BYTES: usize = {};\n\
             /// Receive buffer: the largest request frame.\n\
             pub const RX_BYTES: usize = {};\n\
             /// Transmit buffer: the largest response frame.\n\
             pub const TX_BYTES: usize = {};\n",
            self.max_nodes,
            self.max_edges,
            self.channels,
            self.arena_bytes,
            self.rx_bytes,
            self.tx_bytes
        )
    }
}

fn env_limit(var: &str) -> Result<Option<usize>, String> {
    println!("cargo:rerun-if-env-changed={var}");
    match std::env::var(var) {
        Ok(v) => v.parse().map(Some).map_err(|e| format!("{var}={v}: {e}")),
        Err(_) => Ok(None),
    }
}

/// The build-script step of a streaming firmware: embeds the model
/// `TINYGNN_MODEL` (else `default_model`) and sizes the server's buffers for
/// it, capped by `TINYGNN_STREAM_MAX_NODES` / `TINYGNN_STREAM_MAX_EDGES` when
/// set. Writes `OUT_DIR/stream.rs` (include it in a module): `MODEL`, the
/// model's bytes aligned to 16 (`&MODEL.0`), and [`FirmwareSizes::rust_consts`].
/// Returns the sizes.
pub fn build_script(default_model: &std::path::Path) -> Result<FirmwareSizes, String> {
    use std::path::PathBuf;
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    println!("cargo:rerun-if-env-changed=TINYGNN_MODEL");
    let path = std::env::var_os("TINYGNN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_model.to_path_buf());
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes =
        std::fs::read(&path).map_err(|e| format!("cannot read model {}: {e}", path.display()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let sizes = FirmwareSizes::new(
        &model,
        env_limit("TINYGNN_STREAM_MAX_NODES")?,
        env_limit("TINYGNN_STREAM_MAX_EDGES")?,
    );
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::write(out.join("model.tgnn"), &bytes).map_err(|e| e.to_string())?;
    let code = format!(
        "/// The model's bytes, aligned to 16 as `Model::from_bytes` wants them.\n\
         #[repr(C, align(16))]\n\
         pub struct ModelBytes(pub [u8; {}]);\n\
         /// The embedded model.\n\
         pub static MODEL: ModelBytes = ModelBytes(*include_bytes!(\"model.tgnn\"));\n{}",
        bytes.len(),
        sizes.rust_consts(&name)
    );
    std::fs::write(out.join("stream.rs"), code).map_err(|e| e.to_string())?;
    Ok(sizes)
}
