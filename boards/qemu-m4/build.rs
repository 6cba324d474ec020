//! Copies the memory layout into OUT_DIR as memory.x — memory/mps2-an386.x
//! (the whole QEMU machine), or with feature `nrf52840` memory/nrf52840.x
//! (the nRF52840's 1 MiB flash and 256 KiB RAM on the same machine) —,
//! embeds the model and the input bundle (see `tinygnn_board_app::build`),
//! and passes the cortex-m-rt linker script (and defmt's, with feature
//! `defmt`).
//!
//! The layouts live in `memory/`, not as `memory.x` in this directory: the
//! linker looks for cortex-m-rt's `INCLUDE memory.x` in its working
//! directory (this one) before the search path, so a `memory.x` here would
//! win over the one selected in OUT_DIR.
use std::{env, fs, path::PathBuf};

fn memory_x() -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let name = if env::var_os("CARGO_FEATURE_NRF52840").is_some() {
        "memory/nrf52840.x"
    } else {
        "memory/mps2-an386.x"
    };
    fs::copy(manifest.join(name), out.join("memory.x")).map_err(|e| format!("{name}: {e}"))?;
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");
    Ok(())
}

fn main() {
    let r = memory_x().and_then(|()| tinygnn_board_app::build::generate());
    match r {
        Ok(_arena) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    // `TINYGNN_INCREMENTAL=1` (`scripts/qemu-run.sh --incremental`): run the
    // bundle as incremental updates of sample 0's graph.
    println!("cargo::rustc-check-cfg=cfg(tinygnn_incremental)");
    if tinygnn_board_app::build::incremental() {
        println!("cargo:rustc-cfg=tinygnn_incremental");
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
}
