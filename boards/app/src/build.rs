//! Helpers for board `build.rs` scripts (feature `std`, host only).
//!
//! [`generate`] takes the model and the input bundle named by the environment
//! (`TINYGNN_MODEL`, `TINYGNN_INPUTS`; by default the bundled
//! `models/karate-gcn/karate-gcn.tgnn` and `models/karate-gcn/inputs.tgib`,
//! so that `cargo build --release` works on a fresh clone), checks both on the
//! host (so a bad file, or a bundle whose features do not fit the model, fails
//! the build, not the board), copies them into `OUT_DIR`, and writes
//! `OUT_DIR/bundle.rs` with:
//!
//! * `MODEL: &Aligned<[u8]>`, `INPUTS: &Aligned<[u8]>` — the embedded bytes;
//! * `ARENA_BYTES` — the largest arena any bundled sample needs (for a
//!   recurrent model, plus the state in front of it: [`crate::state_region`]); with
//!   `TINYGNN_ARENA_AT_CAPACITY=1`, enough for any graph within the model's
//!   declared capacity (for firmware that will see other graphs); at least
//!   `TINYGNN_ARENA_BYTES` when that is set; at least 16.
extern crate std;

use std::path::{Path, PathBuf};
use std::string::String;
use std::{env, fs, println};

use crate::{required_arena, state_region, wide_arena, Bundle};

/// The bundled model and inputs the boards embed by default, relative to
/// the repository root: `tinygnn pack inputs` of the model's graphs file
/// (whole graph, test-mask labels), checked by `tools/tests/pack.rs`.
pub const DEFAULT_MODEL: &str = "models/karate-gcn/karate-gcn.tgnn";
/// See [`DEFAULT_MODEL`].
pub const DEFAULT_INPUTS: &str = "models/karate-gcn/inputs.tgib";

