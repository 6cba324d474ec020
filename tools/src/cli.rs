//! Command-line interface (clap derive). Exit codes: 0 success, 1 error (the
//! message names the op, tensor or input at fault), 2 usage error (clap).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// tinygnn host tool: convert PyG models to int8 `.tgnn`, inspect, simulate and verify them.
#[derive(Debug, Parser)]
#[command(name = "tinygnn", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub cmd: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Quantize MODEL.safetensors to int8 and write MODEL.tgnn.
    Convert(cmd::convert::Args),
    /// Show the header, ops, tensors and memory of a .tgnn model.
    Inspect(cmd::inspect::Args),
    /// Run a .tgnn model on graphs with the runtime (host simulation).
    Run(cmd::run::Args),
    /// Compare the int8 model against the float reference.
    Verify(cmd::verify::Args),
    /// Send graphs to a device running the streaming firmware (TCP or serial) and print its outputs.
    Stream(cmd::stream::Args),
    /// Run a .tgnn model K times in one process and print per-inference numbers.
    Bench(cmd::bench::Args),
    /// Board firmware inputs: pack graphs into an input bundle, print the expected report, make demo models.
    Pack(cmd::pack::Args),
}

/// Parses the arguments, runs the command and maps errors to exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Command::Convert(a) => cmd::convert::run(&a),
        Command::Inspect(a) => cmd::inspect::run(&a),
        Command::Run(a) => cmd::run::run(&a),
        Command::Verify(a) => cmd::verify::run(&a),
        Command::Stream(a) => cmd::stream::run(&a),
        Command::Bench(a) => cmd::bench::run(&a),
        Command::Pack(a) => cmd::pack::run(&a),
    };
    // Flushes stdout; a write to it that failed (other than a closed pipe:
    // see `out`) is an error too.
    let r = r.and_then(|()| crate::out::finish());
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
