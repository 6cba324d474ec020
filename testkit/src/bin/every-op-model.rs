//! Writes the every-op fixture model (`tinygnn_testkit::every_op_model`) to
//! the path given, for fuzz/seed_corpus.py:
//! `cargo run --release -p tinygnn-testkit --features all-ops --bin every-op-model -- OUT`.

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: every-op-model OUT");
        return std::process::ExitCode::from(2);
    };
    match std::fs::write(&path, tinygnn_testkit::every_op_model()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", std::path::Path::new(&path).display());
            std::process::ExitCode::FAILURE
        }
    }
}
