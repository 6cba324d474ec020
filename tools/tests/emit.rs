//! `tinygnn convert --emit rust|c`: the emitted sources compile (rustc, host
//! gcc), their bytes are the `.tgnn` written next to them (the Rust source
//! reads it with `include_bytes!`, relative to itself), aligned to
//! `tinygnn::MODEL_ALIGN`, and their constants are what the runtime computes
//! for the model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Converts the bundled karate-gcn model with `--emit lang` into `dir`.
fn convert(dir: &Path, lang: &str) -> PathBuf {
    let m = root().join("models/karate-gcn");
    let out = dir.join("karate-gcn.tgnn");
    let o = run(Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .arg("convert")
        .arg(m.join("model.safetensors"))
        .arg("--calib")
        .arg(m.join("graphs.safetensors"))
        .arg("-o")
        .arg(&out)
        .args(["--emit", lang]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("karate-gcn."), "{stdout}");
    out
}

/// `len arena nodes edges graphs aligned` as printed by the test programs.
fn expected_line(tgnn: &[u8]) -> String {
    let model = tinygnn::Model::from_bytes(tgnn).expect("the written .tgnn is valid");
    let (n, e, g) = model.capacity();
    let arena = model.arena_bytes(n as usize, e as usize, g as usize);
    format!("{} {arena} {n} {e} {g} 1", tgnn.len())
}

/// Compiles `main` with rustc into `exe`; the failure's stderr, if it fails.
fn rustc(main: &Path, exe: &Path) -> Result<(), String> {
    let o = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--edition", "2021", "-o"])
        .arg(exe)
        .arg(main)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

#[test]
fn emitted_rust_compiles_and_holds_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let tgnn = convert(dir.path(), "rust");
    let rs = dir.path().join("karate-gcn.rs");
    let text = std::fs::read_to_string(&rs).unwrap();
    assert_eq!(tinygnn::MODEL_ALIGN, 4);
    assert!(text.contains("#[repr(C, align(4))]"), "{text}");
    // The bytes are the .tgnn beside it, not a copy.
    assert!(
        text.contains(r#"(*include_bytes!("karate-gcn.tgnn"))"#),
        "{text}"
    );
    assert!(!text.contains("0x"), "no byte literals: {text}");
    assert!(
        text.contains(r#"// Use: `include!("karate-gcn.rs");`"#),
        "{text}"
    );
    // Both ways of using it: `include!` at the crate root and inside a
    // module, from a file in another directory: `include_bytes!` reads the
    // .tgnn relative to the .rs, wherever the includer is.
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let main = dir.path().join("app").join("main.rs");
    std::fs::write(
        &main,
        r#"#![deny(warnings)]
include!("../karate-gcn.rs");
mod again {
    include!("../karate-gcn.rs");
}
fn main() {
    let path = std::env::args().nth(1).unwrap();
    assert_eq!(again::KARATE_GCN_MODEL, KARATE_GCN_MODEL);
    assert_eq!((again::KARATE_GCN_MODEL_LEN, again::KARATE_GCN_ARENA_BYTES),
        (KARATE_GCN_MODEL_LEN, KARATE_GCN_ARENA_BYTES));
    assert_eq!((again::KARATE_GCN_MAX_NODES, again::KARATE_GCN_MAX_EDGES, again::KARATE_GCN_MAX_GRAPHS),
        (KARATE_GCN_MAX_NODES, KARATE_GCN_MAX_EDGES, KARATE_GCN_MAX_GRAPHS));
    std::fs::write(path, KARATE_GCN_MODEL).unwrap();
    println!("{} {} {} {} {} {}", KARATE_GCN_MODEL_LEN, KARATE_GCN_ARENA_BYTES,
        KARATE_GCN_MAX_NODES, KARATE_GCN_MAX_EDGES, KARATE_GCN_MAX_GRAPHS,
        u8::from(KARATE_GCN_MODEL.as_ptr() as usize % 4 == 0 && again::KARATE_GCN_MODEL.as_ptr() as usize % 4 == 0
            && core::mem::align_of::<KarateGcnBytes>() == 4));
}
"#,
    )
    .unwrap();
    let exe = dir.path().join("emit_rust");
    rustc(&main, &exe).unwrap_or_else(|e| panic!("the emitted Rust does not compile:\n{e}"));
    let dumped = dir.path().join("dumped.bin");
    let o = run(Command::new(&exe).arg(&dumped));
    let bytes = std::fs::read(&tgnn).unwrap();
    assert_eq!(
        std::fs::read(&dumped).unwrap(),
        bytes,
        "embedded bytes differ from the .tgnn"
    );
    tinygnn::Model::from_bytes(&std::fs::read(&dumped).unwrap()).expect("embedded bytes load");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        expected_line(&bytes)
    );
}

#[test]
fn emitted_rust_does_not_compile_with_a_model_of_another_size() {
    // A .tgnn converted again (here: one byte longer) without its .rs is a
    // compile error, not a model read with the old length and facts.
    let dir = tempfile::tempdir().unwrap();
    let tgnn = convert(dir.path(), "rust");
    let mut bytes = std::fs::read(&tgnn).unwrap();
    bytes.push(0);
    std::fs::write(&tgnn, &bytes).unwrap();
    let main = dir.path().join("main.rs");
    std::fs::write(
        &main,
        "include!(\"karate-gcn.rs\");\nfn main() { assert!(!KARATE_GCN_MODEL.is_empty()); }\n",
    )
    .unwrap();
    let err = rustc(&main, &dir.path().join("stale")).expect_err("a stale .rs compiles");
    assert!(err.contains("mismatched types"), "{err}");
}

#[test]
fn emitted_c_compiles_with_gcc_and_holds_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let tgnn = convert(dir.path(), "c");
    let main = dir.path().join("main.c");
    std::fs::write(
        &main,
        r#"#include <stdint.h>
#include <stdio.h>
#include "karate-gcn.h"
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    FILE *f = fopen(argv[1], "wb");
    if (!f || fwrite(karate_gcn_model, 1, KARATE_GCN_MODEL_LEN, f) != KARATE_GCN_MODEL_LEN) return 3;
    fclose(f);
    printf("%u %u %u %u %u %d\n", KARATE_GCN_MODEL_LEN, KARATE_GCN_ARENA_BYTES, KARATE_GCN_MAX_NODES,
           KARATE_GCN_MAX_EDGES, KARATE_GCN_MAX_GRAPHS, (int)((uintptr_t)karate_gcn_model % 4 == 0));
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.path().join("emit_c");
    run(Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&main)
        .arg(dir.path().join("karate-gcn.c"))
        .arg("-I")
        .arg(dir.path()));
    let dumped = dir.path().join("dumped.bin");
    let o = run(Command::new(&exe).arg(&dumped));
    let bytes = std::fs::read(&tgnn).unwrap();
    assert_eq!(
        std::fs::read(&dumped).unwrap(),
        bytes,
        "embedded bytes differ from the .tgnn"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        expected_line(&bytes)
    );
}

#[test]
fn emit_needs_a_tgnn_output_name() {
    let dir = tempfile::tempdir().unwrap();
    let m = root().join("models/karate-gcn");
    for (out, lang) in [("model.c", "c"), ("model.rs", "rust"), ("model", "c")] {
        let o = Command::new(env!("CARGO_BIN_EXE_tinygnn"))
            .arg("convert")
            .arg(m.join("model.safetensors"))
            .arg("--calib")
            .arg(m.join("graphs.safetensors"))
            .arg("-o")
            .arg(dir.path().join(out))
            .args(["--emit", lang])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("-o must name the .tgnn file"), "{err}");
        // Refused before anything is written.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    let o = Command::new(env!("CARGO_BIN_EXE_tinygnn"))
        .args([
            "convert",
            "x.safetensors",
            "--calib",
            "g.safetensors",
            "-o",
            "m.tgnn",
            "--emit",
            "go",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "clap rejects an unknown language");
}
