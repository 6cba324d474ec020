use std::process::ExitCode;

fn main() -> ExitCode {
    tinygnn_cli::cli::main()
}
