//! The `ftpgate` binary: everything lives in the library; this only hands over the
//! arguments and turns the outcome into an exit code.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ftpgate::cli::main()
}
