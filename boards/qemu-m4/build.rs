//! Copies memory.x, embeds the model and the input bundle (see
//! `tinygnn_board_app::build`), and passes the cortex-m-rt linker script
//! (and defmt's, with feature `defmt`).
fn main() {
    let r =
        tinygnn_board_app::build::memory_x().and_then(|()| tinygnn_board_app::build::generate());
    match r {
        Ok(_arena) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    if std::env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
}
