//! Copies memory.x, embeds the model and the input bundle (see
//! `tinygnn_board_app::build`), and passes the cortex-m-rt and defmt linker scripts.
fn main() {
    let r =
        tinygnn_board_app::build::memory_x().and_then(|()| tinygnn_board_app::build::generate());
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rustc-link-arg=-Tdefmt.x");
}
