//! `etcdopctl`: see the library.

fn main() -> std::process::ExitCode {
    etcdopctl::main_as("etcdopctl")
}
