//! The `orphan-check` command line.

fn main() {
    eprintln!("orphan-check: the command line is not built yet");
    std::process::exit(2);
}
