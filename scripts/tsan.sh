#!/usr/bin/env bash
# ThreadSanitizer over the concurrent tests and a stress run: the library's unit tests
# (racing faults, concurrent allocation, RCU) and `softmm stress` with 2 threads.
# crossbeam-epoch's fences are invisible to TSan: `crossbeam_sanitize_thread` makes it
# use orderings TSan understands. Installs nightly with rust-src (for -Zbuild-std);
# exits non-zero on any report.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install nightly --profile minimal --component rust-src >/dev/null
target=x86_64-unknown-linux-gnu
# softmm_tsan: the CLI keeps the system allocator, which TSan intercepts (main.rs), and the
# last frame reference is taken with an Acquire load instead of a fence (frame/meta.rs).
export RUSTFLAGS="-Zsanitizer=thread --cfg crossbeam_sanitize_thread --cfg softmm_tsan"
export RUSTDOCFLAGS="$RUSTFLAGS"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
# Single-threaded heavyweights (100k VMAs, the tree's differential test) are skipped: they
# race with nothing and take minutes under TSan.
cargo +nightly test -Zbuild-std --target "$target" --target-dir target/tsan -p softmm --lib -- \
  --skip exit_with_100k_vmas --skip differential --skip million
cargo +nightly build -Zbuild-std --target "$target" --target-dir target/tsan --release -p softmm-cli
"target/tsan/$target/release/softmm" stress --threads 2 --seconds "${TSAN_SECONDS:-20}" --spaces 1
"target/tsan/$target/release/softmm" stress --threads 4 --spaces 2 --ops 20000
echo "tsan: no data race reported"
