//! The `kite-setup` binary: everything lives in the library; see `kite_setup::main`.

fn main() -> std::process::ExitCode {
    kite_setup::main()
}
