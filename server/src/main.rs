//! The `keyport` command. Everything lives in the library so tests drive the same code.
fn main() -> std::process::ExitCode {
    server::cli::main()
}
