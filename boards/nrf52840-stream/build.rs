//! Copies memory.x, embeds the model and sizes every buffer from its declared
//! capacity (`tinygnn_proto::sizing`), and passes the cortex-m-rt and defmt
//! linker scripts.
//!
//! Environment: `TINYGNN_MODEL` (default `models/karate-gcn/karate-gcn.tgnn`),
//! optionally `TINYGNN_STREAM_MAX_NODES` / `TINYGNN_STREAM_MAX_EDGES` to accept
//! less than the model's capacity (smaller buffers: the nRF52840 has 256 KiB of RAM).
fn main() {
    let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let r = tinygnn_board_app::build::memory_x().and_then(|()| {
        tinygnn_proto::sizing::build_script(
            &manifest.join("../../models/karate-gcn/karate-gcn.tgnn"),
        )
    });
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rustc-link-arg=-Tdefmt.x");
}
