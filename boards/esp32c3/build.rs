//! Embeds the model and the input bundle (see `tinygnn_board_app::build`)
//! and passes esp-hal's linker script (memory layout included).
fn main() {
    if let Err(e) = tinygnn_board_app::build::generate() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-arg=-Tlinkall.x");
}
