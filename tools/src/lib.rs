//! The `tinygnn` host tool as a library: spec parsing, the float reference
//! executor, calibration, quantization/lowering to the `.tgnn` format, and the
//! CLI commands. The binary (`src/main.rs`) only calls [`cli::main`].
#![warn(missing_docs)]
// Numeric loops index several arrays with the same index; iterators would obscure them.
#![allow(clippy::needless_range_loop)]
// `println!`/`eprintln!` panic on a closed or full stream: `out!`, `outln!`, `errln!` instead.
#![deny(clippy::print_stdout, clippy::print_stderr)]

// First: its macros (`outln!`, `out!`, `errln!`) are used by the modules below.
#[macro_use]
pub mod out;

pub mod act4;
pub mod calibrate;
pub mod channel_search;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod debug;
pub mod emit;
pub mod fsio;
pub mod fuse;
pub mod lower;
pub mod ops;
pub mod prec;
pub mod precision;
pub mod quantize;
pub mod range;
pub mod reference;
pub mod reply;
pub mod rt;
pub mod spec;
pub mod split;
pub mod st;
pub mod weights;
