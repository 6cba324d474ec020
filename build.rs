//! Sets `cfg(tinygnn_small_decoder)` when the only op families enabled are
//! `op-gcn` and `op-linear` (see `format::small`), and `cfg(tinygnn_thumb1)` on ARMv6-M / ARMv8-M Baseline targets
//! (selects `kernels::dense::matvec_narrow`), and `cfg(tinygnn_dsp)` when
//! the target has the Arm DSP extension (`SXTB16`, `SMLAD`), which selects
//! the assembly kernels of `kernels::pairs`; `cfg(tinygnn_single)` where
//! requantization takes the single-multiply form (DSP targets and 64-bit
//! targets, without the `kernels-small` feature). Stable Rust does not expose `cfg(target_feature = "dsp")`
//! (the Arm target features are unstable), so the rule is decided here:
//!
//! * `thumbv7em-*` (Cortex-M4/M7): ARMv7E-M always has the DSP extension;
//! * `thumbv8m.main-*` (Cortex-M33/M35P/M55/M85): only when the build asks for it,
//!   with `-C target-feature=+dsp` or a `-C target-cpu` of those cores;
//! * any Arm target whose enabled features include `dsp` (what nightly reports);
//! * never with `-C target-feature=-dsp`.
use std::env;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(tinygnn_dsp)");
    println!("cargo:rustc-check-cfg=cfg(tinygnn_thumb1)");
    println!("cargo:rustc-check-cfg=cfg(tinygnn_small_decoder)");
    println!("cargo:rustc-check-cfg=cfg(tinygnn_single)");
    println!("cargo:rerun-if-changed=build.rs");
    // No op family but GCN and Linear (any other `op-*` feature, present or
    // future, turns it off): the metadata is read by `format::small` instead
    // of postcard's generic decoder (docs/size.md).
    let other_ops = env::vars().any(|(k, _)| {
        k.starts_with("CARGO_FEATURE_OP_")
            && k != "CARGO_FEATURE_OP_GCN"
            && k != "CARGO_FEATURE_OP_LINEAR"
    });
    if !other_ops {
        println!("cargo:rustc-cfg=tinygnn_small_decoder");
    }
    let target = env::var("TARGET").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    let flag_text = flags.join(" ");
    let off = flag_text.contains("-dsp");
    let asked = flag_text.contains("+dsp")
        || ["cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"]
            .iter()
            .any(|cpu| flag_text.contains(&format!("target-cpu={cpu}")));
    let dsp = arch == "arm"
        && !off
        && (target.starts_with("thumbv7em")
            || (target.starts_with("thumbv8m.main") && asked)
            || features.split(',').any(|f| f == "dsp"));
    if dsp {
        println!("cargo:rustc-cfg=tinygnn_dsp");
    }
    // Requantization in the single-multiply form (`kernels::requant`): the
    // DSP assembly, or on 64-bit targets a one-multiply loop in Rust; not
    // with `kernels-small`.
    let wide = env::var("CARGO_CFG_TARGET_POINTER_WIDTH").is_ok_and(|w| w == "64");
    if (dsp || wide) && env::var_os("CARGO_FEATURE_KERNELS_SMALL").is_none() {
        println!("cargo:rustc-cfg=tinygnn_single");
    }
    // ARMv6-M and ARMv8-M Baseline (Cortex-M0/M0+/M23): Thumb-1 data
    // processing, eight low registers; selects `dense::matvec_narrow`.
    if arch == "arm" && (target.starts_with("thumbv6m") || target.starts_with("thumbv8m.base")) {
        println!("cargo:rustc-cfg=tinygnn_thumb1");
    }
}
