//! The `a2a-sandbox` command: everything it does is in
//! [`a2a_sandbox::cli`].

fn main() -> std::process::ExitCode {
    a2a_sandbox::cli::main()
}
