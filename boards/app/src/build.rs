//! Helpers for board `build.rs` scripts (feature `std`, host only).
//!
//! [`generate`] takes the model and the input bundle named by the environment
//! (`TINYGNN_MODEL`, `TINYGNN_INPUTS`; defaults `boards/generated/demo/model.tgnn`
//! and `boards/generated/demo/inputs.tgib`, written by `tinygnn pack demo`), checks both on the host (so a bad
//! file fails the build, not the board), copies them into `OUT_DIR`, and
//! writes `OUT_DIR/bundle.rs` with:
//!
//! * `MODEL: &Aligned<[u8]>`, `INPUTS: &Aligned<[u8]>` — the embedded bytes;
//! * `ARENA_BYTES` — the largest arena any bundled sample needs; with
//!   `TINYGNN_ARENA_AT_CAPACITY=1`, enough for any graph within the model's
//!   declared capacity (for firmware that will see other graphs); at least
//!   `TINYGNN_ARENA_BYTES` when that is set; at least 16.
extern crate std;

use std::path::{Path, PathBuf};
use std::string::String;
use std::{env, fs, println};

use crate::{required_arena, Bundle};

fn path_from_env(var: &str, default: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed={var}");
    match env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => default.to_path_buf(),
    }
}

/// Generates `OUT_DIR/bundle.rs`; returns the arena size. Errors are
/// human-readable strings for the build script to print.
pub fn generate() -> Result<usize, String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let gen = manifest.join("../generated/demo");
    let model_path = path_from_env("TINYGNN_MODEL", &gen.join("model.tgnn"));
    let inputs_path = path_from_env("TINYGNN_INPUTS", &gen.join("inputs.tgib"));
    println!("cargo:rerun-if-env-changed=TINYGNN_ARENA_BYTES");
    println!("cargo:rerun-if-changed={}", model_path.display());
    println!("cargo:rerun-if-changed={}", inputs_path.display());
    let hint = "run `scripts/qemu-run.sh --demo` (or `tinygnn pack demo boards/generated/demo`) \
                or set TINYGNN_MODEL / TINYGNN_INPUTS";
    let model_bytes = fs::read(&model_path)
        .map_err(|e| std::format!("cannot read model {}: {e}; {hint}", model_path.display()))?;
    let inputs_bytes = fs::read(&inputs_path)
        .map_err(|e| std::format!("cannot read inputs {}: {e}; {hint}", inputs_path.display()))?;
    let model = tinygnn::Model::from_bytes(&model_bytes)
        .map_err(|e| std::format!("{}: {e}", model_path.display()))?;
    // The bundle must be 4-aligned to parse; a Vec<u32> copy gives that.
    let mut words = std::vec![0u32; inputs_bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..inputs_bytes.len()]
        .copy_from_slice(&inputs_bytes);
    let aligned = &bytemuck::cast_slice::<u32, u8>(&words)[..inputs_bytes.len()];
    let bundle =
        Bundle::parse(aligned).map_err(|e| std::format!("{}: {e}", inputs_path.display()))?;
    let mut arena = 16usize;
    for s in bundle.samples() {
        let s = s.map_err(|e| std::format!("{}: {e}", inputs_path.display()))?;
        arena = arena.max(required_arena(&model, &s));
    }
    println!("cargo:rerun-if-env-changed=TINYGNN_ARENA_AT_CAPACITY");
    if env::var_os("TINYGNN_ARENA_AT_CAPACITY").is_some_and(|v| v == "1") {
        // Any graph within the model's declared capacity fits (arena_bytes is monotone).
        let (n, e, g) = model.capacity();
        arena = arena.max(model.arena_bytes(n as usize, e as usize, g as usize));
    }
    if let Some(min) = env::var("TINYGNN_ARENA_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        arena = arena.max(min);
    }
    arena = arena.div_ceil(16) * 16;
    fs::write(out.join("model.tgnn"), &model_bytes).map_err(|e| e.to_string())?;
    fs::write(out.join("inputs.tgib"), &inputs_bytes).map_err(|e| e.to_string())?;
    let name = model_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = std::format!(
        "/// The embedded model ({name}).\n\
         pub static MODEL: &tinygnn_board_app::Aligned<[u8]> = &tinygnn_board_app::Aligned(*include_bytes!(\"model.tgnn\"));\n\
         /// The embedded input bundle.\n\
         pub static INPUTS: &tinygnn_board_app::Aligned<[u8]> = &tinygnn_board_app::Aligned(*include_bytes!(\"inputs.tgib\"));\n\
         /// Arena bytes: the most any bundled sample needs.\n\
         pub const ARENA_BYTES: usize = {arena};\n\
         /// File name of the embedded model.\n\
         #[allow(dead_code)]\n\
         pub const MODEL_NAME: &str = {name:?};\n"
    );
    fs::write(out.join("bundle.rs"), code).map_err(|e| e.to_string())?;
    Ok(arena)
}

/// Copies `memory.x` (from the crate root) into `OUT_DIR` and adds it to the
/// linker search path.
pub fn memory_x() -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    fs::copy(manifest.join("memory.x"), out.join("memory.x"))
        .map_err(|e| std::format!("memory.x: {e}"))?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    Ok(())
}
