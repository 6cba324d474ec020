//! Writes the memory.x of the board chosen by feature and passes the
//! cortex-m-rt linker script.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let memory = if env::var_os("CARGO_FEATURE_M0").is_some() {
        // microbit (nRF51822): 256 KiB flash, 16 KiB RAM.
        "MEMORY { FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n RAM : ORIGIN = 0x20000000, LENGTH = 16K }\n"
    } else if env::var_os("CARGO_FEATURE_M33").is_some() {
        // mps2-an505, secure aliases: 4 MiB SSRAM1 at 0x10000000, RAM at 0x38000000.
        "MEMORY { FLASH : ORIGIN = 0x10000000, LENGTH = 4M\n RAM : ORIGIN = 0x38000000, LENGTH = 2M }\n"
    } else {
        // mps2-an386: 4 MiB SSRAM at 0 (flash), 4 MiB RAM at 0x20000000.
        "MEMORY { FLASH : ORIGIN = 0x00000000, LENGTH = 4M\n RAM : ORIGIN = 0x20000000, LENGTH = 4M }\n"
    };
    fs::write(out.join("memory.x"), memory).expect("memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rerun-if-changed=build.rs");
}