fn path_from_env(var: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    env::var_os(var)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// The model and the bundle to embed: `TINYGNN_MODEL` / `TINYGNN_INPUTS`
/// (`model`, `inputs`) when given, else the bundled defaults (`root` is the
/// repository root). A model without inputs is an error: the default
/// inputs belong to the default model.
pub fn model_and_inputs(
    root: &Path,
    model: Option<PathBuf>,
    inputs: Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), String> {
    match (model, inputs) {
        (Some(m), Some(i)) => Ok((m, i)),
        (None, Some(i)) => Ok((root.join(DEFAULT_MODEL), i)),
        (None, None) => Ok((root.join(DEFAULT_MODEL), root.join(DEFAULT_INPUTS))),
        (Some(m), None) => Err(std::format!(
            "TINYGNN_MODEL={} is set but TINYGNN_INPUTS is not: the default inputs ({DEFAULT_INPUTS}) \
             belong to the default model; make a bundle for this model with `tinygnn pack inputs \
             GRAPHS.safetensors inputs.tgib` and set TINYGNN_INPUTS to it",
            m.display()
        )),
    }
}

/// Generates `OUT_DIR/bundle.rs`; returns the arena size. Errors are
/// human-readable strings for the build script to print.
pub fn generate() -> Result<usize, String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    // Board crates live in boards/<name>/.
    let root = manifest.join("../..");
    let (model_path, inputs_path) = model_and_inputs(
        &fs::canonicalize(&root).unwrap_or(root),
        path_from_env("TINYGNN_MODEL"),
        path_from_env("TINYGNN_INPUTS"),
    )?;
    println!("cargo:rerun-if-env-changed=TINYGNN_ARENA_BYTES");
    println!("cargo:rerun-if-changed={}", model_path.display());
    println!("cargo:rerun-if-changed={}", inputs_path.display());
    let hint = "set TINYGNN_MODEL and TINYGNN_INPUTS to a .tgnn model and an input bundle \
                (`tinygnn pack inputs GRAPHS.safetensors inputs.tgib`), or unset both for the bundled karate-gcn";
    let model_bytes = fs::read(&model_path)
        .map_err(|e| std::format!("cannot read model {}: {e}; {hint}", model_path.display()))?;
    let inputs_bytes = fs::read(&inputs_path)
        .map_err(|e| std::format!("cannot read inputs {}: {e}; {hint}", inputs_path.display()))?;
    let model = tinygnn::Model::from_bytes(&model_bytes)
        .map_err(|e| std::format!("{}: {e}", model_path.display()))?;
    // `TINYGNN_ARENA_WIDE=1`: the arena at which every op runs at its full
    // width (`Model::wide_arena_bytes`), not the least each sample needs.
    println!("cargo:rerun-if-env-changed=TINYGNN_ARENA_WIDE");
    let wide = env::var_os("TINYGNN_ARENA_WIDE").is_some_and(|v| v == "1");
    let mut arena = samples_arena_of(&model, &inputs_bytes, wide).map_err(|e| {
        std::format!(
            "{}: {e} (model {})",
            inputs_path.display(),
            model_path.display()
        )
    })?;
    println!("cargo:rerun-if-env-changed=TINYGNN_INCREMENTAL");
    if incremental() {
        // Incremental runs (`crate::run_incremental`): every tensor kept, and
        // the changed-node list, for sample 0's graph (every sample's).
        let first = first_sample_arena(&model, &inputs_bytes)?;
        arena = arena.max(first);
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

/// `TINYGNN_INCREMENTAL=1`: the firmware runs the bundle as incremental
/// updates of sample 0's graph ([`crate::run_incremental`]); the board's own
/// build script then also sets `cfg(tinygnn_incremental)` for its code.
pub fn incremental() -> bool {
    env::var_os("TINYGNN_INCREMENTAL").is_some_and(|v| v == "1")
}

/// The arena of incremental runs over the bundle's first sample
/// ([`crate::incremental::incremental_arena`]).
fn first_sample_arena(model: &tinygnn::Model<'_>, bundle: &[u8]) -> Result<usize, String> {
    let mut words = std::vec![0u32; bundle.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bundle.len()].copy_from_slice(bundle);
    let aligned = &bytemuck::cast_slice::<u32, u8>(&words)[..bundle.len()];
    let bundle = Bundle::parse(aligned).map_err(|e| e.to_string())?;
    let arena = match bundle.samples().next() {
        Some(s) => crate::incremental::incremental_arena(model, &s.map_err(|e| e.to_string())?),
        None => 16,
    };
    Ok(arena)
}

/// Checks the bundle against the model (it parses, and every sample has the
/// model's input channels; for a recurrent model, the same nodes); returns
/// the largest arena a sample needs (at least 16 bytes), plus the state
/// region of a recurrent model.
pub fn samples_arena(model: &tinygnn::Model<'_>, bundle: &[u8]) -> Result<usize, String> {
    samples_arena_of(model, bundle, false)
}

/// [`samples_arena`], each sample's arena the wide one ([`wide_arena`]) when
/// `wide`: every op at its full width, the fastest.
pub fn samples_arena_of(
    model: &tinygnn::Model<'_>,
    bundle: &[u8],
    wide: bool,
) -> Result<usize, String> {
    // The bundle must be 4-aligned to parse; a Vec<u32> copy gives that.
    let mut words = std::vec![0u32; bundle.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bundle.len()].copy_from_slice(bundle);
    let aligned = &bytemuck::cast_slice::<u32, u8>(&words)[..bundle.len()];
    let bundle = Bundle::parse(aligned).map_err(|e| e.to_string())?;
    let channels = model.input_desc().channels;
    let mut arena = 16usize;
    let mut first_nodes = None;
    for (i, s) in bundle.samples().enumerate() {
        let s = s.map_err(|e| e.to_string())?;
        if s.channels != channels {
            return Err(std::format!(
                "sample {i} has {} feature channels, the model takes {channels}: \
                 is the bundle made for this model?",
                s.channels
            ));
        }
        let nodes = *first_nodes.get_or_insert(s.nodes);
        if model.state().is_some() && s.nodes != nodes {
            return Err(std::format!(
                "sample {i} has {} nodes, sample 0 has {nodes}: the model is recurrent, \
                 so the samples are the steps of one sequence over the same graph",
                s.nodes
            ));
        }
        let need = if wide {
            wide_arena(model, &s)
        } else {
            required_arena(model, &s)
        };
        arena = arena.max(need);
    }
    // A recurrent model's state sits in front of the session's arena (crate docs).
    Ok(state_region(model, usize::from(first_nodes.unwrap_or(0))) + arena)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn the_environment_overrides_the_bundled_defaults() {
        let r = Path::new("/repo");
        let (m, i) = (PathBuf::from("m.tgnn"), PathBuf::from("i.tgib"));
        let defaults = (r.join(DEFAULT_MODEL), r.join(DEFAULT_INPUTS));
        assert_eq!(model_and_inputs(r, None, None), Ok(defaults.clone()));
        assert_eq!(
            model_and_inputs(r, Some(m.clone()), Some(i.clone())),
            Ok((m.clone(), i.clone()))
        );
        assert_eq!(
            model_and_inputs(r, None, Some(i.clone())),
            Ok((defaults.0, i))
        );
        let e = model_and_inputs(r, Some(m), None).unwrap_err();
        assert!(e.contains("TINYGNN_INPUTS is not"), "{e}");
    }

    /// What a board build on a fresh clone embeds: the committed files
    /// exist, parse and fit each other.
    #[test]
    fn the_bundled_defaults_fit_each_other() {
        let model = fs::read(root().join(DEFAULT_MODEL)).unwrap();
        let inputs = fs::read(root().join(DEFAULT_INPUTS)).unwrap();
        let model = tinygnn::Model::from_bytes(&model).unwrap();
        let arena = samples_arena(&model, &inputs).unwrap();
        assert_eq!(arena, model.arena_bytes(34, 156, 1));
    }

    #[test]
    fn a_bundle_for_another_model_is_refused() {
        let (demo, samples) = crate::synth::demo().unwrap();
        let demo = tinygnn::Model::from_bytes(&demo).unwrap();
        let karate = fs::read(root().join(DEFAULT_INPUTS)).unwrap();
        let e = samples_arena(&demo, &karate).unwrap_err();
        assert!(e.contains("34 feature channels, the model takes 8"), "{e}");
        let ok = crate::bundle::writer::write(&samples).unwrap();
        assert!(samples_arena(&demo, &ok).unwrap() >= 16);
        assert!(samples_arena(&demo, &ok[..ok.len() - 4]).is_err());
    }
}
