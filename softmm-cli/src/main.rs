//! The `softmm` command (placeholder until the CLI lands).
fn main() {
    eprintln!("softmm: no command yet");
    std::process::exit(2);
}
