//! The `lothub` binary: parses the command line and hands over to [`lothub::cli`].
fn main() {
    std::process::exit(lothub::cli::main());
}
