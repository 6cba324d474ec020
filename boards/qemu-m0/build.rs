//! Copies memory.x, embeds the model and the input bundle (see
//! `tinygnn_board_app::build`), and passes the cortex-m-rt linker script.
//!
//! Test knob: `TINYGNN_M0_STACK_RESERVE=N` links with an N-byte stack instead
//! of memory.x's default `STACK_RESERVE` (through `--defsym`) (scripts/areas/boards.sh builds a firmware
//! with too small a stack that must fault, not hang).
use std::env;

fn stack_override() -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=TINYGNN_M0_STACK_RESERVE");
    let v = env::var("TINYGNN_M0_STACK_RESERVE").unwrap_or_default();
    if v.is_empty() {
        return Ok(());
    }
    let n: u32 = v
        .parse()
        .map_err(|_| format!("TINYGNN_M0_STACK_RESERVE={v}: not a byte count"))?;
    if n % 8 != 0 || n == 0 || n >= 16 * 1024 {
        return Err(format!(
            "TINYGNN_M0_STACK_RESERVE={n}: must be a multiple of 8 in 8..16376"
        ));
    }
    // memory.x takes `_m0_stack_reserve` when it is defined.
    println!("cargo:rustc-link-arg=--defsym=_m0_stack_reserve={n}");
    Ok(())
}

fn main() {
    let r = tinygnn_board_app::build::memory_x()
        .and_then(|()| stack_override())
        .and_then(|()| tinygnn_board_app::build::generate());
    match r {
        Ok(_arena) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
}
